//! Record: the raw 3-axis samples streamed to the host in framed, sequence-numbered,
//! CRC-checked frames, so that a dropped or corrupt frame, or samples the sensor lost, are
//! detected on the host and never silently spliced (`host-trainer record` turns the frames
//! into the CSV that `train` reads).
//!
//! The same code encodes on the device ([`Recorder`], [`record`]) and decodes on the host
//! ([`decode`]; `host-trainer` depends on this library's host build for it), so there is one
//! definition of the format.
//!
//! ## Frame format (version 1, little-endian)
//!
//! | offset | bytes | type | field |
//! |---:|---:|---|---|
//! | 0 | 1 | u8 | magic `0x52` (`R`) |
//! | 1 | 1 | u8 | version: 1 |
//! | 2 | 1 | u8 | kind: 1 samples as i16 mg, 2 samples as f32 mg, 3 gap, 4 end |
//! | 3 | 1 | u8 | n: samples in the frame (0 for gap and end), at most [`SAMPLES_PER_FRAME`] |
//! | 4 | 2 | u16 | sample rate, Hz |
//! | 6 | 4 | u32 | sequence number: frames sent before this one (every kind counts; wraps) |
//! | 10 | 4 | u32 | samples: index of the first sample (samples sent before this frame; wraps) |
//! | 14 | 6n, 12n or 1 | | kind 1: n × (x, y, z) i16; kind 2: n × (x, y, z) f32; kind 3: the reason (a [`GapReason`] code); kind 4: nothing |
//! | end − 4 | 4 | u32 | CRC-32 (IEEE 802.3, `crc::CRC_32_ISO_HDLC`, as the model file) of every byte before it |
//!
//! * **Samples** are lossless: a frame whose values are all integers in i16 range is sent as
//!   i16 (what the LSM303AGR gives, half the bytes), any other as the f32 bits (the simulator's
//!   values), so the host gets exactly the f32 the board read.
//! * **Gap**: the sensor lost samples before the next one (a FIFO overrun, or a failed read);
//!   how many is unknown, so the host starts a new segment there. One gap frame per run of
//!   consecutive errors.
//! * **End**: the stream is over; its sample index is the number of samples sent, so that
//!   dropped frames at the tail are detected too.
//! * **Sequence numbers** count frames, so a dropped frame of any kind is detected; the sample
//!   index says exactly how many samples a drop lost.
//!
//! With [`SAMPLES_PER_FRAME`] = 16 a frame is at most 210 bytes (40 ms at 400 Hz): small
//! enough for the micro:bit's 256-byte RTT buffer as one defmt log line
//! (`rec=[52, 01, …]`, the bytes in hex), the transport on both boards.

use core::fmt;

use crc::{CRC_32_ISO_HDLC, Crc, NoTable};

use crate::board::{Board, SensorError};

/// First byte of a frame.
pub const MAGIC: u8 = 0x52;
/// Frame format version.
pub const VERSION: u8 = 1;
/// Most samples in one frame.
pub const SAMPLES_PER_FRAME: usize = 16;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 14;
/// Bytes of the CRC.
pub const CRC_LEN: usize = 4;
/// Bytes of the longest frame (16 f32 samples).
pub const MAX_FRAME_LEN: usize = HEADER_LEN + SAMPLES_PER_FRAME * 12 + CRC_LEN;
/// The text that starts a frame in a log line: `rec=[52, 01, …]`.
pub const LOG_PREFIX: &str = "rec=";

/// Bit-at-a-time (one frame per 40 ms): no 1 KB table in flash.
static CRC32: Crc<u32, NoTable> = Crc::<u32, NoTable>::new(&CRC_32_ISO_HDLC);

/// Kind codes.
const KIND_I16: u8 = 1;
const KIND_F32: u8 = 2;
const KIND_GAP: u8 = 3;
const KIND_END: u8 = 4;

/// Why samples are missing before a gap frame's sample index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GapReason {
    /// The sensor's FIFO overflowed (code 0).
    Overrun,
    /// No sample arrived in time (1).
    Timeout,
    /// A bus transfer failed (2).
    Bus,
    /// No sensor answers (3).
    NoDevice,
    /// Another device answers (4).
    WrongDevice,
    /// The sensor cannot run at the rate (5).
    Unsupported,
    /// A code this version does not know.
    Other(u8),
}

