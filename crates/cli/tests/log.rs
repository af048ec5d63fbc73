//! The message log: torn segment tails, retention, migration of a database
//! that kept messages in SQLite, and segments other tools read.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::*;
use rusqlite::params;
use textwatch_store::log::{col, SegmentLog};
use textwatch_store::sqlite::{segments_dir, SqliteStore};
use textwatch_store::{Store, WriteStore as _};

fn segment_files(db: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(segments_dir(db))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "arrows"))
        .collect();
    v.sort();
    v
}

/// A day of messages: three campaigns and chatter, `n` per day, ids
/// prefixed by the day.
fn day(path: &Path, day: u32, n: u32) {
    let texts = [
        "Your bank account is locked. Verify now at secure-{}.chase-alerts.top/login",
        "Polls in Philadelphia are moved to Wednesday due to high turnout, tell {} friends",
        "Hi {}, this is Sam with Vote Together. Polls close at 8pm. Reply STOP to opt out",
    ];
    let mut s = String::new();
    for i in 0..n {
        let body = if i % 5 == 4 {
            format!("hey it's {} here, are we still on for lunch on the {}th?", i % 97, i % 28)
        } else {
            texts[(i % 3) as usize].replace("{}", &(i % 1000).to_string())
        };
        let ts = 1_604_448_000 + u64::from(day) * 86_400 + u64::from(i) * 3;
        s.push_str(
            &serde_json::json!({"id": format!("d{day}-{i}"), "ts": ts, "from": format!("+1215555{:04}", i % 211),
                "to": format!("+1267{:07}", i), "body": body})
            .to_string(),
        );
        s.push('\n');
    }
    std::fs::write(path, s).unwrap();
}

#[test]
fn a_torn_segment_tail_is_ignored_by_readers_and_cut_off_by_the_next_writer() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    day(&a, 0, 3000);
    day(&b, 1, 3000);
    tw_ok(&db, &["scan", "-q", a.to_str().unwrap()]);
    let before = membership(&db);
    let seg = segment_files(&db).pop().unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    // A batch half written when the power went: the start of a real batch
    // (its own bytes), cut in the middle, then garbage.
    let bytes = std::fs::read(&seg).unwrap();
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&bytes[..bytes.len() / 2]).unwrap();
    f.write_all(b"\xff\xff\xff\xff\x10\x00garbage").unwrap();
    drop(f);

    // Readers read only what was committed.
    assert_eq!(membership(&db), before);
    // The next writer cuts the tail off, says so, and appends after it.
    let out = tw(&db, &["-v", "scan", "-q", b.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("cut off an uncommitted tail"), "{log}");
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), len, "back to its committed length (it was sealed)");
    let all = messages(&db);
    assert_eq!(all.len(), 6000);
    let ids: std::collections::HashSet<&str> = all.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 6000, "no message twice");
    // Every segment at rest is a complete Arrow IPC stream.
    for s in segment_files(&db) {
        let b = std::fs::read(&s).unwrap();
        assert_eq!(
            &b[b.len() - 8..],
            &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0],
            "{} ends with the end marker",
            s.display()
        );
    }
}

#[test]
fn a_segment_damaged_below_its_committed_length_is_an_error_not_a_silent_loss() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let a = dir.path().join("a.jsonl");
    day(&a, 0, 500);
    tw_ok(&db, &["scan", "-q", a.to_str().unwrap()]);
    let seg = segment_files(&db).pop().unwrap();
    // An unsealed segment cut short, as a disk that lost data would leave it.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("UPDATE segments SET sealed = 0", []).unwrap();
    drop(conn);
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(100).unwrap();
    let out = tw(&db, &["scan", "-q", a.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("were committed") && err.contains(seg.file_name().unwrap().to_str().unwrap()), "{err}");
}

