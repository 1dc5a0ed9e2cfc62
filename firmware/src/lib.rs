//! # firmware — on-device encoding and anomaly scoring, one application for every board
//!
//! The board-independent application that the programs in `src/bin/` run (the QEMU
//! `mps2-an386` board fed by a simulated sensor, and the BBC micro:bit v2 with its LSM303AGR
//! accelerometer). Everything is in static memory or on the stack: no allocator, and no panic
//! on any data (every data error becomes a logged event).
//!
//! ## The pipeline
//! ```text
//! Board::read_sample_mg ─► [Windower] ring buffer [len][3] ─► window every `hop` samples
//!   ├─ a non-finite or saturated (|a| ≥ full scale) sample flags its windows: Verdict::Invalid
//!   └─► normalization x' = (x − offset)·scale (from the model file, read from flash)
//!       ─► Vae::score (encoder → μ, log σ² → decoder, the model file's ScoreKind, CortexM4 kernel = Portable's bits)
//!       ─► Calibrator (first N valid windows) or score > threshold ─► Verdict
//!       ─► Report (window, verdict, score, μ) ─► log line / telemetry frame, LEDs
//!       └─ judged normal (after calibration) ─► adapt: Adam steps on the output bias, between
//!          sample reads ─► recalibration ─► commit (scores use the adapted bias) ─► flash
//! ```
//! * [`app`]: model loading and checks ([`app::Model::load`]), the [`app::Windower`], the
//!   [`app::App`] that turns samples into [`app::Report`]s.
//! * [`calibration`]: the streaming on-device threshold (exact empirical quantile from a top-k
//!   buffer).
//! * [`record`]: raw samples to the host in sequence-numbered, CRC-checked frames (the
//!   record programs; `host-trainer record` decodes them).
//! * [`telemetry`]: the compact frame that carries a window's latents instead of its samples.
//! * [`adapt`]: the on-device adaptation: Adam on the decoder output bias from windows judged
//!   normal, recalibration with the conformal rule, commit or fall back to the factory model.
//! * [`persist`]: the adapted state (parameters, threshold, calibration) in two flash slots
//!   that survive a reset at any moment of a write, over any `embedded-storage` NOR flash.
//! * [`board`]: the [`board::Board`] trait (sensor, LEDs, button A, seed) and the simulated
//!   board [`board::SimBoard`] used on QEMU (and in host tests).
//! * [`sensor`]: the LSM303AGR accelerometer driver over any embedded-hal 1.0 I²C bus, read
//!   through its FIFO so that no sample is lost while a window is scored (and an overrun is
//!   detected, never silent); its module docs have the cycle budget per window.
//! * `run` and `stack` (Cortex-M only): the main loop with its defmt log lines, shared by the
//!   programs, and the stack painting that measures the stack's high-water mark.
//!
//! The model is the file written by the host trainer, embedded with `include_bytes!`
//! ([`DEFAULT_MODEL`]); its architecture is fixed at compile time by the generated
//! [`model::CONFIG`] and checked at start-up. The parameters stay in flash: they are viewed as
//! `&[f32]` in place (the image is 4-byte aligned), so RAM holds only the activations, the
//! window buffers and a few hundred bytes of state.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod adapt;
pub mod app;
pub mod board;
pub mod calibration;
pub mod persist;
pub mod record;
pub mod scenario;
pub mod sensor;
pub mod telemetry;

// The board's defmt global logger, linked into every program of that board (so build.rs can
// give every program defmt's linker script by target and feature alone).
#[cfg(all(target_os = "none", feature = "microbit"))]
use defmt_rtt as _;
#[cfg(all(target_os = "none", feature = "qemu"))]
use defmt_semihosting as _;

/// The micro:bit programs' panic handler (a panic is a bug: the application returns
/// `Result`s and has no panicking path on data): logs where it happened and stops with a
/// HardFault, which probe-rs reports. The message is not formatted: that would link
/// `core::fmt`, a few KB of flash. (The QEMU programs use `panic-semihosting`.)
#[cfg(all(target_os = "none", feature = "microbit"))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    cortex_m::interrupt::disable();
    match info.location() {
        Some(l) => defmt::error!("panic at {=str}:{=u32}", l.file(), l.line()),
        None => defmt::error!("panic"),
    }
    cortex_m::asm::udf()
}

#[cfg(target_os = "none")]
pub mod qemu;
#[cfg(target_os = "none")]
pub mod run;
#[cfg(target_os = "none")]
pub mod stack;

/// The default model's generated constants (`host-trainer` export; see `firmware/models/`).
/// Kept byte for byte as generated (a test compares it with a fresh export), so rustfmt
/// leaves it alone.
#[cfg_attr(not(feature = "int8-model"), path = "../models/default.rs")]
#[cfg_attr(feature = "int8-model", path = "../models/default-int8.rs")]
#[allow(missing_docs, clippy::all)]
#[rustfmt::skip]
pub mod model;

/// Bytes aligned to (at least) 4, so that the f32 parameters inside a model file can be read
/// in place.
#[repr(C, align(4))]
pub struct Aligned<B: ?Sized>(pub B);

