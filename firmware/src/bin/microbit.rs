//! The application on a BBC micro:bit v2 (nRF52833): the onboard LSM303AGR accelerometer over
//! I²C (TWIM0, 400 kHz) at the model's sample rate (400 Hz, normal mode, ±2 g), read by polling
//! its data-ready flag; defmt over RTT; the LED matrix shows the state; button A re-calibrates;
//! the scores' random draws are seeded from the hardware RNG.
//!
//! LEDs: a square ring = calibrating (the first 200 valid windows, 32 s at 400 Hz), a single
//! centre dot = normal, a cross = anomaly, a horizontal bar = invalid window (a saturated,
//! ≥ 2000 mg, or unreadable sample). The model expects the board mounted like the simulated
//! sensor: z along the shaft (gravity +1000 mg on z), x and y radial.
//!
//! Build the image: `cargo build -p firmware --release` (build.rs cross-compiles this file for
//! thumbv7em-none-eabihf and prints where the ELF is). Flash and run it (probe-rs, board on
//! USB): `cargo run -p firmware --release`, whose host side is the `main` below.
#![cfg_attr(target_os = "none", no_std, no_main)]

/// On the host this program is the flasher: it runs `probe-rs run --chip nRF52833_xxAA` on the
/// image that build.rs cross-compiled (release builds only), passing any extra arguments on.
#[cfg(not(target_os = "none"))]
fn main() {
    const PROBE_RS: &str = "probe-rs";
    let Some(image) = option_env!("MICROBIT_IMAGE") else {
        eprintln!(
            "this build has no micro:bit image (build.rs makes one in release builds): \
             run `cargo run -p firmware --release`"
        );
        std::process::exit(2);
    };
    eprintln!("flashing {image} with {PROBE_RS} (chip nRF52833_xxAA)");
    let status = std::process::Command::new(PROBE_RS)
        .args(["run", "--chip", "nRF52833_xxAA"])
        .args(std::env::args_os().skip(1))
        .arg(image)
        .status();
    match status {
        Ok(s) => std::process::exit(s.code().unwrap_or(1)),
        Err(e) => {
            eprintln!(
                "cannot run {PROBE_RS} ({e}). Install it (https://probe.rs): \
                 `cargo install probe-rs-tools --locked`, then run again, or flash {image} \
                 with any SWD/CMSIS-DAP tool."
            );
            std::process::exit(2);
        }
    }
}

#[cfg(target_os = "none")]
mod app {
    use core::cell::RefCell;

    use cortex_m::interrupt::{Mutex, free};
    use cortex_m_rt::entry;
    use defmt_rtt as _; // defmt's global logger: RTT.
    use embedded_hal::digital::InputPin;
    use firmware::app::{App, Buffers, Settings, State};
    use firmware::board::{Board, SensorError};
    use firmware::{DEFAULT_MODEL, run, stack};
    use lsm303agr::interface::I2cInterface;
    use lsm303agr::mode::MagOneShot;
    use lsm303agr::{AccelMode, AccelOutputDataRate, AccelScale, Lsm303agr};
    use microbit::display::nonblocking::{BitImage, Display};
    use microbit::hal::gpio::{Floating, Input, Pin};
    use microbit::hal::twim::{Frequency, Twim};
    use microbit::hal::{Rng, Timer};
    use microbit::pac::{self, TIMER1, TWIM0, interrupt};
    use static_cell::{ConstStaticCell, StaticCell};

    /// The application's buffers: scoring workspace, window, calibration top-k (`.bss`).
    static BUFFERS: ConstStaticCell<Buffers> = ConstStaticCell::new(Buffers::new());
    /// The application's state (model view, windower, calibration, RNG): a few hundred bytes.
    static APP: StaticCell<App<'static>> = StaticCell::new();
    /// The LED matrix, refreshed from the TIMER1 interrupt.
    static DISPLAY: Mutex<RefCell<Option<Display<TIMER1>>>> = Mutex::new(RefCell::new(None));

    const RING: BitImage = BitImage::new(&[
        [1, 1, 1, 1, 1],
        [1, 0, 0, 0, 1],
        [1, 0, 0, 0, 1],
        [1, 0, 0, 0, 1],
        [1, 1, 1, 1, 1],
    ]);
    const DOT: BitImage = BitImage::new(&[
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ]);
    const CROSS: BitImage = BitImage::new(&[
        [1, 0, 0, 0, 1],
        [0, 1, 0, 1, 0],
        [0, 0, 1, 0, 0],
        [0, 1, 0, 1, 0],
        [1, 0, 0, 0, 1],
    ]);
    const BAR: BitImage = BitImage::new(&[
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
        [1, 1, 1, 1, 1],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ]);

    /// Polls of the data-ready flag before a read counts as timed out (≫ one 2.5 ms period).
    const READY_POLLS: u32 = 10_000;

