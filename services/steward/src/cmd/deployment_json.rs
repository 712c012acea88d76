//! `--json` output of the deployment commands: each message with its proto field names, enums
//! by name, timestamps in RFC 3339 (UTC) and durations as protobuf JSON does (`"600s"`), one
//! object per line.

use serde_json::{Value, json};
use steward_proto::deployment as pb;

use super::names::rfc3339;

/// `RUNNING`, `SUCCEEDED`, `ROLLED_BACK`.
pub fn rollout_state(s: i32) -> String {
    pb::RolloutState::try_from(s)
        .map(|s| s.as_str_name().to_string())
        .unwrap_or_else(|_| s.to_string())
}

/// `AB_RUNNING`, `AB_CONCLUDED`.
pub fn ab_state(s: i32) -> String {
    pb::AbTestState::try_from(s)
        .map(|s| s.as_str_name().to_string())
        .unwrap_or_else(|_| s.to_string())
}

/// `BINARY`, `CONTINUOUS`.
pub fn metric_kind(s: i32) -> String {
    pb::MetricKind::try_from(s)
        .map(|s| s.as_str_name().to_string())
        .unwrap_or_else(|_| s.to_string())
}

/// A protobuf duration as its JSON form (`"600s"`, `"0.500s"`).
pub fn duration(d: &Option<prost_types::Duration>) -> Value {
    match d {
        None => Value::Null,
        Some(d) if d.nanos == 0 => json!(format!("{}s", d.seconds)),
        Some(d) => {
            let frac = format!("{:09}", d.nanos);
            json!(format!("{}.{}s", d.seconds, frac.trim_end_matches('0')))
        }
    }
}

/// An environment.
pub fn environment(e: &pb::Environment) -> Value {
    json!({
        "name": e.name,
        "order": e.order,
        "description": e.description,
        "policy": e.policy.as_ref().map(|p| json!({
            "require_approved": p.require_approved,
            "require_previous_environment": p.require_previous_environment,
            "require_reproducible": p.require_reproducible,
        })),
        "upstream_url": e.upstream_url,
        "create_time": rfc3339(&e.create_time),
        "update_time": rfc3339(&e.update_time),
        "etag": e.etag,
    })
}

/// A variant of a revision.
pub fn variant(v: &pb::Variant) -> Value {
    json!({
        "name": v.name,
        "model_version": v.model_version,
        "version": v.version,
        "weight_bp": v.weight_bp,
        "artifact_uri": v.artifact_uri,
        "format": v.format,
        "content_digest": v.content_digest,
        "upstream_url": v.upstream_url,
    })
}

/// A revision.
pub fn revision(r: &pb::Revision) -> Value {
    json!({
        "name": r.name,
        "number": r.number,
        "variants": r.variants.iter().map(variant).collect::<Vec<_>>(),
        "shadow": r.shadow.as_ref().map(variant),
        "reason": r.reason,
        "creator": r.creator,
        "create_time": rfc3339(&r.create_time),
    })
}

/// A deployment.
pub fn deployment(d: &pb::Deployment) -> Value {
    json!({
        "name": d.name,
        "registered_model": d.registered_model,
        "environment": d.environment,
        "current_revision": d.current_revision.as_ref().map(revision),
        "active_rollout": d.active_rollout,
        "active_ab_test": d.active_ab_test,
        "creator": d.creator,
        "create_time": rfc3339(&d.create_time),
        "update_time": rfc3339(&d.update_time),
        "etag": d.etag,
    })
}

/// A rollout.
pub fn rollout(r: &pb::Rollout) -> Value {
    json!({
        "name": r.name,
        "model_version": r.model_version,
        "version": r.version,
        "steps": r.steps.iter().map(|s| json!({
            "weight_bp": s.weight_bp,
            "bake": duration(&s.bake),
        })).collect::<Vec<_>>(),
        "guardrails": r.guardrails.as_ref().map(|g| json!({
            "max_error_rate": g.max_error_rate,
            "max_p99_latency_ms": g.max_p99_latency_ms,
            "min_requests": g.min_requests,
        })),
        "state": rollout_state(r.state),
        "current_step": r.current_step,
        "step_start_time": rfc3339(&r.step_start_time),
        "base_revision": r.base_revision,
        "reason": r.reason,
        "history": r.history.iter().map(|e| json!({
            "time": rfc3339(&e.time),
            "kind": e.kind,
            "step": e.step,
            "reason": e.reason,
            "actor": e.actor,
        })).collect::<Vec<_>>(),
        "creator": r.creator,
        "create_time": rfc3339(&r.create_time),
        "update_time": rfc3339(&r.update_time),
    })
}

