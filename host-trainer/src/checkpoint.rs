//! Checkpoints as safetensors: one file holds the parameters, the normalization, the optimizer
//! state and, as string metadata, everything else, and loads into PyTorch as it is.
//!
//! ## Contents
//!
//! | tensor | dtype | shape | what |
//! |---|---|---|---|
//! | `encoder.0.weight`, `encoder.0.bias`, ... | F32 | `[out, in]`, `[out]` | parameters, named and shaped by [`VaeConfig::tensor`](vae_nostd::VaeConfig::tensor) (PyTorch `nn.Linear`) |
//! | `normalization.offset`, `normalization.scale` | F32 | `[D]` | input normalization `x' = (x − offset) · scale` |
//! | `optimizer.state` | F32 | `[k · num_params]` | optimizer moments, same layout as the parameters (k = 1 for Adagrad and SGD, 2 for Adam); only with training state |
//! | `train.params` | F32 | `[num_params]` | with early stopping, the parameters training continues from when the model's (best so far) differ; only with training state |
//!
//! | metadata key | value |
//! |---|---|
//! | `format` | `vae-mcu-checkpoint/2` (`/1`, before the digest, is still read, as unverified) |
//! | `vae.crc32` | CRC-32 of the whole file written with this value `00000000` ([`KEY_DIGEST`]); checked before anything else is read |
//! | `vae.spec` | [`ModelSpec`] as JSON |
//! | `vae.window` | [`WindowMeta`] as JSON (sensor models) |
//! | `vae.calibration` | [`Calibration`] as JSON (calibrated models) |
//! | `vae.train` | [`TrainState`] as JSON, without the moments (resumable checkpoints) |
//! | `vae.info` | free-form JSON: training configuration, seed, data, curves |
//!
//! Saving is atomic ([`crate::io::write_atomic`]) and deterministic: the same checkpoint gives
//! the same bytes (tensors in parameter order, JSON keys sorted).
//!
//! ## From and to PyTorch
//!
//! Loading also accepts what `safetensors.torch.save_file(model.state_dict(), path,
//! metadata={"vae.spec": json.dumps(spec)})` writes: F32, F64, F16 or BF16 tensors (converted to
//! f32), no normalization (the identity is used), no other metadata. Without `vae.spec` the
//! architecture is inferred from the tensor shapes, and the activation — which no shape
//! reveals — comes from the hint of [`Checkpoint::load_with`]. A module with the matching names:
//!
//! ```python
//! import json
//! from torch import nn
//! from safetensors import safe_open
//! from safetensors.torch import load_file, save_file
//!
//! class VAE(nn.Module):
//!     def __init__(self, spec):
//!         super().__init__()
//!         self.act = nn.Tanh() if spec["activation"] == "tanh" else nn.ReLU()
//!         enc = [spec["input"], *spec["encoder_hidden"]]
//!         self.encoder = nn.ModuleDict({str(i): nn.Linear(a, b) for i, (a, b) in enumerate(zip(enc, enc[1:]))})
//!         self.encoder["mu"] = nn.Linear(enc[-1], spec["latent"])
//!         self.encoder["logvar"] = nn.Linear(enc[-1], spec["latent"])
//!         dec = [spec["latent"], *spec["decoder_hidden"]]
//!         self.decoder = nn.ModuleDict({str(i): nn.Linear(a, b) for i, (a, b) in enumerate(zip(dec, dec[1:]))})
//!         if spec["likelihood"] == "bernoulli":
//!             self.decoder["logits"] = nn.Linear(dec[-1], spec["input"])
//!         else:  # "gaussian" or "gaussian-sigmoid" (mean squashed by a sigmoid)
//!             self.decoder["mean"] = nn.Linear(dec[-1], spec["input"])
//!             self.decoder["logvar"] = nn.Linear(dec[-1], spec["input"])
//!
//! path = "model.safetensors"
//! with safe_open(path, "pt") as f:
//!     spec = json.loads(f.metadata()["vae.spec"])
//! tensors = load_file(path)
//! model = VAE(spec)
//! model.load_state_dict({k: v for k, v in tensors.items() if k.startswith(("encoder.", "decoder."))})
//! # ... train in PyTorch, then hand it back to host-trainer:
//! save_file(model.state_dict(), "tuned.safetensors", metadata={"vae.spec": json.dumps(spec)})
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use vae_nostd::MAX_HIDDEN;

pub use crate::model::Checkpoint;
use crate::model::{
    ActivationName, Calibration, LikelihoodName, ModelSpec, Normalization, TrainState, WindowMeta,
};

/// Value of the `format` metadata key: version 2 carries the [`KEY_DIGEST`] digest.
pub const FORMAT: &str = "vae-mcu-checkpoint/2";
/// The format before the digest (issue 12): still read, reported as unverified.
pub const FORMAT_V1: &str = "vae-mcu-checkpoint/1";
/// Metadata key: CRC-32 (IEEE) of the whole file as written with this value set to
/// `00000000`, as 8 lowercase hex digits. Every byte is covered: the length prefix, the
/// header (tensor names, shapes, offsets, every other metadata entry, the padding) and the
/// tensor data, so one flipped bit anywhere is detected (CRC-32 detects every single-bit and
/// every burst error up to 32 bits).
pub const KEY_DIGEST: &str = "vae.crc32";
/// Metadata key: the format tag.
pub const KEY_FORMAT: &str = "format";
/// Metadata key: [`ModelSpec`] JSON.
pub const KEY_SPEC: &str = "vae.spec";
/// Metadata key: [`WindowMeta`] JSON.
pub const KEY_WINDOW: &str = "vae.window";
/// Metadata key: [`Calibration`] JSON.
pub const KEY_CALIBRATION: &str = "vae.calibration";
/// Metadata key: [`TrainState`] JSON (without the moments).
pub const KEY_TRAIN: &str = "vae.train";
/// Metadata key: free-form JSON.
pub const KEY_INFO: &str = "vae.info";
/// Tensor name of the normalization offset.
pub const NORM_OFFSET: &str = "normalization.offset";
/// Tensor name of the normalization scale.
pub const NORM_SCALE: &str = "normalization.scale";
/// Tensor name of the optimizer moments.
pub const OPTIMIZER_STATE: &str = "optimizer.state";
/// Tensor name of the parameters training continues from, when early stopping keeps other
/// (better) ones as the model.
pub const TRAIN_PARAMS: &str = "train.params";

/// A checkpoint could not be saved or loaded: which file, and why.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct CheckpointError {
    /// The checkpoint file.
    pub path: PathBuf,
    /// What went wrong.
    pub kind: CheckpointErrorKind,
}

