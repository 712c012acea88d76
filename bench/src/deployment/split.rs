//! The check of the traffic split: the share of answers on the canary over distinct routing
//! keys must be within 0.5 percentage points of its weight.

/// Fewest distinct keys the ±0.5 pp tolerance is meant for (the figure).
pub const FULL_KEYS: usize = 100_000;
/// Tolerance in percentage points with at least [`FULL_KEYS`] keys.
pub const TOLERANCE_PP: f64 = 0.5;

/// The observed share of the canary and whether it is close enough to its weight.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitCheck {
    /// Observed canary share in percent.
    pub share_pct: f64,
    /// Expected share in percent.
    pub expected_pct: f64,
    /// Allowed distance in percentage points.
    pub tolerance_pp: f64,
    /// Distinct keys counted.
    pub keys: usize,
}

impl SplitCheck {
    /// `canary` of `keys` distinct keys answered with the canary of weight `weight_bp`.
    ///
    /// With fewer than [`FULL_KEYS`] keys (a `--quick` run) the tolerance widens to five
    /// standard errors of a binomial share, so a small sample is checked without flaking.
    pub fn new(canary: usize, keys: usize, weight_bp: i32) -> SplitCheck {
        let p = f64::from(weight_bp) / 10_000.0;
        let share_pct = if keys == 0 {
            f64::NAN
        } else {
            canary as f64 / keys as f64 * 100.0
        };
        let tolerance_pp = if keys >= FULL_KEYS {
            TOLERANCE_PP
        } else {
            let se_pp = (p * (1.0 - p) / keys.max(1) as f64).sqrt() * 100.0;
            TOLERANCE_PP.max(5.0 * se_pp)
        };
        SplitCheck {
            share_pct,
            expected_pct: p * 100.0,
            tolerance_pp,
            keys,
        }
    }

    /// Within the tolerance (NaN never is).
    pub fn ok(&self) -> bool {
        (self.share_pct - self.expected_pct).abs() <= self.tolerance_pp
    }

    /// `10.03% of 192,000 keys (expected 10% ± 0.5 pp)`.
    pub fn describe(&self) -> String {
        format!(
            "{:.3}% of {} distinct keys on the canary (expected {}% ± {:.2} pp{})",
            self.share_pct,
            self.keys,
            self.expected_pct,
            self.tolerance_pp,
            if self.keys >= FULL_KEYS {
                ""
            } else {
                ", widened to 5 standard errors: fewer than 100,000 keys"
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_runs_use_half_a_point() {
        let c = SplitCheck::new(19_300, 192_000, 1_000);
        assert!((c.share_pct - 10.052).abs() < 0.001);
        assert_eq!(c.tolerance_pp, TOLERANCE_PP);
        assert!(c.ok());
        assert!(!SplitCheck::new(20_300, 192_000, 1_000).ok());
        assert!(!SplitCheck::new(18_200, 192_000, 1_000).ok());
    }

    #[test]
    fn small_samples_widen_the_tolerance() {
        let c = SplitCheck::new(1_000, 9_600, 1_000);
        // se = sqrt(0.09 / 9600) = 0.306 pp; 5 se = 1.53 pp.
        assert!((c.tolerance_pp - 1.531).abs() < 0.01, "{}", c.tolerance_pp);
        assert!(c.ok());
        assert!(!SplitCheck::new(1_200, 9_600, 1_000).ok());
        assert!(c.describe().contains("widened"));
    }

    #[test]
    fn nothing_counted_never_passes() {
        let c = SplitCheck::new(0, 0, 1_000);
        assert!(c.share_pct.is_nan());
        assert!(!c.ok());
    }
}
