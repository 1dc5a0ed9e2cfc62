//! Detection metrics for anomaly scores (higher = more anomalous): ROC AUC, the ROC curve and
//! the confusion matrix at a threshold. The threshold itself comes from the core's one rule,
//! [`vae_nostd::calibration::conformal_threshold`], which the firmware uses too.
//!
//! One convention throughout: **a score raises an alarm when it is strictly greater than the
//! threshold** (`score > threshold`); a NaN score always raises one (a detector that cannot
//! score a window should not stay silent). Ratios with a zero denominator are 0, as with
//! scikit-learn's `zero_division=0`.

/// Area under the ROC curve: the Mann–Whitney U statistic over (anomalous, normal) pairs,
/// P(score_anomalous > score_normal) + ½ P(equal), from ranks with ties averaged. 1 is a
/// perfect ranking, 0.5 chance.
///
/// `None` when the lengths differ, a class is empty or a score is NaN.
pub fn roc_auc(scores: &[f32], is_anomaly: &[bool]) -> Option<f64> {
    let (n_pos, n_neg) = class_counts(scores, is_anomaly)?;
    let order = ascending(scores);
    // Sum of the (1-based, tie-averaged) ranks of the anomalous scores.
    let mut rank_sum = 0.0;
    for group in tie_groups(scores, &order) {
        let first = group.start as f64 + 1.0;
        let last = group.end as f64;
        let mean_rank = 0.5 * (first + last);
        let pos = order[group].iter().filter(|&&i| is_anomaly[i]).count();
        rank_sum += mean_rank * pos as f64;
    }
    let (p, n) = (n_pos as f64, n_neg as f64);
    let u = rank_sum - p * (p + 1.0) / 2.0;
    Some(u / (p * n))
}

/// The ROC curve: (false-positive rate, true-positive rate) from (0, 0) to (1, 1), one point
/// per distinct score, lowering the threshold from the top (tied scores make one diagonal
/// step). Its trapezoid area is [`roc_auc`].
///
/// Empty when the lengths differ, a class is empty or a score is NaN.
pub fn roc_curve(scores: &[f32], is_anomaly: &[bool]) -> Vec<(f64, f64)> {
    let Some((n_pos, n_neg)) = class_counts(scores, is_anomaly) else {
        return Vec::new();
    };
    let order = ascending(scores);
    let groups = tie_groups(scores, &order);
    let mut curve = Vec::with_capacity(groups.len() + 1);
    curve.push((0.0, 0.0));
    let (mut tp, mut fp) = (0usize, 0usize);
    for group in groups.into_iter().rev() {
        let pos = order[group.clone()]
            .iter()
            .filter(|&&i| is_anomaly[i])
            .count();
        tp += pos;
        fp += group.len() - pos;
        curve.push((fp as f64 / n_neg as f64, tp as f64 / n_pos as f64));
    }
    curve
}

/// The confusion matrix of alarms (`score > threshold`, or NaN) against the truth.
///
/// # Panics
/// If `scores` and `is_anomaly` have different lengths.
pub fn confusion_at(scores: &[f32], is_anomaly: &[bool], threshold: f32) -> Confusion {
    assert_eq!(
        scores.len(),
        is_anomaly.len(),
        "confusion_at: one truth value per score"
    );
    let mut c = Confusion::default();
    for (&s, &truth) in scores.iter().zip(is_anomaly) {
        let alarm = s > threshold || s.is_nan();
        match (alarm, truth) {
            (true, true) => c.tp += 1,
            (true, false) => c.fp += 1,
            (false, false) => c.tn += 1,
            (false, true) => c.fn_ += 1,
        }
    }
    c
}

/// Counts of alarms and silences against the truth.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Confusion {
    /// Anomalies with an alarm.
    pub tp: usize,
    /// Normal windows with an alarm (false alarms).
    pub fp: usize,
    /// Normal windows without an alarm.
    pub tn: usize,
    /// Anomalies without an alarm (misses).
    pub fn_: usize,
}

impl Confusion {
    /// tp / (tp + fp): the fraction of alarms that are anomalies; 0 without alarms.
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    /// tp / (tp + fn): the fraction of anomalies caught; 0 without anomalies.
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// The harmonic mean of precision and recall; 0 when both are 0.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        }
    }

    /// fp / (fp + tn): the fraction of normal windows with an alarm; 0 without normal windows.
    pub fn false_alarm_rate(&self) -> f64 {
        ratio(self.fp, self.fp + self.tn)
    }

    /// Number of windows counted.
    pub fn total(&self) -> usize {
        self.tp + self.fp + self.tn + self.fn_
    }
}

/// num / den, and 0 for 0 / 0 (scikit-learn's `zero_division=0`).
fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// (anomalous, normal) counts, or `None` if the lengths differ, a class is empty or a score is
/// NaN.
fn class_counts(scores: &[f32], is_anomaly: &[bool]) -> Option<(usize, usize)> {
    if scores.len() != is_anomaly.len() || scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    let pos = is_anomaly.iter().filter(|&&a| a).count();
    let neg = scores.len() - pos;
    (pos > 0 && neg > 0).then_some((pos, neg))
}

/// Indices that sort `scores` ascending (no NaN).
fn ascending(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_unstable_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    order
}

