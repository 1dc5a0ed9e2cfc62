//! The LSM303AGR accelerometer behind embedded-hal 1.0: configuration, the 32-sample FIFO
//! drained after every score, overrun detection, and recovery after bus errors.
//!
//! [`Accelerometer`] is generic over any [`embedded_hal::i2c::I2c`] bus and
//! [`embedded_hal::delay::DelayNs`] delay, so the same code runs on the micro:bit (TWIM0 and
//! TIMER0 of `nrf52833-hal`) and in the host tests (`embedded-hal-mock`, and a simulated sensor
//! with a clock). Registers are written by the [`lsm303agr`] crate; the one register it has no
//! reader for, FIFO_SRC_REG_A (0x2F: WTM, OVRN_FIFO, EMPTY, FSS\[4:0\] in the LSM303AGR
//! datasheet's register map), is read with a plain `write_read` on the same bus, shared through
//! `embedded-hal-bus`'s [`RefCellDevice`].
//!
//! ## Configuration
//! Normal mode (10-bit), ±2 g (4 mg per digit), the model's output data rate (400 Hz for the
//! default model), block data update, and the FIFO in **stream mode** (FIFO_CTRL_REG_A FM = 10):
//! the sensor keeps the 32 newest samples, and when it has to overwrite one it sets OVRN_FIFO.
//! The FIFO goes through bypass mode first, which empties it (the datasheet's way to reset it),
//! so every (re-)initialisation starts from an empty FIFO.
//!
//! ## Reading: the FIFO takes the samples that arrive while a window is scored
//! [`Accelerometer::read_sample_mg`] hands out one sample at a time from a queue in RAM
//! (`heapless::Deque`, [`FIFO_DEPTH`] samples). When the queue is empty it reads FIFO_SRC_REG_A
//! and then every sample the FIFO holds, oldest first (each a 6-byte read of OUT_X_L_A..OUT_Z_H_A
//! through [`Lsm303agr::acceleration`], which pops one FIFO level). So after a score, the main
//! loop's next reads drain everything the sensor collected meanwhile, and at 400 Hz no sample
//! is lost as long as a score (plus its log line) takes less than the FIFO's 32 sample periods
//! (80 ms; see the cycle budget below). When the FIFO is empty it polls FIFO_SRC_REG_A every
//! quarter period; nothing for [`TIMEOUT_PERIODS`] periods is [`SensorError::Timeout`].
//!
//! **Overrun is never silent.** OVRN_FIFO set means the sensor overwrote at least one unread
//! sample: the driver counts it ([`SensorStats::overruns`]), queues the 32 samples the FIFO
//! still holds and returns [`SensorError::Overrun`] *before* them. The main loop turns every
//! sensor error into one NaN sample ([`crate::board::next_sample`]), so the window that spans
//! the gap is [`crate::app::Verdict::Invalid`] and logged, and the samples after the gap are
//! whole again.
//!
//! ## Errors and recovery
//! A NACK of the address (no device on the bus) is [`SensorError::NoDevice`], a WHO_AM_I_A
//! (0x0F) other than 0x33 [`SensorError::WrongDevice`], any other bus failure
//! [`SensorError::Bus`]. Never a panic. After any error the driver is *down*: the samples it had
//! queued are dropped (they precede the error's NaN marker), and the next read first waits one
//! sample period, calls the optional bus-reset hook (the micro:bit's disables and re-enables
//! TWIM0), builds a fresh [`Lsm303agr`] (no stale register shadows), checks WHO_AM_I and
//! configures the sensor again. While that fails every read returns the error, at most one per
//! sample period, so the stream keeps its pace with invalid samples until the sensor is back.
//!
//! ## Cycle budget per window (default 192-128-8 model, nRF52833 at 64 MHz)
//! A score is 76,800 multiply-accumulates (encoder 192×128, μ and log σ² 2×128×8, decoder
//! 8×128 and 2×128×192) and 166,680 instructions in all (QEMU `-icount`, README's table), of
//! which the `CortexM4` kernel's inner loop (`firmware/src/kernel_m4.rs`) is 39 instructions per
//! 32 MACs: 5 `VLDM` of 8 registers (x once, four weight rows), 32 `VMLA.F32`, `SUBS`, `BNE`.
//! Cycle counts from the *ARM Cortex-M4 Processor Technical Reference Manual* r0p1 (DDI 0439B):
//! Table 7-1 (FPU instruction timing) `VLDM` 1 + N cycles for N registers, `VMLA.F32` 3,
//! `VADD.F32` 1, `VDIV.F32` 14; Table 3-1 `SUBS` 1, a taken branch 1 + P with P = 1–3
//! (pipeline refill). Per 32 MACs, with every access at zero wait states:
//! 5 × 9 + 32 × 3 + 1 + 4 = 146 cycles (4.6 cycles/MAC).
//!
//! Flash: the weights stay in flash (302 KB) and the code runs from it, and the firmware does
//! not enable the nRF52833's instruction cache (NVMC ICACHECNF). The nRF52833 Product
//! Specification gives flash wait states at 64 MHz without cache; this budget assumes
//! **W = 2 wait states per 32-bit flash access** (not re-checked against the PS in this
//! session; the figure to replace if it differs). Then each weight word costs 1 + W = 3 cycles,
//! a weight `VLDM` 1 + 8 × 3 = 25: 9 + 4 × 25 + 96 + 5 = 210 cycles per 32 MACs; and if no
//! instruction fetch overlapped execution (each of the 39 32-bit instructions another
//! 3-cycle flash access) 210 + 117 = 327 (10.2 cycles/MAC), the worst case. The other ~73 k
//! instructions of a score (tails, biases, tanh, the Gaussian likelihood's exp and logs),
//! counted at 4 cycles each from flash (again worst case): 0.29 M cycles.
//!
//! | per window | cycles | time at 64 MHz |
//! |---|---:|---:|
//! | score, zero wait states | 76,800 × 4.6 + 73 k × 1.5 ≈ 0.46 M | 7.2 ms |
//! | score, W = 2, fetch overlapped | 76,800 × 6.6 + 0.29 M ≈ 0.79 M | 12.4 ms |
//! | score, W = 2, nothing overlapped (worst) | 76,800 × 10.2 + 0.29 M ≈ 1.07 M | 16.8 ms |
//! | log line (defmt, RTT, ~50 B) and LEDs | < 0.05 M | < 1 ms |
//! | reading 64 samples over I²C at 400 kHz (~9 bytes, ≈ 0.25 ms each, busy-waiting) | — | ≈ 16 ms per window, spread over it |
//!
//! Against the window period (64 samples at 400 Hz = 160 ms), scoring takes at most ~11 % of
//! the time; against the FIFO it is the stall that matters: the samples that arrive while a
//! window is scored and logged wait in the FIFO, 17.8 ms / 2.5 ms ≈ 7 of its 32 levels in the
//! worst case, so the slack (31 periods before the next sample could overwrite one, 77.5 ms) is
//! more than 4 times the worst-case stall. The tests (`tests` below) run the driver against a
//! simulated sensor clock: a 6-period stall loses nothing, a 40-period stall is detected.

