//! `textwatch scan`: files in, campaigns out.
//!
//! The pipeline, per chunk of ~16k records:
//!
//! ```text
//! reader thread ──chunks──▶ decode + analyze (parallel, rayon)
//!                           ─▶ order by (time, identity)          ┐ main thread,
//!                           ─▶ signatures of new templates (par.)  │ deterministic
//!                           ─▶ assign to campaigns (sequential)    ┘
//!                           ──batch + delta──▶ writer thread (one SQLite transaction)
//! ```
//!
//! Channels are bounded, so memory stays flat whatever the input size.
//! Records with the same timestamp are ordered by identity key, and a
//! batch never splits a group of equal timestamps, so campaigns do not
//! depend on thread count or on the file order of equal-time records.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use crossbeam_channel::{bounded, Receiver, Sender};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;
use textwatch_engine::minhash::{signature, MinHashScratch, Signature};
use textwatch_engine::{Analyzed, Analyzer, Engine, EngineConfig, Outcome, Scratch};
use textwatch_sources::{Chunk, Reject};
use textwatch_store::sqlite::SqliteStore;
use textwatch_store::{CampaignQuery, CampaignSummary, NewMessage, Store};

use crate::output::{duration, excerpt, short_time, thousands, Table};

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
    #[arg(long, value_name = "DIR")]
    rules: Vec<PathBuf>,

    /// Summary format: a table for people, or JSON.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Table)]
    format: SummaryFormat,

    /// Send campaign alerts here (repeatable): `stdout`, `file:PATH` (JSON
    /// lines, appended), or a webhook URL (POSTed as JSON, retried). Alerts
    /// are recorded in the database either way (`textwatch alerts`).
    #[arg(long = "alert", value_name = "SINK")]
    alerts: Vec<crate::alerts::Sink>,

    #[command(flatten)]
    ctx: crate::enrich::ContextArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum SummaryFormat {
    Table,
    Json,
}

/// Records per assignment batch (and per store transaction).
const BATCH: usize = 32 * 1024;
/// A group of equal timestamps larger than this is split anyway.
const MAX_CARRY: usize = 1 << 20;
/// Rejects printed to standard error before only counting them.
const SHOWN_REJECTS: u64 = 20;

enum ReaderEvent {
    Started { name: Arc<str>, format: String, progress: Arc<AtomicU64> },
    Chunk(Chunk),
    Failed(String),
    Finished { size: u64 },
}

struct Prepared {
    a: Analyzed,
    file: Arc<str>,
    line: u64,
}

/// What the analysis stage hands the assigner: reader events passed through,
/// chunks turned into analyzed records plus the signatures of templates seen
/// for the first time.
enum Analyzed2 {
    Reader(ReaderEvent),
    Records { records: Vec<Result<Prepared, Reject>>, sigs: Vec<(u64, Signature)> },
}

struct Commit {
    messages: Vec<Prepared>,
    delta: textwatch_engine::Delta,
}

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
    #[serde(skip)]
    engine_s: f64,
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
}

impl Rejects {
    fn record(&mut self, r: &Reject, pb: &ProgressBar) -> Result<()> {
        if self.shown < SHOWN_REJECTS {
            pb.suspend(|| eprintln!("textwatch: rejected {r}"));
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
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.unwrap_or(0))
        .thread_name(|i| format!("analyze-{i}"))
        .build()
        .context("starting analysis threads")?;
    let mut store = SqliteStore::open(db).with_context(|| format!("opening database {}", db.display()))?;
    store.lock_for_writing().with_context(|| format!("opening the message log of {}", db.display()))?;
    let cfg = EngineConfig::default();
    let snap = store.load_snapshot(cfg.singleton_window).context("loading the database state")?;
    let mut engine = Engine::restore(cfg.clone(), snap);
    let rules = crate::commands::load_rules(&args.rules)?;
    let quiet = rules.quiet_hours();
    engine.set_rules(rules);
    if let Some(m) = crate::model::builtin_model()? {
        engine.set_classifier(m);
    }
    engine.set_meaning(crate::model::builtin_meaning()?);
    let before = engine.messages_seen();
    tracing::info!(messages = before, campaigns = engine.campaigns(), "database loaded");
    let analyzer = Analyzer::new(store.secret(), cfg.min_template_len).with_quiet_hours(quiet);

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
    };

