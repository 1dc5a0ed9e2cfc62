//! Finite-difference checks, in f64, of the hand-written gradient of every estimator with
//! respect to every parameter tensor.

mod common;

/// Largest relative error accepted.
const TOL: f64 = 1e-7;

use common::*;
use vae_nostd::*;

/// Fourth-order central differences (f(−2h), f(−h), f(h), f(2h); truncation O(h⁴)) with
/// h = 1e-4 on every parameter; returns the worst relative error
/// |analytic − numeric| / max(1e-3, |analytic|, |numeric|) per named tensor, and overall.
fn check(cfg: &VaeConfig, obj: Objective<f64>, n: usize, seed: u64) -> f64 {
    let p = params::<f64>(cfg, 0.4, seed);
    let x = data::<f64>(cfg, n, seed + 1);
    let e = eps::<f64>(n * obj.samples, cfg.latent, seed + 2);
    let (_, g) = gradient(cfg, &p, &x, n, obj, &e);
    let loss = |q: &[f64]| -objective(cfg, q, &x, n, obj, &e).unwrap().objective;
    let h = 1e-4;
    let mut worst = 0.0f64;
    for t in 0..cfg.num_tensors() {
        let info = cfg.tensor(t).unwrap();
        let mut worst_t = 0.0f64;
        for i in info.offset..info.offset + info.len() {
            let mut q = p.clone();
            let mut at = |d: f64| {
                q[i] = p[i] + d;
                loss(&q)
            };
            let num = (at(-2.0 * h) - 8.0 * at(-h) + 8.0 * at(h) - at(2.0 * h)) / (12.0 * h);
            let rel = (g[i] - num).abs() / g[i].abs().max(num.abs()).max(1e-3);
            worst_t = worst_t.max(rel);
        }
        assert!(
            worst_t < TOL,
            "{cfg:?} {obj:?}: tensor {} relative error {worst_t:.3e}",
            info.name
        );
        worst = worst.max(worst_t);
    }
    worst
}

