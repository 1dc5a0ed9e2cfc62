//! Recordings from the firmware's record programs: log lines holding record frames
//! (`rec=[52, 01, …]`, the format of [`firmware::record`]) decoded into segments of samples,
//! with every dropped, corrupt or lost frame counted, and written as the CSV that `train`
//! reads.
//!
//! * **Lines.** Any text stream: the decoded defmt log of QEMU (`defmt-print`) or of a board
//!   (`probe-rs run`), with whatever else the tools print around the frames. A line with
//!   [`LOG_PREFIX`] holds one frame as hex bytes `[52, 01, …]`; other lines are ignored.
//! * **Checks.** A frame that does not parse, or whose CRC-32 fails, is *corrupt*: counted and
//!   skipped. A sequence number that jumps means *dropped* frames: counted, and the sample
//!   indexes say exactly how many samples were lost. A gap frame means the sensor lost samples
//!   (a FIFO overrun or a failed read). A non-finite sample (which `train` would refuse) is
//!   counted and left out. Each of these ends a *segment*: samples on both sides of it are
//!   never joined as if continuous.
//! * **CSV** ([`Recording::to_csv`]): `t,x,y,z` (t in seconds from the first sample the
//!   board sent, so that missing samples leave a hole in t), or `t,segment,x,y,z` with a
//!   segment id `s0`, `s1`, … when there is more than one segment; train on it with
//!   `group=segment` so that no window spans a gap. Values are the f32 mg the board read,
//!   printed as the shortest text that parses back to the same bits.

use std::fmt::Write as _;

use firmware::record::{Body, Frame, GapReason, LOG_PREFIX, decode};

/// What went into a recording, and what went wrong.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Good frames (every kind).
    pub frames: u64,
    /// Samples kept.
    pub samples: u64,
    /// Lines with a frame that did not parse or failed its CRC.
    pub corrupt: u64,
    /// Frames missing between good ones (sequence-number jumps).
    pub dropped_frames: u64,
    /// Samples in the dropped frames (from the sample indexes).
    pub missing_samples: u64,
    /// Frames the board sent before the first good one seen (the stream was joined late).
    pub missed_at_start: u64,
    /// Gap frames: the sensor lost samples (an unknown number), with their reasons.
    pub sensor_gaps: Vec<GapReason>,
    /// Samples left out because a value was NaN or infinite.
    pub non_finite: u64,
    /// Frames that came with a sequence number already seen (repeated or out of order): skipped.
    pub out_of_order: u64,
    /// The end frame was seen.
    pub ended: bool,
    /// Frames with another rate than the first one: skipped.
    pub other_rate: u64,
}

/// Samples that follow one another without a gap.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Segment {
    /// Index of the first sample in the board's stream (counting the samples of dropped
    /// frames, not the samples the sensor lost).
    pub first: u64,
    /// x, y, z in mg.
    pub samples: Vec<[f32; 3]>,
}

/// A decoded recording: [`Decoder`] builds it line by line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recording {
    /// Sample rate, Hz (from the frames).
    pub rate_hz: Option<u16>,
    /// The segments with samples, in order.
    pub segments: Vec<Segment>,
    /// Counts.
    pub stats: Stats,
}

impl Recording {
    /// Places where two segments meet: gaps a CSV without a segment column would splice.
    pub fn gaps(&self) -> usize {
        self.segments.len().saturating_sub(1)
    }

    /// The CSV (see the module docs): `t,x,y,z`, or `t,segment,x,y,z` when there are gaps.
    pub fn to_csv(&self) -> String {
        let rate = f64::from(self.rate_hz.unwrap_or(1));
        let grouped = self.gaps() > 0;
        let mut s = String::from(if grouped {
            "t,segment,x,y,z\n"
        } else {
            "t,x,y,z\n"
        });
        for (k, seg) in self.segments.iter().enumerate() {
            for (i, [x, y, z]) in seg.samples.iter().enumerate() {
                let t = (seg.first + i as u64) as f64 / rate;
                // `{}` of f32/f64: the shortest decimal that parses back to the same bits.
                let _ = if grouped {
                    writeln!(s, "{t},s{k},{x},{y},{z}")
                } else {
                    writeln!(s, "{t},{x},{y},{z}")
                };
            }
        }
        s
    }

