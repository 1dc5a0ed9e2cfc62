//! `host-trainer`: train, evaluate, draw and export AEVB models on a laptop.
//!
//! With no arguments it runs the default job: a sensor-anomaly model on the built-in synthetic
//! vibration data, trained, evaluated, calibrated, drawn and exported for the firmware.

mod cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use host_trainer::model::{ActivationName, LikelihoodName, ScoreName};

/// Variational autoencoders (Kingma & Welling 2014) for microcontrollers: the laptop side.
///
/// Without a subcommand: train a sensor-anomaly model on built-in synthetic vibration data,
/// evaluate it, calibrate an anomaly threshold, draw pictures and export a firmware model
/// into --out (default `out/`).
#[derive(Parser, Debug)]
#[command(name = "host-trainer", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Output directory of the default job.
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// Worker threads of the default job (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Seed of the default job.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// No progress bars in the default job.
    #[arg(long)]
    quiet: bool,
    /// Memory a command may allocate (for example 8G, 512M; default: half of this machine's
    /// memory, or the environment variable VAE_MAX_MEMORY). A command that would need more
    /// for its flags or data says so and stops before allocating.
    #[arg(long, global = true, value_name = "SIZE")]
    max_memory: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Train a model (writes DIR/checkpoint.safetensors, learning curves and pictures).
    Train(Box<TrainArgs>),
    /// Lower bound and importance-sampled log-likelihood on a split, per class when labelled.
    Eval(EvalArgs),
    /// Samples from the prior, decoded (paper Fig. 5).
    Sample(SampleArgs),
    /// Inputs above their reconstructions.
    Reconstruct(ReconstructArgs),
    /// The learned 2-D manifold through the inverse Gaussian CDF (paper Fig. 4; needs Z = 2).
    Manifold(ManifoldArgs),
    /// Per-window anomaly scores as CSV; calibrates the threshold; ROC AUC with labels.
    Score(ScoreArgs),
    /// Export a checkpoint for the firmware (compact model file, optional generated Rust).
    Export(ExportArgs),
    /// Decode a firmware record stream (`rec=[…]` lines) into the CSV that `train` reads,
    /// counting dropped, corrupt and lost frames.
    Record(RecordArgs),
    /// Training throughput on the reference shapes (samples/s, GFLOP/s, % of peak).
    Bench(BenchArgs),
}

/// Where data comes from.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Data: `synthetic[:key=value,...]`, `mnist:DIR[?valid=N]` (N of the 60,000 training
    /// images validate, default 10000; 0 trains on all and validates on the test set),
    /// `frey:FILE`, `csv:FILE[?window=64&hop=32&label=COL&normal=A,B&group=COL&columns=a,b&rate=HZ&split=0.7,0.15,0.15&shuffle=true]`
    /// (text or integer labels, `normal=` the labels that are normal; `group=` a recording or
    /// series id column: windows never span two, and splits keep each group whole).
    #[arg(long)]
    pub data: Option<String>,
}

/// Training options.
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Validation data from another file (same syntax as --data; every window of it is used):
    /// early stopping and calibration run on it, and a CSV --data is then all training data
    /// unless its split= says otherwise.
    #[arg(long)]
    pub valid_data: Option<String>,
    /// Encoder hidden widths, from the input inwards (one to three; e.g. `500` or `512,384,256`;
    /// default: the paper's for MNIST and Frey, 128 for sensor windows and tables).
    #[arg(long, value_delimiter = ',', num_args = 1..=3)]
    pub hidden: Option<Vec<usize>>,
    /// Decoder hidden widths, from the latent outwards (default: the encoder's, mirrored).
    #[arg(long, value_delimiter = ',', num_args = 1..=3)]
    pub decoder_hidden: Option<Vec<usize>>,
    /// Latent dimension Z (default: the paper's for MNIST and Frey; for sensor windows and
    /// tables a tenth of the training rows, between 2 and 8).
    #[arg(long)]
    pub latent: Option<usize>,
    /// Hidden nonlinearity.
    #[arg(long, value_enum)]
    pub activation: Option<ActivationName>,
    /// Decoder distribution.
    #[arg(long, value_enum)]
    pub likelihood: Option<LikelihoodName>,
    /// Estimator of the bound: analytic KL (B, eq. 10), Monte Carlo (A, eq. 6), importance weighted.
    #[arg(long, value_enum, default_value = "analytic")]
    pub estimator: EstimatorArg,
    /// Draws of z per datapoint (L; k for iwae).
    #[arg(long, default_value_t = 1)]
    pub samples: usize,
    /// Weight of the KL term (β-VAE; 1 is the paper's bound).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub beta: f32,
    /// Optimizer.
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerArg>,
    /// Step size.
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f32>,
    /// L2 weight decay (the paper's N(0, I) prior on θ is 1/N for N training points).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub weight_decay: f32,
    /// Minibatch size M (default: 100 for MNIST and Frey; for sensor windows and tables 16
    /// below 2,000 training rows, else 64).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Passes over the training set.
    #[arg(long, conflicts_with = "train_samples")]
    pub epochs: Option<u64>,
    /// Training samples to see instead of --epochs (the paper's x-axis).
    #[arg(long, conflicts_with = "steps")]
    pub train_samples: Option<u64>,
    /// Optimizer steps instead of --epochs.
    #[arg(long, conflicts_with = "epochs")]
    pub steps: Option<u64>,
    /// Train at least this many steps (default: 2000 for sensor windows and tables when no
    /// --epochs/--steps/--train-samples is given, so that tens of windows still get a real
    /// optimization; 0 otherwise).
    #[arg(long)]
    pub min_steps: Option<u64>,
    /// Early stopping: stop after this many checks of the validation bound (the median over
    /// the validation windows) without a better one and keep the best parameters as the model (default: 20 for sensor windows and
    /// tables; 0, off, for images, where the paper trains to the budget).
    #[arg(long)]
    pub patience: Option<u32>,
    /// Steps between early-stopping checks (default: one epoch, at least 25 steps).
    #[arg(long)]
    pub check_every: Option<u64>,
    /// Initialization: N(0, 0.01²) as in the paper, Xavier or He.
    #[arg(long, value_enum)]
    pub init: Option<InitArg>,
    /// Binarization for a Bernoulli decoder (default: dynamic for MNIST, none otherwise).
    #[arg(long, value_enum)]
    pub binarize: Option<BinarizeArg>,
    /// Seed: fixes the split, the initialization, the data order and every ε.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Worker threads (results do not depend on it).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Output directory.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// Continue from this checkpoint (same data and flags), bit-identically.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Write a checkpoint every this many steps (0: at the end only).
    #[arg(long, default_value_t = 500)]
    pub checkpoint_every: u64,
    /// Rows of the training and validation sets used for learning curves.
    #[arg(long, default_value_t = 1000)]
    pub curve_rows: usize,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Checkpoint to read.