impl GapReason {
    /// The reason for a sensor error.
    pub fn of(e: SensorError) -> Self {
        match e {
            SensorError::Overrun => GapReason::Overrun,
            SensorError::Timeout => GapReason::Timeout,
            SensorError::Bus => GapReason::Bus,
            SensorError::NoDevice => GapReason::NoDevice,
            SensorError::WrongDevice { .. } => GapReason::WrongDevice,
            SensorError::Unsupported => GapReason::Unsupported,
        }
    }

    /// Its code in a frame.
    pub fn code(self) -> u8 {
        match self {
            GapReason::Overrun => 0,
            GapReason::Timeout => 1,
            GapReason::Bus => 2,
            GapReason::NoDevice => 3,
            GapReason::WrongDevice => 4,
            GapReason::Unsupported => 5,
            GapReason::Other(c) => c,
        }
    }

    /// The reason with this code.
    pub fn from_code(c: u8) -> Self {
        match c {
            0 => GapReason::Overrun,
            1 => GapReason::Timeout,
            2 => GapReason::Bus,
            3 => GapReason::NoDevice,
            4 => GapReason::WrongDevice,
            5 => GapReason::Unsupported,
            c => GapReason::Other(c),
        }
    }
}

impl fmt::Display for GapReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GapReason::Overrun => f.write_str("sensor FIFO overrun"),
            GapReason::Timeout => f.write_str("sensor timeout"),
            GapReason::Bus => f.write_str("bus error"),
            GapReason::NoDevice => f.write_str("no sensor"),
            GapReason::WrongDevice => f.write_str("wrong device"),
            GapReason::Unsupported => f.write_str("unsupported rate"),
            GapReason::Other(c) => write!(f, "reason {c}"),
        }
    }
}

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Body {
    /// `len` samples (x, y, z in mg): `samples[..len]`.
    Samples {
        /// Samples in the frame.
        len: usize,
        /// The samples; those from `len` on are zero.
        samples: [[f32; 3]; SAMPLES_PER_FRAME],
    },
    /// The sensor lost samples here.
    Gap(GapReason),
    /// The stream ends; the frame's `first` is the number of samples sent.
    End,
}

/// A decoded frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Frame {
    /// Sample rate, Hz.
    pub rate_hz: u16,
    /// Frames sent before this one.
    pub seq: u32,
    /// Samples sent before this frame.
    pub first: u32,
    /// The payload.
    pub body: Body,
}

impl Frame {
    /// The samples it carries (none for gap and end frames).
    pub fn samples(&self) -> &[[f32; 3]] {
        match &self.body {
            Body::Samples { len, samples } => samples.get(..*len).unwrap_or(&[]),
            _ => &[],
        }
    }
}

/// Why a byte string is not a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Shorter than a header and CRC, or not the length its header says.
    Length(usize),
    /// Wrong magic or version.
    Header,
    /// The CRC does not match.
    Crc,
    /// An unknown kind, or more than [`SAMPLES_PER_FRAME`] samples (with a good CRC: a newer
    /// format).
    Kind(u8),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Length(n) => write!(f, "record frame of {n} bytes: wrong length"),
            FrameError::Header => f.write_str("record frame: bad magic or version"),
            FrameError::Crc => f.write_str("record frame: CRC mismatch"),
            FrameError::Kind(k) => write!(f, "record frame: unknown kind {k} or too many samples"),
        }
    }
}

/// An encoded frame: [`FrameBuf::as_bytes`].
#[derive(Clone, Copy, Debug)]
pub struct FrameBuf {
    bytes: [u8; MAX_FRAME_LEN],
    len: usize,
}

impl FrameBuf {
    /// The frame's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
}

/// Whether `v` survives the trip through i16 bit for bit.
fn is_i16(v: f32) -> bool {
    let i = v as i16; // saturating; NaN → 0
    f32::from(i).to_bits() == v.to_bits()
}

