//! Wire types <-> domain types. Requests are validated once here; errors name the field.

use steward_common::Error;
use steward_grpc::ts;
use steward_proto::registry as pb;

use crate::app::models::ModelView;
use crate::domain::compare::{Comparison, MetricDiff, ValueDiff};
use crate::domain::policy::{MetricCondition, Policy, PolicyRule};
use crate::domain::{
    AliasMove, ApprovalState, Lineage, ModelVersion, Review, Signature, TensorSpec, VersionStatus,
};

/// Etag text of a revision.
pub fn etag(revision: i64) -> String {
    revision.to_string()
}

fn status(s: VersionStatus) -> i32 {
    match s {
        VersionStatus::Creating => pb::ModelVersionStatus::Creating as i32,
        VersionStatus::Ready => pb::ModelVersionStatus::Ready as i32,
        VersionStatus::Failed => pb::ModelVersionStatus::Failed as i32,
    }
}

fn approval(s: ApprovalState) -> i32 {
    match s {
        ApprovalState::Pending => pb::ApprovalState::Pending as i32,
        ApprovalState::Approved => pb::ApprovalState::Approved as i32,
        ApprovalState::Rejected => pb::ApprovalState::Rejected as i32,
    }
}

/// A decision from the wire; `UNSPECIFIED` is an error naming `field`.
pub fn decision(v: i32, field: &str) -> Result<ApprovalState, Error> {
    match pb::ApprovalState::try_from(v) {
        Ok(pb::ApprovalState::Pending) => Ok(ApprovalState::Pending),
        Ok(pb::ApprovalState::Approved) => Ok(ApprovalState::Approved),
        Ok(pb::ApprovalState::Rejected) => Ok(ApprovalState::Rejected),
        _ => Err(Error::invalid_field(
            field,
            "must be APPROVED, REJECTED or PENDING",
        )),
    }
}

/// A status for UpdateModelVersion: READY or FAILED.
pub fn target_status(v: i32, field: &str) -> Result<VersionStatus, Error> {
    match pb::ModelVersionStatus::try_from(v) {
        Ok(pb::ModelVersionStatus::Ready) => Ok(VersionStatus::Ready),
        Ok(pb::ModelVersionStatus::Failed) => Ok(VersionStatus::Failed),
        _ => Err(Error::invalid_field(
            field,
            "a CREATING version moves to READY or FAILED",
        )),
    }
}

fn review(r: &Review) -> pb::Review {
    pb::Review {
        state: approval(r.state),
        reviewer: r.reviewer.clone(),
        comment: r.comment.clone(),
        time: Some(ts(r.time)),
    }
}

/// Review to the wire.
pub fn review_out(r: &Review) -> pb::Review {
    review(r)
}

fn tensor_out(t: &TensorSpec) -> pb::TensorSpec {
    pb::TensorSpec {
        name: t.name.clone(),
        dtype: t.dtype.clone(),
        shape: t.shape.clone(),
    }
}

fn signature_out(s: &Signature) -> pb::ModelSignature {
    pb::ModelSignature {
        inputs: s.inputs.iter().map(tensor_out).collect(),
        outputs: s.outputs.iter().map(tensor_out).collect(),
    }
}

/// A signature from the wire (validated by the caller).
pub fn signature_in(s: Option<&pb::ModelSignature>) -> Signature {
    let t = |t: &pb::TensorSpec| TensorSpec {
        name: t.name.clone(),
        dtype: t.dtype.clone(),
        shape: t.shape.clone(),
    };
    match s {
        Some(s) => Signature {
            inputs: s.inputs.iter().map(t).collect(),
            outputs: s.outputs.iter().map(t).collect(),
        },
        None => Signature::default(),
    }
}

/// A version to the wire.
pub fn version(v: &ModelVersion) -> pb::ModelVersion {
    pb::ModelVersion {
        name: v.resource(),
        version: v.version,
        source_run: v.source_run.clone(),
        artifact_path: v.artifact_path.clone(),
        source_uri: v.source_uri.clone(),
        artifact_uri: v.artifact_uri.clone(),
        content_digest: v.content_digest.clone(),
        signature: Some(signature_out(&v.signature)),
        format: v.format.clone(),
        status: status(v.status),
        status_message: v.status_message.clone(),
        description: v.description.clone(),
        tags: v.tags.clone().into_iter().collect(),
        approval_state: approval(v.approval),
        last_review: v.last_review.as_ref().map(review),
        aliases: v.aliases.clone(),
        creator: v.creator.clone(),
        create_time: Some(ts(v.create_time)),
        update_time: Some(ts(v.update_time)),
        etag: etag(v.revision),
    }
}

/// A model (with its latest version) to the wire.
pub fn model(m: &ModelView) -> pb::RegisteredModel {
    pb::RegisteredModel {
        name: format!("registeredModels/{}", m.model.name),
        description: m.model.description.clone(),
        tags: m.model.tags.clone().into_iter().collect(),
        aliases: m.model.aliases.clone().into_iter().collect(),
        latest_version: m.latest.as_ref().map(version),
        creator: m.model.creator.clone(),
        create_time: Some(ts(m.model.create_time)),
        update_time: Some(ts(m.model.update_time)),
        etag: etag(m.model.revision),
    }
}

