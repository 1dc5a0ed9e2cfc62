//! The application: a checked model ([`Model`]), the windowing and normalization of the sample
//! stream ([`Windower`]), the per-window pipeline ([`App`]): score (with μ, log σ² as a
//! by-product) → calibration or threshold → [`Report`]; and the one block of RAM they work in
//! ([`Buffers`], a static on the device).
//!
//! ## RAM
//! Every buffer is in [`Buffers`]: the scoring workspace (the activations of one window,
//! [`crate::WORKSPACE_LEN`] f32), the window `Vae::score` reads ([`D`] f32), the calibration's
//! top-k ([`MAX_TOP`](crate::calibration::MAX_TOP) f32) and, only when the model's hop is
//! shorter than its window, a ring of raw samples ([`RING_LEN`] f32). [`App`] itself holds
//! borrows of them and a few words of state.
//!
//! With hop ≥ window length (the default model: hop 64 = length 64) every sample belongs to at
//! most one window at a fixed position, so it is normalized as it arrives, straight into the
//! window buffer, and there is no ring: the window buffer is the only sample storage. With
//! hop < length a sample is in several windows at different positions (and the normalization
//! is per position), so raw samples are kept in a ring of `len × 3` and each window is copied
//! out of it and normalized: 4·D more bytes (768 B for a 64 × 3 window). [`RING_LEN`] sizes the
//! ring from the generated model constants (0 for the default model).

use core::fmt;

use rand_core::SeedableRng;
use rand_pcg::Pcg32;
use vae_nostd::modelfile::{Format, ModelFile, ModelFileError, Window};
use vae_nostd::quant::QuantVae;
use vae_nostd::{ScoreKind, Vae, VaeConfig, Workspace};

use crate::adapt::{AdaptBuffers, Adaptation, Adapter, Event, Work};
use crate::calibration::{CalibrationError, Calibrator, TopK};
use crate::{
    ADAPTED_PARAMS, CHANNELS, CONFIG, D, Q_HEAD_LEN, Q_PAIRS_LEN, WORKSPACE_LEN, Z, model,
};

/// f32 elements of the raw-sample ring: 0 when the built-in model's hop is at least its window
/// length (each sample is normalized straight into the window), else `D`.
pub const RING_LEN: usize = if model::WINDOW_HOP >= model::WINDOW_LEN {
    0
} else {
    D
};

/// All of the application's RAM apart from a few words of state: one `static` on the device
/// (`ConstStaticCell<Buffers>`), so none of it is on the stack.
pub struct Buffers {
    /// Scoring workspace: the activations of one window. Shape: `[WORKSPACE_LEN]`.
    pub ws: [f32; WORKSPACE_LEN],
    /// The normalized window `Vae::score` reads, oldest sample first. Shape: `[len][3]`.
    pub window: [f32; D],
    /// Raw samples by time step modulo `len` (hop < len only). Shape: `[len][3]` or empty.
    pub ring: [f32; RING_LEN],
    /// The calibration's largest scores (at most `MAX_TOP`).
    pub top: TopK,
    /// The on-device adaptation's parameters, gradient, moments and window.
    pub adapt: AdaptBuffers,
    /// An int8 model's quantized layer inputs (its f32 scratch is `ws`).
    pub q_pairs: [u32; Q_PAIRS_LEN],
    /// An int8 model's μ, log σ² of the latest window. Shape: `[2Z]` (empty in a device
    /// build of an f32 model).
    pub q_head: [f32; Q_HEAD_LEN],
}

impl Buffers {
    /// All zeros (a `const`, so the static is in `.bss`).
    pub const fn new() -> Self {
        Buffers {
            ws: [0.0; WORKSPACE_LEN],
            window: [0.0; D],
            ring: [0.0; RING_LEN],
            top: TopK::new(),
            adapt: AdaptBuffers::new(),
            q_pairs: [0; Q_PAIRS_LEN],
            q_head: [0.0; Q_HEAD_LEN],
        }
    }
}

impl Default for Buffers {
    fn default() -> Self {
        Self::new()
    }
}

/// Application settings that are not in the model file.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub struct Settings {
    /// A sample with |a| ≥ this on any axis is saturated and flags its windows, mg (2000: the
    /// LSM303AGR's ±2 g range).
    pub full_scale_mg: f32,
    /// Valid windows the on-device calibration learns the threshold from (N).
    pub calibration_windows: u32,
    /// False-alarm rate of the on-device calibration; `None`: the model file's (or 1 % when the
    /// model has none).
    pub false_alarm_rate: Option<f32>,
    /// Drift compensation after calibration: the threshold becomes the calibration's
    /// threshold − mean score (the margin) plus a moving average of the scores of windows
    /// judged normal, with this time constant in windows. Slow changes of the machine (speed,
    /// mounting, temperature) move every normal score; a fixed threshold then turns them into
    /// false alarms. Anomalous windows never move it. 0: a fixed threshold.
    pub drift_windows: u32,
    /// On-device adaptation after the first calibration ([`crate::adapt`]).
    pub adaptation: Adaptation,
}

