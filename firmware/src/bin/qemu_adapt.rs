//! The domain-shift scenario on QEMU `mps2-an386` (issue 10): a second simulated machine
//! (`firmware::scenario::shift`: the sensor mounted 2° off with 10 % more gain, on a noisier
//! mounting), judged three times over the same stream of 2,400 windows:
//! 1. `factory`: the default model (trained on the default machine), on-device calibration,
//!    no adaptation;
//! 2. `adapted`: the same with the on-device adaptation (`firmware::adapt`): Adam on the
//!    decoder output bias from the windows it judges normal, recalibration, commit;
//! 3. `retrained`: a model trained on the second machine from the start
//!    (`firmware/models/shift-retrained.vaem`), on-device calibration, no adaptation.
//!
//! Every window's line (`w=.. truth=.. verdict score=..`) is logged under a `pass <name>`
//! line; the host test `qemu_adaptation_comes_close_to_retraining_bit_for_bit` in
//! `tests/tests/firmware_e2e.rs` computes ROC AUC and false alarms over the evaluation windows
//! (from `shift::EVAL_FROM`) from them, and replays the three passes on the host with the same
//! application code: the scores and the adapted parameters' CRC must be the same bits.
//! The program itself fails if the adaptation did not commit before the evaluation windows.
//!
//! Run: `cargo qemu-adapt | defmt-print -e target/thumbv7em-none-eabihf/release/qemu_adapt`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "qemu_adapt is a Cortex-M program: build it for thumbv7em-none-eabihf and run it with `cargo qemu-adapt`"
    );
    std::process::exit(2);
}

/// With the int8 built-in model there is no adaptation to show (it trains f32 decoder biases):
/// the program says so and fails.
#[cfg(all(target_os = "none", feature = "int8-model"))]
mod app {
    use cortex_m_rt::entry;
    use panic_semihosting as _;

    #[entry]
    fn main() -> ! {
        cortex_m_semihosting::hprintln!(
            "qemu_adapt needs the f32 default model: build it without the int8-model feature"
        );
        cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
        #[allow(clippy::empty_loop)]
        loop {}
    }
}

#[cfg(all(target_os = "none", not(feature = "int8-model")))]
mod app {
    use cortex_m_rt::entry;
    use cortex_m_semihosting::debug;
    use firmware::adapt::Phase;
    use firmware::app::{App, Buffers, Settings};
    use firmware::board::SimBoard;
    use firmware::scenario::{self, shift};
    use firmware::{Aligned, DEFAULT_MODEL, run};
    use panic_semihosting as _;
    use static_cell::{ConstStaticCell, StaticCell};

    /// The model trained on the second machine (same architecture as the default model).
    static RETRAINED: &Aligned<[u8]> =
        &Aligned(*include_bytes!("../../models/shift-retrained.vaem"));

    /// One set of buffers, reused by the three passes.
    static BUFFERS: ConstStaticCell<Buffers> = ConstStaticCell::new(Buffers::new());
    /// The simulated board of the pass being run (rebuilt for each).
    static BOARD: StaticCell<SimBoard> = StaticCell::new();

    /// One pass: the application on `bytes` with `settings` over the scenario's stream; returns
    /// the adaptation's phase at the end, or `None` if it could not start.
    #[inline(never)]
    fn pass(
        name: &str,
        bytes: &[u8],
        settings: Settings,
        buffers: &mut Buffers,
        board: &mut SimBoard,
    ) -> Option<Phase> {
        defmt::info!("pass {=str}", name);
        let mut app: App<'_> = run::start_in(bytes, settings, buffers, scenario::SEED, Local)
            .ok()?
            .0;
        let s = run::run(&mut app, board, Some(shift::WINDOWS));
        defmt::info!("summary: {}", s);
        Some(app.adapter().phase())
    }

    /// An application held on the stack (`run::start_in` wants something that derefs to it).
    struct Local<'a>(App<'a>);

    impl<'a> core::ops::Deref for Local<'a> {
        type Target = App<'a>;
        fn deref(&self) -> &App<'a> {
            &self.0
        }
    }

    #[inline(never)]
    fn fresh_board(board: &mut SimBoard) -> bool {
        match SimBoard::new(shift::SIM, &[], scenario::SEED) {
            Ok(b) => {
                *board = b;
                true
            }
            Err(e) => {
                defmt::error!("simulator: {}", e);
                false
            }
        }
    }

    #[entry]
    fn main() -> ! {
        let Ok(first) = SimBoard::new(shift::SIM, &[], scenario::SEED) else {
            exit(debug::EXIT_FAILURE)
        };
        let board = BOARD.init(first);
        let buffers = BUFFERS.take();
        let factory = pass("factory", &DEFAULT_MODEL.0, shift::FIXED, buffers, board);
        let adapted = fresh_board(board)
            .then(|| pass("adapted", &DEFAULT_MODEL.0, shift::ADAPTED, buffers, board))
            .flatten();
        let retrained = fresh_board(board)
            .then(|| pass("retrained", &RETRAINED.0, shift::FIXED, buffers, board))
            .flatten();
        let ok = factory == Some(Phase::Off)
            && adapted == Some(Phase::Adapted)
            && retrained == Some(Phase::Off);
        defmt::info!(
            "check: the adaptation {=str}",
            if ok {
                "committed: ok"
            } else {
                "did not commit: FAILED"
            }
        );
        exit(if ok {
            debug::EXIT_SUCCESS
        } else {
            debug::EXIT_FAILURE
        })
    }

    use firmware::qemu::exit;
    firmware::qemu_fault_handlers!("qemu_adapt");
}
