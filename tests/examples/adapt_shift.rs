//! Measurement behind on-device adaptation's design (issue 10): the committed default model,
//! trained on the default simulated machine, deployed on a shifted one (more sensor noise,
//! stronger vibration, a faster shaft). For each shift it prints ROC AUC and the false-alarm
//! rate on 1,500 windows of the shifted machine (10 % of samples in anomaly episodes) before
//! and after adapting only the decoder output layer's bias (384 values: the RAM-sized set,
//! `Vae::with_decoder_output_bias`) with Adam (2·10⁻³, 2,000 single-window steps on 400
//! normal windows), at the model file's threshold and at a threshold recalibrated on 200
//! normal windows (k = 2, the firmware's rule at 1 %).
//!
//! `cargo run --release -p vae-tests --example adapt_shift`
use rand_core::SeedableRng;
use rand_pcg::Pcg32;
use vae_nostd::modelfile::ModelFile;
use vae_nostd::*;
use vae_sim::{SimConfig, Simulator};

const MODEL: &[u8] = include_bytes!("../../firmware/models/default.vaem");
const W: usize = 64;
const D: usize = 192;

fn windows(cfg: SimConfig, n: usize, off: &[f32], sc: &[f32]) -> (Vec<f32>, Vec<u8>) {
    let mut sim = Simulator::new(cfg).unwrap();
    let (mut xs, mut ls) = (Vec::new(), Vec::new());
    let mut labels = [0u8; W];
    for _ in 0..n {
        let mut x = [0f32; D];
        let l = sim.fill_window(&mut x, &mut labels).unwrap();
        for i in 0..D {
            x[i] = (x[i] - off[i]) * sc[i];
        }
        xs.extend_from_slice(&x);
        ls.push(l);
    }
    (xs, ls)
}

fn scores(cfg: VaeConfig, p: &[f32], bias: Option<&[f32]>, x: &[f32]) -> Vec<f32> {
    let n = x.len() / D;
    let vae = match bias {
        Some(b) => Vae::with_decoder_output_bias(cfg, p, b).unwrap(),
        None => Vae::new(cfg, p).unwrap(),
    };
    let mut buf = vec![0f32; cfg.workspace_len(1, 1)];
    let mut out = vec![0f32; n];
    let mut rng = Pcg32::seed_from_u64(1);
    for i in 0..n {
        let mut ws = Workspace::new(&cfg, 1, 1, &mut buf).unwrap();
        vae.score(
            &Portable,
            &x[i * D..(i + 1) * D],
            1,
            ScoreKind::NegElboAtMean,
            &mut rng,
            &mut ws,
            &mut out[i..i + 1],
        )
        .unwrap();
    }
    out
}

fn auc(s: &[f32], l: &[u8]) -> f64 {
    let (mut pos, mut neg) = (vec![], vec![]);
    for (v, k) in s.iter().zip(l) {
        if *k != 0 { pos.push(*v) } else { neg.push(*v) }
    }
    let mut c = 0.0;
    for a in &pos {
        for b in &neg {
            c += if a > b {
                1.0
            } else if a == b {
                0.5
            } else {
                0.0
            };
        }
    }
    c / (pos.len() * neg.len()) as f64
}

fn fa(s: &[f32], l: &[u8], t: f32) -> f64 {
    let n: Vec<_> = s.iter().zip(l).filter(|(_, k)| **k == 0).collect();
    n.iter().filter(|(v, _)| **v > t).count() as f64 / n.len() as f64
}

fn main() {
    let f = ModelFile::parse(MODEL).unwrap();
    let cfg = f.config();
    let mut p = vec![0f32; cfg.num_params()];
    f.copy_params(&mut p).unwrap();
    let (mut off, mut sc) = (vec![0f32; D], vec![0f32; D]);
    f.copy_normalization(&mut off, &mut sc).unwrap();
    let thr = f.threshold().unwrap();
    let shifts: [(&str, SimConfig); 3] = [
        (
            "noise 8->14 mg",
            SimConfig {
                noise_mg: 14.0,
                ..SimConfig::default()
            },
        ),
        (
            "vibration x1.4",
            SimConfig {
                vibration_mg: SimConfig::default().vibration_mg * 1.4,
                ..SimConfig::default()
            },
        ),
        (
            "shaft 25->27 Hz",
            SimConfig {
                shaft_hz: 27.0,
                ..SimConfig::default()
            },
        ),
    ];
    for (name, b) in shifts {
        let adapt_cfg = SimConfig {
            anomaly_rate: 0.0,
            seed: 11,
            ..b
        };
        let eval_cfg = SimConfig {
            anomaly_rate: 0.1,
            seed: 12,
            ..b
        };
        let calib_cfg = SimConfig {
            anomaly_rate: 0.0,
            seed: 13,
            ..b
        };
        let (xa, _) = windows(adapt_cfg, 400, &off, &sc);
        let (xe, le) = windows(eval_cfg, 1500, &off, &sc);
        let (xc, _) = windows(calib_cfg, 200, &off, &sc);
        let s0 = scores(cfg, &p, None, &xe);
        let dout = cfg.decoder_out();
        let mut bias = p[p.len() - dout..].to_vec();
        let mut st = vec![0f32; 2 * dout];
        let mut adam = Adam::new(2e-3f32);
        let mut g = vec![0f32; dout];
        let mut buf = vec![0f32; cfg.workspace_len(1, 1)];
        let mut rng = Pcg32::seed_from_u64(5);
        for step in 0..2000 {
            let i = step % 400;
            let x = &xa[i * D..(i + 1) * D];
            {
                let vae = Vae::with_decoder_output_bias(cfg, &p, &bias).unwrap();
                let mut ws = Workspace::new(&cfg, 1, 1, &mut buf).unwrap();
                let obj = Objective {
                    estimator: Estimator::Analytic,
                    samples: 1,
                    beta: 1.0,
                };
                vae.forward(&Portable, x, 1, obj, &mut rng, &mut ws)
                    .unwrap();
                vae.backward_decoder_output_bias(x, &mut g, &mut ws)
                    .unwrap();
            }
            adam.step(&mut bias, &g, &mut st).unwrap();
        }
        let s1 = scores(cfg, &p, Some(&bias), &xe);
        let c0 = scores(cfg, &p, None, &xc);
        let c1 = scores(cfg, &p, Some(&bias), &xc);
        let kth = |mut v: Vec<f32>| {
            v.sort_by(|a, b| b.total_cmp(a));
            v[1]
        }; // k = 2 of 200
        let (t0, t1) = (kth(c0), kth(c1));
        println!(
            "{name}: before AUC {:.4} FA@model-thr {:.3} FA@recal {:.3} | after AUC {:.4} FA@model-thr {:.3} FA@recal {:.3}",
            auc(&s0, &le),
            fa(&s0, &le, thr),
            fa(&s0, &le, t0),
            auc(&s1, &le),
            fa(&s1, &le, thr),
            fa(&s1, &le, t1)
        );
    }
}
