//! Estimators against closed forms and large-sample Monte Carlo values, and scores against
//! log p(x) computed by quadrature.

mod common;

use common::*;
use vae_nostd::likelihood::log_likelihood;
use vae_nostd::*;

/// Closed-form KL (App. B) against a 10⁶-sample Monte Carlo mean of log q(z) − log p(z),
/// both densities written out in full here; and the library's Monte Carlo KL (estimator A's
/// `kl`) equal to the same mean on the same draws.
#[test]
fn closed_form_kl_matches_a_million_sample_monte_carlo() {
    let mu = [0.3f64, -1.2, 2.0];
    let lv = [-0.5f64, 0.7, -2.0];
    let kl = kl_standard_normal(&mu, &lv);
    let mut r = rng(11);
    let mut e = vec![0.0f64; 3 * 1000];
    let (mut s, mut s2, mut n) = (0.0, 0.0, 0.0);
    for _ in 0..1000 {
        rng::fill_standard_normal(&mut r, &mut e);
        for row in e.chunks_exact(3) {
            let mut v = 0.0;
            for j in 0..3 {
                let z = mu[j] + (0.5 * lv[j]).exp() * row[j];
                let log_q = -0.5 * (LN_2PI + lv[j] + (z - mu[j]).powi(2) / lv[j].exp());
                let log_p = -0.5 * (LN_2PI + z * z);
                v += log_q - log_p;
            }
            s += v;
            s2 += v * v;
            n += 1.0;
        }
    }
    let mean = s / n;
    let se = ((s2 / n - mean * mean) / n).sqrt();
    println!("KL closed form {kl:.6}, Monte Carlo (1e6) {mean:.6} ± {se:.6}");
    assert!((mean - kl).abs() < 4.0 * se, "KL {kl} vs MC {mean} ± {se}");
    assert!(se < 5e-3);
}

#[test]
fn library_monte_carlo_kl_is_the_mean_of_log_q_minus_log_p() {
    let cfg = VaeConfig::new(4, &[5], 3, Activation::Tanh, Likelihood::Bernoulli);
    let p = params::<f64>(&cfg, 0.5, 3);
    let x = data::<f64>(&cfg, 2, 4);
    let l = 5000;
    let e = eps::<f64>(2 * l, 3, 5);
    let a = objective(
        &cfg,
        &p,
        &x,
        2,
        Objective {
            estimator: Estimator::MonteCarlo,
            samples: l,
            beta: 1.0,
        },
        &e,
    )
    .unwrap();
    let b = objective(
        &cfg,
        &p,
        &x,
        2,
        Objective {
            estimator: Estimator::Analytic,
            samples: l,
            beta: 1.0,
        },
        &e,
    )
    .unwrap();
    // Same draws: identical reconstruction terms; KL close at this L; A = rec − MC KL exactly.
    assert_eq!(a.rec, b.rec);
    assert!(
        (a.kl - b.kl).abs() < 0.05 * b.kl.max(0.1),
        "MC KL {} vs closed form {}",
        a.kl,
        b.kl
    );
    assert!((a.objective - (a.rec - a.kl)).abs() < 1e-9);
    assert!((b.objective - b.elbo()).abs() < 1e-12);
}

