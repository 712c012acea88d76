//! Evidently 0.7.23 binning (`get_binned_data`) and the two divergences built on it:
//! PSI and the Jensen-Shannon distance.
//!
//! Binning rule (read from Evidently's source; note that the `n_bins=30` argument
//! of its `psi` / `jensenshannon` tests is **not** used by `get_binned_data`):
//! * numeric feature whose **reference** has more than 20 distinct values:
//!   `numpy.histogram_bin_edges(concat(reference, current), bins="sturges")`, i.e.
//!   `ceil(ptp / (ptp / (log2(N) + 1)))` equal-width bins from `linspace(min, max)`
//!   over the pooled sample, then `numpy.histogram` counts (bins half-open
//!   `[e_i, e_{i+1})`, the last one closed) divided by each sample's size;
//! * otherwise (categorical, or numeric with at most 20 distinct reference values):
//!   the share of each distinct value over the union of values;
//! * PSI (`feel_zeroes=True`): zero shares are replaced, per sample, by
//!   `min(non-zero share) / 1e6` if that minimum is `<= 1e-4`, else by `1e-4`.
//!   Jensen-Shannon uses the shares unchanged (`feel_zeroes=False`).
//!
//! `PSI = Σ (ref - cur) · ln(ref / cur)`; Jensen-Shannon distance is
//! `scipy.spatial.distance.jensenshannon(ref, cur)` (natural log):
//! `sqrt((KL(p‖m) + KL(q‖m)) / 2)` with `m = (p + q) / 2` after normalising p, q.

use crate::categorical::{Aligned, align_sorted_values};
use crate::numeric::count_distinct_sorted;
use crate::{DriftError, Result, Side, check_sorted};

/// Evidently bins numeric features with a histogram only when the reference has
/// more distinct values than this.
pub const HISTOGRAM_MIN_DISTINCT_EXCLUSIVE: usize = 20;

/// Evidently's replacement for empty bins when the smallest non-zero share is large.
pub const ZERO_SHARE_REPLACEMENT: f64 = 0.0001;

/// How a feature's values are turned into bins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// Numeric feature: histogram when the reference has > 20 distinct values.
    Numeric,
    /// Categorical feature coded as numbers: always one bin per distinct value.
    Categorical,
}

/// Per-bin shares of both samples.
#[derive(Debug, Clone, PartialEq)]
pub struct BinnedShares {
    /// Reference share per bin (sums to 1 before zero filling).
    pub reference: Vec<f64>,
    /// Current share per bin.
    pub current: Vec<f64>,
    /// Histogram edges when the histogram rule applied (`len = bins + 1`); `None`
    /// for one-bin-per-value.
    pub edges: Option<Vec<f64>>,
}

/// `numpy.histogram_bin_edges(pooled, bins="sturges")` from the pooled sample's
/// minimum, maximum and size, reproducing numpy's floating-point steps exactly.
pub fn sturges_edges(min: f64, max: f64, pooled_len: u64) -> Result<Vec<f64>> {
    if pooled_len == 0 {
        return Err(DriftError::EmptySample(Side::Reference));
    }
    if !min.is_finite() || !max.is_finite() || min > max {
        return Err(DriftError::InvalidArgument(format!(
            "histogram range [{min}, {max}] is not finite and ordered"
        )));
    }
    let (mut first, mut last) = (min, max);
    if first == last {
        first -= 0.5;
        last += 0.5;
    }
    let ptp = max - min;
    let width = ptp / ((pooled_len as f64).log2() + 1.0);
    let n_bins = if width > 0.0 {
        ((last - first) / width).ceil() as usize
    } else {
        1
    };
    let n_bins = n_bins.max(1);
    let delta = last - first;
    let div = n_bins as f64;
    let step = delta / div;
    let mut edges: Vec<f64> = (0..=n_bins)
        .map(|i| {
            let y = if step == 0.0 {
                i as f64 / div * delta
            } else {
                i as f64 * step
            };
            y + first
        })
        .collect();
    edges[n_bins] = last;
    if edges.windows(2).any(|w| w[0] >= w[1]) {
        return Err(DriftError::InvalidArgument(format!(
            "too many bins for data range [{min}, {max}]"
        )));
    }
    Ok(edges)
}

