//! Failure injection: a scan killed with SIGKILL leaves a consistent
//! database, and rerunning it completes the work without duplicates.
//! Runs with `--features crash-tests` (the README's test command does).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use textwatch_store::sqlite::SqliteStore;
use textwatch_store::Store;

fn write_stream(path: &std::path::Path, n: u32) {
    let texts = [
        "Your bank account is locked. Verify now at secure-{}.chase-alerts.top/login",
        "Polls in Philadelphia are moved to Wednesday due to high turnout, tell {} friends",
        "Hi {}, this is Sam with Vote Together. Polls close at 8pm. Reply STOP to opt out",
    ];
    let mut s = String::with_capacity(n as usize * 160);
    for i in 0..n {
        let body = if i % 3 == 2 && i % 7 == 0 {
            format!("hey, are we still on for lunch on the {}th? it's been ages", i % 28)
        } else {
            texts[(i % 3) as usize].replace("{}", &(i % 1000).to_string())
        };
        s.push_str(&serde_json::json!({"id": format!("m{i}"), "ts": 1_604_502_000 + i / 10, "from": format!("+1215555{:04}", i % 211), "to": format!("+1267{:07}", i), "body": body}).to_string());
        s.push('\n');
    }
    std::fs::write(path, s).unwrap();
}

#[test]
fn sigkill_mid_scan_then_rerun_gives_the_clean_result() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("stream.jsonl");
    let n = 100_000;
    write_stream(&input, n);

    let clean = dir.path().join("clean.db");
    tw_ok(&clean, &["scan", "-q", input.to_str().unwrap()]);

    let db = dir.path().join("killed.db");
    let mut child = Command::new(bin())
        .args(["--db", db.to_str().unwrap(), "scan", "-q", input.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill as soon as the first batches are committed.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut stored_at_kill = 0;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        // A reader's handle: it does no schema work, so it never waits
        // behind the scan's write lock.
        if let Ok(store) = SqliteStore::open_reader(&db) {
            if let Ok(s) = store.stats() {
                if s.messages > 0 {
                    child.kill().unwrap(); // SIGKILL on Unix
                    stored_at_kill = s.messages;
                    break;
                }
            }
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
    }
    child.wait().unwrap();
    assert!(stored_at_kill > 0 && stored_at_kill < n as u64, "the kill landed mid-scan ({stored_at_kill} stored)");

    // Whatever was committed is whole: campaign counts match stored messages.
    let partial = SqliteStore::open_existing(&db).unwrap().stats().unwrap();
    let m = membership(&db);
    let in_campaigns: usize = m.iter().filter(|(c, _)| !c.is_empty()).map(|(_, ids)| ids.len()).sum();
    assert_eq!(in_campaigns as u64, partial.messages_in_campaigns);

    // The rerun completes it: every message once, the same campaigns.
    let out = tw_ok(&db, &["scan", "-q", "--format", "json", input.to_str().unwrap()]);
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["duplicates"].as_u64().unwrap(), partial.messages);
    let done = SqliteStore::open_existing(&db).unwrap().stats().unwrap();
    assert_eq!(done.messages, n as u64);
    assert_eq!(groups(&db), groups(&clean));
}

#[test]
fn sigkill_at_random_moments_then_rerun_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("stream.jsonl");
    let n = 150_000;
    write_stream(&input, n);
    let clean = dir.path().join("clean.db");
    let t0 = Instant::now();
    tw_ok(&clean, &["scan", "-q", input.to_str().unwrap()]);
    let full = t0.elapsed();

    // Kill at moments spread over a clean run's duration, chosen afresh
    // each run (the seed is printed to reproduce a failure).
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    eprintln!("kill moments seed {seed}");
    let mut x = seed | 1;
    let db = dir.path().join("killed.db");
    let mut kills = 0;
    for _ in 0..5 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let at = full.mul_f64(0.05 + (x % 1000) as f64 / 1000.0 * 0.9);
        let mut child = Command::new(bin())
            .args(["--db", db.to_str().unwrap(), "scan", "-q", input.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(at);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
        // Whatever was committed is whole.
        // (Killed before it made the database, there is nothing to check.)
        if db.exists() {
            let store = SqliteStore::open_existing(&db).expect("a killed scan leaves a database that opens");
            let s = store.stats().unwrap();
            let m = membership(&db);
            let in_campaigns: usize = m.iter().filter(|(c, _)| !c.is_empty()).map(|(_, ids)| ids.len()).sum();
            assert_eq!(in_campaigns as u64, s.messages_in_campaigns, "after a kill at {at:?}");
            let total: usize = m.values().map(|ids| ids.len()).sum();
            assert_eq!(total as u64, s.messages, "every committed message readable once");
        }
    }
    eprintln!("{kills} of 5 runs killed mid-scan");
    let out = tw_ok(&db, &["scan", "-q", "--format", "json", input.to_str().unwrap()]);
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    let done = SqliteStore::open_existing(&db).unwrap().stats().unwrap();
    assert_eq!(done.messages, n as u64, "{summary}");
    assert_eq!(groups(&db), groups(&clean));
    let ids = messages(&db);
    let distinct: std::collections::HashSet<&str> = ids.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(distinct.len(), n as usize, "no message stored twice");
}
