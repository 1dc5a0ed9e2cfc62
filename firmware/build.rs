//! Linker setup for the Cortex-M programs; on the host, the micro:bit image.
//!
//! On the host the programs link as ordinary std binaries (stubs, and the flasher of
//! `src/bin/microbit.rs`). A host *release* build with the `microbit` feature (the default:
//! `cargo build -p firmware --release`, `cargo run -p firmware --release`) also cross-compiles
//! the micro:bit image: a nested `cargo build --target thumbv7em-none-eabihf --bin microbit`
//! into a target directory of its own under `OUT_DIR` (a separate directory, so the two builds
//! never wait on each other's lock). Its path goes to the flasher as `MICROBIT_IMAGE` and is
//! printed as a build warning. Stable Cargo has no per-package default target, hence this.
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
        if env::var("PROFILE").as_deref() == Ok("release")
            && env::var_os("CARGO_FEATURE_MICROBIT").is_some()
        {
            build_microbit_image();
        }
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

/// Cross-compiles the micro:bit image (see the module docs) and exports its path.
fn build_microbit_image() {
    const TARGET: &str = "thumbv7em-none-eabihf";
    // Everything the image is built from; Cargo scans directories recursively. The nested
    // build is incremental, so a rerun with nothing changed costs a second.
    for path in [
        "src",
        "models",
        "Cargo.toml",
        "../vae-nostd/src",
        "../vae-nostd/Cargo.toml",
        "../Cargo.toml",
        "../Cargo.lock",
        "../.cargo/config.toml",
    ] {
        println!("cargo:rerun-if-changed={path}");
    }
    println!("cargo:rerun-if-env-changed=DEFMT_LOG");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target_dir = out.join("image");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args([
        "build",
        "--release",
        "-p",
        "firmware",
        "--bin",
        "microbit",
        "--target",
        TARGET,
    ])
    .arg("--target-dir")
    .arg(&target_dir)
    // The host build's flags and wrappers are not the image's (target-cpu=native,
    // clippy-driver): the nested Cargo reads .cargo/config.toml afresh.
    .env_remove("CARGO_ENCODED_RUSTFLAGS")
    .env_remove("RUSTFLAGS")
    .env_remove("RUSTC_WORKSPACE_WRAPPER")
    .env_remove("CARGO_TARGET_DIR")
    .env_remove("CARGO_BUILD_TARGET");
    let result = cmd.output().expect("run cargo for the micro:bit image");
    if !result.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&result.stderr));
        panic!("building the micro:bit image (--target {TARGET} --bin microbit) failed: see above");
    }
    let image = target_dir.join(TARGET).join("release").join("microbit");
    println!("cargo:rustc-env=MICROBIT_IMAGE={}", image.display());
    println!("cargo:warning=micro:bit image: {}", image.display());
}
