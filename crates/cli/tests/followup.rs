//! Closing the loop on takedown reports: a simulated campaign is reported
//! (marked sent at the time the simulation reports it), its provider
//! silences the numbers two hours later and the operator rotates two new
//! numbers into the same campaign; `textwatch reports` says quiet for the
//! old numbers and rotated for the campaign, with times, and the new
//! numbers are on the block list. `eval` scores the follow-up states of
//! every simulated takedown, on a seed the rest never saw. And the SMTP
//! path: `report --send` to a local SMTP sink (PyPI aiosmtpd) that checks
//! the XARF attachment.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

struct Sim {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    truth: std::path::PathBuf,
}

fn takedowns(seed: u64) -> Sim {
    let dir = tempfile::tempdir().unwrap();
    let nums = dir.path().join("nums");
    let (stream, truth) = simulate(dir.path(), "takedowns-2020", 30_000, seed, Some(&nums));
    let db = dir.path().join("t.db");
    import_numbers(&db, &nums);
    tw_ok(&db, &["scan", "-q", stream.to_str().unwrap()]);
    Sim { _dir: dir, db, truth }
}

/// The truth's campaign facts that carry a takedown.
fn takedown_facts(truth: &Path) -> Vec<serde_json::Value> {
    truth_campaigns(truth).into_iter().filter(|c| c["report"].is_object()).collect()
}

/// Marks each simulated report sent, at its time, to the campaign that
/// holds its first number; returns (label, campaign id).
fn report_all(sim: &Sim) -> Vec<(String, String)> {
    let campaigns = campaigns_json(&sim.db);
    let mut out = Vec::new();
    for f in takedown_facts(&sim.truth) {
        let r = &f["report"];
        let first = r["numbers"][0].as_str().unwrap();
        let c = campaigns
            .iter()
            .find(|c| c["senders"].as_array().unwrap().iter().any(|s| s == first))
            .unwrap_or_else(|| panic!("{} was found", f["label"]));
        let id = c["id"].as_str().unwrap().to_string();
        tw_ok(
            &sim.db,
            &[
                "report",
                &id,
                "--mark-sent",
                "--provider",
                r["provider"].as_str().unwrap(),
                "--at",
                r["at"].as_str().unwrap(),
            ],
        );
        out.push((f["label"].as_str().unwrap().to_string(), id));
    }
    out
}

