//! The bit-exactness cases: one computation, compiled twice.
//!
//! This file is included (`#[path]`) by the host test `tests/tests/on_target.rs` and by the
//! QEMU program `firmware/src/bin/core_tests.rs`, so both run exactly the same code: the host
//! build of `vae-nostd` and its `thumbv7em-none-eabihf` build. Every result goes to a [`Sink`]
//! as `name[index] = 0x<bits>`; the host writes those lines to `tests/golden/latents.txt`
//! (regenerate with `VAE_REGEN_GOLDEN=1 cargo test -p vae-tests --test on_target`), the device
//! compares its own lines with the embedded file and prints them for the host test to compare
//! again.
//!
//! What is computed (all `f32`; the host and the golden file use the `Portable` kernel, the
//! device runs the cases twice, with `Portable` and with the firmware's `CortexM4` kernel,
//! through [`run_with`]):
//! * the simulator's windows (a checksum of their bits: the inputs themselves must agree);
//! * fastmath `exp`, `tanh`, `ln_1p_unit` and `libm` at a few points;
//! * on the committed default sensor model (`firmware/models/default.vaem`, 192-128-8, tanh,
//!   Gaussian decoder; its CRC is the first sensor line, so a re-exported model shows up as
//!   a golden-file difference there) and 16 windows of 64 three-axis samples from
//!   `vae_sim::Simulator` (seed 4, an injected bearing, imbalance and looseness episode
//!   at windows 5, 9 and 13): μ, log σ², and every score kind (−ELBO at μ; sampled −ELBO,
//!   −log p̂(x) and reconstruction probability with a fixed-seed `Pcg32` per window);
//! * the same 16 windows through the int8 default model (`firmware/models/default-int8.vaem`,
//!   `vae_nostd::quant`; its CRC first): μ, log σ² and −ELBO at z = μ from the integer
//!   layers, with the kernel's `IntGemv` (the device's `SMLAD` assembly on its second run);
//! * estimators A, B and IW on a small 6-5-2 Bernoulli model with a given ε (objective, KL,
//!   reconstruction as `f64` bits);
//! * a short training run: 5 Adagrad steps of estimator B with drawn ε; every parameter after
//!   the last step.

use rand_core::SeedableRng;
use rand_pcg::Pcg32;
use vae_nostd::modelfile::ModelFile;
use vae_nostd::quant::{self, IntGemv};
use vae_nostd::{
    Activation, Adagrad, Error, Estimator, Gemm, Init, Likelihood, Objective, Optimizer, Portable,
    ScoreKind, Vae, VaeConfig, Workspace, init_params,
};
use vae_sim::{Episode, Kind, SimConfig, Simulator};

/// One result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// Printed as `0x` and 8 hex digits.
    F32(f32),
    /// Printed as `0x` and 16 hex digits.
    F64(f64),
    /// A 32-bit checksum, printed like an `f32`.
    U32(u32),
}

impl Value {
    /// The bits, zero-extended.
    pub fn bits(self) -> u64 {
        match self {
            Value::F32(v) => v.to_bits() as u64,
            Value::F64(v) => v.to_bits(),
            Value::U32(v) => v as u64,
        }
    }
    /// Hex digits of [`Value::bits`] when printed.
    pub fn width(self) -> usize {
        match self {
            Value::F64(_) => 16,
            _ => 8,
        }
    }
}

/// Where results go, in order.
pub trait Sink {
    /// One result: `name[index]`.
    fn emit(&mut self, name: &str, index: usize, v: Value);
}

