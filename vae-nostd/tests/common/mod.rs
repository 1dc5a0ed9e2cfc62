//! Helpers shared by the integration tests.
#![allow(dead_code)]

use rand_core::SeedableRng;
use rand_pcg::Pcg64Mcg;
use vae_nostd::*;

pub fn rng(seed: u64) -> Pcg64Mcg {
    Pcg64Mcg::seed_from_u64(seed)
}

/// Parameters drawn from N(0, std²) (biases too), as a Vec.
pub fn params<T: Real>(cfg: &VaeConfig, std: f64, seed: u64) -> Vec<T> {
    let mut p = vec![T::ZERO; cfg.num_params()];
    init_params(cfg, &mut p, Init::Normal { std }, &mut rng(seed)).unwrap();
    p
}

/// Data suited to the likelihood: fractions in (0, 1) for Bernoulli, reals otherwise.
pub fn data<T: Real>(cfg: &VaeConfig, n: usize, seed: u64) -> Vec<T> {
    let mut r = rng(seed);
    (0..n * cfg.input)
        .map(|_| {
            let u = rng::uniform01(&mut r);
            T::from_f64(match cfg.likelihood {
                Likelihood::Bernoulli => 0.05 + 0.9 * u,
                Likelihood::Gaussian {
                    sigmoid_mean: true, ..
                } => u,
                Likelihood::Gaussian {
                    sigmoid_mean: false,
                    ..
                } => 3.0 * u - 1.5,
            })
        })
        .collect()
}

pub fn eps<T: Real>(rows: usize, z: usize, seed: u64) -> Vec<T> {
    let mut e = vec![T::ZERO; rows * z];
    rng::fill_standard_normal(&mut rng(seed), &mut e);
    e
}

/// Runs forward with given ε and returns the objective, or the error.
pub fn objective<T: Real>(
    cfg: &VaeConfig,
    p: &[T],
    x: &[T],
    n: usize,
    obj: Objective<T>,
    e: &[T],
) -> Result<Bound, Error> {
    let mut buf = vec![T::ZERO; cfg.workspace_len(n, obj.samples)];
    let mut ws = Workspace::new(cfg, n, obj.samples, &mut buf)?;
    Vae::new(*cfg, p)?.forward_with_eps(&Portable, x, n, obj, e, &mut ws)
}

/// Forward + backward: (bound, gradient of −objective).
pub fn gradient<T: Real>(
    cfg: &VaeConfig,
    p: &[T],
    x: &[T],
    n: usize,
    obj: Objective<T>,
    e: &[T],
) -> (Bound, Vec<T>) {
    let mut buf = vec![T::ZERO; cfg.workspace_len(n, obj.samples)];
    let mut ws = Workspace::new(cfg, n, obj.samples, &mut buf).unwrap();
    let vae = Vae::new(*cfg, p).unwrap();
    let b = vae
        .forward_with_eps(&Portable, x, n, obj, e, &mut ws)
        .unwrap();
    let mut g = vec![T::ZERO; cfg.num_params()];
    vae.backward(&Portable, x, &mut g, &mut ws).unwrap();
    (b, g)
}
