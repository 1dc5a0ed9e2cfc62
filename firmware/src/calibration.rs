//! On-device calibration: the anomaly threshold learnt from the first N (assumed normal)
//! windows as a conformal quantile of their scores, in O(k) RAM.
//!
//! The threshold is the k-th largest of the N scores with k = ⌊(N + 1)·rate⌋ (at least 1), the
//! rule of [`vae_nostd::calibration`] that the host trainer uses too: the
//! split-conformal quantile (Vovk, Gammerman & Shafer, *Algorithmic Learning in a Random
//! World*, 2005; Angelopoulos & Bates, *A Gentle Introduction to Conformal Prediction*, 2021,
//! §1: the ⌈(N + 1)(1 − α)⌉-th smallest). If the scores of normal windows are exchangeable, a
//! fresh normal window exceeds it with probability k/(N + 1) ≤ rate, on average over
//! calibrations: 1.0 % for N = 200 at 1 % (k = 2), where the plain empirical quantile (the
//! (⌊rate·N⌋ + 1)-th largest, k = 3) gives 1.5 %. When (N + 1)·rate < 1 no order statistic
//! can certify the rate and the threshold is the largest score.
//!
//! Only the k largest scores seen so far are kept: a descending [`TopK`] (a `heapless::Vec` of
//! at most [`MAX_TOP`]), updated by insertion, so the result is exact, not an approximation. It
//! is borrowed
//! (on the device it is part of the application's static [`crate::app::Buffers`]), so a
//! `Calibrator` itself is a few words. It also keeps the mean of the N scores, from which the
//! application follows slow drift after calibration ([`crate::app::Settings::drift_windows`]).
//!
//! How many false alarms to expect: given the calibration, the count among M fresh normal
//! windows is Binomial(M, p) with p the threshold's true exceedance probability, and over
//! calibrations p ~ Beta(k, N + 1 − k); so the count is Beta-Binomial(M, k, N + 1 − k).
//! [`allowed_false_alarms`] is its 99.9 % quantile: the end-to-end tests' rule.

use core::fmt;

/// Largest k = ⌊(N + 1)·rate⌋ the calibrator holds (e.g. 1 % of 1,600 windows, 8 % of 200).
pub const MAX_TOP: usize = 16;

/// The calibration's largest scores, descending: a fixed-capacity vector (no heap).
pub type TopK = heapless::Vec<f32, MAX_TOP>;

/// Impossible calibration settings.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum CalibrationError {
    /// N = 0.
    NoWindows,
    /// The rate is not in [0, 1).
    Rate,
    /// ⌊(N + 1)·rate⌋ > [`MAX_TOP`].
    TooManyAllowed {
        /// The k required.
        k: usize,
    },
}

impl fmt::Display for CalibrationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CalibrationError::NoWindows => f.write_str("calibration needs at least one window"),
            CalibrationError::Rate => f.write_str("false-alarm rate must be in [0, 1)"),
            CalibrationError::TooManyAllowed { k } => write!(
                f,
                "(windows + 1) × rate ranks the threshold {k} from the top; at most {MAX_TOP} fit (MAX_TOP)"
            ),
        }
    }
}

/// The streaming quantile: feed it N scores, it returns the threshold after the N-th.
#[derive(Debug, PartialEq)]
pub struct Calibrator<'b> {
    /// The k (or fewer) largest scores so far, descending.
    top: &'b mut TopK,
    k: usize,
    seen: u32,
    target: u32,
    rate: f32,
    /// Mean of the scores taken so far.
    mean: f32,
}

/// k = ⌊(N + 1)·rate⌋, at least 1: the core's rule ([`vae_nostd::calibration::conformal_rank`],
/// the one the host trainer calibrates with), raised to 1 where (N + 1)·rate < 1.
fn rank(rate: f32, n: u32) -> usize {
    vae_nostd::calibration::conformal_rank(rate, n).max(1)
}

impl<'b> Calibrator<'b> {
    /// A calibration over `windows` scores at false-alarm rate `rate`, keeping its top-k in
    /// `top` (overwritten).
    pub fn new(windows: u32, rate: f32, top: &'b mut TopK) -> Result<Self, CalibrationError> {
        if windows == 0 {
            return Err(CalibrationError::NoWindows);
        }
        if !(0.0..1.0).contains(&rate) {
            return Err(CalibrationError::Rate);
        }
        let k = rank(rate, windows);
        if k > MAX_TOP {
            return Err(CalibrationError::TooManyAllowed { k });
        }
        top.clear();
        Ok(Calibrator {
            top,
            k,
            seen: 0,
            target: windows,
            rate,
            mean: 0.0,
        })
    }

