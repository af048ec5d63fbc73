//! Reports: one campaign as a takedown report (XARF v4), a
//! threat-intelligence bundle (STIX 2.1), a self-contained HTML dossier, or
//! Markdown.
//!
//! Everything in a report comes from the store: the enriched campaign
//! (findings, providers, decision), per-sender statistics, sample messages
//! and the per-minute, per-sender timeline, so every figure can be traced
//! back to messages.

use std::collections::HashMap;
use std::fmt::Write as _;

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use textwatch_engine::{Analyzer, Message, Scratch};
use textwatch_store::time::format_ts;
use textwatch_store::views::{CampaignDetail, MessageView, SenderView};
use textwatch_store::{ProviderGroup, Store};

use crate::enrich::Enricher;
pub use crate::markup::esc;
use crate::markup::md_cell;
use crate::views::{enriched_campaign, scope_word};
use crate::{Result, SinkError};

/// Who files the report (XARF `reporter` and `sender`; STIX identity).
#[derive(Debug, Clone, Default)]
pub struct Reporter {
    /// Your organisation, as the report's reporter.
    pub reporter_org: Option<String>,
    /// An e-mail address where the provider can reach you.
    pub reporter_contact: Option<String>,
    /// Your organisation's domain.
    pub reporter_domain: Option<String>,
}

