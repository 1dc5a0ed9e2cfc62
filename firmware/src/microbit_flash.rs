// The micro:bit v2's flash layout: plain constants, shared by the firmware (`firmware::
// microbit_flash`) and `build.rs` (`include!`, which writes the linker check from them), so
// the addresses have one source. No inner attributes or doc comments: build.rs includes this
// file in the middle of its own.

/// First byte of the nRF52833's flash (`memory.x` of `nrf52833-hal`: FLASH at 0).
pub const FLASH_ORIGIN: u32 = 0x0000_0000;
/// Bytes of the nRF52833's flash: 512 KiB.
pub const FLASH_LEN: u32 = 512 * 1024;
/// The nRF52833's flash page, its erase unit: 4 KiB.
pub const PAGE_LEN: u32 = 4096;
/// Pages reserved for the two persistence slots, at the top of flash.
pub const PERSIST_PAGES: u32 = 2;
/// Bytes of the persistence region.
pub const PERSIST_LEN: u32 = PERSIST_PAGES * PAGE_LEN;
/// First byte of the persistence region (page-aligned): the program image must end below it.
pub const PERSIST_START: u32 = FLASH_ORIGIN + FLASH_LEN - PERSIST_LEN;
