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
///
/// An update has two parts: a step-wide one ([`Optimizer::begin_step`]: checks the step size,
/// advances the step count and computes the constants of this step, such as Adam's bias
/// corrections) and an element-wise one ([`StepRule::apply`]), for which any split of the
/// parameter vector into chunks gives the same bits. [`Optimizer::step`] is the two over the
/// whole vector after checking every gradient; the host trainer runs the second part on its
/// threads, chunk by chunk, so host and device share one update.
pub trait Optimizer<T: Real> {
    /// Which family.
    fn kind(&self) -> OptimizerKind;
    /// Elements of state for `n_params` parameters.
    fn state_len(&self, n_params: usize) -> usize {
        self.kind().state_per_param() * n_params
    }
    /// The step-wide part of one update: checks the step size, advances the step count and
    /// returns the rule every element of this step is updated by. Call it only for a step
    /// that will be applied (after the gradient was found finite); on an error nothing changes.
    fn begin_step(&mut self) -> Result<StepRule<T>, Error>;
    /// One update of `params` from `grads` (gradients of the loss). `state` starts zeroed; it
    /// holds the family's moments one after the other, each `[P]`. If any gradient is NaN or
    /// ±∞ it returns [`Error::NonFiniteGradient`] and changes nothing.
    fn step(&mut self, params: &mut [T], grads: &[T], state: &mut [T]) -> Result<(), Error> {
        let per = self.kind().state_per_param();
        check_len("grads", params.len(), grads.len())?;
        check_len("optimizer state", per * params.len(), state.len())?;
        if !grads.iter().all(|g| g.is_finite()) {
            return Err(Error::NonFiniteGradient);
        }
        let rule = self.begin_step()?;
        let (first, second) = state.split_at_mut(params.len());
        rule.apply(params, grads, first, second)
    }
}

fn check_lr<T: Real>(lr: T) -> Result<(), Error> {
    if !lr.is_finite() || lr < T::ZERO {
        return Err(Error::InvalidArgument(
            "learning rate must be finite and non-negative",
        ));
    }
    Ok(())
}

/// One step's update of each element, with the step's constants: the element-wise part of
/// [`Optimizer::step`], shared by the device's single loop and the host's threads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StepRule<T> {
    /// `v ← μ v + (g + λθ)`, `θ ← θ − η v` ([`Sgd`]).
    Sgd {
        /// η.
        lr: T,
        /// μ.
        momentum: T,
        /// λ.
        weight_decay: T,
    },
    /// `g ← g + λθ`, `G ← G + g²`, `θ ← θ − η g / (√G + ε)` ([`Adagrad`]).
    Adagrad {
        /// η.
        lr: T,
        /// ε.
        eps: T,
        /// λ.
        weight_decay: T,
    },
    /// Adam's update at step t, with the bias corrections `1 − β₁ᵗ` and `1 − β₂ᵗ` ([`Adam`]).
    Adam {
        /// α.
        lr: T,
        /// β₁.
        beta1: T,
        /// β₂.
        beta2: T,
        /// ε.
        eps: T,
        /// λ.
        weight_decay: T,
        /// `1 − β₁ᵗ`.
        bc1: T,
        /// `1 − β₂ᵗ`.
        bc2: T,
    },
}

impl<T: Real> StepRule<T> {
    /// Updates one chunk. `params`, `grads` and `first` (the chunk's first moments) have one
    /// length; `second` (second moments) too for Adam, and is ignored otherwise. Element-wise,
    /// so chunks may be updated in any order or in parallel with the bits of one pass.
    pub fn apply(
        &self,
        params: &mut [T],
        grads: &[T],
        first: &mut [T],
        second: &mut [T],
    ) -> Result<(), Error> {
        self.apply_with(params, grads, first, second, T::sqrt)
    }

