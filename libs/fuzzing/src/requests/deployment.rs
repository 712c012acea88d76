//! Deployment requests: deployments (variants and traffic split) and rollouts.

use std::collections::HashSet;

use steward_common::names::ModelName;
use steward_deployment::api::convert::{guardrails, spec, steps};
use steward_deployment::api::service::dep_id;
use steward_deployment::app::rollouts::CANARY;
use steward_deployment::domain::routing::{bucket, pick};
use steward_deployment::domain::{
    FULL, MAX_VARIANTS, Variant, canary_split, check_steps, check_variants,
};
use steward_proto::deployment as pb;

use crate::check;

/// `CreateDeployment`: model, deployment name and variants (converted with `spec`, then
/// checked with `check_variants` as the service does once the versions are resolved).
///
/// Accepted variants are 1 to [`MAX_VARIANTS`] with unique valid names and weights summing
/// to [`FULL`]; routing then sends every bucket to a variant with a weight, and a canary split
/// of them at any step weight keeps the weights summing to [`FULL`].
pub(super) fn create_deployment(r: &pb::CreateDeploymentRequest) {
    if let Some(d) = &r.deployment {
        let field = "deployment.registered_model";
        if let Err(e) = ModelName::parse(&d.registered_model, field) {
            check::invalid(&e, field);
        }
        if !d.name.is_empty() {
            match dep_id(&d.name, "deployment.name") {
                Ok(id) => assert!(d.name == id || d.name == format!("deployments/{id}")),
                Err(e) => check::invalid(&e, "deployment.name"),
            }
        }
    }
    let variants: Vec<Variant> = r.variants.iter().map(variant).collect();
    if let Some(s) = &r.shadow {
        let shadow = variant(s);
        assert_eq!(shadow.name, s.name);
    }
    match check_variants(&variants, "variants") {
        Ok(()) => {
            assert!((1..=MAX_VARIANTS).contains(&variants.len()));
            let names: HashSet<&str> = variants.iter().map(|v| v.name.as_str()).collect();
            assert_eq!(names.len(), variants.len(), "duplicate variant names");
            assert!(variants.iter().all(|v| (0..=FULL).contains(&v.weight_bp)));
            assert_eq!(
                variants.iter().map(|v| i64::from(v.weight_bp)).sum::<i64>(),
                i64::from(FULL)
            );
            routes(&variants, r);
            for w in [1, FULL / 3, FULL / 2, FULL - 1, FULL] {
                split(&variants, w);
            }
        }
        Err(e) => check::invalid_under(&e, "variants"),
    }
}

/// A variant as the service builds it from the wire (before the version is resolved).
fn variant(v: &pb::Variant) -> Variant {
    let s = spec(v);
    Variant {
        name: s.name,
        model_version: s.model_version,
        weight_bp: s.weight_bp,
        upstream_url: s.upstream_url,
        ..Variant::default()
    }
}

/// Routing keys derived from the request land on variants that have traffic.
fn routes(variants: &[Variant], r: &pb::CreateDeploymentRequest) {
    let deployment = r.deployment.as_ref().map(|d| d.name.as_str()).unwrap_or("");
    for key in [r.request_id.as_str(), deployment, "user-1"] {
        let b = bucket(deployment, key);
        assert!((0..FULL).contains(&b), "bucket {b}");
        let v = pick(variants, b);
        assert!(
            v.weight_bp > 0,
            "bucket {b} routed to {v:?} without traffic"
        );
    }
    for b in [0, FULL - 1] {
        assert!(pick(variants, b).weight_bp > 0);
    }
}

/// A canary split of valid `base` variants at weight `w`: the canary first at `w`, the base
/// variants scaled so that all weights sum to [`FULL`].
fn split(base: &[Variant], w: i32) {
    let canary = Variant {
        name: CANARY.into(),
        weight_bp: 0,
        ..Variant::default()
    };
    let out = canary_split(base, &canary, w);
    assert_eq!(out[0].name, CANARY);
    assert_eq!(out[0].weight_bp, w);
    assert_eq!(out.len(), if w >= FULL { 1 } else { base.len() + 1 });
    assert!(
        out.iter().all(|v| (0..=FULL).contains(&v.weight_bp)),
        "{out:?}"
    );
    assert_eq!(
        out.iter().map(|v| i64::from(v.weight_bp)).sum::<i64>(),
        i64::from(FULL),
        "{out:?}"
    );
    let names: HashSet<&str> = out.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        names.len(),
        out.len(),
        "a canary split has duplicate variant names: {out:?}"
    );
}

/// `StartRollout`: deployment name, steps and guardrails. Accepted steps (after
/// `check_steps`) increase strictly within 1..=[`FULL`] and bake 0 to 7 days; accepted
/// guardrails are an error rate in 0..=1, a finite non-negative latency and a non-negative
/// count. Every accepted step weight splits a few fixed base revisions correctly.
pub(super) fn start_rollout(r: &pb::StartRolloutRequest) {
    if let Err(e) = dep_id(&r.deployment, "deployment") {
        check::invalid(&e, "deployment");
    }
    match steps(&r.steps) {
        Ok(s) => {
            assert_eq!(s.len(), r.steps.len());
            assert!(s.iter().all(|s| s.bake_ms >= 0));
            match check_steps(&s) {
                Ok(()) => {
                    assert!((1..=20).contains(&s.len()));
                    let mut prev = 0;
                    for step in &s {
                        assert!(step.weight_bp > prev && step.weight_bp <= FULL);
                        assert!(step.bake_ms <= 7 * 24 * 3_600_000);
                        prev = step.weight_bp;
                        for base in bases() {
                            split(&base, step.weight_bp);
                        }
                    }
                }
                Err(e) => check::invalid_under(&e, "steps"),
            }
        }
        Err(e) => check::invalid_under(&e, "steps"),
    }
    match guardrails(r.guardrails.as_ref()) {
        Ok(g) => {
            assert!((0.0..=1.0).contains(&g.max_error_rate), "{g:?}");
            assert!(
                g.max_p99_latency_ms.is_finite() && g.max_p99_latency_ms >= 0.0,
                "{g:?}"
            );
            assert!(g.min_requests >= 0, "{g:?}");
        }
        Err(e) => check::invalid_under(&e, "guardrails"),
    }
}

/// A few valid base revisions.
fn bases() -> [Vec<Variant>; 3] {
    let v = |name: &str, w: i32| Variant {
        name: name.into(),
        weight_bp: w,
        ..Variant::default()
    };
    [
        vec![v("stable", FULL)],
        vec![v("a", 3333), v("b", 3333), v("c", 3334)],
        vec![v(CANARY, 9_999), v("x", 1), v("y", 0)],
    ]
}
