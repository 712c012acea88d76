//! Restarts and faults, on private PostgreSQL and Redis servers the tests start and stop
//! (`support::private`), never the machine's shared ones:
//! - a service killed with SIGKILL in the middle of traffic and started again loses no write it
//!   acknowledged, and the client's channel recovers by itself;
//! - with Redis stopped, writes keep succeeding (their events wait in the outbox) and every
//!   event is published and delivered once Redis is back;
//! - with PostgreSQL stopped, calls fail fast with `UNAVAILABLE`, and the same process serves
//!   again once the database is back, without being restarted.
//!
//! Part of the real-backend tier: they run when `STEWARD_TEST_DATABASE_URL` is set (CI sets
//! it), and need PostgreSQL's server programs and `redis-server` on the machine.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message;
use steward_proto::events::event_envelope::Payload;
use steward_proto::tracking as pb;
use tonic::Code;

use crate::support::binaries;
use crate::support::env;
use crate::support::metrics::{sample, scrape};
use crate::support::private::{PrivatePostgres, PrivateRedis};
use crate::support::process::command;
use crate::support::server::{Server, free_addr};
use crate::support::tracking::{self as t, unique};

fn asked() -> bool {
    if env("STEWARD_TEST_DATABASE_URL").is_none() {
        eprintln!("fault tests not asked for (set STEWARD_TEST_DATABASE_URL)");
        return false;
    }
    true
}

async fn tracking_on(pg: &PrivatePostgres, addr: std::net::SocketAddr) -> Server {
    let dir = tempfile::tempdir().unwrap().keep();
    let mut cmd = command(binaries::path(binaries::STEWARD_TRACKING));
    cmd.args(["--listen", &addr.to_string(), "--data-dir"])
        .arg(dir)
        .env("STEWARD_DATABASE_URL", pg.url("postgres"));
    Server::start(binaries::STEWARD_TRACKING, cmd, addr).await
}

