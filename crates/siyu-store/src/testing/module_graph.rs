//! Which module of a crate (or a folder of modules) names which other, read from the
//! source text, for tests that keep the layering honest: no import circles, files of a
//! readable size.
//!
//! A module is a top-level `name.rs` or `name/` of the folder. Every mention of
//! `crate::name` or `super::name` counts as an import, including the items of a
//! `use crate::{…}` group and names the crate root re-exports (`pub use name::Item`,
//! then `crate::Item`). Mentions inside a module's own folder (`super::` in
//! `name/part.rs`) are its own business. Comments are skipped; the text is not compiled,
//! so it errs towards seeing an import where a string merely looks like one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module → the modules it names.
#[derive(Debug, Default)]
pub struct ModuleGraph {
    pub edges: BTreeMap<String, BTreeSet<String>>,
    /// Every `.rs` file read, with its number of lines.
    pub files: Vec<(PathBuf, usize)>,
}

impl ModuleGraph {
    /// Reads the modules in `dir`, a crate's `src`. `root` is the file that re-exports
    /// items (`lib.rs`), if any: its `pub use name::…` lines map re-exported names to
    /// modules.
    pub fn read(dir: &Path, root: Option<&str>) -> ModuleGraph {
        Self::read_folder(dir, root, "crate")
    }