use core::cell::RefCell;

use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::{ErrorKind, I2c, NoAcknowledgeSource};
use embedded_hal_bus::i2c::RefCellDevice;
use heapless::Deque;
use lsm303agr::interface::I2cInterface;
use lsm303agr::mode::MagOneShot;
use lsm303agr::{AccelMode, AccelOutputDataRate, AccelScale, FifoMode, Lsm303agr};

pub use crate::board::SensorError;

/// Levels of the LSM303AGR accelerometer's FIFO (samples of x, y, z).
pub const FIFO_DEPTH: usize = 32;
/// The accelerometer's 7-bit I²C address (datasheet: SAD 0011001b).
pub const ACCEL_ADDR: u8 = 0x19;
/// WHO_AM_I_A register (0Fh) and the value it must read.
pub const WHO_AM_I_A: (u8, u8) = (0x0F, 0x33);
/// FIFO_SRC_REG_A register (2Fh): WTM, OVRN_FIFO, EMPTY, FSS\[4:0\].
pub const FIFO_SRC_REG_A: u8 = 0x2F;
/// FIFO_SRC_REG_A's OVRN_FIFO bit: an unread sample was overwritten.
const OVRN_FIFO: u8 = 0x40;
/// FIFO_SRC_REG_A's EMPTY bit.
const EMPTY: u8 = 0x20;
/// FIFO_SRC_REG_A's FSS\[4:0\]: unread samples.
const FSS: u8 = 0x1F;
/// Sample periods without a new sample before a read is [`SensorError::Timeout`].
pub const TIMEOUT_PERIODS: u32 = 8;
/// Polls of FIFO_SRC_REG_A per sample period while the FIFO is empty.
const POLLS_PER_PERIOD: u32 = 4;

