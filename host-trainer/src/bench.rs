//! `bench`: training throughput of the engine on the reference shapes, in samples/s, GFLOP/s
//! and percent of the machine's f32 peak, for one thread and for all threads.

use std::time::{Duration, Instant};

use rand_core::SeedableRng;
use rand_pcg::Pcg64Mcg;
use serde::Serialize;
use vae_nostd::{Adagrad, Adam, Init, Objective, VaeConfig, init_params};

use crate::engine::{Engine, Opt, derive_seed};
use crate::model::{ActivationName, LikelihoodName, ModelSpec};

/// One benchmark configuration.
#[derive(Clone, Debug, Serialize)]
pub struct BenchCase {
    /// Short name.
    pub name: &'static str,
    /// Architecture.
    pub spec: ModelSpec,
    /// Minibatch size.
    pub batch: usize,
    /// `adagrad` or `adam`.
    pub optimizer: &'static str,
    /// Step size.
    pub lr: f32,
}

/// One measured row.
#[derive(Clone, Debug, Serialize)]
pub struct BenchRow {
    /// Case name.
    pub case: &'static str,
    /// Architecture as `D-H-Z act`.
    pub arch: String,
    /// Minibatch size.
    pub batch: usize,
    /// Worker threads.
    pub threads: usize,
    /// Training samples per second.
    pub samples_per_s: f64,
    /// Effective GFLOP/s (6 flops per weight per sample: forward, and backward for inputs and
    /// weights; the same count as `../shared/bench/torch_vae.py`).
    pub gflops: f64,
    /// Percent of the f32 peak of the threads used.
    pub peak_percent: f64,
}

fn spec(d: usize, h: usize, z: usize, act: ActivationName, lik: LikelihoodName) -> ModelSpec {
    ModelSpec {
        input: d,
        encoder_hidden: vec![h],
        decoder_hidden: vec![h],
        latent: z,
        activation: act,
        likelihood: lik,
    }
}

/// The reference cases: the paper's MNIST model, PyTorch's example, a small MNIST model, and a
/// sensor-size model.
pub fn cases() -> Vec<BenchCase> {
    use ActivationName::*;
    use LikelihoodName::*;
    vec![
        BenchCase {
            name: "paper-mnist",
            spec: spec(784, 500, 20, Tanh, Bernoulli),
            batch: 100,
            optimizer: "adagrad",
            lr: 0.02,
        },
        BenchCase {
            name: "pytorch-example",
            spec: spec(784, 400, 20, Relu, Bernoulli),
            batch: 128,
            optimizer: "adam",
            lr: 1e-3,
        },
        BenchCase {
            name: "small-mnist",
            spec: spec(784, 64, 8, Relu, Bernoulli),
            batch: 32,
            optimizer: "adam",
            lr: 1e-3,
        },
        BenchCase {
            name: "sensor",
            spec: spec(192, 32, 4, Tanh, Gaussian),
            batch: 64,
            optimizer: "adam",
            lr: 1e-3,
        },
    ]
}

/// Multiply-accumulates per sample of one forward pass (weights only).
pub fn macs_per_sample(cfg: &VaeConfig) -> f64 {
    let mut w = 0usize;
    for net in [vae_nostd::Net::Encoder, vae_nostd::Net::Decoder] {
        for i in 0..cfg.num_layers(net) {
            let l = cfg.layer(net, i);
            w += l.inp * l.out;
        }
    }
    w as f64
}

/// f32 FMA flops per cycle per core from the CPU's vector extensions: two FMA pipes of 16
/// lanes with AVX-512, of 8 lanes with AVX2+FMA, else two 4-lane SSE units (mul + add).
pub fn flops_per_cycle() -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return 64.0;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return 32.0;
        }
    }
    8.0
}

/// Nominal f32 peak of one core in GFLOP/s: the clock in /proc/cpuinfo × [`flops_per_cycle`].
/// Turbo clocks can exceed it. Returns (GFLOP/s per core, clock in GHz, flops per cycle).
pub fn peak_gflops_per_core() -> (f64, f64, f64) {
    let mhz = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("cpu MHz"))
                .and_then(|l| l.split(':').nth(1))
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
        .unwrap_or(2600.0);
    let ghz = mhz / 1000.0;
    let f = flops_per_cycle();
    (ghz * f, ghz, f)
}

/// Runs one case with `threads` threads for about `seconds` after a warm-up.
pub fn run_case(case: &BenchCase, threads: usize, seconds: f64) -> anyhow::Result<BenchRow> {
    let cfg = case.spec.config()?;
    let mut rng = Pcg64Mcg::seed_from_u64(1);
    let mut params = vec![0f32; cfg.num_params()];
    init_params(&cfg, &mut params, Init::PAPER, &mut rng)?;
    let opt = match case.optimizer {
        "adagrad" => Opt::Adagrad(Adagrad {
            lr: case.lr,
            eps: 1e-10,
            weight_decay: 0.0,
        }),
        _ => Opt::Adam(Adam::new(case.lr)),
    };
    let mut engine = Engine::new(cfg, params, opt, None, threads)?;
    // Binary data with MNIST-like density (about 13% ones); the cost does not depend on values.
    let n = 4096;
    let x: Vec<f32> = (0..n * cfg.input)
        .map(|i| {
            if derive_seed(7, &[i as u64]).is_multiple_of(8) {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let obj = Objective::<f32>::paper();
    let b = case.batch;
    let mut step = 0u64;
    let mut run = |engine: &mut Engine, dur: Duration| -> anyhow::Result<(u64, f64)> {
        let t0 = Instant::now();
        let mut steps = 0u64;
        while t0.elapsed() < dur {
            let start = (step as usize * b) % (n - b);
            engine.train_step(
                &x[start * cfg.input..(start + b) * cfg.input],
                b,
                obj,
                derive_seed(3, &[step]),
            )?;
            step += 1;
            steps += 1;
        }
        Ok((steps, t0.elapsed().as_secs_f64()))
    };
    run(
        &mut engine,
        Duration::from_secs_f64((seconds * 0.2).max(0.2)),
    )?;
    let (steps, secs) = run(&mut engine, Duration::from_secs_f64(seconds))?;
    let sps = steps as f64 * b as f64 / secs;
    let gflops = sps * 6.0 * macs_per_sample(&cfg) / 1e9;
    let (peak, _, _) = peak_gflops_per_core();
    let act = match case.spec.activation {
        ActivationName::Tanh => "tanh",
        ActivationName::Relu => "relu",
    };
    Ok(BenchRow {
        case: case.name,
        arch: format!(
            "{}-{}-{} {act}",
            cfg.input,
            cfg.encoder_hidden.width(0),
            cfg.latent
        ),
        batch: b,
        threads,
        samples_per_s: sps,
        gflops,
        peak_percent: 100.0 * gflops / (peak * threads as f64),
    })
}
