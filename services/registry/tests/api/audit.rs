//! `steward.audit.v1.AuditService` over real gRPC (tonic on 127.0.0.1:0) against every
//! backend: SQLite always, Postgres when `STEWARD_TEST_DATABASE_URL` is set. Self-contained:
//! records are appended to two chains through `steward_storage::audit`, as the services do.

use std::sync::Arc;
use std::time::Duration;

use prost_types::Timestamp;
use sea_orm::ConnectionTrait;
use steward_grpc::PageTokenCodec;
use steward_proto::audit as pb;
use steward_proto::audit::audit_service_client::AuditServiceClient;
use steward_proto::audit::audit_service_server::AuditServiceServer;
use steward_registry::audit_api::AuditApi;
use steward_storage::audit::{self, AuditEntry, AuditRecord};
use steward_storage::testing::TestDb;
use steward_storage::{Db, with_write_tx};
use tokio::sync::oneshot;
use tonic::Code;
use tonic::transport::Channel;

type Client = AuditServiceClient<Channel>;

/// The API served on an ephemeral port; stops when dropped.
struct Served {
    client: Client,
    _stop: oneshot::Sender<()>,
}

async fn serve(db: Db, tokens: Arc<PageTokenCodec>) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(AuditServiceServer::new(AuditApi::new(db, tokens)))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = stopped.await;
                },
            )
            .await
            .expect("audit server");
    });
    let client = AuditServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    Served {
        client,
        _stop: stop,
    }
}

struct E {
    service: &'static str,
    actor: &'static str,
    action: &'static str,
    resource: &'static str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
}

fn entries() -> Vec<E> {
    use serde_json::json;
    let e = |service, actor, action, resource, before, after| E {
        service,
        actor,
        action,
        resource,
        before,
        after,
    };
    vec![
        e(
            "tracking",
            "alice",
            "tracking.experiments.create",
            "experiments/e1",
            None,
            Some(json!({"n": 1})),
        ),
        e(
            "registry",
            "bob",
            "registry.models.create",
            "registeredModels/m1",
            None,
            Some(json!({})),
        ),
        e(
            "tracking",
            "bob",
            "tracking.runs.create",
            "experiments/e1/runs/r1",
            None,
            Some(json!({"s": "RUNNING"})),
        ),
        e(
            "registry",
            "bob",
            "registry.versions.create",
            "registeredModels/m1/versions/1",
            None,
            Some(json!({"v": 1})),
        ),
        e(
            "tracking",
            "alice",
            "tracking.runs.update",
            "experiments/e1/runs/r1",
            Some(json!({})),
            Some(json!({"s": "FINISHED"})),
        ),
        e(
            "registry",
            "carol",
            "registry.alias.set",
            "registeredModels/m1",
            Some(json!({"champion": null})),
            Some(json!({"champion": 1})),
        ),
        e(
            "tracking",
            "bob",
            "tracking.runs.create",
            "experiments/e2/runs/r2",
            None,
            Some(json!({})),
        ),
        e(
            "registry",
            "alice",
            "registry.alias.set",
            "registeredModels/m1",
            Some(json!({"champion": 1})),
            Some(json!({"champion": 2})),
        ),
        e(
            "tracking",
            "alice",
            "tracking.experiments.delete",
            "experiments/e2",
            Some(json!({"n": 2})),
            None,
        ),
        e(
            "registry",
            "carol",
            "registry.alias.delete",
            "registeredModels/m1",
            Some(json!({"champion": 2})),
            None,
        ),
        e(
            "tracking",
            "carol",
            "tracking.runs.update",
            "experiments/e1_x/runs/r3",
            None,
            Some(json!({})),
        ),
        e(
            "tracking",
            "alice",
            "tracking.runs.update",
            "experiments/e1/runs/r1",
            None,
            Some(json!({"tag": "x"})),
        ),
    ]
}

