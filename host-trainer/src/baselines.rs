//! Classical baselines beside every VAE result: PCA reconstruction error and window energy,
//! fitted on the same (normal) training windows and scored on the same windows as the model,
//! so a user sees on their own data whether the VAE beats them.
//!
//! The definitions are those of `scripts/bench-real/baselines.py` (which also runs
//! scikit-learn's IsolationForest), in f64 on the data in its raw units:
//!
//! * **PCA reconstruction.** Standardize each of the D features by the training windows' mean
//!   μⱼ and population standard deviation σⱼ (floored at 10⁻⁶ · maxₖ σₖ; all 1 if every σ is
//!   0); take the eigenvectors of the standardized training covariance (centred at its mean
//!   m, ≈ 0) for the smallest k whose eigenvalues explain ≥ 90 % of the variance, k ≤ n − 1;
//!   score = ‖(z − m) − VₖVₖᵀ(z − m)‖². The eigen decomposition is `nalgebra`'s symmetric
//!   one, of the D × D covariance, or of the n × n Gram matrix when n < D.
//! * **Window energy (two-sided).** E = (1/D) Σ (x − m_c)² over the window's values, m_c the
//!   training mean of channel c; L = ln E; score = |L − mean L| / sd L over the training
//!   windows (an anomaly may be too quiet as well as too loud).

use nalgebra::DMatrix;

use crate::data::Dataset;
use crate::model::Normalization;

/// Fraction of the training variance the PCA baseline keeps.
pub const PCA_VARIANCE: f64 = 0.90;

/// Largest D × D (or n × n) matrix the PCA baseline decomposes (64 MB of f64).
pub const PCA_MAX_SIDE: usize = 2896;

/// A fitted PCA-reconstruction baseline (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct Pca {
    mu: Vec<f64>,
    sd: Vec<f64>,
    centre: Vec<f64>,
    /// Shape: `[D][k]`, orthonormal columns.
    basis: DMatrix<f64>,
}

/// A fitted window-energy baseline (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct Energy {
    channel_mean: Vec<f64>,
    mean_log: f64,
    sd_log: f64,
}

/// The rows of `ds` in raw units, f64, undoing `norm` (`x = x' / scale + offset`).
fn raw_rows(ds: &Dataset, norm: Option<&Normalization>) -> Vec<Vec<f64>> {
    (0..ds.len())
        .map(|i| {
            let r = ds.row(i);
            match norm {
                Some(n) => r
                    .iter()
                    .zip(n.offset.iter().zip(&n.scale))
                    .map(|(&v, (&o, &s))| v as f64 / s as f64 + o as f64)
                    .collect(),
                None => r.iter().map(|&v| v as f64).collect(),
            }
        })
        .collect()
}

impl Pca {
    /// Fits on the rows of `train` (normalized by `norm`, undone first; `None` if raw).
    /// `None` when there are fewer than 2 rows or the matrix to decompose would exceed
    /// [`PCA_MAX_SIDE`].
    pub fn fit(train: &Dataset, norm: Option<&Normalization>) -> Option<Pca> {
        let (n, d) = (train.len(), train.dim);
        if n < 2 || d == 0 || n.min(d) > PCA_MAX_SIDE {
            return None;
        }
        let rows = raw_rows(train, norm);
        let mut mu = vec![0f64; d];
        for r in &rows {
            mu.iter_mut().zip(r).for_each(|(m, v)| *m += v);
        }
        mu.iter_mut().for_each(|m| *m /= n as f64);
        let mut sd = vec![0f64; d];
        for r in &rows {
            sd.iter_mut()
                .zip(r.iter().zip(&mu))
                .for_each(|(s, (v, m))| *s += (v - m) * (v - m));
        }
        sd.iter_mut().for_each(|s| *s = (*s / n as f64).sqrt());
        let max_sd = sd.iter().copied().fold(0f64, f64::max);
        if max_sd == 0.0 {
            sd.iter_mut().for_each(|s| *s = 1.0);
        } else {
            sd.iter_mut().for_each(|s| *s = s.max(1e-6 * max_sd));
        }
        let mut z = DMatrix::<f64>::zeros(n, d);
        for (i, r) in rows.iter().enumerate() {
            for j in 0..d {
                z[(i, j)] = (r[j] - mu[j]) / sd[j];
            }
        }
        let centre: Vec<f64> = (0..d).map(|j| z.column(j).mean()).collect();
        for (j, &c) in centre.iter().enumerate() {
            z.column_mut(j).iter_mut().for_each(|v| *v -= c);
        }
        let (values, vectors) = crate::pca::principal_axes(&z);
        let total: f64 = values.iter().map(|v| v.max(0.0)).sum();
        let mut k = 0;
        let mut acc = 0.0;
        for &v in &values {
            k += 1;
            acc += v.max(0.0);
            if total <= 0.0 || acc / total >= PCA_VARIANCE {
                break;
            }
        }
        let k = k.min(n - 1).min(d).max(1);
        let basis = vectors.columns(0, k).into_owned();
        Some(Pca {
            mu,
            sd,
            centre,
            basis,
        })
    }

