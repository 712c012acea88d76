//! Two-sample Kolmogorov-Smirnov test, two-sided, exactly as
//! `scipy.stats.ks_2samp(a, b)` (scipy 1.17, `method="auto"`):
//!
//! * statistic: `D = max_x |F_a(x) - F_b(x)|` over the pooled sample, with both
//!   empirical CDFs evaluated right-continuously (`searchsorted(side="right")`),
//!   so ties are handled as scipy does; computed by one O(n₁+n₂) merge walk over
//!   the two **sorted** inputs;
//! * p-value: exact (`_attempt_exact_2kssamp`) when `max(n₁, n₂) <= 10000`, with D
//!   snapped to the lattice `h / lcm(n₁, n₂)` as scipy does; `_compute_prob_outside_square`
//!   for `n₁ = n₂`, otherwise `_compute_outer_prob_inside_method` (Hodges, with
//!   Viehmann's 1-p recursion). If the exact computation fails (a probability
//!   outside `[0, 1]`), it falls back to the asymptotic p-value like scipy;
//! * asymptotic: `kstwo.sf(D, round(n₁n₂/(n₁+n₂)))` (round half to even, numpy).

use crate::kolmogorov::kstwo_sf;
use crate::{DriftError, Result, Side, check_sorted};

/// scipy's `MAX_AUTO_N`: the exact p-value is attempted up to this sample size.
pub const MAX_EXACT_N: usize = 10_000;

/// How the p-value was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KsMethod {
    /// Exact distribution of the two-sample statistic.
    Exact,
    /// `kstwo.sf(D, round(n₁n₂/(n₁+n₂)))`.
    Asymptotic,
}

/// Result of [`ks_2samp`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KsResult {
    /// The statistic `D` in `[0, 1]` (for the exact method snapped to `h/lcm(n₁, n₂)`).
    pub statistic: f64,
    /// Two-sided p-value in `[0, 1]`.
    pub p_value: f64,
    /// Which computation produced the p-value.
    pub method: KsMethod,
}

/// The raw statistic `D` of two sorted samples, as scipy computes it before any
/// rounding (`max(cdf₁ - cdf₂)` vs `-min(cdf₁ - cdf₂)` over the pooled points).
///
/// Precondition: both slices sorted ascending, finite, non-empty (checked).
pub fn ks_statistic(reference: &[f64], current: &[f64]) -> Result<f64> {
    check_sorted(reference, Side::Reference)?;
    check_sorted(current, Side::Current)?;
    Ok(merge_walk(reference, current).0)
}

/// State of one merge walk over a value range `[a[i..i_end], b[j..j_end]]`.
#[derive(Debug, Clone, Copy)]
struct Lane {
    i: usize,
    i_end: usize,
    j: usize,
    j_end: usize,
    /// `i·n₂ - j·n₁`: the CDF difference scaled by `n₁·n₂`, exact.
    diff: i64,
    max: i64,
    min: i64,
    /// Last consumed value.
    prev: f64,
    /// `Σ |diff|·dx` in units of `1/(n₁·n₂)`.
    area: f64,
}

impl Lane {
    #[inline(always)]
    fn active(&self) -> bool {
        self.i < self.i_end && self.j < self.j_end
    }

    /// One merge step; requires `active()`.
    #[inline(always)]
    fn step(&mut self, a: &[f64], b: &[f64], n1: i64, n2: i64) {
        let x = a[self.i];
        let y = b[self.j];
        if x == y {
            // A value present in both samples: both CDFs jump together.
            self.area += self.diff.unsigned_abs() as f64 * (x - self.prev);
            self.prev = x;
            while self.i < self.i_end && a[self.i] == x {
                self.i += 1;
                self.diff += n2;
            }
            while self.j < self.j_end && b[self.j] == x {
                self.j += 1;
                self.diff -= n1;
            }
        } else {
            // Branch-free: for similar samples the comparison is a coin flip.
            let take_a = x < y;
            let v = if take_a { x } else { y };
            self.area += self.diff.unsigned_abs() as f64 * (v - self.prev);
            self.prev = v;
            self.i += usize::from(take_a);
            self.j += usize::from(!take_a);
            self.diff += if take_a { n2 } else { -n1 };
        }
        self.max = self.max.max(self.diff);
        self.min = self.min.min(self.diff);
    }

