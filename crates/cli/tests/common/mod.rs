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
        .args(db_args(db))
        .args(args)
        .env_remove("TEXTWATCH_DB")
        .env_remove("TEXTWATCH_POSTGRES")
        .env_remove("TEXTWATCH_CONFIG")
        .env("XDG_CONFIG_HOME", "/nonexistent/textwatch-tests")
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

/// The arguments that name a database: `--db PATH`, or, for a file named
/// `*.postgres` that holds a connection string ([`postgres_db`]),
/// `--postgres URL`: tests on PostgreSQL use the same helpers.
pub fn db_args(db: &Path) -> Vec<std::ffi::OsString> {
    if db.extension().is_some_and(|e| e == "postgres") {
        let url = std::fs::read_to_string(db).expect("a .postgres file holds a connection string");
        vec!["--postgres".into(), url.trim().into()]
    } else {
        vec!["--db".into(), db.into()]
    }
}

/// A schema of its own in the test PostgreSQL database
/// (`TEXTWATCH_TEST_POSTGRES`, default `host=127.0.0.1 user=postgres
/// dbname=test`), dropped with this value.
#[allow(dead_code)]
pub struct PgSchema {
    pub admin: postgres::Client,
    /// The schema's name.
    pub name: String,
    /// A `*.postgres` file naming it, for [`db_args`].
    pub db: PathBuf,
    pub url: String,
}

#[allow(dead_code)]
impl PgSchema {
    /// Terminates every session connected as `app` (what a database
    /// restart or failover does to its clients); returns how many.
    pub fn terminate(&mut self, app: &str) -> usize {
        self.admin
            .query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", &[&app])
            .unwrap()
            .len()
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let _ = self.admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
    }
}

/// A fresh [`PgSchema`] with its `*.postgres` file in `dir`, or `None`
/// (skipped, see [`skip`]) without a PostgreSQL server.
#[allow(dead_code)]
pub fn postgres_db(dir: &Path, tag: &str) -> Option<PgSchema> {
    let base =
        std::env::var("TEXTWATCH_TEST_POSTGRES").unwrap_or_else(|_| "host=127.0.0.1 user=postgres dbname=test".into());
    let mut admin = match postgres::Client::connect(&base, postgres::NoTls) {
        Ok(c) => c,
        Err(e) => {
            skip(&format!("no PostgreSQL at {base:?} ({e}); set TEXTWATCH_TEST_POSTGRES"));
            return None;
        }
    };
    let name = format!("tw_cli_{tag}_{}", std::process::id());
    admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}")).unwrap();
    let url = format!("{base} options='-c search_path={name}'");
    let db = dir.join(format!("{name}.postgres"));
    std::fs::write(&db, &url).unwrap();
    Some(PgSchema { admin, name, db, url })
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

/// An election-2020 simulation with its number files imported and scanned
/// (alerts to a file).
pub struct World {
    pub _dir: tempfile::TempDir,
    pub db: std::path::PathBuf,
    pub truth: std::path::PathBuf,
    pub alerts: std::path::PathBuf,
    pub nums: std::path::PathBuf,
}

pub fn truth_campaigns(truth: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(truth)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "campaign")
        .collect()
}

pub fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let (stream, truth, nums, db, alerts) = (p("s.jsonl"), p("t.jsonl"), p("nums"), p("t.db"), p("alerts.jsonl"));
    let s = |x: &Path| x.to_str().unwrap().to_string();
    simulate(dir.path(), "election-2020", 30000, 5, Some(&nums));
    import_numbers(&db, &nums);
    tw_ok(&db, &["scan", "-q", &s(&stream), "--alert", &format!("file:{}", s(&alerts))]);
    World { _dir: dir, db, truth, alerts, nums }
}

/// Imports the number data `simulate --numbers DIR` wrote.
pub fn import_numbers(db: &Path, nums: &Path) {
    let s = |x: &Path| x.to_str().unwrap().to_string();
    tw_ok(
        db,
        &[
            "numbers",
            "import",
            "--nanpa-co",
            &s(&nums.join("nanpa-co.txt")),
            "--nanpa-blocks",
            &s(&nums.join("nanpa-blocks.csv")),
            "--inventory",
            &s(&nums.join("inventory.csv")),
        ],
    );
}

/// The incident's truth facts and its found campaign (JSON).
pub fn incident(w: &World) -> (serde_json::Value, serde_json::Value) {
    let fact = truth_campaigns(&w.truth).into_iter().find(|c| c["label"] == "incident-steal").unwrap();
    let sender = fact["senders"][0].as_str().unwrap().to_string();
    let found = campaigns_json(&w.db)
        .into_iter()
        .find(|c| c["senders"].as_array().unwrap().iter().any(|s| s == sender.as_str()))
        .expect("the incident was found");
    (fact, found)
}

/// Reports a test that cannot run here: a visible message, or a failure
/// under TEXTWATCH_REQUIRE_ALL=1 (as `.ci/run` sets).
pub fn skip(msg: &str) {
    if std::env::var("TEXTWATCH_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("SKIPPED {msg} (TEXTWATCH_REQUIRE_ALL=1 makes this a failure)");
    }
    eprintln!("SKIPPED {msg}");
}

