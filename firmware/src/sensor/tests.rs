//! Host tests of the accelerometer driver: exact I²C transactions with `embedded-hal-mock`
//! (configuration, missing or wrong device, bus errors, recovery, overrun), and a simulated
//! LSM303AGR with a clock and a 32-level stream-mode FIFO (no sample lost while a window is
//! scored for less than the FIFO's slack; a longer stall is detected).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};

use embedded_hal::i2c::{ErrorKind, ErrorType, NoAcknowledgeSource, Operation};
use embedded_hal_mock::eh1::delay::NoopDelay;
use embedded_hal_mock::eh1::i2c::{Mock, Transaction as T};

use super::*;
use crate::DEFAULT_MODEL;
use crate::app::{App, Buffers, Invalid, Model, Settings, Verdict};
use crate::board::{Board, next_sample};

const A: u8 = ACCEL_ADDR;
/// The magnetometer's address (the crate's `init` sets its block data update too).
const M: u8 = 0x1E;
const RATE: f32 = 400.0;

/// What a (re-)initialisation writes, register by register (LSM303AGR datasheet, register map).
fn init_tx() -> Vec<T> {
    vec![
        T::write_read(A, vec![0x0F], vec![0x33]), // WHO_AM_I_A
        T::write(A, vec![0x23, 0x80]),            // CTRL_REG4_A: BDU
        T::write(A, vec![0x1F, 0xC0]),            // TEMP_CFG_REG_A: TEMP_EN
        T::write(M, vec![0x62, 0x10]),            // CFG_REG_C_M: BDU
        T::write(A, vec![0x23, 0x80]),            // CTRL_REG4_A: HR = 0 (normal mode)
        T::write(A, vec![0x20, 0x77]),            // CTRL_REG1_A: ODR 400 Hz, LPen = 0, XYZ on
        T::write(A, vec![0x23, 0x80]),            // CTRL_REG4_A: FS = ±2 g
        T::write(A, vec![0x24, 0x00]),            // CTRL_REG5_A: FIFO off (bypass empties it)
        T::write(A, vec![0x2E, 0x00]),            // FIFO_CTRL_REG_A: bypass
        T::write(A, vec![0x24, 0x40]),            // CTRL_REG5_A: FIFO_EN
        T::write(A, vec![0x2E, 0x80]),            // FIFO_CTRL_REG_A: stream mode
    ]
}

/// FIFO_SRC_REG_A reads `v`.
fn src(v: u8) -> T {
    T::write_read(A, vec![FIFO_SRC_REG_A], vec![v])
}

/// One FIFO level read: OUT_X_L_A..OUT_Z_H_A (auto-increment) holding `mg` (multiples of 4:
/// normal mode at ±2 g, 10 bits left-justified).
fn out(mg: [i32; 3]) -> T {
    let mut bytes = vec![];
    for v in mg {
        bytes.extend_from_slice(&(((v / 4) << 6) as i16).to_le_bytes());
    }
    T::write_read(A, vec![0x28 | 0x80], bytes)
}

/// A delay that adds up the time waited.
#[derive(Clone, Default)]
struct Waited(Rc<Cell<u64>>);

impl DelayNs for Waited {
    fn delay_ns(&mut self, ns: u32) {
        self.0.set(self.0.get() + u64::from(ns));
    }
}

