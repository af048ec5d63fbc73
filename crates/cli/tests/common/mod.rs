//! Helpers shared by the CLI integration tests: run the real binary against
//! a temporary database and read its JSON outputs.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_textwatch")
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Runs `textwatch --db DB ARGS...` and returns its output.
pub fn tw(db: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("TEXTWATCH_DB")
        .stdin(Stdio::null())
        .output()
        .expect("textwatch runs")
}

/// Like [`tw`], asserting success and returning standard output.
pub fn tw_ok(db: &Path, args: &[&str]) -> String {
    let out = tw(db, args);
    assert!(
        out.status.success(),
        "textwatch {args:?} failed: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Every stored message as JSON.
pub fn messages(db: &Path) -> Vec<serde_json::Value> {
    tw_ok(db, &["messages", "--format", "jsonl"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("messages --format jsonl is JSON per line"))
        .collect()
}

/// Campaign id → ids of its messages; messages in no campaign under "".
pub fn membership(db: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for v in messages(db) {
        let c = v["campaign"].as_str().unwrap_or("").to_string();
        m.entry(c).or_default().insert(v["id"].as_str().expect("id").to_string());
    }
    m
}

/// The campaigns as sets of message ids, without their (hash) ids: what
/// must not change between equivalent runs.
pub fn groups(db: &Path) -> BTreeSet<BTreeSet<String>> {
    membership(db).into_iter().filter(|(c, _)| !c.is_empty()).map(|(_, ids)| ids).collect()
}

pub fn campaigns_json(db: &Path) -> Vec<serde_json::Value> {
    serde_json::from_str(&tw_ok(db, &["campaigns", "--format", "json"])).expect("campaigns --format json is JSON")
}
