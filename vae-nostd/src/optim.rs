//! Optimizers over the flat parameter vector: one loop over parameters, gradients and moments
//! that share one layout. State is a caller-owned slice (`state_len` elements), so it can be a
//! `static` on the device.
//!
//! Each step first checks the whole gradient: if any value is NaN or ±∞ it returns
//! [`Error::NonFiniteGradient`] and changes nothing.

use crate::Real;
use crate::error::{Error, check_len};

/// The optimizer families, for memory figures and configuration files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OptimizerKind {
    /// SGD with (heavy-ball) momentum.
    Sgd,
    /// Adagrad, the paper's optimizer (§5).
    Adagrad,
    /// Adam (Kingma & Ba 2015).
    Adam,
}

impl OptimizerKind {
    /// Moment values kept per parameter.
    pub const fn state_per_param(self) -> usize {
        match self {
            OptimizerKind::Sgd | OptimizerKind::Adagrad => 1,
            OptimizerKind::Adam => 2,
        }
    }
}

/// A first-order optimizer minimizing the loss (−bound).
pub trait Optimizer<T: Real> {
    /// Which family.
    fn kind(&self) -> OptimizerKind;
    /// Elements of state for `n_params` parameters.
    fn state_len(&self, n_params: usize) -> usize {
        self.kind().state_per_param() * n_params
    }
    /// One update of `params` from `grads` (gradients of the loss). `state` starts zeroed.
    fn step(&mut self, params: &mut [T], grads: &[T], state: &mut [T]) -> Result<(), Error>;
}

fn check<T: Real>(params: &[T], grads: &[T], state: &[T], per: usize, lr: T) -> Result<(), Error> {
    check_len("grads", params.len(), grads.len())?;
    check_len("optimizer state", per * params.len(), state.len())?;
    if !lr.is_finite() || lr < T::ZERO {
        return Err(Error::InvalidArgument(
            "learning rate must be finite and non-negative",
        ));
    }
    if grads.iter().all(|g| g.is_finite()) {
        Ok(())
    } else {
        Err(Error::NonFiniteGradient)
    }
}

/// SGD with momentum: `v ← μ v + (g + λθ)`, `θ ← θ − η v`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd<T> {
    /// Step size η.
    pub lr: T,
    /// Momentum μ (0 for plain SGD).
    pub momentum: T,
    /// L2 weight decay λ.
    pub weight_decay: T,
}

impl<T: Real> Optimizer<T> for Sgd<T> {
    fn kind(&self) -> OptimizerKind {
        OptimizerKind::Sgd
    }
    fn step(&mut self, params: &mut [T], grads: &[T], state: &mut [T]) -> Result<(), Error> {
        check(params, grads, state, 1, self.lr)?;
        for ((p, g), v) in params.iter_mut().zip(grads).zip(state.iter_mut()) {
            *v = self.momentum * *v + (*g + self.weight_decay * *p);
            *p -= self.lr * *v;
        }
        Ok(())
    }
}

/// Adagrad (Duchi, Hazan & Singer 2011), as in the paper (§5: step size from {0.01, 0.02, 0.1},
/// "weight decay corresponding to a prior p(θ) = N(0, I)"):
/// `g ← g + λθ`, `G ← G + g²`, `θ ← θ − η g / (√G + ε)`.
///
/// With the loss a mean over datapoints, the N(0, I) prior on θ of a dataset of N points is
/// `weight_decay = 1/N`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adagrad<T> {
    /// Step size η.
    pub lr: T,
    /// ε in the denominator (PyTorch's default 1e-10).
    pub eps: T,
    /// L2 weight decay λ.
    pub weight_decay: T,
}

impl<T: Real> Optimizer<T> for Adagrad<T> {
    fn kind(&self) -> OptimizerKind {
        OptimizerKind::Adagrad
    }
    fn step(&mut self, params: &mut [T], grads: &[T], state: &mut [T]) -> Result<(), Error> {
        check(params, grads, state, 1, self.lr)?;
        for ((p, g), s) in params.iter_mut().zip(grads).zip(state.iter_mut()) {
            let g = *g + self.weight_decay * *p;
            *s += g * g;
            *p -= self.lr * g / (s.sqrt() + self.eps);
        }
        Ok(())
    }
}

/// Adam (Kingma & Ba 2015) with bias correction and L2 weight decay added to the gradient.
/// State: first moments `[P]` then second moments `[P]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam<T> {
    /// Step size α.
    pub lr: T,
    /// β₁.
    pub beta1: T,
    /// β₂.
    pub beta2: T,
    /// ε.
    pub eps: T,
    /// L2 weight decay λ.
    pub weight_decay: T,
    /// Steps taken so far (save it with the state to resume exactly).
    pub t: u64,
}

