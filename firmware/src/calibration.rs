//! On-device calibration: the anomaly threshold learnt from the first N (assumed normal)
//! windows as the empirical (1 − rate) quantile of their scores, in O(k) RAM.
//!
//! With m = ⌊rate·N⌋ (the false alarms the rate allows among N windows), the threshold is the
//! (m + 1)-th largest of the N scores. So at most m calibration scores lie strictly above it
//! (empirical false-alarm rate ≤ rate, exactly m when there are no ties), and it is the smallest
//! value with that property. Only the k = m + 1 largest scores seen so far need to be kept
//! (k ≤ ⌈rate·N⌉ + 1): a sorted array of at most [`MAX_TOP`], updated by insertion, so the
//! result is exact, not an approximation. The array is borrowed (on the device it is part of
//! the application's static [`crate::app::Buffers`]), so a `Calibrator` itself is a few words.

use core::fmt;

/// Largest k = ⌊rate·N⌋ + 1 the calibrator holds (rate·N ≤ 31, e.g. 1 % of 3100 windows).
pub const MAX_TOP: usize = 32;

/// Impossible calibration settings.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum CalibrationError {
    /// N = 0.
    NoWindows,
    /// The rate is not in [0, 1).
    Rate,
    /// ⌊rate·N⌋ + 1 > [`MAX_TOP`].
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
                "rate × windows allows {} false alarms; at most {} fit (MAX_TOP)",
                k - 1,
                MAX_TOP - 1
            ),
        }
    }
}

/// The streaming quantile: feed it N scores, it returns the threshold after the N-th.
#[derive(Debug, PartialEq)]
pub struct Calibrator<'b> {
    /// The largest scores so far, descending; the first `filled` are valid.
    top: &'b mut [f32; MAX_TOP],
    filled: usize,
    k: usize,
    seen: u32,
    target: u32,
    rate: f32,
}

/// m = ⌊rate·N⌋, with a relative guard of 10⁻⁶ against the f32 rounding of the rate
/// (0.01f32 · 200 = 1.99999996). In f32 (no soft-float f64 on the Cortex-M4F): its three
/// roundings (≤ 1.8·10⁻⁷ relative) stay inside the guard.
fn allowed(rate: f32, n: u32) -> usize {
    libm::floorf(rate * n as f32 * (1.0 + 1e-6)) as usize
}

impl<'b> Calibrator<'b> {
    /// A calibration over `windows` scores at false-alarm rate `rate`, keeping its top-k in
    /// `top` (overwritten).
    pub fn new(
        windows: u32,
        rate: f32,
        top: &'b mut [f32; MAX_TOP],
    ) -> Result<Self, CalibrationError> {
        if windows == 0 {
            return Err(CalibrationError::NoWindows);
        }
        if !(0.0..1.0).contains(&rate) {
            return Err(CalibrationError::Rate);
        }
        let k = allowed(rate, windows) + 1;
        if k > MAX_TOP {
            return Err(CalibrationError::TooManyAllowed { k });
        }
        top.fill(f32::NEG_INFINITY);
        Ok(Calibrator {
            top,
            filled: 0,
            k,
            seen: 0,
            target: windows,
            rate,
        })
    }

    /// Starts over (same N and rate).
    pub fn reset(&mut self) {
        self.filled = 0;
        self.seen = 0;
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

    /// m = ⌊rate·N⌋: calibration scores allowed above the threshold.
    pub fn allowed_false_alarms(&self) -> usize {
        self.k - 1
    }

    /// Takes one (finite) score; returns the threshold when this was the N-th. Scores after
    /// the N-th are ignored until [`reset`](Self::reset).
    pub fn push(&mut self, score: f32) -> Option<f32> {
        if self.seen >= self.target || !score.is_finite() {
            return None;
        }
        self.seen += 1;
        // Insert into the descending top-k.
        let mut i = self.filled.min(self.k);
        if i == self.k && score <= self.top[self.k - 1] {
            // Not among the k largest.
        } else {
            if i == self.k {
                i -= 1; // drop the smallest
            }
            while i > 0 && self.top[i - 1] < score {
                self.top[i] = self.top[i - 1];
                i -= 1;
            }
            self.top[i] = score;
            self.filled = (self.filled + 1).min(self.k);
        }
        if self.seen == self.target {
            Some(self.threshold_now())
        } else {
            None
        }
    }

    /// The (m + 1)-th largest score so far (the smallest kept when fewer than k were seen).
    pub fn threshold_now(&self) -> f32 {
        if self.filled == 0 {
            f32::NAN
        } else {
            self.top[self.filled - 1]
        }
    }
}

/// The end-to-end rule for false alarms on fresh normal windows: with a threshold calibrated
/// at `rate`, the flagged count among `normal` windows is roughly Binomial(normal, rate); allow
/// its mean plus three standard deviations, rounded up: ⌈rate·M + 3·√(rate·(1 − rate)·M)⌉.
pub fn allowed_false_alarms(rate: f32, normal: u32) -> u32 {
    let (p, m) = (rate as f64, normal as f64);
    libm::ceil(p * m + 3.0 * libm::sqrt(p * (1.0 - p) * m)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: sort all N, take the (m + 1)-th largest.
    fn reference(scores: &[f32], rate: f32) -> f32 {
        let mut s = scores.to_vec();
        s.sort_by(|a, b| b.total_cmp(a));
        s[allowed(rate, scores.len() as u32)]
    }

    #[test]
    fn equals_the_sorted_quantile_and_allows_at_most_m_above() {
        let mut x: u64 = 12345;
        for (n, rate) in [
            (200u32, 0.01f32),
            (1000, 0.02),
            (37, 0.05),
            (10, 0.0),
            (500, 0.05),
        ] {
            let scores: std::vec::Vec<f32> = (0..n)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((x >> 40) % 1000) as f32 / 7.0 // ties included
                })
                .collect();
            let mut top = [0f32; MAX_TOP];
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
            assert!(above <= c.allowed_false_alarms(), "{above}");
            assert_eq!(c.push(1e9), None, "ignores scores after N");
            c.reset();
            assert_eq!(c.seen(), 0);
        }
        assert_eq!(allowed(0.01, 200), 2);
    }

    #[test]
    fn refuses_impossible_settings() {
        let mut t = [0f32; MAX_TOP];
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
            Err(CalibrationError::TooManyAllowed { k: 101 })
        );
    }
}
