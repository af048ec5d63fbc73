//! Files in, campaigns out: the pipeline over files, per chunk of ~16k
//! records.
//!
//! ```text
//! reader thread ──chunks──▶ decode + analyze (parallel, rayon)
//!                           ─▶ order by (time, identity)          ┐ calling thread,
//!                           ─▶ signatures of new templates (par.)  │ deterministic
//!                           ─▶ assign to campaigns (sequential)    ┘
//!                           ──batch + delta──▶ writer thread (segment log + one SQLite transaction, then AfterCommit)
//! ```
//!
//! Channels are bounded (two chunks or batches in flight per stage).
//! Records with the same timestamp are ordered by identity key, and a
//! batch never splits a group of equal timestamps, so campaigns do not
//! depend on thread count or on the file order of equal-time records.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};
use rayon::prelude::*;
use textwatch_engine::minhash::{signature, MinHashScratch, Signature};
use textwatch_engine::{Analyzed, Analyzer, Engine, Scratch};
use textwatch_sources::{Chunk, Reject};
use textwatch_store::sqlite::{SqliteStore, WriteTimes};
use textwatch_store::WriteStore as _;

use crate::batch::{self, AfterCommit};
use crate::PipelineError;

pub use crate::batch::BATCH;

/// How a scan runs.
#[derive(Clone, Debug, Default)]
pub struct ScanOptions {
    /// Analysis threads (None: one per core). Results never depend on it.
    pub threads: Option<usize>,
}

/// What a scan tells its caller as it goes.
pub enum Event<'a> {
    /// A file is being read.
    Started { name: &'a str, format: &'a str },
    /// A file could not be opened or read to the end.
    FileFailed(&'a str),
    /// A file was read to its end, holding `records` records (good or
    /// rejected; 0 for an empty file).
    Finished { name: &'a str, records: u64 },
    /// A record was rejected.
    Rejected(&'a Reject),
    /// Every 200 ms or so.
    Progress { bytes: u64, records: u64, campaigns: usize },
}

/// The caller's answer to an [`Event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Go,
    /// Stop reading; what was assigned so far is committed.
    Stop,
}

/// Counts of a scan.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    pub files: u64,
    pub files_failed: u64,
    pub records: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub alerts: u64,
    /// Whether the caller stopped the scan.
    pub stopped: bool,
}

/// Where a scan spent its time.
#[derive(Clone, Copy, Debug, Default)]
pub struct StageTimes {
    /// The assigning thread, busy.
    pub assign: Duration,
    /// The engine itself (part of `assign`).
    pub engine: Duration,
    /// The assigning thread waiting for analysis.
    pub waiting: Duration,
    /// The writer thread, busy.
    pub writing: Duration,
    /// The writer's time after its commits (alerts: [`AfterCommit`]),
    /// part of `writing`.
    pub acting: Duration,
    /// The store's split of `writing`.
    pub store: WriteTimes,
}

/// What a finished scan hands back.
pub struct Scanned {
    pub store: SqliteStore,
    pub engine: Engine,
    pub totals: Totals,
    pub times: StageTimes,
}

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

/// What the analysis stage hands the assigner: reader events passed
/// through, chunks turned into analyzed records plus the signatures of
/// templates seen for the first time.
enum Stage {
    Reader(ReaderEvent),
    Records { records: Vec<Result<Prepared, Reject>>, sigs: Vec<(u64, Signature)> },
}

struct Commit {
    messages: Vec<Prepared>,
    assigned: batch::Assigned,
}

