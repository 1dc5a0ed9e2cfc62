//! The application on QEMU `mps2-an386` (Cortex-M4F): the default model, fed by the simulated
//! accelerometer of `firmware::scenario` (seeded, anomaly episodes at known windows, one NaN
//! and one saturated sample), logging with defmt over semihosting.
//!
//! It paints the stack, checks the embedded model (a corrupt or mismatched one stops it with a
//! `model rejected` line and failure), calibrates the threshold on the first 200 windows,
//! judges the rest, logs a line per window with its telemetry frame, the summary and the stack
//! high-water mark, and exits QEMU with success only if every anomaly window was flagged and
//! the false alarms are within `firmware::calibration::allowed_false_alarms`.
//!
//! Run: `cargo qemu-app | defmt-print -e target/thumbv7em-none-eabihf/release/qemu` (or the
//! host test `tests/tests/firmware_e2e.rs`, which decodes the log with `defmt-decoder`).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "qemu is a Cortex-M program: build it for thumbv7em-none-eabihf and run it with `cargo qemu-app`"
    );
    std::process::exit(2);
}

#[cfg(target_os = "none")]
mod app {
    use cortex_m_rt::{ExceptionFrame, entry, exception};
    use cortex_m_semihosting::debug;
    use defmt_semihosting as _; // defmt's global logger: semihosting stdout.
    use firmware::app::{App, Buffers, State};
    use firmware::board::{Board, SensorError, SimBoard};
    use firmware::calibration::allowed_false_alarms;
    use firmware::{DEFAULT_MODEL, run, scenario, stack};
    use panic_semihosting as _; // A panic prints to stderr and exits QEMU with failure.
    use static_cell::{ConstStaticCell, StaticCell};

    /// The application's buffers: scoring workspace, window, calibration top-k (`.bss`).
    static BUFFERS: ConstStaticCell<Buffers> = ConstStaticCell::new(Buffers::new());
    /// The application's state (model view, windower, calibration, RNG): a few hundred bytes.
    static APP: StaticCell<App<'static>> = StaticCell::new();
    /// The simulated sensor: QEMU test scaffolding, not part of the application's RAM (the
    /// footprint test subtracts this symbol's size).
    static SIM_BOARD: StaticCell<SimBoard> = StaticCell::new();

    /// The simulated board, built in its static (not inlined, so its temporaries leave the
    /// stack before the main loop).
    #[inline(never)]
    fn sim_board() -> Option<&'static mut SimBoard> {
        match SimBoard::new(scenario::SIM, scenario::FAULTS, scenario::SEED) {
            Ok(b) => Some(SIM_BOARD.init(b)),
            Err(e) => {
                defmt::error!("simulator: {}", e);
                None
            }
        }
    }

    /// The simulated board with its sensor reads left out of the stack measurement: the
    /// simulator (f64 state, Box–Muller with libm's sin/cos, about 1.7 KB of stack) stands in
    /// for the accelerometer, so its frames are test scaffolding, not the application's.
    struct Unmeasured(&'static mut SimBoard);

    impl Board for Unmeasured {
        fn read_sample_mg(&mut self) -> Result<[f32; 3], SensorError> {
            stack::unmeasured(|| self.0.read_sample_mg())
        }
        #[inline(never)]
        fn show(&mut self, state: State) {
            self.0.show(state)
        }
        fn button_a_pressed(&mut self) -> bool {
            self.0.button_a_pressed()
        }
        fn seed(&mut self) -> u64 {
            self.0.seed()
        }
        // Out of line (as `show`): the simulator's bookkeeping is not part of the main loop's
        // frame.
        #[inline(never)]
        fn truth(&self, first: u64, len: usize) -> Option<u8> {
            self.0.truth(first, len)
        }
    }

    #[entry]
    fn main() -> ! {
        // The simulator first, then the paint: building it takes about 3 KB of stack for its
        // temporaries (`vae_sim::Simulator::new` returns a 1.6 KB value by value), a
        // cost of the test scaffolding, not of the application, so it is left unmeasured.
        let Some(board) = sim_board() else {
            exit(debug::EXIT_FAILURE)
        };
        stack::paint();
        let Ok(app) = run::start(
            &DEFAULT_MODEL.0,
            scenario::SETTINGS,
            BUFFERS.take(),
            &APP,
            scenario::SEED,
        ) else {
            exit(debug::EXIT_FAILURE)
        };
        let s = run::run(app, &mut Unmeasured(board), Some(scenario::WINDOWS));
        check_and_exit(app, &s)
    }

    /// The summary, the verdict of the run against the scenario's truth, the stack high-water
    /// mark; exits QEMU. Out of line: its temporaries are not in `main`'s frame, which is on
    /// the stack while the application runs.
    #[inline(never)]
    fn check_and_exit(app: &App<'_>, s: &firmware::run::Summary) -> ! {
        defmt::info!("summary: {}", s);
        let c = app.calibrator();
        let allowed = allowed_false_alarms(c.rank(), c.windows(), s.true_normal);
        let ok = s.detected == s.true_anomalies
            && s.true_anomalies > 0
            && s.false_alarms <= allowed
            && s.invalid == scenario::FAULTS.len() as u32
            && s.error == 0;
        defmt::info!(
            "check: anomaly windows flagged {=u32}/{=u32}; false alarms {=u32} of {=u32} normal windows (allowed {=u32}); invalid {=u32}: {=str}",
            s.detected,
            s.true_anomalies,
            s.false_alarms,
            s.true_normal,
            allowed,
            s.invalid,
            if ok { "ok" } else { "FAILED" }
        );
        defmt::info!(
            "stack high-water mark: {=usize} bytes (the simulated sensor's calls not counted)",
            stack::high_water()
        );
        exit(if ok {
            debug::EXIT_SUCCESS
        } else {
            debug::EXIT_FAILURE
        })
    }

    use firmware::qemu::exit;

    #[exception]
    unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
        defmt::error!("HardFault at pc {=u32:#010x}", frame.pc());
        exit(debug::EXIT_FAILURE)
    }

    #[exception]
    unsafe fn DefaultHandler(irqn: i16) {
        defmt::error!("unexpected exception or interrupt {=i16}", irqn);
        exit(debug::EXIT_FAILURE)
    }
}