impl CheckpointError {
    fn new(path: &Path, kind: CheckpointErrorKind) -> Self {
        CheckpointError {
            path: path.to_path_buf(),
            kind,
        }
    }
}

/// Why a checkpoint could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointErrorKind {
    /// The file could not be read.
    #[error("cannot read the checkpoint: {0}")]
    Read(std::io::Error),
    /// The file could not be written.
    #[error("cannot write the checkpoint: {0}; check that the directory is writable")]
    Write(std::io::Error),
    /// Not a safetensors file, or cut short.
    #[error(
        "not a safetensors file, or truncated ({0}); save it again with host-trainer or safetensors.torch.save_file"
    )]
    NotSafetensors(String),
    /// The `format` metadata names another format or version.
    #[error(
        "has format `{0}`, but this build reads `{FORMAT}` (and `{FORMAT_V1}`); use a matching host-trainer"
    )]
    UnsupportedFormat(String),
    /// The digest does not match the bytes: the file was changed or damaged.
    #[error(
        "is corrupt: its `vae.crc32` digest is {stored} but its bytes give {computed:08x}; restore it from a copy or train again"
    )]
    Digest {
        /// The stored digest, as found.
        stored: String,
        /// The CRC-32 of the bytes as read.
        computed: u32,
    },
    /// A version-2 file without its digest (the key itself damaged, or removed).
    #[error("is corrupt: format `{FORMAT}` requires a `vae.crc32` digest and it has none")]
    MissingDigest,
    /// No `vae.spec` metadata and no hint to complete the inferred architecture.
    #[error(
        "has no `vae.spec` metadata; pass the activation (e.g. --activation tanh) so the architecture can be inferred from the tensor shapes"
    )]
    MissingSpec,
    /// The architecture cannot be inferred from the tensor names and shapes.
    #[error("cannot infer the architecture from the tensors: {0}; add `vae.spec` metadata")]
    CannotInfer(String),
    /// The architecture is invalid.
    #[error("describes an invalid model: {0}")]
    InvalidSpec(String),
    /// A tensor the architecture needs is absent.
    #[error("has no tensor `{0}`; was it saved from a model with the same architecture and names?")]
    MissingTensor(String),
    /// A tensor has the wrong shape.
    #[error(
        "tensor `{name}` has shape {found:?}, expected {expected:?}; the tensors and `vae.spec` describe different models"
    )]
    Shape {
        /// Tensor name.
        name: String,
        /// Shape the architecture requires.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// A tensor has a dtype that is not a float this loader converts.
    #[error("tensor `{name}` has dtype {dtype}; only F32, F64, F16 and BF16 can be loaded")]
    Dtype {
        /// Tensor name.
        name: String,
        /// Its dtype.
        dtype: String,
    },
    /// Tensors that belong to no parameter of the architecture.
    #[error(
        "has tensors that match no VAE parameter: {}; save only the VAE's state_dict or fix the names",
        .0.join(", ")
    )]
    ExtraTensors(Vec<String>),
    /// A metadata value is not the JSON it should be.
    #[error("metadata `{key}` is invalid: {reason}")]
    Metadata {
        /// The key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// NaN or ±∞ (possibly after conversion to f32).
    #[error(
        "tensor `{name}` holds NaN or infinity at index {index}; the model diverged, use an earlier checkpoint"
    )]
    NonFinite {
        /// Tensor name.
        name: String,
        /// First bad element (row-major).
        index: usize,
    },
    /// The in-memory checkpoint is inconsistent and was not saved.
    #[error("cannot save an inconsistent checkpoint: {0}")]
    Inconsistent(String),
}

use CheckpointErrorKind as Kind;