    /// [`StepRule::apply`] with the square root given: any correctly rounded one (IEEE 754
    /// `squareRoot`, as [`Real::sqrt`] is) gives the same bits. The host trainer passes std's
    /// `f32::sqrt`, which LLVM vectorizes (`vsqrtps`), where `libm::sqrtf` stays a scalar call.
    pub fn apply_with(
        &self,
        params: &mut [T],
        grads: &[T],
        first: &mut [T],
        second: &mut [T],
        sqrt: impl Fn(T) -> T,
    ) -> Result<(), Error> {
        let n = params.len();
        check_len("grads", n, grads.len())?;
        check_len("optimizer first moments", n, first.len())?;
        match *self {
            StepRule::Sgd {
                lr,
                momentum,
                weight_decay,
            } => {
                for ((p, g), v) in params.iter_mut().zip(grads).zip(first.iter_mut()) {
                    *v = momentum * *v + (*g + weight_decay * *p);
                    *p -= lr * *v;
                }
            }
            StepRule::Adagrad {
                lr,
                eps,
                weight_decay,
            } => {
                for ((p, g), s) in params.iter_mut().zip(grads).zip(first.iter_mut()) {
                    let g = *g + weight_decay * *p;
                    *s += g * g;
                    *p -= lr * g / (sqrt(*s) + eps);
                }
            }
            StepRule::Adam {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
                bc1,
                bc2,
            } => {
                check_len("optimizer second moments", n, second.len())?;
                for (((p, g), m), v) in params
                    .iter_mut()
                    .zip(grads)
                    .zip(first.iter_mut())
                    .zip(second.iter_mut())
                {
                    let g = *g + weight_decay * *p;
                    *m = beta1 * *m + (T::ONE - beta1) * g;
                    *v = beta2 * *v + (T::ONE - beta2) * g * g;
                    let mhat = *m / bc1;
                    let vhat = *v / bc2;
                    *p -= lr * mhat / (sqrt(vhat) + eps);
                }
            }
        }
        Ok(())
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
    fn begin_step(&mut self) -> Result<StepRule<T>, Error> {
        check_lr(self.lr)?;
        Ok(StepRule::Sgd {
            lr: self.lr,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
        })
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
    fn begin_step(&mut self) -> Result<StepRule<T>, Error> {
        check_lr(self.lr)?;
        Ok(StepRule::Adagrad {
            lr: self.lr,
            eps: self.eps,
            weight_decay: self.weight_decay,
        })
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
    fn begin_step(&mut self) -> Result<StepRule<T>, Error> {
        check_lr(self.lr)?;
        self.t += 1;
        let t = self.t as f64;
        Ok(StepRule::Adam {
            lr: self.lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
            bc1: T::from_f64(1.0 - libm::pow(self.beta1.to_f64(), t)),
            bc2: T::from_f64(1.0 - libm::pow(self.beta2.to_f64(), t)),
        })
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
    fn chunked_updates_with_std_sqrt_give_the_bits_of_one_pass() {
        const N: usize = 1000;
        let p0: [f32; N] = core::array::from_fn(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0);
        let g: [f32; N] = core::array::from_fn(|i| ((i * 104_729) % 997) as f32 / 300.0 - 1.6);
        let sgd = Sgd {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 1e-4,
        };
        let adagrad = Adagrad {
            lr: 0.02,
            eps: 1e-10,
            weight_decay: 1e-3,
        };
        let adam = Adam {
            weight_decay: 1e-4,
            ..Adam::new(1e-3)
        };
        let rules = [
            (1, Optimizer::<f32>::begin_step(&mut { sgd }).unwrap()),
            (1, Optimizer::<f32>::begin_step(&mut { adagrad }).unwrap()),
            (2, Optimizer::<f32>::begin_step(&mut { adam }).unwrap()),
        ];
        for (per, rule) in rules {
            let (mut pw, mut sw) = (p0, [0.25f32; 2 * N]);
            let (mut pc, mut sc) = (p0, [0.25f32; 2 * N]);
            for _ in 0..3 {
                let (f, s) = sw[..per * N].split_at_mut(N);
                rule.apply(&mut pw, &g, f, s).unwrap();
                // In chunks, with std's square root (the host trainer's call).
                let (f, s) = sc[..per * N].split_at_mut(N);
                let mut lo = 0;
                for len in [1usize, 7, 256, 300, 436] {
                    let hi = lo + len;
                    let s2 = if per == 2 {
                        &mut s[lo..hi]
                    } else {
                        &mut s[..0]
                    };
                    rule.apply_with(&mut pc[lo..hi], &g[lo..hi], &mut f[lo..hi], s2, f32::sqrt)
                        .unwrap();
                    lo = hi;
                }
                assert_eq!(lo, N);
            }
            let same =
                |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same(&pw, &pc), "{rule:?}");
            assert!(same(&sw, &sc), "{rule:?}");
            assert!(
                pw.iter().zip(&p0).any(|(a, b)| a != b),
                "{rule:?}: nothing moved"
            );
        }
        // Mismatched chunk lengths are errors, not silent partial updates.
        let mut p = [0f32; 4];
        let (f, s) = (&mut [0f32; 4], &mut [0f32; 3]);
        assert!(rules[2].1.apply(&mut p, &g[..4], f, s).is_err());
        assert!(rules[0].1.apply(&mut p, &g[..3], f, &mut []).is_err());
    }

    #[test]
    fn begin_step_refuses_a_bad_step_size_and_counts_adam_steps() {
        let mut adam = Adam::new(f32::NAN);
        assert!(Optimizer::<f32>::begin_step(&mut adam).is_err());
        assert_eq!(adam.t, 0);
        let mut adam = Adam::new(1e-3f32);
        let r1 = adam.begin_step().unwrap();
        let r2 = adam.begin_step().unwrap();
        assert_eq!(adam.t, 2);
        match (r1, r2) {
            (StepRule::Adam { bc1: a, .. }, StepRule::Adam { bc1: b, .. }) => {
                assert!((a - 0.1).abs() < 1e-6 && (b - 0.19).abs() < 1e-6, "{a} {b}");
            }
            _ => panic!("not Adam"),
        }
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
