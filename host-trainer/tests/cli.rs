//! The `host-trainer` binary end to end, on small synthetic data (300 training windows, 200
//! validation and 200 test windows of 64 × 3; a 192-16-2 model): every command in a fresh
//! temporary directory, its files read back with the library (`Checkpoint::load`,
//! `ModelFile::parse`, the `png` decoder).
//!
//! * `train` → `eval` → `score --calibrate` → `export` → `sample`, `reconstruct`, `manifold`;
//! * the same run on 1 and 2 threads (two shards of 32 rows) gives the same bytes;
//! * a run stopped half way and resumed equals the uninterrupted run, byte for byte;
//! * bad inputs are refused with one error line that names the file or flag, and nothing on
//!   disk changes;
//! * a diverging run stops with an error naming the last good checkpoint, which still loads.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use host_trainer::checkpoint::Checkpoint;
use tempfile::TempDir;

mod common;
use common::{run, text};
use vae_nostd::modelfile::ModelFile;

/// Small synthetic data: 4 steps of 64 windows per epoch.
const DATA: &str = "synthetic:windows=300,valid_windows=200,test_windows=200";
const TEST_WINDOWS: usize = 200;
/// A small model with a 2-D latent space (so `manifold` works), trained quickly.
const MODEL: [&str; 6] = ["--hidden", "16", "--latent", "2", "--batch", "64"];

/// Runs a command that must succeed; returns its stdout.
fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "host-trainer {} failed ({}):\n{}",
        args.join(" "),
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `train` on [`DATA`] with [`MODEL`], quietly, into `out`, with `extra` flags.
fn train(dir: &Path, out: &str, extra: &[&str]) -> Output {
    let mut args = vec!["train", "--data", DATA, "--quiet", "--out", out];
    args.extend(MODEL);
    args.extend(extra);
    run(dir, &args)
}

fn train_ok(dir: &Path, out: &str, extra: &[&str]) -> PathBuf {
    let o = train(dir, out, extra);
    assert!(
        o.status.success(),
        "train {extra:?} failed:\n{}",
        text(&o.stderr)
    );
    dir.join(out).join("checkpoint.safetensors")
}

fn load(path: &Path) -> Checkpoint {
    Checkpoint::load(path).unwrap_or_else(|e| panic!("{e}"))
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let bytes = fs::read(&p).unwrap();
                files.insert(p, bytes);
            }
        }
    }
    files
}

/// Runs a command that must be refused: failure status, nothing on stdout, exactly one
/// `error:` line on stderr containing every one of `needles`, and no file under `dir` created,
/// changed or removed. Our own errors are the only line on stderr; clap's usage errors (exit
/// status 2) add usage lines after it. Returns the error line.
fn refused(dir: &Path, args: &[&str], needles: &[&str]) -> String {
    let before = snapshot(dir);
    let out = run(dir, args);
    let stderr = text(&out.stderr);
    let what = format!("host-trainer {}", args.join(" "));
    // 1: our errors; 2: clap's (not a panic's 101 or a signal).
    assert!(
        matches!(out.status.code(), Some(1 | 2)),
        "{what}: {}\n{stderr}",
        out.status
    );
    assert!(
        out.stdout.is_empty(),
        "{what} printed {:?}",
        text(&out.stdout)
    );
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{what}: stderr {stderr:?}");
    let line = errors[0];
    for n in needles {
        assert!(line.contains(n), "{what}: {line:?} does not name {n:?}");
    }
    if out.status.code() != Some(2) {
        // Besides the error, at most `train`'s opening lines (once the run has started): what
        // it trains and the defaults it chose.
        let other: Vec<&str> = stderr
            .lines()
            .filter(|l| {
                *l != line && !l.starts_with("training ") && !l.starts_with("defaults for ")
            })
            .collect();
        assert!(other.is_empty(), "{what}: more than one line: {stderr:?}");
    }
    assert!(
        before == snapshot(dir),
        "{what} changed files under {}",
        dir.display()
    );
    line.to_string()
}

