//! The read-only commands: `campaigns`, `campaign`, `messages`, `check`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use textwatch_engine::features::TemplateFeatures;
use textwatch_engine::{Engine, EngineConfig, Message, Peek, Scratch};
use textwatch_store::sqlite::SqliteStore;
use textwatch_store::time::format_ts;
use textwatch_store::{CampaignQuery, Location};

use crate::context::ContextArgs;
use crate::output::campaign_table;
use crate::output::Format;
use crate::output::{bar, excerpt, open, open_at, printable, short_time, thousands, SafeText, Table};
use textwatch_engine::policy::Decision;
use textwatch_sinks::enrich::Enricher;
use textwatch_sinks::views::{
    category_of, enriched_campaign, enriched_campaigns, message_decision, peek, quiet_finding, scope_word,
};

use textwatch_pipeline::setup::{builtin_model, load_rules};

#[derive(clap::Args, Debug)]
pub struct CampaignsArgs {
    /// table for people; json for tools (the documented contract).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Most campaigns listed.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Only campaigns with at least this many messages.
    #[arg(long, default_value_t = 2, value_name = "N")]
    min_messages: u64,
    /// Only campaigns of this category: a category (`political`),
    /// `category/subcategory` (`civic/election-office`) or a subcategory
    /// alone (`fundraising`); see docs/rules.md#categories.
    #[arg(long, value_name = "CATEGORY")]
    category: Option<String>,
    #[command(flatten)]
    ctx: ContextArgs,
}

pub fn campaigns(db: &Location, args: CampaignsArgs) -> Result<()> {
    let store = open_at(db)?;
    let store = &*store;
    let ctx = Enricher::load(store, &args.ctx.files())?;
    if let Some(c) = args.category.as_deref().filter(|c| !textwatch_engine::taxonomy::is_known(c)) {
        bail!(
            "unknown category {c:?}: give a category ({}), category/subcategory or a subcategory (docs/rules.md#categories)",
            textwatch_engine::taxonomy::CATEGORIES.join(", ")
        );
    }
    let q = CampaignQuery {
        limit: args.limit,
        min_messages: args.min_messages,
        category: args.category.clone(),
        ..Default::default()
    };
    let list = enriched_campaigns(store, &ctx, &q)?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &list)?;
            writeln!(out)?;
        }
        Format::Jsonl => {
            for c in &list {
                serde_json::to_writer(&mut out, c)?;
                writeln!(out)?;
            }
        }
        Format::Table => {
            if list.is_empty() && args.category.is_some() {
                writeln!(out, "no campaigns of category {}", args.category.as_deref().unwrap_or(""))?;
            } else if list.is_empty() {
                writeln!(out, "no campaigns yet (a campaign is two or more copies of one text)")?;
            } else {
                out.write_all(campaign_table(&list).as_bytes())?;
            }
        }
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct CampaignArgs {
    /// Campaign id, or a unique prefix of it.
    #[arg(required = true)]
    id: Option<String>,
    #[command(subcommand)]
    pub edit: Option<crate::edit::CampaignEdit>,
    /// table for people, json for tools.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Sample messages shown.
    #[arg(long, default_value_t = 5, value_name = "N")]
    samples: usize,
    #[command(flatten)]
    ctx: ContextArgs,
}

