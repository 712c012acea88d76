//! Always-valid inference: the mixture sequential probability ratio test (mSPRT) with a normal
//! mixture, Johari, Koomen, Pekelis and Walsh, "Peeking at A/B tests" (KDD 2017) and "Always
//! valid inference" (Operations Research 2022); the confidence sequence is the normal-mixture
//! boundary of Howard, Ramdas, McAuliffe and Sekhon, "Time-uniform, nonparametric,
//! nonasymptotic confidence sequences" (Annals of Statistics 2021).
//!
//! With `theta_hat` the observed difference, `s^2` its variance and a `N(theta, tau^2)` mixture
//! over the alternative, the mixture likelihood ratio of `theta` is
//!
//! ```text
//! Lambda(theta) = sqrt(s^2 / (s^2 + tau^2))
//!                 * exp(tau^2 (theta_hat - theta)^2 / (2 s^2 (s^2 + tau^2)))
//! ```
//!
//! (for `n` observations per arm and `V = sigma_c^2 + sigma_t^2`, `s^2 = V / n` gives the
//! formula of Johari et al.). Under the null it is a nonnegative martingale, so by Ville's
//! inequality `P(exists n: Lambda_n(theta) >= 1/alpha) <= alpha`: the p-value
//! `min(1, 1 / Lambda(0))` crosses `alpha` at *some* look with probability at most `alpha`,
//! however often one looks, and `{theta: Lambda(theta) < 1/alpha}` is a confidence sequence
//! that covers the true difference at *all* looks with probability `1 - alpha`. Plugging in
//! estimated variances makes this a large-sample guarantee (as in Johari et al.): the
//! simulations in `simulation_tests.rs` look from 50 observations per arm on and stay well
//! inside `alpha`; with rare conversions, wait for a few dozen events per arm.
//!
//! Each call evaluates the current look only; callers that look repeatedly combine the results
//! with [`TestResult::after`] (running minimum p-value, running intersection of intervals).

use super::classic::is_proportion;
use super::{
    METHOD_MSPRT_MEANS, METHOD_MSPRT_PROPORTIONS, Summary, TestResult, relative, valid_alpha,
};

/// Default mixing scale: `tau = 0.1 sigma`, a standardized effect of a tenth of a standard
/// deviation of the outcome (half of Cohen's "small" effect).
///
/// The mixing distribution is a prior guess of plausible effect sizes; the width of the
/// confidence sequence is smallest where `tau^2 / s^2` is about 8 (Howard et al.), i.e. near
/// 1,600 observations per arm for this default, and grows only logarithmically away from there
/// (at `alpha = 0.05` about 25 % wider at 10^6 per arm and 45 % wider at 100). Pass
/// [`Mixing::Absolute`] when the effect that matters is known in the outcome's units.
pub const DEFAULT_TAU_SCALE: f64 = 0.1;

/// How the mixing standard deviation `tau` of the mSPRT is chosen.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Mixing {
    /// `tau = k * sigma`, with `sigma^2` the pooled variance of the outcome: for proportions
    /// `p(1 - p)` at the pooled proportion, for means the pooled within-arm sample variance
    /// `(m2_c + m2_t) / (n_c + n_t - 2)`. The default is `Relative(DEFAULT_TAU_SCALE)`.
    Relative(f64),
    /// `tau` in the outcome's units (the scale of the effects one expects to detect).
    Absolute(f64),
}

impl Default for Mixing {
    fn default() -> Mixing {
        Mixing::Relative(DEFAULT_TAU_SCALE)
    }
}

impl Mixing {
    /// `tau^2` given the pooled variance `sigma^2`; `None` unless positive and finite.
    fn tau2(self, pooled_variance: f64) -> Option<f64> {
        let tau2 = match self {
            Mixing::Relative(k) => k * k * pooled_variance,
            Mixing::Absolute(tau) => tau * tau,
        };
        (tau2 > 0.0 && tau2.is_finite()).then_some(tau2)
    }
}

/// `(p-value, half-width of the confidence sequence)`. `s2_p` is the variance of the estimate
/// under the null (for the p-value), `s2_ci` the one for the interval.
fn mixture(effect: f64, s2_p: f64, s2_ci: f64, tau2: f64, alpha: f64) -> (f64, f64) {
    let ln_lambda =
        -0.5 * (tau2 / s2_p).ln_1p() + tau2 * effect * effect / (2.0 * s2_p * (s2_p + tau2));
    let p_value = (-ln_lambda).exp().min(1.0);
    // Lambda(theta) = 1/alpha  <=>
    // (theta_hat - theta)^2 = s^2 (s^2 + tau^2) / tau^2 * (2 ln(1/alpha) + ln(1 + tau^2 / s^2)).
    let half = if s2_ci > 0.0 {
        (s2_ci * (s2_ci + tau2) / tau2 * (-2.0 * alpha.ln() + (tau2 / s2_ci).ln_1p())).sqrt()
    } else {
        0.0
    };
    (p_value, half)
}

/// Always-valid two-sided test of a difference of proportions (mSPRT, normal mixture with
/// mixing variance `tau^2`): a p-value that is valid at any stopping time and a confidence
/// sequence for the difference, treatment minus control.
///
/// `tau^2 = (DEFAULT_TAU_SCALE * sigma)^2 = 0.01 p(1 - p)` at the pooled proportion `p` (see
/// [`Mixing`]). Like [`two_proportion_z`](super::two_proportion_z), the p-value uses the
/// pooled variance `p(1 - p)(1/n_c + 1/n_t)` and the confidence sequence the unpooled one.
/// `None` as for `two_proportion_z`.
pub fn msprt_proportions(control: &Summary, treatment: &Summary, alpha: f64) -> Option<TestResult> {
    msprt_proportions_with(control, treatment, alpha, Mixing::default())
}

