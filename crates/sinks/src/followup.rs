//! What happened after a takedown report: for each reported number, the
//! texts it sent after the report and when it went quiet; numbers that
//! joined the campaign after the report (the operator rotating); and the
//! report's state. Computed from the stored messages every time, so it is
//! current and every figure traces back to messages.
//!
//! States, for a report:
//! - `ignored`: a reported number still sends, `ignore_after` (24 h) or
//!   more after the report;
//! - `rotated`: every reported number is quiet, and the campaign carried
//!   on with numbers the report did not name: they still send, or sent for
//!   a whole `quiet_after` past the last reported text (the operator moved
//!   on, rather than a few unnamed numbers finishing the same burst);
//! - `quiet`: every reported number is quiet and nothing took their place;
//! - `open`: none of these yet.
//!
//! A number is quiet when it has sent nothing for the campaign for
//! `quiet_after` (6 h). "Now" is the newest message stored, so that an
//! archive or a simulation replays as it happened; give `now` to measure
//! against the clock instead.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use textwatch_store::reports::SentReport;
use textwatch_store::Store;

use crate::Result;

/// Thresholds of the states.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub quiet_after_ms: i64,
    pub ignore_after_ms: i64,
    /// Measure against this time instead of the newest message.
    pub now: Option<i64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { quiet_after_ms: 6 * 3_600_000, ignore_after_ms: 24 * 3_600_000, now: None }
    }
}

/// One reported number after the report.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct NumberFollowUp {
    pub number: String,
    /// Texts it sent for the campaign before and after the report.
    pub before: u64,
    pub after: u64,
    /// Its last text for the campaign.
    #[serde(with = "textwatch_store::time::rfc3339_opt")]
    pub last_seen: Option<i64>,
    /// `quiet` or `open`.
    pub state: &'static str,
    /// Seconds from the report to its last text (0 when it sent nothing
    /// after), once quiet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quiet_after_s: Option<i64>,
}

/// A number that sent for the campaign after the report without being
/// named in it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RotatedNumber {
    pub number: String,
    #[serde(with = "textwatch_store::time::rfc3339")]
    pub first_seen: i64,
    #[serde(with = "textwatch_store::time::rfc3339")]
    pub last_seen: i64,
    pub messages: u64,
}

/// A report and what followed it.
#[derive(Clone, Debug, Serialize)]
pub struct FollowUp {
    #[serde(flatten)]
    pub report: SentReport,
    /// The campaign now (a campaign merged since resolves to the one it
    /// joined).
    pub campaign_now: String,
    /// `open`, `quiet`, `rotated` or `ignored`.
    pub state: &'static str,
    pub numbers: Vec<NumberFollowUp>,
    /// New numbers that kept sending for the campaign after every reported
    /// number went quiet: the operator moved on.
    pub rotated: Vec<RotatedNumber>,
    /// New numbers that sent for the campaign after the report while the
    /// reported ones were still active (the report did not name them).
    pub unreported: Vec<RotatedNumber>,
    /// The campaign's texts before and after the report.
    pub messages_before: u64,
    pub messages_after: u64,
    /// What "now" was.
    #[serde(with = "textwatch_store::time::rfc3339")]
    pub measured_at: i64,
    /// Texts per hour from 24 h before the report to now (at most 15 days):
    /// (hour start ms, reported numbers, other numbers).
    #[serde(skip)]
    pub hourly: Vec<(i64, u64, u64)>,
}

const HOUR: i64 = 3_600_000;

