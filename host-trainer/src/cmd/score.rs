//! `score`: per-window anomaly scores, threshold calibration, ROC AUC and baselines.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::json;

use host_trainer::baselines;
use host_trainer::data::Dataset;
use host_trainer::engine::Engine;
use host_trainer::io::write_atomic;
use host_trainer::metrics;
use host_trainer::model::{Calibration, Checkpoint, ScoreName};
use host_trainer::quantize::Int8Model;
use host_trainer::train::{self, Binarize};

use super::data::{data_for, pick};
use super::{engine_of, load_ckpt, progress, threads_or_all};
use crate::{ScoreArgs, SplitArg};

/// What `score` found.
pub struct ScoreReport {
    /// The calibration (new or from the checkpoint).
    pub calibration: Option<Calibration>,
    /// ROC AUC with labels.
    pub auc: Option<f64>,
    /// Confusion at the threshold.
    pub confusion: Option<metrics::Confusion>,
    /// Scored rows.
    pub n: usize,
    /// CSV path.
    pub csv: PathBuf,
    /// Detection rate per anomaly label at the threshold: (name, detected, total).
    pub per_kind: Vec<(String, usize, usize)>,
    /// Scores of the scored split.
    pub scores: Vec<f32>,
}

/// The anomaly threshold for a false-alarm `rate` on the normal windows of `valid` (the
/// core's split-conformal rule, the firmware's); progress on stderr unless `quiet`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn calibrate(
    engine: &Engine,
    valid: &Dataset,
    binarize: Binarize,
    score: ScoreName,
    samples: usize,
    rate: f64,
    seed: u64,
    quiet: bool,
) -> Result<Calibration> {
    let idx: Vec<usize> = (0..valid.len())
        .filter(|&i| valid.labels.as_ref().is_none_or(|l| l[i] == 0))
        .collect();
    if idx.is_empty() {
        bail!("no normal windows in the validation split to calibrate on");
    }
    let normal = valid.subset(&idx);
    let (x, n) = train::fixed_subset(&normal, normal.len(), binarize, seed);
    let mut s = scores_of(
        engine,
        &x,
        n,
        score.kind(samples),
        seed,
        "calibrating on normal validation windows",
        quiet,
    )?;
    // The core's split-conformal rule, the one the firmware calibrates with.
    let t = vae_nostd::calibration::conformal_threshold(&mut s, rate as f32)
        .map_err(|e| anyhow::anyhow!("calibration on {n} normal validation windows: {e}"))?;
    if !t.certified {
        eprintln!(
            "warning: calibration: {n} normal validation windows cannot certify a false-alarm rate of {rate}: \
             (N + 1) · rate = {:.3} < 1, so the threshold is the largest score and only guarantees \
             1/(N + 1) = {:.3}; use at least {} normal validation windows (--valid-data, or split=) or a larger --false-alarm-rate",
            (n as f64 + 1.0) * rate,
            1.0 / (n as f64 + 1.0),
            (1.0 / rate).ceil() as u64 - 1
        );
    }
    Ok(Calibration {
        score,
        samples,
        threshold: t.value,
        false_alarm_rate: rate,
        calibration_windows: n,
    })
}

/// Rows scored per step of the counting bar of a deterministic score.
const SCORE_BLOCK: usize = 256;

/// `engine.score` of `x [n][D]` with progress on stderr unless `quiet`: a counting bar over
/// blocks of rows for −ELBO at z = μ, which draws nothing, so scoring it in blocks gives the
/// same numbers; a spinner for sampled scores, whose ε the engine draws per chunk of the
/// whole call.
pub(crate) fn scores_of(
    engine: &Engine,
    x: &[f32],
    n: usize,
    kind: vae_nostd::ScoreKind,
    seed: u64,
    what: &str,
    quiet: bool,
) -> Result<Vec<f32>> {
    if !matches!(kind, vae_nostd::ScoreKind::NegElboAtMean) {
        return Ok(progress::with_spinner(what, quiet, || {
            engine.score(x, n, kind, seed)
        })?);
    }
    let d = x.len() / n.max(1);
    let pb = progress::bar(n as u64, what, quiet);
    let mut out = Vec::with_capacity(n);
    for lo in (0..n).step_by(SCORE_BLOCK) {
        let hi = (lo + SCORE_BLOCK).min(n);
        out.extend(engine.score(&x[lo * d..hi * d], hi - lo, kind, seed)?);
        pb.set_position(hi as u64);
    }
    pb.finish_and_clear();
    Ok(out)
}

