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
    use firmware::board::SimBoard;
    use firmware::calibration::allowed_false_alarms;
    use firmware::{DEFAULT_MODEL, WORKSPACE_LEN, run, scenario, stack};
    use panic_semihosting as _; // A panic prints to stderr and exits QEMU with failure.
    use static_cell::ConstStaticCell;
    use vae_nostd::Buffer;

    /// Scoring workspace (activations of one window): the only large static.
    static WS: ConstStaticCell<Buffer<f32, WORKSPACE_LEN>> = ConstStaticCell::new(Buffer::new());

    #[entry]
    fn main() -> ! {
        stack::paint();
        let Ok(mut app) = run::start(
            &DEFAULT_MODEL.0,
            scenario::SETTINGS,
            &mut WS.take()[..],
            scenario::SEED,
        ) else {
            exit(debug::EXIT_FAILURE)
        };
        let mut board = match SimBoard::new(scenario::SIM, scenario::FAULTS, scenario::SEED) {
            Ok(b) => b,
            Err(e) => {
                defmt::error!("simulator: {}", e);
                exit(debug::EXIT_FAILURE)
            }
        };
        let s = run::run(&mut app, &mut board, Some(scenario::WINDOWS));
        defmt::info!("summary: {}", s);
        let allowed = allowed_false_alarms(app.calibrator().rate(), s.true_normal);
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
        defmt::info!("stack high-water mark: {=usize} bytes", stack::high_water());
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
