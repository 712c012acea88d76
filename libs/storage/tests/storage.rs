//! The storage helpers against every backend: SQLite always, Postgres when
//! `STEWARD_TEST_DATABASE_URL` is set.

#[path = "storage/audit_trail.rs"]
mod audit_trail;

use std::sync::Arc;
use std::time::Duration;

use steward_events::{EventBus, InProcessBus, OutboxStore, Relay, RelayOptions};
use steward_proto::events::EventEnvelope;
use steward_storage::audit::{self, AuditEntry};
use steward_storage::idempotency::{self, IdemKey};
use steward_storage::outbox::{self, SqlOutbox};
use steward_storage::testing::TestDb;
use steward_storage::{Db, DbOptions, migrate, with_write_tx};

#[tokio::test]
async fn migrations_are_safe_when_replicas_start_together() {
    for t in TestDb::all_with(false).await {
        let err = migrate::ensure_current(&t.db).await.unwrap_err();
        assert_eq!(err.reason, "SCHEMA_OUT_OF_DATE", "{}", t.label);
        assert!(err.message.contains("steward migrate"));
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let url = t.url.clone();
            tasks.push(tokio::spawn(async move {
                let db = Db::connect(
                    &url,
                    &DbOptions {
                        max_connections: 2,
                        connect_timeout: Duration::from_secs(10),
                    },
                )
                .await
                .unwrap();
                let r = migrate::run(&db).await;
                db.close().await;
                r
            }));
        }
        for task in tasks {
            task.await
                .unwrap()
                .unwrap_or_else(|e| panic!("{}: {e}", t.label));
        }
        assert_eq!(
            migrate::applied(&t.db).await.unwrap(),
            vec![
                "m0001_init".to_string(),
                "m0002_registry".to_string(),
                "m0003_deployment".to_string(),
                "m0004_monitoring".to_string(),
                "m0005_datasets".to_string(),
                "m0006_auth".to_string()
            ],
            "{}",
            t.label
        );
        migrate::ensure_current(&t.db).await.unwrap();
        // Running again is a no-op.
        migrate::run(&t.db).await.unwrap();
        t.cleanup().await;
    }
}

#[tokio::test]
async fn idempotency_records_replay_and_refuse_reuse() {
    for t in TestDb::all().await {
        let key = IdemKey::new("test", "Create", "req-1", b"body-a")
            .unwrap()
            .unwrap();
        let r: steward_common::Result<Option<Vec<u8>>> = with_write_tx!(t.db, "idem", |tx| {
            let found = idempotency::lookup(&tx, &key).await?;
            idempotency::record(&tx, &key, b"response-1").await?;
            Ok(found)
        });
        assert_eq!(r.unwrap(), None, "{}", t.label);
        let r: steward_common::Result<Option<Vec<u8>>> =
            with_write_tx!(t.db, "idem", |tx| { idempotency::lookup(&tx, &key).await });
        assert_eq!(r.unwrap().as_deref(), Some(&b"response-1"[..]));
        let other = IdemKey::new("test", "Create", "req-1", b"body-b")
            .unwrap()
            .unwrap();
        let r: steward_common::Result<Option<Vec<u8>>> = with_write_tx!(t.db, "idem", |tx| {
            idempotency::lookup(&tx, &other).await
        });
        assert_eq!(r.unwrap_err().reason, "REQUEST_ID_REUSED");
        // A rolled-back transaction leaves no record.
        let k2 = IdemKey::new("test", "Create", "req-2", b"x")
            .unwrap()
            .unwrap();
        let r: steward_common::Result<()> = with_write_tx!(t.db, "idem", |tx| {
            idempotency::record(&tx, &k2, b"r").await?;
            Err(steward_common::Error::invalid_field("x", "boom"))
        });
        assert!(r.is_err());
        let r: steward_common::Result<Option<Vec<u8>>> =
            with_write_tx!(t.db, "idem", |tx| { idempotency::lookup(&tx, &k2).await });
        assert_eq!(r.unwrap(), None, "{}: rollback keeps nothing", t.label);
        assert!(IdemKey::new("test", "Create", "", b"x").unwrap().is_none());
        assert_eq!(
            IdemKey::new("test", "Create", "bad id", b"x")
                .unwrap_err()
                .violations[0]
                .field,
            "request_id"
        );
        t.cleanup().await;
    }
}

fn entry(i: usize) -> AuditEntry {
    AuditEntry {
        service: "test",
        actor: format!("user-{}", i % 3),
        action: "test.things.create",
        resource: format!("things/{i}"),
        before: None,
        after: Some(serde_json::json!({"i": i})),
        request_id: String::new(),
        trace_id: String::new(),
    }
}

