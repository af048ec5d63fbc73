//! Rotating the recipient key: new messages are hashed under the new key,
//! recipients seen before the rotation are still recognised during the
//! grace period, no secret is ever printed, and a rotation is refused while
//! another process writes the database; the same on PostgreSQL.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{bin, campaigns_json, tw, tw_ok};

/// Six (or more) copies of one text to recipients `rcpts`, ids with `tag`.
fn wave(path: &Path, tag: &str, rcpts: std::ops::Range<u32>, minute: i64) {
    let lines: Vec<String> = rcpts
        .map(|r| {
            serde_json::json!({
                "id": format!("{tag}{r}"),
                "ts": 1_604_502_000 + minute * 60 + i64::from(r),
                "from": format!("+1215555{:04}", 100 + r % 3),
                "to": format!("+1267555{:04}", 1000 + r),
                "body": format!("USPS: your package US{:09} is held. Pay the fee at https://usps-fee.top/p{r}", 4000 + r),
            })
            .to_string()
        })
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// The database's current secret, in hex (read directly: the CLI never
/// prints it).
fn secret_hex(db: &Path) -> String {
    let conn = rusqlite::Connection::open(db).unwrap();
    let s: Vec<u8> = conn.query_row("SELECT value FROM meta WHERE key = 'secret'", [], |r| r.get(0)).unwrap();
    s.iter().map(|b| format!("{b:02x}")).collect()
}

fn recipients(db: &Path) -> u64 {
    let list = campaigns_json(db);
    assert_eq!(list.len(), 1, "{list:?}");
    list[0]["recipients"].as_u64().unwrap()
}

#[test]
fn a_rotation_keeps_recipients_matched_through_its_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let (before, after) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    wave(&before, "a", 0..6, 0);
    wave(&after, "b", 0..7, 30); // the same six recipients and one more

    // Without a rotation: 7 recipients.
    let plain = dir.path().join("plain.db");
    tw_ok(&plain, &["scan", "-q", before.to_str().unwrap(), after.to_str().unwrap()]);
    assert_eq!(recipients(&plain), 7);

    // Rotated between the two waves, in the grace period: still 7.
    let db = dir.path().join("rotated.db");
    tw_ok(&db, &["scan", "-q", before.to_str().unwrap()]);
    let shown = tw_ok(&db, &["keys", "show"]);
    let first_key = shown.lines().find(|l| l.trim_start().starts_with("key ")).unwrap().to_string();
    assert!(shown.contains("previous key  none kept"), "{shown}");
    let old_secret = secret_hex(&db);
    let rotated = tw_ok(&db, &["keys", "rotate", "--grace-days", "30"]);
    assert!(rotated.contains("previous key") && rotated.contains("still matched until"), "{rotated}");
    let new_key = rotated.lines().find(|l| l.trim_start().starts_with("key ")).unwrap().to_string();
    assert_ne!(first_key, new_key, "the key did not change");
    let new_secret = secret_hex(&db);
    assert_ne!(old_secret, new_secret);
    for out in [&shown, &rotated, &tw_ok(&db, &["keys", "show"])] {
        for secret in [&old_secret, &new_secret] {
            assert!(!out.contains(&secret[..16]), "a secret was printed: {out}");
        }
    }
    tw_ok(&db, &["scan", "-q", after.to_str().unwrap()]);
    assert_eq!(recipients(&db), 7, "recipients seen before the rotation counted again");

    // With no grace period the old hashes match nothing new: the same
    // people count again, which is what a finished rotation means.
    let cut = dir.path().join("cut.db");
    tw_ok(&cut, &["scan", "-q", before.to_str().unwrap()]);
    tw_ok(&cut, &["keys", "rotate", "--grace-days", "0"]);
    assert!(tw_ok(&cut, &["keys", "show"]).contains("previous key  none kept"));
    tw_ok(&cut, &["scan", "-q", after.to_str().unwrap()]);
    assert_eq!(recipients(&cut), 13);
}

/// Kills the process when dropped, whatever the test does.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_rotation_is_refused_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("a.jsonl");
    wave(&input, "a", 0..6, 0);
    let db = dir.path().join("s.db");
    tw_ok(&db, &["scan", "-q", input.to_str().unwrap()]);
    let mut server = Killed(
        Command::new(bin())
            .args(["--db", db.to_str().unwrap(), "serve", "--listen", "127.0.0.1:0"])
            .env("XDG_CONFIG_HOME", "/nonexistent/textwatch-tests")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut err = BufReader::new(server.0.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("listening") {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "serve did not start");
    }
    let out = tw(&db, &["keys", "rotate"]);
    drop(server);
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("stop a running scan, serve or the workers first"), "{text}");
    // Once it is stopped, the rotation goes through.
    tw_ok(&db, &["keys", "rotate"]);
}

/// On PostgreSQL (`--postgres`): the key is shown and rotated as in the
/// file, never printed, and `prune` runs there too (what they do to the
/// data is tested against the embedded store in crates/store/tests/pg.rs).
#[test]
fn on_postgres_keys_and_prune_run_as_on_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut pg) = common::postgres_db(dir.path(), "keys") else { return };
    let shown = tw_ok(&pg.db, &["keys", "show"]);
    assert!(shown.starts_with("recipient key of postgresql://"), "{shown}");
    assert!(shown.contains("(blake3-keyed)") && shown.contains("previous key  none kept"), "{shown}");
    let secret = |pg: &mut common::PgSchema| -> String {
        let q = format!("SELECT value FROM {}.meta WHERE key = 'secret'", pg.name);
        pg.admin.query_one(&q, &[]).unwrap().get(0)
    };
    let old = secret(&mut pg);
    let rotated = tw_ok(&pg.db, &["keys", "rotate", "--grace-days", "30"]);
    assert!(rotated.contains("still matched until"), "{rotated}");
    let new = secret(&mut pg);
    assert_ne!(old, new, "the key did not change");
    let again = tw_ok(&pg.db, &["keys", "show"]);
    assert_eq!(rotated.lines().skip(1).collect::<Vec<_>>(), again.lines().collect::<Vec<_>>(), "shown as rotated");
    for out in [&shown, &rotated, &again] {
        for s in [&old, &new] {
            assert!(!out.contains(&s[..16]), "a secret was printed: {out}");
        }
    }
    let dry = tw_ok(&pg.db, &["prune", "--before", "2020-11-04", "--dry-run"]);
    assert!(dry.starts_with("would drop 0 segments"), "{dry}");
    let pruned = tw_ok(&pg.db, &["prune", "--before", "2020-11-04"]);
    assert!(pruned.contains("dropped 0 segments"), "{pruned}");
}
