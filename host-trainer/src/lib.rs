//! host-trainer: the laptop side of the toolkit. The training CLI lives in `main.rs`; this
//! library holds what other crates (the cross-crate tests) reuse.
#![deny(missing_docs)]

pub mod kernel;