    /// Components kept (k).
    pub fn components(&self) -> usize {
        self.basis.ncols()
    }

    /// Squared reconstruction error of each row of `ds` (normalized by `norm`, undone first).
    pub fn score(&self, ds: &Dataset, norm: Option<&Normalization>) -> Vec<f64> {
        let d = self.mu.len();
        raw_rows(ds, norm)
            .iter()
            .map(|r| {
                let z = nalgebra::DVector::from_fn(d, |j, _| {
                    (r[j] - self.mu[j]) / self.sd[j] - self.centre[j]
                });
                let proj = self.basis.tr_mul(&z);
                (z.norm_squared() - proj.norm_squared()).max(0.0)
            })
            .collect()
    }
}

impl Energy {
    /// Fits on the rows of `train` (windows of `channels` interleaved channels; normalized by
    /// `norm`, undone first). `None` without rows or when `channels` does not divide D.
    pub fn fit(train: &Dataset, channels: usize, norm: Option<&Normalization>) -> Option<Energy> {
        let (n, d) = (train.len(), train.dim);
        if n == 0 || channels == 0 || !d.is_multiple_of(channels) {
            return None;
        }
        let rows = raw_rows(train, norm);
        let mut channel_mean = vec![0f64; channels];
        for r in &rows {
            for (j, v) in r.iter().enumerate() {
                channel_mean[j % channels] += v;
            }
        }
        let per = (n * (d / channels)) as f64;
        channel_mean.iter_mut().for_each(|m| *m /= per);
        let mut e = Energy {
            channel_mean,
            mean_log: 0.0,
            sd_log: 1.0,
        };
        let logs: Vec<f64> = rows.iter().map(|r| e.log_energy(r)).collect();
        let mean = logs.iter().sum::<f64>() / n as f64;
        let var = logs.iter().map(|l| (l - mean) * (l - mean)).sum::<f64>() / n as f64;
        e.mean_log = mean;
        e.sd_log = if var.sqrt() < 1e-12 { 1.0 } else { var.sqrt() };
        Some(e)
    }

    fn log_energy(&self, r: &[f64]) -> f64 {
        let c = self.channel_mean.len();
        let e = r
            .iter()
            .enumerate()
            .map(|(j, v)| (v - self.channel_mean[j % c]).powi(2))
            .sum::<f64>()
            / r.len() as f64;
        e.max(1e-300).ln()
    }

    /// |ln E − mean| / sd of each row of `ds` (normalized by `norm`, undone first).
    pub fn score(&self, ds: &Dataset, norm: Option<&Normalization>) -> Vec<f64> {
        raw_rows(ds, norm)
            .iter()
            .map(|r| (self.log_energy(r) - self.mean_log).abs() / self.sd_log)
            .collect()
    }
}

/// One baseline's result on a scored set.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct BaselineResult {
    /// `pca` or `energy`.
    pub name: &'static str,
    /// What it is, for the summary (`PCA reconstruction, k = 10`).
    pub label: String,
    /// ROC AUC on the scored set (`None` without both classes).
    pub auc: Option<f64>,
}

