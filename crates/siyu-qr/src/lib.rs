//! The QR code of a channel code's landing URL, for a code that has no WeCom QR of its
//! own (`GET /api/v1/channel-codes/{id}/qr?format=png|svg&logo=true|false`).
//!
//! Plain Rust with no HTTP and no SQL: [`render`] takes the text to encode, a
//! [`QrFormat`] and optionally a brand [`Logo`], and answers a [`QrImage`] (bytes and
//! content type) for the server to send as it is.
//!
//! Choices that make the code scan:
//! - **Error correction.** Without a logo the code uses level M (about 15% of the
//!   symbol may be damaged): a smaller symbol than level H for the same URL, still
//!   robust to a smudged print. With a logo it uses level H (about 30%), and the logo
//!   covers a centred square of at most a fifth of the symbol's width, so about 4% of
//!   its area: well within what level H recovers, with room left for a poor print or
//!   a glare. The modules under that square are left light (a white margin around the
//!   logo) rather than drawn under it, so the logo's own colours cannot read as modules.
//! - **Quiet zone.** Four light modules around the symbol, as the standard asks:
//!   scanners find the finder patterns by their contrast with what surrounds them, and
//!   a code printed against a busy background without it often fails.
//! - **Sizes.** A PNG has at least 8 pixels a module and at least 300 pixels a side,
//!   whole pixels per module so that edges stay sharp. An SVG's viewBox counts modules
//!   (its `width`/`height` are the PNG's size, for a sensible default).
//!
//! The matrix comes from the `qrcode` crate; the images are drawn here (`png.rs`,
//! `svg.rs`) so that both formats place the logo the same way.

mod logo;
mod png;
mod read;
mod svg;

use std::fmt;
use std::str::FromStr;

use qrcode::{Color, EcLevel, QrCode};

pub use logo::{LOGO_MAX_BYTES, LOGO_MAX_SIDE, Logo};
pub use read::read;

/// Light modules around the symbol on every side (the standard's minimum).
const QUIET_ZONE: usize = 4;
/// The largest share of the symbol's width that the logo's square may cover.
const LOGO_SHARE: f64 = 0.2;

/// Why a QR image could not be made.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    /// A format other than `png` or `svg` was asked for.
    #[error("unknown qr image format {0:?}: expected png or svg")]
    UnknownFormat(String),
    /// The text does not fit in the largest QR code (version 40) at the level used:
    /// about 2,300 bytes of a URL at level M, about 1,250 at level H (with a logo).
    #[error("the text ({len} bytes) is too long for a qr code{}", if *.with_logo { " with a logo" } else { "" })]
    TextTooLong { len: usize, with_logo: bool },
    /// The QR encoder refused the text for another reason (not expected for bytes).
    #[error("the qr code could not be made: {0}")]
    Encode(String),
    /// The logo file is larger than [`LOGO_MAX_BYTES`].
    #[error("the logo is {len} bytes, more than the {max} allowed", max = LOGO_MAX_BYTES)]
    LogoTooManyBytes { len: usize },
    /// The logo is wider or taller than [`LOGO_MAX_SIDE`] pixels.
    #[error("the logo is {width}x{height} pixels, more than the {max}x{max} allowed", max = LOGO_MAX_SIDE)]
    LogoTooLarge { width: u32, height: u32 },
    /// The logo is not a PNG or JPEG file (by its first bytes).
    #[error("the logo is not a png or jpeg image")]
    LogoFormat,
    /// The logo looks like a PNG or JPEG but does not decode (truncated, corrupt).
    #[error("the logo could not be read: {0}")]
    LogoUnreadable(String),
    /// Writing the PNG failed (not expected: it is written to memory).
    #[error("the png could not be written: {0}")]
    Png(String),
}

/// The image format of a rendered QR code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrFormat {
    Png,
    Svg,
}

impl QrFormat {
    /// The HTTP content type of an image in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            QrFormat::Png => "image/png",
            QrFormat::Svg => "image/svg+xml",
        }
    }
}

impl FromStr for QrFormat {
    type Err = QrError;

    /// `png` or `svg`, as in the `format` query parameter.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "png" => Ok(QrFormat::Png),
            "svg" => Ok(QrFormat::Svg),
            other => Err(QrError::UnknownFormat(other.to_owned())),
        }
    }
}

impl fmt::Display for QrFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QrFormat::Png => "png",
            QrFormat::Svg => "svg",
        })
    }
}

/// A rendered QR code: the file's bytes and its content type
/// (`image/png` or `image/svg+xml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrImage {
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// Renders `text` (a landing URL) as a QR code in `format`, with `logo` in the middle
/// if one is given (see the module docs for the levels and sizes).
pub fn render(text: &str, format: QrFormat, logo: Option<&Logo>) -> Result<QrImage, QrError> {
    let symbol = Symbol::new(text, logo.is_some())?;
    let bytes = match format {
        QrFormat::Png => png::render(&symbol, logo)?,
        QrFormat::Svg => svg::render(&symbol, logo).into_bytes(),
    };
    Ok(QrImage {
        content_type: format.content_type(),
        bytes,
    })
}

