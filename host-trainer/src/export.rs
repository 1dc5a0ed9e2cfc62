//! Export for the firmware: the model file of [`vae_nostd::modelfile`] (`.vaem`) and, on
//! request, a generated Rust module that embeds it with its architecture as a `const`.
//!
//! A checkpoint without a calibration exports with the threshold flag cleared (the format makes
//! the threshold optional): the firmware can encode and score but has no decision rule, and
//! [`ExportSummary`] says so. Its score is then −ELBO at z = μ.

use std::fmt;
use std::path::{Path, PathBuf};

use vae_nostd::modelfile::{self, ModelFileError, ModelParts, Threshold, Window};
use vae_nostd::{Activation, Likelihood, ScoreKind, VaeConfig};

use crate::model::Checkpoint;

/// An export failed: which file, and why.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct ExportError {
    /// The file being written.
    pub path: PathBuf,
    /// What went wrong.
    pub kind: ExportErrorKind,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportErrorKind {
    /// The checkpoint's architecture is invalid.
    #[error("cannot export: the checkpoint describes an invalid model: {0}")]
    InvalidSpec(vae_nostd::Error),
    /// The checkpoint cannot be expressed as a model file (wrong lengths, NaN, bad window or
    /// calibration).
    #[error("cannot export: {0}; fix or retrain the checkpoint")]
    Model(ModelFileError),
    /// The generated source and the model file would have the same path.
    #[error(
        "the generated Rust source needs a path not ending in `.vaem` (the model file goes next to it)"
    )]
    RustPath,
    /// The file could not be written.
    #[error("cannot write: {0}; check that the directory is writable")]
    Write(std::io::Error),
}

/// What was exported, printable as a short summary.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportSummary {
    /// The model file written.
    pub path: PathBuf,
    /// The generated Rust source, when one was written.
    pub rust: Option<PathBuf>,
    /// Bytes of the model file.
    pub bytes: usize,
    /// Its CRC-32 (the last four bytes), a fingerprint to match devices to models.
    pub crc32: u32,
    /// Architecture.
    pub config: VaeConfig,
    /// Score the firmware computes.
    pub score: ScoreKind,
    /// Calibrated threshold, if any.
    pub threshold: Option<Threshold>,
    /// Window geometry, if any.
    pub window: Option<Window>,
    /// int8 parameters (model file version 2) instead of f32.
    pub int8: bool,
}

impl fmt::Display for ExportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        writeln!(
            f,
            "wrote {} ({} bytes, CRC-32 {:#010x})",
            self.path.display(),
            self.bytes,
            self.crc32
        )?;
        if let Some(rs) = &self.rust {
            writeln!(f, "wrote {} (include it with `mod`)", rs.display())?;
        }
        writeln!(
            f,
            "model    {}, {}, {} parameters{}",
            arch(c),
            likelihood_name(c.likelihood),
            c.num_params(),
            if self.int8 {
                " as int8 (model file version 2)"
            } else {
                ""
            }
        )?;
        if let Some(w) = &self.window {
            writeln!(
                f,
                "window   {} steps × {} channels, hop {}, {} Hz",
                w.len, w.channels, w.hop, w.sample_rate_hz
            )?;
        }
        write!(f, "score    {}", score_name(self.score))?;
        match &self.threshold {
            Some(t) => write!(
                f,
                ", threshold {} (false-alarm rate {})",
                t.value, t.false_alarm_rate
            ),
            None => write!(
                f,
                "\nwarning  no calibrated threshold: the firmware can score but not flag anomalies; run `host-trainer score --calibrate` first"
            ),
        }
    }
}

/// `6-5-4-2 / 2-3-6`: encoder widths, then decoder widths.
fn arch(c: &VaeConfig) -> String {
    let join = |v: Vec<usize>| v.iter().map(usize::to_string).collect::<Vec<_>>().join("-");
    let enc = [&[c.input][..], c.encoder_hidden.widths(), &[c.latent]].concat();
    let dec = [&[c.latent][..], c.decoder_hidden.widths(), &[c.input]].concat();
    let act = match c.activation {
        Activation::Tanh => "tanh",
        Activation::Relu => "ReLU",
    };
    format!("{} / {} {act}", join(enc), join(dec))
}

