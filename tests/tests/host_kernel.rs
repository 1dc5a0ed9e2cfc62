//! One math, two shapes: the trainer's blocked kernel on a whole minibatch gives the same
//! bound and gradient as the device's portable kernel run one datapoint at a time.

use host_trainer::kernel::Blocked;
use rand_core::SeedableRng;
use rand_pcg::Pcg64Mcg;
use vae_nostd::*;

fn run<K: Gemm<f32>>(
    k: &K,
    cfg: &VaeConfig,
    p: &[f32],
    x: &[f32],
    n: usize,
    e: &[f32],
) -> (f64, Vec<f32>) {
    let mut buf = vec![0f32; cfg.workspace_len(n, 1)];
    let mut ws = Workspace::new(cfg, n, 1, &mut buf).unwrap();
    let vae = Vae::new(*cfg, p).unwrap();
    let b = vae
        .forward_with_eps(k, x, n, Objective::paper(), e, &mut ws)
        .unwrap();
    let mut g = vec![0f32; p.len()];
    vae.backward(k, x, &mut g, &mut ws).unwrap();
    (b.objective, g)
}

#[test]
fn blocked_minibatch_matches_portable_per_datapoint() {
    for cfg in [
        VaeConfig::new(784, &[500], 20, Activation::Tanh, Likelihood::Bernoulli),
        VaeConfig::new(
            192,
            &[64, 32],
            4,
            Activation::Relu,
            Likelihood::Gaussian {
                sigmoid_mean: false,
                floor: false,
            },
        ),
    ] {
        let n = 32;
        let mut r = Pcg64Mcg::seed_from_u64(3);
        let mut p = vec![0f32; cfg.num_params()];
        init_params(&cfg, &mut p, Init::Xavier, &mut r).unwrap();
        let x: Vec<f32> = (0..n * cfg.input)
            .map(|_| rng::uniform01(&mut r) as f32)
            .collect();
        let mut e = vec![0f32; n * cfg.latent];
        rng::fill_standard_normal(&mut r, &mut e);
        let (ob, gb) = run(&Blocked, &cfg, &p, &x, n, &e);
        let mut op = 0.0;
        let mut gp = vec![0f64; p.len()];
        for b in 0..n {
            let xb = &x[b * cfg.input..(b + 1) * cfg.input];
            let (o, g) = run(
                &Portable,
                &cfg,
                &p,
                xb,
                1,
                &e[b * cfg.latent..(b + 1) * cfg.latent],
            );
            op += o / n as f64;
            gp.iter_mut()
                .zip(&g)
                .for_each(|(a, g)| *a += *g as f64 / n as f64);
        }
        assert!((ob - op).abs() < 1e-5 * op.abs(), "{ob} vs {op}");
        let scale = gp.iter().fold(0.0f64, |m, g| m.max(g.abs()));
        let worst = gb
            .iter()
            .zip(&gp)
            .fold(0.0f64, |m, (a, b)| m.max((*a as f64 - b).abs()));
        println!(
            "{}-{}: objective {ob:.4} vs {op:.4}, worst gradient difference {:.1e} of max |g|",
            cfg.input,
            cfg.latent,
            worst / scale
        );
        assert!(worst < 1e-4 * scale);
    }
}
