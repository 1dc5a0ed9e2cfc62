//! The data-parallel training engine: a minibatch is cut into a fixed number of shards (a
//! function of the batch size only), each shard runs the core's forward and backward with the
//! blocked kernel on whichever thread is free, and the shard gradients are summed in shard
//! order. The result is therefore bit-identical for any number of threads.

use rand_core::SeedableRng;
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;
use vae_nostd::{
    Adagrad, Adam, Bound, Error, Objective, Optimizer, OptimizerKind, Sgd, StepRule, Vae,
    VaeConfig, Workspace,
};

use crate::kernel::Blocked;

pub use vae_nostd::seed::derive_seed;

/// Shards per minibatch: a power of two, about one per 48 rows, at least 2 from 16 rows (so
/// two cores share even small batches), at most 8. Depends on the batch size alone, so results
/// do not depend on the thread count.
pub fn shard_count(batch: usize) -> usize {
    let mut s = 1;
    while s * 2 <= 8 && s * 2 * 48 <= batch {
        s *= 2;
    }
    if batch >= 16 { s.max(2) } else { s }
}

/// The optimizer, by family.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Opt {
    /// Adagrad.
    Adagrad(Adagrad<f32>),
    /// Adam.
    Adam(Adam<f32>),
    /// SGD with momentum.
    Sgd(Sgd<f32>),
}

impl Opt {
    /// Family.
    pub fn kind(&self) -> OptimizerKind {
        match self {
            Opt::Adagrad(_) => OptimizerKind::Adagrad,
            Opt::Adam(_) => OptimizerKind::Adam,
            Opt::Sgd(_) => OptimizerKind::Sgd,
        }
    }
    /// Name as on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Opt::Adagrad(_) => "adagrad",
            Opt::Adam(_) => "adam",
            Opt::Sgd(_) => "sgd",
        }
    }
    /// Sets the step count (Adam's bias correction) when resuming.
    pub fn set_step(&mut self, step: u64) {
        if let Opt::Adam(a) = self {
            a.t = step;
        }
    }
    /// The step-wide part of the core's update (`vae_nostd::Optimizer::begin_step`).
    fn begin_step(&mut self) -> Result<StepRule<f32>, Error> {
        match self {
            Opt::Adagrad(o) => o.begin_step(),
            Opt::Adam(o) => o.begin_step(),
            Opt::Sgd(o) => o.begin_step(),
        }
    }

    /// One update over the whole parameter vector: the core's step-wide part once, then its
    /// element-wise part (`vae_nostd::StepRule::apply`) on parallel chunks — the device's
    /// update, with the same bits for any chunking or thread count. The caller has checked
    /// that every gradient is finite.
    fn step(
        &mut self,
        pool: &rayon::ThreadPool,
        params: &mut [f32],
        grads: &[f32],
        state: &mut [f32],
    ) -> Result<(), Error> {
        const CHUNK: usize = 1 << 14;
        let p = params.len();
        if grads.len() != p || state.len() != self.kind().state_per_param() * p {
            return Err(Error::LengthMismatch {
                what: "optimizer state",
                expected: self.kind().state_per_param() * p,
                actual: state.len(),
            });
        }
        let rule = self.begin_step()?;
        let (first, second) = state.split_at_mut(p);
        let chunks = params
            .par_chunks_mut(CHUNK)
            .zip(grads.par_chunks(CHUNK))
            .zip(first.par_chunks_mut(CHUNK));
        pool.install(|| {
            if second.is_empty() {
                // Adagrad and SGD keep one moment.
                chunks
                    .try_for_each(|((pc, gc), fc)| rule.apply_with(pc, gc, fc, &mut [], f32::sqrt))
            } else {
                chunks
                    .zip(second.par_chunks_mut(CHUNK))
                    .try_for_each(|(((pc, gc), fc), sc)| rule.apply_with(pc, gc, fc, sc, f32::sqrt))
            }
        })
    }
}

/// Rows, bound and per-datapoint values of one evaluation chunk.
type ChunkResult = (usize, Bound, Vec<f32>);

struct Shard {
    ws: Vec<f32>,
    grads: Vec<f32>,
    capacity_rows: usize,
    samples: usize,
}

/// Parameters, optimizer and per-shard buffers for training one model.
pub struct Engine {
    cfg: VaeConfig,
    /// Flat parameters (core layout).
    pub params: Vec<f32>,
    /// Optimizer moments (same layout, ×1 or ×2).
    pub opt_state: Vec<f32>,
    /// The optimizer.
    pub opt: Opt,
    grads: Vec<f32>,
    shards: Vec<Shard>,
    pool: rayon::ThreadPool,
    threads: usize,
    /// When set, [`Engine::score`] scores through this int8 model (−ELBO at z = μ only).
    int8: Option<crate::quantize::Int8Model>,
}