/// [`msprt_proportions`] with an explicit choice of the mixing scale `tau`.
pub fn msprt_proportions_with(
    control: &Summary,
    treatment: &Summary,
    alpha: f64,
    mixing: Mixing,
) -> Option<TestResult> {
    if !valid_alpha(alpha) || !is_proportion(control) || !is_proportion(treatment) {
        return None;
    }
    let (nc, nt) = (control.n as f64, treatment.n as f64);
    let (pc, pt) = (control.mean, treatment.mean);
    let pooled = (pc * nc + pt * nt) / (nc + nt);
    let pooled_variance = pooled * (1.0 - pooled);
    let s2_p = pooled_variance * (1.0 / nc + 1.0 / nt);
    if s2_p <= 0.0 {
        return None;
    }
    let tau2 = mixing.tau2(pooled_variance)?;
    let s2_ci = pc * (1.0 - pc) / nc + pt * (1.0 - pt) / nt;
    let effect = pt - pc;
    let (p_value, half) = mixture(effect, s2_p, s2_ci, tau2, alpha);
    Some(TestResult {
        effect,
        relative_effect: relative(effect, pc),
        ci_low: effect - half,
        ci_high: effect + half,
        p_value,
        significant: p_value < alpha,
        method: METHOD_MSPRT_PROPORTIONS,
    })
}

/// Always-valid two-sided test of a difference of means (mSPRT, normal mixture with mixing
/// variance `tau^2`): a p-value that is valid at any stopping time and a confidence sequence
/// for the difference, treatment minus control.
///
/// `tau^2 = (DEFAULT_TAU_SCALE * sigma)^2` with `sigma^2` the pooled within-arm variance (see
/// [`Mixing`]); the estimate's variance is Welch's `s_c^2/n_c + s_t^2/n_t`, so the p-value and
/// the confidence sequence agree (`p < alpha` exactly when 0 lies outside the interval). `None`
/// as for [`welch_t`](super::welch_t).
pub fn msprt_means(control: &Summary, treatment: &Summary, alpha: f64) -> Option<TestResult> {
    msprt_means_with(control, treatment, alpha, Mixing::default())
}

/// [`msprt_means`] with an explicit choice of the mixing scale `tau`.
pub fn msprt_means_with(
    control: &Summary,
    treatment: &Summary,
    alpha: f64,
    mixing: Mixing,
) -> Option<TestResult> {
    if !valid_alpha(alpha) || !control.is_usable() || !treatment.is_usable() {
        return None;
    }
    let s2 = control.variance() / control.n as f64 + treatment.variance() / treatment.n as f64;
    if s2 <= 0.0 || !s2.is_finite() {
        return None;
    }
    let pooled_variance = (control.m2 + treatment.m2) / (control.n + treatment.n - 2) as f64;
    let tau2 = mixing.tau2(pooled_variance)?;
    let effect = treatment.mean - control.mean;
    let (p_value, half) = mixture(effect, s2, s2, tau2, alpha);
    Some(TestResult {
        effect,
        relative_effect: relative(effect, control.mean),
        ci_low: effect - half,
        ci_high: effect + half,
        p_value,
        significant: p_value < alpha,
        method: METHOD_MSPRT_MEANS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_value_and_interval_are_dual_for_means() {
        let c = Summary::from_moments(400, 10.0, 4.0);
        for shift in [0.0, 0.2, 0.4, 0.45, 0.5, 0.6, 1.0] {
            let t = Summary::from_moments(400, 10.0 + shift, 4.0);
            let r = msprt_means(&c, &t, 0.05).unwrap();
            let excludes_zero = r.ci_low > 0.0 || r.ci_high < 0.0;
            assert_eq!(r.significant, excludes_zero, "shift {shift}: {r:?}");
            assert!((0.0..=1.0).contains(&r.p_value));
        }
    }

    #[test]
    fn wider_than_the_fixed_horizon_interval() {
        let c = Summary::from_counts(1000, 10_000);
        let t = Summary::from_counts(1100, 10_000);
        let fixed = super::super::two_proportion_z(&c, &t, 0.05).unwrap();
        let seq = msprt_proportions(&c, &t, 0.05).unwrap();
        assert_eq!(seq.effect, fixed.effect);
        assert!(seq.ci_high - seq.ci_low > fixed.ci_high - fixed.ci_low);
        assert!(seq.p_value > fixed.p_value);
    }

    #[test]
    fn mixing_choices() {
        let c = Summary::from_moments(100, 0.0, 1.0);
        let t = Summary::from_moments(100, 0.3, 1.0);
        assert!(msprt_means_with(&c, &t, 0.05, Mixing::Absolute(0.0)).is_none());
        assert!(msprt_means_with(&c, &t, 0.05, Mixing::Relative(f64::NAN)).is_none());
        let rel = msprt_means_with(&c, &t, 0.05, Mixing::Relative(0.5)).unwrap();
        let abs = msprt_means_with(&c, &t, 0.05, Mixing::Absolute(0.5)).unwrap();
        assert!(
            (rel.p_value - abs.p_value).abs() < 1e-12,
            "pooled sd is 1 here"
        );
        assert!(
            msprt_proportions(
                &Summary::from_counts(0, 50),
                &Summary::from_counts(0, 50),
                0.05
            )
            .is_none()
        );
        // p_c = 0, p_t = 1: no unpooled variance, a degenerate (point) interval.
        let r = msprt_proportions(
            &Summary::from_counts(0, 50),
            &Summary::from_counts(50, 50),
            0.05,
        )
        .unwrap();
        assert_eq!((r.ci_low, r.ci_high), (1.0, 1.0));
    }
}
