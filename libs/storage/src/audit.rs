//! The tamper-evident audit log: one hash chain per service.
//!
//! Each record's hash is `sha256(prev_hash || canonical JSON of the record)`; the chain head row
//! of the service is locked (`SELECT ... FOR UPDATE` on Postgres, the write gate on SQLite) while
//! a record is appended, so appends of one service are serialized and replicas of different
//! services never contend.
//!
//! Read side: [`query`] filters records across chains with a keyset cursor, [`heads`] and
//! [`list_services`] list the chains, [`verify_chain`] / [`verify_chain_with`] / [`verify_all`]
//! recompute every hash and report the first break (and what it was), and [`ChainCheck`] is the
//! same check as a pure function over records, for exports verified offline.

mod check;
mod query;
mod verify;

pub use check::{ChainCheck, ChainHead, ChainReport, Problem};
pub use query::{AuditCursor, AuditQuery, heads, list_services, query};
pub use verify::{verify_all, verify_chain, verify_chain_with};

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Order, Query};
use sea_orm::{ConnectionTrait, QueryResult};
use serde::Serialize;
use sha2::{Digest, Sha256};
use steward_common::Error;

use crate::db::{Backend, WriteTx, db_err};
use crate::schema::{AuditChainHeads as H, AuditRecords as A};

/// Hash of the (empty) chain before the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What one audited mutation records.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// Service whose chain gets the record.
    pub service: &'static str,
    /// Who did it.
    pub actor: String,
    /// What was done, e.g. `tracking.runs.create`.
    pub action: &'static str,
    /// Resource name, e.g. `experiments/{e}/runs/{r}`.
    pub resource: String,
    /// State before (None for creates).
    pub before: Option<serde_json::Value>,
    /// State after (None for hard deletes).
    pub after: Option<serde_json::Value>,
    /// The request's `request_id` (may be empty).
    pub request_id: String,
    /// Trace id of the request (may be empty).
    pub trace_id: String,
}

/// A stored audit record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    /// Service chain.
    pub service: String,
    /// Position in the chain, from 1.
    pub seq: i64,
    /// Commit time, ms.
    pub time: i64,
    /// Actor.
    pub actor: String,
    /// Action.
    pub action: String,
    /// Resource.
    pub resource: String,
    /// Before, as JSON text.
    pub before_json: Option<String>,
    /// After, as JSON text.
    pub after_json: Option<String>,
    /// Request id.
    pub request_id: String,
    /// Trace id.
    pub trace_id: String,
    /// Hash of the previous record.
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

/// Computes a record's hash from its fields and the previous hash.
pub fn record_hash(r: &AuditRecord) -> String {
    let canonical = serde_json::to_vec(&(
        &r.service,
        r.seq,
        r.time,
        &r.actor,
        &r.action,
        &r.resource,
        &r.before_json,
        &r.after_json,
        &r.request_id,
        &r.trace_id,
    ))
    .expect("tuple of strings and ints serializes");
    let mut h = Sha256::new();
    h.update(r.prev_hash.as_bytes());
    h.update(&canonical);
    hex::encode(h.finalize())
}

/// Appends `entry` to its service's chain within `tx`; returns the new sequence number.
pub async fn append(tx: &WriteTx, entry: AuditEntry) -> Result<i64, Error> {
    append_many(tx, vec![entry]).await
}

