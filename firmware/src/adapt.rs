//! On-device adaptation: after deployment, the model learns the machine it is mounted on from
//! the windows it judges normal, with the core's ELBO gradient, and the threshold is learnt
//! again for the adapted model with the conformal rule.
//!
//! ## What is trained, and in how much RAM
//! The decoder output layer's bias ([`crate::ADAPTED_PARAMS`] values: for the default model's
//! Gaussian decoder the 192 means and 192 log variances of p(x|z) at z's decoded features,
//! `Vae::with_decoder_output_bias`): a per-position offset of the reconstruction and of its
//! noise level, which is what a change of mounting, load or sensor noise moves first. Every
//! other parameter stays in flash, read in place. The statics are sized from the core's memory
//! figures for that set ([`MEMORY`], `VaeConfig::memory_trained`): the trained copy, its
//! gradient and Adam's two moments, 4 × 384 × 4 B = 6 KB, plus a copy of the window being
//! trained on (768 B: the window buffer is refilled by the next samples while training runs).
//! The activations are the scoring workspace's (one window, [`crate::WORKSPACE_LEN`] f32),
//! shared: a training step runs between scores, never during one. Larger sets do not fit: the
//! whole output layer is 49,536 values, 792 KB with its gradient and Adam's moments, against
//! the nRF52833's 128 KB of RAM.
//!
//! Beside it, the input is **re-centered**: the calibration windows' mean offset from the
//! model's normalization, per axis (3 values, mg), is subtracted from every later window of
//! the adapted model (`Windower::set_shift`). A new mounting moves each axis's mean (a tilt
//! puts gravity on another axis, the part's gain scales the 1 g on z); the decoder's bias can
//! follow that in the reconstruction, but the encoder would still see inputs outside what it
//! was trained on. This is a statistic, not a gradient step (the core computes no gradient with
//! respect to the input); the bias is then trained on re-centered windows. Measured on the
//! domain-shift scenario (`crate::scenario::shift`): ROC AUC 0.585 (factory model) → 0.879
//! with the bias alone → 0.963 with the re-centering too, against 0.967 for a model trained on
//! that machine from the start.
//!
//! ## The phases
//! 1. **Calibration** of the factory model (the first N valid windows; the application's
//!    usual start); their mean offset per axis is the re-centering.
//! 2. **Training**: the next [`Adaptation::windows`] windows judged normal each get
//!    [`Adaptation::steps_per_window`] Adam steps on estimator B's −ELBO (one draw of z, the
//!    paper's eq. 10: the KL term does not depend on the decoder, so its gradient is the
//!    reconstruction term's alone), on the window re-centered. Windows judged anomalous are
//!    never trained on. Verdicts keep coming from the factory model and its threshold: the
//!    trained bias and the re-centering are a shadow.
//! 3. **Recalibration**: the next N windows judged normal are scored by the adapted model too;
//!    the k-th largest of those scores is its threshold (`crate::calibration`, the conformal
//!    rule), on windows the training never saw. Verdicts still come from the factory model.
//! 4. **Commit or fall back**: if the adapted model's mean score on those N windows is lower
//!    than the factory model's on the same windows (a better bound on the machine's data), the
//!    application switches to it (bias and re-centering), its threshold and a drift level from
//!    its mean; otherwise
//!    (or if any step met a non-finite value) the factory model stays, which is also what a
//!    reset without persisted state runs. The committed state can be persisted
//!    ([`crate::persist`]) and restored at start-up ([`crate::app::App::restore`]).
//!
//! ## Keeping up with the sensor
//! Work is split into units no longer than a score: one Adam step, or one extra score during
//! recalibration, done by [`crate::app::App::learn`] between sample reads, so the sensor's FIFO
//! is drained after each unit. A step is a forward pass (one score's cost, plus one draw of
//! eight normals), the likelihood's gradient (2D values) and Adam over 384 values; the QEMU
//! benchmark (`scripts/bench-device.sh`) counts its instructions.
//!
//! ## Bits
//! Everything is f32 through the core with the `CortexM4` kernel (bit-identical to `Portable`),
//! and the draws come from a PCG32 seeded from the application's seed: the same seed and
//! samples give the same adapted bits on the host and on the device (`tests/tests/
//! firmware_e2e.rs` compares them with the QEMU run).