/// Decodes a PNG and checks it is not blank (at least two different pixels).
fn assert_picture(path: &Path) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert!(info.width >= 16 && info.height >= 16, "{}", path.display());
    let bpp = info.line_size / info.width as usize;
    assert!(bpp >= 1, "{}: sub-byte pixels", path.display());
    let pixels: BTreeSet<&[u8]> = buf[..info.buffer_size()]
        .chunks_exact(info.line_size)
        .flat_map(|row| row[..bpp * info.width as usize].chunks_exact(bpp))
        .collect();
    assert!(pixels.len() >= 2, "{} is one flat colour", path.display());
}

/// The model file matches the checkpoint bit for bit.
fn assert_model_file_matches(bytes: &[u8], ck: &Checkpoint) {
    let mf = ModelFile::parse(bytes).unwrap_or_else(|e| panic!("{e:?}"));
    mf.expect_config(&ck.spec.config().unwrap()).unwrap();
    assert_eq!(bits(&mf.params().collect::<Vec<_>>()), bits(&ck.params));
    let offset: Vec<f32> = mf.normalization_offset().collect();
    let scale: Vec<f32> = mf.normalization_scale().collect();
    assert_eq!(bits(&offset), bits(&ck.norm.offset));
    assert_eq!(bits(&scale), bits(&ck.norm.scale));
    let (w, cw) = (mf.window().unwrap(), ck.window.unwrap());
    assert_eq!((w.len, w.hop, w.channels), (cw.len, cw.hop, cw.channels));
    assert_eq!(
        mf.threshold().map(f32::to_bits),
        ck.calibration.map(|c| c.threshold.to_bits())
    );
}

fn num(v: &serde_json::Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no number `{key}` in {v}"))
}

#[test]
fn train_eval_score_export_and_draw() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let ckpt = train_ok(dir, "run", &["--epochs", "2", "--threads", "1"]);
    let c = ckpt.to_str().unwrap();
    let trained = load(&ckpt);
    assert_eq!(trained.spec.latent, 2);
    assert_eq!(trained.train.as_ref().unwrap().step, 8);
    assert!(trained.calibration.is_none());
    assert_picture(&dir.join("run/learning_curves.png"));

    // eval: a finite bound, and log p(x) by importance sampling (k = 50) above it on average.
    let json = ok(
        dir,
        &["eval", "--checkpoint", c, "--iw-samples", "50", "--json"],
    );
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("eval --json");
    assert_eq!(v["iw_samples"], 50);
    let rows = v["rows"].as_array().unwrap();
    let all = &rows[0];
    assert_eq!(all["class"], "all");
    assert_eq!(all["n"], TEST_WINDOWS);
    let (elbo, log_px, kl, rec) = (
        num(all, "elbo"),
        num(all, "log_px"),
        num(all, "kl"),
        num(all, "rec"),
    );
    assert!(
        [elbo, log_px, kl, rec].iter().all(|x| x.is_finite()),
        "{all}"
    );
    assert!(kl >= 0.0, "{all}");
    assert!((elbo - (rec - kl)).abs() <= 1e-6 * elbo.abs(), "{all}");
    assert!(
        log_px >= elbo - 0.1,
        "log p(x) {log_px} below the ELBO {elbo}"
    );
    // Per-class rows (normal and the three anomaly kinds) cover the split.
    let per_class: u64 = rows[1..].iter().map(|r| r["n"].as_u64().unwrap()).sum();
    assert_eq!(per_class, TEST_WINDOWS as u64);
    assert!(rows[1..].iter().all(|r| num(r, "elbo").is_finite()));

    // export before calibration: no threshold.
    ok(
        dir,
        &["export", "--checkpoint", c, "--model", "uncalibrated.vaem"],
    );
    assert_model_file_matches(&fs::read(dir.join("uncalibrated.vaem")).unwrap(), &trained);

    // score --calibrate: one CSV row per test window, the threshold saved in the checkpoint,
    // and nothing else in the checkpoint changed.
    let stdout = ok(
        dir,
        &[
            "score",
            "--checkpoint",
            c,
            "--calibrate",
            "--csv",
            "scores.csv",
        ],
    );
    assert!(stdout.contains("saved in"), "{stdout}");
    let calibrated = load(&ckpt);
    let cal = calibrated.calibration.expect("no calibration saved");
    assert!(cal.threshold.is_finite());
    assert_eq!(
        Checkpoint {
            calibration: None,
            ..calibrated.clone()
        },
        trained
    );
    let csv = fs::read_to_string(dir.join("scores.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("index,score,label,anomaly"));
    let body: Vec<&str> = lines.collect();
    assert_eq!(body.len(), TEST_WINDOWS);
    for (i, line) in body.iter().enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 4, "{line}");
        assert_eq!(f[0], i.to_string());
        let s: f32 = f[1].parse().unwrap();
        assert!(s.is_finite(), "{line}");
        assert!(f[2].parse::<u32>().unwrap() <= 3, "{line}");
        assert_eq!(f[3], if s > cal.threshold { "1" } else { "0" }, "{line}");
    }

    // Another score than the calibrated one: no anomaly flags against a foreign threshold.
    ok(
        dir,
        &[
            "score",
            "--checkpoint",
            c,
            "--score",
            "rec-prob",
            "--samples",
            "4",
            "--csv",
            "rp.csv",
        ],
    );
    let csv = fs::read_to_string(dir.join("rp.csv")).unwrap();
    assert_eq!(csv.lines().count(), TEST_WINDOWS + 1);
    assert!(csv.lines().skip(1).all(|l| l.ends_with(',')), "{csv}");
    assert_eq!(load(&ckpt), calibrated);

    // export after calibration: the threshold is in the model file; --rust writes the same
    // model file next to the generated module.
    ok(
        dir,
        &[
            "export",
            "--checkpoint",
            c,
            "--model",
            "model.vaem",
            "--rust",
            "gen/model.rs",
        ],
    );
    let model = fs::read(dir.join("model.vaem")).unwrap();
    assert_model_file_matches(&model, &calibrated);
    assert_eq!(fs::read(dir.join("gen/model.vaem")).unwrap(), model);
    let crc = ModelFile::parse(&model).unwrap().crc();
    let rust = fs::read_to_string(dir.join("gen/model.rs")).unwrap();
    assert!(rust.contains("include_bytes!(\"model.vaem\")"), "{rust}");
    assert!(
        rust.contains(&format!("MODEL_CRC32: u32 = {crc:#010x};")),
        "{rust}"
    );

    // Pictures.
    ok(
        dir,
        &[
            "sample",
            "--checkpoint",
            c,
            "--n",
            "9",
            "--png",
            "samples.png",
        ],
    );
    ok(
        dir,
        &[
            "reconstruct",
            "--checkpoint",
            c,
            "--n",
            "4",
            "--png",
            "rec.png",
        ],
    );
    ok(
        dir,
        &[
            "manifold",
            "--checkpoint",
            c,
            "--grid",
            "5",
            "--png",
            "manifold.png",
        ],
    );
    for png in ["samples.png", "rec.png", "manifold.png"] {
        assert_picture(&dir.join(png));
    }
    // None of them touched the checkpoint.
    assert_eq!(load(&ckpt), calibrated);
}

