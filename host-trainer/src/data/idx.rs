//! MNIST in its IDX files, plain or gzip-compressed, and the two usual binarizations.
//!
//! An IDX file is a big-endian `u32` magic `0x0000TTNN` (`TT` = element type, `0x08` for
//! unsigned bytes; `NN` = number of dimensions), one big-endian `u32` per dimension, then the
//! elements in row-major order. MNIST images are `0x00000803` (`[n][28][28]`), labels
//! `0x00000801` (`[n]`). Files whose first two bytes are the gzip magic `1f 8b` are decompressed
//! on the fly (flate2), whatever their name.
//!
//! Every length is checked against the header: a file that ends early or goes on after the
//! last element is refused, as are header sizes that would not fit in memory. Nothing here
//! panics on any file content.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::{DataError, Dataset};

/// IDX element type of unsigned bytes (the only one MNIST uses, and the only one read here).
const IDX_U8: u8 = 0x08;
/// Magic of an MNIST images file: unsigned bytes, 3 dimensions.
pub const MAGIC_IMAGES: u32 = 0x0000_0803;
/// Magic of an MNIST labels file: unsigned bytes, 1 dimension.
pub const MAGIC_LABELS: u32 = 0x0000_0801;
/// The largest data part accepted (4 GiB): anything larger is a corrupt header.
const MAX_IDX_BYTES: usize = 1 << 32;

/// What to do when an MNIST file is damaged.
const REDOWNLOAD: &str = "re-download the file";
/// What to do when a file is not what its name says.
const WRONG_FILE: &str = "check the file: images files are *-images-idx3-ubyte[.gz], labels \
                          files *-labels-idx1-ubyte[.gz]";

/// Read a whole unsigned-byte IDX file (plain or gzip): its dimensions and its elements,
/// row-major. Shape of the data: `[dims[0]][dims[1]]...`, `dims.iter().product()` bytes.
///
/// Errors: the file cannot be read, is not gzip-valid, has a magic whose first two bytes are
/// not zero, an element type other than unsigned byte (`0x08`), no dimensions, sizes whose
/// product overflows or exceeds 4 GiB, or fewer or more data bytes than the header says.
pub fn read_idx(path: &Path) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    read_idx_as("idx", path, None)
}

/// Load MNIST from `dir`: `(train, test)`, 60000 and 10000 rows for the real files.
///
/// Looks for `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`
/// and `t10k-labels-idx1-ubyte`, each plain or with `.gz` (the plain file wins when both are
/// there). Rows are the images, row-major, pixels `u8 / 255` in [0, 1]; `image` is the
/// `(rows, cols)` from the header (`(28, 28)` for MNIST; other sizes, e.g. a downscaled copy,
/// are accepted when train and test agree); labels are the digits with `label_names` `"0"` to
/// `"9"`; `source` is `mnist:DIR` for both.
///
/// Errors: a file missing, unreadable or malformed (see [`read_idx`]), a wrong magic
/// (images must be `0x00000803`, labels `0x00000801`), no images, a label count different
/// from the image count, a label above 9, train and test images of different sizes.
pub fn load_mnist_dir(dir: &Path) -> Result<(Dataset, Dataset), DataError> {
    if !dir.is_dir() {
        return Err(DataError::io(
            "mnist",
            dir,
            io::Error::new(io::ErrorKind::NotFound, "not a directory"),
        ));
    }
    let source = format!("mnist:{}", dir.display());
    let train = load_split(
        dir,
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        &source,
    )?;
    let test = load_split(
        dir,
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
        &source,
    )?;
    if train.image != test.image {
        let (tr, te) = (
            train.image.unwrap_or_default(),
            test.image.unwrap_or_default(),
        );
        return Err(DataError::malformed(
            "mnist",
            dir,
            format!(
                "train images are {}x{} but t10k images are {}x{}",
                tr.0, tr.1, te.0, te.1
            ),
            "use train and test files of the same dataset",
        ));
    }
    Ok((train, test))
}

/// Set each value to 1 if it is above `t`, else 0 (NaN becomes 0). With `t = 0.5` this is the
/// fixed binarization of MNIST; with `t = 0`, every non-zero pixel is ink.
pub fn binarize_threshold(x: &mut [f32], t: f32) {
    for v in x {
        *v = if *v > t { 1.0 } else { 0.0 };
    }
}