impl Settings {
    /// ±2 g full scale, calibration on the first 200 valid windows at the model's rate, drift
    /// followed over 25 windows (4 s at 400 Hz, hop 64). Measured on the QEMU scenario replayed
    /// for simulator seeds 1–20 with the default model (`tests/tests/firmware_e2e.rs`): 25
    /// windows give 61 false alarms in 5,700 normal windows (1.07 % at a 1 % target), and 13 of
    /// 285 in seed 10's drift episode (its windows 360–385); 50 windows gave 69 and 17 (above
    /// that seed's 99.9 % bound of 16). Every anomaly window is flagged with either.
    pub const DEFAULT: Settings = Settings {
        full_scale_mg: 2000.0,
        calibration_windows: 200,
        false_alarm_rate: None,
        drift_windows: 25,
        adaptation: Adaptation::DEFAULT,
    };
}

/// Why the application cannot start: logged, then the program stops.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum StartupError {
    /// The model file is corrupt, inconsistent or for another architecture.
    Model(ModelFileError),
    /// The model has no window geometry (it was not trained on sensor windows).
    NoWindow,
    /// The window is not `len × 3` axes.
    Channels {
        /// Channels in the model file.
        found: usize,
    },
    /// The parameters cannot be read in place (the image is not 4-byte aligned).
    Unaligned,
    /// The model's hop is shorter than its window but this firmware was built without the
    /// raw-sample ring ([`RING_LEN`] = 0: the built-in model's hop is its window length).
    NoRing,
    /// The calibration settings are impossible (rate outside [0, 1), N = 0, top-k too large).
    Calibration(CalibrationError),
    /// The core refused the configuration or the workspace.
    Core(vae_nostd::Error),
    /// An int8 model with a score other than −ELBO at z = μ (the only one the integer path
    /// computes).
    Int8Score,
}

impl From<ModelFileError> for StartupError {
    fn from(e: ModelFileError) -> Self {
        StartupError::Model(e)
    }
}

impl From<CalibrationError> for StartupError {
    fn from(e: CalibrationError) -> Self {
        StartupError::Calibration(e)
    }
}

impl From<vae_nostd::Error> for StartupError {
    fn from(e: vae_nostd::Error) -> Self {
        StartupError::Core(e)
    }
}

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartupError::Model(e) => write!(f, "model rejected: {e}"),
            StartupError::NoWindow => f.write_str("model rejected: it has no sensor window"),
            StartupError::Channels { found } => write!(
                f,
                "model rejected: its window has {found} channels, the sensor gives {CHANNELS}"
            ),
            StartupError::Unaligned => {
                f.write_str("model image is not 4-byte aligned: embed it in `Aligned`")
            }
            StartupError::NoRing => f.write_str(
                "model rejected: its hop is shorter than its window, and this firmware has no sample ring",
            ),
            StartupError::Calibration(e) => write!(f, "calibration settings: {e}"),
            StartupError::Core(e) => write!(f, "core: {e}"),
            StartupError::Int8Score => {
                f.write_str("model rejected: an int8 model scores -ELBO at z = mu only")
            }
        }
    }
}

/// A model file checked against [`CONFIG`], with its parameters viewed in place: f32
/// (version 1) or int8 (version 2), whichever the file holds.
#[derive(Clone, Copy, Debug)]
pub struct Model<'m> {
    /// The parsed file (normalization is read from it on the fly).
    pub file: ModelFile<'m>,
    /// The f32 parameters, in place in the image (empty for an int8 file). Shape:
    /// `[num_params]`.
    pub params: &'m [f32],
    /// The file holds an int8 model (checked to be usable in place; the application views it
    /// with `file.quant_in_place()`, so that this struct, passed by value at start-up, stays
    /// small).
    pub int8: bool,
    /// Normalization offset, in place in the image. Shape: `[D]`.
    pub offset: &'m [f32],
    /// Normalization scale, in place in the image. Shape: `[D]`.
    pub scale: &'m [f32],
    /// Window geometry: `len × 3 = D`.
    pub window: Window,
}

impl<'m> Model<'m> {
    /// Parses `bytes` (CRC, consistency), checks the architecture against [`CONFIG`] and the
    /// window against the 3-axis sensor, and views the parameters in place (`bytes` must be
    /// 4-byte aligned, as [`crate::Aligned`] makes it). Never panics.
    pub fn load(bytes: &'m [u8]) -> Result<Self, StartupError> {
        Self::load_for(bytes, &CONFIG)
    }

    fn load_for(bytes: &'m [u8], cfg: &VaeConfig) -> Result<Self, StartupError> {
        let file = ModelFile::parse(bytes)?;
        file.expect_config(cfg)?;
        let window = file.window().ok_or(StartupError::NoWindow)?;
        if window.channels != CHANNELS {
            return Err(StartupError::Channels {
                found: window.channels,
            });
        }
        // In place in flash: the model file hands out its own byte ranges (no second
        // derivation of the layout here); `None` if the image is not 4-byte aligned.
        let (offset, scale) = file
            .normalization_in_place()
            .ok_or(StartupError::Unaligned)?;
        let params = file.params_in_place().ok_or(StartupError::Unaligned)?;
        let int8 = match file.format() {
            Format::F32 => false,
            Format::Int8 => {
                if file.score() != ScoreKind::NegElboAtMean {
                    return Err(StartupError::Int8Score);
                }
                file.quant_in_place().ok_or(StartupError::Unaligned)?;
                true
            }
        };
        Ok(Model {
            offset,
            scale,
            params,
            int8,
            file,
            window,
        })
    }
}