#[test]
fn training_is_bit_identical_on_1_and_2_threads() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    // Batch 64 is two shards of 32 rows (engine::shard_count), whatever the thread count.
    assert_eq!(host_trainer::engine::shard_count(64), 2);
    let flags = ["--epochs", "2", "--estimator", "mc", "--samples", "2"];
    let one = train_ok(dir, "t1", &[&flags[..], &["--threads", "1"]].concat());
    let two = train_ok(dir, "t2", &[&flags[..], &["--threads", "2"]].concat());
    let (a, b) = (load(&one), load(&two));
    assert_eq!(bits(&a.params), bits(&b.params));
    let (ta, tb) = (a.train.unwrap(), b.train.unwrap());
    assert_eq!(bits(&ta.optim_state), bits(&tb.optim_state));
    assert_eq!(ta.step, tb.step);
    // The metadata holds no thread count, time or path: the files are the same bytes.
    assert!(fs::read(&one).unwrap() == fs::read(&two).unwrap());
}

#[test]
fn resumed_training_equals_uninterrupted_training() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let full = train_ok(dir, "full", &["--epochs", "4"]);
    let half = train_ok(dir, "half", &["--epochs", "2"]);
    let half_bytes = fs::read(&half).unwrap();
    assert_eq!(load(&half).train.unwrap().step, 8);
    // The resumed run writes into --out, not over the checkpoint it resumes from.
    let resumed = train_ok(
        dir,
        "resumed",
        &["--epochs", "4", "--resume", half.to_str().unwrap()],
    );
    assert!(
        fs::read(&half).unwrap() == half_bytes,
        "--resume rewrote its input"
    );
    let (a, b) = (load(&full), load(&resumed));
    assert_eq!(bits(&a.params), bits(&b.params));
    let (ta, tb) = (a.train.as_ref().unwrap(), b.train.as_ref().unwrap());
    assert_eq!(bits(&ta.optim_state), bits(&tb.optim_state));
    assert_eq!((ta.step, ta.samples_seen), (16, 16 * 64));
    assert_eq!((ta.step, ta.samples_seen), (tb.step, tb.samples_seen));
    assert!(a.info["curve"].as_array().unwrap().len() > 5);
    assert_eq!(a.info["curve"], b.info["curve"]);
    assert!(fs::read(&full).unwrap() == fs::read(&resumed).unwrap());
    // Resuming in place (--out is the checkpoint's directory) gives the same file too.
    train_ok(
        dir,
        "half",
        &["--epochs", "4", "--resume", half.to_str().unwrap()],
    );
    assert!(fs::read(&full).unwrap() == fs::read(&half).unwrap());
}