    /// A one-screen summary.
    pub fn summary(&self) -> String {
        let st = &self.stats;
        let rate = self.rate_hz.map_or("unknown".into(), |r| format!("{r} Hz"));
        let secs = self.rate_hz.map_or(String::new(), |r| {
            format!(" ({:.3} s)", st.samples as f64 / f64::from(r))
        });
        let mut reasons: Vec<String> = Vec::new();
        for r in &st.sensor_gaps {
            let name = r.to_string();
            if !reasons.contains(&name) {
                reasons.push(name);
            }
        }
        let mut out = format!(
            "frames    {} good, {} corrupt (skipped), {} dropped ({} samples missing)\n\
             sensor    {} gaps{}\n\
             samples   {} at {rate}{secs} in {} segment{}; {} non-finite left out\n",
            st.frames,
            st.corrupt,
            st.dropped_frames,
            st.missing_samples,
            st.sensor_gaps.len(),
            if reasons.is_empty() {
                String::new()
            } else {
                format!(" ({})", reasons.join(", "))
            },
            st.samples,
            self.segments.len(),
            if self.segments.len() == 1 { "" } else { "s" },
            st.non_finite,
        );
        if st.missed_at_start > 0 {
            let _ = writeln!(
                out,
                "start     joined late: {} frames before the first one seen",
                st.missed_at_start
            );
        }
        if st.out_of_order + st.other_rate > 0 {
            let _ = writeln!(
                out,
                "skipped   {} repeated or out-of-order frames, {} at another rate",
                st.out_of_order, st.other_rate
            );
        }
        let _ = write!(
            out,
            "end       {}",
            if st.ended {
                "the board's end frame"
            } else {
                "no end frame (stream stopped before the board did)"
            }
        );
        out
    }
}

/// Turns lines of text into a [`Recording`].
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    rec: Recording,
    /// The next sequence number and the next sample index (wrapping u32), after a good frame.
    next: Option<(u32, u32)>,
    /// Unwrapped index of the next sample.
    index: u64,
    /// The current segment has ended (a gap): the next sample starts another.
    broken: bool,
    /// Keep at most this many samples.
    limit: Option<u64>,
}

/// The bytes of a frame line `…rec=[52, 01, …]…`: `None` if there is no frame, `Some(Err)` if
/// it is not hex bytes.
pub fn frame_bytes(line: &str) -> Option<Result<Vec<u8>, ()>> {
    let at = line.find(LOG_PREFIX)?;
    let rest = &line[at + LOG_PREFIX.len()..];
    let parsed = (|| {
        let inner = rest.strip_prefix('[')?;
        let inner = &inner[..inner.find(']')?];
        inner
            .split(',')
            .map(|b| {
                let b = b.trim();
                (b.len() == 2).then_some(())?;
                u8::from_str_radix(b, 16).ok()
            })
            .collect::<Option<Vec<u8>>>()
    })();
    Some(parsed.ok_or(()))
}

impl Decoder {
    /// A decoder that keeps at most `limit` samples (all with `None`).
    pub fn new(limit: Option<u64>) -> Self {
        Decoder {
            limit,
            ..Default::default()
        }
    }

    /// True once `limit` samples are kept.
    pub fn full(&self) -> bool {
        self.limit.is_some_and(|l| self.rec.stats.samples >= l)
    }

    /// True once the end frame came (or the limit is reached): nothing more will be kept.
    pub fn done(&self) -> bool {
        self.rec.stats.ended || self.full()
    }

    /// Reads one line.
    pub fn line(&mut self, line: &str) {
        match frame_bytes(line) {
            None => {}
            Some(Err(())) => self.rec.stats.corrupt += 1,
            Some(Ok(bytes)) => match decode(&bytes) {
                Ok(f) => self.frame(&f),
                Err(_) => self.rec.stats.corrupt += 1,
            },
        }
    }

    /// Reads one good frame.
    pub fn frame(&mut self, f: &Frame) {
        if self.done() {
            return;
        }
        let st = &mut self.rec.stats;
        match self.rec.rate_hz {
            None => self.rec.rate_hz = Some(f.rate_hz),
            Some(r) if r != f.rate_hz => {
                st.other_rate += 1;
                return;
            }
            Some(_) => {}
        }
        match self.next {
            None => {
                st.missed_at_start = u64::from(f.seq);
                self.index = u64::from(f.first);
            }
            Some((seq, first)) => {
                let jump = f.seq.wrapping_sub(seq);
                if jump >= 1 << 31 {
                    st.out_of_order += 1;
                    return;
                }
                if jump > 0 {
                    let lost = f.first.wrapping_sub(first);
                    st.dropped_frames += u64::from(jump);
                    st.missing_samples += u64::from(lost);
                    self.index += u64::from(lost);
                    self.broken = true;
                }
            }
        }
        st.frames += 1;
        self.next = Some((
            f.seq.wrapping_add(1),
            f.first.wrapping_add(f.samples().len() as u32),
        ));
        match f.body {
            Body::Gap(reason) => {
                st.sensor_gaps.push(reason);
                self.broken = true;
            }
            Body::End => st.ended = true,
            Body::Samples { .. } => {
                for s in f.samples() {
                    if self.full() {
                        break;
                    }
                    self.sample(*s);
                }
            }
        }
    }

    fn sample(&mut self, s: [f32; 3]) {
        let index = self.index;
        self.index += 1;
        if !s.iter().all(|v| v.is_finite()) {
            self.rec.stats.non_finite += 1;
            self.broken = true;
            return;
        }
        if self.broken || self.rec.segments.is_empty() {
            self.broken = false;
            self.rec.segments.push(Segment {
                first: index,
                samples: Vec::new(),
            });
        }
        if let Some(seg) = self.rec.segments.last_mut() {
            seg.samples.push(s);
        }
        self.rec.stats.samples += 1;
    }

