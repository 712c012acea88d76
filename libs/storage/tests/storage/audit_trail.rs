//! The audit trail's read side against every backend: tampering done directly in SQL is
//! detected at the right position, and the cross-chain query filters and pages correctly.

use sea_orm::ConnectionTrait;
use steward_storage::audit::{
    self, AuditCursor, AuditEntry, AuditQuery, AuditRecord, ChainHead, Problem,
};
use steward_storage::testing::TestDb;
use steward_storage::{Db, with_write_tx};

async fn append(db: &Db, e: AuditEntry) -> i64 {
    let r: steward_common::Result<i64> =
        with_write_tx!(db, "audit", |tx| { audit::append(&tx, e.clone()).await });
    r.unwrap()
}

/// `n` records on `service`'s chain, one write transaction each.
async fn chain(db: &Db, service: &'static str, n: usize) {
    for i in 1..=n {
        append(
            db,
            AuditEntry {
                service,
                actor: "alice".into(),
                action: "test.things.update",
                resource: format!("things/{i}"),
                before: (i > 1).then(|| serde_json::json!({"v": i - 1})),
                after: Some(serde_json::json!({"v": i})),
                request_id: format!("req-{i}"),
                trace_id: String::new(),
            },
        )
        .await;
    }
}

async fn sql(db: &Db, stmt: &str) {
    db.conn()
        .execute_unprepared(stmt)
        .await
        .unwrap_or_else(|e| panic!("{stmt}: {e}"));
}

fn broken(r: &audit::ChainReport) -> Option<(i64, Problem)> {
    r.first_broken_seq.zip(r.problem)
}

