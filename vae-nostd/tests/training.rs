//! End-to-end training with the core alone: the bound rises, runs are reproducible to the bit,
//! and the trained model scores off-distribution points as anomalous.

mod common;

use common::*;
use rand_core::RngCore;
use vae_nostd::*;

/// 2-D data from a linear-Gaussian model x = w·u + σ·n, u, n ~ N(0, I), w = (2, 1), σ = 0.1:
/// a line the VAE can learn, with a known density N(0, Σ), Σ = wwᵀ + σ²I.
fn line(n: usize, r: &mut impl RngCore) -> Vec<f32> {
    let mut g = vec![0f64; 3 * n];
    rng::fill_standard_normal(r, &mut g);
    g.chunks_exact(3)
        .flat_map(|v| [(2.0 * v[0] + 0.1 * v[1]) as f32, (v[0] + 0.1 * v[2]) as f32])
        .collect()
}

/// E[log N(x; 0, Σ)] under the data distribution: −½ (D ln 2π + ln |Σ| + D).
fn true_mean_log_density() -> f64 {
    let (a, b, c) = (4.0 + 0.01, 2.0, 1.0 + 0.01); // Σ = [[a, b], [b, c]]
    -0.5 * (2.0 * LN_2PI + (a * c - b * b).ln() + 2.0)
}

const CFG: VaeConfig = VaeConfig::new(
    2,
    &[32],
    1,
    Activation::Tanh,
    Likelihood::Gaussian {
        sigmoid_mean: false,
        floor: false,
    },
);
const BATCH: usize = 64;
/// Adagrad steps. Where training ends depends on the seed's ε stream: over seeds 1–100 the
/// test ELBO ends within the 0.5 nat asserted below for 62 seeds after 600 steps and for 97
/// after 2000 (the f32 Box–Muller and the former f64 one alike), so the check does not hinge
/// on one lucky stream.
const STEPS: usize = 2000;

/// Trains `steps` Adagrad steps (the paper's optimizer) from `seed`; returns the parameters.
fn train(seed: u64, steps: usize, data: &[f32]) -> Vec<f32> {
    let mut r = rng(seed);
    let mut p = vec![0f32; CFG.num_params()];
    init_params(&CFG, &mut p, Init::Xavier, &mut r).unwrap();
    let mut g = vec![0f32; p.len()];
    let mut st = vec![0f32; p.len()];
    let mut buf = vec![0f32; CFG.workspace_len(BATCH, 1)];
    let mut opt = Adagrad {
        lr: 0.1,
        eps: 1e-10,
        weight_decay: 0.0,
    };
    let n = data.len() / 2;
    for step in 0..steps {
        let start = (step * BATCH) % (n - BATCH);
        let x = &data[2 * start..2 * (start + BATCH)];
        let mut ws = Workspace::new(&CFG, BATCH, 1, &mut buf).unwrap();
        let vae = Vae::new(CFG, &p).unwrap();
        vae.forward(&Portable, x, BATCH, Objective::paper(), &mut r, &mut ws)
            .unwrap();
        g.iter_mut().for_each(|v| *v = 0.0);
        vae.backward(&Portable, x, &mut g, &mut ws).unwrap();
        opt.step(&mut p, &g, &mut st).unwrap();
    }
    p
}

/// Test-set ELBO (estimator B, L = 10) per datapoint.
fn test_elbo(p: &[f32], x: &[f32]) -> f64 {
    let n = x.len() / 2;
    let mut buf = vec![0f32; CFG.workspace_len(n, 10)];
    let mut ws = Workspace::new(&CFG, n, 10, &mut buf).unwrap();
    let obj = Objective {
        estimator: Estimator::Analytic,
        samples: 10,
        beta: 1.0,
    };
    Vae::new(CFG, p)
        .unwrap()
        .forward(&Portable, x, n, obj, &mut rng(99), &mut ws)
        .unwrap()
        .objective
}

#[test]
fn adagrad_raises_the_bound_near_the_true_density_and_flags_off_line_points() {
    let train_x = line(4096, &mut rng(1));
    let test_x = line(512, &mut rng(2));
    let before = test_elbo(&train(5, 0, &train_x), &test_x);
    let p = train(5, STEPS, &train_x);
    let after = test_elbo(&p, &test_x);
    let truth = true_mean_log_density();
    println!(
        "test ELBO per point: {before:.3} before, {after:.3} after {STEPS} Adagrad steps; true log p(x) {truth:.3}"
    );
    // Stated margins: the bound rises by at least 2 nats per point and ends within 0.5 nat of
    // the true mean log-density (it can never exceed it by more than sampling noise).
    assert!(after > before + 2.0, "{before} -> {after}");
    assert!(
        after > truth - 0.5 && after < truth + 0.05,
        "{after} vs {truth}"
    );

    // Points off the line score above every one of 512 test points from the data.
    let vae = Vae::new(CFG, &p).unwrap();
    let mut buf = vec![0f32; CFG.workspace_len(512, 1)];
    let mut ws = Workspace::new(&CFG, 512, 1, &mut buf).unwrap();
    let mut normal = vec![0f32; 512];
    vae.score(
        &Portable,
        &test_x,
        512,
        ScoreKind::NegElboAtMean,
        &mut rng(0),
        &mut ws,
        &mut normal,
    )
    .unwrap();
    let worst_normal = normal.iter().fold(f32::MIN, |m, v| m.max(*v));
    let odd = [1.0f32, -1.0, -0.5, 1.0, 0.0, 1.5];
    let mut s = [0f32; 3];
    vae.score(
        &Portable,
        &odd,
        3,
        ScoreKind::NegElboAtMean,
        &mut rng(0),
        &mut ws,
        &mut s,
    )
    .unwrap();
    println!("scores: worst normal {worst_normal:.2}, off the line {s:?}");
    assert!(s.iter().all(|v| *v > worst_normal));
}

