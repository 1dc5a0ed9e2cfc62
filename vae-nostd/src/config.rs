//! Model configuration, the flat parameter layout, and the memory figures that follow from them.
//!
//! All of it is `const fn`, so firmware can size its statics at compile time:
//! `static PARAMS: Params<f32, { SENSOR.num_params() }> = Params::new();`.

use crate::error::Error;

/// Most hidden layers one network (encoder or decoder) may have.
pub const MAX_HIDDEN: usize = 3;

/// Largest width of any layer (input, hidden, latent). With at most eight affine layers every
/// size derived from a valid configuration fits a 32-bit `usize` without overflow.
pub const MAX_DIM: usize = 1 << 14;

/// Hidden nonlinearity of both MLPs (the paper's Appendix C uses tanh).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Activation {
    /// tanh(a), the paper's choice (App. C).
    Tanh,
    /// max(a, 0).
    Relu,
}

/// The decoder p_θ(x|z) (App. C.1 and C.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Likelihood {
    /// Bernoulli MLP (App. C.1): the output layer gives one logit per input dimension.
    Bernoulli,
    /// Gaussian MLP (App. C.2): the output layer gives a mean and a log-variance per input
    /// dimension. With `sigmoid_mean` the mean is squashed by a logistic sigmoid into (0, 1),
    /// as the paper does for the Frey Face data.
    Gaussian {
        /// Pass the mean through a sigmoid.
        sigmoid_mean: bool,
        /// Floor the log-variance at [`LOGVAR_FLOOR`](crate::likelihood::LOGVAR_FLOOR)
        /// (σ ≥ 0.1 in the units the model sees): the decoder may not claim to know a value
        /// better than a tenth of its (normalized) spread, so a few training windows cannot
        /// drive σ to 0 and every other window's likelihood to −10⁶.
        floor: bool,
    },
}

impl Likelihood {
    /// Output values the decoder produces per input dimension (1 or 2).
    pub const fn outputs_per_dim(self) -> usize {
        match self {
            Likelihood::Bernoulli => 1,
            Likelihood::Gaussian { .. } => 2,
        }
    }
}

/// Widths of one to [`MAX_HIDDEN`] hidden layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Hidden {
    len: usize,
    widths: [usize; MAX_HIDDEN],
}

impl Hidden {
    /// Hidden widths from a slice, outermost first (as seen from the data). More than
    /// [`MAX_HIDDEN`] widths, none, or a zero width is caught by [`VaeConfig::validate`].
    pub const fn new(widths: &[usize]) -> Self {
        let mut w = [0; MAX_HIDDEN];
        let len = if widths.len() > MAX_HIDDEN {
            MAX_HIDDEN + 1
        } else {
            widths.len()
        };
        let mut i = 0;
        while i < widths.len() && i < MAX_HIDDEN {
            w[i] = widths[i];
            i += 1;
        }
        Hidden { len, widths: w }
    }
    /// Number of hidden layers.
    pub const fn len(&self) -> usize {
        self.len
    }
    /// True when there are no hidden layers (an invalid configuration).
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The widths, outermost first.
    pub fn widths(&self) -> &[usize] {
        &self.widths[..if self.len > MAX_HIDDEN {
            MAX_HIDDEN
        } else {
            self.len
        }]
    }
    /// Width `i` (0 when out of range).
    pub const fn width(&self, i: usize) -> usize {
        if i < MAX_HIDDEN && i < self.len {
            self.widths[i]
        } else {
            0
        }
    }
    /// The same widths in the opposite order (the decoder mirrors the encoder).
    pub const fn reversed(&self) -> Self {
        let mut w = [0; MAX_HIDDEN];
        let n = if self.len > MAX_HIDDEN {
            MAX_HIDDEN
        } else {
            self.len
        };
        let mut i = 0;
        while i < n {
            w[i] = self.widths[n - 1 - i];
            i += 1;
        }
        Hidden {
            len: self.len,
            widths: w,
        }
    }
    const fn max_width(&self) -> usize {
        let mut m = 0;
        let mut i = 0;
        while i < MAX_HIDDEN {
            if self.widths[i] > m {
                m = self.widths[i];
            }
            i += 1;
        }
        m
    }
}

/// Which network a layer belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Net {
    /// q_φ(z|x).
    Encoder,
    /// p_θ(x|z).
    Decoder,
}