use rand_core::SeedableRng;
use rand_pcg::Pcg32;
use vae_nostd::{
    Adam, Estimator, MemoryFigures, Objective, Optimizer, OptimizerKind, ScoreKind, Vae, Workspace,
};

use crate::{ADAPTED_PARAMS, CHANNELS, CONFIG, D};

/// The core's memory figures for the adaptation: [`ADAPTED_PARAMS`] values with Adam, one
/// window per step.
pub const MEMORY: MemoryFigures = CONFIG.memory_trained::<f32>(ADAPTED_PARAMS, OPTIMIZER);
/// The optimizer the adaptation uses.
pub const OPTIMIZER: OptimizerKind = OptimizerKind::Adam;
/// f32 values of the trained copy (from [`MEMORY`]; 0 in a build with an int8 model, which
/// the adaptation cannot train: it trains f32 decoder biases through the f32 decoder).
pub const PARAMS_LEN: usize = if crate::INT8 { 0 } else { MEMORY.params / 4 };
/// f32 values of the gradient (from [`MEMORY`]; 0 with an int8 model).
pub const GRAD_LEN: usize = if crate::INT8 { 0 } else { MEMORY.grads / 4 };
/// f32 values of the optimizer's moments (from [`MEMORY`]; 0 with an int8 model).
pub const MOMENTS_LEN: usize = if crate::INT8 {
    0
} else {
    MEMORY.optimizer_state / 4
};
/// f32 values of the window copy (0 with an int8 model).
pub const WINDOW_LEN: usize = if crate::INT8 { 0 } else { D };
const _: () = assert!(crate::INT8 || (PARAMS_LEN == ADAPTED_PARAMS && GRAD_LEN == ADAPTED_PARAMS));
const _: () = assert!(MEMORY.train_activations == 4 * crate::WORKSPACE_LEN);

/// The adaptation's RAM: part of the application's static [`crate::app::Buffers`].
pub struct AdaptBuffers {
    /// The adapted decoder output bias: a shadow while training, the model's once committed.
    /// Shape: `[ADAPTED_PARAMS]`.
    pub params: [f32; PARAMS_LEN],
    /// Gradient of the loss with respect to it. Shape: `[ADAPTED_PARAMS]`.
    pub grad: [f32; GRAD_LEN],
    /// Adam's first then second moments. Shape: `[2][ADAPTED_PARAMS]`.
    pub moments: [f32; MOMENTS_LEN],
    /// The window being trained on or scored (normalized). Shape: `[len][3]`.
    pub window: [f32; WINDOW_LEN],
}

impl AdaptBuffers {
    /// All zeros (a `const`, so the static is in `.bss`).
    pub const fn new() -> Self {
        AdaptBuffers {
            params: [0.0; PARAMS_LEN],
            grad: [0.0; GRAD_LEN],
            moments: [0.0; MOMENTS_LEN],
            window: [0.0; WINDOW_LEN],
        }
    }
}

impl Default for AdaptBuffers {
    fn default() -> Self {
        Self::new()
    }
}

/// The adaptation's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub struct Adaptation {
    /// Windows judged normal to train on after the first calibration; 0: no adaptation.
    pub windows: u32,
    /// Adam steps per such window.
    pub steps_per_window: u32,
    /// Adam's step size α.
    pub learning_rate: f32,
}

impl Adaptation {
    /// The default: 500 windows judged normal (80 s of a 400 Hz stream at hop 64), 4 Adam steps
    /// each at α = 10⁻², 2,000 steps in all. Measured on the domain-shift scenario
    /// (`crate::scenario::shift`, `cargo run --release -p vae-tests --example adapt_shift`):
    /// α = 2·10⁻³ and 5·10⁻³ had not converged after 2,000 steps (ROC AUC 0.732, 0.820), 10⁻²
    /// gives 0.879, 2·10⁻² 0.878; 8 steps per window no better (0.871).
    pub const DEFAULT: Adaptation = Adaptation {
        windows: 500,
        steps_per_window: 4,
        learning_rate: 1e-2,
    };

    /// No adaptation.
    pub const OFF: Adaptation = Adaptation {
        windows: 0,
        steps_per_window: 0,
        learning_rate: 0.0,
    };

    /// True when it trains at all.
    pub fn is_on(&self) -> bool {
        self.windows > 0 && self.steps_per_window > 0
    }

    /// Adam steps in all.
    pub fn steps(&self) -> u64 {
        u64::from(self.windows) * u64::from(self.steps_per_window)
    }
}

