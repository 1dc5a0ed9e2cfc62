//! PNG pictures for the trainer: image grids (samples from the prior, inputs above their
//! reconstructions, the learned 2-D manifold — Kingma & Welling 2014, Figs. 4 and 5), line
//! plots (the lower bound against training samples seen, Fig. 2), latent scatter plots, and
//! the anomaly-detection pictures (windows with their scores, score histograms, score
//! timelines).
//!
//! Every function renders into memory with `plotters`' bitmap backend, encodes the RGB
//! buffer with `png`, and writes the file with [`crate::io::write_atomic`], so a reader never
//! sees half a picture. Bad input (no data, mismatched lengths, shapes that do not divide,
//! non-finite thresholds, pictures too large to allocate) is an error, never a panic.
//!
//! Text needs no system font and no fontconfig: DejaVu Sans (from the `dejavu` crate;
//! Bitstream Vera licence, DejaVu changes public domain) is compiled into the binary. A thin
//! wrapper around `plotters`' bitmap backend (`Canvas`) lays text out and rasterises it with
//! `ab_glyph`, because plotters 0.3.7's own `ab_glyph` path spaces letters unevenly; the font
//! is also registered with that path for plotters' internal size estimates.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, Glyph, PxScale, ScaleFont, point};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters_backend::{BackendColor, BackendCoord, DrawingErrorKind};

use crate::io::write_atomic;

/// Largest picture side in pixels.
pub const MAX_SIDE: u32 = 16_384;
/// Largest picture area in pixels (64 Mpx: a 192 MiB RGB buffer).
pub const MAX_PIXELS: u64 = 1 << 26;

/// Why a picture could not be drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// There is nothing (finite) to draw.
    #[error("nothing to draw: {0}")]
    Empty(&'static str),
    /// Two inputs that must have the same length do not.
    #[error("{what}: expected {expected} entries, got {got}")]
    LengthMismatch {
        /// Which input.
        what: &'static str,
        /// The length it must have.
        expected: usize,
        /// The length it has.
        got: usize,
    },
    /// An argument is out of its domain (a zero size, a shape that does not divide the data,
    /// a non-finite threshold).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The picture would exceed [`MAX_SIDE`] or [`MAX_PIXELS`].
    #[error(
        "picture of {width}x{height} pixels is too large (at most {MAX_SIDE} a side and {MAX_PIXELS} pixels)"
    )]
    TooLarge {
        /// Requested width in pixels.
        width: u64,
        /// Requested height in pixels.
        height: u64,
    },
    /// The embedded font could not be registered with the text renderer.
    #[error("the embedded font could not be loaded")]
    Font,
    /// The drawing backend failed.
    #[error("drawing failed: {0}")]
    Draw(String),
    /// PNG encoding failed.
    #[error("PNG encoding failed: {0}")]
    Encode(#[from] png::EncodingError),
    /// Writing the file failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file being written.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for PlotError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        PlotError::Draw(e.to_string())
    }
}

/// One named curve of a [`line_plot`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// `(x, y)` points in drawing order; non-finite points are skipped.
    pub points: Vec<(f64, f64)>,
}

// ---------------------------------------------------------------------------------------------
// Style
// ---------------------------------------------------------------------------------------------

const FONT: &str = "sans-serif";
const TITLE_PX: u32 = 22;
const DESC_PX: u32 = 17;
const TICK_PX: u32 = 14;
const LEGEND_PX: u32 = 15;
const SMALL_PX: u32 = 13;

/// Matplotlib's `tab10`, then ten more colours of high mutual contrast (after Kelly 1965).
/// Series and labels take colour `i % 20`.
const PALETTE: [RGBColor; 20] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 0, 0),
    RGBColor(0, 0, 128),
    RGBColor(147, 170, 0),
    RGBColor(244, 200, 0),
    RGBColor(127, 24, 13),
    RGBColor(166, 189, 215),
    RGBColor(83, 55, 122),
    RGBColor(246, 118, 142),
    RGBColor(0, 100, 60),
    RGBColor(0, 128, 128),
];

fn palette(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

const SCORE_BLUE: RGBColor = RGBColor(31, 119, 180);
const ANOMALY_RED: RGBColor = RGBColor(214, 39, 40);
const LIGHT_GRID: RGBColor = RGBColor(245, 245, 245);
const BOLD_GRID: RGBColor = RGBColor(218, 218, 218);

fn font(px: u32) -> FontDesc<'static> {
    (FONT, px).into_font()
}

fn bold(px: u32) -> FontDesc<'static> {
    FontDesc::new(FontFamily::SansSerif, px as f64, FontStyle::Bold)
}

// ---------------------------------------------------------------------------------------------
// Text: DejaVu Sans drawn with ab_glyph
// ---------------------------------------------------------------------------------------------

/// DejaVu Sans, parsed once per process.
struct Fonts {
    regular: FontRef<'static>,
    bold: FontRef<'static>,
}

/// The embedded fonts. The first call also registers them with `plotters` as `sans-serif`
/// (used only by its element-size estimates; [`Canvas`] draws all text itself).
fn fonts() -> Result<&'static Fonts, PlotError> {
    static FONTS: OnceLock<Option<Fonts>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let (regular, bold) = (dejavu::sans::regular(), dejavu::sans::bold());
            plotters::style::register_font(FONT, FontStyle::Normal, regular).ok()?;
            plotters::style::register_font(FONT, FontStyle::Bold, bold).ok()?;
            Some(Fonts {
                regular: FontRef::try_from_slice(regular).ok()?,
                bold: FontRef::try_from_slice(bold).ok()?,
            })
        })
        .as_ref()
        .ok_or(PlotError::Font)
}

/// Lays out one line of text: glyphs positioned with the top of the line box at y = 0, and
/// the box's width and height (ascent + descent) in pixels.
fn layout_line(font: &FontRef<'static>, px: f32, text: &str) -> (Vec<Glyph>, u32, u32) {
    let sf = font.as_scaled(PxScale::from(px));
    let mut glyphs = Vec::with_capacity(text.len());
    let mut caret = 0.0f32;
    let mut prev = None;
    for c in text.chars() {
        let id = sf.glyph_id(c);
        if let Some(p) = prev {
            caret += sf.kern(p, id);
        }
        glyphs.push(id.with_scale_and_position(sf.scale(), point(caret, sf.ascent())));
        caret += sf.h_advance(id);
        prev = Some(id);
    }
    let height = sf.ascent() - sf.descent();
    (glyphs, caret.ceil() as u32, height.ceil() as u32)
}

/// Width and height of `text` in `px`-pixel DejaVu Sans (bold if `heavy`).
fn text_size(text: &str, px: u32, heavy: bool) -> Result<(u32, u32), PlotError> {
    let f = fonts()?;
    let font = if heavy { &f.bold } else { &f.regular };
    let (_, w, h) = layout_line(font, px as f32, text);
    Ok((w, h))
}

/// `plotters`' bitmap backend with text drawn by `ab_glyph` directly. (plotters 0.3.7's own
/// `ab_glyph` text path drops each glyph's side bearing and rounds the pen position, which
/// spaces letters unevenly: "n orm al".)
struct Canvas<'a> {
    inner: BitMapBackend<'a>,
}

impl<'a> Canvas<'a> {
    fn new(rgb: &'a mut [u8], size: (u32, u32)) -> Self {
        Self {
            inner: BitMapBackend::with_buffer(rgb, size),
        }
    }
}

type BackendError = DrawingErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>;

fn font_error() -> BackendError {
    DrawingErrorKind::FontError(Box::new(std::io::Error::other("embedded font unavailable")))
}

impl DrawingBackend for Canvas<'_> {
    type ErrorType = <BitMapBackend<'static> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }
    fn ensure_prepared(&mut self) -> Result<(), BackendError> {
        self.inner.ensure_prepared()
    }
    fn present(&mut self) -> Result<(), BackendError> {
        self.inner.present()
    }
    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Result<(), BackendError> {
        self.inner.draw_pixel(point, color)
    }
    fn draw_line<S: plotters_backend::BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), BackendError> {
        self.inner.draw_line(from, to, style)
    }
    fn draw_rect<S: plotters_backend::BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), BackendError> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }
    fn draw_path<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), BackendError> {
        self.inner.draw_path(path, style)
    }
    fn draw_circle<S: plotters_backend::BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), BackendError> {
        self.inner.draw_circle(center, radius, style, fill)
    }
    fn fill_polygon<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), BackendError> {
        self.inner.fill_polygon(vert, style)
    }
    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), BackendError> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<S: plotters_backend::BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), BackendError> {
        let f = fonts().map_err(|_| font_error())?;
        let font = match style.style() {
            FontStyle::Bold => &f.bold,
            _ => &f.regular,
        };
        let (_, w, h) = layout_line(font, style.size() as f32, text);
        Ok((w, h))
    }

    fn draw_text<S: plotters_backend::BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), BackendError> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let f = fonts().map_err(|_| font_error())?;
        let font = match style.style() {
            FontStyle::Bold => &f.bold,
            _ => &f.regular,
        };
        let (glyphs, w, h) = layout_line(font, style.size() as f32, text);
        let (w, h) = (w as i32, h as i32);
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0,
            HPos::Center => -w / 2,
            HPos::Right => -w,
        };
        let dy = match anchor.v_pos {
            VPos::Top => 0,
            VPos::Center => -h / 2,
            VPos::Bottom => -h,
        };
        let transform = style.transform();
        for g in glyphs {
            let Some(outline) = font.outline_glyph(g) else {
                continue;
            };
            let min = outline.px_bounds().min;
            let mut result = Ok(());
            outline.draw(|gx, gy, coverage| {
                if coverage <= 0.0 || result.is_err() {
                    return;
                }
                let x = min.x as i32 + gx as i32 + dx;
                let y = min.y as i32 + gy as i32 + dy;
                let (x, y) = transform.transform(x, y);
                let c = BackendColor {
                    alpha: color.alpha * f64::from(coverage.min(1.0)),
                    rgb: color.rgb,
                };
                result = self.inner.draw_pixel((pos.0 + x, pos.1 + y), c);
            });
            result?;
        }
        Ok(())
    }
}

/// Short tick label: at most four decimals, trailing zeros dropped, scientific notation for
/// very large or very small magnitudes.
fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e4).contains(&a) {
        let s = format!("{v:.1e}");
        s.replace(".0e", "e")
    } else {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" { "0".into() } else { s.into() }
    }
}

/// Whether scores from `lo` to `hi` are drawn on a log axis: all positive and spanning more
/// than a factor of 4 (anomaly scores are often orders of magnitude above normal ones, which a
/// linear axis would flatten into its floor).
fn wants_log(lo: f64, hi: f64) -> bool {
    lo > 0.0 && hi / lo > 4.0 && (hi / lo).is_finite()
}

