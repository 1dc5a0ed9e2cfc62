//! CSV files: one row per line (wide), or a multichannel time series cut into windows (long).
//!
//! The first line must name the columns. Fields are trimmed; blank lines are skipped.
//!
//! * **Which columns.** The *label* column is `opts.label` (a name, or a 0-based index when no
//!   column has that name), else a column named `label` or `is_anomaly` (any case) if there is
//!   one. The *group* column is `opts.group` (name or index; long format only). A *timestamp*
//!   column is the first column when its name is `t`, `date`, `datetime`, or starts with
//!   `time` (`time`, `timestamp`, `time_ms`, ...). The *value* columns are `opts.columns`
//!   (names or 0-based indexes), else every other column whose field on the first data line is
//!   a number or empty (so a text column such as a subject id is left out, while a missing
//!   value is reported). Label, group and value columns must all differ.
//! * **Wide** (`opts.window` is `None`): each line is one row of the value columns.
//! * **Long** (`opts.window = Some(len)`): each line is one time step of C channels (the value
//!   columns); rows are windows of `len` steps taken every `hop` steps (default `len`), values
//!   interleaved `[t][c]`, so D = len · C. A window is normal (0) when all its steps are,
//!   else it takes the kind of its first anomalous step (`vae_nostd::window_label`).
//! * **Labels.** With `opts.normal` (`normal=A,B`), a label value in that list is normal (0)
//!   and every other distinct value is an anomaly kind, numbered 1, 2, ... in order of first
//!   appearance in the file; values may be text (`Standing`) or numbers. Values are compared
//!   as written (case matters), and numbers also as numbers (`normal=0` matches `0.0`; `1` and
//!   `1.0` are one kind). `label_names` is `["normal", kind 1 as first written, ...]`; a listed
//!   value that never occurs gives a warning (a training file may hold only normal labels).
//!   Without `opts.normal`, labels must be integers from 0 to 65535 (`1.0` is accepted): 0
//!   normal, k > 0 anomaly kind k, `label_names` `["normal", "1", ..., "max"]`; a text label
//!   is refused with the values the file holds. An empty label is refused either way, and
//!   `normal=` needs a label column.
//! * **Segments.** Without a group column the file is one segment. With one, consecutive lines
//!   with the same group value (any text: a recording, a subject, a series id) form a segment;
//!   a value that comes back later starts a new segment. Windows start at each segment's first
//!   step, every `hop` steps, and are complete windows inside the segment: none spans two.
//! * **Split options** (`opts.split`, `opts.shuffle`) travel with the spec for the code that
//!   splits the dataset; loading ignores them.
//! * **Steps in no window** are reported in [`Dataset::warnings`] (how many steps, in how many
//!   segments, and why: a segment's tail too short for another window, a segment shorter than
//!   one window, or the gaps when `hop` > `len`). Only a file with no window at all is an
//!   error.
//! * **Sampling rate** (long format). `opts.sample_rate_hz` when given; the timestamps are
//!   then not read (the column is still no value column). Else, with a timestamp column,
//!   every timestamp must parse and never decrease within a segment (it may restart in the
//!   next one), or the line is refused; the rate is Σ (steps − 1) / Σ (last − first) over the
//!   segments, and a zero duration is an error. Numeric timestamps are seconds, or milli-,
//!   micro- or nanoseconds when the column name ends in `ms`, `us` or `ns`; text timestamps
//!   are `YYYY-MM-DD HH:MM:SS[.fff]` (or with `T`, optional `Z`). With neither, the rate is
//!   recorded as 1 Hz and a warning says so. Wide files do not read timestamps.
//!
//! Every value must be a finite number that fits in f32; any line that breaks a rule is refused with its line number: the physical line in
//! the file (1 = the first line), counting blank lines, with `\n`, `\r\n` or a lone `\r` ending
//! a line; a record whose quoted field spans lines is named by the line it starts on.

use std::path::Path;

use super::{DataError, Dataset, Window};

/// How to read a CSV file (see the [module docs](self)). `Default` reads a wide file with all
/// numeric columns and an automatic label column.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CsvOptions {
    /// Time steps per window: `Some` reads a long-format time series, `None` one row per line.
    pub window: Option<usize>,
    /// Steps between window starts (default: `window`, i.e. no overlap). Needs `window`.
    pub hop: Option<usize>,
    /// Label column: a name, or a 0-based index.
    pub label: Option<String>,
    /// Value columns, by name or 0-based index, in this order.
    pub columns: Option<Vec<String>>,
    /// The label values that mean "normal" (label 0); every other value is an anomaly kind,
    /// numbered 1, 2, ... in order of first appearance. `None`: labels are integers, 0 normal.
    pub normal: Option<Vec<String>>,
    /// Sampling rate of a long-format series; estimated from a timestamp column if `None`.
    pub sample_rate_hz: Option<f32>,
    /// Group column (a name, or a 0-based index): consecutive lines with the same value are
    /// one segment, and windows never span two segments. Needs `window`.
    pub group: Option<String>,
    /// Train, validation and test fractions (each ≥ 0, summing to 1). Carried in the spec for
    /// whoever splits the dataset; [`load_csv`] ignores it.
    pub split: Option<[f64; 3]>,
    /// Whether to shuffle before splitting. Carried like `split`; [`load_csv`] ignores it.
    pub shuffle: Option<bool>,
}

impl CsvOptions {
    /// These options in the query syntax of [`parse_data_spec`](super::spec::parse_data_spec):
    /// `window=64&hop=32&label=is_anomaly&columns=a,b&rate=64&normal=0&group=subject&`
    /// `split=0.7,0.15,0.15&shuffle=true`, or `""` for the defaults.
    pub fn to_query(&self) -> String {
        let mut q = Vec::new();
        if let Some(w) = self.window {
            q.push(format!("window={w}"));
        }
        if let Some(h) = self.hop {
            q.push(format!("hop={h}"));
        }
        if let Some(l) = &self.label {
            q.push(format!("label={l}"));
        }
        if let Some(c) = &self.columns {
            q.push(format!("columns={}", c.join(",")));
        }
        if let Some(r) = self.sample_rate_hz {
            q.push(format!("rate={r}"));
        }
        if let Some(n) = &self.normal {
            q.push(format!("normal={}", n.join(",")));
        }
        if let Some(g) = &self.group {
            q.push(format!("group={g}"));
        }
        if let Some([a, b, c]) = self.split {
            // `{}` writes the shortest text that parses back to the same f64.
            q.push(format!("split={a},{b},{c}"));
        }
        if let Some(s) = self.shuffle {
            q.push(format!("shuffle={s}"));
        }
        q.join("&")
    }
}

/// What to do about a malformed line.
const FIX_LINE: &str = "fix that line of the file";
/// What to do about labels that are not anomaly kinds.
const FIX_LABEL: &str = "pass normal=NAME,NAME to say which labels are normal";
/// Largest integer label read without `normal=` (`label_names` has an entry for each).
const MAX_KIND: u32 = 65_535;
/// What to do about timestamps that give no sampling rate.
const FIX_TIME: &str = "fix the timestamp or pass rate=HZ";

