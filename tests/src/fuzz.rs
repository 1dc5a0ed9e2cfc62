//! A seeded mutation fuzzer on stable Rust (issue 12): every loader that reads a file a user
//! may hand us — the firmware model file (`vae_nostd::modelfile`), the checkpoint
//! (`host_trainer::checkpoint`), and the IDX, CSV and MAT data loaders — run on mutations of
//! small valid seeds, each call inside `catch_unwind`. A loader must return `Ok` or `Err` on
//! every input: a panic is a crash, and the input that caused it is kept.
//!
//! Mutations (AFL's classic set, chosen by a PCG stream from the seed): flip a bit, set a
//! byte to an interesting value (0, 1, 0x7f, 0x80, 0xff), overwrite 4 bytes with an
//! interesting u32 (0, 1, 2³¹, 2³² − 1, small counts), delete, duplicate or insert a block,
//! truncate, splice with the other seed, and up to 8 of those stacked. Runs are reproducible:
//! the same `seed` and `execs` give the same inputs.
//!
//! `cargo run --release -p vae-tests --example fuzz -- --execs 2000000` is the long run;
//! `tests/tests/fuzz.rs` runs a bounded one in `cargo test` and replays the regression inputs
//! under `tests/fuzz/regressions/`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use rand_core::{RngCore, SeedableRng};
use rand_pcg::Pcg64Mcg;

/// A loader under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `vae_nostd::modelfile::ModelFile::parse` (f32 and int8 files).
    ModelFile,
    /// `host_trainer::checkpoint::Checkpoint::from_safetensors`.
    Checkpoint,
    /// `host_trainer::data::read_idx` (plain and gzip).
    Idx,
    /// `host_trainer::data::load_csv` (rows, and windows with labels and groups).
    Csv,
    /// `host_trainer::data::load_frey` (MAT-file, plain and compressed).
    Mat,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 5] = [
        Target::ModelFile,
        Target::Checkpoint,
        Target::Idx,
        Target::Csv,
        Target::Mat,
    ];

    /// Its name (for files and reports).
    pub fn name(self) -> &'static str {
        match self {
            Target::ModelFile => "modelfile",
            Target::Checkpoint => "checkpoint",
            Target::Idx => "idx",
            Target::Csv => "csv",
            Target::Mat => "mat",
        }
    }
}

/// What a run found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Inputs tried.
    pub execs: u64,
    /// Inputs the loader accepted.
    pub accepted: u64,
    /// Inputs that panicked, with the panic message.
    pub crashes: Vec<(Vec<u8>, String)>,
}

/// The repository root (for the fixtures the seeds come from).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Valid inputs of `t` to mutate.
pub fn seeds(t: Target) -> Vec<Vec<u8>> {
    let fixture = |p: &str| std::fs::read(root().join(p)).unwrap_or_default();
    match t {
        Target::ModelFile => model_file_seeds(),
        Target::Checkpoint => vec![checkpoint_seed()],
        Target::Idx => vec![
            fixture("host-trainer/tests/fixtures/mnist/train-labels-idx1-ubyte"),
            fixture("host-trainer/tests/fixtures/mnist/t10k-labels-idx1-ubyte.gz"),
            idx_images(),
        ],
        Target::Csv => vec![
            b"t,x,y,z,label,series\n0,1,2,3,a,s1\n1,4,5,6,a,s1\n2,7,8,9,b,s2\n3,1,1,1,a,s2\n"
                .to_vec(),
            b"1,2,3\n4,5,6\n".to_vec(),
        ],
        Target::Mat => vec![
            fixture("host-trainer/tests/fixtures/frey/ff_6x4.mat"),
            fixture("host-trainer/tests/fixtures/frey/ff_6x4_compressed.mat"),
        ],
    }
}

