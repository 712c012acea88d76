//! Environments, deployments, revisions, rollouts, A/B tests and decisions.

use serde::{Deserialize, Serialize};
use steward_common::Error;

/// Basis points of all traffic.
pub const FULL: i32 = 10_000;
/// Max variants in a revision.
pub const MAX_VARIANTS: usize = 10;

/// An environment and its policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// Name.
    pub name: String,
    /// Promotion order.
    pub order: i64,
    /// Description.
    pub description: String,
    /// Variants must be APPROVED.
    pub require_approved: bool,
    /// Versions must have been deployed in this environment first ("" = none).
    pub require_previous_env: String,
    /// Versions must have a complete reproducibility manifest.
    #[serde(default)]
    pub require_reproducible: bool,
    /// Default upstream for non-ONNX versions.
    pub upstream_url: String,
    /// Created, ms.
    pub create_time: i64,
    /// Updated, ms.
    pub update_time: i64,
    /// Etag.
    pub revision: i64,
}

/// A variant of a revision, pinned to a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Variant {
    /// Unique name in the revision.
    pub name: String,
    /// Reference as given.
    pub model_version: String,
    /// Pinned number.
    pub version: i64,
    /// Weight in basis points.
    pub weight_bp: i32,
    /// Where the files are.
    pub artifact_uri: String,
    /// Format.
    pub format: String,
    /// Digest.
    pub content_digest: String,
    /// Upstream OIP endpoint (non-ONNX).
    pub upstream_url: String,
    /// Source run (to fetch model files through tracking), or empty.
    pub source_run: String,
    /// Artifact path under the run.
    pub artifact_path: String,
}

/// A revision of a deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    /// Deployment id.
    pub deployment: String,
    /// Number from 1.
    pub number: i64,
    /// Variants (weights sum to [`FULL`]).
    pub variants: Vec<Variant>,
    /// Shadow.
    pub shadow: Option<Variant>,
    /// Why.
    pub reason: String,
    /// Who.
    pub creator: String,
    /// When, ms.
    pub create_time: i64,
}

/// A deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// Id.
    pub id: String,
    /// Registered model id.
    pub model: String,
    /// Environment name.
    pub environment: String,
    /// Current revision number.
    pub current_revision: i64,
    /// Running rollout id or "".
    pub active_rollout: String,
    /// Running A/B test id or "".
    pub active_ab_test: String,
    /// Creator.
    pub creator: String,
    /// Created, ms.
    pub create_time: i64,
    /// Updated, ms.
    pub update_time: i64,
    /// Etag.
    pub revision: i64,
}

/// A rollout step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Canary weight.
    pub weight_bp: i32,
    /// Bake time, ms.
    pub bake_ms: i64,
}

/// Guardrails of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Guardrails {
    /// Max error rate (0 = unchecked).
    pub max_error_rate: f64,
    /// Max p99 latency ms (0 = unchecked).
    pub max_p99_latency_ms: f64,
    /// Min canary decisions per step before judging.
    pub min_requests: i64,
}

/// Rollout states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RolloutState {
    /// Controller advancing it.
    Running,
    /// Canary at 100%.
    Succeeded,
    /// Base revision re-applied.
    RolledBack,
}

impl RolloutState {
    /// Stored name.
    pub fn name(self) -> &'static str {
        match self {
            RolloutState::Running => "RUNNING",
            RolloutState::Succeeded => "SUCCEEDED",
            RolloutState::RolledBack => "ROLLED_BACK",
        }
    }
    /// From the stored name.
    pub fn from_name(s: &str) -> Option<Self> {
        [Self::Running, Self::Succeeded, Self::RolledBack]
            .into_iter()
            .find(|v| v.name() == s)
    }
}

/// One entry of a rollout's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutEvent {
    /// When, ms.
    pub time: i64,
    /// started, step, promoted, succeeded, rolled_back.
    pub kind: String,
    /// Step index.
    pub step: i32,
    /// Why.
    pub reason: String,
    /// Who ("controller" for automatic moves).
    pub actor: String,
}

/// A canary rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// Id.
    pub id: String,
    /// Deployment id.
    pub deployment: String,
    /// Version reference as given.
    pub model_version: String,
    /// The canary variant (pinned).
    pub canary: Variant,
    /// Steps.
    pub steps: Vec<Step>,
    /// Guardrails.
    pub guardrails: Guardrails,
    /// State.
    pub state: RolloutState,
    /// Current step index.
    pub current_step: i32,
    /// When the current step started, ms.
    pub step_start_time: i64,
    /// Revision it started from.
    pub base_revision: i64,
    /// Last reason.
    pub reason: String,
    /// History.
    pub history: Vec<RolloutEvent>,
    /// Creator.
    pub creator: String,
    /// Created, ms.
    pub create_time: i64,
    /// Updated, ms.
    pub update_time: i64,
    /// Etag (optimistic concurrency between replicas' controllers).
    pub revision: i64,
}