/// One affine layer `y = W x + b` inside the flat parameter vector.
///
/// `W` is stored row-major as `[out][in]` (PyTorch's `nn.Linear.weight`), followed by `b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearShape {
    /// Input width.
    pub inp: usize,
    /// Output width.
    pub out: usize,
    /// Offset of `W` (shape `[out][inp]`) in the parameter vector.
    pub weight: usize,
    /// Offset of `b` (shape `[out]`) in the parameter vector.
    pub bias: usize,
}

impl LinearShape {
    /// Parameters of the layer: `out * inp + out`.
    pub const fn len(&self) -> usize {
        self.out * self.inp + self.out
    }
    /// True for a zero-sized layer.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// One past the last parameter of the layer.
    pub const fn end(&self) -> usize {
        self.bias + self.out
    }
}

/// A named tensor of the parameter vector, with PyTorch `nn.Linear` naming and layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// For example `encoder.0.weight` or `decoder.logvar.bias`.
    pub name: &'static str,
    /// Offset in the flat parameter vector.
    pub offset: usize,
    /// `[out, in]` for a weight, `[out, 1]` (to be read as `[out]`) for a bias.
    pub shape: [usize; 2],
    /// 2 for a weight, 1 for a bias.
    pub rank: usize,
}

impl TensorInfo {
    /// Number of elements.
    pub const fn len(&self) -> usize {
        self.shape[0] * self.shape[1]
    }
    /// True for an empty tensor.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The whole model: x (D) → encoder MLP → μ, log σ² (Z each); z (Z) → decoder MLP → p_θ(x|z).
///
/// The flat parameter vector (the "param layout" of llm.c) is, in order: the encoder's hidden
/// layers, the encoder head (one layer of `2Z` outputs: rows `0..Z` give μ, rows `Z..2Z` give
/// log σ²), the decoder's hidden layers, the decoder output layer (`D` logits for Bernoulli;
/// `2D` outputs for Gaussian: rows `0..D` the mean, rows `D..2D` the log-variance). Each layer
/// is `W [out][in]` then `b [out]`. Gradients and optimizer moments use the same layout.
///
/// ```
/// use vae_nostd::{Activation, Likelihood, VaeConfig};
/// // The paper's MNIST model (App. C.1, Nz = 20, 500 hidden units).
/// const MNIST: VaeConfig = VaeConfig::new(784, &[500], 20, Activation::Tanh, Likelihood::Bernoulli);
/// assert_eq!(MNIST.num_params(), (784 * 500 + 500) + (500 * 40 + 40) + (20 * 500 + 500) + (500 * 784 + 784));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct VaeConfig {
    /// D: input dimension.
    pub input: usize,
    /// Z: latent dimension.
    pub latent: usize,
    /// Encoder hidden widths, from the input inwards.
    pub encoder_hidden: Hidden,
    /// Decoder hidden widths, from the latent outwards.
    pub decoder_hidden: Hidden,
    /// Hidden nonlinearity.
    pub activation: Activation,
    /// Decoder distribution.
    pub likelihood: Likelihood,
}

impl VaeConfig {
    /// A model whose decoder mirrors the encoder (`D-H1-H2-Z` encodes, `Z-H2-H1-D` decodes).
    pub const fn new(
        input: usize,
        hidden: &[usize],
        latent: usize,
        activation: Activation,
        likelihood: Likelihood,
    ) -> Self {
        let encoder_hidden = Hidden::new(hidden);
        VaeConfig {
            input,
            latent,
            encoder_hidden,
            decoder_hidden: encoder_hidden.reversed(),
            activation,
            likelihood,
        }
    }

    /// The same model with other decoder hidden widths.
    pub const fn with_decoder_hidden(mut self, hidden: &[usize]) -> Self {
        self.decoder_hidden = Hidden::new(hidden);
        self
    }

    /// Checks every size: non-zero dims, one to three hidden layers per network.
    pub const fn validate(&self) -> Result<(), Error> {
        if self.input == 0 {
            return Err(Error::InvalidConfig("input dimension is zero"));
        }
        if self.latent == 0 {
            return Err(Error::InvalidConfig("latent dimension is zero"));
        }
        if self.input > MAX_DIM || self.latent > MAX_DIM {
            return Err(Error::InvalidConfig(
                "input or latent dimension above MAX_DIM",
            ));
        }
        let nets = [self.encoder_hidden, self.decoder_hidden];
        let mut n = 0;
        while n < 2 {
            let h = nets[n];
            if h.len == 0 || h.len > MAX_HIDDEN {
                return Err(Error::InvalidConfig(
                    "each network needs one to three hidden layers",
                ));
            }
            let mut i = 0;
            while i < h.len {
                if h.widths[i] == 0 {
                    return Err(Error::InvalidConfig("a hidden layer has zero width"));
                }
                if h.widths[i] > MAX_DIM {
                    return Err(Error::InvalidConfig("a hidden layer is wider than MAX_DIM"));
                }
                i += 1;
            }
            n += 1;
        }
        Ok(())
    }

