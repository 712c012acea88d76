//! Drift statistics estimated from two quantile sketches, with certified bounds.

use super::quantile::{QuantileSketch, WeightedCdf};
use crate::binning::{self, BinnedShares, HISTOGRAM_MIN_DISTINCT_EXCLUSIVE, ValueKind};
use crate::categorical::Aligned;
use crate::ks::{KsResult, ks_p_value};
use crate::numeric::WASSERSTEIN_MIN_STD;
use crate::select::{
    DISCRETE_MAX_UNIQUE, FeatureKind, Method, Overrides, Verdict, default_method, evaluate_counts,
};
use crate::sketch::FrequencySketch;
use crate::{DriftError, Result, Side, check_threshold};

/// A KS test estimated from sketches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ApproxKs {
    /// KS result at the estimated statistic (scipy's p-value rules with the true
    /// sample sizes).
    pub estimate: KsResult,
    /// Certified `|D_estimate - D_exact| <= statistic_error` (`ε_ref + ε_cur`).
    pub statistic_error: f64,
    /// The exact p-value lies in `[p_value_low, p_value_high]`.
    pub p_value_low: f64,
    /// Upper end of the certified p-value interval.
    pub p_value_high: f64,
}

/// A distance estimated from sketches with a certified absolute error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ApproxDistance {
    /// The estimate.
    pub value: f64,
    /// Certified `|value - exact| <= error`.
    pub error: f64,
}

/// A binned divergence estimated from sketches.
#[derive(Debug, Clone, PartialEq)]
pub struct ApproxBinned {
    /// PSI or Jensen-Shannon distance over the estimated shares.
    pub value: f64,
    /// Certified bound on every estimated bin share (before zero filling):
    /// `2·ε` of the respective sketch, the larger of the two. PSI and JS themselves
    /// have no useful worst-case bound (PSI is unbounded near empty bins).
    pub share_error: f64,
    /// The estimated shares (before zero filling).
    pub shares: BinnedShares,
}

fn non_empty(a: &QuantileSketch, b: &QuantileSketch) -> Result<()> {
    if a.count() == 0 {
        return Err(DriftError::EmptySample(Side::Reference));
    }
    if b.count() == 0 {
        return Err(DriftError::EmptySample(Side::Current));
    }
    Ok(())
}

