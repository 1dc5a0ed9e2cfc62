//! `manifold`: the learned 2-D manifold through the inverse Gaussian CDF (paper Fig. 4).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use host_trainer::engine::Engine;
use host_trainer::model::Checkpoint;
use host_trainer::plot;

use super::draw::{draw_rows, image_shape};
use super::{engine_of, load_ckpt, threads_or_all};
use crate::ManifoldArgs;

/// Φ⁻¹(p), the inverse standard normal CDF (Acklam's rational approximation, relative error
/// below 1.2e-9), for the manifold grid of paper Fig. 4.
pub fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383_577_518_672_69e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let pl = 0.02425;
    if p < pl {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - pl {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -inverse_normal_cdf(1.0 - p)
    }
}

/// `manifold`.
pub fn manifold(a: &ManifoldArgs) -> Result<()> {
    let ck = load_ckpt(&a.ckpt)?;
    host_trainer::limits::check_decoded(
        &format!("a {0} × {0} manifold", a.grid),
        (a.grid as u128).saturating_mul(a.grid as u128),
        ck.spec.input,
        "--grid",
    )?;
    let engine = engine_of(&ck, threads_or_all(None))?;
    let png = draw_manifold(&engine, &ck, a.grid, &a.png)?;
    println!("{}", png.display());
    Ok(())
}

/// Decodes a `grid` × `grid` Φ⁻¹ grid of the 2-D latent space and draws it to `png`.
pub(crate) fn draw_manifold(
    engine: &Engine,
    ck: &Checkpoint,
    grid: usize,
    png: &Path,
) -> Result<PathBuf> {
    if ck.spec.latent != 2 {
        bail!(
            "manifold needs a model with --latent 2 (this one has {})",
            ck.spec.latent
        );
    }
    if grid < 2 {
        bail!("--grid must be at least 2");
    }
    // Linearly spaced coordinates on the unit square through Φ⁻¹ (paper Fig. 4).
    let mut z = Vec::with_capacity(grid * grid * 2);
    for i in 0..grid {
        for j in 0..grid {
            let u = (j as f64 + 0.5) / grid as f64;
            let v = 1.0 - (i as f64 + 0.5) / grid as f64;
            z.push(inverse_normal_cdf(u) as f32);
            z.push(inverse_normal_cdf(v) as f32);
        }
    }
    let x = engine.decode_mean(&z, grid * grid)?;
    if ck.window.is_some() {
        draw_rows(
            ck,
            &x,
            grid * grid,
            "Learned 2-D manifold (Φ⁻¹ grid; each window's channel means removed)",
            png,
            None,
            None,
        )?;
    } else {
        let (h, w) = image_shape(ck);
        plot::image_grid(
            png,
            &x,
            h,
            w,
            grid,
            2,
            Some("Learned 2-D manifold (paper Fig. 4)"),
        )
        .with_context(|| format!("{}", png.display()))?;
    }
    Ok(png.to_path_buf())
}
