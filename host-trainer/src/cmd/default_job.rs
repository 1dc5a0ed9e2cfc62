//! The default job: train on synthetic vibration data, evaluate, calibrate, draw, export,
//! summarize.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;

use host_trainer::baselines;
use host_trainer::export;
use host_trainer::model::Calibration;
use host_trainer::model::ScoreName;
use host_trainer::plot;
use host_trainer::train::Binarize;

use super::draw::{draw_axis_windows, label_of, showcase};
use super::eval::{EvalReport, evaluate};
use super::reconstruct::draw_reconstructions;
use super::sample::draw_samples;
use super::score::{ScoreReport, calibrate, score_split};
use super::train::{Trained, budget_words, train};
use crate::TrainArgs;

/// The arguments of the default job's training: `host-trainer train` with the job's data,
/// seed, output directory, threads and quiet flag, parsed by clap like any command line, so
/// every other setting is the CLI's own default. The job writes one checkpoint, at the end.
pub(crate) fn job_args(
    out: &Path,
    threads: Option<usize>,
    seed: u64,
    quiet: bool,
) -> Result<TrainArgs> {
    let mut argv: Vec<OsString> = ["host-trainer", "train", "--data", "synthetic"]
        .map(OsString::from)
        .to_vec();
    argv.extend(["--seed".into(), seed.to_string().into()]);
    argv.extend(["--out".into(), out.as_os_str().to_owned()]);
    argv.extend(["--checkpoint-every".into(), "0".into()]);
    if let Some(t) = threads {
        argv.extend(["--threads".into(), t.to_string().into()]);
    }
    if quiet {
        argv.push("--quiet".into());
    }
    match crate::Cli::try_parse_from(argv)?.cmd {
        Some(crate::Cmd::Train(a)) => Ok(*a),
        _ => bail!("the default job's arguments did not parse as `train`"),
    }
}

/// The default job: train on synthetic vibration data, evaluate, calibrate, draw, export,
/// summarize. `quiet`: no progress bars.
pub fn default_job(out: &Path, threads: Option<usize>, seed: u64, quiet: bool) -> Result<()> {
    let t0 = Instant::now();
    let args = job_args(out, threads, seed, quiet)?;
    let mut t = train(&args)?;
    let binarize = Binarize::None;
    let (eval_samples, eval_iw) = (10, 1000);
    let eval = evaluate(
        &t.engine,
        &t.splits.test,
        binarize,
        eval_samples,
        eval_iw,
        None,
        seed,
        quiet,
    )?;
    let cal = calibrate(
        &t.engine,
        &t.splits.valid,
        binarize,
        ScoreName::NegElboMean,
        1,
        0.01,
        seed,
        quiet,
    )?;
    t.ckpt.calibration = Some(cal);
    t.ckpt
        .save(&t.ckpt_path)
        .with_context(|| format!("{}", t.ckpt_path.display()))?;
    let scores_csv = out.join("scores.csv");
    let sr = score_split(
        &t.engine,
        &t.ckpt,
        &t.splits.test,
        binarize,
        ScoreName::NegElboMean,
        1,
        seed,
        &scores_csv,
        quiet,
    )?;

    // Pictures.
    let ds = &t.splits.test;
    let labels = ds.labels.clone().unwrap_or_default();
    let mut pictures = vec![t.curve_png.clone()];
    let pick_idx = showcase(ds, 6);
    let sub = ds.subset(&pick_idx);
    let captions: Vec<String> = pick_idx
        .iter()
        .map(|&i| {
            format!(
                "test window #{i}: {}, score {:.1}{}",
                label_of(ds, labels.get(i).copied().unwrap_or(0)),
                sr.scores[i],
                if sr.scores[i] > cal.threshold {
                    " > threshold"
                } else {
                    ""
                }
            )
        })
        .collect();
    let flagged: Vec<bool> = pick_idx
        .iter()
        .map(|&i| sr.scores[i] > cal.threshold)
        .collect();
    let png = out.join("windows_scored.png");
    draw_axis_windows(
        &t.ckpt,
        &sub.x,
        None,
        &captions,
        &flagged,
        &ds.channel_names,
        &format!(
            "Test windows and their anomaly scores (threshold {:.1}; red: above it)",
            cal.threshold
        ),
        &png,
    )?;
    pictures.push(png);
    let is_anom: Vec<bool> = labels.iter().map(|l| *l != 0).collect();
    let normal: Vec<f32> = sr
        .scores
        .iter()
        .zip(&is_anom)
        .filter(|(_, a)| !**a)
        .map(|(s, _)| *s)
        .collect();
    let anomalous: Vec<f32> = sr
        .scores
        .iter()
        .zip(&is_anom)
        .filter(|(_, a)| **a)
        .map(|(s, _)| *s)
        .collect();
    let png = out.join("score_histogram.png");
    plot::score_histogram(
        &png,
        "Test scores: normal vs anomalous windows",
        &normal,
        &anomalous,
        cal.threshold,
    )
    .with_context(|| format!("{}", png.display()))?;
    pictures.push(png);
    let png = out.join("score_timeline.png");
    plot::score_timeline(
        &png,
        "Anomaly score per test window",
        &sr.scores,
        ds.labels.as_deref(),
        cal.threshold,
    )
    .with_context(|| format!("{}", png.display()))?;
    pictures.push(png);
    let head = t.engine.encode(&ds.x, ds.len())?;
    let z = t.engine.config().latent;
    let mu: Vec<f32> = head
        .chunks_exact(2 * z)
        .flat_map(|h| h[..z].to_vec())
        .collect();
    let proj = host_trainer::pca::project_2d(&mu, z)
        .context("latent means: no principal components (fewer than 2 test windows?)")?;
    let png = out.join("latent_means.png");
    plot::scatter(
        &png,
        &format!("Latent means μ(x) of the test windows (Z = {z}), first two principal components"),
        &format!("PC 1 ({:.0} % of the variance)", 100.0 * proj.explained[0]),
        &format!("PC 2 ({:.0} % of the variance)", 100.0 * proj.explained[1]),
        &proj.points,
        ds.labels.as_deref(),
        &ds.label_names,
    )
    .with_context(|| format!("{}", png.display()))?;
    pictures.push(png);
    pictures.push(draw_samples(
        &t.engine,
        &t.ckpt,
        4,
        seed,
        &out.join("samples.png"),
    )?);
    pictures.push(draw_reconstructions(
        &t.engine,
        &t.ckpt,
        ds,
        binarize,
        4,
        &out.join("reconstructions.png"),
    )?);

    // Export.
    let model_path = out.join("model.vaem");
    let summary_export = export::export_model_file(&t.ckpt, &model_path)
        .with_context(|| format!("{}", model_path.display()))?;
    let rust_path = out.join("model.rs");
    export::export_rust(&t.ckpt, &rust_path).with_context(|| format!("{}", rust_path.display()))?;

    // Summary.
    println!("\n== vae-mcu default job: sensor anomaly detection on synthetic vibration data ==");
    print!(
        "{}",
        summary(&Summary {
            trained: &t,
            eval: &eval,
            eval_samples,
            eval_iw,
            cal: &cal,
            scores: &sr,
            baselines: &baselines::compare(
                &t.splits.train,
                ds,
                Some(&t.ckpt.norm),
                &labels.iter().map(|l| *l != 0).collect::<Vec<_>>()
            ),
            export: &summary_export,
            rust: &rust_path,
            scores_csv: &scores_csv,
            pictures: &pictures,
        })?
    );
    println!("{:<W$}{:.1} s", "total", t0.elapsed().as_secs_f64());
    Ok(())
}