    let (chunk_tx, chunk_rx) = bounded::<ReaderEvent>(2);
    let files = args.files.clone();
    let reader = std::thread::Builder::new().name("reader".into()).spawn(move || read_all(files, chunk_tx))?;
    let (an_tx, an_rx) = bounded::<Analyzed2>(2);
    let known: HashSet<u64> = engine.template_keys().collect();
    let an_analyzer = analyzer.clone();
    let min_len = cfg.min_template_len;
    let analysis = std::thread::Builder::new()
        .name("analysis".into())
        .spawn(move || analyze_all(chunk_rx, an_tx, an_analyzer, pool, known, min_len))?;
    let mut sigs: HashMap<u64, Signature> = HashMap::new();
    let (commit_tx, commit_rx) = bounded::<Commit>(2);
    let watcher = crate::alerts::Watcher::new(crate::enrich::Enricher::load(&store, &args.ctx)?, args.alerts.clone())?;
    let writer =
        std::thread::Builder::new().name("writer".into()).spawn(move || write_all(store, commit_rx, watcher))?;

    let mut totals = Totals::default();
    let mut pending: Vec<Prepared> = Vec::new();
    let mut done_bytes = 0u64;
    let mut current: Option<Arc<AtomicU64>> = None;
    let mut strict_stop: Option<Reject> = None;
    let mut last_draw = Instant::now();

    let mut assign_time = Duration::ZERO;
    let mut wait_since = Instant::now();
    let mut wait_time = Duration::ZERO;
    for ev in an_rx.iter() {
        wait_time += wait_since.elapsed();
        let busy_since = Instant::now();
        let ev = match ev {
            Analyzed2::Reader(ev) => ev,
            Analyzed2::Records { records, sigs: new_sigs } => {
                sigs.extend(new_sigs);
                totals.records += records.len() as u64;
                for r in records {
                    match r {
                        Ok(p) => pending.push(p),
                        Err(rej) => {
                            totals.rejected += 1;
                            rejects.record(&rej, &pb)?;
                            if args.strict {
                                strict_stop = Some(rej);
                                break;
                            }
                        }
                    }
                }
                if strict_stop.is_some() {
                    break;
                }
                if pending.len() >= BATCH {
                    assign_batch(&mut pending, false, &mut engine, &mut sigs, &commit_tx, &mut totals)?;
                }
                assign_time += busy_since.elapsed();
                wait_since = Instant::now();
                if last_draw.elapsed() > Duration::from_millis(200) {
                    last_draw = Instant::now();
                    let pos = done_bytes + current.as_ref().map_or(0, |c| c.load(Ordering::Relaxed));
                    pb.set_position(pos);
                    let rate = totals.records as f64 / started.elapsed().as_secs_f64().max(1e-9);
                    pb.set_message(format!(
                        "{} msgs  {}/s  {} campaigns",
                        thousands(totals.records),
                        thousands(rate as u64),
                        thousands(engine.campaigns() as u64)
                    ));
                }
                continue;
            }
        };
        match ev {
            ReaderEvent::Started { name, format, progress } => {
                totals.files += 1;
                tracing::info!(file = %name, %format, "reading");
                current = Some(progress);
            }
            ReaderEvent::Finished { size } => {
                done_bytes += size;
                current = None;
            }
            ReaderEvent::Failed(e) => {
                totals.files_failed += 1;
                pb.suspend(|| eprintln!("textwatch: error: {e}"));
                if args.strict {
                    break;
                }
            }
            ReaderEvent::Chunk(_) => unreachable!("the analysis stage turns chunks into records"),
        }
    }
    drop(an_rx);
    assign_batch(&mut pending, true, &mut engine, &mut sigs, &commit_tx, &mut totals)?;
    drop(commit_tx);
    let (store, write_time, alerts_raised) =
        writer.join().map_err(|_| anyhow!("the database writer thread panicked"))??;
    totals.alerts = alerts_raised;
    tracing::info!(
        assign_s = assign_time.as_secs_f64(),
        engine_s = totals.engine_s,
        lsh_lookups = engine.lookup_stats().0,
        lsh_verified = engine.lookup_stats().1,
        waiting_for_analysis_s = wait_time.as_secs_f64(),
        writing_s = write_time.as_secs_f64(),
        "stage times"
    );
    // The reader may still be blocked on a full channel after a strict stop;
    // dropping the receiver above ends it.
    let _ = analysis.join();
    let _ = reader.join();
    if let Some((path, mut w)) = rejects.file.take() {
        w.flush().with_context(|| format!("writing {}", path.display()))?;
    }
    pb.finish_and_clear();