    struct Microbit {
        sensor: Lsm303agr<I2cInterface<Twim<TWIM0>>, MagOneShot>,
        button_a: Pin<Input<Floating>>,
        button_was_down: bool,
        rng: Rng,
    }

    impl Board for Microbit {
        fn read_sample_mg(&mut self) -> Result<[f32; 3], SensorError> {
            for _ in 0..READY_POLLS {
                let status = self.sensor.accel_status().map_err(|_| SensorError::Bus)?;
                if status.xyz_new_data() {
                    let a = self.sensor.acceleration().map_err(|_| SensorError::Bus)?;
                    let (x, y, z) = a.xyz_mg();
                    return Ok([x as f32, y as f32, z as f32]);
                }
            }
            Err(SensorError::Timeout)
        }

        fn show(&mut self, state: State) {
            let image = match state {
                State::Calibrating => &RING,
                State::Normal => &DOT,
                State::Anomaly => &CROSS,
                State::Invalid => &BAR,
            };
            free(|cs| {
                if let Some(d) = DISPLAY.borrow(cs).borrow_mut().as_mut() {
                    d.show(image);
                }
            });
        }

        fn button_a_pressed(&mut self) -> bool {
            let down = self.button_a.is_low().unwrap_or(false);
            let pressed = down && !self.button_was_down;
            self.button_was_down = down;
            pressed
        }

        fn seed(&mut self) -> u64 {
            self.rng.random_u64()
        }
    }

    /// Output data rate for the model's sample rate.
    fn odr(hz: f32) -> Option<AccelOutputDataRate> {
        Some(match hz as u32 {
            1 => AccelOutputDataRate::Hz1,
            10 => AccelOutputDataRate::Hz10,
            25 => AccelOutputDataRate::Hz25,
            50 => AccelOutputDataRate::Hz50,
            100 => AccelOutputDataRate::Hz100,
            200 => AccelOutputDataRate::Hz200,
            400 => AccelOutputDataRate::Hz400,
            _ => return None,
        })
    }

    /// Stops with the "invalid" pattern after a fatal start-up error (already logged).
    fn halt() -> ! {
        free(|cs| {
            if let Some(d) = DISPLAY.borrow(cs).borrow_mut().as_mut() {
                d.show(&BAR);
            }
        });
        loop {
            cortex_m::asm::wfi();
        }
    }

    #[entry]
    fn main() -> ! {
        stack::paint();
        let Some(board) = microbit::Board::take() else {
            defmt::error!("peripherals already taken");
            halt()
        };
        let mut timer = Timer::new(board.TIMER0);
        let display = Display::new(board.TIMER1, board.display_pins);
        free(|cs| DISPLAY.borrow(cs).replace(Some(display)));
        // SAFETY: the handler only touches DISPLAY, through the critical-section mutex.
        unsafe { pac::NVIC::unmask(pac::Interrupt::TIMER1) };

        let mut rng = Rng::new(board.RNG);
        let seed = rng.random_u64();
        let Ok(app) = run::start(
            &DEFAULT_MODEL.0,
            Settings::DEFAULT,
            BUFFERS.take(),
            &APP,
            seed,
        ) else {
            halt()
        };
        let rate = app.geometry().sample_rate_hz;
        let Some(odr) = odr(rate) else {
            defmt::error!("the LSM303AGR has no {=f32} Hz output data rate", rate);
            halt()
        };
        let i2c = Twim::new(board.TWIM0, board.i2c_internal.into(), Frequency::K400);
        let mut sensor = Lsm303agr::new_with_i2c(i2c);
        let setup = sensor
            .init()
            .and_then(|()| sensor.set_accel_mode_and_odr(&mut timer, AccelMode::Normal, odr))
            .and_then(|()| sensor.set_accel_scale(AccelScale::G2));
        if setup.is_err() {
            defmt::error!("LSM303AGR set-up over I2C failed");
            halt()
        }
        defmt::info!(
            "LSM303AGR: normal mode, {=f32} Hz, +-2 g; seed {=u64:#x}",
            rate,
            seed
        );
        let mut b = Microbit {
            sensor,
            button_a: board.buttons.button_a.degrade(),
            button_was_down: false,
            rng,
        };
        run::run(app, &mut b, None);
        halt()
    }

    /// A panic (a bug: the application returns `Result`s and has no panicking path on data)
    /// logs where it happened and halts. The message is not formatted: that would link
    /// `core::fmt`, a few KB of flash.
    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo) -> ! {
        cortex_m::interrupt::disable();
        match info.location() {
            Some(l) => defmt::error!("panic at {=str}:{=u32}", l.file(), l.line()),
            None => defmt::error!("panic"),
        }
        // A HardFault: probe-rs reports it and stops.
        cortex_m::asm::udf()
    }

    #[interrupt]
    fn TIMER1() {
        free(|cs| {
            if let Some(d) = DISPLAY.borrow(cs).borrow_mut().as_mut() {
                d.handle_display_event();
            }
        });
    }
}
