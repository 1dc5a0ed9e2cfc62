//! A Cortex-M4F matrix-vector kernel, bit-identical to the core's [`Portable`] kernel.
//!
//! [`CortexM4`] implements [`Gemm<f32>`]. For the product every dense layer runs on the
//! device, `y = W·x + b` (`layers::linear_forward`: `A = x` row-major, `B = Wᵀ` given
//! transposed, so `A.cs == 1` and `B.rs == 1`), its inner loop is hand-written assembly that
//! computes four outputs at once from eight inputs at a time:
//!
//! ```text
//! loop (k / 8 times):
//!     vldmia x!,  {s0-s7}          ; x[p..p+8], loaded once for four rows
//!     vldmia w0!, {s8-s15}         ; row 0 of W, the same eight columns
//!     vmla.f32 s16, s0, s8 ... s19, s3, s11, then s16, s4, s12 ... s19, s7, s15
//!     ... the same for rows 1, 2, 3 into s20-s23, s24-s27, s28-s31
//!     subs n, n, #1 ; bne loop
//! ```
//!
//! 39 instructions per 32 multiply-accumulates (1.22 per MAC) where the compiler's best safe
//! Rust (`Portable`'s `dot4`) needs one `vldr` per weight and about 2.5 per MAC: LLVM does not
//! merge consecutive loads of `f32` into `vldm`.
//!
//! **Same bits as `Portable`.** Each output keeps [`vae_nostd::kernel::dot`]'s four partial
//! sums: sum `l` (`l = 0..4`) takes the products `x[p]·w[p]` with `p ≡ l (mod 4)`, `p`
//! ascending; a last chunk of four goes to the four sums and the remaining `k mod 4` products
//! into sum 0, and the output is `(s0 + s1) + (s2 + s3)`: all of it in the same `asm!` block,
//! so the kernel needs no partial-sum array on the stack. Rust then stores `α·acc` or
//! `α·acc + β·c`, exactly as `Portable` does. `vmla.f32` is the VFPv4
//! *non-fused* multiply-accumulate: it rounds the product, then the sum, exactly like Rust's
//! `s += a * b` (never `vfma`, whose single rounding would change the bits). Outputs left
//! over after the blocks of four use `dot` itself; every other stride pattern is
//! `Portable`'s own code.
//!
//! On other targets (the host build of the firmware crate) `dot4` is the core's
//! [`vae_nostd::kernel::dot4_rows`], so the kernel is usable, and testable, everywhere; on
//! the Cortex-M4F the on-target suite (`core_tests`) compares it with `Portable` on 2,540
//! shapes.

use vae_nostd::kernel::{MatMut, MatRef, dot};
use vae_nostd::{Gemm, Portable};

/// The Cortex-M4F kernel: assembly for the matrix-vector product of the dense layers,
/// [`Portable`] for the rest; bit-identical to [`Portable`] on every input.
#[derive(Clone, Copy, Debug, Default)]
pub struct CortexM4;

/// Inputs per pass of the inner loop.
#[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
const STEP: usize = 8;

impl Gemm<f32> for CortexM4 {
    fn gemm_unchecked(
        &self,
        alpha: f32,
        a: MatRef<'_, f32>,
        b: MatRef<'_, f32>,
        beta: f32,
        c: MatMut<'_, f32>,
    ) {
        // Contiguous rows of A and columns of B (the dense layers); anything else is Portable's.
        if a.cs != 1 || b.rs != 1 {
            portable(alpha, a, b, beta, c);
            return;
        }
        let k = a.cols;
        let store = |cij: &mut f32, acc: f32| {
            *cij = if beta == 0.0 {
                alpha * acc
            } else {
                alpha * acc + beta * *cij
            };
        };
        for i in 0..c.rows {
            let x = &a.data[i * a.rs..i * a.rs + k];
            let mut j = 0;
            while j + 4 <= c.cols {
                // Four consecutive rows of W: one slice and their stride, not four slices (the
                // scoring path's stack frame).
                let acc = dot4(x, &b.data[j * b.cs..], b.cs);
                for (q, v) in acc.into_iter().enumerate() {
                    store(&mut c.data[i * c.rs + (j + q) * c.cs], v);
                }
                j += 4;
            }
            while j < c.cols {
                store(
                    &mut c.data[i * c.rs + j * c.cs],
                    dot(x, &b.data[j * b.cs..j * b.cs + k]),
                );
                j += 1;
            }
        }
    }
}

/// Other stride patterns (not on the scoring path): out of line, so its frame is not part of
/// the matrix-vector product's.
#[inline(never)]
fn portable(alpha: f32, a: MatRef<'_, f32>, b: MatRef<'_, f32>, beta: f32, c: MatMut<'_, f32>) {
    Portable.gemm_unchecked(alpha, a, b, beta, c);
}