/// A small f32 model file and its int8 export.
fn model_file_seeds() -> Vec<Vec<u8>> {
    use vae_nostd::modelfile::{self, ModelParts, QuantParts, Threshold, Window};
    use vae_nostd::{Activation, Likelihood, ScoreKind, VaeConfig, quant};
    let cfg = VaeConfig::new(
        6,
        &[5],
        2,
        Activation::Tanh,
        Likelihood::Gaussian {
            sigmoid_mean: false,
            floor: true,
        },
    );
    let params: Vec<f32> = (0..cfg.num_params())
        .map(|i| ((i * 37 % 19) as f32 - 9.0) * 0.05)
        .collect();
    let parts = ModelParts {
        config: cfg,
        window: Some(Window {
            len: 2,
            hop: 2,
            channels: 3,
            sample_rate_hz: 100.0,
        }),
        score: ScoreKind::NegElboAtMean,
        threshold: Some(Threshold {
            value: 3.5,
            false_alarm_rate: 0.01,
        }),
        norm_offset: &[0.0; 6],
        norm_scale: &[1.0; 6],
        params: &params,
        quant: None,
    };
    let mut f32_file = vec![0u8; modelfile::file_len(&cfg)];
    let _ = modelfile::write(&mut f32_file, &parts);
    let l = quant::QuantLayout::new(&cfg);
    let (mut w, mut sc, mut bi, mut is) = (
        vec![0i8; l.weights],
        vec![0f32; l.outputs],
        vec![0f32; l.outputs],
        vec![0f32; l.layers],
    );
    let _ = quant::quantize(
        &cfg,
        &params,
        &vec![1.0; l.layers],
        &mut w,
        &mut sc,
        &mut bi,
        &mut is,
    );
    let q = ModelParts {
        params: &[],
        quant: Some(QuantParts {
            weights: &w,
            scales: &sc,
            biases: &bi,
            input_scales: &is,
        }),
        ..parts
    };
    let mut int8_file = vec![0u8; modelfile::file_len_int8(&cfg)];
    let _ = modelfile::write(&mut int8_file, &q);
    vec![f32_file, int8_file]
}

/// A small checkpoint with every metadata entry (spec, window, calibration, training state).
fn checkpoint_seed() -> Vec<u8> {
    use host_trainer::model::{
        ActivationName, Calibration, Checkpoint, LikelihoodName, ModelSpec, Normalization,
        ScoreName, TrainState, WindowMeta,
    };
    let spec = ModelSpec {
        input: 6,
        encoder_hidden: vec![4],
        decoder_hidden: vec![3],
        latent: 2,
        activation: ActivationName::Tanh,
        likelihood: LikelihoodName::Gaussian,
    };
    let p = spec.config().map(|c| c.num_params()).unwrap_or(0);
    let ck = Checkpoint {
        params: (0..p).map(|i| (i as f32 * 0.37).sin()).collect(),
        norm: Normalization {
            offset: vec![0.5; 6],
            scale: vec![2.0; 6],
        },
        window: Some(WindowMeta {
            len: 2,
            hop: 1,
            channels: 3,
            sample_rate_hz: 50.0,
        }),
        calibration: Some(Calibration {
            score: ScoreName::NegElboMean,
            samples: 1,
            threshold: 9.75,
            false_alarm_rate: 0.01,
            calibration_windows: 100,
        }),
        train: Some(TrainState {
            optimizer: "adam".into(),
            optim_state: vec![0.25; 2 * p],
            step: 12,
            samples_seen: 1200,
            early_stop: None,
            current_params: Vec::new(),
        }),
        info: serde_json::json!({"seed": 1}),
        spec,
    };
    ck.to_safetensors().unwrap_or_default()
}