/// Primary metric kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetricKind {
    /// 0/1.
    Binary,
    /// Any finite value.
    Continuous,
}

impl MetricKind {
    /// Stored name.
    pub fn name(self) -> &'static str {
        match self {
            MetricKind::Binary => "BINARY",
            MetricKind::Continuous => "CONTINUOUS",
        }
    }
    /// From the stored name.
    pub fn from_name(s: &str) -> Option<Self> {
        [Self::Binary, Self::Continuous]
            .into_iter()
            .find(|v| v.name() == s)
    }
}

/// An A/B test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbTest {
    /// Id.
    pub id: String,
    /// Deployment id.
    pub deployment: String,
    /// Variant names; the first is the control.
    pub variants: Vec<String>,
    /// Metric name.
    pub metric: String,
    /// Metric kind.
    pub kind: MetricKind,
    /// Significance level.
    pub alpha: f64,
    /// Always-valid inference.
    pub sequential: bool,
    /// Running (false = concluded).
    pub running: bool,
    /// Winner, once concluded with a promotion.
    pub winner: String,
    /// Revision it runs on.
    pub revision: i64,
    /// Creator.
    pub creator: String,
    /// Created, ms.
    pub create_time: i64,
    /// Concluded, ms.
    pub conclude_time: Option<i64>,
}

/// A decision record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Request id (unique).
    pub request_id: String,
    /// When, ms.
    pub time: i64,
    /// Deployment id.
    pub deployment: String,
    /// Revision number.
    pub revision: i64,
    /// Variant name.
    pub variant: String,
    /// Model id.
    pub model: String,
    /// Version number.
    pub version: i64,
    /// route, infer, shadow.
    pub kind: String,
    /// Input digest (hex) or "".
    pub input_digest: String,
    /// Sampled inputs (JSON) or None.
    pub inputs_json: Option<String>,
    /// Inputs erased on request.
    pub inputs_erased: bool,
    /// Every ModelInfer decision's inputs (JSON), for the event monitoring consumes; never
    /// stored in the decision table ("" when none).
    pub event_inputs_json: String,
    /// Outputs JSON or "".
    pub outputs_json: String,
    /// Latency, µs.
    pub latency_us: i64,
    /// Error or "".
    pub error: String,
    /// Routing key.
    pub routing_key: String,
}

/// Checks a revision's variants: 1..=10, unique well-formed names, weights in 0..=10000
/// summing to 10000. `field` names the list.
pub fn check_variants(variants: &[Variant], field: &str) -> Result<(), Error> {
    if variants.is_empty() || variants.len() > MAX_VARIANTS {
        return Err(Error::invalid_field(
            field,
            format!("a revision has 1 to {MAX_VARIANTS} variants"),
        ));
    }
    let mut names = std::collections::HashSet::new();
    let mut total: i64 = 0;
    for (i, v) in variants.iter().enumerate() {
        check_variant_name(&v.name, &format!("{field}[{i}].name"))?;
        if !names.insert(v.name.as_str()) {
            return Err(Error::invalid_field(
                format!("{field}[{i}].name"),
                format!("duplicate variant name {:?}", v.name),
            ));
        }
        if !(0..=FULL).contains(&v.weight_bp) {
            return Err(Error::invalid_field(
                format!("{field}[{i}].weight_bp"),
                "must be between 0 and 10000 basis points",
            ));
        }
        total += i64::from(v.weight_bp);
    }
    if total != i64::from(FULL) {
        return Err(Error::invalid_field(
            format!("{field}[].weight_bp"),
            format!("the weights sum to {total} basis points; they must sum to 10000 (100%)"),
        ));
    }
    Ok(())
}

/// A variant name: like an alias (lowercase letter first; letters, digits, `-`, `_`; ≤ 64).
pub fn check_variant_name(name: &str, field: &str) -> Result<(), Error> {
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_field(
            field,
            "a lowercase letter, then lowercase letters, digits, '-' or '_' (at most 64)",
        ))
    }
}

