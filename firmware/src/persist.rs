//! Persistence of the on-device adapted state across resets: two slots in NOR flash, written so
//! that a reset (power loss) at any moment of a write leaves either the previous state or, if
//! there was none, the factory model (the model file, which is never written), never a corrupt
//! one.
//!
//! The adapted state is a byte blob of a size fixed at compile time (fine-tuned parameters as
//! little-endian f32) plus the threshold and calibration state ([`Calibration`]). It adapts
//! one particular model file: each record carries that file's CRC-32
//! ([`vae_nostd::modelfile::ModelFile::crc`]), so a re-flashed different model ignores older
//! adaptations.
//!
//! Generic over `embedded_storage::nor_flash::{ReadNorFlash, NorFlash}` (the traits the
//! nRF52833 HAL's NVMC implements), so it is tested on the host against a RAM-backed flash
//! that enforces NOR rules and cuts the power at every step of a write.
//!
//! ## Layout
//! [`Slots`] is a region of two slots of [`Slots::slot_len`] bytes each, a multiple of the
//! flash's erase size, chosen at compile time from the payload length ([`slot_len`]). A slot
//! holds one record: a [`HEADER_LEN`]-byte header, then the payload; the rest of the slot stays
//! erased. All integers and floats are little-endian.
//!
//! | offset | bytes | type | field |
//! |---:|---:|---|---|
//! | 0 | 4 | `[u8; 4]` | magic `VAEP` |
//! | 4 | 2 | u16 | format version: 1 |
//! | 6 | 2 | u16 | header length: 40 |
//! | 8 | 4 | u32 | sequence number: one more than the newest record in either slot (wrapping) |
//! | 12 | 4 | u32 | payload length `L` in bytes |
//! | 16 | 4 | u32 | CRC-32 of the factory model file this state adapts |
//! | 20 | 4 | f32 | anomaly threshold |
//! | 24 | 4 | f32 | drift margin: threshold − mean calibration score |
//! | 28 | 4 | u32 | windows the calibration used (N) |
//! | 32 | 4 | f32 | false-alarm rate of the calibration, in [0, 1) |
//! | 36 | 4 | u32 | CRC-32 (`CRC_32_ISO_HDLC`, as the model file) of bytes 0..36 and the payload: the commit word |
//! | 40 | `L` | bytes | payload |
//!
//! ## Commit protocol
//! [`Slots::store`] never touches the slot holding the newest valid record for the current
//! model. It picks the other slot (the older or invalid one), then:
//! 1. erases it (every bit 1);
//! 2. writes the payload (bytes 40..40 + `L`; a partial last word is padded with 0xFF, which
//!    programs nothing);
//! 3. writes the header fields (bytes 0..36);
//! 4. writes the commit word (bytes 36..40), one flash word, last.
//!
//! A record is valid only if its magic, version, lengths and CRC agree, so a reset before
//! step 4 completes leaves a slot that fails its CRC (an erased commit word is 0xFFFF_FFFF,
//! a torn one a random value), and [`Slots::load`] takes the other slot: the previous state,
//! or none, i.e. the factory model. After step 4 the new record is complete. Either way the
//! previous record is intact, because only the other slot was erased. `store` reads the new
//! record back and checks its CRC before it returns.
//!
//! [`Slots::load`] reads both slots and takes the valid record with the newest sequence number
//! (serial-number order, so the wrap from `u32::MAX` to 0 keeps the order) whose model CRC and
//! payload length match; a record for another model, another payload length or with a
//! non-finite threshold is ignored.
//!
//! ## Wear
//! Every store erases one slot, alternately, so each page is erased once per two stores.
//! nRF52833 flash endures [`NRF52833_ENDURANCE_CYCLES`] erase cycles per page: 20,000 stores
//! ([`lifetime_stores`]). How often to store is the caller's policy ([`WritePolicy`]): at most
//! once an hour lasts 2.3 years, once a day 55 years. The sequence number counts stores since
//! the region was last wiped, so [`Loaded::sequence`] is a wear gauge.

use core::fmt;

use crc::{CRC_32_ISO_HDLC, Crc, NoTable};
use embedded_storage::nor_flash::{NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash};