#[test]
fn configures_normal_mode_400_hz_2_g_and_the_fifo_and_reads_mg() {
    let mut tx = init_tx();
    tx.extend([
        src(0x02),
        out([4, -8, 1000]),
        out([-2000, 2044, -4]),
        src(EMPTY),
        src(0x01),
        out([0, 0, 1000]),
    ]);
    let bus = RefCell::new(Mock::new(&tx));
    let mut s = Accelerometer::new(&bus, NoopDelay::new(), RATE, None).unwrap();
    assert_eq!(s.init(), Ok(()));
    assert_eq!(s.read_sample_mg(), Ok([4.0, -8.0, 1000.0]));
    assert_eq!(s.read_sample_mg(), Ok([-2000.0, 2044.0, -4.0]));
    // Empty once: polled again.
    assert_eq!(s.read_sample_mg(), Ok([0.0, 0.0, 1000.0]));
    let st = s.stats();
    assert_eq!((st.samples, st.inits, st.errors, st.overruns), (3, 1, 0, 0));
    assert_eq!(st.max_fill, 2);
    bus.borrow_mut().done();
    assert_eq!(
        Accelerometer::new(&bus, NoopDelay::new(), 333.0, None).err(),
        Some(SensorError::Unsupported)
    );
}

#[test]
fn a_missing_device_is_an_error_retried_once_per_period() {
    let nack = || {
        T::write_read(A, vec![0x0F], vec![0])
            .with_error(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address))
    };
    let bus = RefCell::new(Mock::new(&[nack(), nack(), nack()]));
    let waited = Waited::default();
    let mut s = Accelerometer::new(&bus, waited.clone(), RATE, None).unwrap();
    assert_eq!(s.init(), Err(SensorError::NoDevice));
    assert!(!s.is_up());
    assert_eq!(s.read_sample_mg(), Err(SensorError::NoDevice));
    assert_eq!(s.read_sample_mg(), Err(SensorError::NoDevice));
    // Each retry waited one sample period (2.5 ms) first.
    assert_eq!(waited.0.get(), 2 * 2_500_000);
    assert_eq!((s.stats().errors, s.stats().inits), (3, 0));
    bus.borrow_mut().done();
}

#[test]
fn a_wrong_device_is_refused_before_any_write() {
    let bus = RefCell::new(Mock::new(&[T::write_read(A, vec![0x0F], vec![0x32])]));
    let mut s = Accelerometer::new(&bus, NoopDelay::new(), RATE, None).unwrap();
    assert_eq!(s.init(), Err(SensorError::WrongDevice { id: 0x32 }));
    assert!(!s.is_up());
    bus.borrow_mut().done(); // nothing was written
}

static RESETS: AtomicU32 = AtomicU32::new(0);

#[test]
fn bus_errors_are_errors_and_the_driver_recovers_by_reinitialising() {
    let err = |t: T| t.with_error(ErrorKind::Other);
    let mut tx = init_tx();
    tx.extend([src(0x02), out([4, 4, 1000]), out([8, 8, 1000])]);
    // The FIFO_SRC_REG_A read fails: down.
    tx.push(err(src(0)));
    // Re-initialisation fails half-way (CTRL_REG1_A write): still down.
    tx.extend(init_tx().into_iter().take(5));
    tx.push(err(T::write(A, vec![0x20, 0x77])));
    // Then it succeeds; a sample read fails mid-drain (its queued sibling is dropped).
    tx.extend(init_tx());
    tx.extend([src(0x02), out([12, 12, 1000]), err(out([0, 0, 0]))]);
    // And recovers again.
    tx.extend(init_tx());
    tx.extend([src(0x01), out([16, 16, 1000])]);
    let bus = RefCell::new(Mock::new(&tx));
    let reset: BusReset<Mock> = |_| {
        RESETS.fetch_add(1, Ordering::Relaxed);
    };
    let mut s = Accelerometer::new(&bus, NoopDelay::new(), RATE, Some(reset)).unwrap();
    let got: Vec<_> = (0..6).map(|_| s.read_sample_mg()).collect();
    assert_eq!(
        got,
        [
            Ok([4.0, 4.0, 1000.0]),
            Ok([8.0, 8.0, 1000.0]),
            Err(SensorError::Bus),
            Err(SensorError::Bus),
            Err(SensorError::Bus),
            Ok([16.0, 16.0, 1000.0]),
        ]
    );
    let st = s.stats();
    assert_eq!((st.samples, st.inits, st.errors), (3, 3, 3));
    // The bus was reset before each of the three re-initialisations.
    assert_eq!(RESETS.load(Ordering::Relaxed), 3);
    bus.borrow_mut().done();
}

