//! Telemetry: one fixed-length frame per window carrying its latents, score and verdict in
//! place of its raw samples (30 bytes instead of 64 × 3 × 2 = 384 bytes of 16-bit samples for
//! the default model: 12.8× less).
//!
//! ## Frame format (version 1, little-endian)
//!
//! | offset | bytes | type | field |
//! |---:|---:|---|---|
//! | 0 | 1 | u8 | magic `0xA5` |
//! | 1 | 1 | u8 | version: 1 |
//! | 2 | 4 | u32 | window index k (the window starts at sample k·hop) |
//! | 6 | 1 | u8 | verdict: 0 calibrating, 1 normal, 2 anomaly, 3 invalid, 4 error |
//! | 7 | 1 | u8 | Z, latent dimension |
//! | 8 | 4 | f32 | anomaly score (NaN when not scored) |
//! | 12 | 2Z | `f16[Z]` | latent mean μ, IEEE 754 binary16 (round to nearest even; NaN when not scored) |
//! | 12 + 2Z | 2 | u16 | CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF; `crc::CRC_16_IBM_3740`) of bytes 0 .. 12 + 2Z |
//!
//! On the QEMU board the frame is logged as hex (`frame=a501…`); on a board with a serial
//! port it would be sent as is (framed, e.g., by COBS). [`decode`] checks magic, version,
//! length and CRC.

use core::fmt;

use crc::{CRC_16_IBM_3740, Crc, NoTable};
use half::f16;

use crate::Z;
use crate::app::Report;

/// First byte of a frame.
pub const MAGIC: u8 = 0xA5;
/// Frame format version.
pub const VERSION: u8 = 1;
/// Bytes of a frame for this firmware's Z.
pub const FRAME_LEN: usize = 14 + 2 * Z;

/// Bit-at-a-time (frames are 30 bytes): no 512-byte table in flash.
static CRC16: Crc<u16, NoTable> = Crc::<u16, NoTable>::new(&CRC_16_IBM_3740);

/// A decoded frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Frame {
    /// Window index.
    pub window: u32,
    /// Verdict code (see the table).
    pub verdict: u8,
    /// Anomaly score.
    pub score: f32,
    /// μ, widened back from binary16. Shape: `[Z]`.
    pub mu: [f32; Z],
}

/// Why a byte string is not a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum FrameError {
    /// Not [`FRAME_LEN`] bytes.
    Length(usize),
    /// Wrong magic or version, or another Z.
    Header,
    /// The CRC does not match.
    Crc,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Length(n) => write!(f, "telemetry frame has {n} bytes, not {FRAME_LEN}"),
            FrameError::Header => f.write_str("telemetry frame: bad magic, version or Z"),
            FrameError::Crc => f.write_str("telemetry frame: CRC mismatch"),
        }
    }
}

/// The frame of a window's report, with its latent mean `mu` (`[Z]`; `None`: the window was
/// not scored, μ is sent as NaN).
pub fn encode(r: &Report, mu: Option<&[f32]>) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[0] = MAGIC;
    f[1] = VERSION;
    f[2..6].copy_from_slice(&r.window.index.to_le_bytes());
    f[6] = r.verdict.code();
    f[7] = Z as u8;
    f[8..12].copy_from_slice(&r.score.to_le_bytes());
    for (j, c) in f[12..12 + 2 * Z].chunks_exact_mut(2).enumerate() {
        let m = mu.and_then(|mu| mu.get(j)).copied().unwrap_or(f32::NAN);
        c.copy_from_slice(&f16::from_f32(m).to_bits().to_le_bytes());
    }
    let crc = CRC16.checksum(&f[..12 + 2 * Z]);
    f[12 + 2 * Z..].copy_from_slice(&crc.to_le_bytes());
    f
}

