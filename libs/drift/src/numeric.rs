//! Numeric samples: sorting, Wasserstein-1, the Evidently-normalised Wasserstein
//! distance, population standard deviation and distinct-value counting.
//!
//! All statistics take **sorted** slices so a caller sorts each feature once (with
//! [`sort_f64`]) and reuses it for KS, Wasserstein, binning and method selection.

use crate::ks::{self, KsResult};
use crate::{Result, Side, check_sorted};

/// Evidently's floor for the normalising standard deviation of the reference.
pub const WASSERSTEIN_MIN_STD: f64 = 0.001;

/// Sorts ascending in IEEE total order (`f64::total_cmp`: -0.0 before +0.0, NaNs
/// at the ends). Large slices are mapped to order-preserving `u64` keys and sorted
/// as integers (pattern-defeating quicksort on plain integer comparisons), about
/// 2.5x faster than `sort_unstable_by(f64::total_cmp)` on a million values.
pub fn sort_f64(values: &mut [f64]) {
    const SMALL: usize = 256;
    if values.len() <= SMALL {
        values.sort_unstable_by(f64::total_cmp);
        return;
    }
    let mut keys: Vec<u64> = values.iter().map(|v| order_key(v.to_bits())).collect();
    keys.sort_unstable();
    for (v, k) in values.iter_mut().zip(&keys) {
        *v = f64::from_bits(from_order_key(*k));
    }
}

#[inline]
fn order_key(bits: u64) -> u64 {
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

#[inline]
fn from_order_key(key: u64) -> u64 {
    if key >> 63 == 1 {
        key & !(1 << 63)
    } else {
        !key
    }
}

/// Removes NaN and ±infinity in place (Evidently drops them before every drift
/// test) and returns how many were removed, i.e. the missing-value count.
pub fn retain_finite(values: &mut Vec<f64>) -> usize {
    let before = values.len();
    values.retain(|v| v.is_finite());
    before - values.len()
}

/// Wasserstein-1 distance between two sorted samples
/// (`scipy.stats.wasserstein_distance(u, v)`), in one O(n₁ + n₂) merge walk.
pub fn wasserstein_distance(reference: &[f64], current: &[f64]) -> Result<f64> {
    check_sorted(reference, Side::Reference)?;
    check_sorted(current, Side::Current)?;
    Ok(ks::merge_walk(reference, current).1)
}

/// Population standard deviation (`numpy.std(x)`, `ddof = 0`), two-pass.
pub fn population_std(values: &[f64]) -> Result<f64> {
    if values.is_empty() {
        return Err(crate::DriftError::EmptySample(Side::Reference));
    }
    if values.iter().any(|v| !v.is_finite()) {
        return Err(crate::DriftError::NonFinite(Side::Reference));
    }
    Ok(std_unchecked(values))
}

fn std_unchecked(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let ss: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    (ss / n).sqrt()
}

/// Evidently's normed Wasserstein distance:
/// `wasserstein_distance(reference, current) / max(std(reference), 0.001)`.
pub fn wasserstein_normed(reference: &[f64], current: &[f64]) -> Result<f64> {
    let w = wasserstein_distance(reference, current)?;
    Ok(w / std_unchecked(reference).max(WASSERSTEIN_MIN_STD))
}

/// KS test and both Wasserstein forms from a single merge walk over two sorted
/// samples: what the monitoring service computes per numeric feature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumericComparison {
    /// The two-sample KS test (`scipy.stats.ks_2samp`).
    pub ks: KsResult,
    /// `scipy.stats.wasserstein_distance(reference, current)`.
    pub wasserstein: f64,
    /// Evidently's normalised form, `wasserstein / max(reference_std, 0.001)`.
    pub wasserstein_normed: f64,
    /// `numpy.std(reference)`.
    pub reference_std: f64,
}

