//! `textwatch smpp` end to end: a real ESME (the PyPI `smpplib` client)
//! binds through the gateway to a test upstream SMSC. The incident text is
//! refused, a compliant one delivered, a long one reassembled and judged
//! whole; malformed PDUs get generic_nack and the session lives on;
//! enquire_link is answered; a STOP from a phone to one of a campaign's
//! numbers refuses the next text from another of its numbers, on SMPP
//! and on `/v1/check`.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::*;
use textwatch_smpp::frame::{self, id, Header};

/// A test SMSC: accepts any bind, answers every submit_sm with a message
/// id and keeps its text; can send a deliver_sm (a text from a phone) to
/// the last bound session.
struct Smsc {
    port: u16,
    texts: Arc<Mutex<Vec<String>>>,
    last: Arc<Mutex<Option<TcpStream>>>,
}

impl Smsc {
    fn start() -> Smsc {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let texts = Arc::new(Mutex::new(Vec::new()));
        let last: Arc<Mutex<Option<TcpStream>>> = Arc::new(Mutex::new(None));
        let (t, la) = (texts.clone(), last.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let (t, la) = (t.clone(), la.clone());
                std::thread::spawn(move || {
                    let mut buf = BytesMut::new();
                    let mut chunk = [0u8; 4096];
                    let mut n_id = 0;
                    loop {
                        while let Ok(Some(p)) = frame::next(&mut buf) {
                            let h = Header::read(&p).unwrap();
                            let reply = match h.id {
                                id::BIND_TRANSCEIVER | id::BIND_TRANSMITTER | id::BIND_RECEIVER => {
                                    *la.lock().unwrap() = Some(s.try_clone().unwrap());
                                    frame::with_c_string(id::resp(h.id), 0, h.sequence, "testsmsc")
                                }
                                id::SUBMIT_SM => {
                                    let c = frame::decode(&p).unwrap();
                                    let sm = textwatch_smpp::sm::of(
                                        c.pdu().unwrap(),
                                        textwatch_smpp::text::DefaultAlphabet::Gsm,
                                    )
                                    .unwrap();
                                    t.lock().unwrap().push(sm.text);
                                    n_id += 1;
                                    frame::with_c_string(id::resp(h.id), 0, h.sequence, &format!("up-{n_id}"))
                                }
                                id::ENQUIRE_LINK | id::UNBIND => frame::bare(id::resp(h.id), 0, h.sequence),
                                _ => continue,
                            };
                            if s.write_all(&reply).is_err() {
                                return;
                            }
                        }
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                });
            }
        });
        Smsc { port, texts, last }
    }

    /// A phone texts `body` from `from` to `to` (deliver_sm, IA5).
    fn deliver(&self, seq: u32, from: &str, to: &str, body: &str) {
        let mut b = vec![0u8, 1, 1];
        b.extend_from_slice(from.as_bytes());
        b.extend_from_slice(&[0, 1, 1]);
        b.extend_from_slice(to.as_bytes());
        b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 1, 0, body.len() as u8]);
        b.extend_from_slice(body.as_bytes());
        let mut pdu = ((16 + b.len()) as u32).to_be_bytes().to_vec();
        pdu.extend_from_slice(&id::DELIVER_SM.to_be_bytes());
        pdu.extend_from_slice(&[0, 0, 0, 0]);
        pdu.extend_from_slice(&seq.to_be_bytes());
        pdu.extend_from_slice(&b);
        let mut s = self.last.lock().unwrap();
        s.as_mut().expect("a bound session").write_all(&pdu).unwrap();
    }
}