#[tokio::test]
async fn audit_chain_stays_linked_under_concurrent_writers() {
    for t in TestDb::all().await {
        let mut tasks = Vec::new();
        for w in 0..4 {
            let db = t.db.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..15 {
                    let e = entry(w * 100 + i);
                    let r: steward_common::Result<i64> =
                        with_write_tx!(db, "audit", |tx| { audit::append(&tx, e.clone()).await });
                    r.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let recs = audit::list(t.db.conn(), "test", None, 0, 1000)
            .await
            .unwrap();
        assert_eq!(recs.len(), 60, "{}", t.label);
        assert!(
            recs.iter().enumerate().all(|(i, r)| r.seq == i as i64 + 1),
            "{}: contiguous",
            t.label
        );
        let report = audit::verify_chain(t.db.conn(), "test").await.unwrap();
        assert_eq!(report.first_broken_seq, None, "{}", t.label);
        // Deleting the last record breaks the link to the head.
        use sea_orm::ConnectionTrait;
        t.db.conn()
            .execute_unprepared("DELETE FROM audit_records WHERE service = 'test' AND seq = 60")
            .await
            .unwrap();
        assert_eq!(
            audit::verify_chain(t.db.conn(), "test")
                .await
                .unwrap()
                .first_broken_seq,
            Some(60),
            "{}",
            t.label
        );
        // An audit append rolled back with its transaction leaves no record.
        let r: steward_common::Result<()> = with_write_tx!(t.db, "audit", |tx| {
            audit::append(&tx, entry(999)).await?;
            Err(steward_common::Error::invalid_field("x", "boom"))
        });
        assert!(r.is_err());
        assert_eq!(
            audit::list(t.db.conn(), "test", Some("things/999"), 0, 10)
                .await
                .unwrap()
                .len(),
            0
        );
        t.cleanup().await;
    }
}

fn envelope(i: usize) -> EventEnvelope {
    EventEnvelope {
        event_id: format!("{i:032x}"),
        r#type: "test.thing".into(),
        source: format!("things/{i}"),
        ..Default::default()
    }
}

/// Services sharing one database (`steward up`) each wake only their own relay: a commit
/// of one service's events must not spend another's wake-up (which would leave the first
/// waiting for its relay's poll).
#[tokio::test]
async fn a_commit_wakes_the_relay_of_the_service_it_wrote_for() {
    for t in TestDb::all().await {
        let (mine, theirs) = (t.db.outbox_notify("mine"), t.db.outbox_notify("theirs"));
        let (woken, not_woken) = (mine.notified(), theirs.notified());
        let r: steward_common::Result<()> = with_write_tx!(t.db, "ob", |tx| {
            outbox::enqueue(&tx, "mine", &envelope(1)).await?;
            outbox::enqueue_many(&tx, "mine", &[envelope(2), envelope(3)]).await?;
            Ok(())
        });
        r.unwrap();
        // The other service first: with one notification shared by all, it would take the
        // wake-up meant for "mine".
        assert!(
            tokio::time::timeout(Duration::from_millis(100), not_woken)
                .await
                .is_err(),
            "{}: another service's relay was woken",
            t.label
        );
        tokio::time::timeout(Duration::from_secs(5), woken)
            .await
            .unwrap_or_else(|_| panic!("{}: the relay of the service was not woken", t.label));
        // A rolled-back transaction wakes nobody.
        let again = t.db.outbox_notify("mine");
        let not_again = again.notified();
        let r: steward_common::Result<()> = with_write_tx!(t.db, "ob", |tx| {
            outbox::enqueue(&tx, "mine", &envelope(4)).await?;
            Err(steward_common::Error::invalid_field("x", "boom"))
        });
        assert!(r.is_err());
        assert!(
            tokio::time::timeout(Duration::from_millis(100), not_again)
                .await
                .is_err(),
            "{}: a rolled-back write woke the relay",
            t.label
        );
        t.cleanup().await;
    }
}

#[tokio::test]
async fn outbox_commits_with_the_change_and_the_relay_drains_it() {
    for t in TestDb::all().await {
        let ob = SqlOutbox::new(t.db.clone(), "test");
        let r: steward_common::Result<()> = with_write_tx!(t.db, "ob", |tx| {
            for i in 0..5 {
                outbox::enqueue(&tx, "test", &envelope(i)).await?;
            }
            Ok(())
        });
        r.unwrap();
        let r: steward_common::Result<()> = with_write_tx!(t.db, "ob", |tx| {
            outbox::enqueue(&tx, "test", &envelope(99)).await?;
            Err(steward_common::Error::invalid_field("x", "boom"))
        });
        assert!(r.is_err());
        let pending = ob.fetch_pending(100).await.unwrap();
        let ids: Vec<String> = pending
            .iter()
            .map(|r| r.envelope.event_id.clone())
            .collect();
        assert_eq!(
            ids,
            (0..5).map(|i| format!("{i:032x}")).collect::<Vec<_>>(),
            "{}: in order, rolled-back event absent",
            t.label
        );
        // Other services' rows are not this outbox's.
        let other = SqlOutbox::new(t.db.clone(), "other");
        assert!(other.fetch_pending(10).await.unwrap().is_empty());

        let bus = Arc::new(InProcessBus::new());
        let mut sub = bus.subscribe("g", "c").await.unwrap();
        let relay = Relay::spawn(
            Arc::new(ob.clone()),
            bus.clone() as Arc<dyn EventBus>,
            RelayOptions::default(),
        );
        relay.flush().await.unwrap();
        for i in 0..5 {
            let d = tokio::time::timeout(Duration::from_secs(5), sub.next())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(d.envelope.event_id, format!("{i:032x}"));
            d.ack().await.unwrap();
        }
        assert_eq!(
            ob.pending_count().await.unwrap(),
            0,
            "{}: published rows are removed",
            t.label
        );
        relay.shutdown().await.unwrap();
        t.cleanup().await;
    }
}