/// A log-axis tick label: only 1, 2 and 5 times a power of ten are labelled (plotters puts a
/// tick at every integer multiple, whose labels run into each other).
fn fmt_log_tick(v: f64) -> String {
    if !(v > 0.0 && v.is_finite()) {
        return String::new();
    }
    let mantissa = v / 10f64.powf(v.log10().floor());
    if [1.0, 2.0, 5.0, 10.0]
        .iter()
        .any(|m| (mantissa - m).abs() < 1e-6 * m)
    {
        fmt_num(v)
    } else {
        String::new()
    }
}

// ---------------------------------------------------------------------------------------------
// Canvas: allocation, size checks, PNG encoding, atomic write
// ---------------------------------------------------------------------------------------------

fn check_size(width: u64, height: u64) -> Result<(u32, u32), PlotError> {
    if width == 0
        || height == 0
        || width > MAX_SIDE as u64
        || height > MAX_SIDE as u64
        || width * height > MAX_PIXELS
    {
        return Err(PlotError::TooLarge { width, height });
    }
    Ok((width as u32, height as u32))
}

fn encode_png(size: (u32, u32), rgb: &[u8]) -> Result<Vec<u8>, PlotError> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, size.0, size.1);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(out)
}

fn write_png(path: &Path, size: (u32, u32), rgb: &[u8]) -> Result<(), PlotError> {
    let bytes = encode_png(size, rgb)?;
    write_atomic(path, &bytes).map_err(|source| PlotError::Io {
        path: path.to_path_buf(),
        source,
    })
}

type Area<'a> = DrawingArea<Canvas<'a>, Shift>;

/// Renders `draw` on a white `size` canvas and writes it as a PNG to `path`.
fn render(
    path: &Path,
    size: (u64, u64),
    draw: impl FnOnce(&Area<'_>) -> Result<(), PlotError>,
) -> Result<(), PlotError> {
    fonts()?;
    let size = check_size(size.0, size.1)?;
    let mut rgb = vec![255u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = Canvas::new(&mut rgb, size).into_drawing_area();
        draw(&root)?;
        root.present()?;
    }
    write_png(path, size, &rgb)
}

// ---------------------------------------------------------------------------------------------
// Legends (drawn outside the plotting area so they never hide data)
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Marker {
    Line,
    Dashed,
    Dot,
    Block(f64),
    Frame,
}

struct Entry {
    name: String,
    color: RGBColor,
    marker: Marker,
}

impl Entry {
    fn new(name: impl Into<String>, color: RGBColor, marker: Marker) -> Self {
        Self {
            name: name.into(),
            color,
            marker,
        }
    }
}

const KEY_W: i32 = 26;
const LEGEND_ROW: i32 = 22;

fn legend_width(entries: &[Entry]) -> Result<u32, PlotError> {
    let mut w = 0;
    for e in entries {
        w = w.max(text_size(&e.name, LEGEND_PX, false)?.0);
    }
    Ok(w + KEY_W as u32 + 24)
}

fn draw_key(area: &Area<'_>, e: &Entry, x: i32, y: i32) -> Result<(), PlotError> {
    let c = e.color;
    match e.marker {
        Marker::Line => area.draw(&PathElement::new(
            vec![(x, y), (x + KEY_W - 4, y)],
            c.stroke_width(3),
        ))?,
        Marker::Dashed => {
            for k in 0..3 {
                let x0 = x + k * 8;
                area.draw(&PathElement::new(
                    vec![(x0, y), (x0 + 5, y)],
                    c.stroke_width(2),
                ))?;
            }
        }
        Marker::Dot => area.draw(&Circle::new((x + KEY_W / 2 - 2, y), 5, c.filled()))?,
        Marker::Block(alpha) => area.draw(&Rectangle::new(
            [(x + 2, y - 7), (x + KEY_W - 6, y + 7)],
            c.mix(alpha).filled(),
        ))?,
        Marker::Frame => area.draw(&Rectangle::new(
            [(x + 2, y - 7), (x + KEY_W - 6, y + 7)],
            c.stroke_width(3),
        ))?,
    }
    Ok(())
}

/// A vertical legend starting at (`x`, `y`) inside `area`.
fn draw_legend(area: &Area<'_>, entries: &[Entry], x: i32, y: i32) -> Result<(), PlotError> {
    let style = font(LEGEND_PX).color(&BLACK);
    for (i, e) in entries.iter().enumerate() {
        let yy = y + i as i32 * LEGEND_ROW + LEGEND_ROW / 2;
        draw_key(area, e, x, yy)?;
        area.draw(&Text::new(
            e.name.clone(),
            (x + KEY_W + 4, yy),
            style.pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    Ok(())
}

/// A one-row legend centred in `area`.
fn draw_legend_row(area: &Area<'_>, entries: &[Entry]) -> Result<(), PlotError> {
    let style = font(LEGEND_PX).color(&BLACK);
    let gap = 24;
    let mut widths = Vec::with_capacity(entries.len());
    for e in entries {
        widths.push(KEY_W + 4 + text_size(&e.name, LEGEND_PX, false)?.0 as i32);
    }
    let total: i32 = widths.iter().sum::<i32>() + gap * (entries.len() as i32 - 1).max(0);
    let (w, h) = area.dim_in_pixel();
    let mut x = ((w as i32 - total) / 2).max(4);
    let y = h as i32 / 2;
    for (e, wi) in entries.iter().zip(widths) {
        draw_key(area, e, x, y)?;
        area.draw(&Text::new(
            e.name.clone(),
            (x + KEY_W + 4, y),
            style.pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        x += wi + gap;
    }
    Ok(())
}

/// Splits off the title (if any) and a right-hand legend column of the given width.
fn layout<'a>(
    root: &Area<'a>,
    title: &str,
    legend_w: u32,
) -> Result<(Area<'a>, Area<'a>), PlotError> {
    root.fill(&WHITE)?;
    let body = if title.is_empty() {
        root.clone()
    } else {
        root.titled(title, bold(TITLE_PX).color(&BLACK))?
    };
    let (w, _) = body.dim_in_pixel();
    Ok(body.split_horizontally(w.saturating_sub(legend_w)))
}

// ---------------------------------------------------------------------------------------------
// Ranges
// ---------------------------------------------------------------------------------------------

/// Min and max of the finite values, or `None` if there are none.
fn finite_bounds(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// A linear axis range covering `[lo, hi]` with 5 % headroom on both sides. A span that is
/// zero or negligible next to the values' magnitude gets a fixed headroom instead; a span too
/// wide for `f64` is an error (plotters cannot place ticks on it).
fn padded((lo, hi): (f64, f64)) -> Result<Range<f64>, PlotError> {
    let span = hi - lo;
    let magnitude = lo.abs().max(hi.abs());
    let pad = if span > 1e-9 * magnitude {
        0.05 * span
    } else {
        (0.05 * magnitude).max(0.5)
    };
    let (a, b) = (lo - pad, hi + pad);
    if (b - a).is_finite() {
        Ok(a..b)
    } else {
        Err(PlotError::InvalidArgument(format!(
            "values from {lo} to {hi} span too wide a range to plot"
        )))
    }
}

fn require_finite(name: &str, v: f32) -> Result<(), PlotError> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(PlotError::InvalidArgument(format!(
            "{name} must be finite, got {v}"
        )))
    }
}

fn check_labels(labels: Option<&[u32]>, n: usize) -> Result<(), PlotError> {
    match labels {
        Some(l) if l.len() != n => Err(PlotError::LengthMismatch {
            what: "labels",
            expected: n,
            got: l.len(),
        }),
        _ => Ok(()),
    }
}

fn label_name(label: u32, names: &[String]) -> String {
    names
        .get(label as usize)
        .cloned()
        .unwrap_or_else(|| format!("label {label}"))
}

// ---------------------------------------------------------------------------------------------
// 1. Image grid
// ---------------------------------------------------------------------------------------------

const TILE_SEPARATOR: [u8; 3] = [96, 96, 96];
const NAN_PIXEL: [u8; 3] = [255, 0, 0];

/// Draws images as grayscale tiles in a grid, MNIST style: intensity 0 is black, 1 is white
/// (values are clamped to [0, 1]; a NaN pixel is drawn pure red). Tiles are separated and
/// framed by 1-px gray lines and filled row by row, `cols` to a row (fewer if there are fewer
/// images). An optional title strip sits on top; the picture widens if the title needs it.
///
/// Used for samples from the prior (paper Fig. 5), inputs above their reconstructions (the
/// caller interleaves rows) and the learned 2-D manifold (Fig. 4).
///
/// Shape of `images`: `[n][h * w]`, each image row-major. `scale` is the side in pixels of
/// one image pixel.
pub fn image_grid(
    path: &Path,
    images: &[f32],
    h: usize,
    w: usize,
    cols: usize,
    scale: usize,
    title: Option<&str>,
) -> Result<(), PlotError> {
    if h == 0 || w == 0 || cols == 0 || scale == 0 {
        return Err(PlotError::InvalidArgument(format!(
            "h, w, cols and scale must be positive (got h={h}, w={w}, cols={cols}, scale={scale})"
        )));
    }
    if images.is_empty() {
        return Err(PlotError::Empty("no images"));
    }
    let px = h
        .checked_mul(w)
        .ok_or_else(|| PlotError::InvalidArgument(format!("h*w overflows: {h}x{w}")))?;
    if !images.len().is_multiple_of(px) {
        return Err(PlotError::InvalidArgument(format!(
            "{} values are not a whole number of {h}x{w} images",
            images.len()
        )));
    }
    let n = images.len() / px;
    let cols = cols.min(n);
    let rows = n.div_ceil(cols);
    // Sizes in u64 so absurd arguments become TooLarge, not an overflow.
    let (tile_w, tile_h) = (w as u64 * scale as u64, h as u64 * scale as u64);
    let grid_w = cols as u64 * (tile_w + 1) + 1;
    let grid_h = rows as u64 * (tile_h + 1) + 1;
    let title = title.filter(|t| !t.is_empty());
    let (strip_h, width) = match title {
        Some(t) => {
            let (tw, th) = text_size(t, TITLE_PX, true)?;
            (th as u64 + 14, grid_w.max(tw as u64 + 16))
        }
        None => (0, grid_w),
    };
    let (cw, ch) = check_size(width, strip_h + grid_h)?;
    let (cw_us, gw) = (cw as usize, grid_w as usize);
    let (tile_w, tile_h) = (tile_w as usize, tile_h as usize);

    let mut rgb = vec![255u8; cw_us * ch as usize * 3];
    let y0 = strip_h as usize;
    // Separators: fill the grid box, then paint tiles over it.
    for y in y0..y0 + grid_h as usize {
        for x in 0..gw {
            let o = (y * cw_us + x) * 3;
            rgb[o..o + 3].copy_from_slice(&TILE_SEPARATOR);
        }
    }
    for (k, img) in images.chunks_exact(px).enumerate() {
        let (r, c) = (k / cols, k % cols);
        let ty = y0 + 1 + r * (tile_h + 1);
        let tx = 1 + c * (tile_w + 1);
        for y in 0..tile_h {
            let row = &img[(y / scale) * w..(y / scale + 1) * w];
            let o_row = ((ty + y) * cw_us + tx) * 3;
            for x in 0..tile_w {
                let v = row[x / scale];
                let p = if v.is_nan() {
                    NAN_PIXEL
                } else {
                    let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                    [g, g, g]
                };
                let o = o_row + x * 3;
                rgb[o..o + 3].copy_from_slice(&p);
            }
        }
    }
    // Empty cells of the last row stay separator-gray: mark them with a darker fill.
    for k in n..rows * cols {
        let (r, c) = (k / cols, k % cols);
        let ty = y0 + 1 + r * (tile_h + 1);
        let tx = 1 + c * (tile_w + 1);
        for y in ty..ty + tile_h {
            for x in tx..tx + tile_w {
                let o = (y * cw_us + x) * 3;
                rgb[o..o + 3].copy_from_slice(&[40, 40, 40]);
            }
        }
    }
    if let Some(t) = title {
        let root = Canvas::new(&mut rgb, (cw, ch)).into_drawing_area();
        root.draw(&Text::new(
            t.to_string(),
            (cw as i32 / 2, strip_h as i32 / 2),
            bold(TITLE_PX)
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Center)),
        ))?;
        root.present()?;
    }
    write_png(path, (cw, ch), &rgb)
}

// ---------------------------------------------------------------------------------------------
// 2. Line plot
// ---------------------------------------------------------------------------------------------

/// Draws each series as a line in its own colour, with axes, ticks, axis labels and a legend
/// (right of the plot). Non-finite points are skipped; with `log_x` the x axis is
/// logarithmic and points with `x <= 0` are skipped too. Used for the lower bound against
/// training samples seen (paper Fig. 2).
///
/// Errors if `series` is empty or no series has a drawable point.
pub fn line_plot(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_x: bool,
) -> Result<(), PlotError> {
    if series.is_empty() {
        return Err(PlotError::Empty("no series"));
    }
    let keep = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite() && (!log_x || x > 0.0);
    let clean: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| s.points.iter().copied().filter(keep).collect())
        .collect();
    let xb = finite_bounds(clean.iter().flatten().map(|p| p.0));
    let yb = finite_bounds(clean.iter().flatten().map(|p| p.1));
    let (Some(xb), Some(yb)) = (xb, yb) else {
        return Err(PlotError::Empty(if log_x {
            "no finite point with x > 0"
        } else {
            "no finite point"
        }));
    };
    let entries: Vec<Entry> = series
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.name.is_empty())
        .map(|(i, s)| Entry::new(s.name.clone(), palette(i), Marker::Line))
        .collect();
    let legend_w = if entries.is_empty() {
        0
    } else {
        legend_width(&entries)?
    };
    let yr = padded(yb)?;
    let xr = if log_x {
        // A single x value gets a factor of 2 either side.
        let (lo, hi) = if xb.1 > xb.0 * (1.0 + 1e-9) {
            xb
        } else {
            (xb.0 / 2.0, xb.1 * 2.0)
        };
        // plotters counts decades as ln(hi / lo): the ratio must be finite.
        if !(lo > 0.0 && (hi / lo).is_finite()) {
            return Err(PlotError::InvalidArgument(format!(
                "x values from {} to {} cannot be drawn on a log axis",
                xb.0, xb.1
            )));
        }
        lo..hi
    } else {
        padded(xb)?
    };
    render(path, (760 + legend_w as u64, 500), |root| {
        let (plot, side) = layout(root, title, legend_w)?;
        let mut builder = ChartBuilder::on(&plot);
        builder
            .margin(12)
            .x_label_area_size(52)
            .y_label_area_size(78);
        if log_x {
            let mut chart = builder.build_cartesian_2d(xr.log_scale(), yr)?;
            finish_line_chart(&mut chart, x_label, y_label, &clean)?;
        } else {
            let mut chart = builder.build_cartesian_2d(xr, yr)?;
            finish_line_chart(&mut chart, x_label, y_label, &clean)?;
        }
        draw_legend(&side, &entries, 4, 12)
    })
}