    let stats = store.stats()?;
    totals.campaigns = stats.campaigns;
    totals.messages_in_campaigns = stats.messages_in_campaigns;
    totals.elapsed_s = started.elapsed().as_secs_f64();
    totals.messages_per_s = totals.records as f64 / totals.elapsed_s.max(1e-9);
    let enricher = crate::enrich::Enricher::load(&store, &args.ctx)?;
    let top = crate::commands::enriched_campaigns(
        &store,
        &enricher,
        &CampaignQuery { limit: Some(args.top), max_senders: Some(5), ..Default::default() },
    )?;
    print_summary(&totals, &top, args.format)?;

    if let Some(r) = strict_stop {
        eprintln!("textwatch: stopped at the first bad record (--strict): {r}");
        return Ok(ExitCode::from(2));
    }
    if totals.files_failed > 0 {
        return Ok(ExitCode::FAILURE);
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

fn read_all(files: Vec<String>, tx: Sender<ReaderEvent>) {
    for path in files {
        let mut input = match textwatch_sources::open(&path) {
            Ok(i) => i,
            Err(e) => {
                if tx.send(ReaderEvent::Failed(e.to_string())).is_err() {
                    return;
                }
                continue;
            }
        };
        let started = ReaderEvent::Started {
            name: input.name.clone(),
            format: input.format.to_string(),
            progress: input.progress.clone(),
        };
        if tx.send(started).is_err() {
            return;
        }
        loop {
            match input.next_chunk() {
                Ok(Some(c)) => {
                    if tx.send(ReaderEvent::Chunk(c)).is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    if tx.send(ReaderEvent::Failed(e.to_string())).is_err() {
                        return;
                    }
                    break;
                }
            }
        }
        let size = input.size.unwrap_or_else(|| input.progress.load(Ordering::Relaxed));
        if tx.send(ReaderEvent::Finished { size }).is_err() {
            return;
        }
    }
}

/// The analysis stage: decodes and analyzes each chunk in parallel, and
/// computes signatures (also in parallel) for templates it sees for the
/// first time. It sees every message before the assigner does, so "first
/// time here" is "new to the engine".
fn analyze_all(
    rx: Receiver<ReaderEvent>,
    tx: Sender<Analyzed2>,
    analyzer: Analyzer,
    pool: rayon::ThreadPool,
    mut known: HashSet<u64>,
    min_len: usize,
) {
    for ev in rx.iter() {
        let out = match ev {
            ReaderEvent::Chunk(chunk) => {
                let records = pool.install(|| decode_and_analyze(chunk, &analyzer));
                let mut first: Vec<&Prepared> = Vec::new();
                for p in records.iter().flatten() {
                    if p.a.clusterable && known.insert(p.a.template_key) {
                        first.push(p);
                    }
                }
                let sigs: Vec<(u64, Signature)> = pool.install(|| {
                    first
                        .par_iter()
                        .map_init(MinHashScratch::default, |s, p| {
                            (p.a.template_key, signature(&p.a.template, s, min_len))
                        })
                        .collect()
                });
                Analyzed2::Records { records, sigs }
            }
            other => Analyzed2::Reader(other),
        };
        if tx.send(out).is_err() {
            return;
        }
    }
}

fn write_all(
    mut store: SqliteStore,
    rx: Receiver<Commit>,
    mut watcher: crate::alerts::Watcher,
) -> Result<(SqliteStore, Duration, u64)> {
    let mut origins: Vec<String> = Vec::new();
    let mut busy = Duration::ZERO;
    for c in rx.iter() {
        let t = Instant::now();
        origins.clear();
        origins.extend(c.messages.iter().map(|p| format!("{}:{}", p.file, p.line)));
        let msgs: Vec<NewMessage<'_>> =
            c.messages.iter().zip(&origins).map(|(p, o)| NewMessage { msg: &p.a, origin: o }).collect();
        store.commit(&msgs, &c.delta).context("writing a batch to the database")?;
        watcher.after_commit(&mut store, &c.delta.clusters).context("raising alerts")?;
        busy += t.elapsed();
    }
    let raised = watcher.raised;
    watcher.finish();
    store.close_segment().context("closing the message log's segment")?;
    Ok((store, busy, raised))
}

fn decode_and_analyze(chunk: Chunk, analyzer: &Analyzer) -> Vec<Result<Prepared, Reject>> {
    match chunk {
        Chunk::Lines { file, buf, lines, rejects } => {
            let mut out: Vec<Result<Prepared, Reject>> = lines
                .par_iter()
                .map_init(Scratch::default, |s, &(line, a, b)| {
                    textwatch_sources::jsonl::decode_line(&file, line, &buf[a..b]).map(|m| Prepared {
                        a: analyzer.analyze(m, s),
                        file: file.clone(),
                        line,
                    })
                })
                .collect();
            if !rejects.is_empty() {
                out.extend(rejects.into_iter().map(Err));
                out.sort_by_key(|r| match r {
                    Ok(p) => p.line,
                    Err(e) => e.line,
                });
            }
            out
        }
        Chunk::Decoded { file, records } => records
            .into_par_iter()
            .map_init(Scratch::default, |s, r| {
                r.map(|d| Prepared { a: analyzer.analyze(d.msg, s), file: file.clone(), line: d.line })
            })
            .collect(),
    }
}

/// Assigns what is pending, keeping back (unless `last`) the records with
/// the batch's latest timestamp: more of them may follow in the next chunk,
/// and equal-time records must be ordered together.
fn assign_batch(
    pending: &mut Vec<Prepared>,
    last: bool,
    engine: &mut Engine,
    sigs: &mut HashMap<u64, Signature>,
    commit: &Sender<Commit>,
    totals: &mut Totals,
) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let mut batch = std::mem::take(pending);
    if !last {
        let max_ts = batch.iter().map(|p| p.a.msg.ts_ms).max().unwrap_or(i64::MIN);
        let carry = batch.iter().filter(|p| p.a.msg.ts_ms == max_ts).count();
        if carry < batch.len() || carry > MAX_CARRY {
            if carry < batch.len() {
                let (keep, rest): (Vec<_>, Vec<_>) = batch.into_iter().partition(|p| p.a.msg.ts_ms == max_ts);
                *pending = keep;
                batch = rest;
            }
        } else {
            *pending = batch;
            return Ok(());
        }
    }
    batch.sort_unstable_by_key(|p| (p.a.msg.ts_ms, p.a.key, p.a.template_key));

    let t0 = Instant::now();
    let mut accepted = Vec::with_capacity(batch.len());
    let mut new_templates: HashMap<u64, usize> = HashMap::new();
    for p in batch {
        let sig = if engine.needs_signature(&p.a) { sigs.remove(&p.a.template_key) } else { None };
        match engine.assign(&p.a, sig.as_ref()) {
            Outcome::Duplicate => totals.duplicates += 1,
            Outcome::Accepted { new_template, .. } => {
                totals.accepted += 1;
                if new_template {
                    new_templates.insert(p.a.template_key, accepted.len());
                }
                accepted.push(p);
            }
        }
    }
    let delta = engine.take_delta(|k| new_templates.get(&k).map(|&i| accepted[i].a.template.as_str()));
    totals.engine_s += t0.elapsed().as_secs_f64();
    commit
        .send(Commit { messages: accepted, delta })
        .map_err(|_| anyhow!("the database writer stopped; see the error above"))
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

/// The campaign table shared by `scan` and `campaigns`.
pub fn campaign_table(list: &[CampaignSummary]) -> String {
    let mut table = Table::new(&[
        ("ID", false),
        ("MESSAGES", true),
        ("SENDERS", true),
        ("RISK", true),
        ("ACTION", false),
        ("FIRST SEEN", false),
        ("LAST SEEN", false),
        ("TEMPLATE", false),
    ]);
    for c in list {
        table.row(vec![
            c.id.clone(),
            thousands(c.messages),
            thousands(c.sender_count),
            c.risk.map_or("-".into(), |r| r.to_string()),
            c.decision.as_ref().map_or("-".into(), |d| d.action.as_str().to_string()),
            short_time(c.first_seen),
            short_time(c.last_seen),
            excerpt(&c.template, 60),
        ]);
    }
    table.render()
}