#[tokio::test]
async fn a_service_killed_mid_traffic_loses_no_acknowledged_write() {
    if !asked() {
        return;
    }
    let pg = PrivatePostgres::start();
    let addr = free_addr();
    let mut server = tracking_on(&pg, addr).await;
    let mut tc = server.tracking();
    let exp = t::create_experiment(&mut tc, &unique("crash")).await;
    let run = t::create_run(&mut tc, &exp.name, "train").await;

    // One writer on one channel for the whole test: each step is retried until acknowledged.
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, stop, run, mut tc) =
            (acked.clone(), stop.clone(), run.name.clone(), tc.clone());
        tokio::spawn(async move {
            let mut step = 0_i64;
            let mut failures = 0;
            while !stop.load(Ordering::SeqCst) {
                let req = pb::LogRunDataRequest {
                    run: run.clone(),
                    metrics: vec![pb::MetricPoint {
                        key: "loss".into(),
                        value: step as f64,
                        step,
                        ..Default::default()
                    }],
                    request_id: format!("crash-{step}"),
                    ..Default::default()
                };
                match tokio::time::timeout(Duration::from_secs(5), tc.log_run_data(req)).await {
                    Ok(Ok(_)) => {
                        acked.lock().unwrap().insert(step);
                        step += 1;
                    }
                    _ => {
                        failures += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            failures
        })
    };
    let wait_acked = |n: usize, what: &'static str| {
        let acked = acked.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while acked.lock().unwrap().len() < n {
                assert!(
                    Instant::now() < deadline,
                    "{what}: only {} writes acknowledged",
                    acked.lock().unwrap().len()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    wait_acked(50, "before the crash").await;
    server.proc.kill();
    let at_crash = acked.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server = tracking_on(&pg, addr).await;
    wait_acked(
        at_crash + 50,
        "after the restart, on the same client channel",
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    let failures = writer.await.unwrap();
    assert!(failures > 0, "the writer saw the crash");

    let history = server
        .tracking()
        .get_metric_history(pb::GetMetricHistoryRequest {
            run: run.name.clone(),
            metric_key: "loss".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let stored: BTreeSet<i64> = history
        .series
        .unwrap_or_default()
        .steps
        .into_iter()
        .collect();
    let acked = acked.lock().unwrap().clone();
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    // A retried request id is applied once: no step is stored twice.
    assert_eq!(
        history.total_points as usize,
        stored.len(),
        "duplicated points after retries"
    );
}

#[tokio::test]
async fn with_redis_down_writes_succeed_and_every_event_is_delivered_after() {
    if !asked() {
        return;
    }
    let pg = PrivatePostgres::start();
    let mut redis = PrivateRedis::start();
    let prefix = format!("{}:", unique("outage"));
    let metrics = free_addr();
    let data = tempfile::tempdir().unwrap();
    let server = Server::steward_up(
        data.path(),
        &[
            ("STEWARD_DATABASE_URL", &pg.url("postgres")),
            ("STEWARD_REDIS_URL", &redis.url()),
            ("STEWARD_REDIS_KEY_PREFIX", &prefix),
            ("STEWARD_METRICS_LISTEN", &metrics.to_string()),
        ],
    )
    .await;
    let mut tc = server.tracking();

    redis.stop();
    let names: Vec<String> = (0..5)
        .map(|i| unique(&format!("during-outage-{i}")))
        .collect();
    for name in &names {
        t::create_experiment(&mut tc, name).await;
    }
    let text = scrape(metrics).await;
    assert!(
        sample(&text, r#"steward_outbox_depth{service="tracking"}"#).is_some_and(|n| n >= 5.0),
        "the events wait in the outbox: {text}"
    );
    assert_eq!(
        sample(&text, r#"steward_backend_up{backend="event_bus"}"#),
        Some(0.0)
    );

    redis.start_again();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = scrape(metrics).await;
        let depth = sample(&text, r#"steward_outbox_depth{service="tracking"}"#);
        // Consumer groups are recreated on the empty Redis and read the stream from its start.
        let behind: f64 = text
            .lines()
            .filter(|l| {
                l.starts_with("steward_event_group_undelivered{")
                    || l.starts_with("steward_event_group_pending{")
            })
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum();
        if depth == Some(0.0) && behind == 0.0 && text.contains("steward_event_group_pending{") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "events not delivered 60 s after Redis came back: outbox {depth:?}, consumers behind {behind}\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every experiment created during the outage has its event on the stream.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(format!("{prefix}events"))
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    let published: BTreeSet<String> = entries
        .ids
        .iter()
        .filter_map(|e| match e.map.get("e")? {
            redis::Value::BulkString(b) => {
                steward_proto::events::EventEnvelope::decode(b.as_slice()).ok()
            }
            _ => None,
        })
        .filter_map(|env| match env.payload? {
            Payload::ExperimentCreated(c) => Some(c.display_name),
            _ => None,
        })
        .collect();
    for name in &names {
        assert!(
            published.contains(name),
            "no event for {name}: {published:?}"
        );
    }
}

#[tokio::test]
async fn with_postgres_down_calls_are_unavailable_and_recover_without_a_restart() {
    if !asked() {
        return;
    }
    let pg = PrivatePostgres::start();
    let data = tempfile::tempdir().unwrap();
    let server = Server::steward_up(
        data.path(),
        &[("STEWARD_DATABASE_URL", &pg.url("postgres"))],
    )
    .await;
    // A channel without the harness's 5 s client timeout: a call waits for a database
    // connection up to the pool's acquire timeout (10 s) before it is UNAVAILABLE.
    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut tc = pb::tracking_service_client::TrackingServiceClient::new(channel);
    let before = t::create_experiment(&mut tc, &unique("before-restart")).await;

    pg.stop();
    {
        let write = tokio::time::timeout(
            Duration::from_secs(20),
            tc.create_experiment(pb::CreateExperimentRequest {
                experiment: Some(pb::Experiment {
                    display_name: unique("while-down"),
                    ..Default::default()
                }),
                request_id: String::new(),
            }),
        )
        .await
        .expect("a write answers within 20 s while the database is down");
        let status = write.expect_err("no write succeeds without a database");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        let read = tokio::time::timeout(
            Duration::from_secs(20),
            tc.get_experiment(pb::GetExperimentRequest {
                name: before.name.clone(),
                ..Default::default()
            }),
        )
        .await
        .expect("a read answers within 20 s while the database is down");
        assert_eq!(read.expect_err("no read").code(), Code::Unavailable);
    }

    pg.start_again();
    let deadline = Instant::now() + Duration::from_secs(60);
    let after = loop {
        match tc
            .create_experiment(pb::CreateExperimentRequest {
                experiment: Some(pb::Experiment {
                    display_name: unique("after-restart"),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
        {
            Ok(r) => break r.into_inner(),
            Err(s) => {
                assert_eq!(s.code(), Code::Unavailable, "{s:?}");
                assert!(
                    Instant::now() < deadline,
                    "not recovered 60 s after the database came back: {s:?}\n{}\n{}",
                    server.proc.logs(),
                    pg.log()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    for name in [&before.name, &after.name] {
        tc.get_experiment(pb::GetExperimentRequest {
            name: name.clone(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("{name} after the restart: {s:?}"));
    }
}
