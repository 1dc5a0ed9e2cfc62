//! The AEVB model: encoder q_φ(z|x), reparameterization, decoder p_θ(x|z), the SGVB
//! estimators of the lower bound and their hand-written gradient.
//!
//! A [`Vae`] is a *view*: a configuration plus a borrowed flat parameter slice. A [`Workspace`]
//! borrows the activation buffer. Neither owns memory, so the same code runs over `static`
//! arrays on a Cortex-M and over `Vec`s sized at run time in the trainer.

use core::ops::Range;

use rand_core::RngCore;

use crate::config::{Net, WorkspaceLayout};
use crate::error::{Error, check_finite, check_len};
use crate::kernel::Gemm;
use crate::layers::{
    activation_backward, activation_forward, bias_backward, linear_backward, linear_forward,
};
use crate::likelihood::{log_likelihood, log_likelihood_backward};
use crate::rng::fill_standard_normal;
use crate::{Real, VaeConfig};

/// Which SGVB estimator of the lower bound L(θ, φ; x) to compute (paper §2.3, eqs. 6–10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Estimator {
    /// Estimator B (eq. 10): −β·KL(q_φ(z|x) ‖ N(0, I)) in closed form (App. B) plus the
    /// L-sample mean of log p_θ(x|z).
    Analytic,
    /// Estimator A (eq. 6): the L-sample mean of log p_θ(x|z) + β·(log p(z) − log q_φ(z|x)).
    MonteCarlo,
    /// The k-sample importance-weighted bound of Burda, Grosse & Salakhutdinov (2015):
    /// log (1/k) Σ_l w_l, log w_l = log p_θ(x|z_l) + β·(log p(z_l) − log q_φ(z_l|x)).
    /// It is at least the ELBO and tends to log p_θ(x) as k grows.
    ImportanceWeighted,
}

/// What a forward pass estimates: the estimator, L (or k) draws of z per datapoint, and the
/// weight β on the KL (or on log p(z) − log q(z|x)); β = 1 is the paper's bound.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Objective<T> {
    /// The estimator.
    pub estimator: Estimator,
    /// Draws of z per datapoint (L; k for the importance-weighted bound).
    pub samples: usize,
    /// Weight of the KL term (β-VAE); 1 for the paper's bound.
    pub beta: T,
}

impl<T: Real> Objective<T> {
    /// The paper's default: estimator B with L = 1, β = 1 (§3: "L = 1 as long as the minibatch
    /// size M was large enough").
    pub fn paper() -> Self {
        Objective {
            estimator: Estimator::Analytic,
            samples: 1,
            beta: T::ONE,
        }
    }
}

/// Minibatch means, per datapoint, from one forward pass (all in nats).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Bound {
    /// The estimator's value (what [`Vae::backward`] differentiates, with β applied).
    pub objective: f64,
    /// KL(q_φ(z|x) ‖ p(z)): in closed form for estimator B, the Monte Carlo mean of
    /// log q_φ(z|x) − log p(z) otherwise.
    pub kl: f64,
    /// Mean of log p_θ(x|z) over the draws (the reconstruction term).
    pub rec: f64,
}

impl Bound {
    /// The unweighted evidence lower bound `rec − kl` (β = 1).
    pub fn elbo(&self) -> f64 {
        self.rec - self.kl
    }

    /// Means from one pass's sums over `n` datapoints and `rows` = n·L draws.
    fn from_sums<T: Real>(s: Sums<T>, n: usize, rows: usize) -> Bound {
        Bound {
            objective: s.objective.to_f64() / n as f64,
            kl: s.kl.to_f64() / n as f64,
            rec: s.rec.to_f64() / rows as f64,
        }
    }
}

/// The workspace offsets the forward pass's per-sample terms use: a copy of these seven
/// rather than of the whole layout keeps the Cortex-M scoring path's stack frame small.
#[derive(Clone, Copy)]
struct FwdOffsets {
    z: usize,
    head: usize,
    eps: usize,
    out: usize,
    rec: usize,
    logw: usize,
    point: usize,
}

impl FwdOffsets {
    fn of(l: &WorkspaceLayout) -> Self {
        FwdOffsets {
            z: l.z,
            head: l.head,
            eps: l.eps,
            out: l.out,
            rec: l.rec,
            logw: l.logw,
            point: l.point,
        }
    }
}

/// A forward pass's sums, in `T`: the device's scoring path (which discards them) does no
/// `f64` arithmetic, a soft-float library on the Cortex-M4F. [`Bound`] divides them in `f64`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sums<T> {
    objective: T,
    kl: T,
    rec: T,
}

#[derive(Clone, Copy, Debug)]
struct Pass<T> {
    n: usize,
    obj: Objective<T>,
}

/// Activations of one forward pass, over a borrowed buffer. Sized for up to `batch` datapoints
/// with `samples` draws each ([`VaeConfig::workspace_len`]), or for encoding only
/// ([`VaeConfig::encode_workspace_len`]).
#[derive(Debug)]
pub struct Workspace<'a, T> {
    pub(crate) buf: &'a mut [T],
    /// Z and the decoder's output width (D or 2D): the two sizes the accessors need. A model
    /// checks a workspace by its layout, not by a copy of its configuration (a few words
    /// instead of one more `VaeConfig` in a firmware's RAM).
    latent: usize,
    decoder_out: usize,
    pub(crate) layout: WorkspaceLayout,
    full: bool,
    pass: Option<Pass<T>>,
}