/// Scans `files` (paths, `-` for standard input) into `store` with
/// `engine` (restored from it), calling `on` for progress, rejects and
/// file failures, and `after` after each commit.
pub fn scan(
    store: SqliteStore,
    mut engine: Engine,
    analyzer: Analyzer,
    files: Vec<String>,
    opts: &ScanOptions,
    after: Box<dyn AfterCommit + Send>,
    on: &mut dyn FnMut(Event<'_>) -> Flow,
) -> Result<Scanned, PipelineError> {
    let spawn = |what: &'static str| move |source| PipelineError::Io { what: format!("starting the {what}"), source };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.unwrap_or(0))
        .thread_name(|i| format!("analyze-{i}"))
        .build()
        .map_err(|e| PipelineError::Setup(format!("starting analysis threads: {e}")))?;
    let (chunk_tx, chunk_rx) = bounded::<ReaderEvent>(2);
    let reader = std::thread::Builder::new()
        .name("reader".into())
        .spawn(move || read_all(files, chunk_tx))
        .map_err(spawn("reader"))?;
    let (an_tx, an_rx) = bounded::<Stage>(2);
    let known: HashSet<u64> = engine.template_keys().collect();
    let min_len = engine.config().min_template_len;
    let analysis = std::thread::Builder::new()
        .name("analysis".into())
        .spawn(move || analyze_all(chunk_rx, an_tx, analyzer, pool, known, min_len))
        .map_err(spawn("analysis stage"))?;
    let (commit_tx, commit_rx) = bounded::<Commit>(2);
    let mut lookup = batch::LazyLookup::of(&store);
    let writer = std::thread::Builder::new()
        .name("writer".into())
        .spawn(move || write_all(store, commit_rx, after))
        .map_err(spawn("writer"))?;

    let mut totals = Totals::default();
    let mut times = StageTimes::default();
    let mut sigs: HashMap<u64, Signature> = HashMap::new();
    let mut pending: batch::Batcher<Prepared> = batch::Batcher::new(BATCH);
    let mut done_bytes = 0u64;
    let mut current: Option<Arc<AtomicU64>> = None;
    let mut reading: Option<(Arc<str>, u64)> = None;
    let mut last_progress = Instant::now();
    let mut wait_since = Instant::now();
    let mut failed: Option<PipelineError> = None;
    'events: for ev in an_rx.iter() {
        times.waiting += wait_since.elapsed();
        let busy_since = Instant::now();
        match ev {
            Stage::Records { records, sigs: new_sigs } => {
                sigs.extend(new_sigs);
                totals.records += records.len() as u64;
                for r in records {
                    match r {
                        Ok(p) => {
                            if let Some(b) = pending.push(p, |p| p.a.msg.ts_ms) {
                                if let Err(e) = assign_batch(
                                    b,
                                    &mut engine,
                                    &mut sigs,
                                    &mut lookup,
                                    &commit_tx,
                                    &mut totals,
                                    &mut times,
                                ) {
                                    failed = Some(e);
                                    break 'events;
                                }
                            }
                        }
                        Err(rej) => {
                            totals.rejected += 1;
                            if on(Event::Rejected(&rej)) == Flow::Stop {
                                totals.stopped = true;
                                break 'events;
                            }
                        }
                    }
                }
                if last_progress.elapsed() > Duration::from_millis(200) {
                    last_progress = Instant::now();
                    let bytes = done_bytes + current.as_ref().map_or(0, |c| c.load(Ordering::Relaxed));
                    let p = Event::Progress { bytes, records: totals.records, campaigns: engine.campaigns() };
                    if on(p) == Flow::Stop {
                        totals.stopped = true;
                        break;
                    }
                }
            }
            Stage::Reader(ReaderEvent::Started { name, format, progress }) => {
                totals.files += 1;
                tracing::info!(file = %name, %format, "reading");
                current = Some(progress);
                let go = on(Event::Started { name: &name, format: &format });
                reading = Some((name, totals.records));
                if go == Flow::Stop {
                    totals.stopped = true;
                    break;
                }
            }
            Stage::Reader(ReaderEvent::Finished { size }) => {
                done_bytes += size;
                current = None;
                if let Some((name, before)) = reading.take() {
                    if on(Event::Finished { name: &name, records: totals.records - before }) == Flow::Stop {
                        totals.stopped = true;
                        break;
                    }
                }
            }
            Stage::Reader(ReaderEvent::Failed(e)) => {
                totals.files_failed += 1;
                if on(Event::FileFailed(&e)) == Flow::Stop {
                    totals.stopped = true;
                    break;
                }
            }
            Stage::Reader(ReaderEvent::Chunk(_)) => {
                // The analysis stage turns chunks into records.
            }
        }
        times.assign += busy_since.elapsed();
        wait_since = Instant::now();
    }
    drop(an_rx);
    if failed.is_none() {
        if let Err(e) =
            assign_batch(pending.finish(), &mut engine, &mut sigs, &mut lookup, &commit_tx, &mut totals, &mut times)
        {
            failed = Some(e);
        }
    }
    drop(commit_tx);
    let written = writer.join().map_err(|_| PipelineError::Stage("database writer (it panicked)"))?;
    // The reader may be blocked on a full channel after a stop; dropping
    // the receiver above ends it.
    let _ = analysis.join();
    let _ = reader.join();
    let (store, writing, acting, alerts) = written?;
    if let Some(e) = failed {
        return Err(e);
    }
    totals.alerts = alerts;
    times.writing = writing;
    times.acting = acting;
    times.store = store.write_times();
    tracing::info!(
        assign_s = times.assign.as_secs_f64(),
        engine_s = times.engine.as_secs_f64(),
        lsh_lookups = engine.lookup_stats().0,
        lsh_verified = engine.lookup_stats().1,
        waiting_for_analysis_s = times.waiting.as_secs_f64(),
        writing_s = times.writing.as_secs_f64(),
        acting_s = times.acting.as_secs_f64(),
        log_s = times.store.log.as_secs_f64(),
        metadata_s = times.store.metadata.as_secs_f64(),
        "stage times"
    );
    Ok(Scanned { store, engine, totals, times })
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
    tx: Sender<Stage>,
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
                Stage::Records { records, sigs }
            }
            other => Stage::Reader(other),
        };
        if tx.send(out).is_err() {
            return;
        }
    }
}