/// What one step or evaluation measured: the bound's parts, averaged per datapoint.
pub type StepBound = Bound;

/// Most worker threads an engine starts (a flag above it is refused, not obeyed).
pub const MAX_THREADS: usize = 1024;

impl Engine {
    /// A new engine over `params` with `threads` worker threads (at most [`MAX_THREADS`]).
    pub fn new(
        cfg: VaeConfig,
        params: Vec<f32>,
        opt: Opt,
        opt_state: Option<Vec<f32>>,
        threads: usize,
    ) -> Result<Self, Error> {
        cfg.validate()?;
        if params.len() != cfg.num_params() {
            return Err(Error::LengthMismatch {
                what: "parameters",
                expected: cfg.num_params(),
                actual: params.len(),
            });
        }
        let state_len = opt.kind().state_per_param() * params.len();
        let opt_state = match opt_state {
            Some(s) if s.len() == state_len => s,
            Some(s) => {
                return Err(Error::LengthMismatch {
                    what: "optimizer state",
                    expected: state_len,
                    actual: s.len(),
                });
            }
            None => vec![0.0; state_len],
        };
        let threads = threads.max(1);
        if threads > MAX_THREADS {
            // Issue 12: `--threads 100000` spawned threads until the machine stalled.
            return Err(Error::InvalidArgument(
                "worker threads: at most 1024 (--threads); results are the same for any count",
            ));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|_| Error::InvalidArgument("could not start the thread pool"))?;
        Ok(Engine {
            cfg,
            grads: vec![0.0; params.len()],
            params,
            opt_state,
            opt,
            shards: Vec::new(),
            pool,
            threads,
            int8: None,
        })
    }

    /// Scores through `model` (the int8 quantization of these parameters) from now on, or
    /// through the f32 parameters again with `None`.
    pub fn set_int8(&mut self, model: Option<crate::quantize::Int8Model>) {
        self.int8 = model;
    }

    /// The configuration.
    pub fn config(&self) -> &VaeConfig {
        &self.cfg
    }

