//! Host tests of the slots against a RAM-backed NOR flash that enforces NOR rules and loses
//! power at any chosen point of a store.

use super::*;
use embedded_storage::nor_flash::ErrorType;
use std::vec::Vec;

const PAGE: usize = 4096;
const MODEL: u32 = 0xf778_7130;
const OTHER_MODEL: u32 = 0x1234_5678;

/// What the mock reports; every operation after a power cut fails with `PowerLost`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MockError {
    NotAligned,
    OutOfBounds,
    PowerLost,
}

impl NorFlashError for MockError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            MockError::NotAligned => NorFlashErrorKind::NotAligned,
            MockError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            MockError::PowerLost => NorFlashErrorKind::Other,
        }
    }
}

/// Where the power goes: during operation `op` (erase and write calls, counted from 0 since
/// the cut was armed), after `units` of its words (write) or pages (erase) completed. The
/// next unit, if the operation has one, is torn: a random subset of its bit changes happens.
#[derive(Clone, Copy, Debug)]
struct Cut {
    op: usize,
    units: usize,
}

/// The units (words or pages) of one erase or write call, recorded for the enumeration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Erase { pages: usize },
    Write { words: usize },
}

impl Op {
    fn units(self) -> usize {
        match self {
            Op::Erase { pages } => pages,
            Op::Write { words } => words,
        }
    }
}

/// NOR flash in RAM with the nRF52833's geometry: erased bytes 0xFF, erase by 4 KiB page, write
/// by aligned 4-byte word, a write only clears bits (1 → 0) and each word is written at most
/// once per erase (the `NorFlash` contract without `MultiwriteNorFlash`). Breaking a rule is
/// recorded in `violations` (the tests require none); misalignment and bounds are errors.
pub(crate) struct MockFlash {
    mem: Vec<u8>,
    written: Vec<bool>,
    violations: Vec<String>,
    ops: Vec<Op>,
    cut: Option<Cut>,
    dead: bool,
    /// A worn cell: this byte's bit 0 stays 0 whatever is erased or written.
    stuck_low: Option<usize>,
    rng: u64,
}

impl MockFlash {
    pub(crate) fn new(pages: usize) -> Self {
        MockFlash {
            mem: vec![0xFF; pages * PAGE],
            written: vec![false; pages * PAGE / 4],
            violations: Vec::new(),
            ops: Vec::new(),
            cut: None,
            dead: false,
            stuck_low: None,
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// A copy of the memory (and of which words are written), with no cut armed.
    fn fork(&self) -> Self {
        MockFlash {
            mem: self.mem.clone(),
            written: self.written.clone(),
            ..MockFlash::new(0)
        }
    }

    /// Arms a power cut; the operation count restarts.
    fn arm(&mut self, cut: Cut, seed: u64) {
        self.cut = Some(cut);
        self.ops.clear();
        self.rng = seed | 1;
    }

    /// The reset after a power cut: the memory stays as it is, the power is back.
    fn reset(&mut self) {
        self.cut = None;
        self.dead = false;
    }

    fn random_byte(&mut self) -> u8 {
        // xorshift64
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 32) as u8
    }

    /// How many units of the operation being started complete, and whether the power goes.
    fn begin(&mut self, op: Op) -> Result<(usize, bool), MockError> {
        if self.dead {
            return Err(MockError::PowerLost);
        }
        let index = self.ops.len();
        self.ops.push(op);
        match self.cut {
            Some(c) if c.op == index => {
                self.dead = true;
                Ok((c.units.min(op.units()), true))
            }
            _ => Ok((op.units(), false)),
        }
    }

    fn apply_stuck(&mut self) {
        if let Some(i) = self.stuck_low {
            self.mem[i] &= !1;
        }
    }
}

impl ErrorType for MockFlash {
    type Error = MockError;
}

impl ReadNorFlash for MockFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), MockError> {
        if self.dead {
            return Err(MockError::PowerLost);
        }
        let start = offset as usize;
        let end = start
            .checked_add(bytes.len())
            .ok_or(MockError::OutOfBounds)?;
        if end > self.mem.len() {
            return Err(MockError::OutOfBounds);
        }
        bytes.copy_from_slice(&self.mem[start..end]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.mem.len()
    }
}

