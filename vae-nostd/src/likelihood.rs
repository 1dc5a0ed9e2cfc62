//! Decoder log-likelihoods log p_θ(x|z) and their gradients with respect to the decoder's
//! output layer (App. C.1 Bernoulli, App. C.2 Gaussian).

use crate::real::LN_2PI;
use crate::{Likelihood, Real};

/// Bernoulli log-likelihood of one datapoint from its logits a (App. C.1):
/// Σ_i x_i·a_i − softplus(a_i) = Σ_i x_i log y_i + (1 − x_i) log(1 − y_i), y = sigmoid(a).
/// Finite and accurate for any finite logit (no log of a rounded-to-zero probability).
/// `x` may be fractional in [0, 1] (continuous relaxation, as in PyTorch's example).
pub fn bernoulli_log_likelihood<T: Real>(x: &[T], logits: &[T]) -> T {
    sum_in_order(x, logits, |x, a| x * a - a.softplus())
}

/// Σ_i f(a_i, b_i), summed strictly in index order. The terms are computed a block of 16 (one
/// AVX-512 vector; small enough for a Cortex-M stack) at a time
/// into a small buffer first, so that computing them vectorizes while the sum (and so the
/// result's bits) is exactly that of a plain sequential loop.
#[inline(always)]
fn sum_in_order<T: Real>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> T {
    const BLOCK: usize = 16;
    let mut s = T::ZERO;
    let mut buf = [T::ZERO; BLOCK];
    for (ca, cb) in a.chunks(BLOCK).zip(b.chunks(BLOCK)) {
        let n = ca.len().min(cb.len());
        for ((t, x), y) in buf[..n].iter_mut().zip(ca).zip(cb) {
            *t = f(*x, *y);
        }
        for t in &buf[..n] {
            s += *t;
        }
    }
    s
}

/// The log-variance floor of a Gaussian decoder with `floor` ([`Likelihood::Gaussian`]):
/// ln 0.01, i.e. σ ≥ 0.1. The host trains sensor windows normalized to unit variance per
/// channel, so this is a tenth of a channel's spread.
pub const LOGVAR_FLOOR: f64 = -4.605_170_185_988_091;

/// `lv` raised to the floor when there is one (`floor` = −∞ for none).
#[inline]
fn floored<T: Real>(lv: T, floor: T) -> T {
    if lv < floor { floor } else { lv }
}

/// The floor as a `T` (−∞ without one).
#[inline]
fn floor_of<T: Real>(floor: bool) -> T {
    if floor {
        T::from_f64(LOGVAR_FLOOR)
    } else {
        T::from_f64(f64::NEG_INFINITY)
    }
}

/// Gaussian log-likelihood of one datapoint (App. C.2). `out` holds `[D]` means (raw, or
/// sigmoid-squashed when `sigmoid_mean`) followed by `[D]` log-variances:
/// Σ_i −½ (ln 2π + log σ_i² + (x_i − m_i)² / σ_i²), with log σ_i² = max(out, [`LOGVAR_FLOOR`])
/// when `floor`.
pub fn gaussian_log_likelihood<T: Real>(x: &[T], out: &[T], sigmoid_mean: bool, floor: bool) -> T {
    let fl: T = floor_of(floor);
    let d = x.len();
    let (mean, logvar) = out.split_at(d.min(out.len()));
    let ln2pi = T::from_f64(LN_2PI);
    let d = d.min(mean.len()).min(logvar.len());
    let (mut s, mut i) = (T::ZERO, 0);
    const BLOCK: usize = 16;
    let mut buf = [T::ZERO; BLOCK];
    while i < d {
        let n = BLOCK.min(d - i);
        for (j, t) in buf[..n].iter_mut().enumerate() {
            let (x, m, lv) = (x[i + j], mean[i + j], floored(logvar[i + j], fl));
            let m = if sigmoid_mean { m.sigmoid() } else { m };
            let r = x - m;
            *t = -T::HALF * (ln2pi + lv + r * r * (-lv).exp());
        }
        for t in &buf[..n] {
            s += *t;
        }
        i += n;
    }
    s
}

/// log p_θ(x|z) for either decoder, from one row of decoder outputs.
pub fn log_likelihood<T: Real>(lik: Likelihood, x: &[T], out: &[T]) -> T {
    match lik {
        Likelihood::Bernoulli => bernoulli_log_likelihood(x, out),
        Likelihood::Gaussian {
            sigmoid_mean,
            floor,
        } => gaussian_log_likelihood(x, out, sigmoid_mean, floor),
    }
}

/// Overwrites one row of decoder outputs with `−c · ∂ log p_θ(x|z) / ∂ out`, the gradient of
/// the loss term `−c · log p` (c is the sample's weight in the minibatch loss).
///
/// Bernoulli: ∂/∂a = x − sigmoid(a). Gaussian: ∂/∂m = (x − m)/σ² (times m(1 − m) through the
/// sigmoid), ∂/∂ log σ² = −½ + ½ (x − m)²/σ² — 0 where the floor holds the log-variance up.
pub fn log_likelihood_backward<T: Real>(lik: Likelihood, out: &mut [T], x: &[T], c: T) {
    match lik {
        Likelihood::Bernoulli => {
            for (o, x) in out.iter_mut().zip(x) {
                *o = c * (o.sigmoid() - *x);
            }
        }
        Likelihood::Gaussian {
            sigmoid_mean,
            floor,
        } => {
            let fl: T = floor_of(floor);
            let d = x.len();
            let (mean, logvar) = out.split_at_mut(d.min(out.len()));
            for ((m, lv), x) in mean.iter_mut().zip(logvar.iter_mut()).zip(x) {
                let (mu, dmu_draw) = if sigmoid_mean {
                    let s = m.sigmoid();
                    (s, s * (T::ONE - s))
                } else {
                    (*m, T::ONE)
                };
                let r = *x - mu;
                let held = *lv < fl;
                let inv_var = (-floored(*lv, fl)).exp();
                *m = -c * r * inv_var * dmu_draw;
                *lv = if held {
                    T::ZERO
                } else {
                    -c * (T::HALF * r * r * inv_var - T::HALF)
                };
            }
        }
    }
}

