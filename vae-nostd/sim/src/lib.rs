//! A simulated sensor: a 3-axis accelerometer bolted to a rotating machine, with labelled
//! anomaly episodes. The trainer makes its default dataset with it and the QEMU firmware uses it
//! as its sensor, so the same [`SimConfig`] (seed included) gives **bit-identical** samples on
//! the host and on a Cortex-M: all arithmetic is `f64` in a fixed order, every transcendental
//! comes from `libm`, every random number from [`rand_pcg::Pcg32`] through [`vae_nostd::rng`], and
//! the output is rounded to `f32` once, at the end. No allocation, no statics; a [`Simulator`]
//! takes about 1.6 KB and streams one [`Sample`] at a time.
//! (Checked: the first 4096 samples of seed 1 hash to the same value on x86-64 and on QEMU's
//! Cortex-M4F, whose `f64` is software floating point; test `golden_hash_of_the_default_stream`.)
//!
//! ## The machine
//! A vertical machine (a pump, a fan) turning at a shaft rate f(t) near `shaft_hz` (25 Hz,
//! 1500 rpm), sampled at `sample_rate_hz` (400 Hz, an LSM303AGR output data rate). Output in
//! milli-g; **x and y are radial** (horizontal), **z is axial** (along the shaft, vertical), so
//! gravity adds +1000 mg on z. Per axis a ∈ {x, y, z} and sample n (t = n / fs):
//!
//! ```text
//! acc_a[n] = g_a + b_a(t) + Σ_{k=1..3} V·A_{a,k} sin(k·θ(t) + φ_{a,k}) + σ·ε_a[n]  (+ anomaly terms)
//! ```
//!
//! * θ(t) = 2π ∫ f: the shaft angle; f(t) = `shaft_hz`·(1 + s(t)), where the speed deviation
//!   s(t) is an Ornstein–Uhlenbeck process (time constant 10 s, standard deviation
//!   `shaft_drift`/2.5) clamped to ±`shaft_drift` (default ±5 %).
//! * V = `vibration_mg` (30 mg: 2 mm/s of 1x velocity at 25 Hz). The harmonic table
//!   ([`HARMONICS`]): 1x, 2x, 3x with amplitudes x 1, 0.4, 0.15; y 0.8, 0.35, 0.12; z 0.25, 0.3,
//!   0.1 (× V), y's 1x lagging x's by 90° (an elliptical orbit). The table is the *machine*, not
//!   a function of the seed: every seed simulates the same machine (the seed picks the noise,
//!   the speed and drift paths, the start angle and the episodes).
//! * b_a(t): slow baseline drift (thermal, mounting), an Ornstein–Uhlenbeck process per axis
//!   with time constant 30 s and standard deviation `baseline_drift_mg` (5 mg), driven by
//!   uniform increments of matching variance.
//! * σ = `noise_mg` (8 mg): white Gaussian sensor noise (Box–Muller, [`vae_nostd::rng`]).
//! * The mounting: the sensor reports each axis's sum × `mounting_gain` + `mounting_offset_mg`
//!   (axis sensitivity and zero-g offset, or the gravity components of a tilted mounting;
//!   defaults 1 and 0, which leave the sum's bits as they are).
//! * The sum is clamped to ±`full_scale_mg` (a ±4 g full-scale setting) and rounded to `f32`.
//!
//! ## Anomalies (label 1, 2, 3; 0 is normal)
//! All anomaly amplitudes scale with V, with `severity` (1.0 = clearly visible) and with a
//! per-episode strength, uniform in [0.75, 1.25] for random episodes and exactly 1 for
//! scheduled or injected ones.
//! 1. **Bearing fault** ([`Kind::Bearing`]): an outer-race defect. Impulses at
//!    BPFO = [`BPFO_ORDER`] × f (3.58 × 25 ≈ 89.5 Hz), amplitude 2V × (0.7..1.3 random), each
//!    ringing a structural resonance at `resonance_hz` (150 Hz, damping ratio 0.06, decay time
//!    constant ≈ 18 ms; a two-pole resonator). Mostly radial: gains x 1, y 0.7, z 0.25. No new
//!    impulse starts in the last three decay time constants of an episode, and the resonator is
//!    reset when the episode ends, so the ringing stays inside the episode.
//! 2. **Imbalance** ([`Kind::Imbalance`]): an extra 1x radial term of 2.5V, in phase with the
//!    normal 1x on each radial axis and in quadrature between x and y (a circular orbit): the
//!    1x amplitude grows ×3.5 on x, ×4.1 on y at severity 1. z unchanged.
//! 3. **Looseness** ([`Kind::Looseness`]): half-order harmonics 0.5x, 1x, 1.5x, ... up to
//!    0.45 fs (the 0.5x sub-harmonic 0.5V, integer orders 0.6V·√(1/k), other half orders
//!    0.25V·√(1/k), axis gains x 1, y 1.2, z 0.35); y's vibration is clipped at +1.5V (the loose
//!    foot hits its stop) and each time it reaches the stop a rattle starts: a burst of
//!    decaying white noise (time constant 4 ms) of 4V × (0.6..1.4 random), gains x 0.8, y 1,
//!    z 0.4.
//!
//! Anomaly terms switch on and off at episode boundaries, so a sample's label is exactly "is it
//! inside an episode", and **samples outside every episode are bit-identical** to those of the
//! same seed with no episodes at all (the noise, speed and drift draw from their own stream,
//! always the same number of draws per sample).
//!
//! ## What it looks like
//! Defaults, 4 × 10⁵ samples (1000 s) each, every sample normal or every sample one kind (random
//! strengths); RMS about the mean per axis in mg, and the energy of x in three bands over
//! 4096 samples relative to normal data of the same seed (test `rms_table`):
//!
//! | data | RMS x | RMS y | RMS z | x 22–28 Hz (1x) | x 120–180 Hz | x 11–14 Hz (0.5x) |
//! |---|---:|---:|---:|---:|---:|---:|
//! | normal | 25.0 | 20.8 | 12.5 | 1 | 1 | 1 |
//! | bearing | 41.6 | 31.2 | 15.0 | 1.0 | 39 | 1.0 |
//! | imbalance | 75.9 | 71.5 | 12.5 | 13.5 | 1.0 | 1.1 |
//! | looseness | 40.0 | 37.2 | 18.6 | 1.6 | 13 | 79 |
//!
//! ## Episodes: where the anomalies are
//! * **Random** (rate `anomaly_rate`): the stream is cut into blocks of `episode_len_samples`
//!   (256 = 0.64 s = four 64-sample windows), block `b` covering samples
//!   `[b·L, (b+1)·L)`. Each block is independently an episode with probability `anomaly_rate`,
//!   of a kind drawn uniformly from the enabled `kinds`. The fraction of anomalous samples is
//!   therefore `anomaly_rate` in expectation, and windows aligned with the blocks (length
//!   dividing L, starting at multiples of their length) are wholly normal or wholly anomalous.
//!   The decision for block b is a hash of (seed, b): [`Simulator::label_at`] answers for any
//!   sample without generating the stream.
//! * **Scheduled** (`SimConfig::schedule`, a `&'static` list fit for a `const` configuration)
//!   and **injected** ([`Simulator::inject`], up to [`INJECT_CAPACITY`] pending) [`Episode`]s:
//!   a kind over `[start, start + len)`, whatever the rate and the enabled kinds. Where they
//!   overlap, the schedule wins over injections (earlier entries first), both over random
//!   blocks.
//!
//! ## Example
//! ```
//! use vae_sim::{Episode, Kind, SimConfig, Simulator};
//! use vae_nostd::window_label;
//! // A firmware's sensor: normal data except a bearing fault in the fourth 64-sample window.
//! const CFG: SimConfig = SimConfig {
//!     anomaly_rate: 0.0,
//!     schedule: &[Episode { start: 3 * 64, len: 64, kind: Kind::Bearing }],
//!     seed: 7,
//!     ..SimConfig::default()
//! };
//! const { assert!(CFG.validate().is_ok()) };
//! let mut sim = Simulator::new(CFG).unwrap();
//! let (mut window, mut labels) = ([0f32; 64 * 3], [0u8; 64]); // Shape: [64][3]
//! for w in 0..5 {
//!     let label = sim.fill_window(&mut window, &mut labels).unwrap();
//!     assert_eq!(label, if w == 3 { Kind::Bearing.label() } else { 0 });
//!     assert_eq!(label, window_label(&labels));
//! }
//! ```

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use core::f64::consts::{FRAC_PI_2, TAU};

