//! The routes' layering, checked on their source: route modules form no import circle,
//! no file outgrows a read, and no handler restricts customers to a data scope by hand
//! (the store does, through the scope `Auth::scope` hands out). Run
//! `cargo test -p siyu-server --lib structure -- --nocapture` to see the graph.

use std::path::{Path, PathBuf};

use siyu_store::testing::module_graph::ModuleGraph;

const MAX_LINES: usize = 800;

fn routes() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes")
}

#[test]
fn route_modules_form_no_circle_and_stay_short() {
    let graph = ModuleGraph::read_folder(&routes(), Some("mod.rs"), "crate::routes");
    println!("{}", graph.describe());
    assert!(graph.edges.len() > 15, "the route modules were read");
    assert!(
        graph.edges.values().any(|to| !to.is_empty()),
        "imports between route modules are seen"
    );
    let circles = graph.circles();
    assert!(circles.is_empty(), "import circles: {circles:?}");
    let long: Vec<_> = graph
        .files
        .iter()
        .filter(|(_, lines)| *lines > MAX_LINES)
        .collect();
    assert!(long.is_empty(), "files over {MAX_LINES} lines: {long:?}");
}

/// Where a route may take the whole tenant from the store itself, and why. Everywhere
/// else a handler's scope comes from `Auth::scope`, limited to the caller's reach.
const WHOLE_TENANT: &[(&str, &str)] = &[
    // signing in: no principal yet
    ("auth.rs", "store.tenant(credentials.tenant_id)"),
    // WeCom's callbacks: no principal; the connector named in the URL gives the tenant
    ("wecom_callbacks.rs", "store.tenant(connector.tenant)"),
    // a code's public landing page: no principal; the slug gives the code and tenant
    ("landing.rs", "store.tenant(code.tenant())"),
    // a tracked link's public redirect: no principal; the slug gives the link and
    // tenant (its crawler count, the tenant's links source and link key)
    ("link_redirect.rs", "store.tenant(link.tenant)"),
    ("link_redirect.rs", "store.tenant(tenant)"),
];

/// Every `.rs` file under `dir`, folders of a capability (`routes/acquisition/`) included.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

#[test]
fn handlers_never_apply_a_data_scope_by_hand() {
    let mut found = Vec::new();
    let files = rust_files(&routes());
    assert!(
        files.iter().any(|f| f.ends_with("acquisition/codes.rs")),
        "route folders are read"
    );
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        // statements split over lines read as one
        let flat: String = text.split_whitespace().collect::<Vec<_>>().join("");
        for by_hand in ["visible_owners", "visible_customer", "reach().owners()"] {
            if flat.contains(by_hand) {
                found.push(format!("{name}: {by_hand}"));
            }
        }
        let allowed: Vec<String> = WHOLE_TENANT
            .iter()
            .filter(|(file, _)| *file == name)
            .map(|(_, call)| call.split_whitespace().collect())
            .collect();
        let mut rest = flat.as_str();
        while let Some(at) = rest.find("store.tenant(") {
            let call: String = rest[at..].chars().take_while(|c| *c != ')').collect();
            if !allowed.iter().any(|a| a.trim_end_matches(')') == call) {
                found.push(format!("{name}: {call})"));
            }
            rest = &rest[at + 1..];
        }
    }
    assert!(
        found.is_empty(),
        "handlers must take their scope from Auth::scope (the store then limits \
         customers to the caller's reach): {found:?}"
    );
}
