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
//! **Storage** (what a model file holds, and what the kernels read): each output row's weights
//! padded with zeros to `k = ⌈in/4⌉·4` ([`padded`]), in groups of four stored in the order
//! `w0, w2, w1, w3`: the order in which the Cortex-M4's `SXTB16` unpacks a word's bytes 0, 2
//! and (rotated by 8) 1, 3 into halfword pairs, so that each pair meets the input pair
//! `(x0, x1)`, `(x2, x3)` of a `SMLAD` without any shuffle at run time. The quantized input is
//! held as i16 (values in [−127, 127], zero-padded to `k`): two per word for `SMLAD`.
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
/// stack): a multiple of the kernels' rows per pass (3 for the firmware's `SMLAD` kernel, 4
/// for wider ones), so no call leaves rows to a slower tail.
pub const ROWS_PER_CALL: usize = 48;

/// Largest number of dense layers a configuration has: hidden layers of both networks, the
/// head and the output layer.
pub const MAX_LAYERS: usize = 2 * MAX_HIDDEN + 2;

/// Where each layer's quantized values live in the flat quantized buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantLayout {
    /// Layers in forward order: encoder hidden, head, decoder hidden, output.
    pub layers: usize,
    /// Per layer: (input dim, output dim, offset of its weights in the i8 buffer — rows of
    /// [`padded`]`(input dim)` —, offset of its outputs in the per-output buffers).
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
                w += padded(l.inp) * l.out;
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

/// A quantized model: `cfg` with its layers' int8 weights, per-output scales and f32 biases,
/// and each layer's input scale. Borrows its buffers (in flash on the device).
#[derive(Clone, Copy, Debug)]
pub struct QuantVae<'q> {
    cfg: VaeConfig,
    layout: QuantLayout,
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

/// The f32 and i16 scratch a quantized score needs: `f32` values for the widest layer's input
/// and output (twice) and the head, `i16` values for the widest (padded) layer input.
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
    (2 * widest + 2 * cfg.latent, padded(widest))
}

/// Symmetric int8 code of `x` at inverse scale `inv` (ties away from zero, clamped to ±127).
#[inline]
pub fn quantize_value(x: f32, inv: f32) -> i8 {
    let q = libm::roundf(x * inv);
    // NaN compares false both ways and becomes 0: a non-finite input is refused earlier.
    if q >= 127.0 {
        127
    } else if q <= -127.0 {
        -127
    } else {
        q as i8
    }
}

/// `Σ_i w[i] · x[i]` in i32 over one stored row `w [k]` (pair-interleaved groups of four,
/// module docs) and the input `x [k]`: the portable reference (exact; any order gives the same
/// sum). `k` is a multiple of 4.
#[inline]
pub fn dot_i8(w: &[i8], x: &[i16]) -> i32 {
    let mut acc = 0i32;
    for (g, xs) in w.chunks_exact(4).zip(x.chunks_exact(4)) {
        acc += i32::from(g[0]) * i32::from(xs[0])
            + i32::from(g[1]) * i32::from(xs[2])
            + i32::from(g[2]) * i32::from(xs[1])
            + i32::from(g[3]) * i32::from(xs[3]);
    }
    acc
}

/// The integer matrix-vector product of a quantized layer: `out[r] = Σ_i W[r][i] · x[i]` for
/// the `out.len()` rows stored in `w` (each `k` i8, pair-interleaved) and `x [k]`. Integer
/// sums are exact, so every implementation must give `Portable`'s values.
pub trait IntGemv {
    /// `out[r] = dot(w row r, x)`; `w.len() ≥ out.len() · k`, `x.len() == k`, `k % 4 == 0`
    /// (checked by the caller).
    fn gemv_i8(&self, w: &[i8], x: &[i16], k: usize, out: &mut [i32]);
}

impl IntGemv for crate::Portable {
    fn gemv_i8(&self, w: &[i8], x: &[i16], k: usize, out: &mut [i32]) {
        for (r, o) in out.iter_mut().enumerate() {
            *o = dot_i8(&w[r * k..(r + 1) * k], x);
        }
    }
}

