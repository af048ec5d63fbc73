//! `textwatch serve` end to end through real HTTP: auth and scopes, ingest
//! (answered after commit, idempotent), check, reads, events, limits, bad
//! input, a kill -9 in the middle of ingest; the official `twilio` Python
//! client against the Twilio-compatible endpoints; the dashboard in
//! headless Chromium driven over WebDriver.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn new_server(extra: &[&str]) -> (Server, String) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let admin = token(&db, "admin");
    let mut s = start(&db, extra);
    s._dir = Some(dir);
    (s, admin)
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).build()
}

/// (status, body) of a request, whatever the status.
fn call(req: ureq::Request, body: Option<(&str, &[u8])>) -> (u16, String, Option<String>) {
    let r = match body {
        Some((ct, b)) => req.set("Content-Type", ct).send_bytes(b),
        None => req.call(),
    };
    match r {
        Ok(r) => (r.status(), r.header("retry-after").map(str::to_string).unwrap_or_default(), None).also(r),
        Err(ureq::Error::Status(code, r)) => {
            let ra = r.header("retry-after").map(str::to_string);
            (code, r.into_string().unwrap_or_default(), ra)
        }
        Err(e) => panic!("transport error: {e}"),
    }
}

trait Also {
    fn also(self, r: ureq::Response) -> (u16, String, Option<String>);
}
impl Also for (u16, String, Option<String>) {
    fn also(self, r: ureq::Response) -> (u16, String, Option<String>) {
        let ra = r.header("retry-after").map(str::to_string);
        (self.0, r.into_string().unwrap_or_default(), ra)
    }
}

fn get(s: &Server, tok: &str, path: &str) -> (u16, String) {
    let (c, b, _) =
        call(agent().get(&format!("{}{path}", s.base)).set("Authorization", &format!("Bearer {tok}")), None);
    (c, b)
}

fn post(s: &Server, tok: &str, path: &str, ct: &str, body: &[u8]) -> (u16, String) {
    let (c, b, _) = call(
        agent().post(&format!("{}{path}", s.base)).set("Authorization", &format!("Bearer {tok}")),
        Some((ct, body)),
    );
    (c, b)
}

const INCIDENT: &str = "Radical Liberals and Democrats are trying to STEAL this election! We need all hands on deck. Show your support at 12th & Arch near the Convention Center at 3pm today.";

fn example_lines() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/messages.jsonl")).unwrap()
}

#[test]
fn tokens_and_scopes() {
    let (s, admin) = new_server(&[]);
    let reader = token(&s.db, "read");
    let (c, b) = get(&s, "", "/v1/campaigns");
    assert_eq!(c, 401, "{b}");
    let (c, _, _) = call(agent().get(&format!("{}/v1/campaigns", s.base)), None);
    assert_eq!(c, 401);
    assert_eq!(get(&s, "tw_nonsense", "/v1/campaigns").0, 401);
    assert_eq!(get(&s, &reader, "/v1/campaigns").0, 200);
    let (c, b) = post(&s, &reader, "/v1/messages", "application/json", b"[]");
    assert_eq!(c, 403, "{b}");
    assert!(b.contains("ingest"));
    assert_eq!(post(&s, &admin, "/v1/messages", "application/json", b"[]").0, 200);
    for open in ["/healthz", "/readyz", "/openapi.json", "/dashboard"] {
        let (c, _, _) = call(agent().get(&format!("{}{open}", s.base)), None);
        assert_eq!(c, 200, "{open} is open");
    }
    // The list never shows tokens; a revoked token is refused (the server
    // re-reads a token it knows after 10 s; this one it has not seen).
    let out = tw_ok(&s.db, &["token", "list"]);
    assert!(out.contains("read") && !out.contains("tw_"), "the list never shows tokens");
    let doomed = token(&s.db, "read");
    let id = tw_ok(&s.db, &["token", "list"]).lines().last().unwrap().split_whitespace().next().unwrap().to_string();
    tw_ok(&s.db, &["token", "revoke", &id]);
    assert_eq!(get(&s, &doomed, "/v1/campaigns").0, 401, "revoked");
    let bad = tw(&s.db, &["token", "create", "--scope", "superuser"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("unknown scope"));
}

#[test]
fn ingest_check_and_read_back() {
    let (s, admin) = new_server(&[]);
    let (c, b) = post(&s, &admin, "/v1/messages", "application/x-ndjson", example_lines().as_bytes());
    assert_eq!(c, 200, "{b}");
    let r: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(r["accepted"], 30);
    // Committed before the answer: another connection sees them now.
    let n = tw_ok(&s.db, &["messages", "--format", "jsonl"]).lines().count();
    assert_eq!(n, 30);
    // Idempotent.
    let (_, b) = post(&s, &admin, "/v1/messages", "application/x-ndjson", example_lines().as_bytes());
    let r: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!((r["accepted"].as_u64(), r["duplicates"].as_u64()), (Some(0), Some(30)));
    // A JSON array with one bad record: the rest is stored, the bad one named.
    let arr = serde_json::json!([
        {"id": "a1", "ts": "2020-11-04T16:00:00Z", "from": "+12155550100", "body": "hello there, see you at the game tonight"},
        {"id": "a2", "ts": "yesterday", "from": "+12155550100", "body": "x"}
    ]);
    let (c, b) = post(&s, &admin, "/v1/messages", "application/json", arr.to_string().as_bytes());
    assert_eq!(c, 200);
    let r: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!((r["accepted"].as_u64(), r["rejected"].as_u64()), (Some(1), Some(1)));
    assert_eq!(r["errors"][0]["record"], 2);
    assert!(r["errors"][0]["error"].as_str().unwrap().contains("ts"));

    let checker = token(&s.db, "check");
    let m = serde_json::json!({"ts": "2020-11-04T15:20:00Z", "from": "+12155551188", "to": "+12675550000", "body": INCIDENT});
    let (c, b) = post(&s, &checker, "/v1/check", "application/json", m.to_string().as_bytes());
    assert_eq!(c, 200, "{b}");
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["action"], "block");
    assert_eq!(v["rule"], "incitement-or-election-lies");
    assert!(v["campaign"].is_string());
    assert!(v["findings"].as_array().unwrap().iter().any(|f| f["rule"] == "election-misinfo"));

    let (c, b) = get(&s, &admin, "/v1/campaigns?finding=election-misinfo&limit=5");
    assert_eq!(c, 200);
    let page: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(page["total"], 1);
    let id = page["items"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(page["items"][0]["decision"]["action"], "block");
    assert_eq!(page["items"][0]["trend"].as_array().unwrap().len(), 24);
    let (_, b) = get(&s, &admin, "/v1/campaigns?category=commercial&min_risk=90");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&b).unwrap()["total"], 0);
    let (_, b) = get(&s, &admin, "/v1/campaigns?limit=1&offset=1");
    let p: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!((p["items"].as_array().unwrap().len(), p["total"].as_u64()), (1, Some(4)));
    // Pages from the database are the same slices of the same order as the
    // whole list, and filters in SQL agree with the campaigns' own fields.
    let (_, b) = get(&s, &admin, "/v1/campaigns");
    let all: serde_json::Value = serde_json::from_str(&b).unwrap();
    let all = all["items"].as_array().unwrap().clone();
    assert_eq!(p["items"][0]["id"], all[1]["id"]);
    let (_, b) = get(&s, &admin, "/v1/campaigns?category=political");
    let political: serde_json::Value = serde_json::from_str(&b).unwrap();
    let want: Vec<&serde_json::Value> = all.iter().filter(|c| c["category"] == "political").map(|c| &c["id"]).collect();
    let got: Vec<&serde_json::Value> = political["items"].as_array().unwrap().iter().map(|c| &c["id"]).collect();
    assert_eq!((got.len() as u64, political["total"].as_u64()), (want.len() as u64, Some(want.len() as u64)));
    assert_eq!(got, want);
    assert!(!want.is_empty());
    let last = all.iter().filter_map(|c| c["last_seen"].as_str()).max().unwrap().to_string();
    let (_, b) = get(&s, &admin, &format!("/v1/campaigns?since={last}"));
    let recent: serde_json::Value = serde_json::from_str(&b).unwrap();
    let n = all.iter().filter(|c| c["last_seen"].as_str() == Some(last.as_str())).count();
    assert_eq!(recent["total"].as_u64(), Some(n as u64), "since is inclusive");
    assert_eq!(get(&s, &admin, "/v1/campaigns?since=not-a-time").0, 400);

    let (c, b) = get(&s, &admin, &format!("/v1/campaigns/{}", &id[..8]));
    assert_eq!(c, 200);
    let d: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert!(d["samples"].as_array().unwrap().len() >= 2);
    assert!(d["chart"]["series"].is_array());
    assert_eq!(get(&s, &admin, "/v1/campaigns/ffffffffffffffff").0, 404);
    let (c, html) = get(&s, &admin, &format!("/v1/campaigns/{id}/report?format=html"));
    assert_eq!(c, 200);
    assert!(html.contains("campaign-id"));
    let (c, _) = get(&s, &admin, &format!("/v1/campaigns/{id}/report?format=stix"));
    assert_eq!(c, 200);
    let (c, b) = get(&s, &admin, &format!("/v1/campaigns/{id}/report?format=xarf"));
    assert_eq!(c, 409, "XARF needs a reporter: {b}");
    assert_eq!(get(&s, &admin, &format!("/v1/campaigns/{id}/report?format=pdf")).0, 400);
    let (c, b) = get(&s, &admin, "/v1/numbers/+12155551102");
    assert_eq!(c, 200);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&b).unwrap()["class"], "long-code");
    let (c, b) = get(&s, &admin, "/v1/blocklist?format=csv");
    assert_eq!(c, 200);
    assert!(b.starts_with("type,value,campaign,reason") && b.contains(&id));
    let (c, b) = get(&s, &admin, "/metrics");
    assert_eq!(c, 200);
    assert!(b.contains("textwatch_messages_in_total 31"), "{b}");
    assert!(b.contains("textwatch_verdicts_total{action=\"block\"} 1"));
    assert!(b.contains("textwatch_request_seconds_bucket{route=\"/v1/check\""));
    let (_, spec) = get(&s, &admin, "/openapi.json");
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    assert!(spec["paths"]["/v1/messages"]["post"].is_object());
}

