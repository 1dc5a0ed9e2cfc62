//! The Frey Face file (`frey_rawface.mat`) through a small reader of MATLAB 5 MAT-files.
//!
//! Why not the `matfile` crate: it reads this file, but it accepts a truncated file as a
//! file with no variables, gives no byte offsets in its errors, and brings eight crates
//! (nom, libflate, ...) for what is a few hundred lines here, over the flate2 we already use.
//!
//! # The format, as far as it is read here
//! (MathWorks, *MAT-File Format*, "Level 5 MAT-File Format".)
//!
//! * A 128-byte header: 116 bytes of text starting `MATLAB 5.0 MAT-file`, 8 bytes of
//!   subsystem offset, a 2-byte version, and the endianness indicator: the characters `IM`
//!   for a little-endian file, `MI` for a big-endian one.
//! * Then data elements, each an 8-byte tag (`u32` data type, `u32` byte count) and its data,
//!   padded to a multiple of 8 bytes. A *small* element packs a count of at most 4 bytes into
//!   the upper 16 bits of the first tag word and its data into the second word.
//! * `miCOMPRESSED` (15) elements hold one zlib-compressed element and are not padded.
//! * `miMATRIX` (14) elements hold sub-elements: array flags (`miUINT32`, class in the low
//!   byte, 0x0800 = complex), dimensions (`miINT32`), the name (`miINT8`), the real part and,
//!   when complex, the imaginary part. Data are column-major. The storage type of the real
//!   part may be narrower than the class (MATLAB writes a `double` matrix of small integers
//!   as `miUINT8`), so any numeric storage type is read, for any numeric class.
//!
//! Cells, structures, objects, characters and sparse matrices are skipped when they are not
//! the variable asked for, and refused when they are. Nothing here panics on any file
//! content: every length is checked against what is there, and a lying header never makes
//! an allocation larger than the data that actually arrives.

use std::io::Read;
use std::path::Path;

use super::{DataError, Dataset};

/// Data type of a compressed element.
const MI_COMPRESSED: u32 = 15;
/// Data type of a matrix element.
const MI_MATRIX: u32 = 14;
/// Pixels per Frey Face image (28 rows of 20).
const FREY_PIXELS: usize = 28 * 20;

/// What to do when the file is damaged.
const RECOPY: &str = "the file is damaged or cut short; copy it again";

/// One numeric variable of a MAT-file.
#[derive(Clone, Debug, PartialEq)]
pub struct MatMatrix {
    /// Variable name.
    pub name: String,
    /// MATLAB class: `double`, `single`, `int8`, `uint8`, ..., `uint64`.
    pub class: &'static str,
    /// Dimensions, at least two (`[rows, cols, ...]`).
    pub dims: Vec<usize>,
    /// Real part, column-major. Shape: `[cols][rows]` for two dimensions.
    pub values: Vec<f64>,
}

/// Read the numeric variable `name` from a MATLAB 5 (or v7, compressed) MAT-file.
///
/// Errors: the file cannot be read; it is shorter than the header, a v7.3 (HDF5) file or not
/// a MAT-file; an element is cut short or malformed (the message gives its byte offset, and
/// for data inside a compressed element the offset of that element too); there is no variable
/// `name` (the message lists those found); it is complex, sparse or not numeric.
pub fn read_mat_matrix(path: &Path, name: &str) -> Result<MatMatrix, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io("mat", path, e))?;
    parse_file(&bytes, name).map_err(|(what, fix)| DataError::malformed("mat", path, what, fix))
}

