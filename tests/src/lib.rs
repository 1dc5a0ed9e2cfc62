//! Cross-crate and on-target tests of the AEVB core (see `tests/tests/`).