/// Why a window is not scored.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum Invalid {
    /// A sample is NaN or ±∞ (or the sensor could not be read).
    NonFinite {
        /// Index of the sample in the stream.
        sample: u64,
        /// Axis 0, 1, 2 = x, y, z.
        axis: u8,
    },
    /// A sample is at or beyond full scale: the sensor clipped.
    Saturated {
        /// Index of the sample in the stream.
        sample: u64,
        /// Axis 0, 1, 2 = x, y, z.
        axis: u8,
        /// The reading, mg.
        value_mg: f32,
    },
}

impl Invalid {
    fn sample(&self) -> u64 {
        match *self {
            Invalid::NonFinite { sample, .. } | Invalid::Saturated { sample, .. } => sample,
        }
    }
}

/// A completed window: where it is and whether a sample in it was bad.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WindowInfo {
    /// Window number k: it starts at sample k·hop.
    pub index: u32,
    /// Index of its first sample.
    pub first_sample: u64,
    /// The latest bad sample inside it, if any.
    pub invalid: Option<Invalid>,
}

/// Cuts the sample stream into windows of `len` time steps every `hop` samples (window k covers
/// samples `[k·hop, k·hop + len)`), checks every sample, and hands out each completed window
/// normalized, `x' = (x − offset)·scale`, in one buffer of `[len][3]`.
///
/// hop ≥ len: each sample is normalized as it arrives into its slot of the window buffer
/// (samples between windows are only checked). hop < len: raw samples go to a ring of
/// `[len][3]`, and each completed window is copied out of it, oldest first, and normalized.
/// Either way the window holds bit for bit the same values.
#[derive(Debug)]
pub struct Windower<'b> {
    /// The latest completed window, normalized, oldest sample first. Shape: `[len][3]`.
    window: &'b mut [f32; D],
    /// Raw samples, mg, by time step modulo `len` (hop < len only). Shape: `[len][3]`.
    ring: &'b mut [f32],
    offset: &'b [f32],
    scale: &'b [f32],
    len: usize,
    hop: usize,
    /// Samples pushed so far.
    n: u64,
    /// `n` modulo the period: `hop` (hop ≥ len) or `len` (ring).
    phase: usize,
    /// Samples until the next window completes (`len` at first, then `hop`): no 64-bit
    /// division per sample (a library call on the Cortex-M4).
    until_window: usize,
    /// Windows completed so far.
    windows: u32,
    /// The latest bad sample.
    last_bad: Option<Invalid>,
    full_scale_mg: f32,
    /// Input re-centering of an adapted model, per axis, mg: the window holds
    /// `(x − offset)·scale − shift·scale` ([0; 3] until an adaptation is committed).
    shift: [f32; CHANNELS],
}

impl<'b> Windower<'b> {
    /// An empty stream for windows of `len` time steps (`3·len = D`) every `hop` samples,
    /// normalized with `offset` and `scale` (`[D]` each). `ring` (`[D]`) is needed only when
    /// hop < len, and may be empty otherwise.
    pub fn new(
        len: usize,
        hop: usize,
        full_scale_mg: f32,
        normalization: (&'b [f32], &'b [f32]),
        window: &'b mut [f32; D],
        ring: &'b mut [f32],
    ) -> Result<Self, StartupError> {
        let (offset, scale) = normalization;
        if len * CHANNELS != D || hop == 0 || offset.len() != D || scale.len() != D {
            return Err(StartupError::Model(ModelFileError::Inconsistent(
                "window length × 3 differs from the firmware's input dimension",
            )));
        }
        let ring = if hop < len {
            ring.get_mut(..D).ok_or(StartupError::NoRing)?
        } else {
            &mut ring[..0]
        };
        Ok(Windower {
            window,
            ring,
            offset,
            scale,
            len,
            hop,
            n: 0,
            phase: 0,
            until_window: len,
            windows: 0,
            last_bad: None,
            full_scale_mg,
            shift: [0.0; CHANNELS],
        })
    }

    /// Samples pushed so far.
    pub fn samples(&self) -> u64 {
        self.n
    }

    /// The latest completed window, normalized, oldest sample first. Shape: `[len][3]`.
    pub fn window(&self) -> &[f32; D] {
        self.window
    }

    /// Re-centers the input from the next sample on: each axis's reading is taken as
    /// `shift` mg lower ([`crate::adapt`]'s estimate of the new mounting's offset), applied
    /// after the normalization as `x' − shift·scale`, the adaptation's own formula.
    pub fn set_shift(&mut self, shift: [f32; CHANNELS]) {
        self.shift = shift;
    }

    /// The re-centering in use, mg per axis.
    pub fn shift(&self) -> [f32; CHANNELS] {
        self.shift
    }

