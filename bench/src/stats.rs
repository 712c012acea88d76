//! Order statistics of measured samples: percentiles (linear interpolation between closest
//! ranks, like numpy's default) and the median.

use std::time::Duration;

/// The `p`-th percentile (0..=100) of `samples`, interpolating linearly between the two closest
/// ranks. `None` for an empty slice or a `p` outside 0..=100. NaN samples sort last.
pub fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    if samples.is_empty() || !(0.0..=100.0).contains(&p) {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(percentile_sorted(&sorted, p))
}

/// As [`percentile`] on an already sorted, non-empty slice.
fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    if lo == hi {
        return sorted[lo];
    }
    let w = rank - lo as f64;
    sorted[lo] * (1.0 - w) + sorted[hi] * w
}

/// The median of `samples` (the mean of the two middle values for an even count).
pub fn median(samples: &[f64]) -> Option<f64> {
    percentile(samples, 50.0)
}

/// Durations as milliseconds.
pub fn millis(samples: &[Duration]) -> Vec<f64> {
    samples.iter().map(|d| d.as_secs_f64() * 1e3).collect()
}

/// p50, p95 and p99 of `samples` (NaN when empty).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Summary {
    /// Summarises `samples`.
    pub fn of(samples: &[f64]) -> Summary {
        let p = |q| percentile(samples, q).unwrap_or(f64::NAN);
        Summary {
            p50: p(50.0),
            p95: p(95.0),
            p99: p(99.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_out_of_range() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(median(&[]), None);
        assert_eq!(percentile(&[1.0], -1.0), None);
        assert_eq!(percentile(&[1.0], 100.1), None);
        assert!(Summary::of(&[]).p50.is_nan());
    }

    #[test]
    fn single_value() {
        for p in [0.0, 50.0, 95.0, 100.0] {
            assert_eq!(percentile(&[7.0], p), Some(7.0));
        }
    }

    #[test]
    fn median_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[5.0, 5.0]), Some(5.0));
    }

    #[test]
    fn interpolates_like_numpy() {
        // numpy.percentile(range(1, 11), [0, 25, 90, 95, 100]) == [1, 3.25, 9.1, 9.55, 10]
        let v: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-9;
        assert!(close(percentile(&v, 0.0), 1.0));
        assert!(close(percentile(&v, 25.0), 3.25));
        assert!(close(percentile(&v, 90.0), 9.1));
        assert!(close(percentile(&v, 95.0), 9.55));
        assert!(close(percentile(&v, 100.0), 10.0));
    }

    #[test]
    fn p95_of_hundred_samples() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of(&v);
        assert!((s.p50 - 50.5).abs() < 1e-9);
        assert!((s.p95 - 95.05).abs() < 1e-9);
        assert!((s.p99 - 99.01).abs() < 1e-9);
    }

    #[test]
    fn nan_sorts_last() {
        assert_eq!(percentile(&[f64::NAN, 1.0, 2.0], 0.0), Some(1.0));
        assert!(percentile(&[f64::NAN, 1.0, 2.0], 100.0).unwrap().is_nan());
    }

    #[test]
    fn durations_to_millis() {
        let v = millis(&[Duration::from_micros(1500), Duration::from_secs(1)]);
        assert_eq!(v, vec![1.5, 1000.0]);
    }

    proptest::proptest! {
        #[test]
        fn percentiles_are_monotone_and_bounded(
            v in proptest::collection::vec(-1e9f64..1e9, 1..200),
            a in 0.0f64..=100.0,
            b in 0.0f64..=100.0,
        ) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let pa = percentile(&v, lo).unwrap();
            let pb = percentile(&v, hi).unwrap();
            let min = v.iter().copied().fold(f64::INFINITY, f64::min);
            let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            proptest::prop_assert!(pa <= pb + 1e-6 * pb.abs().max(1.0));
            let tol = 1e-6 * min.abs().max(max.abs()).max(1.0);
            proptest::prop_assert!(pa >= min - tol && pb <= max + tol);
        }
    }
}
