//! Spammers write the inputs: message bodies carrying terminal escape
//! sequences, bidirectional overrides, HTML and Markdown are shown as
//! inert text in the CLI's tables and views and in the Markdown dossier.

mod common;

use common::{tw, tw_ok};

/// A campaign of three copies of a hostile text from three senders.
fn hostile_db(dir: &std::path::Path) -> std::path::PathBuf {
    let db = dir.join("t.db");
    // Overrides and escapes inside the evidence of a finding (the
    // call-to-assemble excerpt is the sender's own text), and a sender
    // name carrying an escape sequence.
    let body = "Radical Liberals & Dems are trying to STEAL this election! Show your support at 12th \u{202e}& Arch \
                near the Convention Center, 3pm \u{1b}]0;pwned\u{7} <script>alert(1)</script> [verify](javascript:alert(1)) \
                *urgent* https://x.top/a \u{1b}[2J\r\u{0}end";
    let mut lines = String::new();
    for (i, from) in ["+12155550100", "+12155550101", "ACME\u{1b}[2J\u{202e}"].iter().enumerate() {
        let m = serde_json::json!({
            "id": format!("h{i}"),
            "ts": 1604502000 + i * 60,
            "from": from,
            "to": format!("+1267555{:04}", 200 + i),
            "body": body,
        });
        lines.push_str(&m.to_string());
        lines.push('\n');
    }
    let input = dir.join("hostile.jsonl");
    std::fs::write(&input, lines).unwrap();
    tw_ok(&db, &["scan", "-q", input.to_str().unwrap()]);
    db
}

/// No byte that a terminal acts on (C0 controls but newline, DEL), and no
/// bidi override, reaches standard output.
fn assert_inert(what: &str, out: &[u8]) {
    let text = String::from_utf8_lossy(out);
    let bad: Vec<(usize, char)> = text
        .char_indices()
        .filter(|&(_, c)| {
            (c.is_control() && c != '\n' && c != '\t') || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        })
        .collect();
    assert!(bad.is_empty(), "{what}: raw control characters {bad:?} in:\n{text}");
}

#[test]
fn escape_sequences_and_overrides_never_reach_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let db = hostile_db(dir.path());
    let list = common::campaigns_json(&db);
    assert_eq!(list.len(), 1, "the three copies are one campaign: {list:?}");
    let id = list[0]["id"].as_str().unwrap().to_string();

    for args in [
        vec!["campaigns"],
        vec!["campaign", id.as_str()],
        vec!["messages", "--format", "table"],
        vec!["policy", "explain", id.as_str()],
        vec!["number", "+12155550100"],
    ] {
        let out = tw(&db, &args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert_inert(&format!("{args:?}"), &out.stdout);
    }
    // The text is shown, made inert, not hidden.
    let view = tw_ok(&db, &["campaign", &id]);
    assert!(view.contains("ACME\\u{1b}[2J\\u{202e}"), "{view}");
    assert!(view.contains("12th \\u{202e}& Arch"), "{view}");

    let check = tw(
        &db,
        &[
            "check",
            "--from",
            "+12155550199",
            "--body",
            "Show your support at 12th \u{202e}& Arch \u{1b}[8mnear the Convention Center, 3pm",
        ],
    );
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    assert_inert("check", &check.stdout);
    assert!(String::from_utf8_lossy(&check.stdout).contains("12th \\u{202e}& Arch"));

    // JSON stays exact: tools get the original text, escaped by JSON.
    let json = tw_ok(&db, &["messages", "--format", "jsonl"]);
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert!(first["body"].as_str().unwrap().contains("\u{1b}[2J"));
}

#[test]
fn the_markdown_dossier_shows_html_and_links_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let db = hostile_db(dir.path());
    let id = common::campaigns_json(&db)[0]["id"].as_str().unwrap().to_string();
    let md = tw_ok(&db, &["report", &id, "--format", "md"]);
    assert!(!md.contains("<script"), "{md}");
    assert!(md.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{md}");
    assert!(!md.contains("[verify](javascript"), "a live Markdown link: {md}");
    assert!(md.contains("\\[verify\\](javascript:alert(1))"), "{md}");
    assert!(md.contains("\\*urgent\\*"), "{md}");
    assert!(!md.contains("https://") && md.contains("hxxps://x.top"), "a live link in the dossier: {md}");
    assert_inert("markdown", md.as_bytes());
}