/// Where the adaptation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum Phase {
    /// Not enabled (or the factory model was kept and nothing more will happen).
    Off,
    /// Waiting for the first calibration to end.
    Waiting,
    /// Training on windows judged normal.
    Training,
    /// Scoring windows judged normal with the adapted model for its threshold.
    Recalibrating,
    /// The adapted model is in use.
    Adapted,
    /// The adaptation was refused: the factory model stays.
    Rejected,
}

/// Why an adaptation was refused.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum Rejection {
    /// The adapted model's mean score on the recalibration windows is not below the factory
    /// model's.
    NotBetter {
        /// The adapted model's mean score.
        adapted: f32,
        /// The factory model's, on the same windows.
        factory: f32,
    },
    /// A step met a non-finite loss or gradient, or the core refused it.
    Core(vae_nostd::Error),
    /// The calibration did not give a finite threshold.
    Threshold,
}

/// What the adaptation did on a call of [`crate::app::App::learn`], for the log.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum Event {
    /// Training finished: steps taken and the mean loss (−ELBO, one draw) of the first and the
    /// last window's steps.
    Trained {
        /// Adam steps taken.
        steps: u32,
        /// Mean loss of the first trained window's steps.
        first_loss: f32,
        /// Mean loss of the last one's.
        last_loss: f32,
    },
    /// The adapted model is in use from the next window on.
    Committed(Committed),
    /// The factory model stays.
    Rejected(Rejection),
}

/// A committed adaptation's figures.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub struct Committed {
    /// The adapted model's threshold (conformal rule on the recalibration windows).
    pub threshold: f32,
    /// Its mean score on those windows.
    pub mean: f32,
    /// The factory model's mean score on the same windows.
    pub factory_mean: f32,
    /// The factory model's threshold until now.
    pub factory_threshold: f32,
    /// Windows the recalibration used.
    pub windows: u32,
}

/// The adaptation's state: a few words beside its [`AdaptBuffers`].
pub struct Adapter<'b> {
    settings: Adaptation,
    buf: &'b mut AdaptBuffers,
    /// The model's normalization scale (`[D]`, in place in flash).
    scale: &'b [f32],
    /// Input re-centering per axis, mg: estimated during the first calibration.
    shift: [f32; CHANNELS],
    /// Sums of `x'/scale` per axis over the calibration windows (the raw offset from the
    /// model's normalization), and how many values each holds.
    dc_sum: [f32; CHANNELS],
    dc_count: u32,
    adam: Adam<f32>,
    rng: Pcg32,
    phase: Phase,
    /// Work units left for the window in `buf.window` (steps, or 1 score).
    pending: u32,
    /// Windows still to train on.
    windows_left: u32,
    /// Loss sum of the current window's steps.
    window_loss: f32,
    first_loss: f32,
    last_loss: f32,
    /// The factory model's score of the window in `buf.window` (recalibration).
    factory_score: f32,
    /// Sums of the factory and adapted scores over the recalibration windows.
    factory_sum: f32,
    adapted_sum: f32,
    steps: u32,
}

/// Seed of the training draws from the application's seed (a stream apart from the scores').
const TRAIN_STREAM: u64 = 0xADA9_7000;

impl<'b> Adapter<'b> {
    /// An adapter that starts training once the first calibration ends, from the model's own
    /// output bias `factory_bias` (`[ADAPTED_PARAMS]`).
    pub fn new(
        settings: Adaptation,
        buf: &'b mut AdaptBuffers,
        factory_bias: &[f32],
        scale: &'b [f32],
        seed: u64,
    ) -> Result<Self, vae_nostd::Error> {
        if scale.len() != D {
            return Err(vae_nostd::Error::InvalidArgument(
                "normalization scale has the wrong length",
            ));
        }
        if !(settings.learning_rate.is_finite() && settings.learning_rate >= 0.0) {
            return Err(vae_nostd::Error::InvalidArgument(
                "adaptation learning rate must be finite and non-negative",
            ));
        }
        let mut a = Adapter {
            settings,
            buf,
            scale,
            shift: [0.0; CHANNELS],
            dc_sum: [0.0; CHANNELS],
            dc_count: 0,
            adam: Adam::new(settings.learning_rate),
            rng: Pcg32::seed_from_u64(vae_nostd::seed::mix(seed ^ TRAIN_STREAM)),
            phase: if settings.is_on() {
                Phase::Waiting
            } else {
                Phase::Off
            },
            pending: 0,
            windows_left: settings.windows,
            window_loss: 0.0,
            first_loss: f32::NAN,
            last_loss: f32::NAN,
            factory_score: f32::NAN,
            factory_sum: 0.0,
            adapted_sum: 0.0,
            steps: 0,
        };
        a.reset_to(factory_bias)?;
        Ok(a)
    }