/// A model in words: `192-128-8 tanh, Gaussian decoder (σ ≥ 0.1)` (input, encoder widths and
/// latent dimension, the hidden nonlinearity and the decoder); the decoder's widths are
/// spelled out (`6-5-4-2 / 2-3-6 tanh, ...`) when they do not mirror the encoder's.
pub fn describe(c: &VaeConfig) -> String {
    let mirrored: Vec<usize> = c.encoder_hidden.widths().iter().rev().copied().collect();
    let arch = arch(c);
    let arch = if mirrored == c.decoder_hidden.widths() {
        match arch.split_once(" / ") {
            Some((enc, rest)) => format!("{enc}{}", &rest[rest.find(' ').unwrap_or(0)..]),
            None => arch,
        }
    } else {
        arch
    };
    format!("{arch}, {}", likelihood_name(c.likelihood))
}

fn likelihood_name(l: Likelihood) -> &'static str {
    match l {
        Likelihood::Bernoulli => "Bernoulli decoder",
        Likelihood::Gaussian {
            sigmoid_mean: false,
            floor: false,
        } => "Gaussian decoder",
        Likelihood::Gaussian {
            sigmoid_mean: true,
            floor: false,
        } => "Gaussian decoder (sigmoid mean)",
        Likelihood::Gaussian {
            sigmoid_mean: false,
            floor: true,
        } => "Gaussian decoder (σ ≥ 0.1)",
        Likelihood::Gaussian {
            sigmoid_mean: true,
            floor: true,
        } => "Gaussian decoder (sigmoid mean, σ ≥ 0.1)",
    }
}

fn score_name(s: ScoreKind) -> String {
    match s {
        ScoreKind::NegElboAtMean => "−ELBO at z = μ".into(),
        ScoreKind::NegElbo { samples } => format!("−ELBO, {samples} samples"),
        ScoreKind::NegLogLikelihood { samples } => format!("−log p̂(x), {samples} samples"),
        ScoreKind::ReconstructionProbability { samples } => {
            format!("reconstruction probability, {samples} samples")
        }
    }
}

/// What an int8 export puts in place of the checkpoint's f32 parameters and threshold: the
/// quantized model and its own calibrated threshold (int8 scores differ from f32 scores, so the
/// checkpoint's threshold does not apply; `None` exports none).
#[derive(Clone, Copy, Debug)]
pub struct Int8Export<'a> {
    /// The quantized model (calibrated on the training windows).
    pub model: &'a crate::quantize::Int8Model,
    /// Its threshold, calibrated on its own scores.
    pub threshold: Option<Threshold>,
}

/// The model file's contents for `ckpt` (int8 with `int8`), with the parts that went into it.
fn build(
    ckpt: &Checkpoint,
    int8: Option<&Int8Export<'_>>,
) -> Result<(Vec<u8>, ExportSummary), ExportErrorKind> {
    let config = ckpt.spec.config().map_err(ExportErrorKind::InvalidSpec)?;
    let window = ckpt.window.map(|w| Window {
        len: w.len,
        hop: w.hop,
        channels: w.channels,
        sample_rate_hz: w.sample_rate_hz,
    });
    let (score, threshold) = match &ckpt.calibration {
        Some(c) => (
            c.score.kind(c.samples),
            Some(Threshold {
                value: c.threshold,
                false_alarm_rate: c.false_alarm_rate as f32,
            }),
        ),
        None => (ScoreKind::NegElboAtMean, None),
    };
    let threshold = match int8 {
        Some(q) => q.threshold,
        None => threshold,
    };
    let score = if int8.is_some() {
        ScoreKind::NegElboAtMean
    } else {
        score
    };
    let parts = ModelParts {
        config,
        window,
        score,
        threshold,
        norm_offset: &ckpt.norm.offset,
        norm_scale: &ckpt.norm.scale,
        params: if int8.is_some() { &[] } else { &ckpt.params },
        quant: int8.map(|q| q.model.parts()),
    };
    let len = if int8.is_some() {
        modelfile::file_len_int8(&config)
    } else {
        modelfile::file_len(&config)
    };
    let mut bytes = vec![0u8; len];
    let n = modelfile::write(&mut bytes, &parts).map_err(ExportErrorKind::Model)?;
    bytes.truncate(n);
    let crc32 = u32::from_le_bytes(bytes[n - 4..].try_into().unwrap_or_default());
    let summary = ExportSummary {
        path: PathBuf::new(),
        rust: None,
        bytes: n,
        crc32,
        config,
        score,
        threshold,
        window,
        int8: int8.is_some(),
    };
    Ok((bytes, summary))
}

