//! The main loop shared by the programs, with its defmt log lines (Cortex-M only).
//!
//! Log lines (defmt, decoded on the host):
//! * start-up: the model (CRC-32, architecture, window, score, its own threshold), then the
//!   calibration plan; or `model rejected: …` and the program stops;
//! * one line per window: `w=<k> [truth=<label>] <Verdict> score=<f32> frame=[..]` with the
//!   telemetry frame ([`crate::telemetry`]) holding μ;
//! * `calibrated: threshold …` when the on-device calibration ends; `button A: …`;
//! * sensor errors as warnings (their samples count as invalid);
//! * a summary at the end (QEMU).

use static_cell::StaticCell;
use vae_nostd::ScoreKind;

use crate::adapt::Event;
use crate::app::{App, Buffers, Model, Report, Settings, StartupError, Verdict};
use crate::board::Board;
use crate::{CONFIG, telemetry};

/// A plain-words reason for a start-up failure, for the log line.
pub fn describe(e: &StartupError) -> &'static str {
    use vae_nostd::modelfile::ModelFileError as M;
    match e {
        StartupError::Model(M::BadCrc { .. }) => {
            "the embedded model file is corrupt (CRC-32 mismatch)"
        }
        StartupError::Model(M::ConfigMismatch) => {
            "the embedded model's architecture differs from the one this firmware was built for"
        }
        StartupError::Model(M::BadMagic { .. } | M::UnsupportedVersion { .. }) => {
            "the embedded data is not a model file this firmware can read"
        }
        StartupError::Model(M::Truncated { .. } | M::TooLong { .. }) => {
            "the embedded model file has the wrong length"
        }
        StartupError::Model(_) => "the embedded model file is invalid",
        StartupError::NoWindow | StartupError::Channels { .. } => {
            "the model was not trained on 3-axis sensor windows"
        }
        StartupError::Unaligned => "the model image is not 4-byte aligned",
        StartupError::NoRing => {
            "the model's hop is shorter than its window; rebuild the firmware with its generated constants"
        }
        StartupError::Calibration(_) => "impossible calibration settings",
        StartupError::Core(_) => "the core refused the configuration",
        StartupError::Int8Score => "an int8 model must score -ELBO at z = mu",
    }
}

/// Checks the model and builds the application in `cell`, working in `buffers`, logging what
/// it runs (or why it cannot). Not inlined: its temporaries (the model and the application
/// before they move into `cell`) leave the stack before the main loop runs.
#[inline(never)]
pub fn start(
    bytes: &'static [u8],
    settings: Settings,
    buffers: &'static mut Buffers,
    cell: &'static StaticCell<App<'static>>,
    seed: u64,
) -> Result<&'static mut App<'static>, StartupError> {
    start_in(bytes, settings, buffers, seed, |app| cell.init(app))
}