    /// Starts over from `bias` with fresh moments (keeps the phase).
    fn reset_to(&mut self, bias: &[f32]) -> Result<(), vae_nostd::Error> {
        if bias.len() != ADAPTED_PARAMS {
            return Err(vae_nostd::Error::InvalidArgument(
                "adapted parameters have the wrong length",
            ));
        }
        if self.buf.params.len() == bias.len() {
            self.buf.params.copy_from_slice(bias);
        } else if self.settings.is_on() {
            return Err(vae_nostd::Error::InvalidArgument(
                "this build has no adaptation buffers (its model is int8)",
            ));
        }
        self.buf.moments.fill(0.0);
        self.adam = Adam::new(self.settings.learning_rate);
        self.pending = 0;
        self.windows_left = self.settings.windows;
        self.window_loss = 0.0;
        self.first_loss = f32::NAN;
        self.last_loss = f32::NAN;
        self.factory_sum = 0.0;
        self.adapted_sum = 0.0;
        self.steps = 0;
        self.dc_sum = [0.0; CHANNELS];
        self.dc_count = 0;
        self.shift = [0.0; CHANNELS];
        Ok(())
    }

    /// The settings.
    pub fn settings(&self) -> &Adaptation {
        &self.settings
    }

    /// Where it is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Adam steps taken so far.
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// True when scores come from the adapted parameters.
    pub fn is_active(&self) -> bool {
        self.phase == Phase::Adapted
    }

    /// The adapted parameters (`[ADAPTED_PARAMS]`): the shadow while training, the model's
    /// once committed.
    pub fn params(&self) -> &[f32] {
        &self.buf.params
    }

    /// The input re-centering per axis, mg: the shadow's while training, the model's once
    /// committed.
    pub fn shift(&self) -> [f32; CHANNELS] {
        self.shift
    }

    /// A calibration window (normalized, `[len][3]`): its mean raw offset from the model's
    /// normalization, `x'/scale = x − offset`, is summed per axis.
    pub(crate) fn observe(&mut self, window: &[f32; D]) {
        if self.phase != Phase::Waiting {
            return;
        }
        for (i, (x, s)) in window.iter().zip(self.scale).enumerate() {
            self.dc_sum[i % CHANNELS] += x / s;
        }
        self.dc_count += (D / CHANNELS) as u32;
    }

    /// The first calibration ended: the re-centering is the calibration windows' mean offset
    /// per axis, and training starts with the next normal window.
    pub(crate) fn on_calibrated(&mut self) {
        if self.phase == Phase::Waiting {
            if self.dc_count > 0 {
                let n = self.dc_count as f32;
                self.shift = self.dc_sum.map(|s| s / n);
                if !self.shift.iter().all(|c| c.is_finite()) {
                    self.shift = [0.0; CHANNELS];
                }
            }
            self.phase = Phase::Training;
        }
    }

    /// A recalibration of the model in use was asked for (button A): training or a
    /// recalibration in progress starts over after it, from `factory_bias`.
    pub(crate) fn restart(&mut self, factory_bias: &[f32]) {
        if matches!(self.phase, Phase::Training | Phase::Recalibrating)
            && self.reset_to(factory_bias).is_ok()
        {
            self.phase = Phase::Waiting;
        }
    }

    /// Installs persisted parameters (`[ADAPTED_PARAMS]` little-endian f32, the
    /// [`crate::persist`] payload) as the model's: the adapted model is in use. On an error
    /// (wrong length, a non-finite value) nothing changes.
    pub(crate) fn restore(&mut self, le_bytes: &[u8]) -> Result<(), vae_nostd::Error> {
        if le_bytes.len() != 4 * crate::ADAPTED_STATE {
            return Err(vae_nostd::Error::InvalidArgument(
                "persisted parameters have the wrong length",
            ));
        }
        if self.buf.params.len() != ADAPTED_PARAMS {
            return Err(vae_nostd::Error::InvalidArgument(
                "this build has no adaptation buffers (its model is int8)",
            ));
        }
        let value = |c: &[u8]| f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        if !le_bytes.chunks_exact(4).all(|c| value(c).is_finite()) {
            return Err(vae_nostd::Error::NonFiniteInput);
        }
        let mut values = le_bytes.chunks_exact(4).map(value);
        for (p, v) in self.buf.params.iter_mut().zip(&mut values) {
            *p = v;
        }
        for (c, v) in self.shift.iter_mut().zip(values) {
            *c = v;
        }
        self.buf.moments.fill(0.0);
        self.pending = 0;
        self.phase = Phase::Adapted;
        Ok(())
    }

