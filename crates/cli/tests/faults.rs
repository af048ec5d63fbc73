//! What the disk can do to a database: a corrupt database file and a full
//! disk each give a clear error, no panic, and leave nothing half-written:
//! once the cause is gone, a rerun gives the clean result.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{bin, fixture, groups, tw, tw_ok};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_corrupt_database_file_is_named_in_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    tw_ok(&db, &["scan", "-q", fixture("campaigns.jsonl").to_str().unwrap()]);
    // Overwrite the middle of the file, past SQLite's header.
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() > 8192, "{} bytes", bytes.len());
    for b in bytes[4096..8192].iter_mut() {
        *b = 0xA5;
    }
    std::fs::write(&db, &bytes).unwrap();
    for args in [vec!["campaigns"], vec!["scan", "-q", fixture("campaigns.jsonl").to_str().unwrap()]] {
        let out = tw(&db, &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
        assert!(err.contains("textwatch: error:") && err.contains(&db.display().to_string()), "{args:?}: {err}");
        assert!(err.contains("malformed") || err.contains("not a database"), "{args:?}: {err}");
        assert!(err.contains("what to do: the database file is damaged"), "{args:?}: {err}");
    }
    // A file that is not SQLite at all.
    std::fs::write(&db, b"this is not a database, it is a note\n".repeat(200)).unwrap();
    let out = tw(&db, &["campaigns"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a database"), "{}", stderr(&out));
}

/// Runs a scan with the file-size limit at `blocks` 1 KiB blocks and
/// SIGXFSZ ignored, so that a write past it fails with EFBIG as on a full
/// disk.
fn scan_with_file_limit(db: &Path, input: &Path, blocks: u64) -> Output {
    let script = format!("trap '' XFSZ; ulimit -f {blocks}; exec \"$0\" --db \"$1\" scan -q \"$2\"",);
    Command::new("bash")
        .args(["-c", &script, bin(), db.to_str().unwrap(), input.to_str().unwrap()])
        .env_remove("TEXTWATCH_DB")
        .env("XDG_CONFIG_HOME", "/nonexistent/textwatch-tests")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_full_disk_stops_the_scan_with_a_clear_error_and_a_rerun_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (stream, _) = common::simulate(dir.path(), "election-2020", 60000, 5, None);
    let clean = dir.path().join("clean.db");
    tw_ok(&clean, &["scan", "-q", stream.to_str().unwrap()]);
    let want = groups(&clean);

    let db = dir.path().join("full.db");
    // 2 MiB per file: the database and the log outgrow it partway.
    let out = scan_with_file_limit(&db, &stream, 2048);
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(0), "the scan did not notice the full disk: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("textwatch: error:"), "{err}");
    assert!(err.contains("File too large") || err.contains("full") || err.contains("disk I/O"), "{err}");
    assert!(err.contains("what to do: the disk is full"), "{err}");

    // What was committed opens, and the rerun (the disk freed) gives
    // exactly the clean result: nothing half-written, nothing twice.
    let out = tw(&db, &["campaigns", "--format", "json"]);
    assert!(out.status.success(), "after the full disk the database does not open: {}", stderr(&out));
    tw_ok(&db, &["scan", "-q", stream.to_str().unwrap()]);
    assert_eq!(groups(&db), want, "campaigns differ after the full disk and a rerun");
    let n = |db: &Path| tw_ok(db, &["messages", "--format", "jsonl"]).lines().count();
    assert_eq!(n(&db), n(&clean));
}

/// Runs textwatch as a user who may read but not write `dir`: `nobody`
/// when the tests run as root (file modes do not stop root), else the
/// current user after the write bits are taken away.
fn as_reader(dir: &Path, db: &Path, args: &[&str]) -> Option<Output> {
    let root = Command::new("id").arg("-u").output().ok().is_some_and(|o| o.stdout.starts_with(b"0"));
    let mut cmd = if root {
        Command::new("chmod").args(["-R", "a+rX"]).arg(dir).status().ok()?;
        let mut c = Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", bin()]);
        c
    } else {
        Command::new("chmod").args(["-R", "a-w"]).arg(dir).status().ok()?;
        Command::new(bin())
    };
    cmd.arg("--db")
        .arg(db)
        .args(args)
        .env_remove("TEXTWATCH_DB")
        .env("XDG_CONFIG_HOME", "/nonexistent/textwatch-tests");
    cmd.env("HOME", "/nonexistent").stdin(Stdio::null()).output().ok()
}

/// Gives a folder its write bits back when dropped (so that the temporary
/// directory can be removed even when an assertion fails).
struct Writable<'a>(&'a Path);

impl Drop for Writable<'_> {
    fn drop(&mut self) {
        let _ = Command::new("chmod").args(["-R", "u+w"]).arg(self.0).status();
    }
}

#[test]
fn a_database_that_may_not_be_written_is_read_and_never_changed() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    let _restore = Writable(&dir);
    let db = dir.join("t.db");
    tw_ok(&db, &["scan", "-q", fixture("campaigns.jsonl").to_str().unwrap()]);
    let want = tw_ok(&db, &["campaigns", "--format", "json"]);
    let before = std::fs::read(&db).unwrap();
    let Some(out) = as_reader(&dir, &db, &["campaigns", "--format", "json"]) else {
        return common::skip("read-only database test: neither setpriv (as root) nor chmod worked");
    };
    assert!(out.status.success(), "a read-only database cannot be read: {}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), want, "read-only reads differ");
    let out = as_reader(&dir, &db, &["scan", "-q", fixture("campaigns.jsonl").to_str().unwrap()]).unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("what to do: textwatch may not write there"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), before, "the read-only database changed");

    // One written by an older textwatch cannot be upgraded here: said so.
    let old = dir.join("v1.db");
    let _ = Command::new("chmod").args(["-R", "u+w"]).arg(&dir).status();
    std::fs::copy(fixture("v1/v1.db"), &old).unwrap();
    let out = as_reader(&dir, &old, &["campaigns"]).unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("open it once where textwatch may write it"), "{err}");
}