    /// Worker threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    fn ensure_shards(&mut self, count: usize, rows: usize, samples: usize) {
        let need = self.cfg.workspace_len(rows, samples);
        if self.shards.len() != count {
            self.shards.clear();
        }
        while self.shards.len() < count {
            self.shards.push(Shard {
                ws: Vec::new(),
                grads: vec![0.0; self.params.len()],
                capacity_rows: 0,
                samples: 0,
            });
        }
        for s in &mut self.shards {
            if s.capacity_rows < rows || s.samples != samples {
                s.ws = vec![0.0; need];
                s.capacity_rows = rows;
                s.samples = samples;
            }
        }
    }

    /// One optimizer step on the minibatch `x [n][D]` (already normalized/binarized). ε for
    /// shard s is drawn from a generator seeded by `derive_seed(step_seed, [s])`.
    /// On a non-finite bound or gradient nothing changes and the error is returned.
    pub fn train_step(
        &mut self,
        x: &[f32],
        n: usize,
        obj: Objective<f32>,
        step_seed: u64,
    ) -> Result<Bound, Error> {
        let d = self.cfg.input;
        if x.len() != n * d || n == 0 {
            return Err(Error::LengthMismatch {
                what: "minibatch",
                expected: n * d,
                actual: x.len(),
            });
        }
        let count = shard_count(n);
        let rows = n.div_ceil(count);
        self.ensure_shards(count, rows, obj.samples);
        let cfg = self.cfg;
        let params = &self.params;
        let results: Vec<Result<(usize, Bound), Error>> = self.pool.install(|| {
            self.shards
                .par_iter_mut()
                .enumerate()
                .map(|(s, shard)| {
                    let lo = (s * n) / count;
                    let hi = ((s + 1) * n) / count;
                    let xs = &x[lo * d..hi * d];
                    let rows = hi - lo;
                    let mut ws =
                        Workspace::new(&cfg, shard.capacity_rows, obj.samples, &mut shard.ws)?;
                    let vae = Vae::new(cfg, params)?;
                    let mut rng = Pcg64Mcg::seed_from_u64(derive_seed(step_seed, &[s as u64]));
                    let b = vae.forward(&Blocked, xs, rows, obj, &mut rng, &mut ws)?;
                    vae.backward_set(&Blocked, xs, &mut shard.grads, &mut ws)?;
                    Ok((rows, b))
                })
                .collect()
        });
        let mut total = Bound::default();
        let mut weights = Vec::with_capacity(count);
        for r in results {
            let (rows, b) = r?;
            let w = rows as f64 / n as f64;
            total.objective += w * b.objective;
            total.kl += w * b.kl;
            total.rec += w * b.rec;
            weights.push(w as f32);
        }
        // Fixed-order reduction: g = w_0 g_0, then g += w_s g_s for s = 1, 2, ... in order,
        // element by element (vectorizable; independent of the thread count).
        let shards = &self.shards;
        const CHUNK: usize = 1 << 14;
        let finite = self.pool.install(|| {
            self.grads
                .par_chunks_mut(CHUNK)
                .enumerate()
                .map(|(c, gc)| {
                    let off = c * CHUNK;
                    let end = off + gc.len();
                    let w0 = weights[0];
                    for (g, s0) in gc.iter_mut().zip(&shards[0].grads[off..end]) {
                        *g = w0 * *s0;
                    }
                    for (s, sh) in shards.iter().enumerate().skip(1) {
                        let w = weights[s];
                        for (g, v) in gc.iter_mut().zip(&sh.grads[off..end]) {
                            *g += w * *v;
                        }
                    }
                    // g · 0 is 0 for finite g and NaN for ±∞ or NaN; the sum stays 0 iff all are finite.
                    gc.iter().fold(0.0f32, |acc, g| acc + g * 0.0) == 0.0
                })
                .reduce(|| true, |a, b| a && b)
        });
        if !finite {
            return Err(Error::NonFiniteGradient);
        }
        self.opt.step(
            &self.pool,
            &mut self.params,
            &self.grads,
            &mut self.opt_state,
        )?;
        Ok(total)
    }

    /// The bound on `x [n][D]` without updating anything, in parallel chunks of `chunk` rows;
    /// chunk c draws ε from `derive_seed(seed, [c])`. Returns the mean bound and fills
    /// `per_point` (if given) with each datapoint's estimator value.
    pub fn evaluate(
        &self,
        x: &[f32],
        n: usize,
        obj: Objective<f32>,
        seed: u64,
        mut per_point: Option<&mut [f32]>,
    ) -> Result<Bound, Error> {
        let d = self.cfg.input;
        if x.len() != n * d {
            return Err(Error::LengthMismatch {
                what: "evaluation data",
                expected: n * d,
                actual: x.len(),
            });
        }
        let chunk = 100usize.min(n.max(1));
        let chunks = n.div_ceil(chunk);
        let cfg = self.cfg;
        let params = &self.params;
        let results: Vec<Result<ChunkResult, Error>> = self.pool.install(|| {
            (0..chunks)
                .into_par_iter()
                .map(|c| {
                    let lo = c * chunk;
                    let hi = (lo + chunk).min(n);
                    let mut buf = vec![0.0f32; cfg.workspace_len(chunk, obj.samples)];
                    let mut ws = Workspace::new(&cfg, chunk, obj.samples, &mut buf)?;
                    let vae = Vae::new(cfg, params)?;
                    let mut rng = Pcg64Mcg::seed_from_u64(derive_seed(seed, &[c as u64]));
                    let b = vae.forward(
                        &Blocked,
                        &x[lo * d..hi * d],
                        hi - lo,
                        obj,
                        &mut rng,
                        &mut ws,
                    )?;
                    Ok((hi - lo, b, ws.per_datapoint().to_vec()))
                })
                .collect()
        });
        let mut total = Bound::default();
        let mut at = 0;
        for r in results {
            let (rows, b, pts) = r?;
            let w = rows as f64 / n as f64;
            total.objective += w * b.objective;
            total.kl += w * b.kl;
            total.rec += w * b.rec;
            if let Some(pp) = per_point.as_deref_mut() {
                pp[at..at + rows].copy_from_slice(&pts);
            }
            at += rows;
        }
        Ok(total)
    }
}

