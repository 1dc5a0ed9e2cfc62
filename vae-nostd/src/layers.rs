//! Per-layer forward and backward passes (llm.c style: outputs first, gradients prefixed `d`,
//! backward *adds* into parameter gradients).
//!
//! Rows are datapoints (or datapoint × sample); every matrix is row-major. A batch of one row
//! is the firmware's matrix-vector product; a batch of hundreds is the trainer's GEMM.

use crate::error::{Error, check_len};
use crate::kernel::{Gemm, MatMut, MatRef, gemm};
use crate::{Activation, Real};

/// Affine layer `out[r] = W · inp[r] + b` for `rows` rows.
///
/// Shapes: `out [rows][out_dim]`, `inp [rows][in_dim]`, `weight [out_dim][in_dim]`,
/// `bias [out_dim]`.
#[allow(clippy::too_many_arguments)]
pub fn linear_forward<T: Real, K: Gemm<T> + ?Sized>(
    kernel: &K,
    out: &mut [T],
    inp: &[T],
    weight: &[T],
    bias: &[T],
    rows: usize,
    in_dim: usize,
    out_dim: usize,
) -> Result<(), Error> {
    check_len("linear_forward out", rows * out_dim, out.len())?;
    check_len("linear_forward inp", rows * in_dim, inp.len())?;
    check_len("linear_forward weight", out_dim * in_dim, weight.len())?;
    check_len("linear_forward bias", out_dim, bias.len())?;
    for row in out.chunks_exact_mut(out_dim.max(1)) {
        row.copy_from_slice(bias);
    }
    gemm(
        kernel,
        T::ONE,
        MatRef::row_major(inp, rows, in_dim),
        MatRef::transposed(weight, in_dim, out_dim),
        T::ONE,
        MatMut::row_major(out, rows, out_dim),
    )
}

/// Bias gradient of a dense layer, `dbias = Σ_rows dout` (row by row, in order; added to
/// `dbias` when `accumulate`): the part of [`linear_backward`] that needs neither the layer's
/// input nor its weights. Shapes: `dbias [out_dim]`, `dout [rows][out_dim]`.
pub fn bias_backward<T: Real>(
    dbias: &mut [T],
    dout: &[T],
    rows: usize,
    out_dim: usize,
    accumulate: bool,
) -> Result<(), Error> {
    check_len("bias_backward dout", rows * out_dim, dout.len())?;
    check_len("bias_backward dbias", out_dim, dbias.len())?;
    if !accumulate {
        dbias.iter_mut().for_each(|b| *b = T::ZERO);
    }
    for row in dout.chunks_exact(out_dim.max(1)) {
        for (db, d) in dbias.iter_mut().zip(row) {
            *db += *d;
        }
    }
    Ok(())
}

/// Backward of [`linear_forward`]: `dweight += doutᵀ · inp`, `dbias += Σ_r dout[r]` (with
/// `accumulate`; otherwise `=`, so the gradient needs no zeroing first), and, when given,
/// `dinp = dout · W` (overwritten, not accumulated).
///
/// Shapes: `dinp [rows][in_dim]`, `dweight [out_dim][in_dim]`, `dbias [out_dim]`,
/// `dout [rows][out_dim]`, `inp [rows][in_dim]`, `weight [out_dim][in_dim]`.
#[allow(clippy::too_many_arguments)]
pub fn linear_backward<T: Real, K: Gemm<T> + ?Sized>(
    kernel: &K,
    dinp: Option<&mut [T]>,
    dweight: &mut [T],
    dbias: &mut [T],
    dout: &[T],
    inp: &[T],
    weight: &[T],
    rows: usize,
    in_dim: usize,
    out_dim: usize,
    accumulate: bool,
) -> Result<(), Error> {
    check_len("linear_backward dout", rows * out_dim, dout.len())?;
    check_len("linear_backward inp", rows * in_dim, inp.len())?;
    check_len("linear_backward weight", out_dim * in_dim, weight.len())?;
    check_len("linear_backward dweight", out_dim * in_dim, dweight.len())?;
    check_len("linear_backward dbias", out_dim, dbias.len())?;
    bias_backward(dbias, dout, rows, out_dim, accumulate)?;
    gemm(
        kernel,
        T::ONE,
        MatRef::transposed(dout, out_dim, rows),
        MatRef::row_major(inp, rows, in_dim),
        if accumulate { T::ONE } else { T::ZERO },
        MatMut::row_major(dweight, out_dim, in_dim),
    )?;
    if let Some(dinp) = dinp {
        check_len("linear_backward dinp", rows * in_dim, dinp.len())?;
        gemm(
            kernel,
            T::ONE,
            MatRef::row_major(dout, rows, out_dim),
            MatRef::row_major(weight, out_dim, in_dim),
            T::ZERO,
            MatMut::row_major(dinp, rows, in_dim),
        )?;
    }
    Ok(())
}

/// Applies the hidden nonlinearity in place (App. C: tanh; or ReLU).
pub fn activation_forward<T: Real>(act: Activation, x: &mut [T]) {
    match act {
        Activation::Tanh => x.iter_mut().for_each(|v| *v = v.tanh()),
        // `v < 0` is false for NaN, so a diverged value stays visible downstream.
        Activation::Relu => x.iter_mut().for_each(|v| {
            if *v < T::ZERO {
                *v = T::ZERO
            }
        }),
    }
}

/// Backward of [`activation_forward`], in place over its output: `y ← dy ⊙ f'(a)`, with
/// tanh' = 1 − y² and relu' = 𝟙(y > 0). The layer's output `y` is no longer needed once its
/// pre-activation gradient is known, so that gradient takes its place (no extra buffer).
pub fn activation_backward<T: Real>(act: Activation, y: &mut [T], dy: &[T]) -> Result<(), Error> {
    check_len("activation_backward", y.len(), dy.len())?;
    match act {
        Activation::Tanh => y
            .iter_mut()
            .zip(dy)
            .for_each(|(y, d)| *y = *d * (T::ONE - *y * *y)),
        Activation::Relu => y.iter_mut().zip(dy).for_each(|(y, d)| {
            *y = if *y > T::ZERO { *d } else { T::ZERO };
        }),
    }
    Ok(())
}