use rand_core::SeedableRng;
use rand_pcg::Pcg32;

use vae_nostd::{Error, rng};

/// Label of a normal sample or window.
pub const NORMAL: u8 = 0;
/// The name of each label value (index = label).
pub const LABEL_NAMES: [&str; 4] = ["normal", "bearing", "imbalance", "looseness"];
/// How many injected episodes [`Simulator::inject`] can hold at once.
pub const INJECT_CAPACITY: usize = 8;
/// Outer-race bearing defect frequency (BPFO) per shaft revolution: impulses at 3.58 × f.
pub const BPFO_ORDER: f64 = 3.58;
/// The normal harmonics, per axis (x, y, z) and order (1x, 2x, 3x): (amplitude / `vibration_mg`,
/// phase in radians). Shape: [3 axes][3 orders].
pub const HARMONICS: [[(f64, f64); 3]; 3] = [
    [(1.0, 0.0), (0.4, 0.7), (0.15, 2.1)],
    [(0.8, -FRAC_PI_2), (0.35, -0.9), (0.12, 1.3)],
    [(0.25, 0.3), (0.3, 1.9), (0.1, -0.4)],
];
/// Gravity, mg, per axis: z is vertical.
const GRAVITY_MG: [f64; 3] = [0.0, 0.0, 1000.0];
/// Time constant of the shaft-speed deviation, s.
const SPEED_TAU_S: f64 = 10.0;
/// Time constant of the baseline drift, s.
const BASELINE_TAU_S: f64 = 30.0;
/// Damping ratio of the bearing resonance.
const BEARING_DAMPING: f64 = 0.06;
/// Bearing impulse amplitude / V, and its axis gains.
const BEARING_AMP: f64 = 2.0;
const BEARING_GAIN: [f64; 3] = [1.0, 0.7, 0.25];
/// Extra 1x radial amplitude of an imbalance / V.
const IMBALANCE_AMP: f64 = 2.5;
/// Looseness: axis gains of the half-order harmonics, clip level of y / V, rattle.
const LOOSE_GAIN: [f64; 3] = [1.0, 1.2, 0.35];
const LOOSE_CLIP: f64 = 1.5;
const RATTLE_AMP: f64 = 4.0;
const RATTLE_GAIN: [f64; 3] = [0.8, 1.0, 0.4];
const RATTLE_TAU_S: f64 = 0.004;
/// Highest half order simulated (orders up to 10x).
const MAX_HALF_ORDERS: usize = 20;
/// Harmonics and resonances stay below this fraction of the sampling rate.
const BAND_EDGE: f64 = 0.45;
/// 2⁻⁵³.
const TWO_POW_M53: f64 = 1.0 / 9_007_199_254_740_992.0;
/// √12: a uniform on [−½, ½) times √12 has unit variance.
const SQRT_12: f64 = 3.464_101_615_137_754_6;

/// An anomaly kind; its label is the discriminant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Kind {
    /// Outer-race bearing defect: impulses at 3.58 × shaft ringing a 150 Hz resonance.
    Bearing = 1,
    /// Mass imbalance: 1x radial amplitude ×3–4, x and y in quadrature.
    Imbalance = 2,
    /// Mechanical looseness: half-order harmonics, clipping and rattle.
    Looseness = 3,
}

impl Kind {
    /// Every kind, in label order.
    pub const ALL: [Kind; 3] = [Kind::Bearing, Kind::Imbalance, Kind::Looseness];

    /// The label value (1, 2 or 3).
    pub const fn label(self) -> u8 {
        self as u8
    }

    /// The kind with this label, if any (0 is normal, not a kind).
    pub const fn from_label(label: u8) -> Option<Kind> {
        match label {
            1 => Some(Kind::Bearing),
            2 => Some(Kind::Imbalance),
            3 => Some(Kind::Looseness),
            _ => None,
        }
    }

    /// Lower-case name, as in [`LABEL_NAMES`].
    pub const fn name(self) -> &'static str {
        LABEL_NAMES[self as usize]
    }

    /// Index into [`SimConfig::kinds`].
    const fn index(self) -> usize {
        self as usize - 1
    }
}

/// An anomaly episode: `kind` over samples `[start, start + len)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Episode {
    /// First sample (0 is the first sample the simulator produces).
    pub start: u64,
    /// Length in samples (at least 1).
    pub len: u32,
    /// What happens.
    pub kind: Kind,
}

impl Episode {
    /// True when sample `n` is inside the episode.
    pub const fn contains(&self, n: u64) -> bool {
        n >= self.start && n - self.start < self.len as u64
    }

    const fn check(&self) -> Result<(), Error> {
        if self.len == 0 {
            return Err(Error::InvalidArgument("episode: len must be at least 1"));
        }
        if self.start.checked_add(self.len as u64).is_none() {
            return Err(Error::InvalidArgument("episode: start + len overflows u64"));
        }
        Ok(())
    }
}