/// Issue 12: `train --resume` with the budget already spent printed a checkpoint path and
/// exited 0 without writing it (an older file there was what `eval` then read). Now the
/// resumed model is written there, equal to its input.
#[test]
fn resume_with_the_budget_spent_still_writes_the_checkpoint() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let done = train_ok(dir, "done", &["--epochs", "2"]);
    // An older, different file where the resumed run will write.
    let older = train_ok(dir, "again", &["--epochs", "1"]);
    let resumed = train_ok(
        dir,
        "again",
        &["--epochs", "2", "--resume", done.to_str().unwrap()],
    );
    assert_eq!(resumed, older);
    let (a, b) = (load(&done), load(&resumed));
    assert_eq!(bits(&a.params), bits(&b.params));
    assert_eq!(a.train.unwrap().step, b.train.unwrap().step);
}

/// Issue 12: an unwritable --out is refused before training (it was found at the first
/// checkpoint write, after the whole run with --checkpoint-every 0).
#[cfg(unix)]
#[test]
fn an_unwritable_out_is_refused_before_training() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    // A file where the output directory should be: nothing can be created under it (this
    // holds for root too, unlike a read-only directory).
    fs::write(dir.join("blocked"), b"a file").unwrap();
    let o = run(
        dir,
        &[
            "train",
            "--out",
            "blocked/run",
            "--epochs",
            "50",
            "--checkpoint-every",
            "0",
        ],
    );
    let stderr = text(&o.stderr);
    assert!(!o.status.success());
    assert!(
        stderr.contains("--out blocked/run: cannot write there"),
        "{stderr}"
    );
    assert!(!stderr.contains("trained "), "it trained first: {stderr}");
}

#[test]
fn missing_or_malformed_data_is_refused() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let ckpt = train_ok(dir, "run", &["--epochs", "1"]);
    let missing = dir.join("nowhere");
    let csv = dir.join("ragged.csv");
    // A CSV cut off in the middle of its third data row.
    fs::write(&csv, "t,a,b,c\n0,1,2,3\n1,4,5,6\n2,7").unwrap();
    let garbage = dir.join("garbage.csv");
    fs::write(&garbage, b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe").unwrap();
    let specs = [
        (format!("mnist:{}", missing.display()), missing.clone()),
        (format!("csv:{}", missing.display()), missing.clone()),
        (format!("frey:{}", missing.display()), missing.clone()),
        (format!("csv:{}", csv.display()), csv.clone()),
        (format!("csv:{}", garbage.display()), garbage.clone()),
    ];
    let before = fs::read(&ckpt).unwrap();
    for (spec, file) in &specs {
        let file = file.to_str().unwrap();
        // Over an existing run: its checkpoint and pictures stay as they were.
        refused(
            dir,
            &["train", "--quiet", "--out", "run", "--data", spec],
            &[file],
        );
        refused(
            dir,
            &[
                "eval",
                "--checkpoint",
                "run/checkpoint.safetensors",
                "--data",
                spec,
            ],
            &[file],
        );
    }
    let line = refused(
        dir,
        &["train", "--out", "run", "--data", "synthetic:windows=0"],
        &["--data", "windows"],
    );
    assert!(line.contains("synthetic:windows=0"), "{line}");
    assert!(fs::read(&ckpt).unwrap() == before);
}