impl<'a, T: Real> Workspace<'a, T> {
    /// A workspace for training and scoring: `buf` needs
    /// `cfg.workspace_len(batch, samples)` elements (more are left unused).
    pub fn new(
        cfg: &VaeConfig,
        batch: usize,
        samples: usize,
        buf: &'a mut [T],
    ) -> Result<Self, Error> {
        cfg.validate()?;
        if batch == 0 || samples == 0 {
            return Err(Error::InvalidArgument(
                "workspace batch and samples must be at least 1",
            ));
        }
        // Every region holds at most batch·samples rows of at most one row's worth of
        // elements: refuse sizes whose layout would overflow `usize`.
        let per_row = cfg.workspace_len(1, 1) as u128;
        if (batch as u128) * (samples as u128) * per_row > usize::MAX as u128 {
            return Err(Error::InvalidArgument(
                "workspace batch × samples is too large",
            ));
        }
        let layout = cfg.workspace_layout(batch, samples);
        if buf.len() < layout.len {
            return Err(Error::BufferTooSmall {
                what: "workspace",
                needed: layout.len,
                available: buf.len(),
            });
        }
        Ok(Workspace {
            buf,
            latent: cfg.latent,
            decoder_out: cfg.decoder_out(),
            layout,
            full: true,
            pass: None,
        })
    }

    /// A workspace that can only encode (μ, log σ² of up to `batch` inputs): `buf` needs
    /// `cfg.encode_workspace_len(batch)` elements.
    pub fn for_encoding(cfg: &VaeConfig, batch: usize, buf: &'a mut [T]) -> Result<Self, Error> {
        cfg.validate()?;
        if batch == 0 {
            return Err(Error::InvalidArgument("workspace batch must be at least 1"));
        }
        if (batch as u128) * (cfg.workspace_len(1, 1) as u128) > usize::MAX as u128 {
            return Err(Error::InvalidArgument("workspace batch is too large"));
        }
        let layout = cfg.workspace_layout(batch, 1);
        if buf.len() < layout.encode_len {
            return Err(Error::BufferTooSmall {
                what: "encode workspace",
                needed: layout.encode_len,
                available: buf.len(),
            });
        }
        Ok(Workspace {
            buf,
            latent: cfg.latent,
            decoder_out: cfg.decoder_out(),
            layout,
            full: false,
            pass: None,
        })
    }

    /// The whole buffer, for a computation that reuses the workspace's memory between passes
    /// (the firmware's int8 score, [`crate::quant`]): what it writes replaces the last pass's
    /// activations, so [`Workspace::head`] and the rest are meaningless until the next pass.
    pub fn scratch(&mut self) -> &mut [T] {
        self.buf
    }

    /// The layout in use.
    pub fn layout(&self) -> &WorkspaceLayout {
        &self.layout
    }

    /// Encoder head of the last pass for `n` inputs, `[n][2Z]`: per row, μ (Z values) then
    /// log σ² (Z values).
    pub fn head(&self, n: usize) -> &[T] {
        let n = n.min(self.layout.batch);
        &self.buf[self.layout.head..self.layout.head + n * 2 * self.latent]
    }

    /// ε of the last forward pass `[n·L][Z]`.
    pub fn eps(&self) -> &[T] {
        let rows = self.pass.map_or(0, |p| p.n * p.obj.samples);
        &self.buf[self.layout.eps..self.layout.eps + rows * self.latent]
    }

    /// Decoder outputs of the last [`Vae::decode`] or forward pass for `rows` rows,
    /// `[rows][D or 2D]` (empty for an encode-only workspace).
    pub fn decoder_output(&self, rows: usize) -> &[T] {
        if !self.full {
            return &[];
        }
        let rows = rows.min(self.layout.batch * self.layout.samples);
        &self.buf[self.layout.out..self.layout.out + rows * self.decoder_out]
    }

    /// Per-datapoint estimator values of the last forward pass `[n]`.
    pub fn per_datapoint(&self) -> &[T] {
        let n = self.pass.map_or(0, |p| p.n);
        &self.buf[self.layout.point..self.layout.point + n]
    }

    /// Per-sample reconstruction log-likelihoods log p(x|z) of the last pass `[n·L]`.
    pub fn reconstruction_terms(&self) -> &[T] {
        let rows = self.pass.map_or(0, |p| p.n * p.obj.samples);
        &self.buf[self.layout.rec..self.layout.rec + rows]
    }

    fn need_full(&self) -> Result<(), Error> {
        if self.full {
            Ok(())
        } else {
            Err(Error::BufferTooSmall {
                what: "workspace (encode-only)",
                needed: self.layout.len,
                available: 0,
            })
        }
    }
}

/// One region to write and two to read.
type Regions<'b, T> = (&'b mut [T], &'b [T], &'b [T]);

/// Three disjoint regions of one buffer: one to write, two to read.
fn regions<T>(
    buf: &mut [T],
    w: Range<usize>,
    r1: Range<usize>,
    r2: Range<usize>,
) -> Result<Regions<'_, T>, Error> {
    match buf.get_disjoint_mut([w, r1, r2]) {
        Ok([w, a, b]) => Ok((w, a, b)),
        Err(_) => Err(Error::BufferTooSmall {
            what: "workspace regions",
            needed: 0,
            available: 0,
        }),
    }
}

