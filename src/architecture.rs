//! Checks on the shape of the code itself: module dependencies point one way.
//!
//! Each source file is a node (`activities::ingest`, `ledger`); an edge is any path that file names
//! through `crate::…` or `super::…` outside its tests. A cycle means two modules cannot be read, tested or
//! changed apart, so none is allowed. The composition root (`lib`, `main`, `startup`, `state`, `cli`) wires
//! everything and is left out.

#![cfg(test)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Files that wire every module together: they may name anything and nothing names them back but handlers.
const COMPOSITION_ROOT: &[&str] = &["lib", "main", "startup", "state", "cli"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/`, as (module path, source without its test module).
fn modules() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![src()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let whole = std::fs::read_to_string(&path).unwrap();
                let code = whole.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
                out.push((module_of(&path), without_comments(code)));
            }
        }
    }
    out
}

/// `code` without `//` comments (doc links name modules without depending on them).
fn without_comments(code: &str) -> String {
    code.lines()
        .map(|line| {
            match line
                .match_indices("//")
                .find(|(at, _)| *at == 0 || line[..*at].ends_with(' '))
            {
                Some((at, _)) => &line[..at],
                None => line,
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// The module (file) that a path like `ledger::service::Kind` lives in: its longest prefix that is a file.
fn resolve(segments: &[String], known: &BTreeSet<String>) -> Option<String> {
    (1..=segments.len())
        .rev()
        .map(|n| segments[..n].join("::"))
        .find(|candidate| known.contains(candidate))
}

/// The paths a source names after `prefix` (`crate::` or `super::`), with `{a, b::{c}}` groups expanded.
fn named_paths(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for (at, _) in code.match_indices(prefix) {
        let before = code[..at].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') || code[..at].ends_with("::") {
            continue;
        }
        let mut rest = &code[at + prefix.len()..];
        // `super::super::x` climbs twice: count the extra levels as leading ".." segments.
        let mut lead = Vec::new();
        while prefix == "super::" && rest.starts_with("super::") {
            lead.push("..".to_string());
            rest = &rest["super::".len()..];
        }
        expand(rest, lead, &mut paths);
    }
    paths
}

fn expand(rest: &str, mut path: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut rest = rest;
    loop {
        if let Some(inner) = rest.strip_prefix('{') {
            for item in split_group(inner) {
                expand(item.trim(), path.clone(), out);
            }
            return;
        }
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        path.push(rest[..end].to_string());
        match rest[end..].strip_prefix("::") {
            Some(more) => rest = more,
            None => break,
        }
    }
    if !path.is_empty() {
        out.push(path);
    }
}

/// The top-level items of a `{…}` group (up to its closing brace).
fn split_group(inner: &str) -> Vec<&str> {
    let (mut depth, mut start, mut items) = (0, 0, Vec::new());
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&inner[start..i]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items
}

/// Module → the modules it names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let known: BTreeSet<String> = modules.iter().map(|(m, _)| m.clone()).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, code) in &modules {
        if COMPOSITION_ROOT.contains(&module.as_str()) {
            continue;
        }
        let mut targets = BTreeSet::new();
        for path in named_paths(code, "crate::") {
            targets.extend(resolve(&path, &known));
        }
        // `super::` from a file is relative to the module that declares it.
        let parent: Vec<String> = module.split("::").map(str::to_string).collect();
        for path in named_paths(code, "super::") {
            let mut base = parent[..parent.len().saturating_sub(1)].to_vec();
            let mut segments = path.into_iter().peekable();
            while segments.peek().is_some_and(|s| s == "..") {
                segments.next();
                base.pop();
            }
            base.extend(segments);
            targets.extend(resolve(&base, &known));
        }
        targets.remove(module);
        targets.retain(|t| !COMPOSITION_ROOT.contains(&t.as_str()));
        edges.insert(module.clone(), targets);
    }
    edges
}

/// The strongly connected components with more than one module (Tarjan's algorithm).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            for w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w.as_str()) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w.as_str()]);
                    self.low.insert(v, low);
                } else if self.stack.contains(&w.as_str()) {
                    let low = self.low[v].min(self.index[w.as_str()]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

#[test]
fn no_module_depends_on_itself_through_others() {
    let edges = graph();
    let found = cycles(&edges);
    let described: Vec<String> = found
        .iter()
        .map(|component| {
            let arrows: Vec<String> = component
                .iter()
                .map(|m| {
                    let inside: Vec<&str> = edges[m]
                        .iter()
                        .filter(|t| component.contains(t))
                        .map(String::as_str)
                        .collect();
                    format!("{m} → {}", inside.join(", "))
                })
                .collect();
            arrows.join("; ")
        })
        .collect();
    assert!(found.is_empty(), "module cycles:\n{}", described.join("\n"));
}

#[test]
fn the_ledger_never_calls_up_into_its_users() {
    for (module, targets) in graph() {
        if module == "ledger" || module.starts_with("ledger::") {
            for target in targets {
                for user in ["activities", "redemptions", "offers", "partners", "verify"] {
                    assert!(
                        target != user && !target.starts_with(&format!("{user}::")),
                        "{module} depends on {target}"
                    );
                }
            }
        }
    }
}

#[test]
fn paths_are_read_through_groups_and_climbs() {
    let code = "use crate::{a::b, c::{d, e::f}};\nlet x = super::super::g::h();\nlet y = mycrate::z;";
    assert_eq!(
        without_comments("a(); // see crate::x\n/// [y](crate::y)\nb"),
        "a(); \n\nb"
    );
    let crate_paths = named_paths(code, "crate::");
    assert_eq!(
        crate_paths,
        vec![vec!["a", "b"], vec!["c", "d"], vec!["c", "e", "f"]]
            .into_iter()
            .map(|p| p.into_iter().map(String::from).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        named_paths(code, "super::"),
        vec![vec!["..", "g", "h"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>()]
    );
}

#[test]
fn a_cycle_is_found_and_a_chain_is_not() {
    let edge = |pairs: &[(&str, &str)]| {
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in pairs {
            edges.entry(a.to_string()).or_default().insert(b.to_string());
            edges.entry(b.to_string()).or_default();
        }
        edges
    };
    assert!(cycles(&edge(&[("a", "b"), ("b", "c")])).is_empty());
    assert_eq!(
        cycles(&edge(&[("a", "b"), ("b", "c"), ("c", "a")])),
        vec![vec!["a", "b", "c"]]
    );
}
