//! The direction of dependencies inside `src/` (docs/ARCHITECTURE.md): a module names
//! only modules of lower layers (`crate::…` paths), and leaves name only leaves. The
//! test reads the source as text, as a reviewer would: a `crate::x` path in code
//! (comments and `#[cfg(test)] mod … { … }` blocks left out) is a dependency on `x`.

use std::fs;
use std::path::{Path, PathBuf};

/// Top-level modules of `src/` by layer, bottom first. Leaves may name each other.
const LAYERS: &[&[&str]] = &[
    &[
        "clock",
        "sync",
        "thread_id",
        "stats",
        "error",
        "eevdf",
        "controller",
        "host",
        "inbox",
        "observe",
    ],
    &["task"],
    &["scheduler"],
    &["ready"],
    &["core"],
    &["schedule"],
    &["context"],
    &["queue"],
    &["join_set", "remote_spawn", "yield_now"],
    &["executor"],
    &["builder"],
    &["pool"],
    &["sim"],
];

/// Files left out: the crate root (re-exports only) and test-only modules.
fn checked(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with(".rs") && name != "lib.rs" && !name.ends_with("tests.rs")
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if checked(&path) {
            out.push(path);
        }
    }
}

/// The text without comments and without `#[cfg(test)] mod name { … }` blocks.
fn code_of(text: &str) -> String {
    let mut code = String::new();
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("");
        code.push_str(line);
        code.push('\n');
    }
    let marker = "#[cfg(test)]";
    let mut out = String::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find(marker) {
        out.push_str(&rest[..at]);
        let after = &rest[at + marker.len()..];
        let block = after.trim_start();
        let head_end = block.find(['{', ';']);
        let is_inline_mod = (block.starts_with("mod ") || block.starts_with("pub(crate) mod "))
            && head_end.is_some_and(|end| block[end..].starts_with('{'));
        if !is_inline_mod {
            out.push_str(marker);
            rest = after;
            continue;
        }
        let open = after.find('{').expect("checked above");
        let mut depth = 0usize;
        let mut end = after.len();
        for (i, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The top-level modules a file's code names through `crate::…`, including the
/// `use crate::{a, b::c}` form.
fn named_modules(code: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let after = &code[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let inside = group.split('}').next().unwrap_or("");
            for item in inside.split(',') {
                let head = item.trim().split("::").next().unwrap_or("").trim();
                if !head.is_empty() {
                    names.push(head.to_owned());
                }
            }
        } else {
            let head: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            names.push(head);
        }
    }
    names
}

/// `pub use module::{A, B};` and `pub use module::A;` at the crate root, as
/// (name, module) pairs.
fn crate_root_reexports(lib: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for statement in lib.split(';') {
        let Some(path) = statement.trim().strip_prefix("pub use ") else {
            continue;
        };
        let (module, names) = path.split_once("::").unwrap_or((path, ""));
        let names = names.trim_start_matches('{').trim_end_matches('}');
        for name in names.split(',') {
            let name = name.split("::").last().unwrap_or("").trim();
            if !name.is_empty() {
                pairs.push((name.to_owned(), module.trim().to_owned()));
            }
        }
    }
    pairs
}

#[test]
fn every_module_names_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(files.len() > 20, "found only {} files in src/", files.len());
    let lib = fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    let reexports = crate_root_reexports(&code_of(&lib));
    assert!(
        reexports
            .iter()
            .any(|(name, module)| name == "Executor" && module == "executor"),
        "lib.rs re-exports not read: {reexports:?}"
    );
    let mut wrong = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src/");
        let module = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|name| name.trim_end_matches(".rs").to_owned())
            .expect("a file name");
        if module == "miri_tests" {
            continue;
        }
        let Some(own) = layer_of(&module) else {
            wrong.push(format!(
                "{}: module `{module}` has no layer",
                relative.display()
            ));
            continue;
        };
        let text = fs::read_to_string(file).expect("readable source");
        for named in named_modules(&code_of(&text)) {
            if named == module {
                continue;
            }
            // A crate-root re-export (`crate::Executor`) counts as its module.
            let target = reexports
                .iter()
                .find(|(name, _)| *name == named)
                .map_or(named.as_str(), |(_, module)| module.as_str());
            if target == module {
                continue;
            }
            let Some(theirs) = layer_of(target) else {
                wrong.push(format!(
                    "{}: names `crate::{named}`, which has no layer",
                    relative.display()
                ));
                continue;
            };
            let allowed = theirs < own || (own == 0 && theirs == 0);
            if !allowed {
                wrong.push(format!(
                    "{}: `{module}` (layer {own}) names `crate::{named}` (`{target}`, layer {theirs})",
                    relative.display()
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies that point up:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_checker_sees_an_upward_path() {
    let code = code_of(
        "use crate::stats::QueueStats; // crate::executor in a comment\n\
         fn f() { crate::core::Core::new(); }\n\
         #[cfg(test)]\nmod tests {\n    use crate::executor::Executor;\n}\n\
         use crate::{clock::Clock, spawn::spawn};\n",
    );
    assert_eq!(
        named_modules(&code),
        ["stats", "core", "clock", "spawn"],
        "comments and test modules are left out; groups are read"
    );
}
