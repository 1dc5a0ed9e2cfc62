//! The firmware's model file (`.vaem`): a compact little-endian image of a trained model that
//! the host writes ([`write()`]) and the device embeds (`include_bytes!`) and checks at start-up
//! ([`ModelFile::parse`]).
//!
//! It holds the architecture, the sensor window geometry, the input normalization, the anomaly
//! score with its calibrated threshold, and the parameters in the core's flat layout
//! ([`VaeConfig::tensor`] order), closed by a CRC-32. Parsing borrows the bytes and copies
//! nothing: the header is read as one `#[repr(C)]` struct, floats are decoded on demand with
//! `from_le_bytes`, so the image needs no alignment (`include_bytes!` gives none). A program
//! either copies the parameters into its own statics ([`ModelFile::copy_params`]) or, with a
//! 4-byte-aligned image on a little-endian target, uses them in place
//! ([`ModelFile::params_in_place`], [`ModelFile::normalization_in_place`]: the file hands out
//! its own byte ranges, so no caller re-derives the layout). Neither side allocates; parsing
//! never panics on any input.
//!
//! ## Byte layout (version 1)
//!
//! All integers are unsigned little-endian, all floats IEEE-754 binary32 little-endian. `H` is
//! the header length, `D` the input dimension, `P` the parameter count
//! ([`VaeConfig::num_params`]).
//!
//! | offset | bytes | type | field |
//! |---:|---:|---|---|
//! | 0 | 4 | `[u8; 4]` | magic `VAEM` |
//! | 4 | 2 | u16 | format version: 1 |
//! | 6 | 2 | u16 | header length `H`: 88 (readers accept any multiple of 4 ≥ 88 and skip bytes 88..`H`, kept for compatible additions) |
//! | 8 | 4 | u32 | file length in bytes, CRC included: `H + 8D + 4P + 4` |
//! | 12 | 4 | u32 | flags: bit 0 window present, bit 1 threshold present; other bits 0 |
//! | 16 | 4 | u32 | `D`, input dimension |
//! | 20 | 4 | u32 | `Z`, latent dimension |
//! | 24 | 1 | u8 | encoder hidden layers, 1–3 |
//! | 25 | 1 | u8 | decoder hidden layers, 1–3 |
//! | 26 | 1 | u8 | activation: 0 tanh, 1 ReLU |
//! | 27 | 1 | u8 | likelihood: 0 Bernoulli, 1 Gaussian, 2 Gaussian with sigmoid mean, 3 and 4 the same two with the log-variance floor (`vae_nostd::likelihood::LOGVAR_FLOOR`; readers before it refuse 3 and 4) |
//! | 28 | 12 | 3 × u32 | encoder hidden widths, from the input inwards; unused slots 0 |
//! | 40 | 12 | 3 × u32 | decoder hidden widths, from the latent outwards; unused slots 0 |
//! | 52 | 4 | u32 | `P`, parameter count (checked against the dimensions) |
//! | 56 | 4 | u32 | window length, time steps (flag bit 0; else 0) |
//! | 60 | 4 | u32 | hop, samples between window starts (flag bit 0; else 0) |
//! | 64 | 4 | u32 | channels per time step (flag bit 0; else 0) |
//! | 68 | 4 | f32 | sample rate, Hz (flag bit 0; else 0) |
//! | 72 | 1 | u8 | score: 0 −ELBO at z = μ, 1 −ELBO sampled, 2 −log p̂(x), 3 reconstruction probability ([`ScoreKind`]) |
//! | 73 | 1 | u8 | parameter format: 0 f32 (version 1), 1 int8 (version 2, below) |
//! | 74 | 2 | — | reserved, 0 |
//! | 76 | 4 | u32 | score samples: 0 for −ELBO at μ, 1 to [`MAX_SCORE_SAMPLES`] for the others |
//! | 80 | 4 | f32 | anomaly threshold: scores above it are anomalies (flag bit 1; else 0) |
//! | 84 | 4 | f32 | false-alarm rate the threshold was calibrated for, in [0, 1] (flag bit 1; else 0) |
//! | `H` | 4`D` | `f32[D]` | normalization offset: `x' = (x − offset) · scale` |
//! | `H`+4`D` | 4`D` | `f32[D]` | normalization scale |
//! | `H`+8`D` | 4`P` | `f32[P]` | parameters φ, θ in the core's flat layout (each layer `W [out][in]`, then `b [out]`) |
//! | `H`+8`D`+4`P` | 4 | u32 | CRC-32 (IEEE 802.3, `crc::CRC_32_ISO_HDLC`) of every byte before it |
//!
//! ## Version 2: int8 parameters
//!
//! The same header with version 2 and parameter format 1; the parameters are the post-training
//! int8 quantization of [`crate::quant`] (its module docs give the scheme and the weights'
//! storage order), `L` layers, `O` outputs and `W` stored weight bytes by
//! [`QuantLayout`] (`P` still counts the f32 model's parameters, to
//! check the architecture):
//!
//! | offset | bytes | type | field |
//! |---:|---:|---|---|
//! | `H` | 8`D` | `f32[2D]` | normalization offset and scale, as in version 1 |
//! | `H`+8`D` | 4`L` | `f32[L]` | each layer's input scale `s_x` (> 0) |
//! | … | 4`O` | `f32[O]` | per output `s_w · s_x` |
//! | … | 4`O` | `f32[O]` | per output the f32 bias |
//! | … | `W` | `i8[W]` | the weights, in blocks of four rows (padding entries 0, no value −128) |
//! | end − 4 | 4 | u32 | CRC-32 of every byte before it |
//!
//! A file length of `H + 8D + 4L + 8O + W + 4`; every section starts 4-byte aligned, so an
//! aligned image is used in place ([`ModelFile::quant_in_place`]). f32 models are still
//! written as version 1 (the firmware of before reads them); a file holds one or the other,
//! and [`ModelFile::format`] says which.
//!
//! When a window is present, `length × channels = D` (rows are windows `[t][channel]`).
//! A model without a calibrated threshold (flag bit 1 clear) can still encode and score; the
//! firmware then has no decision rule, and [`ModelFile::threshold`] returns `None`.
//!
//! The parser refuses, naming what is wrong ([`ModelFileError`]): a wrong magic, another
//! version, a bad header length, a file shorter or longer than its stated length, a CRC
//! mismatch, an invalid architecture ([`VaeConfig::validate`]), unknown codes, non-zero unused
//! fields, and NaN or ±∞ in the normalization, the threshold or the parameters. So every model
//! has exactly one byte image, and a model that parses can be run.
//!
//! ## On the device
//!
//! ```
//! use vae_nostd::modelfile::{self, ModelFile, ModelParts, Threshold};
//! use vae_nostd::{Activation, Buffer, Likelihood, ScoreKind, VaeConfig};
//!
//! const CFG: VaeConfig = VaeConfig::new(6, &[4], 2, Activation::Tanh, Likelihood::Bernoulli);
//! # let params = [0.25f32; CFG.num_params()];
//! # let mut image = [0u8; modelfile::file_len(&CFG)];
//! # modelfile::write(&mut image, &ModelParts {
//! #     config: CFG, window: None, score: ScoreKind::NegElboAtMean,
//! #     threshold: Some(Threshold { value: 3.5, false_alarm_rate: 0.01 }),
//! #     norm_offset: &[0.0; 6], norm_scale: &[1.0; 6], params: &params, quant: None,
//! # }).unwrap();
//! // In firmware: `static MODEL: [u8; modelfile::file_len(&CFG)] = *include_bytes!("model.vaem");`
//! let file = ModelFile::parse(&image).unwrap();
//! file.expect_config(&CFG).unwrap(); // the statics below were sized for CFG
//! let mut params: Buffer<f32, { CFG.num_params() }> = Buffer::new();
//! let (mut offset, mut scale) = ([0f32; CFG.input], [0f32; CFG.input]);
//! file.copy_params(&mut params).unwrap();
//! file.copy_normalization(&mut offset, &mut scale).unwrap();
//! assert_eq!(file.threshold(), Some(3.5));
//! assert_eq!(params[0], 0.25);
//! ```

use core::fmt;

use crc::{CRC_32_ISO_HDLC, Crc, NoTable};

use crate::quant::{self, QuantLayout, QuantSizes, QuantVae};
use crate::{Activation, Error, Likelihood, MAX_HIDDEN, ScoreKind, VaeConfig};