fn configs() -> [(&'static str, VaeConfig); 4] {
    [
        (
            "bernoulli tanh 1 hidden",
            VaeConfig::new(6, &[5], 3, Activation::Tanh, Likelihood::Bernoulli),
        ),
        (
            "gaussian relu 2 hidden, other decoder",
            VaeConfig::new(
                5,
                &[7, 4],
                2,
                Activation::Relu,
                Likelihood::Gaussian {
                    sigmoid_mean: false,
                    floor: false,
                },
            )
            .with_decoder_hidden(&[3]),
        ),
        (
            "gaussian sigmoid-mean tanh 3 hidden",
            VaeConfig::new(
                4,
                &[6, 5, 3],
                2,
                Activation::Tanh,
                Likelihood::Gaussian {
                    sigmoid_mean: true,
                    floor: false,
                },
            ),
        ),
        (
            "bernoulli relu 3 hidden",
            VaeConfig::new(5, &[6, 4, 4], 2, Activation::Relu, Likelihood::Bernoulli),
        ),
    ]
}

fn objectives() -> [Objective<f64>; 6] {
    [
        Objective {
            estimator: Estimator::Analytic,
            samples: 1,
            beta: 1.0,
        },
        Objective {
            estimator: Estimator::Analytic,
            samples: 3,
            beta: 0.5,
        },
        Objective {
            estimator: Estimator::MonteCarlo,
            samples: 1,
            beta: 1.0,
        },
        Objective {
            estimator: Estimator::MonteCarlo,
            samples: 3,
            beta: 2.0,
        },
        Objective {
            estimator: Estimator::ImportanceWeighted,
            samples: 5,
            beta: 1.0,
        },
        Objective {
            estimator: Estimator::ImportanceWeighted,
            samples: 4,
            beta: 0.25,
        },
    ]
}

#[test]
fn every_parameter_tensor_matches_finite_differences() {
    let mut worst = 0.0f64;
    for (ci, (name, cfg)) in configs().iter().enumerate() {
        for (oi, obj) in objectives().iter().enumerate() {
            let w = check(cfg, *obj, 3, (100 * ci + 10 * oi) as u64);
            println!(
                "{name:40} {:?} L={} beta={}: worst relative error {w:.2e}",
                obj.estimator, obj.samples, obj.beta
            );
            worst = worst.max(w);
        }
    }
    println!("gradient check: worst relative error over all tensors {worst:.2e}");
}

#[test]
fn batched_gradient_is_the_mean_of_per_sample_gradients() {
    for (_, cfg) in configs() {
        for obj in objectives() {
            let n = 4;
            let p = params::<f64>(&cfg, 0.4, 7);
            let x = data::<f64>(&cfg, n, 8);
            let e = eps::<f64>(n * obj.samples, cfg.latent, 9);
            let (bb, gb) = gradient(&cfg, &p, &x, n, obj, &e);
            let mut mean = vec![0.0; gb.len()];
            let mut obj_mean = 0.0;
            let zl = obj.samples * cfg.latent;
            for b in 0..n {
                let (bs, gs) = gradient(
                    &cfg,
                    &p,
                    &x[b * cfg.input..(b + 1) * cfg.input],
                    1,
                    obj,
                    &e[b * zl..(b + 1) * zl],
                );
                obj_mean += bs.objective / n as f64;
                mean.iter_mut()
                    .zip(&gs)
                    .for_each(|(m, g)| *m += g / n as f64);
            }
            assert!((bb.objective - obj_mean).abs() < 1e-12 * obj_mean.abs().max(1.0));
            for (a, b) in gb.iter().zip(&mean) {
                assert!((a - b).abs() <= 1e-12 * a.abs().max(1.0), "{a} vs {b}");
            }
        }
    }
}

#[test]
fn batched_and_per_sample_paths_agree_in_f32() {
    let cfg = VaeConfig::new(16, &[12], 3, Activation::Tanh, Likelihood::Bernoulli);
    let obj = Objective::<f32>::paper();
    let n = 8;
    let p = params::<f32>(&cfg, 0.3, 1);
    let x = data::<f32>(&cfg, n, 2);
    let e = eps::<f32>(n, cfg.latent, 3);
    let (bb, gb) = gradient(&cfg, &p, &x, n, obj, &e);
    let mut mean = vec![0.0f64; gb.len()];
    let mut obj_mean = 0.0;
    for b in 0..n {
        let (bs, gs) = gradient(
            &cfg,
            &p,
            &x[b * 16..(b + 1) * 16],
            1,
            obj,
            &e[b * 3..(b + 1) * 3],
        );
        obj_mean += bs.objective / n as f64;
        mean.iter_mut()
            .zip(&gs)
            .for_each(|(m, g)| *m += *g as f64 / n as f64);
    }
    assert!((bb.objective - obj_mean).abs() < 1e-5 * obj_mean.abs());
    let scale = gb.iter().fold(0.0f64, |m, g| m.max((*g as f64).abs()));
    for (a, b) in gb.iter().zip(&mean) {
        assert!((*a as f64 - b).abs() <= 1e-5 * scale, "{a} vs {b}");
    }
}

#[test]
fn backward_set_writes_what_backward_adds_to_zero() {
    for (_, cfg) in configs() {
        let obj = Objective {
            estimator: Estimator::ImportanceWeighted,
            samples: 3,
            beta: 0.5,
        };
        let p = params::<f64>(&cfg, 0.4, 5);
        let x = data::<f64>(&cfg, 2, 6);
        let e = eps::<f64>(6, cfg.latent, 7);
        let (_, added) = gradient(&cfg, &p, &x, 2, obj, &e);
        let mut buf = vec![0.0; cfg.workspace_len(2, 3)];
        let mut ws = Workspace::new(&cfg, 2, 3, &mut buf).unwrap();
        let vae = Vae::new(cfg, &p).unwrap();
        vae.forward_with_eps(&Portable, &x, 2, obj, &e, &mut ws)
            .unwrap();
        let mut set = vec![f64::NAN; cfg.num_params()]; // garbage that must be overwritten
        vae.backward_set(&Portable, &x, &mut set, &mut ws).unwrap();
        assert!(set.iter().zip(&added).all(|(a, b)| a == b));
    }
}

/// On-device adaptation's gradient: for every decoder layer `from`, the parameters from it on
/// held in a separate slice ([`Vae::with_decoder_suffix`]) give the same bound as the plain
/// model, their gradient ([`Vae::backward_decoder_suffix`]) equals that range of the full
/// gradient bit for bit (checked against finite differences above), and finite differences
/// taken on the *suffix slice* match it (so the forward pass reads the suffix, not the base).
#[test]
fn decoder_suffix_gradient_is_the_full_gradient_s_range_and_matches_finite_differences() {
    for (name, cfg) in configs() {
        for obj in objectives() {
            let n = 2;
            let p = params::<f64>(&cfg, 0.4, 11);
            let x = data::<f64>(&cfg, n, 12);
            let e = eps::<f64>(n * obj.samples, cfg.latent, 13);
            let (full_bound, full) = gradient(&cfg, &p, &x, n, obj, &e);
            for from in 0..=cfg.decoder_hidden.len() {
                let at = cfg.decoder_suffix_offset(from).unwrap();
                // The base's suffix range is garbage: only the suffix slice may be read.
                let mut base = p.clone();
                base[at..].iter_mut().for_each(|v| *v = f64::NAN);
                let suffix = p[at..].to_vec();
                let run = |sfx: &[f64], grads: Option<&mut [f64]>| {
                    let mut buf = vec![0.0; cfg.workspace_len(n, obj.samples)];
                    let mut ws = Workspace::new(&cfg, n, obj.samples, &mut buf).unwrap();
                    let vae = Vae::with_decoder_suffix(cfg, &base, from, sfx).unwrap();
                    let b = vae
                        .forward_with_eps(&Portable, &x, n, obj, &e, &mut ws)
                        .unwrap();
                    if let Some(g) = grads {
                        vae.backward_decoder_suffix(&Portable, &x, from, g, &mut ws)
                            .unwrap();
                    }
                    b.objective
                };
                assert_eq!(cfg.decoder_suffix_params(from), p.len() - at);
                let mut g = vec![f64::NAN; p.len() - at];
                let b = run(&suffix, Some(&mut g));
                assert_eq!(b.to_bits(), full_bound.objective.to_bits(), "{name} {from}");
                assert!(
                    g.iter()
                        .zip(&full[at..])
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{name} {obj:?} from {from}"
                );
                let h = 1e-4;
                for i in 0..suffix.len() {
                    let mut q = suffix.clone();
                    let mut f = |d: f64| {
                        q[i] = suffix[i] + d;
                        -run(&q, None)
                    };
                    let num = (f(-2.0 * h) - 8.0 * f(-h) + 8.0 * f(h) - f(2.0 * h)) / (12.0 * h);
                    let rel = (g[i] - num).abs() / g[i].abs().max(num.abs()).max(1e-3);
                    assert!(rel < TOL, "{name} {obj:?} from {from} [{i}]: {rel:.3e}");
                }
            }
        }
    }
}

#[test]
fn decoder_suffix_refuses_bad_layers_and_lengths() {
    let (_, cfg) = configs()[1];
    let p = params::<f64>(&cfg, 0.4, 1);
    let last = cfg.decoder_hidden.len();
    assert!(cfg.decoder_suffix_offset(last + 1).is_err());
    assert_eq!(cfg.decoder_suffix_params(last + 1), 0);
    let at = cfg.decoder_suffix_offset(last).unwrap();
    assert!(Vae::with_decoder_suffix(cfg, &p, last, &p[at + 1..]).is_err());
    assert!(Vae::with_decoder_suffix(cfg, &p, last + 1, &p[at..]).is_err());
    let x = data::<f64>(&cfg, 1, 2);
    let mut buf = vec![0.0; cfg.workspace_len(1, 1)];
    let mut ws = Workspace::new(&cfg, 1, 1, &mut buf).unwrap();
    let vae = Vae::with_decoder_suffix(cfg, &p, last, &p[at..]).unwrap();
    let mut g = vec![0.0; p.len() - at];
    // No forward pass yet.
    assert!(
        vae.backward_decoder_suffix(&Portable, &x, last, &mut g, &mut ws)
            .is_err()
    );
}

/// The smallest adaptation set: the decoder output layer's bias held apart
/// ([`Vae::with_decoder_output_bias`]) gives the plain model's bound, its gradient
/// ([`Vae::backward_decoder_output_bias`]) equals that range of the full gradient bit for bit,
/// and finite differences on the separate bias slice match it.
#[test]
fn decoder_output_bias_gradient_is_the_full_gradient_s_range_and_matches_finite_differences() {
    for (name, cfg) in configs() {
        for obj in objectives() {
            let n = 2;
            let p = params::<f64>(&cfg, 0.4, 21);
            let x = data::<f64>(&cfg, n, 22);
            let e = eps::<f64>(n * obj.samples, cfg.latent, 23);
            let (full_bound, full) = gradient(&cfg, &p, &x, n, obj, &e);
            let dout = cfg.decoder_out();
            let at = p.len() - dout; // the output bias is the last tensor
            let mut base = p.clone();
            base[at..].iter_mut().for_each(|v| *v = f64::NAN);
            let bias = p[at..].to_vec();
            let run = |b: &[f64], grads: Option<&mut [f64]>| {
                let mut buf = vec![0.0; cfg.workspace_len(n, obj.samples)];
                let mut ws = Workspace::new(&cfg, n, obj.samples, &mut buf).unwrap();
                let vae = Vae::with_decoder_output_bias(cfg, &base, b).unwrap();
                let r = vae
                    .forward_with_eps(&Portable, &x, n, obj, &e, &mut ws)
                    .unwrap();
                if let Some(g) = grads {
                    vae.backward_decoder_output_bias(&x, g, &mut ws).unwrap();
                }
                r.objective
            };
            let mut g = vec![f64::NAN; dout];
            let b = run(&bias, Some(&mut g));
            assert_eq!(b.to_bits(), full_bound.objective.to_bits(), "{name}");
            assert!(
                g.iter()
                    .zip(&full[at..])
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{name} {obj:?}"
            );
            let h = 1e-4;
            for i in 0..dout {
                let mut q = bias.clone();
                let mut f = |d: f64| {
                    q[i] = bias[i] + d;
                    -run(&q, None)
                };
                let num = (f(-2.0 * h) - 8.0 * f(-h) + 8.0 * f(h) - f(2.0 * h)) / (12.0 * h);
                let rel = (g[i] - num).abs() / g[i].abs().max(num.abs()).max(1e-3);
                assert!(rel < TOL, "{name} {obj:?} [{i}]: {rel:.3e}");
            }
        }
    }
    let (_, cfg) = configs()[0];
    let p = params::<f64>(&cfg, 0.4, 1);
    assert!(Vae::with_decoder_output_bias(cfg, &p, &p[..cfg.decoder_out() - 1]).is_err());
}
