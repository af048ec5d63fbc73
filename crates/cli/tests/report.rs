//! `textwatch report` checked by tools nobody here wrote: the XARF v4
//! schema (PyPI `xarf`), the STIX 2.1 validator (PyPI `stix2-validator`),
//! and headless Chromium rendering the HTML dossier.

mod common;

use std::process::Command;

use common::*;

const REPORTER: [&str; 6] = [
    "--reporter-org",
    "Example Watch",
    "--reporter-contact",
    "abuse-desk@example.org",
    "--reporter-domain",
    "example.org",
];

fn report(w: &World, id: &str, extra: &[&str]) -> String {
    let mut args = vec!["report", id];
    args.extend_from_slice(extra);
    tw_ok(&w.db, &args)
}

#[test]
fn xarf_reports_validate_against_the_schema() {
    let w = world();
    let (fact, c) = incident(&w);
    let id = c["id"].as_str().unwrap();
    let mut args = vec!["--format", "xarf"];
    args.extend_from_slice(&REPORTER);
    let all: serde_json::Value = serde_json::from_str(&report(&w, id, &args)).unwrap();
    let all = all.as_array().expect("one report per provider, as an array");
    assert_eq!(all.len(), 1);
    let r = &all[0];
    assert_eq!(
        (r["category"].as_str(), r["type"].as_str(), r["protocol"].as_str()),
        (Some("messaging"), Some("spam"), Some("sms"))
    );
    assert_eq!(r["reporter"]["contact"], "abuse-desk@example.org");
    let provider = fact["provider"].as_str().unwrap();
    assert!(r["description"].as_str().unwrap().contains(provider));
    let tags: Vec<&str> = r["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert!(tags.contains(&"rule:election-misinfo") && tags.contains(&"rule:call-to-assemble"), "{tags:?}");
    // The numbers it serves travel as CSV evidence, samples as text.
    use base64::Engine as _;
    let numbers = r["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["content_type"] == "text/csv")
        .map(|e| {
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(e["payload"].as_str().unwrap()).unwrap())
                .unwrap()
        })
        .unwrap();
    for s in fact["senders"].as_array().unwrap() {
        assert!(numbers.contains(s.as_str().unwrap()), "{s} missing from the numbers evidence");
    }
    // --provider gives one object; an unknown provider is an error naming the real ones.
    let mut one = args.clone();
    one.extend(["--provider", provider]);
    let single: serde_json::Value = serde_json::from_str(&report(&w, id, &one)).unwrap();
    assert!(single.is_object());
    assert_eq!(single["report_id"], r["report_id"], "same content, same id");
    let o = tw(
        &w.db,
        &[
            "report",
            id,
            "--format",
            "xarf",
            "--provider",
            "Nobody Telecom",
            REPORTER[0],
            REPORTER[1],
            REPORTER[2],
            REPORTER[3],
            REPORTER[4],
            REPORTER[5],
        ],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains(provider));
    // Without a reporter the error says what to give.
    let o = Command::new(bin())
        .args(["--db", w.db.to_str().unwrap(), "report", id, "--format", "xarf"])
        .env_remove("TEXTWATCH_REPORTER_ORG")
        .env_remove("TEXTWATCH_REPORTER_CONTACT")
        .env_remove("TEXTWATCH_REPORTER_DOMAIN")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--reporter-contact"));

    let Some(python) = python_with("xarf") else {
        return skip("XARF schema validation: the project's .venv has no `xarf` (run .ci/run)");
    };
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("r.json");
    std::fs::write(&f, serde_json::to_string(&single).unwrap()).unwrap();
    let script = r#"
import json, sys, xarf
data = open(sys.argv[1]).read()
r = xarf.parse(data, strict=False)
errors = [f"{e.field}: {e.message}" for e in r.errors]
# strict mode also demands fields XARF marks recommended; the ones for
# e-mail and IP sources cannot apply to SMS and are the only ones allowed.
s = xarf.parse(data, strict=True)
smtp_only = {"'source_port' is a required property", "'smtp_to' is a required property", "'subject' is a required property"}
extra = [e.message for e in s.errors if e.message not in smtp_only]
print(json.dumps({"errors": errors, "strict_extra": extra}))
"#;
    let out = Command::new(&python).args(["-c", script, f.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["errors"], serde_json::json!([]), "schema errors");
    assert_eq!(v["strict_extra"], serde_json::json!([]), "strict-mode errors beyond the SMTP-only fields");

    // And a broken report is caught by the same check (the check can fail).
    let mut bad = single.clone();
    bad["protocol"] = "carrier-pigeon".into();
    std::fs::write(&f, serde_json::to_string(&bad).unwrap()).unwrap();
    let out = Command::new(&python).args(["-c", script, f.to_str().unwrap()]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(v["errors"], serde_json::json!([]));
}

#[test]
fn stix_bundle_is_valid_and_complete() {
    let w = world();
    let (fact, c) = incident(&w);
    let out = report(&w, c["id"].as_str().unwrap(), &["--format", "stix", "--reporter-org", "Example Watch"]);
    let b: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(b["type"], "bundle");
    let objs = b["objects"].as_array().unwrap();
    let count = |t: &str| objs.iter().filter(|o| o["type"] == t).count();
    assert_eq!(count("campaign"), 1);
    assert_eq!(count("x-phone-number"), 13);
    assert!(count("indicator") >= 13);
    assert_eq!(count("relationship"), count("indicator"));
    for s in fact["senders"].as_array().unwrap() {
        let pattern = format!("[x-phone-number:value = '{}']", s.as_str().unwrap());
        assert!(objs.iter().any(|o| o["pattern"] == pattern.as_str()), "no indicator for {s}");
    }
    let Some(python) = python_with("stix2validator") else {
        return skip("STIX validation: the project's .venv has no `stix2validator` (run .ci/run)");
    };
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("b.json");
    std::fs::write(&f, &out).unwrap();
    let script = r#"
import sys
from stix2validator import validate_string, ValidationOptions, print_results
r = validate_string(open(sys.argv[1]).read(), ValidationOptions(strict=True, version="2.1"))
print_results(r)
sys.exit(0 if r.is_valid else 1)
"#;
    let o = Command::new(&python).args(["-c", script, f.to_str().unwrap()]).output().unwrap();
    assert!(
        o.status.success(),
        "stix2-validator (strict): {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    // A bundle with a broken reference fails the same check.
    std::fs::write(&f, out.replacen("\"indicates\"", "\"indicates\", \"target_ref\": \"nonsense\", \"x\": 1", 1))
        .unwrap();
    let o = Command::new(&python).args(["-c", script, f.to_str().unwrap()]).output().unwrap();
    assert!(!o.status.success());
}

#[test]
fn html_dossier_renders_in_chromium() {
    let w = world();
    let (fact, c) = incident(&w);
    let id = c["id"].as_str().unwrap();
    let file = w.db.parent().unwrap().join("dossier.html");
    report(&w, id, &["--format", "html", "-o", file.to_str().unwrap()]);
    let html = std::fs::read_to_string(&file).unwrap();
    assert!(!html.contains("<script"), "self-contained, no scripts");
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"), "no external resources");
    let md = report(&w, id, &["--format", "md"]);
    assert!(
        md.contains(&format!("# Campaign {id}")) && md.contains("## Rules broken") && md.contains("election-misinfo")
    );
    assert!(md.contains("| Category | political (settled by rule election-misinfo) |"), "who chose the category: {md}");

    let Some(chrome) = chromium() else {
        return skip("HTML dossier rendering: no chromium (apt-get install chromium chromium-driver)");
    };
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(&chrome)
        .args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", file.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "chromium: {}", String::from_utf8_lossy(&out.stderr));
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains(&format!("<code id=\"campaign-id\">{id}</code>")), "campaign id in the DOM");
    assert_eq!(dom.matches("<tr class=\"sender\">").count(), 13, "13 senders listed");
    assert!(dom.contains(&format!("data-provider=\"{}\"", fact["provider"].as_str().unwrap())));
    for rule in ["election-misinfo", "call-to-assemble", "optout-missing", "sender-id-missing"] {
        assert!(dom.contains(&format!("data-rule=\"{rule}\"")), "finding {rule} shown");
    }
    assert!(dom.contains("<mark>"), "evidence highlighted");
    assert!(dom.contains("class=\"place\""), "place extracted");
    assert!(dom.matches("class=\"bar\"").count() > 5, "timeline chart drawn");
    assert!(dom.contains("class=\"decision block\""), "policy decision shown");
    assert!(dom.matches("<tr class=\"sample\">").count() >= 5);
    // A screenshot for people (kept in the temp dir; the docs show one).
    let png = w.db.parent().unwrap().join("dossier.png");
    let s = Command::new(&chrome)
        .args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1100,2000")
        .arg(format!("file://{}", file.display()))
        .output()
        .unwrap();
    assert!(s.status.success() && png.metadata().map(|m| m.len() > 10_000).unwrap_or(false));
}

#[test]
fn hostile_message_text_is_escaped_in_the_dossier() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let f = dir.path().join("m.jsonl");
    let body = "Win big <script>alert(1)</script> & \"claim\" now at <img src=x onerror=alert(2)> http://bad.example/x";
    let mut lines = String::new();
    for i in 0..3 {
        lines.push_str(&serde_json::json!({"id": format!("h{i}"), "ts": 1604502000 + i, "from": format!("+1215234567{i}"), "body": body}).to_string());
        lines.push('\n');
    }
    std::fs::write(&f, lines).unwrap();
    tw_ok(&db, &["scan", "-q", f.to_str().unwrap()]);
    let id = campaigns_json(&db)[0]["id"].as_str().unwrap().to_string();
    let html = tw_ok(&db, &["report", &id, "--format", "html"]);
    assert!(!html.contains("<script>alert") && !html.contains("<img src=x"), "raw markup leaked");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}