/// Appends the entries, a few milliseconds apart in small groups so times both differ and tie.
async fn populate(db: &Db) {
    for (i, e) in entries().into_iter().enumerate() {
        if i % 3 == 0 {
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        let entry = AuditEntry {
            service: e.service,
            actor: e.actor.into(),
            action: e.action,
            resource: e.resource.into(),
            before: e.before,
            after: e.after,
            request_id: format!("req-{i}"),
            trace_id: String::new(),
        };
        let r: steward_common::Result<i64> = with_write_tx!(db, "audit", |tx| {
            audit::append(&tx, entry.clone()).await
        });
        r.unwrap();
    }
}

fn list_req() -> pb::ListAuditEventsRequest {
    pb::ListAuditEventsRequest::default()
}

/// Every page of `req`, following next_page_token with `page_size`.
async fn list_all(
    c: &mut Client,
    mut req: pb::ListAuditEventsRequest,
    page_size: i32,
) -> Vec<pb::AuditEvent> {
    req.page_size = page_size;
    let mut out = Vec::new();
    for _ in 0..1000 {
        let page = c.list_audit_events(req.clone()).await.unwrap().into_inner();
        assert!(page.events.len() <= page_size.max(1) as usize);
        out.extend(page.events);
        if page.next_page_token.is_empty() {
            return out;
        }
        req.page_token = page.next_page_token;
    }
    panic!("paging does not end");
}

fn ms(t: &Option<Timestamp>) -> i64 {
    let t = t.as_ref().expect("time");
    assert_eq!(t.nanos % 1_000_000, 0, "whole milliseconds");
    t.seconds * 1000 + i64::from(t.nanos / 1_000_000)
}

fn ts(ms: i64) -> Timestamp {
    Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

fn keys(v: &[pb::AuditEvent]) -> Vec<(String, i64)> {
    v.iter().map(|e| (e.service.clone(), e.seq)).collect()
}

/// The record as stored and hashed, rebuilt from the wire.
fn record(e: &pb::AuditEvent) -> AuditRecord {
    AuditRecord {
        service: e.service.clone(),
        seq: e.seq,
        time: ms(&e.time),
        actor: e.actor.clone(),
        action: e.action.clone(),
        resource: e.resource.clone(),
        before_json: e.has_before.then(|| e.before_json.clone()),
        after_json: e.has_after.then(|| e.after_json.clone()),
        request_id: e.request_id.clone(),
        trace_id: e.trace_id.clone(),
        prev_hash: e.prev_hash.clone(),
        hash: e.hash.clone(),
    }
}

#[track_caller]
fn assert_bad_field(status: tonic::Status, field: &str) {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let br = status
        .get_details_bad_request()
        .unwrap_or_else(|| panic!("no BadRequest in {status:?}"));
    assert!(
        br.field_violations.iter().any(|v| v.field == field),
        "expected a violation on {field}, got {:?}",
        br.field_violations
    );
}

#[tokio::test]
async fn list_audit_events_filters_and_pages() {
    for t in TestDb::all().await {
        let l = t.label;
        populate(&t.db).await;
        let mut s = serve(t.db.clone(), Arc::new(PageTokenCodec::random())).await;
        let c = &mut s.client;

        let all = list_all(c, list_req(), 1000).await;
        assert_eq!(all.len(), 12, "{l}");
        let order: Vec<_> = all
            .iter()
            .map(|e| (ms(&e.time), e.service.clone(), e.seq))
            .collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "{l}: ordered by (time, service, seq)");
        // Each event is exactly what was hashed: the hash recomputes from the wire fields.
        for e in &all {
            assert_eq!(audit::record_hash(&record(e)), e.hash, "{l}: {e:?}");
        }
        // Absent and empty JSON are told apart.
        let created = all
            .iter()
            .find(|e| e.resource == "registeredModels/m1")
            .unwrap();
        assert!(!created.has_before && created.before_json.is_empty(), "{l}");
        assert!(created.has_after && created.after_json == "{}", "{l}");
        let updated = all.iter().find(|e| e.request_id == "req-4").unwrap();
        assert!(updated.has_before && updated.before_json == "{}", "{l}");

        let want = |f: &dyn Fn(&pb::AuditEvent) -> bool| -> Vec<(String, i64)> {
            keys(&all.iter().filter(|e| f(e)).cloned().collect::<Vec<_>>())
        };
        let t0 = ms(&all[0].time);
        let mid = ms(&all[5].time);
        let cases: Vec<(pb::ListAuditEventsRequest, Vec<(String, i64)>)> = vec![
            (
                pb::ListAuditEventsRequest {
                    service: "registry".into(),
                    ..list_req()
                },
                want(&|e| e.service == "registry"),
            ),
            (
                pb::ListAuditEventsRequest {
                    resource: "experiments/e1/runs/r1".into(),
                    ..list_req()
                },
                want(&|e| e.resource == "experiments/e1/runs/r1"),
            ),
            (
                pb::ListAuditEventsRequest {
                    resource: "experiments/e1/*".into(),
                    ..list_req()
                },
                want(&|e| e.resource.starts_with("experiments/e1/")),
            ),
            (
                // `_` is literal: e1_x is not under e1/ and e1x would not match e1_x.
                pb::ListAuditEventsRequest {
                    resource: "experiments/e1_x/*".into(),
                    ..list_req()
                },
                vec![("tracking".to_string(), 6)],
            ),
            (
                pb::ListAuditEventsRequest {
                    actor: "carol".into(),
                    ..list_req()
                },
                want(&|e| e.actor == "carol"),
            ),
            (
                pb::ListAuditEventsRequest {
                    action: "registry.alias.*".into(),
                    ..list_req()
                },
                want(&|e| e.action.starts_with("registry.alias.")),
            ),
            (
                pb::ListAuditEventsRequest {
                    action: "registry.alias.set".into(),
                    actor: "alice".into(),
                    ..list_req()
                },
                vec![("registry".to_string(), 4)],
            ),
            (
                // Inclusive start, exclusive end, at millisecond precision.
                pb::ListAuditEventsRequest {
                    start_time: Some(ts(t0)),
                    end_time: Some(ts(mid)),
                    ..list_req()
                },
                want(&|e| (t0..mid).contains(&ms(&e.time))),
            ),
            (
                // A start a nanosecond after a record's millisecond excludes that record.
                pb::ListAuditEventsRequest {
                    start_time: Some(Timestamp {
                        nanos: ts(mid).nanos + 1,
                        ..ts(mid)
                    }),
                    ..list_req()
                },
                want(&|e| ms(&e.time) > mid),
            ),
            (
                pb::ListAuditEventsRequest {
                    service: "tracking".into(),
                    action: "tracking.runs.*".into(),
                    resource: "experiments/e1/*".into(),
                    start_time: Some(ts(t0)),
                    end_time: Some(ts(ms(&all[11].time) + 1)),
                    ..list_req()
                },
                want(&|e| {
                    e.service == "tracking"
                        && e.action.starts_with("tracking.runs.")
                        && e.resource.starts_with("experiments/e1/")
                }),
            ),
        ];
        for (req, expected) in cases {
            assert!(!expected.is_empty(), "{l}: {req:?} selects something");
            for page_size in [1, 2, 5, 1000] {
                let got = list_all(c, req.clone(), page_size).await;
                assert_eq!(keys(&got), expected, "{l}: {req:?} in pages of {page_size}");
            }
        }
        // The time filter really splits the data.
        assert!(
            want(&|e| (t0..mid).contains(&ms(&e.time))).len() < 12,
            "{l}"
        );
        // page_size 0 means the default (100): everything here, in one page.
        let page = c.list_audit_events(list_req()).await.unwrap().into_inner();
        assert_eq!(
            (page.events.len(), page.next_page_token.as_str()),
            (12, ""),
            "{l}"
        );
        t.cleanup().await;
    }
}

#[tokio::test]
async fn list_audit_events_rejects_bad_input_naming_the_field() {
    for t in TestDb::all().await {
        populate(&t.db).await;
        let mut s = serve(t.db.clone(), Arc::new(PageTokenCodec::random())).await;
        let client = s.client.clone();
        let call = |req: pb::ListAuditEventsRequest| {
            let mut c = client.clone();
            async move { c.list_audit_events(req).await.unwrap_err() }
        };
        let c = &mut s.client;
        assert_bad_field(
            call(pb::ListAuditEventsRequest {
                page_size: -1,
                ..list_req()
            })
            .await,
            "page_size",
        );
        assert_bad_field(
            call(pb::ListAuditEventsRequest {
                page_size: 1001,
                ..list_req()
            })
            .await,
            "page_size",
        );
        assert_bad_field(
            call(pb::ListAuditEventsRequest {
                page_token: "not-a-token".into(),
                ..list_req()
            })
            .await,
            "page_token",
        );
        assert_bad_field(
            call(pb::ListAuditEventsRequest {
                start_time: Some(ts(2_000)),
                end_time: Some(ts(1_000)),
                ..list_req()
            })
            .await,
            "start_time",
        );
        assert_bad_field(
            call(pb::ListAuditEventsRequest {
                end_time: Some(Timestamp {
                    seconds: 1,
                    nanos: -5,
                }),
                ..list_req()
            })
            .await,
            "end_time",
        );
        // A token is bound to its query and to the server's key.
        let first = c
            .list_audit_events(pb::ListAuditEventsRequest {
                service: "tracking".into(),
                page_size: 2,
                ..list_req()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!first.next_page_token.is_empty());
        assert_bad_field(
            call(pb::ListAuditEventsRequest {
                service: "registry".into(),
                page_size: 2,
                page_token: first.next_page_token.clone(),
                ..list_req()
            })
            .await,
            "page_token",
        );
        let mut other = serve(t.db.clone(), Arc::new(PageTokenCodec::random())).await;
        assert_bad_field(
            other
                .client
                .list_audit_events(pb::ListAuditEventsRequest {
                    service: "tracking".into(),
                    page_size: 2,
                    page_token: first.next_page_token,
                    ..list_req()
                })
                .await
                .unwrap_err(),
            "page_token",
        );
        t.cleanup().await;
    }
}

#[tokio::test]
async fn verify_audit_chain_reports_breaks_and_checks_anchors() {
    for t in TestDb::all().await {
        let l = t.label;
        populate(&t.db).await;
        let mut s = serve(t.db.clone(), Arc::new(PageTokenCodec::random())).await;
        let c = &mut s.client;
        let verify = |service: &str, anchors: Vec<pb::ChainHead>| pb::VerifyAuditChainRequest {
            service: service.into(),
            anchors,
        };

        let heads = c
            .get_audit_chain_heads(pb::GetAuditChainHeadsRequest {})
            .await
            .unwrap()
            .into_inner()
            .heads;
        let summary: Vec<_> = heads.iter().map(|h| (h.service.as_str(), h.seq)).collect();
        assert_eq!(summary, vec![("registry", 5), ("tracking", 7)], "{l}");
        assert!(heads.iter().all(|h| h.hash.len() == 64), "{l}");

        let ok = c
            .verify_audit_chain(verify("", heads.clone()))
            .await
            .unwrap()
            .into_inner();
        assert!(ok.ok, "{l}: {ok:?}");
        assert_eq!(ok.chains.len(), 2, "{l}");
        for ch in &ok.chains {
            assert!(
                ch.ok && ch.first_broken_seq == 0 && ch.problem.is_empty(),
                "{l}: {ch:?}"
            );
            let head = heads.iter().find(|h| h.service == ch.service).unwrap();
            assert_eq!(ch.records, head.seq, "{l}");
            assert_eq!(ch.head.as_ref(), Some(head), "{l}");
        }

        // A field edited in the registry chain: reported at that record, the other chain ok.
        t.db.conn()
            .execute_unprepared(
                "UPDATE audit_records SET resource = 'registeredModels/m2' \
                 WHERE service = 'registry' AND seq = 3",
            )
            .await
            .unwrap();
        let r = c
            .verify_audit_chain(verify("", vec![]))
            .await
            .unwrap()
            .into_inner();
        assert!(!r.ok, "{l}");
        let reg = r.chains.iter().find(|c| c.service == "registry").unwrap();
        assert_eq!(
            (
                reg.ok,
                reg.first_broken_seq,
                reg.problem.as_str(),
                reg.records
            ),
            (false, 3, "hash mismatch", 2),
            "{l}"
        );
        assert!(
            r.chains
                .iter()
                .find(|c| c.service == "tracking")
                .unwrap()
                .ok,
            "{l}"
        );
        let one = c
            .verify_audit_chain(verify("registry", vec![]))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(one.chains.len(), 1, "{l}");
        assert_eq!(one.chains[0].first_broken_seq, 3, "{l}");

        // The tracking tail truncated and its head row rewritten to match: only the anchor
        // taken before tells, at the anchored position.
        let conn = t.db.conn();
        conn.execute_unprepared(
            "DELETE FROM audit_records WHERE service = 'tracking' AND seq >= 6",
        )
        .await
        .unwrap();
        conn.execute_unprepared(
            "UPDATE audit_chain_heads SET seq = 5, hash = (SELECT hash FROM audit_records \
             WHERE service = 'tracking' AND seq = 5) WHERE service = 'tracking'",
        )
        .await
        .unwrap();
        let r = c
            .verify_audit_chain(verify("tracking", vec![]))
            .await
            .unwrap()
            .into_inner();
        assert!(
            r.ok,
            "{l}: a consistent truncation is invisible without anchors"
        );
        let r = c
            .verify_audit_chain(verify("tracking", heads.clone()))
            .await
            .unwrap()
            .into_inner();
        let tr = &r.chains[0];
        assert_eq!(
            (r.ok, tr.first_broken_seq, tr.problem.as_str(), tr.records),
            (false, 7, "anchor not found", 5),
            "{l}"
        );
        // A rewritten anchor hash is reported as differing.
        let mut wrong = heads
            .iter()
            .find(|h| h.service == "tracking")
            .unwrap()
            .clone();
        wrong.seq = 4;
        let r = c
            .verify_audit_chain(verify("tracking", vec![wrong.clone()]))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (r.chains[0].first_broken_seq, r.chains[0].problem.as_str()),
            (4, "anchor hash differs"),
            "{l}"
        );

        // Bad anchors and unknown chains.
        let mut bad = wrong.clone();
        bad.hash = "xyz".into();
        assert_bad_field(
            c.verify_audit_chain(verify("", vec![wrong.clone(), bad]))
                .await
                .unwrap_err(),
            "anchors[1].hash",
        );
        let mut upper_ok = heads[0].clone();
        upper_ok.hash = upper_ok.hash.to_uppercase();
        c.verify_audit_chain(verify("", vec![upper_ok]))
            .await
            .unwrap();
        let mut neg = wrong.clone();
        neg.seq = -1;
        assert_bad_field(
            c.verify_audit_chain(verify("", vec![neg]))
                .await
                .unwrap_err(),
            "anchors[0].seq",
        );
        let missing = c
            .verify_audit_chain(verify("nosuchservice", vec![]))
            .await
            .unwrap_err();
        assert_eq!(missing.code(), Code::NotFound, "{l}: {missing:?}");
        t.cleanup().await;
    }
}