/// Row `row` (`[in]`, natural order) as stored: zero-padded to `padded(in)` and
/// pair-interleaved, quantized at inverse scale `inv`.
fn store_row(row: &[f32], inv: f32, out: &mut [i8]) {
    for (g, o) in out.chunks_exact_mut(4).enumerate() {
        let v = |i: usize| row.get(4 * g + i).map_or(0, |w| quantize_value(*w, inv));
        o.copy_from_slice(&[v(0), v(2), v(1), v(3)]);
    }
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
        let layout = QuantLayout::new(&cfg);
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
            layout,
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

    /// Layer `l` on `inp [in]` into `out [out]`: quantize the input (into `q [padded(in)]`,
    /// zero-padded), integer dot products ([`ROWS_PER_CALL`] rows per kernel call), dequantize and add the
    /// bias.
    fn layer<K: IntGemv + ?Sized>(
        &self,
        kernel: &K,
        l: usize,
        inp: &[f32],
        q: &mut [i16],
        out: &mut [f32],
    ) {
        let (n_in, n_out, w0, o0) = self.layout.shape[l];
        let k = padded(n_in);
        let inv = 1.0 / self.input_scales[l];
        for (i, q) in q[..k].iter_mut().enumerate() {
            *q = if i < n_in {
                i16::from(quantize_value(inp[i], inv))
            } else {
                0
            };
        }
        let w = &self.weights[w0..w0 + k * n_out];
        let mut acc = [0i32; ROWS_PER_CALL];
        for (c, ys) in out[..n_out].chunks_mut(ROWS_PER_CALL).enumerate() {
            let acc = &mut acc[..ys.len()];
            kernel.gemv_i8(&w[ROWS_PER_CALL * c * k..], &q[..k], k, acc);
            for (j, (y, a)) in ys.iter_mut().zip(acc.iter()).enumerate() {
                let o = o0 + ROWS_PER_CALL * c + j;
                *y = self.scales[o] * *a as f32 + self.biases[o];
            }
        }
    }

    fn activate(&self, x: &mut [f32]) {
        crate::layers::activation_forward(self.cfg.activation, x);
    }

    /// −ELBO at z = μ of one input `x [D]` (the firmware's default score,
    /// [`crate::ScoreKind::NegElboAtMean`]) through the integer layers: KL(q(z|x) ‖ p(z)) in
    /// closed form (the paper's App. B) minus log p(x | μ). `f32s` and `i8s` are scratch of at
    /// least [`scratch_len`]; `kernel` does the integer products. Also returns μ and log σ² in
    /// `head [2Z]`.
    pub fn score_neg_elbo_at_mean<K: IntGemv + ?Sized>(
        &self,
        kernel: &K,
        x: &[f32],
        f32s: &mut [f32],
        i16s: &mut [i16],
        head: &mut [f32],
    ) -> Result<f32, Error> {
        let cfg = &self.cfg;
        let (nf, ni) = scratch_len(cfg);
        check_len("x", cfg.input, x.len())?;
        check_len("head", 2 * cfg.latent, head.len())?;
        if f32s.len() < nf || i16s.len() < ni {
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
            let n_out = self.layout.shape[l].1;
            if l + 1 < enc {
                self.layer(kernel, l, src, i16s, dst);
                self.activate(&mut dst[..n_out]);
                cur_is_a = !cur_is_a;
            } else {
                self.layer(kernel, l, src, i16s, head);
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
            let n_out = self.layout.shape[l].1;
            self.layer(kernel, l, src, i16s, dst);
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
            for o in 0..n_out {
                let row = &w[o * n_in..(o + 1) * n_in];
                let m = row.iter().fold(0f32, |m, v| m.max(v.abs()));
                let s_w = if m > 0.0 { m / 127.0 } else { 1.0 };
                let k = padded(n_in);
                store_row(row, 1.0 / s_w, &mut weights[w0 + o * k..w0 + (o + 1) * k]);
                scales[o0 + o] = s_w * s_x;
                biases[o0 + o] = b[o];
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

    #[test]
    fn the_integer_dot_product_is_exact_at_the_extremes() {
        let w = [-127i8; 1000];
        let x = [-127i16; 1000];
        assert_eq!(dot_i8(&w, &x), 127 * 127 * 1000);
    }

    /// A row stored pair-interleaved and zero-padded (`store_row`) gives, through `dot_i8`,
    /// the natural-order sum of its quantized values with the input.
    #[test]
    fn the_stored_order_gives_the_natural_sum() {
        let mut s = 7u32;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 255) as i32 - 127
        };
        for n in [1usize, 3, 4, 5, 8, 333] {
            let row: std::vec::Vec<f32> = (0..n).map(|_| next() as f32).collect();
            let x: std::vec::Vec<i16> = (0..padded(n))
                .map(|i| if i < n { next() as i16 } else { 0 })
                .collect();
            let mut stored = std::vec![0i8; padded(n)];
            store_row(&row, 1.0, &mut stored);
            let want: i64 = row.iter().zip(&x).map(|(w, x)| *w as i64 * *x as i64).sum();
            assert_eq!(dot_i8(&stored, &x) as i64, want, "n = {n}");
            let mut out = [0i32; 2];
            let two: std::vec::Vec<i8> = stored.iter().chain(&stored).copied().collect();
            crate::Portable.gemv_i8(&two, &x, padded(n), &mut out);
            assert_eq!(out, [want as i32; 2]);
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
        assert_eq!(l.weights, 24 * 16 + 16 * 6 + 4 * 16 + 16 * 48);
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
        let mut i16s = std::vec![0i16; ni];
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
                .score_neg_elbo_at_mean(&Portable, x, &mut f32s, &mut i16s, &mut head)
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
        let (mut f, mut i, mut h) = (std::vec![0f32; nf], std::vec![0i16; ni], [0f32; 6]);
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