/// A board around the driver for the tests' main loops.
struct SensorBoard<'b, I2C: I2c, D: DelayNs>(Accelerometer<'b, I2C, D>);

impl<I2C: I2c, D: DelayNs> Board for SensorBoard<'_, I2C, D> {
    fn read_sample_mg(&mut self) -> Result<[f32; 3], SensorError> {
        self.0.read_sample_mg()
    }
    fn show(&mut self, _: crate::app::State) {}
    fn button_a_pressed(&mut self) -> bool {
        false
    }
    fn seed(&mut self) -> u64 {
        1
    }
}

/// A quiet sensor reading: x, y small and varying, z = 1 g.
fn quiet(i: usize) -> [i32; 3] {
    [4 * (i % 5) as i32, -4 * (i % 3) as i32, 1000]
}

#[test]
fn an_overrun_marks_its_window_invalid_and_is_counted() {
    let mut tx = init_tx();
    let mut i = 0;
    let mut levels = |tx: &mut Vec<T>, src_value: u8, n: usize| {
        tx.push(src(src_value));
        for _ in 0..n {
            tx.push(out(quiet(i)));
            i += 1;
        }
    };
    // Window 0: 4 × 16 samples.
    for _ in 0..4 {
        levels(&mut tx, 16, 16);
    }
    // Window 1: 10 samples, then an overrun (the FIFO full: 32 samples), then 21 more.
    levels(&mut tx, 10, 10);
    levels(&mut tx, OVRN_FIFO | 0x1F, 32);
    levels(&mut tx, 22, 22);
    // Window 2: the one left over, a full FIFO without overrun (FSS = 0, EMPTY clear), 31.
    levels(&mut tx, 0x00, 32);
    levels(&mut tx, 31, 31);
    let bus = RefCell::new(Mock::new(&tx));
    let mut board = SensorBoard(Accelerometer::new(&bus, NoopDelay::new(), RATE, None).unwrap());
    let model = Model::load(&DEFAULT_MODEL.0).unwrap();
    let mut buffers = std::boxed::Box::new(Buffers::new());
    let mut app = App::new(model, Settings::DEFAULT, &mut buffers, 1).unwrap();
    let (mut verdicts, mut errors) = (vec![], vec![]);
    while verdicts.len() < 3 {
        let (sample, e) = next_sample(&mut board);
        if let Some(e) = e {
            errors.push((app.samples(), e));
        }
        if let Some(r) = app.push(sample) {
            verdicts.push(r.verdict);
        }
    }
    assert_eq!(errors, [(74, SensorError::Overrun)]);
    assert_eq!(verdicts[0], Verdict::Calibrating, "scored");
    assert_eq!(
        verdicts[1],
        Verdict::Invalid(Invalid::NonFinite {
            sample: 74,
            axis: 2
        })
    );
    assert_eq!(
        verdicts[2],
        Verdict::Calibrating,
        "whole again after the gap"
    );
    let st = board.0.stats();
    assert_eq!((st.overruns, st.errors, st.samples), (1, 0, 64 * 3 - 1));
    assert_eq!(st.max_fill, 32);
    bus.borrow_mut().done();
}

/// A simulated LSM303AGR accelerometer on an I²C bus: a clock (µs, shared with its delay),
/// samples at the configured rate into a 32-level FIFO in stream mode (oldest overwritten and
/// OVRN_FIFO set when full), bus time per byte at 400 kHz. Sample k reads as a pattern that
/// encodes k, so the tests can check continuity.
struct SimSensor {
    now: Rc<Cell<u64>>,
    period_us: u64,
    regs: [u8; 0x80],
    fifo: VecDeque<u64>,
    next: u64,
    next_at: u64,
    overrun: bool,
    /// Samples overwritten unread.
    lost: u64,
}

