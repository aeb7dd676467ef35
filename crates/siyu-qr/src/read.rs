//! Reading a QR code back from an image: WeCom gives a contact way's QR only as an
//! image, and siyu reads the text it encodes once, when it keeps the image, so that it
//! can draw the same code again as SVG or with the brand's logo.

use std::io::Cursor;

use image::{ImageReader, Limits};

/// The widest and tallest image read (WeCom's QR images are a few hundred pixels).
const READ_MAX_SIDE: u32 = 4096;

/// The text of the one QR code in a PNG or JPEG image, if there is exactly one and it
/// decodes.
pub fn read(image: &[u8]) -> Option<String> {
    let mut reader = ImageReader::new(Cursor::new(image))
        .with_guessed_format()
        .ok()?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(READ_MAX_SIDE);
    limits.max_image_height = Some(READ_MAX_SIDE);
    reader.limits(limits);
    let grey = reader.decode().ok()?.to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(
        grey.width() as usize,
        grey.height() as usize,
        |x, y| grey.get_pixel(x as u32, y as u32).0[0],
    );
    let grids = prepared.detect_grids();
    match grids.as_slice() {
        [grid] => grid.decode().ok().map(|(_, text)| text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{QrFormat, render};

    #[test]
    fn a_rendered_png_reads_back() {
        let url = "https://work.weixin.qq.com/ca/cawcde1234567890";
        let png = render(url, QrFormat::Png, None).unwrap();
        assert_eq!(read(&png.bytes).as_deref(), Some(url));
    }

    #[test]
    fn what_is_not_a_qr_image_reads_as_nothing() {
        assert_eq!(read(b"not an image"), None);
        let blank = image::RgbaImage::from_pixel(64, 64, image::Rgba([255, 255, 255, 255]));
        let mut png = Vec::new();
        blank
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert_eq!(read(&png), None);
    }
}