#[test]
fn bad_flag_values_are_refused() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    train_ok(dir, "run", &["--epochs", "1"]);
    for (flag, value) in [
        ("--lr", "-1"),
        ("--lr", "0"),
        ("--lr", "nan"),
        ("--batch", "0"),
        ("--hidden", "0"),
        ("--latent", "0"),
        ("--epochs", "0"),
        ("--beta", "-1"),
        ("--weight-decay", "-0.5"),
        ("--samples", "0"),
        ("--threads", "0"),
        ("--estimator", "foo"),
        ("--optimizer", "foo"),
        ("--batch", "many"),
    ] {
        refused(
            dir,
            &[
                "train", "--data", DATA, "--quiet", "--out", "run", flag, value,
            ],
            &[flag],
        );
    }
    let c = "run/checkpoint.safetensors";
    refused(
        dir,
        &[
            "score",
            "--checkpoint",
            c,
            "--calibrate",
            "--false-alarm-rate",
            "-1",
        ],
        &["--false-alarm-rate"],
    );
    refused(
        dir,
        &["score", "--checkpoint", c, "--calibrate", "--samples", "0"],
        &["--samples"],
    );
    refused(
        dir,
        &["eval", "--checkpoint", c, "--samples", "0"],
        &["--samples"],
    );

    // Outputs that cannot be written (a file where a directory should be): refused, and the
    // checkpoint is not re-calibrated or overwritten.
    let bad = "run/checkpoint.safetensors/x";
    refused(
        dir,
        &["score", "--checkpoint", c, "--calibrate", "--csv", bad],
        &[bad],
    );
    refused(dir, &["export", "--checkpoint", c, "--model", bad], &[bad]);
    refused(dir, &["sample", "--checkpoint", c, "--png", bad], &[bad]);
    refused(
        dir,
        &[
            &["train", "--data", DATA, "--quiet", "--epochs", "1"][..],
            &MODEL,
            &["--out", c],
        ]
        .concat(),
        &[c],
    );
}

#[test]
fn missing_or_corrupt_checkpoints_are_refused() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let ckpt = train_ok(dir, "run", &["--epochs", "1"]);
    let bytes = fs::read(&ckpt).unwrap();
    fs::write(dir.join("truncated.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    fs::write(dir.join("header.safetensors"), &bytes[..5]).unwrap();
    fs::write(dir.join("empty.safetensors"), b"").unwrap();
    for (path, why) in [
        ("missing.safetensors", "cannot read"),
        ("truncated.safetensors", "truncated"),
        ("header.safetensors", "truncated"),
        ("empty.safetensors", "truncated"),
    ] {
        let with =
            |cmd: &[&'static str]| -> Vec<&'static str> { [cmd, &["--checkpoint", path]].concat() };
        refused(dir, &with(&["eval"]), &[path, why]);
        refused(
            dir,
            &with(&["score", "--calibrate", "--csv", "s.csv"]),
            &[path],
        );
        refused(dir, &with(&["export", "--model", "m.vaem"]), &[path]);
        refused(dir, &with(&["sample", "--png", "s.png"]), &[path]);
        refused(dir, &with(&["manifold", "--png", "m.png"]), &[path]);
        refused(
            dir,
            &[
                "train", "--data", DATA, "--quiet", "--out", "run", "--hidden", "16", "--latent",
                "2", "--resume", path,
            ],
            &["--resume", path],
        );
    }
}

#[test]
fn resume_with_other_flags_is_refused() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let ckpt = train_ok(dir, "run", &["--epochs", "1"]);
    let c = ckpt.to_str().unwrap();
    fn resume<'a>(c: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["train", "--data", DATA, "--quiet", "--out", "run"];
        args.extend(extra);
        args.extend(["--epochs", "2", "--resume", c]);
        args
    }
    // Another architecture, resumed in place: refused, the checkpoint untouched.
    refused(
        dir,
        &resume(c, &["--hidden", "32", "--latent", "2", "--batch", "64"]),
        &["--resume", c, "--hidden"],
    );
    refused(
        dir,
        &resume(c, &["--hidden", "16", "--latent", "3", "--batch", "64"]),
        &["--resume", c],
    );
    // Same model, other training flags or data.
    refused(
        dir,
        &resume(c, &[&MODEL[..], &["--lr", "0.01"]].concat()),
        &["--resume", c],
    );
    refused(
        dir,
        &resume(c, &[&MODEL[..], &["--seed", "2"]].concat()),
        &["--resume", c, "--seed"],
    );
}

