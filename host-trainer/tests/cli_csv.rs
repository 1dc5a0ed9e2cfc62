//! The user's-own-recording workflow end to end, on small generated CSV files (long format,
//! text activity labels, a recording-id group column): separate train, validation and test
//! files, split fractions and shuffle, scoring every window of a file with the baselines
//! beside the VAE, early stopping, and the calibration warning.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use host_trainer::checkpoint::Checkpoint;
use tempfile::TempDir;

mod common;
use common::{run, text};

const MODEL: [&str; 4] = ["--hidden", "16", "--latent", "2"];
const WINDOW: usize = 16;

fn ok(dir: &Path, args: &[&str]) -> (String, String) {
    let o = run(dir, args);
    assert!(
        o.status.success(),
        "host-trainer {} failed:\n{}",
        args.join(" "),
        text(&o.stderr)
    );
    (text(&o.stdout), text(&o.stderr))
}

/// A long CSV: `recordings` of (activity, windows) each, 2 channels, WINDOW steps a window,
/// plus `tail` extra steps at the end of every recording (in no window).
fn write_csv(path: &Path, recordings: &[(&str, usize)], seed: u64, tail: usize) {
    let mut s = String::from("rec,activity,ax,ay\n");
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut noise = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f64 / (1u64 << 31) as f64) - 0.5
    };
    for (r, (activity, windows)) in recordings.iter().enumerate() {
        let amp = match *activity {
            "Standing" => 0.1,
            "Walking" => 1.0,
            _ => 4.0,
        };
        for t in 0..windows * WINDOW + tail {
            let ph = t as f64 * 0.7;
            writeln!(
                s,
                "r{r},{activity},{:.5},{:.5}",
                amp * ph.sin() + 0.2 * noise(),
                amp * (ph * 0.5).cos() + 0.2 * noise()
            )
            .unwrap();
        }
    }
    fs::write(path, s).unwrap();
}

fn spec(path: &Path, extra: &str) -> String {
    format!(
        "csv:{}?window={WINDOW}&label=activity&normal=Standing,Walking&group=rec&columns=ax,ay{extra}",
        path.display()
    )
}

fn files(dir: &Path) {
    let normal: Vec<(&str, usize)> = (0..12)
        .map(|i| (if i % 2 == 0 { "Standing" } else { "Walking" }, 6))
        .collect();
    write_csv(&dir.join("train.csv"), &normal, 1, 5);
    write_csv(&dir.join("valid.csv"), &normal[..4], 2, 0);
    write_csv(
        &dir.join("test.csv"),
        &[
            ("Standing", 5),
            ("Running", 3),
            ("Walking", 5),
            ("Running", 2),
        ],
        3,
        3,
    );
}

fn json_line(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

#[test]
fn train_on_one_file_score_every_window_of_another() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    files(dir);
    let train = spec(&dir.join("train.csv"), "&split=0.75,0.25,0");
    let mut args = vec!["train", "--data", &train, "--quiet", "--out", "run"];
    args.extend(MODEL);
    let (_, err) = ok(dir, &args);
    // The tails of the 12 recordings are in no window, and the user hears it.
    assert!(
        err.contains("60 time steps at the ends of 12 segments are in no window"),
        "{err}"
    );
    let ck = Checkpoint::load(&dir.join("run/checkpoint.safetensors")).unwrap();
    // 72 windows, by whole recordings: 54 train (9 recordings), 18 validation.
    assert_eq!(ck.info["train_rows"], 54);
    let test = spec(&dir.join("test.csv"), "");
    let (out, _) = ok(
        dir,
        &[
            "score",
            "--checkpoint",
            "run/checkpoint.safetensors",
            "--data",
            &test,
            "--json",
            "--csv",
            "scores.csv",
        ],
    );
    let r = json_line(&out);
    // Every window of the test file (15), not a split of it; 5 of them are "Running".
    assert_eq!(r["n"], 15);
    assert_eq!(r["anomalous"], 5);
    assert_eq!(
        fs::read_to_string(dir.join("scores.csv"))
            .unwrap()
            .lines()
            .count(),
        16
    );
    let auc = r["auc"].as_f64().unwrap();
    assert!(auc > 0.9, "{r}");
    let names: Vec<&str> = r["baselines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pca", "energy"]);
    // The text form says which is which.
    let (out, _) = ok(
        dir,
        &[
            "score",
            "--checkpoint",
            "run/checkpoint.safetensors",
            "--data",
            &test,
            "--csv",
            "s.csv",
        ],
    );
    assert!(
        out.contains("(VAE, NegElboMean)") && out.contains("PCA reconstruction"),
        "{out}"
    );
}