impl<T: Real> Adam<T> {
    /// The usual defaults: β₁ = 0.9, β₂ = 0.999, ε = 1e-8, no weight decay.
    pub fn new(lr: T) -> Self {
        Adam {
            lr,
            beta1: T::from_f64(0.9),
            beta2: T::from_f64(0.999),
            eps: T::from_f64(1e-8),
            weight_decay: T::ZERO,
            t: 0,
        }
    }
}

impl<T: Real> Optimizer<T> for Adam<T> {
    fn kind(&self) -> OptimizerKind {
        OptimizerKind::Adam
    }
    fn step(&mut self, params: &mut [T], grads: &[T], state: &mut [T]) -> Result<(), Error> {
        check(params, grads, state, 2, self.lr)?;
        self.t += 1;
        let t = self.t as f64;
        let bc1 = T::from_f64(1.0 - libm::pow(self.beta1.to_f64(), t));
        let bc2 = T::from_f64(1.0 - libm::pow(self.beta2.to_f64(), t));
        let (m, v) = state.split_at_mut(params.len());
        for (((p, g), m), v) in params
            .iter_mut()
            .zip(grads)
            .zip(m.iter_mut())
            .zip(v.iter_mut())
        {
            let g = *g + self.weight_decay * *p;
            *m = self.beta1 * *m + (T::ONE - self.beta1) * g;
            *v = self.beta2 * *v + (T::ONE - self.beta2) * g * g;
            let mhat = *m / bc1;
            let vhat = *v / bc2;
            *p -= self.lr * mhat / (vhat.sqrt() + self.eps);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimize<O: Optimizer<f64>>(mut opt: O, steps: usize) -> [f64; 2] {
        // f(θ) = ½ (θ₀ − 3)² + 2 (θ₁ + 1)².
        let mut p = [0.0, 0.0];
        let mut st = [0.0; 4];
        let n = opt.state_len(2);
        for _ in 0..steps {
            let g = [p[0] - 3.0, 4.0 * (p[1] + 1.0)];
            opt.step(&mut p, &g, &mut st[..n]).unwrap();
        }
        p
    }

    #[test]
    fn each_optimizer_reaches_the_minimum_of_a_quadratic() {
        let targets = [3.0, -1.0];
        let runs = [
            minimize(
                Sgd {
                    lr: 0.1,
                    momentum: 0.5,
                    weight_decay: 0.0,
                },
                500,
            ),
            minimize(
                Adagrad {
                    lr: 0.5,
                    eps: 1e-10,
                    weight_decay: 0.0,
                },
                2000,
            ),
            minimize(Adam::new(0.05), 3000),
        ];
        for p in runs {
            for (a, b) in p.iter().zip(targets) {
                assert!((a - b).abs() < 1e-3, "{p:?}");
            }
        }
    }

    #[test]
    fn non_finite_gradients_leave_everything_untouched() {
        let mut p = [1.0f32, 2.0];
        let mut st = [0.5f32, 0.25, 0.1, 0.2];
        let mut adam = Adam::new(0.1f32);
        let err = adam.step(&mut p, &[f32::NAN, 0.0], &mut st);
        assert_eq!(err, Err(Error::NonFiniteGradient));
        assert_eq!((p, st, adam.t), ([1.0, 2.0], [0.5, 0.25, 0.1, 0.2], 0));
        let mut ag = Adagrad {
            lr: 0.1f32,
            eps: 1e-10,
            weight_decay: 0.0,
        };
        assert!(
            ag.step(&mut p, &[0.0, f32::INFINITY], &mut st[..2])
                .is_err()
        );
        assert_eq!(p, [1.0, 2.0]);
        assert!(ag.step(&mut p, &[0.0], &mut st[..2]).is_err());
    }

    #[test]
    fn weight_decay_is_the_gradient_of_a_gaussian_prior() {
        // Zero data gradient: SGD with λ shrinks θ by (1 − ηλ).
        let mut p = [2.0f64];
        let mut st = [0.0];
        Sgd {
            lr: 0.1,
            momentum: 0.0,
            weight_decay: 0.5,
        }
        .step(&mut p, &[0.0], &mut st)
        .unwrap();
        assert!((p[0] - 2.0 * (1.0 - 0.05)).abs() < 1e-15);
    }
}
