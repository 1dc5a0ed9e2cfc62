//! Prints the memory figures of two reference models: `cargo run -p vae-nostd --example memory`.

use vae_nostd::{Activation, Likelihood, OptimizerKind, VaeConfig};

/// The paper's MNIST model (App. C.1, §5: 500 hidden units, Nz = 20, Bernoulli decoder).
const MNIST: VaeConfig = VaeConfig::new(784, &[500], 20, Activation::Tanh, Likelihood::Bernoulli);
/// A sensor model: 64-sample windows of a 3-axis accelerometer, 32 hidden units, Z = 4.
const SENSOR: VaeConfig = VaeConfig::new(
    192,
    &[32],
    4,
    Activation::Tanh,
    Likelihood::Gaussian {
        sigmoid_mean: false,
        floor: false,
    },
);

fn main() {
    println!(
        "{:<22} {:>9} {:>12} {:>12} {:>14} {:>16} {:>14}",
        "model (f32)",
        "params",
        "params B",
        "grads B",
        "Adagrad/Adam B",
        "train act. B",
        "encode act. B"
    );
    for (name, cfg, batch) in [
        ("784-500-20 (MNIST)", MNIST, 100),
        ("192-32-4 (sensor)", SENSOR, 1),
    ] {
        let a = cfg.memory::<f32>(batch, 1, OptimizerKind::Adagrad);
        let b = cfg.memory::<f32>(batch, 1, OptimizerKind::Adam);
        println!(
            "{:<22} {:>9} {:>12} {:>12} {:>14} {:>16} {:>14}",
            name,
            cfg.num_params(),
            a.params,
            a.grads,
            format!("{}/{}", a.optimizer_state, b.optimizer_state),
            format!("{} (B={batch})", a.train_activations),
            a.encode_activations
        );
    }
}
