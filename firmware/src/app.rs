//! The application: a checked model ([`Model`]), the sample ring buffer ([`Windower`]) and the
//! per-window pipeline ([`App`]): normalization → score (with μ, log σ² as a by-product) →
//! calibration or threshold → [`Report`].

use core::fmt;

use rand_core::SeedableRng;
use rand_pcg::Pcg32;
use vae_nostd::modelfile::{ModelFile, ModelFileError, Window};
use vae_nostd::{ScoreKind, Vae, VaeConfig, Workspace};

use crate::calibration::{CalibrationError, Calibrator};
use crate::{CHANNELS, CONFIG, D, Z};

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
}

impl Settings {
    /// ±2 g full scale, calibration on the first 200 valid windows at the model's rate.
    pub const DEFAULT: Settings = Settings {
        full_scale_mg: 2000.0,
        calibration_windows: 200,
        false_alarm_rate: None,
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
    /// The calibration settings are impossible (rate outside [0, 1), N = 0, top-k too large).
    Calibration(CalibrationError),
    /// The core refused the configuration or the workspace.
    Core(vae_nostd::Error),
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
            StartupError::Calibration(e) => write!(f, "calibration settings: {e}"),
            StartupError::Core(e) => write!(f, "core: {e}"),
        }
    }
}