#[test]
fn a_reported_campaign_goes_quiet_then_rotates_and_the_follow_up_says_so() {
    let sim = takedowns(5);
    let reported = report_all(&sim);
    let facts = takedown_facts(&sim.truth);
    let incident = facts.iter().find(|f| f["label"] == "incident-steal").unwrap();
    let (_, campaign) = reported.iter().find(|(l, _)| l == "incident-steal").unwrap();

    let v: serde_json::Value = serde_json::from_str(&tw_ok(&sim.db, &["reports", "--format", "json"])).unwrap();
    let r = v["reports"].as_array().unwrap().iter().find(|r| &r["campaign"] == campaign).unwrap().clone();
    assert_eq!(r["state"], "rotated", "{r:#}");
    assert_eq!(r["provider"], "Textsmart Leasing");
    // Every reported number is quiet, each with the time it took; none
    // sent later than two hours after the report (when the provider acted).
    let numbers = r["numbers"].as_array().unwrap();
    let named: Vec<&str> =
        incident["report"]["numbers"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    assert_eq!(numbers.len(), named.len());
    for n in numbers {
        assert_eq!(n["state"], "quiet", "{n}");
        let secs = n["quiet_after_s"].as_i64().unwrap();
        assert!((0..=2 * 3600).contains(&secs), "{n}");
    }
    // The two numbers the operator moved to, with their first texts.
    let mut rotated: Vec<&str> =
        r["rotated"].as_array().unwrap().iter().map(|n| n["number"].as_str().unwrap()).collect();
    let mut truth_rotated: Vec<&str> =
        incident["report"]["rotated"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    rotated.sort();
    truth_rotated.sort();
    assert_eq!(rotated, truth_rotated);
    assert_eq!(rotated.len(), 2);
    for n in r["rotated"].as_array().unwrap() {
        assert!(n["first_seen"].as_str().unwrap() > r["sent_at"].as_str().unwrap());
    }
    // The table says the same, and the per-provider record.
    let table = tw_ok(&sim.db, &["reports"]);
    let line = table.lines().find(|l| l.contains(&campaign[..16])).unwrap();
    assert!(line.contains("rotated") && line.contains(&format!("{0}/{0}", named.len())), "{table}");
    assert!(table.contains("Telnyx") && table.contains("100%"), "the ignored report: {table}");
    let show = tw_ok(&sim.db, &["reports", "show", &r["id"].to_string()]);
    for n in &truth_rotated {
        assert!(show.contains(n), "{show}");
    }
    // The new numbers are on the campaign's block list.
    let bl = tw_ok(&sim.db, &["blocklist", "--format", "csv"]);
    for n in &truth_rotated {
        assert!(bl.lines().any(|l| l.contains(n) && l.contains(&campaign[..])), "{n} not blocked:\n{bl}");
    }
    // An answer is kept and shown.
    tw_ok(&sim.db, &["reports", "answer", &r["id"].to_string(), "Numbers suspended; ticket 88412"]);
    assert!(tw_ok(&sim.db, &["reports", "show", &r["id"].to_string()]).contains("ticket 88412"));
    // A number that had not sent by the report time is not named in it.
    assert!(!numbers.iter().any(|n| truth_rotated.contains(&n["number"].as_str().unwrap())));
    // The dossier has the follow-up, with its before/after chart.
    let html = tw_ok(&sim.db, &["report", campaign, "--format", "html"]);
    let section = &html[html.find("<section id=\"follow-up\">").expect("a follow-up section")..];
    assert!(
        section.contains("rotated") && section.contains("class=\"followup-chart\"") && section.contains("ticket 88412")
    );
    for n in &truth_rotated {
        assert!(section.contains(n));
    }
    let md = tw_ok(&sim.db, &["report", campaign, "--format", "md"]);
    assert!(md.contains("## Follow-up of takedown reports") && md.contains("Rotated to after the report"));
    // The API and /metrics give each provider's record.
    let s = start(&sim.db, &[]);
    let tok = token(&sim.db, "read");
    let get = |path: &str| {
        ureq::get(&format!("{}{path}", s.base))
            .set("Authorization", &format!("Bearer {tok}"))
            .call()
            .unwrap()
            .into_string()
            .unwrap()
    };
    let v: serde_json::Value = serde_json::from_str(&get("/v1/takedowns")).unwrap();
    let textsmart = v["providers"].as_array().unwrap().iter().find(|p| p["provider"] == "Textsmart Leasing").unwrap();
    assert_eq!((textsmart["reports"].as_u64(), textsmart["rotated"].as_u64()), (Some(2), Some(1)), "{textsmart}");
    let telnyx = v["providers"].as_array().unwrap().iter().find(|p| p["provider"] == "Telnyx").unwrap();
    assert_eq!(telnyx["ignored_share"].as_f64(), Some(1.0));
    let m = get("/metrics");
    assert!(m.contains("textwatch_reports{provider=\"Textsmart Leasing\",state=\"rotated\"} 1"), "{m}");
    assert!(m.contains("textwatch_reports_ignored_ratio{provider=\"Telnyx\"} 1"));
    assert!(m.contains("textwatch_report_median_quiet_seconds{provider=\"Textsmart Leasing\"}"));
}

#[test]
fn eval_scores_every_simulated_takedown_on_an_unseen_seed() {
    let sim = takedowns(23);
    let before = tw_ok(&sim.db, &["eval", "--truth", sim.truth.to_str().unwrap()]);
    assert!(before.contains("not reported"), "{before}");
    report_all(&sim);
    let out = tw_ok(&sim.db, &["eval", "--truth", sim.truth.to_str().unwrap(), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let f = v["follow_ups"].as_array().unwrap();
    assert_eq!(f.len(), 3);
    for x in f {
        assert_eq!(x["found"], x["expected"], "{x}");
    }
    let kinds: std::collections::BTreeSet<&str> = f.iter().map(|x| x["expected"].as_str().unwrap()).collect();
    assert_eq!(kinds.into_iter().collect::<Vec<_>>(), vec!["ignored", "quiet", "rotated"]);
}

#[test]
fn report_send_mails_the_xarf_report_through_smtp_and_records_it() {
    let Some(python) = python_with("aiosmtpd, xarf") else {
        return skip("SMTP report test: no Python with aiosmtpd and xarf (run .ci/run)");
    };
    let sim = takedowns(5);
    let dir = tempfile::tempdir().unwrap();
    let mails = dir.path().join("mails.jsonl");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smtp_sink.py");
    struct Sink(std::process::Child);
    impl Drop for Sink {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut sink = Sink(
        Command::new(&python)
            .args([script.to_str().unwrap(), &port.to_string(), mails.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut ready = String::new();
    BufReader::new(sink.0.stdout.take().unwrap()).read_line(&mut ready).unwrap();
    assert_eq!(ready.trim(), "ready");
    let fact = takedown_facts(&sim.truth).into_iter().find(|f| f["label"] == "incident-steal").unwrap();
    let first = fact["senders"][0].as_str().unwrap().to_string();
    let found = campaigns_json(&sim.db)
        .into_iter()
        .find(|c| c["senders"].as_array().unwrap().iter().any(|s| s == first.as_str()))
        .unwrap();
    let id = found["id"].as_str().unwrap();
    let smtp = format!("smtp://127.0.0.1:{port}");
    let args = [
        "report",
        id,
        "--format",
        "xarf",
        "--send",
        "--smtp",
        &smtp,
        "--to",
        "abuse@textsmart.example",
        "--reporter-org",
        "Example Watch",
        "--reporter-contact",
        "reports@watch.example",
        "--reporter-domain",
        "watch.example",
    ];
    let o = tw(&sim.db, &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&mails).map_or(true, |s| s.is_empty()) {
        assert!(Instant::now() < deadline, "no mail arrived");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(sink);
    let mail: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&mails).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(mail["mail_from"], "reports@watch.example");
    assert_eq!(mail["rcpt_tos"], serde_json::json!(["abuse@textsmart.example"]));
    assert!(mail["subject"].as_str().unwrap().contains(id));
    let att = &mail["attachments"][0];
    assert_eq!(
        (att["type"].as_str(), att["name"].as_str()),
        (Some("application/json"), Some(&*format!("xarf-{id}.json")))
    );
    assert_eq!(att["xarf_errors"], serde_json::json!([]), "the attachment is valid XARF");
    assert_eq!(att["json"]["category"], "messaging");
    // Recorded, with the mail's Message-ID and address.
    let v: serde_json::Value = serde_json::from_str(&tw_ok(&sim.db, &["reports", "--format", "json"])).unwrap();
    let r = &v["reports"][0];
    assert_eq!((r["via"].as_str(), r["sent_to"].as_str()), (Some("smtp"), Some("abuse@textsmart.example")));
    assert_eq!(r["reference"], mail["message_id"]);
    // No relay reachable: a clear error, nothing recorded.
    let bad = "smtp://127.0.0.1:1".to_string();
    let mut a2 = args.to_vec();
    a2[6] = &bad;
    let o = tw(&sim.db, &a2);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("sending the report through smtp://127.0.0.1:1"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&tw_ok(&sim.db, &["reports", "--format", "json"])).unwrap();
    assert_eq!(v["reports"].as_array().unwrap().len(), 1);
}

#[test]
fn import_reports_pairs_7726_texts_across_runs() {
    let sim = takedowns(5);
    let fact = takedown_facts(&sim.truth).into_iter().find(|f| f["label"] == "smish-usps").unwrap();
    let sender = fact["senders"][0].as_str().unwrap().to_string();
    let body = format!("USPS: Your package {} could not be delivered due to an incomplete address. Please update here: usps-redelivery.top/x1", "US9514901185421");
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    std::fs::write(
        &a,
        format!(
            "{}\n{}\nnot json\n",
            serde_json::json!({"from": "+12155550911", "to": "7726", "body": body, "ts": "2020-11-04T12:00:00Z"}),
            serde_json::json!({"reporter": "app-7", "sender": sender, "text": body, "ts": "2020-11-04T12:05:00Z"}),
        ),
    )
    .unwrap();
    std::fs::write(
        &b,
        serde_json::json!({"from": "+12155550911", "to": "7726", "body": &sender[2..], "ts": "2020-11-04T12:02:00Z"})
            .to_string()
            + "\n",
    )
    .unwrap();
    let o = tw(&sim.db, &["import-reports", "-q", a.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("1 report paired or given, 1 forwarded text waiting") && err.contains("1 rejected"), "{err}");
    let o = tw(&sim.db, &["import-reports", "-q", b.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("1 report paired"), "{}", String::from_utf8_lossy(&o.stderr));
    let stored = tw_ok(&sim.db, &["messages", "--format", "jsonl"]);
    let reports: Vec<&str> = stored.lines().filter(|l| l.contains("\"id\":\"rpt-")).collect();
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert!(reports.iter().all(|l| l.contains(&sender) && l.contains("\"source\":\"report\"")));
}
