//! Fixed-horizon tests: the two-proportion z-test, Welch's t-test, and the sample ratio
//! mismatch chi-squared test.

use super::gamma::chi2_sf;
use super::normal::{norm_ppf, norm_sf};
use super::student::{t_ppf, t_sf};
use super::{METHOD_TWO_PROPORTION_Z, METHOD_WELCH_T, Summary, TestResult, relative, valid_alpha};

/// The pieces of Welch's t-test (treatment minus control).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Welch {
    /// Difference of means, treatment minus control.
    pub effect: f64,
    /// Standard error of the difference, `sqrt(s_c^2/n_c + s_t^2/n_t)`.
    pub std_error: f64,
    /// `effect / std_error`.
    pub statistic: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
}

/// Welch's t statistic and Welch–Satterthwaite degrees of freedom; `None` when a side has fewer
/// than two observations or both sides have zero variance.
pub fn welch_statistic(control: &Summary, treatment: &Summary) -> Option<Welch> {
    if !control.is_usable() || !treatment.is_usable() {
        return None;
    }
    let a = control.variance() / control.n as f64;
    let b = treatment.variance() / treatment.n as f64;
    let se2 = a + b;
    if se2 <= 0.0 || !se2.is_finite() {
        return None;
    }
    let df = se2 * se2 / (a * a / (control.n - 1) as f64 + b * b / (treatment.n - 1) as f64);
    let effect = treatment.mean - control.mean;
    let std_error = se2.sqrt();
    Some(Welch {
        effect,
        std_error,
        statistic: effect / std_error,
        df,
    })
}

/// Welch's t-test (Welch–Satterthwaite df, t-distribution p-value and CI), two-sided.
///
/// Matches `scipy.stats.ttest_ind(treatment, control, equal_var=False)` and its
/// `confidence_interval(1 - alpha)`. `None` when a side has fewer than two observations, both
/// sides have zero variance, or `alpha` is not in `(0, 1)`.
pub fn welch_t(control: &Summary, treatment: &Summary, alpha: f64) -> Option<TestResult> {
    if !valid_alpha(alpha) {
        return None;
    }
    let w = welch_statistic(control, treatment)?;
    let p_value = (2.0 * t_sf(w.statistic.abs(), w.df)).min(1.0);
    let half = -t_ppf(0.5 * alpha, w.df) * w.std_error;
    Some(TestResult {
        effect: w.effect,
        relative_effect: relative(w.effect, control.mean),
        ci_low: w.effect - half,
        ci_high: w.effect + half,
        p_value,
        significant: p_value < alpha,
        method: METHOD_WELCH_T,
    })
}

/// Whether a summary holds a proportion (Bernoulli outcomes): at least two trials and a mean in
/// `[0, 1]`.
pub(super) fn is_proportion(s: &Summary) -> bool {
    s.is_usable() && (0.0..=1.0).contains(&s.mean)
}

/// Two-proportion z-test (pooled SE for the p-value, unpooled Wald SE for the CI of the
/// difference), two-sided; treatment minus control.
///
/// Each summary's `mean` is the observed proportion (see [`Summary::from_counts`]). Matches
/// statsmodels' `proportions_ztest` and `confint_proportions_2indep(method="wald")`. Because
/// the two use different standard errors, `significant` (from the p-value) can, at the margin,
/// disagree with whether the interval contains 0. `None` when a side has fewer than two trials,
/// a mean lies outside `[0, 1]`, the pooled proportion is 0 or 1 (no variance), or `alpha` is
/// not in `(0, 1)`.
pub fn two_proportion_z(control: &Summary, treatment: &Summary, alpha: f64) -> Option<TestResult> {
    if !valid_alpha(alpha) || !is_proportion(control) || !is_proportion(treatment) {
        return None;
    }
    let (nc, nt) = (control.n as f64, treatment.n as f64);
    let (pc, pt) = (control.mean, treatment.mean);
    let pooled = (pc * nc + pt * nt) / (nc + nt);
    let pooled_var = pooled * (1.0 - pooled) * (1.0 / nc + 1.0 / nt);
    if pooled_var <= 0.0 {
        return None;
    }
    let effect = pt - pc;
    let z = effect / pooled_var.sqrt();
    let p_value = (2.0 * norm_sf(z.abs())).min(1.0);
    let wald_se = (pc * (1.0 - pc) / nc + pt * (1.0 - pt) / nt).sqrt();
    let half = -norm_ppf(0.5 * alpha) * wald_se;
    Some(TestResult {
        effect,
        relative_effect: relative(effect, pc),
        ci_low: effect - half,
        ci_high: effect + half,
        p_value,
        significant: p_value < alpha,
        method: METHOD_TWO_PROPORTION_Z,
    })
}

