//! Datasets: rows of equal length, optional labels, and how to read them back as images or
//! sensor windows.

pub mod csv;
mod error;
pub mod idx;
pub mod mat;
pub mod spec;
pub mod split;
pub mod synthetic;

pub use self::csv::{CsvOptions, load_csv};
pub use error::{DataError, SPEC_FORMS};
pub use idx::{binarize_dynamic, binarize_threshold, load_mnist_dir, read_idx};
pub use mat::{MatMatrix, load_frey, read_mat_matrix};
pub use spec::{DataSpec, parse_data_spec};
pub use split::{fit_normalization, split_rows};

/// A dataset held in memory: `n` rows of `dim` values, row-major.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dataset {
    /// Where it came from, for summaries and checkpoint metadata (e.g. `mnist:/data/mnist`).
    pub source: String,
    /// Values per row (D).
    pub dim: usize,
    /// `[n][dim]`, raw units (pixel intensity in [0, 1], milli-g, ...), before normalization.
    pub x: Vec<f32>,
    /// One label per row, if known (digit class; 0 = normal, k > 0 = anomaly kind k).
    pub labels: Option<Vec<u32>>,
    /// Name of each label value (index = value); may be empty.
    pub label_names: Vec<String>,
    /// `(height, width)` when each row is a row-major image.
    pub image: Option<(usize, usize)>,
    /// Window geometry when each row is a window of a multichannel time series.
    pub window: Option<Window>,
    /// Name of each channel of a window (the CSV value columns; `x, y, z` for the built-in
    /// accelerometer); empty when unknown.
    pub channel_names: Vec<String>,
    /// The segment (recording, subject, series: a CSV `group=` run) each row's window was
    /// cut from, when the file says; splits keep a segment's windows together.
    pub groups: Option<Vec<u32>>,
    /// Things the loader did that the user should hear about (time steps left out of every
    /// window, a sample rate it had to assume, ...), one sentence each; usually empty.
    pub warnings: Vec<String>,
}

/// Rows are windows of `len` time steps × `channels`, interleaved `[t][channel]`, taken every
/// `hop` samples from a stream sampled at `sample_rate_hz`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    /// Time steps per window.
    pub len: usize,
    /// Samples between window starts.
    pub hop: usize,
    /// Channels per time step (3 for an accelerometer).
    pub channels: usize,
    /// Sampling rate of the stream.
    pub sample_rate_hz: f32,
}

/// Train, validation and test parts of one dataset.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Splits {
    /// Fits the model and the normalization.
    pub train: Dataset,
    /// Held out: threshold calibration, early checks.
    pub valid: Dataset,
    /// Held out: the reported figures.
    pub test: Dataset,
}

impl Dataset {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.x.len().checked_div(self.dim).unwrap_or(0)
    }
    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Row `i` (`dim` values).
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.dim..(i + 1) * self.dim]
    }
    /// The rows `idx`, in that order, with their labels.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        let mut x = Vec::with_capacity(idx.len() * self.dim);
        for &i in idx {
            x.extend_from_slice(self.row(i));
        }
        Dataset {
            x,
            labels: self
                .labels
                .as_ref()
                .map(|l| idx.iter().map(|&i| l[i]).collect()),
            groups: self
                .groups
                .as_ref()
                .map(|g| idx.iter().map(|&i| g[i]).collect()),
            ..self.clone_meta()
        }
    }
    /// Everything but the rows.
    pub fn clone_meta(&self) -> Dataset {
        Dataset {
            source: self.source.clone(),
            dim: self.dim,
            x: Vec::new(),
            labels: None,
            label_names: self.label_names.clone(),
            image: self.image,
            window: self.window,
            channel_names: self.channel_names.clone(),
            groups: None,
            warnings: self.warnings.clone(),
        }
    }
    /// A 64-bit FNV-1a hash of the dimension, the values' bits and the labels: identifies the
    /// exact data a model was trained on.
    pub fn hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for b in bytes {
                h ^= *b as u64;
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        eat(&(self.dim as u64).to_le_bytes());
        for v in &self.x {
            eat(&v.to_bits().to_le_bytes());
        }
        if let Some(l) = &self.labels {
            for v in l {
                eat(&v.to_le_bytes());
            }
        }
        h
    }
}

/// Test helper: the fixture `dir/name` holds exactly `bytes`; with `REGENERATE_FIXTURES` set,
/// writes it instead.
#[cfg(test)]
pub(crate) fn check_fixture(dir: &std::path::Path, name: &str, bytes: &[u8]) {
    let path = dir.join(name);
    if std::env::var_os("REGENERATE_FIXTURES").is_some() {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(&path, bytes).unwrap();
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        committed == bytes,
        "{} differs from its generator; regenerate with REGENERATE_FIXTURES=1",
        path.display()
    );
}
