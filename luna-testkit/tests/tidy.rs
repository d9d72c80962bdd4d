//! Small rules that keep the code base tidy (rust-analyzer's `xtask/src/tidy.rs`): every source
//! file says what it is for, no test is ignored without a reason, no production file grows into
//! a god file, and no crate has a cycle between its top-level modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest production source file, its `#[cfg(test)]` module aside.
const MAX_SOURCE_LINES: usize = 650;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the testkit is inside the workspace")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') && name != "node_modules" {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

fn all_sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    rust_files(&workspace_root(), &mut files);
    assert!(files.len() > 50, "found too few sources: {}", files.len());
    files
}

fn relative(path: &Path) -> String {
    path.strip_prefix(workspace_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn every_source_file_opens_with_a_doc_line_saying_what_it_is_for() {
    let mut bad = Vec::new();
    for path in all_sources() {
        let text = std::fs::read_to_string(&path).expect("readable");
        if !text.trim_start().starts_with("//!") {
            bad.push(relative(&path));
        }
    }
    assert!(
        bad.is_empty(),
        "files without a leading `//!` line: {bad:?}"
    );
}

#[test]
fn no_test_is_ignored_without_a_reason() {
    let mut bad = Vec::new();
    for path in all_sources() {
        let text = std::fs::read_to_string(&path).expect("readable");
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.starts_with("#[ignore]") {
                bad.push(format!("{}:{}", relative(&path), n + 1));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "`#[ignore]` needs a reason (`#[ignore = \"…\"]`): {bad:?}"
    );
}

fn is_production_source(path: &Path) -> bool {
    let rel = relative(path);
    rel.contains("/src/") && !rel.starts_with("luna-testkit/") && !rel.starts_with("luna-bench/")
}

#[test]
fn no_production_source_file_is_a_god_file() {
    let mut bad = Vec::new();
    for path in all_sources()
        .into_iter()
        .filter(|p| is_production_source(p))
    {
        let text = std::fs::read_to_string(&path).expect("readable");
        let lines = text
            .lines()
            .take_while(|l| !l.trim_start().starts_with("#[cfg(test)]"))
            .count();
        if lines > MAX_SOURCE_LINES {
            bad.push(format!("{} ({lines} lines)", relative(&path)));
        }
    }
    assert!(
        bad.is_empty(),
        "split these by area (≤ {MAX_SOURCE_LINES} lines before their tests): {bad:?}"
    );
}

/// The top-level modules of a crate's `src` and the ones each names with `crate::`.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = Vec::new();
    rust_files(src, &mut files);
    for path in files {
        let rel = path.strip_prefix(src).expect("inside src");
        let top = rel
            .components()
            .next()
            .map(|c| {
                c.as_os_str()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_owned()
            })
            .expect("a file");
        if top == "lib" || top == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        let edges = graph.entry(top.clone()).or_default();
        for (i, _) in text.match_indices("crate::") {
            let name: String = text[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty()
                && name != top
                && name.chars().next().is_some_and(char::is_lowercase)
            {
                edges.insert(name);
            }
        }
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for edges in graph.values_mut() {
        edges.retain(|m| modules.contains(m));
    }
    graph
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| n == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_crate_has_a_cycle_between_its_modules() {
    let root = workspace_root();
    let mut cycles = Vec::new();
    for entry in std::fs::read_dir(&root).expect("workspace").flatten() {
        let src = entry.path().join("src");
        if entry.file_name().to_string_lossy().starts_with("luna-") && src.is_dir() {
            if let Some(c) = find_cycle(&module_graph(&src)) {
                cycles.push(format!("{}: {}", relative(&entry.path()), c.join(" → ")));
            }
        }
    }
    assert!(cycles.is_empty(), "module cycles: {cycles:?}");
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["a".to_owned()])),
        ("c".to_owned(), BTreeSet::new()),
    ]
    .into_iter()
    .collect();
    assert!(find_cycle(&graph).is_some());
}