/// The first four bytes of every record.
pub const MAGIC: [u8; 4] = *b"VAEP";
/// The record format version this build writes and reads.
pub const VERSION: u16 = 1;
/// Header bytes; the payload starts here.
pub const HEADER_LEN: usize = 40;
/// Offset of the commit word (the CRC-32) in the header.
const COMMIT_AT: usize = 36;
/// Write-cycle endurance of one nRF52833 flash page (product specification, "Flash
/// endurance": 10,000 write/erase cycles).
pub const NRF52833_ENDURANCE_CYCLES: u32 = 10_000;

/// The CRC the model file uses too (no table: a few hundred bytes of flash fewer).
const CRC32: Crc<u32, NoTable> = Crc::<u32, NoTable>::new(&CRC_32_ISO_HDLC);
/// Bytes read per step while a slot's CRC is computed (on the stack).
const CHUNK: usize = 64;

/// Bytes of one slot for a payload of `payload_len` bytes on a flash erased in blocks of
/// `erase_size` bytes: header + payload rounded up to whole erase blocks.
pub const fn slot_len(payload_len: usize, erase_size: usize) -> usize {
    (HEADER_LEN + payload_len).div_ceil(erase_size) * erase_size
}

/// Stores the slots last for `endurance_cycles` erase cycles per page: two stores per erase of
/// a slot.
pub const fn lifetime_stores(endurance_cycles: u32) -> u64 {
    2 * endurance_cycles as u64
}

/// The threshold and calibration state of an adaptation.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub struct Calibration {
    /// The anomaly threshold: scores above it are anomalies. Finite.
    pub threshold: f32,
    /// The calibration's threshold − mean calibration score (drift compensation). Finite or
    /// NaN (no drift compensation).
    pub margin: f32,
    /// Windows the calibration learnt from (N).
    pub windows: u32,
    /// False-alarm rate of the calibration, in [0, 1).
    pub false_alarm_rate: f32,
}

impl Calibration {
    fn is_valid(&self) -> bool {
        self.threshold.is_finite()
            && !self.margin.is_infinite()
            && (0.0..1.0).contains(&self.false_alarm_rate)
    }
}

/// A record found by [`Slots::load`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub struct Loaded {
    /// The slot it was read from, 0 or 1.
    pub slot: u8,
    /// Its sequence number (stores since the region was wiped, wrapping).
    pub sequence: u32,
    /// Its threshold and calibration state.
    pub calibration: Calibration,
}

/// A record written by [`Slots::store`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub struct Stored {
    /// The slot it was written to, 0 or 1.
    pub slot: u8,
    /// Its sequence number.
    pub sequence: u32,
}

/// The kind of a flash driver's error ([`NorFlashErrorKind`], which has no defmt support in
/// embedded-storage 0.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum FlashErrorKind {
    /// Offset or length not aligned for the operation.
    NotAligned,
    /// Outside the flash.
    OutOfBounds,
    /// Anything else the driver reports.
    Other,
}

/// Why a load or store failed. A failed load means: run the factory model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum PersistError {
    /// The flash driver refused an operation.
    Flash(FlashErrorKind),
    /// The slots do not fit this flash: not inside its capacity, not aligned to its erase
    /// size, or a write size that does not divide 4 or a read size that does not divide 4.
    Geometry,
    /// The payload does not fit a slot.
    PayloadTooLong {
        /// Payload bytes given.
        len: usize,
        /// Bytes a slot holds after the header.
        max: usize,
    },
    /// The calibration state to store is not valid (non-finite threshold, rate outside [0, 1)).
    InvalidState,
    /// The record read back after the commit does not match its CRC.
    Verify,
}

impl<E: NorFlashError> From<E> for PersistError {
    fn from(e: E) -> Self {
        PersistError::Flash(match e.kind() {
            NorFlashErrorKind::NotAligned => FlashErrorKind::NotAligned,
            NorFlashErrorKind::OutOfBounds => FlashErrorKind::OutOfBounds,
            _ => FlashErrorKind::Other,
        })
    }
}

