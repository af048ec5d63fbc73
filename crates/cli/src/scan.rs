//! `textwatch scan`: files in, campaigns out. The pipeline itself is
//! [`textwatch_pipeline::scan`]; this is its command line: arguments, the
//! progress bar, rejects, and the closing summary.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use textwatch_store::WriteStore as _;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use textwatch_pipeline::batch::AfterCommit;
use textwatch_pipeline::scan::{Event, Flow, ScanOptions};
use textwatch_sources::Reject;
use textwatch_store::sqlite::SqliteStore;
use textwatch_store::{CampaignQuery, CampaignSummary, Store};

use crate::output::{campaign_table, duration, printable, report, thousands, Level, Table};

#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    /// Files to read: JSONL, CSV or Twilio CSV export, plain or gzip; `-`
    /// is standard input.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,

    /// Write every rejected record to this file, one JSON object per line:
    /// {"file", "line", "reason", "record"}.
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,

    /// Stop at the first bad record, exit code 2. Records before it are kept.
    #[arg(long)]
    strict: bool,

    /// Campaigns listed in the closing summary.
    #[arg(long, default_value_t = 10, value_name = "N")]
    top: usize,

    /// Analysis threads (default: one per core). Results never depend on it.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,

    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,

    /// Add the rule packs (*.toml) in this directory to the built-in ones
    /// (repeatable). A rule whose id is already defined replaces it.
    #[arg(long, value_name = "DIR", env = "TEXTWATCH_RULES", value_delimiter = ':')]
    rules: Vec<PathBuf>,

    /// Summary format: a table for people, or JSON.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
    format: SummaryFormat,

    /// Send campaign alerts here (repeatable): `stdout`, `file:PATH` (JSON
    /// lines, appended), or a webhook URL (POSTed as JSON, retried). Alerts
    /// are recorded in the database either way (`textwatch alerts`).
    #[arg(long = "alert", value_name = "SINK")]
    alerts: Vec<textwatch_sinks::alerts::Sink>,

    #[command(flatten)]
    ctx: crate::context::ContextArgs,
    #[command(flatten)]
    dedup: crate::dedup::DedupArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum SummaryFormat {
    Table,
    Json,
}

/// Rejects printed to standard error before only counting them.
const SHOWN_REJECTS: u64 = 20;

#[derive(Default, Serialize)]
struct Totals {
    files: u64,
    files_failed: u64,
    records: u64,
    accepted: u64,
    duplicates: u64,
    rejected: u64,
    campaigns: u64,
    messages_in_campaigns: u64,
    alerts: u64,
    elapsed_s: f64,
    messages_per_s: f64,
}

#[derive(Serialize)]
struct Summary<'a> {
    #[serde(flatten)]
    totals: &'a Totals,
    top: &'a [CampaignSummary],
}

struct Rejects {
    file: Option<(PathBuf, BufWriter<File>)>,
    shown: u64,
    /// A failure to write the rejects file (the scan stops).
    error: Option<anyhow::Error>,
}

impl Rejects {
    fn record(&mut self, r: &Reject, pb: &ProgressBar) {
        if let Err(e) = self.write(r, pb) {
            self.error = Some(e);
        }
    }

