//! # vae-nostd — Auto-Encoding Variational Bayes for microcontrollers
//!
//! The model and training algorithm of Kingma & Welling, *Auto-Encoding Variational Bayes*
//! (ICLR 2014), written once for a Cortex-M with no allocator and for a multithreaded laptop
//! trainer.
//!
//! ## The pipeline
//! 1. **Configuration** ([`VaeConfig`], all `const fn`): input D, one to three hidden layers
//!    per network, latent Z, tanh or ReLU, Bernoulli or Gaussian decoder (App. C). It fixes the
//!    flat parameter layout (each layer `W [out][in]`, `b [out]`, PyTorch's `nn.Linear`
//!    convention) and every buffer size, so firmware sizes its statics at compile time
//!    ([`Buffer`], [`VaeConfig::memory`]).
//! 2. **Initialization** ([`init_params`]): N(0, 0.01²) as in the paper, or Xavier/He, seeded.
//! 3. **Forward** ([`Vae::forward`]): the encoder MLP gives μ and log σ² of q_φ(z|x); ε ~ N(0, I)
//!    (Box–Muller, [`rng`]) or a caller's ε gives z = μ + σ ⊙ ε (§2.4); the decoder MLP gives
//!    p_θ(x|z); an [`Estimator`] of the lower bound is averaged over the minibatch: B (analytic
//!    KL, eq. 10), A (Monte Carlo, eq. 6) or the importance-weighted bound (Burda et al. 2015),
//!    with L draws per datapoint and an optional β on the KL.
//! 4. **Backward** ([`Vae::backward`]): the hand-written gradient of −bound with respect to every
//!    parameter, layer by layer ([`layers`]), added into a gradient vector of the same layout.
//! 5. **Update** ([`optim`]): Adagrad (the paper's), Adam or SGD with momentum, one flat loop,
//!    refusing non-finite gradients.
//! 6. **Scores** ([`Vae::score`]): −ELBO at z = μ or sampled, −log p̂(x) by importance sampling,
//!    and the reconstruction probability of An & Cho (2015).
//!
//! ## One math, two shapes
//! Every layer is a matrix product over row-major slices through the [`Gemm`] trait. The
//! firmware calls it with one row (a matrix-vector product, [`Portable`] kernel, sizes fixed at
//! compile time); the trainer with hundreds of rows and a blocked kernel, sizes chosen at run
//! time. Transcendentals come from `libm`, so host and device agree bit for bit with the same
//! kernel.
//!
//! ## Example: one training step
//! ```
//! use rand_core::SeedableRng;
//! use vae_nostd::*;
//! const CFG: VaeConfig = VaeConfig::new(4, &[8], 2, Activation::Tanh, Likelihood::Bernoulli);
//! const P: usize = CFG.num_params();
//! let (mut params, mut grads, mut state) = ([0f32; P], [0f32; P], [0f32; P]);
//! let mut buf = [0f32; CFG.workspace_len(2, 1)]; // batch of 2, L = 1
//! let mut rng = rand_pcg::Pcg32::seed_from_u64(1);
//! init_params(&CFG, &mut params, Init::PAPER, &mut rng).unwrap();
//! let x = [1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0]; // two datapoints, D = 4
//! let mut opt = Adagrad { lr: 0.02, eps: 1e-10, weight_decay: 0.0 };
//! let mut ws = Workspace::new(&CFG, 2, 1, &mut buf).unwrap();
//! let vae = Vae::new(CFG, &params).unwrap();
//! let bound = vae.forward(&Portable, &x, 2, Objective::paper(), &mut rng, &mut ws).unwrap();
//! vae.backward(&Portable, &x, &mut grads, &mut ws).unwrap();
//! opt.step(&mut params, &grads, &mut state).unwrap();
//! assert!(bound.objective < 0.0 && bound.kl >= 0.0);
//! ```
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod calibration;
mod config;
mod error;
pub mod fastmath;
mod init;
pub mod kernel;
pub mod layers;
pub mod likelihood;
mod model;
pub mod modelfile;
pub mod optim;
pub mod quant;
mod real;
pub mod rng;
mod score;
pub mod seed;
mod storage;
mod window;

pub use config::{
    Activation, Hidden, Likelihood, LinearShape, MAX_DIM, MAX_HIDDEN, MemoryFigures, Net,
    TensorInfo, VaeConfig, WorkspaceLayout,
};
pub use error::Error;
pub use init::{Init, init_params};
pub use kernel::{Gemm, MatMut, MatRef, Portable};
pub use model::{Bound, Estimator, Objective, Vae, Workspace, kl_standard_normal, log_sum_exp};
pub use optim::{Adagrad, Adam, Optimizer, OptimizerKind, Sgd, StepRule};
pub use real::{LN_2PI, Real};
pub use score::ScoreKind;
pub use storage::Buffer;
pub use window::window_label;
