//! Post-training int8 quantization of a trained VAE's dense layers, and the integer forward
//! pass that scores with it (issue 11, first part: the scheme and the portable reference).
//!
//! ## The scheme
//! For every dense layer ℓ (the encoder's hidden layers, the μ/log σ² head, the decoder's hidden
//! layers and its output layer) with weights `W [out][in]` and bias `b [out]`:
//! * **weights**, symmetric per output channel: `s_w[o] = max_i |W[o][i]| / 127` (1 for an
//!   all-zero row) and `q_w[o][i] = round(W[o][i] / s_w[o])` ∈ [−127, 127];
//! * **the layer's input**, symmetric per tensor: `s_x = m / 127` with `m` the largest |input|
//!   seen on calibration data (the training windows through the f32 model; a tanh layer's
//!   input is bounded by 1), and `q_x[i] = clamp(round(x[i] · (1/s_x)), −127, 127)`;
//! * **accumulation** in i32: `a[o] = Σ_i q_w[o][i] · q_x[i]` — exact, since
//!   |a| ≤ 127² · in < 2³¹ for every `in` below 133,000, so any kernel, in any order, gives
//!   the same bits ([`IntGemv`]: `Portable`'s loop, the firmware's `SMLAD` assembly);
//! * **output** in f32: `y[o] = (s_w[o] · s_x) · a[o] + b[o]` (the product `s_w[o] · s_x` is
//!   stored per output; the bias stays f32).
//!
//! **Storage** (what a model file holds, and what the kernels read). A layer's inputs are
//! padded with zeros to `k = ⌈in/4⌉·4` ([`padded`]) and its outputs to `⌈out/4⌉·4`
//! ([`padded_rows`]) with zero rows. The quantized input is held as *pairs*: word `j` (a
//! `u32`) has `q_x[2j]` in its low and `q_x[2j+1]` in its high halfword (i16 each), the
//! operand layout of the Cortex-M4's `SMLAD`. The weights come in *blocks* of four rows
//! (`4b .. 4b+4`), each `4k` bytes; inside a block, groups of 16 bytes for four inputs
//! (`4g .. 4g+4`, pairs `j = 2g`, `2g+1`):
//!
//! ```text
//! bytes  0..4   rows 4b, 4b+1 on pair j:    [u(w[4b][2j]),   w[4b+1][2j],   u(w[4b][2j+1]),   w[4b+1][2j+1]]
//! bytes  4..8   rows 4b, 4b+1 on pair j+1
//! bytes  8..12  rows 4b+2, 4b+3 on pair j
//! bytes 12..16  rows 4b+2, 4b+3 on pair j+1
//! ```
//!
//! `u(w) = w + 128` (offset binary, in [1, 255]) for the even row of each pair, two's
//! complement for the odd row. The point is the `SMLAD` on the *raw* word: its halfwords are
//! `256·w_odd + u(w_even)` exactly, so one `SMLAD` of a weight word with an input pair
//! accumulates `256·Σ w_odd·x + Σ u(w_even)·x`, and one `UXTB16` (bytes 0 and 2, zero-extended)
//! and a second `SMLAD` accumulate `Σ u(w_even)·x` alone: four multiply-accumulates for a third
//! of a load, one `UXTB16` and two `SMLAD`s, where sign-extending both halves (`SXTB16` twice)
//! needs one more instruction per word. The odd row is then `(raw − u) / 256` (exact, as long
//! as `|Σ w_odd·x| < 2²³`: the Cortex-M4 kernel sums at most 512 inputs per pass, 127²·512 <
//! 2²³, and adds the passes in i32), the even row `u − 128·Σ_i q_x[i]`. The portable reference
//! [`dot_block`] decodes the bytes directly.
//!
//! Everything after a layer — tanh or ReLU, μ and log σ², the KL term, the likelihood and the
//! score — is the f32 model's code on the dequantized values. `round` is ties-away-from-zero
//! (`libm::roundf`), and every operation is either integer or a single IEEE f32 operation in a
//! fixed order, so the pass gives the same bits on every target.
//!
//! Memory: weights 1 byte each instead of 4, plus 8 bytes per output (scale and bias) and 4 per
//! layer: the default 192-128-8 sensor model's 309,824 bytes of f32 parameters become 82,064
//! (26.5 %; [`QuantLayout::bytes`]; its layers' inputs, 192, 128 and 8, need no padding).

use crate::MAX_HIDDEN;
use crate::config::{Net, VaeConfig};
use crate::error::{Error, check_len};
use crate::likelihood::log_likelihood;
use crate::model::kl_standard_normal;