/// Writes a frame of `kind` with `n`, `payload` (filled by the closure into the bytes after
/// the header; returns its length) and the CRC.
fn encode(
    kind: u8,
    n: usize,
    rate_hz: u16,
    seq: u32,
    first: u32,
    payload: impl FnOnce(&mut [u8]) -> usize,
) -> FrameBuf {
    let mut b = [0u8; MAX_FRAME_LEN];
    b[0] = MAGIC;
    b[1] = VERSION;
    b[2] = kind;
    b[3] = n as u8;
    b[4..6].copy_from_slice(&rate_hz.to_le_bytes());
    b[6..10].copy_from_slice(&seq.to_le_bytes());
    b[10..14].copy_from_slice(&first.to_le_bytes());
    let p = payload(&mut b[HEADER_LEN..MAX_FRAME_LEN - CRC_LEN]);
    let body = HEADER_LEN + p;
    let crc = CRC32.checksum(&b[..body]);
    b[body..body + CRC_LEN].copy_from_slice(&crc.to_le_bytes());
    FrameBuf {
        bytes: b,
        len: body + CRC_LEN,
    }
}

/// Parses and checks a frame: length, magic, version, CRC, then kind and length again.
pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
    let n_bytes = bytes.len();
    if !(HEADER_LEN + CRC_LEN..=MAX_FRAME_LEN).contains(&n_bytes) {
        return Err(FrameError::Length(n_bytes));
    }
    if bytes[0] != MAGIC || bytes[1] != VERSION {
        return Err(FrameError::Header);
    }
    let (body, crc) = bytes.split_at(n_bytes - CRC_LEN);
    if CRC32.checksum(body).to_le_bytes() != crc {
        return Err(FrameError::Crc);
    }
    let u32_at = |i: usize| u32::from_le_bytes([body[i], body[i + 1], body[i + 2], body[i + 3]]);
    let (kind, n) = (body[2], usize::from(body[3]));
    let payload = &body[HEADER_LEN..];
    let bytes_per_sample = match kind {
        KIND_I16 => 6,
        KIND_F32 => 12,
        KIND_GAP => 0,
        KIND_END => 0,
        k => return Err(FrameError::Kind(k)),
    };
    if n > SAMPLES_PER_FRAME || (bytes_per_sample == 0 && n != 0) {
        return Err(FrameError::Kind(kind));
    }
    let expected = match kind {
        KIND_GAP => 1,
        _ => n * bytes_per_sample,
    };
    if payload.len() != expected {
        return Err(FrameError::Length(n_bytes));
    }
    let body = match kind {
        KIND_GAP => Body::Gap(GapReason::from_code(payload[0])),
        KIND_END => Body::End,
        _ => {
            let mut samples = [[0f32; 3]; SAMPLES_PER_FRAME];
            for (s, c) in samples
                .iter_mut()
                .zip(payload.chunks_exact(bytes_per_sample))
            {
                for (a, v) in s.iter_mut().zip(c.chunks_exact(bytes_per_sample / 3)) {
                    *a = match v {
                        [a, b] => f32::from(i16::from_le_bytes([*a, *b])),
                        [a, b, c, d] => f32::from_bits(u32::from_le_bytes([*a, *b, *c, *d])),
                        _ => f32::NAN, // unreachable: chunks of 2 or 4
                    };
                }
            }
            Body::Samples { len: n, samples }
        }
    };
    Ok(Frame {
        rate_hz: u16::from_le_bytes([bytes[4], bytes[5]]),
        seq: u32_at(6),
        first: u32_at(10),
        body,
    })
}

/// Collects samples into frames and numbers them (the device side).
#[derive(Clone, Debug)]
pub struct Recorder {
    rate_hz: u16,
    seq: u32,
    sent: u32,
    pending: [[f32; 3]; SAMPLES_PER_FRAME],
    len: usize,
}

impl Recorder {
    /// A recorder of a stream at `rate_hz`.
    pub fn new(rate_hz: u16) -> Self {
        Recorder {
            rate_hz,
            seq: 0,
            sent: 0,
            pending: [[0.0; 3]; SAMPLES_PER_FRAME],
            len: 0,
        }
    }

    /// Frames made so far.
    pub fn frames(&self) -> u32 {
        self.seq
    }

    /// Samples taken so far (in frames or pending).
    pub fn samples(&self) -> u32 {
        self.sent.wrapping_add(self.len as u32)
    }

    fn frame(&mut self, kind: u8, n: usize, payload: impl FnOnce(&mut [u8]) -> usize) -> FrameBuf {
        let f = encode(kind, n, self.rate_hz, self.seq, self.sent, payload);
        self.seq = self.seq.wrapping_add(1);
        self.sent = self.sent.wrapping_add(n as u32);
        f
    }

