//! Student's t distribution: the tail is `I_{df/(df+t^2)}(df/2, 1/2) / 2` with the regularized
//! incomplete beta function of [`super::beta`]; the quantile is a safeguarded Newton iteration
//! on the survival function.

use super::beta::beta_reg;
use super::gamma::ln_beta;
use super::normal::norm_ppf;
#[cfg(test)]
use super::normal::norm_sf;

/// `P(T > |t|)` for `t` with `df` degrees of freedom: `I_{df/(df+t^2)}(df/2, 1/2) / 2`.
fn upper_tail_abs(t: f64, df: f64) -> f64 {
    let t2 = t * t;
    if t2 == f64::INFINITY {
        return 0.0;
    }
    // x = df / (df + t^2), y = t^2 / (df + t^2), each from a ratio that does not round to 1.
    let (x, y) = if t2 < df {
        let r = t2 / df;
        (1.0 / (1.0 + r), r / (1.0 + r))
    } else {
        let r = df / t2;
        (r / (1.0 + r), 1.0 / (1.0 + r))
    };
    0.5 * beta_reg(0.5 * df, 0.5, x, y)
}

/// Student's t survival function `P(T > t)` with `df > 0` degrees of freedom (not necessarily
/// an integer); NaN for invalid arguments.
pub fn t_sf(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    let tail = upper_tail_abs(t, df);
    if t >= 0.0 { tail } else { 1.0 - tail }
}

/// Student's t distribution function `P(T <= t)` with `df > 0` degrees of freedom.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    t_sf(-t, df)
}

/// Student's t density with `df` degrees of freedom:
/// `(1 + t^2/df)^(-(df+1)/2) / (sqrt(df) B(df/2, 1/2))`.
fn t_pdf(t: f64, df: f64) -> f64 {
    (-ln_beta(0.5 * df, 0.5) - 0.5 * df.ln() - 0.5 * (df + 1.0) * (t * t / df).ln_1p()).exp()
}

/// Student's t quantile: the `t` with `t_cdf(t, df) == p`; `∓inf` at 0 and 1, NaN for invalid
/// arguments.
pub fn t_ppf(p: f64, df: f64) -> f64 {
    if p.is_nan() || df.is_nan() || df <= 0.0 || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.5 {
        return 0.0;
    }
    // Solve P(T > t) = tail for t > 0; 1 - p is exact for p >= 0.5.
    let (tail, sign) = if p < 0.5 { (p, -1.0) } else { (1.0 - p, 1.0) };
    if tail == 0.0 {
        return sign * f64::INFINITY;
    }
    sign * upper_quantile(tail, df)
}

/// The `t > 0` with `P(T > t) = tail`, `0 < tail < 1/2`: Newton's method on
/// `ln P(T > e^u) - ln tail` in `u = ln t` (nearly linear for heavy tails, so a poor start is
/// harmless), kept inside a bracket that bisection shrinks whenever a step leaves it.
fn upper_quantile(tail: f64, df: f64) -> f64 {
    let target = tail.ln();
    // Start from the Cornish-Fisher expansion around the normal quantile.
    let z = -norm_ppf(tail);
    let (z3, z5) = (z * z * z, z * z * z * z * z);
    let mut t = z + (z3 + z) / (4.0 * df) + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * df * df);
    if !t.is_finite() {
        t = z; // tiny df: the expansion overflows, but the log-space Newton copes
    }
    // Bracket: P(T > lo) > tail > P(T > hi).
    let (mut lo, mut hi) = (0.0_f64, f64::INFINITY);
    for _ in 0..400 {
        let sf = upper_tail_abs(t, df);
        if sf > tail {
            lo = lo.max(t);
        } else {
            hi = hi.min(t);
        }
        let g = sf.ln() - target;
        let slope = -t * t_pdf(t, df) / sf; // d ln sf / d ln t
        if g == 0.0 {
            return t;
        }
        let mut next = t * (-g / slope).exp();
        if !(next.is_finite() && lo <= next && next <= hi) {
            next = if hi.is_infinite() {
                2.0 * t.max(lo)
            } else if lo > 0.0 {
                (lo * hi).sqrt()
            } else {
                0.5 * hi
            };
        }
        if (next - t).abs() <= 2.0 * f64::EPSILON * t {
            return next;
        }
        t = next;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs()
    }

    #[test]
    fn closed_forms_for_one_and_two_degrees_of_freedom() {
        // df = 1 is the Cauchy distribution; df = 2 has F(t) = 1/2 + t / (2 sqrt(2 + t^2)).
        for t in [0.001_f64, 0.3, 1.0, 2.5, 10.0, 1e3, 1e6] {
            let cauchy = (1.0 / t).atan() / std::f64::consts::PI;
            assert!(close(t_sf(t, 1.0), cauchy, 1e-13), "df 1, t {t}");
            let two = 0.5 - t / (2.0 * (2.0 + t * t).sqrt());
            let two_tail = 1.0 / ((2.0 + t * t).sqrt() * ((2.0 + t * t).sqrt() + t));
            assert!(close(t_sf(t, 2.0), two_tail, 1e-13), "df 2, t {t} ({two})");
        }
        assert!(close(
            t_ppf(0.975, 1.0),
            (0.475 * std::f64::consts::PI).tan(),
            1e-13
        ));
    }

    #[test]
    fn quantile_inverts_cdf() {
        for df in [0.7, 1.0, 2.0, 3.5, 9.0, 40.0, 1e4, 1e8] {
            for p in [1e-15, 1e-9, 1e-4, 0.01, 0.1, 0.3, 0.49, 0.51, 0.9, 0.99] {
                let t = t_ppf(p, df);
                let back = if p < 0.5 {
                    t_cdf(t, df)
                } else {
                    1.0 - t_sf(t, df)
                };
                assert!(close(back, p, 1e-12), "df {df}, p {p}: t {t} -> {back}");
            }
        }
        let t = t_ppf(1e-12, 0.2);
        assert!(t.is_finite() && close(t_cdf(t, 0.2), 1e-12, 1e-12), "{t}");
        assert_eq!(t_ppf(0.0, 3.0), f64::NEG_INFINITY);
        assert_eq!(t_ppf(1.0, 3.0), f64::INFINITY);
        assert!(t_ppf(0.5, -1.0).is_nan());
    }

    #[test]
    fn approaches_the_normal_for_huge_df() {
        let (t, z) = (t_sf(3.0, 1e15), norm_sf(3.0));
        assert!(close(t, z, 1e-13), "{t} vs {z}");
        let (t, z) = (t_ppf(1e-10, 1e15), norm_ppf(1e-10));
        assert!(close(t, z, 1e-13), "{t} vs {z}");
    }
}