#[test]
fn prune_drops_old_segments_and_campaigns_keep_counts_and_samples() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    for d in 0..3 {
        let f = dir.path().join(format!("d{d}.jsonl"));
        day(&f, d, 2000);
        tw_ok(&db, &["scan", "-q", f.to_str().unwrap()]);
    }
    assert_eq!(segment_files(&db).len(), 3, "one segment per scan here");
    let before = campaigns_json(&db);
    assert!(!before.is_empty());

    let dry = tw_ok(&db, &["prune", "--before", "2020-11-06", "--dry-run"]);
    assert!(dry.contains("would drop 2 segments holding 4,000 messages"), "{dry}");
    assert_eq!(segment_files(&db).len(), 3, "a dry run changes nothing");

    let out = tw_ok(&db, &["prune", "--before", "2020-11-06"]);
    assert!(out.contains("dropped 2 segments (4,000 messages"), "{out}");
    assert_eq!(segment_files(&db).len(), 1);
    let left = messages(&db);
    assert_eq!(left.len(), 2000);
    assert!(left.iter().all(|m| m["id"].as_str().unwrap().starts_with("d2-")));
    // Campaign counts are unchanged, and their evidence is still there.
    let after = campaigns_json(&db);
    let counts = |v: &[serde_json::Value]| -> Vec<(String, u64)> {
        v.iter().map(|c| (c["id"].as_str().unwrap().to_string(), c["messages"].as_u64().unwrap())).collect()
    };
    assert_eq!(counts(&after), counts(&before));
    let id = before[0]["id"].as_str().unwrap();
    let card: serde_json::Value = serde_json::from_str(&tw_ok(&db, &["campaign", id, "--format", "json"])).unwrap();
    let samples = card["samples"].as_array().unwrap();
    assert!(!samples.is_empty());
    assert!(samples[0]["id"].as_str().unwrap().starts_with("d0-"), "the earliest samples are kept: {}", samples[0]);
    // Pruning again drops the last day too; the samples survive that.
    tw_ok(&db, &["prune", "--before", "2030-01-01"]);
    assert!(messages(&db).is_empty());
    let card: serde_json::Value = serde_json::from_str(&tw_ok(&db, &["campaign", id, "--format", "json"])).unwrap();
    assert!(card["samples"][0]["id"].as_str().unwrap().starts_with("d0-"));
    assert_eq!(counts(&campaigns_json(&db)), counts(&before));
    // Edits recompute campaigns from stored messages: refused once some
    // were pruned, with the reason.
    let other = before[1]["id"].as_str().unwrap();
    let out = tw(&db, &["campaign", "merge", id, other]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pruned"), "{}", String::from_utf8_lossy(&out.stderr));
    // A scan still works on the pruned database; segment ids are never
    // reused, and the campaigns' new messages are found in the new segment.
    let f = dir.path().join("d3.jsonl");
    day(&f, 3, 500);
    tw_ok(&db, &["scan", "-q", f.to_str().unwrap()]);
    assert_eq!(messages(&db).len(), 500);
    let names: Vec<String> =
        segment_files(&db).iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, vec!["00000004.arrows"]);
    let in_campaign = tw_ok(&db, &["messages", "--campaign", id, "--format", "jsonl"]);
    assert!(in_campaign.lines().count() > 0 && in_campaign.lines().all(|l| l.contains("\"d3-")), "{in_campaign}");
    let after: Vec<(String, u64)> = counts(&campaigns_json(&db));
    assert!(after.iter().zip(counts(&before)).all(|(a, b)| a.0 == b.0 && a.1 > b.1), "counts grow from the kept ones");
}

/// A `messages` row of a version-1 database.
type V1Row =
    (i64, Option<String>, i64, String, Option<Vec<u8>>, String, Option<String>, Option<String>, i64, Option<String>);