/// The project's Python (the `.venv` `.ci/run` makes, or TEXTWATCH_VENV)
/// if it can import `modules`.
pub fn python_with(modules: &str) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv = std::env::var("TEXTWATCH_VENV").map(PathBuf::from).unwrap_or_else(|_| root.join(".venv"));
    let python = venv.join("bin/python");
    let ok = Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    ok.then_some(python)
}

/// Headless Chromium, if installed (Debian package `chromium`).
pub fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
        let ok = Command::new(name)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then(|| PathBuf::from(name))
    })
}

/// The flags DOMAIN.md asks headless Chromium to run with.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// Writes a simulated stream (and its truth, and with `numbers` the number
/// files) into `dir`; returns the stream and truth paths.
pub fn simulate(dir: &Path, scenario: &str, messages: u64, seed: u64, numbers: Option<&Path>) -> (PathBuf, PathBuf) {
    let (stream, truth) = (dir.join("s.jsonl"), dir.join("t.jsonl"));
    let (n, sd) = (messages.to_string(), seed.to_string());
    let mut args = vec![
        "simulate",
        "--scenario",
        scenario,
        "--messages",
        &n,
        "--seed",
        &sd,
        "--out",
        stream.to_str().unwrap(),
        "--truth",
        truth.to_str().unwrap(),
        "-q",
    ];
    if let Some(d) = numbers {
        args.extend(["--numbers", d.to_str().unwrap()]);
    }
    tw_ok(&dir.join("unused.db"), &args);
    (stream, truth)
}

/// One request a [`stand_in`] server received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its number, from 0.
    pub n: usize,
    pub request_line: String,
    pub authorization: String,
    pub body: String,
}

/// A one-thread HTTP server standing in for a webhook or an upstream API:
/// `answer(n)` gives the status line and JSON body for request `n`; every
/// request is handed back. Returns its base URL.
pub fn stand_in(
    answer: impl Fn(usize) -> (&'static str, String) + Send + 'static,
) -> (String, std::sync::mpsc::Receiver<Received>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            let _ = r.read_line(&mut request_line);
            let (mut len, mut authorization) = (0usize, String::new());
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("authorization:") {
                    authorization = line["authorization:".len()..].trim().to_string();
                }
            }
            let mut body = vec![0u8; len];
            let _ = r.read_exact(&mut body);
            let (status, reply) = answer(n);
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
            let body = String::from_utf8_lossy(&body).to_string();
            let _ = tx.send(Received { n, request_line: request_line.trim_end().to_string(), authorization, body });
        }
    });
    (url, rx)
}

/// A `textwatch serve` child process, killed on drop.
pub struct Server {
    pub child: std::process::Child,
    pub base: String,
    pub db: PathBuf,
    pub _dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new token with these scopes.
pub fn token(db: &Path, scopes: &str) -> String {
    tw_ok(db, &["token", "create", "--scope", scopes]).lines().last().unwrap().trim().to_string()
}

/// Runs `textwatch --db DB ARGS...` in the background, isolated from the
/// caller's configuration, and waits until its standard error has printed
/// a line starting with each of `prefixes`; returns the child and the rest
/// of each such line, in the order of `prefixes`. (Servers print where
/// they listen that way.) What it prints later is drained.
pub fn spawn_until(
    db: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    prefixes: &[&str],
) -> (std::process::Child, Vec<String>) {
    use std::io::{BufRead, BufReader, Read};
    use std::time::{Duration, Instant};
    let mut cmd = Command::new(bin());
    cmd.args(db_args(db))
        .args(args)
        .env_remove("TEXTWATCH_DB")
        .env_remove("TEXTWATCH_CONFIG")
        .env("XDG_CONFIG_HOME", "/nonexistent/textwatch-tests")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut found: Vec<Option<String>> = vec![None; prefixes.len()];
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut line = String::new();
    while found.iter().any(Option::is_none) {
        line.clear();
        if err.read_line(&mut line).unwrap() == 0 || Instant::now() > deadline {
            panic!("textwatch {} did not start: {line}", args.join(" "));
        }
        for (p, f) in prefixes.iter().zip(found.iter_mut()) {
            if let Some(rest) = line.strip_prefix(p) {
                *f = Some(rest.trim_end().to_string());
            }
        }
    }
    std::thread::spawn(move || {
        let mut sink = String::new();
        let _ = err.read_to_string(&mut sink);
    });
    (child, found.into_iter().map(Option::unwrap).collect())
}

/// Starts `textwatch serve` on `db` on a free port, with `extra` options.
pub fn start(db: &Path, extra: &[&str]) -> Server {
    let args: Vec<&str> = ["serve", "--listen", "127.0.0.1:0"].iter().copied().chain(extra.iter().copied()).collect();
    let (child, lines) = spawn_until(db, &args, &[], &["textwatch serve: listening on "]);
    let base = lines[0].split_whitespace().next().unwrap().to_string();
    Server { child, base, db: db.to_path_buf(), _dir: None }
}
