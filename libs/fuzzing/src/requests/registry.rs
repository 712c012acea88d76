//! Registry requests: model versions, registered models, policies and reviews.

use std::collections::HashSet;

use steward_artifacts::ArtifactPath;
use steward_common::names::{ModelName, VersionRef};
use steward_common::validate;
use steward_proto::registry as pb;
use steward_registry::api::convert::{decision, rules_in, signature_in};
use steward_registry::domain::policy::{self, MAX_RULES};
use steward_registry::domain::validate::{
    self as rules, MAX_DESCRIPTION, MAX_DIMS, MAX_TENSORS, MAX_URI,
};
use steward_registry::domain::{ApprovalState, DTYPES, EXTERNAL_SCHEMES, FORMATS};

use super::tracking::{run_name, tags};
use crate::check;

/// `CreateModelVersion`: parent, source (a run with an artifact path, or an external URI
/// with an optional digest), format, signature, description and tags.
///
/// An accepted artifact path obeys the artifact path rules; an external URI has an allowed
/// scheme, a host, no credentials, no whitespace and no dot segments; a digest is
/// `sha256:` + 64 lowercase hex; a format is a known one in lowercase (`custom` when empty);
/// a signature keeps every tensor, with known dtypes, sane shapes and unique names per side.
pub(super) fn create_model_version(r: &pb::CreateModelVersionRequest) {
    model_name(&r.parent, "parent");
    let Some(v) = &r.model_version else {
        return;
    };
    if !v.source_run.is_empty() {
        run_name(&v.source_run, "model_version.source_run");
    }
    if !v.artifact_path.is_empty() {
        let field = "model_version.artifact_path";
        match ArtifactPath::parse(v.artifact_path.trim_end_matches('/'), field) {
            Ok(p) => crate::paths::assert_safe(p.as_str()),
            Err(e) => check::invalid(&e, field),
        }
    }
    if !v.source_uri.is_empty() {
        external_uri(&v.source_uri);
    }
    if !v.content_digest.is_empty() {
        match rules::digest("model_version.content_digest", &v.content_digest) {
            Ok(()) => {
                let hex = v.content_digest.strip_prefix("sha256:").expect("prefix");
                assert!(
                    hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                );
            }
            Err(e) => check::invalid(&e, "model_version.content_digest"),
        }
    }
    match rules::format("model_version.format", &v.format) {
        Ok(f) if v.format.is_empty() => assert_eq!(f, "custom"),
        Ok(f) => {
            assert!(FORMATS.contains(&f.as_str()), "{f:?}");
            assert_eq!(f, v.format.to_ascii_lowercase());
        }
        Err(e) => check::invalid(&e, "model_version.format"),
    }
    let sig = signature_in(v.signature.as_ref());
    let given = v.signature.clone().unwrap_or_default();
    assert_eq!(sig.inputs.len(), given.inputs.len());
    assert_eq!(sig.outputs.len(), given.outputs.len());
    match rules::signature("model_version.signature", &sig) {
        Ok(()) => {
            for side in [&sig.inputs, &sig.outputs] {
                assert!(side.len() <= MAX_TENSORS);
                let mut names = HashSet::new();
                for t in side {
                    assert!(names.insert(&t.name), "duplicate tensor {:?}", t.name);
                    assert!(!t.name.is_empty() && t.name.len() <= 256);
                    assert!(DTYPES.contains(&t.dtype.as_str()), "{:?}", t.dtype);
                    assert!(t.shape.len() <= MAX_DIMS);
                    assert!(t.shape.iter().all(|d| *d == -1 || *d > 0), "{:?}", t.shape);
                }
            }
        }
        Err(e) => check::invalid_under(&e, "model_version.signature"),
    }
    description(&v.description, "model_version.description");
    tags(&v.tags, "model_version.tags");
}

