//! Linker setup for the Cortex-M programs, and only for them: on the host (`cargo build`,
//! `cargo clippy --workspace`) this does nothing, so the programs link as ordinary std binaries.
//!
//! Each QEMU program gets `memory/qemu.x` (QEMU `mps2-an386`), copied as `memory.x` into a
//! directory that only the QEMU programs' links search. The micro:bit program gets its
//! `memory.x` (nRF52833: FLASH 512K at 0, RAM 128K at 0x2000_0000) from its HAL,
//! `nrf52833-hal`, whose build script puts one on the linker path; a second copy here would
//! be a duplicate. Programs that use a defmt global
//! logger (`defmt_semihosting`, `defmt_rtt`) also get defmt's linker script.

use std::{env, fs, path::PathBuf};

/// Programs that run on the micro:bit; every other program runs on QEMU.
const MICROBIT_BINS: &[&str] = &["microbit"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=memory");
    println!("cargo:rerun-if-changed=src/bin");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let qemu = out.join("qemu");
    fs::create_dir_all(&qemu).expect("create a memory.x directory in OUT_DIR");
    fs::copy("memory/qemu.x", qemu.join("memory.x")).expect("copy memory.x");
    let mut bins: Vec<(String, String)> = fs::read_dir("src/bin")
        .expect("read src/bin")
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path.file_stem()?.to_str()?.to_owned();
            let src = fs::read_to_string(&path).ok()?;
            (path.extension()? == "rs").then_some((name, src))
        })
        .collect();
    bins.sort();
    for (name, src) in &bins {
        if !MICROBIT_BINS.contains(&name.as_str()) {
            // cortex-m-rt's link.x includes memory.x from the linker search path.
            println!("cargo:rustc-link-arg-bin={name}=-L{}", qemu.display());
        }
        if src.contains("defmt_semihosting") || src.contains("defmt_rtt") {
            println!("cargo:rustc-link-arg-bin={name}=-Tdefmt.x");
        }
    }
    println!("cargo:rustc-link-arg-bins=--nmagic");
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
}
