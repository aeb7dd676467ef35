//! The PNG of a QR code: black modules on white, whole pixels a module.
//!
//! A module is drawn as a square of whole pixels (no anti-aliasing), so the edges a
//! scanner measures are sharp at any size; the image is at least [`MIN_SIDE_PX`]
//! pixels a side, enough to print on a poster or scan from a screen. The logo is
//! scaled to fit its square less half a module on each side, keeping its aspect
//! ratio, and blended over white where it is transparent.

use std::io::Cursor;

use image::imageops::{self, FilterType};
use image::{ImageFormat, Rgb, RgbImage};

use crate::{Logo, QUIET_ZONE, QrError, Symbol};

/// The fewest pixels a module.
const MIN_MODULE_PX: u32 = 8;
/// The fewest pixels a side of the image.
const MIN_SIDE_PX: u32 = 300;

const DARK: Rgb<u8> = Rgb([0, 0, 0]);
const LIGHT: Rgb<u8> = Rgb([255, 255, 255]);

/// Pixels a module for a symbol of `side` modules (with the quiet zone).
pub(crate) fn module_px(side: usize) -> u32 {
    let side = u32::try_from(side).expect("a qr code is at most 185 modules a side");
    MIN_MODULE_PX.max(MIN_SIDE_PX.div_ceil(side))
}

pub(crate) fn render(symbol: &Symbol, logo: Option<&Logo>) -> Result<Vec<u8>, QrError> {
    let scale = module_px(symbol.side());
    let side_px = symbol.side() as u32 * scale;
    let mut canvas = RgbImage::from_fn(side_px, side_px, |x, y| {
        if symbol.is_dark((x / scale) as usize, (y / scale) as usize) {
            DARK
        } else {
            LIGHT
        }
    });
    if let (Some(logo), Some(hole)) = (logo, symbol.hole) {
        let margin = scale / 2;
        let origin = (QUIET_ZONE + hole.start) as u32 * scale + margin;
        let room = hole.size as u32 * scale - 2 * margin;
        let (width, height) = fit(logo.pixels.dimensions(), room);
        let scaled = imageops::resize(&logo.pixels, width, height, FilterType::Triangle);
        let (left, top) = (origin + (room - width) / 2, origin + (room - height) / 2);
        for (x, y, pixel) in scaled.enumerate_pixels() {
            let [r, g, b, a] = pixel.0;
            let over_white = |c: u8| ((c as u32 * a as u32 + 255 * (255 - a as u32)) / 255) as u8;
            canvas.put_pixel(
                left + x,
                top + y,
                Rgb([over_white(r), over_white(g), over_white(b)]),
            );
        }
    }
    let mut bytes = Vec::new();
    canvas
        .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .map_err(|e| QrError::Png(e.to_string()))?;
    Ok(bytes)
}

/// The largest size of the same aspect ratio as `(width, height)` that fits in a
/// square of `room` pixels.
fn fit((width, height): (u32, u32), room: u32) -> (u32, u32) {
    let longest = width.max(height) as u64;
    let scaled = |n: u32| ((n as u64 * room as u64 + longest / 2) / longest).max(1) as u32;
    (scaled(width), scaled(height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_are_at_least_8_px_and_images_at_least_300() {
        assert_eq!(module_px(29), 11); // version 1: 29 * 11 = 319
        assert_eq!(module_px(45), 8); // version 5: 45 * 8 = 360
        assert_eq!(module_px(185), 8);
        for side in (29..=185).step_by(4) {
            assert!(side as u32 * module_px(side) >= MIN_SIDE_PX);
        }
    }

    #[test]
    fn a_logo_keeps_its_aspect_ratio() {
        assert_eq!(fit((256, 256), 48), (48, 48));
        assert_eq!(fit((200, 100), 48), (48, 24));
        assert_eq!(fit((10, 1000), 48), (1, 48));
    }
}
