//! Stack high-water mark by painting: at start-up fill the free stack below the current stack
//! pointer with a pattern; at the end find the lowest word that no longer holds it.
//! cortex-m-rt places the stack at the top of RAM (`_stack_start`) growing down towards the
//! end of the statics (`_stack_end`).
#![allow(unsafe_code)]

use core::ptr::{addr_of, read_volatile, write_volatile};
use core::sync::atomic::{AtomicUsize, Ordering};

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

/// Lowest word (in `[from, to)`) that lost its paint, or `to` when none did.
fn lowest_mark(from: usize, to: usize) -> usize {
    let mut p = from & !3;
    // SAFETY: reads of word-aligned RAM inside the stack region.
    while p < to && unsafe { read_volatile(p as *const u32) } == PATTERN {
        p += 4;
    }
    p.min(to)
}

/// Bytes of stack used so far at most: from the top of RAM down to the lowest word that lost
/// its paint (or that [`unmeasured`] recorded before repainting). Saturates at the painted
/// range ([`PAINT_BYTES`]).
pub fn high_water() -> usize {
    let (top, bottom) = bounds();
    let recorded = RECORDED.load(Ordering::Relaxed);
    let low = lowest_mark(bottom, top);
    top - if recorded == 0 {
        low
    } else {
        low.min(recorded)
    }
}

/// The lowest word the measured code had used inside a region [`unmeasured`] repainted (0:
/// none yet; zero-initialized, so in `.bss`).
static RECORDED: AtomicUsize = AtomicUsize::new(0);

/// Stack below the caller that [`unmeasured`] checks and repaints (its closure must stay
/// within it; deeper use would count as measured).
pub const UNMEASURED_BYTES: usize = 4096;

/// Runs `f` without counting the stack it uses below this call towards [`high_water`]: test
/// scaffolding (the QEMU board's simulated sensor) that is not part of the application. The
/// measured code's marks in that region are recorded first, `f`'s are painted over after.
/// Costs a scan and a repaint of up to [`UNMEASURED_BYTES`] per call.
#[inline(never)]
pub fn unmeasured<R>(f: impl FnOnce() -> R) -> R {
    let sp = cortex_m::register::msp::read() as usize;
    let (_, bottom) = bounds();
    let floor = bottom.max(sp.saturating_sub(UNMEASURED_BYTES));
    let seen = lowest_mark(floor, sp);
    let recorded = RECORDED.load(Ordering::Relaxed);
    if recorded == 0 || seen < recorded {
        RECORDED.store(seen, Ordering::Relaxed);
    }
    let r = f();
    // `f` has returned: its frames, below this function's stack pointer, are free stack again.
    let mut p = lowest_mark(floor, sp);
    while p + 4 <= sp {
        // SAFETY: unused stack below every live frame (this loop calls nothing), above the
        // statics; word-aligned.
        unsafe { write_volatile(p as *mut u32, PATTERN) };
        p += 4;
    }
    r
}