/// A model with Z = 1, where log p(x) = log ∫ p(x|z) p(z) dz and the ELBO are computed by
/// quadrature on a fine grid, then compared with estimators A and B (10⁵ draws), the
/// importance-weighted −log p̂(x) score (k = 5000) and the IW bound's ordering in k.
#[test]
fn estimators_and_scores_match_quadrature_on_a_one_dimensional_latent() {
    let cfg = VaeConfig::new(3, &[4], 1, Activation::Tanh, Likelihood::Bernoulli);
    let mut p = params::<f64>(&cfg, 0.8, 21);
    // Widen q(z|x) (σ² × e^{1.5}) so that it covers the posterior: importance weights then have
    // light tails and a finite-k estimate is a tight check rather than a noisy one.
    let lvb = (0..cfg.num_tensors())
        .map(|t| cfg.tensor(t).unwrap())
        .find(|t| t.name == "encoder.logvar.bias")
        .unwrap();
    p[lvb.offset] += 1.5;
    let x = [1.0f64, 0.0, 1.0];
    let vae = Vae::new(cfg, &p).unwrap();

    // q(z|x) from the encoder.
    let mut buf = vec![0.0; cfg.workspace_len(1, 1000)];
    let mut ws = Workspace::new(&cfg, 1, 1000, &mut buf).unwrap();
    vae.encode(&Portable, &x, 1, &mut ws).unwrap();
    let (mu, lv) = (ws.head(1)[0], ws.head(1)[1]);

    // Quadrature over z ∈ [−12, 12] with step 1e-3 (the integrands are smooth and negligible
    // beyond): log p(x), E_q[log p(x|z)].
    let (lo, h, pts) = (-12.0f64, 1e-3, 24_001usize);
    let mut logjoint = Vec::with_capacity(pts);
    let mut eq_rec = 0.0;
    let zs: Vec<f64> = (0..pts).map(|i| lo + i as f64 * h).collect();
    for chunk in zs.chunks(1000) {
        vae.decode(&Portable, chunk, chunk.len(), &mut ws).unwrap();
        let out = ws.decoder_output(chunk.len()).to_vec();
        for (z, o) in chunk.iter().zip(out.chunks_exact(3)) {
            let rec = log_likelihood(cfg.likelihood, &x, o);
            let log_prior = -0.5 * (LN_2PI + z * z);
            logjoint.push(rec + log_prior);
            let q = (-0.5 * (LN_2PI + lv + (z - mu).powi(2) / lv.exp())).exp();
            eq_rec += q * rec * h;
        }
    }
    let log_px = log_sum_exp(&logjoint) + h.ln();
    let elbo = eq_rec - kl_standard_normal(&[mu], &[lv]);
    println!("quadrature: log p(x) = {log_px:.6}, ELBO = {elbo:.6}");
    assert!(elbo < log_px);

    // Estimators A and B with 10⁵ draws: a batch of 10⁵ copies of x, L = 1, per-datapoint values.
    let n = 100_000;
    let xs: Vec<f64> = x.iter().copied().cycle().take(3 * n).collect();
    let mut big = vec![0.0; cfg.workspace_len(n, 1)];
    let mut wsb = Workspace::new(&cfg, n, 1, &mut big).unwrap();
    let mut r = rng(5);
    for estimator in [Estimator::Analytic, Estimator::MonteCarlo] {
        let obj = Objective {
            estimator,
            samples: 1,
            beta: 1.0,
        };
        let bound = vae
            .forward(&Portable, &xs, n, obj, &mut r, &mut wsb)
            .unwrap();
        let v = wsb.per_datapoint();
        let var = v.iter().map(|t| (t - bound.objective).powi(2)).sum::<f64>() / n as f64;
        let se = (var / n as f64).sqrt();
        println!("{estimator:?}: {:.6} ± {se:.6}", bound.objective);
        assert!(
            (bound.objective - elbo).abs() < 4.0 * se + 1e-9,
            "{estimator:?} {} vs {elbo}",
            bound.objective
        );
    }

    // −log p̂(x) by importance sampling with k = 5000 (in chunks of the workspace's 1000 draws).
    // p̂(x) = (1/k) Σ w_l is unbiased for p(x): 20 independent estimates with k = 5000 (in
    // chunks of the workspace's 1000 draws), each within 0.05 nats, their mean within 4
    // standard errors of the quadrature value.
    let reps: Vec<f64> = (0..20)
        .map(|_| {
            let mut s = [0.0f64];
            vae.score(
                &Portable,
                &x,
                1,
                ScoreKind::NegLogLikelihood { samples: 5000 },
                &mut r,
                &mut ws,
                &mut s,
            )
            .unwrap();
            assert!(
                (s[0] + log_px).abs() < 0.05,
                "-log p(x): {} vs quadrature {}",
                s[0],
                -log_px
            );
            (-s[0]).exp()
        })
        .collect();
    let px = log_px.exp();
    let mean = reps.iter().sum::<f64>() / 20.0;
    let se = (reps.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 19.0 / 20.0).sqrt();
    println!("IW k=5000: p(x) = {mean:.6} ± {se:.6} (quadrature {px:.6})");
    assert!((mean - px).abs() < 4.0 * se && se < 0.01 * px);

    // The k-sample bound rises with k towards log p(x), in expectation (Burda et al. Thm. 1).
    let mut means = Vec::new();
    for k in [1usize, 5, 50] {
        let reps = 4000;
        let mut acc = 0.0;
        for _ in 0..reps / 1000 {
            let xs: Vec<f64> = x.iter().copied().cycle().take(3 * 1000).collect();
            let mut bk = vec![0.0; cfg.workspace_len(1000, k)];
            let mut wk = Workspace::new(&cfg, 1000, k, &mut bk).unwrap();
            let obj = Objective {
                estimator: Estimator::ImportanceWeighted,
                samples: k,
                beta: 1.0,
            };
            acc += vae
                .forward(&Portable, &xs, 1000, obj, &mut r, &mut wk)
                .unwrap()
                .objective;
        }
        means.push(acc / (reps / 1000) as f64);
    }
    println!("IW bound for k = 1, 5, 50: {means:?}");
    assert!(means[0] < means[1] && means[1] < means[2] && means[2] < log_px + 1e-3);
    assert!((means[0] - elbo).abs() < 0.04); // 4 standard errors at 4000 draws
}