/// The model file bytes for `ckpt` (what [`export_model_file`] writes).
pub fn model_file_bytes(ckpt: &Checkpoint) -> Result<Vec<u8>, ExportErrorKind> {
    build(ckpt, None).map(|(bytes, _)| bytes)
}

/// Writes `ckpt` as a model file at `path`, atomically.
pub fn export_model_file(ckpt: &Checkpoint, path: &Path) -> Result<ExportSummary, ExportError> {
    export_model_file_with(ckpt, None, path)
}

/// Writes `ckpt` as a model file at `path`, atomically: int8 (version 2) with `int8`.
pub fn export_model_file_with(
    ckpt: &Checkpoint,
    int8: Option<&Int8Export<'_>>,
    path: &Path,
) -> Result<ExportSummary, ExportError> {
    let err = |kind| ExportError {
        path: path.to_path_buf(),
        kind,
    };
    let (bytes, mut summary) = build(ckpt, int8).map_err(err)?;
    crate::io::write_atomic(path, &bytes).map_err(|e| err(ExportErrorKind::Write(e)))?;
    summary.path = path.to_path_buf();
    Ok(summary)
}

/// Writes a Rust module at `path` (e.g. `src/model.rs`) and the model file it embeds next to
/// it (same name, extension `.vaem`). The module compiles in a `no_std` crate that depends on
/// `vae-nostd`; see [`rust_source`] for what it declares.
pub fn export_rust(ckpt: &Checkpoint, path: &Path) -> Result<ExportSummary, ExportError> {
    export_rust_with(ckpt, None, path)
}

/// [`export_rust`], int8 (version 2) with `int8`.
pub fn export_rust_with(
    ckpt: &Checkpoint,
    int8: Option<&Int8Export<'_>>,
    path: &Path,
) -> Result<ExportSummary, ExportError> {
    let err = |kind| ExportError {
        path: path.to_path_buf(),
        kind,
    };
    let model_path = path.with_extension("vaem");
    if model_path == path {
        return Err(err(ExportErrorKind::RustPath));
    }
    let file_name = model_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (bytes, mut summary) = build(ckpt, int8).map_err(err)?;
    let source = render(&summary, &file_name);
    crate::io::write_atomic(&model_path, &bytes).map_err(|e| ExportError {
        path: model_path.clone(),
        kind: ExportErrorKind::Write(e),
    })?;
    crate::io::write_atomic(path, source.as_bytes()).map_err(|e| err(ExportErrorKind::Write(e)))?;
    summary.path = model_path;
    summary.rust = Some(path.to_path_buf());
    Ok(summary)
}

/// The generated Rust module for `ckpt`, embedding the model file `model_file` (a path relative
/// to the module, as `include_bytes!` reads it). Deterministic: the same checkpoint gives the
/// same text. It declares:
///
/// * `CONFIG: vae_nostd::VaeConfig` — the architecture, to size statics at compile time;
/// * `NUM_PARAMS`, `INPUT`, `LATENT` — sizes, checked against `CONFIG` by `const` asserts;
/// * `WINDOW_LEN`, `WINDOW_HOP`, `CHANNELS`, `SAMPLE_RATE_HZ` — for sensor models;
/// * `MODEL_LEN`, `MODEL_CRC32`, and `MODEL: [u8; MODEL_LEN]` — the model file via
///   `include_bytes!` (a length mismatch fails the build). The firmware checks it at start-up
///   with `ModelFile::parse(&MODEL)` and `expect_config(&CONFIG)`.
pub fn rust_source(ckpt: &Checkpoint, model_file: &str) -> Result<String, ExportErrorKind> {
    build(ckpt, None).map(|(_, summary)| render(&summary, model_file))
}