/// Weighted merge walk: `(sup |F_a - F_b|, ∫ |F_a - F_b| dx)`.
fn weighted_walk(a: &WeightedCdf, b: &WeightedCdf) -> (f64, f64) {
    let (na, nb) = (a.total() as i128, b.total() as i128);
    let (va, vb) = (a.values(), b.values());
    let (mut i, mut j) = (0usize, 0usize);
    let (mut ca, mut cb) = (0i128, 0i128);
    let mut max_abs: i128 = 0;
    let mut area = 0.0f64;
    let mut prev = match (va.first(), vb.first()) {
        (Some(&x), Some(&y)) => x.min(y),
        _ => return (0.0, 0.0),
    };
    while i < va.len() || j < vb.len() {
        let v = match (va.get(i), vb.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        let diff = ca * nb - cb * na;
        area += diff.unsigned_abs() as f64 * (v - prev);
        prev = v;
        if i < va.len() && va[i] == v {
            ca += i128::from(a.weight(i));
            i += 1;
        }
        if j < vb.len() && vb[j] == v {
            cb += i128::from(b.weight(j));
            j += 1;
        }
        max_abs = max_abs.max((ca * nb - cb * na).abs());
    }
    let scale = na as f64 * nb as f64;
    (max_abs as f64 / scale, area / scale)
}

/// Two-sample KS from sketches: `D` within `ε_ref + ε_cur` of the exact statistic,
/// and a certified p-value interval.
pub fn ks(reference: &QuantileSketch, current: &QuantileSketch) -> Result<ApproxKs> {
    non_empty(reference, current)?;
    let (d, _) = weighted_walk(&reference.cdf(), &current.cdf());
    let err = reference.epsilon() + current.epsilon();
    let (n1, n2) = (reference.count(), current.count());
    let estimate = ks_p_value(n1, n2, d.clamp(0.0, 1.0))?;
    let (p_low, p_high) = if err == 0.0 {
        (estimate.p_value, estimate.p_value)
    } else {
        (
            ks_p_value(n1, n2, (d + err).clamp(0.0, 1.0))?.p_value,
            ks_p_value(n1, n2, (d - err).clamp(0.0, 1.0))?.p_value,
        )
    };
    Ok(ApproxKs {
        estimate,
        statistic_error: err,
        p_value_low: p_low,
        p_value_high: p_high,
    })
}

/// Wasserstein-1 from sketches, within `(ε_ref + ε_cur)·(max - min)` of the exact
/// distance (pooled exact minimum and maximum).
pub fn wasserstein(reference: &QuantileSketch, current: &QuantileSketch) -> Result<ApproxDistance> {
    non_empty(reference, current)?;
    let (_, w) = weighted_walk(&reference.cdf(), &current.cdf());
    let range = reference.max().max(current.max()) - reference.min().min(current.min());
    Ok(ApproxDistance {
        value: w,
        error: (reference.epsilon() + current.epsilon()) * range,
    })
}

/// Evidently's normed Wasserstein from sketches (the reference standard deviation
/// comes from exact moments).
pub fn wasserstein_normed(
    reference: &QuantileSketch,
    current: &QuantileSketch,
) -> Result<ApproxDistance> {
    let w = wasserstein(reference, current)?;
    let norm = reference.std().max(WASSERSTEIN_MIN_STD);
    Ok(ApproxDistance {
        value: w.value / norm,
        error: w.error / norm,
    })
}

/// Evidently's binned shares from sketches (see [`binning`]): histogram bins from
/// the exact pooled min / max / size, counts from the sketches' CDFs; one bin
/// per value when the reference has at most 20 distinct values (this needs the
/// exact value tables of both sketches).
fn binned(
    reference: &QuantileSketch,
    current: &QuantileSketch,
    kind: ValueKind,
) -> Result<ApproxBinned> {
    non_empty(reference, current)?;
    let ref_distinct = reference.distinct_values().map(<[_]>::len);
    let histogram = kind == ValueKind::Numeric
        && ref_distinct.is_none_or(|n| n > HISTOGRAM_MIN_DISTINCT_EXCLUSIVE);
    if !histogram {
        let (Some(a), Some(b)) = (reference.distinct_values(), current.distinct_values()) else {
            return Err(DriftError::Unsupported(
                "one bin per value needs both sketches to hold few distinct values".into(),
            ));
        };
        let aligned = align_tables(a, b);
        let shares = binning::shares_from_counts(&aligned.reference, &aligned.current)?;
        return Ok(ApproxBinned {
            value: 0.0,
            share_error: 0.0,
            shares,
        });
    }
    let edges = binning::sturges_edges(
        reference.min().min(current.min()),
        reference.max().max(current.max()),
        reference.count() + current.count(),
    )?;
    let shares_of = |s: &QuantileSketch| -> Vec<f64> {
        let cdf = s.cdf();
        let n = s.count();
        let last = edges.len() - 1;
        let mut below: Vec<u64> = edges[..last].iter().map(|&e| cdf.rank_below(e)).collect();
        below.push(n);
        below
            .windows(2)
            .map(|w| w[1].saturating_sub(w[0]) as f64 / n as f64)
            .collect()
    };
    let shares = BinnedShares {
        reference: shares_of(reference),
        current: shares_of(current),
        edges: Some(edges),
    };
    Ok(ApproxBinned {
        value: 0.0,
        share_error: 2.0 * reference.epsilon().max(current.epsilon()),
        shares,
    })
}

fn align_tables(a: &[(f64, u64)], b: &[(f64, u64)]) -> Aligned<f64> {
    let mut out = Aligned {
        keys: Vec::new(),
        reference: Vec::new(),
        current: Vec::new(),
    };
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let (k, r, c) = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.0 == y.0 => {
                i += 1;
                j += 1;
                (x.0, x.1, y.1)
            }
            (Some(x), Some(y)) if x.0 < y.0 => {
                i += 1;
                (x.0, x.1, 0)
            }
            (Some(_), Some(y)) => {
                j += 1;
                (y.0, 0, y.1)
            }
            (Some(x), None) => {
                i += 1;
                (x.0, x.1, 0)
            }
            (None, Some(y)) => {
                j += 1;
                (y.0, 0, y.1)
            }
            (None, None) => break,
        };
        out.keys.push(k);
        out.reference.push(r);
        out.current.push(c);
    }
    out
}

/// Evidently's PSI from sketches.
pub fn psi(
    reference: &QuantileSketch,
    current: &QuantileSketch,
    kind: ValueKind,
) -> Result<ApproxBinned> {
    let mut b = binned(reference, current, kind)?;
    let (mut r, mut c) = (b.shares.reference.clone(), b.shares.current.clone());
    binning::fill_zeroes(&mut r);
    binning::fill_zeroes(&mut c);
    b.value = binning::psi_from_shares(&r, &c)?;
    Ok(b)
}