    /// Adds one sample (mg); returns the window it completes, if any (then [`Self::window`]
    /// holds it).
    pub fn push(&mut self, acc_mg: [f32; 3]) -> Option<WindowInfo> {
        let n = self.n;
        for (axis, &a) in acc_mg.iter().enumerate() {
            let bad = if !a.is_finite() {
                Some(Invalid::NonFinite {
                    sample: n,
                    axis: axis as u8,
                })
            } else if a.abs() >= self.full_scale_mg {
                Some(Invalid::Saturated {
                    sample: n,
                    axis: axis as u8,
                    value_mg: a,
                })
            } else {
                None
            };
            if bad.is_some() {
                self.last_bad = bad;
            }
        }
        let direct = self.ring.is_empty();
        let slot = self.phase * CHANNELS;
        if direct {
            // hop ≥ len: this sample's place in its window (if it is in one) is `phase`.
            if let (Some(w), Some(o), Some(s)) = (
                self.window.get_mut(slot..slot + CHANNELS),
                self.offset.get(slot..slot + CHANNELS),
                self.scale.get(slot..slot + CHANNELS),
            ) {
                for ((((w, a), o), s), c) in w.iter_mut().zip(acc_mg).zip(o).zip(s).zip(self.shift)
                {
                    *w = (a - o) * s - c * s;
                }
            }
        } else {
            self.ring[slot..slot + CHANNELS].copy_from_slice(&acc_mg);
        }
        self.phase += 1;
        if self.phase == if direct { self.hop } else { self.len } {
            self.phase = 0;
        }
        self.n = n + 1;
        self.until_window -= 1;
        if self.until_window > 0 {
            return None;
        }
        self.until_window = self.hop;
        if !direct {
            // Oldest first: the ring from the next slot to write on, then from the start.
            let (older, newer) = self.ring.split_at(self.phase * CHANNELS);
            for ((((w, a), o), s), c) in self
                .window
                .iter_mut()
                .zip(newer.iter().chain(older))
                .zip(self.offset)
                .zip(self.scale)
                .zip(self.shift.iter().cycle())
            {
                *w = (a - o) * s - c * s;
            }
        }
        let first = self.n - self.len as u64;
        let index = self.windows;
        self.windows = self.windows.wrapping_add(1);
        Some(WindowInfo {
            index,
            first_sample: first,
            invalid: self.last_bad.filter(|b| b.sample() >= first),
        })
    }
}

/// What the application decided about a window.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum Verdict {
    /// Scored and fed to the on-device calibration (no decision yet).
    Calibrating,
    /// Score at or below the threshold.
    Normal,
    /// Score above the threshold.
    Anomaly,
    /// Not scored: a sample in it was bad.
    Invalid(Invalid),
    /// Not scored: the core refused (for example a non-finite score).
    Error(vae_nostd::Error),
}

impl Verdict {
    /// The telemetry code: 0 calibrating, 1 normal, 2 anomaly, 3 invalid, 4 error.
    pub fn code(&self) -> u8 {
        match self {
            Verdict::Calibrating => 0,
            Verdict::Normal => 1,
            Verdict::Anomaly => 2,
            Verdict::Invalid(_) => 3,
            Verdict::Error(_) => 4,
        }
    }
}

/// What the LEDs show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum State {
    /// Learning the threshold.
    Calibrating,
    /// The last window was normal.
    Normal,
    /// The last window was anomalous.
    Anomaly,
    /// The last window could not be scored.
    Invalid,
}

impl From<&Verdict> for State {
    fn from(v: &Verdict) -> Self {
        match v {
            Verdict::Calibrating => State::Calibrating,
            Verdict::Normal => State::Normal,
            Verdict::Anomaly => State::Anomaly,
            Verdict::Invalid(_) | Verdict::Error(_) => State::Invalid,
        }
    }
}

/// One window's result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Report {
    /// Window number and first sample.
    pub window: WindowInfo,
    /// The decision.
    pub verdict: Verdict,
    /// The anomaly score (NaN when not scored).
    pub score: f32,
    /// The threshold the verdict used (NaN while calibrating).
    pub threshold: f32,
    /// Set on the window that completed the calibration: the new threshold.
    pub calibrated: Option<f32>,
}

impl Report {
    /// No window yet: index 0, NaN score and threshold.
    pub const EMPTY: Report = Report {
        window: WindowInfo {
            index: 0,
            first_sample: 0,
            invalid: None,
        },
        verdict: Verdict::Calibrating,
        score: f32::NAN,
        threshold: f32::NAN,
        calibrated: None,
    };
}

/// The model's own decoder output bias (the last [`ADAPTED_PARAMS`] parameters of the flat
/// layout), where the adaptation starts from.
fn factory_bias(params: &[f32]) -> &[f32] {
    &params[params.len().saturating_sub(ADAPTED_PARAMS)..]
}

/// The application state: a model, the windower, the workspace, the calibration. Its buffers
/// are borrowed from [`Buffers`]; the rest is a few hundred bytes.
pub struct App<'m> {
    /// Window geometry (the model file's).
    geometry: Window,
    /// The anomaly score (the model file's).
    kind: ScoreKind,
    /// The model file's own threshold, if it has one.
    file_threshold: Option<f32>,
    windower: Windower<'m>,
    /// The model's f32 parameters, in place (checked against the configuration at start-up;
    /// empty for an int8 model).
    params: &'m [f32],
    /// The int8 model and its scratch (`q_pairs`, `q_head` of [`Buffers`]; f32 scratch: `ws`).
    quant: Option<Int8<'m>>,
    /// The model's own decoder output bias, where the adaptation (re)starts.
    factory: &'m [f32],
    /// The on-device adaptation (its buffers are [`Buffers::adapt`]).
    adapter: Adapter<'m>,
    /// The scoring workspace over [`Buffers::ws`], laid out once at start-up.
    ws: Workspace<'m, f32>,
    /// The latest window's report.
    report: Report,
    rng: Pcg32,
    calibrator: Calibrator<'m>,
    calibrating: bool,
    threshold: f32,
    /// Moving average of normal scores since the calibration (drift compensation).
    level: f32,
    /// The calibration's threshold − mean score.
    margin: f32,
    drift_windows: u32,
}