/// The simulation's settings; see the [module documentation](self) for the model.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SimConfig {
    /// Output data rate fs, Hz (400).
    pub sample_rate_hz: f32,
    /// Nominal shaft rate, Hz (25). Bearing impulses (3.58 × the fastest shaft rate) must stay
    /// below the Nyquist rate fs/2.
    pub shaft_hz: f32,
    /// Largest relative shaft-rate deviation (0.05 = ±5 %), in [0, 0.5).
    pub shaft_drift: f32,
    /// V: the normal 1x radial amplitude on x, mg (30). Every other amplitude is relative to it.
    pub vibration_mg: f32,
    /// Standard deviation of the white sensor noise, mg (8).
    pub noise_mg: f32,
    /// Standard deviation of the slow per-axis baseline drift, mg (5).
    pub baseline_drift_mg: f32,
    /// Structural resonance excited by bearing impulses, Hz (150); below 0.45 fs.
    pub resonance_hz: f32,
    /// Sensor full scale: outputs are clamped to ±this, mg (4000, the ±4 g setting).
    pub full_scale_mg: f32,
    /// Per-axis sensitivity of the mounted sensor: each axis's sum is multiplied by it
    /// ([1, 1, 1]); finite and positive.
    pub mounting_gain: [f32; 3],
    /// Per-axis offset added after the gain, mg ([0, 0, 0]): zero-g offset, or the change of
    /// the gravity components when the sensor is mounted at another angle; finite.
    pub mounting_offset_mg: [f32; 3],
    /// Probability that a block of `episode_len_samples` is a random episode: the expected
    /// fraction of anomalous samples, in [0, 1] (0.1).
    pub anomaly_rate: f32,
    /// Length of the random-episode blocks, samples (256).
    pub episode_len_samples: u32,
    /// Which kinds random episodes draw from: `kinds[k.label() - 1]` (all three).
    pub kinds: [bool; 3],
    /// Scale of every anomaly amplitude (1.0), in (0, 100].
    pub severity: f32,
    /// Seed of the noise, the speed and drift paths, the start angle and the random episodes.
    pub seed: u64,
    /// Episodes at fixed places, whatever `anomaly_rate` and `kinds` say (none).
    pub schedule: &'static [Episode],
}

impl SimConfig {
    /// The defaults given on each field: 400 Hz, 25 Hz ± 5 %, V = 30 mg, σ = 8 mg, 10 % of the
    /// samples in random 256-sample episodes of all three kinds, severity 1, seed 0. `const`,
    /// unlike [`Default::default`] (which returns the same).
    pub const fn default() -> Self {
        SimConfig {
            sample_rate_hz: 400.0,
            shaft_hz: 25.0,
            shaft_drift: 0.05,
            vibration_mg: 30.0,
            noise_mg: 8.0,
            baseline_drift_mg: 5.0,
            resonance_hz: 150.0,
            full_scale_mg: 4000.0,
            mounting_gain: [1.0; 3],
            mounting_offset_mg: [0.0; 3],
            anomaly_rate: 0.1,
            episode_len_samples: 256,
            kinds: [true; 3],
            severity: 1.0,
            seed: 0,
            schedule: &[],
        }
    }

    /// Checks every field (`const`, so a firmware can check its configuration at compile time).
    pub const fn validate(&self) -> Result<(), Error> {
        let fs = self.sample_rate_hz;
        if !(fs.is_finite() && fs > 0.0) {
            return Err(Error::InvalidConfig(
                "sample_rate_hz must be finite and positive",
            ));
        }
        if !(self.shaft_hz.is_finite() && self.shaft_hz > 0.0) {
            return Err(Error::InvalidConfig("shaft_hz must be finite and positive"));
        }
        if !(self.shaft_drift.is_finite() && self.shaft_drift >= 0.0 && self.shaft_drift < 0.5) {
            return Err(Error::InvalidConfig("shaft_drift must be in [0, 0.5)"));
        }
        let fastest = self.shaft_hz as f64 * (1.0 + self.shaft_drift as f64);
        if BPFO_ORDER * fastest >= 0.5 * fs as f64 {
            return Err(Error::InvalidConfig(
                "shaft_hz too high for sample_rate_hz: 3.58 x the fastest shaft rate must be \
                 below the Nyquist rate",
            ));
        }
        if !(self.resonance_hz.is_finite()
            && self.resonance_hz > 0.0
            && (self.resonance_hz as f64) < BAND_EDGE * fs as f64)
        {
            return Err(Error::InvalidConfig(
                "resonance_hz must be positive and below 0.45 sample_rate_hz",
            ));
        }
        if !(self.vibration_mg.is_finite() && self.vibration_mg >= 0.0) {
            return Err(Error::InvalidConfig("vibration_mg must be finite and >= 0"));
        }
        if !(self.noise_mg.is_finite() && self.noise_mg >= 0.0) {
            return Err(Error::InvalidConfig("noise_mg must be finite and >= 0"));
        }
        if !(self.baseline_drift_mg.is_finite() && self.baseline_drift_mg >= 0.0) {
            return Err(Error::InvalidConfig(
                "baseline_drift_mg must be finite and >= 0",
            ));
        }
        let mut axis = 0;
        while axis < 3 {
            let (g, o) = (self.mounting_gain[axis], self.mounting_offset_mg[axis]);
            if !(g.is_finite() && g > 0.0) {
                return Err(Error::InvalidConfig(
                    "mounting_gain must be finite and positive on every axis",
                ));
            }
            if !o.is_finite() {
                return Err(Error::InvalidConfig(
                    "mounting_offset_mg must be finite on every axis",
                ));
            }
            axis += 1;
        }
        if !(self.full_scale_mg.is_finite() && self.full_scale_mg > 0.0) {
            return Err(Error::InvalidConfig(
                "full_scale_mg must be finite and positive",
            ));
        }
        if !(self.anomaly_rate >= 0.0 && self.anomaly_rate <= 1.0) {
            return Err(Error::InvalidConfig("anomaly_rate must be in [0, 1]"));
        }
        if self.episode_len_samples == 0 {
            return Err(Error::InvalidConfig(
                "episode_len_samples must be at least 1",
            ));
        }
        if self.anomaly_rate > 0.0 && !(self.kinds[0] || self.kinds[1] || self.kinds[2]) {
            return Err(Error::InvalidConfig(
                "anomaly_rate > 0 needs at least one enabled kind",
            ));
        }
        if !(self.severity > 0.0 && self.severity <= 100.0) {
            return Err(Error::InvalidConfig("severity must be in (0, 100]"));
        }
        let mut i = 0;
        while i < self.schedule.len() {
            if self.schedule[i].check().is_err() {
                return Err(Error::InvalidConfig(
                    "schedule: every episode needs len >= 1 and start + len within u64",
                ));
            }
            i += 1;
        }
        Ok(())
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig::default()
    }
}

