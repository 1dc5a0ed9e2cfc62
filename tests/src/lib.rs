//! Cross-crate and on-target tests of the AEVB core (see `tests/tests/`).
pub mod fuzz;
