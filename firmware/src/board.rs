//! What the application needs from a board ([`Board`]), and the simulated board
//! ([`SimBoard`]): `vae_sim`'s seeded vibration stream with scheduled anomaly episodes
//! and injected sensor faults, for QEMU and for host tests.

use vae_sim::{Episode, SimConfig, Simulator};

use crate::app::State;

/// A sensor read that failed: logged, and the sample counts as non-finite (its windows are
/// flagged invalid; [`next_sample`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum SensorError {
    /// The bus transfer failed.
    Bus,
    /// No new data arrived in time.
    Timeout,
    /// Nothing answers at the sensor's address (the address was not acknowledged).
    NoDevice,
    /// A device answers, but its identity register is not the sensor's.
    WrongDevice {
        /// What the identity register (WHO_AM_I) read.
        id: u8,
    },
    /// The sensor's FIFO overflowed: samples were lost before the next one.
    Overrun,
    /// The sensor cannot run at the model's sample rate.
    Unsupported,
}

/// The next sample for the application from `board`: its reading, or, when the read failed
/// (bus error, timeout, FIFO overrun), one NaN sample in the failed read's place (with the
/// error, to log), so that the window that spans the lost samples is invalid.
pub fn next_sample<B: Board + ?Sized>(board: &mut B) -> ([f32; 3], Option<SensorError>) {
    match board.read_sample_mg() {
        Ok(s) => (s, None),
        Err(e) => ([f32::NAN; 3], Some(e)),
    }
}

/// A board: a 3-axis accelerometer, a way to show the state, button A, a seed.
pub trait Board {
    /// The next sample (x, y, z in mg), waiting for it at the model's sample rate.
    fn read_sample_mg(&mut self) -> Result<[f32; 3], SensorError>;
    /// Shows the state (LEDs).
    fn show(&mut self, state: State);
    /// True once per press of button A (re-calibrate).
    fn button_a_pressed(&mut self) -> bool;
    /// A seed for the sampled scores' random draws (hardware RNG on a real board).
    fn seed(&mut self) -> u64;
    /// The true label of samples `[first, first + len)` (0 normal, else the anomaly kind), when
    /// the board knows it (a simulated one).
    fn truth(&self, _first: u64, _len: usize) -> Option<u8> {
        None
    }
    /// Keeps a committed adaptation across resets: `params` (`[ADAPTED_PARAMS]`), the input
    /// re-centering `shift` and the threshold state, in flash through [`crate::persist`] on a
    /// board that has it (the payload is the two, little-endian f32, in that order). `Ok(None)`
    /// when the board keeps nothing (the default).
    fn store_adaptation(
        &mut self,
        _params: &[f32],
        _shift: &[f32; crate::CHANNELS],
        _calibration: &crate::persist::Calibration,
    ) -> Result<Option<crate::persist::Stored>, crate::persist::PersistError> {
        Ok(None)
    }
}

/// A sensor fault injected at one sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fault {
    /// Sample index.
    pub sample: u64,
    /// Axis 0, 1, 2.
    pub axis: usize,
    /// The value the sensor reports instead (NaN, or a saturated reading).
    pub value_mg: f32,
}

/// The simulated board: samples from [`Simulator`], faults from a fixed list, no LEDs, no
/// button.
pub struct SimBoard {
    sim: Simulator,
    faults: &'static [Fault],
    seed: u64,
    /// The last state shown (for tests).
    pub state: Option<State>,
}

impl SimBoard {
    /// A board on `cfg`'s stream (episodes in `cfg.schedule`), with `faults`.
    pub fn new(
        cfg: SimConfig,
        faults: &'static [Fault],
        seed: u64,
    ) -> Result<Self, vae_nostd::Error> {
        Ok(SimBoard {
            sim: Simulator::new(cfg)?,
            faults,
            seed,
            state: None,
        })
    }

    /// The scheduled episodes.
    pub fn schedule(&self) -> &'static [Episode] {
        self.sim.config().schedule
    }
}

impl Board for SimBoard {
    // Not inlined: the simulator's frame (f64 state, Box–Muller, sin/cos) is on the stack only
    // while it makes a sample, not all through the caller's loop.
    #[inline(never)]
    fn read_sample_mg(&mut self) -> Result<[f32; 3], SensorError> {
        let n = self.sim.position();
        let mut s = self.sim.next_sample().acc_mg;
        for f in self.faults.iter().filter(|f| f.sample == n) {
            if let Some(a) = s.get_mut(f.axis) {
                *a = f.value_mg;
            }
        }
        Ok(s)
    }

    fn show(&mut self, state: State) {
        self.state = Some(state);
    }

    fn button_a_pressed(&mut self) -> bool {
        false
    }

    fn seed(&mut self) -> u64 {
        self.seed
    }

    fn truth(&self, first: u64, len: usize) -> Option<u8> {
        let mut labels = [0u8; crate::D / crate::CHANNELS];
        let labels = labels.get_mut(..len)?;
        for (i, l) in labels.iter_mut().enumerate() {
            *l = self.sim.label_at(first + i as u64);
        }
        Some(vae_nostd::window_label(labels))
    }
}
