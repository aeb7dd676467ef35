//! Every rendered QR code is read back by an independent decoder (rqrr), the SVG after
//! rasterizing it with resvg (logo included): the code must scan to the URL, with or
//! without the logo, and the logo must really be drawn.

use std::io::Cursor;

use image::{ImageFormat, Rgba, RgbaImage};
use siyu_qr::{Logo, QrError, QrFormat, QrImage, render};

const URL: &str = "https://brand.example.com/l/8f3a2c91?utm_source=poster";

/// rqrr's number for level M (the format bits' value).
const LEVEL_M: u16 = 0;
/// rqrr's number for level H.
const LEVEL_H: u16 = 2;

/// The test logo's colours: a red disc with a dark blue square in it, transparent
/// outside the disc. Its middle is dark, like many real logos.
const RED: [u8; 3] = [220, 40, 40];
const BLUE: [u8; 3] = [20, 20, 120];

fn test_logo() -> Logo {
    let side = 120;
    let image = RgbaImage::from_fn(side, side, |x, y| {
        let (dx, dy) = (x as i32 - 60, y as i32 - 60);
        if dx.abs() < 25 && dy.abs() < 25 {
            Rgba([BLUE[0], BLUE[1], BLUE[2], 255])
        } else if dx * dx + dy * dy < 60 * 60 {
            Rgba([RED[0], RED[1], RED[2], 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    });
    let mut png = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .unwrap();
    Logo::from_bytes(&png).unwrap()
}

/// An RGB image of the rendered QR code: the PNG decoded, or the SVG rasterized.
fn pixels(image: &QrImage) -> RgbaImage {
    match image.content_type {
        "image/png" => image::load_from_memory_with_format(&image.bytes, ImageFormat::Png)
            .unwrap()
            .to_rgba8(),
        "image/svg+xml" => {
            let svg = std::str::from_utf8(&image.bytes).unwrap();
            let tree = resvg::usvg::Tree::from_str(svg, &resvg::usvg::Options::default()).unwrap();
            let size = tree.size().to_int_size();
            let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).unwrap();
            resvg::render(&tree, Default::default(), &mut pixmap.as_mut());
            // Opaque everywhere (a white background), so premultiplied is plain RGBA.
            RgbaImage::from_raw(size.width(), size.height(), pixmap.take()).unwrap()
        }
        other => panic!("unexpected content type {other}"),
    }
}

/// The text and error correction level that rqrr reads from the image.
fn decode(image: &RgbaImage) -> (String, u16) {
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(
        image.width() as usize,
        image.height() as usize,
        |x, y| {
            let [r, g, b, _] = image.get_pixel(x as u32, y as u32).0;
            ((r as u32 * 299 + g as u32 * 587 + b as u32 * 114) / 1000) as u8
        },
    );
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one qr code found");
    let (meta, text) = grids[0].decode().expect("the qr code decodes");
    (text, meta.ecc_level)
}

fn centre(image: &RgbaImage) -> [u8; 3] {
    let [r, g, b, _] = image.get_pixel(image.width() / 2, image.height() / 2).0;
    [r, g, b]
}

/// Pixels that are neither black nor white: drawn by the logo (or its smoothing).
fn coloured(image: &RgbaImage) -> usize {
    image
        .pixels()
        .filter(|p| {
            let [r, g, b, _] = p.0;
            !(r == g && g == b)
        })
        .count()
}

fn close(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(&x, y)| x.abs_diff(y) <= 8)
}

#[test]
fn a_png_without_logo_scans_to_the_url_at_level_m() {
    let image = render(URL, QrFormat::Png, None).unwrap();
    assert_eq!(image.content_type, "image/png");
    let pixels = pixels(&image);
    assert!(pixels.width() >= 300 && pixels.width() == pixels.height());
    assert_eq!(coloured(&pixels), 0, "black on white only");
    assert_eq!(decode(&pixels), (URL.to_owned(), LEVEL_M));
}

#[test]
fn a_png_with_logo_scans_to_the_url_at_level_h_and_shows_the_logo() {
    let image = render(URL, QrFormat::Png, Some(&test_logo())).unwrap();
    assert_eq!(image.content_type, "image/png");
    let pixels = pixels(&image);
    assert!(close(centre(&pixels), BLUE), "{:?}", centre(&pixels));
    assert!(coloured(&pixels) > 1000, "{}", coloured(&pixels));
    assert_eq!(decode(&pixels), (URL.to_owned(), LEVEL_H));
}

#[test]
fn an_svg_without_logo_scans_to_the_url_at_level_m() {
    let image = render(URL, QrFormat::Svg, None).unwrap();
    assert_eq!(image.content_type, "image/svg+xml");
    let svg = String::from_utf8(image.bytes.clone()).unwrap();
    assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
    assert_eq!(svg.matches("<path").count(), 1);
    assert!(!svg.contains("<image"));
    let pixels = pixels(&image);
    assert_eq!(decode(&pixels), (URL.to_owned(), LEVEL_M));
}

#[test]
fn an_svg_with_logo_scans_to_the_url_at_level_h_and_shows_the_logo() {
    let image = render(URL, QrFormat::Svg, Some(&test_logo())).unwrap();
    let svg = String::from_utf8(image.bytes.clone()).unwrap();
    assert_eq!(svg.matches("<image").count(), 1);
    assert!(svg.contains(r#"href="data:image/png;base64,iVBORw0KGgo"#));
    let pixels = pixels(&image);
    assert!(close(centre(&pixels), BLUE), "{:?}", centre(&pixels));
    assert!(coloured(&pixels) > 1000, "{}", coloured(&pixels));
    assert_eq!(decode(&pixels), (URL.to_owned(), LEVEL_H));
}

/// From version 7 on, a centre alignment pattern sits under the logo: the codes must
/// still scan, up to the largest text that fits at level H.
#[test]
fn logos_scan_at_every_size_of_code() {
    let logo = test_logo();
    for len in [80, 150, 300, 600, 1000, 1200] {
        let url = format!("https://brand.example.com/l/8f3a2c91?q={}", "x".repeat(len));
        for format in [QrFormat::Png, QrFormat::Svg] {
            let image = render(&url, format, Some(&logo)).unwrap();
            let pixels = pixels(&image);
            assert!(close(centre(&pixels), BLUE), "{len} {format}");
            assert_eq!(decode(&pixels), (url.clone(), LEVEL_H), "{len} {format}");
        }
    }
}

#[test]
fn text_too_long_is_refused_clearly() {
    let logo = test_logo();
    let url = format!("https://brand.example.com/l/1?q={}", "x".repeat(3000));
    for format in [QrFormat::Png, QrFormat::Svg] {
        let err = render(&url, format, Some(&logo)).unwrap_err();
        assert!(
            matches!(err, QrError::TextTooLong { len, with_logo: true } if len == url.len()),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "the text ({} bytes) is too long for a qr code with a logo",
                url.len()
            )
        );
        let err = render(&url, format, None).unwrap_err();
        assert!(matches!(
            err,
            QrError::TextTooLong {
                with_logo: false,
                ..
            }
        ));
    }

    // 1,500 bytes fit at level M but not at level H: without a logo it scans.
    let url = format!("https://brand.example.com/l/1?q={}", "x".repeat(1500));
    let err = render(&url, QrFormat::Png, Some(&logo)).unwrap_err();
    assert!(matches!(
        err,
        QrError::TextTooLong {
            with_logo: true,
            ..
        }
    ));
    let image = render(&url, QrFormat::Png, None).unwrap();
    assert_eq!(decode(&pixels(&image)), (url, LEVEL_M));
}

#[test]
fn a_broken_logo_is_refused_before_rendering() {
    let mut png = Vec::new();
    RgbaImage::from_pixel(64, 64, Rgba([1, 2, 3, 255]))
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .unwrap();
    png.truncate(png.len() - 20);
    let err = Logo::from_bytes(&png).unwrap_err();
    assert!(
        err.to_string().starts_with("the logo could not be read: "),
        "{err}"
    );
}