/// Dynamic binarization: `dst[i]` = 1 with probability `src[i]` (clamped to [0, 1]), else 0,
/// drawn afresh each call (e.g. each epoch), as in the IWAE and later VAE papers.
///
/// Each pixel takes one `rng.next_u32()` and keeps its top 24 bits `r`; the pixel is 1 when
/// `r < p · 2²⁴` (an exact comparison in f32, since `r` and `p · 2²⁴` are both exact), so the
/// probability is `p` rounded up to a multiple of 2⁻²⁴: exactly 0 for `p = 0` (and NaN), 1 for
/// `p = 1`. The output is a pure function of `src` and the generator's state, so a seeded
/// generator gives the same bits on every machine.
///
/// # Panics
/// If `dst.len() != src.len()` (a programming error, not a data error).
pub fn binarize_dynamic<R: rand_core::RngCore>(src: &[f32], dst: &mut [f32], rng: &mut R) {
    assert_eq!(
        src.len(),
        dst.len(),
        "binarize_dynamic: src and dst differ in length"
    );
    const TWO_POW_24: f32 = 16_777_216.0;
    for (d, &p) in dst.iter_mut().zip(src) {
        let r = (rng.next_u32() >> 8) as f32;
        *d = if r < p * TWO_POW_24 { 1.0 } else { 0.0 };
    }
}

/// One MNIST split: images and labels, checked against each other.
fn load_split(
    dir: &Path,
    images_name: &'static str,
    labels_name: &'static str,
    source: &str,
) -> Result<Dataset, DataError> {
    let images_path = find(dir, images_name)?;
    let labels_path = find(dir, labels_name)?;
    let (idims, pixels) = read_idx_as("mnist", &images_path, Some(MAGIC_IMAGES))?;
    let (ldims, labels) = read_idx_as("mnist", &labels_path, Some(MAGIC_LABELS))?;
    let (n, rows, cols) = (idims[0], idims[1], idims[2]);
    if n == 0 || rows == 0 || cols == 0 {
        return Err(DataError::malformed(
            "mnist",
            &images_path,
            format!("header says {n} images of {rows}x{cols}: no pixels"),
            REDOWNLOAD,
        ));
    }
    if ldims[0] != n {
        return Err(DataError::malformed(
            "mnist",
            &labels_path,
            format!(
                "{} labels but {} has {n} images",
                ldims[0],
                images_path.display()
            ),
            "use the labels file that belongs to the images file",
        ));
    }
    if let Some(i) = labels.iter().position(|&l| l > 9) {
        return Err(DataError::malformed(
            "mnist",
            &labels_path,
            format!(
                "label {} of item {i} (byte offset {}) is not a digit 0-9",
                labels[i],
                8 + i
            ),
            REDOWNLOAD,
        ));
    }
    let lut: [f32; 256] = core::array::from_fn(|i| i as f32 / 255.0);
    Ok(Dataset {
        source: source.to_string(),
        dim: rows * cols,
        x: pixels.iter().map(|&p| lut[p as usize]).collect(),
        labels: Some(labels.iter().map(|&l| l as u32).collect()),
        label_names: (0..10).map(|d| d.to_string()).collect(),
        image: Some((rows, cols)),
        window: None,
        channel_names: Vec::new(),
        groups: None,
        warnings: Vec::new(),
    })
}

/// `dir/name` if it is a file, else `dir/name.gz`, else [`DataError::Missing`].
fn find(dir: &Path, name: &'static str) -> Result<PathBuf, DataError> {
    let plain = dir.join(name);
    if plain.is_file() {
        return Ok(plain);
    }
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(DataError::Missing {
        kind: "mnist",
        dir: dir.to_path_buf(),
        name,
        hint: "put the four MNIST files (train-images-idx3-ubyte, train-labels-idx1-ubyte, \
               t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, plain or .gz) in this directory",
    })
}

/// A reader over the file's bytes, decompressed when the file starts with the gzip magic.
struct Source {
    inner: Box<dyn Read>,
    gz: bool,
}