fn finish_line_chart<X>(
    chart: &mut ChartContext<'_, Canvas<'_>, Cartesian2d<X, RangedCoordf64>>,
    x_label: &str,
    y_label: &str,
    series: &[Vec<(f64, f64)>],
) -> Result<(), PlotError>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .axis_desc_style(font(DESC_PX))
        .label_style(font(TICK_PX))
        .x_label_formatter(&|v| fmt_num(*v))
        .y_label_formatter(&|v| fmt_num(*v))
        .light_line_style(LIGHT_GRID)
        .bold_line_style(BOLD_GRID)
        .draw()?;
    for (i, pts) in series.iter().enumerate() {
        let c = palette(i);
        chart.draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))?;
        if pts.len() == 1 {
            chart.draw_series(std::iter::once(Circle::new(pts[0], 4, c.filled())))?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 3. Scatter
// ---------------------------------------------------------------------------------------------

/// Draws 2-D points (e.g. latent means), coloured by label when `labels` is given, with a
/// legend naming each label present (`label_names[label]`, or `label N` past the end of
/// `label_names`). Colours: 20 distinct ones, repeating from label 20 on. Non-finite points
/// are skipped. `x_label` and `y_label` name the axes (no name when empty).
#[allow(clippy::too_many_arguments)]
pub fn scatter(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[(f32, f32)],
    labels: Option<&[u32]>,
    label_names: &[String],
) -> Result<(), PlotError> {
    if points.is_empty() {
        return Err(PlotError::Empty("no points"));
    }
    check_labels(labels, points.len())?;
    let finite = |p: &(f32, f32)| p.0.is_finite() && p.1.is_finite();
    let xb = finite_bounds(points.iter().filter(|p| finite(p)).map(|p| p.0 as f64));
    let yb = finite_bounds(points.iter().filter(|p| finite(p)).map(|p| p.1 as f64));
    let (Some(xb), Some(yb)) = (xb, yb) else {
        return Err(PlotError::Empty("no finite point"));
    };
    let mut present: Vec<u32> = labels.map(|l| l.to_vec()).unwrap_or_default();
    present.sort_unstable();
    present.dedup();
    let entries: Vec<Entry> = present
        .iter()
        .map(|&l| Entry::new(label_name(l, label_names), palette(l as usize), Marker::Dot))
        .collect();
    let legend_w = if entries.is_empty() {
        0
    } else {
        legend_width(&entries)?
    };
    // Small points for big clouds, so structure stays visible.
    let radius = if points.len() > 5000 { 2 } else { 3 };
    let (xr, yr) = (padded(xb)?, padded(yb)?);
    let width = (640 + legend_w as u64).max(text_size(title, TITLE_PX, true)?.0 as u64 + 20);
    // Label 0 (normal, or the first class) first: rarer classes drawn over it stay visible.
    let mut order: Vec<usize> = (0..points.len()).collect();
    if let Some(l) = labels {
        order.sort_by_key(|&i| l[i]);
    }
    render(path, (width, 600), |root| {
        let (plot, side) = layout(root, title, legend_w)?;
        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .x_label_area_size(if x_label.is_empty() { 40 } else { 52 })
            .y_label_area_size(if y_label.is_empty() { 64 } else { 78 })
            .build_cartesian_2d(xr, yr)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .axis_desc_style(font(DESC_PX))
            .label_style(font(TICK_PX))
            .x_label_formatter(&|v| fmt_num(*v))
            .y_label_formatter(&|v| fmt_num(*v))
            .light_line_style(LIGHT_GRID)
            .bold_line_style(BOLD_GRID)
            .draw()?;
        let dots = order
            .iter()
            .map(|&i| (i, &points[i]))
            .filter(|(_, p)| finite(p))
            .map(|(i, p)| {
                let c = labels.map_or(SCORE_BLUE, |l| palette(l[i] as usize));
                Circle::new((p.0 as f64, p.1 as f64), radius, c.mix(0.75).filled())
            });
        chart.draw_series(dots)?;
        draw_legend(&side, &entries, 4, 12)
    })
}

// ---------------------------------------------------------------------------------------------
// 4. Anomaly pictures
// ---------------------------------------------------------------------------------------------

const PANEL_W: u64 = 270;
const PANEL_H: u64 = 170;

/// Draws one small panel per window (sensor channels as coloured lines), captioned with its
/// index, score and label name (`label_names[label]`, or `label N` past its end); panels
/// whose score exceeds `threshold` get a thick red frame (a NaN score is left out of the
/// caption; `threshold = f32::MAX` drops the frame key from the legend). A legend row under the title names
/// the channel colours, by [`channel_labels`] of `channel_names`. Each panel shows its window
/// with the mean of each channel removed ([`window_traces`]), x in steps.
///
/// Shape of each window: `[len][channels]`, interleaved. Errors on no windows, a zero
/// `channels`, a window that is empty or not a whole number of `channels`-frames, `scores`
/// or `labels` of another length than `windows`, or a non-finite `threshold`.
#[allow(clippy::too_many_arguments)]
pub fn windows_plot(
    path: &Path,
    title: &str,
    windows: &[Vec<f32>],
    channels: usize,
    channel_names: &[String],
    scores: &[f32],
    threshold: f32,
    labels: Option<&[u32]>,
    label_names: &[String],
) -> Result<(), PlotError> {
    if windows.is_empty() {
        return Err(PlotError::Empty("no windows"));
    }
    if channels == 0 {
        return Err(PlotError::InvalidArgument(
            "channels must be positive".into(),
        ));
    }
    if scores.len() != windows.len() {
        return Err(PlotError::LengthMismatch {
            what: "scores",
            expected: windows.len(),
            got: scores.len(),
        });
    }
    check_labels(labels, windows.len())?;
    require_finite("threshold", threshold)?;
    for (i, win) in windows.iter().enumerate() {
        if win.is_empty() || !win.len().is_multiple_of(channels) {
            return Err(PlotError::InvalidArgument(format!(
                "window {i} has {} values, not a positive multiple of {channels} channels",
                win.len()
            )));
        }
    }
    let n = windows.len();
    let cols = (n as f64).sqrt().ceil().clamp(1.0, 6.0) as usize;
    let rows = n.div_ceil(cols);
    let mut legend: Vec<Entry> = channel_labels(channel_names, channels)
        .into_iter()
        .enumerate()
        .map(|(c, name)| Entry::new(name, palette(c), Marker::Line))
        .collect();
    // `f32::MAX` means "no threshold": no frame key.
    if threshold < f32::MAX {
        legend.push(Entry::new(
            format!("red frame: score > {}", fmt_num(threshold as f64)),
            ANOMALY_RED,
            Marker::Frame,
        ));
    }
    // `titled` takes the text height plus 2 x 5 px of padding.
    let title_h = if title.is_empty() {
        0
    } else {
        text_size(title, TITLE_PX, true)?.1 as u64 + 10
    };
    let legend_h = 30;
    let grid_w = cols as u64 * PANEL_W;
    let width = grid_w
        .max(text_size(title, TITLE_PX, true)?.0 as u64 + 20)
        .max(640);
    let height = title_h + legend_h + rows as u64 * PANEL_H;
    render(path, (width, height), |root| {
        let (body, _) = layout(root, title, 0)?;
        let (key, grid) = body.split_vertically(legend_h as i32);
        draw_legend_row(&key, &legend)?;
        let left = ((width - grid_w) / 2) as i32;
        let grid = grid.margin(0, 0, left, 0);
        let (grid, _) = grid.split_horizontally(grid_w as i32);
        let panels = grid.split_evenly((rows, cols));
        for (i, (panel, win)) in panels.iter().zip(windows).enumerate() {
            let name = labels.map(|l| label_name(l[i], label_names));
            draw_window_panel(panel, i, win, channels, scores[i], threshold, name)?;
        }
        Ok(())
    })
}

fn draw_window_panel(
    panel: &Area<'_>,
    index: usize,
    win: &[f32],
    channels: usize,
    score: f32,
    threshold: f32,
    label: Option<String>,
) -> Result<(), PlotError> {
    let flagged = score > threshold;
    // A NaN score means "no score": the caption shows the index and label only.
    let mut caption = if score.is_nan() {
        format!("#{index}")
    } else {
        format!("#{index}  score {}", fmt_num(score as f64))
    };
    if let Some(l) = label {
        caption.push_str("  ");
        caption.push_str(&l);
    }
    let inner = panel.margin(5, 5, 5, 5);
    let len = win.len() / channels;
    // Each channel's mean removed, as in `axis_panels`: one channel's offset (gravity) must
    // not flatten the others.
    let tr = window_traces(win, None, channels, 0.0)?;
    let yb = finite_bounds(tr.values.iter().flatten().copied()).unwrap_or((-1.0, 1.0));
    let caption_color = if flagged { ANOMALY_RED } else { BLACK };
    let mut chart = ChartBuilder::on(&inner)
        .caption(caption, font(SMALL_PX).color(&caption_color))
        .margin(4)
        .x_label_area_size(18)
        .y_label_area_size(38)
        .build_cartesian_2d(0f64..(len.max(2) - 1) as f64, padded(yb)?)?;
    chart
        .configure_mesh()
        .x_labels(3)
        .y_labels(3)
        .label_style(font(11))
        .x_label_formatter(&|v| fmt_num(*v))
        .y_label_formatter(&|v| fmt_num(*v))
        .light_line_style(WHITE)
        .bold_line_style(BOLD_GRID)
        .draw()?;
    for c in 0..channels {
        // Non-finite samples break the line into finite runs.
        let mut run: Vec<(f64, f64)> = Vec::with_capacity(len);
        let color = palette(c);
        for t in 0..=len {
            let v = if t < len { tr.values[c][t] } else { f64::NAN };
            if v.is_finite() {
                run.push((t as f64, v));
            } else if !run.is_empty() {
                chart.draw_series(LineSeries::new(run.drain(..), color.stroke_width(1)))?;
            }
        }
    }
    if flagged {
        let (w, h) = panel.dim_in_pixel();
        panel.draw(&Rectangle::new(
            [(1, 1), (w as i32 - 2, h as i32 - 2)],
            ANOMALY_RED.stroke_width(3),
        ))?;
    } else {
        let (w, h) = panel.dim_in_pixel();
        panel.draw(&Rectangle::new(
            [(1, 1), (w as i32 - 2, h as i32 - 2)],
            RGBColor(200, 200, 200).stroke_width(1),
        ))?;
    }
    Ok(())
}

/// Display names of `channels` channels: the data's `names` when there is one per channel;
/// else `x`, `y`, `z` for three channels (a 3-axis sensor); else `ch 1`, `ch 2`, ...
pub fn channel_labels(names: &[String], channels: usize) -> Vec<String> {
    if names.len() == channels && names.iter().all(|n| !n.trim().is_empty()) {
        names.to_vec()
    } else if channels == 3 {
        ["x", "y", "z"].map(String::from).to_vec()
    } else {
        (1..=channels).map(|c| format!("ch {c}")).collect()
    }
}

/// The series one window's [`axis_panels`] row draws: per channel, the values with the
/// window's mean of that channel removed, against time in milliseconds, and the y range of
/// that channel's panel.
#[derive(Clone, Debug, PartialEq)]
pub struct Traces {
    /// Time of each step in ms (`t · 1000 / sample_rate_hz`; the step index when the rate is
    /// not a positive number).
    pub time_ms: Vec<f64>,
    /// Shape: `[channels][len]`: the window minus its per-channel mean (NaN stays NaN).
    pub values: Vec<Vec<f64>>,
    /// Shape: `[channels][len]`: the overlay (e.g. the reconstruction) minus the same means,
    /// the *window's*, so an offset the overlay gets wrong stays visible.
    pub overlay: Option<Vec<Vec<f64>>>,
    /// The y range of each channel's panel: the finite values of that channel (and its
    /// overlay) with 5 % headroom.
    pub y_range: Vec<Range<f64>>,
}

/// Computes the [`Traces`] of one window (shape: `[len][channels]`, interleaved) and of an
/// optional overlay of the same shape. Errors on a zero `channels`, an empty window or one
/// that is not a whole number of frames, or an overlay of another length.
pub fn window_traces(
    window: &[f32],
    overlay: Option<&[f32]>,
    channels: usize,
    sample_rate_hz: f32,
) -> Result<Traces, PlotError> {
    if channels == 0 {
        return Err(PlotError::InvalidArgument(
            "channels must be positive".into(),
        ));
    }
    if window.is_empty() || !window.len().is_multiple_of(channels) {
        return Err(PlotError::InvalidArgument(format!(
            "a window of {} values is not a positive multiple of {channels} channels",
            window.len()
        )));
    }
    if let Some(o) = overlay
        && o.len() != window.len()
    {
        return Err(PlotError::LengthMismatch {
            what: "overlay",
            expected: window.len(),
            got: o.len(),
        });
    }
    let len = window.len() / channels;
    let rate = sample_rate_hz as f64;
    let time_ms = (0..len)
        .map(|t| {
            if rate > 0.0 && rate.is_finite() {
                t as f64 * 1000.0 / rate
            } else {
                t as f64
            }
        })
        .collect();
    let channel = |src: &[f32], c: usize| -> Vec<f64> {
        (0..len).map(|t| src[t * channels + c] as f64).collect()
    };
    let mut values = Vec::with_capacity(channels);
    let mut over = overlay.map(|_| Vec::with_capacity(channels));
    let mut y_range = Vec::with_capacity(channels);
    for c in 0..channels {
        let v = channel(window, c);
        let finite: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        let mean = if finite.is_empty() {
            0.0
        } else {
            finite.iter().sum::<f64>() / finite.len() as f64
        };
        let v: Vec<f64> = v.iter().map(|x| x - mean).collect();
        let o: Option<Vec<f64>> = overlay.map(|o| channel(o, c).iter().map(|x| x - mean).collect());
        let bounds =
            finite_bounds(v.iter().chain(o.iter().flatten()).copied()).unwrap_or((-1.0, 1.0));
        y_range.push(padded(bounds)?);
        values.push(v);
        if let (Some(all), Some(o)) = (over.as_mut(), o) {
            all.push(o);
        }
    }
    Ok(Traces {
        time_ms,
        values,
        overlay: over,
        y_range,
    })
}

/// One window of an [`axis_panels`] picture.
#[derive(Clone, Debug)]
pub struct PanelRow<'a> {
    /// Shape: `[len][channels]`, interleaved, in the data's units.
    pub window: &'a [f32],
    /// Drawn over the window as a dashed black line (e.g. its reconstruction); same shape.
    pub overlay: Option<&'a [f32]>,
    /// Caption above the row (index, score, label, ...).
    pub caption: String,
    /// Caption in red and the row framed in red (e.g. score above the threshold).
    pub flagged: bool,
}

