//! The sealed element trait: tensors hold `f32` or `f64`, nothing else.

use std::fmt::{Debug, Display, LowerExp};
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

mod private {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A floating-point element type: implemented for `f32` and `f64` only (sealed).
///
/// It carries the scalar math every op needs (with numerically stable `sigmoid` and `softplus`)
/// and the matching matrixmultiply kernel (`sgemm` or `dgemm`).
pub trait Float:
    private::Sealed
    + crate::pool::Pooled
    + Copy
    + Default
    + Debug
    + Display
    + LowerExp
    + PartialEq
    + PartialOrd
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
{
    /// Zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;
    /// The name of the type as shown by `Display` and errors: `"f32"` or `"f64"`.
    const DTYPE: &'static str;
    /// Converts from `f64` (rounding for `f32`).
    fn from_f64(v: f64) -> Self;
    /// Converts to `f64` exactly.
    fn to_f64(self) -> f64;
    /// Converts a count or an index.
    fn from_usize(v: usize) -> Self;
    /// e^x.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// ln(1 + x), accurate near zero.
    fn ln_1p(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// x^p.
    fn powf(self, p: Self) -> Self;
    /// The larger of two values (NaN-propagating like `f32::max` is not: it returns the non-NaN).
    fn max(self, other: Self) -> Self;
    /// The smaller of two values.
    fn min(self, other: Self) -> Self;
    /// Whether the value is neither NaN nor infinite.
    fn is_finite(self) -> bool;
    /// Negative infinity.
    fn neg_infinity() -> Self;
    /// Sine.
    fn sin(self) -> Self;
    /// Cosine.
    fn cos(self) -> Self;
    /// e^x - 1, accurate near zero.
    fn exp_m1(self) -> Self;
    /// The error function, 2/sqrt(pi) times the integral of e^(-t^2) from 0 to x (the `libm`
    /// crate's, correctly rounded to within an ulp).
    fn erf(self) -> Self;

    /// GELU, exact: x Phi(x) with Phi the standard normal distribution function,
    /// 0.5 (1 + erf(x / sqrt 2)).
    #[inline]
    fn gelu(self) -> Self {
        let half = Self::from_f64(0.5);
        half * self * (Self::ONE + (self * Self::from_f64(std::f64::consts::FRAC_1_SQRT_2)).erf())
    }

    /// GELU's tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
    #[inline]
    fn gelu_tanh(self) -> Self {
        let half = Self::from_f64(0.5);
        half * self * (Self::ONE + gelu_tanh_inner(self).tanh())
    }

    /// SiLU (swish): x sigmoid(x).
    #[inline]
    fn silu(self) -> Self {
        self * self.sigmoid()
    }

    /// Logistic sigmoid 1 / (1 + e^-x), without NaN for any x: for very negative x, e^-x
    /// overflows to infinity and the quotient is exactly 0, the correctly rounded limit. No
    /// branch, so it vectorizes and does not mispredict on mixed-sign data.
    #[inline]
    fn sigmoid(self) -> Self {
        Self::ONE / (Self::ONE + (-self).exp())
    }

    /// Softplus ln(1 + e^x), computed as max(x, 0) + ln(1 + e^-|x|) so it never overflows.
    #[inline]
    fn softplus(self) -> Self {
        self.max(Self::ZERO) + (-self.abs()).exp().ln_1p()
    }

    /// General matrix multiply C = alpha A B + beta C on the matrixmultiply kernel for this type.
    ///
    /// # Safety
    ///
    /// The pointers and strides must describe valid `m x k`, `k x n` and `m x n` matrices, and `c`
    /// must not alias `a` or `b` (see `matrixmultiply::sgemm`).
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

/// sqrt(2/pi) (x + 0.044715 x^3): the argument of tanh in GELU's tanh approximation.
#[inline]
pub(crate) fn gelu_tanh_inner<E: Float>(x: E) -> E {
    E::from_f64(0.797_884_560_802_865_4) * (x + E::from_f64(0.044_715) * x * x * x)
}

macro_rules! impl_float {
    ($t:ty, $name:literal, $gemm:path, $erf:path) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const DTYPE: &'static str = $name;
            #[inline]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn from_usize(v: usize) -> Self {
                v as $t
            }
            #[inline]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline]
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            #[inline]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline]
            fn powf(self, p: Self) -> Self {
                <$t>::powf(self, p)
            }
            #[inline]
            fn max(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
            #[inline]
            fn min(self, other: Self) -> Self {
                <$t>::min(self, other)
            }
            #[inline]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            #[inline]
            fn neg_infinity() -> Self {
                <$t>::NEG_INFINITY
            }
            #[inline]
            fn sin(self) -> Self {
                <$t>::sin(self)
            }
            #[inline]
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
            #[inline]
            fn exp_m1(self) -> Self {
                <$t>::exp_m1(self)
            }
            #[inline]
            fn erf(self) -> Self {
                $erf(self)
            }
            #[inline]
            unsafe fn gemm(
                m: usize,
                k: usize,
                n: usize,
                alpha: Self,
                a: *const Self,
                rsa: isize,
                csa: isize,
                b: *const Self,
                rsb: isize,
                csb: isize,
                beta: Self,
                c: *mut Self,
                rsc: isize,
                csc: isize,
            ) {
                // SAFETY: forwarded unchanged; the caller upholds matrixmultiply's contract.
                unsafe { $gemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
            }
        }
    };
}

impl_float!(f32, "f32", matrixmultiply::sgemm, libm::erff);
impl_float!(f64, "f64", matrixmultiply::dgemm, libm::erf);