/// Two disjoint regions of one buffer: one to write, one to read.
fn regions2<T>(buf: &mut [T], w: Range<usize>, r: Range<usize>) -> Result<(&mut [T], &[T]), Error> {
    // One split between the two (disjoint) ranges: fewer temporaries than the general
    // `get_disjoint_mut` (this is on the Cortex-M scoring path).
    let split = if w.end <= r.start {
        let (lo, hi) = buf.split_at_mut(r.start.min(buf.len()));
        lo.get_mut(w).zip(hi.get(..r.end.saturating_sub(r.start)))
    } else if r.end <= w.start {
        let (lo, hi) = buf.split_at_mut(w.start.min(buf.len()));
        hi.get_mut(..w.end.saturating_sub(w.start)).zip(lo.get(r))
    } else {
        None
    };
    split.ok_or(Error::BufferTooSmall {
        what: "workspace regions",
        needed: 0,
        available: 0,
    })
}

/// Weight and bias gradient slices of one layer.
fn layer_grads<T>(
    grads: &mut [T],
    w: Range<usize>,
    b: Range<usize>,
) -> Result<[&mut [T]; 2], Error> {
    grads
        .get_disjoint_mut([w, b])
        .map_err(|_| Error::BufferTooSmall {
            what: "gradient",
            needed: 0,
            available: 0,
        })
}

/// KL(N(μ, diag e^{lv}) ‖ N(0, I)) = −½ Σ_j (1 + lv_j − μ_j² − e^{lv_j}) (paper App. B).
pub fn kl_standard_normal<T: Real>(mu: &[T], logvar: &[T]) -> T {
    let mut s = T::ZERO;
    for (m, lv) in mu.iter().zip(logvar) {
        s += T::ONE + *lv - *m * *m - lv.exp();
    }
    -T::HALF * s
}

/// log N(z; 0, I) − log N(z; μ, σ²) with z = μ + σ ⊙ ε, written through ε:
/// −½ Σ_j (z_j² − lv_j − ε_j²) (the ln 2π terms cancel).
fn log_prior_minus_log_q<T: Real>(z: &[T], logvar: &[T], eps: &[T]) -> T {
    let mut s = T::ZERO;
    for ((z, lv), e) in z.iter().zip(logvar).zip(eps) {
        s += *z * *z - *lv - *e * *e;
    }
    -T::HALF * s
}

/// log Σ exp(v) over a slice, stable for any finite values.
pub fn log_sum_exp<T: Real>(v: &[T]) -> T {
    let mut m = v.first().copied().unwrap_or(T::ZERO);
    for &x in v {
        m = m.max(x);
    }
    let mut s = T::ZERO;
    for &x in v {
        s += (x - m).exp();
    }
    m + s.ln()
}

/// Where one network's activations live in the workspace, for [`Vae::net_backward`].
struct NetPass {
    net: Net,
    rows: usize,
    /// Hidden outputs (overwritten by their pre-activation gradients).
    hidden: [usize; crate::MAX_HIDDEN],
    /// Gradient with respect to the output layer's output.
    dout: usize,
    scratch: usize,
}

impl NetPass {
    /// The decoder's backward pass over `rows` samples of the workspace `lay`.
    fn decoder(lay: &WorkspaceLayout, rows: usize) -> Self {
        NetPass {
            net: Net::Decoder,
            rows,
            hidden: lay.dec_h,
            dout: lay.out,
            scratch: lay.scratch,
        }
    }
}

/// Where [`Vae::net_backward`] puts parameter gradients: `grads[offset − base]` for the layers
/// `first..` of the net (earlier layers are skipped, with no input gradient below `first`).
struct GradTarget<'g, T> {
    grads: &'g mut [T],
    base: usize,
    first: usize,
}

/// The first layer's input: a caller's slice (x) or a workspace region (z).
enum NetInput<'x, T> {
    External(&'x [T]),
    Region(usize),
}

/// A VAE: configuration plus a borrowed flat parameter vector (layout: [`VaeConfig`]).
///
/// The parameters from a decoder layer on may come from a second slice
/// ([`Vae::with_decoder_suffix`]): on a device the factory model stays in flash and only the
/// adapted last layers live in RAM.
#[derive(Clone, Copy, Debug)]
pub struct Vae<'p, T> {
    cfg: VaeConfig,
    params: &'p [T],
    /// Flat offset where `suffix` takes over (`num_params` when there is none).
    suffix_at: usize,
    suffix: &'p [T],
    /// The decoder output layer's bias, when it replaces the one in `params` (else empty).
    out_bias: &'p [T],
}

impl<'p, T: Real> Vae<'p, T> {
    /// Checks the configuration and the parameter count.
    pub fn new(cfg: VaeConfig, params: &'p [T]) -> Result<Self, Error> {
        cfg.validate()?;
        check_len("parameters", cfg.num_params(), params.len())?;
        Ok(Vae {
            cfg,
            params,
            suffix_at: cfg.num_params(),
            suffix: &[],
            out_bias: &[],
        })
    }