#[derive(Args, Debug, Clone)]
pub struct CkptArgs {
    /// Checkpoint (safetensors).
    #[arg(long, default_value = "out/checkpoint.safetensors")]
    pub checkpoint: PathBuf,
    /// Activation to assume for a checkpoint without `vae.spec` metadata (e.g. from PyTorch).
    #[arg(long, value_enum)]
    pub activation: Option<ActivationName>,
}

/// `eval` options.
#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    #[command(flatten)]
    pub ckpt: CkptArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Which split (default: test; with --data csv:FILE and no --split, every window of FILE).
    #[arg(long, value_enum)]
    pub split: Option<SplitArg>,
    /// Draws of z for the lower bound.
    #[arg(long, default_value_t = 1)]
    pub samples: usize,
    /// Importance samples k for log p(x) (0 to skip).
    #[arg(long, default_value_t = 5000)]
    pub iw_samples: usize,
    /// Evaluate only the first N rows.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Worker threads.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Seed for ε.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// `sample` options.
#[derive(Args, Debug, Clone)]
pub struct SampleArgs {
    #[command(flatten)]
    pub ckpt: CkptArgs,
    /// Number of samples (drawn as a square-ish grid).
    #[arg(long, default_value_t = 100)]
    pub n: usize,
    /// Output PNG.
    #[arg(long, default_value = "out/samples.png")]
    pub png: PathBuf,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `reconstruct` options.
#[derive(Args, Debug, Clone)]
pub struct ReconstructArgs {
    #[command(flatten)]
    pub ckpt: CkptArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Number of inputs.
    #[arg(long, default_value_t = 20)]
    pub n: usize,
    /// Output PNG.
    #[arg(long, default_value = "out/reconstructions.png")]
    pub png: PathBuf,
}

/// `manifold` options.
#[derive(Args, Debug, Clone)]
pub struct ManifoldArgs {
    #[command(flatten)]
    pub ckpt: CkptArgs,
    /// Grid points per axis.
    #[arg(long, default_value_t = 20)]
    pub grid: usize,
    /// Output PNG.
    #[arg(long, default_value = "out/manifold.png")]
    pub png: PathBuf,
}

/// `score` options.
#[derive(Args, Debug, Clone)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub ckpt: CkptArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Which split to score (default: test; with --data csv:FILE and no --split, every window
    /// of FILE, while calibration and the baselines use the checkpoint's own training data).
    #[arg(long, value_enum)]
    pub split: Option<SplitArg>,
    /// Score kind.
    #[arg(long, value_enum, default_value = "neg-elbo-mean")]
    pub score: ScoreName,
    /// Draws of z for sampled scores.
    #[arg(long, default_value_t = 100)]
    pub samples: usize,
    /// Calibrate the threshold on the validation split's normal windows and store it in the
    /// checkpoint.
    #[arg(long)]
    pub calibrate: bool,
    /// Target false-alarm rate for calibration.
    #[arg(long, default_value_t = 0.01, allow_negative_numbers = true)]
    pub false_alarm_rate: f64,
    /// Score with the model quantized to int8 (`vae_nostd::quant`: per-output-channel weights,
    /// layer inputs calibrated on the training split), −ELBO at z = μ only. With --calibrate
    /// the threshold is the int8 model's own, printed and not saved (the checkpoint is f32).
    #[arg(long)]
    pub int8: bool,
    /// Output CSV.
    #[arg(long, default_value = "out/scores.csv")]
    pub csv: PathBuf,
    /// Print one JSON object (count, ROC AUC, the baselines', threshold, confusion) instead of
    /// text.
    #[arg(long)]
    pub json: bool,
    /// Worker threads.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Seed for sampled scores.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// `export` options.
#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    #[command(flatten)]
    pub ckpt: CkptArgs,
    /// Output model file for the firmware.
    #[arg(long, default_value = "out/model.vaem")]
    pub model: PathBuf,
    /// Also write generated Rust (const config and embedded model) here.
    #[arg(long)]
    pub rust: Option<PathBuf>,
    /// Export the model quantized to int8 (model file version 2, `vae_nostd::quant`): layer
    /// inputs calibrated on the training split of --data, and, when the checkpoint has a
    /// threshold, a new one at its false-alarm rate on the int8 model's own validation
    /// scores (−ELBO at z = μ).
    #[arg(long)]
    pub int8: bool,
    #[command(flatten)]
    pub data: DataArgs,
    /// Seed of the calibration subset (int8).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `bench` options.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Thread counts to measure (default: 1 and all cores).
    #[arg(long, value_delimiter = ',')]
    pub threads: Option<Vec<usize>>,
    /// Only these cases (paper-mnist, pytorch-example, small-mnist, sensor).
    #[arg(long, value_delimiter = ',')]
    pub cases: Option<Vec<String>>,
    /// Print JSON lines.
    #[arg(long)]
    pub json: bool,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// Estimator names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EstimatorArg {
    /// Estimator B: analytic KL (eq. 10).
    Analytic,
    /// Estimator A: Monte Carlo (eq. 6).
    Mc,
    /// Importance-weighted bound (Burda et al. 2015).
    Iwae,
}

