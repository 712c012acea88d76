//! Wire types <-> domain types.

use steward_common::Error;
use steward_grpc::ts;
use steward_proto::deployment as pb;

use crate::app::ab::AbResults;
use crate::app::deployments::{DeploymentView, VariantSpec};
use crate::app::explain::Explanation;
use crate::domain::{
    AbTest, Decision, Environment, Guardrails, MetricKind, Revision, Rollout, RolloutState, Step,
    Variant,
};

/// Etag text.
pub fn etag(r: i64) -> String {
    r.to_string()
}

/// An environment to the wire.
pub fn environment(e: &Environment) -> pb::Environment {
    pb::Environment {
        name: format!("environments/{}", e.name),
        order: e.order as i32,
        description: e.description.clone(),
        policy: Some(pb::EnvironmentPolicy {
            require_approved: e.require_approved,
            require_previous_environment: e.require_previous_env.clone(),
            require_reproducible: e.require_reproducible,
        }),
        upstream_url: e.upstream_url.clone(),
        create_time: Some(ts(e.create_time)),
        update_time: Some(ts(e.update_time)),
        etag: etag(e.revision),
    }
}

/// A variant to the wire.
pub fn variant(v: &Variant) -> pb::Variant {
    pb::Variant {
        name: v.name.clone(),
        model_version: v.model_version.clone(),
        version: v.version,
        weight_bp: v.weight_bp,
        artifact_uri: v.artifact_uri.clone(),
        format: v.format.clone(),
        content_digest: v.content_digest.clone(),
        upstream_url: v.upstream_url.clone(),
    }
}

/// A variant spec from the wire.
pub fn spec(v: &pb::Variant) -> VariantSpec {
    VariantSpec {
        name: v.name.clone(),
        model_version: v.model_version.clone(),
        weight_bp: v.weight_bp,
        upstream_url: v.upstream_url.clone(),
    }
}

/// A revision to the wire.
pub fn revision(r: &Revision) -> pb::Revision {
    pb::Revision {
        name: format!("deployments/{}/revisions/{}", r.deployment, r.number),
        number: r.number,
        variants: r.variants.iter().map(variant).collect(),
        shadow: r.shadow.as_ref().map(variant),
        reason: r.reason.clone(),
        creator: r.creator.clone(),
        create_time: Some(ts(r.create_time)),
    }
}

/// A deployment to the wire.
pub fn deployment(v: &DeploymentView) -> pb::Deployment {
    let d = &v.deployment;
    let sub = |kind: &str, id: &str| {
        if id.is_empty() {
            String::new()
        } else {
            format!("deployments/{}/{kind}/{id}", d.id)
        }
    };
    pb::Deployment {
        name: format!("deployments/{}", d.id),
        registered_model: format!("registeredModels/{}", d.model),
        environment: format!("environments/{}", d.environment),
        current_revision: Some(revision(&v.revision)),
        active_rollout: sub("rollouts", &d.active_rollout),
        active_ab_test: sub("abTests", &d.active_ab_test),
        creator: d.creator.clone(),
        create_time: Some(ts(d.create_time)),
        update_time: Some(ts(d.update_time)),
        etag: etag(d.revision),
    }
}

/// Steps from the wire.
pub fn steps(s: &[pb::RolloutStep]) -> Result<Vec<Step>, Error> {
    s.iter()
        .enumerate()
        .map(|(i, s)| {
            let bake_ms = match &s.bake {
                None => 0,
                Some(d) if d.seconds < 0 || d.nanos < 0 || d.seconds > 7 * 24 * 3600 => {
                    return Err(Error::invalid_field(
                        format!("steps[{i}].bake"),
                        "between 0 and 7 days",
                    ));
                }
                Some(d) => d.seconds * 1000 + i64::from(d.nanos) / 1_000_000,
            };
            Ok(Step {
                weight_bp: s.weight_bp,
                bake_ms,
            })
        })
        .collect()
}

/// Guardrails from the wire.
pub fn guardrails(g: Option<&pb::Guardrails>) -> Result<Guardrails, Error> {
    let Some(g) = g else {
        return Ok(Guardrails::default());
    };
    if !(0.0..=1.0).contains(&g.max_error_rate) {
        return Err(Error::invalid_field(
            "guardrails.max_error_rate",
            "between 0 and 1",
        ));
    }
    if !(g.max_p99_latency_ms >= 0.0 && g.max_p99_latency_ms.is_finite()) {
        return Err(Error::invalid_field(
            "guardrails.max_p99_latency_ms",
            "a non-negative number of ms",
        ));
    }
    if g.min_requests < 0 {
        return Err(Error::invalid_field(
            "guardrails.min_requests",
            "must not be negative",
        ));
    }
    Ok(Guardrails {
        max_error_rate: g.max_error_rate,
        max_p99_latency_ms: g.max_p99_latency_ms,
        min_requests: g.min_requests,
    })
}

fn duration(ms: i64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: ms / 1000,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    }
}