    /// Starts over (same N and rate).
    pub fn reset(&mut self) {
        self.top.clear();
        self.seen = 0;
        self.mean = 0.0;
    }

    /// The mean of the scores taken so far (0 before the first).
    pub fn mean(&self) -> f32 {
        self.mean
    }

    /// Scores taken so far.
    pub fn seen(&self) -> u32 {
        self.seen
    }

    /// N.
    pub fn windows(&self) -> u32 {
        self.target
    }

    /// The false-alarm rate.
    pub fn rate(&self) -> f32 {
        self.rate
    }

    /// k: the threshold is the k-th largest calibration score.
    pub fn rank(&self) -> usize {
        self.k
    }

    /// Takes one (finite) score; returns the threshold when this was the N-th. Scores after
    /// the N-th are ignored until [`reset`](Self::reset).
    pub fn push(&mut self, score: f32) -> Option<f32> {
        if self.seen >= self.target || !score.is_finite() {
            return None;
        }
        self.seen += 1;
        self.mean += (score - self.mean) / self.seen as f32;
        // Insert into the descending top-k, after the scores it does not exceed.
        let at = self
            .top
            .iter()
            .position(|&t| t < score)
            .unwrap_or(self.top.len());
        if at < self.k {
            if self.top.len() == self.k {
                self.top.pop(); // drop the smallest
            }
            // Never full here (len < k ≤ MAX_TOP), and at ≤ len.
            let _ = self.top.insert(at, score);
        }
        if self.seen == self.target {
            Some(self.threshold_now())
        } else {
            None
        }
    }

    /// The k-th largest score so far (the smallest kept when fewer than k were seen).
    pub fn threshold_now(&self) -> f32 {
        self.top.last().copied().unwrap_or(f32::NAN)
    }
}

/// The end-to-end rule for false alarms on fresh normal windows (see the module docs), from
/// the core, where the host trainer uses it too.
pub use vae_nostd::calibration::{FALSE_ALARM_CONFIDENCE, allowed_false_alarms};

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: sort all N, take the k-th largest.
    fn reference(scores: &[f32], rate: f32) -> f32 {
        let mut s = scores.to_vec();
        s.sort_by(|a, b| b.total_cmp(a));
        s[rank(rate, scores.len() as u32) - 1]
    }

    #[test]
    fn equals_the_sorted_quantile_and_has_fewer_than_k_above() {
        let mut x: u64 = 12345;
        for (n, rate) in [
            (200u32, 0.01f32),
            (700, 0.02),
            (37, 0.05),
            (10, 0.0),
            (300, 0.05),
        ] {
            let scores: std::vec::Vec<f32> = (0..n)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((x >> 40) % 1000) as f32 / 7.0 // ties included
                })
                .collect();
            let mut top = TopK::new();
            let mut c = Calibrator::new(n, rate, &mut top).unwrap();
            let mut got = None;
            for (i, &s) in scores.iter().enumerate() {
                let t = c.push(s);
                assert_eq!(t.is_some(), i + 1 == n as usize);
                got = got.or(t);
            }
            let t = got.unwrap();
            assert_eq!(t, reference(&scores, rate), "n {n} rate {rate}");
            let above = scores.iter().filter(|&&s| s > t).count();
            assert!(above < c.rank(), "{above}");
            let mean = scores.iter().map(|&s| s as f64).sum::<f64>() / n as f64;
            assert!((c.mean() as f64 - mean).abs() <= 1e-4 * mean.abs().max(1.0));
            assert_eq!(c.push(1e9), None, "ignores scores after N");
            c.reset();
            assert_eq!(c.seen(), 0);
        }
        assert_eq!(rank(0.01, 200), 2);
        assert_eq!(rank(0.01, 199), 2);
        assert_eq!(rank(0.01, 198), 1);
        assert_eq!(rank(0.0, 10), 1);
    }

    #[test]
    fn refuses_impossible_settings() {
        let mut t = TopK::new();
        assert_eq!(
            Calibrator::new(0, 0.01, &mut t),
            Err(CalibrationError::NoWindows)
        );
        assert_eq!(
            Calibrator::new(10, 1.0, &mut t),
            Err(CalibrationError::Rate)
        );
        assert_eq!(
            Calibrator::new(10, f32::NAN, &mut t),
            Err(CalibrationError::Rate)
        );
        assert_eq!(
            Calibrator::new(10_000, 0.01, &mut t),
            Err(CalibrationError::TooManyAllowed { k: 100 })
        );
        assert_eq!(
            Calibrator::new(1_700, 0.01, &mut t),
            Err(CalibrationError::TooManyAllowed { k: 17 })
        );
    }
}