/// Load a CSV file as described in the [module docs](self). `source` is `csv:PATH`, followed
/// by `?` and [`CsvOptions::to_query`] when any option is set.
///
/// Errors (with line numbers where they apply): the file cannot be read or is not UTF-8; it
/// is empty or its first line is all numbers (no header); a line has a different number of
/// fields than the header; a value is not a number, not finite or out of f32 range; a label is
/// empty, or without `normal` not an integer from 0 to 65535; `normal` without a label
/// column; a requested label, group or value column does not exist, or one column
/// has two roles; no value column is left; there are no data lines, or not enough for one
/// window in any segment; without `rate`, a timestamp that does not parse or goes back within
/// a segment, or timestamps spanning no time; `hop` or `group` without `window`, `window` or
/// `hop` of 0, a rate that is not finite and positive.
pub fn load_csv(path: &Path, opts: &CsvOptions) -> Result<Dataset, DataError> {
    let opt_err = |what: String| DataError::option("csv", path, what);
    let bad = |what: String, fix: &'static str| DataError::malformed("csv", path, what, fix);
    if opts.hop.is_some() && opts.window.is_none() {
        return Err(opt_err("hop= needs window= (long format)".into()));
    }
    if opts.group.is_some() && opts.window.is_none() {
        return Err(opt_err("group= needs window= (long format)".into()));
    }
    if opts.window == Some(0) || opts.hop == Some(0) {
        return Err(opt_err("window and hop must be at least 1".into()));
    }
    if let Some(r) = opts.sample_rate_hz
        && !(r.is_finite() && r > 0.0)
    {
        return Err(opt_err(format!(
            "rate={r}: must be a positive number of Hz"
        )));
    }

    let text = std::fs::read(path).map_err(|e| DataError::io("csv", path, e))?;
    let mut rdr = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(&text[..]);
    let mut rec = ::csv::StringRecord::new();
    let mut lines = Lines::new(&text);
    let mut read = |rdr: &mut ::csv::Reader<&[u8]>, rec: &mut ::csv::StringRecord| {
        let more = rdr
            .read_record(rec)
            .map_err(|e| csv_error(path, e, &mut Lines::new(&text)))?;
        Ok::<_, DataError>(more.then(|| lines.of(rec.position().map_or(0, |p| p.byte()))))
    };

    // Header.
    let Some(head_line) = read(&mut rdr, &mut rec)? else {
        return Err(bad(
            "empty file: no header row".into(),
            "the first line must name the columns",
        ));
    };
    let names: Vec<String> = rec.iter().map(str::to_string).collect();
    let ncols = names.len();
    if names.iter().all(|n| n.parse::<f64>().is_ok()) {
        return Err(bad(
            format!(
                "line {head_line} holds numbers ({}), not column names",
                rec.iter().collect::<Vec<_>>().join(",")
            ),
            "add a first line naming the columns",
        ));
    }
    let list = || names.join(", ");
    let find = |key: &str| -> Option<usize> {
        names
            .iter()
            .position(|n| n == key)
            .or_else(|| key.parse::<usize>().ok().filter(|&i| i < ncols))
    };

    let group = match &opts.group {
        Some(g) => Some(find(g).ok_or_else(|| {
            opt_err(format!(
                "no group column '{g}' (columns: {}); pass group=NAME or a 0-based index",
                list()
            ))
        })?),
        None => None,
    };
    let label = match &opts.label {
        Some(l) => Some(find(l).ok_or_else(|| {
            opt_err(format!(
                "no label column '{l}' (columns: {}); pass label=NAME or a 0-based index",
                list()
            ))
        })?),
        None => names.iter().enumerate().position(|(i, n)| {
            let n = n.to_ascii_lowercase();
            (n == "label" || n == "is_anomaly")
                && Some(i) != group
                && !opts
                    .columns
                    .as_ref()
                    .is_some_and(|c| c.iter().any(|k| k.eq_ignore_ascii_case(&n)))
        }),
    };
    if opts.normal.is_some() && label.is_none() {
        return Err(opt_err(format!(
            "normal= needs a label column, and none is named label or is_anomaly (columns: {}); \
             pass label=NAME or a 0-based index",
            list()
        )));
    }
    if let Some(g) = group
        && Some(g) == label
    {
        return Err(opt_err(format!(
            "column '{}' is both the label and the group column",
            names[g]
        )));
    }
    let explicit: Option<Vec<usize>> = match &opts.columns {
        Some(cols) => {
            let mut v = Vec::with_capacity(cols.len());
            for c in cols {
                let i = find(c).ok_or_else(|| {
                    opt_err(format!(
                        "no value column '{c}' (columns: {}); pass columns=NAME,NAME,... or 0-based indexes",
                        list()
                    ))
                })?;
                if Some(i) == label {
                    return Err(opt_err(format!(
                        "column '{}' is both the label and a value column",
                        names[i]
                    )));
                }
                if Some(i) == group {
                    return Err(opt_err(format!(
                        "column '{}' is both the group and a value column",
                        names[i]
                    )));
                }
                v.push(i);
            }
            if v.is_empty() {
                return Err(opt_err("columns= is empty".into()));
            }
            Some(v)
        }
        None => None,
    };
    let time = Some(0).filter(|&i| {
        is_time_name(&names[i])
            && Some(i) != label
            && Some(i) != group
            && !explicit.as_ref().is_some_and(|v| v.contains(&i))
    });
    // Timestamps are read only to estimate the rate of a long series.
    let clock_col = time.filter(|_| opts.window.is_some() && opts.sample_rate_hz.is_none());
    let time_scale = time.map_or(1.0, |i| {
        let n = names[i].to_ascii_lowercase();
        if n.ends_with("ms") {
            1e-3
        } else if n.ends_with("us") {
            1e-6
        } else if n.ends_with("ns") {
            1e-9
        } else {
            1.0
        }
    });

    // Data lines.
    let mut values: Option<Vec<usize>> = explicit;
    let mut x: Vec<f32> = Vec::new();
    let mut labels: Vec<u32> = Vec::new();
    let mut label_values = LabelValues::default();
    let mut steps = 0usize;
    // First step of each segment (one segment without a group column).
    let mut starts: Vec<usize> = Vec::new();
    let mut last_group = String::new();
    let mut clock = Clock::default();
    while let Some(line) = read(&mut rdr, &mut rec)? {
        if rec.len() != ncols {
            return Err(bad(
                format!(
                    "line {line} has {} fields but the header has {ncols}",
                    rec.len()
                ),
                FIX_LINE,
            ));
        }
        let cols = values.get_or_insert_with(|| {
            (0..ncols)
                .filter(|&i| Some(i) != label && Some(i) != time && Some(i) != group)
                .filter(|&i| rec[i].is_empty() || rec[i].parse::<f64>().is_ok())
                .collect()
        });
        if cols.is_empty() {
            return Err(opt_err(format!(
                "no numeric value column on line {line} (columns: {}); pass columns=NAME,...",
                list()
            )));
        }
        for &i in cols.iter() {
            x.push(value(&rec[i], line, &names[i]).map_err(|w| bad(w, FIX_LINE))?);
        }
        if let Some(i) = label {
            if rec[i].is_empty() {
                return Err(bad(
                    format!("line {line}, column '{}': the label is empty", names[i]),
                    FIX_LINE,
                ));
            }
            labels.push(label_values.id(&rec[i], line));
        }
        let new_segment = match group {
            Some(g) if steps == 0 || rec[g] != last_group => {
                last_group.clear();
                last_group.push_str(&rec[g]);
                true
            }
            Some(_) => false,
            None => steps == 0,
        };
        if new_segment {
            starts.push(steps);
            clock.new_segment();
        }
        if let Some(i) = clock_col {
            let t = parse_time(&rec[i]).ok_or_else(|| {
                bad(
                    format!(
                        "line {line}, column '{}': timestamp '{}' is neither a number nor \
                         YYYY-MM-DD HH:MM:SS[.fff]",
                        names[i], &rec[i]
                    ),
                    FIX_TIME,
                )
            })?;
            clock.tick(t * time_scale, line).map_err(|before| {
                bad(
                    format!(
                        "line {line}, column '{}': timestamp '{}' is earlier than the one on \
                         line {before}{}",
                        names[i],
                        &rec[i],
                        if group.is_some() {
                            " of the same segment"
                        } else {
                            ""
                        }
                    ),
                    FIX_TIME,
                )
            })?;
        }
        steps += 1;
    }
    let Some(cols) = values else {
        return Err(bad(
            "no data lines after the header".into(),
            "the file needs at least one line of values",
        ));
    };
    let c = cols.len();
    let channel_names: Vec<String> = cols.iter().map(|&i| names[i].clone()).collect();

    let mut source = format!("csv:{}", path.display());
    let q = opts.to_query();
    if !q.is_empty() {
        source = format!("{source}?{q}");
    }
    let mut warnings = Vec::new();
    let mut label_names = Vec::new();
    if let Some(i) = label {
        let map = label_values
            .kinds(
                opts.normal.as_deref(),
                &names[i],
                &mut label_names,
                &mut warnings,
            )
            .map_err(|w| bad(w, FIX_LABEL))?;
        for l in &mut labels {
            *l = map[*l as usize];
        }
    }
    let labels = label.map(|_| labels);
    let Some(len) = opts.window else {
        return Ok(Dataset {
            source,
            dim: c,
            x,
            labels,
            label_names,
            image: None,
            window: None,
            channel_names,
            groups: None,
            warnings,
        });
    };
    let hop = opts.hop.unwrap_or(len);

    // Windows, segment by segment, and the steps they leave out.
    let segments: Vec<(usize, usize)> = starts
        .iter()
        .zip(starts.iter().skip(1).chain([&steps]))
        .map(|(&s, &e)| (s, e))
        .collect();
    let mut wx = Vec::new();
    let mut wl = Vec::new();
    let mut wg: Vec<u32> = Vec::new();
    let (mut tail, mut tail_segs, mut short, mut short_segs, mut gaps) = (0, 0, 0, 0, 0);
    for (seg, &(s, e)) in segments.iter().enumerate() {
        let n_len = e - s;
        if n_len < len {
            short += n_len;
            short_segs += 1;
            continue;
        }
        let n = (n_len - len) / hop + 1;
        for w in 0..n {
            let a = s + w * hop;
            wx.extend_from_slice(&x[a * c..(a + len) * c]);
            wg.push(seg as u32);
            if let Some(l) = &labels {
                wl.push(vae_nostd::window_label(&l[a..a + len]));
            }
        }
        let left = n_len - ((n - 1) * hop + len);
        if left > 0 {
            tail += left;
            tail_segs += 1;
        }
        gaps += (n - 1) * hop.saturating_sub(len);
    }
    if wx.is_empty() {
        return Err(opt_err(match group {
            None => format!(
                "only {steps} time steps, fewer than one window of {len}; pass a smaller window="
            ),
            Some(g) => format!(
                "no segment of group column '{}' has a window of {len} time steps (longest: \
                 {} of {steps} steps in {} segments); pass a smaller window= or another group=",
                names[g],
                segments.iter().map(|(s, e)| e - s).max().unwrap_or(0),
                segments.len()
            ),
        }));
    }
    let why = if hop == len {
        format!("shorter than window={len}")
    } else {
        format!("too short for another window={len} at hop={hop}")
    };
    if tail > 0 {
        warnings.push(match group {
            None => format!(
                "{} at the end of the file {} in no window (the tail is {why})",
                count(tail, "time step"),
                is_are(tail),
            ),
            Some(_) => format!(
                "{} at the ends of {} {} in no window (each segment's tail is {why})",
                count(tail, "time step"),
                count(tail_segs, "segment"),
                is_are(tail),
            ),
        });
    }
    if short > 0
        && let Some(g) = group
    {
        warnings.push(format!(
            "{} in {} of group column '{}' {} in no window (each is shorter than \
             window={len})",
            count(short, "time step"),
            count(short_segs, "segment"),
            names[g],
            is_are(short),
        ));
    }
    if gaps > 0 {
        warnings.push(format!(
            "{} between windows {} in no window (hop={hop} is longer than window={len})",
            count(gaps, "time step"),
            is_are(gaps),
        ));
    }

    let sample_rate_hz = match (opts.sample_rate_hz, clock_col) {
        (Some(r), _) => r,
        (None, Some(i)) => clock.rate().map_err(|what| {
            bad(
                format!("column '{}': the timestamps {what}", names[i]),
                FIX_TIME,
            )
        })?,
        (None, None) => {
            warnings.push(
                "no timestamp column and no rate=: sample rate unknown, recorded as 1 Hz; \
                 pass rate=HZ"
                    .into(),
            );
            1.0
        }
    };
    Ok(Dataset {
        source,
        dim: len * c,
        x: wx,
        labels: labels.map(|_| wl),
        label_names,
        image: None,
        window: Some(Window {
            len,
            hop,
            channels: c,
            sample_rate_hz,
        }),
        channel_names,
        groups: group.map(|_| wg),
        warnings,
    })
}