/// Ranges of `order` holding equal scores (−0 equals +0), ascending.
fn tie_groups(scores: &[f32], order: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut groups = Vec::new();
    let mut start = 0;
    for i in 1..=order.len() {
        if i == order.len() || scores[order[i]] != scores[order[start]] {
            groups.push(start..i);
            start = i;
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trapezoid(curve: &[(f64, f64)]) -> f64 {
        curve
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
            .sum()
    }

    #[test]
    fn auc_and_curve_by_hand() {
        // scikit-learn's example: 3 of the 4 (anomalous, normal) pairs are ordered right.
        let s = [0.1, 0.4, 0.35, 0.8];
        let y = [false, false, true, true];
        assert_eq!(roc_auc(&s, &y), Some(0.75));
        let c = roc_curve(&s, &y);
        assert_eq!(
            c,
            [(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]
        );
        assert_eq!(trapezoid(&c), 0.75);
    }

    #[test]
    fn ties_count_one_half() {
        // Pairs (anomalous, normal): (2,1) 1, (2,2) ½, (3,1) 1, (3,2) 1 → 3.5 / 4.
        let s = [1.0, 2.0, 2.0, 3.0];
        let y = [false, true, false, true];
        assert_eq!(roc_auc(&s, &y), Some(0.875));
        let c = roc_curve(&s, &y);
        assert_eq!(c, [(0.0, 0.0), (0.0, 0.5), (0.5, 1.0), (1.0, 1.0)]);
        assert_eq!(trapezoid(&c), 0.875);
        // All tied: chance. −0 and +0 are one score.
        assert_eq!(roc_auc(&[0.0, -0.0, 0.0], &[true, false, false]), Some(0.5));
        assert_eq!(
            roc_curve(&[5.0; 3], &[true, false, false]),
            [(0.0, 0.0), (1.0, 1.0)]
        );
    }

    #[test]
    fn perfect_reversed_and_undefined() {
        let y = [false, false, true];
        assert_eq!(roc_auc(&[1.0, 2.0, 3.0], &y), Some(1.0));
        assert_eq!(roc_auc(&[3.0, 2.0, 1.0], &y), Some(0.0));
        assert_eq!(
            roc_auc(&[f32::NEG_INFINITY, 0.0, f32::INFINITY], &y),
            Some(1.0)
        );
        assert_eq!(roc_auc(&[1.0, 2.0], &[false, false]), None);
        assert_eq!(roc_auc(&[1.0, 2.0], &[true, true]), None);
        assert_eq!(roc_auc(&[], &[]), None);
        assert_eq!(roc_auc(&[1.0, f32::NAN], &[true, false]), None);
        assert_eq!(roc_auc(&[1.0], &[true, false]), None);
        assert!(roc_curve(&[1.0, 2.0], &[true, true]).is_empty());
    }

    #[test]
    fn curve_area_equals_auc_on_larger_data() {
        // Scores on a coarse grid (many ties), classes interleaved.
        let s: Vec<f32> = (0..200).map(|i| ((i * 37) % 23) as f32 / 2.0).collect();
        let y: Vec<bool> = (0..200).map(|i| (i * 37) % 23 > 8 && i % 3 != 0).collect();
        let auc = roc_auc(&s, &y).unwrap();
        assert!((trapezoid(&roc_curve(&s, &y)) - auc).abs() < 1e-12);
        // Against the definition over all pairs.
        let (mut num, mut den) = (0.0, 0.0);
        for i in 0..200 {
            for j in 0..200 {
                if y[i] && !y[j] {
                    den += 1.0;
                    num += if s[i] > s[j] {
                        1.0
                    } else if s[i] == s[j] {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        assert!((auc - num / den).abs() < 1e-12);
    }

    #[test]
    fn confusion_by_hand() {
        let s = [0.1, 0.4, 0.35, 0.8, 0.4, f32::NAN];
        let y = [false, false, true, true, true, false];
        let c = confusion_at(&s, &y, 0.4);
        // Alarms: 0.8 (anomaly) and NaN (normal); 0.4 equals the threshold: no alarm.
        assert_eq!(
            c,
            Confusion {
                tp: 1,
                fp: 1,
                tn: 2,
                fn_: 2
            }
        );
        assert_eq!(c.total(), 6);
        assert_eq!(c.precision(), 0.5);
        assert_eq!(c.recall(), 1.0 / 3.0);
        assert!((c.f1() - 0.4).abs() < 1e-15);
        assert_eq!(c.false_alarm_rate(), 1.0 / 3.0);
        // Zero denominators give 0.
        let silent = confusion_at(&s[..3], &y[..3], 1.0);
        assert_eq!(
            (silent.precision(), silent.recall(), silent.f1()),
            (0.0, 0.0, 0.0)
        );
        assert_eq!(Confusion::default().false_alarm_rate(), 0.0);
        let missed = Confusion {
            tp: 0,
            fp: 3,
            tn: 0,
            fn_: 2,
        };
        assert_eq!(missed.f1(), 0.0);
    }

    #[test]
    #[should_panic(expected = "one truth value per score")]
    fn confusion_refuses_mismatched_lengths() {
        confusion_at(&[1.0, 2.0], &[true], 0.0);
    }
}
