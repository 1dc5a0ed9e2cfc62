//! The anomaly threshold: one rule for the host and the device.
//!
//! Given the scores of N windows assumed normal, the threshold at false-alarm rate α is the
//! k-th largest score with k = ⌊(N + 1)·α⌋: the split-conformal quantile (Vovk, Gammerman &
//! Shafer, *Algorithmic Learning in a Random World*, 2005; Angelopoulos & Bates, *A Gentle
//! Introduction to Conformal Prediction*, 2021, §1: the ⌈(N + 1)(1 − α)⌉-th smallest). If the
//! scores of normal windows are exchangeable, a fresh normal window exceeds it with probability
//! k/(N + 1) ≤ α on average over calibrations (1.0 % for N = 200 at 1 %, where the plain
//! empirical quantile, the (⌊α·N⌋ + 1)-th largest, gives 1.5 %).
//!
//! When (N + 1)·α < 1 (k = 0) no order statistic certifies α: the best a threshold at the
//! largest score can promise is 1/(N + 1). [`conformal_threshold`] then returns the largest
//! score with [`Threshold::certified`] false, and callers say so (the host warns; the device
//! calibrates on enough windows that it cannot happen with its defaults).
//!
//! The host computes the threshold from all N scores at once ([`conformal_threshold`]); the
//! firmware streams them through a top-k buffer of its own and ranks with the same
//! [`conformal_rank`], so both pick the same order statistic in the same f32 arithmetic.

use crate::error::Error;

/// k = ⌊(N + 1)·rate⌋ for `n` = N calibration scores (0 when (N + 1)·rate < 1), computed in
/// f32 with a relative guard of 10⁻⁶ against the f32 rounding of the rate (0.01f32 · 201 =
/// 2.00999996). Its three roundings (≤ 1.8·10⁻⁷ relative) stay inside the guard, so the result
/// is ⌊(N + 1)·rate⌋ of the decimal rate whenever the guard (10⁻⁶·(N + 1)·rate) is smaller than
/// the distance to the next integer: for rates of up to three decimals, while
/// (N + 1)·rate < 1000. A rate outside [0, 1) or NaN gives 0.
pub fn conformal_rank(rate: f32, n: u32) -> usize {
    if !(0.0..1.0).contains(&rate) {
        return 0;
    }
    libm::floorf(rate * (n as f32 + 1.0) * (1.0 + 1e-6)) as usize
}

/// A calibrated threshold (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Threshold {
    /// Scores above it are anomalies.
    pub value: f32,
    /// k: the threshold is the k-th largest calibration score (at least 1).
    pub rank: usize,
    /// False when (N + 1)·rate < 1: the threshold is the largest score and the rate it
    /// guarantees is only 1/(N + 1).
    pub certified: bool,
}

/// The split-conformal threshold of `scores` (N of them, reordered in place) at false-alarm
/// rate `rate` ∈ [0, 1): the k-th largest with k = [`conformal_rank`]`(rate, N)`, or the largest
/// (uncertified) when k = 0. Selection, not a full sort: O(N).
///
/// Errors: [`Error::InvalidArgument`] for no scores, more than 2²⁴ of them, a rate outside
/// [0, 1) or a NaN score; nothing is reordered then. ±∞ scores are allowed.
pub fn conformal_threshold(scores: &mut [f32], rate: f32) -> Result<Threshold, Error> {
    let n = scores.len();
    if n == 0 {
        return Err(Error::InvalidArgument(
            "calibration needs at least one score",
        ));
    }
    if n > 1 << 24 {
        return Err(Error::InvalidArgument(
            "calibration takes at most 2^24 scores",
        ));
    }
    if !(0.0..1.0).contains(&rate) {
        return Err(Error::InvalidArgument("false-alarm rate must be in [0, 1)"));
    }
    if scores.iter().any(|s| s.is_nan()) {
        return Err(Error::InvalidArgument("a calibration score is NaN"));
    }
    let k = conformal_rank(rate, n as u32);
    let (rank, certified) = if k == 0 { (1, false) } else { (k.min(n), true) };
    // The k-th largest is the (n − k)-th smallest (0-based).
    let (_, v, _) = scores.select_nth_unstable_by(n - rank, f32::total_cmp);
    Ok(Threshold {
        value: *v,
        rank,
        certified,
    })
}

/// Confidence of [`allowed_false_alarms`].
pub const FALSE_ALARM_CONFIDENCE: f64 = 0.999;