/// `1 segment`, `3 segments`.
fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The verb after [`count`]`(n, ..)`.
fn is_are(n: usize) -> &'static str {
    if n == 1 { "is" } else { "are" }
}

/// Physical line numbers of a file's records. The `csv` crate's own `Position::line` does not
/// count skipped blank lines and counts `\r\n` as two line breaks, so lines are counted here:
/// `\n`, `\r\n` and a lone `\r` each end one line.
struct Lines<'a> {
    text: &'a [u8],
    /// Byte offset up to which line breaks have been counted.
    at: usize,
    /// Line number at byte `at` (1 = the first line).
    line: u64,
}

impl<'a> Lines<'a> {
    fn new(text: &'a [u8]) -> Self {
        Lines {
            text,
            at: 0,
            line: 1,
        }
    }

    /// The line on which the record at `byte` starts. The reader gives the offset just past
    /// the previous record, i.e. before any blank lines (and the `\n` of a `\r\n`), so those
    /// are skipped first. Offsets are expected to grow from call to call (a smaller one
    /// restarts the count).
    fn of(&mut self, byte: u64) -> u64 {
        let text = self.text;
        let mut b = usize::try_from(byte).map_or(text.len(), |b| b.min(text.len()));
        while b < text.len() && matches!(text[b], b'\n' | b'\r') {
            b += 1;
        }
        if b < self.at {
            (self.at, self.line) = (0, 1);
        }
        let at = self.at;
        let breaks = text[at..b]
            .iter()
            .enumerate()
            .filter(|&(i, &c)| c == b'\n' || (c == b'\r' && text.get(at + i + 1) != Some(&b'\n')));
        self.line += breaks.count() as u64;
        self.at = b;
        self.line
    }
}

