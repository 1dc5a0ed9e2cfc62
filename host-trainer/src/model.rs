//! A trained model as the trainer keeps it: configuration, parameters, normalization, window
//! geometry, anomaly calibration and (for resuming) training state. Saved as safetensors by
//! [`crate::checkpoint`]; exported for the firmware by [`crate::export`].

use serde::{Deserialize, Serialize};
use vae_nostd::{Activation, Likelihood, ScoreKind, VaeConfig};

/// Hidden nonlinearity, by name (`tanh`, `relu`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ActivationName {
    /// tanh (the paper's).
    Tanh,
    /// ReLU.
    Relu,
}

/// Decoder distribution, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LikelihoodName {
    /// Bernoulli (binary or [0, 1] data; App. C.1).
    Bernoulli,
    /// Gaussian with learned variance (App. C.2).
    Gaussian,
    /// Gaussian whose mean is squashed by a sigmoid (the paper's Frey Face model).
    GaussianSigmoid,
    /// Gaussian with learned variance floored at σ = 0.1 in normalized units
    /// (`vae_nostd::likelihood::LOGVAR_FLOOR`): the sensor default.
    GaussianFloor,
    /// Sigmoid-mean Gaussian with the same floor.
    GaussianSigmoidFloor,
}

/// Anomaly score, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ScoreName {
    /// −ELBO at z = μ (deterministic).
    NegElboMean,
    /// −ELBO, sampled.
    NegElbo,
    /// −log p̂(x), importance sampled.
    Nll,
    /// Negated reconstruction probability (An & Cho 2015).
    RecProb,
}

impl ScoreName {
    /// The core's score with `samples` draws (ignored by `neg-elbo-mean`).
    pub fn kind(self, samples: usize) -> ScoreKind {
        match self {
            ScoreName::NegElboMean => ScoreKind::NegElboAtMean,
            ScoreName::NegElbo => ScoreKind::NegElbo { samples },
            ScoreName::Nll => ScoreKind::NegLogLikelihood { samples },
            ScoreName::RecProb => ScoreKind::ReconstructionProbability { samples },
        }
    }
}

/// The architecture, serializable (JSON in checkpoint metadata under `vae.spec`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// D.
    pub input: usize,
    /// Encoder hidden widths, from the input inwards.
    pub encoder_hidden: Vec<usize>,
    /// Decoder hidden widths, from the latent outwards.
    pub decoder_hidden: Vec<usize>,
    /// Z.
    pub latent: usize,
    /// Nonlinearity.
    pub activation: ActivationName,
    /// Decoder.
    pub likelihood: LikelihoodName,
}

impl ModelSpec {
    /// The core's configuration, validated.
    pub fn config(&self) -> Result<VaeConfig, vae_nostd::Error> {
        let act = match self.activation {
            ActivationName::Tanh => Activation::Tanh,
            ActivationName::Relu => Activation::Relu,
        };
        let lik = match self.likelihood {
            LikelihoodName::Bernoulli => Likelihood::Bernoulli,
            LikelihoodName::Gaussian => Likelihood::Gaussian {
                sigmoid_mean: false,
                floor: false,
            },
            LikelihoodName::GaussianSigmoid => Likelihood::Gaussian {
                sigmoid_mean: true,
                floor: false,
            },
            LikelihoodName::GaussianFloor => Likelihood::Gaussian {
                sigmoid_mean: false,
                floor: true,
            },
            LikelihoodName::GaussianSigmoidFloor => Likelihood::Gaussian {
                sigmoid_mean: true,
                floor: true,
            },
        };
        if self.encoder_hidden.len() > vae_nostd::MAX_HIDDEN
            || self.decoder_hidden.len() > vae_nostd::MAX_HIDDEN
        {
            return Err(vae_nostd::Error::InvalidConfig(
                "each network needs one to three hidden layers",
            ));
        }
        let cfg = VaeConfig::new(self.input, &self.encoder_hidden, self.latent, act, lik)
            .with_decoder_hidden(&self.decoder_hidden);
        cfg.validate()?;
        Ok(cfg)
    }

