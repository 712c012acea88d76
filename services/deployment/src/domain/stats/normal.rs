//! The standard normal distribution.
//!
//! The distribution function is W. J. Cody's rational Chebyshev approximation ("Rational
//! Chebyshev approximations for the error function", Math. Comp. 1969; the `ANORM` routine of
//! SPECFUN, in the form R's `pnorm_both` uses), accurate to a few ulps in *both* tails, so a
//! p-value of 1e-300 keeps its relative precision. The quantile is P. J. Acklam's rational
//! approximation (relative error below 1.15e-9) refined by one Halley step on that distribution
//! function, which brings it to full double precision.

/// 1 / sqrt(2 pi).
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
/// ln(sqrt(2 pi)).
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

// Cody's coefficients: |x| <= 0.674... (A, B), up to sqrt(32) (C, D), beyond (P, Q).
const A: [f64; 5] = [
    2.235_252_035_460_683_7,
    161.028_231_068_555_87,
    1_067.689_485_460_370_9,
    18_154.981_253_343_56,
    0.065_682_337_918_207_45,
];
const B: [f64; 4] = [
    47.202_581_904_688_245,
    976.098_551_737_776_7,
    10_260.932_208_618_979,
    45_507.789_335_026_73,
];
const C: [f64; 9] = [
    0.398_941_512_088_134_66,
    8.883_149_794_388_377,
    93.506_656_132_177_85,
    597.270_276_394_800_2,
    2_494.537_585_290_372_6,
    6_848.190_450_536_283,
    11_602.651_437_647_35,
    9_842.714_838_383_978,
    1.076_557_677_372_019_2e-08,
];
const D: [f64; 8] = [
    22.266_688_044_328_117,
    235.387_901_782_625,
    1_519.377_599_407_554_7,
    6_485.558_298_266_761,
    18_615.571_640_885_097,
    34_900.952_721_145_98,
    38_912.003_286_093_27,
    19_685.429_676_859_992,
];
const P: [f64; 6] = [
    0.215_898_534_057_957,
    0.127_401_161_160_247_36,
    0.022_235_277_870_649_807,
    0.001_421_619_193_227_893_4,
    2.911_287_495_116_879_3e-05,
    0.023_073_441_764_940_174,
];
const Q: [f64; 5] = [
    1.284_260_096_144_911,
    0.468_238_212_480_865_1,
    0.065_988_137_868_928_56,
    0.003_782_396_332_027_582_4,
    7.297_515_550_839_662e-05,
];

/// `(P(Z <= x), P(Z > x))` for a standard normal `Z`, each with full relative precision.
fn both_tails(x: f64) -> (f64, f64) {
    if x.is_nan() {
        return (f64::NAN, f64::NAN);
    }
    let y = x.abs();
    if y <= 0.674_489_75 {
        let (mut num, mut den) = (0.0, 0.0);
        if y > f64::EPSILON * 0.5 {
            let xsq = x * x;
            num = A[4] * xsq;
            den = xsq;
            for i in 0..3 {
                num = (num + A[i]) * xsq;
                den = (den + B[i]) * xsq;
            }
        }
        let temp = x * (num + A[3]) / (den + B[3]);
        return (0.5 + temp, 0.5 - temp);
    }
    // The tail beyond |x|, as exp(-x^2/2) times a rational function of |x|.
    let tail = if y <= 32f64.sqrt() {
        let (mut num, mut den) = (C[8] * y, y);
        for i in 0..7 {
            num = (num + C[i]) * y;
            den = (den + D[i]) * y;
        }
        gaussian_factor(y) * ((num + C[7]) / (den + D[7]))
    } else if y < 38.5 {
        let xsq = 1.0 / (y * y);
        let (mut num, mut den) = (P[5] * xsq, xsq);
        for i in 0..4 {
            num = (num + P[i]) * xsq;
            den = (den + Q[i]) * xsq;
        }
        let temp = xsq * (num + P[4]) / (den + Q[4]);
        gaussian_factor(y) * ((FRAC_1_SQRT_2PI - temp) / y)
    } else {
        0.0
    };
    if x > 0.0 {
        (1.0 - tail, tail)
    } else {
        (tail, 1.0 - tail)
    }
}

