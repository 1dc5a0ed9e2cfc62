//! The default job: train on synthetic vibration data, evaluate, calibrate, draw, export,
//! summarize.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};

use host_trainer::baselines;
use host_trainer::export;
use host_trainer::model::ScoreName;
use host_trainer::plot;
use host_trainer::train::Binarize;

use super::draw::{draw_axis_windows, label_of, showcase};
use super::eval::evaluate;
use super::reconstruct::draw_reconstructions;
use super::sample::draw_samples;
use super::score::{calibrate, score_split};
use super::train::train;
use crate::{EstimatorArg, TrainArgs};

/// The default job: train on synthetic vibration data, evaluate, calibrate, draw, export,
/// summarize.
pub fn default_job(out: &Path, threads: Option<usize>, seed: u64) -> Result<()> {
    let t0 = Instant::now();
    let args = TrainArgs {
        data: crate::DataArgs {
            data: Some("synthetic".into()),
        },
        valid_data: None,
        hidden: None,
        decoder_hidden: None,
        latent: None,
        activation: None,
        likelihood: None,
        estimator: EstimatorArg::Analytic,
        samples: 1,
        beta: 1.0,
        optimizer: None,
        lr: None,
        weight_decay: 0.0,
        batch: None,
        epochs: None,
        train_samples: None,
        steps: None,
        min_steps: None,
        patience: None,
        check_every: None,
        init: None,
        binarize: None,
        seed,
        threads,
        out: out.to_path_buf(),
        resume: None,
        checkpoint_every: 0,
        curve_rows: 1000,
        quiet: false,
    };
    let mut t = train(&args)?;
    let binarize = Binarize::None;
    let eval = evaluate(&t.engine, &t.splits.test, binarize, 10, 1000, None, seed)?;
    let cal = calibrate(
        &t.engine,
        &t.splits.valid,
        binarize,
        ScoreName::NegElboMean,
        1,
        0.01,
        seed,
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
    let summary = export::export_model_file(&t.ckpt, &model_path)
        .with_context(|| format!("{}", model_path.display()))?;
    let rust_path = out.join("model.rs");
    export::export_rust(&t.ckpt, &rust_path).with_context(|| format!("{}", rust_path.display()))?;

    // Summary.
    let c = sr.confusion.unwrap_or_default();
    println!("\n== vae-mcu default job: sensor anomaly detection on synthetic vibration data ==");
    println!(
        "model      {}-{:?}-{} {:?} {:?}, {} parameters ({} KB f32)",
        t.ckpt.spec.input,
        t.ckpt.spec.encoder_hidden,
        t.ckpt.spec.latent,
        t.ckpt.spec.activation,
        t.ckpt.spec.likelihood,
        t.ckpt.params.len(),
        t.ckpt.params.len() * 4 / 1024
    );
    println!(
        "data       {} train / {} valid / {} test windows of 64 × 3 axes (400 Hz)",
        t.splits.train.len(),
        t.splits.valid.len(),
        t.splits.test.len()
    );
    println!(
        "training   {:.1} s, {:.0} samples/s, {} threads",
        t.seconds,
        t.samples_per_s,
        t.engine.threads()
    );
    print!("evaluation (test, normalized units)\n{}", eval.table);
    println!(
        "threshold  {:.3} (−ELBO at z = μ; 1% false alarms on {} normal validation windows)",
        cal.threshold, cal.calibration_windows
    );
    println!(
        "test       ROC AUC {:.4}; at the threshold: precision {:.3}, recall {:.3}, false-alarm rate {:.4}",
        sr.auc.unwrap_or(f64::NAN),
        c.precision(),
        c.recall(),
        c.false_alarm_rate()
    );
    // The conformal rule's allowance for this many fresh normal windows (99.9 % quantile).
    let n_cal = cal.calibration_windows as u32;
    let k = vae_nostd::calibration::conformal_rank(cal.false_alarm_rate as f32, n_cal).max(1);
    let allowed = vae_nostd::calibration::allowed_false_alarms(k, n_cal, (c.fp + c.tn) as u32);
    println!(
        "           {} false alarms of {} normal test windows: {} the conformal rule's 99.9 % bound of {allowed} (k = {k}, N = {n_cal})",
        c.fp,
        c.fp + c.tn,
        if c.fp as u32 <= allowed {
            "within"
        } else {
            "ABOVE"
        }
    );
    for (name, hit, tot) in &sr.per_kind {
        println!("           {name:<10} {hit}/{tot} windows flagged");
    }
    let is_anom_test: Vec<bool> = labels.iter().map(|l| *l != 0).collect();
    for b in baselines::compare(&t.splits.train, ds, Some(&t.ckpt.norm), &is_anom_test) {
        println!(
            "baseline   ROC AUC {} — {}, same training and test windows",
            b.auc.map_or("-".into(), |v| format!("{v:.4}")),
            b.label
        );
    }
    println!("files      checkpoint {}", t.ckpt_path.display());
    println!("           firmware model {summary}");
    println!("           generated Rust {}", rust_path.display());
    println!("           scores {}", scores_csv.display());
    for p in &pictures {
        println!("           picture {}", p.display());
    }
    println!("total      {:.1} s", t0.elapsed().as_secs_f64());
    Ok(())
}
