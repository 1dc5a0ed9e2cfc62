//! The scalar type: `f32` on the device and in the trainer, `f64` for gradient checks.
//!
//! No transcendental function comes from `std`: `f32`'s hot ones (exp, tanh, ln(1 + x) on
//! [0, 1]) are the crate's own branch-free routines ([`crate::fastmath`]), the others come from
//! the [`libm`] crate, so the same inputs give bit-identical results on the host and on a
//! Cortex-M (Rust never fuses a multiply and an add on its own, so the arithmetic itself is
//! already portable). Normal draws ([`Real::normal_pair`]) are computed in the type's own
//! precision: `f32` never touches `f64`, which the Cortex-M4F can only emulate in software.

use core::fmt::{Debug, Display};
use core::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};
use rand_core::RngCore;

/// A real scalar (`f32` or `f64`) with the handful of functions the model needs.
pub trait Real:
    Copy
    + Default
    + PartialOrd
    + Debug
    + Display
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + Send
    + Sync
    + 'static
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// 1/2.
    const HALF: Self;
    /// Size in bytes (for the memory figures).
    const BYTES: usize;
    /// Conversion from `f64` (rounding to nearest).
    fn from_f64(x: f64) -> Self;
    /// Conversion to `f64` (exact).
    fn to_f64(self) -> f64;
    /// Conversion from a count (rounding to nearest; exact below 2²⁴ for `f32`, 2⁵³ for `f64`),
    /// without going through `f64`.
    fn from_usize(n: usize) -> Self;
    /// e^x.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// ln(1 + x), accurate for small x.
    fn ln_1p(self) -> Self;
    /// ln(1 + x) for x ∈ [0, 1] only (softplus, log-sum-exp); may be a faster, branch-free
    /// routine than [`Real::ln_1p`].
    fn ln_1p_unit(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// |x|.
    fn abs(self) -> Self;
    /// One pair of independent N(0, 1) draws by the Box–Muller transform in this precision:
    /// [`crate::rng::standard_normal_pair`] for `f64` (53-bit uniforms, `libm`),
    /// [`crate::rng::standard_normal_pair_f32`] for `f32` (24-bit uniforms, no `f64`); see
    /// [`crate::rng`].
    fn normal_pair<R: RngCore + ?Sized>(rng: &mut R) -> (Self, Self);
    /// True unless NaN or ±∞.
    fn is_finite(self) -> bool;
    /// The larger of two numbers (NaN-propagation not guaranteed).
    #[inline]
    fn max(self, other: Self) -> Self {
        if self > other { self } else { other }
    }
    /// Logistic sigmoid 1 / (1 + e^{-x}), computed without overflow for any x.
    #[inline]
    fn sigmoid(self) -> Self {
        // Branch-free (vectorizes): e = e^{−|x|} ≤ 1 never overflows.
        let e = (-self.abs()).exp();
        let r = Self::ONE / (Self::ONE + e);
        if self >= Self::ZERO { r } else { e * r }
    }
    /// softplus(x) = ln(1 + e^x), finite and accurate for any finite x.
    #[inline]
    fn softplus(self) -> Self {
        self.max(Self::ZERO) + (-self.abs()).exp().ln_1p_unit()
    }
}

macro_rules! impl_real {
    (
        $t:ty,
        $exp:path,
        $ln:path,
        $ln1p:path,
        $ln1p_unit:path,
        $tanh:path,
        $sqrt:path,
        $fabs:path,
        $normal_pair:path
    ) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const HALF: Self = 0.5;
            const BYTES: usize = core::mem::size_of::<$t>();
            #[inline]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn from_usize(n: usize) -> Self {
                n as $t
            }
            #[inline]
            fn exp(self) -> Self {
                $exp(self)
            }
            #[inline]
            fn ln(self) -> Self {
                $ln(self)
            }
            #[inline]
            fn ln_1p(self) -> Self {
                $ln1p(self)
            }
            #[inline]
            fn ln_1p_unit(self) -> Self {
                $ln1p_unit(self)
            }
            #[inline]
            fn tanh(self) -> Self {
                $tanh(self)
            }
            #[inline]
            fn sqrt(self) -> Self {
                $sqrt(self)
            }
            #[inline]
            fn abs(self) -> Self {
                $fabs(self)
            }
            #[inline]
            fn normal_pair<R: RngCore + ?Sized>(rng: &mut R) -> (Self, Self) {
                $normal_pair(rng)
            }
            #[inline]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
        }
    };
}

// f32, the device's and the trainer's type: branch-free exp, tanh and ln(1 + x) on [0, 1]
// from `fastmath` (vectorizable, no f64), the f32 Box–Muller; the rest from libm.
// f64 (gradient checks): libm, the f64 Box–Muller.
impl_real!(
    f32,
    crate::fastmath::exp,
    libm::logf,
    libm::log1pf,
    crate::fastmath::ln_1p_unit,
    crate::fastmath::tanh,
    libm::sqrtf,
    libm::fabsf,
    crate::rng::standard_normal_pair_f32
);
impl_real!(
    f64,
    libm::exp,
    libm::log,
    libm::log1p,
    libm::log1p,
    libm::tanh,
    libm::sqrt,
    libm::fabs,
    crate::rng::standard_normal_pair
);

/// ln(2π), used by every Gaussian log-density.
pub const LN_2PI: f64 = 1.837_877_066_409_345_5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softplus_and_sigmoid_are_finite_at_extremes() {
        for &a in &[-1e4f64, -100.0, -1.0, 0.0, 1.0, 100.0, 1e4] {
            assert!(a.softplus().is_finite());
            assert!((0.0..=1.0).contains(&a.sigmoid()));
        }
        assert_eq!(100f64.softplus(), 100.0 + (-100f64).exp().ln_1p());
        assert!((0f64.softplus() - core::f64::consts::LN_2).abs() < 1e-15);
        assert!((LN_2PI - (2.0 * core::f64::consts::PI).ln()).abs() < 1e-15);
    }
}