/// A `csv` crate error as a [`DataError`].
fn csv_error(path: &Path, e: ::csv::Error, lines: &mut Lines) -> DataError {
    let line = e.position().map_or(0, |p| lines.of(p.byte()));
    match e.into_kind() {
        ::csv::ErrorKind::Io(err) => DataError::io("csv", path, err),
        ::csv::ErrorKind::Utf8 { .. } => DataError::malformed(
            "csv",
            path,
            format!("line {line} is not valid UTF-8"),
            "save the file as UTF-8",
        ),
        other => DataError::malformed("csv", path, format!("line {line}: {other:?}"), FIX_LINE),
    }
}

/// Whether a first column of this name holds timestamps.
fn is_time_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "t" || n == "date" || n == "datetime" || n.starts_with("time")
}

/// A value field as f32: a finite number within f32 range.
fn value(s: &str, line: u64, col: &str) -> Result<f32, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("line {line}, column '{col}': value '{s}' is not a number"))?;
    if !v.is_finite() {
        return Err(format!(
            "line {line}, column '{col}': value '{s}' is not finite"
        ));
    }
    let f = v as f32;
    if !f.is_finite() {
        return Err(format!(
            "line {line}, column '{col}': value '{s}' is outside the f32 range"
        ));
    }
    Ok(f)
}

/// A label field as an integer ≥ 0 that fits in u32 (`2`, `2.0`).
fn label_value(s: &str) -> Option<u32> {
    if let Ok(v) = s.parse::<u32>() {
        return Some(v);
    }
    match s.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.fract() == 0.0 && v <= u32::MAX as f64 => Some(v as u32),
        _ => None,
    }
}

/// A field as a finite number, if it is one.
fn number(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// The distinct values of a label column, in order of first appearance. Numbers compare as
/// numbers (`1`, `1.0` and `1e0` are one value, named as first written), text as written.
#[derive(Default)]
struct LabelValues {
    /// Each value as first written, and the line where it first appears.
    seen: Vec<(String, u64)>,
    /// Index in `seen` of each spelling met so far.
    by_text: std::collections::HashMap<String, u32>,
    /// Index in `seen` of each number (the bits of `v + 0.0`, so that -0 is 0).
    by_number: std::collections::HashMap<u64, u32>,
}

impl LabelValues {
    /// The index of the value `s` (on `line`), adding it if new.
    fn id(&mut self, s: &str, line: u64) -> u32 {
        if let Some(&i) = self.by_text.get(s) {
            return i;
        }
        let num = number(s).map(|v| (v + 0.0).to_bits());
        let i = match num.and_then(|k| self.by_number.get(&k)) {
            Some(&i) => i,
            None => {
                let i = self.seen.len() as u32;
                self.seen.push((s.to_string(), line));
                if let Some(k) = num {
                    self.by_number.insert(k, i);
                }
                i
            }
        };
        self.by_text.insert(s.to_string(), i);
        i
    }

    /// The label of each value (by index) and, into `names`, the name of each label: with a
    /// `normal` list, the values in it are 0 and the others 1, 2, ... in order of first
    /// appearance (a warning for each listed value that never occurs); without, every value
    /// must be an integer ≥ 0 and at most [`MAX_KIND`]. `Err`: what is wrong.
    fn kinds(
        &self,
        normal: Option<&[String]>,
        col: &str,
        names: &mut Vec<String>,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<u32>, String> {
        names.push("normal".into());
        let Some(normal) = normal else {
            let mut map = Vec::with_capacity(self.seen.len());
            for (s, line) in &self.seen {
                let v = label_value(s).ok_or_else(|| {
                    format!(
                        "line {line}, column '{col}': label '{s}' is not an integer >= 0 \
                         (labels in the file: {})",
                        self.some_values(8)
                    )
                })?;
                if v > MAX_KIND {
                    return Err(format!(
                        "line {line}, column '{col}': label {s} is above {MAX_KIND}, too many \
                         anomaly kinds"
                    ));
                }
                map.push(v);
            }
            let max = map.iter().copied().max().unwrap_or(0);
            names.extend((1..=max).map(|k| k.to_string()));
            return Ok(map);
        };
        let same = |value: &str, item: &str| {
            value == item || matches!((number(value), number(item)), (Some(a), Some(b)) if a == b)
        };
        let items: Vec<&str> = normal.iter().map(|n| n.trim()).collect();
        let mut map = Vec::with_capacity(self.seen.len());
        for (s, _) in &self.seen {
            if items.iter().any(|n| same(s, n)) {
                map.push(0);
            } else {
                map.push(names.len() as u32);
                names.push(s.clone());
            }
        }
        for n in items {
            if !self.seen.iter().any(|(s, _)| same(s, n)) {
                warnings.push(format!(
                    "normal label '{n}' never occurs in column '{col}' (labels in the file: {})",
                    self.some_values(8)
                ));
            }
        }
        Ok(map)
    }

    /// The first `k` values, quoted, and how many more there are.
    fn some_values(&self, k: usize) -> String {
        let mut s: Vec<String> = self
            .seen
            .iter()
            .take(k)
            .map(|(v, _)| format!("'{v}'"))
            .collect();
        if self.seen.len() > k {
            s.push(format!("and {} more", self.seen.len() - k));
        }
        s.join(", ")
    }
}

/// A timestamp in seconds: a number, or `YYYY-MM-DD HH:MM:SS[.fff]` (also with `T`, and an
/// optional trailing `Z`) since 1970-01-01 (the epoch only matters for differences).
fn parse_time(s: &str) -> Option<f64> {
    if let Ok(v) = s.parse::<f64>() {
        return v.is_finite().then_some(v);
    }
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, clock) = s.split_once([' ', 'T'])?;
    let mut d = date.split('-');
    let (y, m, dd): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&dd) {
        return None;
    }
    let mut c = clock.split(':');
    let (h, mi): (i64, i64) = (c.next()?.parse().ok()?, c.next()?.parse().ok()?);
    let sec: f64 = c.next().map_or(Some(0.0), |x| x.parse().ok())?;
    if c.next().is_some()
        || !(0..24).contains(&h)
        || !(0..60).contains(&mi)
        || !(0.0..61.0).contains(&sec)
    {
        return None;
    }
    // Days from civil (H. Hinnant's algorithm), proleptic Gregorian.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86_400.0 + (h * 3600 + mi * 60) as f64 + sec)
}

