//! Pictures of rows shared by the commands: windows per axis or as a grid, images as tiles.

use std::path::Path;

use anyhow::{Context, Result};

use host_trainer::data::Dataset;
use host_trainer::model::Checkpoint;
use host_trainer::plot;

/// Columns of a square-ish grid of `n` tiles.
pub(crate) fn grid_cols(n: usize) -> usize {
    ((n as f64).sqrt().ceil() as usize).max(1)
}

/// Most windows drawn as per-axis rows ([`plot::axis_panels`]); more are drawn as a grid of
/// small panels.
pub(crate) const AXIS_PANEL_ROWS: usize = 12;

/// The channel names of the data (`ds`, when given and named), else of the data the
/// checkpoint was trained on (its `channels` metadata); empty when neither says.
pub(crate) fn channel_names_of(ck: &Checkpoint, ds: Option<&Dataset>) -> Vec<String> {
    match ds {
        Some(d) if !d.channel_names.is_empty() => d.channel_names.clone(),
        _ => ck
            .info
            .get("channels")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default(),
    }
}

/// The y-axis text of window pictures: milli-g for the built-in accelerometer.
pub(crate) fn value_desc(ck: &Checkpoint) -> &'static str {
    let data = ck.info.get("data").and_then(|v| v.as_str()).unwrap_or("");
    if data.starts_with("synthetic") {
        "mg, mean removed"
    } else {
        "value, mean removed"
    }
}

/// Back to raw units: x = x' / scale + offset.
pub(crate) fn raw_window(ck: &Checkpoint, x: &[f32]) -> Vec<f32> {
    x.iter()
        .zip(&ck.norm.offset)
        .zip(&ck.norm.scale)
        .map(|((v, o), s)| v / s + o)
        .collect()
}

/// Draws normalized windows `x` (shape: `[n][D]`; with `overlay` of the same shape) as
/// per-axis rows of panels, in raw units.
#[allow(clippy::too_many_arguments)]
pub(crate) fn draw_axis_windows(
    ck: &Checkpoint,
    x: &[f32],
    overlay: Option<(&[f32], (&str, &str))>,
    captions: &[String],
    flagged: &[bool],
    channel_names: &[String],
    title: &str,
    png: &Path,
) -> Result<()> {
    let d = ck.spec.input;
    let wm = ck.window.context("not a model of windows")?;
    let raw: Vec<Vec<f32>> = x.chunks_exact(d).map(|r| raw_window(ck, r)).collect();
    let raw_over: Vec<Vec<f32>> = overlay.map_or_else(Vec::new, |(o, _)| {
        o.chunks_exact(d).map(|r| raw_window(ck, r)).collect()
    });
    let rows: Vec<plot::PanelRow<'_>> = raw
        .iter()
        .enumerate()
        .map(|(i, w)| plot::PanelRow {
            window: w,
            overlay: raw_over.get(i).map(Vec::as_slice),
            caption: captions.get(i).cloned().unwrap_or_default(),
            flagged: flagged.get(i).copied().unwrap_or(false),
        })
        .collect();
    plot::axis_panels(
        png,
        title,
        &rows,
        wm.channels,
        channel_names,
        wm.sample_rate_hz,
        value_desc(ck),
        overlay.map(|(_, names)| names),
    )
    .with_context(|| format!("{}", png.display()))?;
    Ok(())
}