/// Parses and checks a frame.
pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
    if bytes.len() != FRAME_LEN {
        return Err(FrameError::Length(bytes.len()));
    }
    if bytes[0] != MAGIC || bytes[1] != VERSION || bytes[7] as usize != Z {
        return Err(FrameError::Header);
    }
    let body = 12 + 2 * Z;
    if CRC16.checksum(&bytes[..body]).to_le_bytes() != bytes[body..] {
        return Err(FrameError::Crc);
    }
    let u32_at =
        |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let mut mu = [0f32; Z];
    for (m, c) in mu.iter_mut().zip(bytes[12..body].chunks_exact(2)) {
        *m = f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32();
    }
    Ok(Frame {
        window: u32_at(2),
        verdict: bytes[6],
        score: f32::from_bits(u32_at(8)),
        mu,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{Invalid, Verdict, WindowInfo};

    fn f32_to_f16(v: f32) -> u16 {
        f16::from_f32(v).to_bits()
    }
    fn f16_to_f32(h: u16) -> f32 {
        f16::from_bits(h).to_f32()
    }

    /// The frame format promises binary16 with round to nearest, ties to even: what `half`
    /// does, checked on every half and on 200,000 floats.
    #[test]
    fn f16_round_trips_every_half_and_rounds_to_nearest_even() {
        for h in 0..=u16::MAX {
            let f = f16_to_f32(h);
            if f.is_nan() {
                assert!(f16_to_f32(f32_to_f16(f)).is_nan());
            } else {
                assert_eq!(f32_to_f16(f), h, "{h:#06x} {f}");
            }
        }
        assert_eq!(f32_to_f16(1.0 + 1.0 / 2048.0), 0x3c00, "tie to even (down)");
        assert_eq!(f32_to_f16(1.0 + 3.0 / 2048.0), 0x3c02, "tie to even (up)");
        assert_eq!(f32_to_f16(65520.0), 0x7c00, "overflow");
        assert_eq!(f32_to_f16(65519.0), 0x7bff);
        assert_eq!(f32_to_f16(1e-8), 0);
        assert_eq!(f32_to_f16(-3.0e-5), 0x81f7); // subnormal, rounded
        // Every f32 rounds to one of its two neighbouring halves, the nearer one.
        let mut x: u32 = 1;
        for _ in 0..200_000 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let f = f32::from_bits(x);
            if !f.is_finite() || f.abs() > 65504.0 {
                continue;
            }
            let r = f16_to_f32(f32_to_f16(f)) as f64;
            let err = (r - f as f64).abs();
            let ulp = if (f.abs() as f64) < 2f64.powi(-14) {
                2f64.powi(-24)
            } else {
                (f.abs() as f64).log2().floor().exp2() / 1024.0
            };
            assert!(err <= ulp / 2.0, "{f} -> {r}");
        }
    }

    #[test]
    fn frames_round_trip_and_detect_corruption() {
        let mut mu = [0f32; Z];
        for (i, m) in mu.iter_mut().enumerate() {
            *m = i as f32 * 0.5 - 1.25;
        }
        let r = Report {
            window: WindowInfo {
                index: 0x0102_0304,
                first_sample: 0,
                invalid: None,
            },
            verdict: Verdict::Anomaly,
            score: 1234.5,
            threshold: 150.0,
            calibrated: None,
        };
        let f = encode(&r, Some(&mu));
        assert_eq!(f.len(), 30);
        assert_eq!(&f[..3], &[MAGIC, VERSION, 0x04]);
        let d = decode(&f).unwrap();
        assert_eq!(
            (d.window, d.verdict, d.score, d.mu),
            (0x0102_0304, 2, 1234.5, mu)
        );
        for i in 0..FRAME_LEN {
            let mut bad = f;
            bad[i] ^= 0x10;
            assert!(decode(&bad).is_err(), "byte {i}");
        }
        assert_eq!(decode(&f[1..]), Err(FrameError::Length(FRAME_LEN - 1)));
        let invalid = Report {
            verdict: Verdict::Invalid(Invalid::NonFinite { sample: 3, axis: 1 }),
            score: f32::NAN,
            ..r
        };
        let d = decode(&encode(&invalid, None)).unwrap();
        assert_eq!(d.verdict, 3);
        assert!(d.score.is_nan() && d.mu.iter().all(|m| m.is_nan()));
    }
}
