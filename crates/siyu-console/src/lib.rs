//! The web console, embedded. `build.rs` runs the console's npm build (`web/`) and embeds
//! its output here, so one `siyu` binary serves the API and the console with nothing to
//! deploy beside it. The server asks [`asset`] for a path and falls back to
//! [`index_html`] for the console's own routes (`/customers/42`), which the browser app
//! resolves itself.

/// One file of the console's build.
pub struct Asset {
    /// Its URL path, from `/`.
    pub path: &'static str,
    pub bytes: &'static [u8],
    /// The same bytes gzip-compressed, for files worth it.
    pub gzip: Option<&'static [u8]>,
}

impl Asset {
    pub fn content_type(&self) -> &'static str {
        content_type(self.path)
    }

    /// Vite names the files under `/assets/` by a hash of their content, so they can be
    /// cached for good; everything else (index.html) must be revalidated.
    pub fn immutable(&self) -> bool {
        self.path.starts_with("/assets/")
    }
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

const NOT_BUILT: Asset = Asset {
    path: "/index.html",
    bytes: b"<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>siyu</title>\
<p>This siyu was built without its console (SIYU_CONSOLE_SKIP). Build it again with Node.js \
and npm installed, without that variable, to get the console. The API is at /api/v1 and its \
document at <a href=\"/api/openapi.json\">/api/openapi.json</a>.</p></html>",
    gzip: None,
};

/// The file at `path` (`/assets/index-3f2a.js`), if the console has one.
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.path == path)
}

/// The console's entry page, served for every console route.
pub fn index_html() -> &'static Asset {
    asset("/index.html").unwrap_or(&NOT_BUILT)
}

/// Whether this binary carries the console (it does unless built with SIYU_CONSOLE_SKIP).
pub fn is_built() -> bool {
    asset("/index.html").is_some()
}

fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match extension {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(
            content_type("/assets/index-ab12.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("/index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("/favicon.svg"), "image/svg+xml");
        assert_eq!(content_type("/LICENSE"), "application/octet-stream");
    }

    #[test]
    fn the_build_has_an_index_that_loads_hashed_assets() {
        if !is_built() {
            return; // built with SIYU_CONSOLE_SKIP: nothing embedded to check
        }
        let index = std::str::from_utf8(index_html().bytes).unwrap();
        let script = ASSETS
            .iter()
            .find(|a| a.path.starts_with("/assets/") && a.path.ends_with(".js"))
            .expect("the build has a script under /assets/");
        assert!(script.immutable());
        assert!(!index_html().immutable());
        assert!(
            index.contains("/assets/"),
            "index.html loads the hashed assets"
        );
        let gz = script.gzip.expect("scripts are compressed");
        assert!(gz.len() < script.bytes.len());
    }
}