    /// A VAE whose decoder output layer's bias (`[decoder_out]`: the Gaussian's means and log
    /// variances, or the Bernoulli logits) is `bias` instead of `params`' own: the smallest set
    /// on-device adaptation can train (the default sensor model's 384 values, against 49,536 for
    /// the whole output layer). [`Vae::backward_decoder_output_bias`] gives its gradient.
    pub fn with_decoder_output_bias(
        cfg: VaeConfig,
        params: &'p [T],
        bias: &'p [T],
    ) -> Result<Self, Error> {
        let mut vae = Self::new(cfg, params)?;
        check_len("decoder output bias", cfg.decoder_out(), bias.len())?;
        vae.out_bias = bias;
        Ok(vae)
    }

    /// A VAE whose parameters from decoder layer `from` on (`from` = the number of decoder
    /// hidden layers is the output layer alone) are `suffix` instead of `params`' own:
    /// `suffix` holds `num_params − cfg.decoder_suffix_offset(from)` values in the flat layout's
    /// order. [`Vae::backward_decoder_suffix`] gives their gradient.
    pub fn with_decoder_suffix(
        cfg: VaeConfig,
        params: &'p [T],
        from: usize,
        suffix: &'p [T],
    ) -> Result<Self, Error> {
        let mut vae = Self::new(cfg, params)?;
        let at = cfg.decoder_suffix_offset(from)?;
        check_len("decoder suffix", cfg.num_params() - at, suffix.len())?;
        vae.suffix_at = at;
        vae.suffix = suffix;
        Ok(vae)
    }

    /// The configuration.
    pub fn config(&self) -> &VaeConfig {
        &self.cfg
    }