#[test]
fn manifold_needs_a_2d_latent_space() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let o = run(
        dir,
        &[
            "train", "--data", DATA, "--quiet", "--out", "z3", "--hidden", "8", "--latent", "3",
            "--epochs", "1",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    refused(
        dir,
        &[
            "manifold",
            "--checkpoint",
            "z3/checkpoint.safetensors",
            "--png",
            "m.png",
        ],
        &["--latent 2", "3"],
    );
    assert!(!dir.join("m.png").exists());
}

#[test]
fn divergence_stops_and_names_the_last_good_checkpoint() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    // SGD with momentum at step size 10 blows up after a step or two; a checkpoint per step.
    let o = train(
        dir,
        "run",
        &[
            "--optimizer",
            "sgd",
            "--lr",
            "10",
            "--epochs",
            "4",
            "--checkpoint-every",
            "1",
        ],
    );
    let stderr = text(&o.stderr);
    assert!(!o.status.success(), "did not diverge: {stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(line.contains("diverged at step"), "{line}");
    let ckpt = dir.join("run/checkpoint.safetensors");
    assert!(
        line.contains("the last good checkpoint is run/checkpoint.safetensors"),
        "{line}"
    );
    let step: u64 = line
        .split("diverged at step ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no step in {line}"));
    // The last good checkpoint loads (the loader refuses NaN and infinity), from before the
    // step that diverged, and still evaluates.
    let ck = load(&ckpt);
    assert!(ck.params.iter().all(|p| p.is_finite()));
    let ck_step = ck.train.unwrap().step;
    assert!(
        (1..=step).contains(&ck_step),
        "checkpoint at step {ck_step}, diverged at {step}"
    );
    assert!(!dir.join("run/learning_curves.png").exists());

    // At an absurd step size it diverges before the first checkpoint, and says so.
    let o = train(
        dir,
        "early",
        &["--optimizer", "adam", "--lr", "1e30", "--epochs", "1"],
    );
    let stderr = text(&o.stderr);
    assert!(!o.status.success());
    assert!(stderr.contains("diverged at step"), "{stderr}");
    assert!(
        stderr.contains("no checkpoint was written by this run"),
        "{stderr}"
    );
    assert!(!dir.join("early/checkpoint.safetensors").exists());
}

/// `score --int8`: the quantized model's ROC AUC within 0.01 of the f32 model's on the same
/// windows, its own calibrated threshold, and the (f32) checkpoint left byte for byte as it
/// was; other score kinds are refused with --int8.
#[test]
fn int8_scores_follow_the_f32_scores_and_leave_the_checkpoint_alone() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let ckpt = train_ok(dir, "run", &["--epochs", "3", "--threads", "1"]);
    let c = ckpt.to_str().unwrap();
    let score = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec![
            "score",
            "--checkpoint",
            c,
            "--json",
            "--quiet",
            "--calibrate",
        ];
        args.extend(extra);
        let out = ok(dir, &args);
        // With --calibrate a line about the threshold comes first; the JSON object is last.
        serde_json::from_str(out.trim().lines().last().unwrap()).expect("score --json")
    };
    let f32 = score(&["--csv", "f.csv"]);
    let before = std::fs::read(&ckpt).unwrap();
    let int8 = score(&["--int8", "--csv", "i.csv"]);
    assert_eq!(
        std::fs::read(&ckpt).unwrap(),
        before,
        "--int8 changed the checkpoint"
    );
    let (a, b) = (num(&f32, "auc"), num(&int8, "auc"));
    assert!((a - b).abs() <= 0.01, "f32 AUC {a}, int8 {b}");
    let (ta, tb) = (num(&f32, "threshold"), num(&int8, "threshold"));
    assert!(
        ta != tb && (ta - tb).abs() <= 0.05 * ta.abs(),
        "thresholds {ta} and {tb}"
    );
    refused(
        dir,
        &["score", "--checkpoint", c, "--int8", "--score", "neg-elbo"],
        &["--int8", "neg-elbo-mean"],
    );
}