    /// Runs the lane to the end of its range (the one-sided tail is monotone, so
    /// only its end point can be a new extreme).
    fn finish(&mut self, a: &[f64], b: &[f64], n1: i64, n2: i64) {
        while self.active() {
            self.step(a, b, n1, n2);
        }
        for &x in &a[self.i..self.i_end] {
            self.area += self.diff.unsigned_abs() as f64 * (x - self.prev);
            self.prev = x;
            self.diff += n2;
        }
        self.i = self.i_end;
        for &y in &b[self.j..self.j_end] {
            self.area += self.diff.unsigned_abs() as f64 * (y - self.prev);
            self.prev = y;
            self.diff -= n1;
        }
        self.j = self.j_end;
        self.max = self.max.max(self.diff);
        self.min = self.min.min(self.diff);
    }
}

/// Independent walks run interleaved so their dependency chains overlap.
const LANES: usize = 2;
/// Below this pooled size a single walk is used.
const LANES_MIN_LEN: usize = 1 << 14;

/// One O(n₁ + n₂) merge walk over two sorted samples returning scipy's KS statistic
/// `D` (before lattice snapping) and the Wasserstein-1 distance
/// `∫ |F_a - F_b| dx` (as `scipy.stats.wasserstein_distance`).
///
/// The walk tracks `i·n₂ - j·n₁` (the CDF difference scaled by `n₁·n₂`) exactly in
/// integers. A value present in both samples is consumed from both at once, so the
/// difference is only observed at scipy's evaluation points (right-continuous
/// CDFs) or between two consecutive ones on a monotone stretch, which leaves the
/// maximum and minimum unchanged. Large inputs are cut at value boundaries into
/// [`LANES`] ranges walked in an interleaved loop.
pub(crate) fn merge_walk(a: &[f64], b: &[f64]) -> (f64, f64) {
    let (n1, n2) = (a.len(), b.len());
    let (n1i, n2i) = (n1 as i64, n2 as i64);
    let (Some(&a0), Some(&b0)) = (a.first(), b.first()) else {
        return (0.0, 0.0);
    };
    let lane_at = |i: usize, j: usize, i_end: usize, j_end: usize| {
        let prev = match (i.checked_sub(1), j.checked_sub(1)) {
            (Some(pi), Some(pj)) => a[pi].max(b[pj]),
            (Some(pi), None) => a[pi],
            (None, Some(pj)) => b[pj],
            (None, None) => a0.min(b0),
        };
        let diff = i as i64 * n2i - j as i64 * n1i;
        Lane {
            i,
            i_end,
            j,
            j_end,
            diff,
            max: diff,
            min: diff,
            prev,
            area: 0.0,
        }
    };
    let mut lanes: Vec<Lane> = Vec::with_capacity(LANES);
    if n1 + n2 < LANES_MIN_LEN {
        lanes.push(lane_at(0, 0, n1, n2));
    } else {
        // Cut at values so that equal values never straddle two lanes.
        let mut cuts = vec![(0usize, 0usize)];
        for k in 1..LANES {
            let v = a[k * n1 / LANES].min(b[k * n2 / LANES]);
            let i = a.partition_point(|&x| x < v);
            let j = b.partition_point(|&y| y < v);
            cuts.push((i, j));
        }
        cuts.push((n1, n2));
        for w in cuts.windows(2) {
            let ((i, j), (i_end, j_end)) = (w[0], w[1]);
            lanes.push(lane_at(i, j, i_end.max(i), j_end.max(j)));
        }
    }
    if let Ok(quad) = <[Lane; LANES]>::try_from(lanes.as_slice()) {
        // A local copy lets the lanes live in registers.
        let mut q = quad;
        while q.iter().all(Lane::active) {
            for lane in &mut q {
                lane.step(a, b, n1i, n2i);
            }
        }
        lanes.copy_from_slice(&q);
    }
    let (mut max_diff, mut min_diff, mut area) = (0i64, 0i64, 0.0f64);
    for lane in &mut lanes {
        lane.finish(a, b, n1i, n2i);
        max_diff = max_diff.max(lane.max);
        min_diff = min_diff.min(lane.min);
        area += lane.area;
    }
    // scipy picks -min when it exceeds max; both are exact integers here, and the
    // quotient is the correctly rounded i/n1 - j/n2 (scipy's own two roundings
    // can differ from it by an ulp; the exact p-value snaps to h/lcm anyway).
    let extreme = max_diff.unsigned_abs().max(min_diff.unsigned_abs());
    let scale = n1 as f64 * n2 as f64;
    ((extreme as f64 / scale).min(1.0), area / scale)
}

