//! The application on a BBC micro:bit v2 (nRF52833): the onboard LSM303AGR accelerometer over
//! I²C (TWIM0, 400 kHz) at the model's sample rate (400 Hz, normal mode, ±2 g), read through
//! its 32-sample FIFO by the board-independent driver `firmware::sensor` (so no sample is lost
//! while a window is scored, an overrun marks its window invalid, and the sensor is set up
//! again after bus errors); defmt over RTT; the LED matrix shows the state; button A re-calibrates;
//! the scores' random draws are seeded from the hardware RNG.
//!
//! Adaptation (`firmware::adapt`): after the first calibration the application re-centers the
//! input by the calibration windows' mean offset per axis and fine-tunes the decoder output bias
//! on the next 500 windows it judges normal, learns a threshold for the
//! adapted model and, if it fits the machine better than the factory model, switches to it and
//! stores it in the top two flash pages (`firmware::persist`, two CRC-committed slots, through
//! the NVMC). At start-up a stored adaptation for this model file is restored, and the board
//! judges from its first window; without one (or with a torn or foreign record) it starts with
//! the factory model and calibrates. Button A re-calibrates the model in use.
//!
//! LEDs: a square ring = calibrating (the first 200 valid windows, 32 s at 400 Hz), a single
//! centre dot = normal, a cross = anomaly, a horizontal bar = invalid window (a saturated,
//! ≥ 2000 mg, or unreadable sample). The model expects the board mounted like the simulated
//! sensor: z along the shaft (gravity +1000 mg on z), x and y radial.
//!
//! Build the image: `cargo microbit-build` (an alias in `.cargo/config.toml` for `cargo build -p
//! firmware --release --target thumbv7em-none-eabihf --bin microbit`; the ELF is
//! `target/thumbv7em-none-eabihf/release/microbit`). Flash and run it (probe-rs, board on
//! USB): `cargo microbit`, the same with `probe-rs run --chip nRF52833_xxAA` as the runner.
#![cfg_attr(target_os = "none", no_std, no_main)]

/// On the host this program only says how to build and flash the real one.
#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "microbit is a Cortex-M program. Build and flash it (probe-rs, board on USB) with \
         `cargo microbit`; build only: `cargo microbit-build` \
         (= cargo build -p firmware --release --target thumbv7em-none-eabihf --bin microbit)"
    );
    std::process::exit(2);
}

#[cfg(target_os = "none")]
mod app {
    use core::cell::RefCell;

    use cortex_m::interrupt::{Mutex, free};
    use cortex_m_rt::entry;
    // defmt's global logger (RTT) is linked by the library (`firmware` with `microbit`).
    use embedded_hal::digital::InputPin;
    use firmware::app::{App, Buffers, Settings, State};
    use firmware::board::{Board, SensorError};
    use firmware::microbit_flash::{PERSIST_LEN, PERSIST_START};
    use firmware::persist::{Calibration, PersistError, Stored};
    use firmware::sensor::Accelerometer;
    use firmware::{ADAPTED_LEN, DEFAULT_MODEL, MICROBIT_SLOTS, run, stack};
    use microbit::display::nonblocking::{BitImage, Display};
    use microbit::hal::gpio::{Floating, Input, Pin};
    use microbit::hal::nvmc::Nvmc;
    use microbit::hal::twim::{Frequency, Twim};
    use microbit::hal::{Rng, Timer};
    use microbit::pac::{self, NVMC, TIMER0, TIMER1, TWIM0, interrupt};
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

    /// The persisted adaptation's payload, read at start-up (`.bss`).
    static ADAPTED: ConstStaticCell<[u8; ADAPTED_LEN]> = ConstStaticCell::new([0; ADAPTED_LEN]);