    /// Reads the modules of a folder that is itself a module: `path` is how code names
    /// it (`crate::routes`); `root` is its `mod.rs`.
    pub fn read_folder(dir: &Path, root: Option<&str>, path: &str) -> ModuleGraph {
        let mut modules: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
        for entry in std::fs::read_dir(dir).expect("readable folder") {
            let path = entry.expect("entry").path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                modules.insert(name, rust_files(&path));
            } else if path.extension().is_some_and(|e| e == "rs")
                && Some(path.file_name().unwrap().to_string_lossy().as_ref()) != root
            {
                modules.insert(name, vec![path]);
            }
        }
        let mut reexports: BTreeMap<String, String> = BTreeMap::new();
        if let Some(root) = root {
            let text = strip_comments(&std::fs::read_to_string(dir.join(root)).expect("root"));
            for line in text.lines() {
                let line = line.trim();
                let Some(rest) = line
                    .strip_prefix("pub use ")
                    .or_else(|| line.strip_prefix("pub(crate) use "))
                else {
                    continue;
                };
                let Some((module, items)) = rest.split_once("::") else {
                    continue;
                };
                if modules.contains_key(module) {
                    for item in group_items(items.trim_end_matches(';')) {
                        reexports.insert(item, module.to_owned());
                    }
                }
            }
        }
        let mut graph = ModuleGraph::default();
        for (module, files) in &modules {
            let mut named = BTreeSet::new();
            for file in files {
                let text = std::fs::read_to_string(file).expect("source");
                graph.files.push((file.clone(), text.lines().count()));
                let nested = file.parent() != Some(dir);
                for (prefix, mention) in mentions(&strip_comments(&text), path) {
                    // `super::` inside the module's own folder stays inside it
                    if prefix == "super" && nested && file.file_name().unwrap() != "mod.rs" {
                        continue;
                    }
                    let target = if modules.contains_key(&mention) {
                        Some(mention)
                    } else {
                        reexports.get(&mention).cloned()
                    };
                    if let Some(target) = target.filter(|t| t != module) {
                        named.insert(target);
                    }
                }
            }
            graph.edges.insert(module.clone(), named);
        }
        graph
    }

    /// Each import circle, as the modules along it (empty when there is none).
    pub fn circles(&self) -> Vec<Vec<String>> {
        // Tarjan's strongly connected components; a component of more than one module
        // is a circle
        struct Walk<'g> {
            graph: &'g ModuleGraph,
            index: BTreeMap<&'g str, usize>,
            low: BTreeMap<&'g str, usize>,
            stack: Vec<&'g str>,
            on_stack: BTreeSet<&'g str>,
            found: Vec<Vec<String>>,
        }
        impl<'g> Walk<'g> {
            fn visit(&mut self, m: &'g str) {
                let i = self.index.len();
                self.index.insert(m, i);
                self.low.insert(m, i);
                self.stack.push(m);
                self.on_stack.insert(m);
                for next in self.graph.edges.get(m).into_iter().flatten() {
                    let next = next.as_str();
                    if !self.index.contains_key(next) {
                        self.visit(next);
                        let low = self.low[m].min(self.low[next]);
                        self.low.insert(m, low);
                    } else if self.on_stack.contains(next) {
                        let low = self.low[m].min(self.index[next]);
                        self.low.insert(m, low);
                    }
                }
                if self.low[m] == self.index[m] {
                    let mut part = Vec::new();
                    while let Some(top) = self.stack.pop() {
                        self.on_stack.remove(top);
                        part.push(top.to_owned());
                        if top == m {
                            break;
                        }
                    }
                    if part.len() > 1 {
                        part.sort();
                        self.found.push(part);
                    }
                }
            }
        }
        let mut walk = Walk {
            graph: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            found: Vec::new(),
        };
        for m in self.edges.keys() {
            if !walk.index.contains_key(m.as_str()) {
                walk.visit(m);
            }
        }
        walk.found
    }

    /// The graph as lines `module -> a, b`, for a test's output.
    pub fn describe(&self) -> String {
        self.edges
            .iter()
            .map(|(m, to)| {
                format!(
                    "{m} -> {}",
                    to.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("readable folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The text without `//` comments (doc comments included) and `/* */` blocks.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let code = match line.find("//") {
            // a `//` inside a string ("http://…") is kept: only a comment that starts
            // the line's code or follows code outside quotes is dropped
            Some(at) if line[..at].matches('"').count() % 2 == 0 => &line[..at],
            _ => line,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// Every (`path` | `super`, first name) mentioned, with the items of `use …::{…}` groups.
fn mentions(text: &str, path: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for prefix in [path, "super"] {
        let needle = format!("{prefix}::");
        let mut rest = text;
        while let Some(at) = rest.find(&needle) {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + needle.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue; // `$crate::` in macros names the crate root's own paths
            }
            if let Some(group) = rest.strip_prefix('{') {
                let end = closing_brace(group);
                for item in group_items(&group[..end]) {
                    found.push((prefix.to_owned(), item));
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.push((prefix.to_owned(), name));
                }
            }
        }
    }
    found
}

fn closing_brace(text: &str) -> usize {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            _ => {}
        }
    }
    text.len()
}

/// The first names of a use-group's items: `a::B, c, d::{e, f}` → a, c, d. Also reads a
/// single path `a::B` as a.
fn group_items(text: &str) -> Vec<String> {
    let text = text.trim().trim_start_matches('{');
    let mut items = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in text.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        if depth == 0 {
            current.push(c);
        }
    }
    items.push(current);
    items
        .iter()
        .filter_map(|item| {
            let first: String = item
                .trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            (!first.is_empty() && first != "self").then_some(first)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_paths_are_read_as_imports() {
        let text = "use crate::{a::B, c, d::{e, f}};\nfn x() { crate::g::h(); super::i::j(); }\n\
                    // crate::k::l in a comment\nmacro_rules! m { () => { $crate::n::o } }";
        let names: Vec<String> = mentions(&strip_comments(text), "crate")
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        assert_eq!(names, ["a", "c", "d", "g", "i"]);
    }

    #[test]
    fn a_circle_of_three_is_found() {
        let mut graph = ModuleGraph::default();
        for (from, to) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
            graph
                .edges
                .entry(from.into())
                .or_default()
                .insert(to.into());
        }
        graph.edges.entry("d".into()).or_default();
        assert_eq!(graph.circles(), vec![vec!["a", "b", "c"]]);
        graph.edges.get_mut("c").unwrap().remove("a");
        assert!(graph.circles().is_empty());
    }
}
