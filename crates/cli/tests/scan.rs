//! `textwatch scan` end to end: real files in, campaigns out, through the
//! real binary.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use common::*;

fn ids_with_prefix(all: &[serde_json::Value], prefix: &str) -> BTreeSet<String> {
    all.iter().filter_map(|v| v["id"].as_str()).filter(|id| id.starts_with(prefix)).map(str::to_string).collect()
}

#[test]
fn fixture_campaigns_have_exact_membership() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    tw_ok(&db, &["scan", "-q", fixture("campaigns.jsonl").to_str().unwrap()]);
    let all = messages(&db);
    assert_eq!(all.len(), 33);
    let want: BTreeSet<BTreeSet<String>> =
        ["A-", "B-", "C-", "D-", "E-", "S-"].iter().map(|p| ids_with_prefix(&all, p)).collect();
    assert_eq!(groups(&db), want, "each true campaign is exactly one found campaign");
    for v in &all {
        if v["id"].as_str().unwrap().starts_with("N-") {
            assert!(v["campaign"].is_null(), "noise message {} joined a campaign", v["id"]);
        }
    }
}

#[test]
fn rescanning_counts_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let f = fixture("campaigns.jsonl");
    tw_ok(&db, &["scan", "-q", f.to_str().unwrap()]);
    let first = campaigns_json(&db);
    let out = tw_ok(&db, &["scan", "-q", "--format", "json", f.to_str().unwrap()]);
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["accepted"], 0);
    assert_eq!(summary["duplicates"], 33);
    assert_eq!(campaigns_json(&db), first);
    assert_eq!(messages(&db).len(), 33);
}

#[test]
fn json_contract() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    tw_ok(&db, &["scan", "-q", fixture("campaigns.jsonl").to_str().unwrap()]);
    let list = campaigns_json(&db);
    assert_eq!(list.len(), 6);
    for c in &list {
        assert!(c["id"].as_str().is_some_and(|s| s.len() == 16));
        assert!(c["template"].is_string());
        assert!(c["messages"].as_u64().unwrap() >= 2);
        let senders = c["senders"].as_array().unwrap();
        assert!(senders.iter().all(|s| s.is_string()));
        assert!(c["recipients"].is_u64());
        for k in ["first_seen", "last_seen"] {
            let s = c[k].as_str().unwrap();
            assert!(chrono::DateTime::parse_from_rfc3339(s).is_ok(), "{k} = {s}");
        }
        assert!(c["findings"].as_array().is_some());
        assert!(c.get("category").is_some() && c.get("risk").is_some());
    }
    // The incident: 8 senders, E.164, first seen at the first copy.
    let a = list.iter().find(|c| c["senders"].as_array().unwrap().iter().any(|s| s == "+12155551101")).unwrap();
    assert_eq!(a["messages"], 8);
    let senders: BTreeSet<&str> = a["senders"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(
        senders,
        (1101..=1108).map(|n| format!("+1215555{n}")).collect::<BTreeSet<_>>().iter().map(String::as_str).collect()
    );
    assert_eq!(a["recipients"], 8);

    for m in messages(&db) {
        assert!(m["id"].is_string() && m["from"].is_string() && m["ts"].is_string());
        assert!(m["campaign"].is_string() || m["campaign"].is_null());
    }
}

#[test]
fn csv_twilio_export_and_reports_join_the_same_campaign() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let out = tw(
        &db,
        &["scan", "-q", fixture("twilio-export.csv").to_str().unwrap(), fixture("reports.csv").to_str().unwrap()],
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("reports.csv line 4: field `ts`"), "{stderr}");
    let m = membership(&db);
    let campaign: Vec<_> = m.iter().filter(|(c, _)| !c.is_empty()).collect();
    assert_eq!(campaign.len(), 1);
    let ids: BTreeSet<&str> = campaign[0].1.iter().map(String::as_str).collect();
    assert_eq!(
        ids,
        BTreeSet::from(["SM00000000000000000000000000000001", "SM00000000000000000000000000000002", "R-1", "R-2"])
    );
    let all = messages(&db);
    let r1 = all.iter().find(|v| v["id"] == "R-1").unwrap();
    assert_eq!(r1["from"], "+12155551111", "senders are normalized to E.164");
    assert_eq!(r1["meta"]["reporter_app"], "spamshield", "unknown columns are kept");
    let sm = all.iter().find(|v| v["id"] == "SM00000000000000000000000000000001").unwrap();
    assert_eq!(sm["source"], "twilio");
    assert_eq!(sm["ts"], "2020-11-04T15:00:11Z");
}

