//! Prints the module graph of `src/` and exits with status 1 when it has a cycle: among the
//! top-level modules, or among the sibling files of one folder (a folder's `mod.rs` or
//! `folder.rs`, and its test modules, do not count). CI runs it: `cargo run --example
//! module_graph`.
//!
//! Read as text, not compiled: a file's dependencies are the modules its code names as
//! `crate::name` (or `netfilter_exporter::name` in `main.rs`) and, for siblings,
//! `super::name` or `crate::folder::name`. Code after the first `#[cfg(test)]` of a file is
//! left out, as tests may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Module name → the modules it names.
type Graph = BTreeMap<String, BTreeSet<String>>;

fn main() -> ExitCode {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect_files(&src, &mut files);
    files.sort();

    let top: BTreeSet<String> = files.iter().filter_map(|f| top_module(&src, f)).collect();
    let mut graph = Graph::new();
    // Folder → its sibling files' graph.
    let mut folders: BTreeMap<PathBuf, Graph> = BTreeMap::new();
    for file in &files {
        let Some(module) = top_module(&src, file) else {
            continue;
        };
        let text = production_code(file);
        let names = named_after(
            &text,
            if module == "main" {
                "netfilter_exporter::"
            } else {
                "crate::"
            },
        );
        let deps = graph.entry(module.clone()).or_default();
        deps.extend(
            names
                .into_iter()
                .filter(|n| *n != module && top.contains(n)),
        );

        let (Some(dir), Some(stem)) = (file.parent(), file.file_stem().and_then(|s| s.to_str()))
        else {
            continue;
        };
        if dir == src || stem == "mod" || stem == "tests" {
            continue;
        }
        let siblings: BTreeSet<String> = sibling_stems(dir);
        let mut named = named_after(&text, "super::");
        let within = format!("{}::", crate_path(&src, dir));
        named.extend(named_after(&text, &within));
        let deps: BTreeSet<String> = named
            .into_iter()
            .filter(|n| *n != stem && siblings.contains(n))
            .collect();
        folders
            .entry(dir.to_owned())
            .or_default()
            .insert(stem.to_owned(), deps);
    }

    let mut cycles = Vec::new();
    println!("top-level modules (module -> the modules it names):");
    print_graph(&graph);
    cycles.extend(
        find_cycles(&graph)
            .into_iter()
            .map(|c| ("src".to_owned(), c)),
    );
    for (dir, siblings) in &folders {
        let name = dir.strip_prefix(&src).unwrap_or(dir).display().to_string();
        if siblings.values().any(|d| !d.is_empty()) {
            println!("\nsrc/{name}/ (file -> its siblings):");
            print_graph(siblings);
        }
        cycles.extend(
            find_cycles(siblings)
                .into_iter()
                .map(|c| (format!("src/{name}"), c)),
        );
    }
    if cycles.is_empty() {
        println!("\nno cycle");
        return ExitCode::SUCCESS;
    }
    for (place, cycle) in cycles {
        eprintln!("cycle in {place}: {}", cycle.join(" -> "));
    }
    ExitCode::FAILURE
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to; `None` for `lib.rs`.
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib").then(|| name.to_owned())
}

/// `crate::a::b` for the folder `src/a/b`.
fn crate_path(src: &Path, dir: &Path) -> String {
    let mut path = String::from("crate");
    for part in dir.strip_prefix(src).unwrap_or(dir).components() {
        path.push_str("::");
        path.push_str(&part.as_os_str().to_string_lossy());
    }
    path
}

/// The stems of the `.rs` files and sub-folders of `dir`.
fn sibling_stems(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let path = e.path();
                    let stem = path.file_stem()?.to_str()?.to_owned();
                    (path.is_dir() || path.extension().is_some_and(|x| x == "rs")).then_some(stem)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The file's text before its first `#[cfg(test)]`, without comment lines.
fn production_code(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names that follow `prefix` in `text`, and those inside a `prefix{…}` group.
fn named_after(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in text.match_indices(prefix) {
        // Not the tail of a longer path (`x::crate::` cannot occur; `a::super::` can).
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &text[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            names.extend(
                inner
                    .split(',')
                    .map(|part| ident(part.trim()))
                    .filter(|n| !n.is_empty() && n != "self"),
            );
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                names.insert(name);
            }
        }
    }
    names
}

fn print_graph(graph: &Graph) {
    for (module, deps) in graph {
        let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
        println!("  {module} -> {}", deps.join(", "));
    }
}

/// One cycle through each strongly connected part of `graph` that has more than one node.
fn find_cycles(graph: &Graph) -> Vec<Vec<String>> {
    let mut cycles = Vec::new();
    let mut reported: BTreeSet<String> = BTreeSet::new();
    for start in graph.keys() {
        if reported.contains(start) {
            continue;
        }
        if let Some(cycle) = path_back(graph, start) {
            reported.extend(cycle.iter().cloned());
            cycles.push(cycle);
        }
    }
    cycles
}

/// A path from `start` back to itself, found breadth-first, if any.
fn path_back(graph: &Graph, start: &str) -> Option<Vec<String>> {
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for next in graph.get(node).into_iter().flatten() {
            if next == start {
                let mut path = vec![start.to_owned()];
                let mut at = node;
                let mut back = vec![];
                while at != start {
                    back.push(at.to_owned());
                    at = came_from.get(at).copied().unwrap_or(start);
                }
                path.extend(back.into_iter().rev());
                path.push(start.to_owned());
                return Some(path);
            }
            if !came_from.contains_key(next.as_str()) && next != start {
                came_from.insert(next, node);
                queue.push_back(next);
            }
        }
    }
    None
}
