//! What every gRPC handler takes from a request: who calls under which trace, the update mask,
//! and the scope that binds a page token to its query.

use sha2::{Digest, Sha256};
use steward_storage::ops::Ctx;

/// The caller (`x-steward-actor` until authentication exists) and the current trace.
pub fn ctx<T>(req: &tonic::Request<T>) -> Ctx {
    Ctx {
        actor: steward_grpc::actor(req.metadata()),
        trace_id: steward_telemetry::current_trace_id(),
        traceparent: steward_telemetry::current_traceparent(),
    }
}

/// A page-token scope: a short hash of the query's parts, so a token only pages on the query
/// that issued it.
pub fn scope(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..12])
}

/// The paths of an optional field mask.
pub fn mask_paths(m: &Option<prost_types::FieldMask>) -> Vec<String> {
    m.as_ref().map(|m| m.paths.clone()).unwrap_or_default()
}
