//! `bench`: training throughput on the reference shapes.

use anyhow::{Result, bail};

use host_trainer::bench;

use super::{progress, threads_or_all};
use crate::BenchArgs;

/// `bench`.
pub fn bench(a: &BenchArgs) -> Result<()> {
    // Issue 12: `--seconds 1e300` panicked (a Duration out of range).
    if !(a.seconds.is_finite() && a.seconds > 0.0 && a.seconds <= 3600.0) {
        bail!(
            "--seconds must be a number of seconds in (0, 3600] (got {})",
            a.seconds
        );
    }
    if a.threads.as_ref().is_some_and(|t| t.contains(&0)) {
        bail!("--threads values must be at least 1");
    }
    let all = threads_or_all(None);
    let threads = a
        .threads
        .clone()
        .unwrap_or_else(|| if all > 1 { vec![1, all] } else { vec![1] });
    let (peak, ghz, fpc) = bench::peak_gflops_per_core();
    if !a.json {
        println!(
            "f32 peak assumed: {peak:.0} GFLOP/s per core ({ghz:.2} GHz nominal × {fpc} flops/cycle)"
        );
        println!(
            "{:<16} {:<18} {:>5} {:>7} {:>12} {:>9} {:>7}",
            "case", "model", "batch", "threads", "samples/s", "GFLOP/s", "% peak"
        );
    }
    let cases: Vec<_> = bench::cases()
        .into_iter()
        .filter(|case| {
            a.cases
                .as_ref()
                .is_none_or(|only| only.iter().any(|c| c == case.name))
        })
        .collect();
    // A counting bar, moved between measurements only: no ticking thread competes with them.
    let pb = progress::bar((cases.len() * threads.len()) as u64, "measuring", a.quiet);
    for case in &cases {
        for &t in &threads {
            pb.set_message(format!(
                "measuring {} on {t} threads ({} s)",
                case.name, a.seconds
            ));
            let r = bench::run_case(case, t, a.seconds)?;
            pb.inc(1);
            let line = if a.json {
                serde_json::to_string(&r)?
            } else {
                format!(
                    "{:<16} {:<18} {:>5} {:>7} {:>12.0} {:>9.1} {:>7.1}",
                    r.case, r.arch, r.batch, r.threads, r.samples_per_s, r.gflops, r.peak_percent
                )
            };
            pb.suspend(|| println!("{line}"));
        }
    }
    pb.finish_and_clear();
    Ok(())
}