impl fmt::Display for PersistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PersistError::Flash(k) => write!(f, "flash driver error: {k:?}"),
            PersistError::Geometry => f.write_str("the persistence slots do not fit this flash"),
            PersistError::PayloadTooLong { len, max } => {
                write!(f, "payload of {len} bytes; a slot holds {max}")
            }
            PersistError::InvalidState => f.write_str("calibration state is not valid"),
            PersistError::Verify => f.write_str("the record read back does not match its CRC"),
        }
    }
}

/// When the caller may store: at most once per `min_interval_ms` (the wear policy; see the
/// module docs for what an interval buys).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub struct WritePolicy {
    /// Milliseconds between two stores, at least.
    pub min_interval_ms: u64,
}

impl WritePolicy {
    /// At most one store per hour: 20,000 stores last 2.3 years on the nRF52833.
    pub const HOURLY: WritePolicy = WritePolicy {
        min_interval_ms: 3_600_000,
    };

    /// Whether a store at `now_ms` is allowed after the last one at `last_ms` (`None`: none yet
    /// since boot). A clock that went backwards allows nothing until it passes `last_ms` again
    /// by the interval.
    pub fn allows(&self, last_ms: Option<u64>, now_ms: u64) -> bool {
        match last_ms {
            None => true,
            Some(last) => now_ms
                .checked_sub(last)
                .is_some_and(|d| d >= self.min_interval_ms),
        }
    }

    /// Years the flash lasts at one store per interval, for `endurance_cycles` per page.
    pub fn lifetime_years(&self, endurance_cycles: u32) -> f32 {
        const MS_PER_YEAR: f32 = 365.25 * 24.0 * 3_600_000.0;
        lifetime_stores(endurance_cycles) as f32 * self.min_interval_ms as f32 / MS_PER_YEAR
    }
}

/// The decoded header of a record (before its CRC is checked).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Header {
    sequence: u32,
    payload_len: u32,
    model_crc: u32,
    calibration: Calibration,
    crc: u32,
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..6].copy_from_slice(&VERSION.to_le_bytes());
        b[6..8].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        b[8..12].copy_from_slice(&self.sequence.to_le_bytes());
        b[12..16].copy_from_slice(&self.payload_len.to_le_bytes());
        b[16..20].copy_from_slice(&self.model_crc.to_le_bytes());
        b[20..24].copy_from_slice(&self.calibration.threshold.to_bits().to_le_bytes());
        b[24..28].copy_from_slice(&self.calibration.margin.to_bits().to_le_bytes());
        b[28..32].copy_from_slice(&self.calibration.windows.to_le_bytes());
        b[32..36].copy_from_slice(&self.calibration.false_alarm_rate.to_bits().to_le_bytes());
        b[36..40].copy_from_slice(&self.crc.to_le_bytes());
        b
    }

    /// The header if magic, version and header length are this format's.
    fn decode(b: &[u8; HEADER_LEN]) -> Option<Header> {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        if b[0..4] != MAGIC || u16_at(4) != VERSION || usize::from(u16_at(6)) != HEADER_LEN {
            return None;
        }
        Some(Header {
            sequence: u32_at(8),
            payload_len: u32_at(12),
            model_crc: u32_at(16),
            calibration: Calibration {
                threshold: f32::from_bits(u32_at(20)),
                margin: f32::from_bits(u32_at(24)),
                windows: u32_at(28),
                false_alarm_rate: f32::from_bits(u32_at(32)),
            },
            crc: u32_at(36),
        })
    }
}

/// `a` is newer than `b` in serial-number order (RFC 1982): a − b, wrapping, is in
/// 1..2³¹. Consecutive records differ by one, so the wrap from `u32::MAX` to 0 keeps the order.
fn newer(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// Two slots in a flash region: where the adapted state lives. A plain description (two
/// numbers); the flash is passed to each call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub struct Slots {
    base: u32,
    slot_len: u32,
}

impl Slots {
    /// Two slots of `slot_len` bytes each from offset `base` of the flash (checked against the
    /// flash at every call: [`PersistError::Geometry`]).
    pub const fn new(base: u32, slot_len: u32) -> Self {
        Slots { base, slot_len }
    }

    /// Two slots sized for a payload of `payload_len` bytes on a flash with `erase_size`-byte
    /// erase blocks ([`slot_len`]).
    pub const fn for_payload(base: u32, payload_len: usize, erase_size: usize) -> Self {
        Slots::new(base, slot_len(payload_len, erase_size) as u32)
    }

