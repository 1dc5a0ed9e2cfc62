//! Record on a BBC micro:bit v2: the LSM303AGR's raw samples at 400 Hz (normal mode, ±2 g,
//! through its FIFO: `firmware::sensor`) streamed as record frames (`firmware::record`), one
//! defmt log line `rec=[52, 01, …]` per 16 samples over RTT, until the board is stopped. A
//! FIFO overrun or a failed read becomes a gap frame (and a warning), so the host never
//! splices across lost samples. The LED matrix shows a centre dot while recording.
//!
//! Build: `cargo microbit-record-build` (the ELF is
//! `target/thumbv7em-none-eabihf/release/microbit_record`); flash and stream with probe-rs:
//! `cargo microbit-record`, e.g. piped into `host-trainer record --from - --out rec.csv
//! --samples 24000` (README, "Record your machine").
#![cfg_attr(target_os = "none", no_std, no_main)]

/// On the host this program only says how to build and flash the real one.
#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "microbit_record is a Cortex-M program. Build and flash it (probe-rs, board on USB) with \
         `cargo microbit-record`; build only: `cargo microbit-record-build`"
    );
    std::process::exit(2);
}

#[cfg(target_os = "none")]
mod app {
    use core::cell::RefCell;

    use cortex_m_rt::entry;
    use embedded_hal::digital::OutputPin;
    use firmware::record::{self, Recorder};
    use firmware::sensor::Accelerometer;
    use microbit::hal::Timer;
    use microbit::hal::twim::{Frequency, Twim};
    use microbit::pac::TWIM0;
    use static_cell::StaticCell;

    /// The sensor's rate: the LSM303AGR's fastest in normal mode that the driver runs.
    const RATE_HZ: u16 = 400;

    /// The I²C bus (TWIM0 on the internal pins), shared by the driver's register accesses.
    static I2C_BUS: StaticCell<RefCell<Twim<TWIM0>>> = StaticCell::new();

    /// Re-initialises TWIM0 before the sensor is set up again after an error.
    fn reset_twim(twim: &mut Twim<TWIM0>) {
        twim.disable();
        twim.enable();
    }

    /// The board's half of `firmware::board::Board`: the sensor only.
    struct Sensor(Accelerometer<'static, Twim<TWIM0>, Timer<microbit::pac::TIMER0>>);

    impl firmware::board::Board for Sensor {
        fn read_sample_mg(&mut self) -> Result<[f32; 3], firmware::board::SensorError> {
            self.0.read_sample_mg()
        }
        fn show(&mut self, _: firmware::app::State) {}
        fn button_a_pressed(&mut self) -> bool {
            false
        }
        fn seed(&mut self) -> u64 {
            0
        }
    }

    /// The board's state with the driver and its 32-sample queue, in `.bss`.
    static SENSOR: StaticCell<Sensor> = StaticCell::new();

    fn halt() -> ! {
        loop {
            cortex_m::asm::wfi();
        }
    }

    #[entry]
    fn main() -> ! {
        let Some(board) = microbit::Board::take() else {
            defmt::error!("peripherals already taken");
            halt()
        };
        // A centre dot, statically lit (row 3 high, column 3 low): recording.
        let mut pins = board.display_pins;
        let _ = pins.row3.set_high();
        let _ = pins.col3.set_low();
        let i2c = Twim::new(board.TWIM0, board.i2c_internal.into(), Frequency::K400);
        let bus = I2C_BUS.init(RefCell::new(i2c));
        let timer = Timer::new(board.TIMER0);
        let Ok(mut sensor) = Accelerometer::new(bus, timer, f32::from(RATE_HZ), Some(reset_twim))
        else {
            defmt::error!("the LSM303AGR has no {=u16} Hz output data rate", RATE_HZ);
            halt()
        };
        match sensor.init() {
            Ok(()) => defmt::info!(
                "LSM303AGR: normal mode, {=u16} Hz, +-2 g, FIFO in stream mode; recording",
                RATE_HZ
            ),
            Err(e) => defmt::error!(
                "LSM303AGR set-up over I2C failed: {}; retrying on every read",
                e
            ),
        }
        let s = SENSOR.init(Sensor(sensor));
        let mut rec = Recorder::new(RATE_HZ);
        record::record(
            s,
            &mut rec,
            None,
            |f| defmt::info!("rec={=[u8]:02x}", f),
            |e| defmt::warn!("sensor: {}", e),
        );
        halt()
    }
}