    /// Width of the decoder's output layer: `D` (Bernoulli) or `2D` (Gaussian).
    pub const fn decoder_out(&self) -> usize {
        self.input * self.likelihood.outputs_per_dim()
    }

    /// Number of affine layers of a network (hidden layers + the output layer).
    pub const fn num_layers(&self, net: Net) -> usize {
        match net {
            Net::Encoder => self.encoder_hidden.len + 1,
            Net::Decoder => self.decoder_hidden.len + 1,
        }
    }

    /// Flat offset of decoder layer `from` (0 = the first, `decoder_hidden.len()` = the
    /// output layer): where the parameters [`crate::Vae::with_decoder_suffix`] replaces
    /// begin. `InvalidArgument` for a layer the decoder does not have.
    pub const fn decoder_suffix_offset(&self, from: usize) -> Result<usize, Error> {
        if from > self.decoder_hidden.len {
            return Err(Error::InvalidArgument("decoder layer out of range"));
        }
        Ok(self.layer(Net::Decoder, from).weight)
    }

    /// Parameters from decoder layer `from` on — what on-device adaptation of the decoder's
    /// last layers trains, and the length of its gradient and of each optimizer moment
    /// (statics sized at compile time: `[f32; CFG.decoder_suffix_params(k)]`); 0 for a layer
    /// the decoder does not have.
    pub const fn decoder_suffix_params(&self, from: usize) -> usize {
        match self.decoder_suffix_offset(from) {
            Ok(at) => self.num_params() - at,
            Err(_) => 0,
        }
    }

    /// Shape and position of affine layer `i` of a network (`i == num_layers - 1` is the
    /// output layer: the encoder head or the decoder output).
    pub const fn layer(&self, net: Net, i: usize) -> LinearShape {
        let (hidden, first_in, last_out, mut offset) = match net {
            Net::Encoder => (self.encoder_hidden, self.input, 2 * self.latent, 0),
            Net::Decoder => (
                self.decoder_hidden,
                self.latent,
                self.decoder_out(),
                self.encoder_params(),
            ),
        };
        let mut j = 0;
        let mut inp = first_in;
        loop {
            let out = if j < hidden.len {
                hidden.width(j)
            } else {
                last_out
            };
            let shape = LinearShape {
                inp,
                out,
                weight: offset,
                bias: offset + out * inp,
            };
            if j >= i || j >= hidden.len {
                return shape;
            }
            offset = shape.end();
            inp = out;
            j += 1;
        }
    }

    /// Parameters of the encoder φ.
    pub const fn encoder_params(&self) -> usize {
        let n = self.encoder_hidden.len;
        let last = LinearShape {
            inp: self.encoder_hidden.width(if n == 0 { 0 } else { n - 1 }),
            out: 2 * self.latent,
            weight: 0,
            bias: 0,
        };
        let mut total = last.len();
        let mut inp = self.input;
        let mut j = 0;
        while j < n && j < MAX_HIDDEN {
            let out = self.encoder_hidden.widths[j];
            total += out * inp + out;
            inp = out;
            j += 1;
        }
        total
    }

    /// Parameters of the decoder θ.
    pub const fn decoder_params(&self) -> usize {
        let last = self.layer(Net::Decoder, self.decoder_hidden.len);
        last.end() - self.encoder_params()
    }

    /// All parameters (φ and θ): the length of the parameter, gradient and moment vectors.
    pub const fn num_params(&self) -> usize {
        self.encoder_params() + self.decoder_params()
    }

    /// Widest hidden layer of either network.
    pub const fn max_hidden(&self) -> usize {
        let a = self.encoder_hidden.max_width();
        let b = self.decoder_hidden.max_width();
        if a > b { a } else { b }
    }

    /// Number of named tensors (two per affine layer; the heads count twice).
    pub const fn num_tensors(&self) -> usize {
        2 * (self.encoder_hidden.len + 2)
            + 2 * (self.decoder_hidden.len + self.likelihood.outputs_per_dim())
    }