impl Source {
    fn open(kind: &'static str, path: &Path) -> Result<Source, DataError> {
        let file = File::open(path).map_err(|e| DataError::io(kind, path, e))?;
        let mut buf = BufReader::new(file);
        let head = buf.fill_buf().map_err(|e| DataError::io(kind, path, e))?;
        let gz = head.starts_with(&[0x1f, 0x8b]);
        // Every member of a multi-member file (`cat a.gz b.gz`, pigz, bgzip); bytes after the
        // last member that are not another member are an error, not ignored (issue 12).
        let inner: Box<dyn Read> = if gz {
            Box::new(flate2::read::MultiGzDecoder::new(buf))
        } else {
            Box::new(buf)
        };
        Ok(Source { inner, gz })
    }

    /// Read up to `n` bytes into `out`; returns how many were read (fewer only at the end).
    fn read_up_to(
        &mut self,
        kind: &'static str,
        path: &Path,
        n: usize,
        out: &mut Vec<u8>,
        offset: usize,
    ) -> Result<usize, DataError> {
        let before = out.len();
        match (&mut self.inner).take(n as u64).read_to_end(out) {
            Ok(got) => Ok(got),
            Err(e) if self.gz => Err(DataError::malformed(
                kind,
                path,
                format!(
                    "gzip stream is corrupt or cut short near uncompressed byte offset {}: {e}",
                    offset + (out.len() - before)
                ),
                REDOWNLOAD,
            )),
            Err(e) => Err(DataError::io(kind, path, e)),
        }
    }
}

