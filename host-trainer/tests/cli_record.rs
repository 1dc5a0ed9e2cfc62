//! `record` end to end on the host: a record stream made by the firmware's own encoder
//! (`firmware::record::Recorder`) from the simulated sensor is decoded into a CSV that `train`
//! accepts with the recorded rate; a stream with a corrupt frame is refused unless
//! `--allow-gaps`, which writes a segment column that `train` reads with `group=segment`.
//! (The QEMU program's own stream is checked in `tests/tests/firmware_e2e.rs`.)

use std::fs;
use std::path::Path;

use firmware::record::Recorder;
use host_trainer::checkpoint::Checkpoint;
use tempfile::TempDir;

mod common;
use common::{run, text};

/// A log as the record program prints it: a start line, `rec=[..]` frames, a summary line.
fn log(samples: u32) -> Vec<String> {
    let mut sim = vae_sim::Simulator::new(vae_sim::SimConfig {
        anomaly_rate: 0.0,
        seed: 7,
        ..vae_sim::SimConfig::default()
    })
    .unwrap();
    let mut rec = Recorder::new(400);
    let mut lines = vec!["INFO  (host) recording".to_string()];
    let mut put = |f: &firmware::record::FrameBuf| {
        let hex: Vec<String> = f.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        lines.push(format!("INFO  rec=[{}]", hex.join(", ")));
    };
    for _ in 0..samples {
        if let Some(f) = rec.push(sim.next_sample().acc_mg) {
            put(&f);
        }
    }
    let (p, e) = rec.finish();
    p.iter().chain([&e]).for_each(&mut put);
    lines.push("INFO  record: done".into());
    lines
}

fn train(dir: &Path, spec: &str, out: &str) -> Checkpoint {
    let o = run(
        dir,
        &[
            "train", "--data", spec, "--hidden", "8", "--latent", "2", "--steps", "20", "--out",
            out,
        ],
    );
    assert!(o.status.success(), "train {spec}: {}", text(&o.stderr));
    Checkpoint::load(&dir.join(out).join("checkpoint.safetensors")).unwrap()
}

#[test]
fn recorded_csv_trains_at_the_recorded_rate() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    fs::write(d.join("rec.log"), log(64 * 40).join("\n")).unwrap();
    let o = run(d, &["record", "--from", "rec.log", "--out", "rec.csv"]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(
        out.contains("2560 at 400 Hz (6.400 s) in 1 segment") && out.contains("0 corrupt"),
        "{out}"
    );
    let csv = fs::read_to_string(d.join("rec.csv")).unwrap();
    assert!(csv.starts_with("t,x,y,z\n0,"), "{}", &csv[..60]);
    assert_eq!(csv.lines().count(), 2561);
    // The rate from the timestamps alone, and as the brief's command gives it.
    for spec in ["csv:rec.csv?window=64", "csv:rec.csv?window=64&rate=400"] {
        let ck = train(d, spec, "run");
        let w = ck.window.expect("window geometry");
        assert_eq!(
            (w.len, w.channels, w.sample_rate_hz),
            (64, 3, 400.0),
            "{spec}"
        );
    }
}

#[test]
fn a_corrupt_frame_is_refused_or_written_as_a_segment_boundary() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let mut lines = log(64 * 40);
    // Frame 10 (samples 160..176; line 0 is the start line): one hex digit of its CRC changed.
    let l = &mut lines[11];
    let pos = l.len() - 2;
    let c = if &l[pos..pos + 1] == "0" { "1" } else { "0" };
    l.replace_range(pos..pos + 1, c);
    fs::write(d.join("bad.log"), lines.join("\n")).unwrap();
    let o = run(d, &["record", "--from", "bad.log", "--out", "bad.csv"]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains("1 corrupt") && out.contains("1 dropped (16 samples missing)"),
        "{out}"
    );
    assert!(err.contains("--allow-gaps"), "{err}");
    assert!(!d.join("bad.csv").exists(), "nothing written");

    let o = run(
        d,
        &[
            "record",
            "--from",
            "bad.log",
            "--out",
            "bad.csv",
            "--allow-gaps",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let csv = fs::read_to_string(d.join("bad.csv")).unwrap();
    assert!(csv.starts_with("t,segment,x,y,z\n0,s0,"));
    assert_eq!(csv.lines().count(), 1 + 64 * 40 - 16);
    assert!(
        csv.contains("\n0.3975,s0,") && !csv.contains("\n0.4,"),
        "sample 159 kept, 160 not"
    );
    assert!(csv.contains("\n0.44,s1,"), "sample 176 starts segment 1");
    let ck = train(d, "csv:bad.csv?window=64&group=segment", "gaps");
    assert_eq!(ck.window.unwrap().sample_rate_hz, 400.0);
}

#[test]
fn spawn_reads_a_commands_stdout_and_stops_at_the_sample_limit() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    fs::write(d.join("rec.log"), log(64 * 10).join("\n")).unwrap();
    // `cat` stands in for `probe-rs run …` or QEMU piped through defmt-print.
    let o = run(
        d,
        &[
            "record",
            "--spawn",
            "cat rec.log",
            "--samples",
            "100",
            "--out",
            "rec.csv",
        ],
    );
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(
        out.contains("100 at 400 Hz") && out.contains("no end frame"),
        "{out}"
    );
    let csv = fs::read_to_string(d.join("rec.csv")).unwrap();
    assert_eq!(csv.lines().count(), 101);
    assert!(csv.lines().last().unwrap().starts_with("0.2475,"));
    // A command that prints no frames: an error, and no file.
    let o = run(d, &["record", "--spawn", "echo hello", "--out", "none.csv"]);
    assert!(!o.status.success() && text(&o.stderr).contains("no samples"));
    assert!(!d.join("none.csv").exists());
}