/// Turns a database into what textwatch wrote before the message log: one
/// `messages` row per message, schema version 1, no segments.
fn to_version_1(db: &Path) {
    let store = SqliteStore::open_existing(db).unwrap();
    let segs = store.segments().unwrap();
    let log = SegmentLog::in_dir(segments_dir(db));
    let mut rows: Vec<V1Row> = Vec::new();
    for s in &segs {
        log.read(
            s,
            &[
                col::KEY,
                col::ID,
                col::TS,
                col::SENDER,
                col::RCPT,
                col::BODY,
                col::SOURCE,
                col::META,
                col::TEMPLATE,
                col::ORIGIN,
            ],
            &mut |r| {
                for i in 0..r.len() {
                    rows.push((
                        r.key(i) as i64,
                        r.id(i).map(str::to_owned),
                        r.ts(i),
                        r.sender(i).to_string(),
                        r.rcpt(i).map(<[u8]>::to_vec),
                        r.body(i).to_string(),
                        r.source(i).map(str::to_owned),
                        r.meta(i).map(str::to_owned),
                        r.template(i) as i64,
                        r.origin(i).map(str::to_owned),
                    ));
                }
                true
            },
        )
        .unwrap();
    }
    drop(store);
    let mut conn = rusqlite::Connection::open(db).unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute_batch(
        "CREATE TABLE messages (key INTEGER NOT NULL, id TEXT, ts INTEGER NOT NULL, sender TEXT NOT NULL, rcpt BLOB,
             body TEXT NOT NULL, source TEXT, meta TEXT, template INTEGER NOT NULL, origin TEXT);
         CREATE INDEX messages_template ON messages(template);
         DROP TABLE segments; DROP TABLE segment_clusters; DROP TABLE campaign_samples;
         UPDATE meta SET value = 1 WHERE key = 'schema_version';",
    )
    .unwrap();
    for r in &rows {
        tx.execute(
            "INSERT INTO messages (key, id, ts, sender, rcpt, body, source, meta, template, origin) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    // Version 1 had no first_seg/last_seg columns: drop them by rebuilding
    // would be a long detour; NULLs are what an added column holds.
    conn.execute("UPDATE templates SET first_seg = NULL, last_seg = NULL", []).unwrap();
    // ...and keyed its templates table by the template hash.
    conn.execute_batch(
        "CREATE TABLE t1 (key INTEGER PRIMARY KEY, seq INTEGER NOT NULL, text TEXT NOT NULL, cluster INTEGER,
             messages INTEGER NOT NULL, first_ts INTEGER NOT NULL, first_sender TEXT NOT NULL, first_rcpt INTEGER,
             clusterable INTEGER NOT NULL, optout INTEGER, sender_id INTEGER, findings TEXT, category TEXT,
             quiet INTEGER NOT NULL DEFAULT 0, quiet_finding TEXT, category_rule TEXT, subcategory TEXT,
             first_seg INTEGER, last_seg INTEGER);
         INSERT INTO t1 SELECT key, seq, text, cluster, messages, first_ts, first_sender, first_rcpt, clusterable, optout,
             sender_id, findings, category, quiet, quiet_finding, category_rule, subcategory, first_seg, last_seg FROM templates;
         DROP TABLE templates; ALTER TABLE t1 RENAME TO templates;
         CREATE INDEX templates_cluster ON templates(cluster) WHERE cluster IS NOT NULL;",
    )
    .unwrap();
    std::fs::remove_dir_all(segments_dir(db)).unwrap();
}

#[test]
fn a_database_that_kept_messages_in_sqlite_is_refused_until_migrated_then_reads_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let (stream, _) = simulate(dir.path(), "election-2020", 6000, 5, None);
    tw_ok(&db, &["scan", "-q", stream.to_str().unwrap()]);
    let (members, campaigns) = (membership(&db), campaigns_json(&db));
    let id = campaigns[0]["id"].as_str().unwrap().to_string();
    let card = tw_ok(&db, &["campaign", &id, "--format", "json"]);
    to_version_1(&db);

    let out = tw(&db, &["campaigns"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("migrate"), "the error names the command: {err}");

    let out = tw_ok(&db, &["migrate", "-q", "--batch", "1000"]);
    assert!(out.contains("moved 6,000 messages into"), "{out}");
    let pk: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT pk FROM pragma_table_info('templates') WHERE name = 'key'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(pk, 0, "templates are appended and found by an index on the key");
    assert_eq!(membership(&db), members);
    assert_eq!(campaigns_json(&db), campaigns);
    assert_eq!(tw_ok(&db, &["campaign", &id, "--format", "json"]), card);
    // Exact deduplication still holds, and a second migrate has nothing to do.
    let summary: serde_json::Value =
        serde_json::from_str(&tw_ok(&db, &["scan", "-q", "--format", "json", stream.to_str().unwrap()])).unwrap();
    assert_eq!(summary["duplicates"], 6000);
    assert!(tw_ok(&db, &["migrate"]).contains("nothing to migrate"));
}

#[test]
fn a_migration_stopped_midway_resumes_without_moving_anything_twice() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let (stream, _) = simulate(dir.path(), "election-2020", 5000, 6, None);
    tw_ok(&db, &["scan", "-q", stream.to_str().unwrap()]);
    let members = membership(&db);
    to_version_1(&db);
    // Move part of it, as a migration killed after two steps leaves it.
    {
        let mut store = SqliteStore::open_for_migration(&db).unwrap();
        let mut steps = 0;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.migrate_messages(1000, &mut |_, _| {
                steps += 1;
                if steps == 2 {
                    panic!("stopped");
                }
            })
        }));
        assert!(r.is_err());
        assert_eq!(store.legacy_messages().unwrap(), 3000);
    }
    tw_ok(&db, &["migrate", "-q"]);
    assert_eq!(membership(&db), members);
    assert_eq!(SqliteStore::open_existing(&db).unwrap().stats().unwrap().messages, 5000);
}

