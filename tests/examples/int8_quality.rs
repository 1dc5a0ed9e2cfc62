//! Float against int8 (issue 11): the committed default model and its committed int8 export
//! (`firmware/models/default-int8.vaem`: `vae_nostd::quant`, calibrated on the default job's
//! training windows), scored
//! with −ELBO at z = μ on the default job's synthetic splits at the default anomaly severity and
//! at 0.3 (subtle anomalies): ROC AUC, and the false-alarm rate on the test windows at each
//! model's own threshold, calibrated on the validation split's normal windows with the
//! conformal rule, beside the rule's 99.9 % bound.
//!
//! `cargo run --release -p vae-tests --example int8_quality`
use host_trainer::data::synthetic::{SyntheticOptions, synthetic_splits};
use host_trainer::metrics::roc_auc;
use rand_core::SeedableRng;
use vae_nostd::calibration::{allowed_false_alarms, conformal_rank};
use vae_nostd::modelfile::ModelFile;
use vae_nostd::quant::{self, QuantLayout, QuantVae};
use vae_nostd::{Portable, ScoreKind, Vae, Workspace};

const MODEL: &[u8] = include_bytes!("../../firmware/models/default.vaem");
static INT8_ALIGNED: &firmware::Aligned<[u8]> =
    &firmware::Aligned(*include_bytes!("../../firmware/models/default-int8.vaem"));
const INT8: &[u8] = include_bytes!("../../firmware/models/default-int8.vaem");

fn main() {
    let f = ModelFile::parse(MODEL).unwrap();
    let cfg = f.config();
    let mut p = vec![0f32; cfg.num_params()];
    f.copy_params(&mut p).unwrap();
    let d = cfg.input;
    let (mut off, mut sc) = (vec![0f32; d], vec![0f32; d]);
    f.copy_normalization(&mut off, &mut sc).unwrap();
    let rate = f.false_alarm_rate().unwrap_or(0.01);
    let norm = |x: &[f32]| -> Vec<f32> {
        x.chunks_exact(d)
            .flat_map(|w| w.iter().zip(&off).zip(&sc).map(|((v, o), s)| (v - o) * s))
            .collect()
    };
    let layout = QuantLayout::new(&cfg);
    let (nf, ni) = quant::scratch_len(&cfg);
    let mut f32s = vec![0f32; nf];
    let mut pairs = vec![0u32; ni];
    // The committed int8 model, as the firmware embeds it (used in place: an aligned copy).
    let bytes = &INT8_ALIGNED.0;
    let fq = ModelFile::parse(bytes).unwrap();
    let q: QuantVae<'_> = fq.quant_in_place().unwrap();
    println!(
        "model {} parameters: f32 file {} B, int8 file {} B ({:.1} %); parameters {} B and {} B ({:.1} %)",
        cfg.num_params(),
        MODEL.len(),
        INT8.len(),
        100.0 * INT8.len() as f64 / MODEL.len() as f64,
        4 * cfg.num_params(),
        layout.bytes(),
        100.0 * layout.bytes() as f64 / (4 * cfg.num_params()) as f64,
    );
    let vae = Vae::new(cfg, &p).unwrap();
    let mut buf = vec![0f32; cfg.workspace_len(1, 1)];
    let mut rng = rand_pcg::Pcg32::seed_from_u64(1);
    let mut score = |x: &[f32], int8: bool| -> f32 {
        if int8 {
            let mut head = vec![0f32; 2 * cfg.latent];
            q.score_neg_elbo_at_mean(&Portable, x, &mut f32s, &mut pairs, &mut head)
                .unwrap()
        } else {
            let mut ws = Workspace::new(&cfg, 1, 1, &mut buf).unwrap();
            let mut o = [0f32];
            vae.score(
                &Portable,
                x,
                1,
                ScoreKind::NegElboAtMean,
                &mut rng,
                &mut ws,
                &mut o,
            )
            .unwrap();
            o[0]
        }
    };
    println!("| data | model | ROC AUC | threshold | test false alarms (bound) |");
    println!("|---|---|---:|---:|---:|");
    for severity in [1.0f32, 0.3] {
        let s = synthetic_splits(&SyntheticOptions {
            severity,
            ..SyntheticOptions::default()
        });
        let (valid, test) = (norm(&s.valid.x), norm(&s.test.x));
        let vl = s.valid.labels.as_ref().unwrap();
        let tl = s.test.labels.as_ref().unwrap();
        for int8 in [false, true] {
            let mut cal: Vec<f32> = valid
                .chunks_exact(d)
                .zip(vl)
                .filter(|(_, l)| **l == 0)
                .map(|(x, _)| score(x, int8))
                .collect();
            let n = cal.len() as u32;
            let k = conformal_rank(rate, n).max(1);
            cal.sort_by(|a, b| b.total_cmp(a));
            let thr = cal[k - 1];
            let ts: Vec<f32> = test.chunks_exact(d).map(|x| score(x, int8)).collect();
            let truth: Vec<bool> = tl.iter().map(|l| *l != 0).collect();
            let auc = roc_auc(&ts, &truth).unwrap();
            let normal = truth.iter().filter(|t| !**t).count() as u32;
            let fa = ts
                .iter()
                .zip(&truth)
                .filter(|(s, t)| !**t && **s > thr)
                .count();
            println!(
                "| synthetic, severity {severity} | {} | {auc:.4} | {thr:.3} | {fa}/{normal} ({}) |",
                if int8 { "int8" } else { "f32" },
                allowed_false_alarms(k, n, normal)
            );
        }
    }
}