impl Engine {
    /// Runs `f` over `n` rows in parallel chunks of up to `chunk` rows, each with its own
    /// workspace of `samples` draws; chunk c gets a generator seeded by `derive_seed(seed, [c])`.
    /// Results come back in chunk order.
    fn chunked<R: Send>(
        &self,
        n: usize,
        chunk: usize,
        samples: usize,
        seed: u64,
        f: impl Fn(
            &Vae<'_, f32>,
            &mut Workspace<'_, f32>,
            usize,
            usize,
            &mut Pcg64Mcg,
        ) -> Result<R, Error>
        + Sync,
    ) -> Result<Vec<R>, Error> {
        let cfg = self.cfg;
        let params = &self.params;
        let chunk = chunk.max(1);
        self.pool.install(|| {
            (0..n.div_ceil(chunk))
                .into_par_iter()
                .map(|c| {
                    let lo = c * chunk;
                    let hi = (lo + chunk).min(n);
                    let mut buf = vec![0.0f32; cfg.workspace_len(chunk, samples)];
                    let mut ws = Workspace::new(&cfg, chunk, samples, &mut buf)?;
                    let vae = Vae::new(cfg, params)?;
                    let mut rng = Pcg64Mcg::seed_from_u64(derive_seed(seed, &[c as u64]));
                    f(&vae, &mut ws, lo, hi, &mut rng)
                })
                .collect()
        })
    }

    /// Anomaly scores of `x [n][D]` into a vector of `n` (the core's `Vae::score`), in
    /// parallel chunks; sampled scores draw in chunks of at most 100 samples.
    pub fn score(
        &self,
        x: &[f32],
        n: usize,
        kind: vae_nostd::ScoreKind,
        seed: u64,
    ) -> Result<Vec<f32>, Error> {
        let d = self.cfg.input;
        if x.len() != n * d {
            return Err(Error::LengthMismatch {
                what: "score data",
                expected: n * d,
                actual: x.len(),
            });
        }
        if let Some(q) = &self.int8 {
            if kind != vae_nostd::ScoreKind::NegElboAtMean {
                return Err(Error::InvalidArgument(
                    "the int8 model scores -ELBO at z = mu only (--score neg-elbo-mean)",
                ));
            }
            return q.scores(x, n);
        }
        let draws = match kind {
            vae_nostd::ScoreKind::NegElboAtMean => 1,
            vae_nostd::ScoreKind::NegElbo { samples }
            | vae_nostd::ScoreKind::NegLogLikelihood { samples }
            | vae_nostd::ScoreKind::ReconstructionProbability { samples } => samples.clamp(1, 100),
        };
        let chunk = (20_000 / draws).clamp(1, 256);
        let parts = self.chunked(n, chunk, draws, seed, |vae, ws, lo, hi, rng| {
            let mut out = vec![0.0f32; hi - lo];
            vae.score(
                &Blocked,
                &x[lo * d..hi * d],
                hi - lo,
                kind,
                rng,
                ws,
                &mut out,
            )?;
            Ok(out)
        })?;
        Ok(parts.concat())
    }

    /// Latent means μ(x) and log-variances of `x [n][D]`: returns `[n][2Z]` (μ then log σ²).
    pub fn encode(&self, x: &[f32], n: usize) -> Result<Vec<f32>, Error> {
        let d = self.cfg.input;
        let z = self.cfg.latent;
        if x.len() != n * d {
            return Err(Error::LengthMismatch {
                what: "encode data",
                expected: n * d,
                actual: x.len(),
            });
        }
        let parts = self.chunked(n, 256, 1, 0, |vae, ws, lo, hi, _| {
            vae.encode(&Blocked, &x[lo * d..hi * d], hi - lo, ws)?;
            Ok(ws.head(hi - lo)[..(hi - lo) * 2 * z].to_vec())
        })?;
        Ok(parts.concat())
    }

    /// Decoder means E[x|z] of `z [rows][Z]`: returns `[rows][D]`.
    pub fn decode_mean(&self, z: &[f32], rows: usize) -> Result<Vec<f32>, Error> {
        let zd = self.cfg.latent;
        let d = self.cfg.input;
        let lik = self.cfg.likelihood;
        let dout = self.cfg.decoder_out();
        if z.len() != rows * zd {
            return Err(Error::LengthMismatch {
                what: "latents",
                expected: rows * zd,
                actual: z.len(),
            });
        }
        let parts = self.chunked(rows, 256, 1, 0, |vae, ws, lo, hi, _| {
            vae.decode(&Blocked, &z[lo * zd..hi * zd], hi - lo, ws)?;
            let out = ws.decoder_output(hi - lo);
            let mut mean = vec![0.0f32; (hi - lo) * d];
            for (m, o) in mean.chunks_exact_mut(d).zip(out.chunks_exact(dout)) {
                vae_nostd::likelihood::decoder_mean(lik, m, o);
            }
            Ok(mean)
        })?;
        Ok(parts.concat())
    }
}
