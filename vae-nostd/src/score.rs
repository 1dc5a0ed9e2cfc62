//! Anomaly scores of single inputs (or batches of them): higher means more anomalous.

use rand_core::RngCore;

use crate::Real;
use crate::error::{Error, check_len};
use crate::kernel::Gemm;
use crate::model::{Estimator, Objective, Vae, Workspace};

/// Which anomaly score to compute for each input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ScoreKind {
    /// −ELBO with z = μ (ε = 0): KL(q(z|x) ‖ p(z)) − log p_θ(x|μ). Deterministic, one encoder
    /// and one decoder pass: the firmware's default.
    NegElboAtMean,
    /// −ELBO by estimator B with `samples` draws of z.
    NegElbo {
        /// Draws of z.
        samples: usize,
    },
    /// −log p̂_θ(x): the importance-sampling estimate with `samples` draws from q(z|x)
    /// (the k-sample bound of Burda et al. 2015; the paper's App. D marginal-likelihood
    /// estimator in spirit). Tends to −log p_θ(x) from above as `samples` grows.
    NegLogLikelihood {
        /// Importance samples k.
        samples: usize,
    },
    /// Negated reconstruction probability of An & Cho (2015, Alg. 4):
    /// −(1/L) Σ_l log p_θ(x | z_l), z_l ~ q_φ(z|x). Reported as a mean log-density (their
    /// "probability" averaged in log space, which stays finite in high dimensions).
    ReconstructionProbability {
        /// Draws of z.
        samples: usize,
    },
}

impl ScoreKind {
    fn samples(self) -> usize {
        match self {
            ScoreKind::NegElboAtMean => 1,
            ScoreKind::NegElbo { samples }
            | ScoreKind::NegLogLikelihood { samples }
            | ScoreKind::ReconstructionProbability { samples } => samples,
        }
    }
}

impl<T: Real> Vae<'_, T> {
    /// Scores `n` inputs `x [n][D]` into `out [n]`. Sampled scores draw ε from `rng`, in chunks
    /// of the workspace's sample capacity, so any number of samples fits a small workspace.
    #[allow(clippy::too_many_arguments)]
    pub fn score<K: Gemm<T> + ?Sized, R: RngCore + ?Sized>(
        &self,
        kernel: &K,
        x: &[T],
        n: usize,
        kind: ScoreKind,
        rng: &mut R,
        ws: &mut Workspace<'_, T>,
        out: &mut [T],
    ) -> Result<(), Error> {
        check_len("scores", n, out.len())?;
        let total = kind.samples();
        if total == 0 {
            return Err(Error::InvalidArgument("score samples must be at least 1"));
        }
        let z = self.config().latent;
        if kind == ScoreKind::NegElboAtMean {
            let obj = Objective {
                estimator: Estimator::Analytic,
                samples: 1,
                beta: T::ONE,
            };
            self.check_forward(x, n, &obj, ws)?;
            let e = ws.layout.eps;
            ws.buf[e..e + n * z].iter_mut().for_each(|v| *v = T::ZERO);
            self.forward_inner(kernel, x, n, obj, ws)?;
            for (o, p) in out.iter_mut().zip(ws.per_datapoint()) {
                *o = -*p;
            }
            return Ok(());
        }
        self.score_sampled(kernel, x, n, kind, total, rng, ws, out)
    }

    /// The sampled scores, out of line: the deterministic score (the firmware's) keeps a small
    /// stack frame.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn score_sampled<K: Gemm<T> + ?Sized, R: RngCore + ?Sized>(
        &self,
        kernel: &K,
        x: &[T],
        n: usize,
        kind: ScoreKind,
        total: usize,
        rng: &mut R,
        ws: &mut Workspace<'_, T>,
        out: &mut [T],
    ) -> Result<(), Error> {
        let cap = ws.layout().samples;
        let estimator = match kind {
            ScoreKind::NegLogLikelihood { .. } => Estimator::ImportanceWeighted,
            _ => Estimator::Analytic,
        };
        let mut done = 0;
        while done < total {
            let l = cap.min(total - done);
            let obj = Objective {
                estimator,
                samples: l,
                beta: T::ONE,
            };
            self.forward(kernel, x, n, obj, rng, ws)?;
            let lf = T::from_usize(l);
            for (b, o) in out.iter_mut().enumerate() {
                let v = match kind {
                    // Running log-sum-exp of all log-weights: chunk value + ln L_c.
                    ScoreKind::NegLogLikelihood { .. } => {
                        let c = ws.per_datapoint()[b] + T::from_usize(l).ln();
                        if done == 0 {
                            c
                        } else {
                            let a = *o;
                            let (hi, lo) = if a > c { (a, c) } else { (c, a) };
                            hi + (lo - hi).exp().ln_1p_unit()
                        }
                    }
                    ScoreKind::ReconstructionProbability { .. } => {
                        let rec = &ws.reconstruction_terms()[b * l..(b + 1) * l];
                        let s = rec.iter().fold(T::ZERO, |a, r| a + *r);
                        if done == 0 { s } else { *o + s }
                    }
                    _ => {
                        let s = ws.per_datapoint()[b] * lf;
                        if done == 0 { s } else { *o + s }
                    }
                };
                *o = v;
            }
            done += l;
        }
        let tf = T::from_usize(total);
        let ln_total = tf.ln();
        for o in out.iter_mut() {
            *o = match kind {
                ScoreKind::NegLogLikelihood { .. } => ln_total - *o,
                _ => -*o / tf,
            };
        }
        if out.iter().all(|v| v.is_finite()) {
            Ok(())
        } else {
            Err(Error::NonFiniteLoss)
        }
    }
}
