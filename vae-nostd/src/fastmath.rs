//! Branch-free `f32` transcendentals for the model's hot loops and the device's normal draws:
//! `exp`, `tanh`, `ln(1 + x)` on [0, 1] (for softplus and log-sum-exp), `ln`, and the sine and
//! cosine of 2πu (for Box–Muller, [`crate::rng`]).
//!
//! Written only with IEEE-754 basic operations (+, −, ×, ÷), comparisons, selects and bit
//! manipulation, no tables and no `f64`, so that
//! * loops over slices vectorize on the host (every lane computes exactly what a scalar would),
//! * a Cortex-M4F, whose FPU has no double precision, runs them in a few dozen cycles, and
//! * host and device give bit-identical results (Rust never contracts `a * b + c` into FMA).
//!
//! Algorithms (facts from Cephes, S. L. Moshier, *Methods and Programs for Mathematical
//! Functions*, 1989; coefficients are Cephes' `expf`, `tanhf`, `logf`, `sinf` and `cosf`
//! minimax polynomials):
//! * `exp(x)`: n = round(x / ln 2) by the 1.5·2²³ trick; r = x − n·ln2_hi − n·ln2_lo
//!   (Cody–Waite); e^r by a degree-6 polynomial; 2ⁿ applied as two power-of-two factors so
//!   subnormal results are right. Overflow gives +∞, underflow 0, NaN stays NaN.
//! * `tanh(x)`: |x| < 0.625: x + x·z·P(z), z = x²; otherwise 1 − 2 / (e^{2|x|} + 1); sign restored.
//! * `ln_1p_unit(x)`, x ∈ [0, 1]: 2·atanh(s) with s = x / (2 + x) ∈ [0, 1/3], an odd series
//!   to s¹⁵ (no rounding of 1 + x, so tiny x keep full relative precision).
//! * `ln(x)`: x = 2ᵏ·m with m ∈ [√½, √2), split from the bits (the exponent field offset by
//!   the bits of √½, as in fdlibm/musl `logf`, so no compare is needed); f = m − 1 (exact);
//!   ln(1 + f) = f − f²/2 + f³·P(f) with Cephes' `logf` degree-8 P; then k·ln2_lo and
//!   k·ln2_hi are added (Cody–Waite, k·ln2_hi exact). Subnormals are scaled by 2²⁵ first;
//!   ln(±0) = −∞, ln(x < 0) = NaN, ln(+∞) = +∞, NaN stays NaN.
//! * `sincos_2pi(u)`: n = round(4u) by the 1.5·2²³ trick and r = u − n/4 ∈ [−⅛, ⅛], both
//!   exact (Sterbenz), so no π is ever rounded in the reduction; sin 2πr and cos 2πr by
//!   Cephes' `sinf`/`cosf` polynomials for θ ∈ [−π/4, π/4] rewritten in r = θ/2π (each
//!   coefficient of θᵏ multiplied by (2π)ᵏ, computed offline in `f64` and rounded to `f32`;
//!   the leading 2π as 2π_f32 plus a correction term, so its rounding costs nothing); the
//!   quadrant n mod 4 swaps the two and flips signs, by selects and a sign-bit XOR.
//!
//! Accuracy against `f64` `libm`, checked in the tests: exp within 2 ulp, tanh within 3 ulp,
//! ln_1p_unit within 2 ulp (dense sweeps); ln within 0.83 ulp (all 2²⁴ uniforms k·2⁻²⁴ of
//! [`crate::rng`], 4096 mantissas in every binade, subnormals included, and a dense sweep of
//! [½, 2]); sin 2πu and cos 2πu within 1.6 ulp and 7.5·10⁻⁸ absolute (all 2²⁴ uniforms
//! k·2⁻²⁴ of [0, 1) and a dense sweep of [−3, 3]).

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