const AXIS_PANEL_W: u64 = 330;
const AXIS_PANEL_H: u64 = 150;
const ROW_CAPTION_H: u64 = 22;

/// Draws windows of a multichannel time series as a grid of panels, one row per window and
/// one column per channel (headed by [`channel_labels`] of `channel_names`), each window's
/// per-channel mean removed (so gravity on one axis does not flatten the vibration on the
/// others) and each panel scaled to its own trace ([`window_traces`]), time in ms on the x
/// axis. An overlay (when given) is drawn dashed in black over the coloured trace, and
/// `overlay_legend` names the two (`(trace, overlay)`). `value_desc` labels the y axis of the
/// first column (e.g. `mg, mean removed`).
///
/// Errors on no rows and on whatever [`window_traces`] refuses.
#[allow(clippy::too_many_arguments)]
pub fn axis_panels(
    path: &Path,
    title: &str,
    rows: &[PanelRow<'_>],
    channels: usize,
    channel_names: &[String],
    sample_rate_hz: f32,
    value_desc: &str,
    overlay_legend: Option<(&str, &str)>,
) -> Result<(), PlotError> {
    if rows.is_empty() {
        return Err(PlotError::Empty("no windows"));
    }
    let traces = rows
        .iter()
        .map(|r| window_traces(r.window, r.overlay, channels, sample_rate_hz))
        .collect::<Result<Vec<_>, _>>()?;
    let names = channel_labels(channel_names, channels);
    let x_desc = if sample_rate_hz > 0.0 && sample_rate_hz.is_finite() {
        "time (ms)"
    } else {
        "step"
    };
    let legend_h: u64 = if overlay_legend.is_some() { 30 } else { 0 };
    let header_h: u64 = 26;
    let title_h = if title.is_empty() {
        0
    } else {
        text_size(title, TITLE_PX, true)?.1 as u64 + 10
    };
    let grid_w = channels as u64 * AXIS_PANEL_W;
    let width = grid_w.max(text_size(title, TITLE_PX, true)?.0 as u64 + 20);
    let row_h = ROW_CAPTION_H + AXIS_PANEL_H;
    let height = title_h + legend_h + header_h + rows.len() as u64 * row_h;
    render(path, (width, height), |root| {
        let (body, _) = layout(root, title, 0)?;
        let (key, rest) = body.split_vertically(legend_h as i32);
        if let Some((a, b)) = overlay_legend {
            draw_legend_row(
                &key,
                &[
                    Entry::new(a, palette(0), Marker::Line),
                    Entry::new(b, BLACK, Marker::Dashed),
                ],
            )?;
        }
        let left = ((width - grid_w) / 2) as i32;
        let rest = rest.margin(0, 0, left, 0);
        let (rest, _) = rest.split_horizontally(grid_w as i32);
        let (header, grid) = rest.split_vertically(header_h as i32);
        for (c, cell) in header.split_evenly((1, channels)).iter().enumerate() {
            let (w, h) = cell.dim_in_pixel();
            cell.draw(&Text::new(
                names[c].clone(),
                (w as i32 / 2, h as i32 / 2),
                bold(DESC_PX)
                    .color(&palette(c))
                    .pos(Pos::new(HPos::Center, VPos::Center)),
            ))?;
        }
        for ((area, row), tr) in grid
            .split_evenly((rows.len(), 1))
            .iter()
            .zip(rows)
            .zip(&traces)
        {
            let (caption, panels) = area.split_vertically(ROW_CAPTION_H as i32);
            let colour = if row.flagged { ANOMALY_RED } else { BLACK };
            caption.draw(&Text::new(
                row.caption.clone(),
                (6, ROW_CAPTION_H as i32 / 2 + 1),
                font(LEGEND_PX)
                    .color(&colour)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
            for (c, panel) in panels.split_evenly((1, channels)).iter().enumerate() {
                draw_axis_panel(panel, tr, c, x_desc, (c == 0).then_some(value_desc))?;
            }
            let (w, h) = area.dim_in_pixel();
            let frame = if row.flagged {
                ANOMALY_RED.stroke_width(3)
            } else {
                RGBColor(200, 200, 200).stroke_width(1)
            };
            area.draw(&Rectangle::new(
                [(1, 1), (w as i32 - 2, h as i32 - 2)],
                frame,
            ))?;
        }
        Ok(())
    })
}

fn draw_axis_panel(
    panel: &Area<'_>,
    tr: &Traces,
    c: usize,
    x_desc: &str,
    y_desc: Option<&str>,
) -> Result<(), PlotError> {
    let t_end = tr.time_ms.last().copied().unwrap_or(1.0).max(1e-9);
    let mut chart = ChartBuilder::on(&panel.margin(2, 4, 2, 8))
        .x_label_area_size(34)
        .y_label_area_size(if y_desc.is_some() { 60 } else { 44 })
        .build_cartesian_2d(0f64..t_end, tr.y_range[c].clone())?;
    let mut mesh = chart.configure_mesh();
    mesh.x_labels(4)
        .y_labels(4)
        .x_desc(x_desc)
        .axis_desc_style(font(SMALL_PX))
        .label_style(font(11))
        .x_label_formatter(&|v| fmt_num(*v))
        .y_label_formatter(&|v| fmt_num(*v))
        .light_line_style(WHITE)
        .bold_line_style(LIGHT_GRID);
    if let Some(d) = y_desc {
        mesh.y_desc(d);
    }
    mesh.draw()?;
    let runs = |v: &[f64]| -> Vec<Vec<(f64, f64)>> {
        // Non-finite samples break the line into finite runs.
        let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
        let mut run = Vec::new();
        for (&t, &y) in tr.time_ms.iter().zip(v) {
            if y.is_finite() {
                run.push((t, y));
            } else if !run.is_empty() {
                out.push(std::mem::take(&mut run));
            }
        }
        out.push(run);
        out
    };
    for run in runs(&tr.values[c]) {
        chart.draw_series(LineSeries::new(run, palette(c).stroke_width(2)))?;
    }
    if let Some(o) = &tr.overlay {
        for run in runs(&o[c]) {
            chart.draw_series(DashedLineSeries::new(run, 5, 3, BLACK.stroke_width(2)))?;
        }
    }
    Ok(())
}

/// Bins of a [`score_histogram`].
pub const HIST_BINS: usize = 60;

/// The bins a [`score_histogram`] draws: `HIST_BINS` bins between the smallest and the largest
/// finite score (and the threshold), spaced evenly in log(score) when every score is
/// positive and they span more than a factor of 4 (anomaly scores are often orders of
/// magnitude above the normal ones, which a linear axis would crowd into one bin), evenly
/// otherwise.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramBins {
    /// `HIST_BINS + 1` ascending bin edges.
    pub edges: Vec<f64>,
    /// Whether the edges (and the drawn axis) are logarithmic.
    pub log: bool,
    /// Normal windows per bin.
    pub normal: Vec<usize>,
    /// Anomalous windows per bin.
    pub anomalous: Vec<usize>,
}

impl HistogramBins {
    /// Bins holding at least one normal window.
    pub fn normal_bins_used(&self) -> usize {
        self.normal.iter().filter(|&&c| c > 0).count()
    }
}

/// Bins the finite scores of both classes for [`score_histogram`] (see [`HistogramBins`]).
/// Errors on a non-finite `threshold` or no finite score.
pub fn histogram_bins(
    normal: &[f32],
    anomalous: &[f32],
    threshold: f32,
) -> Result<HistogramBins, PlotError> {
    require_finite("threshold", threshold)?;
    let all = normal.iter().chain(anomalous).map(|&v| v as f64);
    let Some((lo, hi)) = finite_bounds(all) else {
        return Err(PlotError::Empty("no finite score"));
    };
    let t = threshold as f64;
    let (lo, hi) = (lo.min(t), hi.max(t));
    let log = wants_log(lo, hi);
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, hi + 0.5)
    };
    let edges: Vec<f64> = (0..=HIST_BINS)
        .map(|k| {
            let f = k as f64 / HIST_BINS as f64;
            if k == HIST_BINS {
                hi
            } else if log {
                lo * (hi / lo).powf(f)
            } else {
                lo + (hi - lo) * f
            }
        })
        .collect();
    let count = |xs: &[f32]| -> Vec<usize> {
        let mut counts = vec![0usize; HIST_BINS];
        for &v in xs.iter().filter(|v| v.is_finite()) {
            let b = edges.partition_point(|&e| e <= v as f64);
            counts[b.saturating_sub(1).min(HIST_BINS - 1)] += 1;
        }
        counts
    };
    Ok(HistogramBins {
        normal: count(normal),
        anomalous: count(anomalous),
        edges,
        log,
    })
}