#[test]
fn bad_requests_get_clear_4xx_and_the_server_stays_up() {
    let (s, admin) = new_server(&["--max-body", "100000"]);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("application/json", b"{not json".to_vec(), 400),
        ("application/json", b"[1, 2".to_vec(), 400),
        ("text/plain", b"hello".to_vec(), 415),
        ("application/json", vec![b'[', 0xff, 0xfe, b']'], 400),
        ("application/json", b"42".to_vec(), 400),
        ("application/json", format!("[{}]", "\"x\",".repeat(60_000)).into_bytes(), 413),
    ];
    for (ct, body, want) in cases {
        let (c, b) = post(&s, &admin, "/v1/messages", ct, &body);
        assert_eq!(c, want, "{ct} {:?}: {b}", String::from_utf8_lossy(&body[..body.len().min(20)]));
        if c != 413 {
            let v: serde_json::Value = serde_json::from_str(&b).unwrap_or_else(|_| panic!("JSON error body: {b}"));
            assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()));
        }
    }
    // Invalid UTF-8 inside NDJSON: that record is rejected, the rest stored.
    let mut nd = b"{\"id\":\"u1\",\"ts\":1604502000,\"from\":\"+12155550100\",\"body\":\"fine\"}\n".to_vec();
    nd.extend_from_slice(b"{\"id\":\"u2\",\"ts\":1604502000,\"from\":\"+12155550100\",\"body\":\"bad \xff\"}\n");
    let (c, b) = post(&s, &admin, "/v1/messages", "application/x-ndjson", &nd);
    assert_eq!(c, 200, "{b}");
    assert!(b.contains("UTF-8"));
    assert_eq!(post(&s, &admin, "/v1/check", "application/json", b"[]").0, 400);
    assert_eq!(get(&s, &admin, "/v1/nothing-here").0, 404);
    let (c, _, _) = call(agent().get(&format!("{}/healthz", s.base)), None);
    assert_eq!(c, 200, "still up");
}

#[test]
fn per_token_rate_limit_answers_429_with_retry_after() {
    let (s, admin) = new_server(&["--rate-limit", "3"]);
    let mut limited = None;
    for _ in 0..20 {
        let (c, _, ra) = call(
            agent().get(&format!("{}/v1/blocklist", s.base)).set("Authorization", &format!("Bearer {admin}")),
            None,
        );
        if c == 429 {
            limited = ra;
            break;
        }
    }
    assert_eq!(limited.as_deref(), Some("1"), "a burst over twice the rate meets 429 with Retry-After");
    // Another token has its own budget.
    let other = token(&s.db, "read");
    assert_eq!(get(&s, &other, "/v1/blocklist").0, 200);
}

#[test]
fn events_stream_campaigns_as_they_form_and_admins_can_block() {
    let (s, admin) = new_server(&[]);
    let url = format!("{}/v1/events?access_token={admin}", s.base);
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let r = ureq::get(&url).call().unwrap();
        for line in BufReader::new(r.into_reader()).lines() {
            let Ok(line) = line else { break };
            if let Some(d) = line.strip_prefix("data:") {
                if tx.send(d.trim().to_string()).is_err() {
                    break;
                }
            }
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    post(&s, &admin, "/v1/messages", "application/x-ndjson", example_lines().as_bytes());
    let mut created = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while created.len() < 4 && Instant::now() < deadline {
        if let Ok(d) = rx.recv_timeout(Duration::from_millis(500)) {
            let v: serde_json::Value = serde_json::from_str(&d).unwrap();
            if v["type"] == "campaign-created" {
                created.push(v["campaign"].as_str().unwrap().to_string());
            }
        }
    }
    assert_eq!(created.len(), 4, "one event per campaign formed");
    // Block the pharmacy campaign by hand: read tokens may not, admins may.
    let (_, b) = get(&s, &admin, "/v1/campaigns?category=commercial");
    let id = serde_json::from_str::<serde_json::Value>(&b).unwrap()["items"][0]["id"].as_str().unwrap().to_string();
    let reader = token(&s.db, "read");
    assert_eq!(post(&s, &reader, &format!("/v1/campaigns/{id}/block"), "application/json", b"{}").0, 403);
    let (c, b) = post(&s, &admin, &format!("/v1/campaigns/{id}/block"), "application/json", br#"{"reason":"test"}"#);
    assert_eq!(c, 200, "{b}");
    let (_, b) = get(&s, &admin, &format!("/v1/campaigns/{id}"));
    let d: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(
        (d["decision"]["action"].as_str(), d["decision"]["rule"].as_str()),
        (Some("block"), Some("manual-block"))
    );
    let mut blocked = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !blocked && Instant::now() < deadline {
        if let Ok(d) = rx.recv_timeout(Duration::from_millis(500)) {
            blocked = d.contains("campaign-blocked");
        }
    }
    assert!(blocked, "campaign-blocked event");
    // The block list now holds it, and the CLI sees the block too.
    assert!(get(&s, &admin, "/v1/blocklist?format=csv").1.contains(&id));
    assert!(tw_ok(&s.db, &["blocklist"]).contains(&id));
}

#[test]
fn acknowledged_messages_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let admin = token(&db, "admin");
    let (stream, _) = simulate(dir.path(), "election-2020", 20000, 3, None);
    let lines: Vec<String> = std::fs::read_to_string(&stream).unwrap().lines().map(str::to_string).collect();
    let mut s = start(&db, &[]);
    let base = s.base.clone();
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let a2 = acked.clone();
    let feeder = std::thread::spawn(move || {
        for chunk in lines.chunks(500) {
            let body = chunk.join("\n");
            let r = agent()
                .post(&format!("{base}/v1/messages"))
                .set("Authorization", &format!("Bearer {admin}"))
                .set("Content-Type", "application/x-ndjson")
                .send_string(&body);
            match r {
                Ok(r) => {
                    let v: serde_json::Value = serde_json::from_str(&r.into_string().unwrap()).unwrap();
                    let mut a = a2.lock().unwrap();
                    for x in v["results"].as_array().unwrap() {
                        a.push(x["id"].as_str().unwrap().to_string());
                    }
                }
                Err(_) => break,
            }
        }
    });
    std::thread::sleep(Duration::from_millis(1500));
    s.child.kill().unwrap(); // SIGKILL
    let _ = s.child.wait();
    let _ = feeder.join();
    let acked = acked.lock().unwrap().clone();
    assert!(!acked.is_empty(), "some batches were acknowledged before the kill");
    let stored_list: Vec<String> = tw_ok(&db, &["messages", "--format", "jsonl"])
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_str().unwrap().to_string())
        .collect();
    let stored: std::collections::HashSet<String> = stored_list.iter().cloned().collect();
    assert_eq!(stored.len(), stored_list.len(), "no message stored twice");
    let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(lost.is_empty(), "{} acknowledged messages lost, e.g. {:?}", lost.len(), lost.first());
    // And the server starts again on the same database.
    let s2 = start(&db, &[]);
    let (c, _, _) = call(agent().get(&format!("{}/readyz", s2.base)), None);
    assert_eq!(c, 200);
}

