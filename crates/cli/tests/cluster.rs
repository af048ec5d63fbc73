//! The pipeline past one machine: messages published to NATS JetStream and
//! assigned by `textwatch worker`s give exactly what the embedded `scan`
//! gives, with a worker killed halfway or not.
//!
//! Each test starts its own `nats-server` (JetStream, a scratch store, a
//! free port) so that tests never share streams; without the binary they
//! skip with a message (a failure under TEXTWATCH_REQUIRE_ALL=1).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{groups, import_numbers, simulate, tw, tw_ok};

struct Nats {
    child: Child,
    url: String,
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nats_server() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/bin")])
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file());
    if found.is_none() {
        common::skip("cluster tests: no nats-server (Debian package nats-server)");
    }
    found
}

/// A nats-server of this test's own, with JetStream storing under `dir`.
fn start_nats(bin: &Path, dir: &Path) -> Nats {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    start_nats_on(bin, dir, port)
}

fn start_nats_on(bin: &Path, dir: &Path, port: u16) -> Nats {
    let child = Command::new(bin)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir.join("jetstream"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("nats-server.log")).unwrap())
        .spawn()
        .expect("nats-server starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Nats { child, url: format!("nats://127.0.0.1:{port}") }
}

fn worker(db: &Path, nats: &Nats, log: &Path, alerts: &Path) -> Child {
    worker_with(db, nats, log, alerts, &[])
}

fn worker_with(db: &Path, nats: &Nats, log: &Path, alerts: &Path, extra: &[&str]) -> Child {
    worker_under(&[], db, nats, log, alerts, extra)
}

/// A worker started through `wrapper` (a command that ends by running its
/// arguments, as `bash -c '...; exec "$@"' bash`), or directly when empty.
fn worker_under(wrapper: &[&str], db: &Path, nats: &Nats, log: &Path, alerts: &Path, extra: &[&str]) -> Child {
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(common::bin());
            c
        }
        None => Command::new(common::bin()),
    };
    cmd.args(common::db_args(db))
        .args(["worker", "--nats", &nats.url])
        .args(extra)
        .arg("--alert")
        .arg(format!("file:{}", alerts.display()))
        .env("TEXTWATCH_LOG", "info")
        .env("XDG_CONFIG_HOME", "/nonexistent/textwatch-tests")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap())
        .spawn()
        .expect("worker starts")
}

fn status(db: &Path, nats: &Nats) -> serde_json::Value {
    serde_json::from_str(&tw_ok(db, &["status", "--nats", &nats.url, "--json"])).expect("status --json is JSON")
}

/// Waits until the store has assigned every published message.
fn wait_assigned(db: &Path, nats: &Nats, logs: &[&Path]) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let s = status(db, nats);
        if s["in_last_seq"].as_u64() > Some(0) && s["not_yet_assigned"] == 0 {
            return;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = logs.iter().map(|l| std::fs::read_to_string(l).unwrap_or_default()).collect();
            panic!("not all assigned after 10 minutes: {s}\n{}", logs.join("\n---\n"));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Alerts without the wall-clock time they were raised at.
fn alerts(db: &Path) -> Vec<serde_json::Value> {
    tw_ok(db, &["alerts"])
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("raised_at");
            v
        })
        .collect()
}

/// What an alert says that does not depend on when it was evaluated: an
/// assigner that takes over raises the alerts its predecessor died before
/// raising, with the counts of that moment.
fn alert_keys(db: &Path) -> BTreeSet<String> {
    alerts(db)
        .iter()
        .map(|a| format!("{} {} {} {}", a["campaign"], a["level"], a["detected_at"], a["time_to_detect"]))
        .collect()
}