impl NorFlash for MockFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = PAGE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), MockError> {
        let (from, to) = (from as usize, to as usize);
        if from > to || to > self.mem.len() {
            return Err(MockError::OutOfBounds);
        }
        if from % PAGE != 0 || to % PAGE != 0 {
            self.violations
                .push(format!("unaligned erase {from:#x}..{to:#x}"));
            return Err(MockError::NotAligned);
        }
        let pages = (to - from) / PAGE;
        let (done, cut) = self.begin(Op::Erase { pages })?;
        for p in 0..done {
            let at = from + p * PAGE;
            self.mem[at..at + PAGE].fill(0xFF);
            self.written[at / 4..(at + PAGE) / 4].fill(false);
        }
        if cut {
            if done < pages {
                // A partly erased page: some bits back to 1, the others as they were.
                let at = from + done * PAGE;
                for i in at..at + PAGE {
                    let r = self.random_byte();
                    self.mem[i] |= r;
                }
            }
            self.apply_stuck();
            return Err(MockError::PowerLost);
        }
        self.apply_stuck();
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), MockError> {
        let start = offset as usize;
        if !start.is_multiple_of(4) || !bytes.len().is_multiple_of(4) {
            self.violations.push(format!(
                "unaligned write at {start:#x}, {} bytes",
                bytes.len()
            ));
            return Err(MockError::NotAligned);
        }
        if start + bytes.len() > self.mem.len() {
            return Err(MockError::OutOfBounds);
        }
        let words = bytes.len() / 4;
        let (done, cut) = self.begin(Op::Write { words })?;
        for w in 0..done {
            let at = start + 4 * w;
            if self.written[at / 4] {
                self.violations.push(format!("word {at:#x} written twice"));
            }
            self.written[at / 4] = true;
            for i in 0..4 {
                let (old, new) = (self.mem[at + i], bytes[4 * w + i]);
                if old & new != new {
                    self.violations.push(format!(
                        "byte {:#x}: 0 -> 1 ({old:#04x} -> {new:#04x})",
                        at + i
                    ));
                }
                self.mem[at + i] = old & new;
            }
        }
        if cut {
            if done < words {
                // A torn word: a random subset of its 1 -> 0 changes happened.
                let at = start + 4 * done;
                for i in 0..4 {
                    let keep = self.random_byte();
                    self.mem[at + i] &= bytes[4 * done + i] | keep;
                }
            }
            self.apply_stuck();
            return Err(MockError::PowerLost);
        }
        self.apply_stuck();
        Ok(())
    }
}

/// The k-th state stored in a test: a calibration and a payload derived from k.
fn state(k: u32, len: usize) -> (Calibration, Vec<u8>) {
    let cal = Calibration {
        threshold: 100.0 + k as f32,
        margin: 3.5 + k as f32,
        windows: 200 + k,
        false_alarm_rate: 0.01,
    };
    let payload = (0..len)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(k * 7) as u8)
        .collect();
    (cal, payload)
}

/// What `load` found: the calibration and payload, or `None` (the factory model).
fn loaded(
    flash: &mut MockFlash,
    slots: &Slots,
    model: u32,
    len: usize,
) -> Option<(Loaded, Vec<u8>)> {
    let mut buf = vec![0u8; len];
    slots
        .load(flash, model, &mut buf)
        .expect("load never fails on this flash")
        .map(|l| (l, buf))
}

/// Which state `k` (if any) the flash holds for `MODEL`.
fn which(flash: &mut MockFlash, slots: &Slots, len: usize, candidates: &[u32]) -> Option<u32> {
    let (l, payload) = loaded(flash, slots, MODEL, len)?;
    for &k in candidates {
        let (cal, p) = state(k, len);
        if l.calibration == cal && payload == p {
            return Some(k);
        }
    }
    panic!("load returned a state that was never stored: {l:?}");
}

