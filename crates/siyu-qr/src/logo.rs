//! A brand's logo, decoded once and checked before it goes into any QR code.
//!
//! Only PNG and JPEG are taken (what brands have, and all that is compiled in), at most
//! [`LOGO_MAX_BYTES`] and [`LOGO_MAX_SIDE`] pixels a side: the dimensions are read from
//! the header before anything is decoded, so a small file that claims a huge image
//! costs nothing. The logo is kept at most [`KEPT_SIDE`] pixels a side, more than it
//! ever covers in a PNG and small enough to embed in every SVG, which carries it as a
//! PNG data URI.

use std::fmt;
use std::io::Cursor;

use image::imageops::FilterType;
use image::{ImageFormat, ImageReader, Limits, RgbaImage};

use crate::QrError;

/// The largest logo file taken, in bytes (1 MiB).
pub const LOGO_MAX_BYTES: usize = 1024 * 1024;
/// The widest and tallest logo taken, in pixels.
pub const LOGO_MAX_SIDE: u32 = 1024;
/// The logo is scaled down to fit this many pixels a side when it is larger.
const KEPT_SIDE: u32 = 256;

/// A decoded brand logo, ready to be drawn in the middle of a QR code.
#[derive(Clone)]
pub struct Logo {
    /// The logo's pixels, at most [`KEPT_SIDE`] a side.
    pub(crate) pixels: RgbaImage,
    /// The same pixels as a PNG file, for the SVG's data URI.
    pub(crate) png: Vec<u8>,
}

impl Logo {
    /// Reads a PNG or JPEG logo, refusing anything else, a file that does not decode,
    /// and one over [`LOGO_MAX_BYTES`] or [`LOGO_MAX_SIDE`] pixels a side.
    pub fn from_bytes(bytes: &[u8]) -> Result<Logo, QrError> {
        if bytes.len() > LOGO_MAX_BYTES {
            return Err(QrError::LogoTooManyBytes { len: bytes.len() });
        }
        let (width, height) = reader(bytes)?
            .into_dimensions()
            .map_err(|e| QrError::LogoUnreadable(e.to_string()))?;
        if width > LOGO_MAX_SIDE || height > LOGO_MAX_SIDE {
            return Err(QrError::LogoTooLarge { width, height });
        }
        let mut reader = reader(bytes)?;
        let mut limits = Limits::default();
        limits.max_image_width = Some(LOGO_MAX_SIDE);
        limits.max_image_height = Some(LOGO_MAX_SIDE);
        reader.limits(limits);
        let mut decoded = reader
            .decode()
            .map_err(|e| QrError::LogoUnreadable(e.to_string()))?;
        if width > KEPT_SIDE || height > KEPT_SIDE {
            decoded = decoded.resize(KEPT_SIDE, KEPT_SIDE, FilterType::Triangle);
        }
        let pixels = decoded.to_rgba8();
        let mut png = Vec::new();
        pixels
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .map_err(|e| QrError::Png(e.to_string()))?;
        Ok(Logo { pixels, png })
    }

    /// The logo's width and height as kept, in pixels.
    pub fn dimensions(&self) -> (u32, u32) {
        self.pixels.dimensions()
    }
}

impl fmt::Debug for Logo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (width, height) = self.dimensions();
        f.debug_struct("Logo")
            .field("width", &width)
            .field("height", &height)
            .finish_non_exhaustive()
    }
}

/// A reader of `bytes` that has recognised them as PNG or JPEG by their first bytes.
fn reader(bytes: &[u8]) -> Result<ImageReader<Cursor<&[u8]>>, QrError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| QrError::LogoUnreadable(e.to_string()))?;
    match reader.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg) => Ok(reader),
        _ => Err(QrError::LogoFormat),
    }
}

#[cfg(test)]
mod tests {
    use image::{ImageEncoder, Rgb, RgbImage};

    use super::*;

    fn png_of(width: u32, height: u32) -> Vec<u8> {
        let image = RgbImage::from_pixel(width, height, Rgb([200, 30, 30]));
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .unwrap();
        bytes
    }

    #[test]
    fn png_and_jpeg_are_taken_and_large_ones_kept_smaller() {
        let logo = Logo::from_bytes(&png_of(40, 20)).unwrap();
        assert_eq!(logo.dimensions(), (40, 20));
        assert_eq!(logo.pixels.get_pixel(0, 0).0, [200, 30, 30, 255]);

        let image = RgbImage::from_pixel(1000, 500, Rgb([10, 120, 200]));
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut jpeg)
            .write_image(image.as_raw(), 1000, 500, image::ExtendedColorType::Rgb8)
            .unwrap();
        let logo = Logo::from_bytes(&jpeg).unwrap();
        assert_eq!(logo.dimensions(), (256, 128));
        // The kept PNG decodes to the same pixels.
        let again = image::load_from_memory(&logo.png).unwrap().to_rgba8();
        assert_eq!(again, logo.pixels);
    }

    #[test]
    fn other_broken_and_large_logos_are_refused() {
        let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;";
        assert!(matches!(Logo::from_bytes(gif), Err(QrError::LogoFormat)));
        assert!(matches!(
            Logo::from_bytes(b"not an image at all"),
            Err(QrError::LogoFormat)
        ));

        let mut truncated = png_of(64, 64);
        truncated.truncate(truncated.len() / 2);
        let err = Logo::from_bytes(&truncated).unwrap_err();
        assert!(matches!(err, QrError::LogoUnreadable(_)), "{err:?}");

        let err = Logo::from_bytes(&png_of(1025, 10)).unwrap_err();
        assert!(
            matches!(
                err,
                QrError::LogoTooLarge {
                    width: 1025,
                    height: 10
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "the logo is 1025x10 pixels, more than the 1024x1024 allowed"
        );

        let err = Logo::from_bytes(&vec![0; LOGO_MAX_BYTES + 1]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the logo is 1048577 bytes, more than the 1048576 allowed"
        );
    }
}