/// The default model file (`firmware/models/default.vaem`), 4-byte aligned in flash.
#[cfg(not(feature = "int8-model"))]
pub static DEFAULT_MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("../models/default.vaem"));
/// The default model quantized to int8 (`firmware/models/default-int8.vaem`, feature
/// `int8-model`), 4-byte aligned in flash.
#[cfg(feature = "int8-model")]
pub static DEFAULT_MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("../models/default-int8.vaem"));

/// True when the built-in model is int8 (model file version 2): the application scores
/// through `vae_nostd::quant` with the `SMLAD` kernel, and sizes its int8 scratch from it.
pub const INT8: bool = matches!(model::FORMAT, vae_nostd::modelfile::Format::Int8);
/// The int8 score's buffers are allocated when the built-in model is int8, and on the host
/// (where the tests run either model file); a device build of an f32 model has none (an int8
/// file given to it scores nothing: each window is an error, never a panic).
const Q_BUFFERS: bool = INT8 || cfg!(not(target_os = "none"));
/// Quantized input pairs of an int8 score (`vae_nostd::quant::scratch_len`; its f32 scratch
/// is the scoring workspace, [`WORKSPACE_LEN`] ≥ what it needs).
pub const Q_PAIRS_LEN: usize = if Q_BUFFERS {
    vae_nostd::quant::scratch_len(&CONFIG).1
} else {
    0
};
/// μ and log σ² of an int8 score (2Z, or 0 without the int8 buffers).
pub const Q_HEAD_LEN: usize = if Q_BUFFERS { 2 * Z } else { 0 };
const _: () = assert!(vae_nostd::quant::scratch_len(&CONFIG).0 <= WORKSPACE_LEN);

/// The architecture this firmware's buffers are sized for (the default model's).
pub const CONFIG: vae_nostd::VaeConfig = model::CONFIG;
/// D: inputs per window (time steps × 3 axes).
pub const D: usize = CONFIG.input;
/// Z: latent dimension.
pub const Z: usize = CONFIG.latent;
/// Axes per sample.
pub const CHANNELS: usize = 3;
/// f32 elements of the scoring workspace for one window and one draw: size the static with it.
pub const WORKSPACE_LEN: usize = CONFIG.workspace_len(1, 1);
pub mod kernel_m4;

/// The micro:bit v2's flash layout: the nRF52833's 512 KiB in 4 KiB pages, the top
/// [`PERSIST_PAGES`](microbit_flash::PERSIST_PAGES) pages reserved for the persistence slots.
/// `build.rs` writes a linker script from these constants that stops the link if the image
/// reaches the reserved pages (`memory.x` itself comes from `nrf52833-hal`).
#[path = "microbit_flash.rs"]
pub mod microbit_flash;

/// f32 values the on-device adaptation ([`adapt`]) fine-tunes, which size its statics and the
/// persisted payload: the decoder output layer's biases (2D = 384 for the default model's
/// Gaussian decoder); the slots follow from this constant at compile time.
pub const ADAPTED_PARAMS: usize = CONFIG.decoder_out();
/// f32 values of the adapted state: the [`ADAPTED_PARAMS`] biases, then the input
/// re-centering's shift per axis ([`CHANNELS`]).
pub const ADAPTED_STATE: usize = ADAPTED_PARAMS + CHANNELS;
/// Bytes of the persisted payload: [`ADAPTED_STATE`] little-endian f32.
pub const ADAPTED_LEN: usize = 4 * ADAPTED_STATE;
/// The micro:bit's two slots, at offset 0 of the reserved region (the NVMC driver's storage
/// is that region): one page each for the default model.
pub const MICROBIT_SLOTS: persist::Slots =
    persist::Slots::for_payload(0, ADAPTED_LEN, microbit_flash::PAGE_LEN as usize);
const _: () = assert!(
    MICROBIT_SLOTS.region_len() <= microbit_flash::PERSIST_LEN,
    "the adapted state's slots do not fit the reserved flash: raise PERSIST_PAGES in src/microbit_flash.rs"
);
const _: () = assert!(microbit_flash::PERSIST_START.is_multiple_of(microbit_flash::PAGE_LEN));

#[cfg(test)]
mod tests {
    use super::*;

    /// The micro:bit keys its persisted adaptation by the generated `MODEL_CRC32`: it must be
    /// the CRC-32 of the embedded model file (a model file replaced without its generated
    /// module would otherwise pick up another model's adaptation).
    #[test]
    fn the_generated_crc_is_the_embedded_model_files() {
        let file = vae_nostd::modelfile::ModelFile::parse(&DEFAULT_MODEL.0).unwrap();
        assert_eq!(file.crc(), model::MODEL_CRC32);
    }

    /// The micro:bit's slots: one page each, both inside the two reserved pages at the top of
    /// the 512 KiB flash.
    #[test]
    fn the_microbit_slots_fit_the_reserved_pages() {
        assert_eq!(ADAPTED_LEN, 1548);
        assert_eq!(MICROBIT_SLOTS.slot_len(), 4096);
        assert_eq!(MICROBIT_SLOTS.region_len(), microbit_flash::PERSIST_LEN);
        assert_eq!(microbit_flash::PERSIST_START, 0x7_e000);
        assert!(ADAPTED_LEN <= MICROBIT_SLOTS.max_payload());
    }
}
