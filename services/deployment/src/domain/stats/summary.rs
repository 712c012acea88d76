//! [`Summary`]: count, mean and sum of squared deviations of one variant's outcomes, built one
//! observation at a time (Welford) or by merging partial summaries (Chan et al.), so replicas
//! and time buckets can be aggregated without keeping raw data.

/// Summary of one variant's outcomes (streamable: can be built incrementally and merged).
///
/// `m2` is the sum of squared deviations from the mean. Welford's update keeps it accurate
/// even when the values share a large offset (1e9 + small noise), where the textbook
/// `sum(x^2) - n mean^2` loses every digit. For a conversion metric push 1.0 / 0.0 per
/// exposure or use [`Summary::from_counts`]. Values should be finite: a NaN or infinity
/// poisons the summary, and the tests then return `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Number of observations.
    pub n: u64,
    /// Mean of the observations (0 when `n == 0`).
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
}

impl Summary {
    /// A summary of `successes` out of `trials` Bernoulli outcomes (a conversion rate):
    /// `mean = successes / trials`, `m2 = successes (trials - successes) / trials`.
    /// `successes` is capped at `trials`.
    pub fn from_counts(successes: u64, trials: u64) -> Summary {
        if trials == 0 {
            return Summary::default();
        }
        let s = successes.min(trials) as f64;
        let n = trials as f64;
        Summary {
            n: trials,
            mean: s / n,
            m2: s * (n - s) / n,
        }
    }

    /// A summary from its moments: `n` observations with the given mean and sample variance
    /// (ddof 1), e.g. from a warehouse query.
    pub fn from_moments(n: u64, mean: f64, variance: f64) -> Summary {
        let m2 = if n < 2 {
            0.0
        } else {
            variance * (n - 1) as f64
        };
        Summary {
            n,
            mean: if n == 0 { 0.0 } else { mean },
            m2,
        }
    }

    /// Adds one observation (Welford's update).
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Folds another summary into this one, as if its observations had been pushed here
    /// (Chan, Golub and LeVeque's pairwise update).
    pub fn merge(&mut self, other: &Summary) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *other;
            return;
        }
        let (na, nb) = (self.n as f64, other.n as f64);
        let n = na + nb;
        let delta = other.mean - self.mean;
        self.mean += delta * (nb / n);
        self.m2 += other.m2 + delta * delta * (na * nb / n);
        self.n += other.n;
    }

    /// Sample variance with one degree of freedom removed (ddof 1); 0 when `n < 2`.
    pub fn variance(&self) -> f64 {
        if self.n < 2 {
            0.0
        } else {
            (self.m2 / (self.n - 1) as f64).max(0.0)
        }
    }

    /// Sample standard deviation, `sqrt(variance())`.
    pub fn std_dev(&self) -> f64 {
        self.variance().sqrt()
    }

    /// Whether the summary can feed a test: at least two finite observations.
    pub(crate) fn is_usable(&self) -> bool {
        self.n >= 2 && self.mean.is_finite() && self.m2.is_finite() && self.m2 >= 0.0
    }
}

impl Extend<f64> for Summary {
    fn extend<I: IntoIterator<Item = f64>>(&mut self, values: I) {
        values.into_iter().for_each(|x| self.push(x));
    }
}

impl FromIterator<f64> for Summary {
    fn from_iter<I: IntoIterator<Item = f64>>(values: I) -> Summary {
        let mut summary = Summary::default();
        summary.extend(values);
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64, rel: f64, abs: f64) -> bool {
        (a - b).abs() <= rel * a.abs().max(b.abs()) + abs
    }

    /// Two-pass reference: exact enough for the test data.
    fn two_pass(xs: &[f64]) -> (f64, f64) {
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        (mean, xs.iter().map(|x| (x - mean) * (x - mean)).sum())
    }