#[test]
fn the_same_seed_gives_bit_identical_parameters() {
    let x = line(1024, &mut rng(1));
    let a = train(42, 50, &x);
    let b = train(42, 50, &x);
    let c = train(43, 50, &x);
    assert!(a.iter().zip(&b).all(|(u, v)| u.to_bits() == v.to_bits()));
    assert!(a.iter().zip(&c).any(|(u, v)| u.to_bits() != v.to_bits()));
}

#[test]
fn bad_inputs_are_refused_without_touching_anything() {
    let p = params::<f32>(&CFG, 0.1, 1);
    let vae = Vae::new(CFG, &p).unwrap();
    let mut buf = vec![0f32; CFG.workspace_len(2, 1)];
    let mut ws = Workspace::new(&CFG, 2, 1, &mut buf).unwrap();
    let obj = Objective::paper();
    let mut r = rng(0);
    assert_eq!(
        vae.forward(
            &Portable,
            &[0.0, f32::NAN, 1.0, 1.0],
            2,
            obj,
            &mut r,
            &mut ws
        ),
        Err(Error::NonFiniteInput)
    );
    assert!(matches!(
        vae.forward(&Portable, &[0.0, 1.0, 1.0], 2, obj, &mut r, &mut ws),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(
        vae.forward(&Portable, &[0.0; 6], 3, obj, &mut r, &mut ws)
            .is_err()
    );
    let too_many = Objective { samples: 2, ..obj };
    assert!(
        vae.forward(&Portable, &[0.0; 4], 2, too_many, &mut r, &mut ws)
            .is_err()
    );
    let neg_beta = Objective { beta: -1.0, ..obj };
    assert!(
        vae.forward(&Portable, &[0.0; 4], 2, neg_beta, &mut r, &mut ws)
            .is_err()
    );
    let mut g = vec![0f32; p.len()];
    assert_eq!(
        vae.backward(&Portable, &[0.0; 4], &mut g, &mut ws),
        Err(Error::NoForwardPass)
    );
    assert!(g.iter().all(|v| *v == 0.0));
    assert!(Vae::new(CFG, &p[1..]).is_err());
    let mut short = vec![0f32; CFG.workspace_len(2, 1) - 1];
    assert!(matches!(
        Workspace::new(&CFG, 2, 1, &mut short),
        Err(Error::BufferTooSmall { .. })
    ));
    let mut small = vec![0f32; CFG.encode_workspace_len(1)];
    let mut enc = Workspace::for_encoding(&CFG, 1, &mut small).unwrap();
    assert!(vae.encode(&Portable, &[0.5, 0.5], 1, &mut enc).is_ok());
    assert!(
        vae.forward(&Portable, &[0.5, 0.5], 1, obj, &mut r, &mut enc)
            .is_err()
    );
    // A workspace laid out for other dimensions is refused (every pass that takes one); one
    // for the same dimensions serves a model that differs only in activation.
    let wide = VaeConfig {
        encoder_hidden: Hidden::new(&[8]),
        ..CFG
    };
    let mut other_buf = vec![0f32; wide.workspace_len(2, 1)];
    let mut other = Workspace::new(&wide, 2, 1, &mut other_buf).unwrap();
    assert_eq!(
        vae.forward(&Portable, &[0.5; 4], 2, obj, &mut r, &mut other),
        Err(Error::InvalidArgument(
            "workspace was laid out for other dimensions"
        ))
    );
    assert!(vae.encode(&Portable, &[0.5; 4], 2, &mut other).is_err());
    assert!(vae.decode(&Portable, &[0.5; 2], 2, &mut other).is_err());
    let relu = VaeConfig {
        activation: match CFG.activation {
            Activation::Tanh => Activation::Relu,
            _ => Activation::Tanh,
        },
        ..CFG
    };
    assert!(
        Vae::new(relu, &p)
            .unwrap()
            .forward(&Portable, &[0.5; 4], 2, obj, &mut r, &mut ws)
            .is_ok()
    );
    // Extreme but finite parameters overflow exp(): reported, not a panic.
    let huge = vec![1e30f32; p.len()];
    let v = Vae::new(CFG, &huge).unwrap();
    assert_eq!(
        v.forward(&Portable, &[0.5; 4], 2, obj, &mut r, &mut ws),
        Err(Error::NonFiniteLoss)
    );
    assert_eq!(
        v.backward(&Portable, &[0.5; 4], &mut g, &mut ws),
        Err(Error::NoForwardPass)
    );
}