/// The follow-up of one report.
pub fn follow_up(store: &dyn Store, r: &SentReport, s: &Settings) -> Result<FollowUp> {
    let now = match s.now {
        Some(t) => t,
        None => store.newest_message_ts()?.unwrap_or(r.sent_at).max(r.sent_at),
    };
    let campaign_now = store.resolve_campaign(&r.campaign)?.unwrap_or_else(|| r.campaign.clone());
    let named: HashSet<&str> = r.numbers.iter().map(String::as_str).collect();
    // Per number: (before, after, last, first after).
    let mut per: BTreeMap<String, (u64, u64, i64, Option<i64>)> = BTreeMap::new();
    let (mut before, mut after) = (0u64, 0u64);
    let chart_start = (r.sent_at - 24 * HOUR).div_euclid(HOUR) * HOUR;
    let chart_hours = (((now - chart_start) / HOUR) + 1).clamp(1, 24 * 15) as usize;
    let mut hourly: Vec<(i64, u64, u64)> = (0..chart_hours).map(|h| (chart_start + h as i64 * HOUR, 0, 0)).collect();
    store.campaign_stream(&campaign_now, &mut |ts, _, sender| {
        let e = per.entry(sender.to_string()).or_insert((0, 0, i64::MIN, None));
        if ts <= r.sent_at {
            e.0 += 1;
            before += 1;
        } else {
            e.1 += 1;
            after += 1;
            e.3.get_or_insert(ts);
        }
        e.2 = e.2.max(ts);
        if ts >= chart_start {
            let h = ((ts - chart_start) / HOUR) as usize;
            if let Some(b) = hourly.get_mut(h) {
                if named.contains(sender) {
                    b.1 += 1;
                } else {
                    b.2 += 1;
                }
            }
        }
        true
    })?;
    let numbers: Vec<NumberFollowUp> = r
        .numbers
        .iter()
        .map(|n| {
            let (b, a, last, _) = per.get(n).copied().unwrap_or((0, 0, i64::MIN, None));
            let last_seen = (last != i64::MIN).then_some(last);
            let quiet = last_seen.is_none_or(|l| now - l >= s.quiet_after_ms);
            NumberFollowUp {
                number: n.clone(),
                before: b,
                after: a,
                last_seen,
                state: if quiet { "quiet" } else { "open" },
                quiet_after_s: quiet.then(|| last_seen.map_or(0, |l| ((l - r.sent_at).max(0)) / 1000)),
            }
        })
        .collect();
    let all_quiet = numbers.iter().all(|n| n.state == "quiet");
    // When the last reported number fell silent (the report time when none
    // sent after it).
    let silent_from = numbers.iter().filter_map(|n| n.last_seen).max().unwrap_or(r.sent_at).max(r.sent_at);
    // Numbers the report did not name that send for the campaign after it:
    // rotation when the campaign carried on with them once every reported
    // number was quiet (still sending, or for a whole quiet period after
    // the last reported text), otherwise numbers the report missed.
    let (mut rotated, mut unreported) = (Vec::new(), Vec::new());
    for (n, (b, a, last, first)) in &per {
        if named.contains(n.as_str()) || *b > 0 || *a == 0 {
            continue;
        }
        let x = RotatedNumber { number: n.clone(), first_seen: first.unwrap_or(*last), last_seen: *last, messages: *a };
        // Still sending, or kept sending a whole quiet period past the
        // reported numbers: not the tail of the same burst.
        let carried_on =
            *last > silent_from && (*last - silent_from >= s.quiet_after_ms || now - *last < s.quiet_after_ms);
        if all_quiet && carried_on {
            rotated.push(x);
        } else {
            unreported.push(x);
        }
    }
    let state = if !all_quiet && now - r.sent_at >= s.ignore_after_ms {
        "ignored"
    } else if all_quiet && !rotated.is_empty() {
        "rotated"
    } else if all_quiet {
        "quiet"
    } else {
        "open"
    };
    Ok(FollowUp {
        report: r.clone(),
        campaign_now,
        state,
        numbers,
        rotated,
        unreported,
        messages_before: before,
        messages_after: after,
        measured_at: now,
        hourly,
    })
}

/// Every report's follow-up, oldest first.
pub fn follow_ups(store: &dyn Store, s: &Settings) -> Result<Vec<FollowUp>> {
    store.sent_reports()?.iter().map(|r| follow_up(store, r, s)).collect()
}

/// Per provider: reports sent, their states, the median time for a
/// reported number to go quiet, and the share of reports ignored.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ProviderRecord {
    pub provider: String,
    pub reports: u64,
    pub quiet: u64,
    pub rotated: u64,
    pub ignored: u64,
    pub open: u64,
    /// Median over reported numbers that went quiet, seconds.
    pub median_quiet_s: Option<i64>,
    /// Ignored reports over all reports.
    pub ignored_share: f64,
    /// Answers recorded.
    pub answered: u64,
}