/// The first four bytes of every model file.
pub const MAGIC: [u8; 4] = *b"VAEM";
/// The newest format version this build writes and reads: 2 (int8 parameters); f32 models are
/// written as version 1, which it also reads.
pub const VERSION: u16 = 2;
/// The version of f32 model files.
pub const VERSION_F32: u16 = 1;
/// Header bytes written by this version (the parameters start at this offset plus 8·D).
pub const HEADER_LEN: usize = 88;
/// Bytes of the CRC-32 at the end.
pub const CRC_LEN: usize = 4;
/// Largest number of draws of z a sampled score may ask for: each is a decoder pass per
/// window on the device (the default sensor model's is ≈ 0.1 M instructions, so 1,000 are
/// ≈ 0.1 G per window, already far beyond a window's 160 ms at 64 MHz). A file asking for
/// more is refused (issue 12: a file with 2³² − 1 samples used to parse).
pub const MAX_SCORE_SAMPLES: usize = 1000;
/// Flag bit: the window geometry fields are set.
pub const FLAG_WINDOW: u32 = 1 << 0;
/// Flag bit: the threshold and false-alarm rate fields are set.
pub const FLAG_THRESHOLD: u32 = 1 << 1;
const KNOWN_FLAGS: u32 = FLAG_WINDOW | FLAG_THRESHOLD;

/// The version-1 header as it lies in the file (the table in the module docs): `#[repr(C)]`
/// with every field at its natural alignment, so it has no padding (bytemuck's `Pod` derive
/// checks that at compile time) and is exactly [`HEADER_LEN`] bytes. It is read from bytes of
/// any alignment with `bytemuck::try_pod_read_unaligned` and written with
/// `bytemuck::bytes_of`; its integers are little-endian in the file ([`RawHeader::swap_le`]
/// converts, a no-op on little-endian targets). Floats are stored as their bits.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct RawHeader {
    magic: [u8; 4],
    version: u16,
    header_len: u16,
    file_len: u32,
    flags: u32,
    input: u32,
    latent: u32,
    enc_count: u8,
    dec_count: u8,
    activation: u8,
    likelihood: u8,
    enc_widths: [u32; MAX_HIDDEN],
    dec_widths: [u32; MAX_HIDDEN],
    num_params: u32,
    window_len: u32,
    hop: u32,
    channels: u32,
    sample_rate: u32,
    score: u8,
    format: u8,
    reserved: [u8; 2],
    score_samples: u32,
    threshold: u32,
    false_alarm_rate: u32,
}

const _: () = assert!(core::mem::size_of::<RawHeader>() == HEADER_LEN);

impl RawHeader {
    /// Converts every multi-byte field between little-endian and the target's order (its own
    /// inverse).
    fn swap_le(mut self) -> Self {
        self.version = u16::from_le(self.version);
        self.header_len = u16::from_le(self.header_len);
        for v in [
            &mut self.file_len,
            &mut self.flags,
            &mut self.input,
            &mut self.latent,
            &mut self.num_params,
            &mut self.window_len,
            &mut self.hop,
            &mut self.channels,
            &mut self.sample_rate,
            &mut self.score_samples,
            &mut self.threshold,
            &mut self.false_alarm_rate,
        ]
        .into_iter()
        .chain(&mut self.enc_widths)
        .chain(&mut self.dec_widths)
        {
            *v = u32::from_le(*v);
        }
        self
    }
}

// Lengths are stored as u32 and widened to usize.
const _: () = assert!(usize::BITS >= 32);

/// Bit-at-a-time: no 1 KB lookup table in the firmware's flash. Checking a model is a
/// start-up cost (about 40 instructions per byte) and the host's files are small.
static CRC32: Crc<u32, NoTable> = Crc::<u32, NoTable>::new(&CRC_32_ISO_HDLC);

/// Bytes of the f32 (version 1) model file for a valid `cfg`: `88 + 8·D + 4·P + 4`. Saturates at `usize::MAX`
/// for configurations too large to address (which [`write()`] then refuses).
///
/// ```
/// use vae_nostd::{Activation, Likelihood, VaeConfig, modelfile};
/// const CFG: VaeConfig = VaeConfig::new(192, &[32], 4, Activation::Tanh, Likelihood::Gaussian { sigmoid_mean: false, floor: false });
/// static IMAGE: [u8; modelfile::file_len(&CFG)] = [0; modelfile::file_len(&CFG)];
/// assert_eq!(IMAGE.len(), 88 + 8 * 192 + 4 * CFG.num_params() + 4);
/// ```
pub const fn file_len(cfg: &VaeConfig) -> usize {
    HEADER_LEN
        .saturating_add(cfg.input.saturating_mul(8))
        .saturating_add(cfg.num_params().saturating_mul(4))
        .saturating_add(CRC_LEN)
}

/// Bytes of the int8 (version 2) model file for a valid `cfg`: `88 + 8·D + 4·L + 8·O + W + 4`
/// ([`QuantLayout`]).
pub const fn file_len_int8(cfg: &VaeConfig) -> usize {
    let q = QuantSizes::new(cfg);
    HEADER_LEN
        .saturating_add(cfg.input.saturating_mul(8))
        .saturating_add(q.bytes())
        .saturating_add(CRC_LEN)
}

/// How a model file stores its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Format {
    /// f32 in the core's flat layout (version 1).
    F32,
    /// int8 weights, f32 scales and biases ([`crate::quant`], version 2).
    Int8,
}

/// The int8 parameters [`write()`] puts into a version-2 file: the buffers of
/// [`QuantVae::new`](crate::quant::QuantVae::new), as [`crate::quant::quantize`] fills them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuantParts<'a> {
    /// Stored weights. Shape: `[layout.weights]`.
    pub weights: &'a [i8],
    /// `s_w · s_x` per output. Shape: `[layout.outputs]`.
    pub scales: &'a [f32],
    /// Biases. Shape: `[layout.outputs]`.
    pub biases: &'a [f32],
    /// `s_x` per layer. Shape: `[layout.layers]`.
    pub input_scales: &'a [f32],
}

/// Checks stored int8 weights (`weights [layout.weights]` as bytes): every padding entry 0 and
/// no value −128, so that every quantized model has one byte image and the kernels' bounds
/// hold. Not inlined: its layout table stays off the parser's frame (firmware start-up stack).
#[inline(never)]
fn check_int8_weights(cfg: &VaeConfig, bytes: &[u8]) -> Result<(), ModelFileError> {
    let layout = QuantLayout::new(cfg);
    if bytes.len() != layout.weights {
        return Err(ModelFileError::LengthMismatch {
            what: "int8 weights",
            expected: layout.weights,
            actual: bytes.len(),
        });
    }
    for l in 0..layout.layers {
        let (inp, out, w0, _) = layout.shape[l];
        let k = quant::padded(inp);
        let layer = bytes
            .get(w0..w0 + k * quant::padded_rows(out))
            .unwrap_or_default();
        for o in 0..quant::padded_rows(out) {
            for i in 0..k {
                let (at, offset) = quant::stored_at(o, i, k);
                let b = layer.get(at).copied().unwrap_or(0x80);
                let v = if offset { (b ^ 0x80) as i8 } else { b as i8 };
                if v == -128 || ((o >= out || i >= inp) && v != 0) {
                    return Err(ModelFileError::BadField {
                        what: "int8 weight (−128, or a padding entry not 0)",
                        value: (w0 + at) as u32,
                    });
                }
            }
        }
    }
    Ok(())
}