#[tokio::test]
async fn audit_tampering_is_detected_at_the_right_seq() {
    for t in TestDb::all().await {
        let (db, l) = (&t.db, t.label);
        for s in ["intact", "edit", "delete", "swap", "trunc", "trunc_fixed"] {
            chain(db, s, 10).await;
        }
        let c = db.conn();
        let anchors = audit::heads(c).await.unwrap();
        assert_eq!(anchors.len(), 6, "{l}");
        assert!(anchors.iter().all(|h| h.seq == 10), "{l}: {anchors:?}");
        for r in audit::verify_all(c, &anchors).await.unwrap() {
            assert!(r.ok(), "{l}: {r:?}");
            assert_eq!(r.records, 10, "{l}");
            assert_eq!(r.head.as_ref().map(|h| h.seq), Some(10), "{l}");
        }

        // An edited field: the record's own hash no longer matches.
        sql(
            db,
            "UPDATE audit_records SET actor = 'mallory' WHERE service = 'edit' AND seq = 4",
        )
        .await;
        let r = audit::verify_chain(c, "edit").await.unwrap();
        assert_eq!(broken(&r), Some((4, Problem::HashMismatch)), "{l}");
        assert_eq!(r.records, 3, "{l}");

        // A deleted record: the sequence skips it.
        sql(
            db,
            "DELETE FROM audit_records WHERE service = 'delete' AND seq = 6",
        )
        .await;
        let r = audit::verify_chain(c, "delete").await.unwrap();
        assert_eq!(broken(&r), Some((6, Problem::MissingRecord)), "{l}");
        assert_eq!(r.records, 5, "{l}");

        // Records 3 and 7 swapped (their seq values exchanged): seq is hashed, so the record
        // now at 3 fails its own hash.
        sql(
            db,
            "UPDATE audit_records SET seq = -3 WHERE service = 'swap' AND seq = 3",
        )
        .await;
        sql(
            db,
            "UPDATE audit_records SET seq = 3 WHERE service = 'swap' AND seq = 7",
        )
        .await;
        sql(
            db,
            "UPDATE audit_records SET seq = 7 WHERE service = 'swap' AND seq = -3",
        )
        .await;
        let r = audit::verify_chain(c, "swap").await.unwrap();
        assert_eq!(broken(&r), Some((3, Problem::HashMismatch)), "{l}");

        // The tail (9, 10) deleted without touching the head: the head check catches it at
        // the first missing record.
        sql(
            db,
            "DELETE FROM audit_records WHERE service = 'trunc' AND seq >= 9",
        )
        .await;
        let r = audit::verify_chain(c, "trunc").await.unwrap();
        assert_eq!(broken(&r), Some((9, Problem::HeadMismatch)), "{l}");
        assert_eq!(r.records, 8, "{l}");
        assert_eq!(r.head.as_ref().map(|h| h.seq), Some(10), "{l}");

        // The tail deleted and the head rewritten to record 8: what is left is a perfectly
        // valid chain of 8, so nothing inside the database can tell...
        sql(
            db,
            "DELETE FROM audit_records WHERE service = 'trunc_fixed' AND seq >= 9",
        )
        .await;
        sql(
            db,
            "UPDATE audit_chain_heads SET seq = 8, hash = (SELECT hash FROM audit_records \
             WHERE service = 'trunc_fixed' AND seq = 8) WHERE service = 'trunc_fixed'",
        )
        .await;
        let r = audit::verify_chain(c, "trunc_fixed").await.unwrap();
        assert!(r.ok(), "{l}: undetectable without an anchor: {r:?}");
        assert_eq!(r.records, 8, "{l}");
        // ...but the anchor taken before (seq 10) is. The break is reported at seq 10, the
        // anchor's own position, not at 9 (the first missing record): the anchor vouches for
        // record 10 only, and reporting its seq points the operator at the anchor that failed.
        let r = audit::verify_chain_with(c, "trunc_fixed", &anchors)
            .await
            .unwrap();
        assert_eq!(broken(&r), Some((10, Problem::AnchorNotFound)), "{l}");
        assert_eq!(r.records, 8, "{l}");

        // Every chain at once: only the tampered ones fail, each at its own position, and a
        // chain deleted entirely is reported when anchored.
        sql(db, "DELETE FROM audit_records WHERE service = 'intact'").await;
        sql(db, "DELETE FROM audit_chain_heads WHERE service = 'intact'").await;
        assert!(
            !audit::list_services(c)
                .await
                .unwrap()
                .contains(&"intact".to_string()),
            "{l}"
        );
        let all = audit::verify_all(c, &anchors).await.unwrap();
        let got: Vec<_> = all
            .iter()
            .map(|r| (r.service.as_str(), broken(r)))
            .collect();
        assert_eq!(
            got,
            vec![
                ("delete", Some((6, Problem::MissingRecord))),
                ("edit", Some((4, Problem::HashMismatch))),
                ("intact", Some((10, Problem::AnchorNotFound))),
                ("swap", Some((3, Problem::HashMismatch))),
                ("trunc", Some((9, Problem::HeadMismatch))),
                ("trunc_fixed", Some((10, Problem::AnchorNotFound))),
            ],
            "{l}"
        );
        t.cleanup().await;
    }
}