#[test]
fn the_official_twilio_client_talks_to_textwatch() {
    let Some(python) = python_with("twilio") else {
        return skip("Twilio client test: the project's .venv has no `twilio` (run .ci/run)");
    };
    let auth_token = "test-auth-token-0123456789";
    let (s, admin) = new_server(&["--twilio-auth-token", auth_token]);
    let gateway = token(&s.db, "check,ingest");
    // Seed the incident campaign so the gateway knows it.
    post(&s, &admin, "/v1/messages", "application/x-ndjson", example_lines().as_bytes());
    let script = r#"
import json, sys, urllib.request, urllib.parse
from twilio.rest import Client
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

base, gateway, auth_token, incident = sys.argv[1:5]
out = {}

# 1. The send endpoint as a filtering gateway, through the official client.
client = Client("AC" + "0" * 32, gateway)
client.api.base_url = base
ok = client.messages.create(to="+12675550142", from_="+12152340188",
                            body="Hi Dana, this is Kim with Philly Votes Together. Polls are open until 8pm today. Reply STOP to opt out")
out["allowed"] = {"sid": ok.sid, "status": ok.status}
try:
    client.messages.create(to="+12675550143", from_="+12155551102", body=incident)
    out["blocked"] = None
except TwilioRestException as e:
    out["blocked"] = {"code": e.code, "status": e.status, "msg": e.msg}
try:
    c2 = Client("AC" + "0" * 32, "tw_wrong")
    c2.api.base_url = base
    c2.messages.create(to="+12675550144", from_="+12152340188", body="hello")
    out["bad_token"] = None
except TwilioRestException as e:
    out["bad_token"] = e.status

# 2. The inbound webhook, signed as Twilio signs it.
url = base + "/v1/twilio/inbound"
params = {"MessageSid": "SMtrap0001", "SmsSid": "SMtrap0001", "AccountSid": "AC" + "0" * 32,
          "From": "+12155551105", "To": "+12675550001", "Body": incident, "NumMedia": "0"}
sig = RequestValidator(auth_token).compute_signature(url, params)
def post(p, signature):
    req = urllib.request.Request(url, data=urllib.parse.urlencode(p).encode(), method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
out["inbound"] = post(params, sig)
tampered = dict(params, Body="something else")
out["tampered"] = post(tampered, sig)[0]
print(json.dumps(out))
"#;
    let o = Command::new(&python).args(["-c", script, &s.base, &gateway, auth_token, INCIDENT]).output().unwrap();
    assert!(o.status.success(), "{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["allowed"]["status"], "sent", "{v}");
    assert!(v["allowed"]["sid"].as_str().unwrap().starts_with("SM"));
    assert_eq!(v["blocked"]["code"], 30007, "{v}");
    assert_eq!(v["blocked"]["status"], 400);
    assert!(v["blocked"]["msg"].as_str().unwrap().contains("incitement-or-election-lies"));
    assert_eq!(v["bad_token"], 401);
    assert_eq!(v["inbound"][0], 200, "{v}");
    assert!(v["inbound"][1].as_str().unwrap().contains("<Response></Response>"));
    assert_eq!(v["tampered"], 403);
    // Both the sent message and the trapped one are stored.
    let ids: Vec<String> = tw_ok(&s.db, &["messages", "--format", "jsonl"])
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.contains(&"SMtrap0001".to_string()));
    assert!(ids.contains(&v["allowed"]["sid"].as_str().unwrap().to_string()));
}

/// A minimal WebDriver client over chromedriver's HTTP API.
struct Driver {
    base: String,
    session: String,
    child: Child,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = ureq::delete(&format!("{}/session/{}", self.base, self.session)).call();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start() -> Option<Driver> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while ureq::get(&format!("{base}/status")).call().is_err() {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let args: Vec<&str> = CHROMIUM_FLAGS.iter().copied().chain(["--window-size=1280,1600"]).collect();
        let caps = serde_json::json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {"args": args}}}});
        let r: serde_json::Value = serde_json::from_str(
            &ureq::post(&format!("{base}/session"))
                .set("Content-Type", "application/json")
                .send_string(&caps.to_string())
                .ok()?
                .into_string()
                .ok()?,
        )
        .ok()?;
        let session = r["value"]["sessionId"].as_str()?.to_string();
        Some(Driver { base, session, child })
    }

    fn cmd(&self, method: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let r = match method {
            "GET" => ureq::get(&url).call(),
            _ => ureq::post(&url).set("Content-Type", "application/json").send_string(&body.to_string()),
        };
        let text = match r {
            Ok(r) => r.into_string().unwrap_or_default(),
            Err(ureq::Error::Status(_, r)) => r.into_string().unwrap_or_default(),
            Err(e) => panic!("webdriver: {e}"),
        };
        serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default()["value"].clone()
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", serde_json::json!({"url": url}));
    }

    fn js(&self, script: &str) -> serde_json::Value {
        self.cmd("POST", "/execute/sync", serde_json::json!({"script": script, "args": []}))
    }

    /// Waits until `script` returns something truthy; returns it.
    fn wait(&self, script: &str, what: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.js(script);
            if !(v.is_null() || v == false || v == 0 || v == "") {
                return v;
            }
            if Instant::now() > deadline {
                let body = self.js("return document.body.innerText");
                panic!("timed out waiting for {what}; page:\n{body}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn dashboard_shows_the_incident_live_in_chromium() {
    if chromium().is_none() || Command::new("chromedriver").arg("--version").output().is_err() {
        return skip("dashboard test: no chromium / chromedriver (apt-get install chromium chromium-driver)");
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let nums = dir.path().join("nums");
    let (stream, _) = simulate(dir.path(), "election-2020", 20000, 7, Some(&nums));
    tw_ok(
        &db,
        &[
            "numbers",
            "import",
            "--inventory",
            nums.join("inventory.csv").to_str().unwrap(),
            "--nanpa-blocks",
            nums.join("nanpa-blocks.csv").to_str().unwrap(),
        ],
    );
    let admin = token(&db, "admin");
    let s = start(&db, &[]);
    let Some(d) = Driver::start() else {
        return skip("dashboard test: chromedriver did not start a session");
    };
    d.goto(&format!("{}/dashboard#token={admin}", s.base));
    d.wait("return document.getElementById('status').textContent.startsWith('live')", "the event stream");
    // Feed the stream through the API while the page watches.
    let lines: Vec<String> = std::fs::read_to_string(&stream).unwrap().lines().map(str::to_string).collect();
    for chunk in lines.chunks(2000) {
        let (c, b) = post(&s, &admin, "/v1/messages", "application/x-ndjson", chunk.join("\n").as_bytes());
        assert_eq!(c, 200, "{b}");
    }
    let id = d.wait(
        "const r=[...document.querySelectorAll('tr.campaign')].find(r=>r.textContent.includes('steal this election')); return r ? r.dataset.id : null",
        "the incident campaign on the live list",
    );
    let id = id.as_str().unwrap().to_string();
    let row = d.js(&format!("return document.querySelector('tr.campaign[data-id=\"{id}\"]').textContent"));
    assert!(row.as_str().unwrap().contains("Textsmart Leasing"), "providers on the list: {row}");
    assert!(row.as_str().unwrap().contains("block"));
    // Open it.
    d.js(&format!("document.querySelector('tr.campaign[data-id=\"{id}\"]').click()"));
    d.wait(&format!("return document.getElementById('campaign-id') && document.getElementById('campaign-id').textContent === '{id}'"), "the campaign page");
    let senders = d.wait("return document.querySelectorAll('#providers .sender-row').length", "senders");
    assert_eq!(senders, 13, "the incident's 13 senders");
    let provider = d.js("return document.querySelector('#providers h3.provider').dataset.provider");
    assert_eq!(provider, "Textsmart Leasing");
    let rules = d.js("return [...document.querySelectorAll('#findings tr.finding')].map(r=>r.dataset.rule)");
    for r in ["election-misinfo", "call-to-assemble", "optout-missing", "sender-id-missing"] {
        assert!(rules.as_array().unwrap().iter().any(|x| x == r), "finding {r} shown: {rules}");
    }
    assert!(d.js("return document.querySelectorAll('#findings mark').length").as_u64().unwrap() >= 1);
    let bars = d.js("return document.querySelectorAll('#chart rect').length");
    assert!(bars.as_u64().unwrap() > 5, "timeline chart drawn: {bars}");
    assert!(d.js("return document.getElementById('decision').textContent").as_str().unwrap().starts_with("block"));
    let xarf = d.js("return document.getElementById('dl-xarf').getAttribute('href')");
    assert!(xarf.as_str().unwrap().contains("format=xarf"));
    // This server has no reporter identity: the page says so, and how to
    // give one, instead of downloading an error.
    d.js("document.getElementById('dl-xarf').click()");
    let msg = d.wait(
        "const t = document.getElementById('message').textContent; return t.includes('not available') ? t : null",
        "the page to say why there is no XARF report",
    );
    let msg = msg.as_str().unwrap();
    assert!(msg.starts_with("XARF report not available: a XARF report names who files it"), "{msg}");
    assert!(msg.contains("[reporter] in textwatch.toml"), "{msg}");
    // A link can carry a campaign and a token together; the token leaves
    // the address once stored.
    d.js("localStorage.clear(); return null");
    d.goto(&format!("{}/dashboard#/c/{}?token={admin}", s.base, &id[..8]));
    d.wait(
        &format!("return document.getElementById('campaign-id') && document.getElementById('campaign-id').textContent === '{id}'"),
        "the campaign page from a link with a token",
    );
    assert_eq!(d.js("return location.hash"), format!("#/c/{}", &id[..8]));
    assert_eq!(d.js("return localStorage.getItem('textwatch-token')"), admin.as_str());
    // The HTML report link works with the token in the query.
    let href = d.js("return document.getElementById('dl-html').href").as_str().unwrap().to_string();
    let (c, _, _) = call(agent().get(&href), None);
    assert_eq!(c, 200);
}

#[test]
fn openapi_document_is_valid_openapi_3_1() {
    let Some(python) = python_with("openapi_spec_validator") else {
        return skip("OpenAPI validation: the project's .venv has no `openapi-spec-validator` (run .ci/run)");
    };
    let (s, _) = new_server(&[]);
    let (c, spec, _) = call(agent().get(&format!("{}/openapi.json", s.base)), None);
    assert_eq!(c, 200);
    let f = s.db.parent().unwrap().join("openapi.json");
    std::fs::write(&f, &spec).unwrap();
    let o = Command::new(&python)
        .args([
            "-c",
            "import json,sys\nfrom openapi_spec_validator import validate\nvalidate(json.load(open(sys.argv[1])))",
            f.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Every route the server answers is in the document.
    let v: serde_json::Value = serde_json::from_str(&spec).unwrap();
    for p in [
        "/v1/messages",
        "/v1/check",
        "/v1/campaigns",
        "/v1/campaigns/{id}",
        "/v1/campaigns/{id}/report",
        "/v1/campaigns/{id}/block",
        "/v1/numbers/{e164}",
        "/v1/blocklist",
        "/v1/events",
        "/v1/twilio/inbound",
        "/2010-04-01/Accounts/{AccountSid}/Messages.json",
        "/metrics",
        "/healthz",
        "/readyz",
    ] {
        assert!(v["paths"][p].is_object(), "{p} documented");
    }
}

#[test]
fn passed_sends_are_forwarded_to_the_upstream() {
    // A stand-in for api.twilio.com that records what it is sent.
    let (upstream, rx) = stand_in(|_| ("201 Created", r#"{"sid":"SMupstream","status":"queued"}"#.to_string()));
    let (s, _) = new_server(&["--upstream", &upstream]);
    let gateway = token(&s.db, "check,ingest");
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("ACtest:{gateway}"));
    let (c, b, _) = call(
        agent()
            .post(&format!("{}/2010-04-01/Accounts/ACtest/Messages.json", s.base))
            .set("Authorization", &format!("Basic {basic}")),
        Some((
            "application/x-www-form-urlencoded",
            b"To=%2B12675550142&From=%2B12152340188&Body=Your+table+for+4+is+ready.+Reply+STOP+to+opt+out",
        )),
    );
    assert_eq!(c, 201, "{b}");
    assert!(b.contains("SMupstream"), "the upstream's answer is passed back: {b}");
    let Received { request_line: line, authorization: auth, body, .. } =
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(line.starts_with("POST /2010-04-01/Accounts/ACtest/Messages.json"), "{line}");
    assert_eq!(auth, format!("Basic {basic}"));
    assert!(body.contains("Body=Your+table"));
    // Missing fields get Twilio's own error codes.
    let (c, b, _) = call(
        agent()
            .post(&format!("{}/2010-04-01/Accounts/ACtest/Messages.json", s.base))
            .set("Authorization", &format!("Basic {basic}")),
        Some(("application/x-www-form-urlencoded", b"From=%2B12152340188&Body=hi")),
    );
    assert_eq!(c, 400);
    assert!(b.contains("21604"), "{b}");
}

#[test]
fn a_full_ingest_queue_answers_429_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let admin = token(&db, "ingest");
    let (stream, _) = simulate(dir.path(), "smishing", 64000, 9, None);
    let lines: Vec<String> = std::fs::read_to_string(&stream).unwrap().lines().map(str::to_string).collect();
    let s = start(&db, &["--queue", "1"]);
    let handles: Vec<_> = lines
        .chunks(8000)
        .map(|c| {
            let (base, tok, body) = (s.base.clone(), admin.clone(), c.join("\n"));
            std::thread::spawn(move || {
                call(
                    agent().post(&format!("{base}/v1/messages")).set("Authorization", &format!("Bearer {tok}")),
                    Some(("application/x-ndjson", body.as_bytes())),
                )
            })
        })
        .collect();
    let results: Vec<(u16, String, Option<String>)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let refused: Vec<&(u16, String, Option<String>)> = results.iter().filter(|r| r.0 == 429).collect();
    assert!(!refused.is_empty(), "eight big batches against a queue of one: some are refused");
    assert!(refused.iter().all(|r| r.2.as_deref() == Some("1")), "with Retry-After");
    assert!(results.iter().all(|r| r.0 == 200 || r.0 == 429), "{:?}", results.iter().map(|r| r.0).collect::<Vec<_>>());
    let accepted: u64 = results
        .iter()
        .filter(|r| r.0 == 200)
        .map(|r| serde_json::from_str::<serde_json::Value>(&r.1).unwrap()["accepted"].as_u64().unwrap())
        .sum();
    let stored = tw_ok(&db, &["messages", "--format", "jsonl"]).lines().count() as u64;
    assert_eq!(stored, accepted, "what was acknowledged is stored, nothing more");
}

/// Splits JSONL lines into chunks of about `n`, cutting only where the
/// timestamp changes (a batch never splits equal times, as in `scan`).
fn chunks_at_time_changes(lines: &[&str], n: usize) -> Vec<String> {
    let ts = |l: &str| serde_json::from_str::<serde_json::Value>(l).unwrap()["ts"].to_string();
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut count = 0;
    for (i, l) in lines.iter().enumerate() {
        if count >= n && ts(l) != ts(lines[i - 1]) {
            out.push(std::mem::take(&mut cur));
            count = 0;
        }
        cur.push_str(l);
        cur.push('\n');
        count += 1;
    }
    out.push(cur);
    out
}

/// Campaigns that joined rewordings, shared numbers and merges are the same
/// whether the stream is scanned at once, in two scans, or posted to the
/// server in batches.
#[test]
fn scan_incremental_scans_and_the_server_give_the_same_campaigns() {
    let dir = tempfile::tempdir().unwrap();
    let (stream, truth) = (dir.path().join("s.jsonl"), dir.path().join("t.jsonl"));
    tw_ok(
        &dir.path().join("unused.db"),
        &[
            "simulate",
            "--scenario",
            "rewordings",
            "--paraphrase",
            "--messages",
            "6000",
            "--seed",
            "41",
            "--out",
            stream.to_str().unwrap(),
            "--truth",
            truth.to_str().unwrap(),
            "-q",
        ],
    );
    let text = std::fs::read_to_string(&stream).unwrap();
    let lines: Vec<&str> = text.lines().collect();

    let whole = dir.path().join("whole.db");
    tw_ok(&whole, &["scan", "-q", stream.to_str().unwrap()]);
    let found = groups(&whole);
    assert!(
        campaigns_json(&whole).iter().any(|c| c["template"].as_str().unwrap_or("").contains("steal")),
        "the misinformation wave is a campaign"
    );

    let halves = chunks_at_time_changes(&lines, lines.len() / 2);
    let two = dir.path().join("two.db");
    for (i, h) in halves.iter().enumerate() {
        let p = dir.path().join(format!("half{i}.jsonl"));
        std::fs::write(&p, h).unwrap();
        tw_ok(&two, &["scan", "-q", p.to_str().unwrap()]);
    }
    assert_eq!(groups(&two), found, "two scans of the halves");

    let served = dir.path().join("served.db");
    let tok = token(&served, "ingest,read");
    let s = start(&served, &[]);
    for chunk in chunks_at_time_changes(&lines, 1000) {
        let (code, body) = post(&s, &tok, "/v1/messages", "application/x-ndjson", chunk.as_bytes());
        assert_eq!(code, 200, "{body}");
    }
    drop(s);
    assert_eq!(groups(&served), found, "the server, fed in batches");
}

/// Spammers write the bodies and choose the sender names: markup in them is
/// shown as text on the dashboard and in the HTML dossier, never run.
#[test]
fn hostile_messages_stay_text_in_the_dashboard_and_the_dossier() {
    if chromium().is_none() || Command::new("chromedriver").arg("--version").output().is_err() {
        return skip("hostile content test: no chromium / chromedriver (apt-get install chromium chromium-driver)");
    }
    let (s, admin) = new_server(&[]);
    let body = "USPS: package held <img src=x onerror=\"window.__pwned='img'\"> pay at https://usps-fee.top/p \
                <script>window.__pwned='script'</script> \"><svg onload=\"window.__pwned='svg'\"> \
                <a href=\"javascript:window.__pwned='link'\">verify</a> \u{202e}gnp.exe";
    let mut lines = Vec::new();
    for (i, from) in ["+12155550170", "+12155550171", "<b onmouseover=alert(1)>ACME</b>"].into_iter().enumerate() {
        lines.push(
            serde_json::json!({
                "id": format!("x{i}"),
                "ts": 1604502000 + i * 60,
                "from": from,
                "to": format!("+126755502{i:02}"),
                "body": body,
            })
            .to_string(),
        );
    }
    // Past the documented limit: refused with a reason, not stored.
    lines.push(
        serde_json::json!({"id": "big", "ts": 1604502300, "from": "+12155550172", "body": "a".repeat(100 * 1024)})
            .to_string(),
    );
    let (c, b) = post(&s, &admin, "/v1/messages", "application/x-ndjson", lines.join("\n").as_bytes());
    assert_eq!(c, 200, "{b}");
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["accepted"], 3, "{b}");
    assert_eq!(v["rejected"], 1, "{b}");
    assert!(v["errors"][0]["error"].as_str().unwrap().contains("16384"), "the limit is named: {b}");

    let Some(d) = Driver::start() else {
        return skip("hostile content test: chromedriver did not start a session");
    };
    d.goto(&format!("{}/dashboard#token={admin}", s.base));
    let id = d.wait(
        "const r=[...document.querySelectorAll('tr.campaign')].find(r=>r.textContent.includes('onerror')); return r ? r.dataset.id : null",
        "the hostile campaign on the list, its markup shown as text",
    );
    let id = id.as_str().unwrap().to_string();
    d.js(&format!("document.querySelector('tr.campaign[data-id=\"{id}\"]').click()"));
    d.wait("return document.querySelectorAll('#samples tr.sample').length >= 3", "the samples");
    let text = d.js("return document.body.innerText").as_str().unwrap().to_string();
    assert!(text.contains("<script>window.__pwned='script'</script>"), "the body shown as text: {text}");
    assert!(text.contains("<b onmouseover=alert(1)>ACME</b>"), "the sender shown as text: {text}");
    assert_eq!(d.js("return document.querySelectorAll('#campaign-view img, #campaign-view svg script, #campaign-view b[onmouseover]').length"), 0);
    assert!(d.js("return window.__pwned === undefined").as_bool().unwrap(), "a message's markup ran in the dashboard");

    // The HTML dossier, opened as a page of its own.
    let href = d.js("return document.getElementById('dl-html').href").as_str().unwrap().to_string();
    d.goto(&href);
    d.wait("return document.body && document.body.innerText.includes('Sample messages')", "the dossier");
    let text = d.js("return document.body.innerText").as_str().unwrap().to_string();
    assert!(text.contains("<img src=x onerror="), "the dossier shows the markup as text: {text}");
    assert_eq!(d.js("return document.querySelectorAll('img[onerror], script:not([type]), svg[onload], a[href^=\"javascript\"]').length"), 0);
    assert!(d.js("return window.__pwned === undefined").as_bool().unwrap(), "a message's markup ran in the dossier");
}

/// The schemathesis command: TEXTWATCH_SCHEMATHESIS, else the project's
/// `.venv-schemathesis` (made by .ci/run), else one on the PATH.
fn schemathesis() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let candidates = [
        std::env::var_os("TEXTWATCH_SCHEMATHESIS").map(PathBuf::from),
        Some(root.join(".venv-schemathesis/bin/schemathesis")),
        Some(PathBuf::from("schemathesis")),
    ];
    candidates.into_iter().flatten().find(|c| {
        Command::new(c).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    })
}

/// schemathesis generates requests from /openapi.json (valid and not)
/// with an admin token: no 5xx, no status code the document does not list,
/// no response that breaks its schema or content type.
#[test]
fn the_api_keeps_its_openapi_contract_under_schemathesis() {
    let Some(st) = schemathesis() else {
        return skip("API contract test: schemathesis not found (.ci/run installs it in .venv-schemathesis)");
    };
    let (s, admin) = new_server(&[]);
    post(&s, &admin, "/v1/messages", "application/x-ndjson", example_lines().as_bytes());
    let out = Command::new(&st)
        .args(["run", &format!("{}/openapi.json", s.base), "-H", &format!("Authorization: Bearer {admin}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", "15", "--generation-deterministic", "--continue-on-failure", "--no-color"])
        .env("SCHEMATHESIS_TELEMETRY", "false")
        // Its cache of found failures goes with the server's folder, not
        // into the source tree.
        .current_dir(s.db.parent().unwrap())
        .output()
        .expect("schemathesis runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "schemathesis found contract failures:\n{text}");
    assert!(text.contains("passed"), "{text}");
}

/// Every protected route refuses a missing or unknown token (401) and a
/// token without its scope (403), and lets its scope through, as
/// /openapi.json says (`x-scope`).
#[test]
fn every_route_checks_its_token_and_scope() {
    let (s, admin) = new_server(&[]);
    post(&s, &admin, "/v1/messages", "application/x-ndjson", example_lines().as_bytes());
    let (_, list) = get(&s, &admin, "/v1/campaigns");
    let campaign =
        serde_json::from_str::<serde_json::Value>(&list).unwrap()["items"][0]["id"].as_str().unwrap().to_string();
    let scopes = ["ingest", "check", "read", "admin"];
    let tokens: std::collections::HashMap<&str, String> = scopes.iter().map(|sc| (*sc, token(&s.db, sc))).collect();
    let (_, spec) = get(&s, "", "/openapi.json");
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    let mut checked = 0;
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if op["security"].as_array().is_none_or(|a| a.is_empty()) {
                continue;
            }
            let url_path = path
                .replace("{id}", &campaign)
                .replace("{e164}", "+12155551101")
                .replace("{AccountSid}", "AC0123456789");
            // What each route needs: its x-scope; the Twilio send endpoint
            // check and ingest; the inbound webhook ingest; /metrics any.
            let needs: Vec<&str> = match (op["x-scope"].as_str(), path.as_str()) {
                (Some(sc), _) => vec![sc],
                (None, p) if p.starts_with("/2010-04-01/") => vec!["check", "ingest"],
                (None, "/v1/twilio/inbound") => vec!["ingest"],
                _ => vec![],
            };
            let (ct, body): (&str, Vec<u8>) = match path.as_str() {
                "/v1/messages" => ("application/x-ndjson", example_lines().into_bytes()),
                "/v1/check" => {
                    ("application/json", format!("{{\"from\":\"+12155551188\",\"body\":\"{INCIDENT}\"}}").into_bytes())
                }
                "/v1/campaigns/{id}/block" => ("application/json", b"{\"reason\":\"scope test\"}".to_vec()),
                "/v1/twilio/inbound" => (
                    "application/x-www-form-urlencoded",
                    b"MessageSid=SMx1&From=%2B12155550100&To=%2B12675550100&Body=hello".to_vec(),
                ),
                p if p.starts_with("/2010-04-01/") => {
                    ("application/x-www-form-urlencoded", b"From=%2B12155550100&To=%2B12675550100&Body=hello".to_vec())
                }
                _ => ("", Vec::new()),
            };
            let send = |tok: Option<&str>| -> u16 {
                let url = format!("{}{url_path}", s.base);
                let mut req = if method == "get" { agent().get(&url) } else { agent().post(&url) };
                if let Some(t) = tok {
                    req = req.set("Authorization", &format!("Bearer {t}"));
                }
                // A stream stays open: its status is all this test needs.
                if path == "/v1/events" {
                    req = req.timeout(Duration::from_secs(2));
                    return match req.call() {
                        Ok(r) => r.status(),
                        Err(ureq::Error::Status(c, _)) => c,
                        Err(e) => panic!("{method} {path}: {e}"),
                    };
                }
                let body = if method == "get" { None } else { Some((ct, body.as_slice())) };
                call(req, body).0
            };
            let what = format!("{} {path}", method.to_uppercase());
            assert_eq!(send(None), 401, "{what} without a token");
            assert_eq!(
                send(Some("tw_0000000000000000000000000000000000000000000000000000000000000000")),
                401,
                "{what} with an unknown token"
            );
            for sc in scopes {
                let code = send(Some(&tokens[sc]));
                let allowed = sc == "admin" || needs.is_empty() || (needs.len() == 1 && needs[0] == sc);
                if allowed {
                    assert!(code != 401 && code != 403, "{what} refused scope {sc}: {code}");
                } else {
                    assert_eq!(code, 403, "{what} let scope {sc} through (needs {needs:?})");
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 12, "only {checked} protected routes in /openapi.json");
    // A wrong method is refused in JSON too.
    let (c, b, _) =
        call(agent().get(&format!("{}/v1/check", s.base)).set("Authorization", &format!("Bearer {admin}")), None);
    assert_eq!(c, 405, "{b}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&b).unwrap()["status"], 405, "{b}");
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// A minute of mixed load (ingest batches and checks from several clients
/// at once, as fast as they go): no 5xx and no dropped connection, 429
/// only with Retry-After, memory that levels off, and a server that answers
/// at once when the load stops. TEXTWATCH_SOAK_SECONDS makes it longer.
#[test]
fn a_minute_of_mixed_load_keeps_errors_at_zero_and_memory_level() {
    let env = |k: &str| std::env::var(k).ok().and_then(|s| s.parse::<u64>().ok());
    let seconds: u64 = env("TEXTWATCH_SOAK_SECONDS").unwrap_or(60);
    // For the long runs: a token per client (TEXTWATCH_SOAK_TOKENS=1, the
    // default, shares one) and a total rate to hold (TEXTWATCH_SOAK_RATE,
    // requests a second; default as fast as the clients go).
    let per_client_tokens = env("TEXTWATCH_SOAK_TOKENS").unwrap_or(1) > 1;
    let rate = env("TEXTWATCH_SOAK_RATE");
    let (s, admin) = new_server(&[]);
    let pid = s.child.id();
    let base = s.base.clone();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let clients: Vec<_> = (0..4u64)
        .map(|c| {
            let base = base.clone();
            let admin = if per_client_tokens { token(&s.db, "admin") } else { admin.clone() };
            std::thread::spawn(move || {
                let agent = agent();
                let mut stats = (0u64, 0u64, Vec::<u32>::new()); // answered, 429, latencies in us
                let mut n = 0u64;
                while Instant::now() < deadline {
                    if let Some(r) = rate {
                        // Each client sends a quarter of the rate, on time.
                        let due = start + Duration::from_secs_f64(n as f64 * 4.0 / r as f64);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                    }
                    n += 1;
                    let t = Instant::now();
                    let r = if n.is_multiple_of(4) {
                        // 50 messages of two campaigns, unique ids.
                        let body: String = (0..50)
                            .map(|i| {
                                let k = c * 1_000_000 + n * 100 + i;
                                let text = if i % 2 == 0 {
                                    format!("USPS: your package US{k:09} is held. Pay the fee at https://usps-{}.top/p{k}", k % 7)
                                } else {
                                    format!("Hi, this is Dana with Philly Votes Together. Polls close at 8pm! Ref {k}. Reply STOP to opt out")
                                };
                                serde_json::json!({"id": format!("soak-{k}"), "ts": 1604502000 + (k % 86400) as i64, "from": format!("+1215555{:04}", k % 300), "to": format!("+1267{:07}", k % 9_999_999), "body": text}).to_string()
                            })
                            .collect::<Vec<_>>()
                            .join("\n");
                        agent
                            .post(&format!("{base}/v1/messages"))
                            .set("Authorization", &format!("Bearer {admin}"))
                            .set("Content-Type", "application/x-ndjson")
                            .send_string(&body)
                    } else {
                        let body = serde_json::json!({"ts": "2020-11-04T15:20:00Z", "from": format!("+1215556{:04}", n % 1000), "body": format!("Your code is {n}. Pay at https://usps-{}.top/p{n} today", n % 5)});
                        agent
                            .post(&format!("{base}/v1/check"))
                            .set("Authorization", &format!("Bearer {admin}"))
                            .set("Content-Type", "application/json")
                            .send_string(&body.to_string())
                    };
                    let us = t.elapsed().as_micros() as u32;
                    match r {
                        Ok(_) => {
                            stats.0 += 1;
                            stats.2.push(us);
                        }
                        Err(ureq::Error::Status(429, resp)) => {
                            assert!(resp.header("retry-after").is_some(), "a 429 without Retry-After");
                            stats.1 += 1;
                        }
                        Err(ureq::Error::Status(code, resp)) => {
                            panic!("HTTP {code} under load: {}", resp.into_string().unwrap_or_default())
                        }
                        Err(e) => panic!("transport error under load: {e}"),
                    }
                }
                stats
            })
        })
        .collect();
    // Memory, once a second.
    let mut rss = Vec::new();
    while Instant::now() < deadline {
        rss.push(rss_kib(pid));
        std::thread::sleep(Duration::from_secs(1));
    }
    let mut ok = 0;
    let mut limited = 0;
    let mut lat = Vec::new();
    for c in clients {
        let (o, l, v) = c.join().expect("a client failed");
        ok += o;
        limited += l;
        lat.extend(v);
    }
    lat.sort_unstable();
    let p = |q: f64| lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or(0);
    assert!(rss.iter().all(|&k| k > 0), "could not read the server's memory from /proc: {rss:?}");
    let third = rss.len() / 3;
    let early = rss[..third.max(1)].iter().copied().max().unwrap_or(0);
    let late = rss[rss.len() - third.max(1)..].iter().copied().max().unwrap_or(0);
    eprintln!(
        "soak: {seconds} s, {ok} requests answered ({:.0}/s), {limited} answered 429; latency p50 {} us, p99 {} us; RSS first third max {} MiB, last third max {} MiB",
        ok as f64 / seconds as f64,
        p(0.5),
        p(0.99),
        early / 1024,
        late / 1024
    );
    assert!(ok > 100, "only {ok} requests answered in {seconds} s");
    // Levels off: the last third may not keep growing past the first
    // third's peak by more than half (the caches fill early).
    assert!(late <= early + early / 2 + 64 * 1024, "memory kept growing: {early} KiB -> {late} KiB ({rss:?})");
    // And it recovers at once.
    let t = Instant::now();
    let (c, _) = get(&s, "", "/readyz");
    assert_eq!(c, 200);
    assert!(t.elapsed() < Duration::from_secs(5), "slow to answer after the load: {:?}", t.elapsed());
}

/// A client that sends a whole body before reading the answer (most do)
/// gets the 429 and its Retry-After, or the 401, not a broken pipe: the
/// server reads what it is sent before refusing. (Found by the release
/// soak: four clients over the rate limit saw broken pipes.)
#[test]
fn refusals_of_large_bodies_arrive_as_answers_not_broken_pipes() {
    let (s, admin) = new_server(&["--rate-limit", "1"]);
    let line =
        serde_json::json!({"ts": "2020-11-04T15:00:00Z", "from": "+12155550100", "body": "x".repeat(8000)}).to_string();
    let body = vec![line; 60].join("\n"); // about 480 KB
    let mut limited = 0;
    for i in 0..8 {
        let tok = if i == 7 { "tw_unknown" } else { admin.as_str() };
        let r = agent()
            .post(&format!("{}/v1/messages", s.base))
            .set("Authorization", &format!("Bearer {tok}"))
            .set("Content-Type", "application/x-ndjson")
            .send_string(&body);
        match r {
            Ok(r) => assert_eq!(r.status(), 200),
            Err(ureq::Error::Status(429, r)) => {
                assert_eq!(r.header("retry-after"), Some("1"));
                limited += 1;
            }
            Err(ureq::Error::Status(401, _)) if i == 7 => {}
            Err(e) => panic!("request {i}: {e}"),
        }
    }
    assert!(limited >= 3, "the rate limit did not apply: {limited} of 7 limited");
}

#[test]
fn stop_on_any_path_refuses_the_campaigns_next_text_on_every_path() {
    const ALERT: &str = "Acme Pharmacy: your prescription is ready for pickup at 12 Main St. Reply STOP to opt out.";
    let (s, admin) =
        new_server(&["--help-reply", "Acme Pharmacy: help at acme.example or 215-555-0100. Reply STOP to end."]);
    // A campaign: one text from three numbers to thirty phones.
    let lines: String = (0..30)
        .map(|i| {
            serde_json::json!({
                "id": format!("a{i}"), "ts": format!("2026-11-02T15:{i:02}:00Z"),
                "from": format!("+1215555020{}", i % 3), "to": format!("+1267555{:04}", 100 + i), "body": ALERT,
            })
            .to_string()
                + "\n"
        })
        .collect();
    let (c, b) = post(&s, &admin, "/v1/messages", "application/x-ndjson", lines.as_bytes());
    assert_eq!(c, 200, "{b}");
    // The phone texts STOP to one of them, as an inbound record.
    let stop = serde_json::json!({"id": "in1", "ts": "2026-11-02T16:00:00Z", "direction": "inbound",
        "from": "+12675550777", "to": "+12155550200", "body": " Stop. "});
    let (c, b) = post(&s, &admin, "/v1/messages", "application/json", stop.to_string().as_bytes());
    assert_eq!(c, 200, "{b}");
    let r: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!((r["keywords"].as_u64(), r["accepted"].as_u64()), (Some(1), Some(0)), "{r}");
    assert_eq!(r["results"][0]["status"], "opted-out");
    // Any other text from a phone is not stored: its sender is a person.
    let reply = serde_json::json!({"id": "in2", "ts": "2026-11-02T16:00:05Z", "direction": "inbound",
        "from": "+12675550777", "to": "+12155550200", "body": "who is this?"});
    let (_, b) = post(&s, &admin, "/v1/messages", "application/json", reply.to_string().as_bytes());
    let r: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!((r["results"][0]["status"].as_str(), r["accepted"].as_u64()), (Some("inbound"), Some(0)), "{r}");
    // Another of the campaign's numbers, and a number it has never used
    // with the same text, are refused; another phone is not.
    let check = |from: &str, to: &str| -> serde_json::Value {
        let m = serde_json::json!({"ts": "2026-11-02T17:00:00Z", "from": from, "to": to, "body": ALERT});
        let (c, b) = post(&s, &admin, "/v1/check", "application/json", m.to_string().as_bytes());
        assert_eq!(c, 200, "{b}");
        serde_json::from_str(&b).unwrap()
    };
    for from in ["+12155550202", "+12155550299"] {
        let v = check(from, "+12675550777");
        assert_eq!((v["action"].as_str(), v["rule"].as_str()), (Some("block"), Some("optout")), "{from}: {v}");
        assert_eq!(v["reasons"][0], "recipient opted out");
        assert_eq!(v["findings"][0]["rule"], "recipient-opted-out");
    }
    assert_eq!(check("+12155550202", "+12675550778")["action"], "allow");
    // The Twilio send endpoint answers 21610.
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("ACtest:{admin}"));
    let form = format!("To=%2B12675550777&From=%2B12155550201&Body={}", ALERT.replace(' ', "+").replace(':', "%3A"));
    let (c, b, _) = call(
        agent()
            .post(&format!("{}/2010-04-01/Accounts/ACtest/Messages.json", s.base))
            .set("Authorization", &format!("Basic {basic}")),
        Some(("application/x-www-form-urlencoded", form.as_bytes())),
    );
    assert_eq!(c, 400, "{b}");
    assert!(b.contains("21610") && b.contains("unsubscribed"), "{b}");
    // Texts that reach textwatch anyway after the STOP count against the
    // campaign: a critical optout-ignored finding.
    let later: String = (0..3)
        .map(|i| {
            serde_json::json!({"id": format!("late{i}"), "ts": format!("2026-11-03T15:0{i}:00Z"),
                "from": "+12155550201", "to": "+12675550777", "body": ALERT})
            .to_string()
                + "\n"
        })
        .collect();
    let (c, b) = post(&s, &admin, "/v1/messages", "application/x-ndjson", later.as_bytes());
    assert_eq!(c, 200, "{b}");
    let (_, b) = get(&s, &admin, "/v1/campaigns?finding=optout-ignored");
    let page: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(page["total"], 1, "{page}");
    let f = page["items"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "optout-ignored")
        .unwrap()
        .clone();
    assert_eq!((f["severity"].as_str(), f["count"].as_u64()), (Some("critical"), Some(3)), "{f}");
    assert!(f["example"]["excerpt"].as_str().unwrap().contains("1 recipient after they opted out"), "{f}");
    // HELP through the Twilio webhook gets the configured reply as TwiML,
    // and is not stored as a message.
    let (c, b, _) = call(
        agent().post(&format!("{}/v1/twilio/inbound", s.base)).set("Authorization", &format!("Bearer {admin}")),
        Some(("application/x-www-form-urlencoded", b"From=%2B12675550777&To=%2B12155550200&Body=HELP&MessageSid=SMh1")),
    );
    assert_eq!(c, 200, "{b}");
    assert!(b.contains("<Message>Acme Pharmacy: help at acme.example"), "{b}");
    // START through the webhook opts back in.
    let (c, _, _) = call(
        agent().post(&format!("{}/v1/twilio/inbound", s.base)).set("Authorization", &format!("Bearer {admin}")),
        Some((
            "application/x-www-form-urlencoded",
            b"From=%2B12675550777&To=%2B12155550200&Body=start&MessageSid=SMh2",
        )),
    );
    assert_eq!(c, 200);
    assert_eq!(check("+12155550202", "+12675550777")["action"], "allow");
    let (_, m) = get(&s, &admin, "/metrics");
    assert!(m.contains("textwatch_optout_keywords_total{keyword=\"out\"} 1"), "{m}");
    assert!(m.contains("textwatch_optout_keywords_total{keyword=\"help\"} 1"));
    assert!(m.contains("textwatch_optout_refused_total 3"), "two checks and one send: {m}");
    // Nothing of the keywords was stored as a message.
    let stored = tw_ok(&s.db, &["messages", "--format", "jsonl"]);
    assert!(!stored.contains("SMh1") && !stored.contains("\"in1\"") && !stored.contains("\"in2\""));
    let changes = tw_ok(&s.db, &["optouts", "--format", "jsonl"]);
    assert!(changes.contains("api:inbound") && changes.contains("twilio:inbound"), "{changes}");
}

#[test]
fn spam_reports_pair_across_requests_count_once_per_reporter_and_raise_the_campaign() {
    const SMISH: &str = "USPS: your parcel is on hold for an unpaid fee of $1.99. Pay now at usps-parcelfee.top/h";
    let (s, admin) = new_server(&[]);
    let lines: String = (0..20)
        .map(|i| {
            serde_json::json!({"id": format!("g{i}"), "ts": format!("2026-11-02T15:{i:02}:00Z"),
                "from": format!("+1302555017{}", i % 3), "to": format!("+1267555{:04}", 200 + i), "body": SMISH})
            .to_string()
                + "\n"
        })
        .collect();
    let (c, b) = post(&s, &admin, "/v1/messages", "application/x-ndjson", lines.as_bytes());
    assert_eq!(c, 200, "{b}");
    // 7726: the forwarded text, then (another request) the number.
    let first = serde_json::json!([{"reporter": "+12155550901", "body": SMISH, "ts": "2026-11-02T16:00:00Z"}]);
    let (c, b) = post(&s, &admin, "/v1/reports", "application/json", first.to_string().as_bytes());
    assert_eq!(c, 200, "{b}");
    let r: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!((r["waiting"].as_u64(), r["accepted"].as_u64()), (Some(1), Some(0)), "{r}");
    let second =
        serde_json::json!({"reporter": "+12155550901", "body": "(302) 555-0170", "ts": "2026-11-02T16:01:00Z"});
    let (_, b) = post(&s, &admin, "/v1/reports", "application/json", second.to_string().as_bytes());
    let r: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(r["accepted"], 1, "{r}");
    let campaign = r["results"][0]["campaign"].as_str().expect("the report joined the campaign").to_string();
    // App reports from three more people; one of them twice.
    let app: String = [1, 2, 3, 3]
        .iter()
        .map(|i| {
            serde_json::json!({"reporter": format!("app-user-{i}"), "sender": "+13025550171", "text": SMISH,
                "ts": "2026-11-02T17:00:00Z"})
            .to_string()
                + "\n"
        })
        .collect::<String>()
        + "{\"reporter\": \"app-user-9\", \"ts\": \"2026-11-02T17:00:00Z\"}\n";
    let (c, b) = post(&s, &admin, "/v1/reports", "application/x-ndjson", app.as_bytes());
    assert_eq!(c, 200, "{b}");
    let r: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(
        (r["accepted"].as_u64(), r["duplicates"].as_u64(), r["rejected"].as_u64()),
        (Some(3), Some(1), Some(1)),
        "{r}"
    );
    assert!(r["errors"][0]["error"].as_str().unwrap().contains("body"), "{r}");
    // Four distinct reporters: a medium finding, and the risk counts it.
    let (_, b) = get(&s, &admin, &format!("/v1/campaigns/{campaign}"));
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    let f =
        v["findings"].as_array().unwrap().iter().find(|f| f["rule"] == "reported-by-recipients").expect("{v}").clone();
    assert_eq!((f["count"].as_u64(), f["severity"].as_str()), (Some(4), Some("medium")), "{f}");
    // Stored as messages with source report; reporters never in clear.
    let stored = tw_ok(&s.db, &["messages", "--campaign", &campaign, "--format", "jsonl"]);
    assert_eq!(stored.lines().filter(|l| l.contains("\"source\":\"report\"")).count(), 4);
    assert!(!stored.contains("app-user") && !stored.contains("2155550901"), "{stored}");
}

#[test]
fn a_blocked_sender_sees_why_appeals_and_a_reviewer_overturns_it_on_the_record() {
    let (s, admin) = new_server(&[]);
    post(&s, &admin, "/v1/messages", "application/x-ndjson", example_lines().as_bytes());
    let (_, b) = get(&s, &admin, "/v1/campaigns?finding=election-misinfo");
    let incident: serde_json::Value = serde_json::from_str::<serde_json::Value>(&b).unwrap()["items"][0].clone();
    let campaign = incident["id"].as_str().unwrap().to_string();
    let number = "+12155551102";
    let (_, bl) = get(&s, &admin, "/v1/blocklist");
    assert!(bl.contains(number) && bl.contains(&campaign));

    // The public page: no token, the rule and evidence, no one's message
    // or recipient, and a form to appeal.
    let page = ureq::get(&format!("{}/explain/{}", s.base, number.replace('+', "%2B"))).call().unwrap();
    assert!(page.header("content-security-policy").unwrap().contains("default-src 'none'"));
    let html = page.into_string().unwrap();
    assert!(
        html.contains("Blocked") && html.contains("incitement-or-election-lies") && html.contains("election-misinfo"),
        "{html}"
    );
    for line in example_lines().lines() {
        let m: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(!html.contains(m["to"].as_str().unwrap()), "a recipient on the public page");
    }
    assert!(!html.contains("Philly Votes Together"), "another campaign's text on the page");
    let unknown = ureq::get(&format!("{}/explain/%2B19995550000", s.base)).call();
    assert!(matches!(unknown, Err(ureq::Error::Status(404, _))), "nothing known about a number: 404");

    // In a real browser: no script at all, and the form opens an appeal.
    if chromium().is_some() && Command::new("chromedriver").arg("--version").output().is_ok() {
        let d = Driver::start().expect("chromedriver starts");
        d.goto(&format!("{}/explain/{}", s.base, number.replace('+', "%2B")));
        d.wait(
            "return document.querySelector('.state.blocked') && document.querySelector('.state.blocked').textContent",
            "the blocked state",
        );
        assert_eq!(d.js("return document.scripts.length"), 0);
        d.js("document.querySelector('input[name=contact]').value = 'ops@acme.example'; document.querySelector('textarea[name=reason]').value = 'We are <b>legit</b>'; document.querySelector('form').submit(); return true");
        d.wait("return document.body.innerText.includes('Appeal 1 received')", "the appeal receipt");
        assert_eq!(d.js("return document.querySelectorAll('b').length"), 0, "the appellant's text stays text");
        // A reviewer upholds it from the dashboard.
        d.goto(&format!("{}/dashboard#token={admin}", s.base));
        d.wait("return document.querySelector('#appeals-table button.decide-uphold')", "the appeals table");
        assert!(d
            .js("return document.querySelector('#appeals-table').innerText")
            .as_str()
            .unwrap()
            .contains("We are <b>legit</b>"));
        d.js("window.prompt = () => 'the texts are election misinformation'; document.querySelector('#appeals-table button.decide-uphold').click(); return true");
        d.wait("return document.querySelector('#appeals-table tr.state-upheld')", "the upheld appeal");
    } else {
        skip("appeal page in a browser: no chromium / chromedriver (apt-get install chromium chromium-driver)");
        let (c, _, _) = call(
            agent().post(&format!("{}/v1/appeals", s.base)),
            Some((
                "application/x-www-form-urlencoded",
                format!("number={}&contact=ops%40acme.example&reason=legit", number.replace('+', "%2B")).as_bytes(),
            )),
        );
        assert_eq!(c, 201);
        let (c, b) = post(
            &s,
            &admin,
            "/v1/appeals/1/decision",
            "application/json",
            br#"{"decision": "uphold", "reason": "the texts are election misinformation"}"#,
        );
        assert_eq!(c, 200, "{b}");
    }
    // The campaign's sender appeals the campaign through the API.
    let (c, b, _) = call(
        agent().post(&format!("{}/v1/appeals", s.base)),
        Some(("application/json", serde_json::json!({"campaign": &campaign[..8], "contact": "legal@textsmart.example", "reason": "the texts were a test"}).to_string().as_bytes())),
    );
    assert_eq!(c, 201, "{b}");
    let opened: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!((opened["id"].as_i64(), opened["subject"].as_str()), (Some(2), Some(campaign.as_str())));
    let (c, _, _) = call(
        agent().post(&format!("{}/v1/appeals", s.base)),
        Some(("application/json", b"{\"number\": \"+12155551102\"}")),
    );
    assert_eq!(c, 422, "contact and reason are needed");

    // Reviewers: admin only.
    let reader = token(&s.db, "read");
    assert_eq!(get(&s, &reader, "/v1/appeals").0, 403);
    let decide = |id: i64, body: serde_json::Value| {
        post(&s, &admin, &format!("/v1/appeals/{id}/decision"), "application/json", body.to_string().as_bytes())
    };
    let (c, b) = decide(2, serde_json::json!({"decision": "overturn", "reason": "drill confirmed with the county"}));
    assert_eq!(c, 200, "{b}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&b).unwrap()["policy_version"], 1);
    assert_eq!(decide(2, serde_json::json!({"decision": "uphold", "reason": "again"})).0, 409);
    assert_eq!(decide(9, serde_json::json!({"decision": "uphold", "reason": "none"})).0, 404);
    // The block list drops the campaign; verdicts allow it, saying why.
    let (_, bl) = get(&s, &admin, "/v1/blocklist");
    assert!(!bl.contains(&campaign), "{bl}");
    let m = serde_json::json!({"ts": "2020-11-04T15:20:00Z", "from": "+12155551188", "to": "+12675550000", "body": INCIDENT});
    let (_, b) = post(&s, &admin, "/v1/check", "application/json", m.to_string().as_bytes());
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!((v["action"].as_str(), v["rule"].as_str()), (Some("allow"), Some("appeal-2")), "{v}");
    // Everything is on the record, and the record cannot be rewritten.
    let (_, b) = get(&s, &admin, "/v1/appeals");
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    let actions: Vec<&str> = v["audit"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, vec!["appeal-opened", "appeal-upheld", "appeal-opened", "appeal-overturned"]);
    assert!(v["audit"][3]["actor"].as_str().unwrap().starts_with("token "));
    assert_eq!(v["allows"][0]["subject"], campaign.as_str());
    let conn = rusqlite::Connection::open(&s.db).unwrap();
    let e = conn.execute("UPDATE audit_log SET detail = 'nothing happened'", []).unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
    assert!(conn.execute("DELETE FROM audit_log", []).is_err());
    // The public page now says it is not blocked, with the appeals.
    let html = ureq::get(&format!("{}/explain/{}", s.base, &campaign[..10])).call().unwrap().into_string().unwrap();
    assert!(
        html.contains("Not blocked") && html.contains("appeal 2 overturned") && html.contains("overturned"),
        "{html}"
    );
}

#[test]
fn appeals_through_the_cli_change_the_block_list_and_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/messages.jsonl");
    tw_ok(&db, &["scan", "-q", examples.to_str().unwrap()]);
    let bl = tw_ok(&db, &["blocklist", "--format", "csv"]);
    assert!(bl.contains("+12155551102") && bl.contains("+12155551101"));
    let o = tw(
        &db,
        &["appeal", "open", "--number", "(215) 555-1102", "--contact", "ops@acme.example", "--reason", "opted-in list"],
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("appeal 1 opened for number +12155551102"));
    assert!(tw_ok(&db, &["appeal", "list"]).contains("open"));
    let o = tw(&db, &["appeal", "decide", "1", "--overturn", "--reason", "consent records checked", "--by", "alice"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("policy version 1"), "{}", String::from_utf8_lossy(&o.stderr));
    let bl = tw_ok(&db, &["blocklist", "--format", "csv"]);
    assert!(!bl.contains("+12155551102") && bl.contains("+12155551101"), "only the appealed number leaves:\n{bl}");
    let o = tw(&db, &["appeal", "decide", "1", "--uphold", "--reason", "changed my mind"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("already decided"));
    let audit = tw_ok(&db, &["audit", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&audit).unwrap();
    assert_eq!(v[1]["actor"], "alice");
    assert!(v[1]["detail"].as_str().unwrap().contains("consent records checked"));
}

/// SIGTERM and Ctrl-C stop the server: it finishes what it has in hand
/// and exits with success (it once waited forever for its ingest thread).
#[test]
fn serve_exits_cleanly_on_sigterm_and_sigint() {
    for signal in ["-TERM", "-INT"] {
        let (mut s, admin) = new_server(&[]);
        let body = br#"{"ts":"2020-11-04T15:00:00Z","from":"+12155550100","to":"+12675550100","body":"Polls close at 8pm tonight, reply STOP to opt out"}"#;
        let (c, _) = post(&s, &admin, "/v1/messages", "application/json", body);
        assert_eq!(c, 200);
        let _ = std::process::Command::new("kill").args([signal, &s.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(st) = s.child.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < deadline, "serve did not exit within 30 s of {signal}");
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(status.success(), "serve exited with {status} after {signal}");
    }
}
