//! textwatch.toml: found in ~/.config/textwatch/ and in the database's
//! folder, key by key the latter winning; flags and environment variables
//! win over both.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs textwatch in `cwd` with HOME at `home` and only `env` set among
/// textwatch's variables.
fn run(cwd: &Path, home: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(common::bin());
    c.current_dir(cwd).args(args).stdin(Stdio::null()).env("HOME", home).env_remove("XDG_CONFIG_HOME");
    for v in [
        "TEXTWATCH_DB",
        "TEXTWATCH_CONFIG",
        "TEXTWATCH_LISTEN",
        "TEXTWATCH_POLICY",
        "TEXTWATCH_RULES",
        "TEXTWATCH_PROVIDERS",
        "TEXTWATCH_REPORTER_ORG",
        "TEXTWATCH_REPORTER_CONTACT",
        "TEXTWATCH_REPORTER_DOMAIN",
    ] {
        c.env_remove(v);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("textwatch runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn files_fill_in_what_flags_and_the_environment_leave_open() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let work = dir.path().join("work");
    std::fs::create_dir_all(home.join(".config/textwatch")).unwrap();
    std::fs::create_dir_all(work.join("data")).unwrap();
    std::fs::write(
        home.join(".config/textwatch/textwatch.toml"),
        "db = \"/nonexistent/elsewhere.db\"\n[reporter]\norg = \"Example Watch\"\ncontact = \"abuse@example.org\"\ndomain = \"example.org\"\n",
    )
    .unwrap();
    // The folder's file wins over the user's for `db`, relative to itself.
    std::fs::write(work.join("textwatch.toml"), "db = \"data/tw.db\"\n").unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/messages.jsonl");
    let out = run(&work, &home, &[], &["scan", "-q", example.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(work.join("data/tw.db").exists(), "the file's database was used");
    assert!(!work.join("textwatch.db").exists());

    // The reporter identity comes from the user's file: a XARF report
    // needs no flags.
    let out = run(&work, &home, &[], &["report", "f2514", "--format", "xarf"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Example Watch"));
    // A flag wins over the file, and so does the environment.
    let out = run(&work, &home, &[], &["report", "f2514", "--format", "xarf", "--reporter-org", "Flag Org"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Flag Org"), "{}", text(&out));
    let out = run(&work, &home, &[("TEXTWATCH_REPORTER_ORG", "Env Org")], &["report", "f2514", "--format", "xarf"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Env Org"), "{}", text(&out));

    // `textwatch config` says what was read and what each setting is.
    let out = run(&work, &home, &[("TEXTWATCH_REPORTER_ORG", "Env Org")], &["config"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("./textwatch.toml") && t.contains("read"), "{t}");
    assert!(t.starts_with("database: ./data/tw.db (from a configuration file)"), "{t}");
    assert!(t.contains("db") && t.contains("./data/tw.db"), "{t}");
    assert!(t.contains("not used: TEXTWATCH_REPORTER_ORG is set in the environment"), "{t}");

    // --db elsewhere looks for the file in that database's folder instead.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("textwatch.toml"), "[serve]\nlisten = \"127.0.0.1:1\"\n").unwrap();
    let db = other.join("x.db");
    let out = run(&work, &home, &[], &["--db", db.to_str().unwrap(), "config"]);
    let t = text(&out);
    assert!(t.contains(&format!("{}", other.join("textwatch.toml").display())), "{t}");
    assert!(t.contains("serve.listen") && t.contains("127.0.0.1:1"), "{t}");
}

#[test]
fn a_bad_file_is_an_error_naming_it_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("textwatch.toml"), "[serve]\nlisen = \"127.0.0.1:80\"\n").unwrap();
    let out = run(dir.path(), dir.path(), &[], &["campaigns"]);
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(t.contains("reading configuration ./textwatch.toml"), "{t}");
    assert!(t.contains("unknown field `lisen`, expected `listen`"), "{t}");

    // --config names a file that must exist.
    let out = run(dir.path(), dir.path(), &[], &["--config", "missing.toml", "campaigns"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("reading configuration missing.toml"), "{}", text(&out));
}

#[test]
fn a_file_another_user_owns_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("textwatch.toml");
    std::fs::write(&file, "[serve]\nlisten = \"0.0.0.0:9\"\n").unwrap();
    // Only root can give a file away; as anyone else, the files one makes
    // are one's own and this case cannot arise.
    let given = Command::new("chown").arg("nobody").arg(&file).status().is_ok_and(|s| s.success());
    if !given {
        eprintln!("not root: cannot make a file another user owns; nothing to check");
        return;
    }
    let out = run(dir.path(), dir.path(), &[], &["config"]);
    let t = text(&out);
    assert!(t.contains("not reading ./textwatch.toml: another user owns it"), "{t}");
    assert!(t.contains("skipped: another user owns it") && !t.contains("0.0.0.0:9"), "{t}");
}