/// The modules of one QR code, with the square left light for a logo if there is one.
struct Symbol {
    /// Modules a side, without the quiet zone.
    width: usize,
    /// Row by row, `true` for a dark module.
    dark: Vec<bool>,
    /// The light square for the logo.
    hole: Option<Hole>,
}

/// A centred square of modules left light for the logo, in the symbol's coordinates
/// (without the quiet zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hole {
    start: usize,
    size: usize,
}

impl Hole {
    /// The largest square within [`LOGO_SHARE`] of the width that sits exactly in the
    /// middle: a QR code's width is odd, so the square's is odd too.
    fn centred(width: usize) -> Hole {
        let mut size = (width as f64 * LOGO_SHARE).floor() as usize;
        if size % 2 != width % 2 {
            size -= 1;
        }
        Hole {
            start: (width - size) / 2,
            size,
        }
    }

    fn contains(self, x: usize, y: usize) -> bool {
        let range = self.start..self.start + self.size;
        range.contains(&x) && range.contains(&y)
    }
}

impl Symbol {
    fn new(text: &str, with_logo: bool) -> Result<Symbol, QrError> {
        let level = if with_logo { EcLevel::H } else { EcLevel::M };
        let code = QrCode::with_error_correction_level(text, level).map_err(|e| match e {
            qrcode::types::QrError::DataTooLong => QrError::TextTooLong {
                len: text.len(),
                with_logo,
            },
            other => QrError::Encode(other.to_string()),
        })?;
        let width = code.width();
        let hole = with_logo.then(|| Hole::centred(width));
        let dark = code
            .to_colors()
            .into_iter()
            .enumerate()
            .map(|(i, color)| {
                let in_hole = hole.is_some_and(|hole| hole.contains(i % width, i / width));
                color == Color::Dark && !in_hole
            })
            .collect();
        Ok(Symbol { width, dark, hole })
    }

    /// Modules a side with the quiet zone.
    fn side(&self) -> usize {
        self.width + 2 * QUIET_ZONE
    }

    /// Whether the module at (`x`, `y`) is dark, counting the quiet zone (so 0 is the
    /// quiet zone's first module).
    fn is_dark(&self, x: usize, y: usize) -> bool {
        let inside = QUIET_ZONE..QUIET_ZONE + self.width;
        inside.contains(&x)
            && inside.contains(&y)
            && self.dark[(y - QUIET_ZONE) * self.width + (x - QUIET_ZONE)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_print() {
        assert_eq!("png".parse::<QrFormat>().unwrap(), QrFormat::Png);
        assert_eq!("svg".parse::<QrFormat>().unwrap(), QrFormat::Svg);
        assert_eq!(QrFormat::Svg.to_string(), "svg");
        let err = "gif".parse::<QrFormat>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown qr image format \"gif\": expected png or svg"
        );
    }

    #[test]
    fn the_hole_is_centred_and_at_most_a_fifth_of_the_width() {
        // Every QR code width, versions 1 to 40.
        for width in (21..=177).step_by(4) {
            let hole = Hole::centred(width);
            assert!(hole.size as f64 <= width as f64 * LOGO_SHARE, "{width}");
            assert!(hole.size >= 3, "{width}");
            assert_eq!(hole.start * 2 + hole.size, width, "{width}");
        }
        assert_eq!(Hole::centred(21), Hole { start: 9, size: 3 });
        assert_eq!(Hole::centred(41), Hole { start: 17, size: 7 });
    }

    #[test]
    fn a_logo_clears_the_centre_and_uses_level_h() {
        let url = "https://brand.example.com/l/8f3a2c";
        let plain = Symbol::new(url, false).unwrap();
        let with_logo = Symbol::new(url, true).unwrap();
        assert!(plain.hole.is_none());
        // Level H needs a larger symbol for the same text.
        assert!(with_logo.width > plain.width);
        let hole = with_logo.hole.unwrap();
        let mut cleared = 0;
        for y in 0..with_logo.side() {
            for x in 0..with_logo.side() {
                let in_hole = hole.contains(x.wrapping_sub(QUIET_ZONE), y.wrapping_sub(QUIET_ZONE));
                if in_hole {
                    assert!(!with_logo.is_dark(x, y));
                    cleared += 1;
                }
            }
        }
        assert_eq!(cleared, hole.size * hole.size);
    }

    #[test]
    fn the_quiet_zone_is_light() {
        let symbol = Symbol::new("https://brand.example.com/l/1", false).unwrap();
        let side = symbol.side();
        for i in 0..side {
            for q in 0..QUIET_ZONE {
                assert!(!symbol.is_dark(i, q) && !symbol.is_dark(q, i));
                assert!(!symbol.is_dark(i, side - 1 - q) && !symbol.is_dark(side - 1 - q, i));
            }
        }
        // The top-left finder pattern's corner is just inside it.
        assert!(symbol.is_dark(QUIET_ZONE, QUIET_ZONE));
    }
}