/// One provider's part of a campaign.
pub struct Part {
    pub group: ProviderGroup,
    pub senders: Vec<SenderView>,
    pub samples: Vec<MessageView>,
    pub messages: u64,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// Everything a report shows.
pub struct Dossier {
    pub d: CampaignDetail,
    pub parts: Vec<Part>,
    /// Distinct links in the samples (as written, with a scheme added).
    pub links: Vec<String>,
    /// Per sender: one line of attribution with its sources.
    pub attribution: HashMap<String, String>,
    /// Timeline: bucket width (ms), bucket starts, per-sender counts
    /// (top senders, then `others`).
    pub timeline: Timeline,
    /// Takedown reports on the campaign and what followed (filled by the
    /// caller: `followup::for_campaign`).
    pub followups: Vec<crate::followup::FollowUp>,
}

pub struct Timeline {
    pub width_ms: i64,
    pub start: i64,
    pub buckets: usize,
    /// (sender label, counts per bucket)
    pub series: Vec<(String, Vec<u64>)>,
}

const TOP_SERIES: usize = 8;
const MAX_BUCKETS: i64 = 120;

/// Collects a campaign's dossier from the store.
pub fn dossier(store: &dyn Store, e: &Enricher, id: &str, samples: usize) -> Result<Option<Dossier>> {
    let Some(d) = enriched_campaign(store, e, id, samples)? else { return Ok(None) };
    let id = d.summary.id.clone();
    let provider_of: HashMap<&str, usize> = d
        .summary
        .providers
        .iter()
        .enumerate()
        .flat_map(|(i, g)| g.senders.iter().map(move |s| (s.as_str(), i)))
        .collect();
    let mut parts: Vec<Part> = d
        .summary
        .providers
        .iter()
        .map(|g| Part {
            group: g.clone(),
            senders: Vec::new(),
            samples: Vec::new(),
            messages: 0,
            first_seen: i64::MAX,
            last_seen: i64::MIN,
        })
        .collect();
    for s in &d.sender_stats {
        if let Some(&i) = provider_of.get(s.sender.as_str()) {
            let p = &mut parts[i];
            p.messages += s.messages;
            p.first_seen = p.first_seen.min(s.first_seen);
            p.last_seen = p.last_seen.max(s.last_seen);
            p.senders.push(s.clone());
        }
    }
    // Samples per provider, in stored order, until each part has enough.
    let mut missing = parts.len();
    if missing > 0 && samples > 0 {
        store.messages(Some(&id), &mut |m| {
            if let Some(&i) = provider_of.get(m.from.as_str()) {
                let p = &mut parts[i];
                if p.samples.len() < samples {
                    p.samples.push(m);
                    if p.samples.len() == samples {
                        missing -= 1;
                    }
                }
            }
            missing > 0
        })?;
    }
    let analyzer = Analyzer::new(b"report", 1);
    let mut scratch = Scratch::default();
    let mut links: Vec<String> = Vec::new();
    for m in d.samples.iter().chain(parts.iter().flat_map(|p| p.samples.iter())) {
        let msg = Message {
            id: None,
            ts_ms: m.ts,
            from: m.from.clone(),
            to: None,
            body: m.body.clone(),
            source: None,
            meta: None,
        };
        for l in analyzer.analyze(msg, &mut scratch).features.links {
            let url = if l.url.contains("://") { l.url.clone() } else { format!("https://{}", l.url) };
            if !links.contains(&url) {
                links.push(url);
            }
        }
    }
    let attribution =
        d.sender_stats.iter().map(|s| (s.sender.clone(), e.dir.attribute(&s.sender).to_string())).collect();
    let timeline = timeline(store, &id, &d)?;
    Ok(Some(Dossier { d, parts, links, attribution, timeline, followups: Vec::new() }))
}

fn timeline(store: &dyn Store, id: &str, d: &CampaignDetail) -> Result<Timeline> {
    let s = &d.summary;
    let start = s.first_seen - s.first_seen.rem_euclid(60_000);
    let span = (s.last_seen - start).max(0) + 1;
    let minutes = (span + 59_999) / 60_000;
    let per = (minutes + MAX_BUCKETS - 1) / MAX_BUCKETS;
    let width_ms = per.max(1) * 60_000;
    let buckets = ((span + width_ms - 1) / width_ms).max(1) as usize;
    let top: Vec<&str> = d.sender_stats.iter().take(TOP_SERIES).map(|v| v.sender.as_str()).collect();
    let mut series: Vec<(String, Vec<u64>)> = top.iter().map(|s| (s.to_string(), vec![0; buckets])).collect();
    let mut others = vec![0u64; buckets];
    store.campaign_stream(id, &mut |ts, _, sender| {
        let b = (((ts - start).max(0) / width_ms) as usize).min(buckets - 1);
        match top.iter().position(|t| *t == sender) {
            Some(i) => series[i].1[b] += 1,
            None => others[b] += 1,
        }
        true
    })?;
    if others.iter().any(|&n| n > 0) {
        series.push((format!("{} other senders", d.sender_stats.len().saturating_sub(TOP_SERIES)), others));
    }
    Ok(Timeline { width_ms, start, buckets, series })
}

/// A version-4 UUID whose 122 random bits are taken from a SHA-256 of the
/// report's content instead of a random source: the same campaign state
/// gives the same id (a re-sent report is recognisable, two runs diff
/// cleanly), different content gives unrelated ids.
fn content_uuid(parts: &[&str]) -> uuid::Uuid {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid()
}

fn evidence_item(content_type: &str, description: &str, data: &[u8]) -> Value {
    json!({
        "content_type": content_type,
        "description": description,
        "payload": base64::engine::general_purpose::STANDARD.encode(data),
        "hash": format!("sha256:{:x}", Sha256::digest(data)),
        "size": data.len(),
    })
}

fn reporter_fields(r: &Reporter) -> Result<Value> {
    let (Some(org), Some(contact), Some(domain)) = (&r.reporter_org, &r.reporter_contact, &r.reporter_domain) else {
        return Err(SinkError::Invalid(
            "a XARF report names who files it: give --reporter-org, --reporter-contact (an e-mail) and \
             --reporter-domain, set TEXTWATCH_REPORTER_ORG / _CONTACT / _DOMAIN, or write them once under \
             [reporter] in textwatch.toml (org, contact, domain; see `textwatch config`)"
                .into(),
        ));
    };
    if !contact.contains('@') {
        return Err(SinkError::Invalid(format!("--reporter-contact must be an e-mail address, not {contact:?}")));
    }
    Ok(json!({"org": org, "contact": contact, "domain": domain}))
}

fn tag(ns: &str, v: &str) -> Option<String> {
    let v: String = v
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "_+-".contains(c) { c } else { '-' })
        .collect();
    let v = v.trim_start_matches(|c: char| !c.is_ascii_alphanumeric()).to_string();
    (!v.is_empty()).then(|| format!("{ns}:{v}"))
}