/// Writes a record by hand (any sequence number), as `store` lays it out.
fn put_record(
    flash: &mut MockFlash,
    slots: &Slots,
    slot: u8,
    seq: u32,
    model: u32,
    k: u32,
    len: usize,
) {
    let (cal, payload) = state(k, len);
    let mut h = Header {
        sequence: seq,
        payload_len: len as u32,
        model_crc: model,
        calibration: cal,
        crc: 0,
    };
    let mut d = CRC32.digest();
    d.update(&h.encode()[..COMMIT_AT]);
    d.update(&payload);
    h.crc = d.finalize();
    let base = slots.slot_base(slot) as usize;
    flash.mem[base..base + slots.slot_len as usize].fill(0xFF);
    flash.mem[base..base + HEADER_LEN].copy_from_slice(&h.encode());
    flash.mem[base + HEADER_LEN..base + HEADER_LEN + len].copy_from_slice(&payload);
}

fn store(
    flash: &mut MockFlash,
    slots: &Slots,
    model: u32,
    k: u32,
    len: usize,
) -> Result<Stored, PersistError> {
    let (cal, payload) = state(k, len);
    slots.store(flash, model, &cal, &payload)
}

/// One page of slot for 1,531 bytes (a partial last word), two pages for 5,000 (a two-page
/// erase): the slots start one page in, so offsets are not slot-relative by accident.
fn setup(len: usize) -> (MockFlash, Slots) {
    let slots = Slots::for_payload(PAGE as u32, len, PAGE);
    let pages = 1 + slots.region_len() as usize / PAGE + 1;
    (MockFlash::new(pages), slots)
}

#[test]
fn slot_sizes_are_whole_pages() {
    assert_eq!(slot_len(0, PAGE), PAGE);
    assert_eq!(slot_len(PAGE - HEADER_LEN, PAGE), PAGE);
    assert_eq!(slot_len(PAGE - HEADER_LEN + 1, PAGE), 2 * PAGE);
    assert_eq!(slot_len(5000, PAGE), 2 * PAGE);
    let s = Slots::for_payload(0, 1536, PAGE);
    assert_eq!(
        (s.slot_len(), s.region_len(), s.max_payload()),
        (4096, 8192, 4056)
    );
}

#[test]
fn stores_alternate_slots_and_the_newest_is_loaded() {
    for len in [1531, 1536, 5000, 0] {
        let (mut f, slots) = setup(len);
        assert_eq!(
            loaded(&mut f, &slots, MODEL, len),
            None,
            "empty flash: factory model"
        );
        for k in 0..5u32 {
            let s = store(&mut f, &slots, MODEL, k, len).unwrap();
            assert_eq!(
                s,
                Stored {
                    slot: (k % 2) as u8,
                    sequence: k
                }
            );
            let (l, p) = loaded(&mut f, &slots, MODEL, len).unwrap();
            assert_eq!((l.slot, l.sequence), (s.slot, k));
            assert_eq!((l.calibration, p), state(k, len));
        }
        assert!(f.violations.is_empty(), "{:?}", f.violations);
    }
}

#[test]
fn a_nan_margin_round_trips() {
    let (mut f, slots) = setup(64);
    let (mut cal, payload) = state(0, 64);
    cal.margin = f32::NAN;
    slots.store(&mut f, MODEL, &cal, &payload).unwrap();
    let (l, _) = loaded(&mut f, &slots, MODEL, 64).unwrap();
    assert!(l.calibration.margin.is_nan());
}