/// Bits of √½ rounded to `f32`: the mantissa of [`ln`] is reduced to [√½, √2).
const SQRT_HALF_BITS: u32 = 0x3f35_04f3;
/// 2²⁵: scales a subnormal into the normal range (exactly).
const TWO_POW_25: f32 = 33_554_432.0;

/// ln x (see the module docs). Any `f32` is accepted: ln(±0) = −∞, ln of a negative number
/// is NaN, ln(+∞) = +∞, NaN stays NaN, subnormals are exact inputs like any other.
#[inline(always)]
pub fn ln(x: f32) -> f32 {
    let sub = x < f32::MIN_POSITIVE;
    let xs = select(sub, x * TWO_POW_25, x);
    // x = 2ᵏ·m, m ∈ [√½, √2): offset the bits so that mantissas ≥ √2 carry into the exponent.
    // (Wrapping: for x ≤ 0, NaN or ∞ the value is replaced below.)
    let ix = xs.to_bits().wrapping_add(0x3f80_0000 - SQRT_HALF_BITS);
    let k = (ix >> 23) as i32 - 127 - ((sub as i32) * 25);
    let m = f32::from_bits((ix & 0x007f_ffff) + SQRT_HALF_BITS);
    let f = m - 1.0;
    let z = f * f;
    // Cephes logf's P.
    let y = ((((((((7.037_683_629_2e-2 * f - 1.151_461_031_0e-1) * f + 1.167_699_874_0e-1)
        * f
        - 1.242_014_084_6e-1)
        * f
        + 1.424_932_278_7e-1)
        * f
        - 1.666_805_766_5e-1)
        * f
        + 2.000_071_476_5e-1)
        * f
        - 2.499_999_399_3e-1)
        * f
        + 3.333_333_117_4e-1)
        * f
        * z;
    let kf = k as f32;
    let y = y + kf * LN2_LO;
    let y = y - 0.5 * z;
    let r = (f + y) + kf * LN2_HI;
    let r = select(x < 0.0, f32::NAN, r);
    let r = select(x == 0.0, f32::NEG_INFINITY, r);
    select(x.is_nan() || x == f32::INFINITY, x, r)
}