/// `dot(x, W row r)` for the four rows `r = 0..4` of `w` (row r at `w[r·cs..r·cs + k]`,
/// `k = x.len()`), with `dot`'s partial sums and order: everything, tails and the final
/// `(s0 + s1) + (s2 + s3)` included, in one `asm!` block, so the only stack it needs is the
/// callee-saved FPU registers (no partial-sum array).
#[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
#[allow(unsafe_code)]
#[inline(never)]
fn dot4(x: &[f32], w: &[f32], cs: usize) -> [f32; 4] {
    static ZEROS: [f32; 16] = [0.0; 16];
    let k = x.len();
    // Safe slicing checks the four rows' extent (a caller bug panics here, before any read).
    let w = &w[..3 * cs + k];
    let (n8, rem) = (k / STEP, k % STEP);
    let stride = cs * 4; // bytes between rows
    let mut out = [0f32; 4];
    // SAFETY: why `unsafe`: the main loop is 1.22 instructions per MAC against about 2.5 for
    // the best safe Rust, `Portable` (measured with `bash scripts/bench-device.sh`, QEMU
    // `-icount`): LLVM emits one `vldr` per element and never the multi-register `vldmia`
    // loads this relies on.
    // Soundness: the assembly reads exactly `k = 8·n8 + rem` consecutive f32 from `x` (its
    // length) and from each row `w[r·cs..r·cs + k]`, `r < 4`, all inside `w` (its length is
    // `3·cs + k`, checked by the slicing above), and the 16 f32 of `ZEROS`; it writes the
    // four f32 of `out` (a local array). All pointers come from live slices, a static or a
    // local, so they are valid and 4-byte aligned. Every register it changes is declared (the
    // pointers and counters as `inout`/`out`, s0-s31 as clobbers; `vmla`/`vadd` only set the cumulative FPSCR
    // exception flags); it uses no stack.
    unsafe {
        core::arch::asm!(
            "add {w1}, {w0}, {stride}",
            "add {w2}, {w1}, {stride}",
            "add {w3}, {w2}, {stride}",
            "vldmia {zeros}, {{s16-s31}}",
            "cmp {n}, #0",
            "beq 3f",
            // Eight inputs at a time: two chunks of four into the four partial sums.
            "2:",
            "vldmia {x}!, {{s0-s7}}",
            "vldmia {w0}!, {{s8-s15}}",
            "vmla.f32 s16, s0, s8",
            "vmla.f32 s17, s1, s9",
            "vmla.f32 s18, s2, s10",
            "vmla.f32 s19, s3, s11",
            "vmla.f32 s16, s4, s12",
            "vmla.f32 s17, s5, s13",
            "vmla.f32 s18, s6, s14",
            "vmla.f32 s19, s7, s15",
            "vldmia {w1}!, {{s8-s15}}",
            "vmla.f32 s20, s0, s8",
            "vmla.f32 s21, s1, s9",
            "vmla.f32 s22, s2, s10",
            "vmla.f32 s23, s3, s11",
            "vmla.f32 s20, s4, s12",
            "vmla.f32 s21, s5, s13",
            "vmla.f32 s22, s6, s14",
            "vmla.f32 s23, s7, s15",
            "vldmia {w2}!, {{s8-s15}}",
            "vmla.f32 s24, s0, s8",
            "vmla.f32 s25, s1, s9",
            "vmla.f32 s26, s2, s10",
            "vmla.f32 s27, s3, s11",
            "vmla.f32 s24, s4, s12",
            "vmla.f32 s25, s5, s13",
            "vmla.f32 s26, s6, s14",
            "vmla.f32 s27, s7, s15",
            "vldmia {w3}!, {{s8-s15}}",
            "vmla.f32 s28, s0, s8",
            "vmla.f32 s29, s1, s9",
            "vmla.f32 s30, s2, s10",
            "vmla.f32 s31, s3, s11",
            "vmla.f32 s28, s4, s12",
            "vmla.f32 s29, s5, s13",
            "vmla.f32 s30, s6, s14",
            "vmla.f32 s31, s7, s15",
            "subs {n}, {n}, #1",
            "bne 2b",
            // A last chunk of four, into the four partial sums.
            "3:",
            "cmp {rem}, #4",
            "blo 4f",
            "vldmia {x}!, {{s0-s3}}",
            "vldmia {w0}!, {{s8-s11}}",
            "vmla.f32 s16, s0, s8",
            "vmla.f32 s17, s1, s9",
            "vmla.f32 s18, s2, s10",
            "vmla.f32 s19, s3, s11",
            "vldmia {w1}!, {{s8-s11}}",
            "vmla.f32 s20, s0, s8",
            "vmla.f32 s21, s1, s9",
            "vmla.f32 s22, s2, s10",
            "vmla.f32 s23, s3, s11",
            "vldmia {w2}!, {{s8-s11}}",
            "vmla.f32 s24, s0, s8",
            "vmla.f32 s25, s1, s9",
            "vmla.f32 s26, s2, s10",
            "vmla.f32 s27, s3, s11",
            "vldmia {w3}!, {{s8-s11}}",
            "vmla.f32 s28, s0, s8",
            "vmla.f32 s29, s1, s9",
            "vmla.f32 s30, s2, s10",
            "vmla.f32 s31, s3, s11",
            "subs {rem}, {rem}, #4",
            // The last k mod 4 products, into partial sum 0.
            "4:",
            "cmp {rem}, #0",
            "beq 6f",
            "5:",
            "vldmia {x}!, {{s0}}",
            "vldmia {w0}!, {{s8}}",
            "vmla.f32 s16, s0, s8",
            "vldmia {w1}!, {{s8}}",
            "vmla.f32 s20, s0, s8",
            "vldmia {w2}!, {{s8}}",
            "vmla.f32 s24, s0, s8",
            "vldmia {w3}!, {{s8}}",
            "vmla.f32 s28, s0, s8",
            "subs {rem}, {rem}, #1",
            "bne 5b",
            // (s0 + s1) + (s2 + s3) per row.
            "6:",
            "vadd.f32 s0, s16, s17",
            "vadd.f32 s1, s18, s19",
            "vadd.f32 s0, s0, s1",
            "vadd.f32 s1, s20, s21",
            "vadd.f32 s2, s22, s23",
            "vadd.f32 s1, s1, s2",
            "vadd.f32 s2, s24, s25",
            "vadd.f32 s3, s26, s27",
            "vadd.f32 s2, s2, s3",
            "vadd.f32 s3, s28, s29",
            "vadd.f32 s4, s30, s31",
            "vadd.f32 s3, s3, s4",
            "vstmia {out}, {{s0-s3}}",
            zeros = in(reg) ZEROS.as_ptr(),
            out = in(reg) out.as_mut_ptr(),
            stride = in(reg) stride,
            x = inout(reg) x.as_ptr() => _,
            w0 = inout(reg) w.as_ptr() => _,
            w1 = out(reg) _,
            w2 = out(reg) _,
            w3 = out(reg) _,
            n = inout(reg) n8 => _,
            rem = inout(reg) rem => _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            out("s12") _, out("s13") _, out("s14") _, out("s15") _,
            out("s16") _, out("s17") _, out("s18") _, out("s19") _,
            out("s20") _, out("s21") _, out("s22") _, out("s23") _,
            out("s24") _, out("s25") _, out("s26") _, out("s27") _,
            out("s28") _, out("s29") _, out("s30") _, out("s31") _,
            options(nostack),
        );
    }
    out
}