/// A rollout to the wire.
pub fn rollout(r: &Rollout) -> pb::Rollout {
    pb::Rollout {
        name: format!("deployments/{}/rollouts/{}", r.deployment, r.id),
        model_version: r.model_version.clone(),
        version: r.canary.version,
        steps: r
            .steps
            .iter()
            .map(|s| pb::RolloutStep {
                weight_bp: s.weight_bp,
                bake: Some(duration(s.bake_ms)),
            })
            .collect(),
        guardrails: Some(pb::Guardrails {
            max_error_rate: r.guardrails.max_error_rate,
            max_p99_latency_ms: r.guardrails.max_p99_latency_ms,
            min_requests: r.guardrails.min_requests,
        }),
        state: match r.state {
            RolloutState::Running => pb::RolloutState::Running,
            RolloutState::Succeeded => pb::RolloutState::Succeeded,
            RolloutState::RolledBack => pb::RolloutState::RolledBack,
        } as i32,
        current_step: r.current_step,
        step_start_time: Some(ts(r.step_start_time)),
        base_revision: r.base_revision,
        reason: r.reason.clone(),
        history: r
            .history
            .iter()
            .map(|e| pb::RolloutEvent {
                time: Some(ts(e.time)),
                kind: e.kind.clone(),
                step: e.step,
                reason: e.reason.clone(),
                actor: e.actor.clone(),
            })
            .collect(),
        creator: r.creator.clone(),
        create_time: Some(ts(r.create_time)),
        update_time: Some(ts(r.update_time)),
    }
}

/// A metric kind from the wire.
pub fn metric_kind(v: i32) -> Result<MetricKind, Error> {
    match pb::MetricKind::try_from(v) {
        Ok(pb::MetricKind::Binary) => Ok(MetricKind::Binary),
        Ok(pb::MetricKind::Continuous) => Ok(MetricKind::Continuous),
        _ => Err(Error::invalid_field(
            "ab_test.metric_kind",
            "BINARY or CONTINUOUS",
        )),
    }
}

/// A test to the wire.
pub fn ab_test(t: &AbTest) -> pb::AbTest {
    pb::AbTest {
        name: format!("deployments/{}/abTests/{}", t.deployment, t.id),
        variants: t.variants.clone(),
        metric: t.metric.clone(),
        metric_kind: match t.kind {
            MetricKind::Binary => pb::MetricKind::Binary,
            MetricKind::Continuous => pb::MetricKind::Continuous,
        } as i32,
        alpha: t.alpha,
        sequential: t.sequential,
        state: if t.running {
            pb::AbTestState::AbRunning
        } else {
            pb::AbTestState::AbConcluded
        } as i32,
        winner: t.winner.clone(),
        revision: t.revision,
        creator: t.creator.clone(),
        create_time: Some(ts(t.create_time)),
        conclude_time: t.conclude_time.map(ts),
    }
}

/// Results to the wire.
pub fn results(r: &AbResults) -> pb::AbTestResults {
    pb::AbTestResults {
        ab_test: Some(ab_test(&r.test)),
        variants: r
            .variants
            .iter()
            .map(|v| pb::VariantStats {
                variant: v.variant.clone(),
                assigned: v.assigned,
                n: v.summary.n as i64,
                mean: v.summary.mean,
                std_dev: v.summary.std_dev(),
            })
            .collect(),
        comparisons: r
            .comparisons
            .iter()
            .map(|(v, c)| match c {
                Some(c) => pb::Comparison {
                    variant: v.clone(),
                    effect: c.effect,
                    relative_effect: if c.relative_effect.is_finite() {
                        c.relative_effect
                    } else {
                        0.0
                    },
                    ci_low: c.ci_low,
                    ci_high: c.ci_high,
                    p_value: c.p_value,
                    significant: c.significant,
                    method: c.method.to_string(),
                },
                None => pb::Comparison {
                    variant: v.clone(),
                    p_value: 1.0,
                    method: "not enough data".into(),
                    ..Default::default()
                },
            })
            .collect(),
        srm_p_value: r.srm_p_value.unwrap_or(1.0),
        sample_ratio_mismatch: r.srm_p_value.is_some_and(|p| p < crate::app::ab::SRM_ALPHA),
    }
}

/// A decision to the wire.
pub fn decision(d: &Decision) -> pb::DecisionRecord {
    pb::DecisionRecord {
        request_id: d.request_id.clone(),
        time: Some(ts(d.time)),
        deployment: format!("deployments/{}", d.deployment),
        revision: d.revision,
        variant: d.variant.clone(),
        model_version: format!("registeredModels/{}/versions/{}", d.model, d.version),
        kind: d.kind.clone(),
        input_digest: d.input_digest.clone(),
        inputs_json: d.inputs_json.clone().unwrap_or_default(),
        inputs_erased: d.inputs_erased,
        outputs_json: d.outputs_json.clone(),
        latency_us: d.latency_us,
        error: d.error.clone(),
        routing_key: d.routing_key.clone(),
    }
}

/// An explanation to the wire.
pub fn explanation(e: &Explanation) -> pb::DecisionExplanation {
    pb::DecisionExplanation {
        decision: Some(decision(&e.decision)),
        model_version: format!(
            "registeredModels/{}/versions/{}",
            e.version.model, e.version.version
        ),
        approval_state: e.version.approval.clone(),
        approved_by: if e.version.approval == "APPROVED" {
            e.version.reviewer.clone()
        } else {
            String::new()
        },
        approve_time: (e.version.approval == "APPROVED" && e.version.review_time > 0)
            .then(|| ts(e.version.review_time)),
        source_run: e.lineage.source_run.clone(),
        datasets: e
            .lineage
            .datasets
            .iter()
            .map(|(n, d, c)| pb::DatasetDigest {
                name: n.clone(),
                digest: d.clone(),
                context: c.clone(),
            })
            .collect(),
        git_commit: e.lineage.git_commit.clone(),
        git_repo: e.lineage.git_repo.clone(),
        trained_time: Some(ts(e.version.create_time)),
        revision: e.revision.as_ref().map(revision),
    }
}