impl Checkpoint {
    /// Saves as safetensors, atomically (the old file survives any failure).
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let bytes = self
            .to_safetensors()
            .map_err(|k| CheckpointError::new(path, k))?;
        crate::io::write_atomic(path, &bytes)
            .map_err(|e| CheckpointError::new(path, Kind::Write(e)))
    }

    /// Loads a checkpoint saved by [`Checkpoint::save`] or by PyTorch with `vae.spec` metadata.
    pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
        Self::load_with(path, None)
    }

    /// Loads a checkpoint; when it has no `vae.spec` metadata, infers the architecture from the
    /// tensor shapes and takes from `hint` what shapes cannot tell: the activation and, for a
    /// Gaussian decoder, whether its mean passes through a sigmoid. With `vae.spec` present the
    /// hint is ignored.
    pub fn load_with(path: &Path, hint: Option<&ModelSpec>) -> Result<Checkpoint, CheckpointError> {
        let bytes = std::fs::read(path).map_err(|e| CheckpointError::new(path, Kind::Read(e)))?;
        Self::from_safetensors(&bytes, hint).map_err(|k| CheckpointError::new(path, k))
    }

    /// The safetensors bytes [`Checkpoint::save`] writes.
    pub fn to_safetensors(&self) -> Result<Vec<u8>, CheckpointErrorKind> {
        let cfg = self
            .spec
            .config()
            .map_err(|e| Kind::InvalidSpec(e.to_string()))?;
        let (d, p) = (cfg.input, cfg.num_params());
        for (what, expected, actual) in [
            ("params", p, self.params.len()),
            (NORM_OFFSET, d, self.norm.offset.len()),
            (NORM_SCALE, d, self.norm.scale.len()),
        ] {
            if expected != actual {
                return Err(Kind::Inconsistent(format!(
                    "`{what}` has {actual} values, the architecture needs {expected}"
                )));
            }
        }
        check_meta(self.window.as_ref(), self.train.as_ref(), d)?;
        let empty = Vec::new();
        let state = self.train.as_ref().map_or(&empty, |t| &t.optim_state);
        if let Some(t) = &self.train {
            check_state_len(&t.optimizer, p, state.len()).map_err(|e| match e {
                Kind::Shape {
                    expected, found, ..
                } => Kind::Inconsistent(format!(
                    "`optim_state` has {} values, optimizer `{}` needs {:?}",
                    found[0], t.optimizer, expected
                )),
                e => e,
            })?;
        }

        // Tensors in parameter order, then normalization, then optimizer state.
        let mut tensors: Vec<(&str, Vec<usize>, &[f32])> = Vec::new();
        for t in (0..cfg.num_tensors()).filter_map(|i| cfg.tensor(i)) {
            tensors.push((
                t.name,
                tensor_shape(&t),
                &self.params[t.offset..t.offset + t.len()],
            ));
        }
        tensors.push((NORM_OFFSET, vec![d], &self.norm.offset));
        tensors.push((NORM_SCALE, vec![d], &self.norm.scale));
        if !state.is_empty() {
            tensors.push((OPTIMIZER_STATE, vec![state.len()], state));
        }
        if let Some(t) = self.train.as_ref().filter(|t| !t.current_params.is_empty()) {
            if t.current_params.len() != p {
                return Err(Kind::Inconsistent(format!(
                    "`current_params` has {} values, the architecture needs {p}",
                    t.current_params.len()
                )));
            }
            tensors.push((TRAIN_PARAMS, vec![p], &t.current_params));
        }
        for (name, _, values) in &tensors {
            check_finite(name, values)?;
        }

        let mut meta = BTreeMap::new();
        meta.insert(KEY_FORMAT, FORMAT.to_string());
        meta.insert(KEY_SPEC, to_json(KEY_SPEC, &self.spec)?);
        if let Some(w) = &self.window {
            meta.insert(KEY_WINDOW, to_json(KEY_WINDOW, w)?);
        }
        if let Some(c) = &self.calibration {
            meta.insert(KEY_CALIBRATION, to_json(KEY_CALIBRATION, c)?);
        }
        if let Some(t) = &self.train {
            meta.insert(KEY_TRAIN, to_json(KEY_TRAIN, t)?);
        }
        meta.insert(KEY_INFO, to_json(KEY_INFO, &self.info)?);
        meta.insert(KEY_DIGEST, DIGEST_PLACEHOLDER.to_string());
        let mut out = serialize_f32(&tensors, &meta)?;
        let span = digest_span(&out).ok_or(Kind::Metadata {
            key: KEY_DIGEST,
            reason: "not found in the header just written".into(),
        })?;
        let crc = file_crc(&out, span.clone());
        out[span].copy_from_slice(format!("{crc:08x}").as_bytes());
        Ok(out)
    }

    /// Parses safetensors bytes (see [`Checkpoint::load_with`] for `hint`).
    pub fn from_safetensors(
        bytes: &[u8],
        hint: Option<&ModelSpec>,
    ) -> Result<Checkpoint, CheckpointErrorKind> {
        Self::from_safetensors_checked(bytes, hint).map(|(c, _)| c)
    }

    /// [`Checkpoint::load_with`], also saying whether the file's digest was checked.
    pub fn load_checked(
        path: &Path,
        hint: Option<&ModelSpec>,
    ) -> Result<(Checkpoint, Integrity), CheckpointError> {
        let bytes = std::fs::read(path).map_err(|e| CheckpointError::new(path, Kind::Read(e)))?;
        Self::from_safetensors_checked(&bytes, hint).map_err(|k| CheckpointError::new(path, k))
    }

    /// [`Checkpoint::from_safetensors`], also saying whether the digest was checked: a
    /// version-2 file must carry a matching one (else [`CheckpointErrorKind::Digest`] or
    /// [`CheckpointErrorKind::MissingDigest`]); a version-1 file or one written elsewhere
    /// (PyTorch) has none and loads [`Integrity::Unverified`].
    pub fn from_safetensors_checked(
        bytes: &[u8],
        hint: Option<&ModelSpec>,
    ) -> Result<(Checkpoint, Integrity), CheckpointErrorKind> {
        let (_, header) =
            SafeTensors::read_metadata(bytes).map_err(|e| Kind::NotSafetensors(e.to_string()))?;
        let st =
            SafeTensors::deserialize(bytes).map_err(|e| Kind::NotSafetensors(e.to_string()))?;
        let meta = header.metadata().clone().unwrap_or_default();
        if let Some(f) = meta.get(KEY_FORMAT)
            && f != FORMAT
            && f != FORMAT_V1
        {
            return Err(Kind::UnsupportedFormat(f.clone()));
        }
        // Integrity first: nothing below reads values a damaged file could have changed.
        let integrity = match meta.get(KEY_DIGEST) {
            Some(stored) => {
                let span = digest_span(bytes).ok_or(Kind::Digest {
                    stored: stored.clone(),
                    computed: 0,
                })?;
                let computed = file_crc(bytes, span);
                if *stored != format!("{computed:08x}") {
                    return Err(Kind::Digest {
                        stored: stored.clone(),
                        computed,
                    });
                }
                Integrity::Verified
            }
            None if meta.get(KEY_FORMAT).is_some_and(|f| f == FORMAT) => {
                return Err(Kind::MissingDigest);
            }
            None if meta.get(KEY_FORMAT).is_some_and(|f| f == FORMAT_V1) => Integrity::Unverified(
                "written by a host-trainer before checkpoints carried a digest",
            ),
            None => Integrity::Unverified("not written by host-trainer (no digest)"),
        };
        Self::parse_verified(bytes, &st, &meta, hint).map(|c| (c, integrity))
    }

    fn parse_verified(
        bytes: &[u8],
        st: &SafeTensors<'_>,
        meta: &std::collections::HashMap<String, String>,
        hint: Option<&ModelSpec>,
    ) -> Result<Checkpoint, CheckpointErrorKind> {
        let spec: ModelSpec = match meta.get(KEY_SPEC) {
            Some(s) => from_json(KEY_SPEC, s)?,
            None => infer_spec(st, hint)?,
        };
        let cfg = spec
            .config()
            .map_err(|e| Kind::InvalidSpec(e.to_string()))?;
        let (d, p) = (cfg.input, cfg.num_params());
        // Before allocating for the parameters: the file must hold them, at 2 bytes each at
        // least (F16/BF16). Issue 12: a 256-byte file whose `vae.spec` claimed 16384-wide
        // layers allocated 10.7 GB before any tensor was read.
        if (p as u64).saturating_mul(2) > bytes.len() as u64 {
            return Err(Kind::Inconsistent(format!(
                "the architecture has {p} parameters ({:.1} MB as f32) but the file has only {} bytes",
                p as f64 * 4e-6,
                bytes.len()
            )));
        }

        let mut used: BTreeSet<&str> = BTreeSet::new();
        let mut params = vec![0f32; p];
        for t in (0..cfg.num_tensors()).filter_map(|i| cfg.tensor(i)) {
            let values = read_tensor(st, t.name, &tensor_shape(&t))?;
            params[t.offset..t.offset + t.len()].copy_from_slice(&values);
            used.insert(t.name);
        }

        let norm = match (
            st.tensor(NORM_OFFSET).is_ok(),
            st.tensor(NORM_SCALE).is_ok(),
        ) {
            (false, false) => Normalization::identity(d),
            _ => Normalization {
                offset: read_tensor(st, NORM_OFFSET, &[d])?,
                scale: read_tensor(st, NORM_SCALE, &[d])?,
            },
        };
        used.extend([NORM_OFFSET, NORM_SCALE]);

        let has_state = st.tensor(OPTIMIZER_STATE).is_ok();
        let train = match meta.get(KEY_TRAIN) {
            Some(s) => {
                let mut t: TrainState = from_json(KEY_TRAIN, s)?;
                if has_state {
                    let found = st.tensor(OPTIMIZER_STATE).map_or(0, |v| {
                        if v.shape().len() == 1 {
                            v.shape()[0]
                        } else {
                            0
                        }
                    });
                    check_state_len(&t.optimizer, p, found)?;
                    t.optim_state = read_tensor(st, OPTIMIZER_STATE, &[found])?;
                }
                used.insert(OPTIMIZER_STATE);
                if st.tensor(TRAIN_PARAMS).is_ok() {
                    t.current_params = read_tensor(st, TRAIN_PARAMS, &[p])?;
                    used.insert(TRAIN_PARAMS);
                }
                Some(t)
            }
            None if has_state => {
                return Err(Kind::Metadata {
                    key: KEY_TRAIN,
                    reason: format!("missing, but the file has an `{OPTIMIZER_STATE}` tensor"),
                });
            }
            None => None,
        };

        let extra: Vec<String> = st
            .names()
            .into_iter()
            .filter(|n| !used.contains(n))
            .map(str::to_string)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !extra.is_empty() {
            return Err(Kind::ExtraTensors(extra));
        }

        let window = meta
            .get(KEY_WINDOW)
            .map(|s| from_json::<WindowMeta>(KEY_WINDOW, s))
            .transpose()?;
        check_meta(window.as_ref(), train.as_ref(), d)?;
        Ok(Checkpoint {
            spec,
            params,
            norm,
            window,
            calibration: meta
                .get(KEY_CALIBRATION)
                .map(|s| from_json::<Calibration>(KEY_CALIBRATION, s))
                .transpose()?,
            train,
            info: meta
                .get(KEY_INFO)
                .map(|s| from_json::<Value>(KEY_INFO, s))
                .transpose()?
                .unwrap_or(Value::Null),
        })
    }
}

