//! The `proto_conversions` entry point: protobuf requests decoded with prost and converted to
//! domain types by the services' public conversion and validation functions, in the order
//! their gRPC handlers call them.

mod deployment;
mod monitoring;
mod registry;
mod tracking;

use prost::Message;

/// The request messages, in the order of the selector byte of [`proto_conversions`].
pub const REQUEST_KINDS: [&str; 16] = [
    "steward.tracking.v1.LogRunDataRequest",
    "steward.tracking.v1.LogRunInputsRequest",
    "steward.tracking.v1.CreateRunRequest",
    "steward.tracking.v1.UpdateRunRequest",
    "steward.tracking.v1.CreateExperimentRequest",
    "steward.tracking.v1.SearchRunsRequest",
    "steward.registry.v1.CreateModelVersionRequest",
    "steward.registry.v1.CreateRegisteredModelRequest",
    "steward.registry.v1.SetModelPolicyRequest",
    "steward.registry.v1.ReviewModelVersionRequest",
    "steward.deployment.v1.CreateDeploymentRequest",
    "steward.deployment.v1.StartRolloutRequest",
    "steward.monitoring.v1.IngestPredictionsRequest",
    "steward.monitoring.v1.CreateMonitorRequest",
    "steward.monitoring.v1.CreateBaselineRequest",
    "steward.monitoring.v1.CreateAlertRuleRequest",
];

/// The first byte of `data` picks a request message ([`REQUEST_KINDS`], modulo their number);
/// the rest is decoded as that message with prost, and a message that decodes goes through
/// the conversions its service applies before any IO.
///
/// Invariants checked besides "no panic" (details at each request's function):
/// - a refusal is `INVALID_ARGUMENT` naming a field of the request;
/// - what is accepted satisfies the documented rules of the domain type (lengths of metric
///   series agree, timestamps lie in 1970..9999, keys are unique, variant weights sum to
///   100%, a canary split keeps them summing to 100%, numeric columns hold no infinities, ...);
/// - conversions that go both ways (timestamps, statuses, chunk encoding) round-trip.
pub fn proto_conversions(data: &[u8]) {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    match usize::from(kind) % REQUEST_KINDS.len() {
        0 => with(body, tracking::log_run_data),
        1 => with(body, tracking::log_run_inputs),
        2 => with(body, tracking::create_run),
        3 => with(body, tracking::update_run),
        4 => with(body, tracking::create_experiment),
        5 => with(body, tracking::search_runs),
        6 => with(body, registry::create_model_version),
        7 => with(body, registry::create_registered_model),
        8 => with(body, registry::set_model_policy),
        9 => with(body, registry::review_model_version),
        10 => with(body, deployment::create_deployment),
        11 => with(body, deployment::start_rollout),
        12 => with(body, monitoring::ingest_predictions),
        13 => with(body, monitoring::create_monitor),
        14 => with(body, monitoring::create_baseline),
        _ => with(body, monitoring::create_alert_rule),
    }
}

/// Decodes `body` as `M` (garbage is prost's to refuse, as tonic would) and checks it.
fn with<M: Message + Default>(body: &[u8], check: fn(&M)) {
    if let Ok(m) = M::decode(body) {
        check(&m);
    }
}

/// Encodes `m` behind its selector byte: an input of [`proto_conversions`] (for seeds and
/// structured tests). `kind` is an index into [`REQUEST_KINDS`].
pub fn request_input<M: Message>(kind: usize, m: &M) -> Vec<u8> {
    let mut out = vec![u8::try_from(kind).expect("a request kind")];
    out.extend_from_slice(&m.encode_to_vec());
    out
}