/// Load the Frey Face images: 1965 rows of 560 pixels in [0, 1] (`u8 / 255`) for the real
/// file, `image = Some((28, 20))`, no labels, `source = "frey:PATH"`.
///
/// The file holds one matrix `ff` of 560 x 1965, class `uint8` (`double` holding 0 to 255 is
/// accepted too); column `j` is image `j`, its pixels row-major, 28 rows of 20. A matrix with
/// another number of rows is read the same way (one row per column), with `image = None`
/// unless it has 560 rows.
///
/// Errors: those of [`read_mat_matrix`]; `ff` of another class, with more than two
/// dimensions (other than trailing ones), with no elements, or with a value outside 0..=255.
pub fn load_frey(path: &Path) -> Result<Dataset, DataError> {
    let m = read_mat_matrix(path, "ff").map_err(|e| rename(e, "frey"))?;
    let bad = |what: String, fix: &'static str| DataError::malformed("frey", path, what, fix);
    if m.class != "uint8" && m.class != "double" {
        return Err(bad(
            format!("variable 'ff' is of class {}, expected uint8", m.class),
            "use the original frey_rawface.mat",
        ));
    }
    if m.dims.iter().skip(2).any(|&d| d != 1) {
        return Err(bad(
            format!(
                "variable 'ff' has dimensions {:?}, expected 560 x 1965",
                m.dims
            ),
            "use the original frey_rawface.mat",
        ));
    }
    let (rows, cols) = (m.dims[0], m.dims[1]);
    if rows == 0 || cols == 0 {
        return Err(bad(
            format!("variable 'ff' is empty ({rows} x {cols})"),
            "use the original frey_rawface.mat",
        ));
    }
    if let Some(i) = m.values.iter().position(|v| !(0.0..=255.0).contains(v)) {
        return Err(bad(
            format!(
                "value {} of image {} pixel {} is outside 0..=255",
                m.values[i],
                i / rows,
                i % rows
            ),
            "use the original frey_rawface.mat",
        ));
    }
    Ok(Dataset {
        source: format!("frey:{}", path.display()),
        dim: rows,
        x: m.values.iter().map(|&v| (v / 255.0) as f32).collect(),
        labels: None,
        label_names: Vec::new(),
        image: (rows == FREY_PIXELS).then_some((28, 20)),
        window: None,
        channel_names: Vec::new(),
        groups: None,
        warnings: Vec::new(),
    })
}

/// The same error, reported as coming from the loader `kind`.
fn rename(e: DataError, kind: &'static str) -> DataError {
    match e {
        DataError::Io { path, err, .. } => DataError::Io { kind, path, err },
        DataError::Malformed {
            path, what, fix, ..
        } => DataError::Malformed {
            kind,
            path,
            what,
            fix,
        },
        other => other,
    }
}

/// A parse error: what is wrong (with its offset), and what to do.
type PErr = (String, &'static str);

/// Where a buffer came from, for offsets in messages.
#[derive(Clone, Copy)]
enum Ctx {
    /// The file itself.
    File,
    /// The data decompressed from the `miCOMPRESSED` element at this file offset.
    Compressed(usize),
}

impl Ctx {
    fn at(self, pos: usize) -> String {
        match self {
            Ctx::File => format!("at byte offset {pos}"),
            Ctx::Compressed(c) => {
                format!("at byte offset {pos} inside the compressed element at byte offset {c}")
            }
        }
    }
}

/// One data element: its type, its data and where its tag starts.
struct Element<'a> {
    ty: u32,
    data: &'a [u8],
    at: usize,
    /// Where `data` starts: 4 bytes into the tag of a small element, 8 otherwise.
    data_at: usize,
}

/// Reads data elements from a buffer in one byte order.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    big: bool,
    ctx: Ctx,
}

impl<'a> Reader<'a> {
    fn u32_at(&self, i: usize) -> u32 {
        let b = [
            self.buf[i],
            self.buf[i + 1],
            self.buf[i + 2],
            self.buf[i + 3],
        ];
        if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// The next element; `pos` moves past it and its padding.
    fn element(&mut self) -> Result<Element<'a>, PErr> {
        let at = self.pos;
        let left = self.buf.len() - at;
        if left < 8 {
            return Err((
                format!(
                    "truncated: {} ends {left} bytes into an 8-byte element tag",
                    self.ctx.at(at)
                ),
                RECOPY,
            ));
        }
        let first = self.u32_at(at);
        if first >> 16 != 0 {
            // Small element: type in the low half, count (<= 4) in the high half.
            let (ty, n) = (first & 0xffff, (first >> 16) as usize);
            if n > 4 {
                return Err((
                    format!(
                        "small element {} claims {n} bytes, at most 4 fit",
                        self.ctx.at(at)
                    ),
                    RECOPY,
                ));
            }
            self.pos = at + 8;
            return Ok(Element {
                ty,
                data: &self.buf[at + 4..at + 4 + n],
                at,
                data_at: at + 4,
            });
        }
        let n = self.u32_at(at + 4) as usize;
        if n > left - 8 {
            return Err((
                format!(
                    "truncated: element of type {first} {} announces {n} bytes but only {} follow",
                    self.ctx.at(at),
                    left - 8
                ),
                RECOPY,
            ));
        }
        let data = &self.buf[at + 8..at + 8 + n];
        let pad = if first == MI_COMPRESSED {
            0
        } else {
            (8 - n % 8) % 8
        };
        // Missing padding at the very end is harmless.
        self.pos = (at + 8 + n + pad).min(self.buf.len());
        Ok(Element {
            ty: first,
            data,
            at,
            data_at: at + 8,
        })
    }