/// What is wrong with a model file, or why one cannot be written or copied out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ModelFileError {
    /// Fewer bytes than the header or the stated file length.
    Truncated {
        /// Bytes required (at least).
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// More bytes than the stated file length (trailing data after the CRC).
    TooLong {
        /// The stated file length.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// The file does not start with [`MAGIC`].
    BadMagic {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// A format version this build cannot read.
    UnsupportedVersion {
        /// The stored version.
        found: u16,
    },
    /// The header length is below 88 or not a multiple of 4.
    BadHeaderLength {
        /// The stored header length.
        found: u16,
    },
    /// The CRC-32 over the contents differs from the stored one: the file is corrupt.
    BadCrc {
        /// The stored CRC.
        expected: u32,
        /// The CRC of the bytes as read.
        computed: u32,
    },
    /// The architecture is invalid (see [`VaeConfig::validate`]).
    InvalidConfig(&'static str),
    /// A code or count field holds a value with no meaning, or an unused field is not zero.
    BadField {
        /// Which field.
        what: &'static str,
        /// The stored value (the bit pattern for floats).
        value: u32,
    },
    /// A float field is finite but outside its range (sample rate ≤ 0, rate outside [0, 1]),
    /// or a count does not fit the file's 32-bit fields.
    OutOfRange {
        /// Which field.
        what: &'static str,
    },
    /// Fields disagree with each other (lengths, parameter count, window geometry).
    Inconsistent(&'static str),
    /// NaN or ±∞ where a finite value is required.
    NonFinite {
        /// Which field or array.
        what: &'static str,
        /// Index of the first bad element (0 for a single value).
        index: usize,
    },
    /// A slice passed in does not have the length the model requires.
    LengthMismatch {
        /// Which argument.
        what: &'static str,
        /// Elements required.
        expected: usize,
        /// Elements given.
        actual: usize,
    },
    /// The output buffer of [`write()`] is too small.
    BufferTooSmall {
        /// Bytes required ([`file_len`]).
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The file's architecture is not the one the caller was built for
    /// ([`ModelFile::expect_config`]).
    ConfigMismatch,
}

impl fmt::Display for ModelFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ModelFileError::Truncated { expected, actual } => write!(
                f,
                "model file truncated: {actual} bytes, expected {expected}; re-export or re-flash it"
            ),
            ModelFileError::TooLong { expected, actual } => write!(
                f,
                "model file has {actual} bytes, but its header says {expected}: trailing data after the CRC"
            ),
            ModelFileError::BadMagic { found } => write!(
                f,
                "not a VAE model file: starts with {found:02x?}, expected \"VAEM\""
            ),
            ModelFileError::UnsupportedVersion { found } => write!(
                f,
                "model file format version {found} is not supported (this build reads versions {VERSION_F32} and {VERSION}); export with a matching host-trainer"
            ),
            ModelFileError::BadHeaderLength { found } => write!(
                f,
                "model file header length {found} is invalid (needs a multiple of 4, at least {HEADER_LEN})"
            ),
            ModelFileError::BadCrc { expected, computed } => write!(
                f,
                "model file is corrupt: CRC-32 {computed:#010x} does not match the stored {expected:#010x}"
            ),
            ModelFileError::InvalidConfig(why) => {
                write!(f, "model file describes an invalid model: {why}")
            }
            ModelFileError::BadField { what, value } => {
                write!(f, "model file field `{what}` has an invalid value {value}")
            }
            ModelFileError::OutOfRange { what } => {
                write!(f, "model field `{what}` is out of range")
            }
            ModelFileError::Inconsistent(why) => write!(f, "model file is inconsistent: {why}"),
            ModelFileError::NonFinite { what, index } => {
                write!(f, "model holds NaN or infinity in {what} at index {index}")
            }
            ModelFileError::LengthMismatch {
                what,
                expected,
                actual,
            } => write!(f, "{what}: expected {expected} elements, got {actual}"),
            ModelFileError::BufferTooSmall { needed, available } => write!(
                f,
                "buffer too small for the model file: needs {needed} bytes, has {available}"
            ),
            ModelFileError::ConfigMismatch => f.write_str(
                "the model file's architecture differs from the one this program was built for; flash a matching model or rebuild with its generated source",
            ),
        }
    }
}

impl core::error::Error for ModelFileError {}

impl From<Error> for ModelFileError {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidConfig(why) => ModelFileError::InvalidConfig(why),
            _ => ModelFileError::InvalidConfig("invalid configuration"),
        }
    }
}

/// Sensor window geometry: rows are `len` time steps × `channels`, interleaved `[t][channel]`,
/// taken every `hop` samples.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Window {
    /// Time steps per window.
    pub len: usize,
    /// Samples between window starts.
    pub hop: usize,
    /// Channels per time step.
    pub channels: usize,
    /// Sampling rate in Hz.
    pub sample_rate_hz: f32,
}

/// A calibrated anomaly threshold.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Threshold {
    /// Scores above it are anomalies.
    pub value: f32,
    /// The false-alarm rate on normal data it was calibrated for, in [0, 1].
    pub false_alarm_rate: f32,
}

/// Everything [`write()`] puts into a model file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelParts<'a> {
    /// Architecture.
    pub config: VaeConfig,
    /// Window geometry (sensor models); `len × channels` must equal `config.input`.
    pub window: Option<Window>,
    /// The anomaly score the firmware computes.
    pub score: ScoreKind,
    /// Calibrated threshold, if any.
    pub threshold: Option<Threshold>,
    /// Normalization offset. Shape: `[D]`.
    pub norm_offset: &'a [f32],
    /// Normalization scale. Shape: `[D]`.
    pub norm_scale: &'a [f32],
    /// Parameters in the core's flat layout. Shape: `[num_params]` (f32 files); empty with
    /// `quant`.
    pub params: &'a [f32],
    /// The int8 parameters of a version-2 file instead of `params`.
    pub quant: Option<QuantParts<'a>>,
}

/// Little-endian f32 values decoded on the fly from a byte slice (no alignment needed).
#[derive(Clone, Debug)]
pub struct F32s<'a>(core::slice::ChunksExact<'a, u8>);

impl<'a> F32s<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        F32s(bytes.chunks_exact(4))
    }
}

impl Iterator for F32s<'_> {
    type Item = f32;
    fn next(&mut self) -> Option<f32> {
        self.0.next().map(le_f32)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for F32s<'_> {}

impl DoubleEndedIterator for F32s<'_> {
    fn next_back(&mut self) -> Option<f32> {
        self.0.next_back().map(le_f32)
    }
}

fn le_f32(c: &[u8]) -> f32 {
    match c {
        [a, b, c, d] => f32::from_le_bytes([*a, *b, *c, *d]),
        _ => f32::NAN, // unreachable: chunks are exactly four bytes
    }
}

/// A parsed, validated model file borrowing its bytes.
#[derive(Clone, Copy, Debug)]
pub struct ModelFile<'a> {
    config: VaeConfig,
    window: Option<Window>,
    score: ScoreKind,
    threshold: Option<Threshold>,
    offset: &'a [u8],
    scale: &'a [u8],
    /// f32 parameters (version 1), empty in an int8 file.
    params: &'a [u8],
    /// int8 parameters (version 2): input scales, scales, biases (f32 bytes), weights.
    quant: Option<[&'a [u8]; 4]>,
    crc: u32,
}

fn check_finite(what: &'static str, bytes: &[u8]) -> Result<(), ModelFileError> {
    match F32s::new(bytes).position(|v| !v.is_finite()) {
        Some(index) => Err(ModelFileError::NonFinite { what, index }),
        None => Ok(()),
    }
}

fn check_finite_f32(what: &'static str, xs: &[f32]) -> Result<(), ModelFileError> {
    match xs.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(ModelFileError::NonFinite { what, index }),
        None => Ok(()),
    }
}

/// Little-endian f32 bytes viewed as `&[f32]`: only on a little-endian target and when aligned.
fn in_place(bytes: &[u8]) -> Option<&[f32]> {
    if cfg!(target_endian = "little") {
        bytemuck::try_cast_slice(bytes).ok()
    } else {
        None
    }
}

/// Rejects a non-zero field that its flag or kind leaves unused.
fn zero(what: &'static str, value: u32) -> Result<(), ModelFileError> {
    if value == 0 {
        Ok(())
    } else {
        Err(ModelFileError::BadField { what, value })
    }
}

const fn score_code(score: ScoreKind) -> (u8, usize) {
    match score {
        ScoreKind::NegElboAtMean => (0, 0),
        ScoreKind::NegElbo { samples } => (1, samples),
        ScoreKind::NegLogLikelihood { samples } => (2, samples),
        ScoreKind::ReconstructionProbability { samples } => (3, samples),
    }
}

fn check_window(w: &Window, input: usize) -> Result<(), ModelFileError> {
    if w.len == 0 {
        return Err(ModelFileError::BadField {
            what: "window length",
            value: 0,
        });
    }
    if w.hop == 0 {
        return Err(ModelFileError::BadField {
            what: "window hop",
            value: 0,
        });
    }
    if w.channels == 0 {
        return Err(ModelFileError::BadField {
            what: "window channels",
            value: 0,
        });
    }
    if !w.sample_rate_hz.is_finite() {
        return Err(ModelFileError::NonFinite {
            what: "sample rate",
            index: 0,
        });
    }
    if w.sample_rate_hz <= 0.0 {
        return Err(ModelFileError::OutOfRange {
            what: "sample rate",
        });
    }
    if w.len.checked_mul(w.channels) != Some(input) {
        return Err(ModelFileError::Inconsistent(
            "window length × channels differs from the input dimension",
        ));
    }
    Ok(())
}

fn check_threshold(t: &Threshold) -> Result<(), ModelFileError> {
    if !t.value.is_finite() {
        return Err(ModelFileError::NonFinite {
            what: "threshold",
            index: 0,
        });
    }
    if !t.false_alarm_rate.is_finite() {
        return Err(ModelFileError::NonFinite {
            what: "false-alarm rate",
            index: 0,
        });
    }
    if !(0.0..=1.0).contains(&t.false_alarm_rate) {
        return Err(ModelFileError::OutOfRange {
            what: "false-alarm rate",
        });
    }
    Ok(())
}

