//! The modules of `task-runtime` and `task-local` import one way only: each
//! may use the modules below it in its crate's list of layers, never one
//! above, so no circle can form. Read from the `crate::…` paths of the
//! sources (comments left out); a path through the crate root to a
//! re-exported item (`crate::Failure`) is refused too, since it hides which
//! module it comes from. ARCHITECTURE.md draws the same layers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// task-runtime, from the bottom up: data; the store and the registry;
/// outcome and the worker; sending; configuration and the runtime built
/// from it; the caller's API; the Lambda entry points.
const TASK_RUNTIME: &[&[&str]] = &[
    &["_guide"],
    &["trace", "otel"],
    &["time", "response", "context", "policy"],
    &["error"],
    &["envelope"],
    &["idempotency"],
    &["aws", "registry"],
    &["handlers"],
    &["schedules"],
    &["store"],
    &["outcome"],
    &["follow_up", "flow"],
    &["worker"],
    &["backend"],
    &["config"],
    &["runtime"],
    &["poll", "cancel"],
    &["handle"],
    &["dispatch"],
    &["group"],
    &["chain"],
    &["lambda"],
    &["http", "__private"],
    &["lib"],
];

/// task-local, from the bottom up.
const TASK_LOCAL: &[&[&str]] = &[&["cli", "stats", "logs", "cron"], &["instance"], &["function", "failure_queue"], &["emulator"], &["queue"], &["scheduler"], &["api", "sample"], &["main"]];

/// The top-level module a source file belongs to (`store/dynamodb.rs` is `store`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap_or(file);
    let first = rel.components().next().map(|c| c.as_os_str().to_string_lossy().into_owned()).unwrap_or_default();
    first.trim_end_matches(".rs").to_owned()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The first segment of every `crate::…` path in the code, `crate::{a, b::c}` included.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    // One line of code, comments out: a `use crate::{` group may span lines.
    let code = code.lines().map(str::trim_start).filter(|l| !l.starts_with("//")).collect::<Vec<_>>().join(" ");
    {
        let mut rest = code.as_str();
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().last();
            rest = &rest[at + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue; // e.g. `$crate::` or `my_crate::`
            }
            let names: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => top_level_items(group),
                None => vec![rest],
            };
            for name in names {
                let segment: String = name.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !segment.is_empty() {
                    out.push(segment);
                }
            }
        }
    }
    out
}

/// The items of a `{…}` group (given without its `{`), split at its own
/// commas only: `a::X, b::{C, D}}` is `a::X` and `b::{C, D}`.
fn top_level_items(group: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0usize, 0usize, Vec::new());
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                out.push(&group[start..i]);
                return out;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&group[start..]);
    out
}

/// Every import that points up, or through the crate root, as a sentence.
fn violations(crate_dir: &str, layers: &[&[&str]]) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(crate_dir).join("src");
    let rank: BTreeMap<&str, usize> = layers.iter().enumerate().flat_map(|(i, mods)| mods.iter().map(move |m| (*m, i))).collect();
    let mut out = Vec::new();
    for file in rust_files(&src) {
        let module = module_of(&src, &file);
        let Some(&from) = rank.get(module.as_str()) else {
            out.push(format!("{crate_dir}: module `{module}` ({}) is in no layer: add it to the list in tests/layers.rs and ARCHITECTURE.md", file.display()));
            continue;
        };
        let code = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}: a file the check cannot read is not a file it checked", file.display()));
        for target in crate_paths(&code) {
            if target == module {
                continue;
            }
            match rank.get(target.as_str()) {
                None if module == "lib" || module == "main" => {}
                None => out.push(format!(
                    "{crate_dir}: `{module}` uses `crate::{target}` through the crate root: name the module it lives in"
                )),
                Some(&to) if to >= from => out.push(format!(
                    "{crate_dir}: `{module}` (layer {from}) imports `{target}` (layer {to}): imports must point down"
                )),
                Some(_) => {}
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn task_runtime_imports_point_down() {
    let bad = violations("task-runtime", TASK_RUNTIME);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn task_local_imports_point_down() {
    let bad = violations("task-local", TASK_LOCAL);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn the_check_sees_grouped_imports_and_root_paths_and_skips_comments() {
    let code = "use crate::{error::X, store::{A, B}};\n// crate::worker in a comment\nlet f = crate::Failure::new();\n$crate::ignored";
    assert_eq!(crate_paths(code), ["error", "store", "Failure"]);
    // rustfmt splits a long group over lines.
    let split = "use crate::{\n    envelope::Envelope,\n    // crate::commented in the group\n    store::{\n        PendingItem,\n    },\n};";
    assert_eq!(crate_paths(split), ["envelope", "store"]);
}