#[test]
fn gzip_and_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let plain = std::fs::read(fixture("campaigns.jsonl")).unwrap();
    let gz_path = dir.path().join("messages.jsonl.gz");
    let mut enc =
        flate2::write::GzEncoder::new(std::fs::File::create(&gz_path).unwrap(), flate2::Compression::default());
    enc.write_all(&plain).unwrap();
    enc.finish().unwrap();

    let db_gz = dir.path().join("gz.db");
    tw_ok(&db_gz, &["scan", "-q", gz_path.to_str().unwrap()]);

    let db_stdin = dir.path().join("stdin.db");
    let mut child = Command::new(bin())
        .args(["--db", db_stdin.to_str().unwrap(), "scan", "-q", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&plain).unwrap();
    assert!(child.wait().unwrap().success());

    assert_eq!(groups(&db_gz).len(), 6);
    assert_eq!(groups(&db_gz), groups(&db_stdin));
}

fn bad_input() -> Vec<u8> {
    let good = |i: u32| {
        format!(
            "{{\"id\":\"g{i}\",\"ts\":{},\"from\":\"+1215555{:04}\",\"body\":\"Polls moved to Wednesday because of high turnout, tell everyone {i}\"}}\n",
            1_604_502_000 + i,
            i
        )
    };
    let mut b = Vec::new();
    b.extend(good(1).as_bytes()); // line 1
    b.extend(b"{\"id\":\"x1\",\"ts\":1604502000,\"from\":\"1\"\n"); // 2: invalid JSON
    b.extend(b"{\"id\":\"x2\",\"ts\":1604502000,\"from\":\"1\",\"body\":\"caf\xe9\"}\n"); // 3: invalid UTF-8
    b.extend(b"{\"id\":\"x3\",\"ts\":1604502000,\"from\":\"1\"}\n"); // 4: no body
    b.extend(b"{\"id\":\"x4\",\"ts\":\"last tuesday\",\"from\":\"1\",\"body\":\"hi\"}\n"); // 5: bad time
    b.extend(
        format!("{{\"id\":\"x5\",\"ts\":1604502000,\"from\":\"1\",\"body\":\"{}\"}}\n", "A".repeat(1 << 20)).as_bytes(),
    ); // 6: 1 MB body
    b.extend(good(2).as_bytes()); // 7
    b.extend(b"\n"); // 8: blank, skipped
    b.extend(format!("{}\n", "z".repeat(5 << 20)).as_bytes()); // 9: 5 MB line
    b.extend(good(3).as_bytes()); // 10
    b
}