/// `numpy.histogram(sorted, edges)[0]` for a sorted sample: bin `i` counts
/// `edges[i] <= x < edges[i+1]`, the last bin also counts `x == edges[last]`;
/// values outside the edges are not counted.
pub fn histogram_counts(sorted: &[f64], edges: &[f64]) -> Vec<u64> {
    if edges.len() < 2 {
        return Vec::new();
    }
    let below = |e: f64| sorted.partition_point(|&x| x < e) as u64;
    let mut cum: Vec<u64> = edges[..edges.len() - 1].iter().map(|&e| below(e)).collect();
    let last = edges[edges.len() - 1];
    cum.push(sorted.partition_point(|&x| x <= last) as u64);
    cum.windows(2).map(|w| w[1] - w[0]).collect()
}

/// Evidently's zero replacement (`feel_zeroes=True`), in place.
pub fn fill_zeroes(shares: &mut [f64]) {
    let min_nonzero = shares
        .iter()
        .copied()
        .filter(|&s| s != 0.0)
        .fold(f64::INFINITY, f64::min);
    if !min_nonzero.is_finite() {
        return;
    }
    let replacement = if min_nonzero <= ZERO_SHARE_REPLACEMENT {
        min_nonzero / 1_000_000.0
    } else {
        ZERO_SHARE_REPLACEMENT
    };
    for s in shares.iter_mut().filter(|s| **s == 0.0) {
        *s = replacement;
    }
}

/// Shares per bin from aligned counts (`count / sample size`).
pub fn shares_from_counts(reference: &[u64], current: &[u64]) -> Result<BinnedShares> {
    let n1: u64 = reference.iter().sum();
    let n2: u64 = current.iter().sum();
    if n1 == 0 {
        return Err(DriftError::EmptySample(Side::Reference));
    }
    if n2 == 0 {
        return Err(DriftError::EmptySample(Side::Current));
    }
    if reference.len() != current.len() {
        return Err(DriftError::InvalidArgument(
            "reference and current bins differ in length".into(),
        ));
    }
    Ok(BinnedShares {
        reference: reference.iter().map(|&c| c as f64 / n1 as f64).collect(),
        current: current.iter().map(|&c| c as f64 / n2 as f64).collect(),
        edges: None,
    })
}

/// Evidently's `get_binned_data` for two sorted numeric samples (shares before
/// zero filling; apply [`fill_zeroes`] for PSI).
pub fn binned_shares_numeric(
    reference: &[f64],
    current: &[f64],
    kind: ValueKind,
) -> Result<BinnedShares> {
    check_sorted(reference, Side::Reference)?;
    check_sorted(current, Side::Current)?;
    let histogram = kind == ValueKind::Numeric
        && count_distinct_sorted(reference, HISTOGRAM_MIN_DISTINCT_EXCLUSIVE + 1)
            > HISTOGRAM_MIN_DISTINCT_EXCLUSIVE;
    if !histogram {
        let aligned = align_sorted_values(reference, current)?;
        return shares_from_counts(&aligned.reference, &aligned.current);
    }
    let min = reference[0].min(current[0]);
    let max = reference[reference.len() - 1].max(current[current.len() - 1]);
    let edges = sturges_edges(min, max, (reference.len() + current.len()) as u64)?;
    let (n1, n2) = (reference.len() as f64, current.len() as f64);
    let reference_shares = histogram_counts(reference, &edges)
        .into_iter()
        .map(|c| c as f64 / n1)
        .collect();
    let current_shares = histogram_counts(current, &edges)
        .into_iter()
        .map(|c| c as f64 / n2)
        .collect();
    Ok(BinnedShares {
        reference: reference_shares,
        current: current_shares,
        edges: Some(edges),
    })
}

fn check_shares(reference: &[f64], current: &[f64]) -> Result<()> {
    if reference.len() != current.len() || reference.is_empty() {
        return Err(DriftError::InvalidArgument(
            "share vectors must be non-empty and of equal length".into(),
        ));
    }
    let bad = |v: &[f64]| v.iter().any(|s| !s.is_finite() || *s < 0.0);
    if bad(reference) {
        return Err(DriftError::NonFinite(Side::Reference));
    }
    if bad(current) {
        return Err(DriftError::NonFinite(Side::Current));
    }
    Ok(())
}

