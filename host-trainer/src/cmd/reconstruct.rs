//! `reconstruct`: inputs with their reconstructions.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use host_trainer::data::Dataset;
use host_trainer::engine::Engine;
use host_trainer::model::Checkpoint;
use host_trainer::plot;
use host_trainer::train::{self, Binarize};

use super::data::data_for;
use super::draw::{
    channel_names_of, draw_axis_windows, grid_cols, image_shape, label_of, showcase,
};
use super::{engine_of, load_ckpt, threads_or_all};
use crate::ReconstructArgs;

/// `reconstruct`.
pub fn reconstruct(a: &ReconstructArgs) -> Result<()> {
    let ck = load_ckpt(&a.ckpt)?;
    host_trainer::limits::check_decoded(
        &format!("drawing {} reconstructions", a.n),
        2 * a.n as u128,
        ck.spec.input,
        "--n",
    )?;
    let engine = engine_of(&ck, threads_or_all(None))?;
    let (splits, binarize) = data_for(&ck, &a.data.data, false, 1)?;
    let png = draw_reconstructions(&engine, &ck, &splits.test, binarize, a.n, &a.png)?;
    println!("{}", png.display());
    Ok(())
}

/// Draws `n` rows of `ds` with their reconstructions (decoder mean at z = μ) to `png`:
/// sensor windows per axis, images as tiles.
pub(crate) fn draw_reconstructions(
    engine: &Engine,
    ck: &Checkpoint,
    ds: &Dataset,
    binarize: Binarize,
    n: usize,
    png: &Path,
) -> Result<PathBuf> {
    let cfg = engine.config();
    let d = cfg.input;
    if ck.window.is_some() {
        // Sensor windows: the ones worth seeing (one per anomaly kind, then normal ones),
        // each with its reconstruction (the decoder mean at z = μ) over it, per axis.
        let idx = showcase(ds, n);
        let sub = ds.subset(&idx);
        let (x, n) = train::fixed_subset(&sub, idx.len(), binarize, 3);
        let rec = reconstruct_at_mean(engine, &x, n, cfg.latent)?;
        let captions: Vec<String> = idx
            .iter()
            .enumerate()
            .map(|(k, &i)| match &sub.labels {
                Some(l) => format!("test window #{i}: {}", label_of(&sub, l[k])),
                None => format!("window #{i}"),
            })
            .collect();
        let flagged: Vec<bool> = (0..n)
            .map(|k| sub.labels.as_ref().is_some_and(|l| l[k] != 0))
            .collect();
        draw_axis_windows(
            ck,
            &x,
            Some((&rec, ("window", "reconstruction (decoder mean, z = μ)"))),
            &captions,
            &flagged,
            &channel_names_of(ck, Some(ds)),
            "Windows over their reconstructions (red: labelled anomalous)",
            png,
        )?;
    } else {
        // Images: inputs above their reconstructions, row by row of the grid.
        let (x, n) = train::fixed_subset(ds, n, binarize, 3);
        let rec = reconstruct_at_mean(engine, &x, n, cfg.latent)?;
        let cols = grid_cols(n).max(1);
        let mut rows = Vec::new();
        for start in (0..n).step_by(cols) {
            let end = (start + cols).min(n);
            for src in [&x, &rec] {
                for i in start..start + cols {
                    if i < end {
                        rows.extend_from_slice(&src[i * d..(i + 1) * d]);
                    } else {
                        rows.extend(std::iter::repeat_n(0.0, d));
                    }
                }
            }
        }
        let (h, w) = image_shape(ck);
        plot::image_grid(
            png,
            &rows,
            h,
            w,
            cols,
            3,
            Some("Inputs above their reconstructions (z = μ)"),
        )
        .with_context(|| format!("{}", png.display()))?;
    }
    Ok(png.to_path_buf())
}

/// Decoder means at z = μ(x) for `n` rows of `x`: the reconstructions the pictures show.
fn reconstruct_at_mean(engine: &Engine, x: &[f32], n: usize, latent: usize) -> Result<Vec<f32>> {
    let head = engine.encode(x, n)?;
    let mu: Vec<f32> = head
        .chunks_exact(2 * latent)
        .flat_map(|h| h[..latent].to_vec())
        .collect();
    Ok(engine.decode_mean(&mu, n)?)
}