/// One accelerometer reading.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Sample {
    /// Acceleration along x, y (radial) and z (axial, gravity +1000), mg.
    pub acc_mg: [f32; 3],
    /// 0 = normal, else the [`Kind`] label of the episode the sample is in.
    pub label: u8,
}

/// The streaming simulator: [`Simulator::next_sample`] gives sample 0, 1, 2, ...
///
/// Two random streams, both [`Pcg32`] seeded from `seed`: one for the normal signal (exactly
/// two Box–Muller pairs and three uniforms per sample), one for anomaly details (impulse and
/// rattle amplitudes). Random episodes are a hash of (seed, block), so they cost no draws.
#[derive(Clone, Debug)]
pub struct Simulator {
    cfg: SimConfig,
    /// Index of the next sample.
    n: u64,
    base_rng: Pcg32,
    event_rng: Pcg32,
    /// Key of the random-episode hash.
    block_key: u64,
    rate: f64,
    enabled: [Kind; 3],
    n_enabled: usize,
    /// Injected episodes not yet over, in the order they were injected.
    pending: heapless::Vec<Episode, INJECT_CAPACITY>,
    // Constants derived from the configuration.
    fs: f64,
    shaft_hz: f64,
    drift_max: f64,
    speed_a: f64,
    speed_b: f64,
    baseline_a: f64,
    baseline_b: f64,
    v_mg: f64,
    noise_mg: f64,
    full_scale: f64,
    /// Per-axis mounting gain and offset (mg).
    gain: [f64; 3],
    offset: [f64; 3],
    severity: f64,
    /// Normal harmonics as (sin, cos) coefficients of sin kθ, cos kθ, mg. Shape: [3][3].
    normal: [[(f64, f64); 3]; 3],
    /// Looseness half orders h = 1..=half_orders as (sin, cos) coefficients of sin(hθ/2),
    /// cos(hθ/2), mg at severity 1. Shape: [3][MAX_HALF_ORDERS].
    loose: [[(f64, f64); MAX_HALF_ORDERS]; 3],
    half_orders: usize,
    /// Resonator y[n] = c1 y[n−1] − c2 y[n−2] + gain·impulse.
    res_c1: f64,
    res_c2: f64,
    res_gain: f64,
    bearing_tail: u64,
    rattle_decay: f64,
    rattle_tail: u64,
    // State.
    /// Half the shaft angle, in [0, 2π): θ/2 (the 0.5x sub-harmonic's phase).
    half_angle: f64,
    speed_dev: f64,
    baseline: [f64; 3],
    bearing_cycles: f64,
    res: [f64; 2],
    rattle_env: f64,
    at_stop: bool,
}