/// Appends `entries` (all of one service), in order, to the service's chain within `tx` with
/// one lock of the chain head, one multi-row insert and one head update; returns the last
/// sequence number.
///
/// # Panics
/// When `entries` is empty or mixes services (a programming error).
pub async fn append_many(tx: &WriteTx, entries: Vec<AuditEntry>) -> Result<i64, Error> {
    let service = entries.first().expect("at least one audit entry").service;
    assert!(
        entries.iter().all(|e| e.service == service),
        "append_many takes entries of one service"
    );
    // Make sure the head row exists, then lock it.
    let ensure = Query::insert()
        .into_table(H::Table)
        .columns([H::Service, H::Seq, H::Hash])
        .values_panic([service.into(), 0i64.into(), GENESIS_HASH.into()])
        .on_conflict(OnConflict::column(H::Service).do_nothing().to_owned())
        .to_owned();
    tx.execute(&ensure).await.map_err(db_err)?;
    let mut head = Query::select()
        .columns([H::Seq, H::Hash])
        .from(H::Table)
        .and_where(Expr::col(H::Service).eq(service))
        .to_owned();
    if tx.backend() == Backend::Postgres {
        head.lock_exclusive();
    }
    let row = tx
        .query_one(&head)
        .await
        .map_err(db_err)?
        .ok_or_else(|| Error::internal("audit chain head vanished"))?;
    let mut seq: i64 = row.try_get("", "seq").map_err(db_err)?;
    let mut prev_hash: String = row.try_get("", "hash").map_err(db_err)?;
    let time = steward_common::time::now_ms();
    let mut records = Vec::with_capacity(entries.len());
    for entry in entries {
        seq += 1;
        let mut rec = AuditRecord {
            service: service.to_string(),
            seq,
            time,
            actor: entry.actor,
            action: entry.action.to_string(),
            resource: entry.resource,
            before_json: entry.before.map(|v| v.to_string()),
            after_json: entry.after.map(|v| v.to_string()),
            request_id: entry.request_id,
            trace_id: entry.trace_id,
            prev_hash: std::mem::take(&mut prev_hash),
            hash: String::new(),
        };
        rec.hash = record_hash(&rec);
        prev_hash = rec.hash.clone();
        records.push(rec);
    }
    // Fixed chunk sizes keep the number of distinct statements small (prepared-statement cache).
    for chunk in crate::rows::pow2_chunks(&records, 256) {
        let mut ins = Query::insert()
            .into_table(A::Table)
            .columns(COLUMNS)
            .to_owned();
        for rec in chunk {
            ins.values_panic([
                rec.service.as_str().into(),
                rec.seq.into(),
                rec.time.into(),
                rec.actor.as_str().into(),
                rec.action.as_str().into(),
                rec.resource.as_str().into(),
                rec.before_json.clone().into(),
                rec.after_json.clone().into(),
                rec.request_id.as_str().into(),
                rec.trace_id.as_str().into(),
                rec.prev_hash.as_str().into(),
                rec.hash.as_str().into(),
            ]);
        }
        tx.execute(&ins).await.map_err(db_err)?;
    }
    let upd = Query::update()
        .table(H::Table)
        .value(H::Seq, seq)
        .value(H::Hash, prev_hash.as_str())
        .and_where(Expr::col(H::Service).eq(service))
        .to_owned();
    tx.execute(&upd).await.map_err(db_err)?;
    Ok(seq)
}

/// Every column of `audit_records`, in [`from_row`]'s order.
const COLUMNS: [A; 12] = [
    A::Service,
    A::Seq,
    A::Time,
    A::Actor,
    A::Action,
    A::Resource,
    A::BeforeJson,
    A::AfterJson,
    A::RequestId,
    A::TraceId,
    A::PrevHash,
    A::Hash,
];

fn from_row(r: &QueryResult) -> Result<AuditRecord, Error> {
    let g = |c: &str| r.try_get::<String>("", c).map_err(db_err);
    Ok(AuditRecord {
        service: g("service")?,
        seq: r.try_get("", "seq").map_err(db_err)?,
        time: r.try_get("", "time").map_err(db_err)?,
        actor: g("actor")?,
        action: g("action")?,
        resource: g("resource")?,
        before_json: r.try_get("", "before_json").map_err(db_err)?,
        after_json: r.try_get("", "after_json").map_err(db_err)?,
        request_id: g("request_id")?,
        trace_id: g("trace_id")?,
        prev_hash: g("prev_hash")?,
        hash: g("hash")?,
    })
}

/// Records of `service`'s chain with `seq > after_seq`, oldest first, at most `limit`;
/// optionally only those about `resource`.
pub async fn list<C: ConnectionTrait>(
    c: &C,
    service: &str,
    resource: Option<&str>,
    after_seq: i64,
    limit: u64,
) -> Result<Vec<AuditRecord>, Error> {
    let mut q = Query::select()
        .columns(COLUMNS)
        .from(A::Table)
        .and_where(Expr::col(A::Service).eq(service))
        .and_where(Expr::col(A::Seq).gt(after_seq))
        .order_by(A::Seq, Order::Asc)
        .limit(limit)
        .to_owned();
    if let Some(res) = resource {
        q.and_where(Expr::col(A::Resource).eq(res));
    }
    c.query_all(&q)
        .await
        .map_err(db_err)?
        .iter()
        .map(from_row)
        .collect()
}