/// Evidently's Jensen-Shannon distance from sketches.
pub fn jensen_shannon(
    reference: &QuantileSketch,
    current: &QuantileSketch,
    kind: ValueKind,
) -> Result<ApproxBinned> {
    let mut b = binned(reference, current, kind)?;
    b.value = binning::jensen_shannon_from_shares(&b.shares.reference, &b.shares.current)?;
    Ok(b)
}

/// A verdict computed from sketches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SketchVerdict {
    /// The verdict at the estimated score.
    pub verdict: Verdict,
    /// Certified interval containing the exact score, when one is known (KS
    /// p-value, normed Wasserstein, exact tables); `None` for PSI / JS estimates.
    pub score_range: Option<(f64, f64)>,
    /// `true` when the whole certified interval gives the same drift decision.
    pub decision_certain: bool,
}

fn sketch_verdict(
    method: Method,
    score: f64,
    threshold: f64,
    range: Option<(f64, f64)>,
) -> SketchVerdict {
    let drifted = method.is_drift(score, threshold);
    let certain = range.is_some_and(|(lo, hi)| {
        method.is_drift(lo, threshold) == drifted && method.is_drift(hi, threshold) == drifted
    });
    SketchVerdict {
        verdict: Verdict {
            method,
            score,
            threshold,
            drifted,
            kind: method.score_kind(),
        },
        score_range: range,
        decision_certain: certain,
    }
}

/// Drift verdict for a numeric-valued feature from two quantile sketches, with
/// the same method selection and thresholds as [`crate::select::evaluate_numeric`].
/// Chi-square, z and L-infinity need the exact value tables (few distinct values).
pub fn evaluate_numeric_sketches(
    kind: FeatureKind,
    reference: &QuantileSketch,
    current: &QuantileSketch,
    overrides: &Overrides,
) -> Result<SketchVerdict> {
    non_empty(reference, current)?;
    let tables = match (reference.distinct_values(), current.distinct_values()) {
        (Some(a), Some(b)) => Some(align_tables(a, b)),
        _ => None,
    };
    // Without both tables one side has > 64 distinct values, i.e. > 5.
    let n_unique = tables
        .as_ref()
        .map_or(DISCRETE_MAX_UNIQUE + 1, Aligned::n_unique);
    let method = overrides
        .method
        .unwrap_or_else(|| default_method(kind, reference.count(), n_unique));
    let threshold = overrides.threshold.unwrap_or(method.default_threshold());
    check_threshold(threshold)?;
    let value_kind = match kind {
        FeatureKind::Numeric => ValueKind::Numeric,
        _ => ValueKind::Categorical,
    };
    let exact = |s: f64| Some((s, s));
    Ok(match method {
        Method::Ks => {
            let r = ks(reference, current)?;
            sketch_verdict(
                method,
                r.estimate.p_value,
                threshold,
                Some((r.p_value_low, r.p_value_high)),
            )
        }
        Method::Wasserstein => {
            let w = wasserstein_normed(reference, current)?;
            let range = ((w.value - w.error).max(0.0), w.value + w.error);
            sketch_verdict(method, w.value, threshold, Some(range))
        }
        Method::Psi | Method::JensenShannon => {
            let b = if method == Method::Psi {
                psi(reference, current, value_kind)?
            } else {
                jensen_shannon(reference, current, value_kind)?
            };
            let range = (b.share_error == 0.0).then_some((b.value, b.value));
            sketch_verdict(method, b.value, threshold, range)
        }
        Method::Chi2 | Method::Z | Method::LInf => {
            let Some(aligned) = tables else {
                return Err(DriftError::Unsupported(format!(
                    "{} needs both sketches to hold few distinct values",
                    method.name()
                )));
            };
            let score = match method {
                Method::Chi2 => crate::categorical::chi_square(&aligned)?.p_value,
                Method::Z => crate::categorical::z_test(&aligned)?.p_value,
                _ => crate::categorical::l_infinity(&aligned)?,
            };
            sketch_verdict(method, score, threshold, exact(score))
        }
    })
}

/// Drift verdict for a categorical feature from two frequency sketches (exact).
pub fn evaluate_categorical_sketches(
    reference: &FrequencySketch,
    current: &FrequencySketch,
    overrides: &Overrides,
) -> Result<SketchVerdict> {
    let v = evaluate_counts(reference.counts(), current.counts(), overrides)?;
    Ok(SketchVerdict {
        verdict: v,
        score_range: Some((v.score, v.score)),
        decision_certain: true,
    })
}
