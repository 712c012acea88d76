//! Server-side downsampling of a metric history for plots, keeping its shape.
//!
//! Input is sorted by step first. NaN values are kept as points (they are real data) but never
//! chosen as a bucket's min or max.

use super::model::Series;

/// How to reduce a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// First, min, max and last point of each bucket.
    MinMax,
    /// Largest-Triangle-Three-Buckets.
    Lttb,
}

/// Sorts the series by step (stable: equal steps keep their logged order); a series already in
/// order is returned as it is, without copying.
pub fn sort_by_step(s: Series) -> Series {
    if s.steps.windows(2).all(|w| w[0] <= w[1]) {
        return s;
    }
    let mut idx: Vec<usize> = (0..s.len()).collect();
    idx.sort_by_key(|&i| s.steps[i]);
    let mut out = Series::default();
    for i in idx {
        out.push(s.steps[i], s.timestamps[i], s.values[i]);
    }
    out
}

/// Reduces `s` (sorted by step) to at most `max_points` points.
pub fn downsample(s: &Series, max_points: usize, method: Method) -> Series {
    if s.len() <= max_points || max_points == 0 {
        return s.clone();
    }
    let keep = match method {
        Method::MinMax if max_points >= 4 => min_max(s, max_points),
        Method::MinMax | Method::Lttb => lttb(s, max_points),
    };
    let mut out = Series::default();
    for i in keep {
        out.push(s.steps[i], s.timestamps[i], s.values[i]);
    }
    out
}

fn min_max(s: &Series, max_points: usize) -> Vec<usize> {
    let n = s.len();
    let buckets = (max_points / 4).max(1);
    let mut keep = Vec::with_capacity(buckets * 4);
    for b in 0..buckets {
        let lo = b * n / buckets;
        let hi = ((b + 1) * n / buckets).min(n);
        if lo >= hi {
            continue;
        }
        let (mut mn, mut mx) = (None::<usize>, None::<usize>);
        for i in lo..hi {
            let v = s.values[i];
            if v.is_nan() {
                continue;
            }
            if mn.is_none_or(|m| v < s.values[m]) {
                mn = Some(i);
            }
            if mx.is_none_or(|m| v > s.values[m]) {
                mx = Some(i);
            }
        }
        let mut idx = vec![lo, hi - 1];
        idx.extend(mn);
        idx.extend(mx);
        idx.sort_unstable();
        idx.dedup();
        keep.extend(idx);
    }
    keep
}

fn lttb(s: &Series, threshold: usize) -> Vec<usize> {
    let n = s.len();
    if threshold < 3 {
        return vec![0, n - 1][..threshold.min(2)].to_vec();
    }
    let x = |i: usize| s.steps[i] as f64;
    let y = |i: usize| {
        let v = s.values[i];
        if v.is_finite() { v } else { 0.0 }
    };
    let mut keep = Vec::with_capacity(threshold);
    keep.push(0);
    let every = (n - 2) as f64 / (threshold - 2) as f64;
    let mut a = 0usize;
    for i in 0..threshold - 2 {
        let avg_start = ((i + 1) as f64 * every) as usize + 1;
        let avg_end = (((i + 2) as f64 * every) as usize + 1).min(n);
        let (mut ax, mut ay) = (0.0, 0.0);
        let len = (avg_end.saturating_sub(avg_start)).max(1) as f64;
        for j in avg_start..avg_end {
            ax += x(j);
            ay += y(j);
        }
        ax /= len;
        ay /= len;
        let start = (i as f64 * every) as usize + 1;
        let end = ((i + 1) as f64 * every) as usize + 1;
        let (px, py) = (x(a), y(a));
        let mut best = start;
        let mut best_area = -1.0;
        for j in start..end.min(n - 1) {
            let area = ((px - ax) * (y(j) - py) - (px - x(j)) * (ay - py)).abs();
            if area > best_area {
                best_area = area;
                best = j;
            }
        }
        keep.push(best);
        a = best;
    }
    keep.push(n - 1);
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn series(values: &[f64]) -> Series {
        let mut s = Series::default();
        for (i, v) in values.iter().enumerate() {
            s.push(i as i64, i as i64, *v);
        }
        s
    }

    #[test]
    fn min_max_keeps_spikes() {
        let mut v = vec![0.0; 100_000];
        v[54_321] = 1000.0;
        v[7] = -5.0;
        let d = downsample(&series(&v), 1000, Method::MinMax);
        assert!(d.len() <= 1000);
        assert!(d.values.contains(&1000.0) && d.values.contains(&-5.0));
        assert_eq!(d.steps[0], 0);
        assert_eq!(*d.steps.last().unwrap(), 99_999);
    }

    #[test]
    fn lttb_keeps_ends_and_spike() {
        let mut v: Vec<f64> = (0..10_000).map(|i| (i as f64 / 100.0).sin()).collect();
        v[5000] = 50.0;
        let d = downsample(&series(&v), 500, Method::Lttb);
        assert_eq!(d.len(), 500);
        assert!(d.values.contains(&50.0));
        assert_eq!((d.steps[0], *d.steps.last().unwrap()), (0, 9_999));
    }

    #[test]
    fn sorts_by_step() {
        let mut s = Series::default();
        for st in [5, 1, 3] {
            s.push(st, 0, st as f64);
        }
        assert_eq!(sort_by_step(s).steps, vec![1, 3, 5]);
    }

    proptest! {
        #[test]
        fn never_exceeds_and_stays_ordered(values in proptest::collection::vec(any::<f64>(), 0..2000), max in 1usize..300, lttb in any::<bool>()) {
            let s = series(&values);
            let d = downsample(&s, max, if lttb { Method::Lttb } else { Method::MinMax });
            prop_assert!(d.len() <= values.len());
            if values.len() > max { prop_assert!(d.len() <= max); }
            prop_assert!(d.steps.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
