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
/// extension, four rows (one stored block) per pass over the input. The block's bytes are laid
/// out for this loop (`vae_nostd::quant` module docs, "Storage"): per four inputs, one `LDM` of
/// the two input pairs and two `LDM`s of two weight words (rows 0–1, then rows 2–3); each word
/// feeds one `SMLAD` as it is (`256·Σ w_odd·x + Σ u(w_even)·x`), one `UXTB16` and a second
/// `SMLAD` (`Σ u(w_even)·x`):
///
/// ```text
/// loop (k / 8 times; an odd number of groups of four enters at the second half):
///     ldm x!, {r2, r3}             ; input pairs (x0, x1), (x2, x3)
///     ldm w!, {r4, r5}             ; rows 0-1 on both pairs
///     smlad ar, r4, r2, ar ; uxtb16 r4, r4 ; smlad au, r4, r2, au      ; and r5 with r3
///     ldm w!, {r4, r5}             ; rows 2-3 on both pairs
///     smlad br, r4, r2, br ; uxtb16 r4, r4 ; smlad bu, r4, r2, bu      ; and r5 with r3
///     ... the same for the next four inputs
///     subs n, n, #1 ; bne loop
/// ```
///
/// 32 instructions per 32 multiply-accumulates. At most [`PASS`] inputs per `asm!` block,
/// after which Rust recovers the odd rows as `(ar − au) >> 8` (exact below 2²³, see
/// `vae_nostd::quant`) and the even rows as `au − 128·Σx`, in i32. Integer sums are exact, so
/// the values equal `Portable`'s (`dot_block`; checked on target by `core_tests`). A weight
/// slice that is not 4-byte aligned (`LDM` needs alignment; the model image is `Aligned`)
/// falls back to `dot_block`.
impl vae_nostd::quant::IntGemv for CortexM4 {
    fn gemv_i8(&self, w: &[i8], x: &[u32], x_sum: i32, out: &mut [i32]) {
        let k = 2 * x.len();
        let rows = out.len() - out.len() % 4;
        if k == 0
            || !k.is_multiple_of(4)
            || w.len() < rows * k
            || !(w.as_ptr() as usize).is_multiple_of(4)
        {
            return Portable.gemv_i8(w, x, x_sum, out);
        }
        let c = x_sum.wrapping_mul(128);
        if k <= PASS {
            // Every block in one `asm!` block.
            return blocks(&w[..rows * k], x, c, &mut out[..rows]);
        }
        for (wb, o) in w[..rows * k]
            .chunks_exact(4 * k)
            .zip(out.chunks_exact_mut(4))
        {
            let mut r = [0i32; 4];
            let mut i = 0;
            while i < k {
                let n = PASS.min(k - i);
                let [odd0, even0, odd1, even1] =
                    pass(&wb[4 * i..4 * (i + n)], &x[i / 2..(i + n) / 2]);
                r[0] = r[0].wrapping_add(even0);
                r[1] = r[1].wrapping_add(odd0);
                r[2] = r[2].wrapping_add(even1);
                r[3] = r[3].wrapping_add(odd1);
                i += n;
            }
            o.copy_from_slice(&[r[0].wrapping_sub(c), r[1], r[2].wrapping_sub(c), r[3]]);
        }
    }
}

/// Inputs summed by one pass of the loop at most: the odd rows' raw sums hold
/// `256·Σ w_odd·x`, exact while `|Σ w_odd·x| ≤ 128·127·512 < 2²³`.
pub const PASS: usize = 512;

/// The `SMLAD` loop (type docs above) over `{n}` groups of four inputs, `{x}` and `{w}`
/// advancing, into `{ar}`, `{au}` (rows 0–1) and `{br}`, `{bu}` (rows 2–3), then the odd rows'
/// recovery `(raw − u) >> 8` into `{ar}` and `{br}`. Clobbers r2–r5 and the flags.
#[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
macro_rules! smlad_loop {
    () => {
        concat!(
            // n = ⌈groups / 2⌉ passes of two halves; an odd count starts at the second.
            "adds {n}, {n}, #1\n",
            "lsrs {n}, {n}, #1\n",
            "bcc 3f\n",
            "2:\n",
            smlad_half!(),
            "3:\n",
            smlad_half!(),
            "subs {n}, {n}, #1\n",
            "bne 2b\n",
            "subs {ar}, {ar}, {au}\n",
            "asrs {ar}, {ar}, #8\n",
            "subs {br}, {br}, {bu}\n",
            "asrs {br}, {br}, #8\n",
        )
    };
}