/// Population stability index over (zero-filled) shares:
/// `Σ (ref - cur) · ln(ref / cur)`.
pub fn psi_from_shares(reference: &[f64], current: &[f64]) -> Result<f64> {
    check_shares(reference, current)?;
    Ok(reference
        .iter()
        .zip(current)
        .map(|(&r, &c)| (r - c) * (r / c).ln())
        .sum())
}

/// `scipy.special.rel_entr(x, y)`.
fn rel_entr(x: f64, y: f64) -> f64 {
    if x > 0.0 && y > 0.0 {
        x * (x / y).ln()
    } else if x == 0.0 && y >= 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// `scipy.spatial.distance.jensenshannon(reference, current)` (natural log).
pub fn jensen_shannon_from_shares(reference: &[f64], current: &[f64]) -> Result<f64> {
    check_shares(reference, current)?;
    let sp: f64 = reference.iter().sum();
    let sq: f64 = current.iter().sum();
    if sp <= 0.0 || sq <= 0.0 {
        return Err(DriftError::InvalidArgument("shares sum to zero".into()));
    }
    let (mut left, mut right) = (0.0, 0.0);
    for (&r, &c) in reference.iter().zip(current) {
        let p = r / sp;
        let q = c / sq;
        let m = (p + q) / 2.0;
        left += rel_entr(p, m);
        right += rel_entr(q, m);
    }
    Ok(((left + right) / 2.0).sqrt())
}

/// Evidently's `psi` for two sorted numeric samples.
pub fn psi_numeric(reference: &[f64], current: &[f64], kind: ValueKind) -> Result<f64> {
    let mut shares = binned_shares_numeric(reference, current, kind)?;
    fill_zeroes(&mut shares.reference);
    fill_zeroes(&mut shares.current);
    psi_from_shares(&shares.reference, &shares.current)
}

/// Evidently's `jensenshannon` for two sorted numeric samples.
pub fn jensen_shannon_numeric(reference: &[f64], current: &[f64], kind: ValueKind) -> Result<f64> {
    let shares = binned_shares_numeric(reference, current, kind)?;
    jensen_shannon_from_shares(&shares.reference, &shares.current)
}

/// Evidently's `psi` for categorical counts.
pub fn psi_categorical<K>(aligned: &Aligned<K>) -> Result<f64> {
    let mut shares = shares_from_counts(&aligned.reference, &aligned.current)?;
    fill_zeroes(&mut shares.reference);
    fill_zeroes(&mut shares.current);
    psi_from_shares(&shares.reference, &shares.current)
}

/// Evidently's `jensenshannon` for categorical counts.
pub fn jensen_shannon_categorical<K>(aligned: &Aligned<K>) -> Result<f64> {
    let shares = shares_from_counts(&aligned.reference, &aligned.current)?;
    jensen_shannon_from_shares(&shares.reference, &shares.current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_histogram_semantics() {
        let edges = [0.0, 1.0, 2.0, 3.0];
        let counts = histogram_counts(&[0.0, 0.5, 1.0, 2.0, 2.5, 3.0, 3.0], &edges);
        assert_eq!(counts, vec![2, 1, 4]);
    }

    #[test]
    fn sturges_bin_count() {
        // numpy.histogram_bin_edges(np.arange(100.0), bins="sturges") -> 9 bins
        let edges = sturges_edges(0.0, 99.0, 100).unwrap();
        assert_eq!(edges.len(), 9);
        assert_eq!(edges[0], 0.0);
        assert_eq!(edges[8], 99.0);
    }

    #[test]
    fn zero_fill_rules() {
        let mut a = vec![0.5, 0.0, 0.5];
        fill_zeroes(&mut a);
        assert_eq!(a[1], 0.0001);
        let mut b = vec![0.99995, 0.00005, 0.0];
        fill_zeroes(&mut b);
        assert_eq!(b[2], 0.00005 / 1e6);
    }

    #[test]
    fn identical_shares_give_zero() {
        let s = [0.2, 0.3, 0.5];
        assert_eq!(psi_from_shares(&s, &s).unwrap(), 0.0);
        assert_eq!(jensen_shannon_from_shares(&s, &s).unwrap(), 0.0);
    }
}