#[test]
fn validation_from_another_file_and_split_fractions() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    files(dir);
    // --valid-data: the training file is all training data.
    let train = spec(&dir.join("train.csv"), "");
    let valid = spec(&dir.join("valid.csv"), "");
    let mut args = vec![
        "train",
        "--data",
        &train,
        "--valid-data",
        &valid,
        "--quiet",
        "--out",
        "v",
        "--steps",
        "50",
    ];
    args.extend(MODEL);
    ok(dir, &args);
    let ck = Checkpoint::load(&dir.join("v/checkpoint.safetensors")).unwrap();
    assert_eq!(ck.info["train_rows"], 72);
    assert_eq!(ck.info["valid_data"], valid.as_str());
    // Contiguous halves without shuffle; seeded whole-recording halves with it.
    let rows = |extra: &str, seed: &str, out: &str| -> (u64, String) {
        let d = spec(&dir.join("train.csv"), extra);
        let mut args = vec![
            "train", "--data", &d, "--quiet", "--out", out, "--steps", "20", "--seed", seed,
        ];
        args.extend(MODEL);
        ok(dir, &args);
        let ck = Checkpoint::load(&dir.join(out).join("checkpoint.safetensors")).unwrap();
        (
            ck.info["train_rows"].as_u64().unwrap(),
            ck.info["data_hash"].as_str().unwrap().to_string(),
        )
    };
    let (n, plain) = rows("&split=0.5,0.5,0&shuffle=false", "1", "a");
    assert_eq!(n, 36);
    let (n1, s1) = rows("&split=0.5,0.5,0&shuffle=true", "1", "b");
    let (n2, s2) = rows("&split=0.5,0.5,0&shuffle=true", "2", "c");
    let (_, s1again) = rows("&split=0.5,0.5,0&shuffle=true", "1", "d");
    assert_eq!((n1, n2), (36, 36));
    assert_eq!(s1, s1again);
    assert_ne!(s1, s2);
    assert_ne!(s1, plain);
}

#[test]
fn text_labels_need_the_normal_list() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    files(dir);
    let d = format!(
        "csv:{}?window={WINDOW}&label=activity&group=rec&columns=ax,ay",
        dir.join("train.csv").display()
    );
    let o = run(dir, &["train", "--data", &d, "--quiet", "--out", "x"]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("normal=") && err.contains("Standing"), "{err}");
    assert!(!dir.join("x/checkpoint.safetensors").exists());
}

#[test]
fn early_stopping_keeps_the_best_and_will_not_resume_a_finished_run() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    files(dir);
    let train = spec(&dir.join("train.csv"), "&split=0.75,0.25,0");
    let mut args = vec![
        "train",
        "--data",
        &train,
        "--quiet",
        "--out",
        "e",
        "--steps",
        "3000",
        "--patience",
        "2",
        "--check-every",
        "10",
        "--lr",
        "0.05",
    ];
    args.extend(MODEL);
    let (_, err) = ok(dir, &args);
    assert!(err.contains("early stopping: the model is step"), "{err}");
    let path = dir.join("e/checkpoint.safetensors");
    let ck = Checkpoint::load(&path).unwrap();
    let ts = ck.train.clone().unwrap();
    let es = ts.early_stop.unwrap();
    assert!(es.stopped && ts.step < 3000, "{es:?} at {}", ts.step);
    assert!(es.best_step <= ts.step);
    assert_eq!(es.best_step % 10, 0);
    // The model is the best check's parameters; training would continue from the last ones.
    assert_eq!(ts.current_params.is_empty(), es.best_step == ts.step);
    let p = path.to_str().unwrap();
    let mut again = args.clone();
    again.extend(["--resume", p]);
    again[5] = "e2";
    let o = run(dir, &again);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("stopped early"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn calibration_on_too_few_windows_warns() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    files(dir);
    let train = spec(&dir.join("train.csv"), "&split=0.75,0.25,0");
    let mut args = vec![
        "train", "--data", &train, "--quiet", "--out", "c", "--steps", "30",
    ];
    args.extend(MODEL);
    ok(dir, &args);
    let c = [
        "score",
        "--checkpoint",
        "c/checkpoint.safetensors",
        "--calibrate",
        "--csv",
        "s.csv",
        "--split",
        "valid",
    ];
    // 18 validation windows: (18 + 1) · 1 % < 1.
    let (out, err) = ok(dir, &[&c[..], &["--false-alarm-rate", "0.01"]].concat());
    assert!(
        err.contains("cannot certify a false-alarm rate of 0.01"),
        "{err}"
    );
    assert!(
        err.contains("use at least 99 normal validation windows"),
        "{err}"
    );
    assert!(out.contains("saved in"), "{out}");
    // At 10 %, (18 + 1) · 0.1 ≥ 1: no warning.
    let (_, err) = ok(dir, &[&c[..], &["--false-alarm-rate", "0.1"]].concat());
    assert!(!err.contains("cannot certify"), "{err}");
}

#[test]
fn default_job_summary_has_baselines_and_false_alarms_within_the_conformal_bound() {
    let tmp = TempDir::new().unwrap();
    let (out, _) = ok(tmp.path(), &["--out", "job", "--threads", "2"]);
    let line = out
        .lines()
        .find(|l| l.contains("normal test windows:"))
        .unwrap_or_else(|| panic!("no false-alarm line in:\n{out}"));
    // "16 false alarms of 892 normal test windows: within the conformal rule's 99.9 % bound of 25 ..."
    let fp: u32 = line.split_whitespace().next().unwrap().parse().unwrap();
    let bound: u32 = line
        .split("bound of ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(line.contains("within"), "{line}");
    assert!(fp <= bound, "{line}");
    assert!(
        out.contains("baseline   ROC AUC") && out.contains("PCA reconstruction"),
        "{out}"
    );
    assert!(tmp.path().join("job/model.vaem").exists());
}