impl Simulator {
    /// A simulator at sample 0, after [`SimConfig::validate`].
    pub fn new(cfg: SimConfig) -> Result<Simulator, Error> {
        cfg.validate()?;
        let fs = cfg.sample_rate_hz as f64;
        let shaft_hz = cfg.shaft_hz as f64;
        let drift_max = cfg.shaft_drift as f64;
        let v_mg = cfg.vibration_mg as f64;

        let mut base_rng = Pcg32::seed_from_u64(split_seed(cfg.seed, 1));
        let event_rng = Pcg32::seed_from_u64(split_seed(cfg.seed, 2));
        let block_key = split_seed(cfg.seed, 3);

        let mut enabled = [Kind::Bearing; 3];
        let mut n_enabled = 0;
        for k in Kind::ALL {
            if cfg.kinds[k.index()] {
                enabled[n_enabled] = k;
                n_enabled += 1;
            }
        }

        // Ornstein–Uhlenbeck steps x ← a x + b ξ with unit-variance ξ keep variance std².
        let speed_std = drift_max / 2.5;
        let speed_a = libm::exp(-1.0 / (SPEED_TAU_S * fs));
        let speed_b = speed_std * libm::sqrt(1.0 - speed_a * speed_a);
        let baseline_std = cfg.baseline_drift_mg as f64;
        let baseline_a = libm::exp(-1.0 / (BASELINE_TAU_S * fs));
        let baseline_b = baseline_std * libm::sqrt(1.0 - baseline_a * baseline_a);

        let mut normal = [[(0.0, 0.0); 3]; 3];
        for (axis, row) in normal.iter_mut().enumerate() {
            for (k, c) in row.iter_mut().enumerate() {
                let (amp, phase) = HARMONICS[axis][k];
                let (s, co) = libm::sincos(phase);
                // A sin(kθ + φ) = A cos φ · sin kθ + A sin φ · cos kθ.
                *c = (v_mg * amp * co, v_mg * amp * s);
            }
        }

        // Half orders below the band edge at the fastest shaft rate.
        let max_half = libm::floor(BAND_EDGE * fs / (0.5 * shaft_hz * (1.0 + drift_max)));
        let half_orders = if max_half >= MAX_HALF_ORDERS as f64 {
            MAX_HALF_ORDERS
        } else {
            max_half as usize
        };
        let mut loose = [[(0.0, 0.0); MAX_HALF_ORDERS]; 3];
        for (axis, row) in loose.iter_mut().enumerate() {
            for (i, c) in row.iter_mut().enumerate().take(half_orders) {
                let h = (i + 1) as f64; // order h/2
                let rel = if i == 0 {
                    0.5
                } else if i % 2 == 1 {
                    0.6 * libm::sqrt(2.0 / h)
                } else {
                    0.25 * libm::sqrt(2.0 / h)
                };
                // Fixed, irregular phases (golden angle): part of the machine, not the seed.
                let phase = 2.399_963_229_728_653 * h + 1.7 * axis as f64;
                let (s, co) = libm::sincos(phase);
                let amp = v_mg * LOOSE_GAIN[axis] * rel;
                *c = (amp * co, amp * s);
            }
        }

        let omega_n = TAU * cfg.resonance_hz as f64;
        let r = libm::exp(-BEARING_DAMPING * omega_n / fs);
        let omega_d = omega_n * libm::sqrt(1.0 - BEARING_DAMPING * BEARING_DAMPING) / fs;
        let bearing_tau_s = 1.0 / (BEARING_DAMPING * omega_n);

        let half_angle = 0.5 * TAU * rng::uniform01(&mut base_rng);
        let (e0, e1) = rng::standard_normal_pair(&mut base_rng);
        let (e2, e3) = rng::standard_normal_pair(&mut base_rng);
        let speed_dev = (speed_std * e0).clamp(-drift_max, drift_max);
        let baseline = [baseline_std * e1, baseline_std * e2, baseline_std * e3];

        Ok(Simulator {
            cfg,
            n: 0,
            base_rng,
            event_rng,
            block_key,
            rate: cfg.anomaly_rate as f64,
            enabled,
            n_enabled,
            pending: heapless::Vec::new(),
            fs,
            shaft_hz,
            drift_max,
            speed_a,
            speed_b,
            baseline_a,
            baseline_b,
            v_mg,
            noise_mg: cfg.noise_mg as f64,
            full_scale: cfg.full_scale_mg as f64,
            gain: cfg.mounting_gain.map(f64::from),
            offset: cfg.mounting_offset_mg.map(f64::from),
            severity: cfg.severity as f64,
            normal,
            loose,
            half_orders,
            res_c1: 2.0 * r * libm::cos(omega_d),
            res_c2: r * r,
            res_gain: libm::sin(omega_d),
            bearing_tail: libm::ceil(3.0 * bearing_tau_s * fs) as u64,
            rattle_decay: libm::exp(-1.0 / (RATTLE_TAU_S * fs)),
            rattle_tail: libm::ceil(3.0 * RATTLE_TAU_S * fs) as u64,
            half_angle,
            speed_dev,
            baseline,
            bearing_cycles: 0.0,
            res: [0.0; 2],
            rattle_env: 0.0,
            at_stop: false,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Index of the next sample [`next_sample`](Self::next_sample) will return.
    pub fn position(&self) -> u64 {
        self.n
    }

    /// The shaft rate at the next sample, Hz.
    pub fn shaft_hz_now(&self) -> f64 {
        self.shaft_hz * (1.0 + self.speed_dev)
    }

    /// The label sample `n` has (or had): scheduled, pending injected, then random episodes.
    /// Injections that already ended may have been forgotten.
    pub fn label_at(&self, n: u64) -> u8 {
        self.episode_at(n).map_or(NORMAL, |(k, _)| k.label())
    }

    /// Forces an episode of `episode.kind` over `[start, start + len)`. Samples already produced
    /// are not changed; an episode that started in the past covers its remaining samples.
    ///
    /// Errors: `len` 0 or `start + len` overflowing; no free slot among the
    /// [`INJECT_CAPACITY`] (slots free up when their episode ends).
    pub fn inject(&mut self, episode: Episode) -> Result<(), Error> {
        episode.check()?;
        let now = self.n;
        self.pending.retain(|e| e.start + e.len as u64 > now);
        self.pending
            .push(episode)
            .map_err(|_| Error::InvalidArgument("inject: INJECT_CAPACITY episodes already pending"))
    }

    /// The kind and strength of the episode sample `n` is in, if any.
    fn episode_at(&self, n: u64) -> Option<(Kind, f64)> {
        for e in self.cfg.schedule {
            if e.contains(n) {
                return Some((e.kind, 1.0));
            }
        }
        for e in &self.pending {
            if e.contains(n) {
                return Some((e.kind, 1.0));
            }
        }
        if self.rate <= 0.0 {
            return None;
        }
        let block = n / self.cfg.episode_len_samples as u64;
        let h = hash_index(self.block_key, block);
        if unit(h) >= self.rate {
            return None;
        }
        let h2 = vae_nostd::seed::mix(h ^ 0x5851_f42d_4c95_7f2d);
        let kind = self.enabled[((h2 >> 32) % self.n_enabled as u64) as usize];
        let strength = 0.75 + 0.5 * ((h2 & 0xffff_ffff) as f64 / 4_294_967_296.0);
        Some((kind, strength))
    }

    /// True when sample `n + ahead` is in an episode of `kind`.
    fn continues(&self, ahead: u64, kind: Kind) -> bool {
        matches!(self.episode_at(self.n.saturating_add(ahead)), Some((k, _)) if k == kind)
    }

    /// The next sample.
    pub fn next_sample(&mut self) -> Sample {
        let episode = self.episode_at(self.n);
        let (kind, level) = match episode {
            Some((k, strength)) => (Some(k), self.severity * strength),
            None => (None, 0.0),
        };

        // The normal signal's draws: always 2 Box–Muller pairs and 3 uniforms.
        let (e0, e1) = rng::standard_normal_pair(&mut self.base_rng);
        let (e2, e3) = rng::standard_normal_pair(&mut self.base_rng);
        let u = [
            rng::uniform01(&mut self.base_rng),
            rng::uniform01(&mut self.base_rng),
            rng::uniform01(&mut self.base_rng),
        ];
        let noise = [e0, e1, e2];

        // Harmonics of the half angle ψ = θ/2: sin hψ, cos hψ by the angle-addition recurrence.
        let looseness = kind == Some(Kind::Looseness);
        let top = if looseness { self.half_orders } else { 6 };
        let (s1, c1) = libm::sincos(self.half_angle);
        let (mut s, mut c) = (s1, c1);
        let mut vib = [0.0f64; 3];
        let mut loose = [0.0f64; 3];
        let mut one_x = (0.0, 0.0);
        for h in 1..=top {
            if h % 2 == 0 && h <= 6 {
                if h == 2 {
                    one_x = (s, c);
                }
                for (v, coef) in vib.iter_mut().zip(&self.normal) {
                    let (a, b) = coef[h / 2 - 1];
                    *v += a * s + b * c;
                }
            }
            if looseness {
                for (l, coef) in loose.iter_mut().zip(&self.loose) {
                    let (a, b) = coef[h - 1];
                    *l += a * s + b * c;
                }
            }
            (s, c) = (s * c1 + c * s1, c * c1 - s * s1);
        }

        let mut acc = [0.0f64; 3];
        match kind {
            Some(Kind::Imbalance) => {
                // In phase with the normal 1x of x (φ = 0) and of y (φ = −π/2): circular orbit.
                let extra = IMBALANCE_AMP * self.v_mg * level;
                vib[0] += extra * one_x.0;
                vib[1] -= extra * one_x.1;
            }
            Some(Kind::Looseness) => {
                for (v, l) in vib.iter_mut().zip(loose) {
                    *v += level * l;
                }
                let stop = LOOSE_CLIP * self.v_mg;
                let hits = vib[1] > stop;
                if hits {
                    vib[1] = stop;
                }
                if hits && !self.at_stop && self.continues(self.rattle_tail, Kind::Looseness) {
                    let amp = RATTLE_AMP * self.v_mg * level;
                    let r = 0.6 + 0.8 * rng::uniform01(&mut self.event_rng);
                    self.rattle_env = self.rattle_env.max(amp * r);
                }
                self.at_stop = hits;
                if self.rattle_env > 0.0 {
                    for (a, g) in acc.iter_mut().zip(RATTLE_GAIN) {
                        let w = SQRT_12 * (rng::uniform01(&mut self.event_rng) - 0.5);
                        *a += self.rattle_env * g * w;
                    }
                    self.rattle_env *= self.rattle_decay;
                    if self.rattle_env < 1e-6 * self.v_mg.max(1.0) {
                        self.rattle_env = 0.0;
                    }
                }
            }
            _ => {}
        }
        if kind != Some(Kind::Looseness) {
            self.rattle_env = 0.0;
            self.at_stop = false;
        }

        // Bearing impulses: the defect clock always runs; impulses only inside an episode.
        let f = self.shaft_hz * (1.0 + self.speed_dev);
        self.bearing_cycles += BPFO_ORDER * f / self.fs;
        let mut impulse = 0.0;
        if self.bearing_cycles >= 1.0 {
            self.bearing_cycles -= 1.0;
            if kind == Some(Kind::Bearing) && self.continues(self.bearing_tail, Kind::Bearing) {
                let r = 0.7 + 0.6 * rng::uniform01(&mut self.event_rng);
                impulse = BEARING_AMP * self.v_mg * level * r * self.res_gain;
            }
        }
        if kind == Some(Kind::Bearing) {
            let y = self.res_c1 * self.res[0] - self.res_c2 * self.res[1] + impulse;
            self.res = [y, self.res[0]];
            for (a, g) in acc.iter_mut().zip(BEARING_GAIN) {
                *a += g * y;
            }
        } else {
            self.res = [0.0; 2];
        }

        let mut out = [0f32; 3];
        for axis in 0..3 {
            let mut v = GRAVITY_MG[axis]
                + self.baseline[axis]
                + vib[axis]
                + acc[axis]
                + self.noise_mg * noise[axis];
            if self.gain[axis] != 1.0 || self.offset[axis] != 0.0 {
                v = v * self.gain[axis] + self.offset[axis];
            }
            out[axis] = v.clamp(-self.full_scale, self.full_scale) as f32;
        }

        // Advance the slow states to the next sample.
        self.half_angle += 0.5 * TAU * f / self.fs;
        if self.half_angle >= TAU {
            self.half_angle -= TAU;
        }
        self.speed_dev = (self.speed_a * self.speed_dev + self.speed_b * e3)
            .clamp(-self.drift_max, self.drift_max);
        for (b, u) in self.baseline.iter_mut().zip(u) {
            *b = self.baseline_a * *b + self.baseline_b * SQRT_12 * (u - 0.5);
        }
        self.n += 1;

        Sample {
            acc_mg: out,
            label: kind.map_or(NORMAL, Kind::label),
        }
    }

    /// Fills a window with the next `labels.len()` samples and returns its label
    /// ([`vae_nostd::window_label`]). Shape of `out`: `[labels.len()][3]` (x, y, z interleaved), mg.
    ///
    /// Errors (nothing generated): `out.len() != 3 * labels.len()`.
    pub fn fill_window(&mut self, out: &mut [f32], labels: &mut [u8]) -> Result<u8, Error> {
        if !out.len().is_multiple_of(3) || out.len() / 3 != labels.len() {
            return Err(Error::LengthMismatch {
                what: "fill_window: out (3 values per label)",
                expected: labels.len().saturating_mul(3),
                actual: out.len(),
            });
        }
        for (xyz, label) in out.chunks_exact_mut(3).zip(labels.iter_mut()) {
            let s = self.next_sample();
            xyz.copy_from_slice(&s.acc_mg);
            *label = s.label;
        }
        Ok(vae_nostd::window_label(labels))
    }
}

/// A seed for sub-stream `stream` of `seed` (SplitMix64): independent-looking seeds for, e.g.,
/// the train, validation and test streams of one dataset.
pub const fn split_seed(seed: u64, stream: u64) -> u64 {
    hash_index(seed, stream)
}

/// Element `i` of the SplitMix64 sequence started at `key`.
const fn hash_index(key: u64, i: u64) -> u64 {
    vae_nostd::seed::sequence(key, i)
}

/// The top 53 bits as a uniform on [0, 1).
const fn unit(h: u64) -> f64 {
    (h >> 11) as f64 * TWO_POW_M53
}

#[cfg(test)]
mod tests {
    use super::*;

    const N_FFT: usize = 4096;

    fn run(cfg: SimConfig, n: usize) -> (Vec<[f32; 3]>, Vec<u8>) {
        let mut sim = Simulator::new(cfg).unwrap();
        (0..n)
            .map(|_| {
                let s = sim.next_sample();
                (s.acc_mg, s.label)
            })
            .unzip()
    }

    fn axis(xs: &[[f32; 3]], a: usize) -> Vec<f64> {
        xs.iter().map(|s| s[a] as f64).collect()
    }

    /// Power of the Hann-windowed, mean-removed signal in the DFT bins with lo ≤ f ≤ hi.
    fn band_power(x: &[f64], fs: f64, lo: f64, hi: f64) -> f64 {
        let n = x.len();
        let mean = x.iter().sum::<f64>() / n as f64;
        let w: Vec<f64> = (0..n)
            .map(|i| {
                let h = 0.5 - 0.5 * (TAU * i as f64 / n as f64).cos();
                h * (x[i] - mean)
            })
            .collect();
        let mut p = 0.0;
        for k in 0..=n / 2 {
            let f = k as f64 * fs / n as f64;
            if f < lo || f > hi {
                continue;
            }
            let (mut re, mut im) = (0.0, 0.0);
            for (i, v) in w.iter().enumerate() {
                let ph = TAU * (k * i % n) as f64 / n as f64;
                re += v * ph.cos();
                im -= v * ph.sin();
            }
            p += re * re + im * im;
        }
        p
    }

    fn peak_hz(x: &[f64], fs: f64, lo: f64, hi: f64) -> f64 {
        let n = x.len();
        let (mut best, mut best_f) = (0.0, 0.0);
        for k in 1..n / 2 {
            let f = k as f64 * fs / n as f64;
            if f >= lo && f <= hi {
                let p = band_power(x, fs, f, f);
                if p > best {
                    (best, best_f) = (p, f);
                }
            }
        }
        best_f
    }

    fn always(kind: Kind) -> SimConfig {
        SimConfig {
            anomaly_rate: 1.0,
            kinds: [
                kind == Kind::Bearing,
                kind == Kind::Imbalance,
                kind == Kind::Looseness,
            ],
            ..quiet()
        }
    }

    fn quiet() -> SimConfig {
        SimConfig {
            anomaly_rate: 0.0,
            seed: 11,
            ..SimConfig::default()
        }
    }

    fn rms(x: &[f64]) -> f64 {
        let mean = x.iter().sum::<f64>() / x.len() as f64;
        (x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn same_seed_same_bits_different_seed_different() {
        let cfg = SimConfig {
            seed: 42,
            anomaly_rate: 0.3,
            episode_len_samples: 100,
            ..SimConfig::default()
        };
        let (a, la) = run(cfg, 20_000);
        let (b, lb) = run(cfg, 20_000);
        let bits =
            |v: &[[f32; 3]]| -> Vec<u32> { v.iter().flatten().map(|x| x.to_bits()).collect() };
        assert_eq!(bits(&a), bits(&b));
        assert_eq!(la, lb);
        assert!(la.iter().any(|&l| l != 0));
        let (c, lc) = run(SimConfig { seed: 43, ..cfg }, 20_000);
        let differ = bits(&a)
            .iter()
            .zip(bits(&c))
            .filter(|(x, y)| **x != *y)
            .count();
        assert!(differ > 59_000, "{differ}");
        assert_ne!(la, lc);
    }

    #[test]
    fn golden_hash_of_the_default_stream() {
        // FNV-1a over the f32 bits and labels of the first 4096 samples of the default
        // configuration with seed 1. The firmware checks the same value on the Cortex-M.
        let (x, l) = run(
            SimConfig {
                seed: 1,
                ..SimConfig::default()
            },
            4096,
        );
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for (s, lab) in x.iter().zip(&l) {
            for v in s {
                for b in v.to_bits().to_le_bytes() {
                    h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
                }
            }
            h = (h ^ *lab as u64).wrapping_mul(0x0100_0000_01b3);
        }
        println!("golden: {h:#018x}");
        assert_eq!(h, GOLDEN);
    }
    const GOLDEN: u64 = 0xf048_87e9_97df_bc46;

    #[test]
    fn normal_spectrum_peaks_at_the_shaft_rate() {
        let (x, l) = run(quiet(), N_FFT);
        assert!(l.iter().all(|&l| l == 0));
        // Radial: the 1x dominates. Axial: 1x and 2x stand far above the noise floor.
        for a in 0..2 {
            let f = peak_hz(&axis(&x, a), 400.0, 5.0, 195.0);
            assert!(
                (f - 25.0).abs() <= 0.05 * 25.0 + 0.1,
                "axis {a}: peak at {f} Hz"
            );
        }
        let z = axis(&x, 2);
        let floor = band_power(&z, 400.0, 60.0, 66.0); // same width, noise only
        assert!(band_power(&z, 400.0, 22.0, 28.0) > 5.0 * floor);
        assert!(band_power(&z, 400.0, 47.0, 53.0) > 5.0 * floor);
    }

    #[test]
    fn imbalance_raises_the_1x_energy_more_than_four_times() {
        let (n, _) = run(quiet(), N_FFT);
        let (m, l) = run(always(Kind::Imbalance), N_FFT);
        assert!(l.iter().all(|&l| l == Kind::Imbalance.label()));
        for a in 0..2 {
            let p0 = band_power(&axis(&n, a), 400.0, 22.0, 28.0);
            let p1 = band_power(&axis(&m, a), 400.0, 22.0, 28.0);
            assert!(p1 > 4.0 * p0, "axis {a}: {p1} vs {p0}");
        }
        // Axial unchanged: the base signal is shared bit for bit.
        assert_eq!(axis(&n, 2), axis(&m, 2));
    }

    #[test]
    fn bearing_fault_raises_the_resonance_band() {
        let (n, _) = run(quiet(), N_FFT);
        let (m, _) = run(always(Kind::Bearing), N_FFT);
        for a in 0..2 {
            let p0 = band_power(&axis(&n, a), 400.0, 120.0, 180.0);
            let p1 = band_power(&axis(&m, a), 400.0, 120.0, 180.0);
            assert!(p1 > 4.0 * p0, "axis {a}: {p1} vs {p0}");
            // and leaves the 1x alone
            let q0 = band_power(&axis(&n, a), 400.0, 22.0, 28.0);
            let q1 = band_power(&axis(&m, a), 400.0, 22.0, 28.0);
            assert!(q1 < 1.3 * q0, "axis {a}: {q1} vs {q0}");
        }
    }

    #[test]
    fn looseness_adds_sub_and_higher_harmonics() {
        let (n, _) = run(quiet(), N_FFT);
        let (m, _) = run(always(Kind::Looseness), N_FFT);
        for a in 0..2 {
            let x0 = axis(&n, a);
            let x1 = axis(&m, a);
            let sub = |x: &[f64]| band_power(x, 400.0, 11.0, 14.0);
            let high = |x: &[f64]| band_power(x, 400.0, 90.0, 180.0);
            assert!(sub(&x1) > 10.0 * sub(&x0), "axis {a}");
            assert!(high(&x1) > 4.0 * high(&x0), "axis {a}");
        }
    }

    #[test]
    fn anomalous_fraction_matches_the_rate() {
        let cfg = SimConfig {
            seed: 5,
            anomaly_rate: 0.1,
            episode_len_samples: 64,
            ..SimConfig::default()
        };
        let n = 640_000; // 10 000 blocks: standard error of the fraction 0.003
        let mut sim = Simulator::new(cfg).unwrap();
        let mut counts = [0usize; 4];
        for i in 0..n {
            let s = sim.next_sample();
            assert_eq!(s.label, sim.label_at(i as u64));
            counts[s.label as usize] += 1;
            if i % 64 != 0 {
                // Labels change only at block boundaries.
                assert_eq!(s.label, sim.label_at(i as u64 - 1));
            }
        }
        let frac = (n - counts[0]) as f64 / n as f64;
        assert!((frac - 0.1).abs() < 0.012, "{frac}");
        for k in 1..4 {
            let share = counts[k] as f64 / (n - counts[0]) as f64;
            assert!((share - 1.0 / 3.0).abs() < 0.05, "kind {k}: {share}");
        }
        // Only the enabled kinds.
        let only = SimConfig {
            kinds: [false, true, false],
            ..cfg
        };
        let (_, l) = run(only, 100_000);
        assert!(l.iter().all(|&l| l == 0 || l == 2));
        assert!(l.contains(&2));
    }

    #[test]
    fn schedule_and_injection_change_exactly_their_samples() {
        static SCHEDULE: [Episode; 2] = [
            Episode {
                start: 640,
                len: 128,
                kind: Kind::Bearing,
            },
            Episode {
                start: 2000,
                len: 300,
                kind: Kind::Looseness,
            },
        ];
        let base = quiet();
        let cfg = SimConfig {
            schedule: &SCHEDULE,
            ..base
        };
        let (plain, _) = run(base, 4000);
        let mut sim = Simulator::new(cfg).unwrap();
        sim.inject(Episode {
            start: 3000,
            len: 64,
            kind: Kind::Imbalance,
        })
        .unwrap();
        let mut out = vec![0f32; 4000 * 3];
        let mut labels = vec![0u8; 4000];
        sim.fill_window(&mut out, &mut labels).unwrap();
        let mut changed = [0usize; 4];
        for i in 0..4000 {
            let expected = match i {
                640..768 => 1,
                2000..2300 => 3,
                3000..3064 => 2,
                _ => 0,
            };
            assert_eq!(labels[i], expected, "sample {i}");
            let same = plain[i] == [out[3 * i], out[3 * i + 1], out[3 * i + 2]];
            if expected == 0 {
                assert!(same, "sample {i} is outside every episode");
            } else {
                changed[expected as usize] += usize::from(!same);
            }
        }
        // Inside, (nearly) every sample changes; a bearing episode waits for its first impulse.
        assert!(
            changed[1] >= 120 && changed[2] == 64 && changed[3] == 300,
            "{changed:?}"
        );
        // Capacity, bad episodes.
        for i in 0..INJECT_CAPACITY as u64 {
            sim.inject(Episode {
                start: 10_000 + 100 * i,
                len: 10,
                kind: Kind::Bearing,
            })
            .unwrap();
        }
        assert!(
            sim.inject(Episode {
                start: 20_000,
                len: 10,
                kind: Kind::Bearing
            })
            .is_err()
        );
        assert!(
            sim.inject(Episode {
                start: 1,
                len: 0,
                kind: Kind::Bearing
            })
            .is_err()
        );
        assert!(
            sim.inject(Episode {
                start: u64::MAX,
                len: 2,
                kind: Kind::Bearing
            })
            .is_err()
        );
    }

    #[test]
    fn fill_window_checks_its_shapes() {
        let mut sim = Simulator::new(SimConfig::default()).unwrap();
        let mut out = [0f32; 10];
        assert!(matches!(
            sim.fill_window(&mut out, &mut [0u8; 3]),
            Err(Error::LengthMismatch {
                expected: 9,
                actual: 10,
                ..
            })
        ));
        assert_eq!(sim.position(), 0);
    }

    #[test]
    fn values_are_finite_and_plausible() {
        let cfg = SimConfig {
            seed: 3,
            anomaly_rate: 0.5,
            severity: 3.0,
            full_scale_mg: 1e9,
            ..SimConfig::default()
        };
        let (x, _) = run(cfg, 200_000);
        for s in &x {
            for v in s {
                assert!(v.is_finite());
            }
            assert!(s[0].abs() < 16_000.0 && s[1].abs() < 16_000.0);
            assert!((s[2] - 1000.0).abs() < 16_000.0);
        }
        let (x, _) = run(quiet(), 100_000);
        let mean = |a: usize| axis(&x, a).iter().sum::<f64>() / x.len() as f64;
        assert!(mean(0).abs() < 20.0 && mean(1).abs() < 20.0);
        assert!((mean(2) - 1000.0).abs() < 20.0);
        for a in 0..3 {
            let r = rms(&axis(&x, a));
            assert!(r > 8.0 && r < 60.0, "axis {a}: rms {r}");
        }
        // The default full scale clamps.
        let loud = SimConfig {
            severity: 100.0,
            ..always(Kind::Looseness)
        };
        let (x, _) = run(loud, 10_000);
        assert!(x.iter().flatten().all(|v| v.abs() <= 4000.0));
    }

    #[test]
    fn shaft_rate_stays_within_the_drift() {
        let mut sim = Simulator::new(quiet()).unwrap();
        let (mut lo, mut hi) = (f64::MAX, f64::MIN);
        for _ in 0..400_000 {
            sim.next_sample();
            lo = lo.min(sim.shaft_hz_now());
            hi = hi.max(sim.shaft_hz_now());
        }
        let d = 0.05f32 as f64; // the configured bound, as the simulator sees it
        assert!(
            lo >= 25.0 * (1.0 - d) && hi <= 25.0 * (1.0 + d),
            "{lo}..{hi}"
        );
        assert!(hi - lo > 0.5, "the speed drifts: {lo}..{hi}");
    }

    #[test]
    fn bad_configurations_are_refused() {
        let d = SimConfig::default();
        let bad = [
            SimConfig {
                sample_rate_hz: f32::NAN,
                ..d
            },
            SimConfig {
                sample_rate_hz: 0.0,
                ..d
            },
            SimConfig {
                sample_rate_hz: 100.0,
                ..d
            }, // 3.58 × 26.25 Hz > 50 Hz
            SimConfig {
                shaft_hz: -1.0,
                ..d
            },
            SimConfig {
                shaft_drift: 0.5,
                ..d
            },
            SimConfig {
                resonance_hz: 190.0,
                ..d
            },
            SimConfig {
                noise_mg: f32::INFINITY,
                ..d
            },
            SimConfig {
                anomaly_rate: 1.5,
                ..d
            },
            SimConfig {
                anomaly_rate: f32::NAN,
                ..d
            },
            SimConfig {
                episode_len_samples: 0,
                ..d
            },
            SimConfig {
                kinds: [false; 3],
                ..d
            },
            SimConfig { severity: 0.0, ..d },
            SimConfig {
                full_scale_mg: 0.0,
                ..d
            },
            SimConfig {
                schedule: &[Episode {
                    start: 0,
                    len: 0,
                    kind: Kind::Bearing,
                }],
                ..d
            },
        ];
        for cfg in bad {
            assert!(
                matches!(Simulator::new(cfg), Err(Error::InvalidConfig(_))),
                "{cfg:?}"
            );
        }
        assert!(
            Simulator::new(SimConfig {
                kinds: [false; 3],
                anomaly_rate: 0.0,
                ..d
            })
            .is_ok()
        );
        assert!(
            Simulator::new(SimConfig {
                sample_rate_hz: 200.0,
                resonance_hz: 60.0,
                ..d
            })
            .is_ok()
        );
    }

    /// The mounting acts on the sensor's reading only: with gain and offset on x, y and z keep
    /// their bits and x is gain·x + offset (to f32 rounding); the defaults change nothing;
    /// impossible values are refused.
    #[test]
    fn the_mounting_scales_and_offsets_each_axis() {
        let base = SimConfig {
            seed: 5,
            ..SimConfig::default()
        };
        let mounted = SimConfig {
            mounting_gain: [1.5, 1.0, 1.0],
            mounting_offset_mg: [40.0, 0.0, 0.0],
            ..base
        };
        let (mut a, mut b) = (
            Simulator::new(base).unwrap(),
            Simulator::new(mounted).unwrap(),
        );
        for _ in 0..2000 {
            let (x, y) = (a.next_sample(), b.next_sample());
            assert_eq!(x.label, y.label);
            assert_eq!(x.acc_mg[1].to_bits(), y.acc_mg[1].to_bits());
            assert_eq!(x.acc_mg[2].to_bits(), y.acc_mg[2].to_bits());
            let want = 1.5 * x.acc_mg[0] as f64 + 40.0;
            assert!(
                (y.acc_mg[0] as f64 - want).abs() < 1e-3,
                "{want} vs {}",
                y.acc_mg[0]
            );
        }
        for bad in [
            SimConfig {
                mounting_gain: [1.0, 0.0, 1.0],
                ..base
            },
            SimConfig {
                mounting_offset_mg: [0.0, 0.0, f32::NAN],
                ..base
            },
        ] {
            assert!(bad.validate().is_err());
        }
    }
}