/// Two-sided two-sample Kolmogorov-Smirnov test (`scipy.stats.ks_2samp(reference,
/// current)`), symmetric in its arguments.
///
/// Precondition: both slices sorted ascending (see [`crate::numeric::sort_f64`]),
/// finite and non-empty; violations return an error. O(n₁ + n₂) for the statistic;
/// the exact p-value costs O(n) for equal sizes and O(max(n₁,n₂)·D·min(n₁,n₂)) otherwise
/// (below 10000 x 10000 by construction).
pub fn ks_2samp(reference: &[f64], current: &[f64]) -> Result<KsResult> {
    let d = ks_statistic(reference, current)?;
    ks_p_value(reference.len() as u64, current.len() as u64, d)
}

/// The scipy p-value for a statistic `d` observed between samples of sizes `n1` and
/// `n2` (`method="auto"`); also used for statistics estimated from sketches.
/// Returns the (possibly lattice-snapped) statistic with the p-value. Errors for
/// an empty sample or `d` outside `[0, 1]`.
pub fn ks_p_value(n1: u64, n2: u64, d: f64) -> Result<KsResult> {
    if n1 == 0 {
        return Err(DriftError::EmptySample(Side::Reference));
    }
    if n2 == 0 {
        return Err(DriftError::EmptySample(Side::Current));
    }
    if !(0.0..=1.0).contains(&d) {
        return Err(DriftError::InvalidArgument(format!(
            "KS statistic must be in [0, 1], got {d}"
        )));
    }
    Ok(ks_p_value_unchecked(n1, n2, d))
}

fn ks_p_value_unchecked(n1: u64, n2: u64, d: f64) -> KsResult {
    if n1.max(n2) <= MAX_EXACT_N as u64 {
        let g = gcd(n1, n2);
        if let Some((d_snapped, p)) = attempt_exact(n1, n2, g, d) {
            return KsResult {
                statistic: d_snapped,
                p_value: p.clamp(0.0, 1.0),
                method: KsMethod::Exact,
            };
        }
        // scipy keeps the snapped statistic when it falls back.
        let lcm = (n1 / g) * n2;
        let h = (d * lcm as f64).round_ties_even();
        let d_snapped = h / lcm as f64;
        return KsResult {
            statistic: d_snapped,
            p_value: asymptotic_p(n1, n2, d_snapped),
            method: KsMethod::Asymptotic,
        };
    }
    KsResult {
        statistic: d,
        p_value: asymptotic_p(n1, n2, d),
        method: KsMethod::Asymptotic,
    }
}

