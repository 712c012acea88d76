//! Use cases of the tracking service: one function per operation. This layer owns
//! transactions, idempotency, audit records and outbox events; it speaks domain types.

pub mod artifacts;
pub mod data;
pub mod experiments;
pub mod runs;

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use steward_artifacts::ObjectStore;
use steward_common::Error;
use steward_config::Limits;
use steward_proto::events::{EventEnvelope, event_envelope::Payload};
use steward_storage::audit::{self, AuditEntry};
use steward_storage::idempotency::{self, IdemKey};
use steward_storage::{Db, WriteTx, outbox};

/// Name of this service's audit chain, outbox and idempotency records.
pub const SERVICE: &str = "tracking";

/// Who is calling and under which trace (from gRPC metadata).
#[derive(Debug, Clone, Default)]
pub struct Ctx {
    /// Caller identity.
    pub actor: String,
    /// Trace id of the request (32 hex) or empty.
    pub trace_id: String,
    /// W3C traceparent of the request or empty.
    pub traceparent: String,
}

/// The tracking application: storage handles and limits.
#[derive(Clone)]
pub struct Tracking {
    pub(crate) db: Db,
    pub(crate) objects: Arc<dyn ObjectStore>,
    pub(crate) limits: Limits,
}

impl Tracking {
    /// A tracking app over `db` and `objects`.
    pub fn new(db: Db, objects: Arc<dyn ObjectStore>, limits: Limits) -> Self {
        Self {
            db,
            objects,
            limits,
        }
    }

    /// The database handle.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

/// Returns the stored response of an idempotent request, if this is a retry.
pub(crate) async fn replay<T: DeserializeOwned>(
    tx: &WriteTx,
    key: Option<&IdemKey>,
) -> Result<Option<T>, Error> {
    let Some(key) = key else { return Ok(None) };
    match idempotency::lookup(tx, key).await? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::internal(format!("corrupt idempotency record: {e}"))),
        None => Ok(None),
    }
}

/// Stores the response of an idempotent request.
pub(crate) async fn remember<T: Serialize>(
    tx: &WriteTx,
    key: Option<&IdemKey>,
    value: &T,
) -> Result<(), Error> {
    let Some(key) = key else { return Ok(()) };
    let bytes =
        serde_json::to_vec(value).map_err(|e| Error::internal(format!("encode response: {e}")))?;
    idempotency::record(tx, key, &bytes).await
}

/// A canonical encoding of a request for idempotency hashing.
pub(crate) fn canonical<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// Appends an audit record for a control-plane mutation.
pub(crate) async fn audit<B: Serialize, A: Serialize>(
    tx: &WriteTx,
    ctx: &Ctx,
    action: &'static str,
    resource: String,
    request_id: &str,
    before: Option<&B>,
    after: Option<&A>,
) -> Result<(), Error> {
    audit::append(
        tx,
        AuditEntry {
            service: SERVICE,
            actor: ctx.actor.clone(),
            action,
            resource,
            before: before.and_then(|b| serde_json::to_value(b).ok()),
            after: after.and_then(|a| serde_json::to_value(a).ok()),
            request_id: request_id.to_string(),
            trace_id: ctx.trace_id.clone(),
        },
    )
    .await?;
    Ok(())
}

/// Writes an event to the outbox in `tx`.
pub(crate) async fn emit(
    tx: &WriteTx,
    ctx: &Ctx,
    kind: &str,
    source: String,
    payload: Payload,
) -> Result<(), Error> {
    let now = chrono::Utc::now();
    let env = EventEnvelope {
        event_id: uuid::Uuid::now_v7().simple().to_string(),
        r#type: kind.to_string(),
        source,
        time: Some(prost_types::Timestamp {
            seconds: now.timestamp(),
            nanos: now.timestamp_subsec_nanos() as i32,
        }),
        traceparent: ctx.traceparent.clone(),
        producer: SERVICE.to_string(),
        payload: Some(payload),
    };
    outbox::enqueue(tx, SERVICE, &env).await
}

/// The run `run_id` of experiment `exp` (row only). A run addressed under another experiment
/// does not exist: `NOT_FOUND`.
pub(crate) async fn run_in<C: sea_orm::ConnectionTrait>(
    c: &C,
    exp: &str,
    run_id: &str,
) -> Result<crate::domain::Run, Error> {
    match crate::store::runs::get_row(c, run_id).await? {
        Some(r) if r.experiment_id == exp => Ok(r),
        _ => Err(Error::not_found("RUN_NOT_FOUND", run_name(exp, run_id))),
    }
}

/// [`run_in`] for writes: a deleted run is `FAILED_PRECONDITION` (`RUN_DELETED`).
pub(crate) async fn writable_run_in<C: sea_orm::ConnectionTrait>(
    c: &C,
    exp: &str,
    run_id: &str,
) -> Result<crate::domain::Run, Error> {
    let r = run_in(c, exp, run_id).await?;
    if r.lifecycle == crate::domain::Lifecycle::Deleted {
        return Err(Error::failed_precondition(
            "RUN_DELETED",
            format!(
                "{} is deleted; undelete it to write to it",
                run_name(exp, run_id)
            ),
        ));
    }
    Ok(r)
}

/// `experiments/{e}`.
pub(crate) fn exp_name(id: &str) -> String {
    format!("experiments/{id}")
}

/// `experiments/{e}/runs/{r}`.
pub(crate) fn run_name(exp: &str, run: &str) -> String {
    format!("experiments/{exp}/runs/{run}")
}
