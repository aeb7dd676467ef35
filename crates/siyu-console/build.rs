//! Builds the console in `web/` with npm and writes `assets.rs`, which embeds every file
//! of the build (and a gzip copy of the compressible ones) into the binary.
//!
//! The API's types are generated into `web/generated/`, which is not watched, so
//! generating them does not make cargo run this script again.
//!
//! The console is part of the normal `cargo build`: a fresh clone needs only Node.js and
//! npm besides the Rust toolchain. `SIYU_CONSOLE_SKIP=1` builds without it (the server then
//! answers `/` with a page that says how to build the console) — for API-only work on a
//! machine without Node.js.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let web = manifest
        .join("../../web")
        .canonicalize()
        .expect("web/ exists");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let dist = out.join("dist");

    println!("cargo::rerun-if-env-changed=SIYU_CONSOLE_SKIP");
    for watched in [
        "src",
        "index.html",
        "public",
        "package.json",
        "package-lock.json",
        "openapi.json",
        "tsconfig.json",
        "vite.config.ts",
        "scripts",
    ] {
        println!("cargo::rerun-if-changed={}", web.join(watched).display());
    }

    let files = if std::env::var_os("SIYU_CONSOLE_SKIP").is_some_and(|v| v != "0") {
        Vec::new()
    } else {
        build(&web, &dist);
        let mut files = Vec::new();
        collect(&dist, &dist, &mut files);
        files.sort();
        files
    };

    let mut code = String::from("pub static ASSETS: &[Asset] = &[\n");
    for relative in &files {
        let path = dist.join(relative);
        let bytes = std::fs::read(&path).unwrap();
        let gzip = if compressible(relative) && bytes.len() > 1024 {
            let gz_path = out.join("gz").join(format!("{relative}.gz"));
            std::fs::create_dir_all(gz_path.parent().unwrap()).unwrap();
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            encoder.write_all(&bytes).unwrap();
            std::fs::write(&gz_path, encoder.finish().unwrap()).unwrap();
            format!("Some(include_bytes!({:?}))", gz_path.display().to_string())
        } else {
            "None".to_string()
        };
        code.push_str(&format!(
            "    Asset {{ path: {:?}, bytes: include_bytes!({:?}), gzip: {gzip} }},\n",
            format!("/{relative}"),
            path.display().to_string(),
        ));
    }
    code.push_str("];\n");
    std::fs::write(out.join("assets.rs"), code).unwrap();
}

fn build(web: &Path, dist: &Path) {
    // node_modules is (re)installed when it was not installed from this very lock file:
    // a copy of the lock it was installed from sits inside it
    let lock = std::fs::read(web.join("package-lock.json")).expect("web/package-lock.json");
    let installed_from = web.join("node_modules/.siyu-installed-lock.json");
    if std::fs::read(&installed_from).ok().as_deref() != Some(lock.as_slice()) {
        npm(web, &["ci", "--no-audit", "--no-fund", "--loglevel=error"]);
        std::fs::write(&installed_from, &lock).expect("node_modules is writable");
    }
    let out_dir = dist.display().to_string();
    npm(
        web,
        &["run", "build", "--", "--outDir", &out_dir, "--emptyOutDir"],
    );
}

fn npm(web: &Path, args: &[&str]) {
    let status = Command::new("npm")
        .args(args)
        .current_dir(web)
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "siyu's console needs Node.js and npm to build (`npm {}` in web/ failed to start: {e}); \
                 install them, or set SIYU_CONSOLE_SKIP=1 to build without the console",
                args.join(" ")
            )
        });
    assert!(
        status.success(),
        "`npm {}` in {} failed ({status}); its output is above",
        args.join(" "),
        web.display()
    );
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let relative = path.strip_prefix(root).unwrap();
            files.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
}

fn compressible(path: &str) -> bool {
    [".js", ".css", ".html", ".svg", ".json", ".map", ".txt"]
        .iter()
        .any(|ext| path.ends_with(ext))
}