    /// A window judged normal with `score` by the model in use: queued for training or for
    /// the adapted model's score, as the phase asks.
    pub(crate) fn offer(&mut self, window: &[f32; D], score: f32) {
        let units = match self.phase {
            Phase::Training if self.windows_left > 0 => self.settings.steps_per_window,
            Phase::Recalibrating => 1,
            _ => return,
        };
        // The shadow's input: re-centered as the windower will once the adaptation is
        // committed (`Windower::set_shift`: the same operations, so the same bits).
        for (i, ((w, x), s)) in self
            .buf
            .window
            .iter_mut()
            .zip(window)
            .zip(self.scale)
            .enumerate()
        {
            *w = x - self.shift[i % CHANNELS] * s;
        }
        self.factory_score = score;
        self.pending = units;
        if self.phase == Phase::Training {
            self.windows_left -= 1;
            self.window_loss = 0.0;
        }
    }

    /// True when a unit of adaptation work is queued (`App::learn` has something to do).
    pub fn has_work(&self) -> bool {
        self.pending > 0
    }

    /// One unit of queued work: an Adam step (training) or the adapted model's score of the
    /// queued window (recalibration, returned with the factory model's score of it).
    pub(crate) fn work(
        &mut self,
        params: &[f32],
        kind: ScoreKind,
        ws: &mut Workspace<'_, f32>,
    ) -> Result<Work, vae_nostd::Error> {
        if self.pending == 0 {
            return Ok(Work::None);
        }
        self.pending -= 1;
        match self.phase {
            Phase::Training => {
                let loss = self.step(params, ws)?;
                self.window_loss += loss;
                if self.pending == 0 {
                    let mean = self.window_loss / self.settings.steps_per_window as f32;
                    if self.first_loss.is_nan() {
                        self.first_loss = mean;
                    }
                    self.last_loss = mean;
                    if self.windows_left == 0 {
                        self.phase = Phase::Recalibrating;
                        return Ok(Work::Trained(Event::Trained {
                            steps: self.steps,
                            first_loss: self.first_loss,
                            last_loss: self.last_loss,
                        }));
                    }
                }
                Ok(Work::None)
            }
            Phase::Recalibrating => {
                let adapted = self.score_adapted(params, kind, ws)?;
                self.factory_sum += self.factory_score;
                self.adapted_sum += adapted;
                Ok(Work::Score {
                    adapted,
                    factory: self.factory_score,
                })
            }
            _ => Ok(Work::None),
        }
    }

    /// One Adam step on the queued window: forward with one draw of z (estimator B),
    /// the gradient of −ELBO with respect to the output bias, the update. Returns the loss.
    fn step(
        &mut self,
        params: &[f32],
        ws: &mut Workspace<'_, f32>,
    ) -> Result<f32, vae_nostd::Error> {
        let AdaptBuffers {
            params: bias,
            grad,
            moments,
            window,
        } = &mut *self.buf;
        let obj = Objective {
            estimator: Estimator::Analytic,
            samples: 1,
            beta: 1.0,
        };
        let loss = {
            let vae = Vae::with_decoder_output_bias(CONFIG, params, bias)?;
            let b = vae.forward(
                &crate::kernel_m4::CortexM4,
                window,
                1,
                obj,
                &mut self.rng,
                ws,
            )?;
            vae.backward_decoder_output_bias(window, grad, ws)?;
            -(b.objective as f32)
        };
        if !loss.is_finite() {
            return Err(vae_nostd::Error::NonFiniteLoss);
        }
        self.adam.step(bias, grad, moments)?;
        self.steps += 1;
        Ok(loss)
    }