#[test]
fn segments_open_in_pyarrow_and_polars() {
    let Some(python) = python_with("pyarrow, polars") else {
        skip("segments_open_in_pyarrow_and_polars: no Python with pyarrow and polars (.ci/run installs them)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let a = dir.path().join("a.jsonl");
    day(&a, 0, 1000);
    tw_ok(&db, &["scan", "-q", a.to_str().unwrap()]);
    let seg = segment_files(&db).pop().unwrap();
    let script = r#"
import sys, pyarrow.ipc as ipc, polars as pl
t = ipc.open_stream(sys.argv[1]).read_all()
df = pl.read_ipc_stream(sys.argv[1])
print(t.num_rows, df.height, str(t.schema.field("ts").type), df["id"][0], df.filter(pl.col("body").str.contains("Vote Together")).height)
"#;
    let out = std::process::Command::new(python).args(["-c", script, seg.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line = String::from_utf8(out.stdout).unwrap();
    assert_eq!(line.trim(), "1000 1000 timestamp[ms, tz=UTC] d0-0 267", "{line}");
}

#[test]
fn a_second_writer_is_refused_while_one_holds_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let a = dir.path().join("a.jsonl");
    day(&a, 0, 100);
    tw_ok(&db, &["scan", "-q", a.to_str().unwrap()]);
    // This process holds the writer's lock...
    let mut store = SqliteStore::open(&db).unwrap();
    store.prune(0).unwrap();
    // ...so a scan is told who is in the way, and stores nothing.
    let b = dir.path().join("b.jsonl");
    day(&b, 1, 100);
    let out = tw(&db, &["scan", "-q", b.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another textwatch process is writing"));
    drop(store);
    tw_ok(&db, &["scan", "-q", b.to_str().unwrap()]);
    assert_eq!(messages(&db).len(), 200);
}

#[test]
fn a_segment_overwritten_with_garbage_gives_an_error_naming_it_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let a = dir.path().join("a.jsonl");
    day(&a, 0, 800);
    tw_ok(&db, &["scan", "-q", a.to_str().unwrap()]);
    let seg = segment_files(&db).pop().unwrap();
    let len = std::fs::metadata(&seg).unwrap().len() as usize;
    for garbage in [
        (0..len).map(|i| (i * 7919 % 251) as u8).collect::<Vec<u8>>(),
        // A valid start, then a length field pointing far past the end.
        {
            let mut b = std::fs::read(&seg).unwrap();
            let at = b.len() / 3;
            b[at..at + 8].copy_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xf0, 0xff, 0xff, 0x7f]);
            b
        },
    ] {
        std::fs::write(&seg, &garbage).unwrap();
        let out = tw(&db, &["messages", "--format", "jsonl"]);
        assert_eq!(out.status.code(), Some(1), "an error exit, not a panic: {}", String::from_utf8_lossy(&out.stderr));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("segment 1"), "{err}");
    }
}

#[test]
fn a_database_written_by_the_previous_version_migrates_and_shows_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v1.db");
    std::fs::copy(fixture("v1/v1.db"), &db).unwrap();
    let out = tw(&db, &["campaigns"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("migrate"));
    tw_ok(&db, &["migrate", "-q"]);
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("v1/v1-campaigns.json")).unwrap()).unwrap();
    let got: serde_json::Value = serde_json::from_str(&tw_ok(&db, &["campaigns", "--format", "json"])).unwrap();
    assert_eq!(got, want);
    let want = std::fs::read_to_string(fixture("v1/v1-messages.jsonl")).unwrap();
    assert_eq!(tw_ok(&db, &["messages", "--format", "jsonl"]), want);
    // And it goes on: the example again is all duplicates.
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/messages.jsonl");
    let s: serde_json::Value =
        serde_json::from_str(&tw_ok(&db, &["scan", "-q", "--format", "json", example.to_str().unwrap()])).unwrap();
    assert_eq!(s["accepted"], 0);
}
