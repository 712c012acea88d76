//! Method selection, thresholds and verdicts, as Evidently 0.7.23 does for data
//! drift (`_get_default_stattest`, each stat test's `default_threshold` and drift
//! rule, and `get_dataset_drift`).
//!
//! Default method (`n_unique` counts distinct values of reference ∪ current):
//!
//! | reference rows | numeric | categorical / binary |
//! | --- | --- | --- |
//! | `<= 1000` | `n_unique <= 5`: chi-square if `> 2` else z; otherwise KS | chi-square if `n_unique > 2` else z |
//! | `> 1000` | `n_unique <= 5`: Jensen-Shannon; otherwise normed Wasserstein | Jensen-Shannon |
//!
//! Drift rules (exactly Evidently's comparisons): KS `p <= threshold`, chi-square
//! and z `p < threshold` (default 0.05); Wasserstein (normed), Jensen-Shannon and
//! PSI `score >= threshold` (default 0.1). L-infinity (not an Evidently test)
//! uses `score >= threshold` with default 0.1. Dataset drift: share of drifted
//! features `>= drift_share` (default 0.5).
//!
//! `Binary` features are treated exactly like categorical ones (Evidently has no
//! binary column type).

use std::collections::BTreeMap;

use crate::binning::{self, ValueKind};
use crate::categorical::{self, Aligned, Counts, align_counts, align_sorted_values};
use crate::multiple::benjamini_hochberg;
use crate::numeric::{self, count_distinct_union_sorted};
use crate::{DriftError, Result, Side, check_sorted, check_threshold, ks};

/// Reference size above which Evidently switches to distance-based defaults.
pub const SMALL_REFERENCE_MAX_ROWS: u64 = 1000;
/// Numeric features with at most this many distinct values are tested as discrete.
pub const DISCRETE_MAX_UNIQUE: usize = 5;
/// Default share of drifted features that flags the whole dataset.
pub const DEFAULT_DRIFT_SHARE: f64 = 0.5;

/// The kind of a feature, as declared in the model's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeatureKind {
    /// Continuous or count-valued numbers.
    Numeric,
    /// Labels.
    Categorical,
    /// Two-valued labels (treated as categorical).
    Binary,
}

/// A drift test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// Two-sample Kolmogorov-Smirnov (p-value), numeric data only.
    Ks,
    /// Chi-square goodness of fit against reference shares (p-value).
    Chi2,
    /// Two-proportion z-test (p-value).
    Z,
    /// Evidently's normed Wasserstein distance, numeric data only.
    Wasserstein,
    /// Jensen-Shannon distance over Evidently's bins.
    JensenShannon,
    /// Population stability index over Evidently's bins.
    Psi,
    /// L-infinity distance between category shares.
    LInf,
}

/// Whether a score is a p-value (small = drift) or a distance (large = drift).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScoreKind {
    /// Drift when the p-value is small.
    PValue,
    /// Drift when the distance is large.
    Distance,
}

impl Method {
    /// Evidently's stat-test name (`"l_infinity"` for [`Method::LInf`]).
    pub fn name(self) -> &'static str {
        match self {
            Method::Ks => "ks",
            Method::Chi2 => "chisquare",
            Method::Z => "z",
            Method::Wasserstein => "wasserstein",
            Method::JensenShannon => "jensenshannon",
            Method::Psi => "psi",
            Method::LInf => "l_infinity",
        }
    }

    /// Parses [`Method::name`] (case-insensitive; also accepts `chi2`, `js`, `linf`).
    pub fn from_name(name: &str) -> Option<Method> {
        Some(match name.to_ascii_lowercase().as_str() {
            "ks" => Method::Ks,
            "chisquare" | "chi2" | "chi_square" => Method::Chi2,
            "z" => Method::Z,
            "wasserstein" => Method::Wasserstein,
            "jensenshannon" | "js" | "jensen_shannon" => Method::JensenShannon,
            "psi" => Method::Psi,
            "l_infinity" | "linf" => Method::LInf,
            _ => return None,
        })
    }

    /// Evidently's default threshold.
    pub fn default_threshold(self) -> f64 {
        match self {
            Method::Ks | Method::Chi2 | Method::Z => 0.05,
            Method::Wasserstein | Method::JensenShannon | Method::Psi | Method::LInf => 0.1,
        }
    }

    /// What the score is.
    pub fn score_kind(self) -> ScoreKind {
        match self {
            Method::Ks | Method::Chi2 | Method::Z => ScoreKind::PValue,
            _ => ScoreKind::Distance,
        }
    }

    /// Evidently's drift rule for this test.
    pub fn is_drift(self, score: f64, threshold: f64) -> bool {
        match self {
            Method::Ks => score <= threshold,
            Method::Chi2 | Method::Z => score < threshold,
            _ => score >= threshold,
        }
    }
}

