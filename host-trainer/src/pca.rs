//! Principal components with `nalgebra`'s symmetric eigen decomposition, shared by the PCA
//! baseline ([`crate::baselines::Pca`]) and the latent-space picture (latent means projected
//! on their first two principal components).

use nalgebra::{DMatrix, SymmetricEigen};

/// Eigenvalues of the covariance `ZᵀZ / n` of the centred rows `z` (shape: `[n][D]`), largest
/// first, with their unit eigenvectors as the columns of a `[D][m]` matrix, `m = min(n, D)`
/// when `n < D` and `D` otherwise. The decomposition is of the D × D covariance, or of the
/// n × n Gram matrix `ZZᵀ / n` when n < D (each Gram eigenvector u gives v = Zᵀu / ‖Zᵀu‖).
pub fn principal_axes(z: &DMatrix<f64>) -> (Vec<f64>, DMatrix<f64>) {
    let (n, d) = z.shape();
    // Eigenpairs of the covariance, from whichever side is smaller.
    let (values, vectors) = if n >= d {
        let eig = SymmetricEigen::new(z.transpose() * z / n as f64);
        (eig.eigenvalues, eig.eigenvectors)
    } else {
        let eig = SymmetricEigen::new(z * z.transpose() / n as f64);
        // v = Zᵀu / ‖Zᵀu‖ for each Gram eigenvector u.
        let mut v = z.transpose() * eig.eigenvectors;
        for mut col in v.column_iter_mut() {
            let norm = col.norm();
            if norm > 0.0 {
                col /= norm;
            }
        }
        (eig.eigenvalues, v)
    };
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    let sorted = order.iter().map(|&i| values[i]).collect();
    let basis = DMatrix::from_fn(vectors.nrows(), order.len(), |r, c| vectors[(r, order[c])]);
    (sorted, basis)
}

/// Rows projected on their first two principal components.
#[derive(Clone, Debug, PartialEq)]
pub struct Projection {
    /// `(PC 1, PC 2)` coordinate of each row, about the rows' mean.
    pub points: Vec<(f32, f32)>,
    /// Fraction of the total variance along PC 1 and PC 2 (0 for a missing component).
    pub explained: [f64; 2],
}

/// Projects the rows of `x` (shape: `[n][dim]`) on their first two principal components
/// (centred at the rows' mean; a one-dimensional input gets 0 as its second coordinate).
/// `None` for fewer than two rows, `dim == 0`, a length that is not `n · dim`, or a
/// non-finite value.
pub fn project_2d(x: &[f32], dim: usize) -> Option<Projection> {
    if dim == 0 || !x.len().is_multiple_of(dim) || x.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let n = x.len() / dim;
    if n < 2 {
        return None;
    }
    let mut z = DMatrix::from_fn(n, dim, |i, j| x[i * dim + j] as f64);
    for j in 0..dim {
        let m = z.column(j).mean();
        z.column_mut(j).iter_mut().for_each(|v| *v -= m);
    }
    let (values, axes) = principal_axes(&z);
    let total: f64 = values.iter().map(|v| v.max(0.0)).sum();
    let frac = |k: usize| match values.get(k) {
        Some(&v) if total > 0.0 => v.max(0.0) / total,
        _ => 0.0,
    };
    let coords = |k: usize| -> Vec<f64> {
        if k < axes.ncols() {
            (&z * axes.column(k)).iter().copied().collect()
        } else {
            vec![0.0; n]
        }
    };
    let (a, b) = (coords(0), coords(1));
    Some(Projection {
        points: a
            .iter()
            .zip(&b)
            .map(|(&u, &v)| (u as f32, v as f32))
            .collect(),
        explained: [frac(0), frac(1)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sd(v: impl Iterator<Item = f32> + Clone) -> f64 {
        let n = v.clone().count() as f64;
        let m = v.clone().map(f64::from).sum::<f64>() / n;
        (v.map(|x| (f64::from(x) - m).powi(2)).sum::<f64>() / n).sqrt()
    }

    /// 8-D points whose first two dimensions are nearly constant and whose spread lies in
    /// dimensions 5 and 7 (a picture of dimensions 1-2 would be a dot): the projection finds
    /// both directions, with the larger first, and spreads on both axes.
    #[test]
    fn projection_finds_the_spread_outside_the_first_dimensions() {
        let mut x = Vec::new();
        for i in 0..200 {
            let a = ((i * 7919 % 211) as f32 / 211.0 - 0.5) * 6.0;
            let b = ((i * 104_729 % 199) as f32 / 199.0 - 0.5) * 2.0;
            let mut row = [0.001 * (i % 3) as f32; 8];
            row[5] = a + 3.0;
            row[7] = b - 1.0;
            x.extend_from_slice(&row);
        }
        let p = project_2d(&x, 8).unwrap();
        assert_eq!(p.points.len(), 200);
        let (s1, s2) = (
            sd(p.points.iter().map(|q| q.0)),
            sd(p.points.iter().map(|q| q.1)),
        );
        // PC 1 is dimension 5 (sd √3 ≈ 1.73), PC 2 dimension 7 (sd ≈ 0.58).
        assert!((s1 - 1.73).abs() < 0.1, "sd of PC 1 {s1}");
        assert!((s2 - 0.58).abs() < 0.05, "sd of PC 2 {s2}");
        assert!(
            p.explained[0] > 0.85 && p.explained[1] > 0.08,
            "{:?}",
            p.explained
        );
        assert!(p.explained[0] + p.explained[1] <= 1.0 + 1e-9);
        // The raw first two dimensions of the same points are nearly a dot.
        assert!(sd(x.chunks(8).map(|r| r[0])) < 0.01);
    }

    #[test]
    fn projection_refuses_what_it_cannot_project() {
        assert!(project_2d(&[], 2).is_none());
        assert!(project_2d(&[1.0, 2.0], 2).is_none());
        assert!(project_2d(&[1.0, 2.0, 3.0], 2).is_none());
        assert!(project_2d(&[1.0, f32::NAN, 3.0, 4.0], 2).is_none());
        assert!(project_2d(&[1.0, 2.0], 0).is_none());
        // One dimension: PC 2 is 0.
        let p = project_2d(&[1.0, 2.0, 4.0], 1).unwrap();
        assert!(p.points.iter().all(|q| q.1 == 0.0));
        assert_eq!(p.explained[1], 0.0);
    }

    /// Fewer rows than dimensions go through the Gram matrix: same eigenvalues as the
    /// covariance, unit eigenvectors.
    #[test]
    fn gram_side_matches_the_covariance_side() {
        let z = DMatrix::from_fn(3, 5, |i, j| ((i * 5 + j) as f64 * 0.37).sin());
        let mut zc = z.clone();
        for j in 0..5 {
            let m = zc.column(j).mean();
            zc.column_mut(j).iter_mut().for_each(|v| *v -= m);
        }
        let (gram_vals, gram_vecs) = principal_axes(&zc);
        let cov = SymmetricEigen::new(zc.transpose() * &zc / 3.0);
        let mut cov_vals: Vec<f64> = cov.eigenvalues.iter().copied().collect();
        cov_vals.sort_by(|a, b| b.total_cmp(a));
        for k in 0..2 {
            assert!(
                (gram_vals[k] - cov_vals[k]).abs() < 1e-9,
                "{gram_vals:?} {cov_vals:?}"
            );
            assert!((gram_vecs.column(k).norm() - 1.0).abs() < 1e-9);
        }
        assert!(gram_vals.windows(2).all(|w| w[0] >= w[1]));
    }
}