/// XARF v4 `messaging`/`spam` reports with `protocol: sms`, one per
/// provider part.
pub fn xarf(dos: &Dossier, r: &Reporter) -> Result<Vec<Value>> {
    let who = reporter_fields(r)?;
    let s = &dos.d.summary;
    let mut out = Vec::new();
    for p in &dos.parts {
        let mut numbers = String::from("number,messages,first_seen,last_seen,attribution\n");
        for v in &p.senders {
            let attr = dos.attribution.get(&v.sender).map(String::as_str).unwrap_or("");
            let _ = writeln!(
                numbers,
                "{},{},{},{},\"{}\"",
                v.sender,
                v.messages,
                format_ts(v.first_seen),
                format_ts(v.last_seen),
                attr.replace('"', "\"\"")
            );
        }
        let mut samples = String::new();
        for m in &p.samples {
            let _ =
                writeln!(samples, "{}\t{}\t{}\t{}", format_ts(m.ts), m.id, m.from, m.body.replace(['\n', '\r'], " "));
        }
        let findings: Vec<Value> = s
            .findings
            .iter()
            .map(|f| json!({"rule": f.rule, "severity": f.severity, "messages": f.count, "evidence": f.example}))
            .collect();
        let mut evidence = vec![
            evidence_item(
                "text/plain",
                &format!("{} sample messages (time, id, from, body)", p.samples.len()),
                samples.as_bytes(),
            ),
            evidence_item(
                "text/csv",
                &format!("the {} numbers {} serves in this campaign", p.senders.len(), p.group.name),
                numbers.as_bytes(),
            ),
            evidence_item(
                "application/json",
                "rules broken, with evidence spans into the original messages",
                serde_json::to_string_pretty(&findings)?.as_bytes(),
            ),
        ];
        evidence.retain(|e| e["size"] != 0);
        let mut tags: Vec<String> = Vec::new();
        tags.extend(tag("campaign", &s.id));
        if let Some(c) = &s.category {
            tags.extend(tag("category", c));
        }
        if let Some(dec) = &s.decision {
            tags.extend(tag("action", dec.action.as_str()));
        }
        for f in &s.findings {
            tags.extend(tag("rule", &f.rule));
        }
        for v in &p.senders {
            if tags.len() >= 20 {
                break;
            }
            tags.extend(tag("number", &v.sender));
        }
        tags.truncate(20);
        let rules: Vec<String> =
            s.findings.iter().map(|f| format!("{} ({:?})", f.rule, f.severity).to_lowercase()).collect();
        let mut description = format!(
            "Bulk SMS campaign {}: {} messages from {} numbers served by {} between {} and {}. Rules broken: {}. Template: \"{}\"",
            s.id,
            p.messages,
            p.senders.len(),
            p.group.name,
            format_ts(p.first_seen),
            format_ts(p.last_seen),
            if rules.is_empty() { "none".into() } else { rules.join(", ") },
            s.template
        );
        if description.chars().count() > 1000 {
            description = description.chars().take(997).collect::<String>() + "...";
        }
        let top = p.senders.first().map(|v| v.sender.clone()).unwrap_or_default();
        let mut report = json!({
            "xarf_version": "4.2.0",
            "report_id": content_uuid(&[&s.id, &p.group.name, &p.messages.to_string(), &p.last_seen.to_string()]).to_string(),
            "timestamp": format_ts(p.first_seen),
            "reporter": who,
            "sender": who,
            "source_identifier": top,
            "category": "messaging",
            "type": "spam",
            "protocol": "sms",
            "evidence_source": "content_analysis",
            "evidence": evidence,
            "confidence": f64::from(s.risk.unwrap_or(0)) / 100.0,
            "description": description,
            "tags": tags,
            "spam_indicators": {
                "suspicious_links": dos.links,
                "commercial_content": matches!(s.category.as_deref(), Some("commercial" | "scam")),
                "bulk_characteristics": s.messages >= 2,
            },
        });
        if s.recipients > 0 {
            report["recipient_count"] = json!(s.recipients);
        }
        if let Some(m) = p.samples.first() {
            report["message_id"] = json!(m.id.chars().take(200).collect::<String>());
        }
        out.push(report);
    }
    Ok(out)
}