/// Elsewhere (the host build of the firmware crate) the core's portable form of the same
/// sums: the kernel's loop and stores above are then tested against [`Portable`] on the host.
#[cfg(not(all(target_arch = "arm", target_abi = "eabihf")))]
fn dot4(x: &[f32], w: &[f32], cs: usize) -> [f32; 4] {
    // The caller passes four rows of a checked shape; a short slice cannot happen here, and
    // would give NaN outputs rather than a panic.
    vae_nostd::kernel::dot4_rows(x, w, cs).unwrap_or([f32::NAN; 4])
}

/// The int8 layers' integer products (`vae_nostd::quant`, issue 11) on the Cortex-M4's DSP
/// extension: three rows per pass, four inputs per step, each step one `LDRD` of the input
/// pairs `(x0, x1)`, `(x2, x3)` and per row one `LDR` of four weights (stored `w0 w2 w1 w3`),
/// `SXTB16` and `SXTB16 … ROR #8` to the halfword pairs `(w0, w1)`, `(w2, w3)`, two `SMLAD`s:
/// 18 instructions per 12 multiply-accumulates with the loop. Rows left over after the
/// blocks of three use the core's `dot_i8`. Integer sums are exact, so the values equal
/// `Portable`'s whatever the order (checked on target by `core_tests`).
impl vae_nostd::quant::IntGemv for CortexM4 {
    fn gemv_i8(&self, w: &[i8], x: &[i16], k: usize, out: &mut [i32]) {
        let rows = out.len();
        let mut r = 0;
        while r + 3 <= rows {
            let acc = dot3_i8(&w[r * k..(r + 3) * k], &x[..k], k);
            out[r..r + 3].copy_from_slice(&acc);
            r += 3;
        }
        while r < rows {
            out[r] = vae_nostd::quant::dot_i8(&w[r * k..(r + 1) * k], &x[..k]);
            r += 1;
        }
    }
}