/// Time steps and seconds of a long series, pooled over its segments (timestamps may restart
/// in each segment, but never decrease within one).
#[derive(Default)]
struct Clock {
    /// First and last timestamp of the current segment, and the line of the last.
    span: Option<(f64, f64, u64)>,
    /// Steps − 1 summed over the segments.
    gaps: usize,
    /// Last − first timestamp summed over the finished segments.
    seconds: f64,
}

impl Clock {
    fn new_segment(&mut self) {
        if let Some((f, l, _)) = self.span.take() {
            self.seconds += l - f;
        }
    }

    /// The next timestamp (seconds) of the current segment, on `line`; `Err(line)` with the
    /// line of the one before if it is earlier.
    fn tick(&mut self, t: f64, line: u64) -> Result<(), u64> {
        match self.span {
            None => self.span = Some((t, t, line)),
            Some((_, l, before)) if t < l => return Err(before),
            Some((f, _, _)) => {
                self.span = Some((f, t, line));
                self.gaps += 1;
            }
        }
        Ok(())
    }

    /// Steps per second over all segments, or what is wrong (to follow "the timestamps").
    fn rate(mut self) -> Result<f32, String> {
        self.new_segment();
        if self.seconds.is_nan() || self.seconds <= 0.0 {
            return Err(
                "span no time (each segment's are all equal), so the sample rate is \
                        unknown"
                    .into(),
            );
        }
        let r = (self.gaps as f64 / self.seconds) as f32;
        if r.is_finite() && r > 0.0 {
            Ok(r)
        } else {
            Err(format!(
                "give a sample rate of {} Hz, out of range",
                self.gaps as f64 / self.seconds
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/csv")
            .join(name)
    }

    fn load_str(text: &str, opts: &CsvOptions) -> Result<Dataset, DataError> {
        let t = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(t.path(), text).unwrap();
        load_csv(t.path(), opts)
    }

    fn err(text: &str, opts: &CsvOptions) -> String {
        load_str(text, opts).unwrap_err().to_string()
    }

    fn long(window: usize, hop: Option<usize>) -> CsvOptions {
        CsvOptions {
            window: Some(window),
            hop,
            ..CsvOptions::default()
        }
    }

    /// The committed fixtures equal what this code generates (`REGENERATE_FIXTURES=1`
    /// rewrites them instead): `tests/fixtures/csv` (see `tests/fixtures/README.md`).
    /// Channels are named after the value columns, in the order read (pictures head their
    /// panels with them), for windows and for one-row-per-line tables.
    #[test]
    fn channel_names_are_the_value_columns() {
        let text = "time_ms,acc_z,label,acc_x\n0,1,0,2\n10,3,0,4\n20,5,0,6\n30,7,0,8\n";
        let ds = load_str(text, &long(2, None)).unwrap();
        assert_eq!(ds.window.unwrap().channels, 2);
        assert_eq!(ds.channel_names, ["acc_z", "acc_x"]);
        let opts = CsvOptions {
            columns: Some(vec!["acc_x".into(), "acc_z".into()]),
            ..long(2, None)
        };
        assert_eq!(
            load_str(text, &opts).unwrap().channel_names,
            ["acc_x", "acc_z"]
        );
        let wide = load_str(text, &CsvOptions::default()).unwrap();
        assert_eq!(wide.channel_names, ["acc_z", "acc_x"]);
        assert_eq!(wide.subset(&[1]).channel_names, ["acc_z", "acc_x"]);
    }

    #[test]
    fn fixtures_are_up_to_date() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/csv");
        // Daphnet look-alike: the header of the real S06R02E0.csv, 48 steps at 64 Hz with
        // millisecond timestamps cut as in that file, made-up gait-like milli-g values, and
        // steps 30 to 33 marked anomalous.
        let mut t = String::from(
            "timestamp,ankle_horiz_fwd,ankle_vert,ankle_horiz_lateral,leg_horiz_fwd,leg_vert,\
             leg_horiz_lateral,trunk_horiz_fwd,trunk_vert,trunk_horiz_lateral,is_anomaly\n",
        );
        let base = [
            100.0, 1000.0, 290.0, -20.0, 950.0, 300.0, 320.0, 940.0, -150.0,
        ];
        for i in 0..48u32 {
            let ms = 280_000 + i * 15_625 / 1000;
            t += &format!(
                "1970-01-01 00:{:02}:{:02}.{:03}",
                ms / 60_000,
                ms / 1000 % 60,
                ms % 1000
            );
            for (k, b) in base.iter().enumerate() {
                let phase = std::f64::consts::TAU * i as f64 / 32.0 + k as f64;
                t += &format!(",{}", (b + (40.0 + 5.0 * k as f64) * phase.sin()).round());
            }
            t += if (30..34).contains(&i) {
                ",1\n"
            } else {
                ",0\n"
            };
        }
        crate::data::check_fixture(&dir, "daphnet_like.csv", (t).as_ref());
        let head = "timestamp,acc_x,acc_y,acc_z\n";
        let ok = [
            "0.000,1,2,3\n",
            "0.010,4,5,6\n",
            "0.020,7,8,9\n",
            "0.030,1,2,3\n",
        ];
        let bad = |line: usize, text: &str| {
            let mut s = head.to_string();
            for (i, l) in ok.iter().enumerate() {
                s += if i + 2 == line { text } else { l };
            }
            s
        };
        crate::data::check_fixture(&dir, "ragged.csv", (bad(4, "0.020,7,8\n")).as_ref());
        crate::data::check_fixture(&dir, "nonnumeric.csv", (bad(3, "0.010,4,abc,6\n")).as_ref());
        crate::data::check_fixture(&dir, "nan.csv", (bad(5, "0.030,nan,2,3\n")).as_ref());
    }

    #[test]
    fn wide_rows_with_label() {
        let d = load_str(
            "a,b,label\n1,2,0\n3,4.5,1\n-1e3,0,2\n",
            &CsvOptions::default(),
        )
        .unwrap();
        assert_eq!((d.len(), d.dim), (3, 2));
        assert_eq!(d.x, [1.0, 2.0, 3.0, 4.5, -1000.0, 0.0]);
        assert_eq!(d.labels, Some(vec![0, 1, 2]));
        assert_eq!(d.label_names, ["normal", "1", "2"]);
        assert_eq!(d.window, None);
        // A UTF-8 byte-order mark does not end up in the first column's name.
        let o = CsvOptions {
            columns: Some(vec!["a".into()]),
            ..CsvOptions::default()
        };
        assert_eq!(load_str("\u{feff}a,b\n1,2\n", &o).unwrap().x, [1.0]);
        // Label by index, columns by name and index, in the order given.
        let o = CsvOptions {
            label: Some("0".into()),
            columns: Some(vec!["label".into(), "1".into()]),
            ..CsvOptions::default()
        };
        let d = load_str("a,b,label\n1,2,0\n3,4,1\n", &o).unwrap();
        assert_eq!(d.x, [0.0, 2.0, 1.0, 4.0]);
        assert_eq!(d.labels, Some(vec![1, 3]));
        assert!(
            d.source.ends_with("?label=0&columns=label,1"),
            "{}",
            d.source
        );
    }

    #[test]
    fn text_and_time_columns_are_left_out() {
        let d = load_str(
            "time_ms,subject,x,y\n0,s1,1,2\n10,s1,3,4\n20,s1,5,6\n30,s1,7,8\n",
            &long(2, Some(1)),
        )
        .unwrap();
        let w = d.window.unwrap();
        assert_eq!((w.len, w.hop, w.channels), (2, 1, 2));
        assert!(
            (w.sample_rate_hz - 100.0).abs() < 1e-3,
            "{}",
            w.sample_rate_hz
        );
        assert_eq!((d.len(), d.dim), (3, 4));
        assert_eq!(d.row(1), [3.0, 4.0, 5.0, 6.0]);
        assert_eq!(d.labels, None);
    }

    #[test]
    fn daphnet_lookalike_windows() {
        let p = fixture("daphnet_like.csv");
        let d = load_csv(&p, &long(16, Some(8))).unwrap();
        let w = d.window.unwrap();
        // 48 steps: windows start at 0, 8, 16, 24, 32.
        assert_eq!((d.len(), d.dim, w.channels), (5, 16 * 9, 9));
        assert!(
            (w.sample_rate_hz - 64.0).abs() < 0.2,
            "{}",
            w.sample_rate_hz
        );
        // The fixture marks steps 30..34 anomalous: windows 2 (16..32) and 3 (24..40) and
        // 4 (32..48) contain some of them.
        assert_eq!(d.labels, Some(vec![0, 0, 1, 1, 1]));
        // First step of window 1 is line 10 of the file (step 8).
        let first = std::fs::read_to_string(&p).unwrap();
        let line: Vec<f32> = first
            .lines()
            .nth(9)
            .unwrap()
            .split(',')
            .skip(1)
            .take(9)
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(&d.row(1)[..9], &line[..]);
        // Rate from the options wins; wide format reads 48 rows of 9.
        let o = CsvOptions {
            sample_rate_hz: Some(50.0),
            ..long(48, None)
        };
        assert_eq!(
            load_csv(&p, &o).unwrap().window.unwrap().sample_rate_hz,
            50.0
        );
        let d = load_csv(&p, &CsvOptions::default()).unwrap();
        assert_eq!((d.len(), d.dim), (48, 9));
    }

    #[test]
    fn malformed_fixtures_are_refused() {
        let e = load_csv(&fixture("ragged.csv"), &CsvOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 4 has 3 fields but the header has 4"),
            "{e}"
        );
        let e = load_csv(&fixture("nonnumeric.csv"), &CsvOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 3, column 'acc_y': value 'abc' is not a number"),
            "{e}"
        );
        let e = load_csv(&fixture("nan.csv"), &CsvOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("csv: ")
                && e.contains("line 5, column 'acc_x': value 'nan' is not finite"),
            "{e}"
        );
    }

    #[test]
    fn malformed_text_is_refused() {
        let d = CsvOptions::default();
        assert!(err("", &d).contains("empty file"));
        assert!(err("1,2\n3,4\n", &d).contains("not column names"));
        assert!(err("a,b\n", &d).contains("no data lines"));
        assert!(err("a,b\n1,inf\n", &d).contains("value 'inf' is not finite"));
        assert!(err("a,b\n1,1e300\n", &d).contains("outside the f32 range"));
        assert!(err("a,b\n1,\n", &d).contains("value '' is not a number"));
        assert!(err("a,label\n1,-1\n", &d).contains("label '-1' is not an integer"));
        assert!(err("a,label\n1,0.5\n", &d).contains("label '0.5'"));
        assert!(err("s,t\nx,y\n", &d).contains("no numeric value column"));
        let o = CsvOptions {
            label: Some("is_anomaly".into()),
            ..d.clone()
        };
        let e = err("a,b\n1,2\n", &o);
        assert!(
            e.contains("no label column 'is_anomaly' (columns: a, b)"),
            "{e}"
        );
        let o = CsvOptions {
            columns: Some(vec!["c".into()]),
            ..d.clone()
        };
        assert!(err("a,b\n1,2\n", &o).contains("no value column 'c'"));
        let e = err("a,b\n1,2\n3,4\n", &long(3, None));
        assert!(
            e.contains("only 2 time steps, fewer than one window of 3"),
            "{e}"
        );
        assert!(
            err(
                "a\n1\n",
                &CsvOptions {
                    hop: Some(2),
                    ..d.clone()
                }
            )
            .contains("needs window")
        );
        assert!(err("a\n1\n", &long(0, None)).contains("at least 1"));
        let t = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(t.path(), b"a,b\n1,2\n1,\xff\n").unwrap();
        let e = load_csv(t.path(), &d).unwrap_err().to_string();
        assert!(e.contains("line 3 is not valid UTF-8"), "{e}");
        let e = load_csv(Path::new("/nonexistent/x.csv"), &d)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read"), "{e}");
    }

    #[test]
    fn line_numbers_are_physical_lines() {
        let d = CsvOptions::default();
        // Blank lines before the bad line count.
        let e = err("a,b\n\n1,2\n\n\n3,x\n", &d);
        assert!(e.contains("line 6, column 'b': value 'x'"), "{e}");
        let e = err("a,b\n\n1,2\n\n3\n", &d);
        assert!(e.contains("line 5 has 1 fields"), "{e}");
        // CRLF: one line break each, also with blank lines.
        let e = err("a,b\r\n1,2\r\n3,4\r\n5,x\r\n", &d);
        assert!(e.contains("line 4, column 'b': value 'x'"), "{e}");
        let e = err("a,b\r\n\r\n1,2\r\n\r\n5,x\r\n", &d);
        assert!(e.contains("line 5, column 'b': value 'x'"), "{e}");
        // Old Mac line ends (lone CR).
        let e = err("a,b\r1,2\r5,x\r", &d);
        assert!(e.contains("line 3, column 'b': value 'x'"), "{e}");
        // A quoted field spanning two lines: the next record starts two lines later.
        let e = err("a,b\n\"x\ny\",2\n3,4,5\n", &CsvOptions::default());
        assert!(e.contains("line 4 has 3 fields"), "{e}");
        let ab = CsvOptions {
            columns: Some(vec!["a".into(), "b".into()]),
            ..d.clone()
        };
        let e = err("a,b\n1,2\n1,\"x\ny\"\n", &ab);
        assert!(e.contains("line 3, column 'b': value 'x\ny'"), "{e}");
        // Blank lines before the header; invalid UTF-8 after CRLF lines.
        let e = err("\n\n1,2\n", &d);
        assert!(e.contains("line 3 holds numbers (1,2)"), "{e}");
        let t = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(t.path(), b"a,b\r\n\r\n1,2\r\n1,\xff\r\n").unwrap();
        let e = load_csv(t.path(), &d).unwrap_err().to_string();
        assert!(e.contains("line 4 is not valid UTF-8"), "{e}");
    }

    #[test]
    fn label_of_a_window_is_its_first_anomaly() {
        let text = "t,x,label\n0,1,0\n1,2,0\n2,3,2\n3,4,0\n4,5,1\n5,6,0\n6,7,1\n7,8,2\n";
        let d = load_str(text, &long(2, None)).unwrap();
        assert_eq!(d.labels, Some(vec![0, 2, 1, 1]));
        assert_eq!(d.x, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        assert_eq!(d.window.unwrap().sample_rate_hz, 1.0);
        // Integer labels without normal=: 0 is normal, names up to the largest label.
        assert_eq!(d.label_names, ["normal", "1", "2"]);
        let d = load_str("a,label\n1,0\n2,0.0\n", &CsvOptions::default()).unwrap();
        assert_eq!(
            (d.labels, d.label_names),
            (Some(vec![0, 0]), vec!["normal".into()])
        );
    }

    fn normal(list: &[&str], opts: CsvOptions) -> CsvOptions {
        CsvOptions {
            normal: Some(list.iter().map(|s| s.to_string()).collect()),
            ..opts
        }
    }

    #[test]
    fn text_labels_with_a_list_of_normal_ones() {
        let text = "t,x,activity\n0,1,Standing\n1,2,Standing\n2,3,Falling\n3,4,Walking\n\
                    4,5,Walking\n5,6,Standing\n6,7, Falling \n7,8,Standing\n";
        let o = normal(&["Standing", " Lying "], long(2, None));
        let d = load_str(
            text,
            &CsvOptions {
                label: Some("activity".into()),
                ..o
            },
        )
        .unwrap();
        // Kinds in order of first appearance; a window takes its first anomalous step's kind.
        assert_eq!(d.label_names, ["normal", "Falling", "Walking"]);
        assert_eq!(d.labels, Some(vec![0, 1, 2, 1]));
        assert_eq!(d.x, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        assert_eq!(
            d.warnings,
            ["normal label 'Lying' never occurs in column 'activity' \
              (labels in the file: 'Standing', 'Falling', 'Walking')"]
        );
        assert!(
            d.source
                .ends_with("?window=2&label=activity&normal=Standing, Lying "),
            "{}",
            d.source
        );
        // Wide format, automatic label column: one row per line.
        let d = load_str(
            "x,label\n1,ok\n2,bad\n3,ok\n4,worse\n",
            &normal(&["ok"], CsvOptions::default()),
        )
        .unwrap();
        assert_eq!(d.labels, Some(vec![0, 1, 0, 2]));
        assert_eq!(d.label_names, ["normal", "bad", "worse"]);
        assert!(d.warnings.is_empty());
    }

    #[test]
    fn numeric_labels_with_a_list_of_normal_ones() {
        // normal=0 matches 0.0 and -0; 2 and 2.0 are one kind, named as first written.
        let text = "x,label\n1,0.0\n2,2\n3,1\n4,2.0\n5,-0\n6,7\n";
        let d = load_str(text, &normal(&["0"], CsvOptions::default())).unwrap();
        assert_eq!(d.labels, Some(vec![0, 1, 2, 1, 0, 3]));
        assert_eq!(d.label_names, ["normal", "2", "1", "7"]);
        // Several normal values, as text or as numbers.
        let d = load_str(text, &normal(&["0", "7.0", "1"], CsvOptions::default())).unwrap();
        assert_eq!(d.labels, Some(vec![0, 1, 0, 1, 0, 0]));
        assert_eq!(d.label_names, ["normal", "2"]);
        // A file with only normal labels (a training file) is fine.
        let d = load_str(
            "x,label\n1,0\n2,0\n",
            &normal(&["0"], CsvOptions::default()),
        )
        .unwrap();
        assert_eq!((d.label_names.len(), d.warnings.len()), (1, 0));
    }

    #[test]
    fn text_labels_need_a_list_of_normal_ones() {
        let mut text = String::from("x,label\n1,0\n\n");
        for (i, l) in [
            "Sit", "Stand", "Walk", "Run", "Jump", "Lie", "Fall", "Climb", "Ride",
        ]
        .iter()
        .enumerate()
        {
            text += &format!("{i},{l}\n");
        }
        let e = err(&text, &CsvOptions::default());
        assert!(
            e.contains(
                "line 4, column 'label': label 'Sit' is not an integer >= 0 (labels in the \
                 file: '0', 'Sit', 'Stand', 'Walk', 'Run', 'Jump', 'Lie', 'Fall', and 2 more); \
                 pass normal=NAME,NAME to say which labels are normal"
            ),
            "{e}"
        );
        let e = err("x,label\n1,0\n2,\n", &CsvOptions::default());
        assert!(
            e.contains("line 3, column 'label': the label is empty"),
            "{e}"
        );
        let e = err("x,label\n1,0\n2,70000\n", &CsvOptions::default());
        assert!(
            e.contains("line 3, column 'label': label 70000 is above 65535")
                && e.ends_with("pass normal=NAME,NAME to say which labels are normal"),
            "{e}"
        );
        // With normal=, any value is fine, but there must be a label column.
        assert!(load_str("x,label\n1,0\n2,70000\n", &normal(&["0"], long(1, None))).is_ok());
        let e = err("x,y\n1,0\n", &normal(&["0"], CsvOptions::default()));
        assert!(
            e.contains(
                "normal= needs a label column, and none is named label or is_anomaly \
                        (columns: x, y); pass label=NAME"
            ),
            "{e}"
        );
    }

    fn grouped(window: usize, hop: Option<usize>, group: &str) -> CsvOptions {
        CsvOptions {
            group: Some(group.into()),
            ..long(window, hop)
        }
    }

    #[test]
    fn windows_stay_inside_their_group() {
        // Segments a (5 steps), b (2), a again (4): the second a is a segment of its own.
        let text = "t,id,x\n0,a,1\n1,a,2\n2,a,3\n3,a,4\n4,a,5\n\
                    0,b,6\n1,b,7\n0,a,8\n1,a,9\n2,a,10\n3,a,11\n";
        let d = load_str(text, &grouped(2, None, "id")).unwrap();
        assert_eq!(d.x, [1.0, 2.0, 3.0, 4.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0]);
        assert_eq!(d.dim, 2);
        assert_eq!(d.window.unwrap().channels, 1);
        assert_eq!(
            d.warnings,
            ["1 time step at the ends of 1 segment is in no window \
              (each segment's tail is shorter than window=2)"]
        );
        // Overlapping windows, by column index; segment b is too short.
        let d = load_str(text, &grouped(3, Some(1), "1")).unwrap();
        let starts: Vec<f32> = d.x.chunks(3).map(|w| w[0]).collect();
        assert_eq!(starts, [1.0, 2.0, 3.0, 8.0, 9.0]);
        assert_eq!(
            d.warnings,
            [
                "2 time steps in 1 segment of group column 'id' are in no window \
              (each is shorter than window=3)"
            ]
        );
        assert!(
            d.source.ends_with("?window=3&hop=1&group=1"),
            "{}",
            d.source
        );
        // The rate is pooled over segments whose timestamps restart: (4 + 1 + 3) steps after
        // the first in (4 + 1 + 3) time units.
        assert_eq!(d.window.unwrap().sample_rate_hz, 1.0);
        let text_ms = text.replacen("t,", "time_ms,", 1);
        let d = load_str(&text_ms, &grouped(2, None, "id")).unwrap();
        assert_eq!(d.window.unwrap().sample_rate_hz, 1000.0);
        // Tails of several segments, with window = hop.
        let d = load_str(text, &grouped(3, None, "id")).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(
            d.warnings,
            [
                "3 time steps at the ends of 2 segments are in no window \
                 (each segment's tail is shorter than window=3)",
                "2 time steps in 1 segment of group column 'id' are in no window \
                 (each is shorter than window=3)"
            ]
        );
        // No segment long enough for one window.
        let e = err(text, &grouped(6, None, "id"));
        assert!(
            e.contains(
                "no segment of group column 'id' has a window of 6 time steps \
                 (longest: 5 of 11 steps in 3 segments)"
            ),
            "{e}"
        );
        // Misused group columns.
        let e = err(
            text,
            &CsvOptions {
                group: Some("id".into()),
                ..CsvOptions::default()
            },
        );
        assert!(e.contains("group= needs window="), "{e}");
        assert!(err(text, &grouped(2, None, "subject")).contains("no group column 'subject'"));
        let o = CsvOptions {
            columns: Some(vec!["x".into(), "id".into()]),
            ..grouped(2, None, "id")
        };
        assert!(err(text, &o).contains("column 'id' is both the group and a value column"));
        let o = CsvOptions {
            label: Some("id".into()),
            ..grouped(2, None, "id")
        };
        assert!(err(text, &o).contains("column 'id' is both the label and the group column"));
    }

    #[test]
    fn steps_in_no_window_are_reported() {
        let mut text = String::from("t,x\n");
        for i in 0..10 {
            text += &format!("{i},{i}\n");
        }
        // Window = hop: one tail.
        let d = load_str(&text, &long(4, None)).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(
            d.warnings,
            ["2 time steps at the end of the file are in no window \
              (the tail is shorter than window=4)"]
        );
        // Overlap: the tail after the last window is shorter than a hop.
        let d = load_str(&text, &long(4, Some(3))).unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d.warnings, Vec::<String>::new());
        let d = load_str(&text, &long(5, Some(3))).unwrap();
        assert_eq!(
            d.warnings,
            ["2 time steps at the end of the file are in no window \
              (the tail is too short for another window=5 at hop=3)"]
        );
        // Gaps between windows when hop > window: windows 0..2, 4..6, 8..10.
        let d = load_str(&text, &long(2, Some(4))).unwrap();
        assert_eq!(d.x, [0.0, 1.0, 4.0, 5.0, 8.0, 9.0]);
        assert_eq!(
            d.warnings,
            ["4 time steps between windows are in no window (hop=4 is longer than window=2)"]
        );
        // Everything covered: no warning.
        assert!(load_str(&text, &long(5, None)).unwrap().warnings.is_empty());
        // Warnings travel with subsets.
        let d = load_str(&text, &long(4, None)).unwrap();
        assert_eq!(d.subset(&[1]).warnings, d.warnings);
    }

    #[test]
    fn timestamps_give_the_rate_or_an_error() {
        // A timestamp that does not parse, or goes backwards: error with the line.
        let e = err("time,x\n0,1\n\n0.5,2\nsoon,3\n", &long(1, None));
        assert!(
            e.contains("line 5, column 'time': timestamp 'soon' is neither a number nor")
                && e.ends_with("fix the timestamp or pass rate=HZ"),
            "{e}"
        );
        let e = err("time,x\r\n0,1\r\n2,2\r\n1,3\r\n", &long(1, None));
        assert!(
            e.contains("line 4, column 'time': timestamp '1' is earlier than the one on line 3;")
                && e.ends_with("pass rate=HZ"),
            "{e}"
        );
        // Within a segment only.
        let text = "time,g,x\n5,a,1\n6,a,2\n0,b,3\n1,b,4\n0.5,b,5\n";
        let e = err(text, &grouped(1, None, "g"));
        assert!(
            e.contains(
                "line 6, column 'time': timestamp '0.5' is earlier than the one on line 5 \
                 of the same segment"
            ),
            "{e}"
        );
        // Equal timestamps: no duration.
        let e = err("time,x\n3,1\n3,2\n", &long(1, None));
        assert!(
            e.contains("column 'time': the timestamps span no time")
                && e.ends_with("fix the timestamp or pass rate=HZ"),
            "{e}"
        );
        // rate= wins: the timestamps are not even read, and still not a value column.
        let o = CsvOptions {
            sample_rate_hz: Some(25.0),
            ..long(1, None)
        };
        let d = load_str("time,x\n0,1\n2,2\nsoon,3\n", &o).unwrap();
        assert_eq!((d.x.len(), d.window.unwrap().sample_rate_hz), (3, 25.0));
        assert!(d.warnings.is_empty());
        // Wide files do not read timestamps.
        assert!(load_str("time,x\n0,1\nsoon,3\n", &CsvOptions::default()).is_ok());
        // Neither timestamps nor rate=: 1 Hz, said so.
        let d = load_str("x\n1\n2\n", &long(1, None)).unwrap();
        assert_eq!(d.window.unwrap().sample_rate_hz, 1.0);
        assert_eq!(
            d.warnings,
            [
                "no timestamp column and no rate=: sample rate unknown, recorded as 1 Hz; \
              pass rate=HZ"
            ]
        );
        assert!(load_str("x\n1\n2\n", &o).unwrap().warnings.is_empty());
    }

    #[test]
    fn timestamps_parse() {
        assert_eq!(parse_time("1970-01-01 00:00:01.5"), Some(1.5));
        assert_eq!(parse_time("1970-01-02T00:01:00Z"), Some(86_460.0));
        assert_eq!(parse_time("2000-03-01 00:00:00"), Some(951_868_800.0));
        assert_eq!(parse_time("12.25"), Some(12.25));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("2000-13-01 00:00:00"), None);
    }

    #[test]
    fn garbage_never_panics() {
        let base = std::fs::read(fixture("daphnet_like.csv")).unwrap();
        let mut s = 0x1234_5678_9abc_def1u64;
        for _ in 0..300 {
            let mut b = base.clone();
            for _ in 0..4 {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let i = (s as usize) % b.len();
                let pool = b",\n\"x0.-e ";
                b[i] = pool[(s >> 40) as usize % pool.len()];
            }
            b.truncate((s >> 20) as usize % (b.len() + 1));
            let t = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(t.path(), &b).unwrap();
            let _ = load_csv(t.path(), &long(4, Some(3)));
            let _ = load_csv(t.path(), &CsvOptions::default());
        }
    }
}