/// Writes the decoder's mean E[x|z] for one row of outputs: sigmoid(a) (Bernoulli) or the
/// (possibly squashed) Gaussian mean. Used for reconstructions and samples.
pub fn decoder_mean<T: Real>(lik: Likelihood, mean: &mut [T], out: &[T]) {
    match lik {
        Likelihood::Bernoulli => mean.iter_mut().zip(out).for_each(|(m, a)| *m = a.sigmoid()),
        Likelihood::Gaussian { sigmoid_mean, .. } => mean.iter_mut().zip(out).for_each(|(m, o)| {
            *m = if sigmoid_mean { o.sigmoid() } else { *o };
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bernoulli_is_finite_and_right_at_extreme_logits() {
        // log sigmoid(100) = −softplus(−100) ≈ −e^{−100}; log(1 − sigmoid(100)) = −100 − e^{−100}.
        let ll =
            bernoulli_log_likelihood(&[1.0f64, 0.0, 1.0, 0.0], &[100.0, 100.0, -100.0, -100.0]);
        let tiny = (-100f64).exp();
        let want = -tiny + (-100.0 - tiny) + (-100.0 - tiny) - tiny;
        assert!(ll.is_finite());
        assert!((ll - want).abs() < 1e-12, "{ll} vs {want}");
        let ll32 = bernoulli_log_likelihood(&[1.0f32, 0.0], &[100.0, -100.0]);
        assert!(ll32.is_finite() && ll32.abs() < 1e-30);
        // A plain log(sigmoid) would give −∞ at a = −800 in f64; this gives −800.
        let far = bernoulli_log_likelihood(&[1.0f64], &[-800.0]);
        assert_eq!(far, -800.0);
    }

    #[test]
    fn gaussian_matches_a_hand_value() {
        // x = (0.5, −1), m = (0, 1), log σ² = (0, ln 4):
        // −½[ln 2π + 0 + 0.25] − ½[ln 2π + ln 4 + 4/4] = −ln 2π − ½ ln 4 − 0.625.
        let ll =
            gaussian_log_likelihood(&[0.5f64, -1.0], &[0.0, 1.0, 0.0, 4f64.ln()], false, false);
        let want = -LN_2PI - 0.5 * 4f64.ln() - 0.625;
        assert!((ll - want).abs() < 1e-14, "{ll} vs {want}");
        // Sigmoid mean: raw 0 gives m = 0.5, so x = 0.5 has zero residual.
        let ll = gaussian_log_likelihood(&[0.5f64], &[0.0, 0.0], true, false);
        assert!((ll + 0.5 * LN_2PI).abs() < 1e-15);
    }

    #[test]
    fn the_floor_holds_the_variance_up_and_its_gradient_is_the_finite_difference() {
        // log σ² of −9 is held at the floor: the likelihood is that of log σ² = LOGVAR_FLOOR.
        let x = [0.3f64, -0.2];
        let held = gaussian_log_likelihood(&x, &[0.0, 0.0, -9.0, 0.5], false, true);
        let at = gaussian_log_likelihood(&x, &[0.0, 0.0, LOGVAR_FLOOR, 0.5], false, false);
        assert_eq!(held, at);
        // Without the floor it is the plain Gaussian.
        let free = gaussian_log_likelihood(&x, &[0.0, 0.0, -9.0, 0.5], false, false);
        assert!(free < held - 100.0, "{free} vs {held}");
        // Gradient against 4th-order central differences in f64, some outputs held, some not,
        // none within h of the kink; both mean kinds.
        for sigmoid_mean in [false, true] {
            let lik = Likelihood::Gaussian {
                sigmoid_mean,
                floor: true,
            };
            let x = [0.4f64, -0.7, 0.1, 1.2];
            let out = [0.2f64, -0.5, 0.9, 0.0, -7.0, -2.0, -5.5, 0.3];
            let c = 0.75;
            let mut grad = out;
            log_likelihood_backward(lik, &mut grad, &x, c);
            let h = 1e-4;
            for i in 0..out.len() {
                let f = |d: f64| {
                    let mut o = out;
                    o[i] += d;
                    -c * log_likelihood(lik, &x, &o)
                };
                let fd = (8.0 * (f(h) - f(-h)) - (f(2.0 * h) - f(-2.0 * h))) / (12.0 * h);
                assert!(
                    (grad[i] - fd).abs() <= 1e-8 * (1.0 + fd.abs()),
                    "output {i} ({sigmoid_mean}): {} vs {fd}",
                    grad[i]
                );
            }
            // The held outputs (log σ² −7 and −5.5) get no gradient.
            assert_eq!((grad[4], grad[6]), (0.0, 0.0));
        }
    }
}
