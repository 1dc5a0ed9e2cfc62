//! Standard-normal draws for the reparameterization ε ~ N(0, I) (paper §2.4) and for weight
//! initialization.
//!
//! Algorithm: the Box–Muller transform (Box & Muller 1958),
//! ε₁ = √(−2 ln u₁) cos 2πu₂, ε₂ = √(−2 ln u₁) sin 2πu₂ with u₁ ∈ (0, 1] (ln never sees 0)
//! and u₂ ∈ [0, 1), in the precision of the scalar type ([`Real::normal_pair`]):
//! * `f64` ([`standard_normal_pair`]): `libm` in `f64`, u₁ and u₂ from 53 random bits of one
//!   `next_u64` each, so |ε| ≤ √(2·53·ln 2) ≈ 8.57.
//! * `f32` ([`standard_normal_pair_f32`]): only `f32` basic operations, u₁ and u₂ from the top
//!   24 bits of one `next_u32` each (exact in `f32`), the logarithm and the sine/cosine of 2πu₂
//!   from [`crate::fastmath`], the square root correctly rounded ([`Real::sqrt`], `libm`'s
//!   `sqrtf`: `sqrtss` on x86, an integer routine on the Cortex-M, where `libm` 0.2 does not
//!   use `VSQRT`; the same bits either way). The smallest u₁ is 2⁻²⁴, so
//!   |ε| ≤ √(2·24·ln 2) ≈ 5.77: the normal tail beyond that has probability 8·10⁻⁹, far below
//!   anything a minibatch estimator can see. Why not `f64`: the Cortex-M4F's FPU is single
//!   precision only; an `f64` Box–Muller there links several KB of soft-float code (`libm`
//!   `log` and `sincos`, the `f64` helpers of `compiler_builtins`: 6.5 KB of the micro:bit
//!   image when this was written) and is slow. With only IEEE-754 basic operations (Rust never
//!   contracts `a * b + c` into FMA) and correctly rounded square roots, the host and the
//!   device draw bit-identical ε from the same generator state.
//!
//! [`fill_standard_normal`] draws a pair per two outputs; an odd tail consumes a full pair and
//! keeps the first value. The `f32` draws differ from the `f64` draws rounded to `f32` (other
//! uniforms, other arithmetic): seeded `f32` results are not those of earlier versions.

use crate::Real;
use crate::fastmath;
use rand_core::RngCore;

const TWO_POW_M53: f64 = 1.0 / 9_007_199_254_740_992.0;
const TWO_POW_M24: f32 = 1.0 / 16_777_216.0;

/// Uniform on [0, 1) with 53 bits of resolution.
#[inline]
pub fn uniform01<R: RngCore + ?Sized>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * TWO_POW_M53
}

/// One pair of independent standard-normal draws in `f64` (two `next_u64` calls).
#[inline]
pub fn standard_normal_pair<R: RngCore + ?Sized>(rng: &mut R) -> (f64, f64) {
    let u1 = ((rng.next_u64() >> 11) + 1) as f64 * TWO_POW_M53; // (0, 1]: ln never sees 0
    let u2 = uniform01(rng);
    let r = libm::sqrt(-2.0 * libm::log(u1));
    let (s, c) = libm::sincos(2.0 * core::f64::consts::PI * u2);
    (r * c, r * s)
}

/// One pair of independent standard-normal draws in `f32`, without any `f64` operation (two
/// `next_u32` calls): u₁ = (⌊x/2⁸⌋ + 1)·2⁻²⁴ ∈ (0, 1], u₂ = ⌊y/2⁸⌋·2⁻²⁴ ∈ [0, 1), then
/// [`box_muller_f32`].
#[inline]
pub fn standard_normal_pair_f32<R: RngCore + ?Sized>(rng: &mut R) -> (f32, f32) {
    let u1 = ((rng.next_u32() >> 8) + 1) as f32 * TWO_POW_M24;
    let u2 = (rng.next_u32() >> 8) as f32 * TWO_POW_M24;
    box_muller_f32(u1, u2)
}

/// The Box–Muller transform in `f32`: (√(−2 ln u₁) cos 2πu₂, √(−2 ln u₁) sin 2πu₂) for
/// u₁ ∈ (0, 1], u₂ ∈ [0, 1) (see the module docs).
#[inline]
pub fn box_muller_f32(u1: f32, u2: f32) -> (f32, f32) {
    let r = Real::sqrt(-2.0 * fastmath::ln(u1));
    let (s, c) = fastmath::sincos_2pi(u2);
    (r * c, r * s)
}