    /// Bytes of one slot.
    pub const fn slot_len(&self) -> u32 {
        self.slot_len
    }

    /// Bytes of both slots: the region to reserve.
    pub const fn region_len(&self) -> u32 {
        2 * self.slot_len
    }

    /// The largest payload a slot holds.
    pub const fn max_payload(&self) -> usize {
        (self.slot_len as usize).saturating_sub(HEADER_LEN)
    }

    fn slot_base(&self, slot: u8) -> u32 {
        self.base + u32::from(slot) * self.slot_len
    }

    /// The slots lie inside the flash, on erase blocks, and the flash's read and write sizes
    /// divide 4 (the record's fields are words).
    fn check<F: ReadNorFlash>(&self, flash: &F, erase_size: usize, write_size: usize) -> bool {
        let fits = (self.base as u64 + 2 * self.slot_len as u64) <= flash.capacity() as u64;
        fits && self.slot_len as usize >= HEADER_LEN
            && self.base.is_multiple_of(4)
            && self.slot_len.is_multiple_of(4)
            && erase_size > 0
            && (self.base as usize).is_multiple_of(erase_size)
            && (self.slot_len as usize).is_multiple_of(erase_size)
            && write_size > 0
            && 4 % write_size == 0
            && F::READ_SIZE > 0
            && 4 % F::READ_SIZE == 0
    }

    /// The header of `slot` if it holds a complete record: this format, a payload that fits,
    /// and a CRC that matches. The payload is streamed through a small stack buffer.
    fn valid_header<F: ReadNorFlash>(
        &self,
        flash: &mut F,
        slot: u8,
    ) -> Result<Option<Header>, PersistError> {
        let base = self.slot_base(slot);
        let mut raw = [0u8; HEADER_LEN];
        flash.read(base, &mut raw)?;
        let Some(h) = Header::decode(&raw) else {
            return Ok(None);
        };
        let len = h.payload_len as usize;
        if len > self.max_payload() {
            return Ok(None);
        }
        let mut digest = CRC32.digest();
        digest.update(&raw[..COMMIT_AT]);
        // Reads whole words (READ_SIZE divides 4), covering the payload's padded tail.
        let padded = len.next_multiple_of(4);
        let mut chunk = [0u8; CHUNK];
        let mut done = 0;
        while done < padded {
            let n = (padded - done).min(CHUNK);
            flash.read(base + (HEADER_LEN + done) as u32, &mut chunk[..n])?;
            let payload_bytes = (len - done).min(n);
            digest.update(&chunk[..payload_bytes]);
            done += n;
        }
        Ok((digest.finalize() == h.crc).then_some(h))
    }

    /// Both slots' valid headers.
    fn scan<F: ReadNorFlash>(&self, flash: &mut F) -> Result<[Option<Header>; 2], PersistError> {
        Ok([self.valid_header(flash, 0)?, self.valid_header(flash, 1)?])
    }

    /// The newest valid record for the model with CRC-32 `model_crc` and a payload of
    /// `payload.len()` bytes, its payload copied into `payload`; `Ok(None)` when neither slot
    /// holds one (run the factory model). `payload`'s contents are unspecified after `Ok(None)`
    /// or an error. Never writes.
    pub fn load<F: ReadNorFlash>(
        &self,
        flash: &mut F,
        model_crc: u32,
        payload: &mut [u8],
    ) -> Result<Option<Loaded>, PersistError> {
        if !self.check(flash, 1, 1) {
            return Err(PersistError::Geometry);
        }
        let headers = self.scan(flash)?;
        let len = payload.len();
        let fits = |h: &Header| {
            h.model_crc == model_crc && h.payload_len as usize == len && h.calibration.is_valid()
        };
        let mut order = [0u8, 1u8];
        if let [Some(a), Some(b)] = &headers
            && newer(b.sequence, a.sequence)
        {
            order = [1, 0];
        }
        for slot in order {
            let Some(h) = headers[usize::from(slot)].filter(fits) else {
                continue;
            };
            // Copy the payload out and check the CRC again over what was copied.
            let base = self.slot_base(slot) + HEADER_LEN as u32;
            let whole = payload.len() / 4 * 4;
            flash.read(base, &mut payload[..whole])?;
            if whole < payload.len() {
                let mut tail = [0u8; 4];
                flash.read(base + whole as u32, &mut tail)?;
                let rest = payload.len() - whole;
                payload[whole..].copy_from_slice(&tail[..rest]);
            }
            let mut digest = CRC32.digest();
            digest.update(&h.encode()[..COMMIT_AT]);
            digest.update(payload);
            if digest.finalize() == h.crc {
                return Ok(Some(Loaded {
                    slot,
                    sequence: h.sequence,
                    calibration: h.calibration,
                }));
            }
        }
        Ok(None)
    }