struct Gateway {
    child: Child,
    smpp: String,
    http: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(db: &Path, upstream: u16) -> Gateway {
    let upstream = format!("127.0.0.1:{upstream}");
    let (child, lines) = spawn_until(
        db,
        &[
            "smpp",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--upstream",
            &upstream,
            "--upstream-system-id",
            "textwatch",
            "--help-reply",
            "Example Alerts: help at example.org. Reply STOP to end.",
        ],
        &[("TEXTWATCH_SMPP_UPSTREAM_PASSWORD", "pw")],
        &["textwatch smpp: listening on ", "textwatch serve: listening on "],
    );
    let smpp = lines[0].split(',').next().unwrap().trim().to_string();
    let http = lines[1].split_whitespace().next().unwrap().to_string();
    Gateway { child, smpp, http }
}

/// Texts through the real ESME; the statuses of each text's parts.
fn esme(python: &Path, gw: &Gateway, system_id: &str, password: &str, texts: serde_json::Value) -> Vec<Vec<u64>> {
    let (host, port) = gw.smpp.rsplit_once(':').unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smpp_esme.py");
    let mut child = Command::new(python)
        .args([script.to_str().unwrap(), host, port, system_id, password])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(texts.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "smpplib: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["statuses"].as_array().unwrap().iter().map(|s| s.as_u64().expect("every part answered")).collect()
        })
        .collect()
}

/// A wording of the incident campaign in examples/messages.jsonl, which
/// the gateway's database has seen (as from spam traps and reports).
const INCIDENT: &str = "Radical Liberals and Democrats are trying to STEAL this election! We need all hands on deck. Show your support at 12th & Arch near the Convention Center at 3pm today.";
const ALERT: &str = "Acme Pharmacy: your prescription is ready for pickup at 12 Main St. Reply STOP to opt out.";

/// Raw PDUs over a socket bound through the gateway.
fn raw_bind(gw: &Gateway, system_id: &str, password: &str) -> (TcpStream, BytesMut) {
    let mut s = TcpStream::connect(&gw.smpp).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut body = Vec::new();
    for x in [system_id, password, ""] {
        body.extend_from_slice(x.as_bytes());
        body.push(0);
    }
    body.extend_from_slice(&[0x34, 0, 0, 0]);
    let mut pdu = ((16 + body.len()) as u32).to_be_bytes().to_vec();
    pdu.extend_from_slice(&id::BIND_TRANSCEIVER.to_be_bytes());
    pdu.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
    pdu.extend_from_slice(&body);
    s.write_all(&pdu).unwrap();
    let mut buf = BytesMut::new();
    let h = read_pdu(&mut s, &mut buf);
    assert_eq!((h.id, h.status), (id::resp(id::BIND_TRANSCEIVER), 0));
    (s, buf)
}

/// A submit_sm in IA5 (data_coding 1) with `esm_class`, the short message
/// and TLV bytes.
fn submit_pdu(seq: u32, from: &str, to: &str, esm: u8, sm: &[u8], tlvs: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8, 1, 1];
    b.extend_from_slice(from.as_bytes());
    b.extend_from_slice(&[0, 1, 1]);
    b.extend_from_slice(to.as_bytes());
    b.extend_from_slice(&[0, esm, 0, 0, 0, 0, 0, 0, 1, 0, sm.len() as u8]);
    b.extend_from_slice(sm);
    b.extend_from_slice(tlvs);
    let mut p = ((16 + b.len()) as u32).to_be_bytes().to_vec();
    p.extend_from_slice(&id::SUBMIT_SM.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0]);
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&b);
    p
}

