//! Matrix-product kernels over slices with explicit dimensions and strides.
//!
//! Every layer of both networks reduces to `C = α·A·B + β·C`. The core ships one portable,
//! deterministic kernel ([`Portable`]) used on the device and by the gradient checks; the host
//! trainer plugs in a blocked, vectorised one (matrixmultiply) behind the same [`Gemm`] trait,
//! so one implementation of each layer serves the batched trainer and the one-window firmware.

use crate::Real;
use crate::error::Error;

/// A read-only strided matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    /// Backing storage.
    pub data: &'a [T],
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

/// A mutable strided matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Debug)]
pub struct MatMut<'a, T> {
    /// Backing storage.
    pub data: &'a mut [T],
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

const fn fits(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    if rows == 0 || cols == 0 {
        return true;
    }
    // Highest index touched, computed without overflow.
    match (rows - 1).checked_mul(rs) {
        None => false,
        Some(a) => match (cols - 1).checked_mul(cs) {
            None => false,
            Some(b) => match a.checked_add(b) {
                None => false,
                Some(last) => last < len,
            },
        },
    }
}

impl<'a, T> MatRef<'a, T> {
    /// Row-major `[rows][cols]` view of a slice.
    pub const fn row_major(data: &'a [T], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }
    /// The transpose of a row-major `[cols][rows]` slice, seen as `[rows][cols]`.
    pub const fn transposed(data: &'a [T], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            rs: 1,
            cs: rows,
        }
    }
    /// True when every element lies inside `data`.
    pub const fn in_bounds(&self) -> bool {
        fits(self.data.len(), self.rows, self.cols, self.rs, self.cs)
    }
}