    /// Adds a sample; returns the frame when it completes one.
    pub fn push(&mut self, s: [f32; 3]) -> Option<FrameBuf> {
        if let Some(p) = self.pending.get_mut(self.len) {
            *p = s;
            self.len += 1;
        }
        if self.len == SAMPLES_PER_FRAME {
            self.flush()
        } else {
            None
        }
    }

    /// The frame of the pending samples, if there are any.
    pub fn flush(&mut self) -> Option<FrameBuf> {
        let n = core::mem::take(&mut self.len);
        if n == 0 {
            return None;
        }
        let pending = self.pending;
        let samples = pending.get(..n).unwrap_or(&[]);
        let small = samples.iter().flatten().all(|&v| is_i16(v));
        Some(if small {
            self.frame(KIND_I16, n, |p| {
                for (c, v) in p.chunks_exact_mut(2).zip(samples.iter().flatten()) {
                    c.copy_from_slice(&(*v as i16).to_le_bytes());
                }
                n * 6
            })
        } else {
            self.frame(KIND_F32, n, |p| {
                for (c, v) in p.chunks_exact_mut(4).zip(samples.iter().flatten()) {
                    c.copy_from_slice(&v.to_bits().to_le_bytes());
                }
                n * 12
            })
        })
    }

    /// The pending samples' frame (if any) and a gap frame: samples were lost here.
    pub fn gap(&mut self, reason: GapReason) -> (Option<FrameBuf>, FrameBuf) {
        let pending = self.flush();
        let gap = self.frame(KIND_GAP, 0, |p| {
            p[0] = reason.code();
            1
        });
        (pending, gap)
    }

    /// The pending samples' frame (if any) and the end frame.
    pub fn finish(&mut self) -> (Option<FrameBuf>, FrameBuf) {
        let pending = self.flush();
        (pending, self.frame(KIND_END, 0, |_| 0))
    }
}

/// What [`record`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub struct RecordStats {
    /// Samples read and framed.
    pub samples: u32,
    /// Frames emitted.
    pub frames: u32,
    /// Sensor errors (each run of consecutive errors is one gap frame).
    pub errors: u32,
    /// Gap frames emitted.
    pub gaps: u32,
}

/// Reads samples from `board` into frames and hands every frame to `emit`: `limit` samples
/// (then the end frame), or forever. A sensor error (overrun, timeout, bus) flushes the
/// pending samples and emits one gap frame for each run of consecutive errors; `on_error` sees
/// every error (to log it).
pub fn record<B: Board + ?Sized>(
    board: &mut B,
    rec: &mut Recorder,
    limit: Option<u32>,
    mut emit: impl FnMut(&[u8]),
    mut on_error: impl FnMut(SensorError),
) -> RecordStats {
    let mut stats = RecordStats::default();
    let mut in_error = false;
    while limit.is_none_or(|l| stats.samples < l) {
        match board.read_sample_mg() {
            Ok(s) => {
                in_error = false;
                stats.samples += 1;
                if let Some(f) = rec.push(s) {
                    emit(f.as_bytes());
                    stats.frames += 1;
                }
            }
            Err(e) => {
                stats.errors += 1;
                on_error(e);
                if !in_error {
                    in_error = true;
                    let (pending, gap) = rec.gap(GapReason::of(e));
                    for f in pending.iter().chain([&gap]) {
                        emit(f.as_bytes());
                        stats.frames += 1;
                    }
                    stats.gaps += 1;
                }
            }
        }
    }
    let (pending, end) = rec.finish();
    for f in pending.iter().chain([&end]) {
        emit(f.as_bytes());
        stats.frames += 1;
    }
    stats
}