/// Three 4 × 4 images as an IDX file.
fn idx_images() -> Vec<u8> {
    let mut v = 0x0000_0803u32.to_be_bytes().to_vec();
    for d in [3u32, 4, 4] {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend((0..48u8).map(|i| i.wrapping_mul(37)));
    v
}

/// Runs the loader of `t` on `bytes` (through `scratch`, a file path, for the loaders that read
/// files); true when it accepted them.
fn run_one(t: Target, bytes: &[u8], scratch: &Path) -> bool {
    use host_trainer::data::csv::{CsvOptions, load_csv};
    match t {
        Target::ModelFile => vae_nostd::modelfile::ModelFile::parse(bytes).is_ok(),
        Target::Checkpoint => {
            host_trainer::checkpoint::Checkpoint::from_safetensors(bytes, None).is_ok()
        }
        Target::Idx | Target::Csv | Target::Mat => {
            if std::fs::write(scratch, bytes).is_err() {
                return false;
            }
            match t {
                Target::Idx => host_trainer::data::idx::read_idx(scratch).is_ok(),
                Target::Mat => host_trainer::data::load_frey(scratch).is_ok(),
                _ => {
                    let rows = load_csv(scratch, &CsvOptions::default()).is_ok();
                    let windows = CsvOptions {
                        window: Some(2),
                        hop: Some(1),
                        label: Some("label".into()),
                        normal: Some(vec!["a".into()]),
                        group: Some("series".into()),
                        columns: Some(vec!["x".into(), "y".into(), "z".into()]),
                        ..CsvOptions::default()
                    };
                    load_csv(scratch, &windows).is_ok() || rows
                }
            }
        }
    }
}

const INTERESTING_U8: [u8; 5] = [0, 1, 0x7f, 0x80, 0xff];
const INTERESTING_U32: [u32; 8] = [0, 1, 2, 16, 255, 0x7fff_ffff, 0x8000_0000, u32::MAX];

/// One mutation of `seed` (the other seed for splices).
fn mutate(rng: &mut Pcg64Mcg, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    let stack = 1 + (rng.next_u32() % 8) as usize;
    for _ in 0..stack {
        let n = b.len();
        let r = rng.next_u32();
        let at = if n == 0 {
            0
        } else {
            rng.next_u32() as usize % n
        };
        match r % 9 {
            0 if n > 0 => b[at] ^= 1 << ((r >> 8) % 8),
            1 if n > 0 => b[at] = INTERESTING_U8[(r >> 8) as usize % INTERESTING_U8.len()],
            2 if n >= 4 => {
                let at = at.min(n - 4);
                let v = INTERESTING_U32[(r >> 8) as usize % INTERESTING_U32.len()];
                let bytes = if r & 0x80 != 0 {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                };
                b[at..at + 4].copy_from_slice(&bytes);
            }
            3 if n > 0 => {
                let len = 1 + (rng.next_u32() as usize % 16).min(n - at - 1);
                b.drain(at..at + len);
            }
            4 if n > 0 => {
                let len = 1 + (rng.next_u32() as usize % 64).min(n - at - 1);
                let block = b[at..at + len].to_vec();
                let to = rng.next_u32() as usize % (n + 1);
                b.splice(to..to, block);
            }
            5 => {
                let len = 1 + rng.next_u32() as usize % 16;
                let block: Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
                b.splice(at..at, block);
            }
            6 if n > 0 => b.truncate(at),
            7 if !other.is_empty() => {
                let from = rng.next_u32() as usize % other.len();
                b.truncate(at);
                b.extend_from_slice(&other[from..]);
            }
            _ if n > 0 => b[at] = rng.next_u32() as u8,
            _ => b.push(rng.next_u32() as u8),
        }
    }
    b
}

/// Fuzzes `t` for `execs` inputs from `seed`; `scratch` is a file the path-based loaders read.
/// Panics inside the loader are caught (and silenced while the run lasts) and reported.
pub fn run(t: Target, execs: u64, seed: u64, scratch: &Path) -> Report {
    let seeds = seeds(t);
    let mut rng = Pcg64Mcg::seed_from_u64(seed ^ (t as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut report = Report::default();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for i in 0..execs {
        let s = &seeds[i as usize % seeds.len()];
        let other = &seeds[(i as usize + 1) % seeds.len()];
        // A few executions run the seeds themselves, unmutated.
        let input = if i < seeds.len() as u64 {
            s.clone()
        } else {
            mutate(&mut rng, s, other)
        };
        match catch_unwind(AssertUnwindSafe(|| run_one(t, &input, scratch))) {
            Ok(true) => report.accepted += 1,
            Ok(false) => {}
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                report.crashes.push((input, msg));
            }
        }
        report.execs += 1;
    }
    std::panic::set_hook(hook);
    report
}

/// Replays one input on `t`: `Err` with the panic message if it panics.
pub fn replay(t: Target, bytes: &[u8], scratch: &Path) -> Result<bool, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = catch_unwind(AssertUnwindSafe(|| run_one(t, bytes, scratch))).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    });
    std::panic::set_hook(hook);
    r
}