/// Draws the score histograms of normal (blue) and anomalous (red) windows overlaid, each
/// normalised to the fraction of its own class so a rare class stays visible, on the bins of
/// [`histogram_bins`] (a logarithmic score axis when they are log-spaced), with the
/// threshold as a dashed vertical line labelled with its value. Non-finite scores are
/// skipped. One of the two sets may be empty, not both.
pub fn score_histogram(
    path: &Path,
    title: &str,
    normal: &[f32],
    anomalous: &[f32],
    threshold: f32,
) -> Result<(), PlotError> {
    let bins = histogram_bins(normal, anomalous, threshold)?;
    let t = threshold as f64;
    let frac = |counts: &[usize]| -> (Vec<f64>, usize) {
        let n: usize = counts.iter().sum();
        let f = counts
            .iter()
            .map(|&c| if n > 0 { c as f64 / n as f64 } else { 0.0 })
            .collect();
        (f, n)
    };
    let (hn, nn) = frac(&bins.normal);
    let (ha, na) = frac(&bins.anomalous);
    let top = hn.iter().chain(&ha).fold(0.0f64, |m, &v| m.max(v)) * 1.15;
    let top = top.max(1e-9);
    let entries = vec![
        Entry::new(format!("normal (n={nn})"), SCORE_BLUE, Marker::Block(0.5)),
        Entry::new(
            format!("anomalous (n={na})"),
            ANOMALY_RED,
            Marker::Block(0.5),
        ),
        Entry::new(format!("threshold {}", fmt_num(t)), BLACK, Marker::Dashed),
    ];
    let legend_w = legend_width(&entries)?;
    let (lo, hi) = (bins.edges[0], bins.edges[HIST_BINS]);
    // Where the threshold sits across the axis (0 left, 1 right), to put its label inside.
    let at = if bins.log {
        (t / lo).ln() / (hi / lo).ln()
    } else {
        (t - lo) / (hi - lo)
    };
    let x_desc = if bins.log {
        "score (log scale)"
    } else {
        "score"
    };
    render(path, (760 + legend_w as u64, 480), |root| {
        let (plot, side) = layout(root, title, legend_w)?;
        let mut builder = ChartBuilder::on(&plot);
        builder
            .margin(12)
            .x_label_area_size(52)
            .y_label_area_size(70);
        let bars = |h: &[f64], c: RGBColor| -> Vec<Rectangle<(f64, f64)>> {
            h.iter()
                .enumerate()
                .filter(|(_, v)| **v > 0.0)
                .map(|(b, &v)| {
                    Rectangle::new(
                        [(bins.edges[b], 0.0), (bins.edges[b + 1], v)],
                        c.mix(0.5).filled(),
                    )
                })
                .collect()
        };
        let label_style = font(TICK_PX).color(&BLACK).pos(Pos::new(
            if at > 0.7 { HPos::Right } else { HPos::Left },
            VPos::Top,
        ));
        let label = if at > 0.7 {
            format!("threshold {}  ", fmt_num(t))
        } else {
            format!("  threshold {}", fmt_num(t))
        };
        macro_rules! finish {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc(x_desc)
                    .y_desc("fraction of class")
                    .axis_desc_style(font(DESC_PX))
                    .label_style(font(TICK_PX))
                    .x_label_formatter(&|v| {
                        if bins.log {
                            fmt_log_tick(*v)
                        } else {
                            fmt_num(*v)
                        }
                    })
                    .y_label_formatter(&|v| fmt_num(*v))
                    .light_line_style(WHITE)
                    .bold_line_style(BOLD_GRID)
                    .draw()?;
                chart.draw_series(bars(&hn, SCORE_BLUE))?;
                chart.draw_series(bars(&ha, ANOMALY_RED))?;
                chart.draw_series(DashedLineSeries::new(
                    [(t, 0.0), (t, top)],
                    8,
                    5,
                    BLACK.stroke_width(2),
                ))?;
                chart.draw_series(std::iter::once(Text::new(
                    label.clone(),
                    (t, top * 0.99),
                    label_style.clone(),
                )))?;
            }};
        }
        if bins.log {
            finish!(builder.build_cartesian_2d((lo / 1.05..hi * 1.05).log_scale(), 0f64..top)?);
        } else {
            let span = hi - lo;
            finish!(builder.build_cartesian_2d((lo - 0.02 * span)..(hi + 0.02 * span), 0f64..top)?);
        }
        draw_legend(&side, &entries, 4, 12)
    })
}