/// `exp(-y^2 / 2)` without the rounding error of squaring `y`: `y` is split into a part with
/// few bits (whose square is exact) and a small remainder.
fn gaussian_factor(y: f64) -> f64 {
    let head = (y * 16.0).trunc() / 16.0;
    let del = (y - head) * (y + head);
    (-head * head * 0.5).exp() * (-del * 0.5).exp()
}

/// Standard normal distribution function `P(Z <= x)`.
pub fn norm_cdf(x: f64) -> f64 {
    both_tails(x).0
}

/// Standard normal survival function `P(Z > x) = 1 - norm_cdf(x)`, accurate in the far upper
/// tail (use it, not `1 - norm_cdf`, for p-values).
pub fn norm_sf(x: f64) -> f64 {
    both_tails(x).1
}

/// Standard normal quantile: the `x` with `norm_cdf(x) == p`; `-inf` at 0, `+inf` at 1, NaN
/// outside `[0, 1]`.
pub fn norm_ppf(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p > 0.5 {
        // 1 - p is exact for p in [0.5, 1].
        return -lower_ppf(1.0 - p);
    }
    lower_ppf(p)
}

/// The quantile for `p` in `[0, 0.5]`.
fn lower_ppf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -39.696_830_286_653_76,
        220.946_098_424_520_5,
        -275.928_510_446_968_7,
        138.357_751_867_269,
        -30.664_798_066_147_16,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -54.476_098_798_224_06,
        161.585_836_858_040_9,
        -155.698_979_859_886_6,
        66.801_311_887_719_72,
        -13.280_681_552_885_72,
    ];
    const C: [f64; 6] = [
        -0.007_784_894_002_430_293,
        -0.322_396_458_041_136_5,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        0.007_784_695_709_041_462,
        0.322_467_129_070_039_8,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    let x = if p < 0.024_25 {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    // One Halley step on F(x) - p, written relative to p so that it neither overflows
    // (exp(x^2 / 2)) nor underflows (F(x) - p) deep in the tail: u = (F(x) - p) / pdf(x).
    let rel = norm_cdf(x) / p - 1.0;
    let p_over_pdf = (p.ln() + 0.5 * x * x + LN_SQRT_2PI).exp();
    let u = rel * p_over_pdf;
    x - u / (1.0 + 0.5 * x * u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(norm_cdf(0.0), 0.5);
        assert!((norm_cdf(1.959_963_984_540_054) - 0.975).abs() < 1e-15);
        assert!((norm_ppf(0.975) - 1.959_963_984_540_054).abs() < 1e-14);
        assert_eq!(norm_ppf(0.5), 0.0);
        assert_eq!(norm_ppf(0.0), f64::NEG_INFINITY);
        assert_eq!(norm_ppf(1.0), f64::INFINITY);
        assert!(norm_ppf(1.5).is_nan() && norm_cdf(f64::NAN).is_nan());
        assert_eq!(norm_sf(f64::INFINITY), 0.0);
        assert_eq!(norm_cdf(f64::NEG_INFINITY), 0.0);
    }

    #[test]
    fn ppf_inverts_cdf_and_tails_are_symmetric() {
        for i in 1..200 {
            let x = -9.0 + 0.09 * f64::from(i);
            assert_eq!(norm_cdf(x), norm_sf(-x), "symmetry at {x}");
            // Invert from the tail that holds the information (a CDF near 1 has lost digits).
            let back = if x <= 0.0 {
                norm_ppf(norm_cdf(x))
            } else {
                -norm_ppf(norm_sf(x))
            };
            assert!(
                (back - x).abs() <= 1e-12 * x.abs().max(1.0),
                "{x} -> {back}"
            );
        }
    }
}