/// As [`start`], handing the application to `place` (a static's `init`, or a local for a
/// program that runs several applications one after the other).
#[inline(always)]
pub fn start_in<'a, R: core::ops::Deref<Target = App<'a>>>(
    bytes: &'a [u8],
    settings: Settings,
    buffers: &'a mut Buffers,
    seed: u64,
    place: impl FnOnce(App<'a>) -> R,
) -> Result<R, StartupError> {
    let reject = |e: StartupError| {
        defmt::error!(
            "model rejected: {=str}; stopping. Re-export the model with host-trainer and rebuild ({})",
            describe(&e),
            e
        );
        e
    };
    let model = Model::load(bytes).map_err(reject)?;
    log_model(&model);
    let app = App::new_in(model, settings, buffers, seed, place).map_err(reject)?;
    let c = app.calibrator();
    defmt::info!(
        "calibrating on the first {=u32} valid windows at false-alarm rate {=f32}: threshold = score ranked {=usize} from the top, then following drift over {=u32} windows; full scale {=f32} mg",
        c.windows(),
        c.rate(),
        c.rank(),
        settings.drift_windows,
        settings.full_scale_mg
    );
    if model.int8 {
        defmt::info!("adaptation: off (it trains f32 decoder biases; this model is int8)");
    } else {
        log_adaptation_plan(&settings);
    }
    Ok(app)
}

/// The adaptation's start-up line: what it trains, in how much RAM, on how many windows.
fn log_adaptation_plan(settings: &Settings) {
    let a = settings.adaptation;
    if !a.is_on() {
        defmt::info!("adaptation: off");
        return;
    }
    let m = crate::adapt::MEMORY;
    defmt::info!(
        "adaptation: the decoder output bias ({=usize} values; {=usize} B copy + {=usize} B gradient + {=usize} B Adam moments) on the next {=u32} windows judged normal after calibration, {=u32} Adam steps each at {=f32}; then a threshold for it from {=u32} more; committed only if it scores them lower than the factory model",
        crate::ADAPTED_PARAMS,
        m.params,
        m.grads,
        m.optimizer_state,
        a.windows,
        a.steps_per_window,
        a.learning_rate,
        settings.calibration_windows
    );
}

/// The model's start-up lines: CRC, architecture, window; score and threshold.
fn log_model(model: &Model<'_>) {
    let f = &model.file;
    let w = model.window;
    defmt::info!(
        "model CRC-32 {=u32:#010x}: {=usize}-{=usize}-{=usize} {}, {} parameters, window {=usize}x3 hop {=usize} at {=f32} Hz",
        f.crc(),
        CONFIG.input,
        CONFIG.encoder_hidden.width(0),
        CONFIG.latent,
        CONFIG.likelihood,
        f.format(),
        w.len,
        w.hop,
        w.sample_rate_hz
    );
    let score: ScoreKind = f.score();
    match f.calibration() {
        Some(t) => defmt::info!(
            "score {}; model threshold {=f32} at false-alarm rate {=f32}",
            score,
            t.value,
            t.false_alarm_rate
        ),
        None => defmt::info!("score {}; the model has no threshold", score),
    }
}

/// Counts of verdicts, and (on a simulated board) of verdicts against the truth.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, defmt::Format)]
pub struct Summary {
    /// Windows completed.
    pub windows: u32,
    /// Windows used for calibration.
    pub calibrating: u32,
    /// Normal verdicts.
    pub normal: u32,
    /// Anomaly verdicts.
    pub anomaly: u32,
    /// Invalid windows.
    pub invalid: u32,
    /// Windows the core refused.
    pub error: u32,
    /// Truly anomalous windows judged after calibration (truth known).
    pub true_anomalies: u32,
    /// Of those, flagged.
    pub detected: u32,
    /// Truly normal windows judged after calibration.
    pub true_normal: u32,
    /// Of those, flagged (false alarms).
    pub false_alarms: u32,
}

/// Runs the application on `board` until `max_windows` windows (forever with `None`).
///
/// Stack: the loop's frame holds the summary and one report; reading and scoring
/// ([`step`]) and logging ([`log_window`]) are separate calls, so the scoring path's frames
/// never sit below the logging's temporaries.
#[inline(never)]
pub fn run<B: Board>(app: &mut App<'_>, board: &mut B, max_windows: Option<u32>) -> Summary {
    let mut s = Summary::default();
    board.show(crate::app::State::Calibrating);
    while max_windows.is_none_or(|m| s.windows < m) {
        if !step(app, board) {
            // Between sample reads: one unit of the adaptation's work, if any.
            if let Some(e) = app.learn() {
                on_adaptation(app, board, &e);
            }
            continue;
        }
        app.judge();
        let r = app.report();
        let truth = board.truth(r.window.first_sample, app.geometry().len);
        s.count(r, truth);
        log_window(app, r, truth);
        board.show(if app.is_calibrating() {
            crate::app::State::Calibrating
        } else {
            (&app.report().verdict).into()
        });
    }
    s
}

/// Button A, and one sample from the sensor; true when it completes a window.
#[inline(never)]
fn step<B: Board>(app: &mut App<'_>, board: &mut B) -> bool {
    if board.button_a_pressed() {
        defmt::info!(
            "button A: re-calibrating on the next {=u32} valid windows",
            app.calibrator().windows()
        );
        app.recalibrate();
        board.show(crate::app::State::Calibrating);
    }
    let (sample, error) = crate::board::next_sample(board);
    if let Some(e) = error {
        defmt::warn!(
            "sensor: {} at sample {=u64}; counted as invalid",
            e,
            app.samples()
        );
    }
    app.push_sample(sample)
}

/// An adaptation event's log line; a committed adaptation is handed to the board to keep.
#[inline(never)]
fn on_adaptation<B: Board>(app: &App<'_>, board: &mut B, e: &Event) {
    match e {
        Event::Trained {
            steps,
            first_loss,
            last_loss,
        } => defmt::info!(
            "adaptation: {=u32} Adam steps, loss (-ELBO, one draw) {=f32} on the first window -> {=f32} on the last; recalibrating on the next {=u32} normal windows",
            steps,
            first_loss,
            last_loss,
            app.calibrator().windows()
        ),
        Event::Committed(c) => {
            defmt::info!(
                "adaptation committed: threshold {=f32} (factory model {=f32}); mean score on {=u32} windows {=f32} (factory model {=f32}); input re-centered by {} mg; state CRC-32 {=u32:#010x}",
                c.threshold,
                c.factory_threshold,
                c.windows,
                c.mean,
                c.factory_mean,
                app.adapter().shift(),
                crate::adapt::state_crc(app.adapter().params(), &app.adapter().shift())
            );
            let a = app.adapter();
            match board.store_adaptation(a.params(), &a.shift(), &app.calibration_state()) {
                Ok(Some(s)) => defmt::info!(
                    "adaptation stored in flash slot {=u8}, sequence {=u32}",
                    s.slot,
                    s.sequence
                ),
                Ok(None) => defmt::info!("adaptation not stored (this board keeps nothing)"),
                Err(e) => defmt::warn!(
                    "adaptation not stored ({}): it runs until the next reset",
                    e
                ),
            }
        }
        Event::Rejected(r) => defmt::warn!("adaptation rejected ({}): the factory model stays", r),
    }
}

impl Summary {
    /// Counts one window's verdict (and, with the truth known, whether it was right).
    fn count(&mut self, r: &Report, truth: Option<u8>) {
        self.windows += 1;
        match r.verdict {
            Verdict::Calibrating => self.calibrating += 1,
            Verdict::Normal => self.normal += 1,
            Verdict::Anomaly => self.anomaly += 1,
            Verdict::Invalid(_) => self.invalid += 1,
            Verdict::Error(_) => self.error += 1,
        }
        let judged = matches!(r.verdict, Verdict::Normal | Verdict::Anomaly);
        match truth {
            Some(t) if judged && t != 0 => {
                self.true_anomalies += 1;
                self.detected += u32::from(r.verdict == Verdict::Anomaly);
            }
            Some(_) if judged => {
                self.true_normal += 1;
                self.false_alarms += u32::from(r.verdict == Verdict::Anomaly);
            }
            _ => {}
        }
    }
}

/// The window's log line (with its telemetry frame) and, at the end of a calibration, the new
/// threshold.
#[inline(never)]
fn log_window(app: &App<'_>, r: &Report, truth: Option<u8>) {
    let frame = telemetry::encode(r, app.latents().map(|(mu, _)| mu));
    match truth {
        Some(t) => defmt::info!(
            "w={=u32} truth={=u8} {} score={=f32} frame={=[u8]:02x}",
            r.window.index,
            t,
            r.verdict,
            r.score,
            frame
        ),
        None => defmt::info!(
            "w={=u32} {} score={=f32} frame={=[u8]:02x}",
            r.window.index,
            r.verdict,
            r.score,
            frame
        ),
    }
    if let Some(t) = r.calibrated {
        defmt::info!(
            "calibrated: threshold {=f32} = mean score {=f32} + margin {=f32}, from {=u32} windows (model file: {=f32})",
            t,
            app.calibrator().mean(),
            t - app.calibrator().mean(),
            app.calibrator().windows(),
            app.file_threshold().unwrap_or(f32::NAN)
        );
    }
}
