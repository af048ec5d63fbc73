//! Attribution and actions end to end on the election-2020 simulation:
//! number data imported, the incident traced to its provider, blocked by
//! policy, alerted once with a time-to-detect, and scored by `eval`.

mod common;

use std::collections::BTreeSet;

use common::*;

#[test]
fn the_incident_is_traced_blocked_and_alerted() {
    let w = world();
    let (fact, c) = incident(&w);

    // Exactly its 13 senders, all served by the inventory's provider, with
    // the NANPA holders alongside.
    let truth_senders: BTreeSet<&str> =
        fact["senders"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(truth_senders.len(), 13);
    let stream = w.db.parent().unwrap().join("s.jsonl");
    let ids: BTreeSet<String> = std::fs::read_to_string(&w.truth)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "message" && v["campaign"] == "incident-steal")
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    let used: BTreeSet<String> = std::fs::read_to_string(&stream)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| ids.contains(v["id"].as_str().unwrap()))
        .map(|v| v["from"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(used.len(), 13, "all 13 numbers sent in a stream this size");
    let found_senders: BTreeSet<&str> = c["senders"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(found_senders, truth_senders);
    let providers = c["providers"].as_array().unwrap();
    assert_eq!(providers.len(), 1, "{providers:?}");
    assert_eq!(providers[0]["name"], fact["provider"]);
    assert_eq!(providers[0]["senders"].as_array().unwrap().len(), 13);
    assert!(providers[0]["source"].as_str().unwrap().starts_with("inventory: "));
    assert!(!providers[0]["holders"].as_array().unwrap().is_empty(), "block holders are shown alongside");
    assert_eq!(c["decision"]["action"], "block");
    assert_eq!(c["decision"]["scope"], "campaign");
    // A provider the registry knows comes with its abuse desk and format.
    let known = campaigns_json(&w.db)
        .iter()
        .flat_map(|c| c["providers"].as_array().unwrap().clone())
        .find(|p| p["name"] == "Bandwidth")
        .expect("the get-out-the-vote drive runs on Bandwidth numbers");
    assert_eq!(
        (known["abuse_contact"].as_str(), known["report_format"].as_str()),
        (Some("abuse@bandwidth.com"), Some("xarf"))
    );

    // The block list: its fingerprints and numbers, nothing of the
    // compliant campaigns.
    let csv = tw_ok(&w.db, &["blocklist", "--format", "csv"]);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("type,value,campaign,reason"));
    let rows: Vec<Vec<String>> = lines
        .map(|l| {
            csv::ReaderBuilder::new().has_headers(false).from_reader(l.as_bytes()).records().next().unwrap().unwrap()
        })
        .map(|r| r.iter().map(str::to_string).collect())
        .collect();
    let id = c["id"].as_str().unwrap();
    let mine: Vec<&Vec<String>> = rows.iter().filter(|r| r[2] == id).collect();
    assert!(mine.iter().any(|r| r[0] == "fingerprint"));
    let blocked: BTreeSet<&str> = mine.iter().filter(|r| r[0] == "sender").map(|r| r[1].as_str()).collect();
    assert_eq!(blocked, truth_senders);
    let mut sorted = rows.clone();
    sorted.sort();
    assert_eq!(rows, sorted, "stable order");
    let compliant: BTreeSet<String> = truth_campaigns(&w.truth)
        .iter()
        .filter(|f| f["findings"].as_array().unwrap().is_empty())
        .flat_map(|f| {
            f["senders"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect::<Vec<_>>()
        })
        .collect();
    assert!(!compliant.is_empty());
    for r in &rows {
        assert!(!(r[0] == "sender" && compliant.contains(&r[1])), "compliant sender {} blocked", r[1]);
    }
    let json: Vec<serde_json::Value> = serde_json::from_str(&tw_ok(&w.db, &["blocklist", "--format", "json"])).unwrap();
    assert_eq!(json.len(), rows.len());
    assert_eq!(json[0]["type"], rows[0][0].as_str());

    // One alert per level, with the time-to-detect; the same in the
    // database and in the file sink.
    let file: Vec<serde_json::Value> =
        std::fs::read_to_string(&w.alerts).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let db_alerts: Vec<serde_json::Value> =
        tw_ok(&w.db, &["alerts"]).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(file.len(), db_alerts.len());
    let mine: Vec<&serde_json::Value> = file.iter().filter(|a| a["campaign"] == id).collect();
    let levels: BTreeSet<&str> = mine.iter().map(|a| a["level"].as_str().unwrap()).collect();
    assert_eq!(levels, BTreeSet::from(["flag", "block"]));
    for a in &mine {
        let ttd = &a["time_to_detect"];
        assert_eq!(ttd["messages"], 2, "decided when the campaign formed: {a}");
        assert!(ttd["seconds"].as_f64().unwrap() >= 0.0);
        assert_eq!(a["decision"]["rule"], "incitement-or-election-lies");
    }

    // A second scan of the same data raises nothing new.
    tw_ok(&w.db, &["scan", "-q", stream.to_str().unwrap(), "--alert", &format!("file:{}", w.alerts.display())]);
    assert_eq!(std::fs::read_to_string(&w.alerts).unwrap().lines().count(), file.len());

    // `eval` scores attribution from the truth file.
    let report: serde_json::Value =
        serde_json::from_str(&tw_ok(&w.db, &["eval", "--truth", w.truth.to_str().unwrap(), "--format", "json"]))
            .unwrap();
    assert_eq!(report["attribution_accuracy"], 1.0);
    let _ = &w.nums;
}

#[test]
fn number_shows_class_attribution_and_campaigns() {
    let w = world();
    let (fact, c) = incident(&w);
    let n = fact["senders"][0].as_str().unwrap();
    let v: serde_json::Value = serde_json::from_str(&tw_ok(&w.db, &["number", n, "--format", "json"])).unwrap();
    assert_eq!(v["class"], "long-code");
    assert_eq!(v["attribution"]["provider"], fact["provider"]);
    assert_eq!(v["attribution"]["provider_fact"]["kind"], "inventory");
    assert!(v["attribution"]["block"].is_object() || v["attribution"]["exchange"].is_object());
    assert!(v["attribution_text"].as_str().unwrap().contains("inventory: simulated gateway inventory"));
    assert!(v["campaigns"].as_array().unwrap().iter().any(|x| x["campaign"] == c["id"]));
    assert!(v["messages"].as_u64().unwrap() >= 1);
    let table = tw_ok(&w.db, &["number", n]);
    assert!(table.contains("long-code") && table.contains(fact["provider"].as_str().unwrap()), "{table}");

    let bad: serde_json::Value =
        serde_json::from_str(&tw_ok(&w.db, &["number", "+1 (215) 555-0142", "--format", "json"])).unwrap();
    assert_eq!(bad["class"], "invalid");
    assert!(bad["invalid"].as_str().unwrap().contains("fiction"));
    assert_eq!(bad["messages"], 0);
}

#[test]
fn policy_explain_says_which_rule_decided() {
    let w = world();
    let (_, c) = incident(&w);
    let out = tw_ok(&w.db, &["policy", "explain", c["id"].as_str().unwrap()]);
    assert!(out.contains("decision: block the campaign (rule incitement-or-election-lies)"), "{out}");
    assert!(out.contains("[x] finding election-misinfo"), "{out}");
    let j: serde_json::Value =
        serde_json::from_str(&tw_ok(&w.db, &["policy", "explain", c["id"].as_str().unwrap(), "--format", "json"]))
            .unwrap();
    assert_eq!(j["decision"]["rule"], "incitement-or-election-lies");
    assert_eq!(j["rules"][0]["matched"], true);

    // A user policy replaces the built-in one.
    let p = w.db.parent().unwrap().join("mine.toml");
    std::fs::write(&p, "[[rule]]\nname = \"watch-everything-big\"\naction = \"flag\"\n[rule.when]\nmin_messages = 2\n")
        .unwrap();
    let out = tw_ok(&w.db, &["policy", "explain", c["id"].as_str().unwrap(), "--policy", p.to_str().unwrap()]);
    assert!(out.contains("decision: flag the campaign (rule watch-everything-big)"), "{out}");
    assert!(tw_ok(&w.db, &["blocklist", "--policy", p.to_str().unwrap()]).lines().count() == 1, "nothing blocked");

    // A broken policy names the file and the problem.
    std::fs::write(&p, "[[rule]]\nname = \"x\"\naction = \"block\"\n").unwrap();
    let o = tw(&w.db, &["policy", "check", p.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("mine.toml") && err.contains("no conditions"), "{err}");
}

#[test]
fn numbers_import_reports_bad_lines_and_replaces_sources() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let inv = dir.path().join("gw.csv");
    std::fs::write(&inv, "prefix,provider,source\n+12152345678,Twilio,lease\nnot-a-number,X,y\n").unwrap();
    let o = tw(&db, &["numbers", "import", "--inventory", inv.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "bad lines give exit code 3");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("gw.csv:3:") && err.contains("not-a-number"), "{err}");
    let v: serde_json::Value =
        serde_json::from_str(&tw_ok(&db, &["number", "+12152345678", "--format", "json"])).unwrap();
    assert_eq!(v["attribution"]["provider"], "Twilio");
    // Re-import replaces that source's rows.
    std::fs::write(&inv, "+12152345678,Telnyx,port\n").unwrap();
    tw_ok(&db, &["numbers", "import", "--inventory", inv.to_str().unwrap()]);
    let v: serde_json::Value =
        serde_json::from_str(&tw_ok(&db, &["number", "+12152345678", "--format", "json"])).unwrap();
    assert_eq!(v["attribution"]["provider"], "Telnyx");
    assert_eq!(tw_ok(&db, &["numbers", "sources"]).lines().count(), 2);
    let zip = dir.path().join("co.zip");
    std::fs::write(&zip, b"PK\x03\x04rest").unwrap();
    let o = tw(&db, &["numbers", "import", "--nanpa-co", zip.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("unzip"));
}

/// A webhook that answers 503 to its first `failures` requests and 200
/// after.
fn flaky_webhook(failures: usize) -> (String, std::sync::mpsc::Receiver<Received>) {
    let (base, rx) =
        stand_in(move |n| (if n < failures { "503 Service Unavailable" } else { "200 OK" }, String::new()));
    (format!("{base}/hook"), rx)
}

/// The bodies a flaky webhook accepted (after its refusals).
fn accepted(rx: &std::sync::mpsc::Receiver<Received>, failures: usize) -> Vec<(usize, String)> {
    rx.try_iter().filter(|r| r.n >= failures).map(|r| (r.n, r.body)).collect()
}

#[test]
fn webhook_alerts_are_retried_and_delivered_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let f = dir.path().join("m.jsonl");
    let body = "Radical Liberals & Dems are trying to STEAL this election! Show your support at 12th & Arch near the Convention Center, 3pm";
    let mut lines = String::new();
    for i in 0..4 {
        lines.push_str(&serde_json::json!({"id": format!("w{i}"), "ts": 1604502000 + 60 * i, "from": format!("+1215234560{i}"), "body": body}).to_string());
        lines.push('\n');
    }
    std::fs::write(&f, lines).unwrap();
    let (url, rx) = flaky_webhook(2);
    tw_ok(&db, &["scan", "-q", f.to_str().unwrap(), "--alert", &url]);
    let got = accepted(&rx, 2);
    let levels: Vec<String> = got
        .iter()
        .map(|(_, b)| serde_json::from_str::<serde_json::Value>(b).unwrap()["level"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(levels, ["flag", "block"], "both levels delivered after two refusals");
    assert!(got[0].0 >= 2, "the first delivery came after retries");
    let a: serde_json::Value = serde_json::from_str(&got[1].1).unwrap();
    assert_eq!(a["time_to_detect"]["messages"], 2);
    assert_eq!(a["time_to_detect"]["seconds"], 60.0);
    // Scanning again raises nothing new.
    let (url, rx) = flaky_webhook(0);
    tw_ok(&db, &["scan", "-q", f.to_str().unwrap(), "--alert", &url]);
    assert_eq!(accepted(&rx, 0).len(), 0);
    assert_eq!(tw_ok(&db, &["alerts"]).lines().count(), 2);
}

/// Numbers registered (inventory `use_case`) for marketing that send
/// political fundraising asks break the registration; a marketing campaign
/// on its own registration does not. An unknown use case is refused.
#[test]
fn traffic_outside_the_registered_use_case_is_a_finding() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let inv = dir.path().join("inv.csv");
    std::fs::write(
        &inv,
        "prefix,provider,source,use_case\n+12155550201,Acme SMS,gw,MARKETING\n+12155550202,Acme SMS,gw,MARKETING\n+12155550301,Acme SMS,gw,MARKETING\n+12155550302,Acme SMS,gw,marketing\n",
    )
    .unwrap();
    tw_ok(&db, &["numbers", "import", "--inventory", inv.to_str().unwrap()]);
    let mut lines = String::new();
    for i in 0..6 {
        let (from, body) = if i % 2 == 0 {
            (format!("+1215555020{}", 1 + i % 2), format!("URGENT: our 3X match ends at midnight. Chip in $10 to re-elect Senator Diaz: secure.actblue.com/d{i} Paid for by Diaz for Senate. Stop2End"))
        } else {
            (format!("+1215555030{}", 1 + i % 2), format!("Trailhead Outfitters: 30% off all boots this weekend with code BOOTS{i}. Shop trailheadoutfitters.com Reply STOP to opt out"))
        };
        lines.push_str(
            &serde_json::json!({"id": format!("u{i}"), "ts": 1604502000 + 60 * i, "from": from, "body": body})
                .to_string(),
        );
        lines.push('\n');
    }
    let f = dir.path().join("m.jsonl");
    std::fs::write(&f, lines).unwrap();
    tw_ok(&db, &["scan", "-q", f.to_str().unwrap()]);
    let list = campaigns_json(&db);
    let political = list.iter().find(|c| c["category"] == "political").expect("the fundraising campaign");
    let finding = political["findings"].as_array().unwrap().iter().find(|f| f["rule"] == "use-case-mismatch");
    let finding = finding.expect("political texts over a marketing registration");
    assert_eq!(finding["severity"], "high");
    assert!(finding["example"]["excerpt"].as_str().unwrap().contains("registered for MARKETING"));
    let marketing = list.iter().find(|c| c["category"] == "marketing").expect("the boots campaign");
    assert!(!marketing["findings"].as_array().unwrap().iter().any(|f| f["rule"] == "use-case-mismatch"));

    std::fs::write(&inv, "prefix,provider,source,use_case\n+12155550201,Acme SMS,gw,BULK\n").unwrap();
    let o = tw(&db, &["numbers", "import", "--inventory", inv.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a 10DLC use case"), "{o:?}");
}