#[test]
fn bad_records_are_reported_and_the_rest_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let input = dir.path().join("bad.jsonl");
    std::fs::write(&input, bad_input()).unwrap();
    let rejects = dir.path().join("rejects.jsonl");
    let out =
        tw(&db, &["scan", "-q", "--format", "json", "--rejects", rejects.to_str().unwrap(), input.to_str().unwrap()]);
    assert!(out.status.success(), "bad records do not fail the run");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["accepted"], 3);
    assert_eq!(summary["rejected"], 6);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for want in [
        "bad.jsonl line 2: invalid JSON",
        "bad.jsonl line 3: invalid UTF-8",
        "bad.jsonl line 4: missing field `body`",
        "bad.jsonl line 5: field `ts`",
        "bad.jsonl line 6: body is 1048576 bytes",
        "bad.jsonl line 9: record is longer than 4 MiB",
    ] {
        assert!(stderr.contains(want), "missing {want:?} in:\n{stderr}");
    }
    let rej: Vec<serde_json::Value> =
        std::fs::read_to_string(&rejects).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rej.iter().map(|r| r["line"].as_u64().unwrap()).collect::<Vec<_>>(), vec![2, 3, 4, 5, 6, 9]);
    assert!(rej[0]["record"].as_str().unwrap().starts_with("{\"id\":\"x1\""));
    assert!(rej.iter().all(|r| r["file"].as_str().unwrap().ends_with("bad.jsonl") && r["reason"].is_string()));
    let ids: Vec<String> = messages(&db).iter().map(|m| m["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, vec!["g1", "g2", "g3"]);
}

#[test]
fn strict_stops_at_the_first_bad_record_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let input = dir.path().join("bad.jsonl");
    std::fs::write(&input, bad_input()).unwrap();
    let out = tw(&db, &["scan", "-q", "--strict", input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--strict") && stderr.contains("line 2"), "{stderr}");
    let ids: Vec<String> = messages(&db).iter().map(|m| m["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, vec!["g1"], "records before the bad one are kept, none after");
}

#[test]
fn a_missing_file_is_reported_and_the_others_are_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let out = tw(&db, &["scan", "-q", "/nonexistent/gone.jsonl", fixture("campaigns.jsonl").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open /nonexistent/gone.jsonl"));
    assert_eq!(messages(&db).len(), 33);
}

/// Many messages share each timestamp; the file order within a timestamp
/// and the thread count must not change the campaigns.
#[test]
fn campaigns_do_not_depend_on_threads_or_the_order_of_equal_time_records() {
    let dir = tempfile::tempdir().unwrap();
    let texts = [
        "Your bank account is locked. Verify now at secure-{}.chase-alerts.top/login",
        "Congrats! You won a $500 Walmart gift card, claim at wm-rewards{}.xyz before midnight",
        "Polls in Philadelphia are moved to Wednesday due to high turnout, code {}",
        "Final notice: your car warranty expires today. Call now to renew, ref {}",
    ];
    let mut lines = Vec::new();
    for i in 0..4000u32 {
        let t = texts[(i % 4) as usize].replace("{}", &format!("{}", i * 7919 % 1000));
        let body = if i % 5 == 0 { t.replace('o', "\u{043e}") } else { t };
        lines.push(serde_json::json!({
            // Each text has its own pool of numbers: four senders.
            "id": format!("m{i}"), "ts": 1_604_502_000 + (i / 50), "from": format!("+1215{}55{:04}", 2 + i % 4, i % 97), "body": body
        }));
    }
    let write = |name: &str, v: &[serde_json::Value]| {
        let p = dir.path().join(name);
        let s: String = v.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&p, s).unwrap();
        p
    };
    let forward = write("forward.jsonl", &lines);
    let mut shuffled = lines.clone();
    for chunk in shuffled.chunks_mut(50) {
        chunk.reverse(); // same timestamps, opposite order
    }
    let backward = write("backward.jsonl", &shuffled);

    let db1 = dir.path().join("1.db");
    tw_ok(&db1, &["scan", "-q", "--threads", "1", forward.to_str().unwrap()]);
    let db2 = dir.path().join("2.db");
    tw_ok(&db2, &["scan", "-q", "--threads", "2", backward.to_str().unwrap()]);
    assert_eq!(groups(&db1).len(), 4);
    assert_eq!(campaigns_json(&db1), campaigns_json(&db2));
    assert_eq!(membership(&db1), membership(&db2));
}

#[test]
fn read_commands_explain_a_missing_database() {
    let dir = tempfile::tempdir().unwrap();
    let out = tw(&dir.path().join("none.db"), &["campaigns"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run `textwatch scan FILE` first"));
}

#[test]
fn campaign_and_check_show_what_a_person_needs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    tw_ok(&db, &["scan", "-q", fixture("campaigns.jsonl").to_str().unwrap()]);
    let list = campaigns_json(&db);
    let a = list.iter().find(|c| c["senders"].as_array().unwrap().iter().any(|s| s == "+12155551101")).unwrap();
    let id = a["id"].as_str().unwrap();

    let text = tw_ok(&db, &["campaign", &id[..8]]);
    assert!(text.contains(&format!("campaign {id}")));
    assert!(text.contains("8 from 8 senders"));
    assert!(text.contains("+12155551101"));
    assert!(text.contains("timeline:"));
    assert!(text.contains("0% of messages carry opt-out language"));

    let check = tw_ok(
        &db,
        &[
            "check",
            "--from",
            "(215) 555-1199",
            "--body",
            "Radical Liberals & Dems are trying to STEAL this election!! We need all hands on deck. Show your support at 12th & Arch near the Convention Center, 4pm.",
        ],
    );
    assert!(check.contains("from        +12155551199"), "{check}");
    assert!(check.contains(&format!("joins campaign {id}")), "{check}");
    assert!(check.contains("opt-out     none found"));

    let json: serde_json::Value = serde_json::from_str(&tw_ok(
        &db,
        &[
            "check",
            "--format",
            "json",
            "--from",
            "72345",
            "--body",
            "Acme Pharmacy: your prescription #99 is ready for pickup at 5th St. Reply STOP to opt out",
        ],
    ))
    .unwrap();
    assert_eq!(json["campaign"]["status"], "exact-campaign");
    assert_eq!(json["optout"], "reply stop to opt out");
    assert!(json["sender_id"].is_string());
    // check changes nothing
    assert_eq!(messages(&db).len(), 33);

    let out = tw(&db, &["campaign", "ffffffffffffffff"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn campaigns_carry_findings_and_risk() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    tw_ok(&db, &["scan", "-q", fixture("campaigns.jsonl").to_str().unwrap()]);
    let list = campaigns_json(&db);
    let rules = |c: &serde_json::Value| -> BTreeSet<String> {
        c["findings"].as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap().to_string()).collect()
    };
    let by_sender = |s: &str| list.iter().find(|c| c["senders"].as_array().unwrap().iter().any(|x| x == s)).unwrap();
    let incident = by_sender("+12155551101");
    for want in ["optout-missing", "sender-id-missing", "election-misinfo", "call-to-assemble"] {
        assert!(rules(incident).contains(want), "incident lacks {want}: {:?}", rules(incident));
    }
    let assemble = incident["findings"].as_array().unwrap().iter().find(|f| f["rule"] == "call-to-assemble").unwrap();
    assert_eq!(assemble["severity"], "high");
    assert!(assemble["example"]["place"].as_str().unwrap().contains("12th & Arch"));
    assert_eq!(assemble["example"]["time"], "3pm");
    assert_eq!(assemble["count"], 8);
    assert!(incident["risk"].as_u64().unwrap() >= 90);

    // The compliant get-out-the-vote drive and the pharmacy break nothing.
    for sender in ["+12675552000", "72345"] {
        let c = by_sender(sender);
        assert!(rules(c).is_empty(), "{sender}: {:?}", rules(c));
        assert_eq!(c["risk"], 0);
    }
    // The smishing wave: a lure with a link, through a shortener in one copy.
    let smish = by_sender("+13025551000");
    assert!(rules(smish).contains("smishing-link"), "{:?}", rules(smish));
}

#[test]
fn user_rule_packs_extend_the_builtin_ones() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("pharmacy.toml"),
        "[[rule]]\nid = \"rx-pickup\"\nkind = \"pattern\"\nseverity = \"info\"\npatterns = ['\\bprescription\\b']\n",
    )
    .unwrap();
    tw_ok(&db, &["scan", "-q", "--rules", rules.to_str().unwrap(), fixture("campaigns.jsonl").to_str().unwrap()]);
    let list = campaigns_json(&db);
    let rx = list.iter().find(|c| c["senders"][0] == "72345").unwrap();
    assert_eq!(rx["findings"][0]["rule"], "rx-pickup");

    std::fs::write(rules.join("broken.toml"), "[[rule]]\nid = \"x\"\nkind = \"nope\"\nseverity = \"low\"\n").unwrap();
    let out = tw(
        &dir.path().join("u.db"),
        &["scan", "-q", "--rules", rules.to_str().unwrap(), fixture("campaigns.jsonl").to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.toml") && err.contains("unknown kind"), "{err}");
}

#[test]
fn check_output_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let out = tw_ok(
        &dir.path().join("none.db"),
        &[
            "check",
            "--format",
            "json",
            "--from",
            "(267) 924-0113",
            "--to",
            "+12675550199",
            "--ts",
            "2020-11-04T15:02:11Z",
            "--body",
            "R\u{0430}dical Liberals & Dems are trying to ST\u{200B}EAL this election! Show your support at the corner of 12th & Arch, near the Convention Center, 3pm today. bit.ly/3xYz",
        ],
    );
    insta::assert_snapshot!("check_incident_json", out);
}

#[test]
fn check_input_writes_one_verdict_per_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    tw_ok(&db, &["scan", "-q", fixture("campaigns.jsonl").to_str().unwrap()]);
    let input = dir.path().join("gateway.jsonl");
    std::fs::write(
        &input,
        concat!(
            r#"{"id":"q1","ts":1604502000,"from":"+12155550111","body":"Radical Liberals & Dems are trying to STEAL this election! We need all hands on deck. Show your support at 12th & Arch near the Convention Center, 3pm today."}"#, "\n",
            r#"{"id":"q2","ts":1604502001,"from":"72345","body":"Acme Pharmacy: your prescription #1234 is ready for pickup at 5th St. Reply STOP to opt out"}"#, "\n",
            "not json\n",
            r#"{"id":"q3","ts":1604502002,"from":"+12155550112","body":"Radical Liberals & Dems are trying to STEAL this election! We need all hands on deck. Show your support at 12th & Arch near the Convention Center, 3pm today."}"#, "\n",
        ),
    )
    .unwrap();
    let out = tw(&db, &["check", "--input", input.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 3"));
    let v: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(v.len(), 3);
    assert_eq!(v[0]["id"], "q1");
    assert_eq!(v[0]["action"], "block");
    assert!(v[0]["campaign"].is_string(), "the incident is a known campaign");
    assert!(v[0]["findings"].as_array().unwrap().iter().any(|f| f["rule"] == "election-misinfo"));
    assert_eq!(v[1]["action"], "allow");
    assert_eq!(v[1]["findings"].as_array().unwrap().len(), 0);
    assert_eq!(v[2]["campaign"], v[0]["campaign"]);
    assert_eq!(v[2]["risk"], v[0]["risk"]);
}

#[test]
fn quiet_hours_are_judged_in_the_recipients_local_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let f = dir.path().join("q.jsonl");
    let night = "Acme Deals: 50% off everything this weekend only at acme-deals.example. Reply STOP to opt out";
    let day = "Keystone Bank alert: a purchase was made on your card ending 4411. Not you? Call us. Reply STOP to end";
    let mut lines = String::new();
    // 02:30Z is 21:30 in Philadelphia (EST) and 20:30 in Chicago, but Florida
    // (305) stops at 20:00; 15:00Z is daytime everywhere.
    for (i, to) in ["+12155550001", "+13055550002", "+13125550003", "+12675550004"].iter().enumerate() {
        lines.push_str(&serde_json::json!({"id": format!("n{i}"), "ts": "2020-11-04T02:30:00Z", "from": "+12152345670", "to": to, "body": night}).to_string());
        lines.push('\n');
        lines.push_str(&serde_json::json!({"id": format!("d{i}"), "ts": "2020-11-04T15:00:00Z", "from": "+12152345671", "to": to, "body": day}).to_string());
        lines.push('\n');
    }
    std::fs::write(&f, lines).unwrap();
    tw_ok(&db, &["scan", "-q", f.to_str().unwrap()]);
    let list = campaigns_json(&db);
    let finding =
        |c: &serde_json::Value| c["findings"].as_array().unwrap().iter().find(|x| x["rule"] == "quiet-hours").cloned();
    let nightly = list.iter().find(|c| c["template"].as_str().unwrap().starts_with("acme deals")).unwrap();
    let q = finding(nightly).expect("the night campaign breaks quiet hours");
    assert_eq!(q["count"], 3, "Philadelphia, Miami and the second Philadelphia number; Chicago is still 20:30");
    let ex = q["example"]["excerpt"].as_str().unwrap();
    assert!(ex.contains("local time") && ex.contains("area code"), "{ex}");
    assert!(!ex.contains("555000"), "no recipient number in the evidence: {ex}");
    let daily = list.iter().find(|c| c["template"].as_str().unwrap().starts_with("keystone bank")).unwrap();
    assert!(finding(daily).is_none());

    // `check` judges one message the same way.
    let out = tw_ok(
        &db,
        &[
            "check",
            "--format",
            "json",
            "--from",
            "+12152345670",
            "--to",
            "+13055559999",
            "--ts",
            "2020-11-04T01:30:00Z",
            "--body",
            night,
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let f = v["findings"].as_array().unwrap().iter().find(|x| x["rule"] == "quiet-hours").expect("20:30 in Miami");
    assert!(f["evidence"]["excerpt"].as_str().unwrap().contains("08:00-20:00"));
    let out = tw_ok(
        &db,
        &[
            "check",
            "--format",
            "json",
            "--from",
            "+12152345670",
            "--to",
            "+12155559999",
            "--ts",
            "2020-11-04T01:30:00Z",
            "--body",
            night,
        ],
    );
    assert!(!out.contains("quiet-hours"), "20:30 in Philadelphia is allowed");
}

#[test]
fn messages_stream_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    tw_ok(&db, &["scan", "-q", fixture("campaigns.jsonl").to_str().unwrap()]);
    let lines = messages(&db);
    let array: Vec<serde_json::Value> =
        serde_json::from_str(&tw_ok(&db, &["messages", "--format", "json"])).expect("one JSON array");
    assert_eq!(array, lines, "json and jsonl hold the same messages in the same order");
    let none: Vec<serde_json::Value> =
        serde_json::from_str(&tw_ok(&db, &["messages", "--format", "json", "--limit", "0"])).unwrap();
    assert!(none.is_empty());
    let two: Vec<serde_json::Value> =
        serde_json::from_str(&tw_ok(&db, &["messages", "--format", "json", "--limit", "2"])).unwrap();
    assert_eq!(two, lines[..2]);
    let table = tw_ok(&db, &["messages", "--format", "table"]);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 1 + lines.len(), "a header and one row per message");
    assert!(rows[0].starts_with("TIME") && rows[0].contains("CAMPAIGN") && rows[0].ends_with("BODY"));
    let first_from = lines[0]["from"].as_str().unwrap();
    assert!(rows[1].contains(first_from), "{}", rows[1]);
    let campaign = lines.iter().find_map(|m| m["campaign"].as_str()).unwrap();
    let of_campaign = tw_ok(&db, &["messages", "--campaign", campaign, "--format", "json"]);
    let of_campaign: Vec<serde_json::Value> = serde_json::from_str(&of_campaign).unwrap();
    assert!(!of_campaign.is_empty() && of_campaign.iter().all(|m| m["campaign"] == campaign));
}

/// The wave of rewordings is one campaign that says why; an analyst splits a
/// wording off and merges it back from the command line.
#[test]
fn campaign_shows_its_links_and_an_analyst_splits_and_merges() {
    let dir = tempfile::tempdir().unwrap();
    let (stream, truth) = (dir.path().join("s.jsonl"), dir.path().join("t.jsonl"));
    let db = dir.path().join("a.db");
    tw_ok(
        &db,
        &[
            "simulate",
            "--scenario",
            "rewordings",
            "--paraphrase",
            "--messages",
            "8000",
            "--seed",
            "5",
            "--out",
            stream.to_str().unwrap(),
            "--truth",
            truth.to_str().unwrap(),
            "-q",
        ],
    );
    tw_ok(&db, &["scan", "-q", stream.to_str().unwrap()]);
    let list = campaigns_json(&db);
    let wave = list
        .iter()
        .find(|c| c["findings"].as_array().unwrap().iter().any(|f| f["rule"] == "call-to-assemble"))
        .expect("the misinformation wave is a campaign");
    let id = wave["id"].as_str().unwrap().to_string();
    let d: serde_json::Value = serde_json::from_str(&tw_ok(&db, &["campaign", &id, "--format", "json"])).unwrap();
    let links = d["links"].as_array().unwrap();
    assert!(!links.is_empty(), "its wordings were joined by links");
    assert!(links.iter().all(|l| l["evidence"].as_str().unwrap().contains("meaning similarity")));
    let table = tw_ok(&db, &["campaign", &id]);
    assert!(table.contains("links (") && table.contains("numbers"), "{table}");

    // Split off a wording that joined through a link, by its fingerprint.
    let variant = d["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["joined"]["kind"].as_str().is_some_and(|k| k != "near-duplicate"))
        .expect("a variant joined by a link");
    let fp = variant["id"].as_str().unwrap()[..10].to_string();
    let before = campaigns_json(&db).len();
    let out = tw_ok(&db, &["campaign", "split", &id, "--variant", &fp, "--reason", "test", "--format", "json"]);
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(campaigns_json(&db).len(), before + 1);
    let other = out["other"].as_str().unwrap().to_string();
    assert!(tw(&db, &["campaign", "split", &id, "--variant", "999"]).status.code() == Some(1));

    // Merge it back: the older id stays and the other resolves to it.
    tw_ok(&db, &["campaign", "merge", &id, &other, "--reason", "test"]);
    assert_eq!(campaigns_json(&db).len(), before);
    let back: serde_json::Value = serde_json::from_str(&tw_ok(&db, &["campaign", &other, "--format", "json"])).unwrap();
    assert_eq!(back["id"], id.as_str());
}

/// With room for few identity keys in memory (`--dedup-keys`), repeats of
/// messages older than those held are found in the message log: a rescan,
/// and a re-send of half the stream, store nothing twice and change no
/// campaign.
#[test]
fn with_few_dedup_keys_in_memory_repeats_are_still_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (stream, _) = common::simulate(dir.path(), "rewordings", 40_000, 31, None);
    let text = std::fs::read_to_string(&stream).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let half = dir.path().join("half.jsonl");
    std::fs::write(&half, lines[lines.len() / 2..].join("\n") + "\n").unwrap();
    let (s, h) = (stream.to_str().unwrap(), half.to_str().unwrap());
    let (all, few) = (dir.path().join("all.db"), dir.path().join("few.db"));
    tw_ok(&all, &["scan", "-q", s]);
    let first = common::membership(&all);
    for f in [s, h] {
        tw_ok(&all, &["scan", "-q", f]);
    }
    for f in [s, s, h] {
        tw_ok(&few, &["scan", "-q", "--dedup-keys", "1000", f]);
    }
    assert_eq!(common::membership(&all), first, "rescans stored nothing new");
    assert_eq!(common::membership(&few), first, "with 1,000 keys in memory, the same messages and campaigns");
    assert_eq!(common::campaigns_json(&all), common::campaigns_json(&few));
}

#[test]
fn a_stream_scanned_in_two_runs_gives_what_one_run_gives() {
    // The second run starts from the database: campaigns, senders, seen
    // messages, and the newest singletons with their text and body (a
    // singleton that becomes a campaign after the restart gets its
    // findings from its real text, links included).
    let dir = tempfile::tempdir().unwrap();
    let (stream, _) = common::simulate(dir.path(), "rewordings", 70_000, 23, None);
    let text = std::fs::read_to_string(&stream).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (p1, p2) = (dir.path().join("p1.jsonl"), dir.path().join("p2.jsonl"));
    std::fs::write(&p1, lines[..40_000].join("\n") + "\n").unwrap();
    std::fs::write(&p2, lines[40_000..].join("\n") + "\n").unwrap();
    let (one, two) = (dir.path().join("one.db"), dir.path().join("two.db"));
    tw_ok(&one, &["scan", "-q", stream.to_str().unwrap()]);
    tw_ok(&two, &["scan", "-q", p1.to_str().unwrap()]);
    tw_ok(&two, &["scan", "-q", p2.to_str().unwrap()]);
    assert_eq!(common::campaigns_json(&one), common::campaigns_json(&two));
    assert_eq!(common::groups(&one), common::groups(&two));
}