/// (sin 2πu, cos 2πu) (see the module docs), for |u| < 2²⁰, where the reduction is exact;
/// beyond that the result is meaningless (but nothing panics). [`crate::rng`] calls it with
/// u ∈ [0, 1).
#[inline(always)]
pub fn sincos_2pi(u: f32) -> (f32, f32) {
    // u = n/4 + r, |r| ≤ 1/8; both steps exact.
    let n = (4.0 * u + ROUND) - ROUND;
    let r = u - 0.25 * n;
    let z = r * r;
    // Cephes sinf: θ + θ³·P(θ²), cosf: 1 − θ²/2 + θ⁴·Q(θ²), with θ = 2πr: each coefficient
    // of θᵏ times (2π)ᵏ (sinf: −1.6666654611e-1, 8.3321608736e-3, −1.9515295891e-4; cosf:
    // 4.166664568298827e-2, −1.388731625493765e-3, 2.443315711809948e-5). The θ term is
    // r·2π_f32 plus r·(2π − 2π_f32), −1.748_455_6e-7 folded into the polynomial.
    let s = r * 6.283_185_5
        + r * ((((-7.544_565_5e1 * z + 8.159_376_8e1) * z - 4.134_167_2e1) * z) - 1.748_455_6e-7);
    let c = 1.0
        + (-1.973_920_8e1 * z
            + (z * z) * ((5.934_970_1e1 * z - 8.544_714_1e1) * z + 6.493_936_1e1));
    // Quadrant q = n mod 4: sin(θ + qπ/2), cos(θ + qπ/2) from (sin θ, cos θ).
    let q = (n as i32) as u32;
    let odd = q & 1 == 1;
    let (s, c) = (select(odd, c, s), select(odd, s, c));
    let s = f32::from_bits(s.to_bits() ^ ((q & 2) << 30));
    let c = f32::from_bits(c.to_bits() ^ ((q.wrapping_add(1) & 2) << 30));
    (s, c)
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

    /// Exhaustive over the 2²⁴ uniforms u₁ = k·2⁻²⁴ of the f32 Box–Muller, plus every binade.
    #[test]
    fn ln_is_within_one_ulp_and_handles_the_edges() {
        let mut worst = 0.0f64;
        for k in 1..=1u32 << 24 {
            let x = k as f32 / 16_777_216.0;
            worst = worst.max(ulps(ln(x), libm::log(x as f64)));
        }
        // 4096 mantissas (with both ends of [√½, √2)) in every binade, subnormals included.
        for e in -149..128 {
            for i in 0..4096u32 {
                let x = f32::from_bits(0x3f00_0000 + i * 2048) * libm::exp2f(e as f32 + 1.0);
                if x > 0.0 && x.is_finite() {
                    worst = worst.max(ulps(ln(x), libm::log(x as f64)));
                }
            }
        }
        for x in sweep(0.5, 2.0, 1_000_000) {
            worst = worst.max(ulps(ln(x), libm::log(x as f64)));
        }
        eprintln!("ln worst {worst} ulp");
        // Measured: 0.83 ulp.
        assert!(worst <= 1.0, "ln worst {worst} ulp");
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln(0.0), f32::NEG_INFINITY);
        assert_eq!(ln(-0.0), f32::NEG_INFINITY);
        assert_eq!(ln(f32::INFINITY), f32::INFINITY);
        assert!(ln(-1.0).is_nan() && ln(f32::NEG_INFINITY).is_nan() && ln(f32::NAN).is_nan());
        assert_eq!(ln(f32::MAX), libm::log(f32::MAX as f64) as f32);
        assert_eq!(
            ln(f32::from_bits(1)),
            libm::log(f32::from_bits(1) as f64) as f32
        );
    }

    /// Exhaustive over the 2²⁴ uniforms u₂ = k·2⁻²⁴ ∈ [0, 1) of the f32 Box–Muller.
    #[test]
    fn sincos_2pi_is_within_two_ulp() {
        let tau = 2.0 * core::f64::consts::PI;
        let (mut worst_s, mut worst_c, mut worst_rel) = (0.0f64, 0.0f64, 0.0f64);
        let mut check = |u: f32| {
            let (s, c) = sincos_2pi(u);
            let (rs, rc) = libm::sincos(tau * u as f64);
            worst_s = worst_s.max((s as f64 - rs).abs());
            worst_c = worst_c.max((c as f64 - rc).abs());
            // ulp where the value is not an exact zero (u a multiple of 1/4: the reference,
            // with 2π rounded, gives ±1e-16 there and sincos_2pi gives ±0).
            for (a, b) in [(s, rs), (c, rc)] {
                if b.abs() > 1e-12 {
                    worst_rel = worst_rel.max(ulps(a, b));
                }
            }
        };
        for k in 0..1u32 << 24 {
            check(k as f32 / 16_777_216.0);
        }
        for u in sweep(-3.0, 3.0, 1_000_000).chain(sweep(-1e-3, 1e-3, 100_000)) {
            check(u);
        }
        eprintln!("sincos_2pi worst abs sin {worst_s:e} cos {worst_c:e}; worst {worst_rel} ulp");
        // Measured: 7.5e-8 absolute (near |sin| = |cos| = 0.7), 1.60 ulp.
        assert!(
            worst_s <= 8e-8 && worst_c <= 8e-8,
            "{worst_s:e} {worst_c:e}"
        );
        assert!(worst_rel <= 2.0, "{worst_rel} ulp");
        assert_eq!(sincos_2pi(0.0), (0.0, 1.0));
        assert_eq!(sincos_2pi(0.25).0, 1.0);
        assert_eq!(sincos_2pi(0.5).1, -1.0);
        assert_eq!(sincos_2pi(0.75).0, -1.0);
    }
}
