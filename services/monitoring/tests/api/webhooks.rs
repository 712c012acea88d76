//! Webhooks: signed, retried with backoff, and never sent to a private address that was not
//! explicitly allowed, whatever the spelling of the host.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use steward_proto::monitoring as pb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{self, record};

/// One request the fake receiver got: headers (lower-case names) and body.
type Got = Arc<Mutex<Vec<(Vec<(String, String)>, String)>>>;

/// A tiny HTTP/1.1 receiver on loopback: answers 500 to the first `fail` requests, then 200.
async fn receiver(fail: usize) -> (u16, Got) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let got: Got = Arc::default();
    let g = got.clone();
    tokio::spawn(async move {
        let mut n = 0usize;
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let mut tmp = [0u8; 4096];
            // Read headers, then content-length bytes of body.
            let (head, body) = loop {
                let k = s.read(&mut tmp).await.unwrap_or(0);
                if k == 0 {
                    break (String::new(), String::new());
                }
                buf.extend_from_slice(&tmp[..k]);
                if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..p]).to_string();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while buf.len() < p + 4 + len {
                        let k = s.read(&mut tmp).await.unwrap_or(0);
                        if k == 0 {
                            break;
                        }
                        buf.extend_from_slice(&tmp[..k]);
                    }
                    break (head, String::from_utf8_lossy(&buf[p + 4..]).to_string());
                }
            };
            let headers = head
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            g.lock().unwrap().push((headers, body));
            n += 1;
            let status = if n <= fail {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let _ = s
                .write_all(
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await;
        }
    });
    (port, got)
}

fn header<'a>(h: &'a [(String, String)], k: &str) -> &'a str {
    h.iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