    /// The NVMC driver over the persistence region (the top pages of flash, kept out of the
    /// image by the link-time check of `firmware/build.rs`); the adapted state in it for the
    /// model with CRC-32 `model_crc` is restored into `app`, and the outcome logged.
    fn load_adapted(
        nvmc: NVMC,
        model_crc: u32,
        app: &mut App<'_>,
    ) -> (Nvmc<NVMC>, &'static mut [u8; ADAPTED_LEN]) {
        // SAFETY: nrf52833-hal's `Nvmc` takes the flash it manages as a `&'static mut [u8]`,
        // and no safe code can name flash outside every Rust object. The region is the
        // reserved top of flash: page-aligned and inside the nRF52833's 512 KiB
        // (`microbit_flash`, checked at compile time), memory-mapped and readable, and no
        // part of the image (the link fails otherwise: `persist.x`), so nothing else refers
        // to it. This function runs once, from `main`, so the slice is the only reference;
        // writes go through the NVMC only.
        let storage: &'static mut [u8] = unsafe {
            core::slice::from_raw_parts_mut(PERSIST_START as usize as *mut u8, PERSIST_LEN as usize)
        };
        let mut flash = Nvmc::new(nvmc, storage);
        let payload = ADAPTED.take();
        match MICROBIT_SLOTS.load(&mut flash, model_crc, &mut payload[..]) {
            Ok(Some(l)) => match app.restore(&payload[..], &l.calibration) {
                Ok(()) => defmt::info!(
                    "adapted state restored from slot {=u8}, sequence {=u32}: threshold {=f32} ({=u32} calibration windows); judging from the first window",
                    l.slot,
                    l.sequence,
                    l.calibration.threshold,
                    l.calibration.windows
                ),
                Err(e) => defmt::warn!(
                    "adapted state in slot {=u8} refused ({}): factory model",
                    l.slot,
                    e
                ),
            },
            Ok(None) => defmt::info!(
                "no adapted state for model CRC-32 {=u32:#010x} in flash {=u32:#x}..{=u32:#x}: factory model",
                model_crc,
                PERSIST_START,
                PERSIST_START + PERSIST_LEN
            ),
            Err(e) => defmt::warn!("adapted state unreadable ({}): factory model", e),
        }
        (flash, payload)
    }

    /// The I²C bus (TWIM0 on the internal pins), shared by the driver's register accesses.
    static I2C_BUS: StaticCell<RefCell<Twim<TWIM0>>> = StaticCell::new();

    /// Re-initialises TWIM0 before the sensor is set up again after an error.
    fn reset_twim(twim: &mut Twim<TWIM0>) {
        twim.disable();
        twim.enable();
    }

    /// The board: the sensor driver (with its 32-sample queue) lives here, in `.bss`, not on
    /// the stack.
    static BOARD: StaticCell<Microbit> = StaticCell::new();

    struct Microbit {
        /// The board-independent driver (`firmware::sensor`, tested on the host).
        sensor: Accelerometer<'static, Twim<TWIM0>, Timer<TIMER0>>,
        button_a: Pin<Input<Floating>>,
        button_was_down: bool,
        rng: Rng,
        /// The persistence region's driver.
        flash: Nvmc<NVMC>,
        /// The persisted payload's bytes (`ADAPTED`).
        payload: &'static mut [u8; ADAPTED_LEN],
    }

    impl Board for Microbit {
        fn read_sample_mg(&mut self) -> Result<[f32; 3], SensorError> {
            self.sensor.read_sample_mg()
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

        fn store_adaptation(
            &mut self,
            params: &[f32],
            shift: &[f32; 3],
            calibration: &Calibration,
        ) -> Result<Option<Stored>, PersistError> {
            // The payload as little-endian bytes, in the static the start-up load used (its
            // contents are no longer needed: the application holds the parameters).
            for (b, p) in self
                .payload
                .chunks_exact_mut(4)
                .zip(params.iter().chain(shift))
            {
                b.copy_from_slice(&p.to_le_bytes());
            }
            MICROBIT_SLOTS
                .store(
                    &mut self.flash,
                    firmware::model::MODEL_CRC32,
                    calibration,
                    &self.payload[..],
                )
                .map(Some)
        }
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
        let (flash, payload) = load_adapted(board.NVMC, firmware::model::MODEL_CRC32, app);
        let rate = app.geometry().sample_rate_hz;
        let i2c = Twim::new(board.TWIM0, board.i2c_internal.into(), Frequency::K400);
        let bus = I2C_BUS.init(RefCell::new(i2c));
        let timer = Timer::new(board.TIMER0);
        let Ok(mut sensor) = Accelerometer::new(bus, timer, rate, Some(reset_twim)) else {
            defmt::error!("the LSM303AGR has no {=f32} Hz output data rate", rate);
            halt()
        };
        // A sensor that is not there yet is not fatal: every read retries, once per period.
        match sensor.init() {
            Ok(()) => defmt::info!(
                "LSM303AGR: normal mode, {=f32} Hz, +-2 g, FIFO in stream mode; seed {=u64:#x}",
                rate,
                seed
            ),
            Err(e) => defmt::error!(
                "LSM303AGR set-up over I2C failed: {}; retrying on every read",
                e
            ),
        }
        let b = BOARD.init(Microbit {
            sensor,
            button_a: board.buttons.button_a.degrade(),
            button_was_down: false,
            rng,
            flash,
            payload,
        });
        run::run(app, b, None);
        halt()
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