/// The outcome of one feature's drift test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// The test that ran.
    pub method: Method,
    /// The p-value or distance.
    pub score: f64,
    /// The threshold the score was compared with.
    pub threshold: f64,
    /// Whether the feature drifted.
    pub drifted: bool,
    /// What the score is.
    pub kind: ScoreKind,
}

impl Verdict {
    fn new(method: Method, score: f64, threshold: f64) -> Verdict {
        Verdict {
            method,
            score,
            threshold,
            drifted: method.is_drift(score, threshold),
            kind: method.score_kind(),
        }
    }
}

/// Per-feature overrides of the default method and/or threshold.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Overrides {
    /// Use this method instead of the default.
    pub method: Option<Method>,
    /// Use this threshold instead of the method's default.
    pub threshold: Option<f64>,
}

/// Evidently's `_get_default_stattest`.
pub fn default_method(kind: FeatureKind, reference_rows: u64, n_unique: usize) -> Method {
    let small = reference_rows <= SMALL_REFERENCE_MAX_ROWS;
    match (kind, small) {
        (FeatureKind::Numeric, true) if n_unique <= DISCRETE_MAX_UNIQUE => {
            if n_unique > 2 {
                Method::Chi2
            } else {
                Method::Z
            }
        }
        (FeatureKind::Numeric, true) => Method::Ks,
        (FeatureKind::Categorical | FeatureKind::Binary, true) => {
            if n_unique > 2 {
                Method::Chi2
            } else {
                Method::Z
            }
        }
        (FeatureKind::Numeric, false) if n_unique <= DISCRETE_MAX_UNIQUE => Method::JensenShannon,
        (FeatureKind::Numeric, false) => Method::Wasserstein,
        (FeatureKind::Categorical | FeatureKind::Binary, false) => Method::JensenShannon,
    }
}

fn resolve(default: Method, overrides: &Overrides) -> Result<(Method, f64)> {
    let method = overrides.method.unwrap_or(default);
    let threshold = overrides.threshold.unwrap_or(method.default_threshold());
    check_threshold(threshold)?;
    Ok((method, threshold))
}

fn categorical_score<K>(method: Method, aligned: &Aligned<K>, data: &'static str) -> Result<f64> {
    match method {
        Method::Chi2 => Ok(categorical::chi_square(aligned)?.p_value),
        Method::Z => Ok(categorical::z_test(aligned)?.p_value),
        Method::LInf => categorical::l_infinity(aligned),
        Method::Psi => binning::psi_categorical(aligned),
        Method::JensenShannon => binning::jensen_shannon_categorical(aligned),
        Method::Ks | Method::Wasserstein => Err(DriftError::MethodNotApplicable {
            method: method.name(),
            data,
        }),
    }
}