/// The central property: a power cut anywhere in a store (after any erase or write call, or
/// inside one with its page or word torn) leaves the previous state, or the new one once its
/// commit word is complete; never anything else. After the reset the next store succeeds.
#[test]
fn a_power_cut_anywhere_in_a_store_leaves_the_previous_or_the_new_state() {
    let mut cuts = 0;
    for len in [1531usize, 5000] {
        for history in 0..4u32 {
            // States 0..history are stored; state `history` is being stored when the power goes.
            let (mut clean, slots) = setup(len);
            for k in 0..history {
                store(&mut clean, &slots, MODEL, k, len).unwrap();
            }
            let previous = history.checked_sub(1);
            let new = history;
            // A dry run records the operations of the store.
            let mut dry = clean.fork();
            dry.arm(
                Cut {
                    op: usize::MAX,
                    units: 0,
                },
                1,
            );
            store(&mut dry, &slots, MODEL, new, len).unwrap();
            let ops = dry.ops.clone();
            let erase_pages = slots.slot_len as usize / PAGE;
            let mut expected = vec![Op::Erase { pages: erase_pages }];
            if len / 4 > 0 {
                expected.push(Op::Write { words: len / 4 });
            }
            if len % 4 != 0 {
                expected.push(Op::Write { words: 1 });
            }
            expected.push(Op::Write {
                words: COMMIT_AT / 4,
            });
            expected.push(Op::Write { words: 1 });
            assert_eq!(ops, expected, "the store's operations, in order");
            let commit = ops.len() - 1;

            for (op, o) in ops.iter().enumerate() {
                for units in 0..=o.units() {
                    for seed in [1u64, 0xDEAD_BEEF, 0x1234_5678_9ABC] {
                        let mut f = clean.fork();
                        f.arm(Cut { op, units }, seed);
                        assert_eq!(
                            store(&mut f, &slots, MODEL, new, len),
                            Err(PersistError::Flash(FlashErrorKind::Other)),
                            "the power cut stops the store"
                        );
                        f.reset();
                        let got = which(&mut f, &slots, len, &[new, history.saturating_sub(1)]);
                        let done = op == commit && units == 1;
                        if op < commit {
                            assert_eq!(
                                got, previous,
                                "cut at op {op} unit {units} (len {len}, history {history})"
                            );
                        } else if done {
                            assert_eq!(got, Some(new), "the commit word is complete");
                        } else {
                            assert!(
                                got == previous || got == Some(new),
                                "torn commit word: {got:?}"
                            );
                        }
                        // After the reset, storing works and wins; the sequence keeps growing.
                        let s = store(&mut f, &slots, MODEL, new + 10, len).unwrap();
                        assert!(s.sequence >= history);
                        assert_eq!(which(&mut f, &slots, len, &[new + 10]), Some(new + 10));
                        assert!(f.violations.is_empty(), "{:?}", f.violations);
                        cuts += 1;
                    }
                }
            }
        }
    }
    // Every word and page of every store, three tearing patterns each.
    assert!(cuts > 3 * 2 * 4 * (1531 / 4), "{cuts} cut points");
}

#[test]
fn a_corrupt_byte_makes_its_slot_ignored() {
    let len = 1531;
    let (mut clean, slots) = setup(len);
    store(&mut clean, &slots, MODEL, 0, len).unwrap();
    store(&mut clean, &slots, MODEL, 1, len).unwrap(); // slot 1, the newest
    let base = slots.slot_base(1) as usize;
    for i in 0..HEADER_LEN + len {
        let mut f = clean.fork();
        f.mem[base + i] ^= 1 << (i % 8);
        assert_eq!(
            which(&mut f, &slots, len, &[0, 1]),
            Some(0),
            "byte {i} of slot 1 flipped"
        );
        // Both slots corrupt: the factory model.
        f.mem[slots.slot_base(0) as usize + i] ^= 1 << (i % 8);
        assert_eq!(
            loaded(&mut f, &slots, MODEL, len),
            None,
            "byte {i} of both flipped"
        );
    }
    // Bytes after the record are not part of it.
    let mut f = clean.fork();
    f.mem[base + HEADER_LEN + len + 3] = 0;
    assert_eq!(which(&mut f, &slots, len, &[0, 1]), Some(1));
}

#[test]
fn a_record_for_another_model_or_payload_length_is_ignored() {
    let len = 256;
    let (mut f, slots) = setup(len);
    store(&mut f, &slots, OTHER_MODEL, 0, len).unwrap();
    assert_eq!(
        loaded(&mut f, &slots, MODEL, len),
        None,
        "re-flashed model: factory"
    );
    // The other model's record is kept while this model's first record goes to the other slot.
    let s = store(&mut f, &slots, MODEL, 1, len).unwrap();
    assert_eq!(
        s,
        Stored {
            slot: 1,
            sequence: 1
        }
    );
    assert_eq!(which(&mut f, &slots, len, &[1]), Some(1));
    assert_eq!(
        loaded(&mut f, &slots, OTHER_MODEL, len).map(|(l, _)| l.slot),
        Some(0)
    );
    // The next store of this model replaces the other model's record, not its own newest.
    let s = store(&mut f, &slots, MODEL, 2, len).unwrap();
    assert_eq!(
        s,
        Stored {
            slot: 0,
            sequence: 2
        }
    );
    assert_eq!(loaded(&mut f, &slots, OTHER_MODEL, len), None);
    // Another payload length (a firmware adapting another parameter set): ignored.
    assert_eq!(loaded(&mut f, &slots, MODEL, len - 4), None);
    assert_eq!(loaded(&mut f, &slots, MODEL, len + 1), None);
}

