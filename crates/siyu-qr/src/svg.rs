//! The SVG of a QR code: one `<path>` of the dark modules, the viewBox in modules.
//!
//! One path of row runs (`M x y h n v1 h -n z` for each run of dark modules in a row)
//! is a few kilobytes where a `<rect>` per module would be tens, and it renders
//! without the hairline seams that abutting rects show when anti-aliased.
//! `shape-rendering="crispEdges"` keeps the module edges sharp for the same reason.
//! The logo is a PNG data URI in an `<image>` over its square of light modules,
//! half a module in from its edges, so the file stands alone (no request for the
//! logo when it is shown or printed). Nothing from the caller is written into the
//! SVG but numbers and the logo's base64, so it needs no escaping and can carry no
//! script when served from the API's origin.

use std::fmt::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::png::module_px;
use crate::{Logo, QUIET_ZONE, Symbol};

pub(crate) fn render(symbol: &Symbol, logo: Option<&Logo>) -> String {
    let side = symbol.side();
    let px = side as u32 * module_px(side);
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{px}" height="{px}" viewBox="0 0 {side} {side}" shape-rendering="crispEdges"><rect width="{side}" height="{side}" fill="#fff"/><path fill="#000" d=""##
    );
    for y in 0..side {
        let mut x = 0;
        while x < side {
            if !symbol.is_dark(x, y) {
                x += 1;
                continue;
            }
            let run = (x..side).take_while(|&x| symbol.is_dark(x, y)).count();
            write!(svg, "M{x} {y}h{run}v1h-{run}z").expect("writing to a string");
            x += run;
        }
    }
    svg.push_str(r#""/>"#);
    if let (Some(logo), Some(hole)) = (logo, symbol.hole) {
        let at = (QUIET_ZONE + hole.start) as f64 + 0.5;
        let size = hole.size - 1;
        let data = STANDARD.encode(&logo.png);
        write!(
            svg,
            r#"<image x="{at}" y="{at}" width="{size}" height="{size}" href="data:image/png;base64,{data}"/>"#
        )
        .expect("writing to a string");
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_path_of_row_runs() {
        let symbol = Symbol::new("https://brand.example.com/l/1", false).unwrap();
        let svg = render(&symbol, None);
        assert_eq!(svg.matches("<path").count(), 1);
        assert!(!svg.contains("<image"));
        // Version 3 (29 modules) and the quiet zone: 37 modules, 9 pixels each.
        assert!(svg.starts_with(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="333" height="333" viewBox="0 0 37 37""#
        ));
        // The top-left finder pattern's first row: seven dark modules from (4, 4).
        assert!(svg.contains(r#"d="M4 4h7v1h-7z"#));
        // Every dark module is in exactly one run.
        let dark = (0..symbol.side())
            .flat_map(|y| (0..symbol.side()).map(move |x| (x, y)))
            .filter(|&(x, y)| symbol.is_dark(x, y))
            .count();
        let path = svg
            .split(r#" d=""#)
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let in_runs: usize = path
            .split('M')
            .skip(1)
            .map(|run| {
                // "x yhNv1h-Nz"
                let n = run.split(['h', 'v']).nth(1).unwrap();
                n.parse::<usize>().unwrap()
            })
            .sum();
        assert_eq!(in_runs, dark);
    }
}
