//! Record on QEMU `mps2-an386`: the simulated accelerometer's raw samples
//! (`firmware::record::QEMU_SIM`, seed 1, no faults) streamed as record frames
//! (`firmware::record`), one defmt log line `rec=[52, 01, …]` per frame over semihosting:
//! `firmware::record::QEMU_SAMPLES` samples, the end frame, a summary line, and success.
//!
//! Run: `cargo qemu-record | defmt-print -e target/thumbv7em-none-eabihf/release/qemu_record
//! | cargo run -p host-trainer --release -- record --from - --out rec.csv` (the host test
//! `tests/tests/firmware_e2e.rs` decodes the log with `defmt-decoder` instead).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "qemu_record is a Cortex-M program: build it for thumbv7em-none-eabihf and run it with `cargo qemu-record`"
    );
    std::process::exit(2);
}

#[cfg(target_os = "none")]
mod app {
    use cortex_m_rt::entry;
    use cortex_m_semihosting::debug;
    use firmware::board::SimBoard;
    use firmware::qemu::exit;
    use firmware::record::{self, Recorder};
    use panic_semihosting as _; // A panic prints to stderr and exits QEMU with failure.
    use static_cell::StaticCell;

    /// The simulated sensor (1.6 KB): in `.bss`, not on the stack.
    static SIM_BOARD: StaticCell<SimBoard> = StaticCell::new();

    #[entry]
    fn main() -> ! {
        let board = match SimBoard::new(record::QEMU_SIM, &[], 0) {
            Ok(b) => SIM_BOARD.init(b),
            Err(e) => {
                defmt::error!("simulator: {}", e);
                exit(debug::EXIT_FAILURE)
            }
        };
        let rate = record::QEMU_SIM.sample_rate_hz as u16;
        let mut rec = Recorder::new(rate);
        let s = record::record(
            board,
            &mut rec,
            Some(record::QEMU_SAMPLES),
            |f| defmt::info!("rec={=[u8]:02x}", f),
            |e| defmt::warn!("sensor: {}", e),
        );
        defmt::info!(
            "record: {=u32} samples at {=u16} Hz in {=u32} frames, {=u32} gaps",
            s.samples,
            rate,
            s.frames,
            s.gaps
        );
        exit(debug::EXIT_SUCCESS)
    }

    firmware::qemu_fault_handlers!("qemu_record");
}