/// The three rows of `w [3][k]` against `x [k]` (`k` a multiple of 4, pair-interleaved rows).
#[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
#[allow(unsafe_code)]
#[inline(never)]
fn dot3_i8(w: &[i8], x: &[i16], k: usize) -> [i32; 3] {
    let (w0, w1, w2) = (&w[..k], &w[k..2 * k], &w[2 * k..3 * k]);
    let n = k / 4;
    if n == 0 || x.len() < 4 * n {
        return [0; 3];
    }
    let (mut a0, mut a1, mut a2) = (0i32, 0i32, 0i32);
    // SAFETY: why `unsafe`: `SXTB16`/`SMLAD` have no stable Rust intrinsics on this target, and
    // LLVM does not form them from safe code (the portable loop is 3.6 instructions per MAC).
    // Soundness: the assembly reads `n` words (4·n i8) from each of the three row slices,
    // `2·n` words (4·n i16) from `x`, all inside the slices (`k = 4·n` bytes per row, checked
    // by the slicing above, and `x.len() ≥ 4·n`); the rows are byte arrays read as words, which
    // the Cortex-M4 allows unaligned for `LDR` (`LDRD` of `x` is 4-byte aligned: an `i16`
    // slice from the quantized scratch, which the callers allocate as `[i16; _]`, is only
    // 2-byte aligned, so the inputs are read with two `LDR`s instead). It writes only the
    // declared registers; no memory, no stack.
    unsafe {
        core::arch::asm!(
            "2:",
            "ldr {xa}, [{x}], #4",
            "ldr {xb}, [{x}], #4",
            "ldr {t}, [{w0}], #4",
            "sxtb16 {u}, {t}",
            "sxtb16 {t}, {t}, ror #8",
            "smlad {a0}, {u}, {xa}, {a0}",
            "smlad {a0}, {t}, {xb}, {a0}",
            "ldr {t}, [{w1}], #4",
            "sxtb16 {u}, {t}",
            "sxtb16 {t}, {t}, ror #8",
            "smlad {a1}, {u}, {xa}, {a1}",
            "smlad {a1}, {t}, {xb}, {a1}",
            "ldr {t}, [{w2}], #4",
            "sxtb16 {u}, {t}",
            "sxtb16 {t}, {t}, ror #8",
            "smlad {a2}, {u}, {xa}, {a2}",
            "smlad {a2}, {t}, {xb}, {a2}",
            "subs {n}, {n}, #1",
            "bne 2b",
            x = inout(reg) x.as_ptr() => _,
            w0 = inout(reg) w0.as_ptr() => _,
            w1 = inout(reg) w1.as_ptr() => _,
            w2 = inout(reg) w2.as_ptr() => _,
            n = inout(reg) n => _,
            xa = out(reg) _,
            xb = out(reg) _,
            t = out(reg) _,
            u = out(reg) _,
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            a2 = inout(reg) a2,
            options(nostack, readonly),
        );
    }
    [a0, a1, a2]
}

/// Other targets: the core's portable integer dot product.
#[cfg(not(all(target_arch = "arm", target_abi = "eabihf")))]
fn dot3_i8(w: &[i8], x: &[i16], k: usize) -> [i32; 3] {
    core::array::from_fn(|r| vae_nostd::quant::dot_i8(&w[r * k..(r + 1) * k], &x[..k]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vae_nostd::kernel::gemm;

    #[test]
    fn equals_portable_bit_for_bit() {
        for (m, k, n) in [
            (1, 0, 5),
            (1, 3, 4),
            (1, 8, 4),
            (2, 13, 9),
            (1, 192, 64),
            (3, 31, 7),
        ] {
            let x: Vec<f32> = (0..m * k)
                .map(|i| ((i * 13) % 17) as f32 * 0.31 - 2.1)
                .collect();
            let w: Vec<f32> = (0..n * k)
                .map(|i| ((i * 7) % 23) as f32 * 0.011 - 0.12)
                .collect();
            for beta in [0.0, 1.0] {
                let mut want = vec![0.25f32; m * n];
                let mut got = want.clone();
                for (kern, out) in [
                    (&Portable as &dyn Gemm<f32>, &mut want),
                    (&CortexM4, &mut got),
                ] {
                    gemm(
                        kern,
                        1.5,
                        MatRef::row_major(&x, m, k),
                        MatRef::transposed(&w, k, n),
                        beta,
                        MatMut::row_major(out, m, n),
                    )
                    .unwrap();
                }
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "{m}x{k}x{n} beta {beta}");
            }
        }
    }
}