/// `export --int8`: a version-2 model file that parses as int8, its parameters under a third
/// of the f32 file's, whose threshold is the int8 model's own (the f32 checkpoint's calibration re-run on
/// int8 scores, so close to but not the f32 threshold); `--data` without `--int8` is refused.
#[test]
fn export_int8_writes_a_version_2_file_with_its_own_threshold() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let ckpt = train_ok(dir, "run", &["--epochs", "3", "--threads", "1"]);
    let c = ckpt.to_str().unwrap();
    ok(
        dir,
        &[
            "score",
            "--checkpoint",
            c,
            "--calibrate",
            "--quiet",
            "--csv",
            "f.csv",
        ],
    );
    ok(dir, &["export", "--checkpoint", c, "--model", "f32.vaem"]);
    let out = ok(
        dir,
        &[
            "export",
            "--checkpoint",
            c,
            "--int8",
            "--model",
            "int8.vaem",
        ],
    );
    assert!(out.contains("as int8 (model file version 2)"), "{out}");
    let (f32_bytes, int8_bytes) = (
        fs::read(dir.join("f32.vaem")).unwrap(),
        fs::read(dir.join("int8.vaem")).unwrap(),
    );
    let (f, q) = (
        ModelFile::parse(&f32_bytes).unwrap(),
        ModelFile::parse(&int8_bytes).unwrap(),
    );
    assert_eq!(f.format(), vae_nostd::modelfile::Format::F32);
    assert_eq!(q.format(), vae_nostd::modelfile::Format::Int8);
    assert_eq!(q.config(), f.config());
    // The parameter sections (the header and the f32 normalization are in both): a byte per
    // weight plus 8 per output, a third at most for this small model (26.5 % for the default
    // 192-128-8 model, checked in vae_nostd::quant and tests/tests/firmware_e2e.rs).
    let p4 = 4 * f.config().num_params();
    let shared = f32_bytes.len() - p4;
    assert!(
        (int8_bytes.len() - shared) * 3 < p4,
        "int8 parameters {} B, f32 {p4} B",
        int8_bytes.len() - shared
    );
    let (tf, tq) = (f.threshold().unwrap(), q.threshold().unwrap());
    assert!(
        tf != tq && (tf - tq).abs() <= 0.05 * tf.abs(),
        "thresholds {tf} and {tq}"
    );
    assert_eq!(q.false_alarm_rate(), f.false_alarm_rate());
    refused(
        dir,
        &[
            "export",
            "--checkpoint",
            c,
            "--data",
            "synthetic",
            "--model",
            "x.vaem",
        ],
        &["--data", "--int8"],
    );
}

/// Issue 12: a checkpoint with one flipped bit is refused by every command that reads one
/// (finite flips in the tensor data passed `eval`, `score`, `export` and `--resume`, and
/// `export` wrote a model file with a fresh, valid CRC).
#[test]
fn a_checkpoint_with_one_flipped_bit_is_refused_by_every_command() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let ckpt = train_ok(dir, "run", &["--epochs", "1", "--threads", "1"]);
    let mut bytes = fs::read(&ckpt).unwrap();
    let at = bytes.len() - 1000; // inside the tensor data
    bytes[at] ^= 0x01;
    fs::write(&ckpt, &bytes).unwrap();
    let c = ckpt.to_str().unwrap();
    for args in [
        vec!["eval", "--checkpoint", c],
        vec!["score", "--checkpoint", c, "--csv", "s.csv"],
        vec!["export", "--checkpoint", c, "--model", "m.vaem"],
        vec!["export", "--checkpoint", c, "--int8", "--model", "m8.vaem"],
        vec!["sample", "--checkpoint", c, "--png", "s.png"],
        vec!["reconstruct", "--checkpoint", c, "--png", "r.png"],
        vec!["train", "--epochs", "2", "--out", "more", "--resume", c],
    ] {
        refused(dir, &args, &["is corrupt", "vae.crc32"]);
    }
    assert!(!dir.join("m.vaem").exists() && !dir.join("m8.vaem").exists());
}