/// Both baselines fitted on `train` and scored on `test` (normalized by `norm`), with ROC AUC
/// against `is_anomaly`.
pub fn compare(
    train: &Dataset,
    test: &Dataset,
    norm: Option<&Normalization>,
    is_anomaly: &[bool],
) -> Vec<BaselineResult> {
    let auc = |s: Vec<f64>| {
        let s: Vec<f32> = s.iter().map(|&v| v as f32).collect();
        crate::metrics::roc_auc(&s, is_anomaly)
    };
    let mut out = Vec::new();
    if let Some(p) = Pca::fit(train, norm) {
        out.push(BaselineResult {
            name: "pca",
            label: format!(
                "PCA reconstruction ({} of {} components, {:.0} % of the variance)",
                p.components(),
                train.dim,
                PCA_VARIANCE * 100.0
            ),
            auc: auc(p.score(test, norm)),
        });
    }
    let channels = train.window.map_or(1, |w| w.channels);
    if let Some(e) = Energy::fit(train, channels, norm) {
        out.push(BaselineResult {
            name: "energy",
            label: "window energy (two-sided |z| of ln E)".into(),
            auc: auc(e.score(test, norm)),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[[f32; 3]]) -> Dataset {
        Dataset {
            dim: 3,
            x: rows.iter().flatten().copied().collect(),
            ..Dataset::default()
        }
    }

    #[test]
    fn pca_reconstructs_the_training_plane_and_flags_points_off_it() {
        // Points on the plane z = x + y (rank 2), with a little spread.
        let rows: Vec<[f32; 3]> = (0..50)
            .map(|i| {
                let (x, y) = ((i as f32 * 0.37).sin() * 3.0, (i as f32 * 0.91).cos() * 2.0);
                [x, y, x + y]
            })
            .collect();
        let train = table(&rows);
        let p = Pca::fit(&train, None).unwrap();
        assert_eq!(p.components(), 2);
        let on = p.score(&table(&[[1.0, 1.0, 2.0]]), None)[0];
        let off = p.score(&table(&[[1.0, 1.0, -2.0]]), None)[0];
        assert!(on < 1e-9, "{on}");
        assert!(off > 1.0, "{off}");
        // Fewer rows than features: the Gram route gives the same plane.
        let few = table(&rows[..2]);
        let p2 = Pca::fit(&few, None).unwrap();
        assert_eq!(p2.components(), 1);
        assert!(p2.score(&table(&[rows[0]]), None)[0] < 1e-9);
    }

    #[test]
    fn pca_undoes_the_normalization_exactly_enough() {
        let rows: Vec<[f32; 3]> = (0..40)
            .map(|i| {
                let t = i as f32;
                [t.sin(), (2.0 * t).cos() * 5.0 + 100.0, t.sin() * 0.5]
            })
            .collect();
        let raw = table(&rows);
        let norm = Normalization {
            offset: vec![0.5, 100.0, -1.0],
            scale: vec![2.0, 0.25, 3.0],
        };
        let mut normed = raw.clone();
        norm.apply(&mut normed.x);
        let a = Pca::fit(&raw, None).unwrap().score(&raw, None);
        let b = Pca::fit(&normed, Some(&norm))
            .unwrap()
            .score(&normed, Some(&norm));
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-4 * (1.0 + x.abs()), "{x} vs {y}");
        }
    }

    #[test]
    fn energy_is_two_sided() {
        let rows: Vec<[f32; 3]> = (0..30)
            .map(|i| {
                let a = 1.0 + 0.1 * (i as f32).sin();
                [a, -a, a]
            })
            .collect();
        let e = Energy::fit(&table(&rows), 1, None).unwrap();
        let s = e.score(
            &table(&[[1.0, -1.0, 1.0], [10.0, -10.0, 10.0], [0.01, 0.0, 0.0]]),
            None,
        );
        assert!(s[0] < 2.0, "{s:?}");
        assert!(s[1] > 5.0 && s[2] > 5.0, "{s:?}");
    }
}
