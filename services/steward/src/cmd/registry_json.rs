//! `--json` output of the registry commands: each message with its proto field names, enums
//! by name and timestamps in RFC 3339 (UTC), one object per line.

use serde_json::{Value, json};
use steward_proto::registry as pb;

use super::names::rfc3339;

/// Prints one JSON value on its own line.
pub fn print(v: &Value) {
    println!("{v}");
}

/// `READY`, `CREATING`, ...
pub fn status(s: i32) -> String {
    pb::ModelVersionStatus::try_from(s)
        .map(|s| s.as_str_name().to_string())
        .unwrap_or_else(|_| s.to_string())
}

/// `APPROVED`, `PENDING`, ...
pub fn approval(s: i32) -> String {
    pb::ApprovalState::try_from(s)
        .map(|s| s.as_str_name().to_string())
        .unwrap_or_else(|_| s.to_string())
}

/// A registered model.
pub fn model(m: &pb::RegisteredModel) -> Value {
    json!({
        "name": m.name,
        "description": m.description,
        "tags": m.tags,
        "aliases": m.aliases,
        "latest_version": m.latest_version.as_ref().map(version),
        "creator": m.creator,
        "create_time": rfc3339(&m.create_time),
        "update_time": rfc3339(&m.update_time),
        "etag": m.etag,
    })
}

fn tensor(t: &pb::TensorSpec) -> Value {
    json!({"name": t.name, "dtype": t.dtype, "shape": t.shape})
}

fn signature(s: &pb::ModelSignature) -> Value {
    json!({
        "inputs": s.inputs.iter().map(tensor).collect::<Vec<_>>(),
        "outputs": s.outputs.iter().map(tensor).collect::<Vec<_>>(),
    })
}

/// A review decision.
pub fn review(r: &pb::Review) -> Value {
    json!({
        "state": approval(r.state),
        "reviewer": r.reviewer,
        "comment": r.comment,
        "time": rfc3339(&r.time),
    })
}

/// A model version.
pub fn version(v: &pb::ModelVersion) -> Value {
    json!({
        "name": v.name,
        "version": v.version,
        "source_run": v.source_run,
        "artifact_path": v.artifact_path,
        "source_uri": v.source_uri,
        "artifact_uri": v.artifact_uri,
        "content_digest": v.content_digest,
        "signature": v.signature.as_ref().map(signature),
        "format": v.format,
        "status": status(v.status),
        "status_message": v.status_message,
        "description": v.description,
        "tags": v.tags,
        "approval_state": approval(v.approval_state),
        "last_review": v.last_review.as_ref().map(review),
        "aliases": v.aliases,
        "creator": v.creator,
        "create_time": rfc3339(&v.create_time),
        "update_time": rfc3339(&v.update_time),
        "etag": v.etag,
    })
}

/// A version's lineage.
pub fn lineage(l: &pb::Lineage) -> Value {
    json!({
        "model_version": l.model_version,
        "source_run": l.source_run,
        "run_name": l.run_name,
        "params": l.params,
        "metrics": l.metrics,
        "datasets": l.datasets.iter().map(|d| json!({
            "name": d.name, "digest": d.digest, "source_uri": d.source_uri, "context": d.context,
        })).collect::<Vec<_>>(),
        "code_version": l.code_version.as_ref().map(|c| json!({
            "git_commit": c.git_commit, "git_repo": c.git_repo, "git_dirty": c.git_dirty,
        })),
        "parent_runs": l.parent_runs,
        "creator": l.creator,
        "create_time": rfc3339(&l.create_time),
        "content_digest": l.content_digest,
        "artifact_uri": l.artifact_uri,
        "run_tags": l.run_tags,
        "deployments": l.deployments,
    })
}

fn value_diffs(d: &[pb::ValueDiff]) -> Vec<Value> {
    d.iter()
        .map(|d| {
            json!({
                "key": d.key, "base": d.base, "other": d.other,
                "in_base": d.in_base, "in_other": d.in_other,
            })
        })
        .collect()
}

/// A comparison of two versions.
pub fn comparison(c: &pb::ModelVersionComparison) -> Value {
    json!({
        "base": c.base.as_ref().map(version),
        "other": c.other.as_ref().map(version),
        "params": value_diffs(&c.params),
        "metrics": c.metrics.iter().map(|m| json!({
            "key": m.key, "base": m.base, "other": m.other,
            "in_base": m.in_base, "in_other": m.in_other, "delta": m.delta,
        })).collect::<Vec<_>>(),
        "datasets": value_diffs(&c.datasets),
        "signature": value_diffs(&c.signature),
        "code_version": value_diffs(&c.code_version),
    })
}

/// An alias as set.
pub fn alias(a: &pb::ModelAlias) -> Value {
    json!({
        "registered_model": a.registered_model,
        "alias": a.alias,
        "version": a.version,
        "update_time": rfc3339(&a.update_time),
        "updater": a.updater,
    })
}

/// One move of an alias.
pub fn alias_entry(e: &pb::AliasHistoryEntry) -> Value {
    json!({
        "registered_model": e.registered_model,
        "alias": e.alias,
        "version": e.version,
        "previous_version": e.previous_version,
        "actor": e.actor,
        "time": rfc3339(&e.time),
        "request_id": e.request_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_use_enum_names_and_rfc3339() {
        let v = pb::ModelVersion {
            name: "registeredModels/m/versions/2".into(),
            version: 2,
            status: pb::ModelVersionStatus::Ready as i32,
            approval_state: pb::ApprovalState::Approved as i32,
            create_time: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: 0,
            }),
            ..Default::default()
        };
        let j = version(&v);
        assert_eq!(j["status"], "READY");
        assert_eq!(j["approval_state"], "APPROVED");
        assert_eq!(j["create_time"], "1970-01-01T00:00:00Z");
        assert_eq!(j["update_time"], Value::Null);
        assert_eq!(j["last_review"], Value::Null);
    }
}