/// `record` options.
#[derive(Args, Debug, Clone)]
pub struct RecordArgs {
    /// A captured stream: the record program's decoded log (`defmt-print` or `probe-rs run`
    /// output), `-` for stdin.
    #[arg(long, conflicts_with = "spawn")]
    pub from: Option<PathBuf>,
    /// A command (run with `sh -c`) whose stdout is the decoded log, e.g. `probe-rs run --chip
    /// nRF52833_xxAA target/thumbv7em-none-eabihf/release/microbit_record`; stopped once
    /// --samples are in.
    #[arg(long)]
    pub spawn: Option<String>,
    /// The CSV to write (atomically): `t,x,y,z`, or `t,segment,x,y,z` with --allow-gaps.
    #[arg(long)]
    pub out: PathBuf,
    /// Stop after this many samples (default: until the stream ends).
    #[arg(long)]
    pub samples: Option<u64>,
    /// Write a CSV even if samples are missing in the middle, with a `segment` column so that
    /// `train --data 'csv:FILE?...&group=segment'` never puts a gap inside a window.
    #[arg(long)]
    pub allow_gaps: bool,
}

/// Optimizer names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OptimizerArg {
    /// Adagrad (the paper's).
    Adagrad,
    /// Adam.
    Adam,
    /// SGD with momentum 0.9.
    Sgd,
}

/// Initialization names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InitArg {
    /// N(0, 0.01²), the paper's.
    Paper,
    /// Xavier/Glorot normal.
    Xavier,
    /// He normal.
    He,
    /// PyTorch's nn.Linear default, U(±1/√fan_in) for weights and biases.
    Torch,
}

/// Binarization names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BinarizeArg {
    /// Values as given.
    None,
    /// 1 where the value exceeds 0.5.
    Threshold,
    /// Re-drawn Bernoulli(value) at every step.
    Dynamic,
}

/// Split names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SplitArg {
    /// Training split.
    Train,
    /// Validation split.
    Valid,
    /// Test split.
    Test,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = host_trainer::limits::init(cli.max_memory.as_deref()) {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    let result = match cli.cmd {
        None => cmd::default_job(&cli.out, cli.threads, cli.seed, cli.quiet),
        Some(Cmd::Train(a)) => cmd::train(&a).map(|_| ()),
        Some(Cmd::Eval(a)) => cmd::eval(&a),
        Some(Cmd::Sample(a)) => cmd::sample(&a),
        Some(Cmd::Reconstruct(a)) => cmd::reconstruct(&a),
        Some(Cmd::Manifold(a)) => cmd::manifold(&a),
        Some(Cmd::Score(a)) => cmd::score(&a).map(|_| ()),
        Some(Cmd::Export(a)) => cmd::export(&a).map(|_| ()),
        Some(Cmd::Bench(a)) => cmd::bench(&a),
        Some(Cmd::Record(a)) => cmd::record(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