    /// The recording so far.
    pub fn finish(self) -> Recording {
        self.rec
    }
}

/// Decodes every line of `text`.
pub fn decode_text(text: &str, limit: Option<u64>) -> Recording {
    let mut d = Decoder::new(limit);
    for l in text.lines() {
        d.line(l);
        if d.done() {
            break;
        }
    }
    d.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use firmware::record::Recorder;

    /// Log lines of a stream of `n` samples (sample i = [i, −i, 0.5 + i]), gap frames before
    /// the samples in `gaps_before`, and the end frame.
    fn lines(n: u32, gaps_before: &[u32]) -> Vec<String> {
        let mut rec = Recorder::new(400);
        let mut out = Vec::new();
        let mut put = |f: &firmware::record::FrameBuf| {
            let hex: Vec<String> = f.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
            out.push(format!("INFO  rec=[{}]", hex.join(", ")));
        };
        for i in 0..n {
            if gaps_before.contains(&i) {
                let (p, g) = rec.gap(GapReason::Overrun);
                p.iter().chain([&g]).for_each(&mut put);
            }
            if let Some(f) = rec.push([i as f32, -(i as f32), 0.5 + i as f32]) {
                put(&f);
            }
        }
        let (p, e) = rec.finish();
        p.iter().chain([&e]).for_each(&mut put);
        out
    }

    #[test]
    fn a_clean_stream_is_one_segment_with_every_sample() {
        let mut l = lines(100, &[]);
        l.insert(3, "some other log line".into());
        let r = decode_text(&l.join("\n"), None);
        assert_eq!(r.gaps(), 0);
        assert_eq!(r.stats.samples, 100);
        assert_eq!(r.stats.frames, 8, "7 sample frames and the end");
        assert!(r.stats.ended && r.stats.corrupt == 0 && r.stats.dropped_frames == 0);
        let csv = r.to_csv();
        let mut it = csv.lines();
        assert_eq!(it.next(), Some("t,x,y,z"));
        assert_eq!(it.next(), Some("0,0,-0,0.5"));
        assert_eq!(it.nth(98), Some("0.2475,99,-99,99.5"));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn corrupt_and_dropped_frames_are_counted_and_split_segments() {
        let mut l = lines(100, &[]);
        // Flip one hex digit in frame 2 (samples 32..48): corrupt, and its samples missing.
        let pos = l[2].len() - 3;
        let c = if &l[2][pos..pos + 1] == "0" { "1" } else { "0" };
        l[2].replace_range(pos..pos + 1, c);
        // Drop frame 4 (samples 64..80).
        l.remove(4);
        let r = decode_text(&l.join("\n"), None);
        assert_eq!(r.stats.corrupt, 1);
        assert_eq!((r.stats.dropped_frames, r.stats.missing_samples), (2, 32));
        assert_eq!(r.stats.samples, 68);
        assert_eq!(r.gaps(), 2);
        let firsts: Vec<(u64, usize)> = r
            .segments
            .iter()
            .map(|s| (s.first, s.samples.len()))
            .collect();
        assert_eq!(firsts, [(0, 32), (48, 16), (80, 20)]);
        let csv = r.to_csv();
        assert!(csv.starts_with("t,segment,x,y,z\n0,s0,0,-0,0.5\n"), "{csv}");
        assert!(
            csv.contains("\n0.12,s1,48,-48,48.5\n0.1225,s1,49,"),
            "{csv}"
        );
        assert!(
            !csv.contains(",32,-32,"),
            "a corrupt frame's samples are not written"
        );
    }

    #[test]
    fn sensor_gaps_garbage_and_limits() {
        let l = lines(40, &[20]);
        let r = decode_text(&l.join("\n"), None);
        assert_eq!(r.stats.sensor_gaps, [GapReason::Overrun]);
        assert_eq!(r.gaps(), 1);
        assert_eq!(r.segments[1].first, 20);
        assert_eq!(r.stats.dropped_frames, 0);
        let r = decode_text("rec=[52, zz]\nrec=52 01\nrec=[]\n", None);
        assert_eq!(r.stats.corrupt, 3);
        assert!(r.segments.is_empty());
        let r = decode_text(&lines(100, &[]).join("\n"), Some(50));
        assert_eq!(r.stats.samples, 50);
        assert!(!r.stats.ended);
        // Joined late: the first frames are missing, and that is not a gap.
        let l = lines(64, &[]);
        let r = decode_text(&l[2..].join("\n"), None);
        assert_eq!((r.stats.missed_at_start, r.gaps()), (2, 0));
        assert_eq!(r.segments[0].first, 32);
        // A repeated frame is skipped.
        let mut l = lines(64, &[]);
        l.insert(2, l[1].clone());
        let r = decode_text(&l.join("\n"), None);
        assert_eq!(
            (r.stats.out_of_order, r.stats.samples, r.gaps()),
            (1, 64, 0)
        );
    }
}