/// What the driver has seen since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub struct SensorStats {
    /// Samples handed out.
    pub samples: u64,
    /// FIFO overruns (each: at least one sample lost, reported as [`SensorError::Overrun`]).
    pub overruns: u32,
    /// Bus errors (NACKs included) and timeouts.
    pub errors: u32,
    /// Successful (re-)initialisations.
    pub inits: u32,
    /// The most samples found in the FIFO at one drain (how much of its slack was used).
    pub max_fill: u8,
}

/// A bus-reset hook: called with the bus before every re-initialisation after an error.
pub type BusReset<I2C> = fn(&mut I2C);

/// The LSM303AGR accelerometer on a shared I²C bus, read through its FIFO (module docs).
pub struct Accelerometer<'b, I2C: I2c, D: DelayNs> {
    bus: &'b RefCell<I2C>,
    dev: Lsm303agr<I2cInterface<RefCellDevice<'b, I2C>>, MagOneShot>,
    delay: D,
    odr: AccelOutputDataRate,
    period_us: u32,
    reset: Option<BusReset<I2C>>,
    /// Configured and reading; false after an error until re-initialised.
    up: bool,
    /// Tried (and failed, or not yet tried) to initialise: the next attempt waits a period.
    retry: bool,
    /// Samples drained from the FIFO, mg (i16: ±2 g is ±2,048 mg; half the RAM of f32).
    queue: Deque<[i16; 3], FIFO_DEPTH>,
    stats: SensorStats,
}

/// The LSM303AGR's output data rate for `hz`, if it has one.
pub fn output_data_rate(hz: f32) -> Option<AccelOutputDataRate> {
    Some(match hz {
        1.0 => AccelOutputDataRate::Hz1,
        10.0 => AccelOutputDataRate::Hz10,
        25.0 => AccelOutputDataRate::Hz25,
        50.0 => AccelOutputDataRate::Hz50,
        100.0 => AccelOutputDataRate::Hz100,
        200.0 => AccelOutputDataRate::Hz200,
        400.0 => AccelOutputDataRate::Hz400,
        _ => return None,
    })
}

/// A bus error as the application sees it: no device (address NACK) or a failed transfer.
fn bus_error<E: embedded_hal::i2c::Error>(e: &E) -> SensorError {
    match e.kind() {
        ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address | NoAcknowledgeSource::Unknown) => {
            SensorError::NoDevice
        }
        _ => SensorError::Bus,
    }
}

/// An error of the `lsm303agr` crate as the application sees it.
fn driver_error<E: embedded_hal::i2c::Error>(e: lsm303agr::Error<E>) -> SensorError {
    match e {
        lsm303agr::Error::Comm(e) => bus_error(&e),
        lsm303agr::Error::InvalidInputData => SensorError::Unsupported,
    }
}

impl<'b, I2C: I2c, D: DelayNs> Accelerometer<'b, I2C, D> {
    /// A driver for the sensor on `bus` at `rate_hz` (one of the LSM303AGR's rates, else
    /// [`SensorError::Unsupported`]). It does not touch the bus: call [`Self::init`], or let
    /// the first read initialise it. `reset` is called with the bus before each
    /// re-initialisation after an error.
    pub fn new(
        bus: &'b RefCell<I2C>,
        delay: D,
        rate_hz: f32,
        reset: Option<BusReset<I2C>>,
    ) -> Result<Self, SensorError> {
        let odr = output_data_rate(rate_hz).ok_or(SensorError::Unsupported)?;
        Ok(Accelerometer {
            bus,
            dev: Lsm303agr::new_with_i2c(RefCellDevice::new(bus)),
            delay,
            odr,
            period_us: (1e6 / rate_hz) as u32,
            reset,
            up: false,
            retry: false,
            queue: Deque::new(),
            stats: SensorStats::default(),
        })
    }