/// Fills `out` with independent N(0, 1) draws ([`Real::normal_pair`]).
pub fn fill_standard_normal<T: Real, R: RngCore + ?Sized>(rng: &mut R, out: &mut [T]) {
    let mut pairs = out.chunks_exact_mut(2);
    for p in &mut pairs {
        let (a, b) = T::normal_pair(rng);
        p[0] = a;
        p[1] = b;
    }
    if let [last] = pairs.into_remainder() {
        *last = T::normal_pair(rng).0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    /// (mean, E x², E x⁴, P(|x| > 2), P(|x| > 3), n) of 400 fills of 1001 draws.
    fn moments<T: Real>(seed: u64) -> [f64; 6] {
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
        let mut buf = [T::ZERO; 1001];
        let (mut s1, mut s2, mut s4, mut t2, mut t3, mut n) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        for _ in 0..400 {
            fill_standard_normal(&mut rng, &mut buf);
            for &x in &buf {
                let x = x.to_f64();
                s1 += x;
                s2 += x * x;
                s4 += x * x * x * x;
                t2 += f64::from(u8::from(x.abs() > 2.0));
                t3 += f64::from(u8::from(x.abs() > 3.0));
                n += 1.0;
            }
        }
        [s1 / n, s2 / n, s4 / n, t2 / n, t3 / n, n]
    }

    fn assert_standard_normal(m: [f64; 6]) {
        let [mean, m2, m4, t2, t3, n] = m;
        // n ≈ 4e5: standard errors of mean, variance, 4th moment ≈ 0.0016, 0.0022, 0.016.
        assert!(mean.abs() < 0.008, "mean {mean}");
        assert!((m2 - 1.0).abs() < 0.011, "E x² {m2}");
        assert!((m4 - 3.0).abs() < 0.08, "E x⁴ {m4}");
        // Two-sided tails of N(0, 1): P(|x| > 2) = 0.045500, P(|x| > 3) = 0.0026998; within 4
        // binomial standard errors (0.00033 and 0.000082).
        for (t, p) in [(t2, 0.045_500_263_9), (t3, 0.002_699_796_1)] {
            let se = (p * (1.0 - p) / n).sqrt();
            assert!((t - p).abs() < 4.0 * se, "tail {t} vs {p} ± {se}");
        }
    }

    #[test]
    fn moments_match_a_standard_normal() {
        assert_standard_normal(moments::<f64>(7));
    }

    #[test]
    fn f32_moments_and_tails_match_a_standard_normal() {
        assert_standard_normal(moments::<f32>(7));
        assert_standard_normal(moments::<f32>(8));
    }

    /// The f32 transform against the f64 formula on the same (f32-exact) uniforms: the sine
    /// and cosine are within 2.5·10⁻⁸ and the radius within 2 ulp, so |ε₃₂ − ε₆₄| stays within
    /// a few ulp of the radius.
    #[test]
    fn f32_box_muller_matches_the_f64_formula_on_the_same_uniforms() {
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(11);
        let mut worst = 0.0f64;
        let mut check = |x: u32, y: u32| {
            let u1 = ((x >> 8) + 1) as f32 * TWO_POW_M24;
            let u2 = (y >> 8) as f32 * TWO_POW_M24;
            let (a, b) = box_muller_f32(u1, u2);
            let r = libm::sqrt(-2.0 * libm::log(u1 as f64));
            let (s, c) = libm::sincos(2.0 * core::f64::consts::PI * u2 as f64);
            // Error in units of 2⁻²³·max(r, 1): the ulp of the radius, or absolute near 0.
            let unit = f64::from(f32::EPSILON) * r.max(1.0);
            worst = worst.max((a as f64 - r * c).abs() / unit);
            worst = worst.max((b as f64 - r * s).abs() / unit);
        };
        for _ in 0..2_000_000 {
            check(rng.next_u32(), rng.next_u32());
        }
        // The extremes: u₁ = 2⁻²⁴ (largest radius), u₁ = 1 (radius 0), quadrant boundaries.
        for y in [
            0,
            1 << 30,
            1 << 31,
            3 << 30,
            u32::MAX,
            0x2000_0000,
            0x1fff_ff00,
        ] {
            for x in [0, 255, 1 << 31, u32::MAX] {
                check(x, y);
            }
        }
        eprintln!("box_muller_f32 worst {worst} ulp of max(r, 1)");
        assert!(worst <= 3.0, "worst {worst} ulp of max(r, 1)");
        let (a, b) = box_muller_f32(TWO_POW_M24, 0.0);
        let max = (2.0 * 24.0 * core::f64::consts::LN_2).sqrt();
        assert!((a as f64 - max).abs() < 1e-6 && b == 0.0, "{a} {b}");
        assert_eq!(box_muller_f32(1.0, 0.3), (0.0, 0.0));
    }

    #[test]
    fn f32_pairs_use_two_u32_and_the_odd_tail_keeps_the_first() {
        let mut a = rand_pcg::Pcg32::seed_from_u64(3);
        let mut b = a.clone();
        let mut out = [0f32; 5];
        fill_standard_normal(&mut a, &mut out);
        let p: [(f32, f32); 3] = core::array::from_fn(|_| standard_normal_pair_f32(&mut b));
        assert_eq!(out, [p[0].0, p[0].1, p[1].0, p[1].1, p[2].0]);
        assert_eq!(a.next_u32(), b.next_u32());
        let mut c = rand_pcg::Pcg32::seed_from_u64(3);
        let (x, y) = (c.next_u32(), c.next_u32());
        let u1 = ((x >> 8) + 1) as f32 / 16_777_216.0;
        let u2 = (y >> 8) as f32 / 16_777_216.0;
        assert_eq!(p[0], box_muller_f32(u1, u2));
    }
}