/// The shape the sensor cases expect of the default model (D = 192, Z = 8; hidden widths and
/// decoder come from the file).
pub const SENSOR: VaeConfig = VaeConfig::new(
    192,
    &[128],
    8,
    Activation::Tanh,
    Likelihood::Gaussian {
        sigmoid_mean: false,
        floor: true,
    },
);
/// Windows of the bit-exactness set.
pub const WINDOWS: usize = 16;
/// Samples per window (three axes each).
const WINDOW_SAMPLES: usize = SENSOR.input / 3;
/// Anomaly episodes, each covering one whole window.
const SCHEDULE: [Episode; 3] = [
    Episode {
        start: 5 * WINDOW_SAMPLES as u64,
        len: WINDOW_SAMPLES as u32,
        kind: Kind::Bearing,
    },
    Episode {
        start: 9 * WINDOW_SAMPLES as u64,
        len: WINDOW_SAMPLES as u32,
        kind: Kind::Imbalance,
    },
    Episode {
        start: 13 * WINDOW_SAMPLES as u64,
        len: WINDOW_SAMPLES as u32,
        kind: Kind::Looseness,
    },
];
/// The small model of the estimator and training cases.
const SMALL: VaeConfig = VaeConfig::new(6, &[5], 2, Activation::Tanh, Likelihood::Bernoulli);
/// Largest sample count the sensor workspace holds (scores with more draw in chunks).
const SCORE_SAMPLES: usize = 4;

/// Runs every case, in a fixed order, with the `Portable` kernel.
pub fn run(sink: &mut impl Sink) -> Result<(), Error> {
    run_with(&Portable, sink)
}

/// Runs every case, in a fixed order, with `kernel` for every matrix product.
pub fn run_with<K: Gemm<f32> + IntGemv>(kernel: &K, sink: &mut impl Sink) -> Result<(), Error> {
    transcendentals(sink);
    sensor(kernel, sink)?;
    estimators(kernel, sink)?;
    training(kernel, sink)
}

fn transcendentals(sink: &mut impl Sink) {
    let xs = [-100.0f32, -3.5, -0.3, 0.0, 0.2, 0.6, 1.0, 2.5, 10.0, 88.0];
    for (i, &x) in xs.iter().enumerate() {
        sink.emit("fastmath_exp", i, Value::F32(vae_nostd::fastmath::exp(x)));
        sink.emit("fastmath_tanh", i, Value::F32(vae_nostd::fastmath::tanh(x)));
        sink.emit("libm_logf", i, Value::F32(libm::logf(libm::fabsf(x) + 0.5)));
    }
    for i in 0..=8 {
        let x = i as f32 / 8.0;
        sink.emit(
            "fastmath_ln_1p_unit",
            i,
            Value::F32(vae_nostd::fastmath::ln_1p_unit(x)),
        );
    }
}

/// The committed default sensor model (`host-trainer` export; see `firmware/models/`).
const MODEL: &[u8] = include_bytes!("../../firmware/models/default.vaem");
/// Parameter buffer capacity (the default model has 77 456).
const MAX_PARAMS: usize = 80_000;

/// The int8 default model (`host-trainer export --int8`; see `firmware/models/`).
const INT8_MODEL: &[u8] = include_bytes!("../../firmware/models/default-int8.vaem");
/// Bytes of the aligned copy the int8 model is used from in place.
const INT8_CAP: usize = 84_000;

/// 4-byte aligned bytes (the int8 model's f32 sections and the `SMLAD` kernel's loads).
#[repr(C, align(4))]
struct Aligned4([u8; INT8_CAP]);

