//! `export`: the firmware model file and generated Rust, f32 or int8.

use anyhow::{Context, Result, bail};

use host_trainer::export::{self, Int8Export};
use host_trainer::model::ScoreName;
use host_trainer::quantize::Int8Model;
use host_trainer::train;
use vae_nostd::modelfile::Threshold;

use super::data::data_for;
use super::{engine_of, load_ckpt, threads_or_all};
use crate::ExportArgs;

/// `export`.
pub fn export(a: &ExportArgs) -> Result<()> {
    let ck = load_ckpt(&a.ckpt)?;
    if !a.int8 {
        if a.data.data.is_some() {
            bail!("--data is used by --int8 only (calibration of the quantization)");
        }
        let s = export::export_model_file(&ck, &a.model)
            .with_context(|| format!("{}", a.model.display()))?;
        println!("{s}");
        if let Some(r) = &a.rust {
            export::export_rust(&ck, r).with_context(|| format!("{}", r.display()))?;
            println!("{}", r.display());
        }
        return Ok(());
    }
    // int8: quantize on the training windows, then the int8 model's own threshold.
    let mut engine = engine_of(&ck, threads_or_all(None))?;
    let (splits, binarize) = data_for(&ck, &a.data.data, false, a.seed)?;
    if splits.train.is_empty() {
        bail!("--int8 calibrates the quantization on the training split, which is empty here");
    }
    let (x, n) = train::fixed_subset(&splits.train, splits.train.len(), binarize, a.seed);
    let q = Int8Model::calibrate(*engine.config(), &engine.params, &x, n)?;
    println!(
        "int8 model: {} B of quantized parameters ({:.1} % of the f32 {} B), layer inputs calibrated on {n} training windows",
        q.bytes(),
        100.0 * q.bytes() as f64 / (4 * engine.params.len()) as f64,
        4 * engine.params.len()
    );
    engine.set_int8(Some(q.clone()));
    let threshold = match &ck.calibration {
        None => None,
        Some(c) => {
            if c.score != ScoreName::NegElboMean {
                eprintln!(
                    "note: the checkpoint's threshold is for {:?}; the int8 model scores -ELBO at z = mu, calibrated here at the same false-alarm rate",
                    c.score
                );
            }
            let c8 = super::score::calibrate(
                &engine,
                &splits.valid,
                binarize,
                ScoreName::NegElboMean,
                1,
                c.false_alarm_rate,
                a.seed,
                true,
            )?;
            println!(
                "int8 threshold {} on {} normal validation windows at a false-alarm rate of {} (f32: {})",
                c8.threshold, c8.calibration_windows, c8.false_alarm_rate, c.threshold
            );
            Some(Threshold {
                value: c8.threshold,
                false_alarm_rate: c8.false_alarm_rate as f32,
            })
        }
    };
    let int8 = Int8Export {
        model: &q,
        threshold,
    };
    let s = export::export_model_file_with(&ck, Some(&int8), &a.model)
        .with_context(|| format!("{}", a.model.display()))?;
    println!("{s}");
    if let Some(r) = &a.rust {
        export::export_rust_with(&ck, Some(&int8), r)
            .with_context(|| format!("{}", r.display()))?;
        println!("{}", r.display());
    }
    Ok(())
}
