//! What a new user sees when something is wrong: the error last, control
//! bytes escaped, empty inputs warned about, ambiguous ids listed, CSV
//! header errors naming the accepted names.

mod common;

use common::{fixture, tw, tw_ok};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_missing_file_is_the_last_thing_said_and_no_summary_hides_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    tw_ok(&db, &["scan", "-q", fixture("campaigns.jsonl").to_str().unwrap()]);
    let missing = dir.path().join("nope.jsonl");
    let out = tw(&db, &["scan", "-q", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "the database's summary was printed: {}", String::from_utf8_lossy(&out.stdout));
    let err = stderr(&out);
    assert!(err.trim_end().ends_with("No such file or directory (os error 2)"), "{err}");
    assert!(!err.contains('\x1b'), "colors when not on a terminal: {err:?}");

    // With a good file next to it, the summary comes first and the error
    // is repeated after it.
    let out = tw(&db, &["scan", "-q", fixture("campaigns.jsonl").to_str().unwrap(), missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("records read"));
    let err = stderr(&out);
    assert_eq!(err.matches("cannot open").count(), 2, "{err}");
    assert!(err.trim_end().lines().last().unwrap().contains("cannot open"), "{err}");
}

#[test]
fn empty_and_binary_inputs_are_named_and_nothing_raw_is_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let out = tw(&db, &["scan", "-q", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains("warning: ") && err.contains("empty.jsonl holds no records (an empty file?)"), "{err}");
    assert_eq!(err.matches("holds no records").count(), 1, "{err}");
    assert!(out.stdout.is_empty(), "a summary for an empty file: {}", String::from_utf8_lossy(&out.stdout));
    // Among files that hold records, the warning comes again after the
    // summary, last.
    let out = tw(&db, &["scan", "-q", empty.to_str().unwrap(), fixture("campaigns.jsonl").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("records read"));
    let err = stderr(&out);
    assert_eq!(err.matches("holds no records").count(), 2, "{err}");

    let binary = dir.path().join("a.out");
    let mut bytes = b"\x7fELF\x02\x01\x01\x00\x00\x1b[2J".to_vec();
    bytes.extend(std::iter::repeat_n(0xffu8, 64));
    std::fs::write(&binary, &bytes).unwrap();
    let out = tw(&db, &["scan", "-q", binary.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("binary data (byte 7 is a NUL), not a message file"), "{err}");
    assert!(!err.bytes().any(|b| b < 0x20 && b != b'\n'), "control bytes reached the terminal: {err:?}");
}

#[test]
fn a_wrong_csv_header_lists_the_names_each_column_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let csv = dir.path().join("x.csv");
    std::fs::write(&csv, "when,who,what\n2020-11-04T15:00:00Z,+12155550100,hello\n").unwrap();
    let out = tw(&db, &["scan", "-q", csv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    for want in [
        "no column for from (named one of: from, sender, from_number, originator)",
        "body (named one of: body, text, message, content, message_body)",
        "ts (named one of: ts, timestamp, time, date",
        "columns found: when, who, what",
    ] {
        assert!(err.contains(want), "missing {want:?} in {err}");
    }
}

#[test]
fn an_ambiguous_prefix_lists_the_campaigns_it_matches() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let (stream, _) = common::simulate(dir.path(), "smishing", 5000, 3, None);
    tw_ok(&db, &["scan", "-q", stream.to_str().unwrap()]);
    let ids: Vec<String> = common::campaigns_json(&db).iter().map(|c| c["id"].as_str().unwrap().to_string()).collect();
    // More campaigns than hex digits: some first digit is shared.
    assert!(ids.len() > 16, "{} campaigns", ids.len());
    let (digit, shared) = "0123456789abcdef"
        .chars()
        .map(|d| (d, ids.iter().filter(|i| i.starts_with(d)).count()))
        .max_by_key(|&(_, n)| n)
        .unwrap();
    assert!(shared >= 2);
    let out = tw(&db, &["campaign", &digit.to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&format!("matches {shared} campaigns (")), "{err}");
    let mut listed: Vec<&String> = ids.iter().filter(|i| i.starts_with(digit)).collect();
    listed.sort();
    for id in listed.iter().take(10) {
        assert!(err.contains(id.as_str()), "{id} not listed: {err}");
    }
    assert_eq!(err.contains(", ...)"), shared > 10, "{err}");
}

#[test]
fn on_postgres_a_command_that_needs_the_sqlite_file_says_so_and_the_rest_work() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pg) = common::postgres_db(dir.path(), "errors") else { return };
    let out = tw(&pg.db, &["scan", "-q", fixture("campaigns.jsonl").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("`textwatch scan` does not run on PostgreSQL yet"), "{err}");
    assert!(err.contains("drop --postgres"), "it says what to do: {err}");
    assert!(!dir.path().join("textwatch.db").exists() && !std::path::Path::new("textwatch.db").exists());
    // Read commands work on a new, empty database (its tables made on
    // first use); commands without a database are not refused.
    assert!(tw_ok(&pg.db, &["campaigns"]).contains("no campaigns yet"));
    assert_eq!(tw_ok(&pg.db, &["blocklist", "--format", "csv"]).lines().count(), 1, "a header only");
    let truth = dir.path().join("t.jsonl");
    let sim = tw_ok(&pg.db, &["simulate", "--messages", "10", "--out", "-", "--truth", truth.to_str().unwrap()]);
    assert_eq!(sim.lines().count(), 10);
    let config = tw_ok(&pg.db, &["config"]);
    let first = config.lines().next().unwrap_or("");
    assert!(first.starts_with("database: postgresql://") && first.ends_with("(from --postgres)"), "{config}");
    // A wrong connection string is named, without its password.
    let out = common::tw(
        &{
            let p = dir.path().join("bad.postgres");
            std::fs::write(&p, "host=127.0.0.1 port=1 user=x password=secret dbname=y connect_timeout=2").unwrap();
            p
        },
        &["campaigns"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot connect to postgresql://x@127.0.0.1/y"), "{err}");
    assert!(!err.contains("secret"), "{err}");
}

/// The reviewer's commands run on PostgreSQL too: an appeal opened and
/// overturned from the command line, in the audit log; reports, opt-outs
/// and the policy read from there.
#[test]
fn on_postgres_the_reviewers_commands_work() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pg) = common::postgres_db(dir.path(), "review") else { return };
    let args =
        ["appeal", "open", "--number", "+1 (215) 555-0100", "--contact", "ops@acme.example", "--reason", "opt-in list"];
    let out = tw(&pg.db, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("appeal 1 opened for number +12155550100"), "{}", stderr(&out));
    let listed: serde_json::Value =
        serde_json::from_str(&tw_ok(&pg.db, &["appeal", "list", "--format", "json"])).unwrap();
    assert_eq!(listed[0]["state"], "open", "{listed}");
    let out = tw(&pg.db, &["appeal", "decide", "1", "--overturn", "--reason", "verified", "--by", "rev"]);
    assert!(stderr(&out).contains("appeal 1 overturned: allow rule added, policy version 1"), "{}", stderr(&out));
    let again = tw(&pg.db, &["appeal", "decide", "1", "--uphold", "--reason", "twice", "--by", "rev"]);
    assert_eq!(again.status.code(), Some(1), "an appeal is decided once");
    let audit: serde_json::Value = serde_json::from_str(&tw_ok(&pg.db, &["audit", "--format", "json"])).unwrap();
    let actions: Vec<&str> = audit.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions.len(), 2, "opened and overturned: {audit}");
    assert!(tw_ok(&pg.db, &["appeal", "list"]).contains("allow rules added by overturned appeals (policy version 1)"));
    let out = tw(&pg.db, &["reports"]);
    assert!(out.status.success() && stderr(&out).contains("no reports yet"), "{}", stderr(&out));
    let out = tw(&pg.db, &["reports", "answer", "5", "thanks"]);
    assert!(stderr(&out).contains("no report 5"), "{}", stderr(&out));
    assert_eq!(tw_ok(&pg.db, &["optouts", "--format", "jsonl"]), "");
    let out = tw(&pg.db, &["policy", "explain", "00ff"]);
    assert!(stderr(&out).contains("no campaign \"00ff\""), "{}", stderr(&out));
}