    /// Checks WHO_AM_I_A and configures the sensor (module docs) with an empty FIFO.
    pub fn init(&mut self) -> Result<(), SensorError> {
        self.up = false;
        self.retry = true;
        self.queue.clear();
        // Fresh register shadows: after an error the crate's copies may not match the sensor.
        self.dev = Lsm303agr::new_with_i2c(RefCellDevice::new(self.bus));
        let id = self
            .dev
            .accelerometer_id()
            .map_err(driver_error)
            .inspect_err(|_| self.stats.errors += 1)?;
        if !id.is_correct() {
            self.stats.errors += 1;
            return Err(SensorError::WrongDevice { id: id.raw() });
        }
        let odr = self.odr;
        let dev = &mut self.dev;
        dev.init()
            .and_then(|()| dev.set_accel_mode_and_odr(&mut self.delay, AccelMode::Normal, odr))
            .and_then(|()| dev.set_accel_scale(AccelScale::G2))
            // Bypass empties the FIFO; then stream mode (threshold unused: 0).
            .and_then(|()| dev.acc_set_fifo_mode(FifoMode::Bypass, 0))
            .and_then(|()| dev.acc_set_fifo_mode(FifoMode::Stream, 0))
            .map_err(driver_error)
            .inspect_err(|_| self.stats.errors += 1)?;
        self.up = true;
        self.retry = false;
        self.stats.inits += 1;
        Ok(())
    }

    /// What the driver has seen so far.
    pub fn stats(&self) -> SensorStats {
        self.stats
    }

    /// True when the sensor is configured and being read.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// The next sample (x, y, z in mg), oldest first: from the queue, else drained from the
    /// sensor's FIFO, waiting for one if it is empty (module docs). An error marks the place
    /// of lost samples; the driver then re-initialises on the next call.
    pub fn read_sample_mg(&mut self) -> Result<[f32; 3], SensorError> {
        if !self.up {
            if self.retry {
                // At most one attempt (and one error) per sample period.
                self.delay.delay_us(self.period_us);
                if let Some(reset) = self.reset {
                    reset(&mut self.bus.borrow_mut());
                }
            }
            self.init()?;
        }
        if let Some(s) = self.queue.pop_front() {
            self.stats.samples += 1;
            return Ok(s.map(f32::from));
        }
        match self.drain() {
            Ok(()) => match self.queue.pop_front() {
                Some(s) => {
                    self.stats.samples += 1;
                    Ok(s.map(f32::from))
                }
                None => self.fail(SensorError::Timeout),
            },
            Err(SensorError::Overrun) => {
                self.stats.overruns += 1;
                Err(SensorError::Overrun)
            }
            Err(e) => self.fail(e),
        }
    }

    /// Counts `e`, drops the queue and goes down (re-initialise on the next read).
    fn fail<T>(&mut self, e: SensorError) -> Result<T, SensorError> {
        self.stats.errors += 1;
        self.queue.clear();
        self.up = false;
        self.retry = true;
        Err(e)
    }

    /// Reads FIFO_SRC_REG_A.
    fn fifo_src(&mut self) -> Result<u8, SensorError> {
        let mut src = [0u8];
        self.bus
            .borrow_mut()
            .write_read(ACCEL_ADDR, &[FIFO_SRC_REG_A], &mut src)
            .map_err(|e| bus_error(&e))?;
        Ok(src[0])
    }

    /// Waits (up to [`TIMEOUT_PERIODS`]) for the FIFO to hold samples, then moves all of them
    /// into the queue; `Err(Overrun)` (with the queue filled) when the sensor overwrote one.
    fn drain(&mut self) -> Result<(), SensorError> {
        let poll_us = (self.period_us / POLLS_PER_PERIOD).max(1);
        let mut src = self.fifo_src()?;
        let mut polls = 0;
        while src & (EMPTY | OVRN_FIFO) == EMPTY {
            if polls >= TIMEOUT_PERIODS * POLLS_PER_PERIOD {
                return Ok(()); // empty queue: the caller's timeout
            }
            polls += 1;
            self.delay.delay_us(poll_us);
            src = self.fifo_src()?;
        }
        let overrun = src & OVRN_FIFO != 0;
        // Five bits count 0–31 unread samples; 32 (full) shows as OVRN_FIFO, or as FSS = 0
        // with EMPTY clear.
        let n = if overrun || src & (EMPTY | FSS) == 0 {
            FIFO_DEPTH
        } else {
            usize::from(src & FSS)
        };
        self.stats.max_fill = self.stats.max_fill.max(n as u8);
        for _ in 0..n {
            let a = self.dev.acceleration().map_err(driver_error)?;
            let (x, y, z) = a.xyz_mg();
            // Within i16 at any full scale (±16 g: 12 bits × 12 mg).
            let mg = [x, y, z].map(|v| v.clamp(i16::MIN.into(), i16::MAX.into()) as i16);
            // Never full: the queue is empty here and n ≤ its capacity.
            let _ = self.queue.push_back(mg);
        }
        if overrun {
            Err(SensorError::Overrun)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests;