/// Drift verdict for a feature whose values are numbers (sorted, finite,
/// non-empty). For `Categorical` / `Binary` kinds the numbers are category codes
/// compared by equality.
pub fn evaluate_numeric(
    kind: FeatureKind,
    reference: &[f64],
    current: &[f64],
    overrides: &Overrides,
) -> Result<Verdict> {
    check_sorted(reference, Side::Reference)?;
    check_sorted(current, Side::Current)?;
    let n_unique = count_distinct_union_sorted(reference, current, DISCRETE_MAX_UNIQUE + 1);
    let default = default_method(kind, reference.len() as u64, n_unique);
    let (method, threshold) = resolve(default, overrides)?;
    let value_kind = match kind {
        FeatureKind::Numeric => ValueKind::Numeric,
        FeatureKind::Categorical | FeatureKind::Binary => ValueKind::Categorical,
    };
    let score = match method {
        Method::Ks => ks::ks_2samp(reference, current)?.p_value,
        Method::Wasserstein => numeric::wasserstein_normed(reference, current)?,
        Method::Psi => binning::psi_numeric(reference, current, value_kind)?,
        Method::JensenShannon => binning::jensen_shannon_numeric(reference, current, value_kind)?,
        Method::Chi2 | Method::Z | Method::LInf => {
            let aligned = align_sorted_values(reference, current)?;
            categorical_score(method, &aligned, "numeric values")?
        }
    };
    Ok(Verdict::new(method, score, threshold))
}

/// Drift verdict for a categorical (or binary) feature given category counts.
pub fn evaluate_categorical(
    reference: &Counts,
    current: &Counts,
    overrides: &Overrides,
) -> Result<Verdict> {
    evaluate_counts(reference, current, overrides)
}

/// [`evaluate_categorical`] for any ordered key type.
pub fn evaluate_counts<K: Ord + Clone>(
    reference: &BTreeMap<K, u64>,
    current: &BTreeMap<K, u64>,
    overrides: &Overrides,
) -> Result<Verdict> {
    let aligned = align_counts(reference, current);
    let reference_rows = aligned.reference_total();
    if reference_rows == 0 {
        return Err(DriftError::EmptySample(Side::Reference));
    }
    if aligned.current_total() == 0 {
        return Err(DriftError::EmptySample(Side::Current));
    }
    let default = default_method(FeatureKind::Categorical, reference_rows, aligned.n_unique());
    let (method, threshold) = resolve(default, overrides)?;
    let score = categorical_score(method, &aligned, "categorical data")?;
    Ok(Verdict::new(method, score, threshold))
}

/// A feature's data for [`evaluate`].
#[derive(Debug, Clone, Copy)]
pub enum FeatureData<'a> {
    /// Sorted, finite, non-empty numbers (values or category codes).
    Numeric {
        /// Reference sample, sorted ascending.
        reference: &'a [f64],
        /// Current sample, sorted ascending.
        current: &'a [f64],
    },
    /// Category counts.
    Categorical {
        /// Reference counts.
        reference: &'a Counts,
        /// Current counts.
        current: &'a Counts,
    },
}

/// Drift verdict for one feature: Evidently's default method for its kind and
/// data (or the override), Evidently's threshold (or the override) and rule.
/// A `Numeric` kind requires numeric data.
pub fn evaluate(
    kind: FeatureKind,
    data: FeatureData<'_>,
    overrides: &Overrides,
) -> Result<Verdict> {
    match data {
        FeatureData::Numeric { reference, current } => {
            evaluate_numeric(kind, reference, current, overrides)
        }
        FeatureData::Categorical { reference, current } => {
            if kind == FeatureKind::Numeric {
                return Err(DriftError::InvalidArgument(
                    "a numeric feature needs numeric data, got category counts".into(),
                ));
            }
            evaluate_categorical(reference, current, overrides)
        }
    }
}

/// Dataset-level drift (Evidently `get_dataset_drift`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DatasetDrift {
    /// Number of drifted features.
    pub drifted_features: usize,
    /// Number of features evaluated.
    pub total_features: usize,
    /// `drifted_features / total_features`.
    pub share: f64,
    /// `share >= drift_share`.
    pub drifted: bool,
}