/// Stops a worker as an operator would (SIGTERM) and waits for it.
fn stop(w: &mut Child) {
    let _ = Command::new("kill").args(["-TERM", &w.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(60);
    while w.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = w.kill();
            panic!("a worker did not stop within a minute of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Everything that must be equal between two runs: campaigns (their
/// membership by message id, and their JSON: counts, findings, category,
/// risk, decision), stored messages, the block list and the alerts.
fn assert_same(embedded: &Path, cluster: &Path, exact_alerts: bool) {
    let (a, b) = (groups(embedded), groups(cluster));
    assert!(a.len() > 5, "the stream forms campaigns: {}", a.len());
    assert_eq!(a, b, "campaign membership");
    let (a, b) = (common::campaigns_json(embedded), common::campaigns_json(cluster));
    assert_eq!(a.len(), b.len(), "campaigns");
    for (x, y) in a.iter().zip(&b) {
        let differ: Vec<String> = x
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, v)| y.get(k.as_str()) != Some(v))
            .map(|(k, v)| format!("{k}: {v} != {}", y[k.as_str()]))
            .collect();
        assert!(differ.is_empty(), "campaign {} differs: {differ:?}", x["id"]);
    }
    assert_eq!(tw_ok(embedded, &["messages", "--format", "jsonl"]), tw_ok(cluster, &["messages", "--format", "jsonl"]));
    assert_eq!(tw_ok(embedded, &["blocklist", "--format", "csv"]), tw_ok(cluster, &["blocklist", "--format", "csv"]));
    if exact_alerts {
        assert_eq!(alerts(embedded), alerts(cluster), "alerts");
    } else {
        assert_eq!(alert_keys(embedded), alert_keys(cluster), "alerts");
    }
}

struct Setup {
    dir: tempfile::TempDir,
    stream: PathBuf,
    embedded: PathBuf,
    cluster: PathBuf,
}

/// The election-day rewordings scenario (the incident's waves in several
/// wordings, one script from two organizations, background chatter) with
/// its number data, scanned embedded; and a second database with the same
/// number data for the cluster.
fn setup(messages: u64, seed: u64) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let nums = dir.path().join("nums");
    let (stream, _) = simulate(dir.path(), "rewordings", messages, seed, Some(&nums));
    let (embedded, cluster) = (dir.path().join("embedded.db"), dir.path().join("cluster.db"));
    import_numbers(&embedded, &nums);
    import_numbers(&cluster, &nums);
    let alerts = format!("file:{}", dir.path().join("embedded-alerts.jsonl").display());
    tw_ok(&embedded, &["scan", "-q", stream.to_str().unwrap(), "--alert", &alerts]);
    Setup { dir, stream, embedded, cluster }
}

#[test]
fn two_workers_give_what_the_embedded_scan_gives() {
    let Some(bin) = nats_server() else { return };
    let s = setup(30_000, 11);
    let nats = start_nats(&bin, s.dir.path());
    let out = tw_ok(&s.cluster, &["publish", "--nats", &nats.url, s.stream.to_str().unwrap()]);
    assert!(out.starts_with("published 30,000 of 30,000 records to TEXTWATCH_IN (sequences 1-30000)"), "{out}");
    let logs = [s.dir.path().join("w1.log"), s.dir.path().join("w2.log")];
    let alerts = s.dir.path().join("cluster-alerts.jsonl");
    let mut workers: Vec<Child> = logs.iter().map(|l| worker(&s.cluster, &nats, l, &alerts)).collect();
    wait_assigned(&s.cluster, &nats, &[&logs[0], &logs[1]]);
    for w in &mut workers {
        stop(w);
    }
    assert_same(&s.embedded, &s.cluster, true);
    // Both workers analyzed; one assigned.
    let text: Vec<String> = logs.iter().map(|l| std::fs::read_to_string(l).unwrap()).collect();
    assert_eq!(text.iter().filter(|t| t.contains("holds the store's lock and assigns")).count(), 1, "{text:?}");
    // The alert sink got what the store recorded.
    assert_eq!(std::fs::read_to_string(&alerts).unwrap().lines().count(), alerts_count(&s.cluster));
}

/// The database's disk fills under the assigner (a file-size limit, as a
/// full disk: writes fail with EFBIG) and is freed again later: the worker
/// says what is wrong, keeps bidding with backoff, and once writes work
/// again assigns the rest, with nothing lost and nothing stored twice.
#[test]
fn a_full_disk_under_the_assigner_stops_it_until_freed_and_loses_nothing() {
    let Some(bin) = nats_server() else { return };
    let s = setup(20_000, 17);
    let nats = start_nats(&bin, s.dir.path());
    tw_ok(&s.cluster, &["publish", "--nats", &nats.url, s.stream.to_str().unwrap()]);
    let log = s.dir.path().join("w.log");
    let alerts = s.dir.path().join("cluster-alerts.jsonl");
    // Room for a few hundred KiB more than the database holds now (a soft
    // limit: lifting it later needs no privilege).
    let blocks = std::fs::metadata(&s.cluster).unwrap().len() / 1024 + 300;
    let script = format!("trap '' XFSZ; ulimit -S -f {blocks}; exec \"$@\"");
    let mut w = worker_under(&["bash", "-c", &script, "bash"], &s.cluster, &nats, &log, &alerts, &[]);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("stopped assigning") {
            assert!(text.contains("File too large") || text.contains("disk"), "the log says what is wrong: {text}");
            break;
        }
        assert!(w.try_wait().unwrap().is_none(), "the worker exited instead of retrying: {text}");
        assert!(Instant::now() < deadline, "the full disk was not noticed: {text}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let stuck = status(&s.cluster, &nats)["not_yet_assigned"].as_u64().unwrap_or(0);
    assert!(stuck > 0, "the limit stopped the assigner partway");
    // The disk is freed: the same worker's next bid assigns the rest.
    let freed = Command::new("prlimit").args(["--pid", &w.id().to_string(), "--fsize=unlimited"]).status().unwrap();
    assert!(freed.success(), "prlimit (util-linux) could not lift the limit");
    wait_assigned(&s.cluster, &nats, &[&log]);
    stop(&mut w);
    assert_same(&s.embedded, &s.cluster, false);
}

fn alerts_count(db: &Path) -> usize {
    tw_ok(db, &["alerts"]).lines().count()
}

#[test]
fn a_worker_killed_halfway_loses_nothing_and_stores_nothing_twice() {
    let Some(bin) = nats_server() else { return };
    // Three batches, so that the kill falls between commits.
    let s = setup(70_000, 23);
    assigner_killed_halfway(&bin, &s, &s.cluster);
}

/// The shared store: the same as above with the workers on PostgreSQL
/// (number data imported there): the answers are the embedded scan's,
/// every message stored once, across an assigner killed with SIGKILL.
#[test]
fn workers_on_postgres_give_what_the_embedded_scan_gives_across_a_killed_assigner() {
    let Some(bin) = nats_server() else { return };
    let s = setup(70_000, 29);
    let Some(pg) = common::postgres_db(s.dir.path(), "cluster") else { return };
    import_numbers(&pg.db, &s.dir.path().join("nums"));
    assigner_killed_halfway(&bin, &s, &pg.db);
}

/// The database's connections lost under the workers, up to three times (their
/// sessions terminated, as a PostgreSQL restart or failover does): the
/// assigner logs what is wrong, bids again with backoff and reconnects,
/// and the result is the embedded scan's, every message stored once.
#[test]
fn workers_on_postgres_survive_lost_database_connections() {
    let Some(bin) = nats_server() else { return };
    let s = setup(70_000, 31);
    let Some(mut pg) = common::postgres_db(s.dir.path(), "lost") else { return };
    import_numbers(&pg.db, &s.dir.path().join("nums"));
    // The workers connect under a name of their own; the test's own
    // commands (status) do not.
    let app = format!("tw_workers_{}", std::process::id());
    let workers = s.dir.path().join("workers.postgres");
    std::fs::write(&workers, format!("{} application_name={app}", pg.url)).unwrap();
    let nats = start_nats(&bin, s.dir.path());
    tw_ok(&pg.db, &["publish", "--nats", &nats.url, s.stream.to_str().unwrap()]);
    let logs: Vec<PathBuf> = (1..=2).map(|i| s.dir.path().join(format!("w{i}.log"))).collect();
    let alerts = s.dir.path().join("cluster-alerts.jsonl");
    let mut ws: Vec<Child> = logs.iter().map(|l| worker(&workers, &nats, l, &alerts)).collect();
    let mut cut = 0;
    let deadline = Instant::now() + Duration::from_secs(300);
    while cut < 3 {
        let st = status(&pg.db, &nats);
        if st["assigned_below_seq"].as_u64().unwrap_or(0) > 1 && st["not_yet_assigned"].as_u64() > Some(0) {
            if pg.terminate(&app) > 0 {
                cut += 1;
            }
            std::thread::sleep(Duration::from_millis(1500));
        } else if st["not_yet_assigned"] == 0 && st["in_last_seq"].as_u64() > Some(0) {
            break;
        }
        assert!(Instant::now() < deadline, "stuck: {st}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(cut >= 1, "no connection was cut while assigning");
    let refs: Vec<&Path> = logs.iter().map(PathBuf::as_path).collect();
    wait_assigned(&pg.db, &nats, &refs);
    for w in &mut ws {
        stop(w);
    }
    let text: String = logs.iter().map(|l| std::fs::read_to_string(l).unwrap()).collect();
    assert!(text.contains("stopped assigning"), "the log says what happened: {text}");
    let stored = common::messages(&pg.db);
    let ids: BTreeSet<&str> = stored.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), stored.len(), "a message stored twice");
    assert_eq!(stored.len(), common::messages(&s.embedded).len(), "messages lost");
    assert_same(&s.embedded, &pg.db, false);
}

/// Publishes the setup's stream; two workers on `cluster`, the assigner
/// killed with SIGKILL once a batch is committed, a third worker started;
/// then checks every message is stored once and the answers are the
/// embedded scan's.
fn assigner_killed_halfway(bin: &Path, s: &Setup, cluster: &Path) {
    let nats = start_nats(bin, s.dir.path());
    tw_ok(cluster, &["publish", "--nats", &nats.url, s.stream.to_str().unwrap()]);
    let logs: Vec<PathBuf> = (1..=3).map(|i| s.dir.path().join(format!("w{i}.log"))).collect();
    let alerts = s.dir.path().join("cluster-alerts.jsonl");
    let mut first = worker(cluster, &nats, &logs[0], &alerts);
    // The first worker takes the assigner's role before the second starts.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&logs[0]).unwrap_or_default().contains("assigner: starting") {
        assert!(Instant::now() < deadline, "the first worker never assigned");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut second = worker(cluster, &nats, &logs[1], &alerts);
    // Halfway: some batches committed, most of the stream still to go.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let st = status(cluster, &nats);
        if st["assigned_below_seq"].as_u64().unwrap_or(0) > 1 {
            break;
        }
        assert!(Instant::now() < deadline, "nothing assigned: {st}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGKILL: the assigner, with records held unacked and inputs in
    // flight. The second worker takes over; the first is restarted.
    first.kill().unwrap();
    first.wait().unwrap();
    let before = status(cluster, &nats);
    assert!(before["not_yet_assigned"].as_u64().unwrap() > 0, "killed too late: {before}");
    let mut third = worker(cluster, &nats, &logs[2], &alerts);
    let refs: Vec<&Path> = logs.iter().map(PathBuf::as_path).collect();
    wait_assigned(cluster, &nats, &refs);
    for w in [&mut second, &mut third] {
        stop(w);
    }
    // Every message exactly once, and the same campaigns.
    let stored = common::messages(cluster);
    let ids: BTreeSet<&str> = stored.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), stored.len(), "a message stored twice");
    assert_eq!(stored.len(), common::messages(&s.embedded).len(), "messages lost");
    assert_same(&s.embedded, cluster, false);
    let text = std::fs::read_to_string(&logs[1]).unwrap() + &std::fs::read_to_string(&logs[2]).unwrap();
    assert!(text.contains("holds the store's lock and assigns"), "nobody took over: {text}");
}

#[test]
fn an_assigner_with_no_worker_reads_the_input_itself() {
    // Every analyzing worker is gone: after a wait longer than a worker's
    // ack wait, the assigner reads the inputs from TEXTWATCH_IN and
    // analyzes them itself, and the answers do not change.
    let Some(bin) = nats_server() else { return };
    let s = setup(6_000, 5);
    let nats = start_nats(&bin, s.dir.path());
    tw_ok(&s.cluster, &["publish", "--nats", &nats.url, s.stream.to_str().unwrap()]);
    let log = s.dir.path().join("assigner.log");
    let alerts = s.dir.path().join("cluster-alerts.jsonl");
    let mut w = worker_with(&s.cluster, &nats, &log, &alerts, &["--assign-only"]);
    wait_assigned(&s.cluster, &nats, &[&log]);
    stop(&mut w);
    assert_same(&s.embedded, &s.cluster, true);
    assert!(std::fs::read_to_string(&log).unwrap().contains("reading late inputs from the input stream"));
}

#[test]
fn publish_names_the_broker_it_cannot_reach_and_reports_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let f = dir.path().join("m.jsonl");
    std::fs::write(&f, "{\"ts\":\"2020-11-04T12:00:00Z\",\"from\":\"+12155550100\",\"body\":\"hi\"}\n").unwrap();
    let out = tw(&db, &["publish", "--nats", &format!("nats://127.0.0.1:{port}"), f.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("connecting to nats://127.0.0.1:{port}")), "{err}");

    let Some(bin) = nats_server() else { return };
    let nats = start_nats(&bin, dir.path());
    std::fs::write(
        &f,
        "{\"ts\":\"2020-11-04T12:00:00Z\",\"from\":\"+12155550100\",\"body\":\"hi\"}\nnot json\n{\"from\":\"+1215\"}\n",
    )
    .unwrap();
    let out = tw(&db, &["publish", "--nats", &nats.url, f.to_str().unwrap()]);
    assert!(out.status.success());
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("published 1 of 3 records") && stdout.contains("2 rejected"), "{stdout}");
    assert!(stderr.contains("m.jsonl line 2") && stderr.contains("m.jsonl line 3"), "{stderr}");
    let st = status(&db, &nats);
    assert_eq!((st["in_last_seq"].as_u64(), st["not_yet_assigned"].as_u64()), (Some(1), Some(1)), "{st}");
}

