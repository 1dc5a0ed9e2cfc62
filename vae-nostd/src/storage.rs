//! Const-generic storage that lends out slices: capacity lives in the type, every type has a
//! `const fn new()` so it can sit in a `static`, and the linker proves it fits in RAM.

use core::ops::{Deref, DerefMut};

use crate::Real;

/// `N` scalars, zero-initialized. Size it with the `const fn`s of [`crate::VaeConfig`]:
///
/// ```
/// use vae_nostd::{Activation, Buffer, Likelihood, VaeConfig};
/// const CFG: VaeConfig = VaeConfig::new(8, &[4], 2, Activation::Tanh, Likelihood::Bernoulli);
/// static PARAMS: Buffer<f32, { CFG.num_params() }> = Buffer::new();
/// let ws: Buffer<f32, { CFG.workspace_len(1, 1) }> = Buffer::new();
/// assert_eq!(PARAMS.len(), CFG.num_params());
/// assert!(ws.iter().all(|v| *v == 0.0));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Buffer<T, const N: usize> {
    data: [T; N],
}

impl<T: Real, const N: usize> Buffer<T, N> {
    /// All zeros.
    pub const fn new() -> Self {
        Buffer { data: [T::ZERO; N] }
    }
    /// From an array (for example weights embedded at build time).
    pub const fn from_array(data: [T; N]) -> Self {
        Buffer { data }
    }
}

impl<T: Real, const N: usize> Default for Buffer<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> Deref for Buffer<T, N> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.data
    }
}

impl<T, const N: usize> DerefMut for Buffer<T, N> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.data
    }
}