/// An A/B test.
pub fn ab_test(t: &pb::AbTest) -> Value {
    json!({
        "name": t.name,
        "variants": t.variants,
        "metric": t.metric,
        "metric_kind": metric_kind(t.metric_kind),
        "alpha": t.alpha,
        "sequential": t.sequential,
        "state": ab_state(t.state),
        "winner": t.winner,
        "revision": t.revision,
        "creator": t.creator,
        "create_time": rfc3339(&t.create_time),
        "conclude_time": rfc3339(&t.conclude_time),
    })
}

/// The results of an A/B test.
pub fn ab_results(r: &pb::AbTestResults) -> Value {
    json!({
        "ab_test": r.ab_test.as_ref().map(ab_test),
        "variants": r.variants.iter().map(|v| json!({
            "variant": v.variant,
            "assigned": v.assigned,
            "n": v.n,
            "mean": v.mean,
            "std_dev": v.std_dev,
        })).collect::<Vec<_>>(),
        "comparisons": r.comparisons.iter().map(|c| json!({
            "variant": c.variant,
            "effect": c.effect,
            "relative_effect": c.relative_effect,
            "ci_low": c.ci_low,
            "ci_high": c.ci_high,
            "p_value": c.p_value,
            "significant": c.significant,
            "method": c.method,
        })).collect::<Vec<_>>(),
        "srm_p_value": r.srm_p_value,
        "sample_ratio_mismatch": r.sample_ratio_mismatch,
    })
}

/// A decision record.
pub fn decision(d: &pb::DecisionRecord) -> Value {
    json!({
        "request_id": d.request_id,
        "time": rfc3339(&d.time),
        "deployment": d.deployment,
        "revision": d.revision,
        "variant": d.variant,
        "model_version": d.model_version,
        "kind": d.kind,
        "input_digest": d.input_digest,
        "inputs_json": d.inputs_json,
        "inputs_erased": d.inputs_erased,
        "outputs_json": d.outputs_json,
        "latency_us": d.latency_us,
        "error": d.error,
        "routing_key": d.routing_key,
    })
}

/// The explanation of a decision.
pub fn explanation(x: &pb::DecisionExplanation) -> Value {
    json!({
        "decision": x.decision.as_ref().map(decision),
        "model_version": x.model_version,
        "approval_state": x.approval_state,
        "approved_by": x.approved_by,
        "approve_time": rfc3339(&x.approve_time),
        "source_run": x.source_run,
        "datasets": x.datasets.iter().map(|d| json!({
            "name": d.name, "digest": d.digest, "context": d.context,
        })).collect::<Vec<_>>(),
        "git_commit": x.git_commit,
        "git_repo": x.git_repo,
        "trained_time": rfc3339(&x.trained_time),
        "revision": x.revision.as_ref().map(revision),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_enums_read_like_proto_json() {
        assert_eq!(duration(&None), Value::Null);
        let d = |seconds, nanos| Some(prost_types::Duration { seconds, nanos });
        assert_eq!(duration(&d(600, 0)), json!("600s"));
        assert_eq!(duration(&d(0, 500_000_000)), json!("0.5s"));
        assert_eq!(
            rollout_state(pb::RolloutState::RolledBack as i32),
            "ROLLED_BACK"
        );
        assert_eq!(ab_state(99), "99");
        let r = rollout(&pb::Rollout {
            name: "deployments/d/rollouts/r".into(),
            state: pb::RolloutState::Running as i32,
            steps: vec![pb::RolloutStep {
                weight_bp: 500,
                bake: d(600, 0),
            }],
            ..Default::default()
        });
        assert_eq!(r["state"], "RUNNING");
        assert_eq!(r["steps"][0]["bake"], "600s");
        assert_eq!(r["create_time"], Value::Null);
    }
}
