// The QEMU smoke program's model and seed (`src/bin/qemu_smoke.rs`), also included by build.rs,
// which initializes the same parameters on the host for machines whose RAM cannot hold them
// (QEMU `microbit`: 16 KiB of RAM, 77 KB of parameters). Plain items, no `mod` or docs of its
// own: the includer wraps it in a module.

use vae_nostd::{Activation, Likelihood, VaeConfig};

/// The model: a 192-sample window, one hidden layer of 32 tanh units, 4 latents, Gaussian
/// decoder with an unsquashed mean.
pub const CFG: VaeConfig = VaeConfig::new(
    192,
    &[32],
    4,
    Activation::Tanh,
    Likelihood::Gaussian {
        sigmoid_mean: false,
        floor: false,
    },
);
/// Seed of the parameter initialization (and of the unused ε stream of the score).
pub const SEED: u64 = 0x5EED;
/// Number of parameters, `CFG.num_params()`.
pub const NUM_PARAMS: usize = CFG.num_params();