#[test]
fn nats_killed_and_restarted_mid_stream_loses_nothing() {
    // The broker dies under the workers (SIGKILL) and comes back on the
    // same port and store: workers and the assigner reconnect on their
    // own, and every message is assigned once, with the embedded answers.
    let Some(bin) = nats_server() else { return };
    let s = setup(70_000, 31);
    let mut nats = start_nats(&bin, s.dir.path());
    let port: u16 = nats.url.rsplit(':').next().unwrap().parse().unwrap();
    tw_ok(&s.cluster, &["publish", "--nats", &nats.url, s.stream.to_str().unwrap()]);
    let logs: Vec<PathBuf> = (1..=2).map(|i| s.dir.path().join(format!("w{i}.log"))).collect();
    let alerts = s.dir.path().join("cluster-alerts.jsonl");
    let mut workers: Vec<Child> = logs.iter().map(|l| worker(&s.cluster, &nats, l, &alerts)).collect();
    let deadline = Instant::now() + Duration::from_secs(300);
    while status(&s.cluster, &nats)["assigned_below_seq"].as_u64().unwrap_or(0) <= 1 {
        assert!(Instant::now() < deadline, "nothing assigned");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = nats.child.kill();
    let _ = nats.child.wait();
    std::thread::sleep(Duration::from_secs(3));
    let nats = start_nats_on(&bin, s.dir.path(), port);
    let refs: Vec<&Path> = logs.iter().map(PathBuf::as_path).collect();
    wait_assigned(&s.cluster, &nats, &refs);
    for w in &mut workers {
        stop(w);
    }
    let text: String = logs.iter().map(|l| std::fs::read_to_string(l).unwrap()).collect();
    assert!(text.contains("NATS: disconnected"), "the outage was not seen: {text}");
    let stored = common::messages(&s.cluster);
    let ids: BTreeSet<&str> = stored.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), stored.len(), "a message stored twice");
    assert_same(&s.embedded, &s.cluster, false);
}