fn sensor<K: Gemm<f32> + IntGemv>(kernel: &K, sink: &mut impl Sink) -> Result<(), Error> {
    let mut int8_image = Aligned4([0; INT8_CAP]);
    let int8_bytes = int8_image
        .0
        .get_mut(..INT8_MODEL.len())
        .ok_or(Error::InvalidConfig(
            "default-int8.vaem is larger than INT8_CAP",
        ))?;
    int8_bytes.copy_from_slice(INT8_MODEL);
    let int8_file =
        ModelFile::parse(int8_bytes).map_err(|_| Error::InvalidConfig("default-int8.vaem"))?;
    let q = int8_file
        .quant_in_place()
        .ok_or(Error::InvalidConfig("default-int8.vaem is not int8"))?;
    const QS: (usize, usize) = quant::scratch_len(&SENSOR);
    let (mut q_f32, mut q_pairs, mut q_head) =
        ([0f32; QS.0], [0u32; QS.1], [0f32; 2 * SENSOR.latent]);
    let file = ModelFile::parse(MODEL).map_err(|_| Error::InvalidConfig("default.vaem"))?;
    let cfg = file.config();
    if cfg.input != SENSOR.input || cfg.latent != SENSOR.latent || cfg.num_params() > MAX_PARAMS {
        return Err(Error::InvalidConfig(
            "default.vaem is not a 192-input, 8-latent model",
        ));
    }
    sink.emit("model_crc", 0, Value::U32(file.crc()));
    sink.emit("int8_model_crc", 0, Value::U32(int8_file.crc()));
    let mut params = [0f32; MAX_PARAMS];
    let params = &mut params[..cfg.num_params()];
    file.copy_params(params)
        .map_err(|_| Error::InvalidConfig("default.vaem params"))?;
    let (mut offset, mut scale) = ([0f32; SENSOR.input], [0f32; SENSOR.input]);
    file.copy_normalization(&mut offset, &mut scale)
        .map_err(|_| Error::InvalidConfig("default.vaem normalization"))?;
    let vae = Vae::new(cfg, params)?;
    let mut sim = Simulator::new(SimConfig {
        seed: 4,
        anomaly_rate: 0.0,
        schedule: &SCHEDULE,
        ..SimConfig::default()
    })?;
    let mut ws_buf = [0f32; SENSOR.workspace_len(1, SCORE_SAMPLES) * 2];
    let ws_len = cfg.workspace_len(1, SCORE_SAMPLES);
    if ws_len > ws_buf.len() {
        return Err(Error::InvalidConfig(
            "default.vaem needs a larger workspace",
        ));
    }
    let z = cfg.latent;
    for w in 0..WINDOWS {
        let mut x = [0f32; SENSOR.input];
        let mut labels = [0u8; WINDOW_SAMPLES];
        let label = sim.fill_window(&mut x, &mut labels)?;
        sink.emit("window_label", w, Value::U32(label as u32));
        sink.emit("window_fnv", w, Value::U32(fnv(&x)));
        // The model's normalization: x' = (x − offset) · scale.
        for ((v, o), s) in x.iter_mut().zip(&offset).zip(&scale) {
            *v = (*v - *o) * *s;
        }
        let mut ws = Workspace::new(&cfg, 1, SCORE_SAMPLES, &mut ws_buf[..ws_len])?;
        vae.encode(kernel, &x, 1, &mut ws)?;
        let (mu, log_var) = ws.head(1).split_at(z);
        for (j, v) in mu.iter().enumerate() {
            sink.emit("mu", w * z + j, Value::F32(*v));
        }
        for (j, v) in log_var.iter().enumerate() {
            sink.emit("log_var", w * z + j, Value::F32(*v));
        }
        let mut rng = Pcg32::seed_from_u64(1000 + w as u64);
        let kinds = [
            ("score_neg_elbo_at_mean", ScoreKind::NegElboAtMean),
            ("score_neg_elbo_l3", ScoreKind::NegElbo { samples: 3 }),
            (
                "score_neg_log_lik_k10",
                ScoreKind::NegLogLikelihood { samples: 10 },
            ),
            (
                "score_rec_prob_l4",
                ScoreKind::ReconstructionProbability { samples: 4 },
            ),
        ];
        for (name, kind) in kinds {
            let mut s = [0f32; 1];
            vae.score(kernel, &x, 1, kind, &mut rng, &mut ws, &mut s)?;
            sink.emit(name, w, Value::F32(s[0]));
        }
        // The int8 model on the same window (same normalization: the export keeps it).
        let s = q.score_neg_elbo_at_mean(kernel, &x, &mut q_f32, &mut q_pairs, &mut q_head)?;
        for (j, v) in q_head.iter().enumerate() {
            sink.emit("int8_head", w * 2 * z + j, Value::F32(*v));
        }
        sink.emit("int8_score_neg_elbo_at_mean", w, Value::F32(s));
    }
    Ok(())
}