/// Four inputs of the `SMLAD` loop: one `LDM` of two input pairs, two of two weight words.
#[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
macro_rules! smlad_half {
    () => {
        concat!(
            "ldm {x}!, {{r2, r3}}\n",
            "ldm {w}!, {{r4, r5}}\n",
            "smlad {ar}, r4, r2, {ar}\n",
            "uxtb16 r4, r4\n",
            "smlad {au}, r4, r2, {au}\n",
            "smlad {ar}, r5, r3, {ar}\n",
            "uxtb16 r5, r5\n",
            "smlad {au}, r5, r3, {au}\n",
            "ldm {w}!, {{r4, r5}}\n",
            "smlad {br}, r4, r2, {br}\n",
            "uxtb16 r4, r4\n",
            "smlad {bu}, r4, r2, {bu}\n",
            "smlad {br}, r5, r3, {br}\n",
            "uxtb16 r5, r5\n",
            "smlad {bu}, r5, r3, {bu}\n",
        )
    };
}

/// All blocks of `w [rows·k]` (`k = 2·x.len() ≤ PASS`, a multiple of 4; `w` 4-byte aligned)
/// against the pairs `x`, into `out [rows]` (`rows` a multiple of 4), `c = 128·Σx`: one `asm!`
/// block, the outer loop's state (input start, groups, `c`, output cursor, blocks left) in a
/// 20-byte frame on the stack, so the inner loop keeps its eleven registers.
#[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
#[allow(unsafe_code)]
fn blocks(w: &[i8], x: &[u32], c: i32, out: &mut [i32]) {
    let groups = x.len() / 2;
    let nblocks = out.len() / 4;
    if groups == 0 || nblocks == 0 || w.len() < 16 * groups * nblocks || out.len() != 4 * nblocks {
        return;
    }
    // SAFETY: why `unsafe`: `SMLAD`/`UXTB16` have no stable Rust intrinsics on this target,
    // and LLVM does not form them from safe code. Soundness: for each of `nblocks` blocks the
    // assembly reads `groups` times 2 words of `x` (from its start each time) and 4 words of
    // `w` (consecutively: `16·groups·nblocks ≤ w.len()` bytes, checked above), and writes 4
    // words of `out` (`4·nblocks = out.len()`); `LDM` needs 4-byte alignment: `x` is a `u32`
    // slice, `w` is checked by the caller. Its stack frame (24 bytes, 8-byte aligned) is
    // popped before it ends; it writes no other memory and only the declared registers.
    unsafe {
        core::arch::asm!(
            "sub sp, sp, #24",
            "str {x}, [sp]",
            "str {n}, [sp, #4]",
            "str {ar}, [sp, #8]",
            "str {au}, [sp, #12]",
            "str {br}, [sp, #16]",
            "4:",
            "ldr {x}, [sp]",
            "ldr {n}, [sp, #4]",
            "movs {ar}, #0",
            "movs {au}, #0",
            "movs {br}, #0",
            "movs {bu}, #0",
            smlad_loop!(),
            // Even rows: u − 128·Σx; store rows 0, 1, 2, 3; next block.
            "ldr {n}, [sp, #8]",
            "subs {au}, {au}, {n}",
            "subs {bu}, {bu}, {n}",
            "ldr {n}, [sp, #12]",
            "str {au}, [{n}], #4",
            "str {ar}, [{n}], #4",
            "str {bu}, [{n}], #4",
            "str {br}, [{n}], #4",
            "str {n}, [sp, #12]",
            "ldr {n}, [sp, #16]",
            "subs {n}, {n}, #1",
            "str {n}, [sp, #16]",
            "bne 4b",
            "add sp, sp, #24",
            x = inout(reg) x.as_ptr() => _,
            w = inout(reg) w.as_ptr() => _,
            n = inout(reg) groups => _,
            ar = inout(reg) c => _,
            au = inout(reg) out.as_mut_ptr() => _,
            br = inout(reg) nblocks => _,
            bu = out(reg) _,
            out("r2") _,
            out("r3") _,
            out("r4") _,
            out("r5") _,
        );
    }
}

