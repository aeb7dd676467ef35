//! The store's modules form no import circle, and no file outgrows a read.
//! `cargo test -p siyu-store --test layering -- --nocapture` prints the graph.

use std::path::Path;

use siyu_store::testing::module_graph::ModuleGraph;

/// Lines a source file may have before it should be split by concern.
const MAX_LINES: usize = 800;

#[test]
fn store_modules_form_no_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = ModuleGraph::read(&src, Some("lib.rs"));
    println!("{}", graph.describe());
    assert!(graph.edges.len() > 20, "the store's modules were read");
    let circles = graph.circles();
    assert!(circles.is_empty(), "import circles: {circles:?}");
}

#[test]
fn no_store_file_is_too_long() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = ModuleGraph::read(&src, Some("lib.rs"));
    let long: Vec<_> = graph
        .files
        .iter()
        .filter(|(_, lines)| *lines > MAX_LINES)
        .collect();
    assert!(long.is_empty(), "files over {MAX_LINES} lines: {long:?}");
}
