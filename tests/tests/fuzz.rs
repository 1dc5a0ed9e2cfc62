//! Fuzzing in the build (issue 12): a bounded run of every loader's mutation fuzzer
//! (`vae_tests::fuzz`) and the replay of every kept crash input under
//! `tests/fuzz/regressions/<target>/`. The long run is `cargo run --release -p vae-tests
//! --example fuzz` (README, "Reliability").

use std::path::Path;

use vae_tests::fuzz::{self, Target};

/// Executions per target in `cargo test` (a debug build): about ten seconds in all.
const EXECS: u64 = 20_000;

#[test]
fn every_loader_survives_a_bounded_fuzz_run() {
    host_trainer::limits::init(Some("1G")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for t in Target::ALL {
        let r = fuzz::run(t, EXECS, 7, &dir.path().join("scratch"));
        assert_eq!(r.execs, EXECS);
        // The seeds themselves are valid inputs: a fuzzer whose seeds are refused tests
        // nothing but the first check.
        assert!(r.accepted >= 1, "{}: no input accepted", t.name());
        for (input, msg) in &r.crashes {
            failures.push(format!("{}: {} bytes: {msg}", t.name(), input.len()));
        }
    }
    assert!(failures.is_empty(), "crashes:\n{}", failures.join("\n"));
}

#[test]
fn kept_crash_inputs_no_longer_crash() {
    host_trainer::limits::init(Some("1G")).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let scratch = tempfile::tempdir().unwrap();
    let mut n = 0;
    for t in Target::ALL {
        let Ok(entries) = std::fs::read_dir(root.join(t.name())) else {
            continue;
        };
        for e in entries.flatten() {
            let bytes = std::fs::read(e.path()).unwrap();
            let r = fuzz::replay(t, &bytes, &scratch.path().join("scratch"));
            assert!(r.is_ok(), "{}: {}", e.path().display(), r.unwrap_err());
            n += 1;
        }
    }
    assert!(
        n >= 1,
        "no regression inputs found under {}",
        root.display()
    );
}
