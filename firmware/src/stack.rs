//! Stack high-water mark by painting: at start-up fill the free stack below the current stack
//! pointer with a pattern; at the end find the lowest word that no longer holds it.
//! cortex-m-rt places the stack at the top of RAM (`_stack_start`) growing down towards the
//! end of the statics (`_stack_end`).
#![allow(unsafe_code)]

use core::ptr::{addr_of, read_volatile, write_volatile};

/// The paint.
pub const PATTERN: u32 = 0xCCCC_CCCC;
/// At most this many bytes below the stack pointer are painted (and so can be measured).
pub const PAINT_BYTES: usize = 64 * 1024;
/// Bytes just below the stack pointer left alone (the painting function's own frame).
const MARGIN: usize = 256;

unsafe extern "C" {
    static _stack_start: u32;
    static _stack_end: u32;
}

fn bounds() -> (usize, usize) {
    // Only the addresses of the linker symbols are used.
    let top = addr_of!(_stack_start) as usize;
    let end = addr_of!(_stack_end) as usize;
    (top, end.max(top.saturating_sub(PAINT_BYTES)))
}

/// Paints the free stack. Call it first thing in `main`.
#[inline(never)]
pub fn paint() {
    let sp = cortex_m::register::msp::read() as usize;
    let (_, bottom) = bounds();
    let mut p = bottom & !3;
    while p + 4 <= sp.saturating_sub(MARGIN) {
        // SAFETY: [bottom, sp − MARGIN) is unused stack: below every live frame, above the
        // statics; word-aligned.
        unsafe { write_volatile(p as *mut u32, PATTERN) };
        p += 4;
    }
}

/// Bytes of stack used so far at most: from the top of RAM down to the lowest word that lost
/// its paint. Saturates at the painted range ([`PAINT_BYTES`]).
pub fn high_water() -> usize {
    let (top, bottom) = bounds();
    let mut p = bottom & !3;
    // SAFETY: reads of word-aligned RAM inside the stack region.
    while p < top && unsafe { read_volatile(p as *const u32) } == PATTERN {
        p += 4;
    }
    top - p
}