fn external_uri(uri: &str) {
    let field = "model_version.source_uri";
    match rules::external_uri(field, uri) {
        Ok(()) => {
            assert!(uri.len() <= MAX_URI);
            assert!(
                !uri.chars().any(|c| c.is_control() || c.is_whitespace()),
                "{uri:?}"
            );
            let (scheme, rest) = uri.split_once("://").expect("a scheme");
            assert!(EXTERNAL_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()));
            let host = rest.split('/').next().unwrap_or("");
            assert!(!host.is_empty() && !host.contains('@'), "{uri:?}");
            assert!(rest.split('/').all(|s| s != "." && s != ".."), "{uri:?}");
        }
        Err(e) => check::invalid(&e, field),
    }
}

/// `CreateRegisteredModel`: name (bare or `registeredModels/{m}`), description and tags.
pub(super) fn create_registered_model(r: &pb::CreateRegisteredModelRequest) {
    let Some(m) = &r.registered_model else {
        return;
    };
    let field = "registered_model.name";
    match ModelName::parse_lenient(&m.name, field) {
        Ok(n) => {
            let canonical = n.to_string();
            assert!(canonical == m.name || canonical == format!("registeredModels/{}", m.name));
        }
        Err(e) => check::invalid(&e, field),
    }
    description(&m.description, "registered_model.description");
    tags(&m.tags, "registered_model.tags");
}

/// `SetModelPolicy`: model and rules. Accepted rules have unique, well-formed names, an alias
/// that is `*` or valid, at most 50 conditions and 50 tags, known operators and finite values.
pub(super) fn set_model_policy(r: &pb::SetModelPolicyRequest) {
    let Some(p) = &r.policy else {
        return;
    };
    model_name(&p.registered_model, "policy.registered_model");
    let domain = rules_in(&p.rules);
    assert_eq!(domain.len(), p.rules.len());
    match policy::validate(&domain) {
        Ok(()) => {
            assert!(domain.len() <= MAX_RULES);
            let mut names = HashSet::new();
            for rule in &domain {
                assert!(names.insert(&rule.name), "duplicate rule {:?}", rule.name);
                assert!(!rule.name.is_empty() && rule.name.len() <= 128);
                assert!(
                    rule.alias == "*"
                        || steward_common::names::parse_alias(&rule.alias, "a").is_ok()
                );
                assert!(rule.metrics.len() <= 50 && rule.required_tags.len() <= 50);
                for c in &rule.metrics {
                    assert!(matches!(
                        c.op.as_str(),
                        ">=" | ">" | "<=" | "<" | "==" | "!="
                    ));
                    assert!(c.value.is_finite() && !c.metric.is_empty());
                }
            }
        }
        Err(e) => check::invalid_under(&e, "policy.rules"),
    }
}

/// `ReviewModelVersion`: the version reference, the decision and the comment.
pub(super) fn review_model_version(r: &pb::ReviewModelVersionRequest) {
    match VersionRef::parse(&r.name, "name") {
        Ok(v) => assert_eq!(v.to_string(), r.name),
        Err(e) => check::invalid(&e, "name"),
    }
    match decision(r.decision, "decision") {
        Ok(d) => {
            let wire = match d {
                ApprovalState::Pending => pb::ApprovalState::Pending,
                ApprovalState::Approved => pb::ApprovalState::Approved,
                ApprovalState::Rejected => pb::ApprovalState::Rejected,
            };
            assert_eq!(wire as i32, r.decision);
        }
        Err(e) => check::invalid(&e, "decision"),
    }
    description(&r.comment, "comment");
}

fn model_name(s: &str, field: &str) {
    match ModelName::parse(s, field) {
        Ok(n) => assert_eq!(n.to_string(), s),
        Err(e) => check::invalid(&e, field),
    }
}

fn description(s: &str, field: &str) {
    match validate::text(field, s, MAX_DESCRIPTION) {
        Ok(()) => assert!(s.len() <= MAX_DESCRIPTION && !s.contains('\0')),
        Err(e) => check::invalid(&e, field),
    }
}