/// The record program's simulated stream on QEMU: the QEMU scenario's simulator
/// ([`crate::scenario::SIM`], seed 1) without faults, [`QEMU_SAMPLES`] samples.
pub const QEMU_SIM: vae_sim::SimConfig = crate::scenario::SIM;
/// Samples the QEMU record program sends (16 s at 400 Hz: 100 windows of 64).
pub const QEMU_SAMPLES: u32 = 6400;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::State;

    /// A board that plays a script of readings.
    struct Script<'a>(core::slice::Iter<'a, Result<[f32; 3], SensorError>>);

    impl Board for Script<'_> {
        fn read_sample_mg(&mut self) -> Result<[f32; 3], SensorError> {
            self.0.next().copied().unwrap_or(Err(SensorError::Timeout))
        }
        fn show(&mut self, _: State) {}
        fn button_a_pressed(&mut self) -> bool {
            false
        }
        fn seed(&mut self) -> u64 {
            0
        }
    }

    fn record_all(script: &[Result<[f32; 3], SensorError>], limit: u32) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        let mut rec = Recorder::new(400);
        let s = record(
            &mut Script(script.iter()),
            &mut rec,
            Some(limit),
            |f| frames.push(f.to_vec()),
            |_| {},
        );
        assert_eq!(s.frames as usize, frames.len());
        frames
    }

    #[test]
    fn samples_round_trip_bit_for_bit_in_both_encodings() {
        let ints: Vec<_> = (0..20)
            .map(|i| Ok([i as f32 * 4.0, -2048.0, 32767.0]))
            .collect();
        let frames = record_all(&ints, 20);
        assert_eq!(frames.len(), 3, "16 + 4 samples + end");
        assert_eq!(frames[0].len(), HEADER_LEN + 16 * 6 + CRC_LEN, "i16");
        let odd = [1.5f32, -0.0, f32::NAN, 40000.0, f32::from_bits(0x7fc0_0001)];
        let floats: Vec<_> = odd.iter().map(|&v| Ok([v, 1.0, 2.0])).collect();
        let frames2 = record_all(&floats, 5);
        assert_eq!(frames2[0].len(), HEADER_LEN + 5 * 12 + CRC_LEN, "f32");
        let got: Vec<[f32; 3]> = frames2
            .iter()
            .flat_map(|f| decode(f).unwrap().samples().to_vec())
            .collect();
        for (g, v) in got.iter().zip(odd) {
            assert_eq!(g[0].to_bits(), v.to_bits());
        }
        let d: Vec<Frame> = frames.iter().map(|f| decode(f).unwrap()).collect();
        assert_eq!(
            d.iter().map(|f| (f.seq, f.first)).collect::<Vec<_>>(),
            [(0, 0), (1, 16), (2, 20)]
        );
        assert_eq!(d[1].samples()[3], [76.0, -2048.0, 32767.0]);
        assert_eq!(d[2].body, Body::End);
        assert!(d.iter().all(|f| f.rate_hz == 400));
    }

    #[test]
    fn errors_flush_and_mark_one_gap_per_run() {
        let mut script: Vec<Result<[f32; 3], SensorError>> = (0..5).map(|_| Ok([1.0; 3])).collect();
        script.push(Err(SensorError::Overrun));
        script.push(Err(SensorError::Bus));
        script.extend((0..3).map(|_| Ok([2.0; 3])));
        let frames: Vec<Frame> = record_all(&script, 8)
            .iter()
            .map(|f| decode(f).unwrap())
            .collect();
        let kinds: Vec<_> = frames
            .iter()
            .map(|f| {
                (
                    f.seq,
                    f.first,
                    f.samples().len(),
                    matches!(f.body, Body::Gap(_)),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                (0, 0, 5, false),
                (1, 5, 0, true),
                (2, 5, 3, false),
                (3, 8, 0, false)
            ]
        );
        assert_eq!(frames[1].body, Body::Gap(GapReason::Overrun));
    }

    #[test]
    fn every_corruption_and_truncation_is_detected() {
        let mut rec = Recorder::new(400);
        for i in 0..15 {
            assert!(rec.push([i as f32 + 0.5, 0.0, 1.0]).is_none());
        }
        let f = rec.push([0.25, 0.0, 1.0]).unwrap();
        let f = f.as_bytes();
        assert_eq!(f.len(), MAX_FRAME_LEN);
        assert!(decode(f).is_ok());
        for i in 0..f.len() {
            for bit in 0..8 {
                let mut bad = f.to_vec();
                bad[i] ^= 1 << bit;
                assert!(decode(&bad).is_err(), "byte {i} bit {bit}");
            }
        }
        for n in 0..f.len() {
            assert!(decode(&f[..n]).is_err(), "truncated to {n}");
        }
        let mut long = f.to_vec();
        long.push(0);
        assert_eq!(decode(&long), Err(FrameError::Length(MAX_FRAME_LEN + 1)));
    }
}