#[test]
fn sequence_numbers_wrap() {
    assert!(newer(0, u32::MAX) && !newer(u32::MAX, 0));
    assert!(newer(5, 4) && !newer(4, 5) && !newer(7, 7));
    let len = 100;
    for (s0, s1, newest) in [
        (u32::MAX, 0, 1u8),
        (0, u32::MAX, 0),
        (u32::MAX - 1, u32::MAX, 1),
    ] {
        let (mut f, slots) = setup(len);
        put_record(&mut f, &slots, 0, s0, MODEL, 10, len);
        put_record(&mut f, &slots, 1, s1, MODEL, 11, len);
        let (l, _) = loaded(&mut f, &slots, MODEL, len).unwrap();
        assert_eq!(
            (l.slot, l.sequence),
            (newest, [s0, s1][usize::from(newest)])
        );
        // The next store overwrites the older slot with the next number.
        let s = store(&mut f, &slots, MODEL, 12, len).unwrap();
        assert_eq!(s.slot, 1 - newest);
        assert_eq!(s.sequence, l.sequence.wrapping_add(1));
        assert_eq!(which(&mut f, &slots, len, &[12]), Some(12));
    }
}

#[test]
fn with_both_slots_valid_the_newest_wins() {
    let len = 100;
    for (s0, s1, newest) in [(7u32, 5u32, 0u8), (5, 7, 1), (0, 1, 1)] {
        let (mut f, slots) = setup(len);
        put_record(&mut f, &slots, 0, s0, MODEL, 0, len);
        put_record(&mut f, &slots, 1, s1, MODEL, 1, len);
        assert_eq!(which(&mut f, &slots, len, &[0, 1]), Some(u32::from(newest)));
        // The newest slot corrupt: the older one.
        let at = slots.slot_base(newest) as usize + HEADER_LEN;
        f.mem[at] ^= 0x40;
        assert_eq!(
            which(&mut f, &slots, len, &[0, 1]),
            Some(u32::from(1 - newest))
        );
    }
}

#[test]
fn garbage_and_hostile_headers_give_the_factory_model() {
    let len = 512;
    let (mut f, slots) = setup(len);
    for seed in 1..50u64 {
        f.rng = seed;
        for i in 0..f.mem.len() {
            f.mem[i] = f.random_byte();
        }
        assert_eq!(
            loaded(&mut f, &slots, MODEL, len),
            None,
            "random bytes, seed {seed}"
        );
    }
    // A well-formed header claiming a huge payload, and one with a valid CRC but a NaN
    // threshold or an impossible rate.
    for (payload_len, threshold, rate) in [
        (u32::MAX, 1.0, 0.01),
        (slots.max_payload() as u32 + 1, 1.0, 0.01),
        (len as u32, f32::NAN, 0.01),
        (len as u32, f32::INFINITY, 0.01),
        (len as u32, 1.0, 1.0),
    ] {
        let (mut f, slots) = setup(len);
        let mut h = Header {
            sequence: 3,
            payload_len,
            model_crc: MODEL,
            calibration: Calibration {
                threshold,
                margin: 0.0,
                windows: 1,
                false_alarm_rate: rate,
            },
            crc: 0,
        };
        let mut d = CRC32.digest();
        d.update(&h.encode()[..COMMIT_AT]);
        let base = slots.slot_base(0) as usize;
        let fill = (payload_len as usize).min(slots.max_payload());
        d.update(&f.mem[base + HEADER_LEN..base + HEADER_LEN + fill]);
        h.crc = d.finalize();
        f.mem[base..base + HEADER_LEN].copy_from_slice(&h.encode());
        assert_eq!(
            loaded(&mut f, &slots, MODEL, len),
            None,
            "{payload_len} {threshold} {rate}"
        );
    }
}