    /// The adapted model's score (`kind`, the application's: −ELBO at z = μ for the default
    /// model) of the queued window.
    fn score_adapted(
        &mut self,
        params: &[f32],
        kind: ScoreKind,
        ws: &mut Workspace<'_, f32>,
    ) -> Result<f32, vae_nostd::Error> {
        let vae = Vae::with_decoder_output_bias(CONFIG, params, &self.buf.params)?;
        let mut out = [0f32; 1];
        vae.score(
            &crate::kernel_m4::CortexM4,
            &self.buf.window,
            1,
            kind,
            &mut self.rng,
            ws,
            &mut out,
        )?;
        if out[0].is_finite() {
            Ok(out[0])
        } else {
            Err(vae_nostd::Error::NonFiniteLoss)
        }
    }

    /// The recalibration gave `threshold` from `windows` windows: commit or fall back.
    pub(crate) fn finish(&mut self, threshold: f32, windows: u32, factory_threshold: f32) -> Event {
        let n = windows.max(1) as f32;
        let (adapted, factory) = (self.adapted_sum / n, self.factory_sum / n);
        let event = if !threshold.is_finite() {
            Event::Rejected(Rejection::Threshold)
        } else if adapted.partial_cmp(&factory) != Some(core::cmp::Ordering::Less) {
            // Not better, or not comparable (a NaN mean).
            Event::Rejected(Rejection::NotBetter { adapted, factory })
        } else {
            Event::Committed(Committed {
                threshold,
                mean: adapted,
                factory_mean: factory,
                factory_threshold,
                windows,
            })
        };
        self.phase = match event {
            Event::Committed(_) => Phase::Adapted,
            _ => Phase::Rejected,
        };
        event
    }

    /// A step or score failed: the factory model stays.
    pub(crate) fn fail(&mut self, e: vae_nostd::Error) -> Event {
        self.phase = Phase::Rejected;
        self.pending = 0;
        Event::Rejected(Rejection::Core(e))
    }
}

/// CRC-32 (`CRC_32_ISO_HDLC`, as the model file) of an adapted state's little-endian bytes
/// (the biases, then the re-centering): the QEMU log carries it, and the host tests compare it
/// with their replay's.
pub fn state_crc(params: &[f32], shift: &[f32; CHANNELS]) -> u32 {
    let crc = crc::Crc::<u32, crc::NoTable>::new(&crc::CRC_32_ISO_HDLC);
    let mut d = crc.digest();
    for p in params.iter().chain(shift) {
        d.update(&p.to_le_bytes());
    }
    d.finalize()
}

