//! The QEMU application with a corrupt model: the default model file with one bit flipped
//! (made at compile time). It must stop at start-up with a `model rejected: … corrupt …` log
//! line and exit QEMU with failure; `tests/tests/firmware_e2e.rs` checks that it does.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("qemu_bad_model is a Cortex-M program: build it for thumbv7em-none-eabihf");
    std::process::exit(2);
}

#[cfg(target_os = "none")]
mod app {
    use cortex_m_rt::entry;
    use cortex_m_semihosting::debug;
    use defmt_semihosting as _;
    use firmware::app::{App, Buffers};
    use firmware::{Aligned, model, run, scenario};
    use panic_semihosting as _;
    use static_cell::{ConstStaticCell, StaticCell};

    /// The built-in model file (f32, or int8 with the `int8-model` feature).
    #[cfg(not(feature = "int8-model"))]
    const FILE: &[u8; model::MODEL_LEN] = include_bytes!("../../models/default.vaem");
    #[cfg(feature = "int8-model")]
    const FILE: &[u8; model::MODEL_LEN] = include_bytes!("../../models/default-int8.vaem");

    /// The default model with bit 6 of byte 2000 (a parameter) flipped: the CRC no longer matches.
    static CORRUPT: Aligned<[u8; model::MODEL_LEN]> = {
        let mut b = *FILE;
        b[2000] ^= 0x40;
        Aligned(b)
    };

    static BUFFERS: ConstStaticCell<Buffers> = ConstStaticCell::new(Buffers::new());
    static APP: StaticCell<App<'static>> = StaticCell::new();

    #[entry]
    fn main() -> ! {
        let status = match run::start(
            &CORRUPT.0,
            scenario::SETTINGS,
            BUFFERS.take(),
            &APP,
            scenario::SEED,
        ) {
            Ok(_) => {
                defmt::error!("the corrupt model was accepted");
                debug::EXIT_FAILURE
            }
            Err(_) => debug::EXIT_FAILURE,
        };
        debug::exit(status);
        loop {
            cortex_m::asm::wfi();
        }
    }
}