async fn channel(h: &mut harness::Harness, id: &str, url: String, allow: bool) {
    h.mon
        .create_channel(pb::CreateChannelRequest {
            channel_id: id.into(),
            channel: Some(pb::Channel {
                url,
                secret: "0123456789abcdef-secret".into(),
                allow_private: allow,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
}

/// A monitor whose `error_rate > 0.5` rule notifies `channels`, and failed predictions that
/// make it fire.
async fn fire(h: &mut harness::Harness, channels: &[&str]) {
    h.numeric_baseline("b", &[("x", vec![1.0, 2.0, 3.0])], None)
        .await;
    h.count_monitor("m", "b", "", 1_000_000).await;
    h.mon
        .create_alert_rule(pb::CreateAlertRuleRequest {
            monitor: "monitors/m".into(),
            rule_id: "errors".into(),
            rule: Some(pb::AlertRule {
                metric: "error_rate".into(),
                comparator: pb::Comparator::Greater as i32,
                threshold: 0.5,
                window: Some(prost_types::Duration {
                    seconds: 600,
                    nanos: 0,
                }),
                severity: "critical".into(),
                channels: channels.iter().map(|c| format!("channels/{c}")).collect(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
    h.mon
        .ingest_predictions(pb::IngestPredictionsRequest {
            monitor: "monitors/m".into(),
            records: (0..10)
                .map(|i| {
                    let mut r = record(&format!("e{i}"), &[("x", 1.0)], 0.5);
                    r.error = true;
                    r
                })
                .collect(),
            columns: None,
        })
        .await
        .unwrap();
    h.wait_alert("m", "FIRING").await;
}

#[tokio::test]
async fn alerts_are_posted_signed_and_retried_until_delivered() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        let (port, got) = receiver(1).await;
        channel(&mut h, "ops", format!("http://127.0.0.1:{port}/hook"), true).await;
        fire(&mut h, &["ops"]).await;
        // The first attempt gets a 500; the retry (1 s later) a 200.
        for _ in 0..200 {
            if got.lock().unwrap().len() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let reqs = got.lock().unwrap().clone();
        assert_eq!(reqs.len(), 2, "{l}: one failure, one retry");
        for (headers, body) in &reqs {
            assert_eq!(header(headers, "x-steward-event"), "alert");
            let sig = header(headers, "x-steward-signature");
            let (t, v1) = sig
                .strip_prefix("t=")
                .and_then(|s| s.split_once(",v1="))
                .unwrap_or_else(|| panic!("{l}: signature header {sig:?}"));
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"0123456789abcdef-secret").unwrap();
            mac.update(format!("{t}.{body}").as_bytes());
            assert_eq!(
                hex::encode(mac.finalize().into_bytes()),
                v1,
                "{l}: HMAC over t.body"
            );
            let j: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(j["state"], "FIRING");
            assert_eq!(j["metric"], "error_rate");
            assert_eq!(j["severity"], "critical");
        }
        // Delivered: no third call.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(got.lock().unwrap().len(), 2, "{l}");
        let d = steward_monitoring::store::channels::of_channel(h.backends.db.conn(), "ops")
            .await
            .unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].0, d[0].1),
            (steward_monitoring::store::channels::DELIVERED, 2)
        );
        h.stop().await;
    }
}

#[tokio::test]
async fn webhooks_never_reach_loopback_through_other_spellings() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        let (port, got) = receiver(0).await;
        // 127.0.0.1 in the spellings inet_aton (and so most HTTP clients) accept: refused when
        // the channel is created.
        for host in [
            "2130706433",
            "0x7f000001",
            "0177.0.0.1",
            "127.1",
            "[::ffff:127.0.0.1]",
            "localhost.",
        ] {
            let e = h
                .mon
                .create_channel(pb::CreateChannelRequest {
                    channel_id: "sneaky".into(),
                    channel: Some(pb::Channel {
                        url: format!("http://{host}:{port}/hook"),
                        secret: "0123456789abcdef-secret".into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                })
                .await
                .unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "{l}: {host}: {e:?}");
        }
        // A name that passes that check but resolves to loopback (this machine's own host name
        // usually does; so does a DNS rebinding) is dropped when delivering, after DNS.
        match loopback_host_name().await {
            Some(name) => {
                channel(
                    &mut h,
                    "sneaky",
                    format!("http://{name}:{port}/hook"),
                    false,
                )
                .await;
                fire(&mut h, &["sneaky"]).await;
                let mut last = String::new();
                for _ in 0..100 {
                    let d = steward_monitoring::store::channels::of_channel(
                        h.backends.db.conn(),
                        "sneaky",
                    )
                    .await
                    .unwrap();
                    if let Some(x) = d.first()
                        && x.1 >= 1
                        && !x.2.is_empty()
                    {
                        last = x.2.clone();
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                assert!(
                    last.contains("loopback"),
                    "{l}: the attempt failed on the address guard: {last:?}"
                );
            }
            None => eprintln!(
                "{l}: no host name of this machine resolves to loopback; the delivery guard is covered by notify's unit test"
            ),
        }
        assert!(
            got.lock().unwrap().is_empty(),
            "{l}: nothing reached the receiver"
        );
        h.stop().await;
    }
}

/// This machine's host name, if it resolves to loopback addresses only.
async fn loopback_host_name() -> Option<String> {
    let name = std::fs::read_to_string("/etc/hostname")
        .ok()?
        .trim()
        .to_owned();
    if name.is_empty() || name.eq_ignore_ascii_case("localhost") {
        return None;
    }
    let addrs: Vec<_> = tokio::net::lookup_host((name.as_str(), 0))
        .await
        .ok()?
        .collect();
    (!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())).then_some(name)
}

#[tokio::test]
async fn dataset_drift_triggers_retraining_with_the_report_and_the_window() {
    for mut h in harness::all().await {
        let l = h.label.clone();
        let (port, got) = receiver(0).await;
        channel(
            &mut h,
            "retrain",
            format!("http://127.0.0.1:{port}/retrain"),
            true,
        )
        .await;
        h.numeric_baseline(
            "b",
            &[("x", (0..2000).map(|i| (i % 100) as f64).collect())],
            None,
        )
        .await;
        h.mon
            .create_monitor(pb::CreateMonitorRequest {
                monitor_id: "m".into(),
                monitor: Some(pb::Monitor {
                    baseline: "baselines/b".into(),
                    window: Some(pb::Window {
                        size: Some(pb::window::Size::Count(100)),
                    }),
                    retrain_channel: "channels/retrain".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap();
        h.mon
            .ingest_predictions(pb::IngestPredictionsRequest {
                monitor: "monitors/m".into(),
                records: (0..100)
                    .map(|i| record(&format!("d{i}"), &[("x", 500.0 + i as f64)], 0.5))
                    .collect(),
                columns: None,
            })
            .await
            .unwrap();
        for _ in 0..200 {
            if !got.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let reqs = got.lock().unwrap().clone();
        assert_eq!(reqs.len(), 1, "{l}");
        let (headers, body) = &reqs[0];
        assert_eq!(header(headers, "x-steward-event"), "retrain");
        let j: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(j["monitor"], "monitors/m");
        assert_eq!(j["window"]["rows"], 100);
        assert_eq!(j["report"]["dataset_drift"], true);
        assert_eq!(j["report"]["features"][0]["name"], "x");
        h.stop().await;
    }
}