    /// The base parameters (with a decoder suffix, its range here is the factory values the
    /// suffix replaces).
    pub fn params(&self) -> &'p [T] {
        self.params
    }

    /// Backward through one MLP, output layer first: each hidden output is replaced by its
    /// pre-activation gradient, parameter gradients go to `grads`, and the first layer's input
    /// gradient to `dinput` (when given).
    #[allow(clippy::too_many_arguments)]
    fn net_backward<K: Gemm<T> + ?Sized>(
        &self,
        kernel: &K,
        pass: &NetPass,
        input: NetInput<'_, T>,
        dinput: Option<usize>,
        grads: GradTarget<'_, T>,
        buf: &mut [T],
        accumulate: bool,
    ) -> Result<(), Error> {
        let rows = pass.rows;
        let nh = self.cfg.num_layers(pass.net) - 1;
        let GradTarget { grads, base, first } = grads;
        for j in (first..=nh).rev() {
            let l = self.cfg.layer(pass.net, j);
            let (w, _, inp_dim, out_dim) = self.wb(pass.net, j);
            let dy_at = if j == nh { pass.dout } else { pass.hidden[j] };
            let dy_r = dy_at..dy_at + rows * out_dim;
            if j < nh {
                // hidden[j] ← scratch ⊙ act'(hidden[j]).
                let (y, dy) = regions2(
                    buf,
                    dy_r.clone(),
                    pass.scratch..pass.scratch + rows * out_dim,
                )?;
                activation_backward(self.cfg.activation, y, dy)?;
            }
            let [dw, db] = layer_grads(
                grads,
                l.weight - base..l.bias - base,
                l.bias - base..l.end() - base,
            )?;
            let dinp_at = if j == first {
                if j == 0 { dinput } else { None }
            } else {
                Some(pass.scratch)
            };
            let inp_at = match (j, &input) {
                (0, NetInput::External(x)) => {
                    // The input lives outside the workspace.
                    let (dinp, dy) = match dinp_at {
                        Some(at) => {
                            let (d, y) = regions2(buf, at..at + rows * inp_dim, dy_r)?;
                            (Some(d), y)
                        }
                        None => (None, &buf[dy_r]),
                    };
                    linear_backward(
                        kernel, dinp, dw, db, dy, x, w, rows, inp_dim, out_dim, accumulate,
                    )?;
                    continue;
                }
                (0, NetInput::Region(at)) => *at,
                _ => pass.hidden[j - 1],
            };
            let inp_r = inp_at..inp_at + rows * inp_dim;
            match dinp_at {
                Some(at) => {
                    let (dinp, dy, inp) = regions(buf, at..at + rows * inp_dim, dy_r, inp_r)?;
                    linear_backward(
                        kernel,
                        Some(dinp),
                        dw,
                        db,
                        dy,
                        inp,
                        w,
                        rows,
                        inp_dim,
                        out_dim,
                        accumulate,
                    )?;
                }
                None => {
                    let (dy, inp) = (&buf[dy_r], &buf[inp_r]);
                    linear_backward(
                        kernel, None, dw, db, dy, inp, w, rows, inp_dim, out_dim, accumulate,
                    )?;
                }
            }
        }
        Ok(())
    }

    fn wb(&self, net: Net, i: usize) -> (&'p [T], &'p [T], usize, usize) {
        let l = self.cfg.layer(net, i);
        // Layers start at or after `suffix_at`, or end at or before it (a layer boundary).
        let (src, at) = if l.weight >= self.suffix_at {
            (self.suffix, self.suffix_at)
        } else {
            (self.params, 0)
        };
        let out_layer = matches!(net, Net::Decoder) && i + 1 == self.cfg.num_layers(Net::Decoder);
        let bias = if out_layer && !self.out_bias.is_empty() {
            self.out_bias
        } else {
            &src[l.bias - at..l.end() - at]
        };
        (&src[l.weight - at..l.bias - at], bias, l.inp, l.out)
    }

    /// Encoder forward pass (App. C.2, used for q_φ(z|x)): h = act(W₁x + b₁) (repeated per
    /// hidden layer), μ = W₂h + b₂, log σ² = W₃h + b₃. Writes the head of `n` inputs
    /// (`x [n][D]`) into the workspace; read it with [`Workspace::head`].
    pub fn encode<K: Gemm<T> + ?Sized>(
        &self,
        kernel: &K,
        x: &[T],
        n: usize,
        ws: &mut Workspace<'_, T>,
    ) -> Result<(), Error> {
        self.check_batch(x, n, ws)?;
        check_finite(x)?;
        ws.pass = None;
        self.encode_unchecked(kernel, x, n, ws)
    }

    /// A workspace fits this model when it has this model's layout (same dimensions; the
    /// activation and such do not matter to the buffer).
    fn check_layout(&self, ws: &Workspace<'_, T>) -> Result<(), Error> {
        if ws.layout
            == self
                .cfg
                .workspace_layout(ws.layout.batch, ws.layout.samples)
        {
            Ok(())
        } else {
            Err(Error::InvalidArgument(
                "workspace was laid out for other dimensions",
            ))
        }
    }

    fn check_batch(&self, x: &[T], n: usize, ws: &Workspace<'_, T>) -> Result<(), Error> {
        if n == 0 || n > ws.layout.batch {
            return Err(Error::InvalidArgument(
                "batch size is zero or exceeds the workspace",
            ));
        }
        self.check_layout(ws)?;
        check_len("x", n * self.cfg.input, x.len())
    }

    // Out of line, and reading only the offsets it needs (not a copy of the whole layout):
    // small stack frames on the Cortex-M scoring path.
    #[inline(never)]
    fn encode_unchecked<K: Gemm<T> + ?Sized>(
        &self,
        kernel: &K,
        x: &[T],
        n: usize,
        ws: &mut Workspace<'_, T>,
    ) -> Result<(), Error> {
        let (enc_h, head) = (ws.layout.enc_h, ws.layout.head);
        let ne = self.cfg.encoder_hidden.len();
        for i in 0..=ne {
            let (w, b, inp_dim, out_dim) = self.wb(Net::Encoder, i);
            let dst = if i < ne { enc_h[i] } else { head };
            if i == 0 {
                let out = &mut ws.buf[dst..dst + n * out_dim];
                linear_forward(kernel, out, x, w, b, n, inp_dim, out_dim)?;
            } else {
                let src = enc_h[i - 1];
                let (out, inp) = regions2(ws.buf, dst..dst + n * out_dim, src..src + n * inp_dim)?;
                linear_forward(kernel, out, inp, w, b, n, inp_dim, out_dim)?;
            }
            if i < ne {
                activation_forward(self.cfg.activation, &mut ws.buf[dst..dst + n * out_dim]);
            }
        }
        Ok(())
    }

    /// Decoder forward pass on `rows` latent vectors `z [rows][Z]` (for samples from the prior,
    /// the 2-D manifold, reconstructions). Outputs: [`Workspace::decoder_output`].
    pub fn decode<K: Gemm<T> + ?Sized>(
        &self,
        kernel: &K,
        z: &[T],
        rows: usize,
        ws: &mut Workspace<'_, T>,
    ) -> Result<(), Error> {
        ws.need_full()?;
        self.check_layout(ws)?;
        if rows == 0 || rows > ws.layout.batch * ws.layout.samples {
            return Err(Error::InvalidArgument(
                "rows is zero or exceeds batch × samples",
            ));
        }
        check_len("z", rows * self.cfg.latent, z.len())?;
        check_finite(z)?;
        ws.pass = None;
        let zl = ws.layout.z;
        ws.buf[zl..zl + z.len()].copy_from_slice(z);
        self.decode_unchecked(kernel, rows, ws)
    }

    // Out of line, as `encode_unchecked`.
    #[inline(never)]
    fn decode_unchecked<K: Gemm<T> + ?Sized>(
        &self,
        kernel: &K,
        rows: usize,
        ws: &mut Workspace<'_, T>,
    ) -> Result<(), Error> {
        let (dec_h, out_at, z_at) = (ws.layout.dec_h, ws.layout.out, ws.layout.z);
        let nd = self.cfg.decoder_hidden.len();
        for j in 0..=nd {
            let (w, b, inp_dim, out_dim) = self.wb(Net::Decoder, j);
            let dst = if j < nd { dec_h[j] } else { out_at };
            let src = if j == 0 { z_at } else { dec_h[j - 1] };
            let (out, inp) =
                regions2(ws.buf, dst..dst + rows * out_dim, src..src + rows * inp_dim)?;
            linear_forward(kernel, out, inp, w, b, rows, inp_dim, out_dim)?;
            if j < nd {
                activation_forward(self.cfg.activation, out);
            }
        }
        Ok(())
    }

    /// Forward pass of the chosen estimator over `n` datapoints `x [n][D]`, drawing
    /// ε ~ N(0, I) from `rng` (reparameterization, §2.4: z = μ + σ ⊙ ε).
    #[allow(clippy::too_many_arguments)]
    pub fn forward<K: Gemm<T> + ?Sized, R: RngCore + ?Sized>(
        &self,
        kernel: &K,
        x: &[T],
        n: usize,
        obj: Objective<T>,
        rng: &mut R,
        ws: &mut Workspace<'_, T>,
    ) -> Result<Bound, Error> {
        self.check_forward(x, n, &obj, ws)?;
        let rows = n * obj.samples;
        let e = ws.layout.eps;
        fill_standard_normal(rng, &mut ws.buf[e..e + rows * self.cfg.latent]);
        let sums = self.forward_inner(kernel, x, n, obj, ws)?;
        Ok(Bound::from_sums(sums, n, rows))
    }

    /// As [`Vae::forward`], with ε given by the caller: `eps [n·L][Z]`, row `b·L + l` for
    /// datapoint b and draw l. With ε = 0 and L = 1, z = μ (a deterministic pass).
    pub fn forward_with_eps<K: Gemm<T> + ?Sized>(
        &self,
        kernel: &K,
        x: &[T],
        n: usize,
        obj: Objective<T>,
        eps: &[T],
        ws: &mut Workspace<'_, T>,
    ) -> Result<Bound, Error> {
        self.check_forward(x, n, &obj, ws)?;
        check_len("eps", n * obj.samples * self.cfg.latent, eps.len())?;
        check_finite(eps)?;
        let e = ws.layout.eps;
        ws.buf[e..e + eps.len()].copy_from_slice(eps);
        let sums = self.forward_inner(kernel, x, n, obj, ws)?;
        Ok(Bound::from_sums(sums, n, n * obj.samples))
    }

    pub(crate) fn check_forward(
        &self,
        x: &[T],
        n: usize,
        obj: &Objective<T>,
        ws: &mut Workspace<'_, T>,
    ) -> Result<(), Error> {
        ws.need_full()?;
        self.check_batch(x, n, ws)?;
        if obj.samples == 0 || obj.samples > ws.layout.samples {
            return Err(Error::InvalidArgument(
                "samples is zero or exceeds the workspace",
            ));
        }
        if !obj.beta.is_finite() || obj.beta < T::ZERO {
            return Err(Error::InvalidArgument(
                "beta must be finite and non-negative",
            ));
        }
        ws.pass = None;
        check_finite(x)
    }

    pub(crate) fn forward_inner<K: Gemm<T> + ?Sized>(
        &self,
        kernel: &K,
        x: &[T],
        n: usize,
        obj: Objective<T>,
        ws: &mut Workspace<'_, T>,
    ) -> Result<Sums<T>, Error> {
        let rows = n * obj.samples;
        self.encode_unchecked(kernel, x, n, ws)?;
        self.reparameterize(n, obj.samples, ws)?;
        self.decode_unchecked(kernel, rows, ws)?;
        self.sample_terms(x, n, obj, ws)
    }

    /// Reparameterization (§2.4): z = μ + σ ⊙ ε, σ = exp(½ log σ²), for `n` datapoints and
    /// `l_count` draws each. Out of line, like the other steps of the forward pass, so that
    /// [`Vae::forward`]'s own frame stays small under the layers'.
    #[inline(never)]
    fn reparameterize(
        &self,
        n: usize,
        l_count: usize,
        ws: &mut Workspace<'_, T>,
    ) -> Result<(), Error> {
        let lay = FwdOffsets::of(&ws.layout);
        let zd = self.cfg.latent;
        let rows = n * l_count;
        let (z, head, eps) = regions(
            ws.buf,
            lay.z..lay.z + rows * zd,
            lay.head..lay.head + n * 2 * zd,
            lay.eps..lay.eps + rows * zd,
        )?;
        for s in 0..rows {
            let h = &head[(s / l_count) * 2 * zd..][..2 * zd];
            let (mu, lv) = h.split_at(zd);
            for j in 0..zd {
                z[s * zd + j] = mu[j] + (T::HALF * lv[j]).exp() * eps[s * zd + j];
            }
        }
        Ok(())
    }

    /// The forward pass's per-sample terms, after the decoder: rec = log p(x|z), logw = the
    /// estimator's sample term, and each datapoint's value. Out of line: its temporaries (the
    /// likelihood's blocks) are not on the stack while the layers run.
    #[inline(never)]
    fn sample_terms(
        &self,
        x: &[T],
        n: usize,
        obj: Objective<T>,
        ws: &mut Workspace<'_, T>,
    ) -> Result<Sums<T>, Error> {
        let lay = FwdOffsets::of(&ws.layout);
        let zd = self.cfg.latent;
        let d = self.cfg.input;
        let dout = self.cfg.decoder_out();
        let l_count = obj.samples;

        // Per-sample terms: rec = log p(x|z), logw = the estimator's sample term.
        let mut sum_rec = T::ZERO;
        let mut sum_kl = T::ZERO;
        let mut sum_obj = T::ZERO;
        let ln_l = T::from_usize(l_count).ln();
        for b in 0..n {
            let xb = &x[b * d..(b + 1) * d];
            let hb = lay.head + b * 2 * zd;
            let mut kl_b = T::ZERO;
            if obj.estimator == Estimator::Analytic {
                let h = &ws.buf[hb..hb + 2 * zd];
                kl_b = kl_standard_normal(&h[..zd], &h[zd..]);
            }
            let mut mean_rec = T::ZERO;
            let mut mean_logw = T::ZERO;
            for l in 0..l_count {
                let s = b * l_count + l;
                let rec = log_likelihood(
                    self.cfg.likelihood,
                    xb,
                    &ws.buf[lay.out + s * dout..][..dout],
                );
                let lpq = if obj.estimator == Estimator::Analytic {
                    T::ZERO
                } else {
                    let zs = &ws.buf[lay.z + s * zd..][..zd];
                    let lv = &ws.buf[hb + zd..hb + 2 * zd];
                    let es = &ws.buf[lay.eps + s * zd..][..zd];
                    log_prior_minus_log_q(zs, lv, es)
                };
                let logw = rec + obj.beta * lpq;
                ws.buf[lay.rec + s] = rec;
                ws.buf[lay.logw + s] = logw;
                sum_rec += rec;
                if obj.estimator != Estimator::Analytic {
                    sum_kl -= lpq / T::from_usize(l_count);
                }
                mean_rec += rec;
                mean_logw += logw;
            }
            let inv_l = T::ONE / T::from_usize(l_count);
            let point = match obj.estimator {
                Estimator::Analytic => mean_rec * inv_l - obj.beta * kl_b,
                Estimator::MonteCarlo => mean_logw * inv_l,
                Estimator::ImportanceWeighted => {
                    log_sum_exp(&ws.buf[lay.logw + b * l_count..lay.logw + (b + 1) * l_count])
                        - ln_l
                }
            };
            ws.buf[lay.point + b] = point;
            sum_kl += kl_b;
            sum_obj += point;
        }
        if !(sum_obj.is_finite() && sum_kl.is_finite() && sum_rec.is_finite()) {
            return Err(Error::NonFiniteLoss);
        }
        ws.pass = Some(Pass { n, obj });
        Ok(Sums {
            objective: sum_obj,
            kl: sum_kl,
            rec: sum_rec,
        })
    }

    /// Gradient of the loss `−objective` (the minibatch mean of the last forward pass's
    /// estimator) with respect to every parameter, *added* into `grads` (same layout as the
    /// parameters; zero it first for a fresh step). `x` must be the forward pass's input.
    /// Overwrites the workspace's activations: a second `backward` needs a new `forward`.
    pub fn backward<K: Gemm<T> + ?Sized>(
        &self,
        kernel: &K,
        x: &[T],
        grads: &mut [T],
        ws: &mut Workspace<'_, T>,
    ) -> Result<(), Error> {
        self.backward_impl(kernel, x, grads, ws, true)
    }

    /// As [`Vae::backward`], but *writes* the gradient into `grads` (no zeroing needed; saves
    /// a pass over the parameters per step).
    pub fn backward_set<K: Gemm<T> + ?Sized>(
        &self,
        kernel: &K,
        x: &[T],
        grads: &mut [T],
        ws: &mut Workspace<'_, T>,
    ) -> Result<(), Error> {
        self.backward_impl(kernel, x, grads, ws, false)
    }

    /// Weight c_s of each sample in the loss −Σ_s c_s·(sample term), into `logw`.
    fn sample_weights(&self, ws: &mut Workspace<'_, T>, n: usize, obj: Objective<T>) {
        let lay = ws.layout;
        let l_count = obj.samples;
        let inv_n = T::ONE / T::from_usize(n);
        let inv_nl = T::ONE / T::from_usize(n * l_count);
        for b in 0..n {
            let lw = &mut ws.buf[lay.logw + b * l_count..lay.logw + (b + 1) * l_count];
            if obj.estimator == Estimator::ImportanceWeighted {
                // Normalized importance weights w̃_l = softmax(log w)_l (Burda et al. eq. 13).
                let lse = log_sum_exp(lw);
                lw.iter_mut().for_each(|v| *v = (*v - lse).exp() * inv_n);
            } else {
                lw.iter_mut().for_each(|v| *v = inv_nl);
            }
        }
    }

    /// Decoder output gradients, in place: d(−c·log p(x|z))/d out for each of `rows` samples.
    fn likelihood_grads(&self, x: &[T], rows: usize, l_count: usize, ws: &mut Workspace<'_, T>) {
        let lay = ws.layout;
        let (d, dout) = (self.cfg.input, self.cfg.decoder_out());
        for s in 0..rows {
            let c = ws.buf[lay.logw + s];
            let xb = &x[(s / l_count) * d..][..d];
            log_likelihood_backward(
                self.cfg.likelihood,
                &mut ws.buf[lay.out + s * dout..][..dout],
                xb,
                c,
            );
        }
    }

    fn backward_impl<K: Gemm<T> + ?Sized>(
        &self,
        kernel: &K,
        x: &[T],
        grads: &mut [T],
        ws: &mut Workspace<'_, T>,
        accumulate: bool,
    ) -> Result<(), Error> {
        let Pass { n, obj } = ws.pass.ok_or(Error::NoForwardPass)?;
        check_len("x", n * self.cfg.input, x.len())?;
        check_len("grads", self.cfg.num_params(), grads.len())?;
        ws.pass = None;
        let lay = ws.layout;
        let cfg = &self.cfg;
        let zd = cfg.latent;
        let l_count = obj.samples;
        let rows = n * l_count;
        let inv_n = T::ONE / T::from_usize(n);

        self.sample_weights(ws, n, obj);
        self.likelihood_grads(x, rows, l_count, ws);

        // Decoder layers, output first; the input gradient of the first one is dL/dz.
        let dec = NetPass::decoder(&lay, rows);
        self.net_backward(
            kernel,
            &dec,
            NetInput::Region(lay.z),
            Some(lay.dz),
            GradTarget {
                grads: &mut *grads,
                base: 0,
                first: 0,
            },
            ws.buf,
            accumulate,
        )?;

        // Through z = μ + σ ⊙ ε to the encoder head, plus the prior/entropy or KL terms.
        {
            let (dhead, head) = regions2(
                ws.buf,
                lay.dhead..lay.dhead + n * 2 * zd,
                lay.head..lay.head + n * 2 * zd,
            )?;
            dhead.iter_mut().for_each(|v| *v = T::ZERO);
            if obj.estimator == Estimator::Analytic {
                // d(β·KL/n)/dμ = β μ / n; d/dlv = β ½ (e^{lv} − 1) / n (App. B).
                let k = obj.beta * inv_n;
                for b in 0..n {
                    for j in 0..zd {
                        let mu = head[b * 2 * zd + j];
                        let lv = head[b * 2 * zd + zd + j];
                        dhead[b * 2 * zd + j] = k * mu;
                        dhead[b * 2 * zd + zd + j] = k * T::HALF * (lv.exp() - T::ONE);
                    }
                }
            }
        }
        for s in 0..rows {
            let b = s / l_count;
            let c = ws.buf[lay.logw + s];
            let mc = obj.estimator != Estimator::Analytic;
            for j in 0..zd {
                let z = ws.buf[lay.z + s * zd + j];
                let e = ws.buf[lay.eps + s * zd + j];
                let mut g = ws.buf[lay.dz + s * zd + j];
                let lv = ws.buf[lay.head + b * 2 * zd + zd + j];
                let mut glv = T::ZERO;
                if mc {
                    // −c·β·log p(z): d/dz = c β z.  −c·β·(−log q) with log q through ε:
                    // d/d lv = −c β ½.
                    g += c * obj.beta * z;
                    glv -= c * obj.beta * T::HALF;
                }
                // dz/dμ = 1, dz/d lv = ½ σ ε.
                glv += g * T::HALF * (T::HALF * lv).exp() * e;
                ws.buf[lay.dhead + b * 2 * zd + j] += g;
                ws.buf[lay.dhead + b * 2 * zd + zd + j] += glv;
            }
        }

        // Encoder layers, head first; the first layer's input gradient is not needed.
        let enc = NetPass {
            net: Net::Encoder,
            rows: n,
            hidden: lay.enc_h,
            dout: lay.dhead,
            scratch: lay.scratch,
        };
        self.net_backward(
            kernel,
            &enc,
            NetInput::External(x),
            None,
            GradTarget {
                grads,
                base: 0,
                first: 0,
            },
            ws.buf,
            accumulate,
        )?;
        Ok(())
    }

    /// The gradient of the loss (−bound) of the last forward pass with respect to the decoder
    /// output layer's bias only, *written* into `grads [decoder_out]`: the likelihood's output
    /// gradient summed over the samples ([`crate::layers::bias_backward`]), nothing else of the
    /// backward pass. Equals that range of [`Vae::backward_set`]'s gradient bit for bit.
    pub fn backward_decoder_output_bias(
        &self,
        x: &[T],
        grads: &mut [T],
        ws: &mut Workspace<'_, T>,
    ) -> Result<(), Error> {
        let dout = self.cfg.decoder_out();
        check_len("grads", dout, grads.len())?;
        let Pass { n, obj } = ws.pass.ok_or(Error::NoForwardPass)?;
        check_len("x", n * self.cfg.input, x.len())?;
        ws.pass = None;
        let rows = n * obj.samples;
        self.sample_weights(ws, n, obj);
        self.likelihood_grads(x, rows, obj.samples, ws);
        let at = ws.layout.out;
        bias_backward(grads, &ws.buf[at..at + rows * dout], rows, dout, false)
    }

    /// The gradient of the loss (−bound) of the last forward pass with respect to the
    /// parameters from decoder layer `from` on only — the decoder's last layers, which
    /// on-device adaptation trains — *written* into `grads [num_params −
    /// cfg.decoder_suffix_offset(from)]`. The bound's KL term does not depend on θ, so this is
    /// `−∂/∂θ E[log p(x|z)]` through the decoder's top layers (eq. 7's θ-gradient); the rest
    /// of the backward pass is skipped. The values equal the same range of
    /// [`Vae::backward_set`]'s gradient bit for bit. Clears the forward pass, as `backward`.
    pub fn backward_decoder_suffix<K: Gemm<T> + ?Sized>(
        &self,
        kernel: &K,
        x: &[T],
        from: usize,
        grads: &mut [T],
        ws: &mut Workspace<'_, T>,
    ) -> Result<(), Error> {
        let base = self.cfg.decoder_suffix_offset(from)?;
        check_len("grads", self.cfg.num_params() - base, grads.len())?;
        let Pass { n, obj } = ws.pass.ok_or(Error::NoForwardPass)?;
        check_len("x", n * self.cfg.input, x.len())?;
        ws.pass = None;
        let lay = ws.layout;
        let rows = n * obj.samples;
        self.sample_weights(ws, n, obj);
        self.likelihood_grads(x, rows, obj.samples, ws);
        let dec = NetPass::decoder(&lay, rows);
        self.net_backward(
            kernel,
            &dec,
            NetInput::Region(lay.z),
            None,
            GradTarget {
                grads,
                base,
                first: from,
            },
            ws.buf,
            false,
        )
    }
}