#[tokio::test]
async fn audit_chain_rewritten_consistently_is_caught_by_anchors_and_extra_records_by_the_head() {
    for t in TestDb::all().await {
        let (db, l) = (&t.db, t.label);
        chain(db, "rewrite", 6).await;
        chain(db, "extra", 3).await;
        let c = db.conn();
        let anchors = audit::heads(c).await.unwrap();

        // Record 4 edited and every hash from 4 on recomputed, head included: the chain is
        // internally consistent, only the anchor still disagrees.
        let mut recs = audit::list(c, "rewrite", None, 0, 100).await.unwrap();
        let mut prev = recs[2].hash.clone();
        for r in recs.iter_mut().skip(3) {
            if r.seq == 4 {
                r.actor = "mallory".into();
            }
            r.prev_hash = prev.clone();
            r.hash = audit::record_hash(r);
            prev.clone_from(&r.hash);
            sql(
                db,
                &format!(
                    "UPDATE audit_records SET actor = '{}', prev_hash = '{}', hash = '{}' \
                     WHERE service = 'rewrite' AND seq = {}",
                    r.actor, r.prev_hash, r.hash, r.seq
                ),
            )
            .await;
        }
        sql(
            db,
            &format!("UPDATE audit_chain_heads SET hash = '{prev}' WHERE service = 'rewrite'"),
        )
        .await;
        assert!(audit::verify_chain(c, "rewrite").await.unwrap().ok(), "{l}");
        let r = audit::verify_chain_with(c, "rewrite", &anchors)
            .await
            .unwrap();
        assert_eq!(broken(&r), Some((6, Problem::AnchorHashDiffers)), "{l}");

        // A well-formed record inserted behind the head's back.
        let last = audit::list(c, "extra", None, 2, 1).await.unwrap().remove(0);
        let mut forged = AuditRecord {
            seq: 4,
            actor: "mallory".into(),
            before_json: None,
            after_json: None,
            request_id: String::new(),
            trace_id: String::new(),
            prev_hash: last.hash.clone(),
            ..last
        };
        forged.hash = audit::record_hash(&forged);
        sql(
            db,
            &format!(
                "INSERT INTO audit_records (service, seq, time, actor, action, resource, \
                 before_json, after_json, request_id, trace_id, prev_hash, hash) VALUES \
                 ('extra', 4, {}, 'mallory', '{}', '{}', NULL, NULL, '', '', '{}', '{}')",
                forged.time, forged.action, forged.resource, forged.prev_hash, forged.hash
            ),
        )
        .await;
        let r = audit::verify_chain(c, "extra").await.unwrap();
        assert_eq!(broken(&r), Some((4, Problem::HeadMismatch)), "{l}");
        t.cleanup().await;
    }
}

/// What `query` must return, computed in memory.
fn matches(r: &AuditRecord, q: &AuditQuery) -> bool {
    let prefix_or_exact = |v: &str, f: &str, wildcard: &str| match f.strip_suffix(wildcard) {
        Some(stem) => v.starts_with(&format!("{stem}{}", wildcard.trim_end_matches('*'))),
        None => v == f,
    };
    q.service.as_ref().is_none_or(|s| r.service == *s)
        && q.resource
            .as_ref()
            .is_none_or(|f| prefix_or_exact(&r.resource, f, "/*"))
        && q.actor.as_ref().is_none_or(|a| r.actor == *a)
        && q.action
            .as_ref()
            .is_none_or(|f| prefix_or_exact(&r.action, f, "*"))
        && q.start_ms.is_none_or(|t| r.time >= t)
        && q.end_ms.is_none_or(|t| r.time < t)
}

async fn page_all(c: &impl ConnectionTrait, q: &AuditQuery, page: u64) -> Vec<AuditRecord> {
    let mut out: Vec<AuditRecord> = Vec::new();
    let mut cursor: Option<AuditCursor> = None;
    loop {
        let got = audit::query(c, q, cursor.as_ref(), page).await.unwrap();
        assert!(got.len() as u64 <= page);
        cursor = got.last().map(AuditCursor::after);
        let done = (got.len() as u64) < page;
        out.extend(got);
        if done {
            return out;
        }
    }
}