    /// Writes a new record (the state adapting the model with CRC-32 `model_crc`) into the
    /// slot that does not hold the newest valid record for that model, by the commit protocol
    /// of the module docs, and reads it back. Its sequence number is one more than the newest
    /// valid record's in either slot (0 on an empty region). On an error, or a reset during the
    /// call, the previous newest record is intact.
    pub fn store<F: NorFlash>(
        &self,
        flash: &mut F,
        model_crc: u32,
        calibration: &Calibration,
        payload: &[u8],
    ) -> Result<Stored, PersistError> {
        if !self.check(flash, F::ERASE_SIZE, F::WRITE_SIZE) {
            return Err(PersistError::Geometry);
        }
        if payload.len() > self.max_payload() {
            return Err(PersistError::PayloadTooLong {
                len: payload.len(),
                max: self.max_payload(),
            });
        }
        if !calibration.is_valid() {
            return Err(PersistError::InvalidState);
        }
        let headers = self.scan(flash)?;
        // The newest record of any model gives the sequence number; the newest record of this
        // model is kept, so the other slot is written (slot 0 when both or neither are).
        let newest_any = match headers {
            [Some(a), Some(b)] => Some(if newer(b.sequence, a.sequence) { b } else { a }),
            [a, b] => a.or(b),
        };
        let sequence = newest_any.map_or(0, |h| h.sequence.wrapping_add(1));
        let ours = |h: &Option<Header>| h.is_some_and(|h| h.model_crc == model_crc);
        let slot = match (ours(&headers[0]), ours(&headers[1])) {
            (true, true) => {
                let (a, b) = (
                    headers[0].map_or(0, |h| h.sequence),
                    headers[1].map_or(0, |h| h.sequence),
                );
                if newer(b, a) { 0 } else { 1 }
            }
            (true, false) => 1,
            (false, true) => 0,
            // No record of this model: overwrite the older (or invalid) slot.
            (false, false) => match headers {
                [Some(a), Some(b)] => u8::from(!newer(b.sequence, a.sequence)),
                [Some(_), None] => 1,
                _ => 0,
            },
        };
        let base = self.slot_base(slot);
        let mut header = Header {
            sequence,
            payload_len: payload.len() as u32,
            model_crc,
            calibration: *calibration,
            crc: 0,
        };
        let mut digest = CRC32.digest();
        digest.update(&header.encode()[..COMMIT_AT]);
        digest.update(payload);
        header.crc = digest.finalize();
        let raw = header.encode();

        // 1. Erase.
        flash.erase(base, base + self.slot_len)?;
        // 2. Payload: whole words straight from the slice, a partial last word padded with
        //    0xFF (programs nothing).
        let start = base + HEADER_LEN as u32;
        let whole = payload.len() / 4 * 4;
        if whole > 0 {
            flash.write(start, &payload[..whole])?;
        }
        if whole < payload.len() {
            let mut tail = [0xFFu8; 4];
            tail[..payload.len() - whole].copy_from_slice(&payload[whole..]);
            flash.write(start + whole as u32, &tail)?;
        }
        // 3. Header fields, 4. the commit word last.
        flash.write(base, &raw[..COMMIT_AT])?;
        flash.write(base + COMMIT_AT as u32, &raw[COMMIT_AT..])?;

        match self.valid_header(flash, slot)? {
            // Compared as bytes: a NaN margin is not equal to itself.
            Some(h) if h.encode() == raw => Ok(Stored { slot, sequence }),
            _ => Err(PersistError::Verify),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
