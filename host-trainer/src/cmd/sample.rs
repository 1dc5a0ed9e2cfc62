//! `sample`: samples from the prior, decoded (paper Fig. 5).

use std::path::{Path, PathBuf};

use anyhow::Result;
use rand_core::SeedableRng;
use rand_pcg::Pcg64Mcg;

use host_trainer::engine::Engine;
use host_trainer::model::Checkpoint;

use super::draw::{AXIS_PANEL_ROWS, channel_names_of, draw_axis_windows, draw_rows};
use super::{engine_of, load_ckpt, threads_or_all};
use crate::SampleArgs;

/// `sample`.
pub fn sample(a: &SampleArgs) -> Result<()> {
    let ck = load_ckpt(&a.ckpt)?;
    host_trainer::limits::check_decoded(
        &format!("drawing {} samples", a.n),
        a.n as u128,
        ck.spec.input,
        "--n",
    )?;
    let engine = engine_of(&ck, threads_or_all(None))?;
    let png = draw_samples(&engine, &ck, a.n, a.seed, &a.png)?;
    println!("{}", png.display());
    Ok(())
}

/// Draws `n` samples from the prior, decoded (decoder means), to `png`.
pub(crate) fn draw_samples(
    engine: &Engine,
    ck: &Checkpoint,
    n: usize,
    seed: u64,
    png: &Path,
) -> Result<PathBuf> {
    let cfg = engine.config();
    let mut z = vec![0f32; n * cfg.latent];
    vae_nostd::rng::fill_standard_normal(&mut Pcg64Mcg::seed_from_u64(seed), &mut z);
    let x = engine.decode_mean(&z, n)?;
    if ck.window.is_some() && n <= AXIS_PANEL_ROWS {
        let captions: Vec<String> = (0..n).map(|i| format!("sample {}", i + 1)).collect();
        draw_axis_windows(
            ck,
            &x,
            None,
            &captions,
            &vec![false; n],
            &channel_names_of(ck, None),
            "Samples from the prior, decoder means (paper Fig. 5)",
            png,
        )?;
        return Ok(png.to_path_buf());
    }
    draw_rows(
        ck,
        &x,
        n,
        "Samples from the prior, decoded (paper Fig. 5)",
        png,
        None,
        None,
    )?;
    Ok(png.to_path_buf())
}