/// Scores every row of `ds`, writes them to `csv` (with the anomaly flag when the checkpoint
/// has a threshold for this score), and measures them against the labels; progress on
/// stderr unless `quiet`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn score_split(
    engine: &Engine,
    ck: &Checkpoint,
    ds: &Dataset,
    binarize: Binarize,
    score: ScoreName,
    samples: usize,
    seed: u64,
    csv: &Path,
    quiet: bool,
) -> Result<ScoreReport> {
    let (x, n) = train::fixed_subset(ds, ds.len(), binarize, seed);
    let scores = scores_of(
        engine,
        &x,
        n,
        score.kind(samples),
        seed,
        &format!("scoring {n} windows"),
        quiet,
    )?;
    // A threshold only applies to the score it was calibrated on.
    let cal = ck.calibration.filter(|c| c.score == score);
    let mut text = String::from("index,score,label,anomaly\n");
    for (i, s) in scores.iter().enumerate() {
        let label = ds
            .labels
            .as_ref()
            .map_or(String::new(), |l| l[i].to_string());
        let flag = cal.map_or(String::new(), |c| ((*s > c.threshold) as u8).to_string());
        text += &format!("{i},{s},{label},{flag}\n");
    }
    write_atomic(csv, text.as_bytes()).with_context(|| format!("{}", csv.display()))?;
    let (mut auc, mut confusion, mut per_kind) = (None, None, Vec::new());
    if let Some(labels) = &ds.labels {
        let is_anom: Vec<bool> = labels.iter().map(|l| *l != 0).collect();
        auc = metrics::roc_auc(&scores, &is_anom);
        if let Some(c) = cal {
            confusion = Some(metrics::confusion_at(&scores, &is_anom, c.threshold));
            let mut kinds: Vec<u32> = labels.iter().copied().filter(|l| *l != 0).collect();
            kinds.sort_unstable();
            kinds.dedup();
            for k in kinds {
                let idx: Vec<usize> = (0..n).filter(|&i| labels[i] == k).collect();
                let hit = idx.iter().filter(|&&i| scores[i] > c.threshold).count();
                per_kind.push((
                    ds.label_names
                        .get(k as usize)
                        .cloned()
                        .unwrap_or_else(|| k.to_string()),
                    hit,
                    idx.len(),
                ));
            }
        }
    }
    Ok(ScoreReport {
        calibration: cal,
        auc,
        confusion,
        n,
        csv: csv.to_path_buf(),
        per_kind,
        scores,
    })
}