    /// A reader over an element's data (sub-elements), offsets continuing the parent's. A
    /// small element (4 bytes of data at most) cannot hold sub-elements: refused.
    fn sub(&self, e: &Element<'a>) -> Result<Reader<'a>, PErr> {
        if e.data_at != e.at + 8 {
            return Err((
                format!(
                    "a small element of type {} {} holds {} bytes: too few for a matrix",
                    e.ty,
                    self.ctx.at(e.at),
                    e.data.len()
                ),
                RECOPY,
            ));
        }
        Ok(Reader {
            buf: &self.buf[..e.data_at + e.data.len()],
            pos: e.data_at,
            big: self.big,
            ctx: self.ctx,
        })
    }
}

/// The whole file: header, then elements until the variable `name`.
fn parse_file(bytes: &[u8], name: &str) -> Result<MatMatrix, PErr> {
    if bytes.len() < 128 {
        return Err((
            format!(
                "truncated: {} bytes, shorter than the 128-byte MAT-file header",
                bytes.len()
            ),
            RECOPY,
        ));
    }
    if bytes.starts_with(b"MATLAB 7.3") {
        return Err((
            "a MATLAB v7.3 (HDF5) MAT-file".into(),
            "save it again in MATLAB with save(FILE, 'ff', '-v7') or '-v6'",
        ));
    }
    if !bytes.starts_with(b"MATLAB 5.0") {
        let text: String = bytes[..16]
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        return Err((
            format!("not a MATLAB 5 MAT-file: header starts '{text}', not 'MATLAB 5.0'"),
            "check the path; MATLAB v4 and HDF5 MAT-files are not supported",
        ));
    }
    let big = match &bytes[126..128] {
        b"IM" => false,
        b"MI" => true,
        other => {
            return Err((
                format!(
                    "endianness indicator at byte offset 126 is {other:02x?}, not 'IM' or 'MI'"
                ),
                RECOPY,
            ));
        }
    };
    let mut r = Reader {
        buf: bytes,
        pos: 128,
        big,
        ctx: Ctx::File,
    };
    let mut found = Vec::new();
    while !r.done() {
        let e = r.element()?;
        let m = match e.ty {
            MI_MATRIX => matrix(&r.sub(&e)?, &e, name)?,
            MI_COMPRESSED => {
                let inner = inflate(e.data, big, e.at)?;
                let mut ir = Reader {
                    buf: &inner,
                    pos: 0,
                    big,
                    ctx: Ctx::Compressed(e.at),
                };
                let ie = ir.element()?;
                if ie.ty != MI_MATRIX {
                    continue;
                }
                matrix(&ir.sub(&ie)?, &ie, name)?
            }
            _ => continue,
        };
        match m {
            Found::Wanted(m) => return Ok(m),
            Found::Other(n) => found.push(n),
        }
    }
    let list = if found.is_empty() {
        "none".to_string()
    } else {
        found
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err((
        format!("no variable '{name}' (variables found: {list})"),
        "check that this is the right file",
    ))
}

/// Decompress the element inside a `miCOMPRESSED` one: its tag, then exactly as many bytes
/// as the tag announces (so the output never grows past what the stream really holds).
fn inflate(data: &[u8], big: bool, at: usize) -> Result<Vec<u8>, PErr> {
    let corrupt = |e: std::io::Error| {
        (
            format!("zlib data of the compressed element at byte offset {at} is corrupt: {e}"),
            RECOPY,
        )
    };
    let mut z = flate2::read::ZlibDecoder::new(data);
    let mut out = Vec::with_capacity(8);
    (&mut z).take(8).read_to_end(&mut out).map_err(corrupt)?;
    if out.len() < 8 {
        return Err((
            format!(
                "the compressed element at byte offset {at} holds {} bytes, less than one tag",
                out.len()
            ),
            RECOPY,
        ));
    }
    let first = [out[0], out[1], out[2], out[3]];
    let word = if big {
        u32::from_be_bytes(first)
    } else {
        u32::from_le_bytes(first)
    };
    if word >> 16 != 0 {
        // A small element needs no more bytes.
        return Ok(out);
    }
    let n4 = [out[4], out[5], out[6], out[7]];
    let n = if big {
        u32::from_be_bytes(n4)
    } else {
        u32::from_le_bytes(n4)
    } as u64;
    (&mut z).take(n).read_to_end(&mut out).map_err(corrupt)?;
    Ok(out)
}

/// A matrix element: the wanted variable, or the name of another.
enum Found {
    Wanted(MatMatrix),
    Other(String),
}

/// MATLAB class names by class number (1 = cell ... 15 = uint64).
fn class_name(c: u32) -> &'static str {
    match c {
        1 => "cell",
        2 => "struct",
        3 => "object",
        4 => "char",
        5 => "sparse",
        6 => "double",
        7 => "single",
        8 => "int8",
        9 => "uint8",
        10 => "int16",
        11 => "uint16",
        12 => "int32",
        13 => "uint32",
        14 => "int64",
        15 => "uint64",
        16 => "function",
        17 => "opaque",
        _ => "unknown",
    }
}

/// Parse a matrix element's sub-elements (reader `r` positioned on them).
fn matrix(r: &Reader<'_>, e: &Element<'_>, name: &str) -> Result<Found, PErr> {
    let mut r = Reader {
        buf: r.buf,
        pos: r.pos,
        big: r.big,
        ctx: r.ctx,
    };
    if e.data.is_empty() {
        // An empty matrix element (MATLAB writes these for empty variables).
        return Ok(Found::Other(String::new()));
    }
    let bad = |what: String| (what, RECOPY);
    let flags = r.element()?;
    if flags.ty != 6 || flags.data.len() != 8 {
        return Err(bad(format!(
            "array flags {} are type {} of {} bytes, expected miUINT32 (6) of 8 bytes",
            r.ctx.at(flags.at),
            flags.ty,
            flags.data.len()
        )));
    }
    let fr = Reader {
        buf: flags.data,
        pos: 0,
        big: r.big,
        ctx: r.ctx,
    };
    let word = fr.u32_at(0);
    let class = word & 0xff;
    let complex = word & 0x0800 != 0;
    let dims_el = r.element()?;
    if dims_el.ty != 5 || !dims_el.data.len().is_multiple_of(4) || dims_el.data.len() < 8 {
        return Err(bad(format!(
            "dimensions {} are type {} of {} bytes, expected miINT32 (5), at least 2 of them",
            r.ctx.at(dims_el.at),
            dims_el.ty,
            dims_el.data.len()
        )));
    }
    let dr = Reader {
        buf: dims_el.data,
        pos: 0,
        big: r.big,
        ctx: r.ctx,
    };
    let mut dims = Vec::with_capacity(dims_el.data.len() / 4);
    for i in 0..dims_el.data.len() / 4 {
        let d = dr.u32_at(4 * i) as i32;
        if d < 0 {
            return Err(bad(format!(
                "dimension {i} is negative ({d}) {}",
                r.ctx.at(dims_el.at)
            )));
        }
        dims.push(d as usize);
    }
    let name_el = r.element()?;
    if ![1, 2, 16].contains(&name_el.ty) {
        return Err(bad(format!(
            "array name {} is type {}, expected miINT8 (1)",
            r.ctx.at(name_el.at),
            name_el.ty
        )));
    }
    let var = String::from_utf8_lossy(name_el.data).into_owned();
    if var != name {
        return Ok(Found::Other(var));
    }
    let cname = class_name(class);
    if !(6..=15).contains(&class) {
        return Err((
            format!("variable '{var}' is a {cname} array (class {class}), not a numeric matrix"),
            "save the variable as a plain numeric matrix",
        ));
    }
    if complex {
        return Err((
            format!("variable '{var}' is complex"),
            "save its real part only",
        ));
    }
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| {
            bad(format!(
                "variable '{var}' has dimensions {dims:?} too large"
            ))
        })?;
    let re = r.element()?;
    let values = numeric(&re, r.big).ok_or_else(|| {
        bad(format!(
            "real part of '{var}' {} is of type {} with {} bytes, not a whole number of a numeric type",
            r.ctx.at(re.at),
            re.ty,
            re.data.len()
        ))
    })?;
    if values.len() != count {
        return Err(bad(format!(
            "real part of '{var}' {} has {} elements but its dimensions {dims:?} need {count}",
            r.ctx.at(re.at),
            values.len()
        )));
    }
    Ok(Found::Wanted(MatMatrix {
        name: var,
        class: cname,
        dims,
        values,
    }))
}

