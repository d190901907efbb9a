//! A test that keeps the top-level modules free of import cycles.
//!
//! A cycle between modules (say `seed` naming a `cli` type while `cli` names
//! a `seed` one) means neither can be read, moved or tested without the
//! other. This reads every file under `src/`, collects each `crate::X` path
//! that leaves the file's own top-level module, and fails on any cycle in the
//! resulting graph, naming one file and line per edge so the fix is obvious.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Edges that are known debts owned by another change, each with the reason.
/// Remove an entry when its edge is gone; the test then guards it.
const KNOWN_DEBTS: &[(&str, &str, &str)] = &[];

/// Where one module names another: the first file and line seen.
type Edges = BTreeMap<String, BTreeMap<String, String>>;

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).expect("src/ is readable");
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/seed/rng.rs` → `seed`);
/// `None` for the crate root and the binary, which may name anything.
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

/// Every `crate::X` a line names, outside comments.
fn named_modules(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    code.match_indices("crate::")
        .filter(|(at, _)| {
            // `ward_crate::x` or `some_crate::x` are not paths into this crate.
            !code[..*at].ends_with(|c: char| c.is_alphanumeric() || c == '_')
        })
        .map(|(at, prefix)| {
            code[at + prefix.len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
        .filter(|name: &String| !name.is_empty())
        .collect()
}

fn module_edges(src: &Path) -> Edges {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut edges = Edges::new();
    for file in files {
        let Some(from) = top_module(src, &file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("a source file is UTF-8");
        for (number, line) in text.lines().enumerate() {
            for to in named_modules(line) {
                if to == from {
                    continue;
                }
                let place = format!("{}:{}", file.display(), number + 1);
                edges
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_insert(place);
            }
        }
    }
    edges
}

/// One cycle, as the list of modules along it, if the graph has any.
fn find_cycle(edges: &Edges) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &Edges,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|seen| seen == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flat_map(BTreeMap::keys) {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut Vec::new(), &mut done))
}

fn without_known_debts(mut edges: Edges) -> Edges {
    for (from, to, _why) in KNOWN_DEBTS {
        if let Some(targets) = edges.get_mut(*from) {
            targets.remove(*to);
        }
    }
    edges
}

#[test]
fn top_level_modules_have_no_import_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = without_known_debts(module_edges(&src));
    if let Some(cycle) = find_cycle(&edges) {
        let places: Vec<String> = cycle
            .windows(2)
            .map(|pair| {
                format!(
                    "  {} → {} at {}",
                    pair[0], pair[1], edges[&pair[0]][&pair[1]]
                )
            })
            .collect();
        panic!("import cycle {}:\n{}", cycle.join(" → "), places.join("\n"));
    }
}

#[test]
fn known_debts_still_exist() {
    // A debt that was paid must leave the list, or the test stops guarding it.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = module_edges(&src);
    for (from, to, why) in KNOWN_DEBTS {
        assert!(
            edges
                .get(*from)
                .is_some_and(|targets| targets.contains_key(*to)),
            "{from} → {to} is gone ({why}): remove it from KNOWN_DEBTS"
        );
    }
}

#[test]
fn the_checker_finds_a_cycle_and_names_its_edges() {
    fn add(edges: &mut Edges, from: &str, to: &str) {
        edges
            .entry(from.to_string())
            .or_default()
            .insert(to.to_string(), format!("src/{from}.rs:1"));
    }
    let mut edges = Edges::new();
    add(&mut edges, "cli", "seed");
    add(&mut edges, "seed", "pg");
    assert_eq!(find_cycle(&edges), None);
    add(&mut edges, "pg", "cli");
    assert_eq!(
        find_cycle(&edges),
        Some(vec!["cli".into(), "seed".into(), "pg".into(), "cli".into()])
    );
    assert_eq!(
        named_modules("use crate::seed::rng; let x = crate::pg::url(); // crate::cli"),
        vec!["seed".to_string(), "pg".to_string()]
    );
    assert!(named_modules("use tokio_postgres::Config; my_crate::x").is_empty());
}