/// `score`.
pub fn score(a: &ScoreArgs) -> Result<ScoreReport> {
    let mut ck = load_ckpt(&a.ckpt)?;
    if !(a.false_alarm_rate > 0.0 && a.false_alarm_rate < 1.0) {
        bail!(
            "--false-alarm-rate must be in (0, 1) (got {})",
            a.false_alarm_rate
        );
    }
    if a.samples == 0 {
        bail!("--samples must be at least 1");
    }
    let threads = threads_or_all(a.threads);
    if a.score != ScoreName::NegElboMean {
        let cfg = ck.spec.config()?;
        host_trainer::limits::check(
            &format!("scoring with --samples {} on {threads} threads", a.samples),
            host_trainer::limits::workspace_bytes(&cfg, 100 * threads as u128, a.samples as u128),
            "--samples (or --threads)",
        )?;
    }
    let mut engine = engine_of(&ck, threads)?;
    let (splits, binarize) = data_for(&ck, &a.data.data, a.split.is_some(), a.seed)?;
    if a.int8 {
        if a.score != ScoreName::NegElboMean {
            bail!("--int8 scores -ELBO at z = mu only: use --score neg-elbo-mean");
        }
        if splits.train.is_empty() {
            bail!("--int8 calibrates on the training split, which is empty here");
        }
        let (x, n) = train::fixed_subset(&splits.train, splits.train.len(), binarize, a.seed);
        let q = Int8Model::calibrate(*engine.config(), &engine.params, &x, n)?;
        if !a.json {
            println!(
                "int8 model: {} B of quantized parameters ({:.1} % of the f32 {} B), layer inputs calibrated on {n} training windows",
                q.bytes(),
                100.0 * q.bytes() as f64 / (4 * engine.params.len()) as f64,
                4 * engine.params.len()
            );
        }
        engine.set_int8(Some(q));
        if !a.calibrate {
            // The checkpoint's threshold is the f32 model's: it does not apply to int8 scores.
            ck.calibration = None;
        }
    }
    if a.calibrate {
        let c = calibrate(
            &engine,
            &splits.valid,
            binarize,
            a.score,
            a.samples,
            a.false_alarm_rate,
            a.seed,
            a.quiet,
        )?;
        ck.calibration = Some(c);
    }
    // The CSV first: a bad --csv must not leave a re-calibrated checkpoint behind.
    let scored = pick(&splits, a.split.unwrap_or(SplitArg::Test));
    if scored.is_empty() {
        bail!(
            "nothing to score: the {:?} split is empty; pass --data csv:FILE to score every window of a file, or another --split",
            a.split.unwrap_or(SplitArg::Test)
        );
    }
    let r = score_split(
        &engine, &ck, scored, binarize, a.score, a.samples, a.seed, &a.csv, a.quiet,
    )?;
    let baselines = match (&scored.labels, splits.train.is_empty()) {
        (Some(l), false) => {
            let is_anom: Vec<bool> = l.iter().map(|v| *v != 0).collect();
            baselines::compare(&splits.train, scored, Some(&ck.norm), &is_anom)
        }
        _ => Vec::new(),
    };
    if a.calibrate
        && a.int8
        && let Some(c) = ck.calibration
    {
        println!(
            "int8 threshold {} ({:?}, false-alarm rate {} on {} normal validation windows), not saved: the checkpoint holds the f32 model",
            c.threshold, c.score, c.false_alarm_rate, c.calibration_windows
        );
    } else if a.calibrate
        && let Some(c) = ck.calibration
    {
        ck.save(&a.ckpt.checkpoint)
            .with_context(|| format!("{}", a.ckpt.checkpoint.display()))?;
        println!(
            "threshold {} ({:?}, false-alarm rate {} on {} normal validation windows) saved in {}",
            c.threshold,
            c.score,
            c.false_alarm_rate,
            c.calibration_windows,
            a.ckpt.checkpoint.display()
        );
    }
    let anomalous = scored
        .labels
        .as_ref()
        .map(|l| l.iter().filter(|v| **v != 0).count());
    if a.json {
        println!(
            "{}",
            json!({
                "n": r.n,
                "anomalous": anomalous,
                "score": a.score,
                "auc": r.auc,
                "baselines": baselines,
                "threshold": r.calibration.map(|c| c.threshold),
                "confusion": r.confusion.map(|c| json!({"tp": c.tp, "fp": c.fp, "tn": c.tn, "fn": c.fn_})),
                "csv": r.csv,
            })
        );
        return Ok(r);
    }
    println!("{} scores written to {}", r.n, r.csv.display());
    match (r.auc, anomalous) {
        (Some(auc), _) => {
            println!("ROC AUC {auc:.4} (VAE, {:?})", a.score);
            for b in &baselines {
                println!(
                    "ROC AUC {} ({}, fitted on the same {} training windows)",
                    b.auc.map_or("-".into(), |v| format!("{v:.4}")),
                    b.label,
                    splits.train.len()
                );
            }
        }
        (None, Some(0)) => println!(
            "no ROC AUC: none of the {} scored windows is labelled anomalous",
            r.n
        ),
        (None, Some(k)) if k == r.n => println!(
            "no ROC AUC: all {} scored windows are labelled anomalous",
            r.n
        ),
        (None, _) => println!("no ROC AUC: the scored data have no labels"),
    }
    if let (Some(c), Some(cal)) = (&r.confusion, &r.calibration) {
        println!(
            "at threshold {:.3}: precision {:.3}, recall {:.3}, false-alarm rate {:.4} (tp {} fp {} tn {} fn {})",
            cal.threshold,
            c.precision(),
            c.recall(),
            c.false_alarm_rate(),
            c.tp,
            c.fp,
            c.tn,
            c.fn_
        );
    }
    Ok(r)
}