fn stix_ts(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// STIX 2.1 bundle: an identity for the reporter, the campaign, a custom
/// `x-phone-number` observable (declared by an extension definition) per
/// sender, indicators for each number and link, and `indicates`
/// relationships to the campaign. Ids are derived from content, so the same
/// campaign gives the same bundle.
pub fn stix(dos: &Dossier, r: &Reporter) -> Value {
    let s = &dos.d.summary;
    let created = stix_ts(s.formed_at);
    let sid = |kind: &str, key: &str| format!("{kind}--{}", content_uuid(&[kind, &s.id, key]));
    let org = r.reporter_org.clone().unwrap_or_else(|| "textwatch".into());
    let identity = sid("identity", &org);
    let campaign = sid("campaign", "");
    // Fixed: the definition of textwatch's phone-number observable.
    let ext = "extension-definition--7d2d3a5e-5f2a-4a4c-9d3e-6c1b2a3f4e5d".to_string();
    let mut objects = vec![
        json!({"type": "identity", "spec_version": "2.1", "id": identity, "created": created, "modified": created,
               "name": org, "identity_class": "organization",
               "description": "The organisation that observed this campaign with textwatch."}),
    ];
    let rules: Vec<String> = s.findings.iter().map(|f| f.rule.clone()).collect();
    objects.push(json!({
        "type": "campaign", "spec_version": "2.1", "id": campaign, "created": created, "modified": created,
        "created_by_ref": identity,
        "name": format!("SMS campaign {}", s.id),
        "description": format!("{} text messages from {} senders. Template: \"{}\". Rules broken: {}.",
            s.messages, s.sender_count, s.template, if rules.is_empty() { "none".into() } else { rules.join(", ") }),
        "first_seen": stix_ts(s.first_seen), "last_seen": stix_ts(s.last_seen),
        "objective": s.category.clone().map(|c| format!("{c} messaging")).unwrap_or_else(|| "bulk messaging".into()),
    }));
    objects.push(json!({
        "type": "extension-definition", "spec_version": "2.1", "id": ext, "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z", "created_by_ref": identity, "name": "x-phone-number",
        "description": "A telephone number (E.164) as a cyber observable, the sender of text messages.",
        "schema": "https://github.com/textwatch/textwatch/blob/main/docs/reports.md#stix", "version": "1.0.0",
        "extension_types": ["new-sco"],
    }));
    let indicate = |objects: &mut Vec<Value>, name: String, description: String, pattern: String, key: &str| {
        let ind = sid("indicator", key);
        objects.push(json!({
            "type": "indicator", "spec_version": "2.1", "id": ind, "created": created, "modified": created,
            "created_by_ref": identity, "name": name, "description": description,
            "indicator_types": ["malicious-activity"], "pattern": pattern, "pattern_type": "stix",
            "valid_from": stix_ts(s.first_seen),
        }));
        objects.push(json!({
            "type": "relationship", "spec_version": "2.1", "id": sid("relationship", key), "created": created,
            "modified": created, "created_by_ref": identity, "relationship_type": "indicates",
            "source_ref": ind, "target_ref": campaign,
        }));
    };
    for v in &dos.d.sender_stats {
        let number = v.sender.replace('\'', "");
        objects.push(json!({
            "type": "x-phone-number", "spec_version": "2.1",
            "id": format!("x-phone-number--{}", content_uuid(&["x-phone-number", &number])),
            "value": number,
            "extensions": { ext.clone(): {"extension_type": "new-sco"} },
        }));
        let attr = dos.attribution.get(&v.sender).cloned().unwrap_or_default();
        indicate(
            &mut objects,
            format!("Sender {number}"),
            format!(
                "Sent {} messages of the campaign ({} .. {}); {attr}",
                v.messages,
                format_ts(v.first_seen),
                format_ts(v.last_seen)
            ),
            format!("[x-phone-number:value = '{number}']"),
            &format!("number {number}"),
        );
    }
    for l in &dos.links {
        let u = l.replace('\\', "\\\\").replace('\'', "\\'");
        indicate(
            &mut objects,
            format!("Link {l}"),
            "A link the campaign's messages carry.".into(),
            format!("[url:value = '{u}']"),
            &format!("url {l}"),
        );
    }
    json!({"type": "bundle", "id": sid("bundle", ""), "objects": objects})
}

/// A body with the first occurrence of `needle` marked.
fn highlight(body: &str, needle: &str) -> String {
    if needle.is_empty() {
        return esc(body);
    }
    match body.find(needle) {
        Some(i) => format!("{}<mark>{}</mark>{}", esc(&body[..i]), esc(needle), esc(&body[i + needle.len()..])),
        None => esc(body),
    }
}

const PALETTE: [&str; 9] =
    ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#9e9e9e"];

/// The timeline as an SVG stacked bar chart.
pub fn timeline_svg(t: &Timeline) -> String {
    let (w, h, left, bottom, top) = (760.0f64, 220.0f64, 44.0f64, 24.0f64, 8.0f64);
    let totals: Vec<u64> = (0..t.buckets).map(|b| t.series.iter().map(|s| s.1[b]).sum()).collect();
    let max = totals.iter().copied().max().unwrap_or(1).max(1) as f64;
    let bw = (w - left) / t.buckets as f64;
    let mut o = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"timeline\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"messages per {} minute(s), stacked by sender\">",
        t.width_ms / 60_000
    );
    let _ = write!(o, "<line x1=\"{left}\" y1=\"{}\" x2=\"{w}\" y2=\"{}\" stroke=\"#555\"/>", h - bottom, h - bottom);
    let _ = write!(
        o,
        "<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{}</text>",
        left - 4.0,
        top + 8.0,
        max as u64
    );
    let _ = write!(o, "<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">0</text>", left - 4.0, h - bottom);
    for b in 0..t.buckets {
        let mut y = h - bottom;
        for (i, (label, counts)) in t.series.iter().enumerate() {
            let n = counts[b];
            if n == 0 {
                continue;
            }
            let bh = n as f64 / max * (h - bottom - top);
            y -= bh;
            let _ = write!(
                o,
                "<rect class=\"bar\" x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"{}\"><title>{} {}: {n}</title></rect>",
                left + b as f64 * bw,
                y,
                (bw - 0.5).max(0.5),
                bh,
                PALETTE[i.min(PALETTE.len() - 1)],
                esc(&format_ts(t.start + b as i64 * t.width_ms)),
                esc(label)
            );
        }
    }
    let _ = write!(o, "<text x=\"{left}\" y=\"{}\" font-size=\"10\">{}</text>", h - 6.0, esc(&format_ts(t.start)));
    let end = t.start + t.buckets as i64 * t.width_ms;
    let _ = write!(
        o,
        "<text x=\"{w}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{}</text>",
        h - 6.0,
        esc(&format_ts(end))
    );
    o.push_str("</svg>");
    o
}

/// The campaign's variants and the links that made them one campaign.
fn variants_html(o: &mut String, d: &textwatch_store::CampaignDetail) {
    let num = |id: &str| {
        d.variants.iter().position(|v| v.id == id).map_or_else(|| esc(&id[..8.min(id.len())]), |i| (i + 1).to_string())
    };
    let _ = write!(
        o,
        "<section id=\"variants\"><h2>Variants ({}) and why they are one campaign</h2><table><tr><th>#</th><th>Messages</th><th>Text</th><th>Joined</th></tr>",
        d.summary.templates
    );
    for (i, v) in d.variants.iter().enumerate().take(20) {
        let joined = match &v.joined {
            Some(l) => format!("{} via variant {}: {}", esc(&l.kind), num(&l.via), esc(&l.evidence)),
            None => "formed the campaign".into(),
        };
        let _ = write!(
            o,
            "<tr class=\"variant\"><td>{}</td><td>{}</td><td>{}</td><td>{joined}</td></tr>",
            i + 1,
            v.messages,
            esc(&v.template)
        );
    }
    o.push_str("</table>");
    if !d.links.is_empty() {
        o.push_str("<h3>Links</h3><ul id=\"campaign-links\">");
        for l in &d.links {
            let _ = write!(
                o,
                "<li>variant {} joined variant {} ({}): {}</li>",
                num(&l.variant),
                num(&l.via),
                esc(&l.kind),
                esc(&l.evidence)
            );
        }
        o.push_str("</ul>");
    }
    if !d.absorbed.is_empty() {
        let _ = write!(o, "<p>Joined in (these ids resolve here): {}</p>", esc(&d.absorbed.join(", ")));
    }
    o.push_str("</section>\n");
}

/// The HTML dossier: one file, no scripts or external resources.
/// The campaign's category, and the rule that settled it when one did
/// (otherwise the classifier chose it).
fn category_text(s: &textwatch_store::CampaignSummary) -> String {
    match (&s.category, &s.category_rule) {
        (Some(c), Some(r)) => format!("{c} (settled by rule {r})"),
        (Some(c), None) => format!("{c} (classifier)"),
        (None, _) => "unknown".into(),
    }
}

pub fn html(dos: &Dossier) -> String {
    let s = &dos.d.summary;
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>textwatch dossier: campaign {id}</title>\n<style>\
body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}}\
table{{border-collapse:collapse;width:100%;margin:.5rem 0}}td,th{{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}}\
th{{background:#f4f4f4}}mark{{background:#ffe066}}.sev-critical,.sev-high{{color:#b00020;font-weight:bold}}.sev-medium{{color:#b35c00}}\
.legend span{{display:inline-block;margin-right:1rem;font-size:.85rem}}.legend i{{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem}}\
.decision{{padding:.6rem 1rem;border-left:.4rem solid #b00020;background:#fdecee}}.decision.allow{{border-color:#2ca02c;background:#eef8ee}}.decision.flag{{border-color:#b35c00;background:#fff4e5}}\
code{{background:#f4f4f4;padding:0 .2rem}}</style></head><body>\n",
        id = esc(&s.id)
    );
    let _ = write!(o, "<h1>Campaign <code id=\"campaign-id\">{}</code></h1>", esc(&s.id));
    let _ = write!(o, "<section id=\"summary\"><h2>Summary</h2><table>");
    let row = |o: &mut String, k: &str, v: String| {
        let _ = write!(o, "<tr><th>{}</th><td>{v}</td></tr>", esc(k));
    };
    row(&mut o, "Template", format!("<code>{}</code>", esc(&s.template)));
    row(&mut o, "Messages", format!("<span id=\"messages\">{}</span>", s.messages));
    row(&mut o, "Senders", format!("<span id=\"sender-count\">{}</span>", s.sender_count));
    row(&mut o, "Recipients", s.recipients.to_string());
    row(&mut o, "Variants", s.templates.to_string());
    row(&mut o, "First seen", esc(&format_ts(s.first_seen)));
    row(&mut o, "Last seen", esc(&format_ts(s.last_seen)));
    row(&mut o, "Formed", format!("{} (its second message)", esc(&format_ts(s.formed_at))));
    row(&mut o, "Category", esc(&category_text(s)));
    row(&mut o, "Risk", format!("<span id=\"risk\">{}</span> / 100", s.risk.unwrap_or(0)));
    o.push_str("</table></section>\n");

    if let Some(dec) = &s.decision {
        let _ = write!(
            o,
            "<section id=\"decision\"><h2>Policy decision</h2><p class=\"decision {a}\"><strong>{a}</strong> {scope} &mdash; rule <code>{rule}</code>: {why}</p></section>",
            a = dec.action.as_str(),
            scope = scope_word(dec.scope),
            rule = esc(&dec.rule),
            why = esc(&dec.reasons.join(", "))
        );
    }

    let _ = write!(
        o,
        "<section id=\"timeline-section\"><h2>Timeline</h2><p>Messages per {} minute(s), stacked by sender.</p>",
        dos.timeline.width_ms / 60_000
    );
    o.push_str(&timeline_svg(&dos.timeline));
    o.push_str("<div class=\"legend\">");
    for (i, (label, _)) in dos.timeline.series.iter().enumerate() {
        let _ =
            write!(o, "<span><i style=\"background:{}\"></i>{}</span>", PALETTE[i.min(PALETTE.len() - 1)], esc(label));
    }
    o.push_str("</div></section>\n");

    o.push_str("<section id=\"findings\"><h2>Rules broken</h2>");
    if s.findings.is_empty() {
        o.push_str("<p>None.</p>");
    } else {
        o.push_str("<table><tr><th>Rule</th><th>Severity</th><th>Messages</th><th>Evidence</th></tr>");
        for f in &s.findings {
            let sev = format!("{:?}", f.severity).to_lowercase();
            let ex = &f.example.excerpt;
            let context = dos
                .d
                .samples
                .iter()
                .chain(dos.parts.iter().flat_map(|p| &p.samples))
                .find(|m| !ex.is_empty() && m.body.contains(ex.as_str()));
            let mut ev = match context {
                Some(m) => highlight(&m.body, ex),
                None => format!("<mark>{}</mark>", esc(ex)),
            };
            if let Some(p) = &f.example.place {
                let _ = write!(ev, "<br>place: <strong class=\"place\">{}</strong>", esc(p));
            }
            if let Some(t) = &f.example.time {
                let _ = write!(ev, " time: <strong>{}</strong>", esc(t));
            }
            let _ = write!(
                o,
                "<tr class=\"finding\" data-rule=\"{r}\"><td><code>{r}</code></td><td class=\"sev-{sev}\">{sev}</td><td>{}</td><td>{ev}</td></tr>",
                f.count,
                r = esc(&f.rule)
            );
        }
        o.push_str("</table>");
    }
    o.push_str("</section>\n");

    variants_html(&mut o, &dos.d);

    o.push_str(&crate::followup::html_section(&dos.followups));
    o.push_str("<section id=\"providers\"><h2>Senders by provider</h2>");
    if dos.parts.is_empty() {
        o.push_str("<p>No senders.</p>");
    }
    for p in &dos.parts {
        let _ = write!(
            o,
            "<h3 class=\"provider\" data-provider=\"{n}\">{n} &mdash; {} sender(s), {} message(s)</h3><p>Source: {}{}{}</p>",
            p.senders.len(),
            p.messages,
            esc(&p.group.source),
            if p.group.holders.is_empty() { String::new() } else { format!("<br>Held by: {}", esc(&p.group.holders.join("; "))) },
            p.group.abuse_contact.as_ref().map(|c| format!("<br>Abuse desk: {}", esc(c))).unwrap_or_default(),
            n = esc(&p.group.name)
        );
        o.push_str(
            "<table><tr><th>Number</th><th>Messages</th><th>First seen</th><th>Last seen</th><th>Attribution</th></tr>",
        );
        for v in &p.senders {
            let _ = write!(
                o,
                "<tr class=\"sender\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&v.sender),
                v.messages,
                esc(&format_ts(v.first_seen)),
                esc(&format_ts(v.last_seen)),
                esc(dos.attribution.get(&v.sender).map(String::as_str).unwrap_or(""))
            );
        }
        o.push_str("</table>");
    }
    o.push_str("</section>\n");

    o.push_str(
        "<section id=\"samples\"><h2>Sample messages</h2><table><tr><th>Time</th><th>From</th><th>Message</th></tr>",
    );
    let mut seen = std::collections::HashSet::new();
    for m in dos.d.samples.iter().chain(dos.parts.iter().flat_map(|p| &p.samples)) {
        if !seen.insert(m.id.clone()) {
            continue;
        }
        let _ = write!(
            o,
            "<tr class=\"sample\"><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&format_ts(m.ts)),
            esc(&m.from),
            esc(&m.body)
        );
    }
    o.push_str("</table></section>\n");
    if !dos.links.is_empty() {
        o.push_str("<section id=\"links\"><h2>Links</h2><ul>");
        for l in &dos.links {
            let _ = write!(o, "<li><code>{}</code></li>", esc(l));
        }
        o.push_str("</ul></section>\n");
    }
    let _ = write!(o, "<footer><p>Made by textwatch {} from its database; every figure is a count of stored messages.</p></footer>\n</body></html>\n", env!("CARGO_PKG_VERSION"));
    o
}

/// The dossier as Markdown.
pub fn markdown(dos: &Dossier) -> String {
    let s = &dos.d.summary;
    let mut o = String::new();
    let _ = writeln!(o, "# Campaign {}\n", s.id);
    let _ = writeln!(o, "> {}\n", md_cell(&s.template));
    let _ = writeln!(o, "| | |\n|---|---|");
    let _ = writeln!(
        o,
        "| Messages | {} |\n| Senders | {} |\n| Recipients | {} |",
        s.messages, s.sender_count, s.recipients
    );
    let _ = writeln!(
        o,
        "| First seen | {} |\n| Last seen | {} |\n| Formed | {} |",
        format_ts(s.first_seen),
        format_ts(s.last_seen),
        format_ts(s.formed_at)
    );
    let _ = writeln!(o, "| Category | {} |\n| Risk | {} / 100 |", category_text(s), s.risk.unwrap_or(0));
    if let Some(d) = &s.decision {
        let _ = writeln!(
            o,
            "\n**Policy decision:** {} {} (rule `{}`: {})",
            d.action.as_str(),
            scope_word(d.scope),
            d.rule,
            md_cell(&d.reasons.join(", "))
        );
    }
    let _ = writeln!(o, "\n## Rules broken\n");
    if s.findings.is_empty() {
        let _ = writeln!(o, "None.");
    } else {
        let _ = writeln!(o, "| Rule | Severity | Messages | Evidence |\n|---|---|---|---|");
        for f in &s.findings {
            let mut ev = format!("\"{}\"", md_cell(&f.example.excerpt));
            if let Some(p) = &f.example.place {
                let _ = write!(ev, " (place: {})", md_cell(p));
            }
            let _ = writeln!(o, "| `{}` | {:?} | {} | {} |", f.rule, f.severity, f.count, ev);
        }
    }
    let d = &dos.d;
    let num = |id: &str| {
        d.variants
            .iter()
            .position(|v| v.id == id)
            .map_or_else(|| id[..8.min(id.len())].to_string(), |i| (i + 1).to_string())
    };
    let _ = writeln!(o, "\n## Variants ({}) and why they are one campaign\n", s.templates);
    let _ = writeln!(o, "| # | Messages | Text | Joined |\n|---|---|---|---|");
    for (i, v) in d.variants.iter().enumerate().take(20) {
        let joined = match &v.joined {
            Some(l) => format!("{} via variant {}: {}", l.kind, num(&l.via), md_cell(&l.evidence)),
            None => "formed the campaign".into(),
        };
        let _ = writeln!(o, "| {} | {} | {} | {joined} |", i + 1, v.messages, md_cell(&v.template));
    }
    for l in &d.links {
        let _ = writeln!(
            o,
            "- variant {} joined variant {} ({}): {}",
            num(&l.variant),
            num(&l.via),
            l.kind,
            md_cell(&l.evidence)
        );
    }
    o.push_str(&crate::followup::markdown_section(&dos.followups));
    let _ = writeln!(o, "\n## Senders by provider\n");
    for p in &dos.parts {
        // Provider names, sources and contacts come from imported files.
        let _ = writeln!(o, "### {} ({} senders, {} messages)\n", md_cell(&p.group.name), p.senders.len(), p.messages);
        let _ = writeln!(o, "Source: {}", md_cell(&p.group.source));
        for h in &p.group.holders {
            let _ = writeln!(o, "Held by: {}", md_cell(h));
        }
        if let Some(c) = &p.group.abuse_contact {
            let _ = writeln!(o, "Abuse desk: {}", md_cell(c));
        }
        let _ = writeln!(o, "\n| Number | Messages | First seen | Last seen |\n|---|---|---|---|");
        for v in &p.senders {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                md_cell(&v.sender),
                v.messages,
                format_ts(v.first_seen),
                format_ts(v.last_seen)
            );
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(o, "## Timeline (messages per {} minute(s))\n", dos.timeline.width_ms / 60_000);
    let totals: Vec<u64> =
        (0..dos.timeline.buckets).map(|b| dos.timeline.series.iter().map(|s| s.1[b]).sum()).collect();
    let max = totals.iter().copied().max().unwrap_or(1).max(1);
    let _ = writeln!(o, "```");
    for (b, n) in totals.iter().enumerate() {
        if *n == 0 {
            continue;
        }
        let _ = writeln!(
            o,
            "{}  {:>6}  {}",
            format_ts(dos.timeline.start + b as i64 * dos.timeline.width_ms),
            n,
            "#".repeat(((*n * 40).div_ceil(max)) as usize)
        );
    }
    let _ = writeln!(o, "```\n\n## Sample messages\n");
    for m in dos.d.samples.iter().chain(dos.parts.iter().flat_map(|p| &p.samples)).take(20) {
        let _ = writeln!(o, "- {} {}: {}", format_ts(m.ts), md_cell(&m.from), md_cell(&m.body));
    }
    o
}