/// Checks rollout steps: 1..=20, weights strictly increasing in 1..=10000, bakes ≥ 0 and
/// at most 7 days.
pub fn check_steps(steps: &[Step]) -> Result<(), Error> {
    if steps.is_empty() || steps.len() > 20 {
        return Err(Error::invalid_field("steps", "a rollout has 1 to 20 steps"));
    }
    let mut prev = 0;
    for (i, s) in steps.iter().enumerate() {
        if s.weight_bp <= prev || s.weight_bp > FULL {
            return Err(Error::invalid_field(
                format!("steps[{i}].weight_bp"),
                "step weights increase strictly, within 1..10000 basis points",
            ));
        }
        if !(0..=7 * 24 * 3_600_000).contains(&s.bake_ms) {
            return Err(Error::invalid_field(
                format!("steps[{i}].bake"),
                "between 0 and 7 days",
            ));
        }
        prev = s.weight_bp;
    }
    Ok(())
}

/// The variants of a canary step: the canary at `w`, the base variants scaled to `FULL - w`
/// (largest remainder, so the weights sum to exactly [`FULL`]).
pub fn canary_split(base: &[Variant], canary: &Variant, w: i32) -> Vec<Variant> {
    let mut out = vec![Variant {
        weight_bp: w,
        ..canary.clone()
    }];
    if w >= FULL {
        return out;
    }
    let rest = i64::from(FULL - w);
    let total: i64 = base
        .iter()
        .map(|v| i64::from(v.weight_bp))
        .sum::<i64>()
        .max(1);
    let mut shares: Vec<(usize, i64, i64)> = base
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let exact = i64::from(v.weight_bp) * rest;
            (i, exact / total, exact % total)
        })
        .collect();
    let mut left = rest - shares.iter().map(|s| s.1).sum::<i64>();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(shares[i].2));
    for i in order {
        if left == 0 {
            break;
        }
        shares[i].1 += 1;
        left -= 1;
    }
    for (i, w, _) in shares {
        let mut v = base[i].clone();
        v.weight_bp = w as i32;
        if v.name == canary.name {
            // The base's variant of the canary's name steps aside under a name no other
            // variant has (`canary-base`, else `canary-base-2`, ...).
            let taken = |n: &str| base.iter().any(|b| b.name == n);
            let mut name = format!("{}-base", v.name);
            let mut k = 2;
            while taken(&name) {
                name = format!("{}-base-{k}", v.name);
                k += 1;
            }
            v.name = name;
        }
        out.push(v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(name: &str, w: i32) -> Variant {
        Variant {
            name: name.into(),
            weight_bp: w,
            ..Default::default()
        }
    }

    #[test]
    fn variants_must_sum_to_full_and_be_named_well() {
        check_variants(&[v("a", 9000), v("b", 1000)], "variants").unwrap();
        let e = check_variants(&[v("a", 9000), v("b", 999)], "variants").unwrap_err();
        assert!(e.message.contains("9999") || e.violations[0].description.contains("9999"));
        assert_eq!(
            check_variants(&[v("a", 5000), v("a", 5000)], "variants")
                .unwrap_err()
                .violations[0]
                .field,
            "variants[1].name"
        );
        assert!(check_variants(&[v("A", 10000)], "variants").is_err());
        assert!(check_variants(&[v("a", -1), v("b", 10001)], "variants").is_err());
        assert!(check_variants(&[], "variants").is_err());
    }

    #[test]
    fn canary_split_keeps_the_total_and_the_base_proportions() {
        let base = [v("blue", 6667), v("green", 3333)];
        for w in [1, 500, 2500, 5000, 9999, 10000] {
            let s = canary_split(&base, &v("canary", 0), w);
            assert_eq!(s.iter().map(|x| x.weight_bp).sum::<i32>(), FULL, "{w}");
            assert_eq!(s[0].weight_bp, w);
        }
        let s = canary_split(&base, &v("canary", 0), 2500);
        assert_eq!((s[1].weight_bp, s[2].weight_bp), (5000, 2500));
    }

    #[test]
    fn steps_increase() {
        check_steps(&[
            Step {
                weight_bp: 500,
                bake_ms: 0,
            },
            Step {
                weight_bp: 10000,
                bake_ms: 10,
            },
        ])
        .unwrap();
        assert!(
            check_steps(&[
                Step {
                    weight_bp: 500,
                    bake_ms: 0
                },
                Step {
                    weight_bp: 500,
                    bake_ms: 0
                }
            ])
            .is_err()
        );
        assert!(
            check_steps(&[Step {
                weight_bp: 0,
                bake_ms: 0
            }])
            .is_err()
        );
        assert!(
            check_steps(&[Step {
                weight_bp: 100,
                bake_ms: -1
            }])
            .is_err()
        );
    }
}