impl SimSensor {
    fn new(now: Rc<Cell<u64>>) -> Self {
        SimSensor {
            now,
            period_us: 2_500,
            regs: [0; 0x80],
            fifo: VecDeque::new(),
            next: 0,
            next_at: 0,
            overrun: false,
            lost: 0,
        }
    }

    fn streaming(&self) -> bool {
        self.regs[0x20] >> 4 == 0b0111 && self.regs[0x24] & 0x40 != 0 && self.regs[0x2E] == 0x80
    }

    /// Samples due by now.
    fn advance(&mut self) {
        while self.next_at <= self.now.get() {
            if self.streaming() {
                if self.fifo.len() == FIFO_DEPTH {
                    self.fifo.pop_front();
                    self.lost += 1;
                    self.overrun = true;
                }
                self.fifo.push_back(self.next);
            }
            self.next += 1;
            self.next_at += self.period_us;
        }
    }

    fn encode(k: u64) -> [i32; 3] {
        [
            4 * ((k % 256) as i32 - 128),
            4 * (((k / 256) % 256) as i32 - 128),
            1000,
        ]
    }
}

/// The sample index a [`SimSensor`] reading encodes.
fn decode(s: [f32; 3]) -> u64 {
    (s[0] as i64 / 4 + 128) as u64 + 256 * (s[1] as i64 / 4 + 128) as u64
}

impl ErrorType for SimSensor {
    type Error = ErrorKind;
}

impl I2c for SimSensor {
    fn transaction(&mut self, address: u8, ops: &mut [Operation<'_>]) -> Result<(), ErrorKind> {
        // 9 bits per byte at 400 kHz, address byte(s) and start/stop included.
        let bytes: usize = ops
            .iter()
            .map(|o| match o {
                Operation::Write(b) => b.len() + 1,
                Operation::Read(b) => b.len() + 1,
            })
            .sum();
        self.now
            .set(self.now.get() + (bytes as u64 * 9 * 5).div_ceil(2) + 10);
        self.advance();
        if address == M {
            return Ok(());
        }
        if address != A {
            return Err(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address));
        }
        match ops {
            [Operation::Write([reg, value])] => {
                self.regs[usize::from(*reg & 0x7F)] = *value;
                if *reg == 0x2E && *value & 0xC0 == 0 {
                    self.fifo.clear(); // bypass mode resets the FIFO
                    self.overrun = false;
                }
            }
            [Operation::Write([reg]), Operation::Read(buf)] => match (*reg, buf.len()) {
                (0x0F, 1) => buf[0] = 0x33,
                (FIFO_SRC_REG_A, 1) => {
                    let n = self.fifo.len();
                    buf[0] =
                        (u8::from(self.overrun) << 6) | (u8::from(n == 0) << 5) | (n as u8 & FSS);
                }
                (0xA8, 6) => {
                    let k = self
                        .fifo
                        .pop_front()
                        .expect("the driver read an empty FIFO");
                    self.overrun = false;
                    for (i, v) in Self::encode(k).iter().enumerate() {
                        buf[2 * i..2 * i + 2]
                            .copy_from_slice(&(((v / 4) << 6) as i16).to_le_bytes());
                    }
                }
                _ => return Err(ErrorKind::Other),
            },
            _ => return Err(ErrorKind::Other),
        }
        Ok(())
    }
}

/// The simulated sensor's delay: advances its clock.
struct SimDelay(Rc<Cell<u64>>);

impl DelayNs for SimDelay {
    fn delay_ns(&mut self, ns: u32) {
        self.0.set(self.0.get() + u64::from(ns).div_ceil(1000));
    }
}

/// What a main loop saw on the simulated sensor: each sample's index (`None` for a sensor
/// error's NaN marker, with the error), the verdicts, the driver's stats, the samples the
/// sensor lost.
struct Run {
    stream: Vec<Result<u64, SensorError>>,
    verdicts: Vec<Verdict>,
    stats: SensorStats,
    lost: u64,
}