    fn write(&mut self, r: &Reject, pb: &ProgressBar) -> Result<()> {
        if self.shown < SHOWN_REJECTS {
            let shown = printable(&r.to_string(), false).into_owned();
            pb.suspend(|| eprintln!("textwatch: rejected {shown}"));
        } else if self.shown == SHOWN_REJECTS {
            let hint = if self.file.is_some() { "" } else { "; --rejects FILE keeps them all" };
            pb.suspend(|| eprintln!("textwatch: further rejects are counted, not shown{hint}"));
        }
        self.shown += 1;
        if let Some((path, w)) = &mut self.file {
            let line = serde_json::json!({
                "file": &*r.file,
                "line": r.line,
                "reason": r.reason,
                "record": String::from_utf8_lossy(&r.raw),
            });
            serde_json::to_writer(&mut *w, &line).with_context(|| format!("writing {}", path.display()))?;
            w.write_all(b"\n").with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}

pub fn run(db: &Path, args: ScanArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let mut store = SqliteStore::open(db).with_context(|| format!("opening database {}", db.display()))?;
    store.lock_for_writing().with_context(|| format!("opening the message log of {}", db.display()))?;
    let rules = textwatch_pipeline::setup::load_rules(&args.rules)?;
    let quiet = rules.quiet_hours();
    let engine = textwatch_pipeline::setup::restore_engine(&mut store, rules, args.dedup.keys())
        .context("loading the database state")?;
    tracing::info!(messages = engine.messages_seen(), campaigns = engine.campaigns(), "database loaded");
    let analyzer =
        textwatch_pipeline::setup::analyzer(&store, engine.config().min_template_len)?.with_quiet_hours(quiet);

    let total_bytes: u64 =
        args.files.iter().filter(|f| *f != "-").filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
    let pb = progress_bar(args.quiet, total_bytes);
    let mut rejects = Rejects {
        file: match &args.rejects {
            Some(p) => Some((
                p.clone(),
                BufWriter::new(File::create(p).with_context(|| format!("creating rejects file {}", p.display()))?),
            )),
            None => None,
        },
        shown: 0,
        error: None,
    };
    let watcher: Box<dyn AfterCommit + Send> = Box::new(textwatch_sinks::alerts::Watcher::new(
        textwatch_sinks::enrich::Enricher::load(&store, &args.ctx.files())?,
        args.alerts.clone(),
    )?);
    let mut strict_stop: Option<Reject> = None;
    let strict = args.strict;
    // File errors are shown as they happen and again after the summary, so
    // that the last thing on the screen says what went wrong.
    let mut file_errors: Vec<String> = Vec::new();
    let mut empty_files: Vec<String> = Vec::new();
    let mut current_failed = false;
    let mut on = |ev: Event<'_>| -> Flow {
        match ev {
            Event::Started { .. } => {
                current_failed = false;
                Flow::Go
            }
            Event::Finished { name, records } => {
                if records == 0 && !current_failed {
                    let msg = format!("{} holds no records (an empty file?)", printable(name, false));
                    pb.suspend(|| report(Level::Warning, &msg));
                    empty_files.push(msg);
                }
                Flow::Go
            }
            Event::FileFailed(e) => {
                current_failed = true;
                pb.suspend(|| report(Level::Error, e));
                file_errors.push(e.to_string());
                if strict {
                    Flow::Stop
                } else {
                    Flow::Go
                }
            }
            Event::Rejected(r) => {
                rejects.record(r, &pb);
                if rejects.error.is_some() {
                    return Flow::Stop;
                }
                if strict {
                    strict_stop = Some(r.clone());
                    return Flow::Stop;
                }
                Flow::Go
            }
            Event::Progress { bytes, records, campaigns } => {
                pb.set_position(bytes);
                let rate = records as f64 / started.elapsed().as_secs_f64().max(1e-9);
                pb.set_message(format!(
                    "{} msgs  {}/s  {} campaigns",
                    thousands(records),
                    thousands(rate as u64),
                    thousands(campaigns as u64)
                ));
                Flow::Go
            }
        }
    };
    let opts = ScanOptions { threads: args.threads };
    let done = textwatch_pipeline::scan::scan(store, engine, analyzer, args.files.clone(), &opts, watcher, &mut on)?;
    if let Some(e) = rejects.error.take() {
        return Err(e);
    }
    if let Some((path, mut w)) = rejects.file.take() {
        w.flush().with_context(|| format!("writing {}", path.display()))?;
    }
    pb.finish_and_clear();

    let store = done.store;
    let t = &done.totals;
    let stats = store.stats()?;
    let elapsed_s = started.elapsed().as_secs_f64();
    let totals = Totals {
        files: t.files,
        files_failed: t.files_failed,
        records: t.records,
        accepted: t.accepted,
        duplicates: t.duplicates,
        rejected: t.rejected,
        campaigns: stats.campaigns,
        messages_in_campaigns: stats.messages_in_campaigns,
        alerts: t.alerts,
        elapsed_s,
        messages_per_s: t.records as f64 / elapsed_s.max(1e-9),
    };
    let enricher = textwatch_sinks::enrich::Enricher::load(&store, &args.ctx.files())?;
    let top = textwatch_sinks::views::enriched_campaigns(
        &store,
        &enricher,
        &CampaignQuery { limit: Some(args.top), max_senders: Some(5), ..Default::default() },
    )?;
    // Nothing read (every file failed or was empty): the database's summary
    // would only push the errors and warnings off the screen.
    let nothing_read = totals.records == 0 && (totals.files_failed > 0 || !empty_files.is_empty());
    if !nothing_read || args.format == SummaryFormat::Json {
        print_summary(&totals, &top, args.format)?;
    }

    if let Some(r) = strict_stop {
        report(Level::Error, &format!("stopped at the first bad record (--strict): {r}"));
        return Ok(ExitCode::from(2));
    }
    if !file_errors.is_empty() {
        if !nothing_read {
            for e in &file_errors {
                report(Level::Error, e);
            }
        }
        // --strict stops at an unreadable file as at a bad record.
        return Ok(if args.strict { ExitCode::from(2) } else { ExitCode::FAILURE });
    }
    if !nothing_read {
        for w in &empty_files {
            report(Level::Warning, w);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn progress_bar(quiet: bool, total: u64) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = if total > 0 { ProgressBar::new(total) } else { ProgressBar::new_spinner() };
    pb.set_draw_target(ProgressDrawTarget::stderr_with_hz(5));
    let style = if total > 0 {
        ProgressStyle::with_template("{spinner} [{bar:30}] {bytes}/{total_bytes}  {msg}  {elapsed}")
    } else {
        ProgressStyle::with_template("{spinner} {msg}  {elapsed}")
    };
    if let Ok(s) = style {
        pb.set_style(s.progress_chars("=> "));
    }
    pb
}

fn print_summary(t: &Totals, top: &[CampaignSummary], format: SummaryFormat) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if format == SummaryFormat::Json {
        serde_json::to_writer_pretty(&mut out, &Summary { totals: t, top })?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "scanned {} file{} in {} ({} records/s)",
        t.files,
        if t.files == 1 { "" } else { "s" },
        duration(t.elapsed_s),
        thousands(t.messages_per_s as u64)
    )?;
    let mut table = Table::new(&[("", false), ("", true), ("", false)]);
    let rows: [(&str, u64, &str); 5] = [
        ("records read", t.records, ""),
        ("new messages stored", t.accepted, ""),
        ("already stored", t.duplicates, "(same id, or same from/to/time/body; counted once)"),
        ("rejected", t.rejected, if t.rejected > 0 { "(see the messages above, or --rejects FILE)" } else { "" }),
        ("files that failed", t.files_failed, ""),
    ];
    for (label, n, note) in rows {
        if label == "files that failed" && n == 0 {
            continue;
        }
        table.row(vec![label.to_string(), thousands(n), note.to_string()]);
    }
    table.row(vec![
        "campaigns in database".into(),
        thousands(t.campaigns),
        format!("({} messages in campaigns)", thousands(t.messages_in_campaigns)),
    ]);
    if t.alerts > 0 {
        table.row(vec!["alerts raised".into(), thousands(t.alerts), "(textwatch alerts)".into()]);
    }
    for line in table.render().lines().skip(1) {
        writeln!(out, "  {}", line.trim_end())?;
    }
    if !top.is_empty() {
        writeln!(out, "\ntop campaigns:")?;
        out.write_all(campaign_table(top).as_bytes())?;
        writeln!(out, "\nmore: textwatch campaigns; one campaign: textwatch campaign ID")?;
    }
    Ok(())
}
