//! On-target tests: the core compiled for the Cortex-M4F and run in QEMU (`mps2-an386`) gives
//! the same bits as its host build.
//!
//! * `golden_file_matches_host_core`: the cases of `tests/golden/cases.rs`, computed by the host
//!   build of `vae-nostd`, equal `tests/golden/latents.txt` line for line. After a deliberate
//!   change of the core's numerics, regenerate the file with
//!   `VAE_REGEN_GOLDEN=1 cargo test -p vae-tests --test on_target` and commit it.
//! * `qemu_core_tests_pass_and_match_host_bit_for_bit`: builds `firmware`'s `core_tests`
//!   (release, `thumbv7em-none-eabihf`, in its own target directory `target/on-target` so it
//!   does not wait on the outer cargo's lock), runs it in QEMU, and checks that the suite
//!   reports `0 failed` and that every result line it prints equals the host's bit for bit.
//! * `qemu_bench_runs`: the benchmark program runs to its end under `-icount shift=0` (its
//!   numbers are reported, not tested).
//!
//! QEMU (`qemu-system-arm`) is required; `bash .ci/run` installs it. Set `VAE_SKIP_QEMU=1` to
//! skip the two QEMU tests on a machine without it (they then pass without running).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[path = "../golden/cases.rs"]
#[allow(dead_code)]
mod cases;

use cases::{Line, Sink, Value};

const TARGET: &str = "thumbv7em-none-eabihf";

struct Lines(String);

impl Sink for Lines {
    fn emit(&mut self, name: &str, index: usize, v: Value) {
        writeln!(self.0, "{}", Line(name, index, v)).unwrap();
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn golden_path() -> PathBuf {
    workspace().join("tests/golden/latents.txt")
}

/// The host's result lines.
fn host_lines() -> String {
    let mut out = Lines(String::new());
    cases::run(&mut out).expect("the cases run on the host");
    out.0
}

#[test]
fn golden_file_matches_host_core() {
    let host = host_lines();
    let path = golden_path();
    if std::env::var_os("VAE_REGEN_GOLDEN").is_some() {
        std::fs::write(&path, &host).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; generate it with VAE_REGEN_GOLDEN=1 cargo test -p vae-tests --test on_target",
            path.display()
        )
    });
    assert_lines_equal("golden file", &golden, "host", &host);
}

fn assert_lines_equal(what_a: &str, a: &str, what_b: &str, b: &str) {
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    for (i, (x, y)) in la.iter().zip(&lb).enumerate() {
        assert_eq!(
            x,
            y,
            "line {} differs: {what_a} {x:?}, {what_b} {y:?} (after a deliberate numerics change: \
             VAE_REGEN_GOLDEN=1 cargo test -p vae-tests --test on_target)",
            i + 1
        );
    }
    assert_eq!(
        la.len(),
        lb.len(),
        "{what_a} has {} lines, {what_b} {}",
        la.len(),
        lb.len()
    );
}

fn skip_qemu() -> bool {
    if std::env::var_os("VAE_SKIP_QEMU").is_some() {
        eprintln!("VAE_SKIP_QEMU is set: not running QEMU");
        return true;
    }
    false
}

/// One nested cargo at a time (both QEMU tests build in the same target directory).
static BUILD: Mutex<()> = Mutex::new(());

/// Builds one firmware program for the Cortex-M4F and returns its ELF.
fn build_firmware(bin: &str) -> PathBuf {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let ws = workspace();
    let target_dir = ws.join("target/on-target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&ws)
        .args([
            "build",
            "--release",
            "-p",
            "firmware",
            "--bin",
            bin,
            "--target",
            TARGET,
            "--no-default-features",
            "--features",
            "qemu",
        ])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .stdin(Stdio::null())
        .status()
        .expect("run cargo");
    assert!(
        status.success(),
        "cargo build of firmware --bin {bin} failed"
    );
    target_dir.join(TARGET).join("release").join(bin)
}

/// Runs an ELF in QEMU (`extra` arguments added), with a time limit; returns (success, stdout).
fn run_qemu(elf: &Path, extra: &[&str], limit: Duration) -> (bool, String) {
    let mut child = Command::new("qemu-system-arm")
        .args(["-cpu", "cortex-m4", "-machine", "mps2-an386", "-nographic"])
        .args(["-semihosting-config", "enable=on,target=native"])
        .args(extra)
        .arg("-kernel")
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("qemu-system-arm is needed (bash .ci/run installs it); VAE_SKIP_QEMU=1 skips");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).unwrap();
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("{} did not finish in {limit:?}", elf.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.success(), reader.join().unwrap())
}

#[test]
fn qemu_core_tests_pass_and_match_host_bit_for_bit() {
    if skip_qemu() {
        return;
    }
    let elf = build_firmware("core_tests");
    let (ok, out) = run_qemu(&elf, &[], Duration::from_secs(120));
    print!("{out}");
    assert!(
        out.lines().any(|l| l.ends_with(", 0 failed")),
        "core_tests did not report 0 failed"
    );
    assert!(ok, "core_tests exited QEMU with failure");
    // The device prints every case as `case: <line>`.
    let device: String = out
        .lines()
        .filter_map(|l| l.strip_prefix("case: "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_lines_equal("device", &device, "host", &host_lines());
}

#[test]
fn qemu_bench_runs() {
    if skip_qemu() {
        return;
    }
    let elf = build_firmware("bench_encode");
    let (ok, out) = run_qemu(&elf, &["-icount", "shift=0"], Duration::from_secs(120));
    print!("{out}");
    assert!(
        ok && out.contains("bench_encode: ok"),
        "bench_encode failed"
    );
}