/// The lineage of `v` to the wire.
pub fn lineage(v: &ModelVersion, l: &Lineage) -> pb::Lineage {
    pb::Lineage {
        model_version: v.resource(),
        source_run: l.source_run.clone(),
        run_name: l.run_name.clone(),
        params: l.params.clone().into_iter().collect(),
        metrics: l.metrics.clone().into_iter().collect(),
        datasets: l
            .datasets
            .iter()
            .map(|d| pb::DatasetRef {
                name: d.name.clone(),
                digest: d.digest.clone(),
                source_uri: d.source_uri.clone(),
                context: d.context.clone(),
            })
            .collect(),
        code_version: Some(pb::CodeVersion {
            git_commit: l.code.git_commit.clone(),
            git_repo: l.code.git_repo.clone(),
            git_dirty: l.code.git_dirty,
        }),
        parent_runs: l.parent_runs.clone(),
        creator: v.creator.clone(),
        create_time: Some(ts(v.create_time)),
        content_digest: v.content_digest.clone(),
        artifact_uri: v.artifact_uri.clone(),
        run_tags: l.run_tags.clone().into_iter().collect(),
        deployments: Vec::new(),
    }
}

fn value_diff(d: &ValueDiff) -> pb::ValueDiff {
    pb::ValueDiff {
        key: d.key.clone(),
        base: d.base.clone().unwrap_or_default(),
        other: d.other.clone().unwrap_or_default(),
        in_base: d.base.is_some(),
        in_other: d.other.is_some(),
    }
}

fn metric_diff(d: &MetricDiff) -> pb::MetricDiff {
    pb::MetricDiff {
        key: d.key.clone(),
        base: d.base.unwrap_or_default(),
        other: d.other.unwrap_or_default(),
        in_base: d.base.is_some(),
        in_other: d.other.is_some(),
        delta: match (d.base, d.other) {
            (Some(a), Some(b)) => b - a,
            _ => 0.0,
        },
    }
}

/// A comparison to the wire.
pub fn comparison(
    base: &ModelVersion,
    other: &ModelVersion,
    c: &Comparison,
) -> pb::ModelVersionComparison {
    pb::ModelVersionComparison {
        base: Some(version(base)),
        other: Some(version(other)),
        params: c.params.iter().map(value_diff).collect(),
        metrics: c.metrics.iter().map(metric_diff).collect(),
        datasets: c.datasets.iter().map(value_diff).collect(),
        signature: c.signature.iter().map(value_diff).collect(),
        code_version: c.code_version.iter().map(value_diff).collect(),
    }
}

/// An alias state after a move.
pub fn alias(mv: &AliasMove) -> pb::ModelAlias {
    pb::ModelAlias {
        registered_model: format!("registeredModels/{}", mv.model),
        alias: mv.alias.clone(),
        version: mv.version,
        update_time: Some(ts(mv.time)),
        updater: mv.actor.clone(),
    }
}

/// A history entry.
pub fn alias_entry(mv: &AliasMove) -> pb::AliasHistoryEntry {
    pb::AliasHistoryEntry {
        registered_model: format!("registeredModels/{}", mv.model),
        alias: mv.alias.clone(),
        version: mv.version,
        previous_version: mv.previous_version,
        actor: mv.actor.clone(),
        time: Some(ts(mv.time)),
        request_id: mv.request_id.clone(),
    }
}

/// Policy rules from the wire (validated by the domain).
pub fn rules_in(rules: &[pb::PolicyRule]) -> Vec<PolicyRule> {
    rules
        .iter()
        .map(|r| PolicyRule {
            name: r.name.clone(),
            alias: r.alias.clone(),
            require_approved: r.require_approved,
            metrics: r
                .metrics
                .iter()
                .map(|c| MetricCondition {
                    metric: c.metric.clone(),
                    op: c.op.clone(),
                    value: c.value,
                })
                .collect(),
            required_tags: r.required_tags.clone(),
        })
        .collect()
}

/// A policy to the wire.
pub fn policy(p: &Policy) -> pb::ModelPolicy {
    pb::ModelPolicy {
        registered_model: format!("registeredModels/{}", p.model),
        rules: p
            .rules
            .iter()
            .map(|r| pb::PolicyRule {
                name: r.name.clone(),
                alias: r.alias.clone(),
                require_approved: r.require_approved,
                metrics: r
                    .metrics
                    .iter()
                    .map(|c| pb::MetricCondition {
                        metric: c.metric.clone(),
                        op: c.op.clone(),
                        value: c.value,
                    })
                    .collect(),
                required_tags: r.required_tags.clone(),
            })
            .collect(),
        update_time: (p.update_time > 0).then(|| ts(p.update_time)),
        etag: etag(p.revision),
    }
}