    /// Named tensor `i` (see [`TensorInfo`]), in parameter order; `None` past the end.
    ///
    /// Names: `encoder.{0,1,2}.{weight,bias}`, `encoder.mu.*`, `encoder.logvar.*`,
    /// `decoder.{0,1,2}.*`, then `decoder.logits.*` (Bernoulli) or `decoder.mean.*` and
    /// `decoder.logvar.*` (Gaussian). They load into `nn.Linear` modules of those names.
    pub const fn tensor(&self, i: usize) -> Option<TensorInfo> {
        const ENC: [[&str; 2]; MAX_HIDDEN] = [
            ["encoder.0.weight", "encoder.0.bias"],
            ["encoder.1.weight", "encoder.1.bias"],
            ["encoder.2.weight", "encoder.2.bias"],
        ];
        const DEC: [[&str; 2]; MAX_HIDDEN] = [
            ["decoder.0.weight", "decoder.0.bias"],
            ["decoder.1.weight", "decoder.1.bias"],
            ["decoder.2.weight", "decoder.2.bias"],
        ];
        const ENC_HEAD: [[&str; 2]; 2] = [
            ["encoder.mu.weight", "encoder.mu.bias"],
            ["encoder.logvar.weight", "encoder.logvar.bias"],
        ];
        const DEC_BERN: [[&str; 2]; 2] =
            [["decoder.logits.weight", "decoder.logits.bias"], ["", ""]];
        const DEC_GAUSS: [[&str; 2]; 2] = [
            ["decoder.mean.weight", "decoder.mean.bias"],
            ["decoder.logvar.weight", "decoder.logvar.bias"],
        ];
        if i >= self.num_tensors() {
            return None;
        }
        // Walk the layers; an output head split in `parts` owns 2·parts tensors, in memory
        // order: all weight parts, then all bias parts.
        let ne = self.encoder_hidden.len;
        let nd = self.decoder_hidden.len;
        let mut q = i;
        let mut layer = 0;
        let total_layers = ne + 1 + nd + 1;
        while layer < total_layers {
            let (net, li, parts, names) = if layer < ne {
                (Net::Encoder, layer, 1, [ENC[layer], ENC[layer]])
            } else if layer == ne {
                (Net::Encoder, ne, 2, ENC_HEAD)
            } else if layer < ne + 1 + nd {
                (
                    Net::Decoder,
                    layer - ne - 1,
                    1,
                    [DEC[layer - ne - 1], DEC[layer - ne - 1]],
                )
            } else {
                let names = match self.likelihood {
                    Likelihood::Bernoulli => DEC_BERN,
                    Likelihood::Gaussian { .. } => DEC_GAUSS,
                };
                (Net::Decoder, nd, self.likelihood.outputs_per_dim(), names)
            };
            if q < 2 * parts {
                let l = self.layer(net, li);
                let kind = q / parts; // 0 weight, 1 bias
                let part = q % parts;
                let rows = l.out / parts;
                return Some(if kind == 0 {
                    TensorInfo {
                        name: names[part][0],
                        offset: l.weight + part * rows * l.inp,
                        shape: [rows, l.inp],
                        rank: 2,
                    }
                } else {
                    TensorInfo {
                        name: names[part][1],
                        offset: l.bias + part * rows,
                        shape: [rows, 1],
                        rank: 1,
                    }
                });
            }
            q -= 2 * parts;
            layer += 1;
        }
        None
    }

    /// Workspace layout for a minibatch of `batch` datapoints with `samples` draws of z each.
    pub const fn workspace_layout(&self, batch: usize, samples: usize) -> WorkspaceLayout {
        let b = batch;
        let bl = batch * samples;
        let z = self.latent;
        let mut off = 0;
        let mut enc_h = [0; MAX_HIDDEN];
        let mut i = 0;
        while i < self.encoder_hidden.len && i < MAX_HIDDEN {
            enc_h[i] = off;
            off += b * self.encoder_hidden.widths[i];
            i += 1;
        }
        let head = off;
        off += b * 2 * z;
        let encode_len = off;
        let dhead = off;
        off += b * 2 * z;
        let eps = off;
        off += bl * z;
        let z_off = off;
        off += bl * z;
        let dz = off;
        off += bl * z;
        let mut dec_h = [0; MAX_HIDDEN];
        let mut j = 0;
        while j < self.decoder_hidden.len && j < MAX_HIDDEN {
            dec_h[j] = off;
            off += bl * self.decoder_hidden.widths[j];
            j += 1;
        }
        let out = off;
        off += bl * self.decoder_out();
        let logw = off;
        off += bl;
        let rec = off;
        off += bl;
        let point = off;
        off += b;
        let scratch = off;
        let se = b * self.encoder_hidden.max_width();
        let sd = bl * self.decoder_hidden.max_width();
        off += if se > sd { se } else { sd };
        WorkspaceLayout {
            batch,
            samples,
            enc_h,
            head,
            dhead,
            eps,
            z: z_off,
            dz,
            dec_h,
            out,
            logw,
            rec,
            point,
            scratch,
            encode_len,
            len: off,
        }
    }