fn check_score(score: ScoreKind) -> Result<(), ModelFileError> {
    let (code, samples) = score_code(score);
    if code != 0 && samples == 0 {
        return Err(ModelFileError::BadField {
            what: "score samples",
            value: 0,
        });
    }
    if samples > MAX_SCORE_SAMPLES {
        return Err(ModelFileError::OutOfRange {
            what: "score samples (at most MAX_SCORE_SAMPLES = 1000: each is a decoder pass per window on the device)",
        });
    }
    Ok(())
}

impl<'a> ModelFile<'a> {
    /// Parses and validates a model file (see the module docs for the layout and the checks).
    /// Never panics; on success every accessor is infallible and every float finite.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ModelFileError> {
        let actual = bytes.len();
        let short = ModelFileError::Truncated {
            expected: HEADER_LEN + CRC_LEN,
            actual,
        };
        let Some(magic) = bytes.first_chunk::<4>() else {
            return Err(short);
        };
        if *magic != MAGIC {
            return Err(ModelFileError::BadMagic { found: *magic });
        }
        let Some(&[.., v0, v1]) = bytes.first_chunk::<6>() else {
            return Err(short);
        };
        let version = u16::from_le_bytes([v0, v1]);
        if version != VERSION && version != VERSION_F32 {
            return Err(ModelFileError::UnsupportedVersion { found: version });
        }
        let Some(h) = bytes.first_chunk::<HEADER_LEN>() else {
            return Err(short);
        };
        let Ok(h) = bytemuck::try_pod_read_unaligned::<RawHeader>(h) else {
            return Err(short); // unreachable: the chunk is exactly one header
        };
        let h = h.swap_le();
        let header_len = h.header_len;
        if usize::from(header_len) < HEADER_LEN || !header_len.is_multiple_of(4) {
            return Err(ModelFileError::BadHeaderLength { found: header_len });
        }
        let file_len = h.file_len as usize;
        if actual < file_len {
            return Err(ModelFileError::Truncated {
                expected: file_len,
                actual,
            });
        }
        if actual > file_len {
            return Err(ModelFileError::TooLong {
                expected: file_len,
                actual,
            });
        }
        let Some(body_len) = actual.checked_sub(usize::from(header_len) + CRC_LEN) else {
            return Err(ModelFileError::Inconsistent(
                "the file length is shorter than the header",
            ));
        };
        let Some((contents, &stored)) = bytes.split_last_chunk::<CRC_LEN>() else {
            return Err(short);
        };
        let expected = u32::from_le_bytes(stored);
        let computed = CRC32.checksum(contents);
        if expected != computed {
            return Err(ModelFileError::BadCrc { expected, computed });
        }

        // Contents are intact; now check that they make sense.
        let flags = h.flags;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(ModelFileError::BadField {
                what: "flags",
                value: flags,
            });
        }
        let config = Self::parse_config(&h)?;
        let d = config.input;
        let p = config.num_params();
        if h.num_params as usize != p {
            return Err(ModelFileError::Inconsistent(
                "the parameter count does not match the dimensions",
            ));
        }
        let format = match (version, h.format) {
            (VERSION_F32, 0) => Format::F32,
            (VERSION, 1) => Format::Int8,
            (_, code) => {
                return Err(ModelFileError::BadField {
                    what: "parameter format (version 1: 0 f32; version 2: 1 int8)",
                    value: code.into(),
                });
            }
        };
        let q = QuantSizes::new(&config);
        // In u64: 4·P may not fit a 32-bit usize for the largest valid configurations.
        let params_len = match format {
            Format::F32 => 4 * p as u64,
            Format::Int8 => q.bytes() as u64,
        };
        if body_len as u64 != 8 * d as u64 + params_len {
            return Err(ModelFileError::Inconsistent(
                "the file length does not match the dimensions",
            ));
        }
        let window = if flags & FLAG_WINDOW != 0 {
            let w = Window {
                len: h.window_len as usize,
                hop: h.hop as usize,
                channels: h.channels as usize,
                sample_rate_hz: f32::from_bits(h.sample_rate),
            };
            check_window(&w, d)?;
            Some(w)
        } else {
            for (what, v) in [
                ("window length", h.window_len),
                ("window hop", h.hop),
                ("window channels", h.channels),
                ("sample rate", h.sample_rate),
            ] {
                zero(what, v)?;
            }
            None
        };
        let samples = h.score_samples as usize;
        let score = match h.score {
            0 => {
                zero("score samples", samples as u32)?;
                ScoreKind::NegElboAtMean
            }
            1 => ScoreKind::NegElbo { samples },
            2 => ScoreKind::NegLogLikelihood { samples },
            3 => ScoreKind::ReconstructionProbability { samples },
            code => {
                return Err(ModelFileError::BadField {
                    what: "score",
                    value: code.into(),
                });
            }
        };
        check_score(score)?;
        for b in h.reserved {
            zero("reserved", b.into())?;
        }
        let threshold = if flags & FLAG_THRESHOLD != 0 {
            let t = Threshold {
                value: f32::from_bits(h.threshold),
                false_alarm_rate: f32::from_bits(h.false_alarm_rate),
            };
            check_threshold(&t)?;
            Some(t)
        } else {
            zero("threshold", h.threshold)?;
            zero("false-alarm rate", h.false_alarm_rate)?;
            None
        };

        let body = contents.get(usize::from(header_len)..).unwrap_or_default();
        let (offset, rest) = body.split_at_checked(4 * d).unwrap_or_default();
        let (scale, params) = rest.split_at_checked(4 * d).unwrap_or_default();
        if params.len() as u64 != params_len {
            // Unreachable after the length check above; kept so no input can panic.
            return Err(ModelFileError::Inconsistent(
                "the file length does not match the dimensions",
            ));
        }
        check_finite("normalization offset", offset)?;
        check_finite("normalization scale", scale)?;
        let (params, quant) = match format {
            Format::F32 => {
                check_finite("params", params)?;
                (params, None)
            }
            Format::Int8 => {
                let (is, rest) = params.split_at_checked(4 * q.layers).unwrap_or_default();
                let (sc, rest) = rest.split_at_checked(4 * q.outputs).unwrap_or_default();
                let (bi, w) = rest.split_at_checked(4 * q.outputs).unwrap_or_default();
                check_finite("int8 input scales", is)?;
                check_finite("int8 scales", sc)?;
                check_finite("int8 biases", bi)?;
                if let Some(index) = F32s::new(is).position(|v| v <= 0.0) {
                    return Err(ModelFileError::NonFinite {
                        what: "int8 input scale (must be > 0)",
                        index,
                    });
                }
                check_int8_weights(&config, w)?;
                (&params[..0], Some([is, sc, bi, w]))
            }
        };
        Ok(ModelFile {
            config,
            window,
            score,
            threshold,
            offset,
            scale,
            params,
            quant,
            crc: computed,
        })
    }

    fn parse_config(h: &RawHeader) -> Result<VaeConfig, ModelFileError> {
        let activation = match h.activation {
            0 => Activation::Tanh,
            1 => Activation::Relu,
            code => {
                return Err(ModelFileError::BadField {
                    what: "activation",
                    value: code.into(),
                });
            }
        };
        let likelihood = match h.likelihood {
            0 => Likelihood::Bernoulli,
            1 => Likelihood::Gaussian {
                sigmoid_mean: false,
                floor: false,
            },
            2 => Likelihood::Gaussian {
                sigmoid_mean: true,
                floor: false,
            },
            3 => Likelihood::Gaussian {
                sigmoid_mean: false,
                floor: true,
            },
            4 => Likelihood::Gaussian {
                sigmoid_mean: true,
                floor: true,
            },
            code => {
                return Err(ModelFileError::BadField {
                    what: "likelihood",
                    value: code.into(),
                });
            }
        };
        let widths = |count: u8, stored: [u32; MAX_HIDDEN], unused: &'static str| {
            let n = usize::from(count);
            if n == 0 || n > MAX_HIDDEN {
                return Err(ModelFileError::InvalidConfig(
                    "each network needs one to three hidden layers",
                ));
            }
            let mut w = [0usize; MAX_HIDDEN];
            for (i, (slot, v)) in w.iter_mut().zip(stored).enumerate() {
                if i < n {
                    *slot = v as usize;
                } else {
                    zero(unused, v)?;
                }
            }
            Ok((w, n))
        };
        let (enc, ne) = widths(h.enc_count, h.enc_widths, "unused encoder width")?;
        let (dec, nd) = widths(h.dec_count, h.dec_widths, "unused decoder width")?;
        let config = VaeConfig::new(
            h.input as usize,
            &enc[..ne],
            h.latent as usize,
            activation,
            likelihood,
        )
        .with_decoder_hidden(&dec[..nd]);
        config.validate()?;
        Ok(config)
    }

    /// The architecture.
    pub fn config(&self) -> VaeConfig {
        self.config
    }

    /// Checks that the file holds the architecture `cfg` the program's statics were sized for.
    pub fn expect_config(&self, cfg: &VaeConfig) -> Result<(), ModelFileError> {
        if self.config == *cfg {
            Ok(())
        } else {
            Err(ModelFileError::ConfigMismatch)
        }
    }

    /// The sensor window geometry, if the model was trained on windows.
    pub fn window(&self) -> Option<Window> {
        self.window
    }

    /// The anomaly score to compute.
    pub fn score(&self) -> ScoreKind {
        self.score
    }

    /// The calibrated threshold and its false-alarm rate, if any.
    pub fn calibration(&self) -> Option<Threshold> {
        self.threshold
    }

    /// Scores above it are anomalies; `None` for a model exported without calibration.
    pub fn threshold(&self) -> Option<f32> {
        self.threshold.map(|t| t.value)
    }

    /// The false-alarm rate the threshold was calibrated for; `None` without calibration.
    pub fn false_alarm_rate(&self) -> Option<f32> {
        self.threshold.map(|t| t.false_alarm_rate)
    }

    /// Normalization offset, D values.
    pub fn normalization_offset(&self) -> F32s<'a> {
        F32s::new(self.offset)
    }

    /// Normalization scale, D values.
    pub fn normalization_scale(&self) -> F32s<'a> {
        F32s::new(self.scale)
    }

    /// The parameters in the core's flat layout, `num_params` values.
    pub fn params(&self) -> F32s<'a> {
        F32s::new(self.params)
    }

    /// The parameters in place, without a copy, when the image is 4-byte aligned on a
    /// little-endian target (bytemuck's checked cast; the firmware's `Aligned` image in flash);
    /// `None` otherwise (then [`ModelFile::copy_params`]).
    pub fn params_in_place(&self) -> Option<&'a [f32]> {
        in_place(self.params)
    }

    /// The normalization offset and scale in place, like [`ModelFile::params_in_place`].
    pub fn normalization_in_place(&self) -> Option<(&'a [f32], &'a [f32])> {
        Some((in_place(self.offset)?, in_place(self.scale)?))
    }

    /// How the parameters are stored: f32 (version 1) or int8 (version 2).
    pub fn format(&self) -> Format {
        if self.quant.is_some() {
            Format::Int8
        } else {
            Format::F32
        }
    }

    /// The int8 model in place, without a copy, when the file is int8 and the image is 4-byte
    /// aligned on a little-endian target; `None` otherwise. (Parsing checked every value, so
    /// building the [`QuantVae`] cannot fail here.)
    pub fn quant_in_place(&self) -> Option<QuantVae<'a>> {
        let [is, sc, bi, w] = self.quant?;
        let w: &[i8] = bytemuck::cast_slice(w);
        QuantVae::new(self.config, w, in_place(sc)?, in_place(bi)?, in_place(is)?).ok()
    }

    /// CRC-32 of the file, a fingerprint to log which model a device runs.
    pub fn crc(&self) -> u32 {
        self.crc
    }

    /// Copies the normalization into `offset [D]` and `scale [D]`. Nothing is written unless
    /// both lengths are right.
    pub fn copy_normalization(
        &self,
        offset: &mut [f32],
        scale: &mut [f32],
    ) -> Result<(), ModelFileError> {
        let d = self.config.input;
        for (what, actual) in [
            ("normalization offset", offset.len()),
            ("normalization scale", scale.len()),
        ] {
            if actual != d {
                return Err(ModelFileError::LengthMismatch {
                    what,
                    expected: d,
                    actual,
                });
            }
        }
        for (dst, v) in offset.iter_mut().zip(self.normalization_offset()) {
            *dst = v;
        }
        for (dst, v) in scale.iter_mut().zip(self.normalization_scale()) {
            *dst = v;
        }
        Ok(())
    }

    /// Copies the parameters into `out [num_params]` (f32 files; an int8 file has none).
    pub fn copy_params(&self, out: &mut [f32]) -> Result<(), ModelFileError> {
        if self.quant.is_some() {
            return Err(ModelFileError::Inconsistent(
                "an int8 model file has no f32 parameters",
            ));
        }
        let p = self.config.num_params();
        if out.len() != p {
            return Err(ModelFileError::LengthMismatch {
                what: "params",
                expected: p,
                actual: out.len(),
            });
        }
        for (dst, v) in out.iter_mut().zip(self.params()) {
            *dst = v;
        }
        Ok(())
    }
}