/// Up to `n` rows of `ds` worth looking at: the first window of each anomaly kind (at most
/// `n - 1` of them) and then the first normal windows, in index order; the first `n` rows
/// when there are no anomaly labels.
pub(crate) fn showcase(ds: &Dataset, n: usize) -> Vec<usize> {
    let n = n.min(ds.len());
    let Some(labels) = ds
        .labels
        .as_ref()
        .filter(|_| ds.label_names.first().map(String::as_str) == Some("normal"))
    else {
        return (0..n).collect();
    };
    let mut kinds: Vec<u32> = labels.iter().copied().filter(|&l| l != 0).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let mut idx: Vec<usize> = kinds
        .iter()
        .take(n.saturating_sub(1))
        .filter_map(|&k| labels.iter().position(|&l| l == k))
        .collect();
    let rest = n - idx.len();
    idx.extend((0..ds.len()).filter(|&i| labels[i] == 0).take(rest));
    if idx.len() < n {
        let more: Vec<usize> = (0..ds.len())
            .filter(|i| !idx.contains(i))
            .take(n - idx.len())
            .collect();
        idx.extend(more);
    }
    idx.sort_unstable();
    idx
}

/// Draws rows as images (image data) or as windows (sensor data), in raw units.
pub(crate) fn draw_rows(
    ck: &Checkpoint,
    x: &[f32],
    n: usize,
    title: &str,
    png: &Path,
    scores: Option<(&[f32], f32)>,
    labels: Option<(&[u32], &[String])>,
) -> Result<()> {
    let d = ck.spec.input;
    let (h, w) = image_shape(ck);
    if let Some(wm) = ck.window {
        // Back to raw units: x = x' / scale + offset.
        let windows: Vec<Vec<f32>> = x
            .chunks_exact(d)
            .map(|r| {
                r.iter()
                    .zip(&ck.norm.offset)
                    .zip(&ck.norm.scale)
                    .map(|((v, o), s)| v / s + o)
                    .collect()
            })
            .collect();
        let (sc, thr) = scores.unwrap_or((&[], f32::MAX));
        let fallback = vec![f32::NAN; n];
        let sc = if sc.is_empty() { &fallback[..] } else { sc };
        let (lab, names) = labels.map_or((None, &[][..]), |(l, nm)| (Some(l), nm));
        plot::windows_plot(
            png,
            title,
            &windows,
            wm.channels,
            &channel_names_of(ck, None),
            sc,
            thr,
            lab,
            names,
        )
        .with_context(|| format!("{}", png.display()))?;
    } else {
        plot::image_grid(png, x, h, w, grid_cols(n), 3, Some(title))
            .with_context(|| format!("{}", png.display()))?;
    }
    Ok(())
}

/// The name of label `l` of `ds` (its number when unnamed).
pub(crate) fn label_of(ds: &Dataset, l: u32) -> String {
    ds.label_names
        .get(l as usize)
        .cloned()
        .unwrap_or_else(|| l.to_string())
}

/// `(height, width)` of the model's rows drawn as images: MNIST, Frey Face, else one row.
pub(crate) fn image_shape(ck: &Checkpoint) -> (usize, usize) {
    match ck.spec.input {
        784 => (28, 28),
        560 => (28, 20),
        d => (1, d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labelled(labels: &[u32]) -> Dataset {
        Dataset {
            dim: 1,
            x: vec![0.0; labels.len()],
            labels: Some(labels.to_vec()),
            label_names: ["normal", "a", "b"].map(String::from).to_vec(),
            ..Dataset::default()
        }
    }

    /// One window per anomaly kind (the first of each), then normal ones, in index order;
    /// at least one normal window when there is room.
    #[test]
    fn showcase_picks_each_kind_and_normal_windows() {
        let ds = labelled(&[0, 0, 1, 1, 0, 2, 0]);
        assert_eq!(showcase(&ds, 4), [0, 1, 2, 5]);
        assert_eq!(showcase(&ds, 2), [0, 2]);
        assert_eq!(showcase(&ds, 20), (0..7).collect::<Vec<_>>());
        // Only anomalies: filled with more of them.
        assert_eq!(showcase(&labelled(&[1, 1, 2]), 3), [0, 1, 2]);
        // No anomaly labels: the first rows.
        let plain = Dataset {
            labels: None,
            ..labelled(&[0, 0, 0])
        };
        assert_eq!(showcase(&plain, 2), [0, 1]);
    }
}