    /// Workspace elements for training or scoring with `batch` datapoints and `samples` draws.
    pub const fn workspace_len(&self, batch: usize, samples: usize) -> usize {
        self.workspace_layout(batch, samples).len
    }

    /// Workspace elements for encoding only (μ and log σ² of `batch` inputs).
    pub const fn encode_workspace_len(&self, batch: usize) -> usize {
        self.workspace_layout(batch, 0).encode_len
    }

    /// Memory figures in bytes for scalar `T`, training with `batch` × `samples` and the
    /// given optimizer.
    ///
    /// ```
    /// use vae_nostd::{Activation, Likelihood, OptimizerKind, VaeConfig};
    /// const SENSOR: VaeConfig = VaeConfig::new(192, &[32], 4, Activation::Tanh, Likelihood::Gaussian { sigmoid_mean: false, floor: false });
    /// const MEM: vae_nostd::MemoryFigures = SENSOR.memory::<f32>(1, 1, OptimizerKind::Adam);
    /// // W1 192x32 + b1, head 32x8 + b, W3 4x32 + b, out 32x384 + b, all f32.
    /// assert_eq!(MEM.params, 4 * (192 * 32 + 32 + 32 * 8 + 8 + 4 * 32 + 32 + 32 * 384 + 384));
    /// assert_eq!(MEM.optimizer_state, 2 * MEM.params);
    /// // Encoding one window needs its hidden layer and the μ, log σ² head.
    /// assert_eq!(MEM.encode_activations, 4 * (32 + 8));
    /// ```
    pub const fn memory<T: crate::Real>(
        &self,
        batch: usize,
        samples: usize,
        optimizer: crate::optim::OptimizerKind,
    ) -> MemoryFigures {
        let p = self.num_params() * T::BYTES;
        MemoryFigures {
            params: p,
            grads: p,
            optimizer_state: optimizer.state_per_param() * p,
            train_activations: self.workspace_len(batch, samples) * T::BYTES,
            encode_activations: self.encode_workspace_len(1) * T::BYTES,
        }
    }

    /// Memory figures in bytes for fine-tuning only `trained` of the parameters (the rest are
    /// read in place, e.g. from flash), one window per step (batch 1, one draw of z) with
    /// `optimizer`: `params` is the trained copy, `grads` and `optimizer_state` are for it
    /// alone, and the activations are one window's full workspace (the backward pass of any
    /// decoder suffix reads the same forward activations). The on-device adaptation sizes its
    /// statics with it.
    ///
    /// ```
    /// use vae_nostd::{Activation, Likelihood, OptimizerKind, VaeConfig};
    /// const SENSOR: VaeConfig = VaeConfig::new(192, &[32], 4, Activation::Tanh, Likelihood::Gaussian { sigmoid_mean: false, floor: false });
    /// // The decoder output layer's bias: the Gaussian's 2 × 192 means and log variances.
    /// const MEM: vae_nostd::MemoryFigures = SENSOR.memory_trained::<f32>(SENSOR.decoder_out(), OptimizerKind::Adam);
    /// assert_eq!(MEM.params, 4 * 384);
    /// assert_eq!(MEM.grads, 4 * 384);
    /// assert_eq!(MEM.optimizer_state, 2 * 4 * 384);
    /// assert_eq!(MEM.train_activations, 4 * SENSOR.workspace_len(1, 1));
    /// ```
    pub const fn memory_trained<T: crate::Real>(
        &self,
        trained: usize,
        optimizer: crate::optim::OptimizerKind,
    ) -> MemoryFigures {
        let p = trained * T::BYTES;
        MemoryFigures {
            params: p,
            grads: p,
            optimizer_state: optimizer.state_per_param() * p,
            train_activations: self.workspace_len(1, 1) * T::BYTES,
            encode_activations: self.encode_workspace_len(1) * T::BYTES,
        }
    }
}

