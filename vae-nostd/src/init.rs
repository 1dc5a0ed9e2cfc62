//! Seeded parameter initialization.

use rand_core::RngCore;

use crate::config::Net;
use crate::error::{Error, check_len};
use crate::rng::fill_standard_normal;
use crate::{Real, VaeConfig};

/// How to draw initial parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Init {
    /// Every parameter, biases included, from N(0, std²): the paper's §5 uses std = 0.01.
    Normal {
        /// Standard deviation.
        std: f64,
    },
    /// Glorot & Bengio (2010), normal form: W ~ N(0, 2 / (fan_in + fan_out)), b = 0.
    Xavier,
    /// He et al. (2015), normal form: W ~ N(0, 2 / fan_in), b = 0 (for ReLU).
    He,
    /// PyTorch's `nn.Linear` default (`kaiming_uniform_(a = √5)`): W and b ~ U(−1/√fan_in,
    /// 1/√fan_in). For like-for-like comparisons with PyTorch code.
    TorchLinear,
}

impl Init {
    /// The paper's initialization, N(0, 0.01²).
    pub const PAPER: Init = Init::Normal { std: 0.01 };
}

/// Fills `params` (layout of `cfg`) from `rng`. The same seed gives the same parameters, on
/// every platform.
pub fn init_params<T: Real, R: RngCore + ?Sized>(
    cfg: &VaeConfig,
    params: &mut [T],
    init: Init,
    rng: &mut R,
) -> Result<(), Error> {
    cfg.validate()?;
    check_len("parameters", cfg.num_params(), params.len())?;
    if let Init::Normal { std } = init
        && !(std.is_finite() && std >= 0.0)
    {
        return Err(Error::InvalidArgument(
            "init std must be finite and non-negative",
        ));
    }
    for net in [Net::Encoder, Net::Decoder] {
        for i in 0..cfg.num_layers(net) {
            let l = cfg.layer(net, i);
            if let Init::TorchLinear = init {
                let bound = 1.0 / libm::sqrt(l.inp as f64);
                for v in &mut params[l.weight..l.end()] {
                    *v = T::from_f64((2.0 * crate::rng::uniform01(rng) - 1.0) * bound);
                }
                continue;
            }
            let std = match init {
                Init::Normal { std } => std,
                Init::Xavier => libm::sqrt(2.0 / (l.inp + l.out) as f64),
                Init::He | Init::TorchLinear => libm::sqrt(2.0 / l.inp as f64),
            };
            let w = &mut params[l.weight..l.bias];
            fill_standard_normal(rng, w);
            w.iter_mut()
                .for_each(|v| *v = T::from_f64(v.to_f64() * std));
            let b = &mut params[l.bias..l.end()];
            if let Init::Normal { .. } = init {
                fill_standard_normal(rng, b);
                b.iter_mut()
                    .for_each(|v| *v = T::from_f64(v.to_f64() * std));
            } else {
                b.iter_mut().for_each(|v| *v = T::ZERO);
            }
        }
    }
    Ok(())
}