/// The application's main loop on the simulated sensor for `windows` windows, scoring (the
/// real model) taking `stall` sample periods of the sensor's clock each.
fn run_with_stall(stall: u64, windows: usize) -> Run {
    let now = Rc::new(Cell::new(0));
    let bus = RefCell::new(SimSensor::new(now.clone()));
    let mut board =
        SensorBoard(Accelerometer::new(&bus, SimDelay(now.clone()), RATE, None).unwrap());
    board.0.init().unwrap();
    let model = Model::load(&DEFAULT_MODEL.0).unwrap();
    let mut buffers = std::boxed::Box::new(Buffers::new());
    let mut app = App::new(model, Settings::DEFAULT, &mut buffers, 1).unwrap();
    let (mut stream, mut verdicts) = (vec![], vec![]);
    while verdicts.len() < windows {
        let (sample, e) = next_sample(&mut board);
        stream.push(e.map_or_else(|| Ok(decode(sample)), Err));
        if let Some(r) = app.push(sample) {
            verdicts.push(r.verdict);
            now.set(now.get() + stall * 2_500);
        }
    }
    let stats = board.0.stats();
    let lost = bus.borrow().lost;
    Run {
        stream,
        verdicts,
        stats,
        lost,
    }
}

#[test]
fn a_score_longer_than_a_sample_period_loses_no_sample_thanks_to_the_fifo() {
    for stall in [6, 28] {
        let run = run_with_stall(stall, 20);
        assert_eq!(run.lost, 0, "stall {stall}");
        assert_eq!(run.stats.overruns, 0);
        assert_eq!(run.stats.errors, 0);
        // Every sample, consecutive (from the first after the set-up).
        let idx: Vec<u64> = run.stream.iter().map(|s| *s.as_ref().unwrap()).collect();
        assert_eq!(idx.len(), 20 * 64);
        assert!(
            idx.windows(2).all(|w| w[1] == w[0] + 1),
            "stall {stall}: a gap in {idx:?}"
        );
        assert_eq!(run.stats.samples, idx.len() as u64);
        // The FIFO did hold the samples of the stall, and every window was scored.
        assert!(
            u64::from(run.stats.max_fill) >= stall,
            "{}",
            run.stats.max_fill
        );
        assert!(run.verdicts.iter().all(|v| *v == Verdict::Calibrating));
    }
}

#[test]
fn a_stall_beyond_the_fifo_depth_is_detected_not_silent() {
    let run = run_with_stall(40, 10);
    assert!(run.lost > 0);
    // Every gap in the sample indices comes right after an overrun marker, and the marker
    // stands for exactly that gap.
    let mut last = None;
    let (mut gaps, mut lost) = (0, 0);
    for (i, s) in run.stream.iter().enumerate() {
        match *s {
            Ok(k) => {
                if let Some(prev) = last
                    && k != prev + 1
                {
                    assert_eq!(
                        run.stream.get(i.wrapping_sub(1)),
                        Some(&Err(SensorError::Overrun)),
                        "silent gap before sample {k}"
                    );
                    gaps += 1;
                    lost += k - prev - 1;
                }
                last = Some(k);
            }
            Err(e) => assert_eq!(e, SensorError::Overrun),
        }
    }
    assert_eq!(lost, run.lost, "every lost sample is in a reported gap");
    assert_eq!(gaps, run.stats.overruns);
    assert!(run.stats.overruns >= 8, "{}", run.stats.overruns);
    // The windows with a gap are invalid, the first (before any stall) is scored.
    assert_eq!(run.verdicts[0], Verdict::Calibrating);
    let invalid = run
        .verdicts
        .iter()
        .filter(|v| matches!(v, Verdict::Invalid(_)))
        .count();
    assert_eq!(invalid as u32, run.stats.overruns);
}
