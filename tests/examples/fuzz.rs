//! The long fuzz run (issue 12): every loader on seeded mutations, crashes saved as files.
//!
//! ```sh
//! cargo run --release -p vae-tests --example fuzz -- [--execs N] [--seed S] [--targets a,b] [--crashes DIR]
//! ```
//!
//! `--execs` per target (default 2,000,000; the five targets: modelfile, checkpoint, idx, csv,
//! mat). Each crash (a panic inside a loader) is written to `DIR/<target>-<n>.bin` (default
//! `out/fuzz/crashes`); copy it to `tests/fuzz/regressions/<target>/` to keep it as a
//! regression input (`tests/tests/fuzz.rs` replays those). Exits 1 if anything crashed.
use std::time::Instant;

use vae_tests::fuzz::{self, Target};

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut execs, mut seed, mut targets, mut crashes) = (
        2_000_000u64,
        1u64,
        Target::ALL.to_vec(),
        std::path::PathBuf::from("out/fuzz/crashes"),
    );
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_default();
        match a.as_str() {
            "--execs" => execs = v.parse().expect("--execs N"),
            "--seed" => seed = v.parse().expect("--seed S"),
            "--crashes" => crashes = v.into(),
            "--targets" => {
                targets = v
                    .split(',')
                    .map(|n| {
                        *Target::ALL
                            .iter()
                            .find(|t| t.name() == n)
                            .unwrap_or_else(|| panic!("unknown target {n}"))
                    })
                    .collect()
            }
            _ => panic!("unknown flag {a}; see the file's docs"),
        }
    }
    std::fs::create_dir_all(&crashes).expect("create the crash directory");
    // Loaders that size allocations from headers refuse past this (host_trainer::limits).
    host_trainer::limits::init(Some("1G")).expect("limit");
    // The file-reading loaders read a scratch file rewritten for every input: on a tmpfs when
    // there is one (on this machine's disk it ran at a twentieth of the speed).
    let shm = std::path::Path::new("/dev/shm");
    let scratch = if shm.is_dir() {
        shm.join(format!("vae-fuzz-{}.bin", std::process::id()))
    } else {
        crashes.join("scratch.bin")
    };
    println!("| target | executions | accepted | crashes | executions/s |");
    println!("|---|---:|---:|---:|---:|");
    let (mut total, mut crashed) = (0u64, 0usize);
    for t in targets {
        let t0 = Instant::now();
        let r = fuzz::run(t, execs, seed, &scratch);
        let s = t0.elapsed().as_secs_f64();
        for (i, (input, msg)) in r.crashes.iter().enumerate() {
            let p = crashes.join(format!("{}-{i}.bin", t.name()));
            std::fs::write(&p, input).expect("write a crash input");
            eprintln!("{}: crash {}: {msg}", t.name(), p.display());
        }
        println!(
            "| {} | {} | {} | {} | {:.0} |",
            t.name(),
            r.execs,
            r.accepted,
            r.crashes.len(),
            r.execs as f64 / s
        );
        total += r.execs;
        crashed += r.crashes.len();
    }
    let _ = std::fs::remove_file(&scratch);
    println!("total {total} executions, {crashed} crashes (seed {seed})");
    if crashed > 0 {
        std::process::exit(1);
    }
}