fn read_pdu(s: &mut TcpStream, buf: &mut BytesMut) -> Header {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(p) = frame::next(buf).unwrap() {
            return Header::read(&p).unwrap();
        }
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "the gateway closed the session");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn an_esme_binds_through_the_gateway_and_every_text_gets_a_verdict() {
    let Some(python) = python_with("smpplib") else {
        skip("smpp test: no Python with smpplib (pip install smpplib, or run .ci/run)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gw.db");
    // A campaign the gateway knows: the same alert from three numbers.
    let lines: String = (0..30)
        .map(|i| {
            serde_json::json!({
                "id": format!("a{i}"), "ts": format!("2026-11-02T15:{:02}:00Z", i),
                "from": format!("+1215555020{}", i % 3), "to": format!("+1267555{:04}", 100 + i),
                "body": ALERT,
            })
            .to_string()
                + "\n"
        })
        .collect();
    let input = dir.path().join("alerts.jsonl");
    std::fs::write(&input, lines).unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/messages.jsonl");
    tw_ok(&db, &["scan", "-q", examples.to_str().unwrap(), input.to_str().unwrap()]);
    let password = tw_ok(&db, &["token", "create", "--scope", "check,ingest", "--smpp", "esme1"])
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(password.len(), 8);
    let reader = tw_ok(&db, &["token", "create", "--scope", "read", "--smpp", "esme2"])
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string();

    let smsc = Smsc::start();
    let gw = start(&db, smsc.port);

    // Wrong password and missing scopes are refused at bind.
    let bad = Command::new(&python)
        .args(["-c", &format!(
            "import smpplib.client\nc=smpplib.client.Client('{}', {})\nc.connect()\ntry:\n  c.bind_transmitter(system_id='esme1', password='nope')\n  print('bound')\nexcept Exception as e:\n  print(type(e).__name__, e)",
            gw.smpp.rsplit_once(':').unwrap().0, gw.smpp.rsplit_once(':').unwrap().1
        )])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&bad.stdout);
    assert!(said.contains("PDUError") && !said.contains("bound"), "{said}");
    let (mut s, mut buf) = {
        let mut s = TcpStream::connect(&gw.smpp).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut body = b"esme2\0".to_vec();
        body.extend_from_slice(reader.as_bytes());
        body.extend_from_slice(&[0, 0, 0x34, 0, 0, 0]);
        let mut pdu = ((16 + body.len()) as u32).to_be_bytes().to_vec();
        pdu.extend_from_slice(&id::BIND_TRANSMITTER.to_be_bytes());
        pdu.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 9]);
        pdu.extend_from_slice(&body);
        s.write_all(&pdu).unwrap();
        (s, BytesMut::new())
    };
    let h = read_pdu(&mut s, &mut buf);
    assert_eq!((h.id, h.status, h.sequence), (id::resp(id::BIND_TRANSMITTER), 0x402, 9), "a read-only token");
    drop(s);

    // The incident is refused; a compliant text goes through; a long text
    // arrives as parts and is delivered whole.
    let long = format!("{ALERT} Your refill of 3 items totals $12.40; bring your card. Pharmacy hours: 9am to 9pm weekdays, 10am to 6pm on weekends. Questions? Call 215-555-0100.");
    let got = esme(
        &python,
        &gw,
        "esme1",
        &password,
        serde_json::json!([
            {"from": "+12155559911", "to": "+12675550001", "text": INCIDENT},
            {"from": "+12155550200", "to": "+12675550002", "text": ALERT},
            {"from": "+12155550201", "to": "+12675550003", "text": long},
        ]),
    );
    // It is long enough for two parts: both are refused, on the whole text.
    assert!(!got[0].is_empty() && got[0].iter().all(|s| *s == 0x400), "the incident is refused: {:?}", got[0]);
    assert_eq!(got[1], vec![0], "the compliant text is delivered");
    assert!(got[2].len() >= 2 && got[2].iter().all(|s| *s == 0), "{:?}", got[2]);
    let texts = smsc.texts.lock().unwrap().clone();
    assert!(!texts.iter().any(|t| t.contains("STEAL")), "nothing of the incident went upstream");
    assert_eq!(texts.iter().filter(|t| t.as_str() == ALERT).count(), 1);
    assert_eq!(texts.concat().matches("Pharmacy hours").count(), 1, "every part went on: {texts:?}");

    // Malformed PDUs get generic_nack; the session lives on.
    let (mut s, mut buf) = raw_bind(&gw, "esme1", &password);
    // A submit_sm whose body stops inside its fields.
    let mut bad = 19u32.to_be_bytes().to_vec();
    bad.extend_from_slice(&id::SUBMIT_SM.to_be_bytes());
    bad.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 5, b'a', b'b', b'c']);
    s.write_all(&bad).unwrap();
    let h = read_pdu(&mut s, &mut buf);
    assert_eq!((h.id, h.sequence), (id::GENERIC_NACK, 5));
    // An unknown command id.
    s.write_all(&frame::bare(0x0000_0777, 0, 6)).unwrap();
    let h = read_pdu(&mut s, &mut buf);
    assert_eq!((h.id, h.status, h.sequence), (id::GENERIC_NACK, 3, 6));
    s.write_all(&frame::bare(id::ENQUIRE_LINK, 0, 7)).unwrap();
    let h = read_pdu(&mut s, &mut buf);
    assert_eq!((h.id, h.sequence), (id::resp(id::ENQUIRE_LINK), 7), "enquire_link after the bad PDUs");

    // One text's parts over two binds of the same ESME meet, and are
    // refused together; text hidden in message_payload beside a harmless
    // short_message is judged too.
    let (mut other, mut obuf) = raw_bind(&gw, "esme1", &password);
    let (head, tail) = INCIDENT.split_at(80);
    let part = |n: u8, text: &str| {
        let mut sm = vec![0x05, 0x00, 0x03, 0x5A, 0x02, n];
        sm.extend_from_slice(text.as_bytes());
        sm
    };
    s.write_all(&submit_pdu(21, "12155559911", "12675550031", 0x40, &part(1, head), &[])).unwrap();
    other.write_all(&submit_pdu(22, "12155559911", "12675550031", 0x40, &part(2, tail), &[])).unwrap();
    let h1 = read_pdu(&mut s, &mut buf);
    let h2 = read_pdu(&mut other, &mut obuf);
    assert_eq!(
        (h1.id, h1.sequence, h1.status),
        (id::resp(id::SUBMIT_SM), 21, 0x400),
        "part 1, answered on its own bind"
    );
    assert_eq!((h2.id, h2.sequence, h2.status), (id::resp(id::SUBMIT_SM), 22, 0x400), "part 2, on the other");
    let mut payload = vec![0x04, 0x24];
    payload.extend_from_slice(&(INCIDENT.len() as u16).to_be_bytes());
    payload.extend_from_slice(INCIDENT.as_bytes());
    other.write_all(&submit_pdu(23, "12155559911", "12675550032", 0, b"hi", &payload)).unwrap();
    let h = read_pdu(&mut other, &mut obuf);
    assert_eq!((h.sequence, h.status), (23, 0x400), "the payload is judged");
    drop(other);
    // The test SMSC texts the last session bound: bind again.
    let (mut s, mut buf) = raw_bind(&gw, "esme1", &password);

    // A phone texts STOP to one of the campaign's numbers (through the
    // upstream, as a deliver_sm); the gateway relays it to the ESME.
    smsc.deliver(41, "12675550777", "12155550200", "Stop");
    let h = read_pdu(&mut s, &mut buf);
    assert_eq!(h.id, id::DELIVER_SM, "the STOP is passed back to the ESME");
    s.write_all(&frame::with_c_string(id::resp(id::DELIVER_SM), 0, h.sequence, "")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // Another of its numbers texts that phone: refused, with the opt-out
    // status; another phone still gets it.
    let got = esme(
        &python,
        &gw,
        "esme1",
        &password,
        serde_json::json!([
            {"from": "+12155550202", "to": "+12675550777", "text": ALERT},
            {"from": "+12155550202", "to": "+12675550778", "text": ALERT},
        ]),
    );
    assert_eq!(got, vec![vec![0x401], vec![0]]);
    // The HTTP check agrees, and says why.
    let token = tw_ok(&db, &["token", "create", "--scope", "check"]).lines().last().unwrap().trim().to_string();
    let m =
        serde_json::json!({"ts": "2026-11-03T15:00:00Z", "from": "+12155550201", "to": "+12675550777", "body": ALERT});
    let resp = ureq::post(&format!("{}/v1/check", gw.http))
        .set("Authorization", &format!("Bearer {token}"))
        .set("Content-Type", "application/json")
        .send_string(&m.to_string())
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&resp.into_string().unwrap()).unwrap();
    assert_eq!((v["action"].as_str(), v["rule"].as_str()), (Some("block"), Some("optout")));
    assert_eq!(v["reasons"][0], "recipient opted out");
    assert!(v["findings"][0]["evidence"]["excerpt"].as_str().unwrap().contains("STOP"), "{v}");
    // START opts back in. (A fresh bind: the SMSC texts the last session
    // bound, and smpplib's has gone.)
    let (mut s, mut buf) = raw_bind(&gw, "esme1", &password);
    smsc.deliver(42, "12675550777", "12155550200", "START");
    let h = read_pdu(&mut s, &mut buf);
    assert_eq!(h.id, id::DELIVER_SM);
    s.write_all(&frame::with_c_string(id::resp(id::DELIVER_SM), 0, h.sequence, "")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let got = esme(
        &python,
        &gw,
        "esme1",
        &password,
        serde_json::json!([{"from": "+12155550202", "to": "+12675550777", "text": ALERT}]),
    );
    assert_eq!(got, vec![vec![0]]);
    // HELP: the configured reply goes to the phone through the upstream.
    let (mut s, mut buf) = raw_bind(&gw, "esme1", &password);
    smsc.deliver(43, "12675550777", "12155550200", "help");
    let h = read_pdu(&mut s, &mut buf);
    assert_eq!(h.id, id::DELIVER_SM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !smsc.texts.lock().unwrap().iter().any(|t| t.starts_with("Example Alerts: help")) {
        assert!(Instant::now() < deadline, "no HELP reply upstream");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The changes are kept, with their source.
    drop(gw);
    let out = tw_ok(&db, &["optouts"]);
    assert!(out.contains("STOP") && out.contains("START") && out.contains("smpp:deliver_sm"), "{out}");
}

/// The gateway on PostgreSQL (`--postgres`), with raw PDUs: a bound ESME's
/// compliant text goes upstream, a phone's STOP (a deliver_sm from the
/// upstream) is kept in the shared database and refuses the next text to
/// that phone, and `optouts` reads it back from there.
#[test]
fn the_gateway_runs_on_postgres_and_keeps_opt_outs_there() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pg) = postgres_db(dir.path(), "smpp") else { return };
    let password = tw_ok(&pg.db, &["token", "create", "--scope", "check,ingest", "--smpp", "esme1"])
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string();
    let smsc = Smsc::start();
    let gw = start(&pg.db, smsc.port);
    let (mut s, mut buf) = raw_bind(&gw, "esme1", &password);
    s.write_all(&submit_pdu(2, "12155550200", "12675550001", 0, ALERT.as_bytes(), &[])).unwrap();
    let h = read_pdu(&mut s, &mut buf);
    assert_eq!((h.id, h.sequence, h.status), (id::resp(id::SUBMIT_SM), 2, 0), "the compliant text is delivered");
    assert_eq!(smsc.texts.lock().unwrap().iter().filter(|t| t.as_str() == ALERT).count(), 1);

    // The phone texts STOP; the gateway passes it back to the ESME.
    smsc.deliver(41, "12675550777", "12155550200", "Stop");
    let h = read_pdu(&mut s, &mut buf);
    assert_eq!(h.id, id::DELIVER_SM, "the STOP is passed back to the ESME");
    s.write_all(&frame::with_c_string(id::resp(id::DELIVER_SM), 0, h.sequence, "")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seq = 10;
    loop {
        seq += 1;
        s.write_all(&submit_pdu(seq, "12155550200", "12675550777", 0, ALERT.as_bytes(), &[])).unwrap();
        let h = read_pdu(&mut s, &mut buf);
        assert_eq!(h.sequence, seq);
        if h.status == 0x401 {
            break;
        }
        assert!(Instant::now() < deadline, "the opt-out never took effect (status {:#x})", h.status);
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(s);
    drop(gw);
    let out = tw_ok(&pg.db, &["optouts"]);
    assert!(out.contains("STOP") && out.contains("smpp:deliver_sm"), "kept in PostgreSQL: {out}");
}
