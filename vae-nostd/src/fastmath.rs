//! Branch-free `f32` transcendentals for the model's hot loops: `exp`, `tanh`, and `ln(1 + x)`
//! on [0, 1] (for softplus and log-sum-exp).
//!
//! Written only with IEEE-754 basic operations (+, −, ×, ÷), comparisons and selects, no
//! tables and no `f64`, so that
//! * loops over slices vectorize on the host (every lane computes exactly what a scalar would),
//! * a Cortex-M4F, whose FPU has no double precision, runs them in a few dozen cycles, and
//! * host and device give bit-identical results (Rust never contracts `a * b + c` into FMA).
//!
//! Algorithms (facts from Cephes, S. L. Moshier, *Methods and Programs for Mathematical
//! Functions*, 1989; coefficients are Cephes' `expf` and `tanhf` minimax polynomials):
//! * `exp(x)`: n = round(x / ln 2) by the 1.5·2²³ trick; r = x − n·ln2_hi − n·ln2_lo
//!   (Cody–Waite); e^r by a degree-6 polynomial; 2ⁿ applied as two power-of-two factors so
//!   subnormal results are right. Overflow gives +∞, underflow 0, NaN stays NaN.
//! * `tanh(x)`: |x| < 0.625: x + x·z·P(z), z = x²; otherwise 1 − 2 / (e^{2|x|} + 1); sign restored.
//! * `ln_1p_unit(x)`, x ∈ [0, 1]: 2·atanh(s) with s = x / (2 + x) ∈ [0, 1/3], an odd series
//!   to s¹⁵ (no rounding of 1 + x, so tiny x keep full relative precision).
//!
//! Accuracy against `f64` references, checked over dense sweeps in the tests: exp within
//! 2 ulp, tanh within 3 ulp, ln_1p_unit within 2 ulp.

// The polynomial coefficients are kept as Cephes prints them; f32 rounds them.
#![allow(clippy::excessive_precision)]

const LOG2E: f32 = core::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
const ROUND: f32 = 12_582_912.0; // 1.5 · 2²³
/// Above this, e^x overflows f32.
const EXP_MAX: f32 = 88.722_84;
/// Below this, e^x rounds to 0 even as a subnormal.
const EXP_MIN: f32 = -103.972_08;

#[inline(always)]
fn select(c: bool, a: f32, b: f32) -> f32 {
    if c { a } else { b }
}

#[inline(always)]
fn pow2i(n: i32) -> f32 {
    // n ∈ [−126, 127].
    f32::from_bits(((n + 127) as u32) << 23)
}

/// e^x (see the module docs).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let xc = x.clamp(EXP_MIN, EXP_MAX);
    let n = (xc * LOG2E + ROUND) - ROUND;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let p = ((((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2)
        * r
        + 1.666_666_5e-1)
        * r
        + 5.000_000_1e-1)
        * (r * r)
        + r)
        + 1.0;
    let ni = n as i32; // ∈ [−150, 128]
    let half = ni >> 1;
    let y = (p * pow2i(half)) * pow2i(ni - half);
    let y = select(x > EXP_MAX, f32::INFINITY, y);
    let y = select(x < EXP_MIN, 0.0, y);
    select(x.is_nan(), x, y)
}

/// tanh x (see the module docs).
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let sign = x.to_bits() & 0x8000_0000;
    let a = f32::from_bits(x.to_bits() & 0x7fff_ffff);
    let z = x * x;
    let small = x + x
        * z
        * ((((-5.704_988_7e-3 * z + 2.063_908_9e-2) * z - 5.373_971_6e-2) * z + 1.333_144_2e-1)
            * z
            - 3.333_328_2e-1);
    let big = 1.0 - 2.0 / (exp(2.0 * a) + 1.0);
    let big = f32::from_bits(big.to_bits() | sign);
    select(a < 0.625, small, big)
}

/// ln(1 + x) for x ∈ [0, 1] (see the module docs); outside that range the series is not
/// accurate.
#[inline(always)]
pub fn ln_1p_unit(x: f32) -> f32 {
    let s = x / (2.0 + x);
    let z = s * s;
    let series = (((((((z * (1.0 / 15.0) + 1.0 / 13.0) * z + 1.0 / 11.0) * z + 1.0 / 9.0) * z
        + 1.0 / 7.0)
        * z
        + 1.0 / 5.0)
        * z
        + 1.0 / 3.0)
        * z)
        * s
        + s;
    2.0 * series
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f64) -> f64 {
        let b32 = b as f32;
        if a == b32 {
            return 0.0;
        }
        let ulp = f32::from_bits(b32.abs().to_bits() + 1) - b32.abs();
        ((a as f64) - b).abs() / ulp as f64
    }

    fn sweep(lo: f32, hi: f32, n: usize) -> impl Iterator<Item = f32> {
        (0..=n).map(move |i| lo + (hi - lo) * (i as f32 / n as f32))
    }

    #[test]
    fn exp_is_within_two_ulp_and_handles_the_edges() {
        let mut worst = 0.0f64;
        for x in sweep(-87.0, 88.7, 2_000_000) {
            worst = worst.max(ulps(exp(x), libm::exp(x as f64)));
        }
        assert!(worst <= 2.0, "exp worst {worst} ulp");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(89.0), f32::INFINITY);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(-105.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert!(exp(f32::NAN).is_nan());
        // Subnormal results: close in absolute terms to the reference.
        for x in sweep(-103.9, -87.4, 10_000) {
            let r = libm::exp(x as f64);
            assert!((exp(x) as f64 - r).abs() <= 2.0 * 1.4e-45 + 4e-7 * r, "{x}");
        }
    }

    #[test]
    fn tanh_is_within_three_ulp() {
        let mut worst = 0.0f64;
        for x in sweep(-12.0, 12.0, 2_000_000).chain(sweep(-1e-3, 1e-3, 100_000)) {
            worst = worst.max(ulps(tanh(x), libm::tanh(x as f64)));
        }
        assert!(worst <= 3.0, "tanh worst {worst} ulp");
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(100.0), 1.0);
        assert_eq!(tanh(-100.0), -1.0);
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert!(tanh(f32::NAN).is_nan());
    }

    #[test]
    fn ln_1p_unit_is_within_two_ulp() {
        let mut worst = 0.0f64;
        for x in sweep(0.0, 1.0, 2_000_000).chain(sweep(0.0, 1e-6, 10_000)) {
            worst = worst.max(ulps(ln_1p_unit(x), libm::log1p(x as f64)));
        }
        assert!(worst <= 2.0, "ln_1p_unit worst {worst} ulp");
        assert_eq!(ln_1p_unit(0.0), 0.0);
        assert_eq!(ln_1p_unit(1e-40), 1e-40);
    }
}