/// The result of one unit of work.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Work {
    /// Nothing to report.
    None,
    /// Training ended.
    Trained(Event),
    /// A recalibration window's scores.
    Score {
        /// By the adapted model.
        adapted: f32,
        /// By the factory model (its verdict's score).
        factory: f32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DEFAULT_MODEL;
    use crate::app::{Buffers, Settings};
    use crate::scenario::{self, shift};

    /// A short version of the shift scenario: calibration and recalibration on 30 windows,
    /// training on 40.
    fn short(adaptation: Adaptation) -> Settings {
        Settings {
            calibration_windows: 30,
            false_alarm_rate: Some(0.05),
            adaptation,
            ..Settings::DEFAULT
        }
    }

    type Run = (
        Phase,
        std::vec::Vec<(u32, Event)>,
        std::boxed::Box<Buffers>,
        [f32; CHANNELS],
    );

    fn events(settings: Settings) -> Run {
        let mut buffers = std::boxed::Box::new(Buffers::new());
        let mut events = std::vec::Vec::new();
        let (phase, shift) = scenario::replay(
            &DEFAULT_MODEL.0,
            settings,
            shift::SIM,
            150,
            &mut buffers,
            |_, _| {},
            |w, e| events.push((w, *e)),
        )
        .unwrap();
        (phase, events, buffers, shift)
    }

    #[test]
    fn the_statics_are_sized_by_the_cores_memory_figures() {
        assert_eq!(ADAPTED_PARAMS, 384);
        assert_eq!(MEMORY.params, 1536);
        assert_eq!(MEMORY.grads, 1536);
        assert_eq!(MEMORY.optimizer_state, 3072);
        assert_eq!(core::mem::size_of::<AdaptBuffers>(), 1536 * 4 + 4 * D);
    }

    /// On the shifted machine the adapted model fits better than the factory model: it
    /// commits, with a lower loss at the end of training than at its start, and a threshold
    /// from the recalibration windows.
    #[test]
    fn adaptation_on_a_shifted_machine_commits() {
        let a = Adaptation {
            windows: 40,
            steps_per_window: 4,
            learning_rate: 1e-2,
        };
        let (phase, events, buffers, shift) = events(short(a));
        assert_eq!(phase, Phase::Adapted, "{events:?}");
        let [
            (
                _,
                Event::Trained {
                    steps,
                    first_loss,
                    last_loss,
                },
            ),
            (_, Event::Committed(c)),
        ] = events[..]
        else {
            panic!("{events:?}")
        };
        assert_eq!(steps, 160);
        assert!(last_loss < first_loss, "{first_loss} -> {last_loss}");
        assert!(c.mean < c.factory_mean && c.threshold.is_finite(), "{c:?}");
        assert_eq!(c.windows, 30);
        // The re-centering found the mounting: 10 % gain on gravity (1,000 mg on z) and the
        // tilt's +35 mg on x, −1 mg on z, to within the simulator's slow baseline drift.
        for (got, want) in shift.iter().zip([35.0, 0.0, 99.0]) {
            assert!((got - want).abs() < 10.0, "{shift:?}");
        }
        let factory = &crate::app::Model::load(&DEFAULT_MODEL.0).unwrap().params;
        assert_ne!(&buffers.adapt.params[..], &factory[factory.len() - 384..]);
    }

    /// The commit rule: only a lower mean score than the factory model's on the same windows
    /// (and a finite threshold) commits; equal, higher or NaN means fall back.
    #[test]
    fn an_adaptation_that_does_not_help_is_refused() {
        let mut buf = std::boxed::Box::new(AdaptBuffers::new());
        let model = crate::app::Model::load(&DEFAULT_MODEL.0).unwrap();
        let bias = &model.params[model.params.len() - ADAPTED_PARAMS..];
        let mut a = Adapter::new(Adaptation::DEFAULT, &mut buf, bias, model.scale, 1).unwrap();
        for (adapted, factory, threshold, commits) in [
            (100.0, 100.0, 150.0, false),
            (120.0, 100.0, 150.0, false),
            (f32::NAN, 100.0, 150.0, false),
            (90.0, 100.0, f32::INFINITY, false),
            (90.0, 100.0, 150.0, true),
        ] {
            (a.adapted_sum, a.factory_sum) = (10.0 * adapted, 10.0 * factory);
            a.phase = Phase::Recalibrating;
            let e = a.finish(threshold, 10, 200.0);
            assert_eq!(matches!(e, Event::Committed(_)), commits, "{e:?}");
            assert_eq!(a.is_active(), commits);
            if let Event::Committed(c) = e {
                assert_eq!((c.mean, c.factory_mean, c.threshold), (90.0, 100.0, 150.0));
            }
        }
    }

    /// A committed adaptation survives a reset: stored through `persist` (the micro:bit's slot
    /// layout, on a NOR flash in RAM), loaded and restored into a fresh application, which then
    /// scores the next windows with the same bits and the same verdicts as the one that adapted.
    #[test]
    fn a_stored_adaptation_is_restored_after_a_reset() {
        let model = crate::app::Model::load(&DEFAULT_MODEL.0).unwrap();
        let settings = short(Adaptation {
            windows: 40,
            steps_per_window: 4,
            learning_rate: 1e-2,
        });
        let mut buffers = std::boxed::Box::new(Buffers::new());
        let mut app = crate::app::App::new(model, settings, &mut buffers, 1).unwrap();
        let mut board = crate::board::SimBoard::new(shift::SIM, &[], 1).unwrap();
        let mut flash = crate::persist::tests::MockFlash::new(2);
        let slots = crate::MICROBIT_SLOTS;
        let mut stored = false;
        while !stored {
            let (s, _) = crate::board::next_sample(&mut board);
            if app.push(s).is_none()
                && let Some(Event::Committed(_)) = app.learn()
            {
                let mut payload = [0u8; crate::ADAPTED_LEN];
                let shift = app.adapter().shift();
                let state = app.adapter().params().iter().chain(&shift);
                for (b, v) in payload.chunks_exact_mut(4).zip(state) {
                    b.copy_from_slice(&v.to_le_bytes());
                }
                let cal = app.calibration_state();
                slots
                    .store(&mut flash, crate::model::MODEL_CRC32, &cal, &payload)
                    .unwrap();
                stored = true;
            }
        }
        // Up to the next window boundary, so that both applications cut the same windows.
        loop {
            let (s, _) = crate::board::next_sample(&mut board);
            if app.push(s).is_some() {
                break;
            }
        }
        // After the reset: a fresh application finds and restores the state.
        let mut buffers2 = std::boxed::Box::new(Buffers::new());
        let mut fresh = crate::app::App::new(model, settings, &mut buffers2, 1).unwrap();
        let mut payload = [0u8; crate::ADAPTED_LEN];
        let loaded = slots
            .load(&mut flash, crate::model::MODEL_CRC32, &mut payload)
            .unwrap()
            .expect("a stored record");
        fresh.restore(&payload, &loaded.calibration).unwrap();
        assert_eq!(fresh.adapter().params(), app.adapter().params());
        assert_eq!(fresh.adapter().shift(), app.adapter().shift());
        assert_eq!(fresh.threshold(), loaded.calibration.threshold);
        let mut compared = 0;
        while compared < 60 {
            let (s, _) = crate::board::next_sample(&mut board);
            let (a, b) = (app.push(s).copied(), fresh.push(s).copied());
            assert_eq!(a.is_some(), b.is_some());
            if let (Some(a), Some(b)) = (a, b) {
                assert_eq!(
                    a.score.to_bits(),
                    b.score.to_bits(),
                    "window {}",
                    a.window.index
                );
                assert_eq!(a.verdict, b.verdict);
                assert!((a.threshold - b.threshold).abs() <= 1e-3 * a.threshold.abs());
                compared += 1;
            }
        }
        // A record for another model file is not picked up.
        let mut other = [0u8; crate::ADAPTED_LEN];
        assert!(
            slots
                .load(&mut flash, 0x1234_5678, &mut other)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn restore_checks_what_it_installs() {
        let model = crate::app::Model::load(&DEFAULT_MODEL.0).unwrap();
        let mut buffers = std::boxed::Box::new(Buffers::new());
        let mut app = crate::app::App::new(model, Settings::DEFAULT, &mut buffers, 1).unwrap();
        let cal = crate::persist::Calibration {
            threshold: 200.0,
            margin: 20.0,
            windows: 200,
            false_alarm_rate: 0.01,
        };
        let mut bytes = [0u8; 4 * crate::ADAPTED_STATE];
        assert!(app.restore(&bytes[..8], &cal).is_err());
        bytes[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(app.restore(&bytes, &cal).is_err());
        let bad = crate::persist::Calibration {
            threshold: f32::INFINITY,
            ..cal
        };
        bytes[4..8].copy_from_slice(&1.5f32.to_le_bytes());
        assert!(app.restore(&bytes, &bad).is_err());
        assert!(app.is_calibrating() && app.adapter().phase() == Phase::Waiting);
        app.restore(&bytes, &cal).unwrap();
        assert!(!app.is_calibrating());
        assert_eq!(app.adapter().phase(), Phase::Adapted);
        assert_eq!(app.adapter().params()[1], 1.5);
        assert_eq!(app.adapter().shift(), [0.0; 3]);
        assert_eq!(app.threshold(), 200.0);
        assert_eq!(
            app.calibration_state(),
            crate::persist::Calibration { ..cal }
        );
    }

    #[test]
    fn a_recalibration_during_training_starts_the_adaptation_over() {
        let model = crate::app::Model::load(&DEFAULT_MODEL.0).unwrap();
        let mut buffers = std::boxed::Box::new(Buffers::new());
        let settings = short(Adaptation {
            windows: 40,
            steps_per_window: 2,
            learning_rate: 1e-2,
        });
        let mut app = crate::app::App::new(model, settings, &mut buffers, 1).unwrap();
        let mut board = crate::board::SimBoard::new(shift::SIM, &[], 1).unwrap();
        let mut windows = 0;
        while windows < 40 {
            let (s, _) = crate::board::next_sample(&mut board);
            if app.push(s).is_some() {
                windows += 1;
            } else {
                app.learn();
            }
        }
        assert_eq!(app.adapter().phase(), Phase::Training);
        assert!(app.adapter().steps() > 0);
        app.recalibrate();
        assert_eq!(app.adapter().phase(), Phase::Waiting);
        assert_eq!(app.adapter().steps(), 0);
        assert_eq!(
            app.adapter().params(),
            &model.params[model.params.len() - 384..]
        );
    }
}