type Written = Result<(SqliteStore, Duration, Duration, u64), PipelineError>;

/// An [`AfterCommit`] that keeps the time spent in it.
struct Timed {
    inner: Box<dyn AfterCommit + Send>,
    spent: Duration,
}

impl AfterCommit for Timed {
    fn after_commit(
        &mut self,
        store: &mut dyn textwatch_store::Store,
        changed: &[textwatch_engine::ClusterRow],
    ) -> Result<u64, String> {
        let t = Instant::now();
        let r = self.inner.after_commit(store, changed);
        self.spent += t.elapsed();
        r
    }
    fn finish(self: Box<Self>) {
        self.inner.finish();
    }
}

fn write_all(mut store: SqliteStore, rx: Receiver<Commit>, after: Box<dyn AfterCommit + Send>) -> Written {
    let mut after = Timed { inner: after, spent: Duration::ZERO };
    let mut origins: Vec<String> = Vec::new();
    // Opt-outs recorded by `serve` or `smpp`: a scanned log that keeps
    // texting those recipients is counted against its campaigns.
    let mut optouts = textwatch_engine::optout::Registry::default();
    optouts.apply(&store.optout_changes()?);
    let mut busy = Duration::ZERO;
    let mut alerts = 0;
    let mut failed = None;
    for c in rx.iter() {
        let t = Instant::now();
        origins.clear();
        origins.extend(c.messages.iter().map(|p| format!("{}:{}", p.file, p.line)));
        let refs: Vec<&str> = origins.iter().map(String::as_str).collect();
        let batch: Vec<&Analyzed> = c.messages.iter().map(|p| &p.a).collect();
        match batch::commit(&mut store, &batch, &refs, &c.assigned, &optouts, &mut after) {
            Ok(n) => alerts += n,
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
        busy += t.elapsed();
    }
    // Alerts already raised are delivered whatever happened next.
    let acting = after.spent;
    Box::new(after).finish();
    if let Some(e) = failed {
        return Err(e);
    }
    store.close_segment()?;
    Ok((store, busy, acting, alerts))
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

/// Assigns a closed batch (see [`batch::Batcher`]) and hands it to the
/// writer.
fn assign_batch(
    batch: Vec<Prepared>,
    engine: &mut Engine,
    sigs: &mut HashMap<u64, Signature>,
    lookup: &mut batch::LazyLookup,
    commit: &Sender<Commit>,
    totals: &mut Totals,
    times: &mut StageTimes,
) -> Result<(), PipelineError> {
    if batch.is_empty() {
        return Ok(());
    }
    let t0 = Instant::now();
    // Only the accepted messages travel on.
    let (messages, assigned, duplicates) = batch::assign_accepted(engine, batch, |p| &p.a, sigs, lookup)?;
    times.engine += t0.elapsed();
    totals.accepted += messages.len() as u64;
    totals.duplicates += duplicates;
    commit.send(Commit { messages, assigned }).map_err(|_| PipelineError::Stage("database writer"))
}
