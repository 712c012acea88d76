//! The gamma function family: `ln Γ`, `ln B`, and the chi-squared survival function through
//! the regularized upper incomplete gamma function `Q(a, x)` (series or Lentz continued
//! fraction, as in Numerical Recipes §6.2).

/// ln(sqrt(2 pi)).
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;
/// Where the Stirling series takes over (its first omitted term is below 1e-16 there).
const STIRLING_FROM: f64 = 10.0;
/// Relative tolerance of the series and continued fractions.
const EPS: f64 = 1e-16;
/// Guards the continued fractions' divisions.
const TINY: f64 = 1e-300;

/// `ln Γ(x) - ((x - 1/2) ln x - x + ln sqrt(2 pi))` for `x >= 10`: the Stirling series
/// `sum B_2k / (2k (2k - 1) x^(2k - 1))`.
fn stirling_correction(x: f64) -> f64 {
    const COEFFS: [f64; 7] = [
        1.0 / 12.0,
        -1.0 / 360.0,
        1.0 / 1260.0,
        -1.0 / 1680.0,
        1.0 / 1188.0,
        -691.0 / 360_360.0,
        1.0 / 156.0,
    ];
    let inv2 = 1.0 / (x * x);
    COEFFS.iter().rev().fold(0.0, |acc, c| acc * inv2 + c) / x
}

/// `ln Γ(x)` for `x > 0`: the Stirling series from 10 on, the recurrence
/// `Γ(x) = Γ(x + k) / (x (x + 1) ... (x + k - 1))` below. Absolute error about 1e-15 for
/// moderate `x`.
pub(crate) fn ln_gamma(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    if x >= STIRLING_FROM {
        return (x - 0.5) * x.ln() - x + LN_SQRT_2PI + stirling_correction(x);
    }
    let mut shifted = x;
    let mut product = 1.0;
    while shifted < STIRLING_FROM {
        product *= shifted;
        shifted += 1.0;
    }
    ln_gamma(shifted) - product.ln()
}

/// `ln Γ(a) - ln Γ(a + b)` without the cancellation of two huge logarithms when `a` is large
/// (Welch's degrees of freedom can run into the millions).
pub(crate) fn ln_gamma_ratio(a: f64, b: f64) -> f64 {
    if a < STIRLING_FROM {
        return ln_gamma(a) - ln_gamma(a + b);
    }
    // (a - 1/2) ln a - (a + b - 1/2) ln(a + b) + b, with ln(a + b) = ln a + ln(1 + b/a).
    -b * a.ln() - (a + b - 0.5) * (b / a).ln_1p() + b + stirling_correction(a)
        - stirling_correction(a + b)
}

/// `ln B(a, b) = ln Γ(a) + ln Γ(b) - ln Γ(a + b)`.
pub(crate) fn ln_beta(a: f64, b: f64) -> f64 {
    let (small, large) = if a <= b { (a, b) } else { (b, a) };
    ln_gamma(small) + ln_gamma_ratio(large, small)
}

/// `(P(a, x), Q(a, x))`: the regularized lower and upper incomplete gamma functions, the one
/// that is computed directly (the smaller one, roughly) keeping its relative precision.
pub(crate) fn gamma_inc(a: f64, x: f64) -> (f64, f64) {
    if x.is_nan() || a.is_nan() || a <= 0.0 || x < 0.0 {
        return (f64::NAN, f64::NAN);
    }
    if x == 0.0 {
        return (0.0, 1.0);
    }
    if x == f64::INFINITY {
        return (1.0, 0.0);
    }
    let ln_front = -x + a * x.ln() - ln_gamma(a);
    if x < a + 1.0 {
        // P(a, x) = e^-x x^a / Γ(a + 1) * sum x^n / ((a + 1) ... (a + n)).
        let (mut term, mut sum, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..100_000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * EPS {
                break;
            }
        }
        let p = sum * ln_front.exp();
        (p, 1.0 - p)
    } else {
        // Q(a, x) = e^-x x^a / Γ(a) * 1 / (x + 1 - a - 1 (1 - a) / (x + 3 - a - ...)).
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / TINY;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..100_000 {
            let i = f64::from(i);
            let an = -i * (i - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < TINY {
                d = TINY;
            }
            c = b + an / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < EPS {
                break;
            }
        }
        let q = h * ln_front.exp();
        (1.0 - q, q)
    }
}

/// Chi-squared survival function `P(X > x)` with `df` degrees of freedom (`df > 0`, not
/// necessarily an integer); NaN for invalid arguments.
pub fn chi2_sf(x: f64, df: f64) -> f64 {
    if x.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 1.0;
    }
    gamma_inc(0.5 * df, 0.5 * x).1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1e-300)
    }

    #[test]
    fn ln_gamma_matches_factorials_and_half_integers() {
        let mut factorial = 1.0_f64;
        for n in 1..60_u32 {
            // ln Γ(n) = ln (n - 1)!
            assert!(
                (ln_gamma(f64::from(n)) - factorial.ln()).abs() < 1e-13 * factorial.ln().max(1.0)
            );
            factorial *= f64::from(n);
        }
        let sqrt_pi = std::f64::consts::PI.sqrt();
        assert!(close(ln_gamma(0.5).exp(), sqrt_pi, 1e-14));
        assert!(close(ln_gamma(1.5).exp(), 0.5 * sqrt_pi, 1e-14));
        assert!(ln_gamma(0.0).is_nan());
    }

    #[test]
    fn ln_beta_is_stable_for_huge_arguments() {
        // B(a, 1/2) = sqrt(pi / a) (1 + 1/(8a) + O(1/a^2)), so ln B + ln(a)/2 -> ln sqrt(pi).
        let a: f64 = 5e8;
        let expected = 0.5 * std::f64::consts::PI.ln() - 0.5 * a.ln() + (1.0 / (8.0 * a)).ln_1p();
        assert!((ln_beta(a, 0.5) - expected).abs() < 1e-14);
        assert!((ln_beta(2.0, 3.0) - (1.0_f64 / 12.0).ln()).abs() < 1e-14);
    }

    #[test]
    fn chi2_closed_forms() {
        // df = 2: sf = exp(-x/2); df = 1: sf = 2 (1 - Φ(sqrt x)).
        for x in [0.01, 0.5, 1.0, 3.0, 10.0, 50.0, 300.0] {
            assert!(
                close(chi2_sf(x, 2.0), (-0.5 * x).exp(), 1e-13),
                "df 2, x {x}"
            );
            let expected = 2.0 * super::super::normal::norm_sf(x.sqrt());
            assert!(close(chi2_sf(x, 1.0), expected, 1e-12), "df 1, x {x}");
        }
        assert_eq!(chi2_sf(0.0, 3.0), 1.0);
        assert!(chi2_sf(1.0, 0.0).is_nan());
    }
}