/// Issue 12: flag values whose memory no machine has are refused at once, with one line that
/// names the flag (they panicked with "capacity overflow", aborted on a multi-GB allocation or
/// ran without end), and `--max-memory` sets the limit.
#[test]
fn absurd_flag_values_are_refused_before_allocating() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let ckpt = train_ok(dir, "run", &["--epochs", "1", "--threads", "1"]);
    let c = ckpt.to_str().unwrap();
    let max = "18446744073709551615";
    for (args, flag) in [
        (
            vec!["train", "--batch", "4294967296", "--out", "x"],
            "--batch",
        ),
        (
            vec!["train", "--samples", "1000000", "--out", "x"],
            "--samples",
        ),
        (vec!["sample", "--checkpoint", c, "--n", max], "--n"),
        (vec!["reconstruct", "--checkpoint", c, "--n", max], "--n"),
        (
            vec!["manifold", "--checkpoint", c, "--grid", "100000"],
            "--grid",
        ),
        (
            vec!["eval", "--checkpoint", c, "--samples", max],
            "--samples",
        ),
        (
            vec!["eval", "--checkpoint", c, "--iw-samples", max],
            "--iw-samples",
        ),
        (
            vec![
                "score",
                "--checkpoint",
                c,
                "--score",
                "nll",
                "--samples",
                max,
            ],
            "--samples",
        ),
        (
            vec!["train", "--epochs", "1", "--out", "y", "--max-memory", "1K"],
            "--max-memory 1K",
        ),
    ] {
        refused(dir, &args, &["needs", "of memory, above the limit", flag]);
    }
    refused(
        dir,
        &["train", "--out", "z", "--max-memory", "lots"],
        &["--max-memory", "8G"],
    );
    // A benchmark time that is no Duration: refused (it panicked).
    refused(dir, &["bench", "--seconds", "1e300"], &["--seconds"]);
    // Thread counts: refused, not obeyed (100,000 threads stalled the machine).
    refused(
        dir,
        &[
            "score",
            "--checkpoint",
            c,
            "--threads",
            "100000",
            "--csv",
            "s.csv",
        ],
        &["at most 1024", "--threads"],
    );
}

/// Issue 12: an IDX header claiming 1.27 M images (in a file of a few bytes) is refused by the
/// memory check before the loader reads on, naming the limit.
#[test]
fn an_idx_header_claiming_more_than_the_limit_is_refused() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let mnist = dir.join("mnist");
    fs::create_dir_all(&mnist).unwrap();
    let header = |magic: u32, dims: &[u32]| -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    };
    for split in ["train", "t10k"] {
        fs::write(
            mnist.join(format!("{split}-images-idx3-ubyte")),
            header(0x803, &[1_270_000, 28, 28]),
        )
        .unwrap();
        fs::write(
            mnist.join(format!("{split}-labels-idx1-ubyte")),
            header(0x801, &[1_270_000]),
        )
        .unwrap();
    }
    refused(
        dir,
        &[
            "train",
            "--data",
            "mnist:mnist",
            "--out",
            "m",
            "--max-memory",
            "1G",
        ],
        &["needs", "above the limit", "--max-memory 1G"],
    );
}

/// Issue 12: `kill -9` during checkpointing (8 trials at different moments of a run that
/// checkpoints every step): the checkpoint left is always whole (it loads, digest verified),
/// and the next run's first write removes the temporary a killed writer left (12 of 24 runs
/// had left one that nothing removed).
#[cfg(unix)]
#[test]
fn kill_9_while_checkpointing_leaves_a_whole_checkpoint_and_no_temporaries() {
    use std::process::{Command, Stdio};
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let out = dir.join("run");
    for trial in 0..8u64 {
        let mut child = Command::new(common::BIN)
            .args([
                "train",
                "--epochs",
                "200",
                "--checkpoint-every",
                "1",
                "--threads",
                "1",
            ])
            .arg("--out")
            .arg(&out)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(400 + 97 * trial));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let ckpt = out.join("checkpoint.safetensors");
        if ckpt.exists() {
            load(&ckpt); // whole and verified, or this panics
        }
    }
    // A run writing the same checkpoint removes what killed writers left.
    train_ok(dir, "run", &["--epochs", "1"]);
    let leftovers: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}
