//! host-trainer: the laptop side of the toolkit. `main.rs` is the CLI; the modules here are
//! reused by the cross-crate tests.
#![deny(missing_docs)]

pub mod baselines;
pub mod bench;
pub mod checkpoint;
pub mod data;
pub mod engine;
pub mod export;
pub mod io;
pub mod kernel;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod pca;
pub mod plot;
pub mod quantize;
pub mod record;
pub mod train;