/// `kstwo.sf(d, round(m n / (m + n)))`, clipped.
fn asymptotic_p(n1: u64, n2: u64, d: f64) -> f64 {
    let (m, n) = if n1 >= n2 {
        (n1 as f64, n2 as f64)
    } else {
        (n2 as f64, n1 as f64)
    };
    let en = m * n / (m + n);
    let n_eff = en.round_ties_even();
    if n_eff < 1.0 {
        return f64::NAN;
    }
    kstwo_sf(n_eff as u64, d).clamp(0.0, 1.0)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// scipy `_attempt_exact_2kssamp` (two-sided): `Some((d snapped to h/lcm, p))`, or
/// `None` when the computation is unusable and scipy switches to the asymptotic.
fn attempt_exact(n1: u64, n2: u64, g: u64, d: f64) -> Option<(f64, f64)> {
    let lcm = (n1 / g) * n2;
    let h = (d * lcm as f64).round_ties_even();
    let d = h / lcm as f64;
    if h == 0.0 {
        return Some((d, 1.0));
    }
    let h = h as u64;
    let prob = if n1 == n2 {
        prob_outside_square(n1, h)
    } else {
        outer_prob_inside_method(n1, n2, g, h)
    };
    if !prob.is_finite() || !(0.0..=1.0).contains(&prob) {
        return None;
    }
    Some((d, prob))
}

/// scipy `_compute_prob_outside_square(n, h)`: `P(D_{n,n} >= h/n)`.
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let nf = n as f64;
    let mut p = 0.0;
    let mut k = (n / h) as i64;
    let hi = h as i64;
    while k >= 0 {
        let mut p1 = 1.0;
        for j in 0..hi {
            let kh = (k * hi) as f64;
            let jf = j as f64;
            p1 = (nf - kh - jf) * p1 / (nf + kh + jf + 1.0);
        }
        p = p1 * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

/// scipy `_compute_outer_prob_inside_method(m, n, g, h)`: the proportion of lattice
/// paths from (0,0) to (m,n) that leave the band `|x/m - y/n| < h/lcm(m,n)`.
fn outer_prob_inside_method(m: u64, n: u64, g: u64, h: u64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (m, n, g, h) = (m as i64, n as i64, g as i64, h as i64);
    let mg = m / g;
    let ng = n / g;
    let mut minj: i64 = 0;
    let mut maxj: i64 = ((h + mg - 1) / mg).min(n + 1);
    let mut curlen = maxj - minj;
    let len_a = (2 * maxj + 2).min(n + 1) as usize;
    let mut a = vec![1.0f64; len_a];
    for v in a.iter_mut().take(maxj as usize) {
        *v = 0.0;
    }
    for i in 1..=m {
        let lastminj = minj;
        let lastlen = curlen;
        minj = ((ng * i - h).div_euclid(mg) + 1).max(0).min(n);
        maxj = (ng * i + h + mg - 1).div_euclid(mg).min(n + 1);
        if maxj <= minj {
            return 1.0;
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        let fi = i as f64;
        for jj in 0..(maxj - minj) {
            let j = jj + minj;
            let idx = (jj + minj - lastminj) as usize;
            let prev = a.get(idx).copied().unwrap_or(1.0);
            val = (prev * fi + val * j as f64) / (fi + j as f64);
            if let Some(slot) = a.get_mut(jj as usize) {
                *slot = val;
            }
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            let from = (maxj - minj) as usize;
            let to = ((maxj - minj) + (lastlen - curlen)) as usize;
            for v in a.iter_mut().take(to).skip(from) {
                *v = 1.0;
            }
        }
    }
    a.get((maxj - minj - 1) as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_samples() {
        let a = [1.0, 2.0, 3.0];
        let r = ks_2samp(&a, &a).unwrap();
        assert_eq!(r.statistic, 0.0);
        assert_eq!(r.p_value, 1.0);
        assert_eq!(r.method, KsMethod::Exact);
    }

    #[test]
    fn separated_samples() {
        let r = ks_2samp(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]).unwrap();
        assert_eq!(r.statistic, 1.0);
        // 2 / C(10, 5)
        assert!((r.p_value - 2.0 / 252.0).abs() < 1e-15);
    }

    #[test]
    fn ties_across_samples() {
        // scipy: ks_2samp([1, 2, 2], [2, 3]) -> statistic 0.5
        let r = ks_2samp(&[1.0, 2.0, 2.0], &[2.0, 3.0]).unwrap();
        assert!((r.statistic - 0.5).abs() < 1e-15);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(ks_2samp(&[], &[1.0]).is_err());
        assert!(ks_2samp(&[2.0, 1.0], &[1.0]).is_err());
        assert!(ks_2samp(&[1.0, f64::NAN, 3.0], &[1.0]).is_err());
        assert!(ks_2samp(&[1.0, f64::INFINITY], &[1.0]).is_err());
    }
}
