//! host-trainer: the laptop side of the toolkit. `main.rs` is the CLI; the modules here are
//! reused by the cross-crate tests.
#![deny(missing_docs)]

pub mod bench;
pub mod data;
pub mod engine;
pub mod io;
pub mod kernel;
pub mod model;