/// Draws the score of each window against its index with a dashed line at `threshold`;
/// windows scoring above it are marked with red dots, and when `labels` is given, windows
/// with a non-zero label (true anomalies) are shaded in light red behind the curve.
/// Non-finite scores are skipped. The score axis is logarithmic when every score is positive
/// and they span more than a factor of 4.
pub fn score_timeline(
    path: &Path,
    title: &str,
    scores: &[f32],
    labels: Option<&[u32]>,
    threshold: f32,
) -> Result<(), PlotError> {
    if scores.is_empty() {
        return Err(PlotError::Empty("no scores"));
    }
    check_labels(labels, scores.len())?;
    require_finite("threshold", threshold)?;
    let t = threshold as f64;
    let Some((lo, hi)) = finite_bounds(scores.iter().map(|&v| v as f64)) else {
        return Err(PlotError::Empty("no finite score"));
    };
    let (lo, hi) = (lo.min(t), hi.max(t));
    // Anomalies can score orders of magnitude above normal windows and the threshold, which a
    // linear axis flattens into its floor: log scale when every score is positive and they
    // span more than a factor of 4 (the rule of `histogram_bins`).
    let log_y = wants_log(lo, hi);
    let yr = if log_y {
        lo / 1.1..hi * 1.1
    } else {
        padded((lo, hi))?
    };
    let mut entries = vec![
        Entry::new("score", SCORE_BLUE, Marker::Line),
        Entry::new(format!("threshold {}", fmt_num(t)), BLACK, Marker::Dashed),
        Entry::new("score > threshold", ANOMALY_RED, Marker::Dot),
    ];
    if labels.is_some() {
        entries.push(Entry::new(
            "labelled anomalous",
            ANOMALY_RED,
            Marker::Block(0.2),
        ));
    }
    let legend_w = legend_width(&entries)?;
    let n = scores.len();
    let width = (n as u64 * 2).clamp(900, 4000) + legend_w as u64;
    render(path, (width, 420), |root| {
        let (plot, side) = layout(root, title, legend_w)?;
        macro_rules! finish {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc("window")
                    .y_desc(if log_y { "score (log scale)" } else { "score" })
                    .axis_desc_style(font(DESC_PX))
                    .label_style(font(TICK_PX))
                    .x_label_formatter(&|v| fmt_num(*v))
                    .y_label_formatter(&|v| {
                        if log_y { fmt_log_tick(*v) } else { fmt_num(*v) }
                    })
                    .light_line_style(LIGHT_GRID)
                    .bold_line_style(BOLD_GRID)
                    .draw()?;
                if let Some(l) = labels {
                    let bands = l
                        .iter()
                        .enumerate()
                        .filter(|(_, l)| **l != 0)
                        .map(|(i, _)| {
                            Rectangle::new(
                                [(i as f64 - 0.5, yr.start), (i as f64 + 0.5, yr.end)],
                                ANOMALY_RED.mix(0.2).filled(),
                            )
                        });
                    chart.draw_series(bands)?;
                }
                let mut run: Vec<(f64, f64)> = Vec::new();
                for i in 0..=n {
                    let v = scores.get(i).copied().unwrap_or(f32::NAN);
                    if v.is_finite() {
                        run.push((i as f64, v as f64));
                    } else if !run.is_empty() {
                        chart.draw_series(LineSeries::new(
                            run.drain(..),
                            SCORE_BLUE.stroke_width(2),
                        ))?;
                    }
                }
                chart.draw_series(DashedLineSeries::new(
                    [(-0.5, t), (n as f64 - 0.5, t)],
                    8,
                    5,
                    BLACK.stroke_width(2),
                ))?;
                let r = if n > 400 { 3 } else { 4 };
                let flagged = scores
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.is_finite() && **s > threshold)
                    .map(|(i, &s)| Circle::new((i as f64, s as f64), r, ANOMALY_RED.filled()));
                chart.draw_series(flagged)?;
            }};
        }
        let mut builder = ChartBuilder::on(&plot);
        builder
            .margin(12)
            .x_label_area_size(52)
            .y_label_area_size(70);
        let xr = -0.5..(n as f64 - 0.5);
        if log_y {
            finish!(builder.build_cartesian_2d(xr, yr.clone().log_scale())?);
        } else {
            finish!(builder.build_cartesian_2d(xr, yr.clone())?);
        }
        draw_legend(&side, &entries, 4, 12)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes a PNG and returns (width, height, number of distinct RGB colours).
    fn decode(path: &Path) -> (u32, u32, usize) {
        let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
        let mut reader = png::Decoder::new(file).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        let mut colours: Vec<[u8; 3]> = buf[..info.buffer_size()]
            .chunks_exact(3)
            .map(|p| [p[0], p[1], p[2]])
            .collect();
        colours.sort_unstable();
        colours.dedup();
        (info.width, info.height, colours.len())
    }

    fn out_dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    /// A synthetic digit-like blob per image, brightness ramp across images.
    fn blobs(n: usize, h: usize, w: usize) -> Vec<f32> {
        let mut v = Vec::with_capacity(n * h * w);
        for k in 0..n {
            let (cy, cx) = (h as f32 / 2.0, (k % w) as f32);
            for y in 0..h {
                for x in 0..w {
                    let d2 = (y as f32 - cy).powi(2) + (x as f32 - cx).powi(2);
                    v.push((-d2 / 18.0).exp() * (0.3 + 0.7 * (k as f32 / n as f32)));
                }
            }
        }
        v
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("digit {i}")).collect()
    }

    #[test]
    fn image_grid_writes_tiles_with_separators_and_title() {
        let d = out_dir();
        let p = d.path().join("grid.png");
        let mut imgs = blobs(10, 28, 28);
        imgs[5] = f32::NAN;
        image_grid(&p, &imgs, 28, 28, 4, 2, Some("samples")).unwrap();
        let (w, h, colours) = decode(&p);
        // 4 columns of 56 px + 5 separators; 3 rows of 56 px + 4 separators + title strip.
        assert_eq!(w, 4 * 57 + 1);
        assert!(h > 3 * 57 + 1, "title strip missing: {h}");
        assert!(colours > 20, "only {colours} colours");
        // Without a title the picture is exactly the grid.
        image_grid(&p, &imgs, 28, 28, 10, 1, None).unwrap();
        let (w, h, _) = decode(&p);
        assert_eq!((w, h), (10 * 29 + 1, 29 + 1));
    }

    #[test]
    fn image_grid_widens_for_a_long_title() {
        let d = out_dir();
        let p = d.path().join("one.png");
        image_grid(&p, &blobs(1, 8, 8), 8, 8, 1, 1, Some("a long title")).unwrap();
        let (w, _, _) = decode(&p);
        assert!(w > 9 + 60, "width {w}");
    }

    #[test]
    fn image_grid_rejects_bad_shapes() {
        let d = out_dir();
        let p = d.path().join("bad.png");
        let imgs = blobs(2, 4, 4);
        assert!(matches!(
            image_grid(&p, &[], 4, 4, 2, 1, None),
            Err(PlotError::Empty(_))
        ));
        assert!(matches!(
            image_grid(&p, &imgs[..31], 4, 4, 2, 1, None),
            Err(PlotError::InvalidArgument(_))
        ));
        for (h, w, c, s) in [(0, 4, 2, 1), (4, 0, 2, 1), (4, 4, 0, 1), (4, 4, 2, 0)] {
            assert!(matches!(
                image_grid(&p, &imgs, h, w, c, s, None),
                Err(PlotError::InvalidArgument(_))
            ));
        }
        assert!(matches!(
            image_grid(&p, &imgs, 4, 4, 2, 100_000, None),
            Err(PlotError::TooLarge { .. })
        ));
        assert!(matches!(
            image_grid(&p, &imgs, usize::MAX, 2, 2, 1, None),
            Err(PlotError::InvalidArgument(_))
        ));
        assert!(!p.exists());
    }

    fn bound_curves() -> Vec<Series> {
        let curve = |name: &str, top: f64, rate: f64| Series {
            name: name.into(),
            points: (0..60)
                .map(|i| {
                    let x = 1e3 * 10f64.powf(i as f64 / 10.0);
                    (x, top - 400.0 / (1.0 + rate * x / 1e5))
                })
                .chain([(f64::NAN, 1.0), (2e3, f64::INFINITY)])
                .collect(),
        };
        vec![
            curve("AEVB (train)", -100.0, 3.0),
            curve("AEVB (test)", -104.0, 3.0),
            curve("wake-sleep (test)", -120.0, 0.7),
        ]
    }

    #[test]
    fn line_plot_writes_log_and_linear_axes() {
        let d = out_dir();
        let p = d.path().join("lines.png");
        line_plot(
            &p,
            "MNIST, Nz = 20",
            "training samples evaluated",
            "lower bound",
            &bound_curves(),
            true,
        )
        .unwrap();
        let (w, h, colours) = decode(&p);
        assert!(w > 700 && h == 500);
        assert!(colours > 10, "only {colours} colours");
        line_plot(&p, "linear", "step", "loss", &bound_curves(), false).unwrap();
        assert!(decode(&p).2 > 10);
        // A single point still draws.
        let one = [Series {
            name: String::new(),
            points: vec![(1.0, 2.0)],
        }];
        line_plot(&p, "one", "x", "y", &one, true).unwrap();
    }

    #[test]
    fn line_plot_rejects_nothing_to_draw() {
        let d = out_dir();
        let p = d.path().join("lines.png");
        assert!(matches!(
            line_plot(&p, "t", "x", "y", &[], false),
            Err(PlotError::Empty(_))
        ));
        let bad = [Series {
            name: "s".into(),
            points: vec![(f64::NAN, 1.0), (0.0, 1.0), (-1.0, 2.0)],
        }];
        assert!(line_plot(&p, "t", "x", "y", &bad, true).is_err());
        assert!(line_plot(&p, "t", "x", "y", &bad, false).is_ok());
    }

    fn clusters(k: usize, per: usize) -> (Vec<(f32, f32)>, Vec<u32>) {
        let mut pts = Vec::new();
        let mut labels = Vec::new();
        for c in 0..k {
            let a = c as f32 / k as f32 * std::f32::consts::TAU;
            for j in 0..per {
                let r = 0.3 * ((j * 7919 % 101) as f32 / 101.0);
                let b = (j * 104_729 % 360) as f32 / 57.3;
                pts.push((3.0 * a.cos() + r * b.cos(), 3.0 * a.sin() + r * b.sin()));
                labels.push(c as u32);
            }
        }
        (pts, labels)
    }

    #[test]
    fn scatter_colours_by_label() {
        let d = out_dir();
        let p = d.path().join("scatter.png");
        let (mut pts, labels) = clusters(12, 80);
        pts[3] = (f32::NAN, 0.0);
        scatter(
            &p,
            "latent means",
            "PC 1",
            "PC 2",
            &pts,
            Some(&labels),
            &names(10),
        )
        .unwrap();
        let (_, h, colours) = decode(&p);
        assert_eq!(h, 600);
        assert!(colours > 12, "only {colours} colours");
        scatter(&p, "unlabelled", "", "", &pts, None, &[]).unwrap();
        assert!(decode(&p).2 > 3);
    }

    #[test]
    fn scatter_rejects_bad_input() {
        let d = out_dir();
        let p = d.path().join("scatter.png");
        assert!(matches!(
            scatter(&p, "t", "", "", &[], None, &[]),
            Err(PlotError::Empty(_))
        ));
        assert!(matches!(
            scatter(&p, "t", "", "", &[(0.0, 0.0); 3], Some(&[1, 2]), &[]),
            Err(PlotError::LengthMismatch { .. })
        ));
        assert!(matches!(
            scatter(&p, "t", "", "", &[(f32::NAN, 0.0)], None, &[]),
            Err(PlotError::Empty(_))
        ));
        // All points equal: a degenerate but valid range.
        scatter(&p, "t", "", "", &[(1.0, 1.0); 4], None, &[]).unwrap();
    }

    fn windows(n: usize, len: usize, channels: usize) -> (Vec<Vec<f32>>, Vec<f32>, Vec<u32>) {
        let mut ws = Vec::new();
        let mut scores = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n {
            let anomalous = i % 4 == 3;
            let mut w = Vec::with_capacity(len * channels);
            for t in 0..len {
                for c in 0..channels {
                    let phase = t as f32 / 8.0 + c as f32;
                    let spike = if anomalous && t == len / 2 { 4.0 } else { 0.0 };
                    w.push(phase.sin() * (1.0 + c as f32 * 0.3) + spike);
                }
            }
            ws.push(w);
            scores.push(if anomalous {
                9.5 + i as f32
            } else {
                1.0 + 0.1 * i as f32
            });
            labels.push(u32::from(anomalous));
        }
        (ws, scores, labels)
    }

    #[test]
    fn windows_plot_frames_high_scores() {
        let d = out_dir();
        let p = d.path().join("windows.png");
        let (mut ws, mut scores, labels) = windows(10, 64, 3);
        ws[1][5] = f32::NAN;
        scores[2] = f32::NAN;
        let names = vec!["normal".to_string(), "anomaly".to_string()];
        windows_plot(
            &p,
            "test windows",
            &ws,
            3,
            &[],
            &scores,
            5.0,
            Some(&labels),
            &names,
        )
        .unwrap();
        let (w, h, colours) = decode(&p);
        assert_eq!(w as u64, 4 * PANEL_W);
        assert!(h as u64 > 3 * PANEL_H);
        assert!(colours > 10, "only {colours} colours");
        windows_plot(
            &p,
            "no labels",
            &ws[..1],
            3,
            &[],
            &scores[..1],
            5.0,
            None,
            &[],
        )
        .unwrap();
    }

    #[test]
    fn windows_plot_rejects_bad_input() {
        let d = out_dir();
        let p = d.path().join("windows.png");
        let (ws, scores, labels) = windows(4, 16, 3);
        let plot = |ws: &[Vec<f32>], ch, sc: &[f32], t, l: Option<&[u32]>| {
            windows_plot(&p, "t", ws, ch, &[], sc, t, l, &[])
        };
        assert!(matches!(
            plot(&[], 3, &[], 1.0, None),
            Err(PlotError::Empty(_))
        ));
        assert!(matches!(
            plot(&ws, 0, &scores, 1.0, None),
            Err(PlotError::InvalidArgument(_))
        ));
        assert!(matches!(
            plot(&ws, 5, &scores, 1.0, None),
            Err(PlotError::InvalidArgument(_))
        ));
        assert!(matches!(
            plot(&ws, 3, &scores[..3], 1.0, None),
            Err(PlotError::LengthMismatch { .. })
        ));
        assert!(matches!(
            plot(&ws, 3, &scores, 1.0, Some(&labels[..1])),
            Err(PlotError::LengthMismatch { .. })
        ));
        assert!(matches!(
            plot(&ws, 3, &scores, f32::NAN, None),
            Err(PlotError::InvalidArgument(_))
        ));
        let mut empty = ws.clone();
        empty[2].clear();
        assert!(matches!(
            plot(&empty, 3, &scores, 1.0, None),
            Err(PlotError::InvalidArgument(_))
        ));
        assert!(matches!(
            plot(&vec![vec![0.0; 3]; 20_000], 3, &[0.0; 20_000], 1.0, None),
            Err(PlotError::TooLarge { .. })
        ));
    }

    fn score_sets() -> (Vec<f32>, Vec<f32>) {
        let normal = (0..500)
            .map(|i| 2.0 + ((i * 37 % 100) as f32 / 25.0))
            .collect();
        let anomalous = (0..40)
            .map(|i| 5.0 + ((i * 13 % 40) as f32 / 6.0))
            .collect();
        (normal, anomalous)
    }

    #[test]
    fn score_histogram_draws_both_classes() {
        let d = out_dir();
        let p = d.path().join("hist.png");
        let (mut normal, anomalous) = score_sets();
        normal.push(f32::INFINITY);
        score_histogram(&p, "scores", &normal, &anomalous, 6.5).unwrap();
        let (_, h, colours) = decode(&p);
        assert_eq!(h, 480);
        assert!(colours > 10, "only {colours} colours");
        score_histogram(&p, "only normal", &normal, &[], 6.5).unwrap();
        score_histogram(&p, "one value", &[3.0], &[], 3.0).unwrap();
    }

    #[test]
    fn score_histogram_rejects_bad_input() {
        let d = out_dir();
        let p = d.path().join("hist.png");
        assert!(matches!(
            score_histogram(&p, "t", &[], &[], 1.0),
            Err(PlotError::Empty(_))
        ));
        assert!(matches!(
            score_histogram(&p, "t", &[f32::NAN], &[], 1.0),
            Err(PlotError::Empty(_))
        ));
        assert!(matches!(
            score_histogram(&p, "t", &[1.0], &[], f32::INFINITY),
            Err(PlotError::InvalidArgument(_))
        ));
    }

    /// Quiet scores with three labelled anomalous stretches, one of them partly missed, and
    /// one false alarm.
    fn timeline(n: usize) -> (Vec<f32>, Vec<u32>) {
        let mut scores = Vec::with_capacity(n);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let noise = ((i * 7919 % 97) as f32 / 97.0 - 0.5) * 1.2;
            let label = u32::from((60..70).contains(&i) || (150..156).contains(&i) || i >= n - 40);
            let bump = if label == 1 {
                6.0 + (i % 5) as f32
            } else {
                0.0
            };
            let missed = if i == 152 || i == 153 { -5.0 } else { 0.0 };
            let false_alarm = if i == 110 { 5.0 } else { 0.0 };
            scores.push(2.0 + noise + bump + missed + false_alarm);
            labels.push(label);
        }
        (scores, labels)
    }

    #[test]
    fn score_timeline_marks_anomalies() {
        let d = out_dir();
        let p = d.path().join("timeline.png");
        let (mut scores, labels) = timeline(200);
        scores[50] = f32::NAN;
        score_timeline(&p, "scores over time", &scores, Some(&labels), 5.0).unwrap();
        let (w, h, colours) = decode(&p);
        assert!(w >= 900 && h == 420);
        assert!(colours > 10, "only {colours} colours");
        score_timeline(&p, "one", &[1.0], None, 1.0).unwrap();
    }

    #[test]
    fn score_timeline_rejects_bad_input() {
        let d = out_dir();
        let p = d.path().join("timeline.png");
        assert!(matches!(
            score_timeline(&p, "t", &[], None, 1.0),
            Err(PlotError::Empty(_))
        ));
        assert!(matches!(
            score_timeline(&p, "t", &[1.0, 2.0], Some(&[0]), 1.0),
            Err(PlotError::LengthMismatch { .. })
        ));
        assert!(matches!(
            score_timeline(&p, "t", &[f32::NAN], None, 1.0),
            Err(PlotError::Empty(_))
        ));
        assert!(matches!(
            score_timeline(&p, "t", &[1.0], None, f32::NAN),
            Err(PlotError::InvalidArgument(_))
        ));
    }

    /// Ranges plotters cannot place ticks on (an infinite span, an infinite decade count) are
    /// refused up front (plotters would loop for ever); everything else draws.
    #[test]
    fn extreme_ranges_are_drawn_or_refused() {
        let d = out_dir();
        let p = d.path().join("x.png");
        let one = |pts: &[(f64, f64)], log_x| {
            let s = [Series {
                name: "s".into(),
                points: pts.to_vec(),
            }];
            line_plot(&p, "t", "x", "y", &s, log_x)
        };
        for log_x in [false, true] {
            assert!(matches!(
                one(&[(1.0, 1e308), (2.0, -1e308)], log_x),
                Err(PlotError::InvalidArgument(_))
            ));
            one(&[(1.0, 1.0), (1.0 + 1e-15, 1.0 + 1e-15)], log_x).unwrap();
            one(&[(1.0, -0.0), (1.0, 0.0)], log_x).unwrap();
            one(&[(1e-150, 0.0), (1e150, 1.0)], log_x).unwrap();
        }
        assert!(matches!(
            one(&[(1e-300, 0.0), (1e300, 1.0)], true),
            Err(PlotError::InvalidArgument(_))
        ));
        assert!(matches!(
            one(&[(-1e308, 1.0), (1e308, 2.0)], false),
            Err(PlotError::InvalidArgument(_))
        ));
        let big = [(f32::MAX, f32::MIN), (f32::MIN, f32::MAX)];
        scatter(&p, "t", "", "", &big, None, &[]).unwrap();
        score_histogram(&p, "t", &[f32::MAX, f32::MIN], &[0.0], 0.0).unwrap();
        score_timeline(&p, "t", &[f32::MAX, f32::MIN], None, 0.0).unwrap();
        windows_plot(
            &p,
            "t",
            &[vec![f32::MAX, f32::MIN]],
            1,
            &[],
            &[0.0],
            0.0,
            None,
            &[],
        )
        .unwrap();
        let pixels = [f32::MAX, f32::MIN, f32::INFINITY, f32::NEG_INFINITY];
        image_grid(&p, &pixels, 2, 2, 1, 1, None).unwrap();
    }

    #[test]
    fn fmt_num_is_short() {
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(0.30000000000000004), "0.3");
        assert_eq!(fmt_num(-95.5), "-95.5");
        assert_eq!(fmt_num(1e6), "1e6");
        assert_eq!(fmt_num(2.5e-5), "2.5e-5");
        assert_eq!(fmt_num(1234.5), "1234.5");
        assert_eq!(fmt_num(12345.0), "1.2e4");
        assert_eq!(fmt_num(f64::NAN), "NaN");
    }

    /// Decodes a PNG and counts the pixels of exactly `colour`.
    fn pixels_of(path: &Path, colour: RGBColor) -> usize {
        let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
        let mut reader = png::Decoder::new(file).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf[..info.buffer_size()]
            .chunks_exact(3)
            .filter(|p| p == &[colour.0, colour.1, colour.2])
            .count()
    }

    /// A 64-step window at 400 Hz like the accelerometer's: ±30 mg of vibration on every axis,
    /// plus offsets of -20 and 15 mg on x and y and gravity (+1000 mg) on z.
    fn accelerometer_window() -> Vec<f32> {
        let mut w = Vec::new();
        for t in 0..64 {
            let phase = t as f32 * std::f32::consts::TAU / 16.0;
            w.push(-20.0 + 30.0 * phase.sin());
            w.push(15.0 + 30.0 * (phase + 1.0).sin());
            w.push(1000.0 + 30.0 * (2.0 * phase).cos());
        }
        w
    }

    /// Gravity must not flatten the vibration: every channel's trace, mean removed, spans
    /// almost all of its panel's y range (on one shared 0-1000 mg axis it spanned 6 %), and
    /// time is in ms from the sample rate.
    #[test]
    fn window_traces_fill_their_panels_and_run_in_ms() {
        let w = accelerometer_window();
        let tr = window_traces(&w, None, 3, 400.0).unwrap();
        assert_eq!(tr.values.len(), 3);
        assert_eq!(tr.time_ms.len(), 64);
        assert_eq!(tr.time_ms[1], 2.5);
        assert_eq!(*tr.time_ms.last().unwrap(), 157.5);
        for c in 0..3 {
            let (lo, hi) = finite_bounds(tr.values[c].iter().copied()).unwrap();
            let r = &tr.y_range[c];
            let fill = (hi - lo) / (r.end - r.start);
            assert!(
                fill > 0.85,
                "channel {c}: trace fills {fill} of its y range"
            );
            let mean = tr.values[c].iter().sum::<f64>() / 64.0;
            assert!(mean.abs() < 1e-3, "channel {c}: mean {mean} not removed");
            assert!(r.start > -40.0 && r.end < 40.0, "channel {c}: {r:?}");
        }
        // The overlay is shifted by the window's means, not its own: a reconstruction 10 mg
        // off on z shows 10 mg off.
        let mut rec = w.clone();
        for t in 0..64 {
            rec[3 * t + 2] += 10.0;
        }
        let tr = window_traces(&w, Some(&rec), 3, 400.0).unwrap();
        let o = tr.overlay.as_ref().unwrap();
        assert!((o[2][0] - tr.values[2][0] - 10.0).abs() < 1e-3);
        assert!(tr.y_range[2].end > 40.0);
        // Unknown rate: steps.
        assert_eq!(window_traces(&w, None, 3, 0.0).unwrap().time_ms[5], 5.0);
        assert!(matches!(
            window_traces(&w, Some(&w[..3]), 3, 400.0),
            Err(PlotError::LengthMismatch { .. })
        ));
        assert!(window_traces(&w[..4], None, 3, 400.0).is_err());
        assert!(window_traces(&w, None, 0, 400.0).is_err());
    }

    #[test]
    fn channel_labels_are_the_data_s() {
        let names: Vec<String> = ["acc_x", "acc_y"].map(String::from).to_vec();
        assert_eq!(channel_labels(&names, 2), names);
        assert_eq!(channel_labels(&[], 3), ["x", "y", "z"]);
        assert_eq!(channel_labels(&names, 3), ["x", "y", "z"]);
        assert_eq!(channel_labels(&[], 2), ["ch 1", "ch 2"]);
        assert_eq!(
            channel_labels(&["".into(), "b".into()], 2),
            ["ch 1", "ch 2"]
        );
    }

    /// One row per window, one panel per channel, each channel's trace in its colour and the
    /// overlay dashed in black.
    #[test]
    fn axis_panels_draw_one_panel_per_channel() {
        let d = out_dir();
        let p = d.path().join("axes.png");
        let w = accelerometer_window();
        let rec: Vec<f32> = w.iter().map(|v| v * 0.98).collect();
        let rows = [
            PanelRow {
                window: &w,
                overlay: Some(&rec),
                caption: "window #0: normal".into(),
                flagged: false,
            },
            PanelRow {
                window: &w,
                overlay: Some(&rec),
                caption: "window #1: bearing".into(),
                flagged: true,
            },
        ];
        let names: Vec<String> = ["ax", "ay", "az"].map(String::from).to_vec();
        axis_panels(
            &p,
            "windows",
            &rows,
            3,
            &names,
            400.0,
            "mg, mean removed",
            Some(("window", "reconstruction")),
        )
        .unwrap();
        let (w_px, h_px, _) = decode(&p);
        assert_eq!(w_px as u64, 3 * AXIS_PANEL_W);
        assert!(h_px as u64 > 2 * (AXIS_PANEL_H + ROW_CAPTION_H));
        for c in 0..3 {
            let n = pixels_of(&p, palette(c));
            assert!(n > 400, "channel {c}: {n} pixels of its colour");
        }
        assert!(pixels_of(&p, BLACK) > 400);
        assert!(pixels_of(&p, ANOMALY_RED) > 500, "no red frame");
        assert!(matches!(
            axis_panels(&p, "t", &[], 3, &[], 400.0, "", None),
            Err(PlotError::Empty(_))
        ));
    }

    /// Scores like the default job's: normal windows between 100 and 160, anomalies from 400
    /// to 4,000. Linear bins put every normal window in one or two bins; the log-spaced ones
    /// spread them, and the threshold falls inside the axis.
    #[test]
    fn histogram_spreads_normal_windows_over_log_bins() {
        let normal: Vec<f32> = (0..900)
            .map(|i| 100.0 * 1.6f32.powf((i * 7919 % 900) as f32 / 900.0))
            .collect();
        let anomalous: Vec<f32> = (0..100)
            .map(|i| 400.0 * 10f32.powf((i * 37 % 100) as f32 / 100.0))
            .collect();
        let b = histogram_bins(&normal, &anomalous, 150.0).unwrap();
        assert!(b.log);
        assert_eq!(b.edges.len(), HIST_BINS + 1);
        assert!(b.edges.windows(2).all(|e| e[0] < e[1]));
        assert!(b.normal_bins_used() >= 6, "{:?}", b.normal);
        assert_eq!(b.normal.iter().sum::<usize>(), 900);
        assert_eq!(b.anomalous.iter().sum::<usize>(), 100);
        assert!(b.edges[0] <= 100.0 && *b.edges.last().unwrap() >= 3900.0);
        // Linear spacing of the same range would crowd them.
        let width = (b.edges[HIST_BINS] - b.edges[0]) / HIST_BINS as f64;
        assert!(60.0 / width < 1.0);
        // Scores of both signs: linear bins.
        let b = histogram_bins(&[-3.0, -1.0, 2.0], &[40.0], 1.0).unwrap();
        assert!(!b.log);
        assert_eq!(b.normal_bins_used(), 3);
        let d = out_dir();
        let p = d.path().join("hist.png");
        score_histogram(&p, "scores", &normal, &anomalous, 150.0).unwrap();
        assert!(pixels_of(&p, BLACK) > 100, "no threshold line and label");
    }

    #[test]
    fn log_axes_for_positive_scores_spanning_a_factor_over_four() {
        assert!(wants_log(100.0, 4000.0));
        assert!(!wants_log(100.0, 150.0));
        assert!(!wants_log(-1.0, 4000.0));
        assert!(!wants_log(0.0, 4000.0));
        assert!(!wants_log(1e-300, 1e300 * 1e10));
    }

    #[test]
    fn log_ticks_label_one_two_five() {
        assert_eq!(fmt_log_tick(100.0), "100");
        assert_eq!(fmt_log_tick(200.0), "200");
        assert_eq!(fmt_log_tick(5000.0), "5000");
        assert_eq!(fmt_log_tick(700.0), "");
        assert_eq!(fmt_log_tick(0.0), "");
    }

    /// Writes every kind of picture to `$PLOT_SAMPLES` (a directory) for looking at; does
    /// nothing when the variable is unset.
    #[test]
    fn write_samples_for_inspection() {
        let Some(dir) = std::env::var_os("PLOT_SAMPLES") else {
            return;
        };
        let dir = PathBuf::from(dir);
        let imgs = blobs(40, 28, 28);
        image_grid(
            &dir.join("grid.png"),
            &imgs,
            28,
            28,
            10,
            2,
            Some("Samples from the prior"),
        )
        .unwrap();
        let mut with_nan = blobs(6, 28, 28);
        for v in &mut with_nan[28 * 14..28 * 15] {
            *v = f32::NAN;
        }
        image_grid(
            &dir.join("grid_nan_notitle.png"),
            &with_nan,
            28,
            28,
            3,
            1,
            None,
        )
        .unwrap();
        image_grid(
            &dir.join("grid_narrow.png"),
            &blobs(1, 28, 28),
            28,
            28,
            1,
            1,
            Some("manifold"),
        )
        .unwrap();
        line_plot(
            &dir.join("lines_log.png"),
            "MNIST, Nz = 20",
            "# training samples evaluated",
            "lower bound (nats)",
            &bound_curves(),
            true,
        )
        .unwrap();
        line_plot(
            &dir.join("lines_lin.png"),
            "loss",
            "step",
            "loss",
            &bound_curves(),
            false,
        )
        .unwrap();
        let (pts, labels) = clusters(12, 150);
        scatter(
            &dir.join("scatter.png"),
            "Latent means (test set)",
            "PC 1",
            "PC 2",
            &pts,
            Some(&labels),
            &names(10),
        )
        .unwrap();
        let (ws, scores, labels) = windows(10, 64, 3);
        let names = vec!["normal".to_string(), "anomaly".to_string()];
        windows_plot(
            &dir.join("windows.png"),
            "Test windows",
            &ws,
            3,
            &[],
            &scores,
            5.0,
            Some(&labels),
            &names,
        )
        .unwrap();
        windows_plot(
            &dir.join("windows_one.png"),
            "",
            &ws[3..4],
            3,
            &[],
            &scores[3..4],
            5.0,
            None,
            &[],
        )
        .unwrap();
        let (n, a) = score_sets();
        score_histogram(&dir.join("hist.png"), "Anomaly scores", &n, &a, 6.5).unwrap();
        let (scores, labels) = timeline(300);
        score_timeline(
            &dir.join("timeline.png"),
            "Scores over time",
            &scores,
            Some(&labels),
            5.0,
        )
        .unwrap();
    }
}