/// Checks the metadata every command relies on (issue 12: these were accepted by everything but
/// `export`): a window of at least one step, channel and hop whose `len × channels` is the
/// input dimension `d`, at a finite positive rate; a known optimizer.
fn check_meta(
    window: Option<&WindowMeta>,
    train: Option<&TrainState>,
    d: usize,
) -> Result<(), CheckpointErrorKind> {
    if let Some(w) = window {
        let reason = if w.len == 0 || w.hop == 0 || w.channels == 0 {
            Some(format!(
                "window length {}, hop {} and channels {} must all be at least 1",
                w.len, w.hop, w.channels
            ))
        } else if w.len.checked_mul(w.channels) != Some(d) {
            Some(format!(
                "window {} steps × {} channels is not the input dimension {d}",
                w.len, w.channels
            ))
        } else if !(w.sample_rate_hz.is_finite() && w.sample_rate_hz > 0.0) {
            Some(format!(
                "sample rate {} Hz is not a finite positive number",
                w.sample_rate_hz
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(Kind::Metadata {
                key: KEY_WINDOW,
                reason,
            });
        }
    }
    if let Some(t) = train
        && !matches!(t.optimizer.as_str(), "adagrad" | "adam" | "sgd")
    {
        return Err(Kind::Metadata {
            key: KEY_TRAIN,
            reason: format!(
                "optimizer `{}` is not one of adagrad, adam, sgd",
                t.optimizer
            ),
        });
    }
    Ok(())
}

/// Whether a loaded checkpoint's digest was checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Integrity {
    /// The digest matched every byte.
    Verified,
    /// No digest to check, and why (say so to the user).
    Unverified(&'static str),
}

/// The digest's value while it is computed.
const DIGEST_PLACEHOLDER: &str = "00000000";

/// CRC-32 (IEEE) as in the model files.
static CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Where the digest's 8 hex digits lie in `bytes`: after the first `"vae.crc32":"` in the
/// JSON header (a value containing that text would have its quotes escaped).
fn digest_span(bytes: &[u8]) -> Option<std::ops::Range<usize>> {
    let n = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let header = bytes.get(8..8usize.checked_add(n)?)?;
    let key = format!("\"{KEY_DIGEST}\":\"");
    let at = header
        .windows(key.len())
        .position(|w| w == key.as_bytes())?;
    let start = 8 + at + key.len();
    (start + 8 <= 8 + n).then_some(start..start + 8)
}

/// CRC-32 of `bytes` with `span` (the digest) read as the placeholder.
fn file_crc(bytes: &[u8], span: std::ops::Range<usize>) -> u32 {
    let mut d = CRC32.digest();
    d.update(&bytes[..span.start]);
    d.update(DIGEST_PLACEHOLDER.as_bytes());
    d.update(&bytes[span.end..]);
    d.finalize()
}

/// `[out, in]` for a weight, `[out]` for a bias.
fn tensor_shape(t: &vae_nostd::TensorInfo) -> Vec<usize> {
    t.shape[..t.rank].to_vec()
}

/// Checks the optimizer-state length: `k · P` for a known optimizer (k = 1 for Adagrad and SGD,
/// 2 for Adam), a multiple of `P` otherwise. Zero (no state yet) is allowed.
fn check_state_len(optimizer: &str, p: usize, len: usize) -> Result<(), CheckpointErrorKind> {
    let per_param = match optimizer {
        "adagrad" | "sgd" => Some(1),
        "adam" => Some(2),
        _ => None,
    };
    let ok = len == 0
        || match per_param {
            Some(k) => len == k * p,
            None => len.is_multiple_of(p),
        };
    if ok {
        Ok(())
    } else {
        Err(Kind::Shape {
            name: OPTIMIZER_STATE.to_string(),
            expected: vec![per_param.unwrap_or(1) * p],
            found: vec![len],
        })
    }
}

fn check_finite(name: &str, values: &[f32]) -> Result<(), CheckpointErrorKind> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(Kind::NonFinite {
            name: name.to_string(),
            index,
        }),
        None => Ok(()),
    }
}

fn to_json<T: Serialize>(key: &'static str, v: &T) -> Result<String, CheckpointErrorKind> {
    serde_json::to_string(v).map_err(|e| Kind::Metadata {
        key,
        reason: e.to_string(),
    })
}

fn from_json<T: DeserializeOwned>(key: &'static str, s: &str) -> Result<T, CheckpointErrorKind> {
    serde_json::from_str(s).map_err(|e| Kind::Metadata {
        key,
        reason: e.to_string(),
    })
}