pub fn campaign(db: &Location, args: CampaignArgs) -> Result<ExitCode> {
    if let Some(edit) = args.edit {
        return crate::edit::run(db, edit);
    }
    let id = args.id.unwrap_or_default();
    let store = open_at(db)?;
    let store = &*store;
    let ctx = Enricher::load(store, &args.ctx.files())?;
    let Some(d) = enriched_campaign(store, &ctx, &id, args.samples)? else {
        crate::output::report(
            crate::output::Level::Error,
            &format!("no campaign {id:?}; `textwatch campaigns` lists them"),
        );
        return Ok(ExitCode::FAILURE);
    };
    let mut out = std::io::stdout().lock();
    if args.format != Format::Table {
        serde_json::to_writer_pretty(&mut out, &d)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = SafeText(out);
    let s = &d.summary;
    writeln!(out, "campaign {}", s.id)?;
    writeln!(out, "  template    {}", s.template)?;
    writeln!(
        out,
        "  messages    {} from {} sender{} to {} recipient{}",
        thousands(s.messages),
        thousands(s.sender_count),
        if s.sender_count == 1 { "" } else { "s" },
        thousands(s.recipients),
        if s.recipients == 1 { "" } else { "s" }
    )?;
    writeln!(out, "  seen        {} .. {}", format_ts(s.first_seen), format_ts(s.last_seen))?;
    writeln!(out, "  formed      {} (at its second message)", format_ts(s.formed_at))?;
    writeln!(out, "  opt-out     {:.0}% of messages carry opt-out language", s.features.optout * 100.0)?;
    writeln!(out, "  sender id   {:.0}% of messages identify their sender", s.features.sender_id * 100.0)?;
    let category = match (&s.category, &s.subcategory) {
        (Some(c), Some(sub)) => format!("{c} / {sub}"),
        (Some(c), None) => c.clone(),
        _ => "unknown".into(),
    };
    let settled = s.category_rule.as_ref().map(|r| format!(" (settled by rule {r})")).unwrap_or_default();
    writeln!(out, "  category    {category}{settled}")?;
    writeln!(out, "  risk        {} / 100", s.risk.unwrap_or(0))?;
    if let Some(dec) = &s.decision {
        writeln!(
            out,
            "  action      {} {} (policy rule {}: {})",
            dec.action.as_str(),
            scope_word(dec.scope),
            dec.rule,
            dec.reasons.join(", ")
        )?;
    }

    writeln!(out, "\nfindings ({}):", s.findings.len())?;
    if s.findings.is_empty() {
        writeln!(out, "  none")?;
    }
    for f in &s.findings {
        let sev =
            serde_json::to_value(f.severity).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        writeln!(
            out,
            "  {:<18} {:<8} {:>9} messages  \"{}\"",
            f.rule,
            sev,
            thousands(f.count),
            excerpt(&f.example.excerpt, 70)
        )?;
        if let Some(p) = &f.example.place {
            writeln!(
                out,
                "  {:<18} place: {p}{}",
                "",
                f.example.time.as_ref().map(|t| format!("  time: {t}")).unwrap_or_default()
            )?;
        }
    }

    writeln!(out, "\nvariants ({}):", thousands(s.templates))?;
    let number = |id: &str| {
        d.variants
            .iter()
            .position(|v| v.id == id)
            .map_or_else(|| id[..8.min(id.len())].to_string(), |i| format!("{}", i + 1))
    };
    for (i, v) in d.variants.iter().enumerate().take(12) {
        writeln!(out, "  {:>3}  {:>9}  {}", i + 1, thousands(v.messages), excerpt(&v.template, 86))?;
        if let Some(l) = v.joined.as_ref().filter(|l| l.kind != "near-duplicate") {
            writeln!(out, "  {:>3}  {:>9}  joined variant {}: {}", "", "", number(&l.via), l.evidence)?;
        }
    }
    if s.templates > 12 {
        writeln!(
            out,
            "  ... and {} more ({} listed by --format json, the largest, with how each joined)",
            thousands(s.templates - 12),
            d.variants.len()
        )?;
    }
    if !d.links.is_empty() {
        writeln!(out, "\nlinks ({}): why these texts are one campaign", d.links.len())?;
        for l in d.links.iter().take(15) {
            writeln!(out, "  variant {} -> {}  {:<8}  {}", number(&l.variant), number(&l.via), l.kind, l.evidence)?;
        }
        if d.links.len() > 15 {
            writeln!(out, "  ... and {} more (--format json)", d.links.len() - 15)?;
        }
    }
    if !d.absorbed.is_empty() {
        writeln!(out, "  joined in: {} (these ids resolve here)", d.absorbed.join(", "))?;
    }

    writeln!(out, "\nproviders:")?;
    if ctx.dir.is_empty() {
        writeln!(out, "  no number data imported (`textwatch numbers import --help`)")?;
    }
    for p in &s.providers {
        writeln!(
            out,
            "  {:<24} {:>5} sender{}  source: {}{}",
            p.name,
            p.senders.len(),
            if p.senders.len() == 1 { " " } else { "s" },
            p.source,
            p.abuse_contact.as_ref().map(|c| format!("  abuse: {c}")).unwrap_or_default()
        )?;
        for h in &p.holders {
            writeln!(out, "      held by {h}")?;
        }
    }

    writeln!(out, "\nsenders ({}):", thousands(s.sender_count))?;
    let mut t = Table::new(&[("SENDER", false), ("MESSAGES", true), ("FIRST SEEN", false), ("LAST SEEN", false)]);
    for sv in d.sender_stats.iter().take(25) {
        t.row(vec![sv.sender.clone(), thousands(sv.messages), short_time(sv.first_seen), short_time(sv.last_seen)]);
    }
    for line in t.render().lines() {
        writeln!(out, "  {line}")?;
    }
    if d.sender_stats.len() > 25 {
        writeln!(out, "  ... and {} more (--format json lists all)", d.sender_stats.len() - 25)?;
    }

    writeln!(out, "\ntimeline:")?;
    let rows = timeline_rows(&d.timeline);
    let max = rows.iter().map(|r| r.1).max().unwrap_or(1);
    for (label, n) in rows {
        writeln!(out, "  {label}  {:>9}  {}", thousands(n), bar(n, max, 40))?;
    }

    writeln!(out, "\nsample messages:")?;
    for m in &d.samples {
        writeln!(out, "  {}  {}  {}", short_time(m.ts), m.from, excerpt(&m.body, 100))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Per-minute counts regrouped into at most ~24 rows of equal width.
fn timeline_rows(minutes: &[textwatch_store::views::MinuteView]) -> Vec<(String, u64)> {
    let (Some(first), Some(last)) = (minutes.first(), minutes.last()) else { return Vec::new() };
    let span_min = (last.minute - first.minute) / 60_000 + 1;
    let steps = [1i64, 5, 15, 60, 360, 1440, 10080];
    let step = steps.iter().copied().find(|s| span_min / s <= 24).unwrap_or(10080);
    let start = first.minute - first.minute.rem_euclid(step * 60_000);
    let mut rows: Vec<(i64, u64)> = Vec::new();
    for m in minutes {
        let b = start + (m.minute - start) / (step * 60_000) * step * 60_000;
        match rows.last_mut() {
            Some(r) if r.0 == b => r.1 += m.messages,
            _ => rows.push((b, m.messages)),
        }
    }
    rows.into_iter().map(|(b, n)| (short_time(b), n)).collect()
}

#[derive(clap::Args, Debug)]
pub struct MessagesArgs {
    /// Only this campaign's messages (id or unique prefix).
    #[arg(long, value_name = "ID")]
    campaign: Option<String>,
    /// jsonl (one object per line) for tools, table for people.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    format: Format,
    /// Most messages written.
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
}

pub fn messages(db: &Location, args: MessagesArgs) -> Result<ExitCode> {
    let store = open_at(db)?;
    if let Some(id) = &args.campaign {
        if store.resolve_campaign(id)?.is_none() {
            crate::output::report(
                crate::output::Level::Error,
                &format!("no campaign {id:?}; `textwatch campaigns` lists them"),
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    // Every format streams: a campaign of millions of messages is written
    // as it is read. The table has fixed column widths for that reason (a
    // longer sender pushes its row, not the whole table).
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut n = 0u64;
    let limit = args.limit.unwrap_or(u64::MAX);
    let mut err: Option<anyhow::Error> = None;
    match args.format {
        Format::Json => out.write_all(b"[")?,
        Format::Table => writeln!(out, "{:<16}  {:<16}  {:<16}  BODY", "TIME", "FROM", "CAMPAIGN")?,
        Format::Jsonl => {}
    }
    store.messages(args.campaign.as_deref(), &mut |m| {
        if n >= limit {
            return false;
        }
        n += 1;
        let r = match args.format {
            Format::Table => writeln!(
                out,
                "{:<16}  {:<16}  {:<16}  {}",
                short_time(m.ts),
                printable(&m.from, false),
                m.campaign.as_deref().unwrap_or("-"),
                excerpt(&m.body, 70)
            )
            .map_err(anyhow::Error::from),
            Format::Json => out
                .write_all(if n == 1 { b"\n" } else { b",\n" })
                .map_err(anyhow::Error::from)
                .and_then(|()| Ok(serde_json::to_writer_pretty(&mut out, &m)?)),
            Format::Jsonl => serde_json::to_writer(&mut out, &m)
                .map_err(anyhow::Error::from)
                .and_then(|()| Ok(out.write_all(b"\n")?)),
        };
        match r {
            Ok(()) => true,
            Err(e) => {
                err = Some(e);
                false
            }
        }
    })?;
    if let Some(e) = err {
        return Err(e);
    }
    if args.format == Format::Json {
        out.write_all(if n == 0 { b"]\n" } else { b"\n]\n" })?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Sender: E.164 number, short code or alphanumeric ID.
    #[arg(long, required_unless_present = "input")]
    from: Option<String>,
    /// The message text.
    #[arg(long, required_unless_present = "input")]
    body: Option<String>,
    /// Check many messages instead: a file in the scan format (JSONL, CSV,
    /// gzip; `-` for standard input). Writes one JSON verdict per line:
    /// id, action, risk, category, findings, campaign.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["from", "body"])]
    input: Option<String>,
    /// Recipient, if known.
    #[arg(long)]
    to: Option<String>,
    /// Send time, RFC 3339 or epoch seconds (default: now).
    #[arg(long)]
    ts: Option<String>,
    /// table for people, json for tools.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Add the rule packs (*.toml) in this directory to the built-in ones.
    #[arg(long, value_name = "DIR", env = "TEXTWATCH_RULES", value_delimiter = ':')]
    rules: Vec<std::path::PathBuf>,
    #[command(flatten)]
    ctx: ContextArgs,
}

#[derive(Serialize)]
struct CheckOutput<'a> {
    from: &'a str,
    template: &'a str,
    template_key: String,
    clusterable: bool,
    features: &'a textwatch_engine::features::MessageFeatures,
    optout: Option<&'a str>,
    sender_id: Option<&'a str>,
    category: Option<String>,
    subcategory: Option<String>,
    findings: Vec<textwatch_engine::Finding>,
    risk: u8,
    action: &'static str,
    decision: Decision,
    campaign: CampaignGuess,
}

#[derive(Serialize)]
struct CampaignGuess {
    /// exact-campaign, near-campaign, would-form, new, too-short
    status: &'static str,
    id: Option<String>,
    similarity: Option<f32>,
}

/// The database `check` reads: the SQLite file if it exists (else an empty
/// one in memory: every text is new), or PostgreSQL; and whether it holds
/// campaigns to compare with.
fn check_store(db: &Location) -> Result<(Box<dyn textwatch_store::WriteStore>, bool)> {
    Ok(match db {
        Location::Sqlite(p) if !p.exists() => (Box::new(SqliteStore::in_memory()?), false),
        Location::Sqlite(p) => (Box::new(open(p)?), true),
        Location::Postgres(_) => (db.open_existing().with_context(|| format!("opening database {db}"))?, true),
    })
}

pub fn check(db: &Location, args: CheckArgs) -> Result<()> {
    if let Some(input) = &args.input {
        return check_many(db, input, &args.rules, &args.ctx);
    }
    let (Some(from), Some(body)) = (args.from.clone(), args.body.clone()) else {
        bail!("give --from and --body, or --input FILE");
    };
    let ts_ms = match &args.ts {
        Some(t) => textwatch_sources::time::parse_ts(t).map_err(anyhow::Error::msg).context("--ts")?,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0),
    };
    if body.len() > textwatch_engine::MAX_BODY_BYTES {
        bail!("--body is {} bytes; the limit is {}", body.len(), textwatch_engine::MAX_BODY_BYTES);
    }
    let cfg = EngineConfig::default();
    let (mut store, exists) = check_store(db)?;
    let rules = load_rules(&args.rules)?;
    let analyzer =
        textwatch_pipeline::setup::analyzer(&*store, cfg.min_template_len)?.with_quiet_hours(rules.quiet_hours());
    let msg = Message { id: None, ts_ms, from, to: args.to.clone(), body, source: None, meta: None };
    let a = analyzer.analyze(msg, &mut Scratch::default());
    let tf = TemplateFeatures::of(&a.template);
    let mut findings = rules.evaluate_message(&a.msg.body, &a.template, &a.features.links);
    findings.extend(textwatch_sinks::enrich::sender_finding(&a.sender));
    let (category, subcategory) = category_of(&rules, &findings, builtin_model()?.as_ref(), &a);
    let engine = Engine::restore(cfg.clone(), store.load_peek_snapshot(cfg.singleton_window)?);
    let ctx = Enricher::load(&*store, &args.ctx.files())?;
    let peeked = peek(&*store, &engine, &a)?;
    let joins = matches!(peeked, Peek::ExactCampaign { .. } | Peek::NearCampaign { .. });
    findings.extend(quiet_finding(&rules, &a, category.as_deref(), joins));
    let risk = textwatch_engine::rules::risk(findings.iter().map(|f| &f.severity), 1);
    let guess = match peeked {
        Peek::ExactCampaign { campaign } => {
            CampaignGuess { status: "exact-campaign", id: Some(campaign), similarity: Some(1.0) }
        }
        Peek::NearCampaign { campaign, similarity } => {
            CampaignGuess { status: "near-campaign", id: Some(campaign), similarity: Some(similarity) }
        }
        Peek::ExactSingleton => CampaignGuess { status: "would-form", id: None, similarity: Some(1.0) },
        Peek::NearSingleton { similarity } => {
            CampaignGuess { status: "would-form", id: None, similarity: Some(similarity) }
        }
        Peek::New => CampaignGuess { status: "new", id: None, similarity: None },
        Peek::TooShort => CampaignGuess { status: "too-short", id: None, similarity: None },
    };
    let decision = message_decision(
        &ctx,
        &*store,
        &findings,
        category.as_deref(),
        subcategory.as_deref(),
        risk,
        &a.sender,
        guess.id.as_deref(),
    )?;
    let o = CheckOutput {
        from: &a.sender,
        template: &a.template,
        template_key: format!("{:016x}", a.template_key),
        clusterable: a.clusterable,
        features: &a.features,
        optout: tf.optout.clone().map(|r| &a.template[r]),
        sender_id: tf.sender_id.clone().map(|r| &a.template[r]),
        category,
        subcategory,
        findings,
        risk,
        action: decision.action.as_str(),
        decision,
        campaign: guess,
    };
    let mut out = std::io::stdout().lock();
    if args.format != Format::Table {
        serde_json::to_writer_pretty(&mut out, &o)?;
        writeln!(out)?;
        return Ok(());
    }
    let mut out = SafeText(out);
    writeln!(out, "from        {}", o.from)?;
    writeln!(out, "template    {}", o.template)?;
    for l in &a.features.links {
        let kind = if l.shortener { "  (public URL shortener)" } else { "" };
        writeln!(out, "link        {}  domain {}{kind}", l.url, l.domain.as_deref().unwrap_or("-"))?;
    }
    for p in &a.features.phones {
        writeln!(out, "phone       {p}")?;
    }
    for e in &a.features.emails {
        writeln!(out, "e-mail      {e}")?;
    }
    writeln!(out, "opt-out     {}", o.optout.map_or("none found".to_string(), |s| format!("yes: \"{s}\"")))?;
    writeln!(out, "sender id   {}", o.sender_id.map_or("none found".to_string(), |s| format!("yes: \"{s}\"")))?;
    for f in &o.findings {
        let sev =
            serde_json::to_value(f.severity).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let mut line = format!("finding     {} ({sev}): \"{}\"", f.rule, f.evidence.excerpt);
        if let Some(p) = &f.evidence.place {
            line.push_str(&format!("  place: {p}"));
        }
        if let Some(t) = &f.evidence.time {
            line.push_str(&format!("  time: {t}"));
        }
        writeln!(out, "{line}")?;
    }
    match (&o.category, &o.subcategory) {
        (Some(c), Some(s)) => writeln!(out, "category    {c} / {s}")?,
        (Some(c), None) => writeln!(out, "category    {c}")?,
        _ => writeln!(out, "category    (no model)")?,
    }
    writeln!(out, "risk        {} / 100", o.risk)?;
    writeln!(
        out,
        "action      {} {} (policy rule {}: {})",
        o.action,
        scope_word(o.decision.scope),
        o.decision.rule,
        o.decision.reasons.join(", ")
    )?;
    let c = &o.campaign;
    let line = match c.status {
        "exact-campaign" => format!("joins campaign {} (same template)", c.id.as_deref().unwrap_or("")),
        "near-campaign" => format!(
            "joins campaign {} (near-duplicate, similarity {:.2})",
            c.id.as_deref().unwrap_or(""),
            c.similarity.unwrap_or(0.0)
        ),
        "would-form" => "would form a new campaign with an earlier message".to_string(),
        "too-short" => "none: too short to say the text is shared".to_string(),
        _ if !exists => format!("none (no database at {})", db),
        _ => "none yet: nothing like it in the database".to_string(),
    };
    writeln!(out, "campaign    {line}")?;
    Ok(())
}

/// One verdict of `check --input`.
#[derive(Serialize)]
struct Verdict<'a> {
    id: String,
    action: &'static str,
    /// The policy rule that decided, and its scope.
    rule: &'a str,
    scope: textwatch_engine::policy::Scope,
    risk: u8,
    category: Option<&'a str>,
    subcategory: Option<&'a str>,
    findings: &'a [textwatch_engine::Finding],
    campaign: Option<&'a str>,
}

#[derive(Clone)]
struct TemplateVerdict {
    decision: Decision,
    risk: u8,
    category: Option<String>,
    subcategory: Option<String>,
    findings: Vec<textwatch_engine::Finding>,
    campaign: Option<String>,
}

/// `check --input`: verdicts for a stream of messages. Analysis (rules,
/// classifier, campaign lookup) runs once per distinct template and is
/// reused for every copy; bad records are reported on standard error and
/// skipped, like `scan` does.
fn check_many(db: &Location, input: &str, rule_dirs: &[std::path::PathBuf], ctx_args: &ContextArgs) -> Result<()> {
    use std::collections::HashMap;
    let cfg = EngineConfig::default();
    let (mut store, _) = check_store(db)?;
    let rules = load_rules(rule_dirs)?;
    let analyzer =
        textwatch_pipeline::setup::analyzer(&*store, cfg.min_template_len)?.with_quiet_hours(rules.quiet_hours());
    let engine = Engine::restore(cfg.clone(), store.load_peek_snapshot(cfg.singleton_window)?);
    let model = builtin_model()?;
    let ctx = Enricher::load(&*store, &ctx_args.files())?;
    // Per template; a message whose sender is impossible adds
    // `sender-invalid` and is judged on its own.
    let mut cache: HashMap<u64, TemplateVerdict> = HashMap::new();
    let mut scratch = Scratch::default();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut input = textwatch_sources::open(input)?;
    let mut rejected = 0u64;
    while let Some(chunk) = input.next_chunk()? {
        let records: Vec<Result<Message, textwatch_sources::Reject>> = match chunk {
            textwatch_sources::Chunk::Lines { file, buf, lines, rejects } => {
                let mut v: Vec<_> = lines
                    .iter()
                    .map(|&(l, a, b)| textwatch_sources::jsonl::decode_line(&file, l, &buf[a..b]))
                    .collect();
                v.extend(rejects.into_iter().map(Err));
                v
            }
            textwatch_sources::Chunk::Decoded { records, .. } => {
                records.into_iter().map(|r| r.map(|d| d.msg)).collect()
            }
        };
        for r in records {
            let msg = match r {
                Ok(m) => m,
                Err(e) => {
                    rejected += 1;
                    if rejected <= 20 {
                        eprintln!("textwatch: rejected {e}");
                    }
                    continue;
                }
            };
            let a = analyzer.analyze(msg, &mut scratch);
            if let std::collections::hash_map::Entry::Vacant(slot) = cache.entry(a.template_key) {
                let findings = rules.evaluate_message(&a.msg.body, &a.template, &a.features.links);
                let risk = textwatch_engine::rules::risk(findings.iter().map(|f| &f.severity), 1);
                let (category, subcategory) = category_of(&rules, &findings, model.as_ref(), &a);
                let campaign = match peek(&*store, &engine, &a)? {
                    Peek::ExactCampaign { campaign } | Peek::NearCampaign { campaign, .. } => Some(campaign),
                    _ => None,
                };
                let decision = message_decision(
                    &ctx,
                    &*store,
                    &findings,
                    category.as_deref(),
                    subcategory.as_deref(),
                    risk,
                    &a.sender,
                    campaign.as_deref(),
                )?;
                slot.insert(TemplateVerdict { decision, risk, category, subcategory, findings, campaign });
            }
            let cached = &cache[&a.template_key];
            let own;
            let own_findings: Vec<textwatch_engine::Finding> = textwatch_sinks::enrich::sender_finding(&a.sender)
                .into_iter()
                .chain(quiet_finding(&rules, &a, cached.category.as_deref(), cached.campaign.is_some()))
                .collect();
            let v = match own_findings.is_empty() {
                true => cached,
                false => {
                    let mut findings = cached.findings.clone();
                    findings.extend(own_findings);
                    let risk = textwatch_engine::rules::risk(findings.iter().map(|f| &f.severity), 1);
                    let decision = message_decision(
                        &ctx,
                        &*store,
                        &findings,
                        cached.category.as_deref(),
                        cached.subcategory.as_deref(),
                        risk,
                        &a.sender,
                        cached.campaign.as_deref(),
                    )?;
                    own = TemplateVerdict { decision, risk, findings, ..cached.clone() };
                    &own
                }
            };
            let verdict = Verdict {
                id: a.display_id(),
                action: v.decision.action.as_str(),
                rule: &v.decision.rule,
                scope: v.decision.scope,
                risk: v.risk,
                category: v.category.as_deref(),
                subcategory: v.subcategory.as_deref(),
                findings: &v.findings,
                campaign: v.campaign.as_deref(),
            };
            serde_json::to_writer(&mut out, &verdict)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    if rejected > 20 {
        eprintln!("textwatch: {rejected} records rejected in all");
    }
    Ok(())
}