pub fn by_provider(fs: &[FollowUp]) -> Vec<ProviderRecord> {
    let mut m: BTreeMap<String, (ProviderRecord, Vec<i64>)> = BTreeMap::new();
    for f in fs {
        let (p, times) = m.entry(f.report.provider.clone()).or_insert_with(|| {
            (
                ProviderRecord {
                    provider: f.report.provider.clone(),
                    reports: 0,
                    quiet: 0,
                    rotated: 0,
                    ignored: 0,
                    open: 0,
                    median_quiet_s: None,
                    ignored_share: 0.0,
                    answered: 0,
                },
                Vec::new(),
            )
        });
        p.reports += 1;
        match f.state {
            "quiet" => p.quiet += 1,
            "rotated" => p.rotated += 1,
            "ignored" => p.ignored += 1,
            _ => p.open += 1,
        }
        p.answered += f.report.answer.is_some() as u64;
        times.extend(f.numbers.iter().filter_map(|n| n.quiet_after_s));
    }
    m.into_values()
        .map(|(mut p, mut t)| {
            t.sort_unstable();
            p.median_quiet_s = (!t.is_empty()).then(|| t[t.len() / 2]);
            p.ignored_share = p.ignored as f64 / p.reports.max(1) as f64;
            p
        })
        .collect()
}

/// A duration for people: `45s`, `12m`, `2h05m`, `3d04h`.
pub fn human(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// The follow-ups of the reports on one campaign (by its current id;
/// reports on campaigns merged into it count).
pub fn for_campaign(store: &dyn Store, campaign: &str, s: &Settings) -> Result<Vec<FollowUp>> {
    let mut out = Vec::new();
    for r in store.sent_reports()? {
        let now_id = store.resolve_campaign(&r.campaign)?.unwrap_or_else(|| r.campaign.clone());
        if now_id == campaign {
            out.push(follow_up(store, &r, s)?);
        }
    }
    Ok(out)
}

/// Texts per hour around a report as SVG bars: the reported numbers
/// (red) and the others (grey), with the report as a vertical line.
pub fn chart_svg(f: &FollowUp) -> String {
    use std::fmt::Write as _;
    let (w, h, pad) = (720.0f64, 160.0f64, 24.0f64);
    let n = f.hourly.len().max(1) as f64;
    let max = f.hourly.iter().map(|b| b.1 + b.2).max().unwrap_or(0).max(1) as f64;
    let bw = (w - 2.0 * pad) / n;
    let mut o = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"followup-chart\" viewBox=\"0 0 {w} {h}\" width=\"100%\" role=\"img\" \
         aria-label=\"texts per hour before and after report {}\">",
        f.report.id
    );
    for (i, (_, reported, other)) in f.hourly.iter().enumerate() {
        let x = pad + i as f64 * bw;
        let hr = (*reported as f64 / max) * (h - 2.0 * pad);
        let ho = (*other as f64 / max) * (h - 2.0 * pad);
        let base = h - pad;
        if *reported > 0 {
            let _ = write!(
                o,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{hr:.1}\" fill=\"#d62728\"/>",
                base - hr,
                bw.max(1.0)
            );
        }
        if *other > 0 {
            let _ = write!(
                o,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{ho:.1}\" fill=\"#9e9e9e\"/>",
                base - hr - ho,
                bw.max(1.0)
            );
        }
    }
    if let Some(start) = f.hourly.first().map(|b| b.0) {
        let x = pad + (f.report.sent_at - start) as f64 / HOUR as f64 * bw;
        let _ = write!(
            o,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#222\" stroke-dasharray=\"4 3\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">report</text>",
            pad / 2.0,
            h - pad,
            x + 3.0,
            pad - 4.0
        );
    }
    let _ = write!(
        o,
        "<line x1=\"{pad}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#999\"/></svg>",
        w - pad,
        h - pad,
        h - pad
    );
    o
}