/// One pass of the `SMLAD` loop over `x [n/2]` pairs and the block's bytes `w [4n]` for
/// those inputs (`n` a multiple of 4, at most [`PASS`], `w` 4-byte aligned): per row pair
/// (rows 0–1, then 2–3) the odd row's sum `(raw − u) >> 8` and the even row's offset sum `u`.
#[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
#[allow(unsafe_code)]
#[inline(always)]
fn pass(w: &[i8], x: &[u32]) -> [i32; 4] {
    let groups = x.len() / 2;
    if groups == 0 || w.len() < 16 * groups {
        return [0; 4];
    }
    let (mut ar, mut au, mut br, mut bu) = (0i32, 0i32, 0i32, 0i32);
    // SAFETY: as in `blocks`: the assembly reads `groups` times 2 words of `x` and 4 words of
    // `w`, inside the slices (checked above), 4-byte aligned; it writes only the declared
    // registers; no memory, no stack.
    unsafe {
        core::arch::asm!(
            smlad_loop!(),
            x = inout(reg) x.as_ptr() => _,
            w = inout(reg) w.as_ptr() => _,
            n = inout(reg) groups => _,
            ar = inout(reg) ar,
            au = inout(reg) au,
            br = inout(reg) br,
            bu = inout(reg) bu,
            out("r2") _,
            out("r3") _,
            out("r4") _,
            out("r5") _,
            options(nostack, readonly),
        );
    }
    [ar, au, br, bu]
}

/// Other targets: [`pass`] over every block, then the even rows' correction, as the `asm!`
/// block does.
#[cfg(not(all(target_arch = "arm", target_abi = "eabihf")))]
fn blocks(w: &[i8], x: &[u32], c: i32, out: &mut [i32]) {
    let k = 2 * x.len();
    for (wb, o) in w.chunks_exact(4 * k).zip(out.chunks_exact_mut(4)) {
        let [odd0, even0, odd1, even1] = pass(wb, x);
        o.copy_from_slice(&[even0.wrapping_sub(c), odd0, even1.wrapping_sub(c), odd1]);
    }
}

/// Other targets: the raw and zero-extended sums of one pass, computed from the stored bytes
/// as the `SMLAD` loop does (so the host runs the recovery arithmetic of `gemv_i8` too).
#[cfg(not(all(target_arch = "arm", target_abi = "eabihf")))]
fn pass(w: &[i8], x: &[u32]) -> [i32; 4] {
    let mut s = [0i32; 4];
    let h = |v: u32| {
        (
            i32::from(v as u16 as i16),
            i32::from((v >> 16) as u16 as i16),
        )
    };
    for (g, xs) in w.chunks_exact(16).zip(x.chunks_exact(2)) {
        for (half, acc) in [(0usize, 0usize), (8, 2)] {
            for (p, &xp) in xs.iter().enumerate() {
                let b = &g[half + 4 * p..half + 4 * p + 4];
                let (xa, xb) = h(xp);
                // The raw word's halfwords: 256·odd + unsigned even byte, as `SMLAD` reads them.
                let raw0 = i32::from(b[1]) * 256 + i32::from(b[0] as u8);
                let raw1 = i32::from(b[3]) * 256 + i32::from(b[2] as u8);
                s[acc] = s[acc].wrapping_add(raw0 * xa + raw1 * xb);
                s[acc + 1] += i32::from(b[0] as u8) * xa + i32::from(b[2] as u8) * xb;
            }
        }
    }
    [
        s[0].wrapping_sub(s[1]) >> 8,
        s[1],
        s[2].wrapping_sub(s[3]) >> 8,
        s[3],
    ]
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

    /// The int8 kernel's recovery arithmetic (`gemv_i8` over `pass`, the loop's sums computed
    /// in Rust on the host) equals the portable reference on extreme and random blocks,
    /// including inputs longer than one pass (784 > `PASS`) at the largest magnitudes, where
    /// the raw sums wrap.
    #[test]
    fn int8_equals_portable() {
        use vae_nostd::quant::IntGemv;
        let mut s = 0x9e37_79b9u32;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s
        };
        for (k, rows, fill) in [
            (4, 4, 0),
            (8, 8, 1),
            (192, 48, 0),
            (784, 8, 2),
            (1024, 4, 3),
        ] {
            let w: Vec<i8> = (0..k * rows)
                .map(|_| match fill {
                    1 => -128,
                    2 => 127,
                    3 => -127,
                    _ => next() as i8,
                })
                .collect();
            let x: Vec<u32> = (0..k / 2)
                .map(|_| match fill {
                    0 => next() & 0x00ff_00ff,
                    _ => 0xff81_ff81, // (−127, −127)
                })
                .map(|v| {
                    if fill == 0 {
                        v.wrapping_sub(0x007f_007f)
                    } else {
                        v
                    }
                })
                .collect();
            let sum: i32 = x
                .iter()
                .map(|v| i32::from(*v as u16 as i16) + i32::from((*v >> 16) as u16 as i16))
                .sum();
            let (mut want, mut got) = (vec![0i32; rows], vec![0i32; rows]);
            Portable.gemv_i8(&w, &x, sum, &mut want);
            CortexM4.gemv_i8(&w, &x, sum, &mut got);
            assert_eq!(got, want, "k {k} rows {rows} fill {fill}");
        }
    }
}