#[test]
fn importance_weighted_with_one_sample_is_estimator_a() {
    let cfg = VaeConfig::new(
        5,
        &[4],
        2,
        Activation::Relu,
        Likelihood::Gaussian {
            sigmoid_mean: false,
            floor: false,
        },
    );
    let p = params::<f64>(&cfg, 0.5, 1);
    let x = data::<f64>(&cfg, 3, 2);
    let e = eps::<f64>(3, 2, 3);
    let a = objective(
        &cfg,
        &p,
        &x,
        3,
        Objective {
            estimator: Estimator::MonteCarlo,
            samples: 1,
            beta: 1.0,
        },
        &e,
    )
    .unwrap();
    let iw = objective(
        &cfg,
        &p,
        &x,
        3,
        Objective {
            estimator: Estimator::ImportanceWeighted,
            samples: 1,
            beta: 1.0,
        },
        &e,
    )
    .unwrap();
    assert!((a.objective - iw.objective).abs() < 1e-12);
}

/// −ELBO at z = μ equals KL − log p(x|μ), assembled here from `encode`, `decode` and the
/// likelihood; the sampled scores are finite and ordered as bounds must be.
#[test]
fn scores_agree_with_their_definitions() {
    let cfg = VaeConfig::new(
        6,
        &[8],
        2,
        Activation::Tanh,
        Likelihood::Gaussian {
            sigmoid_mean: true,
            floor: false,
        },
    );
    let p = params::<f64>(&cfg, 0.5, 31);
    let x = data::<f64>(&cfg, 2, 32);
    let vae = Vae::new(cfg, &p).unwrap();
    let mut buf = vec![0.0; cfg.workspace_len(2, 16)];
    let mut ws = Workspace::new(&cfg, 2, 16, &mut buf).unwrap();
    let mut s = [0.0; 2];
    let mut r = rng(1);
    vae.score(
        &Portable,
        &x,
        2,
        ScoreKind::NegElboAtMean,
        &mut r,
        &mut ws,
        &mut s,
    )
    .unwrap();
    for b in 0..2 {
        vae.encode(&Portable, &x[b * 6..(b + 1) * 6], 1, &mut ws)
            .unwrap();
        let h = ws.head(1).to_vec();
        let kl = kl_standard_normal(&h[..2], &h[2..]);
        vae.decode(&Portable, &h[..2], 1, &mut ws).unwrap();
        let rec = log_likelihood(cfg.likelihood, &x[b * 6..(b + 1) * 6], ws.decoder_output(1));
        assert!(
            (s[b] - (kl - rec)).abs() < 1e-12,
            "{} vs {}",
            s[b],
            kl - rec
        );
    }
    let mut nll = [0.0; 2];
    let mut nelbo = [0.0; 2];
    let mut recp = [0.0; 2];
    vae.score(
        &Portable,
        &x,
        2,
        ScoreKind::NegLogLikelihood { samples: 2000 },
        &mut r,
        &mut ws,
        &mut nll,
    )
    .unwrap();
    vae.score(
        &Portable,
        &x,
        2,
        ScoreKind::NegElbo { samples: 2000 },
        &mut r,
        &mut ws,
        &mut nelbo,
    )
    .unwrap();
    vae.score(
        &Portable,
        &x,
        2,
        ScoreKind::ReconstructionProbability { samples: 2000 },
        &mut r,
        &mut ws,
        &mut recp,
    )
    .unwrap();
    for b in 0..2 {
        // −log p(x) ≤ −ELBO; −ELBO = −E[log p(x|z)] + KL ≥ −E[log p(x|z)].
        assert!(
            nll[b] < nelbo[b] && recp[b] < nelbo[b],
            "{nll:?} {nelbo:?} {recp:?}"
        );
    }
    let bad = vae.score(
        &Portable,
        &x,
        2,
        ScoreKind::NegElbo { samples: 0 },
        &mut r,
        &mut ws,
        &mut nll,
    );
    assert!(bad.is_err());
}