/// Reads tensor `name`, checks its shape, converts it to f32 and checks it is finite.
fn read_tensor(
    st: &SafeTensors<'_>,
    name: &str,
    expected: &[usize],
) -> Result<Vec<f32>, CheckpointErrorKind> {
    let view = st
        .tensor(name)
        .map_err(|_| Kind::MissingTensor(name.to_string()))?;
    if view.shape() != expected {
        return Err(Kind::Shape {
            name: name.to_string(),
            expected: expected.to_vec(),
            found: view.shape().to_vec(),
        });
    }
    let values = to_f32(&view).ok_or_else(|| Kind::Dtype {
        name: name.to_string(),
        dtype: view.dtype().to_string(),
    })?;
    check_finite(name, &values)?;
    Ok(values)
}

/// Converts F32, F64, F16 or BF16 little-endian data to f32 (`None` for other dtypes).
fn to_f32(view: &TensorView<'_>) -> Option<Vec<f32>> {
    fn words<const N: usize>(data: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
        data.chunks_exact(N)
            .map(|c| <[u8; N]>::try_from(c).unwrap_or([0; N]))
    }
    let data = view.data();
    Some(match view.dtype() {
        Dtype::F32 => words::<4>(data).map(f32::from_le_bytes).collect(),
        Dtype::F64 => words::<8>(data)
            .map(|w| f64::from_le_bytes(w) as f32)
            .collect(),
        Dtype::F16 => words::<2>(data)
            .map(|w| half::f16::from_le_bytes(w).to_f32())
            .collect(),
        Dtype::BF16 => words::<2>(data)
            .map(|w| half::bf16::from_le_bytes(w).to_f32())
            .collect(),
        _ => return None,
    })
}

/// Writes a safetensors file of F32 tensors, deterministically: tensors in the given order,
/// JSON keys sorted, header padded with spaces to a multiple of 8 (as the reference writer).
fn serialize_f32(
    tensors: &[(&str, Vec<usize>, &[f32])],
    meta: &BTreeMap<&str, String>,
) -> Result<Vec<u8>, CheckpointErrorKind> {
    let mut header = Map::new();
    header.insert(
        "__metadata__".to_string(),
        Value::Object(
            meta.iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
                .collect(),
        ),
    );
    let mut offset = 0usize;
    for (name, shape, values) in tensors {
        let end = offset + 4 * values.len();
        header.insert(
            name.to_string(),
            serde_json::json!({ "dtype": "F32", "shape": shape, "data_offsets": [offset, end] }),
        );
        offset = end;
    }
    let mut json = serde_json::to_vec(&Value::Object(header)).map_err(|e| Kind::Metadata {
        key: "__metadata__",
        reason: e.to_string(),
    })?;
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + json.len() + offset);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    for (_, _, values) in tensors {
        for v in *values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    Ok(out)
}

