//! What every mutation of every service does in its write transaction besides the change
//! itself: replay a retried request, remember the response, append the audit record, and
//! enqueue events in the outbox.

use serde::Serialize;
use serde::de::DeserializeOwned;
use steward_common::Error;
use steward_proto::events::{EventEnvelope, event_envelope::Payload};

use crate::audit::{self, AuditEntry};
use crate::idempotency::{self, IdemKey};
use crate::{WriteTx, outbox};

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

/// Returns the stored response of an idempotent request, if this is a retry.
pub async fn replay<T: DeserializeOwned>(
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
pub async fn remember<T: Serialize>(
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
pub fn canonical<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// Appends an audit record for a control-plane mutation.
#[allow(clippy::too_many_arguments)]
pub async fn audit<B: Serialize, A: Serialize>(
    tx: &WriteTx,
    service: &'static str,
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
            service,
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

/// An event envelope for a change made by `service` under `ctx`.
pub fn envelope(
    service: &'static str,
    ctx: &Ctx,
    kind: &str,
    source: String,
    payload: Payload,
) -> EventEnvelope {
    let now = chrono::Utc::now();
    EventEnvelope {
        event_id: uuid::Uuid::now_v7().simple().to_string(),
        r#type: kind.to_string(),
        source,
        time: Some(prost_types::Timestamp {
            seconds: now.timestamp(),
            nanos: now.timestamp_subsec_nanos() as i32,
        }),
        traceparent: ctx.traceparent.clone(),
        producer: service.to_string(),
        payload: Some(payload),
    }
}

/// Writes an event to the outbox in `tx`.
pub async fn emit(
    tx: &WriteTx,
    service: &'static str,
    ctx: &Ctx,
    kind: &str,
    source: String,
    payload: Payload,
) -> Result<(), Error> {
    outbox::enqueue(tx, service, &envelope(service, ctx, kind, source, payload)).await
}

/// Checks an optional etag (the resource's revision as text): empty passes, a stale one is
/// `ABORTED` (`ETAG_MISMATCH`).
pub fn check_etag(etag: &str, revision: i64, resource: &str) -> Result<(), Error> {
    if etag.is_empty() || etag == revision.to_string() {
        Ok(())
    } else {
        Err(Error::stale_etag(resource))
    }
}
