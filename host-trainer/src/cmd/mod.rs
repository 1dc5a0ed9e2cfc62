//! The commands behind the CLI, one file per command; shared helpers here. Errors are `anyhow`
//! with context naming the file or flag.

use anyhow::{Context, Result};
use vae_nostd::{Adagrad, Adam, Sgd};

use host_trainer::checkpoint;
use host_trainer::engine::{Engine, Opt};
use host_trainer::model::{Checkpoint, LikelihoodName, ModelSpec};

use crate::{CkptArgs, OptimizerArg, SplitArg};

/// A split's name in messages (`test`, not `Test`).
pub(crate) fn split_name(s: SplitArg) -> &'static str {
    match s {
        SplitArg::Train => "training",
        SplitArg::Valid => "validation",
        SplitArg::Test => "test",
    }
}

pub(crate) mod bench;
pub(crate) mod data;
pub(crate) mod default_job;
pub(crate) mod draw;
pub(crate) mod eval;
pub(crate) mod export;
pub(crate) mod manifold;
pub(crate) mod progress;
pub(crate) mod reconstruct;
pub(crate) mod record;
pub(crate) mod sample;
pub(crate) mod score;
pub(crate) mod train;

pub(crate) use bench::bench;
pub(crate) use default_job::default_job;
pub(crate) use eval::eval;
pub(crate) use export::export;
pub(crate) use manifold::manifold;
pub(crate) use reconstruct::reconstruct;
pub(crate) use record::record;
pub(crate) use sample::sample;
pub(crate) use score::score;
pub(crate) use train::train;

/// `t` threads, or all cores; at least 1.
pub(crate) fn threads_or_all(t: Option<usize>) -> usize {
    t.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
    .max(1)
}

/// The optimizer `o` with step size `lr` and weight decay `wd`.
pub(crate) fn opt_of(o: OptimizerArg, lr: f32, wd: f32) -> Opt {
    match o {
        OptimizerArg::Adagrad => Opt::Adagrad(Adagrad {
            lr,
            eps: 1e-10,
            weight_decay: wd,
        }),
        OptimizerArg::Adam => Opt::Adam(Adam {
            weight_decay: wd,
            ..Adam::new(lr)
        }),
        OptimizerArg::Sgd => Opt::Sgd(Sgd {
            lr,
            momentum: 0.9,
            weight_decay: wd,
        }),
    }
}

/// Loads `--checkpoint` (with `--activation` for one without metadata).
pub(crate) fn load_ckpt(a: &CkptArgs) -> Result<Checkpoint> {
    let hint = a.activation.map(|act| ModelSpec {
        input: 0,
        encoder_hidden: vec![],
        decoder_hidden: vec![],
        latent: 0,
        activation: act,
        likelihood: LikelihoodName::Bernoulli,
    });
    let (ck, integrity) = checkpoint::Checkpoint::load_checked(&a.checkpoint, hint.as_ref())
        .with_context(|| format!("--checkpoint {}", a.checkpoint.display()))?;
    note_unverified(&a.checkpoint, integrity);
    Ok(ck)
}

/// Says on stderr when a checkpoint's integrity could not be checked (never silently).
pub(crate) fn note_unverified(path: &std::path::Path, integrity: checkpoint::Integrity) {
    if let checkpoint::Integrity::Unverified(why) = integrity {
        eprintln!(
            "note: {}: not checked for corruption ({why}); its values are used as they are",
            path.display()
        );
    }
}

/// An engine holding the checkpoint's parameters, for inference on `threads` threads.
pub(crate) fn engine_of(ck: &Checkpoint, threads: usize) -> Result<Engine> {
    let cfg = ck.spec.config()?;
    Ok(Engine::new(
        cfg,
        ck.params.clone(),
        opt_of(OptimizerArg::Sgd, 0.0, 0.0),
        None,
        threads,
    )?)
}