/// A model file checked against [`CONFIG`], with its parameters viewed in place.
#[derive(Clone, Copy, Debug)]
pub struct Model<'m> {
    /// The parsed file (normalization is read from it on the fly).
    pub file: ModelFile<'m>,
    /// The parameters, in place in the image. Shape: `[num_params]`.
    pub params: &'m [f32],
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
        // The parameters are the 4P bytes before the CRC (module docs of modelfile).
        let p = cfg.num_params();
        let end = bytes.len().saturating_sub(vae_nostd::modelfile::CRC_LEN);
        let raw = bytes
            .get(end.saturating_sub(4 * p)..end)
            .ok_or(StartupError::Unaligned)?;
        let params: &[f32] = bytemuck::try_cast_slice(raw).map_err(|_| StartupError::Unaligned)?;
        // Same values as the parser decodes (catches a big-endian target, or a wrong offset).
        if params.len() != p
            || !params
                .iter()
                .zip(file.params())
                .all(|(a, b)| a.to_bits() == b.to_bits())
        {
            return Err(StartupError::Unaligned);
        }
        Ok(Model {
            file,
            params,
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

/// The sample ring buffer: the last `len` samples of 3 axes; a window completes every `hop`
/// samples once `len` have arrived (window k covers samples `[k·hop, k·hop + len)`).
#[derive(Clone, Debug)]
pub struct Windower {
    /// Raw samples, mg, by time step modulo `len`. Shape: `[len][3]`.
    ring: [f32; D],
    len: usize,
    hop: usize,
    /// Samples pushed so far.
    n: u64,
    /// The latest bad sample.
    last_bad: Option<Invalid>,
    full_scale_mg: f32,
}

impl Windower {
    /// An empty buffer for windows of `len` time steps (`3·len = D`) every `hop` samples.
    pub fn new(len: usize, hop: usize, full_scale_mg: f32) -> Result<Self, StartupError> {
        if len * CHANNELS != D || hop == 0 {
            return Err(StartupError::Model(ModelFileError::Inconsistent(
                "window length × 3 differs from the firmware's input dimension",
            )));
        }
        Ok(Windower {
            ring: [0.0; D],
            len,
            hop,
            n: 0,
            last_bad: None,
            full_scale_mg,
        })
    }

    /// Samples pushed so far.
    pub fn samples(&self) -> u64 {
        self.n
    }

    /// Adds one sample (mg); returns the window it completes, if any.
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
        let slot = (n % self.len as u64) as usize * CHANNELS;
        self.ring[slot..slot + CHANNELS].copy_from_slice(&acc_mg);
        self.n = n + 1;
        let len = self.len as u64;
        if self.n < len || !(self.n - len).is_multiple_of(self.hop as u64) {
            return None;
        }
        let first = self.n - len;
        Some(WindowInfo {
            index: (first / self.hop as u64) as u32,
            first_sample: first,
            invalid: self.last_bad.filter(|b| b.sample() >= first),
        })
    }

    /// Copies the latest window, oldest sample first, into `out`. Shape: `[len][3]`.
    pub fn copy_window(&self, out: &mut [f32; D]) {
        let start = (self.n % self.len as u64) as usize * CHANNELS;
        let (older, newer) = self.ring.split_at(start);
        out[..newer.len()].copy_from_slice(newer);
        out[newer.len()..].copy_from_slice(older);
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
    /// Latent mean μ (NaN when not scored). Shape: `[Z]`.
    pub mu: [f32; Z],
    /// Latent log-variance log σ² (NaN when not scored). Shape: `[Z]`.
    pub log_var: [f32; Z],
    /// Set on the window that completed the calibration: the new threshold.
    pub calibrated: Option<f32>,
}

/// The application state: a model, the ring buffer, the workspace, the calibration.
pub struct App<'m> {
    model: Model<'m>,
    windower: Windower,
    /// The normalized window. Shape: `[len][3]`.
    x: [f32; D],
    ws: &'m mut [f32],
    rng: Pcg32,
    calibrator: Calibrator,
    calibrating: bool,
    threshold: f32,
}

impl<'m> App<'m> {
    /// Starts in calibration. `ws` needs [`crate::WORKSPACE_LEN`] elements; `seed` seeds the
    /// draws of sampled scores.
    pub fn new(
        model: Model<'m>,
        settings: Settings,
        ws: &'m mut [f32],
        seed: u64,
    ) -> Result<Self, StartupError> {
        Workspace::new(&CONFIG, 1, 1, &mut *ws)?;
        let rate = settings
            .false_alarm_rate
            .or(model.file.false_alarm_rate())
            .unwrap_or(0.01);
        let calibrator = Calibrator::new(settings.calibration_windows, rate)?;
        let windower = Windower::new(model.window.len, model.window.hop, settings.full_scale_mg)?;
        Ok(App {
            model,
            windower,
            x: [0.0; D],
            ws,
            rng: Pcg32::seed_from_u64(seed),
            calibrator,
            calibrating: true,
            threshold: model.file.threshold().unwrap_or(f32::NAN),
        })
    }

    /// The model.
    pub fn model(&self) -> &Model<'m> {
        &self.model
    }

    /// The calibration in progress (or the last one).
    pub fn calibrator(&self) -> &Calibrator {
        &self.calibrator
    }

    /// True while the threshold is being learnt.
    pub fn is_calibrating(&self) -> bool {
        self.calibrating
    }

    /// The threshold in use: the model file's until the first calibration ends.
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
    }

    /// Adds one sample (mg); returns the report of the window it completes, if any.
    pub fn push(&mut self, acc_mg: [f32; 3]) -> Option<Report> {
        let info = self.windower.push(acc_mg)?;
        let mut report = Report {
            window: info,
            verdict: Verdict::Calibrating,
            score: f32::NAN,
            threshold: if self.calibrating {
                f32::NAN
            } else {
                self.threshold
            },
            mu: [f32::NAN; Z],
            log_var: [f32::NAN; Z],
            calibrated: None,
        };
        if let Some(bad) = info.invalid {
            report.verdict = Verdict::Invalid(bad);
            return Some(report);
        }
        match self.score(&mut report) {
            Err(e) => report.verdict = Verdict::Error(e),
            Ok(score) if self.calibrating => {
                if let Some(t) = self.calibrator.push(score) {
                    self.threshold = t;
                    self.calibrating = false;
                    report.calibrated = Some(t);
                }
            }
            Ok(score) => {
                report.verdict = if score > self.threshold {
                    Verdict::Anomaly
                } else {
                    Verdict::Normal
                };
            }
        }
        Some(report)
    }

    /// Normalizes the latest window and scores it; fills μ, log σ² and the score.
    fn score(&mut self, report: &mut Report) -> Result<f32, vae_nostd::Error> {
        self.windower.copy_window(&mut self.x);
        let f = &self.model.file;
        for ((x, o), s) in self
            .x
            .iter_mut()
            .zip(f.normalization_offset())
            .zip(f.normalization_scale())
        {
            *x = (*x - o) * s;
        }
        let vae = Vae::new(CONFIG, self.model.params)?;
        let mut ws = Workspace::new(&CONFIG, 1, 1, &mut *self.ws)?;
        let mut out = [0f32; 1];
        let kind: ScoreKind = f.score();
        // The Cortex-M4F kernel: bit-identical to `Portable` (tested on target), 1.3–1.5
        // instructions per multiply-accumulate instead of about 2.6.
        vae.score(
            &crate::kernel_m4::CortexM4,
            &self.x,
            1,
            kind,
            &mut self.rng,
            &mut ws,
            &mut out,
        )?;
        let (mu, log_var) = ws.head(1).split_at(Z);
        report.mu.copy_from_slice(mu);
        report.log_var.copy_from_slice(log_var);
        report.score = out[0];
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
        let mut bad = Aligned(*include_bytes!("../models/default.vaem"));
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
        let mut shifted = Aligned([0u8; 157_344 + 4]);
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
        let mut w = Windower::new(D / 3, 16, 2000.0).unwrap();
        let len = (D / 3) as u64;
        let mut got = std::vec::Vec::new();
        for n in 0..(len + 40) {
            let v = n as f32;
            let s = match n {
                70 => [0.0, f32::NAN, 0.0],
                90 => [0.0, 0.0, -2000.0],
                _ => [v, v + 0.25, v + 0.5],
            };
            if let Some(info) = w.push(s) {
                got.push(info);
                if info.invalid.is_none() {
                    let mut out = [0f32; D];
                    w.copy_window(&mut out);
                    assert_eq!(out[0], info.first_sample as f32);
                    assert_eq!(out[D - 1], (info.first_sample + len - 1) as f32 + 0.5);
                }
            }
        }
        let firsts: std::vec::Vec<u64> = got.iter().map(|i| i.first_sample).collect();
        assert_eq!(firsts, [0, 16, 32]);
        assert_eq!(got[1].index, 1);
        assert_eq!(got[0].invalid, None);
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
    }

    #[test]
    fn score_fills_the_same_latents_as_encode() {
        let model = Model::load(&DEFAULT_MODEL.0).unwrap();
        let mut ws = std::vec![0f32; crate::WORKSPACE_LEN];
        let mut app = App::new(model, Settings::DEFAULT, &mut ws, 1).unwrap();
        let mut report = None;
        for n in 0..(D / 3) {
            let t = n as f32 * 0.3;
            report = app.push([10.0 * libm::sinf(t), 5.0, 1000.0 + libm::cosf(t)]);
        }
        let r = report.unwrap();
        assert_eq!(r.verdict, Verdict::Calibrating);
        assert!(r.score.is_finite());
        let vae = Vae::new(CONFIG, model.params).unwrap();
        let mut buf = std::vec![0f32; CONFIG.encode_workspace_len(1)];
        let mut enc = Workspace::for_encoding(&CONFIG, 1, &mut buf).unwrap();
        vae.encode(&vae_nostd::Portable, &app.x, 1, &mut enc)
            .unwrap();
        assert_eq!(&enc.head(1)[..Z], &r.mu[..]);
        assert_eq!(&enc.head(1)[Z..], &r.log_var[..]);
    }
}