/// [`read_idx`], with the kind named in errors and optionally one exact magic expected.
/// When `expect` is given the returned `dims` has exactly `expect & 0xff` entries.
fn read_idx_as(
    kind: &'static str,
    path: &Path,
    expect: Option<u32>,
) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let mut src = Source::open(kind, path)?;
    let mut head = Vec::with_capacity(4);
    let got = src.read_up_to(kind, path, 4, &mut head, 0)?;
    if got < 4 {
        return Err(DataError::malformed(
            kind,
            path,
            format!("truncated: {got} bytes, fewer than the 4-byte IDX magic"),
            REDOWNLOAD,
        ));
    }
    let magic = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    match expect {
        Some(m) if magic != m => {
            let is = match magic {
                MAGIC_IMAGES => " (an images file)",
                MAGIC_LABELS => " (a labels file)",
                _ => "",
            };
            return Err(DataError::malformed(
                kind,
                path,
                format!("bad magic 0x{magic:08x}{is} at byte offset 0, expected 0x{m:08x}"),
                WRONG_FILE,
            ));
        }
        _ => {}
    }
    if head[0] != 0 || head[1] != 0 {
        return Err(DataError::malformed(
            kind,
            path,
            format!(
                "bad magic 0x{magic:08x} at byte offset 0: an IDX magic starts with two zero bytes"
            ),
            "check that this is an IDX file (not, e.g., an HTML error page saved under its name)",
        ));
    }
    if head[2] != IDX_U8 {
        return Err(DataError::malformed(
            kind,
            path,
            format!(
                "IDX element type 0x{:02x} at byte offset 2 is not unsigned byte (0x08)",
                head[2]
            ),
            "only unsigned-byte IDX files are supported",
        ));
    }
    let ndims = head[3] as usize;
    if ndims == 0 {
        return Err(DataError::malformed(
            kind,
            path,
            "IDX header has 0 dimensions (byte offset 3)",
            REDOWNLOAD,
        ));
    }
    let mut raw = Vec::with_capacity(4 * ndims);
    let got = src.read_up_to(kind, path, 4 * ndims, &mut raw, 4)?;
    if got < 4 * ndims {
        return Err(DataError::malformed(
            kind,
            path,
            format!(
                "truncated: header announces {ndims} dimensions ({} bytes) but only {got} bytes follow the magic",
                4 * ndims
            ),
            REDOWNLOAD,
        ));
    }
    let dims: Vec<usize> = raw
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let describe = || -> String {
        match (kind, dims.as_slice()) {
            ("mnist", [n, r, c]) => format!("{n} images of {r}x{c}"),
            ("mnist", [n]) => format!("{n} labels"),
            _ => format!(
                "dimensions {}",
                dims.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("x")
            ),
        }
    };
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_IDX_BYTES);
    let Some(expected) = expected else {
        return Err(DataError::malformed(
            kind,
            path,
            format!("header says {}: more than 4 GiB of data", describe()),
            REDOWNLOAD,
        ));
    };
    // What loading it will hold at its peak: the bytes, the f32 values and the splits' copies,
    // about 8 bytes per value (issue 12: a 972 KB .gz whose header claimed 1.27 M images took
    // the memory past 7.5 GB).
    if let Err(e) = crate::limits::check(
        &format!("loading {} ({})", path.display(), describe()),
        8 * expected as u128,
        "--max-memory (or use a smaller file)",
    ) {
        return Err(DataError::malformed(
            kind,
            path,
            format!("{e:#}"),
            REDOWNLOAD,
        ));
    }
    let header_len = 4 + 4 * ndims;
    // Never trust the header with an allocation: grow as the bytes actually arrive.
    let mut data = Vec::with_capacity(expected.min(64 << 20));
    let got = src.read_up_to(kind, path, expected, &mut data, header_len)?;
    if got < expected {
        return Err(DataError::malformed(
            kind,
            path,
            format!(
                "truncated: header says {} ({expected} bytes) but only {got} bytes follow",
                describe()
            ),
            REDOWNLOAD,
        ));
    }
    let mut rest = Vec::new();
    let extra = src.read_up_to(kind, path, 1, &mut rest, header_len + expected)?;
    if extra > 0 {
        let more = io::copy(&mut src.inner, &mut io::sink()).unwrap_or(0);
        return Err(DataError::malformed(
            kind,
            path,
            format!(
                "{} trailing bytes after the {expected} bytes that the header announces ({})",
                1 + more,
                describe()
            ),
            REDOWNLOAD,
        ));
    }
    Ok((dims, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// An IDX file's bytes.
    pub(crate) fn idx_bytes(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    /// Five 28x28 images whose pixels are `(7 i + r + c) mod 256`, labels 3, 1, 4, 1, 5.
    fn five() -> (Vec<u8>, Vec<u8>) {
        let mut px = Vec::new();
        for i in 0..5u32 {
            for r in 0..28u32 {
                for c in 0..28u32 {
                    px.push(((7 * i + r + c) % 256) as u8);
                }
            }
        }
        (
            idx_bytes(MAGIC_IMAGES, &[5, 28, 28], &px),
            idx_bytes(MAGIC_LABELS, &[5], &[3, 1, 4, 1, 5]),
        )
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) {
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    fn mnist_dir(gzip: bool) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let (im, lb) = five();
        for split in ["train", "t10k"] {
            if gzip {
                write(d.path(), &format!("{split}-images-idx3-ubyte.gz"), &gz(&im));
                write(d.path(), &format!("{split}-labels-idx1-ubyte.gz"), &gz(&lb));
            } else {
                write(d.path(), &format!("{split}-images-idx3-ubyte"), &im);
                write(d.path(), &format!("{split}-labels-idx1-ubyte"), &lb);
            }
        }
        d
    }

    fn err_text(r: Result<(Dataset, Dataset), DataError>) -> String {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    /// Issue 12: a valid multi-member `.gz` (two members, concatenated) loads like the
    /// single-member file (it was refused as truncated), and garbage after the gzip stream is
    /// an error (it was ignored).
    #[test]
    fn multi_member_gzip_loads_and_trailing_garbage_is_refused() {
        let (im, lb) = five();
        let d = tempfile::tempdir().unwrap();
        let (a, b) = im.split_at(1000);
        let two = [gz(a), gz(b)].concat();
        for split in ["train", "t10k"] {
            write(d.path(), &format!("{split}-images-idx3-ubyte.gz"), &two);
            write(d.path(), &format!("{split}-labels-idx1-ubyte.gz"), &gz(&lb));
        }
        let (tr, _) = load_mnist_dir(d.path()).unwrap();
        let (want, _) = load_mnist_dir(mnist_dir(true).path()).unwrap();
        assert_eq!(tr.x, want.x);
        let mut bad = gz(&lb);
        bad.extend_from_slice(b"not gzip at all");
        write(d.path(), "train-labels-idx1-ubyte.gz", &bad);
        let e = err_text(load_mnist_dir(d.path()));
        assert!(e.contains("gzip stream is corrupt"), "{e}");
    }

    #[test]
    fn loads_plain_and_gzip_alike() {
        let plain = mnist_dir(false);
        let gzip = mnist_dir(true);
        let (tr, te) = load_mnist_dir(plain.path()).unwrap();
        let (tr2, te2) = load_mnist_dir(gzip.path()).unwrap();
        assert_eq!(tr.x, tr2.x);
        assert_eq!(te.labels, te2.labels);
        assert_eq!(tr.len(), 5);
        assert_eq!(tr.dim, 784);
        assert_eq!(tr.image, Some((28, 28)));
        assert_eq!(tr.labels.as_deref(), Some(&[3, 1, 4, 1, 5][..]));
        assert_eq!(tr.label_names[9], "9");
        assert_eq!(tr.source, format!("mnist:{}", plain.path().display()));
        // Image 2, row 3, column 4: (14 + 3 + 4) / 255.
        assert_eq!(tr.row(2)[3 * 28 + 4], 21.0 / 255.0);
        assert!(tr.x.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn shipped_fixtures_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mnist");
        let (tr, te) = load_mnist_dir(&dir).unwrap();
        assert_eq!((tr.len(), te.len(), tr.dim), (5, 5, 784));
        let fresh = mnist_dir(false);
        let (tr2, _) = load_mnist_dir(fresh.path()).unwrap();
        assert_eq!(
            tr.x, tr2.x,
            "fixture differs from the generator in these tests"
        );
    }

    /// The committed fixtures equal what this code generates (`REGENERATE_FIXTURES=1`
    /// rewrites them instead): `tests/fixtures/mnist` (see `tests/fixtures/README.md`).
    #[test]
    fn fixtures_are_up_to_date() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mnist");
        let (im, lb) = five();
        crate::data::check_fixture(&dir, "train-images-idx3-ubyte", &im);
        crate::data::check_fixture(&dir, "train-labels-idx1-ubyte", &lb);
        crate::data::check_fixture(&dir, "t10k-images-idx3-ubyte.gz", &gz(&im));
        crate::data::check_fixture(&dir, "t10k-labels-idx1-ubyte.gz", &gz(&lb));
    }

    #[test]
    fn missing_file_is_named() {
        let d = mnist_dir(false);
        std::fs::remove_file(d.path().join("t10k-labels-idx1-ubyte")).unwrap();
        let e = err_text(load_mnist_dir(d.path()));
        assert!(e.contains("t10k-labels-idx1-ubyte.gz"), "{e}");
        assert!(err_text(load_mnist_dir(&d.path().join("nope"))).contains("cannot read"));
    }

    #[test]
    fn bad_magic_is_refused() {
        let d = mnist_dir(false);
        let (_, lb) = five();
        // Labels where images should be.
        write(d.path(), "train-images-idx3-ubyte", &lb);
        let e = err_text(load_mnist_dir(d.path()));
        assert!(
            e.contains("bad magic 0x00000801 (a labels file)") && e.contains("expected 0x00000803"),
            "{e}"
        );
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("x");
        std::fs::write(&p, b"<html>not found</html>").unwrap();
        let e = read_idx(&p).unwrap_err().to_string();
        assert!(e.contains("two zero bytes"), "{e}");
        std::fs::write(&p, idx_bytes(0x0000_0d01, &[1], &[0, 0, 0, 0])).unwrap();
        let e = read_idx(&p).unwrap_err().to_string();
        assert!(e.contains("element type 0x0d"), "{e}");
    }

    #[test]
    fn truncated_and_trailing_are_refused() {
        let d = mnist_dir(false);
        let (im, _) = five();
        write(d.path(), "train-images-idx3-ubyte", &im[..1016]);
        let e = err_text(load_mnist_dir(d.path()));
        assert!(
            e.contains("truncated: header says 5 images of 28x28 (3920 bytes) but only 1000 bytes follow; re-download the file"),
            "{e}"
        );
        let mut long = im.clone();
        long.extend_from_slice(&[1, 2, 3]);
        write(d.path(), "train-images-idx3-ubyte", &gz(&long));
        let e = err_text(load_mnist_dir(d.path()));
        assert!(e.contains("3 trailing bytes"), "{e}");
        // A gzip stream cut in the middle.
        let z = gz(&im);
        write(d.path(), "train-images-idx3-ubyte", &z[..z.len() / 2]);
        let e = err_text(load_mnist_dir(d.path()));
        assert!(e.contains("mnist: ") && e.contains("re-download"), "{e}");
    }

    #[test]
    fn count_mismatch_and_bad_labels_are_refused() {
        let d = mnist_dir(false);
        write(
            d.path(),
            "t10k-labels-idx1-ubyte",
            &idx_bytes(MAGIC_LABELS, &[4], &[1, 2, 3, 4]),
        );
        let e = err_text(load_mnist_dir(d.path()));
        assert!(
            e.contains("4 labels but") && e.contains("has 5 images"),
            "{e}"
        );
        write(
            d.path(),
            "t10k-labels-idx1-ubyte",
            &idx_bytes(MAGIC_LABELS, &[5], &[1, 2, 10, 4, 5]),
        );
        let e = err_text(load_mnist_dir(d.path()));
        assert!(e.contains("label 10 of item 2 (byte offset 10)"), "{e}");
    }

    #[test]
    fn huge_header_does_not_allocate() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("x");
        std::fs::write(
            &p,
            idx_bytes(MAGIC_IMAGES, &[u32::MAX, u32::MAX, u32::MAX], &[1]),
        )
        .unwrap();
        assert!(
            read_idx(&p)
                .unwrap_err()
                .to_string()
                .contains("more than 4 GiB")
        );
        std::fs::write(&p, idx_bytes(MAGIC_IMAGES, &[60000, 28, 28], &[1; 10])).unwrap();
        let e = read_idx(&p).unwrap_err().to_string();
        assert!(
            e.contains("(47040000 bytes) but only 10 bytes follow"),
            "{e}"
        );
    }

    #[test]
    fn garbage_never_panics() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("g");
        let (im, _) = five();
        let z = gz(&im);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in 0..200 {
            for base in [&im, &z] {
                let mut b = base[..len.min(base.len())].to_vec();
                // Flip a few bytes pseudo-randomly.
                for _ in 0..(len % 4) {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    if !b.is_empty() {
                        let i = (state as usize) % b.len();
                        b[i] ^= (state >> 32) as u8;
                    }
                }
                std::fs::write(&p, &b).unwrap();
                let _ = read_idx(&p);
            }
        }
    }

    #[test]
    fn threshold_binarization() {
        let mut x = [0.0, 0.2, 0.5, 0.51, 1.0, f32::NAN];
        binarize_threshold(&mut x, 0.5);
        assert_eq!(x, [0.0, 0.0, 0.0, 1.0, 1.0, 0.0]);
    }

    #[test]
    fn dynamic_binarization_is_seeded_and_unbiased() {
        use rand_core::SeedableRng;
        let src: Vec<f32> = (0..20_000).map(|i| [0.0, 0.25, 0.9, 1.0][i % 4]).collect();
        let mut a = vec![0.0; src.len()];
        let mut b = vec![0.0; src.len()];
        binarize_dynamic(&src, &mut a, &mut rand_pcg::Pcg64Mcg::seed_from_u64(7));
        binarize_dynamic(&src, &mut b, &mut rand_pcg::Pcg64Mcg::seed_from_u64(7));
        assert_eq!(a, b);
        for (k, p) in [0.0f64, 0.25, 0.9, 1.0].into_iter().enumerate() {
            let ones: f64 = a.iter().skip(k).step_by(4).map(|&v| v as f64).sum();
            let mean = ones / 5000.0;
            // Four standard errors of a 5000-draw Bernoulli mean.
            let tol = 4.0 * (p * (1.0 - p) / 5000.0).sqrt();
            assert!((mean - p).abs() <= tol, "p = {p}: mean {mean}");
        }
        assert!(a.iter().all(|&v| v == 0.0 || v == 1.0));
    }
}