/// Share of drifted features compared with `drift_share` (default 0.5).
pub fn dataset_drift(verdicts: &[Verdict], drift_share: Option<f64>) -> Result<DatasetDrift> {
    let drift_share = drift_share.unwrap_or(DEFAULT_DRIFT_SHARE);
    if !(0.0..=1.0).contains(&drift_share) {
        return Err(DriftError::InvalidArgument(format!(
            "drift_share must be in [0, 1], got {drift_share}"
        )));
    }
    if verdicts.is_empty() {
        return Err(DriftError::InvalidArgument("no feature verdicts".into()));
    }
    let drifted_features = verdicts.iter().filter(|v| v.drifted).count();
    let share = drifted_features as f64 / verdicts.len() as f64;
    Ok(DatasetDrift {
        drifted_features,
        total_features: verdicts.len(),
        share,
        drifted: share >= drift_share,
    })
}

/// Optional Benjamini-Hochberg adjustment across features: every p-value verdict
/// gets its BH-adjusted p-value as score and is re-decided with its own method's
/// rule and threshold; distance verdicts are returned unchanged.
pub fn adjust_p_values_bh(verdicts: &[Verdict]) -> Result<Vec<Verdict>> {
    let idx: Vec<usize> = (0..verdicts.len())
        .filter(|&i| verdicts[i].kind == ScoreKind::PValue)
        .collect();
    let p: Vec<f64> = idx.iter().map(|&i| verdicts[i].score).collect();
    let bh = benjamini_hochberg(&p, 0.05)?;
    let mut out = verdicts.to_vec();
    for (k, &i) in idx.iter().enumerate() {
        let v = &verdicts[i];
        out[i] = Verdict::new(v.method, bh.adjusted[k], v.threshold);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_table() {
        use FeatureKind::*;
        assert_eq!(default_method(Numeric, 1000, 6), Method::Ks);
        assert_eq!(default_method(Numeric, 1000, 5), Method::Chi2);
        assert_eq!(default_method(Numeric, 1000, 2), Method::Z);
        assert_eq!(default_method(Categorical, 10, 3), Method::Chi2);
        assert_eq!(default_method(Binary, 10, 2), Method::Z);
        assert_eq!(default_method(Numeric, 1001, 6), Method::Wasserstein);
        assert_eq!(default_method(Numeric, 1001, 5), Method::JensenShannon);
        assert_eq!(default_method(Categorical, 1001, 2), Method::JensenShannon);
    }

    #[test]
    fn drift_rules_follow_evidently() {
        assert!(Method::Ks.is_drift(0.05, 0.05));
        assert!(!Method::Chi2.is_drift(0.05, 0.05));
        assert!(!Method::Z.is_drift(0.05, 0.05));
        assert!(Method::Wasserstein.is_drift(0.1, 0.1));
        assert!(Method::Psi.is_drift(0.1, 0.1));
    }

    #[test]
    fn dataset_share() {
        let v = Verdict::new(Method::Psi, 0.2, 0.1);
        let w = Verdict::new(Method::Psi, 0.0, 0.1);
        let d = dataset_drift(&[v, w], None).unwrap();
        assert_eq!(d.share, 0.5);
        assert!(d.drifted);
        assert!(dataset_drift(&[], None).is_err());
    }

    #[test]
    fn method_names_round_trip() {
        for m in [
            Method::Ks,
            Method::Chi2,
            Method::Z,
            Method::Wasserstein,
            Method::JensenShannon,
            Method::Psi,
            Method::LInf,
        ] {
            assert_eq!(Method::from_name(m.name()), Some(m));
        }
    }

    #[test]
    fn categorical_kind_mismatch() {
        let c: Counts = [("a".to_string(), 3u64)].into_iter().collect();
        let data = FeatureData::Categorical {
            reference: &c,
            current: &c,
        };
        assert!(evaluate(FeatureKind::Numeric, data, &Overrides::default()).is_err());
        let ok = evaluate(FeatureKind::Binary, data, &Overrides::default()).unwrap();
        assert_eq!(ok.method, Method::Z);
        assert_eq!(ok.score, 1.0);
    }
}