/// Computes [`NumericComparison`] for two sorted, finite, non-empty samples.
pub fn compare_sorted(reference: &[f64], current: &[f64]) -> Result<NumericComparison> {
    check_sorted(reference, Side::Reference)?;
    check_sorted(current, Side::Current)?;
    let (d, w) = ks::merge_walk(reference, current);
    let ks = ks::ks_p_value(reference.len() as u64, current.len() as u64, d)?;
    let reference_std = std_unchecked(reference);
    Ok(NumericComparison {
        ks,
        wasserstein: w,
        wasserstein_normed: w / reference_std.max(WASSERSTEIN_MIN_STD),
        reference_std,
    })
}

/// Number of distinct values of a sorted slice, counting at most to `cap`
/// (returns `cap` as soon as it is reached). `-0.0 == 0.0` count as one value,
/// like pandas' `nunique`.
pub fn count_distinct_sorted(values: &[f64], cap: usize) -> usize {
    let mut count = 0usize;
    let mut last: Option<f64> = None;
    for &v in values {
        if last != Some(v) {
            count += 1;
            if count >= cap {
                return cap;
            }
            last = Some(v);
        }
    }
    count
}

/// Number of distinct values in the union of two sorted slices, capped at `cap`
/// (pandas `concat([a, b]).nunique()`).
pub fn count_distinct_union_sorted(a: &[f64], b: &[f64], cap: usize) -> usize {
    let (mut i, mut j) = (0usize, 0usize);
    let mut count = 0usize;
    while i < a.len() || j < b.len() {
        let v = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        while i < a.len() && a[i] == v {
            i += 1;
        }
        while j < b.len() && b[j] == v {
            j += 1;
        }
        count += 1;
        if count >= cap {
            return cap;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radix_sort_matches_total_cmp() {
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut values: Vec<f64> = (0..5000)
            .map(|i| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                let u = (state >> 11) as f64 / (1u64 << 53) as f64;
                match i % 7 {
                    0 => -u * 1e6,
                    1 => u * 1e-300,
                    2 => 0.0,
                    3 => -0.0,
                    4 => f64::INFINITY,
                    _ => u - 0.5,
                }
            })
            .collect();
        values.push(f64::NAN);
        values.push(f64::NEG_INFINITY);
        let mut expected = values.clone();
        expected.sort_by(f64::total_cmp);
        sort_f64(&mut values);
        let same = values
            .iter()
            .zip(&expected)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same);
    }

    #[test]
    fn wasserstein_scipy_doc_example() {
        // scipy docs: wasserstein_distance([0, 1, 3], [5, 6, 8]) == 5.0
        assert_eq!(
            wasserstein_distance(&[0.0, 1.0, 3.0], &[5.0, 6.0, 8.0]).unwrap(),
            5.0
        );
        // ... and ([0, 1], [0, 1], weights) aside: ([3.4, 3.9, 7.5, 7.8], [4.5, 1.4]) sorted
        let w = wasserstein_distance(&[3.4, 3.9, 7.5, 7.8], &[1.4, 4.5]).unwrap();
        assert!((w - 2.7).abs() < 1e-12, "{w}");
    }

    #[test]
    fn distinct_counts() {
        assert_eq!(count_distinct_sorted(&[1.0, 1.0, 2.0, 3.0, 3.0], 10), 3);
        assert_eq!(count_distinct_sorted(&[-0.0, 0.0], 10), 1);
        assert_eq!(count_distinct_union_sorted(&[1.0, 2.0], &[2.0, 5.0], 10), 3);
        assert_eq!(count_distinct_union_sorted(&[1.0, 2.0], &[3.0, 5.0], 3), 3);
    }

    #[test]
    fn retain_finite_counts_missing() {
        let mut v = vec![1.0, f64::NAN, 2.0, f64::INFINITY];
        assert_eq!(retain_finite(&mut v), 2);
        assert_eq!(v, vec![1.0, 2.0]);
    }
}