/// How many false alarms to expect: given the calibration, the count among M = `normal` fresh
/// normal windows is Binomial(M, p) with p the threshold's true exceedance probability, and
/// over calibrations p ~ Beta(k, N + 1 − k); so the count is Beta-Binomial(M, k, N + 1 − k).
/// This is that law's [`FALSE_ALARM_CONFIDENCE`] quantile: the most of `normal` fresh windows
/// that should lie above the k-th largest of N exchangeable calibration scores.
/// (Computed in f64 by the ratio of successive probabilities; used by the QEMU program, the
/// tests and the host trainer's summary, not by the micro:bit's.)
pub fn allowed_false_alarms(k: usize, n: u32, normal: u32) -> u32 {
    let (a, b, m) = (
        k as f64,
        (n as f64 + 1.0 - k as f64).max(1.0),
        normal as f64,
    );
    // P(0) = B(a, M + b) / B(a, b) = Π_{i<M} (b + i) / (a + b + i).
    let mut p = 1.0;
    for i in 0..normal {
        p *= (b + i as f64) / (a + b + i as f64);
    }
    let mut cdf = p;
    let mut f = 0u32;
    while cdf < FALSE_ALARM_CONFIDENCE && f < normal {
        let ff = f as f64;
        // P(f + 1) / P(f) = (M − f)(f + a) / ((f + 1)(M − f − 1 + b)).
        p *= (m - ff) * (ff + a) / ((ff + 1.0) * (m - ff - 1.0 + b));
        cdf += p;
        f += 1;
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted_desc(s: &[f32]) -> [f32; 64] {
        let mut v = [0f32; 64];
        v[..s.len()].copy_from_slice(s);
        v[..s.len()].sort_unstable_by(|a, b| b.total_cmp(a));
        v
    }

    #[test]
    fn rank_is_floor_of_n_plus_one_times_rate() {
        assert_eq!(conformal_rank(0.01, 200), 2);
        assert_eq!(conformal_rank(0.01, 199), 2);
        assert_eq!(conformal_rank(0.01, 198), 1);
        assert_eq!(conformal_rank(0.01, 98), 0);
        assert_eq!(conformal_rank(0.01, 99), 1);
        assert_eq!(conformal_rank(0.05, 19), 1);
        assert_eq!(conformal_rank(0.29, 99), 29);
        assert_eq!(conformal_rank(0.0, 1000), 0);
        assert_eq!(conformal_rank(1.0, 10), 0);
        assert_eq!(conformal_rank(f32::NAN, 10), 0);
        // Exact for decimal rates over a wide sweep (f64 reference with integer arithmetic).
        for per_mille in 1..1000u32 {
            let rate = per_mille as f32 / 1000.0;
            for n in [1u32, 2, 9, 99, 100, 199, 999, 4999, 65_535, 1_000_000] {
                if (n as u64 + 1) * per_mille as u64 >= 1_000_000 {
                    continue;
                }
                let exact = ((n as u64 + 1) * per_mille as u64 / 1000) as usize;
                assert_eq!(conformal_rank(rate, n), exact, "rate {rate} n {n}");
            }
        }
    }

    #[test]
    fn threshold_is_the_kth_largest() {
        let scores: [f32; 40] = core::array::from_fn(|i| ((i * 17) % 40) as f32 * 0.5 - 3.0);
        let desc = sorted_desc(&scores);
        for (rate, k) in [(0.05f32, 2usize), (0.1, 4), (0.25, 10), (0.5, 20)] {
            let mut s = scores;
            let t = conformal_threshold(&mut s, rate).unwrap();
            assert_eq!(t.rank, k);
            assert!(t.certified);
            assert_eq!(t.value, desc[k - 1]);
            // At most k calibration scores lie strictly above... exactly k − 1 (no ties here).
            assert_eq!(scores.iter().filter(|&&x| x > t.value).count(), k - 1);
        }
    }

    #[test]
    fn too_few_scores_give_the_largest_uncertified() {
        let mut s = [1.0f32, 5.0, 3.0];
        let t = conformal_threshold(&mut s, 0.01).unwrap();
        assert_eq!(
            t,
            Threshold {
                value: 5.0,
                rank: 1,
                certified: false
            }
        );
    }

    #[test]
    fn refuses_bad_input() {
        assert!(conformal_threshold(&mut [], 0.01).is_err());
        assert!(conformal_threshold(&mut [1.0], 1.0).is_err());
        assert!(conformal_threshold(&mut [1.0], -0.1).is_err());
        let mut s = [1.0, f32::NAN, 2.0];
        assert!(conformal_threshold(&mut s, 0.5).is_err());
        assert_eq!(s[0], 1.0);
        assert!(s[1].is_nan());
        let mut inf = [f32::INFINITY, 0.0, f32::NEG_INFINITY, 1.0];
        assert_eq!(conformal_threshold(&mut inf, 0.5).unwrap().value, 1.0);
    }

    #[test]
    fn the_allowance_is_the_beta_binomial_quantile() {
        // Beta-Binomial(M, 1, 1) is uniform on 0..=M: its 99.9 % quantile is ⌈0.999·(M + 1)⌉ − 1.
        assert_eq!(allowed_false_alarms(1, 1, 999), 998);
        // Against a Monte Carlo estimate: draw p ~ Beta(k, N + 1 − k) as the k-th largest of N
        // uniforms, then the count of M uniforms above 1 − p.
        let (k, n, m) = (2usize, 200u32, 283u32);
        let q = allowed_false_alarms(k, n, m);
        let mut x: u64 = 99;
        let mut u = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        let trials = 20_000;
        let (mut above_q, mut above_q_minus_1) = (0, 0);
        for _ in 0..trials {
            let mut v: std::vec::Vec<f64> = (0..n).map(|_| u()).collect();
            v.sort_by(|a, b| b.total_cmp(a));
            let t = v[k - 1];
            let c = (0..m).filter(|_| u() > t).count() as u32;
            above_q += u32::from(c > q);
            above_q_minus_1 += u32::from(c > q - 1);
        }
        // P(count > q) ≤ 0.1 % < P(count > q − 1), with Monte Carlo slack.
        assert!(above_q <= 40, "{above_q} of {trials} above {q}");
        assert!(
            above_q_minus_1 >= 10,
            "{above_q_minus_1} of {trials} above {}",
            q - 1
        );
    }
}