/// Width of the summary's first column.
const W: usize = 11;

/// What the default job's summary reports.
pub(crate) struct Summary<'a> {
    /// The trained model, its data and timings.
    pub trained: &'a Trained,
    /// Evaluation on the test split.
    pub eval: &'a EvalReport,
    /// Draws of z of the evaluation's bound (L).
    pub eval_samples: usize,
    /// Importance samples of its log p(x) (k).
    pub eval_iw: usize,
    /// The calibrated threshold.
    pub cal: &'a Calibration,
    /// Scores of the test split.
    pub scores: &'a ScoreReport,
    /// The classical baselines on the same windows.
    pub baselines: &'a [baselines::BaselineResult],
    /// The exported firmware model.
    pub export: &'a export::ExportSummary,
    /// The generated Rust.
    pub rust: &'a Path,
    /// The scores CSV.
    pub scores_csv: &'a Path,
    /// Every picture written.
    pub pictures: &'a [PathBuf],
}

/// The default job's one-screen summary: a first column of fixed width naming each line,
/// figures in the README's words.
pub(crate) fn summary(s: &Summary<'_>) -> Result<String> {
    use std::fmt::Write as _;
    let t = s.trained;
    let ck = &t.ckpt;
    let cfg = ck.spec.config()?;
    let mut o = String::new();
    let pad = "";
    writeln!(
        o,
        "{:<W$}{}, {} parameters ({} KB f32)",
        "model",
        export::describe(&cfg),
        ck.params.len(),
        ck.params.len() * 4 / 1024
    )?;
    let test = &t.splits.test;
    let shape = match test.window {
        Some(w) => format!(
            " of {} steps × {} axes ({}) at {} Hz",
            w.len,
            w.channels,
            plot::channel_labels(&test.channel_names, w.channels).join(", "),
            w.sample_rate_hz
        ),
        None => String::new(),
    };
    writeln!(
        o,
        "{:<W$}{} train / {} valid / {} test windows{shape}",
        "data",
        t.splits.train.len(),
        t.splits.valid.len(),
        test.len()
    )?;
    let step = ck.train.as_ref().map_or(0, |ts| ts.step);
    let stop = match ck.train.as_ref().and_then(|ts| ts.early_stop) {
        Some(es) if es.stopped => format!(
            ", stopped early at step {step}; the model is step {}'s (best validation bound)",
            es.best_step
        ),
        Some(es) => format!(
            ", {step} steps; the model is step {}'s (best validation bound)",
            es.best_step
        ),
        None => format!(", {step} steps"),
    };
    writeln!(
        o,
        "{:<W$}{} at most (batch {}){stop}",
        "training",
        budget_words(t.config.budget),
        t.config.batch
    )?;
    writeln!(
        o,
        "{pad:<W$}{:.1} s, {:.0} samples/s, {} threads",
        t.seconds,
        t.samples_per_s,
        t.engine.threads()
    )?;
    writeln!(
        o,
        "{:<W$}test windows, normalized units; ELBO with L = {}, log p(x) by importance sampling with k = {}",
        "evaluation", s.eval_samples, s.eval_iw
    )?;
    for line in s.eval.table.lines() {
        writeln!(o, "{pad:<W$}{line}")?;
    }
    let cal = s.cal;
    writeln!(
        o,
        "{:<W$}{:.3} (−ELBO at z = μ; {} % false alarms on {} normal validation windows)",
        "threshold",
        cal.threshold,
        100.0 * cal.false_alarm_rate,
        cal.calibration_windows
    )?;
    let sr = s.scores;
    let c = sr.confusion.unwrap_or_default();
    writeln!(
        o,
        "{:<W$}ROC AUC {:.4}; at the threshold: precision {:.3}, recall {:.3}, false-alarm rate {:.4}",
        "test",
        sr.auc.unwrap_or(f64::NAN),
        c.precision(),
        c.recall(),
        c.false_alarm_rate()
    )?;
    // The conformal rule's allowance for this many fresh normal windows (99.9 % quantile).
    let n_cal = cal.calibration_windows as u32;
    let k = vae_nostd::calibration::conformal_rank(cal.false_alarm_rate as f32, n_cal).max(1);
    let allowed = vae_nostd::calibration::allowed_false_alarms(k, n_cal, (c.fp + c.tn) as u32);
    writeln!(
        o,
        "{pad:<W$}{} false alarms of {} normal test windows: {} the conformal rule's 99.9 % bound of {allowed} (k = {k}, N = {n_cal})",
        c.fp,
        c.fp + c.tn,
        if c.fp as u32 <= allowed {
            "within"
        } else {
            "ABOVE"
        }
    )?;
    let kind_w = sr
        .per_kind
        .iter()
        .map(|(n, _, _)| n.chars().count())
        .max()
        .unwrap_or(0);
    for (name, hit, tot) in &sr.per_kind {
        let frac = format!("{hit}/{tot}");
        writeln!(o, "{pad:<W$}{name:<kind_w$}  {frac:>9} windows flagged")?;
    }
    for b in s.baselines {
        writeln!(
            o,
            "{:<W$}ROC AUC {} — {}, same training and test windows",
            "baseline",
            b.auc.map_or("-".into(), |v| format!("{v:.4}")),
            b.label
        )?;
    }
    let e = s.export;
    writeln!(
        o,
        "{:<W$}checkpoint      {}",
        "files",
        t.ckpt_path.display()
    )?;
    writeln!(
        o,
        "{pad:<W$}firmware model  {} ({} bytes, CRC-32 {:#010x})",
        e.path.display(),
        e.bytes,
        e.crc32
    )?;
    writeln!(o, "{pad:<W$}generated Rust  {}", s.rust.display())?;
    writeln!(o, "{pad:<W$}scores          {}", s.scores_csv.display())?;
    for p in s.pictures {
        writeln!(o, "{pad:<W$}picture         {}", p.display())?;
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The job's training arguments are the CLI's defaults but for what the job sets: one
    /// source of defaults (they had drifted when the job built them by hand).
    #[test]
    fn job_args_are_the_cli_defaults() {
        let job = job_args(Path::new("out/x"), Some(3), 7, true).unwrap();
        assert_eq!(job.data.data.as_deref(), Some("synthetic"));
        assert_eq!((job.seed, job.threads, job.quiet), (7, Some(3), true));
        assert_eq!(job.out, Path::new("out/x"));
        assert_eq!(job.checkpoint_every, 0);
        let Some(crate::Cmd::Train(cli)) = crate::Cli::parse_from(["host-trainer", "train"]).cmd
        else {
            panic!("`train` did not parse as train");
        };
        let mut cli = *cli;
        cli.data.data = Some("synthetic".into());
        (cli.seed, cli.threads, cli.quiet) = (7, Some(3), true);
        cli.out = "out/x".into();
        cli.checkpoint_every = 0;
        assert_eq!(format!("{job:?}"), format!("{cli:?}"));
        let plain = job_args(Path::new("o"), None, 1, false).unwrap();
        assert_eq!((plain.threads, plain.quiet), (None, false));
    }
}