/// Where each activation lives in a workspace buffer (element offsets). See
/// [`VaeConfig::workspace_layout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkspaceLayout {
    /// Datapoints per minibatch (B).
    pub batch: usize,
    /// Draws of z per datapoint (L, or k for the importance-weighted bound).
    pub samples: usize,
    /// Encoder hidden outputs, each `[B][H_i]`.
    pub enc_h: [usize; MAX_HIDDEN],
    /// Encoder head `[B][2Z]`: μ then log σ² per row.
    pub head: usize,
    /// Gradient of the loss with respect to the head `[B][2Z]`.
    pub dhead: usize,
    /// ε `[B·L][Z]`, row `b·L + l`.
    pub eps: usize,
    /// z = μ + σ ⊙ ε `[B·L][Z]`.
    pub z: usize,
    /// Gradient with respect to z `[B·L][Z]`.
    pub dz: usize,
    /// Decoder hidden outputs, each `[B·L][H_j]`.
    pub dec_h: [usize; MAX_HIDDEN],
    /// Decoder outputs `[B·L][D or 2D]` (overwritten by their gradient in backward).
    pub out: usize,
    /// Per-sample log-weight log p(x,z) − log q(z|x) (or the estimator's sample term) `[B·L]`.
    pub logw: usize,
    /// Per-sample reconstruction log-likelihood log p(x|z) `[B·L]`.
    pub rec: usize,
    /// Per-datapoint value of the last forward pass's estimator `[B]`.
    pub point: usize,
    /// Backward scratch `[max(B·H_enc, B·L·H_dec)]`.
    pub scratch: usize,
    /// Elements needed to encode only (the prefix up to and including the head).
    pub encode_len: usize,
    /// Total elements.
    pub len: usize,
}

/// Bytes a configuration needs, by kind of buffer (see [`VaeConfig::memory`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MemoryFigures {
    /// Parameters φ and θ.
    pub params: usize,
    /// Gradients (same layout as the parameters).
    pub grads: usize,
    /// Optimizer moments.
    pub optimizer_state: usize,
    /// Training workspace for the given batch and sample count.
    pub train_activations: usize,
    /// Workspace to encode one input (μ and log σ²).
    pub encode_activations: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_tile_the_parameter_vector() {
        for cfg in [
            VaeConfig::new(7, &[5], 3, Activation::Tanh, Likelihood::Bernoulli),
            VaeConfig::new(
                7,
                &[6, 5, 4],
                2,
                Activation::Relu,
                Likelihood::Gaussian {
                    sigmoid_mean: true,
                    floor: false,
                },
            )
            .with_decoder_hidden(&[3, 9]),
        ] {
            cfg.validate().unwrap();
            let mut next = 0;
            for net in [Net::Encoder, Net::Decoder] {
                for i in 0..cfg.num_layers(net) {
                    let l = cfg.layer(net, i);
                    assert_eq!(l.weight, next);
                    next = l.end();
                }
            }
            assert_eq!(next, cfg.num_params());
            let mut next = 0;
            for i in 0..cfg.num_tensors() {
                let t = cfg.tensor(i).unwrap();
                assert_eq!(t.offset, next, "{}", t.name);
                next += t.len();
            }
            assert_eq!(next, cfg.num_params());
            assert!(cfg.tensor(cfg.num_tensors()).is_none());
        }
    }

    #[test]
    fn invalid_configs_are_rejected() {
        let ok = VaeConfig::new(4, &[3], 2, Activation::Tanh, Likelihood::Bernoulli);
        assert!(ok.validate().is_ok());
        assert!(VaeConfig { input: 0, ..ok }.validate().is_err());
        assert!(VaeConfig { latent: 0, ..ok }.validate().is_err());
        assert!(ok.with_decoder_hidden(&[]).validate().is_err());
        assert!(ok.with_decoder_hidden(&[1, 2, 3, 4]).validate().is_err());
        assert!(ok.with_decoder_hidden(&[3, 0]).validate().is_err());
        assert!(ok.with_decoder_hidden(&[MAX_DIM + 1]).validate().is_err());
        assert!(
            VaeConfig {
                input: usize::MAX,
                ..ok
            }
            .validate()
            .is_err()
        );
    }
}