/// Output rows handed to an [`IntGemv`] kernel per call (the i32 sums of one call are on the
/// stack): a multiple of the four rows of a weight block.
pub const ROWS_PER_CALL: usize = 48;

/// Rows per weight block (module docs, "Storage").
pub const BLOCK_ROWS: usize = 4;

/// Largest number of dense layers a configuration has: hidden layers of both networks, the
/// head and the output layer.
pub const MAX_LAYERS: usize = 2 * MAX_HIDDEN + 2;

/// Where each layer's quantized values live in the flat quantized buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantLayout {
    /// Layers in forward order: encoder hidden, head, decoder hidden, output.
    pub layers: usize,
    /// Per layer: (input dim, output dim, offset of its weights in the i8 buffer —
    /// [`padded_rows`]`(output dim)` rows of [`padded`]`(input dim)` bytes in blocks of four
    /// rows —, offset of its outputs in the per-output buffers).
    pub shape: [(usize, usize, usize, usize); MAX_LAYERS],
    /// i8 weights in all.
    pub weights: usize,
    /// Outputs in all (length of the scale and bias buffers).
    pub outputs: usize,
}

impl QuantLayout {
    /// The layout of `cfg`'s layers.
    pub const fn new(cfg: &VaeConfig) -> Self {
        let mut shape = [(0, 0, 0, 0); MAX_LAYERS];
        let (mut n, mut w, mut o) = (0, 0, 0);
        let nets = [Net::Encoder, Net::Decoder];
        let mut k = 0;
        while k < 2 {
            let net = nets[k];
            let layers = cfg.num_layers(net);
            let mut i = 0;
            while i < layers {
                let l = cfg.layer(net, i);
                shape[n] = (l.inp, l.out, w, o);
                w += padded(l.inp) * padded_rows(l.out);
                o += l.out;
                n += 1;
                i += 1;
            }
            k += 1;
        }
        QuantLayout {
            layers: n,
            shape,
            weights: w,
            outputs: o,
        }
    }

    /// Bytes of the quantized parameters: the i8 weights, then per output an f32 scale and an
    /// f32 bias, then one f32 input scale per layer.
    pub const fn bytes(&self) -> usize {
        self.weights + 8 * self.outputs + 4 * self.layers
    }
}

/// The totals of a [`QuantLayout`] without its per-layer table (a few words: what a parser or a
/// length check needs, on a small stack).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantSizes {
    /// Dense layers.
    pub layers: usize,
    /// Outputs in all (scales and biases).
    pub outputs: usize,
    /// Stored i8 weights in all.
    pub weights: usize,
}

impl QuantSizes {
    /// The totals of `cfg`'s layers.
    pub const fn new(cfg: &VaeConfig) -> Self {
        let (mut n, mut w, mut o) = (0, 0, 0);
        let nets = [Net::Encoder, Net::Decoder];
        let mut k = 0;
        while k < 2 {
            let layers = cfg.num_layers(nets[k]);
            let mut i = 0;
            while i < layers {
                let l = cfg.layer(nets[k], i);
                w += padded(l.inp) * padded_rows(l.out);
                o += l.out;
                n += 1;
                i += 1;
            }
            k += 1;
        }
        QuantSizes {
            layers: n,
            outputs: o,
            weights: w,
        }
    }

    /// Bytes of the quantized parameters ([`QuantLayout::bytes`]).
    pub const fn bytes(&self) -> usize {
        self.weights + 8 * self.outputs + 4 * self.layers
    }
}

/// A quantized model: `cfg` with its layers' int8 weights, per-output scales and f32 biases,
/// and each layer's input scale. Borrows its buffers (in flash on the device).
#[derive(Clone, Copy, Debug)]
pub struct QuantVae<'q> {
    cfg: VaeConfig,
    weights: &'q [i8],
    /// `s_w[o] · s_x` per output.
    scales: &'q [f32],
    biases: &'q [f32],
    /// `s_x` per layer.
    input_scales: &'q [f32],
}

