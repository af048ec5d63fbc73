//! The workspace keeps the shape DESIGN.md gives it: no two modules of a
//! crate import each other (a circle means neither can be read, tested or
//! moved alone), and the binary does no more than parse and print.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
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

/// The sibling modules a source file refers to (`crate::x`, `super::x`),
/// outside comments and its test module.
fn references(text: &str) -> BTreeSet<String> {
    let code: String = text
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let word = |s: &str| -> String { s.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect() };
    let mut out = BTreeSet::new();
    for prefix in ["crate::", "super::"] {
        for (i, _) in code.match_indices(prefix) {
            let rest = &code[i + prefix.len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // `crate::{a::X, b::{Y, Z}}`: the first name of each item
                // at the group's own depth.
                let mut depth = 0;
                let mut at_item = true;
                for (j, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => at_item = true,
                        c if at_item && depth == 0 && !c.is_whitespace() => {
                            at_item = false;
                            let name = word(&group[j..]);
                            if !name.is_empty() {
                                out.insert(name);
                            }
                        }
                        _ => {}
                    }
                }
                continue;
            }
            let name = word(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

fn module_name(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let rel = rel.to_str().unwrap().trim_end_matches("/mod").to_string();
    rel.rsplit('/').next().unwrap().to_string()
}

#[test]
fn no_two_modules_of_a_crate_import_each_other() {
    let mut circles = Vec::new();
    for e in std::fs::read_dir(crates_dir()).unwrap() {
        let src = e.unwrap().path().join("src");
        if !src.is_dir() {
            continue;
        }
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let refs: BTreeMap<String, BTreeSet<String>> =
            files.iter().map(|f| (module_name(&src, f), references(&std::fs::read_to_string(f).unwrap()))).collect();
        for (a, to) in &refs {
            for b in to {
                if a < b && refs.get(b).is_some_and(|back| back.contains(a)) {
                    circles.push(format!("{}: {a} <-> {b}", src.parent().unwrap().display()));
                }
            }
        }
    }
    assert!(circles.is_empty(), "modules importing each other:\n{}", circles.join("\n"));
}

#[test]
fn grouped_imports_are_seen() {
    let refs = references("use crate::{alpha::X, beta::{Y, Z}};\nuse super::{gamma, delta::W};\n");
    let want: BTreeSet<String> = ["alpha", "beta", "gamma", "delta"].iter().map(|s| s.to_string()).collect();
    assert_eq!(refs, want);
}

#[test]
fn the_binary_holds_no_server_and_no_sinks() {
    // The HTTP server and the sinks are libraries that the binary calls.
    let src = crates_dir().join("cli/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for marker in ["axum::", "tokio::", "fn xarf(", "struct Watcher"] {
            assert!(
                !text.contains(marker),
                "{} holds `{marker}`: it belongs in crates/server or crates/sinks",
                f.display()
            );
        }
    }
}