/// A fixed binary batch of three datapoints for the small model.
const SMALL_X: [f32; 18] = [
    1.0, 0.0, 1.0, 1.0, 0.0, 0.0, //
    0.0, 1.0, 0.0, 1.0, 1.0, 0.0, //
    1.0, 1.0, 1.0, 0.0, 0.0, 1.0,
];

fn small_params() -> Result<[f32; SMALL.num_params()], Error> {
    let mut params = [0f32; SMALL.num_params()];
    init_params(
        &SMALL,
        &mut params,
        Init::Xavier,
        &mut Pcg32::seed_from_u64(7),
    )?;
    Ok(params)
}

fn estimators<K: Gemm<f32>>(kernel: &K, sink: &mut impl Sink) -> Result<(), Error> {
    let params = small_params()?;
    let vae = Vae::new(SMALL, &params)?;
    // ε for 3 datapoints × 3 draws × Z = 2: a fixed pattern in (−2, 2).
    let eps: [f32; 18] = core::array::from_fn(|i| ((i * 7) % 11) as f32 * 0.37 - 1.85);
    let mut buf = [0f32; SMALL.workspace_len(3, 3)];
    let cases = [
        ("bound_b_l2", Estimator::Analytic, 2),
        ("bound_a_l2", Estimator::MonteCarlo, 2),
        ("bound_iw_k3", Estimator::ImportanceWeighted, 3),
    ];
    for (name, estimator, samples) in cases {
        let mut ws = Workspace::new(&SMALL, 3, 3, &mut buf)?;
        let obj = Objective {
            estimator,
            samples,
            beta: 1.0,
        };
        let b = vae.forward_with_eps(kernel, &SMALL_X, 3, obj, &eps[..3 * samples * 2], &mut ws)?;
        sink.emit(name, 0, Value::F64(b.objective));
        sink.emit(name, 1, Value::F64(b.kl));
        sink.emit(name, 2, Value::F64(b.rec));
    }
    Ok(())
}

fn training<K: Gemm<f32>>(kernel: &K, sink: &mut impl Sink) -> Result<(), Error> {
    let mut params = small_params()?;
    let mut grads = [0f32; SMALL.num_params()];
    let mut state = [0f32; SMALL.num_params()];
    let mut buf = [0f32; SMALL.workspace_len(3, 1)];
    let mut opt = Adagrad {
        lr: 0.1,
        eps: 1e-10,
        weight_decay: 0.01,
    };
    let mut rng = Pcg32::seed_from_u64(99);
    for step in 0..5 {
        let vae = Vae::new(SMALL, &params)?;
        let mut ws = Workspace::new(&SMALL, 3, 1, &mut buf)?;
        let b = vae.forward(kernel, &SMALL_X, 3, Objective::paper(), &mut rng, &mut ws)?;
        vae.backward_set(kernel, &SMALL_X, &mut grads, &mut ws)?;
        sink.emit("train_bound", step, Value::F64(b.objective));
        opt.step(&mut params, &grads, &mut state)?;
    }
    for (i, p) in params.iter().enumerate() {
        sink.emit("train_param", i, Value::F32(*p));
    }
    Ok(())
}

/// FNV-1a over the bits of a slice of `f32`.
fn fnv(x: &[f32]) -> u32 {
    let mut h = 0x811c_9dc5u32;
    for v in x {
        for b in v.to_bits().to_le_bytes() {
            h = (h ^ b as u32).wrapping_mul(0x0100_0193);
        }
    }
    h
}

/// One result as a line of the golden file: `name[index] = 0x<bits>`.
pub struct Line<'a>(pub &'a str, pub usize, pub Value);

impl core::fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let Line(name, index, v) = *self;
        write!(f, "{name}[{index}] = 0x{:01$x}", v.bits(), v.width())
    }
}