impl<'a, T> MatMut<'a, T> {
    /// Row-major `[rows][cols]` view of a slice.
    pub fn row_major(data: &'a mut [T], rows: usize, cols: usize) -> Self {
        MatMut {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }
    /// True when every element lies inside `data`.
    pub const fn in_bounds(&self) -> bool {
        fits(self.data.len(), self.rows, self.cols, self.rs, self.cs)
    }
}

/// A general matrix product `C ← α·A·B + β·C`.
///
/// Implementations may assume the shapes agree and every view is in bounds: callers go through
/// [`gemm`], which checks both. With `β = 0`, `C` is overwritten (NaN in old `C` does not leak).
pub trait Gemm<T: Real> {
    /// `C[m][n] ← α · A[m][k] · B[k][n] + β · C[m][n]`.
    fn gemm_unchecked(
        &self,
        alpha: T,
        a: MatRef<'_, T>,
        b: MatRef<'_, T>,
        beta: T,
        c: MatMut<'_, T>,
    );
}

/// Checked entry point: verifies shapes and bounds, then calls the kernel.
#[inline]
pub fn gemm<T: Real, K: Gemm<T> + ?Sized>(
    kernel: &K,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: MatMut<'_, T>,
) -> Result<(), Error> {
    if a.cols != b.rows || a.rows != c.rows || b.cols != c.cols {
        return Err(Error::LengthMismatch {
            what: "gemm shapes",
            expected: a.cols,
            actual: b.rows,
        });
    }
    if !a.in_bounds() || !b.in_bounds() || !c.in_bounds() {
        return Err(Error::BufferTooSmall {
            what: "gemm operand",
            needed: 0,
            available: 0,
        });
    }
    kernel.gemm_unchecked(alpha, a, b, beta, c);
    Ok(())
}

/// The portable kernel: plain loops, a fixed summation order (k ascending, four interleaved
/// partial sums combined as `(s0 + s1) + (s2 + s3)`, exactly [`dot`]), so the host and the
/// Cortex-M give bit-identical results. Fast where it matters on the device: a matrix-vector
/// product with contiguous rows (`A` row-major, `B` given transposed: the encoder at batch 1,
/// `y = W·x`), where four outputs are computed at once from each load of `x` (see `dot4`);
/// every output is still exactly `dot(A row, B column)`. Other stride patterns sum `k`
/// ascending into one accumulator.
#[derive(Clone, Copy, Debug, Default)]
pub struct Portable;

impl<T: Real> Gemm<T> for Portable {
    fn gemm_unchecked(
        &self,
        alpha: T,
        a: MatRef<'_, T>,
        b: MatRef<'_, T>,
        beta: T,
        c: MatMut<'_, T>,
    ) {
        let k = a.cols;
        let store = |cij: &mut T, acc: T| {
            *cij = if beta == T::ZERO {
                alpha * acc
            } else {
                alpha * acc + beta * *cij
            };
        };
        if a.cs == 1 && b.rs == 1 {
            for i in 0..c.rows {
                let ar = &a.data[i * a.rs..i * a.rs + k];
                let col = |j: usize| &b.data[j * b.cs..j * b.cs + k];
                let mut j = 0;
                while j + 4 <= c.cols {
                    let acc = dot4(ar, [col(j), col(j + 1), col(j + 2), col(j + 3)]);
                    for (q, v) in acc.into_iter().enumerate() {
                        store(&mut c.data[i * c.rs + (j + q) * c.cs], v);
                    }
                    j += 4;
                }
                while j < c.cols {
                    store(&mut c.data[i * c.rs + j * c.cs], dot(ar, col(j)));
                    j += 1;
                }
            }
            return;
        }
        for i in 0..c.rows {
            for j in 0..c.cols {
                let mut s = T::ZERO;
                for p in 0..k {
                    s += a.data[i * a.rs + p * a.cs] * b.data[p * b.rs + j * b.cs];
                }
                store(&mut c.data[i * c.rs + j * c.cs], s);
            }
        }
    }
}

/// Four dot products sharing one vector: `[dot(x, w[0]), .., dot(x, w[3])]`, bit for bit (each
/// keeps [`dot`]'s four partial sums and their order). Each chunk of four `x` values is loaded
/// once for four rows: on a Cortex-M4F the inner loop is 20 `vldr` and 16 `vmla` per 16
/// multiply-accumulates, about 2.5 instructions per MAC with the loop (3.2 for [`dot`] row by
/// row). Every `w[r]` must be at least as long as `x`.
#[inline(always)]
fn dot4<T: Real>(x: &[T], w: [&[T]; 4]) -> [T; 4] {
    let n = x.len();
    let (xc, xr) = x.as_chunks::<4>();
    let (w0, r0) = w[0][..n].as_chunks::<4>();
    let (w1, r1) = w[1][..n].as_chunks::<4>();
    let (w2, r2) = w[2][..n].as_chunks::<4>();
    let (w3, r3) = w[3][..n].as_chunks::<4>();
    let mut s = [[T::ZERO; 4]; 4];
    for ((((xv, a), b), c), d) in xc.iter().zip(w0).zip(w1).zip(w2).zip(w3) {
        let xv: [T; 4] = *xv;
        for (r, w) in [a, b, c, d].into_iter().enumerate() {
            let w: [T; 4] = *w;
            for l in 0..4 {
                s[r][l] += xv[l] * w[l];
            }
        }
    }
    for (r, rem) in [r0, r1, r2, r3].into_iter().enumerate() {
        for (x, y) in xr.iter().zip(rem) {
            s[r][0] += *x * *y;
        }
    }
    s.map(|s| (s[0] + s[1]) + (s[2] + s[3]))
}

/// [`dot`] of `x` with four rows of a row-major matrix at stride `cs`: row `r` is
/// `w[r·cs..r·cs + x.len()]`. The portable form of the four-output inner loop, bit for bit
/// what [`Portable`] computes for four outputs of `y = W·x` (and what the firmware's Cortex-M4
/// assembly must equal). `None` if `w` is shorter than `3·cs + x.len()`.
pub fn dot4_rows<T: Real>(x: &[T], w: &[T], cs: usize) -> Option<[T; 4]> {
    let k = x.len();
    let row = |r: usize| w.get(r * cs..r * cs + k);
    Some(dot4(x, [row(0)?, row(1)?, row(2)?, row(3)?]))
}

/// Dot product of two equally long contiguous slices with four partial sums.
#[inline]
pub fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut s = [T::ZERO; 4];
    let mut ca = a.chunks_exact(4);
    let mut cb = b.chunks_exact(4);
    for (x, y) in (&mut ca).zip(&mut cb) {
        s[0] += x[0] * y[0];
        s[1] += x[1] * y[1];
        s[2] += x[2] * y[2];
        s[3] += x[3] * y[3];
    }
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        s[0] += *x * *y;
    }
    (s[0] + s[1]) + (s[2] + s[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_vector_path_equals_dot_bit_for_bit() {
        // y = x·Wᵀ with W [9][7]: two blocks of four rows and one single row; k = 7 leaves a
        // remainder after the chunk of four.
        for k in [1usize, 4, 7, 12] {
            let x: Vec<f32> = (0..2 * k)
                .map(|i| ((i * 13) % 17) as f32 * 0.31 - 2.0)
                .collect();
            let w: Vec<f32> = (0..9 * k)
                .map(|i| ((i * 7) % 23) as f32 * 0.11 - 1.2)
                .collect();
            let mut y = [0.5f32; 18];
            gemm(
                &Portable,
                1.0,
                MatRef::row_major(&x, 2, k),
                MatRef::transposed(&w, k, 9),
                1.0,
                MatMut::row_major(&mut y, 2, 9),
            )
            .unwrap();
            for i in 0..2 {
                for j in 0..9 {
                    let want = dot(&x[i * k..(i + 1) * k], &w[j * k..(j + 1) * k]) + 0.5;
                    assert_eq!(
                        y[i * 9 + j].to_bits(),
                        want.to_bits(),
                        "k {k} row {i} col {j}"
                    );
                }
            }
        }
    }

    #[test]
    fn portable_gemm_matches_definition_for_all_stride_patterns() {
        // A 3x5, B 5x2, both given row-major and transposed.
        let a: [f64; 15] = core::array::from_fn(|i| (i as f64) * 0.5 - 3.0);
        let b: [f64; 10] = core::array::from_fn(|i| 1.0 / (i as f64 + 1.0));
        let mut at = [0.0; 15];
        for i in 0..3 {
            for p in 0..5 {
                at[p * 3 + i] = a[i * 5 + p];
            }
        }
        let mut bt = [0.0; 10];
        for p in 0..5 {
            for j in 0..2 {
                bt[j * 5 + p] = b[p * 2 + j];
            }
        }
        let mut want = [0.0; 6];
        for i in 0..3 {
            for j in 0..2 {
                want[i * 2 + j] =
                    (0..5).map(|p| a[i * 5 + p] * b[p * 2 + j]).sum::<f64>() * 2.0 + 1.0;
            }
        }
        for (av, bv) in [
            (MatRef::row_major(&a, 3, 5), MatRef::row_major(&b, 5, 2)),
            (MatRef::transposed(&at, 3, 5), MatRef::transposed(&bt, 5, 2)),
            (MatRef::row_major(&a, 3, 5), MatRef::transposed(&bt, 5, 2)),
        ] {
            let mut c = [1.0; 6];
            gemm(&Portable, 2.0, av, bv, 1.0, MatMut::row_major(&mut c, 3, 2)).unwrap();
            for (x, y) in c.iter().zip(&want) {
                assert!((x - y).abs() < 1e-12);
            }
        }
        let mut c = [0.0; 6];
        let bad = gemm(
            &Portable,
            1.0,
            MatRef::row_major(&a, 3, 5),
            MatRef::row_major(&b, 4, 2),
            0.0,
            MatMut::row_major(&mut c, 3, 2),
        );
        assert!(bad.is_err());
        let short = gemm(
            &Portable,
            1.0,
            MatRef::row_major(&a[..14], 3, 5),
            MatRef::row_major(&b, 5, 2),
            0.0,
            MatMut::row_major(&mut c, 3, 2),
        );
        assert!(short.is_err());
    }
}