#[tokio::test]
async fn audit_query_filters_and_pages_across_chains() {
    const ACTIONS: [&str; 4] = [
        "tracking.runs.create",
        "tracking.runs.update",
        "tracking.experiments.create",
        "registry.alias.set",
    ];
    let resources = [
        "experiments/e1",
        "experiments/e1/runs/r1",
        "experiments/e1/runs/r2",
        "experiments/e_1/runs/x",
        "experiments/eX1/runs/y",
        "experiments/e%/runs/z",
        "registeredModels/m/versions/1",
    ];
    for t in TestDb::all().await {
        let (db, l) = (&t.db, t.label);
        for i in 0..40usize {
            append(
                db,
                AuditEntry {
                    service: if i % 3 == 0 { "beta" } else { "alpha" },
                    actor: ["alice", "bob"][i % 2].into(),
                    action: ACTIONS[i % 4],
                    resource: resources[i % resources.len()].into(),
                    before: None,
                    after: Some(serde_json::json!({"i": i})),
                    request_id: String::new(),
                    trace_id: String::new(),
                },
            )
            .await;
        }
        // Deterministic times with many ties across and within chains, so the order and the
        // cursor's tie-breaks on (service, seq) are exercised.
        sql(db, "UPDATE audit_records SET time = 1000 + (seq % 5) * 10").await;
        let c = db.conn();
        let mut all = audit::query(c, &AuditQuery::default(), None, 1000)
            .await
            .unwrap();
        assert_eq!(all.len(), 40, "{l}");
        let mut sorted = all.clone();
        sorted.sort_by(|a, b| (a.time, &a.service, a.seq).cmp(&(b.time, &b.service, b.seq)));
        assert_eq!(all, sorted, "{l}: ordered by (time, service, seq)");
        all.sort_by(|a, b| (a.time, &a.service, a.seq).cmp(&(b.time, &b.service, b.seq)));

        let s = |v: &str| Some(v.to_string());
        let queries = [
            AuditQuery::default(),
            AuditQuery {
                service: s("beta"),
                ..Default::default()
            },
            AuditQuery {
                resource: s("experiments/e1"),
                ..Default::default()
            },
            AuditQuery {
                resource: s("experiments/e1/*"),
                ..Default::default()
            },
            // `_` and `%` in the filter are literal characters, not LIKE wildcards.
            AuditQuery {
                resource: s("experiments/e_1/*"),
                ..Default::default()
            },
            AuditQuery {
                resource: s("experiments/e%/*"),
                ..Default::default()
            },
            AuditQuery {
                actor: s("bob"),
                ..Default::default()
            },
            AuditQuery {
                action: s("tracking.runs.*"),
                ..Default::default()
            },
            AuditQuery {
                action: s("registry.alias.set"),
                service: s("alpha"),
                ..Default::default()
            },
            AuditQuery {
                start_ms: Some(1010),
                end_ms: Some(1030),
                ..Default::default()
            },
            AuditQuery {
                service: s("alpha"),
                resource: s("experiments/e1/*"),
                actor: s("alice"),
                action: s("tracking.*"),
                start_ms: Some(1000),
                end_ms: Some(1040),
            },
            AuditQuery {
                service: s("gamma"),
                ..Default::default()
            },
        ];
        for q in &queries {
            let want: Vec<AuditRecord> = all.iter().filter(|r| matches(r, q)).cloned().collect();
            for page in [1, 3, 7, 1000] {
                let got = page_all(c, q, page).await;
                assert_eq!(
                    got.iter().map(|r| (&r.service, r.seq)).collect::<Vec<_>>(),
                    want.iter().map(|r| (&r.service, r.seq)).collect::<Vec<_>>(),
                    "{l}: {q:?} in pages of {page}"
                );
            }
        }
        // The filters are not vacuous on this data.
        let count = |q: &AuditQuery| all.iter().filter(|r| matches(r, q)).count();
        assert_eq!(count(&queries[4]), 6, "{l}: e_1 has its own records only");
        assert!(count(&queries[3]) > count(&queries[2]), "{l}");
        assert!(count(&queries[9]) > 0 && count(&queries[9]) < 40, "{l}");

        // Chains and heads.
        assert_eq!(
            audit::list_services(c).await.unwrap(),
            vec!["alpha".to_string(), "beta".to_string()],
            "{l}"
        );
        let heads = audit::heads(c).await.unwrap();
        let last = |svc: &str| {
            all.iter()
                .filter(|r| r.service == svc)
                .max_by_key(|r| r.seq)
        };
        let want: Vec<ChainHead> = ["alpha", "beta"]
            .iter()
            .map(|svc| {
                let r = last(svc).unwrap();
                ChainHead {
                    service: r.service.clone(),
                    seq: r.seq,
                    hash: r.hash.clone(),
                }
            })
            .collect();
        assert_eq!(heads, want, "{l}");
        t.cleanup().await;
    }
}