fn render(s: &ExportSummary, model_file: &str) -> String {
    let c = &s.config;
    let list = |w: &[usize]| {
        w.iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let activation = match c.activation {
        Activation::Tanh => "Tanh",
        Activation::Relu => "Relu",
    };
    let likelihood = match c.likelihood {
        Likelihood::Bernoulli => "Bernoulli".to_string(),
        Likelihood::Gaussian {
            sigmoid_mean,
            floor,
        } => {
            format!("Gaussian {{ sigmoid_mean: {sigmoid_mean}, floor: {floor} }}")
        }
    };
    let mut out = String::new();
    let mut line = |l: &str| {
        out.push_str(l);
        out.push('\n');
    };
    line("// @generated by host-trainer (vae-mcu) from a checkpoint. Do not edit: export again.");
    line(&format!(
        "//! Model {model_file}: {}, {}, {} parameters{}; score {}.",
        arch(c),
        likelihood_name(c.likelihood),
        c.num_params(),
        if s.int8 { " quantized to int8" } else { "" },
        score_name(s.score)
    ));
    line(&format!(
        "//! The model file has {} bytes and CRC-32 {:#010x}.",
        s.bytes, s.crc32
    ));
    line("//!");
    line("//! Include with `mod model;` from a no_std crate depending on vae-nostd, next to the");
    line("//! model file, and check the model at start-up:");
    line("//! ```text");
    line("//! let file = vae_nostd::modelfile::ModelFile::parse(&model::MODEL)?;");
    line("//! file.expect_config(&model::CONFIG)?;");
    if s.int8 {
        line(
            "//! let q = file.quant_in_place(); // int8: the weights in place (an `Aligned` image)",
        );
    } else {
        line("//! file.copy_params(&mut PARAMS)?; // PARAMS: Buffer<f32, { model::NUM_PARAMS }>");
    }
    line("//! ```");
    line("");
    line("/// Architecture of the exported model.");
    line("pub const CONFIG: vae_nostd::VaeConfig = vae_nostd::VaeConfig::new(");
    line(&format!("    {},", c.input));
    line(&format!("    &[{}],", list(c.encoder_hidden.widths())));
    line(&format!("    {},", c.latent));
    line(&format!("    vae_nostd::Activation::{activation},"));
    line(&format!("    vae_nostd::Likelihood::{likelihood},"));
    line(")");
    line(&format!(
        ".with_decoder_hidden(&[{}]);",
        list(c.decoder_hidden.widths())
    ));
    line("");
    line("/// Parameters of `CONFIG`: the length of the parameter buffer.");
    line(&format!(
        "pub const NUM_PARAMS: usize = {};",
        c.num_params()
    ));
    line("/// Input dimension D: one input, and each normalization vector.");
    line(&format!("pub const INPUT: usize = {};", c.input));
    line("/// Latent dimension Z.");
    line(&format!("pub const LATENT: usize = {};", c.latent));
    if let Some(w) = &s.window {
        line("");
        line("/// Time steps per window.");
        line(&format!("pub const WINDOW_LEN: usize = {};", w.len));
        line("/// Samples between window starts.");
        line(&format!("pub const WINDOW_HOP: usize = {};", w.hop));
        line("/// Channels per time step.");
        line(&format!("pub const CHANNELS: usize = {};", w.channels));
        line("/// Sampling rate in Hz.");
        line(&format!(
            "pub const SAMPLE_RATE_HZ: f32 = {:?};",
            w.sample_rate_hz
        ));
    }
    line("");
    line("/// How the model file stores the parameters (f32: version 1, int8: version 2).");
    line(&format!(
        "pub const FORMAT: vae_nostd::modelfile::Format = vae_nostd::modelfile::Format::{};",
        if s.int8 { "Int8" } else { "F32" }
    ));
    line("/// Bytes of `MODEL`.");
    line(&format!("pub const MODEL_LEN: usize = {};", s.bytes));
    line("/// CRC-32 at the end of `MODEL`: log it to know which model a device runs.");
    line(&format!("pub const MODEL_CRC32: u32 = {:#010x};", s.crc32));
    line("/// The model file; check it at start-up with `vae_nostd::modelfile::ModelFile::parse`.");
    line(&format!(
        "pub static MODEL: [u8; MODEL_LEN] = *include_bytes!({model_file:?});"
    ));
    line("");
    line("const _: () = assert!(CONFIG.num_params() == NUM_PARAMS);");
    line("const _: () = assert!(CONFIG.input == INPUT && CONFIG.latent == LATENT);");
    line(&format!(
        "const _: () = assert!(vae_nostd::modelfile::{}(&CONFIG) == MODEL_LEN);",
        if s.int8 { "file_len_int8" } else { "file_len" }
    ));
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use vae_nostd::modelfile::ModelFile;

    use super::*;
    use crate::model::{
        ActivationName, Calibration, LikelihoodName, ModelSpec, Normalization, ScoreName,
        WindowMeta,
    };

    fn ckpt() -> Checkpoint {
        let spec = ModelSpec {
            input: 6,
            encoder_hidden: vec![5, 4],
            decoder_hidden: vec![3],
            latent: 2,
            activation: ActivationName::Tanh,
            likelihood: LikelihoodName::Gaussian,
        };
        let p = spec.config().unwrap().num_params();
        Checkpoint {
            params: (0..p)
                .map(|i| match i % 9 {
                    0 => -0.0,
                    1 => 1e-40,
                    _ => (i as f32 * 0.37).sin(),
                })
                .collect(),
            norm: Normalization {
                offset: vec![0.5, -1.0, 2.0, 0.0, 3.25, -0.0],
                scale: vec![1.0, 2.0, 0.5, 4.0, 1e-3, 1e3],
            },
            window: Some(WindowMeta {
                len: 3,
                hop: 1,
                channels: 2,
                sample_rate_hz: 100.0,
            }),
            calibration: Some(Calibration {
                score: ScoreName::RecProb,
                samples: 8,
                threshold: 9.75,
                false_alarm_rate: 0.005,
                calibration_windows: 1000,
            }),
            train: None,
            info: json!({}),
            spec,
        }
    }

    fn bits(xs: impl IntoIterator<Item = f32>) -> Vec<u32> {
        xs.into_iter().map(f32::to_bits).collect()
    }

    #[test]
    fn export_then_parse_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out/model.vaem");
        let c = ckpt();
        let summary = export_model_file(&c, &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(summary.bytes, bytes.len());
        let f = ModelFile::parse(&bytes).unwrap();
        assert_eq!(f.config(), c.spec.config().unwrap());
        assert_eq!(bits(f.params()), bits(c.params.iter().copied()));
        assert_eq!(bits(f.normalization_offset()), bits(c.norm.offset.clone()));
        assert_eq!(bits(f.normalization_scale()), bits(c.norm.scale.clone()));
        assert_eq!(f.threshold(), Some(9.75));
        assert_eq!(f.false_alarm_rate(), Some(0.005));
        assert_eq!(
            f.score(),
            ScoreKind::ReconstructionProbability { samples: 8 }
        );
        assert_eq!(
            f.window(),
            Some(Window {
                len: 3,
                hop: 1,
                channels: 2,
                sample_rate_hz: 100.0
            })
        );
        assert_eq!(f.crc(), summary.crc32);
        let text = summary.to_string();
        assert!(
            text.contains("threshold 9.75") && !text.contains("warning"),
            "{text}"
        );
    }

    #[test]
    fn uncalibrated_models_export_without_a_threshold() {
        let c = Checkpoint {
            calibration: None,
            window: None,
            ..ckpt()
        };
        let bytes = model_file_bytes(&c).unwrap();
        let f = ModelFile::parse(&bytes).unwrap();
        assert_eq!(f.threshold(), None);
        assert_eq!(f.window(), None);
        assert_eq!(f.score(), ScoreKind::NegElboAtMean);
        let dir = tempfile::tempdir().unwrap();
        let s = export_model_file(&c, &dir.path().join("m.vaem")).unwrap();
        assert!(s.to_string().contains("score --calibrate"));
    }

    #[test]
    fn bad_checkpoints_are_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.vaem");
        let mut c = ckpt();
        c.params[4] = f32::INFINITY;
        let e = export_model_file(&c, &path).unwrap_err();
        assert!(matches!(
            e.kind,
            ExportErrorKind::Model(ModelFileError::NonFinite {
                what: "params",
                index: 4
            })
        ));
        assert!(e.to_string().contains("m.vaem"));
        assert!(!path.exists());
        let mut c = ckpt();
        c.window.as_mut().unwrap().channels = 4; // 3 × 4 ≠ 6
        assert!(matches!(
            model_file_bytes(&c),
            Err(ExportErrorKind::Model(ModelFileError::Inconsistent(_)))
        ));
        let mut c = ckpt();
        c.spec.latent = 0;
        assert!(matches!(
            model_file_bytes(&c),
            Err(ExportErrorKind::InvalidSpec(_))
        ));
    }

    #[test]
    fn rust_source_declares_the_model_and_is_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let rs = dir.path().join("model.rs");
        let c = ckpt();
        let s = export_rust(&c, &rs).unwrap();
        let text = std::fs::read_to_string(&rs).unwrap();
        let model = dir.path().join("model.vaem");
        assert_eq!(s.path, model);
        assert_eq!(s.rust.as_deref(), Some(rs.as_path()));
        let bytes = std::fs::read(&model).unwrap();
        ModelFile::parse(&bytes).unwrap();
        for needle in [
            "pub const CONFIG: vae_nostd::VaeConfig = vae_nostd::VaeConfig::new(\n    6,\n    &[5, 4],\n    2,\n    vae_nostd::Activation::Tanh,\n    vae_nostd::Likelihood::Gaussian { sigmoid_mean: false, floor: false },\n)\n.with_decoder_hidden(&[3]);",
            &format!(
                "pub const NUM_PARAMS: usize = {};",
                c.spec.config().unwrap().num_params()
            ),
            "pub const INPUT: usize = 6;",
            "pub const LATENT: usize = 2;",
            "pub const WINDOW_LEN: usize = 3;",
            "pub const CHANNELS: usize = 2;",
            "pub const SAMPLE_RATE_HZ: f32 = 100.0;",
            &format!("pub const MODEL_LEN: usize = {};", bytes.len()),
            &format!("pub const MODEL_CRC32: u32 = {:#010x};", s.crc32),
            "pub static MODEL: [u8; MODEL_LEN] = *include_bytes!(\"model.vaem\");",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert_eq!(text, rust_source(&c, "model.vaem").unwrap());
        assert!(matches!(
            export_rust(&c, &model).unwrap_err().kind,
            ExportErrorKind::RustPath
        ));
    }
}

#[cfg(test)]
mod describe_tests {
    use super::*;

    #[test]
    fn describe_speaks_in_words() {
        let floor = Likelihood::Gaussian {
            sigmoid_mean: false,
            floor: true,
        };
        let c = VaeConfig::new(192, &[128], 8, Activation::Tanh, floor);
        assert_eq!(describe(&c), "192-128-8 tanh, Gaussian decoder (σ ≥ 0.1)");
        let c = VaeConfig::new(784, &[500], 20, Activation::Relu, Likelihood::Bernoulli);
        assert_eq!(describe(&c), "784-500-20 ReLU, Bernoulli decoder");
        let c = c.with_decoder_hidden(&[64, 32]);
        assert_eq!(
            describe(&c),
            "784-500-20 / 20-64-32-784 ReLU, Bernoulli decoder"
        );
    }
}
