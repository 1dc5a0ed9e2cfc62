//! `eval`: the lower bound and the importance-sampled log-likelihood, per class.

use anyhow::{Result, bail};
use serde_json::json;
use vae_nostd::Objective;

use host_trainer::data::Dataset;
use host_trainer::engine::Engine;
use host_trainer::train::{self, Binarize};

use super::data::{data_for, pick};
use super::{engine_of, load_ckpt, progress, split_name, threads_or_all};
use crate::{EvalArgs, SplitArg};

/// Lower bound and −log p̂(x) of a dataset, overall and per label.
pub struct EvalReport {
    /// JSON form.
    pub json: serde_json::Value,
    /// Table form.
    pub table: String,
}

/// The bound with `samples` draws and, with `iw > 0`, log p(x) by importance sampling with
/// `iw` samples, of the first `limit` rows of `ds` (all by default), overall and per label;
/// a spinner on stderr unless `quiet`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn evaluate(
    engine: &Engine,
    ds: &Dataset,
    binarize: Binarize,
    samples: usize,
    iw: usize,
    limit: Option<usize>,
    seed: u64,
    quiet: bool,
) -> Result<EvalReport> {
    let n = limit.unwrap_or(usize::MAX).min(ds.len());
    let (x, n) = train::fixed_subset(ds, n, binarize, seed);
    let obj = Objective {
        estimator: vae_nostd::Estimator::Analytic,
        samples,
        beta: 1.0,
    };
    let mut per = vec![0f32; n];
    let b = progress::with_spinner(
        format!("lower bound (L = {samples}) of {n} rows"),
        quiet,
        || engine.evaluate(&x, n, obj, seed, Some(&mut per)),
    )?;
    let nll = if iw > 0 {
        Some(progress::with_spinner(
            format!("log p(x) by importance sampling (k = {iw}) of {n} rows"),
            quiet,
            || {
                engine.score(
                    &x,
                    n,
                    vae_nostd::ScoreKind::NegLogLikelihood { samples: iw },
                    seed ^ 7,
                )
            },
        )?)
    } else {
        None
    };
    let mut rows = vec![
        json!({"class": "all", "n": n, "elbo": b.objective, "kl": b.kl, "rec": b.rec,
        "log_px": nll.as_ref().map(|v| -v.iter().map(|s| *s as f64).sum::<f64>() / n as f64)}),
    ];
    if let Some(labels) = &ds.labels {
        let mut classes: Vec<u32> = labels[..n].to_vec();
        classes.sort_unstable();
        classes.dedup();
        for c in classes {
            let idx: Vec<usize> = (0..n).filter(|&i| labels[i] == c).collect();
            let m = idx.len() as f64;
            let elbo = idx.iter().map(|&i| per[i] as f64).sum::<f64>() / m;
            let lp = nll
                .as_ref()
                .map(|v| -idx.iter().map(|&i| v[i] as f64).sum::<f64>() / m);
            let name = ds
                .label_names
                .get(c as usize)
                .cloned()
                .unwrap_or_else(|| c.to_string());
            rows.push(json!({"class": name, "n": idx.len(), "elbo": elbo, "log_px": lp}));
        }
    }
    let table = eval_table(&rows);
    Ok(EvalReport {
        json: json!({"samples": samples, "iw_samples": iw, "rows": rows}),
        table,
    })
}

/// The rows of an [`EvalReport`] as a table of fixed-width columns (class, n, ELBO, log p(x),
/// KL, rec; `-` for a figure a row does not have).
pub(crate) fn eval_table(rows: &[serde_json::Value]) -> String {
    let mut table = format!(
        "{:<12} {:>7} {:>12} {:>12} {:>10} {:>12}\n",
        "class", "n", "ELBO", "log p(x)", "KL", "rec"
    );
    for r in rows {
        let f = |k: &str| {
            r.get(k)
                .and_then(|v| v.as_f64())
                .map_or("-".to_string(), |v| format!("{v:.3}"))
        };
        table += &format!(
            "{:<12} {:>7} {:>12} {:>12} {:>10} {:>12}\n",
            r["class"].as_str().unwrap_or(""),
            r["n"].as_u64().unwrap_or(0),
            f("elbo"),
            f("log_px"),
            f("kl"),
            f("rec")
        );
    }
    table
}

/// `eval`.
pub fn eval(a: &EvalArgs) -> Result<()> {
    let ck = load_ckpt(&a.ckpt)?;
    if a.samples == 0 {
        bail!("--samples must be at least 1");
    }
    // Each thread evaluates chunks of up to 100 rows with all their draws at once.
    let threads = threads_or_all(a.threads);
    let cfg = ck.spec.config()?;
    let draws = a.samples.max(a.iw_samples) as u128;
    host_trainer::limits::check(
        &format!(
            "eval with --samples {} and --iw-samples {} on {threads} threads",
            a.samples, a.iw_samples
        ),
        host_trainer::limits::workspace_bytes(&cfg, 100 * threads as u128, draws),
        "--samples / --iw-samples (or --threads)",
    )?;
    let engine = engine_of(&ck, threads)?;
    let (splits, binarize) = data_for(&ck, &a.data.data, a.split.is_some(), a.seed)?;
    let r = evaluate(
        &engine,
        pick(&splits, a.split.unwrap_or(SplitArg::Test)),
        binarize,
        a.samples,
        a.iw_samples,
        a.limit,
        a.seed,
        a.quiet,
    )?;
    if a.json {
        println!("{}", r.json);
    } else {
        println!(
            "{} split, ELBO with L = {}, log p(x) by importance sampling with k = {}:\n{}",
            split_name(a.split.unwrap_or(SplitArg::Test)),
            a.samples,
            a.iw_samples,
            r.table
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line has its columns at the same places (the count column had printed without
    /// its width, shifting every figure after it).
    #[test]
    fn eval_table_columns_align() {
        let rows = vec![
            json!({"class": "all", "n": 1000, "elbo": -269.8, "kl": 15.2, "rec": -254.5, "log_px": -235.1}),
            json!({"class": "looseness", "n": 20, "elbo": -1167.11, "log_px": null}),
            json!({"class": "normal", "n": 892, "elbo": -130.38, "log_px": -126.98}),
        ];
        let t = eval_table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4);
        let width = lines[0].chars().count();
        for l in &lines {
            assert_eq!(l.chars().count(), width, "{t}");
        }
        // The count ends in column 20 on every line (class 12 wide, a space, n 7 wide).
        for l in &lines {
            let b = l.as_bytes();
            assert!(b[19].is_ascii_alphanumeric() && b[20] == b' ', "{l:?}");
        }
        assert!(lines[2].contains("-1167.110") && lines[2].ends_with("          -"));
    }
}
