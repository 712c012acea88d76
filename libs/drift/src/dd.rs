//! Minimal double-double arithmetic (~106-bit significand), the subset of the qd
//! package that scipy's `smirnov` (cephes `kolmogorov.c`, now xsf) relies on.
//! Operation-for-operation the same algorithms (Dekker/Knuth two-sum, fused
//! two-product, Briggs/Kahan addition, three-step division) so results match.

use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::special::{frexp, ldexp};

/// An unevaluated sum `hi + lo` with `|lo| <= ulp(hi) / 2`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Dd {
    pub hi: f64,
    pub lo: f64,
}

/// `fl(a + b)` and its rounding error, assuming `|a| >= |b|`.
#[inline]
fn quick_two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let c = s - a;
    (s, b - c)
}

/// `fl(a + b)` and its rounding error.
#[inline]
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let c = s - a;
    let d = b - c;
    let e = s - c;
    (s, (a - e) + d)
}

/// `fl(a * b)` and its rounding error (exact, via fused multiply-add).
#[inline]
fn two_prod(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    (p, a.mul_add(b, -p))
}

impl Dd {
    pub const ZERO: Dd = Dd { hi: 0.0, lo: 0.0 };
    pub const ONE: Dd = Dd { hi: 1.0, lo: 0.0 };

    #[inline]
    pub fn from_f64(x: f64) -> Dd {
        Dd { hi: x, lo: 0.0 }
    }

    #[inline]
    pub fn is_zero(self) -> bool {
        self.hi == 0.0 && self.lo == 0.0
    }

    #[inline]
    pub fn is_finite(self) -> bool {
        self.hi.is_finite()
    }

    /// `floor` of a double-double.
    pub fn floor(self) -> Dd {
        let hi = self.hi.floor();
        if hi == self.hi {
            let lo = self.lo.floor();
            let (hi, lo) = quick_two_sum(hi, lo);
            Dd { hi, lo }
        } else {
            Dd { hi, lo: 0.0 }
        }
    }

    /// `self * 2^e`.
    pub fn ldexp(self, e: i32) -> Dd {
        Dd {
            hi: ldexp(self.hi, e),
            lo: ldexp(self.lo, e),
        }
    }

    /// Mantissa in `[0.5, 1)` (or exactly 1 with a negative tail) and exponent.
    pub fn frexp(self) -> (Dd, i32) {
        let (mut man, mut exponent) = frexp(self.hi);
        let mut b1 = ldexp(self.lo, -exponent);
        if man.abs() == 0.5 && man * b1 < 0.0 {
            man *= 2.0;
            b1 *= 2.0;
            exponent -= 1;
        }
        (Dd { hi: man, lo: b1 }, exponent)
    }
}

impl Neg for Dd {
    type Output = Dd;
    fn neg(self) -> Dd {
        Dd {
            hi: -self.hi,
            lo: -self.lo,
        }
    }
}

impl Add for Dd {
    type Output = Dd;
    fn add(self, rhs: Dd) -> Dd {
        let (s1, s2) = two_sum(self.hi, rhs.hi);
        let (t1, t2) = two_sum(self.lo, rhs.lo);
        let s2 = s2 + t1;
        let (s1, s2) = quick_two_sum(s1, s2);
        let s2 = s2 + t2;
        let (hi, lo) = quick_two_sum(s1, s2);
        Dd { hi, lo }
    }
}

impl Add<f64> for Dd {
    type Output = Dd;
    fn add(self, rhs: f64) -> Dd {
        let (s1, s2) = two_sum(self.hi, rhs);
        let s2 = s2 + self.lo;
        let (hi, lo) = quick_two_sum(s1, s2);
        Dd { hi, lo }
    }
}

impl Sub for Dd {
    type Output = Dd;
    fn sub(self, rhs: Dd) -> Dd {
        self + (-rhs)
    }
}

impl Sub<f64> for Dd {
    type Output = Dd;
    fn sub(self, rhs: f64) -> Dd {
        let (s1, s2) = two_sum(self.hi, -rhs);
        let s2 = s2 + self.lo;
        let (hi, lo) = quick_two_sum(s1, s2);
        Dd { hi, lo }
    }
}

impl Mul for Dd {
    type Output = Dd;
    fn mul(self, rhs: Dd) -> Dd {
        let (p1, p2) = two_prod(self.hi, rhs.hi);
        let p2 = p2 + (self.hi * rhs.lo + self.lo * rhs.hi);
        let (hi, lo) = quick_two_sum(p1, p2);
        Dd { hi, lo }
    }
}

impl Mul<f64> for Dd {
    type Output = Dd;
    fn mul(self, rhs: f64) -> Dd {
        let (p1, e1) = two_prod(self.hi, rhs);
        let (p2, e2) = two_prod(self.lo, rhs);
        let (hi, lo) = quick_two_sum(p1, e2 + p2 + e1);
        Dd { hi, lo }
    }
}

impl Mul<Dd> for f64 {
    type Output = Dd;
    fn mul(self, rhs: Dd) -> Dd {
        let (p1, e1) = two_prod(self, rhs.hi);
        let (p2, e2) = two_prod(self, rhs.lo);
        let (hi, lo) = quick_two_sum(p1, e2 + p2 + e1);
        Dd { hi, lo }
    }
}

impl Div for Dd {
    type Output = Dd;
    fn div(self, rhs: Dd) -> Dd {
        let q1 = self.hi / rhs.hi;
        let r = self - rhs * q1;
        let q2 = r.hi / rhs.hi;
        let r = r - rhs * q2;
        let q3 = r.hi / rhs.hi;
        let (q1, q2) = quick_two_sum(q1, q2);
        Dd { hi: q1, lo: q2 } + q3
    }
}

impl Div<f64> for Dd {
    type Output = Dd;
    fn div(self, rhs: f64) -> Dd {
        self / Dd::from_f64(rhs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_third_is_accurate() {
        let third = Dd::ONE / 3.0;
        let back = third * 3.0 - 1.0;
        assert!(back.hi.abs() < 1e-31, "{back:?}");
    }

    #[test]
    fn floor_and_frexp() {
        let x = Dd {
            hi: 5.0,
            lo: -1e-20,
        };
        assert_eq!(x.floor().hi, 4.0);
        let (m, e) = Dd::from_f64(12.0).frexp();
        assert_eq!((m.hi, e), (0.75, 4));
    }
}