/// An int8 model with its scratch.
struct Int8<'m> {
    model: QuantVae<'m>,
    pairs: &'m mut [u32],
    head: &'m mut [f32],
}

impl<'m> Int8<'m> {
    /// The int8 model of `file` (an int8 file) with its scratch. Not inlined, and given the
    /// file by value (a reference to the whole `Model` made the caller keep a copy of it): its
    /// temporaries stay out of the start-up frame of an f32 build.
    #[inline(never)]
    fn new(
        file: ModelFile<'m>,
        pairs: &'m mut [u32; Q_PAIRS_LEN],
        head: &'m mut [f32; Q_HEAD_LEN],
    ) -> Result<Self, StartupError> {
        Ok(Int8 {
            model: file.quant_in_place().ok_or(StartupError::Unaligned)?,
            pairs: &mut pairs[..],
            head: &mut head[..],
        })
    }
}

impl<'m> App<'m> {
    /// Starts in calibration, working in `buffers` (overwritten); `seed` seeds the draws of
    /// sampled scores.
    pub fn new(
        model: Model<'m>,
        settings: Settings,
        buffers: &'m mut Buffers,
        seed: u64,
    ) -> Result<Self, StartupError> {
        Self::new_in(model, settings, buffers, seed, |app| app)
    }

    /// As [`App::new`], handing the application to `place` (on the device: a `StaticCell`'s
    /// `init`), which it builds in as the argument: inlined, so the compiler can write it
    /// straight into its static instead of building it on the stack first.
    #[inline(always)]
    pub fn new_in<R>(
        model: Model<'m>,
        settings: Settings,
        buffers: &'m mut Buffers,
        seed: u64,
        place: impl FnOnce(Self) -> R,
    ) -> Result<R, StartupError> {
        let Buffers {
            ws,
            window,
            ring,
            top,
            adapt,
            q_pairs,
            q_head,
        } = buffers;
        let ws = Workspace::new(&CONFIG, 1, 1, &mut ws[..])?;
        // An int8 model: the integer path scores; the adaptation (which trains f32 decoder
        // biases through the f32 decoder) is off.
        let (quant, factory, adaptation) = if model.int8 {
            let q = Int8::new(model.file, q_pairs, q_head)?;
            let factory = factory_bias(q.model.biases());
            (Some(q), factory, Adaptation::OFF)
        } else {
            Vae::new(CONFIG, model.params)?;
            (None, factory_bias(model.params), settings.adaptation)
        };
        let adapter = Adapter::new(adaptation, adapt, factory, model.scale, seed)?;
        let rate = settings
            .false_alarm_rate
            .or(model.file.false_alarm_rate())
            .unwrap_or(0.01);
        let calibrator = Calibrator::new(settings.calibration_windows, rate, top)?;
        let windower = Windower::new(
            model.window.len,
            model.window.hop,
            settings.full_scale_mg,
            (model.offset, model.scale),
            window,
            ring,
        )?;
        Ok(place(App {
            geometry: model.window,
            kind: model.file.score(),
            file_threshold: model.file.threshold(),
            windower,
            params: model.params,
            quant,
            factory,
            adapter,
            ws,
            report: Report::EMPTY,
            rng: Pcg32::seed_from_u64(seed),
            calibrator,
            calibrating: true,
            threshold: model.file.threshold().unwrap_or(f32::NAN),
            level: f32::NAN,
            margin: f32::NAN,
            drift_windows: settings.drift_windows,
        }))
    }

    /// The latest window's report (all NaN before the first window).
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// The latest window's latent mean μ and log-variance log σ² (`[Z]` each), read in place
    /// from the scoring workspace; `None` when that window was not scored (invalid, refused,
    /// or no window yet).
    pub fn latents(&self) -> Option<(&[f32], &[f32])> {
        let scored = matches!(
            self.report.verdict,
            Verdict::Calibrating | Verdict::Normal | Verdict::Anomaly
        ) && self.report.score.is_finite();
        match &self.quant {
            Some(q) => (scored && q.head.len() == 2 * Z).then(|| q.head.split_at(Z)),
            None => scored.then(|| self.ws.head(1).split_at(Z)),
        }
    }

    /// The model's window geometry.
    pub fn geometry(&self) -> Window {
        self.geometry
    }

    /// The model file's threshold, if it has one (the one in use until the first
    /// calibration ends).
    pub fn file_threshold(&self) -> Option<f32> {
        self.file_threshold
    }