/// The dossier's follow-up section, HTML.
pub fn html_section(fs: &[FollowUp]) -> String {
    use crate::markup::esc;
    use std::fmt::Write as _;
    if fs.is_empty() {
        return String::new();
    }
    let mut o = String::from("<section id=\"follow-up\"><h2>Follow-up of takedown reports</h2>");
    for f in fs {
        let r = &f.report;
        let quiet = f.numbers.iter().filter(|n| n.state == "quiet").count();
        let _ = write!(
            o,
            "<h3>Report {} to {} &mdash; <span class=\"state\">{}</span></h3><p>Sent {} ({}{}); {} of {} reported numbers quiet; \
             {} texts before the report, {} after (as of {}).{}</p>",
            r.id,
            esc(&r.provider),
            f.state,
            esc(&textwatch_store::time::format_ts(r.sent_at)),
            esc(&r.via),
            r.sent_to.as_deref().map(|t| format!(" to {}", esc(t))).unwrap_or_default(),
            quiet,
            f.numbers.len(),
            f.messages_before,
            f.messages_after,
            esc(&textwatch_store::time::format_ts(f.measured_at)),
            r.answer.as_deref().map(|a| format!(" Provider's answer: &ldquo;{}&rdquo;", esc(a))).unwrap_or_default(),
        );
        o.push_str(&chart_svg(f));
        o.push_str("<p class=\"legend\"><span><i style=\"background:#d62728\"></i>reported numbers</span><span><i style=\"background:#9e9e9e\"></i>other numbers</span></p>");
        o.push_str("<table><tr><th>Number</th><th>Before</th><th>After</th><th>Last text</th><th>State</th><th>Quiet after</th></tr>");
        for n in &f.numbers {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&n.number),
                n.before,
                n.after,
                n.last_seen.map(|t| esc(&textwatch_store::time::format_ts(t))).unwrap_or_default(),
                n.state,
                n.quiet_after_s.map(human).unwrap_or_default()
            );
        }
        o.push_str("</table>");
        for (list, title) in
            [(&f.rotated, "Rotated to after the report"), (&f.unreported, "Not in the report, sent after it")]
        {
            if list.is_empty() {
                continue;
            }
            let _ = write!(
                o,
                "<p>{title}:</p><table><tr><th>Number</th><th>First text</th><th>Last text</th><th>Texts</th></tr>"
            );
            for n in list {
                let _ = write!(
                    o,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&n.number),
                    esc(&textwatch_store::time::format_ts(n.first_seen)),
                    esc(&textwatch_store::time::format_ts(n.last_seen)),
                    n.messages
                );
            }
            o.push_str("</table>");
        }
    }
    o.push_str("</section>\n");
    o
}

/// The dossier's follow-up section, Markdown.
pub fn markdown_section(fs: &[FollowUp]) -> String {
    use crate::markup::md_cell;
    use std::fmt::Write as _;
    if fs.is_empty() {
        return String::new();
    }
    let mut o = String::from("\n## Follow-up of takedown reports\n\n");
    for f in fs {
        let r = &f.report;
        let quiet = f.numbers.iter().filter(|n| n.state == "quiet").count();
        let _ = writeln!(
            o,
            "### Report {} to {}: {}\n\nSent {} ({}); {} of {} reported numbers quiet; {} texts before, {} after (as of {}).{}\n",
            r.id,
            md_cell(&r.provider),
            f.state,
            textwatch_store::time::format_ts(r.sent_at),
            md_cell(&r.via),
            quiet,
            f.numbers.len(),
            f.messages_before,
            f.messages_after,
            textwatch_store::time::format_ts(f.measured_at),
            r.answer.as_deref().map(|a| format!(" Provider's answer: \"{}\"", md_cell(a))).unwrap_or_default(),
        );
        let _ =
            writeln!(o, "| Number | Before | After | Last text | State | Quiet after |\n|---|---:|---:|---|---|---:|");
        for n in &f.numbers {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} |",
                md_cell(&n.number),
                n.before,
                n.after,
                n.last_seen.map(textwatch_store::time::format_ts).unwrap_or_default(),
                n.state,
                n.quiet_after_s.map(human).unwrap_or_default()
            );
        }
        if !f.rotated.is_empty() {
            let _ = writeln!(
                o,
                "\nRotated to after the report:\n\n| Number | First text | Last text | Texts |\n|---|---|---|---:|"
            );
            for n in &f.rotated {
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} |",
                    md_cell(&n.number),
                    textwatch_store::time::format_ts(n.first_seen),
                    textwatch_store::time::format_ts(n.last_seen),
                    n.messages
                );
            }
        }
        // Before and after, per hour, as text.
        let before: u64 = f.hourly.iter().filter(|b| b.0 < r.sent_at).map(|b| b.1 + b.2).sum();
        let after: u64 = f.hourly.iter().filter(|b| b.0 >= r.sent_at).map(|b| b.1 + b.2).sum();
        let _ = writeln!(o, "\nTexts in the 24 hours before the report: {before}; since: {after}.\n");
    }
    o
}