/// The values of a numeric element, or `None` if its type is not numeric or its byte count
/// not a multiple of the element size.
fn numeric(e: &Element<'_>, big: bool) -> Option<Vec<f64>> {
    let size = match e.ty {
        1 | 2 => 1,
        3 | 4 => 2,
        5..=7 => 4,
        9 | 12 | 13 => 8,
        _ => return None,
    };
    if !e.data.len().is_multiple_of(size) {
        return None;
    }
    let word = |c: &[u8]| -> u64 {
        let mut v = 0u64;
        if big {
            for &b in c {
                v = (v << 8) | b as u64;
            }
        } else {
            for &b in c.iter().rev() {
                v = (v << 8) | b as u64;
            }
        }
        v
    };
    let conv: fn(u64) -> f64 = match e.ty {
        1 => |w| w as u8 as i8 as f64,
        2 => |w| w as u8 as f64,
        3 => |w| w as u16 as i16 as f64,
        4 => |w| w as u16 as f64,
        5 => |w| w as u32 as i32 as f64,
        6 => |w| w as u32 as f64,
        7 => |w| f32::from_bits(w as u32) as f64,
        9 => f64::from_bits,
        12 => |w| w as i64 as f64,
        _ => |w| w as f64,
    };
    Some(e.data.chunks_exact(size).map(|c| conv(word(c))).collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// Bytes of a MAT-file element with padding to 8 (none for `miCOMPRESSED`).
    fn el(big: bool, ty: u32, data: &[u8]) -> Vec<u8> {
        let w = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut v = Vec::new();
        if data.len() <= 4 && ty != MI_MATRIX && ty != MI_COMPRESSED && !data.is_empty() {
            v.extend_from_slice(&w(((data.len() as u32) << 16) | ty));
            let mut d = data.to_vec();
            d.resize(4, 0);
            v.extend_from_slice(&d);
            return v;
        }
        v.extend_from_slice(&w(ty));
        v.extend_from_slice(&w(data.len() as u32));
        v.extend_from_slice(data);
        if ty != MI_COMPRESSED {
            while v.len() % 8 != 0 {
                v.push(0);
            }
        }
        v
    }

    /// A matrix variable: class number, dims, name, real part (storage type and bytes).
    pub(crate) fn var(
        big: bool,
        compressed: bool,
        class: u32,
        dims: &[i32],
        name: &str,
        ty: u32,
        data: &[u8],
    ) -> Vec<u8> {
        let w = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut body = el(big, 6, &[w(class), w(0)].concat());
        let dims: Vec<u8> = dims.iter().flat_map(|&d| w(d as u32)).collect();
        body.extend(el(big, 5, &dims));
        body.extend(el(big, 1, name.as_bytes()));
        body.extend(el(big, ty, data));
        let m = el(big, MI_MATRIX, &body);
        if !compressed {
            return m;
        }
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&m).unwrap();
        el(big, MI_COMPRESSED, &z.finish().unwrap())
    }

    /// A MAT-file: header then the given variables.
    pub(crate) fn mat(big: bool, vars: &[Vec<u8>]) -> Vec<u8> {
        let mut h = "MATLAB 5.0 MAT-file, Platform: test, Created on: fixture (host-trainer data::mat tests)".as_bytes().to_vec();
        h.resize(116, b' ');
        h.extend_from_slice(&[0; 8]);
        if big {
            h.extend_from_slice(&[0x01, 0x00, b'M', b'I']);
        } else {
            h.extend_from_slice(&[0x00, 0x01, b'I', b'M']);
        }
        for v in vars {
            h.extend_from_slice(v);
        }
        h
    }

    /// The 6 x 4 uint8 test matrix, column-major: column j = [10 j + i for i in 0..6] * 5.
    pub(crate) fn ff_bytes() -> Vec<u8> {
        (0..4u8)
            .flat_map(|j| (0..6u8).map(move |i| (10 * j + i) * 5))
            .collect()
    }

    fn load_bytes(b: &[u8]) -> Result<Dataset, DataError> {
        let t = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(t.path(), b).unwrap();
        load_frey(t.path())
    }

    /// Issue 12: a 136-byte file (the header, then a *small* miMATRIX element, plain or inside
    /// miCOMPRESSED) panicked in `Reader::sub` (a small element's data starts 4 bytes into its
    /// tag, not 8); now a named error.
    #[test]
    fn a_small_matrix_element_is_an_error_not_a_panic() {
        for big in [false, true] {
            let w = |v: u32| {
                if big {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                }
            };
            let small: Vec<u8> = [w((4 << 16) | MI_MATRIX), [1, 2, 3, 4]].concat();
            let plain = mat(big, std::slice::from_ref(&small));
            assert_eq!(plain.len(), 136);
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            z.write_all(&small).unwrap();
            let compressed = mat(big, &[el(big, MI_COMPRESSED, &z.finish().unwrap())]);
            for (what, f) in [("plain", plain), ("compressed", compressed)] {
                let e = load_bytes(&f).unwrap_err().to_string();
                assert!(e.contains("too few for a matrix"), "{what}, big {big}: {e}");
            }
        }
    }

    fn check_small(d: &Dataset) {
        assert_eq!((d.len(), d.dim), (4, 6));
        assert_eq!(d.image, None);
        assert_eq!(d.labels, None);
        assert_eq!(d.row(2)[3], (23.0 * 5.0 / 255.0) as f32);
        assert!(d.source.starts_with("frey:"));
    }

    #[test]
    fn reads_all_storage_variants() {
        let ff = ff_bytes();
        let dbl: Vec<u8> = ff.iter().flat_map(|&v| (v as f64).to_le_bytes()).collect();
        let other = var(false, false, 6, &[1, 1], "x", 9, &2.0f64.to_le_bytes());
        for big in [false, true] {
            for compressed in [false, true] {
                let f = mat(big, &[var(big, compressed, 9, &[6, 4], "ff", 2, &ff)]);
                check_small(&load_bytes(&f).unwrap());
            }
        }
        // A double matrix stored as uint8 (as MATLAB does) and as double.
        check_small(
            &load_bytes(&mat(false, &[var(false, true, 6, &[6, 4], "ff", 2, &ff)])).unwrap(),
        );
        let f = mat(
            false,
            &[
                other.clone(),
                var(false, false, 6, &[6, 4, 1], "ff", 9, &dbl),
            ],
        );
        check_small(&load_bytes(&f).unwrap());
        let dbl_be: Vec<u8> = ff.iter().flat_map(|&v| (v as f64).to_be_bytes()).collect();
        let f = mat(true, &[var(true, true, 6, &[6, 4], "ff", 9, &dbl_be)]);
        check_small(&load_bytes(&f).unwrap());
    }

    #[test]
    fn shipped_fixtures_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/frey");
        for f in ["ff_6x4.mat", "ff_6x4_compressed.mat"] {
            let d = load_frey(&dir.join(f)).unwrap();
            check_small(&d);
        }
    }

    /// The committed fixtures equal what this code generates (`REGENERATE_FIXTURES=1`
    /// rewrites them instead): `tests/fixtures/frey` (see `tests/fixtures/README.md`).
    #[test]
    fn fixtures_are_up_to_date() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/frey");
        let ff = ff_bytes();
        let plain = mat(false, &[var(false, false, 9, &[6, 4], "ff", 2, &ff)]);
        crate::data::check_fixture(&dir, "ff_6x4.mat", (plain).as_ref());
        let z = mat(false, &[var(false, true, 9, &[6, 4], "ff", 2, &ff)]);
        crate::data::check_fixture(&dir, "ff_6x4_compressed.mat", (z).as_ref());
    }

    #[test]
    fn frey_geometry() {
        let px: Vec<u8> = (0..560 * 3).map(|i| (i % 256) as u8).collect();
        let d = load_bytes(&mat(false, &[var(false, true, 9, &[560, 3], "ff", 2, &px)])).unwrap();
        assert_eq!((d.len(), d.dim, d.image), (3, 560, Some((28, 20))));
        assert_eq!(d.row(1)[0], (560 % 256) as f32 / 255.0);
    }

    fn err(b: &[u8]) -> String {
        load_bytes(b).unwrap_err().to_string()
    }

    #[test]
    fn malformed_files_are_refused() {
        let ff = ff_bytes();
        let good = mat(false, &[var(false, false, 9, &[6, 4], "ff", 2, &ff)]);
        let e = err(&good[..100]);
        assert!(
            e.starts_with("frey: ") && e.contains("shorter than the 128-byte"),
            "{e}"
        );
        let e = err(&good[..good.len() - 9]);
        assert!(
            e.contains("truncated") && e.contains("at byte offset"),
            "{e}"
        );
        let mut h = good.clone();
        h[..10].copy_from_slice(b"MATLAB 7.3");
        assert!(err(&h).contains("HDF5"));
        h[..10].copy_from_slice(b"hello worl");
        assert!(err(&h).contains("not a MATLAB 5 MAT-file"));
        let mut h = good.clone();
        h[126] = b'X';
        assert!(err(&h).contains("endianness indicator"));
        // Wrong class: int16 and char.
        let i16s: Vec<u8> = ff.iter().flat_map(|&v| (v as i16).to_le_bytes()).collect();
        let e = err(&mat(
            false,
            &[var(false, false, 10, &[6, 4], "ff", 3, &i16s)],
        ));
        assert!(e.contains("class int16, expected uint8"), "{e}");
        let e = err(&mat(
            false,
            &[var(false, false, 4, &[6, 4], "ff", 4, &i16s)],
        ));
        assert!(e.contains("is a char array"), "{e}");
        // Count mismatch, missing variable, values out of range.
        let e = err(&mat(false, &[var(false, false, 9, &[6, 5], "ff", 2, &ff)]));
        assert!(
            e.contains("has 24 elements but its dimensions [6, 5] need 30"),
            "{e}"
        );
        let e = err(&mat(
            false,
            &[var(false, true, 9, &[6, 4], "faces", 2, &ff)],
        ));
        assert!(
            e.contains("no variable 'ff' (variables found: 'faces')"),
            "{e}"
        );
        let big: Vec<u8> = (0..24)
            .flat_map(|i| (i as f64 * 20.0).to_le_bytes())
            .collect();
        let e = err(&mat(false, &[var(false, false, 6, &[6, 4], "ff", 9, &big)]));
        assert!(
            e.contains("value 260 of image 2 pixel 1 is outside 0..=255"),
            "{e}"
        );
        // A compressed element cut short.
        let c = mat(false, &[var(false, true, 9, &[6, 4], "ff", 2, &ff)]);
        let mut cut = c.clone();
        cut.truncate(c.len() - 6);
        let n = (cut.len() - 136) as u32;
        cut[132..136].copy_from_slice(&n.to_le_bytes());
        let e = err(&cut);
        assert!(e.contains("compressed element at byte offset 128"), "{e}");
    }

    #[test]
    fn garbage_never_panics() {
        let ff = ff_bytes();
        let files = [
            mat(false, &[var(false, false, 9, &[6, 4], "ff", 2, &ff)]),
            mat(true, &[var(true, true, 9, &[6, 4], "ff", 2, &ff)]),
        ];
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        for f in &files {
            for len in 0..f.len() {
                assert!(parse_file(&f[..len], "ff").is_err());
            }
            for _ in 0..3000 {
                let mut b = f.clone();
                for _ in 0..3 {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    let i = 120 + (s as usize) % (b.len() - 120);
                    b[i] = (s >> 40) as u8;
                }
                let _ = parse_file(&b, "ff");
            }
        }
    }
}
