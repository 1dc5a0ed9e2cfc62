//! Standard-normal draws for the reparameterization ε ~ N(0, I) (paper §2.4).
//!
//! Algorithm: the Box–Muller transform (Box & Muller 1958) in `f64` through `libm`, so the
//! same generator state gives bit-identical ε on the host and on a Cortex-M:
//! u₁ ∈ (0, 1] and u₂ ∈ [0, 1) from 53 random bits each,
//! ε₁ = √(−2 ln u₁) cos 2πu₂, ε₂ = √(−2 ln u₁) sin 2πu₂. Each pair of outputs consumes two
//! `next_u64` calls; an odd tail consumes a full pair and keeps the first value.

use crate::Real;
use rand_core::RngCore;

const TWO_POW_M53: f64 = 1.0 / 9_007_199_254_740_992.0;

/// Uniform on [0, 1) with 53 bits of resolution.
#[inline]
pub fn uniform01<R: RngCore + ?Sized>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * TWO_POW_M53
}

/// One pair of independent standard-normal draws.
#[inline]
pub fn standard_normal_pair<R: RngCore + ?Sized>(rng: &mut R) -> (f64, f64) {
    let u1 = ((rng.next_u64() >> 11) + 1) as f64 * TWO_POW_M53; // (0, 1]: ln never sees 0
    let u2 = uniform01(rng);
    let r = libm::sqrt(-2.0 * libm::log(u1));
    let (s, c) = libm::sincos(2.0 * core::f64::consts::PI * u2);
    (r * c, r * s)
}

/// Fills `out` with independent N(0, 1) draws.
pub fn fill_standard_normal<T: Real, R: RngCore + ?Sized>(rng: &mut R, out: &mut [T]) {
    let mut pairs = out.chunks_exact_mut(2);
    for p in &mut pairs {
        let (a, b) = standard_normal_pair(rng);
        p[0] = T::from_f64(a);
        p[1] = T::from_f64(b);
    }
    if let [last] = pairs.into_remainder() {
        *last = T::from_f64(standard_normal_pair(rng).0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    #[test]
    fn moments_match_a_standard_normal() {
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(7);
        let mut buf = [0f64; 1001];
        let (mut s1, mut s2, mut s4, mut n) = (0.0, 0.0, 0.0, 0.0);
        for _ in 0..400 {
            fill_standard_normal(&mut rng, &mut buf);
            for &x in &buf {
                s1 += x;
                s2 += x * x;
                s4 += x * x * x * x;
                n += 1.0;
            }
        }
        // n ≈ 4e5: standard errors of mean, variance, 4th moment ≈ 0.0016, 0.0022, 0.016.
        assert!((s1 / n).abs() < 0.008);
        assert!((s2 / n - 1.0).abs() < 0.011);
        assert!((s4 / n - 3.0).abs() < 0.08);
    }
}
