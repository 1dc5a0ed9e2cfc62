//! host-trainer: the laptop side of the toolkit (training CLI arrives with issue 3).

fn main() {
    let cfg = vae_nostd::VaeConfig::new(
        784,
        &[500],
        20,
        vae_nostd::Activation::Tanh,
        vae_nostd::Likelihood::Bernoulli,
    );
    println!(
        "host-trainer: paper MNIST model has {} parameters",
        cfg.num_params()
    );
}