    #[test]
    fn small_known_sample() {
        let s: Summary = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]
            .into_iter()
            .collect();
        assert_eq!((s.n, s.mean, s.m2), (8, 5.0, 32.0));
        assert!((s.variance() - 32.0 / 7.0).abs() < 1e-15);
        assert!((s.std_dev() - (32.0_f64 / 7.0).sqrt()).abs() < 1e-15);
        let one: Summary = [3.0].into_iter().collect();
        assert_eq!((one.variance(), Summary::default().variance()), (0.0, 0.0));
    }

    #[test]
    fn counts_and_moments_constructors_agree_with_pushing() {
        let mut pushed = Summary::default();
        pushed.extend((0..50).map(|i| if i % 5 == 0 { 1.0 } else { 0.0 }));
        let counted = Summary::from_counts(10, 50);
        assert_eq!(counted.n, 50);
        assert!(close(counted.mean, pushed.mean, 1e-15, 0.0));
        assert!(close(counted.m2, pushed.m2, 1e-13, 0.0));
        let m = Summary::from_moments(50, pushed.mean, pushed.variance());
        assert!(close(m.m2, pushed.m2, 1e-13, 0.0));
        assert_eq!(Summary::from_counts(3, 0), Summary::default());
    }

    #[test]
    fn stable_with_a_large_offset() {
        // 1e9 + noise: the naive sum-of-squares formula returns garbage here.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let noise: Vec<f64> = (0..100_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect();
        let values: Vec<f64> = noise.iter().map(|u| 1e9 + u).collect();
        let s: Summary = values.iter().copied().collect();
        // Subtracting the offset is exact (Sterbenz), so the shifted two-pass is the truth.
        let shifted: Vec<f64> = values.iter().map(|x| x - 1e9).collect();
        let (mean, m2) = two_pass(&shifted);
        // The mean is exact to a few ulps of 1e9; the spread keeps its digits too.
        assert!(
            close(s.mean, 1e9 + mean, 1e-15, 0.0),
            "{} vs {mean}",
            s.mean - 1e9
        );
        assert!(close(s.m2, m2, 1e-6, 0.0), "m2 {} vs {m2}", s.m2);
        let naive_sq: f64 = values.iter().map(|x| x * x).sum::<f64>();
        let naive = naive_sq - values.len() as f64 * s.mean * s.mean;
        assert!(
            !close(naive, m2, 1e-2, 0.0),
            "naive formula was expected to fail"
        );
    }

    proptest! {
        #[test]
        fn merge_equals_pushing_everything(
            xs in prop::collection::vec(-1e6..1e6_f64, 0..200),
            cut in 0usize..200,
            offset in prop_oneof![Just(0.0), Just(1e9), -1e3..1e3_f64],
        ) {
            let xs: Vec<f64> = xs.into_iter().map(|x| x + offset).collect();
            let cut = cut.min(xs.len());
            let all: Summary = xs.iter().copied().collect();
            let mut left: Summary = xs[..cut].iter().copied().collect();
            let right: Summary = xs[cut..].iter().copied().collect();
            left.merge(&right);
            prop_assert_eq!(left.n, all.n);
            let scale = xs.iter().map(|x| (x - offset).abs()).fold(1.0, f64::max);
            let (mean_tol, m2_tol) = (1e-12 * scale, 1e-9 * scale * scale);
            prop_assert!(close(left.mean, all.mean, 1e-12, mean_tol), "{:?} {:?}", left, all);
            prop_assert!(close(left.m2, all.m2, 1e-9, m2_tol), "{:?} {:?}", left, all);
            if !xs.is_empty() {
                let (mean, m2) = two_pass(&xs);
                prop_assert!(close(all.mean, mean, 1e-12, mean_tol));
                prop_assert!(close(all.m2, m2, 1e-8, 10.0 * m2_tol), "{} vs {}", all.m2, m2);
            }
        }

        #[test]
        fn merge_is_associative_and_has_an_identity(
            a in prop::collection::vec(-100.0..100.0_f64, 0..50),
            b in prop::collection::vec(-100.0..100.0_f64, 0..50),
            c in prop::collection::vec(-100.0..100.0_f64, 0..50),
        ) {
            let (sa, sb, sc): (Summary, Summary, Summary) = (
                a.into_iter().collect(), b.into_iter().collect(), c.into_iter().collect());
            let mut left = sa;
            left.merge(&sb);
            left.merge(&sc);
            let mut bc = sb;
            bc.merge(&sc);
            let mut right = sa;
            right.merge(&bc);
            prop_assert_eq!(left.n, right.n);
            prop_assert!(close(left.mean, right.mean, 1e-12, 1e-12));
            prop_assert!(close(left.m2, right.m2, 1e-10, 1e-9));
            let mut with_empty = sa;
            with_empty.merge(&Summary::default());
            prop_assert_eq!(with_empty, sa);
        }
    }
}