    /// The calibration in progress (or the last one).
    pub fn calibrator(&self) -> &Calibrator<'m> {
        &self.calibrator
    }

    /// True while the threshold is being learnt.
    pub fn is_calibrating(&self) -> bool {
        self.calibrating
    }

    /// The threshold in use: the model file's until the first calibration ends, then the
    /// calibrated one, following drift ([`Settings::drift_windows`]).
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// Samples pushed so far.
    pub fn samples(&self) -> u64 {
        self.windower.samples()
    }

    /// Forgets the calibration and learns the threshold again from the next N valid windows
    /// (button A).
    pub fn recalibrate(&mut self) {
        self.calibrator.reset();
        self.calibrating = true;
        self.adapter.restart(self.factory);
    }

    /// The on-device adaptation.
    pub fn adapter(&self) -> &Adapter<'m> {
        &self.adapter
    }

    /// Runs the model adapted earlier ([`crate::persist`]): `params` (the payload,
    /// [`crate::ADAPTED_STATE`] little-endian f32: the decoder output bias, then the input
    /// re-centering per axis) replace the model's and `calibration` the threshold and drift
    /// margin, so judging starts with the next window, without the calibration or the
    /// adaptation. On an error (wrong length, a non-finite value) nothing changes.
    pub fn restore(
        &mut self,
        params: &[u8],
        calibration: &crate::persist::Calibration,
    ) -> Result<(), vae_nostd::Error> {
        let (threshold, margin) = (calibration.threshold, calibration.margin);
        if !threshold.is_finite() || margin.is_infinite() {
            return Err(vae_nostd::Error::InvalidArgument(
                "a restored threshold must be finite",
            ));
        }
        self.adapter.restore(params)?;
        self.windower.set_shift(self.adapter.shift());
        self.threshold = threshold;
        self.margin = margin;
        self.level = threshold - margin;
        self.calibrating = false;
        Ok(())
    }

    /// The threshold state to persist with an adaptation: the threshold in use, the drift
    /// margin and the last calibration's N and rate.
    pub fn calibration_state(&self) -> crate::persist::Calibration {
        crate::persist::Calibration {
            threshold: self.threshold,
            margin: self.margin,
            windows: self.calibrator.windows(),
            false_alarm_rate: self.calibrator.rate(),
        }
    }

    /// One unit of the adaptation's queued work (an Adam step, or the adapted model's score of
    /// a recalibration window), if any; returns what happened, for the log. The main loop calls
    /// it once after every sample that completes no window, so no unit delays a read by more
    /// than one score's time, and (with fewer steps per window than the hop) all of a window's
    /// work is done before the next window; the host replays in the tests follow the same rule,
    /// which is what makes their bits the device's.
    #[inline(never)]
    pub fn learn(&mut self) -> Option<Event> {
        if !self.adapter.has_work() {
            return None;
        }
        match self.adapter.work(self.params, self.kind, &mut self.ws) {
            Err(e) => Some(self.adapter.fail(e)),
            Ok(Work::None) => None,
            Ok(Work::Trained(event)) => {
                // Recalibration of the adapted model on fresh windows.
                self.calibrator.reset();
                Some(event)
            }
            Ok(Work::Score { adapted, .. }) => {
                let t = self.calibrator.push(adapted)?;
                let event = self
                    .adapter
                    .finish(t, self.calibrator.windows(), self.threshold);
                if let Event::Committed(c) = event {
                    self.threshold = c.threshold;
                    self.level = c.mean;
                    self.margin = c.threshold - c.mean;
                    self.windower.set_shift(self.adapter.shift());
                }
                Some(event)
            }
        }
    }

    /// Adds one sample (mg); returns the report of the window it completes, if any. The report
    /// lives in the application (static on the device), not on the stack.
    pub fn push(&mut self, acc_mg: [f32; 3]) -> Option<&Report> {
        self.push_sample(acc_mg).then(|| self.judge())
    }

    /// Adds one sample (mg) to the window being filled; true when it completes one, which
    /// [`App::judge`] then scores. ([`App::push`] is the two in one; the main loop calls them
    /// apart so that reading the sensor and scoring are sibling calls, not nested ones.)
    pub fn push_sample(&mut self, acc_mg: [f32; 3]) -> bool {
        match self.windower.push(acc_mg) {
            Some(info) => {
                self.report.window = info;
                true
            }
            None => false,
        }
    }

    /// Scores the window [`App::push_sample`] just completed, feeds the calibration or applies
    /// the threshold, and returns the report.
    #[inline(never)]
    pub fn judge(&mut self) -> &Report {
        // Field by field: no Report-sized temporary on the stack.
        let threshold = if self.calibrating {
            f32::NAN
        } else {
            self.threshold
        };
        let info = self.report.window;
        let r = &mut self.report;
        r.verdict = Verdict::Calibrating;
        r.score = f32::NAN;
        r.threshold = threshold;
        r.calibrated = None;
        if let Some(bad) = info.invalid {
            self.report.verdict = Verdict::Invalid(bad);
            return &self.report;
        }
        match self.score() {
            Err(e) => self.report.verdict = Verdict::Error(e),
            Ok(score) if self.calibrating => {
                self.adapter.observe(self.windower.window());
                if let Some(t) = self.calibrator.push(score) {
                    self.threshold = t;
                    self.level = self.calibrator.mean();
                    self.margin = t - self.level;
                    self.calibrating = false;
                    self.report.calibrated = Some(t);
                    self.adapter.on_calibrated();
                }
            }
            Ok(score) if score > self.threshold => self.report.verdict = Verdict::Anomaly,
            Ok(score) => {
                self.report.verdict = Verdict::Normal;
                // Drift compensation: only normal windows move the level; before any
                // calibration (the model file's threshold) there is no level to move.
                if self.drift_windows > 0 && self.level.is_finite() {
                    self.level += (score - self.level) / self.drift_windows as f32;
                    self.threshold = self.level + self.margin;
                }
                self.adapter.offer(self.windower.window(), score);
            }
        }
        &self.report
    }

    /// The latest completed window, normalized (what was scored). Shape: `[len][3]`.
    pub fn window(&self) -> &[f32; D] {
        self.windower.window()
    }

    /// [`App::score`] of an int8 model: −ELBO at z = μ through the integer layers, on the
    /// `SMLAD` kernel (exact integer sums: the same bits as `Portable` on any target). Not
    /// inlined, so that its frame is not added to the f32 path's (the stack high-water mark).
    #[inline(never)]
    fn score_int8(&mut self) -> Result<f32, vae_nostd::Error> {
        let Some(q) = &mut self.quant else {
            return Err(vae_nostd::Error::InvalidArgument("not an int8 model"));
        };
        let s = q.model.score_neg_elbo_at_mean(
            &crate::kernel_m4::CortexM4,
            self.windower.window(),
            self.ws.scratch(),
            q.pairs,
            &mut q.head[..],
        );
        self.report.score = *s.as_ref().unwrap_or(&f32::NAN);
        s
    }

    /// Scores the latest (normalized) window; fills μ, log σ² and the score.
    fn score(&mut self) -> Result<f32, vae_nostd::Error> {
        if self.quant.is_some() {
            return self.score_int8();
        }
        let mut out = [0f32; 1];
        let kind = self.kind;
        // The Cortex-M4F kernel: bit-identical to `Portable` (tested on target), 1.3–1.6
        // instructions per multiply-accumulate (`Portable`: about 2.6 at opt-level 3, 17 at
        // this build's "z").
        let vae = if self.adapter.is_active() {
            Vae::with_decoder_output_bias(CONFIG, self.params, self.adapter.params())?
        } else {
            Vae::new(CONFIG, self.params)?
        };
        vae.score(
            &crate::kernel_m4::CortexM4,
            self.windower.window(),
            1,
            kind,
            &mut self.rng,
            &mut self.ws,
            &mut out,
        )?;
        self.report.score = out[0];
        if out[0].is_finite() {
            Ok(out[0])
        } else {
            Err(vae_nostd::Error::NonFiniteLoss)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DEFAULT_MODEL;

    #[test]
    fn the_default_model_loads_and_params_are_in_place() {
        let m = Model::load(&DEFAULT_MODEL.0).unwrap();
        assert_eq!(m.params.len(), CONFIG.num_params());
        assert_eq!(m.window.len * 3, D);
        let base = DEFAULT_MODEL.0.as_ptr() as usize;
        let p = m.params.as_ptr() as usize;
        assert!(p > base && p < base + DEFAULT_MODEL.0.len(), "not copied");
    }

    #[test]
    fn corrupt_or_mismatched_models_are_refused() {
        let mut bad = Box::new(Aligned(*include_bytes!("../models/default.vaem")));
        bad.0[1000] ^= 1;
        assert!(matches!(
            Model::load(&bad.0),
            Err(StartupError::Model(ModelFileError::BadCrc { .. }))
        ));
        let other = CONFIG.with_decoder_hidden(&[32]);
        assert!(matches!(
            Model::load_for(&DEFAULT_MODEL.0, &other),
            Err(StartupError::Model(ModelFileError::ConfigMismatch))
        ));
        assert!(matches!(
            Model::load(&DEFAULT_MODEL.0[..100]),
            Err(StartupError::Model(ModelFileError::Truncated { .. }))
        ));
        // Unaligned: the same bytes one byte off.
        let mut shifted = Aligned([0u8; crate::model::MODEL_LEN + 4]);
        let n = DEFAULT_MODEL.0.len();
        shifted.0[1..=n].copy_from_slice(&DEFAULT_MODEL.0);
        assert!(matches!(
            Model::load(&shifted.0[1..=n]),
            Err(StartupError::Unaligned)
        ));
        let msg = format!("{}", StartupError::Model(ModelFileError::ConfigMismatch));
        assert!(msg.starts_with("model rejected: "), "{msg}");
    }

    use crate::Aligned;

    #[test]
    fn windows_follow_len_and_hop_and_flag_bad_samples() {
        let len = D / 3;
        // A normalization that differs at every position, so a sample normalized at the wrong
        // position shows.
        let offset: std::vec::Vec<f32> = (0..D).map(|i| i as f32 * 0.37 - 20.0).collect();
        let scale: std::vec::Vec<f32> = (0..D).map(|i| 1.0 / (1.0 + (i % 7) as f32)).collect();
        let sample = |n: u64| -> [f32; 3] {
            let v = n as f32;
            match n {
                70 => [0.0, f32::NAN, 0.0],
                90 => [0.0, 0.0, -2000.0],
                _ => [v, v * 0.25 - 3.0, 1000.0 - v],
            }
        };
        // hop < len: the ring path; hop = len and hop > len: normalized on arrival.
        for (hop, firsts) in [
            (16usize, &[0u64, 16, 32][..]),
            (len, &[0, 64][..]),
            (80, &[0, 80][..]),
        ] {
            let (mut window, mut ring) = ([0f32; D], [0f32; D]);
            let ring: &mut [f32] = if hop < len { &mut ring } else { &mut [] };
            let mut w =
                Windower::new(len, hop, 2000.0, (&offset, &scale), &mut window, ring).unwrap();
            let mut got = std::vec::Vec::new();
            for n in 0..(firsts.last().unwrap() + len as u64) {
                let Some(info) = w.push(sample(n)) else {
                    continue;
                };
                got.push(info);
                if info.invalid.is_none() {
                    for (i, x) in w.window().iter().enumerate() {
                        let raw = sample(info.first_sample + (i / 3) as u64)[i % 3];
                        let want = (raw - offset[i]) * scale[i];
                        assert_eq!(
                            x.to_bits(),
                            want.to_bits(),
                            "hop {hop} window {info:?} [{i}]"
                        );
                    }
                }
            }
            let got_firsts: std::vec::Vec<u64> = got.iter().map(|i| i.first_sample).collect();
            assert_eq!(got_firsts, firsts, "hop {hop}");
            assert_eq!(got[1].index, 1);
            assert_eq!(got[0].invalid, None);
            assert_eq!(w.samples(), firsts.last().unwrap() + len as u64);
            if hop == 16 {
                assert_eq!(
                    got[1].invalid,
                    Some(Invalid::NonFinite {
                        sample: 70,
                        axis: 1
                    })
                );
                assert_eq!(
                    got[2].invalid,
                    Some(Invalid::Saturated {
                        sample: 90,
                        axis: 2,
                        value_mg: -2000.0
                    })
                );
            } else {
                // Sample 70 is in window 1 (hop 64: [64, 128)) or in no window (hop 80: [80,
                // 144) starts after it); sample 90 is in window 1 either way.
                assert_eq!(
                    got[1].invalid,
                    Some(Invalid::Saturated {
                        sample: 90,
                        axis: 2,
                        value_mg: -2000.0
                    })
                );
            }
        }
        // hop < len needs the ring.
        let mut window = [0f32; D];
        assert!(matches!(
            Windower::new(len, 16, 2000.0, (&offset, &scale), &mut window, &mut []),
            Err(StartupError::NoRing)
        ));
    }

    /// The adaptation's re-centering: every window value is `(x − o)·s − c·s` with c the
    /// axis's shift, on both paths (direct and ring), and a zero shift keeps the bits.
    #[test]
    fn a_shift_recenters_each_axis() {
        let len = D / 3;
        let offset: std::vec::Vec<f32> = (0..D).map(|i| i as f32 * 0.5 - 7.0).collect();
        let scale: std::vec::Vec<f32> = (0..D).map(|i| 0.1 + (i % 5) as f32 * 0.03).collect();
        let sample = |n: u64| [n as f32 * 0.7, 3.0 - n as f32, 1000.0 + (n % 9) as f32];
        for hop in [16, len] {
            let (mut window, mut ring) = ([0f32; D], [0f32; D]);
            let ring: &mut [f32] = if hop < len { &mut ring } else { &mut [] };
            let mut w =
                Windower::new(len, hop, 2000.0, (&offset, &scale), &mut window, ring).unwrap();
            let c = [35.0f32, -2.5, 99.0];
            w.set_shift(c);
            assert_eq!(w.shift(), c);
            let mut n = 0u64;
            let info = loop {
                if let Some(i) = w.push(sample(n)) {
                    break i;
                }
                n += 1;
            };
            for (i, x) in w.window().iter().enumerate() {
                let a = sample(info.first_sample + (i / 3) as u64)[i % 3];
                let want = (a - offset[i]) * scale[i] - c[i % 3] * scale[i];
                assert_eq!(x.to_bits(), want.to_bits(), "hop {hop} [{i}]");
                let plain = (a - offset[i]) * scale[i];
                assert_eq!((plain - 0.0 * scale[i]).to_bits(), plain.to_bits());
            }
        }
    }

    #[test]
    fn score_fills_the_same_latents_as_encode() {
        let model = Model::load(&DEFAULT_MODEL.0).unwrap();
        let mut buffers = std::boxed::Box::new(Buffers::new());
        let mut app = App::new(model, Settings::DEFAULT, &mut buffers, 1).unwrap();
        let mut report = None;
        let mut raw = std::vec::Vec::new();
        for n in 0..(D / 3) {
            let t = n as f32 * 0.3;
            let s = [10.0 * libm::sinf(t), 5.0, 1000.0 + libm::cosf(t)];
            raw.extend_from_slice(&s);
            report = app.push(s).copied();
        }
        let r = report.unwrap();
        assert_eq!(r.verdict, Verdict::Calibrating);
        assert!(r.score.is_finite());
        // The window scored is the normalized samples, as the model file's parser gives them.
        let x: std::vec::Vec<f32> = raw
            .iter()
            .zip(model.file.normalization_offset())
            .zip(model.file.normalization_scale())
            .map(|((x, o), s)| (x - o) * s)
            .collect();
        assert_eq!(&x[..], &app.window()[..]);
        let vae = Vae::new(CONFIG, model.params).unwrap();
        let mut buf = std::vec![0f32; CONFIG.encode_workspace_len(1)];
        let mut enc = Workspace::for_encoding(&CONFIG, 1, &mut buf).unwrap();
        vae.encode(&vae_nostd::Portable, &x, 1, &mut enc).unwrap();
        let (mu, log_var) = app.latents().unwrap();
        assert_eq!(&enc.head(1)[..Z], mu);
        assert_eq!(&enc.head(1)[Z..], log_var);
    }
}