    /// From a core configuration.
    pub fn from_config(cfg: &VaeConfig) -> Self {
        ModelSpec {
            input: cfg.input,
            encoder_hidden: cfg.encoder_hidden.widths().to_vec(),
            decoder_hidden: cfg.decoder_hidden.widths().to_vec(),
            latent: cfg.latent,
            activation: match cfg.activation {
                Activation::Tanh => ActivationName::Tanh,
                Activation::Relu => ActivationName::Relu,
            },
            likelihood: match cfg.likelihood {
                Likelihood::Bernoulli => LikelihoodName::Bernoulli,
                Likelihood::Gaussian {
                    sigmoid_mean: false,
                    floor: false,
                } => LikelihoodName::Gaussian,
                Likelihood::Gaussian {
                    sigmoid_mean: true,
                    floor: false,
                } => LikelihoodName::GaussianSigmoid,
                Likelihood::Gaussian {
                    sigmoid_mean: false,
                    floor: true,
                } => LikelihoodName::GaussianFloor,
                Likelihood::Gaussian {
                    sigmoid_mean: true,
                    floor: true,
                } => LikelihoodName::GaussianSigmoidFloor,
            },
        }
    }
}

/// Per-feature affine normalization fitted on training data: `x' = (x − offset) · scale`.
/// Both vectors have length D; the identity is offset 0, scale 1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Subtracted first. Shape: `[D]`.
    pub offset: Vec<f32>,
    /// Multiplied second. Shape: `[D]`.
    pub scale: Vec<f32>,
}

impl Normalization {
    /// The identity on D features.
    pub fn identity(dim: usize) -> Self {
        Normalization {
            offset: vec![0.0; dim],
            scale: vec![1.0; dim],
        }
    }
    /// Applies to rows of `x` in place.
    pub fn apply(&self, x: &mut [f32]) {
        let d = self.offset.len().max(1);
        for row in x.chunks_exact_mut(d) {
            for ((v, o), s) in row.iter_mut().zip(&self.offset).zip(&self.scale) {
                *v = (*v - *o) * *s;
            }
        }
    }
}

/// Sensor window geometry (the firmware cuts its stream the same way).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowMeta {
    /// Time steps per window.
    pub len: usize,
    /// Samples between window starts.
    pub hop: usize,
    /// Channels per time step.
    pub channels: usize,
    /// Sampling rate.
    pub sample_rate_hz: f32,
}

/// An anomaly threshold calibrated on held-out normal data.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Which score.
    pub score: ScoreName,
    /// Draws of z for sampled scores.
    pub samples: usize,
    /// Scores above it are anomalies.
    pub threshold: f32,
    /// Target false-alarm rate on normal data.
    pub false_alarm_rate: f64,
    /// Normal windows used to calibrate.
    pub calibration_windows: usize,
}

/// Where training stands, to resume bit-identically.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// `adagrad`, `adam` or `sgd`.
    pub optimizer: String,
    /// Optimizer moments, same layout as the parameters (×1 or ×2). Stored as a tensor.
    #[serde(skip)]
    pub optim_state: Vec<f32>,
    /// Optimizer steps taken.
    pub step: u64,
    /// Training samples seen.
    pub samples_seen: u64,
    /// Early stopping's bookkeeping, when the run uses it (then the checkpoint's parameters
    /// are the best so far on the validation bound, and [`current_params`](Self::current_params)
    /// the ones training continues from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stop: Option<EarlyStopState>,
    /// The parameters at `step` when they differ from the checkpoint's (best) parameters;
    /// empty otherwise. Stored as the tensor `train.params`.
    #[serde(skip)]
    pub current_params: Vec<f32>,
}

/// Where early stopping stands (see `train::run`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopState {
    /// Step of the best validation bound so far (the checkpoint's parameters).
    pub best_step: u64,
    /// The best median validation bound so far (nats per window; higher is better).
    pub best_bound: f64,
    /// Validation checks since the best one.
    pub checks_since_best: u32,
    /// True once training stopped because the bound stopped improving.
    pub stopped: bool,
}

/// A model with everything needed to evaluate, score, resume and export it.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// Architecture.
    pub spec: ModelSpec,
    /// Flat parameters in the core's layout. Shape: `[num_params]`.
    pub params: Vec<f32>,
    /// Input normalization.
    pub norm: Normalization,
    /// Window geometry for sensor models.
    pub window: Option<WindowMeta>,
    /// Anomaly threshold.
    pub calibration: Option<Calibration>,
    /// Training state (absent in exported or foreign models).
    pub train: Option<TrainState>,
    /// Free-form JSON: training configuration, seed, data source and hash, learning curves.
    pub info: serde_json::Value,
}
