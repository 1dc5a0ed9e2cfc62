//! The host's matrix kernel: [`vae_nostd::Gemm`] over `matrixmultiply`'s blocked, vectorised
//! `sgemm`/`dgemm`. Same math as the core's [`vae_nostd::Portable`] kernel, another summation
//! order: results agree to float rounding, not bit for bit.

use vae_nostd::{Gemm, MatMut, MatRef, Portable};

/// Blocked GEMM for minibatches (hundreds of rows).
#[derive(Clone, Copy, Debug, Default)]
pub struct Blocked;

fn sound<T>(a: &MatRef<'_, T>, b: &MatRef<'_, T>, c: &MatMut<'_, T>) -> bool {
    a.cols == b.rows
        && a.rows == c.rows
        && b.cols == c.cols
        && a.in_bounds()
        && b.in_bounds()
        && c.in_bounds()
        && [a.rs, a.cs, b.rs, b.cs, c.rs, c.cs]
            .iter()
            .all(|s| isize::try_from(*s).is_ok())
}

macro_rules! blocked {
    ($t:ty, $f:path) => {
        impl Gemm<$t> for Blocked {
            fn gemm_unchecked(
                &self,
                alpha: $t,
                a: MatRef<'_, $t>,
                b: MatRef<'_, $t>,
                beta: $t,
                c: MatMut<'_, $t>,
            ) {
                // The trait method is safe to call directly: re-check what the raw-pointer
                // kernel relies on, and let the bounds-checked portable kernel handle (and
                // reject) anything else.
                if !sound(&a, &b, &c) {
                    return Portable.gemm_unchecked(alpha, a, b, beta, c);
                }
                if c.rows == 0 || c.cols == 0 {
                    return;
                }
                // SAFETY: shapes agree and every element (i, j) of each view, at
                // i·rs + j·cs, lies inside its slice (checked by `sound`); `c` is the only
                // mutable view and cannot alias `a` or `b` (distinct borrows).
                unsafe {
                    $f(
                        c.rows,
                        a.cols,
                        c.cols,
                        alpha,
                        a.data.as_ptr(),
                        a.rs as isize,
                        a.cs as isize,
                        b.data.as_ptr(),
                        b.rs as isize,
                        b.cs as isize,
                        beta,
                        c.data.as_mut_ptr(),
                        c.rs as isize,
                        c.cs as isize,
                    )
                }
            }
        }
    };
}

blocked!(f32, matrixmultiply::sgemm);
blocked!(f64, matrixmultiply::dgemm);

#[cfg(test)]
mod tests {
    use super::*;
    use vae_nostd::kernel::gemm;

    #[test]
    fn blocked_matches_portable() {
        let a: Vec<f64> = (0..37 * 29)
            .map(|i| ((i * 7919) % 101) as f64 / 50.0 - 1.0)
            .collect();
        let b: Vec<f64> = (0..29 * 41)
            .map(|i| ((i * 104_729) % 97) as f64 / 48.0 - 1.0)
            .collect();
        for (beta, init) in [(0.0, f64::NAN), (1.0, 0.5)] {
            let mut c1 = vec![init; 37 * 41];
            let mut c2 = c1.clone();
            let (av, bv) = (
                MatRef::row_major(&a, 37, 29),
                MatRef::transposed(&b, 29, 41),
            );
            gemm(
                &Blocked,
                1.5,
                av,
                bv,
                beta,
                MatMut::row_major(&mut c1, 37, 41),
            )
            .unwrap();
            gemm(
                &Portable,
                1.5,
                av,
                bv,
                beta,
                MatMut::row_major(&mut c2, 37, 41),
            )
            .unwrap();
            for (x, y) in c1.iter().zip(&c2) {
                assert!((x - y).abs() < 1e-12, "{x} {y}");
            }
        }
    }
}
