//! Smoke run of the side-by-side benchmark (bench/peers.sh) on a small
//! stream: it must run all three tools and print its table. No speed is
//! asserted (machines are shared and noisy).
//!
//! Needs Python with datasketch and rensa in the project's `.venv` (made by
//! `.ci/run`). Without them the test skips with a message, unless
//! TEXTWATCH_REQUIRE_ALL=1, where a skip is a failure.

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn peer_benchmark_runs_and_prints_its_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv = std::env::var("TEXTWATCH_VENV").map(std::path::PathBuf::from).unwrap_or_else(|_| root.join(".venv"));
    let python = venv.join("bin/python");
    let ready =
        Command::new(&python).args(["-c", "import datasketch, rensa"]).status().map(|s| s.success()).unwrap_or(false);
    if !ready {
        let msg = format!(
            "SKIPPED peer benchmark: {} cannot import datasketch and rensa (run .ci/run, or make the venv)",
            python.display()
        );
        if std::env::var("TEXTWATCH_REQUIRE_ALL").as_deref() == Ok("1") {
            panic!("{msg} (TEXTWATCH_REQUIRE_ALL=1)");
        }
        eprintln!("{msg}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("results.json");
    let out = Command::new("bash")
        .arg(root.join("bench/peers.sh"))
        .args(["1500", "election-2020", "3"])
        .env("TEXTWATCH_BIN", common::bin())
        .env("TEXTWATCH_VENV", &venv)
        .env("BENCH_DIR", dir.path().join("work"))
        .env("BENCH_JSON", &json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "peers.sh failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("msgs/s") && stdout.contains("peak RSS") && stdout.contains("B3 F1"), "{stdout}");
    for tool in ["textwatch scan", "datasketch", "rensa"] {
        assert!(stdout.contains(tool), "no row for {tool}:\n{stdout}");
    }
    assert!(stdout.contains("textwatch / fastest peer"), "{stdout}");
    let results: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(results.len(), 3);
    for r in &results {
        assert_eq!(r["messages"], 1500);
        let f1 = r["bcubed_f1"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&f1));
        assert!(r["peak_rss_mib"].as_f64().unwrap() > 0.0);
    }
}
