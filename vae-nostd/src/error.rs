//! Errors: one small `Copy` enum, each variant naming what went wrong and where.

use core::fmt;

/// What a core operation refused to do, and why. Nothing is modified when an error is returned,
/// except where a function documents otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// An input value (datapoint, sensor sample, given ε) is NaN or infinite.
    NonFiniteInput,
    /// A computed bound or score is NaN or infinite (training diverged, or extreme parameters).
    NonFiniteLoss,
    /// A gradient holds NaN or ±∞; the optimizer left the parameters untouched.
    NonFiniteGradient,
    /// A slice does not have the length the configuration requires.
    LengthMismatch {
        /// Which argument.
        what: &'static str,
        /// Elements required.
        expected: usize,
        /// Elements given.
        actual: usize,
    },
    /// A buffer is too small for the requested batch or sample count.
    BufferTooSmall {
        /// Which buffer.
        what: &'static str,
        /// Elements required.
        needed: usize,
        /// Elements available.
        available: usize,
    },
    /// The model configuration is invalid (zero width, too many layers, ...).
    InvalidConfig(&'static str),
    /// An argument is out of its range (zero batch, zero samples, negative learning rate, ...).
    InvalidArgument(&'static str),
    /// `backward` was called without a matching `forward` on the same workspace.
    NoForwardPass,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::NonFiniteInput => f.write_str("input holds NaN or infinite values"),
            Error::NonFiniteLoss => {
                f.write_str("the bound is NaN or infinite (diverged training or extreme inputs)")
            }
            Error::NonFiniteGradient => {
                f.write_str("the gradient holds NaN or infinite values; parameters left unchanged")
            }
            Error::LengthMismatch {
                what,
                expected,
                actual,
            } => {
                write!(f, "{what}: expected {expected} elements, got {actual}")
            }
            Error::BufferTooSmall {
                what,
                needed,
                available,
            } => {
                write!(f, "{what}: needs {needed} elements, has {available}")
            }
            Error::InvalidConfig(why) => write!(f, "invalid model configuration: {why}"),
            Error::InvalidArgument(why) => write!(f, "invalid argument: {why}"),
            Error::NoForwardPass => f.write_str("backward called before a forward pass"),
        }
    }
}

impl core::error::Error for Error {}

/// Checks that a slice has exactly the expected length.
#[inline]
pub(crate) fn check_len(what: &'static str, expected: usize, actual: usize) -> Result<(), Error> {
    if expected == actual {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            what,
            expected,
            actual,
        })
    }
}

/// Checks that every value is finite.
#[inline]
pub(crate) fn check_finite<T: crate::Real>(xs: &[T]) -> Result<(), Error> {
    if xs.iter().all(|x| x.is_finite()) {
        Ok(())
    } else {
        Err(Error::NonFiniteInput)
    }
}