/// Sample ratio mismatch: chi-squared goodness of fit of observed assignment counts to the
/// expected shares (weights need not sum to 1); returns the p-value (df = k-1). None if fewer
/// than 2 groups with positive weight or no observations.
///
/// Groups with zero weight are left out when they are empty; an observation in a zero-weight
/// group is an impossible assignment and yields `Some(0.0)`. `None` as well when the slices
/// differ in length or a weight is negative or not finite. Matches `scipy.stats.chisquare`
/// with `f_exp = total * w / sum(w)`.
pub fn srm_p_value(observed: &[u64], weights: &[f64]) -> Option<f64> {
    if observed.len() != weights.len() || weights.iter().any(|w| !w.is_finite() || *w < 0.0) {
        return None;
    }
    let total: u64 = observed.iter().sum();
    let weight_sum: f64 = weights.iter().sum();
    let groups = weights.iter().filter(|w| **w > 0.0).count();
    if groups < 2 || total == 0 {
        return None;
    }
    if observed
        .iter()
        .zip(weights)
        .any(|(o, w)| *w == 0.0 && *o > 0)
    {
        return Some(0.0);
    }
    let statistic: f64 = observed
        .iter()
        .zip(weights)
        .filter(|(_, w)| **w > 0.0)
        .map(|(o, w)| {
            let expected = total as f64 * (w / weight_sum);
            let d = *o as f64 - expected;
            d * d / expected
        })
        .sum();
    Some(chi2_sf(statistic, (groups - 1) as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_on_degenerate_input() {
        let one = Summary {
            n: 1,
            mean: 1.0,
            m2: 0.0,
        };
        let flat = Summary {
            n: 10,
            mean: 1.0,
            m2: 0.0,
        };
        let ok = Summary {
            n: 10,
            mean: 1.0,
            m2: 4.0,
        };
        assert!(welch_t(&one, &ok, 0.05).is_none());
        assert!(welch_t(&flat, &flat, 0.05).is_none());
        assert!(welch_t(&flat, &ok, 0.05).is_some());
        assert!(welch_t(&ok, &ok, 0.0).is_none() && welch_t(&ok, &ok, 1.0).is_none());
        let nan = Summary {
            n: 10,
            mean: f64::NAN,
            m2: 1.0,
        };
        assert!(welch_t(&nan, &ok, 0.05).is_none());

        let zero = Summary::from_counts(0, 100);
        assert!(two_proportion_z(&zero, &zero, 0.05).is_none());
        assert!(two_proportion_z(&zero, &Summary::from_counts(1, 1), 0.05).is_none());
        assert!(
            two_proportion_z(&zero, &ok, 0.05).is_some(),
            "a mean of 1.0 is a proportion"
        );
        let not_a_rate = Summary {
            n: 10,
            mean: 3.0,
            m2: 4.0,
        };
        assert!(two_proportion_z(&zero, &not_a_rate, 0.05).is_none());
    }

    #[test]
    fn identical_arms_have_p_one_and_a_symmetric_interval() {
        let s = Summary::from_counts(40, 200);
        let r = two_proportion_z(&s, &s, 0.05).unwrap();
        assert_eq!((r.effect, r.p_value, r.significant), (0.0, 1.0, false));
        assert_eq!(r.ci_low, -r.ci_high);
        assert_eq!(r.relative_effect, 0.0);
        let w = welch_t(&Summary::from_counts(3, 0), &s, 0.05);
        assert!(w.is_none());
    }

    #[test]
    fn srm_edge_cases() {
        assert_eq!(srm_p_value(&[10, 10], &[1.0, 1.0]), Some(1.0));
        assert_eq!(
            srm_p_value(&[10, 9, 5], &[1.0, 1.0, 0.0]),
            Some(0.0),
            "impossible"
        );
        assert!(
            srm_p_value(&[10, 5], &[1.0, 0.0]).is_none(),
            "one group with positive weight"
        );
        assert!(
            srm_p_value(&[0, 0], &[1.0, 1.0]).is_none(),
            "no observations"
        );
        assert!(srm_p_value(&[1, 2], &[1.0]).is_none());
        assert!(srm_p_value(&[1, 2], &[1.0, -1.0]).is_none());
        assert!(srm_p_value(&[1, 2], &[1.0, f64::NAN]).is_none());
        let p = srm_p_value(&[5000, 5100], &[0.5, 0.5]).unwrap();
        assert_eq!(Some(p), srm_p_value(&[5000, 5100], &[7.0, 7.0]));
    }
}