/// Inputs of a layer of `n` inputs as its weight rows and quantized input hold them: `n`
/// rounded up to a multiple of 4.
pub const fn padded(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// Rows of a layer of `n` outputs as its weights hold them: `n` rounded up to whole blocks of
/// [`BLOCK_ROWS`] (the extra rows are zeros, computed and dropped).
pub const fn padded_rows(n: usize) -> usize {
    n.div_ceil(BLOCK_ROWS) * BLOCK_ROWS
}

/// The f32 and pair scratch a quantized score needs: `f32` values for the widest layer's input
/// and output (twice) and the head, `u32` input pairs for the widest (padded) layer input.
pub const fn scratch_len(cfg: &VaeConfig) -> (usize, usize) {
    let l = QuantLayout::new(cfg);
    let mut widest = 0;
    let mut i = 0;
    while i < l.layers {
        let (a, b) = (l.shape[i].0, l.shape[i].1);
        if a > widest {
            widest = a;
        }
        if b > widest {
            widest = b;
        }
        i += 1;
    }
    (2 * widest + 2 * cfg.latent, padded(widest) / 2)
}

/// Symmetric int8 code of `x` at inverse scale `inv`: `round(x · inv)`, ties away from zero,
/// clamped to ±127 (NaN gives 0; a non-finite input is refused earlier). Equal to
/// `libm::roundf` then the clamp on every input (tested), without its library call: below
/// 127 the fraction `a − trunc(a)` of `a = |x · inv|` is exact in f32.
#[inline]
pub fn quantize_value(x: f32, inv: f32) -> i8 {
    let t = x * inv;
    let a = if t < 0.0 { -t } else { t };
    let m = if a < 127.0 {
        let f = a as i32;
        f + i32::from(a - f as f32 >= 0.5)
    } else if a >= 127.0 {
        127
    } else {
        0
    };
    (if t < 0.0 { -m } else { m }) as i8
}

/// One halfword of an input pair, sign-extended.
#[inline]
fn half(x: u32, hi: bool) -> i32 {
    i32::from((if hi { x >> 16 } else { x }) as u16 as i16)
}

/// The four exact sums `Σ_i w[r][i] · x[i]` of one stored weight block `w [4k]` (module
/// docs) against the input pairs `x [k/2]`: the portable reference, decoding each byte as
/// stored (offset binary for rows 0 and 2, two's complement for rows 1 and 3). Exact in i32
/// for `k` below 133,000; any kernel must give these values.
#[inline]
pub fn dot_block(w: &[i8], x: &[u32]) -> [i32; 4] {
    let mut r = [0i32; 4];
    for (g, xs) in w.chunks_exact(16).zip(x.chunks_exact(2)) {
        for h in 0..2 {
            for (p, &xp) in xs.iter().enumerate() {
                let b = &g[8 * h + 4 * p..8 * h + 4 * p + 4];
                let (xa, xb) = (half(xp, false), half(xp, true));
                let u = |v: i8| i32::from(v as u8) - 128;
                r[2 * h] += u(b[0]) * xa + u(b[2]) * xb;
                r[2 * h + 1] += i32::from(b[1]) * xa + i32::from(b[3]) * xb;
            }
        }
    }
    r
}

/// The integer matrix-vector product of a quantized layer: `out[r] = Σ_i W[r][i] · x[i]` for
/// the `out.len()` rows (a multiple of 4: whole blocks) stored in `w` (module docs) and the
/// input pairs `x [k/2]` whose halfwords sum to `x_sum`. Integer sums are exact, so every
/// implementation must give `Portable`'s values ([`dot_block`]).
pub trait IntGemv {
    /// `out[4b..4b+4] = dot_block(w block b, x)`; `w.len() ≥ out.len() · k` with `k = 2 ·
    /// x.len()` a multiple of 4, `out.len() % 4 == 0`, `x_sum = Σ` of the halfwords of `x`
    /// (all checked or guaranteed by the caller).
    fn gemv_i8(&self, w: &[i8], x: &[u32], x_sum: i32, out: &mut [i32]);
}

impl IntGemv for crate::Portable {
    fn gemv_i8(&self, w: &[i8], x: &[u32], _x_sum: i32, out: &mut [i32]) {
        let k = 2 * x.len();
        for (b, o) in out.chunks_exact_mut(BLOCK_ROWS).enumerate() {
            o.copy_from_slice(&dot_block(&w[4 * b * k..4 * (b + 1) * k], x));
        }
    }
}

/// Packs quantized inputs `q` (`[k]`, `k` even) into pairs (module docs): `x [k/2]`.
pub fn pack_pairs(q: &[i16], x: &mut [u32]) {
    for (w, p) in x.iter_mut().zip(q.chunks_exact(2)) {
        *w = u32::from(p[0] as u16) | (u32::from(p[1] as u16) << 16);
    }
}

/// Where weight `(row, i)` of a layer with `k` = [`padded`] inputs lies in its stored bytes
/// (module docs, "Storage"), and whether it is stored offset binary (the even row of a pair).
pub const fn stored_at(row: usize, i: usize, k: usize) -> (usize, bool) {
    let (block, r) = (row / 4, row % 4);
    let (group, c) = (i / 4, i % 4);
    let at = block * 4 * k + group * 16 + (r / 2) * 8 + (c / 2) * 4 + (c % 2) * 2 + r % 2;
    (at, r % 2 == 0)
}

/// Stores quantized weight `q` of `(row, i)` into a layer's bytes `dst` ([`stored_at`]).
fn store(dst: &mut [i8], row: usize, i: usize, k: usize, q: i8) {
    let (at, offset) = stored_at(row, i, k);
    dst[at] = if offset { (q as u8 ^ 0x80) as i8 } else { q };
}

impl<'q> QuantVae<'q> {
    /// Checks the buffers against `cfg`'s layout: `weights [layout.weights]`,
    /// `scales` and `biases [layout.outputs]`, `input_scales [layout.layers]` (finite and
    /// positive), every scale and bias finite.
    pub fn new(
        cfg: VaeConfig,
        weights: &'q [i8],
        scales: &'q [f32],
        biases: &'q [f32],
        input_scales: &'q [f32],
    ) -> Result<Self, Error> {
        cfg.validate()?;
        let layout = QuantSizes::new(&cfg);
        check_len("quantized weights", layout.weights, weights.len())?;
        check_len("quantized scales", layout.outputs, scales.len())?;
        check_len("quantized biases", layout.outputs, biases.len())?;
        check_len("input scales", layout.layers, input_scales.len())?;
        let finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
        if !finite(scales)
            || !finite(biases)
            || !input_scales.iter().all(|s| s.is_finite() && *s > 0.0)
        {
            return Err(Error::InvalidArgument(
                "quantized scales and biases must be finite, input scales positive",
            ));
        }
        Ok(QuantVae {
            cfg,
            weights,
            scales,
            biases,
            input_scales,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &VaeConfig {
        &self.cfg
    }

    /// The f32 biases of every layer, in forward order (the decoder output layer's last).
    pub fn biases(&self) -> &'q [f32] {
        self.biases
    }

    /// Layer `l` on `inp [in]` into `out [out]`: quantize the input (into the pairs
    /// `x [padded(in)/2]`, zero-padded), integer dot products ([`ROWS_PER_CALL`] rows per
    /// kernel call), dequantize and add the bias.
    fn layer<K: IntGemv + ?Sized>(
        &self,
        kernel: &K,
        l: usize,
        inp: &[f32],
        x: &mut [u32],
        out: &mut [f32],
    ) {
        let (n_in, n_out, w0, o0) = self.shape(l);
        let k = padded(n_in);
        let inv = 1.0 / self.input_scales[l];
        let mut sum = 0i32;
        let q = |i: usize| {
            if i < n_in {
                i16::from(quantize_value(inp[i], inv))
            } else {
                0
            }
        };
        for (j, w) in x[..k / 2].iter_mut().enumerate() {
            let (a, b) = (q(2 * j), q(2 * j + 1));
            sum += i32::from(a) + i32::from(b);
            *w = u32::from(a as u16) | (u32::from(b as u16) << 16);
        }
        let rows = padded_rows(n_out);
        let w = &self.weights[w0..w0 + k * rows];
        let mut acc = [0i32; ROWS_PER_CALL];
        for c in 0..rows.div_ceil(ROWS_PER_CALL) {
            let r0 = ROWS_PER_CALL * c;
            let n = ROWS_PER_CALL.min(rows - r0);
            kernel.gemv_i8(&w[r0 * k..(r0 + n) * k], &x[..k / 2], sum, &mut acc[..n]);
            for (j, a) in acc[..n.min(n_out.saturating_sub(r0))].iter().enumerate() {
                let o = o0 + r0 + j;
                out[r0 + j] = self.scales[o] * *a as f32 + self.biases[o];
            }
        }
    }

    /// Layer `l`'s (input dim, output dim, weight offset, output offset) of
    /// [`QuantLayout::shape`], derived from the configuration on each call (a few steps per
    /// layer), so that the model, which firmware passes by value, carries no layout table.
    fn shape(&self, l: usize) -> (usize, usize, usize, usize) {
        let (mut w, mut o, mut n) = (0, 0, 0);
        for net in [Net::Encoder, Net::Decoder] {
            for i in 0..self.cfg.num_layers(net) {
                let s = self.cfg.layer(net, i);
                if n == l {
                    return (s.inp, s.out, w, o);
                }
                w += padded(s.inp) * padded_rows(s.out);
                o += s.out;
                n += 1;
            }
        }
        (0, 0, w, o)
    }

    fn activate(&self, x: &mut [f32]) {
        crate::layers::activation_forward(self.cfg.activation, x);
    }

    /// −ELBO at z = μ of one input `x [D]` (the firmware's default score,
    /// [`crate::ScoreKind::NegElboAtMean`]) through the integer layers: KL(q(z|x) ‖ p(z)) in
    /// closed form (the paper's App. B) minus log p(x | μ). `f32s` and `pairs` are scratch of at
    /// least [`scratch_len`] (`pairs`: the quantized layer inputs); `kernel` does the integer
    /// products. Also returns μ and log σ² in
    /// `head [2Z]`.
    pub fn score_neg_elbo_at_mean<K: IntGemv + ?Sized>(
        &self,
        kernel: &K,
        x: &[f32],
        f32s: &mut [f32],
        pairs: &mut [u32],
        head: &mut [f32],
    ) -> Result<f32, Error> {
        let cfg = &self.cfg;
        let (nf, ni) = scratch_len(cfg);
        check_len("x", cfg.input, x.len())?;
        check_len("head", 2 * cfg.latent, head.len())?;
        if f32s.len() < nf || pairs.len() < ni {
            return Err(Error::BufferTooSmall {
                what: "quantized scratch",
                needed: nf,
                available: f32s.len(),
            });
        }
        if !x.iter().all(|v| v.is_finite()) {
            return Err(Error::NonFiniteInput);
        }
        let widest = (nf - 2 * cfg.latent) / 2;
        let (a, rest) = f32s.split_at_mut(widest);
        let (b, _) = rest.split_at_mut(widest);
        let enc = cfg.num_layers(Net::Encoder);
        let dec = cfg.num_layers(Net::Decoder);
        // Encoder: hidden layers, then the head.
        let mut cur_is_a = true;
        a[..cfg.input].copy_from_slice(x);
        for l in 0..enc {
            let (src, dst) = if cur_is_a {
                (&*a, &mut *b)
            } else {
                (&*b, &mut *a)
            };
            let n_out = self.shape(l).1;
            if l + 1 < enc {
                self.layer(kernel, l, src, pairs, dst);
                self.activate(&mut dst[..n_out]);
                cur_is_a = !cur_is_a;
            } else {
                self.layer(kernel, l, src, pairs, head);
            }
        }
        let z = cfg.latent;
        let kl = kl_standard_normal(&head[..z], &head[z..]);
        // Decoder from z = μ.
        a[..z].copy_from_slice(&head[..z]);
        cur_is_a = true;
        for j in 0..dec {
            let l = enc + j;
            let (src, dst) = if cur_is_a {
                (&*a, &mut *b)
            } else {
                (&*b, &mut *a)
            };
            let n_out = self.shape(l).1;
            self.layer(kernel, l, src, pairs, dst);
            if j + 1 < dec {
                self.activate(&mut dst[..n_out]);
            }
            cur_is_a = !cur_is_a;
        }
        let out = if cur_is_a { &a[..] } else { &b[..] };
        let rec = log_likelihood(cfg.likelihood, x, &out[..cfg.decoder_out()]);
        let score = kl - rec;
        if score.is_finite() {
            Ok(score)
        } else {
            Err(Error::NonFiniteLoss)
        }
    }
}

/// Quantizes `cfg`'s f32 parameters `params` (the core's flat layout) by the scheme of the
/// module docs, with `input_absmax [layers]` the largest |input| of each layer on calibration
/// data (a non-positive or non-finite value is refused), into `weights`, `scales`, `biases`
/// and `input_scales` (the lengths of [`QuantVae::new`]).
pub fn quantize(
    cfg: &VaeConfig,
    params: &[f32],
    input_absmax: &[f32],
    weights: &mut [i8],
    scales: &mut [f32],
    biases: &mut [f32],
    input_scales: &mut [f32],
) -> Result<(), Error> {
    cfg.validate()?;
    let layout = QuantLayout::new(cfg);
    check_len("parameters", cfg.num_params(), params.len())?;
    check_len("input absmax", layout.layers, input_absmax.len())?;
    check_len("quantized weights", layout.weights, weights.len())?;
    check_len("quantized scales", layout.outputs, scales.len())?;
    check_len("quantized biases", layout.outputs, biases.len())?;
    check_len("input scales", layout.layers, input_scales.len())?;
    if !params.iter().all(|p| p.is_finite()) {
        return Err(Error::NonFiniteInput);
    }
    if !input_absmax.iter().all(|m| m.is_finite() && *m > 0.0) {
        return Err(Error::InvalidArgument(
            "calibration: every layer input's largest |value| must be finite and positive",
        ));
    }
    let mut l = 0;
    for net in [Net::Encoder, Net::Decoder] {
        for i in 0..cfg.num_layers(net) {
            let shape = cfg.layer(net, i);
            let (n_in, n_out, w0, o0) = layout.shape[l];
            let s_x = input_absmax[l] / 127.0;
            input_scales[l] = s_x;
            let w = &params[shape.weight..shape.bias];
            let b = &params[shape.bias..shape.end()];
            let k = padded(n_in);
            let dst = &mut weights[w0..w0 + k * padded_rows(n_out)];
            for o in 0..padded_rows(n_out) {
                let row = if o < n_out {
                    &w[o * n_in..(o + 1) * n_in]
                } else {
                    &[]
                };
                let m = row.iter().fold(0f32, |m, v| m.max(v.abs()));
                let s_w = if m > 0.0 { m / 127.0 } else { 1.0 };
                let inv = 1.0 / s_w;
                for i in 0..k {
                    store(
                        dst,
                        o,
                        i,
                        k,
                        row.get(i).map_or(0, |v| quantize_value(*v, inv)),
                    );
                }
                if o < n_out {
                    scales[o0 + o] = s_w * s_x;
                    biases[o0 + o] = b[o];
                }
            }
            l += 1;
        }
    }
    Ok(())
}

/// Calibration for [`quantize`]: runs the f32 model (`cfg`, `params`) on one input `x [D]`
/// layer by layer (the encoder to μ, the decoder from z = μ: the path the score takes) and
/// raises `absmax [layers]` to the largest |input| each layer sees. `f32s` is scratch of at
/// least [`scratch_len`]`.0`. Start `absmax` at zeros and call it for every calibration input.
pub fn observe_layer_inputs(
    cfg: &VaeConfig,
    params: &[f32],
    x: &[f32],
    f32s: &mut [f32],
    absmax: &mut [f32],
) -> Result<(), Error> {
    cfg.validate()?;
    let layout = QuantLayout::new(cfg);
    check_len("parameters", cfg.num_params(), params.len())?;
    check_len("x", cfg.input, x.len())?;
    check_len("input absmax", layout.layers, absmax.len())?;
    let (nf, _) = scratch_len(cfg);
    let widest = (nf - 2 * cfg.latent) / 2;
    if f32s.len() < nf {
        return Err(Error::BufferTooSmall {
            what: "calibration scratch",
            needed: nf,
            available: f32s.len(),
        });
    }
    let (a, rest) = f32s.split_at_mut(widest);
    let (b, _) = rest.split_at_mut(widest);
    a[..cfg.input].copy_from_slice(x);
    let mut l = 0;
    for net in [Net::Encoder, Net::Decoder] {
        let layers = cfg.num_layers(net);
        for i in 0..layers {
            let shape = cfg.layer(net, i);
            let m = a[..shape.inp].iter().fold(0f32, |m, v| m.max(v.abs()));
            absmax[l] = absmax[l].max(m);
            crate::layers::linear_forward(
                &crate::Portable,
                &mut b[..shape.out],
                &a[..shape.inp],
                &params[shape.weight..shape.bias],
                &params[shape.bias..shape.bias + shape.out],
                1,
                shape.inp,
                shape.out,
            )?;
            if i + 1 < layers {
                crate::layers::activation_forward(cfg.activation, &mut b[..shape.out]);
            }
            a[..shape.out].copy_from_slice(&b[..shape.out]);
            l += 1;
        }
        // The decoder starts from z = μ: the head's first Z outputs.
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Activation, Init, Likelihood, Portable, ScoreKind, Vae, Workspace, init_params};
    use rand_core::SeedableRng;

    const CFG: VaeConfig = VaeConfig::new(
        24,
        &[16],
        3,
        Activation::Tanh,
        Likelihood::Gaussian {
            sigmoid_mean: false,
            floor: true,
        },
    );

    /// A small xorshift stream of values in [−127, 127].
    fn stream(seed: u32) -> impl FnMut() -> i32 {
        let mut s = seed;
        move || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 255) as i32 - 127
        }
    }

    /// Stores the integer matrix `w [out][inp]` (unit scale) as [`quantize`] does.
    fn stored(w: &[i32], inp: usize, out: usize) -> std::vec::Vec<i8> {
        let k = padded(inp);
        let mut dst = std::vec![0i8; k * padded_rows(out)];
        for o in 0..padded_rows(out) {
            for i in 0..k {
                let v = if o < out && i < inp {
                    w[o * inp + i]
                } else {
                    0
                };
                store(&mut dst, o, i, k, v as i8);
            }
        }
        dst
    }

    fn pairs(x: &[i32], k: usize) -> std::vec::Vec<u32> {
        let q: std::vec::Vec<i16> = (0..k).map(|i| x.get(i).map_or(0, |v| *v as i16)).collect();
        let mut p = std::vec![0u32; k / 2];
        pack_pairs(&q, &mut p);
        p
    }

    #[test]
    fn the_integer_dot_product_is_exact_at_the_extremes() {
        for v in [-127, 127] {
            let (inp, out) = (1000, 4);
            let w = stored(&std::vec![v; inp * out], inp, out);
            let x = pairs(&std::vec![-127; inp], inp);
            assert_eq!(dot_block(&w, &x), [-127 * v * 1000; 4]);
        }
    }

    /// Every byte of a stored layer is written once: the positions of [`stored_at`] are a
    /// permutation of the layer's bytes.
    #[test]
    fn the_storage_positions_are_a_permutation() {
        for (inp, out) in [(4, 4), (8, 12), (192, 128), (20, 8)] {
            let k = padded(inp);
            let mut seen = std::vec![false; k * padded_rows(out)];
            for o in 0..padded_rows(out) {
                for i in 0..k {
                    let (at, _) = stored_at(o, i, k);
                    assert!(!seen[at], "({o}, {i}) of {out}x{inp}");
                    seen[at] = true;
                }
            }
            assert!(seen.iter().all(|s| *s));
        }
    }

    /// A layer stored in blocks (offset binary and two's complement, zero-padded) gives,
    /// through `Portable` and [`dot_block`], the natural-order sums of its values with the
    /// input, for shapes with and without padding.
    #[test]
    fn the_stored_order_gives_the_natural_sum() {
        let mut next = stream(7);
        for (inp, out) in [(1, 1), (3, 5), (4, 4), (5, 9), (8, 3), (333, 13), (784, 20)] {
            let w: std::vec::Vec<i32> = (0..inp * out).map(|_| next()).collect();
            let x: std::vec::Vec<i32> = (0..inp).map(|_| next()).collect();
            let (k, rows) = (padded(inp), padded_rows(out));
            let sw = stored(&w, inp, out);
            let xp = pairs(&x, k);
            let sum: i32 = x.iter().sum();
            let mut got = std::vec![0i32; rows];
            crate::Portable.gemv_i8(&sw, &xp, sum, &mut got);
            for o in 0..out {
                let want: i32 = (0..inp).map(|i| w[o * inp + i] * x[i]).sum();
                assert_eq!(got[o], want, "row {o} of {out}x{inp}");
            }
            assert!(got[out..].iter().all(|v| *v == 0));
        }
    }

    /// The fast rounding equals `libm::roundf` and the clamp on every f32 of a wide sweep
    /// (halves, their neighbours, the clamp's edges, huge values and zeros).
    #[test]
    fn the_rounding_equals_roundf() {
        let reference = |t: f32| {
            let q = libm::roundf(t);
            if q >= 127.0 {
                127
            } else if q <= -127.0 {
                -127
            } else {
                q as i8
            }
        };
        let mut probes = std::vec![
            0.0f32, -0.0, 1e-30, 0.49999997, 126.49999, 126.5, 127.0, 1e30
        ];
        for n in 0..=300 {
            let h = n as f32 * 0.5;
            for v in [
                h,
                f32::from_bits(h.to_bits() + 1),
                f32::from_bits(h.to_bits().saturating_sub(1)),
            ] {
                probes.push(v);
            }
        }
        let mut bits = 0x3000_0000u32;
        while bits < 0x4400_0000 {
            probes.push(f32::from_bits(bits));
            bits += 977;
        }
        for v in probes {
            for t in [v, -v] {
                assert_eq!(quantize_value(t, 1.0), reference(t), "{t}");
            }
        }
    }

    #[test]
    fn values_round_half_away_from_zero_and_clamp() {
        assert_eq!(quantize_value(0.5, 1.0), 1);
        assert_eq!(quantize_value(-0.5, 1.0), -1);
        assert_eq!(quantize_value(1.49, 1.0), 1);
        assert_eq!(quantize_value(300.0, 1.0), 127);
        assert_eq!(quantize_value(-300.0, 1.0), -127);
        assert_eq!(quantize_value(f32::NAN, 1.0), 0);
        assert_eq!(quantize_value(1.0, 127.0), 127);
    }

    #[test]
    fn the_layout_counts_every_layer() {
        let l = QuantLayout::new(&CFG);
        assert_eq!(l.layers, 4);
        // The head's 6 rows are stored as 8 (whole blocks of four).
        assert_eq!(l.weights, 24 * 16 + 16 * 8 + 4 * 16 + 16 * 48);
        assert_eq!(l.outputs, 16 + 6 + 16 + 48);
        // The default sensor model: 26.5 % of its f32 parameter bytes.
        let sensor = VaeConfig::new(
            192,
            &[128],
            8,
            Activation::Tanh,
            Likelihood::Gaussian {
                sigmoid_mean: false,
                floor: true,
            },
        );
        let q = QuantLayout::new(&sensor);
        assert_eq!(q.bytes(), 82_064);
        for (cfg, l) in [(CFG, QuantLayout::new(&CFG)), (sensor, q)] {
            let t = QuantSizes::new(&cfg);
            assert_eq!(
                (t.layers, t.outputs, t.weights),
                (l.layers, l.outputs, l.weights)
            );
            assert_eq!(t.bytes(), l.bytes());
        }
        assert_eq!(4 * sensor.num_params(), 309_824);
    }

    /// A trained-like random model: the quantized −ELBO at μ stays within 2 % of the f32 one
    /// on inputs inside the calibration range, and μ within 0.05.
    #[test]
    fn the_quantized_score_follows_the_f32_score() {
        let mut p = std::vec![0f32; CFG.num_params()];
        let mut rng = rand_pcg::Pcg32::seed_from_u64(3);
        init_params(&CFG, &mut p, Init::Xavier, &mut rng).unwrap();
        let xs: std::vec::Vec<[f32; 24]> = (0..50)
            .map(|k| core::array::from_fn(|i| libm::sinf(0.3 * i as f32 + 0.1 * k as f32)))
            .collect();
        let layout = QuantLayout::new(&CFG);
        let (nf, ni) = scratch_len(&CFG);
        let mut f32s = std::vec![0f32; nf];
        let mut absmax = std::vec![0f32; layout.layers];
        for x in &xs {
            observe_layer_inputs(&CFG, &p, x, &mut f32s, &mut absmax).unwrap();
        }
        assert!(absmax.iter().all(|m| *m > 0.0));
        let mut w = std::vec![0i8; layout.weights];
        let (mut sc, mut b) = (
            std::vec![0f32; layout.outputs],
            std::vec![0f32; layout.outputs],
        );
        let mut is = std::vec![0f32; layout.layers];
        quantize(&CFG, &p, &absmax, &mut w, &mut sc, &mut b, &mut is).unwrap();
        let q = QuantVae::new(CFG, &w, &sc, &b, &is).unwrap();
        let vae = Vae::new(CFG, &p).unwrap();
        let mut buf = std::vec![0f32; CFG.workspace_len(1, 1)];
        let mut xs_q = std::vec![0u32; ni];
        let mut head = [0f32; 6];
        for x in &xs {
            let mut ws = Workspace::new(&CFG, 1, 1, &mut buf).unwrap();
            let mut f = [0f32];
            vae.score(
                &Portable,
                x,
                1,
                ScoreKind::NegElboAtMean,
                &mut rng,
                &mut ws,
                &mut f,
            )
            .unwrap();
            let s = q
                .score_neg_elbo_at_mean(&Portable, x, &mut f32s, &mut xs_q, &mut head)
                .unwrap();
            assert!((s - f[0]).abs() <= 0.02 * f[0].abs(), "{s} vs {}", f[0]);
            for (a, b) in head[..3].iter().zip(&ws.head(1)[..3]) {
                assert!((a - b).abs() < 0.05, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn bad_buffers_and_values_are_refused() {
        let layout = QuantLayout::new(&CFG);
        let w = std::vec![0i8; layout.weights];
        let sc = std::vec![1f32; layout.outputs];
        let is = std::vec![1f32; layout.layers];
        assert!(QuantVae::new(CFG, &w[1..], &sc, &sc, &is).is_err());
        let mut bad = is.clone();
        bad[0] = 0.0;
        assert!(QuantVae::new(CFG, &w, &sc, &sc, &bad).is_err());
        let q = QuantVae::new(CFG, &w, &sc, &sc, &is).unwrap();
        let (nf, ni) = scratch_len(&CFG);
        let (mut f, mut i, mut h) = (std::vec![0f32; nf], std::vec![0u32; ni], [0f32; 6]);
        let mut x = [0f32; 24];
        x[3] = f32::NAN;
        assert_eq!(
            q.score_neg_elbo_at_mean(&Portable, &x, &mut f, &mut i, &mut h),
            Err(Error::NonFiniteInput)
        );
        assert!(
            q.score_neg_elbo_at_mean(&Portable, &x[..5], &mut f, &mut i, &mut h)
                .is_err()
        );
        assert!(
            q.score_neg_elbo_at_mean(&Portable, &[0.0; 24], &mut f[..3], &mut i, &mut h)
                .is_err()
        );
        let p = std::vec![0f32; CFG.num_params()];
        let (mut w2, mut s2, mut b2, mut i2) = (w.clone(), sc.clone(), sc.clone(), is.clone());
        assert!(quantize(&CFG, &p, &[0.0; 4], &mut w2, &mut s2, &mut b2, &mut i2).is_err());
    }
}
