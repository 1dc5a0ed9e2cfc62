//! The int8 model of a checkpoint (issue 11): the core's post-training quantization
//! (`vae_nostd::quant`) calibrated on the training windows, owned in `Vec`s, and its scores.

use vae_nostd::quant::{self, QuantLayout, QuantVae};
use vae_nostd::{Error, Portable, VaeConfig};

/// A quantized model with its buffers.
#[derive(Clone, Debug)]
pub struct Int8Model {
    cfg: VaeConfig,
    weights: Vec<i8>,
    scales: Vec<f32>,
    biases: Vec<f32>,
    input_scales: Vec<f32>,
    /// The largest |input| each layer saw on the calibration windows.
    pub input_absmax: Vec<f32>,
}

impl Int8Model {
    /// Quantizes `params` (the core's flat layout for `cfg`), calibrating every layer's input
    /// scale on the `n` (normalized) windows `x [n][D]`.
    pub fn calibrate(cfg: VaeConfig, params: &[f32], x: &[f32], n: usize) -> Result<Self, Error> {
        cfg.validate()?;
        if n == 0 || x.len() != n * cfg.input {
            return Err(Error::InvalidArgument(
                "int8 calibration needs at least one window of the model's input size",
            ));
        }
        let layout = QuantLayout::new(&cfg);
        let mut f32s = vec![0f32; quant::scratch_len(&cfg).0];
        let mut input_absmax = vec![0f32; layout.layers];
        for w in x.chunks_exact(cfg.input) {
            quant::observe_layer_inputs(&cfg, params, w, &mut f32s, &mut input_absmax)?;
        }
        // A layer whose input was zero on every window (a dead unit set) still needs a scale.
        for m in &mut input_absmax {
            if *m <= 0.0 {
                *m = 1.0;
            }
        }
        let mut q = Int8Model {
            cfg,
            weights: vec![0; layout.weights],
            scales: vec![0.0; layout.outputs],
            biases: vec![0.0; layout.outputs],
            input_scales: vec![0.0; layout.layers],
            input_absmax,
        };
        quant::quantize(
            &cfg,
            params,
            &q.input_absmax,
            &mut q.weights,
            &mut q.scales,
            &mut q.biases,
            &mut q.input_scales,
        )?;
        Ok(q)
    }

    /// The core's view of it.
    pub fn view(&self) -> Result<QuantVae<'_>, Error> {
        QuantVae::new(
            self.cfg,
            &self.weights,
            &self.scales,
            &self.biases,
            &self.input_scales,
        )
    }

    /// Its buffers, as a version-2 model file holds them.
    pub fn parts(&self) -> vae_nostd::modelfile::QuantParts<'_> {
        vae_nostd::modelfile::QuantParts {
            weights: &self.weights,
            scales: &self.scales,
            biases: &self.biases,
            input_scales: &self.input_scales,
        }
    }

    /// Bytes of the quantized parameters ([`QuantLayout::bytes`]).
    pub fn bytes(&self) -> usize {
        QuantLayout::new(&self.cfg).bytes()
    }

    /// −ELBO at z = μ of every window of `x [n][D]` through the integer layers.
    pub fn scores(&self, x: &[f32], n: usize) -> Result<Vec<f32>, Error> {
        let d = self.cfg.input;
        if x.len() != n * d {
            return Err(Error::LengthMismatch {
                what: "score data",
                expected: n * d,
                actual: x.len(),
            });
        }
        let q = self.view()?;
        let (nf, ni) = quant::scratch_len(&self.cfg);
        let (mut f32s, mut pairs) = (vec![0f32; nf], vec![0u32; ni]);
        let mut head = vec![0f32; 2 * self.cfg.latent];
        x.chunks_exact(d)
            .map(|w| q.score_neg_elbo_at_mean(&Portable, w, &mut f32s, &mut pairs, &mut head))
            .collect()
    }
}