/// The architecture from the tensor names and shapes (PyTorch files without `vae.spec`).
fn infer_spec(
    st: &SafeTensors<'_>,
    hint: Option<&ModelSpec>,
) -> Result<ModelSpec, CheckpointErrorKind> {
    let hint = hint.ok_or(Kind::MissingSpec)?;
    let matrix = |name: &str| -> Result<Option<[usize; 2]>, CheckpointErrorKind> {
        match st.tensor(name) {
            Err(_) => Ok(None),
            Ok(v) => match *v.shape() {
                [out, inp] => Ok(Some([out, inp])),
                ref s => Err(Kind::CannotInfer(format!(
                    "`{name}` has shape {s:?}, expected [out, in]"
                ))),
            },
        }
    };
    let required = |name: &str| matrix(name)?.ok_or_else(|| Kind::MissingTensor(name.to_string()));
    let hidden = |net: &str| -> Result<Vec<usize>, CheckpointErrorKind> {
        let mut widths = Vec::new();
        while let Some([out, _]) = matrix(&format!("{net}.{}.weight", widths.len()))? {
            widths.push(out);
            if widths.len() > MAX_HIDDEN {
                return Err(Kind::CannotInfer(format!(
                    "the {net} has more than {MAX_HIDDEN} hidden layers"
                )));
            }
        }
        if widths.is_empty() {
            return Err(Kind::MissingTensor(format!("{net}.0.weight")));
        }
        Ok(widths)
    };
    let encoder_hidden = hidden("encoder")?;
    let decoder_hidden = hidden("decoder")?;
    let [_, input] = required("encoder.0.weight")?;
    let [latent, _] = required("encoder.mu.weight")?;
    let likelihood = if matrix("decoder.logits.weight")?.is_some() {
        LikelihoodName::Bernoulli
    } else if matrix("decoder.mean.weight")?.is_some() {
        match hint.likelihood {
            h @ (LikelihoodName::GaussianSigmoid
            | LikelihoodName::GaussianFloor
            | LikelihoodName::GaussianSigmoidFloor) => h,
            _ => LikelihoodName::Gaussian,
        }
    } else {
        return Err(Kind::CannotInfer(
            "neither `decoder.logits.weight` (Bernoulli) nor `decoder.mean.weight` (Gaussian) is present"
                .to_string(),
        ));
    };
    let activation: ActivationName = hint.activation;
    Ok(ModelSpec {
        input,
        encoder_hidden,
        decoder_hidden,
        latent,
        activation,
        likelihood,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use safetensors::tensor::TensorView;
    use serde_json::json;

    use super::*;
    use crate::model::ScoreName;

    fn spec(likelihood: LikelihoodName) -> ModelSpec {
        ModelSpec {
            input: 6,
            encoder_hidden: vec![5, 4],
            decoder_hidden: vec![3],
            latent: 2,
            activation: ActivationName::Relu,
            likelihood,
        }
    }

    /// Awkward but finite values: signed zeros, subnormals, extremes.
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let special = [-0.0, 0.0, 1e-42, -f32::MAX, f32::MIN_POSITIVE, 1e30];
        let mut s = seed.wrapping_mul(2_654_435_761) | 1;
        (0..n)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                if i % 7 == 0 {
                    special[s as usize % special.len()]
                } else {
                    (s as f32 / u32::MAX as f32 - 0.5) * 4.0
                }
            })
            .collect()
    }

    fn full() -> Checkpoint {
        let spec = spec(LikelihoodName::GaussianSigmoid);
        let p = spec.config().unwrap().num_params();
        Checkpoint {
            params: values(p, 1),
            norm: Normalization {
                offset: values(6, 2),
                scale: values(6, 3),
            },
            window: Some(WindowMeta {
                len: 3,
                hop: 1,
                channels: 2,
                sample_rate_hz: 52.5,
            }),
            calibration: Some(Calibration {
                score: ScoreName::Nll,
                samples: 64,
                threshold: 17.25,
                false_alarm_rate: 0.001,
                calibration_windows: 4096,
            }),
            train: Some(TrainState {
                optimizer: "adam".into(),
                optim_state: values(2 * p, 4),
                step: 12_345,
                samples_seen: 1_234_567,
                early_stop: None,
                current_params: Vec::new(),
            }),
            info: json!({"seed": 42, "lr": 0.001, "curve": [-3.5, -2.25], "data": {"sha256": "ab"}}),
            spec,
        }
    }

    fn bits(xs: &[f32]) -> Vec<u32> {
        xs.iter().map(|v| v.to_bits()).collect()
    }

    fn assert_bit_equal(a: &Checkpoint, b: &Checkpoint) {
        assert_eq!(a, b);
        assert_eq!(bits(&a.params), bits(&b.params));
        assert_eq!(bits(&a.norm.offset), bits(&b.norm.offset));
        assert_eq!(bits(&a.norm.scale), bits(&b.norm.scale));
        assert_eq!(
            a.train.as_ref().map(|t| bits(&t.optim_state)),
            b.train.as_ref().map(|t| bits(&t.optim_state))
        );
        assert_eq!(
            a.train.as_ref().map(|t| bits(&t.current_params)),
            b.train.as_ref().map(|t| bits(&t.current_params))
        );
    }

    #[test]
    fn round_trip_is_bit_exact_and_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        for ckpt in [
            full(),
            Checkpoint {
                window: None,
                calibration: None,
                train: None,
                info: Value::Null,
                ..full()
            },
            Checkpoint {
                train: Some(TrainState {
                    optimizer: "sgd".into(),
                    optim_state: Vec::new(),
                    step: 0,
                    samples_seen: 0,
                    early_stop: None,
                    current_params: Vec::new(),
                }),
                ..full()
            },
            Checkpoint {
                train: Some(TrainState {
                    optimizer: "adam".into(),
                    optim_state: values(2 * full().params.len(), 4),
                    step: 900,
                    samples_seen: 9_000,
                    early_stop: Some(crate::model::EarlyStopState {
                        best_step: 600,
                        best_bound: -12.5,
                        checks_since_best: 3,
                        stopped: false,
                    }),
                    current_params: values(full().params.len(), 6),
                }),
                ..full()
            },
        ] {
            let path = dir.path().join("run/model.safetensors");
            ckpt.save(&path).unwrap();
            let back = Checkpoint::load(&path).unwrap();
            assert_bit_equal(&ckpt, &back);
            let first = std::fs::read(&path).unwrap();
            back.save(&path).unwrap();
            assert_eq!(
                first,
                std::fs::read(&path).unwrap(),
                "saving is deterministic"
            );
        }
    }

    #[test]
    fn layout_is_what_pytorch_expects() {
        let ckpt = full();
        let bytes = ckpt.to_safetensors().unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let w = st.tensor("encoder.0.weight").unwrap();
        assert_eq!((w.dtype(), w.shape()), (Dtype::F32, &[5usize, 6][..]));
        assert_eq!(st.tensor("encoder.0.bias").unwrap().shape(), &[5]);
        assert_eq!(st.tensor("encoder.mu.weight").unwrap().shape(), &[2, 4]);
        assert_eq!(st.tensor("encoder.logvar.bias").unwrap().shape(), &[2]);
        assert_eq!(st.tensor("decoder.0.weight").unwrap().shape(), &[3, 2]);
        assert_eq!(st.tensor("decoder.mean.weight").unwrap().shape(), &[6, 3]);
        assert_eq!(st.tensor("decoder.logvar.bias").unwrap().shape(), &[6]);
        assert_eq!(st.tensor(NORM_SCALE).unwrap().shape(), &[6]);
        let p = ckpt.params.len();
        assert_eq!(st.tensor(OPTIMIZER_STATE).unwrap().shape(), &[2 * p]);
        // Row-major [out][in]: element (1, 0) of encoder.0.weight is params[6].
        let first_row_1 = &w.data()[4 * 6..4 * 7];
        assert_eq!(first_row_1, ckpt.params[6].to_le_bytes());
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta = header.metadata().as_ref().unwrap();
        assert_eq!(meta[KEY_FORMAT], FORMAT);
        let spec: Value = serde_json::from_str(&meta[KEY_SPEC]).unwrap();
        assert_eq!(spec["likelihood"], "gaussian-sigmoid");
        assert_eq!(spec["activation"], "relu");
        for key in [KEY_WINDOW, KEY_CALIBRATION, KEY_TRAIN, KEY_INFO] {
            assert!(meta.contains_key(key), "{key}");
        }
    }

    /// A file laid out as `safetensors.torch.save_file(model.state_dict(), path, metadata)`
    /// writes it, with the dtype and metadata given.
    fn torch_like(
        ckpt: &Checkpoint,
        dtype: Dtype,
        metadata: Option<HashMap<String, String>>,
        skip: &[&str],
    ) -> Vec<u8> {
        let cfg = ckpt.spec.config().unwrap();
        let encode = |v: f32| -> Vec<u8> {
            match dtype {
                Dtype::F64 => f64::from(v).to_le_bytes().to_vec(),
                Dtype::F32 => v.to_le_bytes().to_vec(),
                Dtype::BF16 => ((v.to_bits() >> 16) as u16).to_le_bytes().to_vec(),
                Dtype::F16 => f16_exact(v).to_le_bytes().to_vec(),
                _ => unreachable!(),
            }
        };
        let data: Vec<(String, Vec<usize>, Vec<u8>)> = (0..cfg.num_tensors())
            .filter_map(|i| cfg.tensor(i))
            .filter(|t| !skip.contains(&t.name))
            .map(|t| {
                let bytes = ckpt.params[t.offset..t.offset + t.len()]
                    .iter()
                    .flat_map(|&v| encode(v))
                    .collect();
                (t.name.to_string(), tensor_shape(&t), bytes)
            })
            .collect();
        let views: Vec<(String, TensorView<'_>)> = data
            .iter()
            .map(|(n, s, b)| (n.clone(), TensorView::new(dtype, s.clone(), b).unwrap()))
            .collect();
        safetensors::serialize(views, metadata).unwrap()
    }

    /// f32 → f16 for values exactly representable in f16.
    fn f16_exact(v: f32) -> u16 {
        let h = half::f16::from_f32(v);
        assert_eq!(h.to_f32().to_bits(), v.to_bits(), "{v} is not exact in f16");
        h.to_bits()
    }

    /// Values exact in F16 and BF16 alike: k / 64 for |k| < 128.
    fn half_exact(ckpt: &mut Checkpoint) {
        for (i, v) in ckpt.params.iter_mut().enumerate() {
            *v = ((i * 37 % 255) as f32 - 127.0) / 64.0;
        }
    }

    fn pytorch_checkpoint(spec: ModelSpec) -> Checkpoint {
        Checkpoint {
            norm: Normalization::identity(spec.input),
            window: None,
            calibration: None,
            train: None,
            info: Value::Null,
            ..Checkpoint { spec, ..full() }
        }
    }

    #[test]
    fn loads_pytorch_files_with_spec_metadata() {
        let mut ckpt = pytorch_checkpoint(spec(LikelihoodName::Gaussian));
        ckpt.params = values(ckpt.params.len(), 9);
        let meta = HashMap::from([(
            KEY_SPEC.to_string(),
            serde_json::to_string(&ckpt.spec).unwrap(),
        )]);
        let bytes = torch_like(&ckpt, Dtype::F64, Some(meta), &[]);
        let back = Checkpoint::from_safetensors(&bytes, None).unwrap();
        assert_bit_equal(&ckpt, &back); // f32 → f64 → f32 is exact
        assert_eq!(back.norm, Normalization::identity(6));
    }

    #[test]
    fn infers_the_architecture_from_shapes_with_a_hint() {
        for (likelihood, dtype) in [
            (LikelihoodName::Bernoulli, Dtype::F16),
            (LikelihoodName::GaussianSigmoid, Dtype::BF16),
            (LikelihoodName::Gaussian, Dtype::F32),
        ] {
            let mut ckpt = pytorch_checkpoint(ModelSpec {
                activation: ActivationName::Tanh,
                ..spec(likelihood)
            });
            ckpt.params
                .resize(ckpt.spec.config().unwrap().num_params(), 0.0);
            half_exact(&mut ckpt);
            let bytes = torch_like(&ckpt, dtype, None, &[]);
            assert!(matches!(
                Checkpoint::from_safetensors(&bytes, None),
                Err(Kind::MissingSpec)
            ));
            let hint = ModelSpec {
                input: 1,
                encoder_hidden: vec![1],
                decoder_hidden: vec![1],
                latent: 1,
                ..ckpt.spec.clone()
            };
            let back = Checkpoint::from_safetensors(&bytes, Some(&hint)).unwrap();
            assert_bit_equal(&ckpt, &back);
        }
    }

    fn kind_of(bytes: &[u8], hint: Option<&ModelSpec>) -> Kind {
        Checkpoint::from_safetensors(bytes, hint).unwrap_err()
    }

    #[test]
    fn bad_files_give_named_errors() {
        let ckpt = full();
        let good = ckpt.to_safetensors().unwrap();
        let spec_meta = || {
            Some(HashMap::from([(
                KEY_SPEC.to_string(),
                serde_json::to_string(&ckpt.spec).unwrap(),
            )]))
        };

        assert!(matches!(
            kind_of(&good[..good.len() - 1], None),
            Kind::NotSafetensors(_)
        ));
        assert!(matches!(
            kind_of(b"not a checkpoint", None),
            Kind::NotSafetensors(_)
        ));
        let bytes = torch_like(&ckpt, Dtype::F32, spec_meta(), &["encoder.mu.bias"]);
        assert!(matches!(kind_of(&bytes, None), Kind::MissingTensor(n) if n == "encoder.mu.bias"));

        // Shape mismatch: the spec says 6 inputs, the tensors were built for 7.
        let other = pytorch_checkpoint(ModelSpec {
            input: 7,
            ..ckpt.spec.clone()
        });
        let mut other = other;
        other.params = vec![0.5; other.spec.config().unwrap().num_params()];
        let bytes = torch_like(&other, Dtype::F32, spec_meta(), &[]);
        match kind_of(&bytes, None) {
            Kind::Shape {
                name,
                expected,
                found,
            } => {
                assert_eq!(name, "encoder.0.weight");
                assert_eq!((expected, found), (vec![5, 6], vec![5, 7]));
            }
            k => panic!("{k}"),
        }

        // Extra tensors, listed by name.
        let cfg = ckpt.spec.config().unwrap();
        let data = vec![0u8; 8];
        let mut views: Vec<(String, TensorView<'_>)> = Vec::new();
        let params: Vec<u8> = ckpt.params.iter().flat_map(|v| v.to_le_bytes()).collect();
        for t in (0..cfg.num_tensors()).filter_map(|i| cfg.tensor(i)) {
            let b = &params[4 * t.offset..4 * (t.offset + t.len())];
            views.push((
                t.name.into(),
                TensorView::new(Dtype::F32, tensor_shape(&t), b).unwrap(),
            ));
        }
        views.push((
            "encoder.bn.weight".into(),
            TensorView::new(Dtype::F32, vec![2], &data).unwrap(),
        ));
        let bytes = safetensors::serialize(views.clone(), spec_meta()).unwrap();
        assert!(
            matches!(kind_of(&bytes, None), Kind::ExtraTensors(v) if v == ["encoder.bn.weight"])
        );

        // Integer dtype.
        views.pop();
        views[0].1 = TensorView::new(Dtype::I32, vec![5, 6], &params[..120]).unwrap();
        let bytes = safetensors::serialize(views.clone(), spec_meta()).unwrap();
        assert!(
            matches!(kind_of(&bytes, None), Kind::Dtype { name, .. } if name == "encoder.0.weight")
        );

        // Bad metadata JSON, foreign format tag.
        let bad = HashMap::from([(KEY_SPEC.to_string(), "{\"input\": 6,".to_string())]);
        let bytes = torch_like(&ckpt, Dtype::F32, Some(bad), &[]);
        assert!(matches!(
            kind_of(&bytes, None),
            Kind::Metadata { key: KEY_SPEC, .. }
        ));
        let mut meta = spec_meta().unwrap();
        meta.insert(KEY_FORMAT.into(), "vae-mcu-checkpoint/9".into());
        let bytes = torch_like(&ckpt, Dtype::F32, Some(meta), &[]);
        assert!(matches!(kind_of(&bytes, None), Kind::UnsupportedFormat(f) if f.ends_with("/9")));

        // NaN in a parameter: named, with its index, on load and on save.
        let mut nan = pytorch_checkpoint(ckpt.spec.clone());
        nan.params[ckpt.spec.config().unwrap().tensor(2).unwrap().offset + 3] = f32::NAN;
        let bytes = torch_like(&nan, Dtype::F64, spec_meta(), &[]);
        assert!(matches!(kind_of(&bytes, None),
            Kind::NonFinite { name, index: 3 } if name == "encoder.1.weight"));
        assert!(matches!(nan.to_safetensors(), Err(Kind::NonFinite { .. })));

        // Inconsistent in memory: refused before anything is written.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.safetensors");
        let mut short = full();
        short.params.pop();
        let e = short.save(&path).unwrap_err();
        assert!(matches!(e.kind, Kind::Inconsistent(_)));
        assert!(!path.exists());
        let mut state = full();
        state.train.as_mut().unwrap().optim_state.pop();
        assert!(matches!(state.to_safetensors(), Err(Kind::Inconsistent(_))));

        // Errors name the file, on one line.
        let e = Checkpoint::load(&dir.path().join("missing.safetensors")).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("missing.safetensors") && !msg.contains('\n'),
            "{msg}"
        );
    }

    /// Sets the digest of edited bytes (as a writer that made the edit would).
    fn restamp(b: &mut [u8]) {
        let span = digest_span(b).unwrap();
        let crc = file_crc(b, span.clone());
        b[span].copy_from_slice(format!("{crc:08x}").as_bytes());
    }

    /// Issue 12: one flipped bit anywhere in a checkpoint is refused (finite flips in the
    /// tensor data passed `eval`, `score`, `export` and `--resume`): every bit of a file is
    /// flipped in turn; a version-1 file (no digest) and a PyTorch-style file load as
    /// unverified; a version-2 file whose digest is missing is refused.
    #[test]
    fn one_flipped_bit_anywhere_is_refused() {
        let good = full().to_safetensors().unwrap();
        assert_eq!(
            Checkpoint::from_safetensors_checked(&good, None).unwrap().1,
            Integrity::Verified
        );
        for i in 0..good.len() {
            for bit in 0..8 {
                let mut b = good.clone();
                b[i] ^= 1 << bit;
                assert!(
                    Checkpoint::from_safetensors(&b, None).is_err(),
                    "byte {i} bit {bit} accepted"
                );
            }
        }
        // The same file as version 1, without the digest: loads, unverified.
        let n = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
        let header = std::str::from_utf8(&good[8..8 + n]).unwrap();
        let span = digest_span(&good).unwrap();
        let digest = std::str::from_utf8(&good[span]).unwrap();
        let v1 = header.replacen(FORMAT, FORMAT_V1, 1).replacen(
            &format!(r#""{KEY_DIGEST}":"{digest}","#),
            "",
            1,
        );
        let mut json = v1.trim_end().as_bytes().to_vec();
        json.resize(json.len().next_multiple_of(8), b' ');
        let mut old = (json.len() as u64).to_le_bytes().to_vec();
        old.extend_from_slice(&json);
        old.extend_from_slice(&good[8 + n..]);
        let (c, integrity) = Checkpoint::from_safetensors_checked(&old, None).unwrap();
        assert!(
            matches!(integrity, Integrity::Unverified(_)),
            "{integrity:?}"
        );
        assert_eq!(c, full());
        // Version 2 without the digest: refused.
        let v2 = header.replacen(&format!(r#""{KEY_DIGEST}":"{digest}","#), "", 1);
        let mut json = v2.trim_end().as_bytes().to_vec();
        json.resize(json.len().next_multiple_of(8), b' ');
        let mut bad = (json.len() as u64).to_le_bytes().to_vec();
        bad.extend_from_slice(&json);
        bad.extend_from_slice(&good[8 + n..]);
        assert!(matches!(
            Checkpoint::from_safetensors(&bad, None),
            Err(Kind::MissingDigest)
        ));
    }

    /// Issue 12: a small file whose `vae.spec` claims 16384-wide layers is refused before the
    /// parameters are allocated (it allocated 10.7 GB).
    #[test]
    fn a_huge_spec_in_a_small_file_is_refused_before_allocating() {
        let spec = ModelSpec {
            input: 16384,
            encoder_hidden: vec![16384, 16384],
            decoder_hidden: vec![16384],
            latent: 16384,
            activation: ActivationName::Tanh,
            likelihood: LikelihoodName::Bernoulli,
        };
        let mut meta = BTreeMap::new();
        meta.insert(KEY_SPEC, to_json(KEY_SPEC, &spec).unwrap());
        let bytes = serialize_f32(&[], &meta).unwrap();
        assert!(bytes.len() < 512, "{} bytes", bytes.len());
        match Checkpoint::from_safetensors(&bytes, None) {
            Err(Kind::Inconsistent(m)) => assert!(m.contains("but the file has only"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    /// Issue 12: `vae.window` with length 0 or rate −1 and an unknown optimizer were accepted
    /// by every command but `export`; now every load (and every save) refuses them by name.
    #[test]
    fn bad_window_and_optimizer_metadata_are_refused() {
        let good = full().to_safetensors().unwrap();
        let n = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
        let header = std::str::from_utf8(&good[8..8 + n]).unwrap();
        for (from, to, key, needle) in [
            (r#"\"len\":3"#, r#"\"len\":0"#, KEY_WINDOW, "at least 1"),
            (r#"\"hop\":1"#, r#"\"hop\":0"#, KEY_WINDOW, "at least 1"),
            (
                r#"\"len\":3"#,
                r#"\"len\":4"#,
                KEY_WINDOW,
                "input dimension",
            ),
            ("52.5", "-1.0", KEY_WINDOW, "finite positive"),
            (
                r#"\"adam\""#,
                r#"\"adax\""#,
                KEY_TRAIN,
                "adagrad, adam, sgd",
            ),
        ] {
            assert!(header.contains(from), "{from} not in {header}");
            // Same length, so the header length field stays right.
            assert_eq!(from.len(), to.len());
            let mut bad = good[..8].to_vec();
            bad.extend_from_slice(header.replacen(from, to, 1).as_bytes());
            bad.extend_from_slice(&good[8 + n..]);
            restamp(&mut bad);
            match Checkpoint::from_safetensors(&bad, None) {
                Err(Kind::Metadata { key: k, reason }) => {
                    assert_eq!(k, key, "{to}");
                    assert!(reason.contains(needle), "{to}: {reason}");
                }
                other => panic!("{to}: {other:?}"),
            }
        }
        let mut c = full();
        c.window.as_mut().unwrap().sample_rate_hz = f32::NAN;
        assert!(matches!(
            c.to_safetensors(),
            Err(Kind::Metadata {
                key: KEY_WINDOW,
                ..
            })
        ));
        let mut c = full();
        c.train.as_mut().unwrap().optimizer = "bogus".into();
        assert!(matches!(
            c.to_safetensors(),
            Err(Kind::Metadata { key: KEY_TRAIN, .. })
        ));
    }

    #[test]
    fn never_panics_on_prefixes_and_corruptions() {
        let good = Checkpoint {
            train: None,
            ..full()
        }
        .to_safetensors()
        .unwrap();
        for n in 0..good.len() {
            assert!(
                Checkpoint::from_safetensors(&good[..n], None).is_err(),
                "prefix {n}"
            );
        }
        let mut s = 0x1234_5678u32;
        for _ in 0..5000 {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            let mut b = good.clone();
            let at = s as usize % b.len();
            b[at] = (s >> 24) as u8;
            let _ = Checkpoint::from_safetensors(&b, None);
        }
    }
}