/// A POST with a token: status, body and the Retry-After header.
fn post(url: &str, tok: &str, body: &str) -> (u16, String, Option<String>) {
    let r = ureq::post(url)
        .set("Authorization", &format!("Bearer {tok}"))
        .set("Content-Type", "application/x-ndjson")
        .send_string(body);
    match r {
        Ok(r) => (r.status(), r.into_string().unwrap(), None),
        Err(ureq::Error::Status(c, r)) => {
            let retry = r.header("Retry-After").map(str::to_string);
            (c, r.into_string().unwrap_or_default(), retry)
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn serve_with_nats_queues_ingest_for_the_workers_and_says_503_when_nats_is_gone() {
    let Some(bin) = nats_server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    serve_with_nats(&bin, dir.path(), &db);
}

/// The same with the server and the workers on PostgreSQL, and what the
/// server reads there: campaigns through the API and the dashboard, an
/// appeal opened and decided.
#[test]
fn serve_and_workers_on_postgres_queue_ingest_and_answer_from_the_shared_store() {
    let Some(bin) = nats_server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let Some(pg) = common::postgres_db(dir.path(), "serve") else { return };
    serve_with_nats(&bin, dir.path(), &pg.db);
}

/// `serve --nats` with workers, on `db`: ingest and spam reports queued
/// and assigned by the workers, read back through the API; NATS killed
/// (503 with Retry-After, 7726 halves kept) and restarted.
fn serve_with_nats(bin: &Path, dir: &Path, db: &Path) {
    let mut nats = start_nats(bin, dir);
    let tok = common::token(db, "ingest,read");
    let server = common::start(db, &["--nats", &nats.url, "--reload-every", "1"]);
    // The live feed: what the workers form reaches it at the next reload.
    let (events_tx, events) = std::sync::mpsc::channel::<serde_json::Value>();
    let url = format!("{}/v1/events?access_token={tok}", server.base);
    std::thread::spawn(move || {
        use std::io::BufRead;
        let r = ureq::get(&url).call().unwrap();
        for line in std::io::BufReader::new(r.into_reader()).lines() {
            let Ok(line) = line else { break };
            if let Some(d) = line.strip_prefix("data:") {
                if events_tx.send(serde_json::from_str(d.trim()).unwrap()).is_err() {
                    break;
                }
            }
        }
    });
    let (log, alerts) = (dir.join("w.log"), dir.join("alerts.jsonl"));
    let mut w = worker(db, &nats, &log, &alerts);
    // The incident's text from five numbers, a minute apart.
    let body: String = (0..5)
        .map(|i| {
            serde_json::json!({
                "id": format!("m{i}"),
                "ts": format!("2020-11-04T15:0{i}:00Z"),
                "from": format!("+1215555010{i}"),
                "to": format!("+1267555000{i}"),
                "body": "Radical Liberals and Democrats are trying to STEAL this election! Show your support at 12th & Arch near the Convention Center at 3pm today.",
            })
            .to_string()
                + "\n"
        })
        .collect();
    let (c, b, _) = post(&format!("{}/v1/messages", server.base), &tok, &body);
    assert_eq!(c, 200, "{b}");
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!((v["queued"].as_u64(), v["accepted"].as_u64()), (Some(5), Some(0)), "{b}");
    assert!(v["results"].as_array().unwrap().iter().all(|r| r["status"] == "queued"), "{b}");
    wait_assigned(db, &nats, &[&log]);
    let groups = groups(db);
    assert_eq!(groups.len(), 1, "one campaign of the five: {groups:?}");
    assert_eq!(groups.iter().next().unwrap().len(), 5);
    let formed = common::campaigns_json(db)[0]["id"].clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match events.recv_timeout(Duration::from_millis(500)) {
            Ok(e) if e["type"] == "campaign-created" => {
                assert_eq!((&e["campaign"], &e["messages"]), (&formed, &serde_json::json!(5)), "{e}");
                break;
            }
            _ => assert!(Instant::now() < deadline, "no campaign-created event for the workers' campaign"),
        }
    }
    // Spam reports: an app's report, and a 7726 pair (the text, then the
    // number) paired in this server and queued for the workers.
    let text = "Radical Liberals and Democrats are trying to STEAL this election! Show your support at 12th & Arch near the Convention Center at 3pm today.";
    let reports = [
        serde_json::json!({"reporter": "+12675559001", "sender": "+12155550100", "text": text, "ts": "2020-11-04T15:10:00Z"}),
        serde_json::json!({"reporter": "+12675559002", "body": text, "ts": "2020-11-04T15:11:00Z"}),
        serde_json::json!({"reporter": "+12675559002", "body": "(215) 555-0101", "ts": "2020-11-04T15:12:00Z"}),
    ];
    let ndjson = |rs: &[serde_json::Value]| rs.iter().map(|r| r.to_string() + "\n").collect::<String>();
    let (c, b, _) = post(&format!("{}/v1/reports", server.base), &tok, &ndjson(&reports));
    assert_eq!(c, 200, "{b}");
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(
        (v["queued"].as_u64(), v["waiting"].as_u64(), v["unpaired"].as_u64()),
        (Some(2), Some(0), Some(0)),
        "{b}"
    );
    wait_assigned(db, &nats, &[&log]);
    let stored = common::messages(db);
    let campaign = stored[0]["campaign"].clone();
    let from_reports: Vec<_> = stored.iter().filter(|m| m["source"] == "report").collect();
    assert_eq!(from_reports.len(), 2, "{stored:?}");
    assert!(from_reports.iter().all(|m| m["campaign"] == campaign), "the reports join the campaign: {stored:?}");
    // What the server reads from the store the workers wrote: the
    // campaign (reported by two recipients), its page, an appeal.
    let get = |path: &str| -> serde_json::Value {
        let r = ureq::get(&format!("{}{path}", server.base)).set("Authorization", &format!("Bearer {tok}")).call();
        serde_json::from_str(&r.expect(path).into_string().unwrap()).unwrap()
    };
    let listed = get("/v1/campaigns");
    let c = &listed["items"][0];
    assert_eq!(c["id"], campaign, "{listed}");
    assert_eq!(c["messages"], 7, "{listed}");
    assert!(
        c["findings"].as_array().unwrap().iter().any(|f| f["rule"] == "reported-by-recipients"),
        "the reporters were stored with the batch: {c}"
    );
    let id = campaign.as_str().unwrap();
    assert_eq!(get(&format!("/v1/campaigns/{id}"))["id"], campaign);
    // The analyst's commands on the same store: the dossier and the block
    // list name the campaign's numbers.
    let dossier = tw_ok(db, &["report", id, "--format", "md"]);
    assert!(dossier.contains(id) && dossier.contains("+12155550100"), "{dossier}");
    assert!(tw_ok(db, &["blocklist", "--format", "csv"]).lines().count() > 1);
    let page = ureq::get(&format!("{}/dashboard", server.base)).call().unwrap().into_string().unwrap();
    assert!(page.contains("<html"), "the dashboard is served");
    let appeal = ureq::post(&format!("{}/v1/appeals", server.base))
        .set("Content-Type", "application/json")
        .send_string(&serde_json::json!({"campaign": id, "contact": "ops@example.org", "reason": "a test"}).to_string())
        .unwrap()
        .into_string()
        .unwrap();
    let appeal: serde_json::Value = serde_json::from_str(&appeal).unwrap();
    let appeal = appeal["id"].as_i64().unwrap_or_else(|| panic!("{appeal}"));
    let admin = common::token(db, "admin");
    let decided = ureq::post(&format!("{}/v1/appeals/{appeal}/decision", server.base))
        .set("Authorization", &format!("Bearer {admin}"))
        .set("Content-Type", "application/json")
        .send_string(r#"{"decision": "overturn", "reason": "a test"}"#);
    assert!(decided.is_ok(), "{decided:?}");
    let r = ureq::get(&format!("{}/v1/appeals", server.base)).set("Authorization", &format!("Bearer {admin}")).call();
    let appeals: serde_json::Value = serde_json::from_str(&r.unwrap().into_string().unwrap()).unwrap();
    assert_eq!(appeals["allows"].as_array().map(Vec::len), Some(1), "{appeals}");
    assert_eq!(appeals["audit"].as_array().map(Vec::len), Some(2), "opened and overturned: {appeals}");
    stop(&mut w);
    // NATS gone: nothing is taken, and the caller is told when to retry.
    let port: u16 = nats.url.rsplit(':').next().unwrap().parse().unwrap();
    let _ = nats.child.kill();
    let _ = nats.child.wait();
    let (c, b, retry) = post(&format!("{}/v1/messages", server.base), &tok, &body);
    assert_eq!(c, 503, "{b}");
    assert_eq!(retry.as_deref(), Some("5"));
    assert!(b.contains("not stored"), "{b}");
    // A 7726 first half waits (nothing to publish); its number finds no
    // broker, so the first half is put back to wait for the retry.
    let first = serde_json::json!({"reporter": "+12675559003", "body": text, "ts": "2020-11-04T15:20:00Z"});
    let number =
        serde_json::json!({"reporter": "+12675559003", "body": "(215) 555-0102", "ts": "2020-11-04T15:21:00Z"});
    let (c, b, _) = post(&format!("{}/v1/reports", server.base), &tok, &ndjson(&[first]));
    assert_eq!((c, serde_json::from_str::<serde_json::Value>(&b).unwrap()["waiting"].as_u64()), (200, Some(1)), "{b}");
    let (c, b, retry) = post(&format!("{}/v1/reports", server.base), &tok, &ndjson(std::slice::from_ref(&number)));
    assert_eq!((c, retry.as_deref()), (503, Some("5")), "{b}");
    let _nats = start_nats_on(bin, dir, port);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (c, b, _) = post(&format!("{}/v1/reports", server.base), &tok, &ndjson(std::slice::from_ref(&number)));
        if c == 200 {
            let v: serde_json::Value = serde_json::from_str(&b).unwrap();
            assert_eq!(
                (v["queued"].as_u64(), v["unpaired"].as_u64()),
                (Some(1), Some(0)),
                "the first half waited: {b}"
            );
            break;
        }
        assert_eq!(c, 503, "{b}");
        assert!(Instant::now() < deadline, "the server did not reconnect to NATS: {b}");
        std::thread::sleep(Duration::from_millis(500));
    }
    // The recipient key rotated. On PostgreSQL that is refused while this
    // server is connected. On the file (whose writer lock a server with
    // --nats does not hold) it goes through, and the server, which hashes
    // under the key it started with, stops by itself at its next reload
    // with an error, to be started again.
    let out = common::tw(db, &["keys", "rotate"]);
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    if db.extension() == Some("postgres".as_ref()) {
        assert_eq!(out.status.code(), Some(1), "{said}");
        assert!(said.contains("other textwatch connection"), "{said}");
    } else {
        assert!(out.status.success(), "{said}");
        let mut server = server;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                assert_eq!(status.code(), Some(1), "it says it stopped for an error");
                break;
            }
            assert!(Instant::now() < deadline, "the server went on after the key was rotated");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
