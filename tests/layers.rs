//! The library's modules form layers: a module may import only the modules
//! the table in ARCHITECTURE.md ("Layers", between the `layers:begin` and
//! `layers:end` markers) allows it. This test reads that table and every
//! `crate::<module>` path in the library's `crates/core/src/` (comments, `#[cfg(test)] mod tests`
//! blocks, `tests.rs` and `test_support.rs` files aside: tests may reach
//! anywhere) and fails on
//! - an import the table does not allow, naming file and line;
//! - a module of the library the table does not list (a new room must be
//!   placed);
//! - a table that is not layered (an allowed cycle).
//!
//! The binary (`src/`) and the traffic generator (`crates/synth`) sit above
//! the library, in packages of their own, and are not checked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The library's source tree.
fn src() -> PathBuf {
    root().join("crates/core/src")
}

/// module -> the modules it may import (each listed in an earlier row).
fn allowed() -> BTreeMap<String, BTreeSet<String>> {
    let arch = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let begin = arch
        .find("<!-- layers:begin -->")
        .expect("ARCHITECTURE.md has a layers:begin marker");
    let end = arch
        .find("<!-- layers:end -->")
        .expect("ARCHITECTURE.md has a layers:end marker");
    let mut table = BTreeMap::new();
    for line in arch[begin..end].lines() {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
        if cells.len() != 2 || !line.trim_start().starts_with('|') {
            continue;
        }
        let module = cells[0].trim().trim_matches('`');
        if module.is_empty() || module == "module" || module.starts_with('-') {
            continue;
        }
        let deps: BTreeSet<String> = cells[1]
            .split(',')
            .map(|d| d.trim().trim_matches('`').to_string())
            .filter(|d| !d.is_empty() && d != "—")
            .collect();
        for d in &deps {
            assert!(
                table.contains_key(d),
                "ARCHITECTURE.md: `{module}` may import `{d}`, which is not in a row above it"
            );
        }
        assert!(
            table.insert(module.to_string(), deps).is_none(),
            "ARCHITECTURE.md lists `{module}` twice"
        );
    }
    assert!(
        table.len() > 10,
        "the layers table was not found: {table:?}"
    );
    table
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file of the library belongs to.
fn module_of(file: &Path) -> String {
    let rel = file.strip_prefix(src()).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The modules a line names as `crate::m` (also `crate::{a, b::c}`).
fn crate_paths(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        // `dnsmonitor::crate::` does not exist; a preceding identifier
        // character means another word (e.g. `mycrate::`).
        let before_ok = rest[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        if before_ok {
            if let Some(group) = after.strip_prefix('{') {
                let inner = &group[..group.find('}').unwrap_or(group.len())];
                for part in inner.split(',') {
                    let id: String = part
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !id.is_empty() {
                        out.push(id);
                    }
                }
            } else {
                let id: String = after
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !id.is_empty() {
                    out.push(id);
                }
            }
        }
        rest = after;
    }
    out
}

/// (file, line, from, to) for every cross-module import outside tests.
fn imports() -> Vec<(PathBuf, usize, String, String)> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        if name == "tests.rs" || name == "test_support.rs" {
            continue;
        }
        let from = module_of(&f);
        let text = std::fs::read_to_string(&f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let t = line.trim_start();
            if t.starts_with("#[cfg(test)]") {
                // The tests module (at the end of a file, by convention).
                let next = text.lines().nth(n + 1).unwrap_or("").trim_start();
                if next.starts_with("mod tests") || next.starts_with("pub(crate) mod tests") {
                    break;
                }
            }
            if t.starts_with("//") {
                continue;
            }
            let code = t.split("//").next().unwrap_or(t);
            for to in crate_paths(code) {
                if to != from {
                    out.push((f.clone(), n + 1, from.clone(), to));
                }
            }
        }
    }
    out
}

#[test]
fn every_import_is_allowed_by_the_layers_table() {
    let table = allowed();
    let mut bad = Vec::new();
    for (file, line, from, to) in imports() {
        match table.get(&from) {
            None => bad.push(format!(
                "{}: module `{from}` is not in the layers table of ARCHITECTURE.md",
                file.display()
            )),
            Some(deps) if !deps.contains(&to) => bad.push(format!(
                "{}:{line}: `{from}` imports `{to}`, which the layers table does not allow",
                file.display()
            )),
            _ => {}
        }
    }
    bad.dedup();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn every_module_is_placed_and_the_table_has_no_cycle() {
    let table = allowed();
    let mut modules = BTreeSet::new();
    for e in std::fs::read_dir(src()).unwrap() {
        let p = e.unwrap().path();
        let m = module_of(&p);
        if (p.is_dir() || p.extension().is_some_and(|x| x == "rs")) && m != "lib" {
            modules.insert(m);
        }
    }
    let listed: BTreeSet<String> = table.keys().cloned().collect();
    assert_eq!(
        modules, listed,
        "the layers table must list exactly the library's modules"
    );
    for (m, deps) in &table {
        for d in deps {
            assert!(
                table.contains_key(d),
                "`{m}` may import `{d}`, which is not a module"
            );
        }
    }
    // Layered: repeatedly remove modules whose allowed imports are all
    // removed already; what is left is a cycle.
    let mut left = table.clone();
    loop {
        let ready: Vec<String> = left
            .iter()
            .filter(|(_, deps)| deps.iter().all(|d| !left.contains_key(d)))
            .map(|(m, _)| m.clone())
            .collect();
        if ready.is_empty() {
            break;
        }
        for m in ready {
            left.remove(&m);
        }
    }
    assert!(
        left.is_empty(),
        "the layers table allows a cycle among {:?}",
        left.keys().collect::<Vec<_>>()
    );
}

/// The checker sees what it must: a made-up line importing two modules.
#[test]
fn the_checker_reads_paths_and_groups() {
    assert_eq!(
        crate_paths("use crate::config::Plan; let x = crate::time::MICROS;"),
        ["config", "time"]
    );
    assert_eq!(
        crate_paths("use crate::{alert::Alert, detect};"),
        ["alert", "detect"]
    );
    assert!(crate_paths("use mycrate::thing;").is_empty());
}
