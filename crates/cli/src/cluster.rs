//! `textwatch publish`, `textwatch worker` and `textwatch status`: the
//! pipeline past one machine, over NATS JetStream. The work is
//! [`textwatch_cluster`]'s; this is its command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use textwatch_cluster::publish::{self, Event};
use textwatch_pipeline::batch::AfterCommit;

use crate::output::{printable, report, thousands, Level};

#[derive(clap::Args, Debug)]
pub struct PublishArgs {
    /// Files to publish: JSONL, CSV or Twilio CSV export, plain or gzip;
    /// `-` is standard input. Read and checked as `scan` reads them.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,

    /// NATS server with JetStream (several separated by commas).
    #[arg(long, env = "TEXTWATCH_NATS", value_name = "URL")]
    nats: String,

    /// Summary as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct WorkerArgs {
    /// NATS server with JetStream (several separated by commas).
    #[arg(long, env = "TEXTWATCH_NATS", value_name = "URL")]
    nats: String,

    /// Only analyze; never take the assigner's role.
    #[arg(long, conflicts_with = "assign_only")]
    analyze_only: bool,

    /// Only bid for the assigner's role; analyze nothing.
    #[arg(long)]
    assign_only: bool,

    /// Add the rule packs (*.toml) in this directory to the built-in ones
    /// (repeatable); every worker must be given the same.
    #[arg(long, value_name = "DIR", env = "TEXTWATCH_RULES", value_delimiter = ':')]
    rules: Vec<PathBuf>,

    /// Send campaign alerts here while this worker assigns (repeatable):
    /// `stdout`, `file:PATH`, or a webhook URL, as `scan --alert`.
    #[arg(long = "alert", value_name = "SINK")]
    alerts: Vec<textwatch_sinks::alerts::Sink>,

    #[command(flatten)]
    ctx: crate::context::ContextArgs,

    #[command(flatten)]
    dedup: crate::dedup::DedupArgs,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// NATS server with JetStream.
    #[arg(long, env = "TEXTWATCH_NATS", value_name = "URL")]
    nats: String,

    /// As JSON.
    #[arg(long)]
    json: bool,
}

pub fn publish(args: PublishArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let mut shown = 0u64;
    let mut failed_files = 0u64;
    let mut on = |ev: Event<'_>| match ev {
        Event::Started { name } => tracing::info!(file = %name, "publishing"),
        Event::FileFailed(e) => {
            failed_files += 1;
            report(Level::Error, e);
        }
        Event::Rejected(r) => {
            if shown < 20 {
                eprintln!("textwatch: rejected {}", printable(&r.to_string(), false));
            } else if shown == 20 {
                eprintln!("textwatch: further rejects are counted, not shown");
            }
            shown += 1;
        }
        Event::Progress { records, published, .. } => {
            tracing::debug!(records, published, "publishing");
        }
    };
    let done = publish::publish_to(&args.nats, &args.files, &mut on)?;
    let secs = started.elapsed().as_secs_f64();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&done)?);
    } else {
        let seqs = match (done.first_seq, done.last_seq) {
            (Some(a), Some(b)) => format!(" (sequences {a}-{b})"),
            _ => String::new(),
        };
        println!(
            "published {} of {} records to {}{seqs} in {:.1} s; {} rejected",
            thousands(done.published),
            thousands(done.records),
            textwatch_cluster::broker::IN_STREAM,
            secs,
            thousands(done.rejected),
        );
    }
    Ok(if failed_files > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

pub fn worker(db: &textwatch_store::Location, args: WorkerArgs) -> Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    textwatch_cluster::node::stop_on_signals(stop.clone())?;
    let (files, sinks) = (args.ctx.files(), args.alerts.clone());
    let after: textwatch_cluster::node::AfterFactory = Box::new(move |store| {
        let enricher = textwatch_sinks::enrich::Enricher::load(store, &files).map_err(|e| e.to_string())?;
        let w = textwatch_sinks::alerts::Watcher::new(enricher, sinks.clone()).map_err(|e| e.to_string())?;
        Ok(Box::new(w) as Box<dyn AfterCommit + Send>)
    });
    let cfg = textwatch_cluster::node::NodeConfig {
        nats: args.nats,
        db: db.clone(),
        rules: args.rules,
        analyze: !args.assign_only,
        assign: !args.analyze_only,
        dedup_keys: args.dedup.keys(),
    };
    eprintln!(
        "textwatch: worker on {} with {}{}; Ctrl-C stops it",
        cfg.nats,
        db,
        if cfg.assign { " (it assigns while it holds the store's lock)" } else { "" }
    );
    textwatch_cluster::node::run(cfg, after, stop, Default::default())?;
    Ok(ExitCode::SUCCESS)
}

pub fn status(db: &textwatch_store::Location, args: StatusArgs) -> Result<ExitCode> {
    let p = textwatch_cluster::broker::progress_of(&args.nats)?;
    let cursor = match db {
        textwatch_store::Location::Sqlite(path) if !path.exists() => None,
        _ => db.open_existing()?.cursor(textwatch_cluster::assigner::CURSOR)?,
    }
    .map(|(c, carry)| (c as u64, carry.len() as u64));
    // Published and not yet committed by the assigner (records a batch
    // kept back for the next count as not yet assigned).
    let behind = match cursor {
        Some((c, carry)) => (p.in_last + 1).saturating_sub(c) + carry,
        None => p.in_last.saturating_sub(p.in_first.saturating_sub(1)),
    };
    let cursor = cursor.map(|(c, _)| c);
    if args.json {
        let v = serde_json::json!({
            "in_first_seq": p.in_first,
            "in_last_seq": p.in_last,
            "workers_pending": p.workers_pending,
            "workers_in_flight": p.workers_in_flight,
            "analyzed_waiting": p.analyzed_waiting,
            "assigned_below_seq": cursor,
            "not_yet_assigned": behind,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("published      sequences {}-{}", p.in_first, p.in_last);
        println!(
            "workers        {} waiting, {} in flight",
            thousands(p.workers_pending),
            thousands(p.workers_in_flight)
        );
        println!("assigner       {} analyzed records waiting", thousands(p.analyzed_waiting));
        match cursor {
            Some(c) => println!("store          assigned everything below sequence {c}; {} to go", thousands(behind)),
            None => println!("store          {} has assigned nothing from the broker yet", db),
        }
    }
    Ok(ExitCode::SUCCESS)
}