#[test]
fn impossible_requests_are_errors_and_write_nothing() {
    let len = 100;
    let (mut f, slots) = setup(len);
    store(&mut f, &slots, MODEL, 0, len).unwrap();
    let before = f.mem.clone();
    let (cal, payload) = state(1, len);
    let mut buf = [0u8; 100];
    // Slots past the end of the flash, or not on a page.
    let too_far = Slots::new(PAGE as u32, f.mem.len() as u32);
    assert_eq!(
        too_far.load(&mut f, MODEL, &mut buf),
        Err(PersistError::Geometry)
    );
    assert_eq!(
        too_far.store(&mut f, MODEL, &cal, &payload),
        Err(PersistError::Geometry)
    );
    let overflow = Slots::new(u32::MAX - 100, 4096);
    assert_eq!(
        overflow.load(&mut f, MODEL, &mut buf),
        Err(PersistError::Geometry)
    );
    let unaligned = Slots::new(100, PAGE as u32);
    assert_eq!(
        unaligned.store(&mut f, MODEL, &cal, &payload),
        Err(PersistError::Geometry)
    );
    let tiny = Slots::new(0, 8);
    assert_eq!(
        tiny.load(&mut f, MODEL, &mut buf),
        Err(PersistError::Geometry)
    );
    let odd = Slots::new(0, 41);
    assert_eq!(
        odd.load(&mut f, MODEL, &mut buf),
        Err(PersistError::Geometry)
    );
    // A payload larger than a slot; an invalid calibration.
    let big = vec![0u8; slots.max_payload() + 1];
    assert_eq!(
        slots.store(&mut f, MODEL, &cal, &big),
        Err(PersistError::PayloadTooLong {
            len: big.len(),
            max: 4056
        })
    );
    for bad in [
        Calibration {
            threshold: f32::NAN,
            ..cal
        },
        Calibration {
            false_alarm_rate: -0.1,
            ..cal
        },
        Calibration {
            margin: f32::INFINITY,
            ..cal
        },
    ] {
        assert_eq!(
            slots.store(&mut f, MODEL, &bad, &payload),
            Err(PersistError::InvalidState)
        );
    }
    assert!(f.mem == before, "nothing written");
    assert_eq!(which(&mut f, &slots, len, &[0]), Some(0));
}

#[test]
fn a_write_that_does_not_stick_is_reported_and_the_previous_state_kept() {
    let len = 100;
    let (mut f, slots) = setup(len);
    store(&mut f, &slots, MODEL, 0, len).unwrap();
    // A worn bit in slot 1's payload that reads 0 where state 1 has a 1.
    let (_, payload) = state(1, len);
    let i = payload.iter().position(|b| b & 1 == 1).unwrap();
    f.stuck_low = Some(slots.slot_base(1) as usize + HEADER_LEN + i);
    assert_eq!(
        store(&mut f, &slots, MODEL, 1, len),
        Err(PersistError::Verify)
    );
    assert_eq!(which(&mut f, &slots, len, &[0, 1]), Some(0));
}

#[test]
fn the_write_policy_limits_the_rate() {
    let p = WritePolicy {
        min_interval_ms: 60_000,
    };
    assert!(p.allows(None, 0));
    assert!(!p.allows(Some(1_000), 60_999));
    assert!(p.allows(Some(1_000), 61_000));
    assert!(!p.allows(Some(10_000), 5_000), "a clock that went back");
    assert_eq!(lifetime_stores(NRF52833_ENDURANCE_CYCLES), 20_000);
    let years = WritePolicy::HOURLY.lifetime_years(NRF52833_ENDURANCE_CYCLES);
    assert!((years - 2.28).abs() < 0.01, "{years}");
    let daily = WritePolicy {
        min_interval_ms: 86_400_000,
    };
    assert!((daily.lifetime_years(NRF52833_ENDURANCE_CYCLES) - 54.76).abs() < 0.05);
}
