//! Linker arguments for the Cortex-M programs, decided by what is being built — the target and
//! the board feature — and nothing else (the layout of knurling's app-template and embassy's
//! examples: the target and the runner come from the command line and `.cargo/config.toml`,
//! `-Tlink.x`/`-Tdefmt.x` from here).
//!
//! * Host builds (`target_os` is not `none`): nothing; the programs are std stubs.
//! * `target_os = "none"`: every program gets cortex-m-rt's `-Tlink.x` (with `--nmagic`) and
//!   defmt's `-Tdefmt.x`. Every program of a board links that board's defmt global logger,
//!   because the library does (`src/lib.rs`: `defmt-semihosting` with `qemu`, `defmt-rtt`
//!   with `microbit`), so the link arguments need not know which program uses defmt.
//! * `qemu`: `memory/qemu.x` (QEMU `mps2-an386`) is copied as `memory.x` into `OUT_DIR`, which
//!   goes on the linker search path (cortex-m-rt's `link.x` includes `memory.x`).
//! * `microbit`: `memory.x` (nRF52833: FLASH 512K at 0, RAM 128K at 0x2000_0000) comes from
//!   the HAL, `nrf52833-hal`, whose build script puts it on the linker path.
//!
//! The two boards are exclusive on the target (two `memory.x`, two loggers): building with both
//! stops here with a message.

use std::{env, fs, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=memory/qemu.x");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let qemu = env::var_os("CARGO_FEATURE_QEMU").is_some();
    let microbit = env::var_os("CARGO_FEATURE_MICROBIT").is_some();
    assert!(
        !(qemu && microbit),
        "features `qemu` and `microbit` select one board each; for QEMU build with \
         `--no-default-features --features qemu`"
    );
    if qemu {
        let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
        fs::copy("memory/qemu.x", out.join("memory.x")).expect("copy memory/qemu.x to OUT_DIR");
        println!("cargo:rustc-link-search={}", out.display());
    }
    println!("cargo:rustc-link-arg-bins=--nmagic");
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    if qemu || microbit {
        println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
    }
}