/// The first `(what, expected, actual)` whose lengths differ, as an error.
fn check_lengths(lengths: &[(&'static str, usize, usize)]) -> Result<(), ModelFileError> {
    match lengths.iter().find(|(_, e, a)| e != a) {
        Some(&(what, expected, actual)) => Err(ModelFileError::LengthMismatch {
            what,
            expected,
            actual,
        }),
        None => Ok(()),
    }
}

/// Writes `model` as a model file into the front of `out` and returns the bytes written
/// ([`file_len`]). Refuses (leaving `out` untouched) anything [`ModelFile::parse`] would refuse:
/// an invalid configuration, wrong slice lengths, NaN or ±∞, a window whose `len × channels`
/// is not D, a sampled score with zero samples, a false-alarm rate outside [0, 1].
pub fn write(out: &mut [u8], model: &ModelParts<'_>) -> Result<usize, ModelFileError> {
    let cfg = &model.config;
    cfg.validate()?;
    let (d, p) = (cfg.input, cfg.num_params());
    let q = QuantSizes::new(cfg);
    let f32_params = if model.quant.is_some() { 0 } else { p };
    check_lengths(&[
        ("normalization offset", d, model.norm_offset.len()),
        ("normalization scale", d, model.norm_scale.len()),
        ("params", f32_params, model.params.len()),
    ])?;
    check_finite_f32("normalization offset", model.norm_offset)?;
    check_finite_f32("normalization scale", model.norm_scale)?;
    check_finite_f32("params", model.params)?;
    if let Some(qp) = &model.quant {
        check_lengths(&[
            ("int8 weights", q.weights, qp.weights.len()),
            ("int8 scales", q.outputs, qp.scales.len()),
            ("int8 biases", q.outputs, qp.biases.len()),
            ("int8 input scales", q.layers, qp.input_scales.len()),
        ])?;
        check_finite_f32("int8 input scales", qp.input_scales)?;
        check_finite_f32("int8 scales", qp.scales)?;
        check_finite_f32("int8 biases", qp.biases)?;
        if let Some(index) = qp.input_scales.iter().position(|v| *v <= 0.0) {
            return Err(ModelFileError::NonFinite {
                what: "int8 input scale (must be > 0)",
                index,
            });
        }
        check_int8_weights(cfg, bytemuck::cast_slice(qp.weights))?;
    }
    check_score(model.score)?;
    if let Some(w) = &model.window {
        check_window(w, d)?;
        for (what, v) in [
            ("window hop", w.hop),
            ("window length", w.len),
            ("window channels", w.channels),
        ] {
            if u32::try_from(v).is_err() {
                return Err(ModelFileError::OutOfRange { what });
            }
        }
    }
    if let Some(t) = &model.threshold {
        check_threshold(t)?;
    }
    let n = if model.quant.is_some() {
        file_len_int8(cfg)
    } else {
        file_len(cfg)
    };
    let Ok(n32) = u32::try_from(n) else {
        return Err(ModelFileError::OutOfRange {
            what: "file length (above 4 GiB)",
        });
    };
    let available = out.len();
    let Some(out) = out.get_mut(..n) else {
        return Err(ModelFileError::BufferTooSmall {
            needed: n,
            available,
        });
    };

    // Every count below is at most MAX_DIM or checked above, so `as u32` is exact.
    let widths = |ws: &[usize]| {
        let mut out = [0u32; MAX_HIDDEN];
        for (o, w) in out.iter_mut().zip(ws) {
            *o = *w as u32;
        }
        out
    };
    let (code, samples) = score_code(model.score);
    let w = model.window;
    let t = model.threshold;
    let h = RawHeader {
        magic: MAGIC,
        version: if model.quant.is_some() {
            VERSION
        } else {
            VERSION_F32
        },
        header_len: HEADER_LEN as u16,
        file_len: n32,
        flags: if w.is_some() { FLAG_WINDOW } else { 0 }
            | if t.is_some() { FLAG_THRESHOLD } else { 0 },
        input: d as u32,
        latent: cfg.latent as u32,
        enc_count: cfg.encoder_hidden.len() as u8,
        dec_count: cfg.decoder_hidden.len() as u8,
        activation: match cfg.activation {
            Activation::Tanh => 0,
            Activation::Relu => 1,
        },
        likelihood: match cfg.likelihood {
            Likelihood::Bernoulli => 0,
            Likelihood::Gaussian {
                sigmoid_mean: false,
                floor: false,
            } => 1,
            Likelihood::Gaussian {
                sigmoid_mean: true,
                floor: false,
            } => 2,
            Likelihood::Gaussian {
                sigmoid_mean: false,
                floor: true,
            } => 3,
            Likelihood::Gaussian {
                sigmoid_mean: true,
                floor: true,
            } => 4,
        },
        enc_widths: widths(cfg.encoder_hidden.widths()),
        dec_widths: widths(cfg.decoder_hidden.widths()),
        num_params: p as u32,
        window_len: w.map_or(0, |w| w.len as u32),
        hop: w.map_or(0, |w| w.hop as u32),
        channels: w.map_or(0, |w| w.channels as u32),
        sample_rate: w.map_or(0, |w| w.sample_rate_hz.to_bits()),
        score: code,
        format: u8::from(model.quant.is_some()),
        reserved: [0; 2],
        score_samples: samples as u32,
        threshold: t.map_or(0, |t| t.value.to_bits()),
        false_alarm_rate: t.map_or(0, |t| t.false_alarm_rate.to_bits()),
    }
    .swap_le();

    let (header, rest) = out.split_at_mut(HEADER_LEN);
    header.copy_from_slice(bytemuck::bytes_of(&h));
    let (a, b, c, w): (&[f32], &[f32], &[f32], &[i8]) = match &model.quant {
        None => (model.params, &[], &[], &[]),
        Some(qp) => (qp.input_scales, qp.scales, qp.biases, qp.weights),
    };
    let floats = model
        .norm_offset
        .iter()
        .chain(model.norm_scale)
        .chain(a)
        .chain(b)
        .chain(c);
    let n_floats = 2 * d + a.len() + b.len() + c.len();
    let (fl, wb) = rest.split_at_mut(4 * n_floats);
    for (dst, v) in fl.chunks_exact_mut(4).zip(floats) {
        dst.copy_from_slice(&v.to_le_bytes());
    }
    for (dst, v) in wb.iter_mut().zip(w) {
        *dst = *v as u8;
    }
    let crc = CRC32.checksum(&out[..n - CRC_LEN]);
    out[n - CRC_LEN..].copy_from_slice(&crc.to_le_bytes());
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: VaeConfig = VaeConfig::new(3, &[2], 1, Activation::Tanh, Likelihood::Bernoulli);
    const SENSOR: VaeConfig = VaeConfig::new(
        6,
        &[5, 4],
        2,
        Activation::Relu,
        Likelihood::Gaussian {
            sigmoid_mean: true,
            floor: false,
        },
    )
    .with_decoder_hidden(&[3]);

    /// Deterministic, awkward floats: signs, zeros, subnormals, large and small magnitudes.
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let special = [
            -0.0,
            0.0,
            f32::MIN_POSITIVE / 8.0,
            -f32::MAX,
            f32::MAX,
            1e-30,
            core::f32::consts::PI,
        ];
        let mut s = seed.wrapping_mul(2_654_435_761) | 1;
        (0..n)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                if i % 5 == 0 {
                    special[(s as usize) % special.len()]
                } else {
                    (s as f32 / u32::MAX as f32 - 0.5) * 8.0
                }
            })
            .collect()
    }

    struct Owned {
        config: VaeConfig,
        window: Option<Window>,
        score: ScoreKind,
        threshold: Option<Threshold>,
        offset: Vec<f32>,
        scale: Vec<f32>,
        params: Vec<f32>,
    }

    impl Owned {
        fn new(config: VaeConfig, seed: u32) -> Self {
            Owned {
                config,
                window: None,
                score: ScoreKind::NegElboAtMean,
                threshold: None,
                offset: values(config.input, seed),
                scale: values(config.input, seed + 1),
                params: values(config.num_params(), seed + 2),
            }
        }
        fn sensor() -> Self {
            Owned {
                window: Some(Window {
                    len: 3,
                    hop: 2,
                    channels: 2,
                    sample_rate_hz: 104.0,
                }),
                score: ScoreKind::NegLogLikelihood { samples: 16 },
                threshold: Some(Threshold {
                    value: 12.5,
                    false_alarm_rate: 0.01,
                }),
                ..Owned::new(SENSOR, 7)
            }
        }
        fn parts(&self) -> ModelParts<'_> {
            ModelParts {
                config: self.config,
                window: self.window,
                score: self.score,
                threshold: self.threshold,
                norm_offset: &self.offset,
                norm_scale: &self.scale,
                params: &self.params,
                quant: None,
            }
        }
        fn bytes(&self) -> Vec<u8> {
            let mut out = vec![0xAA; file_len(&self.config) + 3];
            let n = write(&mut out, &self.parts()).unwrap();
            assert_eq!(n, file_len(&self.config));
            assert!(out[n..].iter().all(|&b| b == 0xAA), "wrote past the end");
            out.truncate(n);
            out
        }
    }

    fn bits(xs: impl IntoIterator<Item = f32>) -> Vec<u32> {
        xs.into_iter().map(f32::to_bits).collect()
    }

    /// Rewrites the CRC so a deliberate corruption reaches the checks behind it.
    fn fix_crc(bytes: &mut [u8]) {
        let n = bytes.len();
        let crc = CRC32.checksum(&bytes[..n - 4]);
        bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn round_trip_is_bit_exact() {
        for m in [Owned::new(SMALL, 1), Owned::sensor()] {
            let bytes = m.bytes();
            let f = ModelFile::parse(&bytes).unwrap();
            assert_eq!(f.config(), m.config);
            f.expect_config(&m.config).unwrap();
            assert_eq!(f.window(), m.window);
            assert_eq!(f.score(), m.score);
            assert_eq!(f.calibration(), m.threshold);
            assert_eq!(f.threshold(), m.threshold.map(|t| t.value));
            assert_eq!(
                f.false_alarm_rate(),
                m.threshold.map(|t| t.false_alarm_rate)
            );
            assert_eq!(bits(f.params()), bits(m.params.iter().copied()));
            assert_eq!(f.params().len(), m.config.num_params());
            assert_eq!(bits(f.normalization_offset()), bits(m.offset.clone()));
            assert_eq!(bits(f.normalization_scale()), bits(m.scale.clone()));
            let mut p = vec![0f32; m.config.num_params()];
            f.copy_params(&mut p).unwrap();
            assert_eq!(bits(p), bits(m.params.clone()));
            let (mut o, mut s) = (vec![0f32; m.config.input], vec![0f32; m.config.input]);
            f.copy_normalization(&mut o, &mut s).unwrap();
            assert_eq!((bits(o), bits(s)), (bits(m.offset), bits(m.scale)));
            assert_eq!(
                f.crc(),
                u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().unwrap())
            );
        }
    }

    #[test]
    fn fields_sit_where_the_table_says() {
        let m = Owned::sensor();
        let b = m.bytes();
        let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
        let f32_at = |at: usize| f32::from_bits(u32_at(at));
        assert_eq!(&b[0..4], b"VAEM");
        assert_eq!(u16::from_le_bytes([b[4], b[5]]), 1);
        assert_eq!(u16::from_le_bytes([b[6], b[7]]), 88);
        assert_eq!(u32_at(8) as usize, b.len());
        assert_eq!(u32_at(12), FLAG_WINDOW | FLAG_THRESHOLD);
        assert_eq!((u32_at(16), u32_at(20)), (6, 2));
        assert_eq!(&b[24..28], &[2, 1, 1, 2]);
        assert_eq!([u32_at(28), u32_at(32), u32_at(36)], [5, 4, 0]);
        assert_eq!([u32_at(40), u32_at(44), u32_at(48)], [3, 0, 0]);
        assert_eq!(u32_at(52) as usize, SENSOR.num_params());
        assert_eq!([u32_at(56), u32_at(60), u32_at(64)], [3, 2, 2]);
        assert_eq!(f32_at(68), 104.0);
        assert_eq!(&b[72..76], &[2, 0, 0, 0]);
        assert_eq!(u32_at(76), 16);
        assert_eq!((f32_at(80), f32_at(84)), (12.5, 0.01));
        assert_eq!(f32_at(88).to_bits(), m.offset[0].to_bits());
        assert_eq!(f32_at(88 + 4 * 6).to_bits(), m.scale[0].to_bits());
        assert_eq!(f32_at(88 + 8 * 6).to_bits(), m.params[0].to_bits());
        let n = b.len();
        assert_eq!(u32_at(n - 4), CRC32.checksum(&b[..n - 4]));
        // CRC-32/ISO-HDLC check value, so other tools (zlib.crc32, binascii) agree.
        assert_eq!(CRC32.checksum(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn named_errors() {
        let good = Owned::sensor().bytes();
        let n = good.len();
        let parse = |b: &[u8]| ModelFile::parse(b).unwrap_err();

        assert_eq!(
            parse(&good[..n - 1]),
            ModelFileError::Truncated {
                expected: n,
                actual: n - 1
            }
        );
        assert_eq!(
            parse(&good[..10]),
            ModelFileError::Truncated {
                expected: 92,
                actual: 10
            }
        );
        let mut long = good.clone();
        long.push(0);
        assert_eq!(
            parse(&long),
            ModelFileError::TooLong {
                expected: n,
                actual: n + 1
            }
        );
        let mut b = good.clone();
        b[0] = b'X';
        assert_eq!(parse(&b), ModelFileError::BadMagic { found: *b"XAEM" });
        let mut b = good.clone();
        b[4] = 3;
        assert_eq!(parse(&b), ModelFileError::UnsupportedVersion { found: 3 });
        let mut b = good.clone();
        b[6] = 86;
        assert_eq!(parse(&b), ModelFileError::BadHeaderLength { found: 86 });
        let mut b = good.clone();
        b[100] ^= 1;
        let stored = u32::from_le_bytes(good[n - 4..].try_into().unwrap());
        assert!(
            matches!(parse(&b), ModelFileError::BadCrc { expected, computed }
            if expected == stored && computed != stored)
        );

        // Behind a valid CRC: the semantic checks.
        let with = |at: usize, patch: &[u8]| {
            let mut b = good.clone();
            b[at..at + patch.len()].copy_from_slice(patch);
            fix_crc(&mut b);
            ModelFile::parse(&b).unwrap_err()
        };
        assert_eq!(
            with(88 + 8 * 6 + 4 * 3, &f32::NAN.to_le_bytes()),
            ModelFileError::NonFinite {
                what: "params",
                index: 3
            }
        );
        assert_eq!(
            with(88 + 4 * 6 + 4, &f32::INFINITY.to_le_bytes()),
            ModelFileError::NonFinite {
                what: "normalization scale",
                index: 1
            }
        );
        assert_eq!(
            with(80, &f32::NEG_INFINITY.to_le_bytes()),
            ModelFileError::NonFinite {
                what: "threshold",
                index: 0
            }
        );
        assert_eq!(
            with(84, &1.5f32.to_le_bytes()),
            ModelFileError::OutOfRange {
                what: "false-alarm rate"
            }
        );
        assert_eq!(
            with(26, &[7]),
            ModelFileError::BadField {
                what: "activation",
                value: 7
            }
        );
        assert_eq!(
            with(24, &[4]),
            ModelFileError::InvalidConfig("each network needs one to three hidden layers")
        );
        assert_eq!(
            with(16, &0u32.to_le_bytes()),
            ModelFileError::InvalidConfig("input dimension is zero")
        );
        assert_eq!(
            with(52, &1u32.to_le_bytes()),
            ModelFileError::Inconsistent("the parameter count does not match the dimensions")
        );
        assert_eq!(
            with(64, &3u32.to_le_bytes()),
            ModelFileError::Inconsistent(
                "window length × channels differs from the input dimension"
            )
        );
        assert_eq!(
            with(12, &4u32.to_le_bytes()),
            ModelFileError::BadField {
                what: "flags",
                value: 4
            }
        );
        assert_eq!(
            with(76, &0u32.to_le_bytes()),
            ModelFileError::BadField {
                what: "score samples",
                value: 0
            }
        );
        // Issue 12: a sampled score asking for more passes per window than a device can run
        // (2³² − 1 parsed before) is refused; MAX_SCORE_SAMPLES itself is accepted.
        for n in [MAX_SCORE_SAMPLES as u32 + 1, u32::MAX] {
            assert!(
                matches!(
                    with(76, &n.to_le_bytes()),
                    ModelFileError::OutOfRange { what } if what.starts_with("score samples")
                ),
                "{n} samples"
            );
        }
        let mut b = good.clone();
        b[76..80].copy_from_slice(&(MAX_SCORE_SAMPLES as u32).to_le_bytes());
        fix_crc(&mut b);
        assert!(ModelFile::parse(&b).is_ok());
        assert_eq!(
            with(74, &[1]),
            ModelFileError::BadField {
                what: "reserved",
                value: 1
            }
        );
        // A version-1 file must say f32; int8 parameters need version 2 (and its length).
        assert_eq!(
            with(73, &[1]),
            ModelFileError::BadField {
                what: "parameter format (version 1: 0 f32; version 2: 1 int8)",
                value: 1
            }
        );
        assert_eq!(
            with(4, &2u16.to_le_bytes()),
            ModelFileError::BadField {
                what: "parameter format (version 1: 0 f32; version 2: 1 int8)",
                value: 0
            }
        );
        // Flag cleared but fields left set: refused, so each model has one image.
        assert_eq!(
            with(12, &FLAG_THRESHOLD.to_le_bytes()),
            ModelFileError::BadField {
                what: "window length",
                value: 3
            }
        );
    }

    #[test]
    fn longer_headers_are_skipped() {
        // A future compatible writer appends header fields; version-1 readers skip them.
        let m = Owned::sensor();
        let b = m.bytes();
        let extra = 8;
        let mut longer = Vec::new();
        longer.extend_from_slice(&b[..HEADER_LEN]);
        longer.extend_from_slice(&[0x5A; 8]);
        longer.extend_from_slice(&b[HEADER_LEN..]);
        longer[6..8].copy_from_slice(&((HEADER_LEN + extra) as u16).to_le_bytes());
        let len = longer.len() as u32;
        longer[8..12].copy_from_slice(&len.to_le_bytes());
        fix_crc(&mut longer);
        let f = ModelFile::parse(&longer).unwrap();
        assert_eq!(bits(f.params()), bits(m.params));
        assert_eq!(bits(f.normalization_scale()), bits(m.scale));
    }

    /// An int8 image of `Owned::new(cfg, seed)`'s model (quantized with calibration maxima of
    /// 1), with its buffers.
    /// An image and its buffers: weights, scales, biases, input scales.
    type Int8Image = (Vec<u8>, Vec<i8>, Vec<f32>, Vec<f32>, Vec<f32>);

    fn int8_image(cfg: VaeConfig, seed: u32) -> Int8Image {
        let m = Owned::new(cfg, seed);
        let q = QuantLayout::new(&cfg);
        let params: Vec<f32> = m.params.iter().map(|p| p.clamp(-4.0, 4.0)).collect();
        let (mut w, mut sc, mut bi, mut is) = (
            vec![0i8; q.weights],
            vec![0f32; q.outputs],
            vec![0f32; q.outputs],
            vec![0f32; q.layers],
        );
        quant::quantize(
            &cfg,
            &params,
            &vec![1.0; q.layers],
            &mut w,
            &mut sc,
            &mut bi,
            &mut is,
        )
        .unwrap();
        let parts = ModelParts {
            params: &[],
            quant: Some(QuantParts {
                weights: &w,
                scales: &sc,
                biases: &bi,
                input_scales: &is,
            }),
            ..m.parts()
        };
        let mut out = vec![0u8; file_len_int8(&cfg)];
        assert_eq!(write(&mut out, &parts), Ok(out.len()));
        (out, w, sc, bi, is)
    }

    /// Version 2 (int8): written, parsed, used in place with the same values and the same
    /// score as the buffers it was written from; its errors are named.
    #[test]
    fn int8_files_round_trip_and_refuse_bad_values() {
        let (image, w, sc, bi, is) = int8_image(SENSOR, 5);
        assert_eq!(u16::from_le_bytes([image[4], image[5]]), VERSION);
        let aligned: Vec<u32> = image
            .chunks(4)
            .map(|c| {
                let mut b = [0u8; 4];
                b[..c.len()].copy_from_slice(c);
                u32::from_ne_bytes(b)
            })
            .collect();
        let bytes = &bytemuck::cast_slice::<u32, u8>(&aligned)[..image.len()];
        let f = ModelFile::parse(bytes).unwrap();
        assert_eq!(f.format(), Format::Int8);
        assert!(f.params_in_place().unwrap().is_empty());
        assert!(f.copy_params(&mut [0.0; 1]).is_err());
        let q = f.quant_in_place().unwrap();
        let r = QuantVae::new(SENSOR, &w, &sc, &bi, &is).unwrap();
        let (nf, np) = quant::scratch_len(&SENSOR);
        let x = [0.3f32, -0.2, 0.9, 0.0, -1.0, 0.5];
        let score = |v: &QuantVae<'_>| {
            let (mut f32s, mut pairs, mut head) = (vec![0f32; nf], vec![0u32; np], [0f32; 4]);
            v.score_neg_elbo_at_mean(&crate::Portable, &x, &mut f32s, &mut pairs, &mut head)
                .unwrap()
                .to_bits()
        };
        assert_eq!(score(&q), score(&r));
        // An f32 file of the same model is version 1, as before.
        let f32_file = Owned::new(SENSOR, 5).bytes();
        assert_eq!(u16::from_le_bytes([f32_file[4], f32_file[5]]), VERSION_F32);
        assert_eq!(ModelFile::parse(&f32_file).unwrap().format(), Format::F32);

        let layout = QuantLayout::new(&SENSOR);
        let weights_at = image.len() - 4 - layout.weights;
        let with = |at: usize, patch: &[u8]| {
            let mut b = image.clone();
            b[at..at + patch.len()].copy_from_slice(patch);
            fix_crc(&mut b);
            ModelFile::parse(&b).unwrap_err()
        };
        // Layer 0 (6 inputs padded to 8, 5 rows padded to 8): row 1, input 0 is an odd-row
        // byte (two's complement); row 0, input 6 is padding (offset binary, 0x80 for 0).
        let (odd, _) = quant::stored_at(1, 0, 8);
        assert!(matches!(
            with(weights_at + odd, &[0x80]),
            ModelFileError::BadField { .. }
        ));
        let (pad, offset) = quant::stored_at(0, 6, 8);
        assert!(offset);
        assert_eq!(image[weights_at + pad], 0x80);
        assert!(matches!(
            with(weights_at + pad, &[0x81]),
            ModelFileError::BadField { .. }
        ));
        let scales_at = 88 + 8 * 6;
        assert_eq!(
            with(scales_at + 4, &0f32.to_le_bytes()),
            ModelFileError::NonFinite {
                what: "int8 input scale (must be > 0)",
                index: 1
            }
        );
        assert_eq!(
            with(scales_at, &f32::INFINITY.to_le_bytes()),
            ModelFileError::NonFinite {
                what: "int8 input scales",
                index: 0
            }
        );
        // The writer refuses what the parser would.
        let mut bad = w.clone();
        bad[odd] = -128;
        let m = Owned::new(SENSOR, 5);
        let parts = ModelParts {
            params: &[],
            quant: Some(QuantParts {
                weights: &bad,
                scales: &sc,
                biases: &bi,
                input_scales: &is,
            }),
            ..m.parts()
        };
        assert!(write(&mut vec![0u8; image.len()], &parts).is_err());
        let parts = ModelParts {
            quant: Some(QuantParts {
                weights: &w,
                scales: &sc,
                biases: &bi,
                input_scales: &is,
            }),
            ..m.parts()
        };
        assert!(matches!(
            write(&mut vec![0u8; image.len()], &parts),
            Err(ModelFileError::LengthMismatch { what: "params", .. })
        ));
        // Every byte flipped to every value, CRC fixed: no panic; only the value checks decide.
        for at in 0..image.len() - 4 {
            for v in [0u8, 1, 0x7f, 0x80, 0x81, 0xff] {
                let mut b = image.clone();
                b[at] = v;
                fix_crc(&mut b);
                let _ = ModelFile::parse(&b);
            }
        }
    }

    #[test]
    fn never_panics_on_prefixes_corruptions_and_garbage() {
        let good = Owned::new(SMALL, 3).bytes();
        assert!(good.len() < 256, "keep the exhaustive test small");
        for n in 0..good.len() {
            let expected = if n < HEADER_LEN {
                HEADER_LEN + CRC_LEN
            } else {
                good.len()
            };
            assert_eq!(
                ModelFile::parse(&good[..n]).unwrap_err(),
                ModelFileError::Truncated {
                    expected,
                    actual: n
                },
                "prefix of {n} bytes"
            );
        }
        for at in 0..good.len() {
            for v in 0..=255u8 {
                if v == good[at] {
                    continue;
                }
                let mut b = good.clone();
                b[at] = v;
                // CRC-32 detects every single-byte error.
                assert!(ModelFile::parse(&b).is_err(), "byte {at} = {v}");
                // With the CRC fixed up, the field checks must hold without panicking.
                if at < b.len() - 4 {
                    fix_crc(&mut b);
                    let _ = ModelFile::parse(&b);
                }
            }
        }
        let mut s = 0x9E37_79B9u32;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s
        };
        for round in 0..20_000 {
            let len = (next() % 400) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Most rounds get a plausible header so they reach the deeper checks.
            if round % 4 != 0 && len >= 12 {
                b[..4].copy_from_slice(&MAGIC);
                b[4..6].copy_from_slice(&1u16.to_le_bytes());
                b[6..8].copy_from_slice(&88u16.to_le_bytes());
                b[8..12].copy_from_slice(&(len as u32).to_le_bytes());
                if len >= 92 {
                    b[24] = (next() % 4) as u8;
                    b[25] = (next() % 4) as u8;
                    b[26] = (next() % 3) as u8;
                    b[27] = (next() % 4) as u8;
                }
                if len >= 4 {
                    fix_crc(&mut b);
                }
            }
            let _ = ModelFile::parse(&b);
        }
    }

    #[test]
    fn writer_refuses_what_the_parser_would() {
        let m = Owned::sensor();
        let mut out = vec![0x11u8; file_len(&m.config)];
        let check = |parts: ModelParts<'_>, e: ModelFileError, out: &mut Vec<u8>| {
            assert_eq!(write(out, &parts), Err(e));
            assert!(out.iter().all(|&b| b == 0x11), "output modified on error");
        };
        let mut bad = m.params.clone();
        bad[5] = f32::NAN;
        check(
            ModelParts {
                params: &bad,
                ..m.parts()
            },
            ModelFileError::NonFinite {
                what: "params",
                index: 5,
            },
            &mut out,
        );
        check(
            ModelParts {
                params: &m.params[1..],
                ..m.parts()
            },
            ModelFileError::LengthMismatch {
                what: "params",
                expected: SENSOR.num_params(),
                actual: SENSOR.num_params() - 1,
            },
            &mut out,
        );
        check(
            ModelParts {
                config: SENSOR.with_decoder_hidden(&[]),
                ..m.parts()
            },
            ModelFileError::InvalidConfig("each network needs one to three hidden layers"),
            &mut out,
        );
        check(
            ModelParts {
                score: ScoreKind::NegElbo { samples: 0 },
                ..m.parts()
            },
            ModelFileError::BadField {
                what: "score samples",
                value: 0,
            },
            &mut out,
        );
        check(
            ModelParts {
                window: Some(Window {
                    channels: 3,
                    ..m.window.unwrap()
                }),
                ..m.parts()
            },
            ModelFileError::Inconsistent(
                "window length × channels differs from the input dimension",
            ),
            &mut out,
        );
        check(
            ModelParts {
                threshold: Some(Threshold {
                    value: f32::NAN,
                    false_alarm_rate: 0.1,
                }),
                ..m.parts()
            },
            ModelFileError::NonFinite {
                what: "threshold",
                index: 0,
            },
            &mut out,
        );
        let mut short = vec![0x11u8; file_len(&m.config) - 1];
        check(
            m.parts(),
            ModelFileError::BufferTooSmall {
                needed: file_len(&m.config),
                available: file_len(&m.config) - 1,
            },
            &mut short,
        );
    }

    #[test]
    fn copies_are_length_checked() {
        let b = Owned::new(SMALL, 5).bytes();
        let f = ModelFile::parse(&b).unwrap();
        let p = SMALL.num_params();
        let mut short = vec![7f32; p - 1];
        assert_eq!(
            f.copy_params(&mut short),
            Err(ModelFileError::LengthMismatch {
                what: "params",
                expected: p,
                actual: p - 1
            })
        );
        assert!(short.iter().all(|&v| v == 7.0));
        let (mut o, mut s) = ([7f32; 3], [7f32; 4]);
        assert!(matches!(
            f.copy_normalization(&mut o, &mut s),
            Err(ModelFileError::LengthMismatch {
                what: "normalization scale",
                ..
            })
        ));
        assert_eq!(o, [7.0; 3], "nothing written on error");
        assert_eq!(
            f.expect_config(&SENSOR),
            Err(ModelFileError::ConfigMismatch)
        );
    }

    #[test]
    fn errors_display_one_line() {
        use std::string::ToString;
        for e in [
            ModelFileError::BadMagic { found: *b"\x7fELF" },
            ModelFileError::BadCrc {
                expected: 1,
                computed: 2,
            },
            ModelFileError::Truncated {
                expected: 92,
                actual: 3,
            },
        ] {
            let s = e.to_string();
            assert!(!s.contains('\n') && !s.is_empty(), "{s}");
        }
        assert_eq!(
            ModelFileError::BadCrc {
                expected: 0xDEADBEEF,
                computed: 0x12
            }
            .to_string(),
            "model file is corrupt: CRC-32 0x00000012 does not match the stored 0xdeadbeef"
        );
    }
}
