//! The ingest worker: the one thread that assigns messages to campaigns
//! and writes them. Handlers hand it batches through a bounded queue and
//! get an answer only after the batch is committed.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use crossbeam_channel::Receiver;
use rayon::prelude::*;
use serde::Serialize;
use textwatch_engine::optout::{Change, Registry};
use textwatch_engine::{Analyzer, Engine, Message, Outcome, Scratch};
use textwatch_sources::spam_reports::ReportRecord;
use textwatch_store::WriteStore;
use tokio::sync::{broadcast, oneshot};

use textwatch_sinks::alerts::Watcher;

use crate::error::{Result, ServerError};

/// One record's fate.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RecordResult {
    /// The message id (as given, or `h-` and the identity hash).
    pub id: String,
    /// `accepted` or `duplicate`.
    pub status: &'static str,
    /// The campaign it joined, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
}

/// Work for the worker: a batch of messages, or changes of opt-out state.
pub enum Job {
    Messages {
        messages: Vec<(Message, String)>,
        reply: oneshot::Sender<Result<Vec<RecordResult>, String>>,
    },
    OptOut {
        changes: Vec<Change>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Spam reports: paired (7726 halves wait in the store), then stored
    /// as messages.
    Reports {
        records: Vec<ReportRecord>,
        reply: oneshot::Sender<Result<ReportsOutcome, String>>,
    },
    /// `serve --nats`: spam reports paired only; the handler puts the
    /// reports on the cluster's input stream.
    PairReports {
        records: Vec<ReportRecord>,
        reply: oneshot::Sender<Result<textwatch_pipeline::spam_reports::Paired, String>>,
    },
    /// First halves of 7726 reports given back to wait, when the reports
    /// they made were not stored.
    GiveBack {
        taken: Vec<([u8; 16], i64, String)>,
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// What a batch of spam reports gave.
pub struct ReportsOutcome {
    pub results: Vec<RecordResult>,
    pub waiting: usize,
    pub unpaired: usize,
}

pub struct Worker {
    pub engine: Arc<RwLock<Engine>>,
    pub store: Box<dyn WriteStore>,
    pub analyzer: Analyzer,
    pub watcher: Watcher,
    pub events: broadcast::Sender<String>,
    pub known_clusters: HashSet<u32>,
    pub metrics: Arc<super::metrics::Metrics>,
    /// Opt-outs: written here after they are stored, read by verdicts.
    pub optouts: Arc<RwLock<Registry>>,
}

/// Why a batch was not stored.
#[derive(Debug)]
enum Failed {
    /// Before the engine changed (a deduplication lookup failed): the
    /// request gets its error and the server goes on.
    Refused(ServerError),
    /// After the engine counted the batch: only a restart, which reloads
    /// the engine from what was committed, is consistent.
    Fatal(ServerError),
}

fn poisoned() -> ServerError {
    ServerError::Internal("engine lock poisoned".into())
}

impl Worker {
    pub fn run(mut self, rx: Receiver<Job>) {
        for job in rx.iter() {
            self.metrics.queue_depth.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            let (messages, reply) = match job {
                Job::Messages { messages, reply } => (messages, reply),
                Job::Reports { records, reply } => {
                    let paired = textwatch_pipeline::spam_reports::pair(&mut *self.store, &self.analyzer, records);
                    let r = match paired {
                        Err(e) => Err(format!("{e:#}")),
                        Ok(p) => {
                            let msgs = p.messages.into_iter().map(|m| (m, "api:reports".to_string())).collect();
                            match self.process(msgs) {
                                Ok(results) => Ok(ReportsOutcome { results, waiting: p.waiting, unpaired: p.unpaired }),
                                Err(Failed::Refused(e)) => {
                                    // Nothing stored: the first halves wait again.
                                    if let Err(g) =
                                        textwatch_pipeline::spam_reports::give_back(&mut *self.store, &p.taken)
                                    {
                                        tracing::error!(error = %g, "could not put 7726 first halves back to wait");
                                    }
                                    Err(format!("{e:#}"))
                                }
                                Err(Failed::Fatal(e)) => {
                                    // As for messages: the engine counted what the
                                    // database did not take; restart from the database.
                                    let e = format!("{e:#}");
                                    tracing::error!(error = %e, "storing spam reports failed");
                                    let _ = reply.send(Err(e));
                                    std::thread::sleep(std::time::Duration::from_millis(200));
                                    std::process::exit(70);
                                }
                            }
                        }
                    };
                    let _ = reply.send(r);
                    continue;
                }
                Job::PairReports { records, reply } => {
                    let paired = textwatch_pipeline::spam_reports::pair(&mut *self.store, &self.analyzer, records);
                    let _ = reply.send(paired.map_err(|e| format!("{e:#}")));
                    continue;
                }
                Job::GiveBack { taken, reply } => {
                    let r = textwatch_pipeline::spam_reports::give_back(&mut *self.store, &taken);
                    if let Err(e) = &r {
                        tracing::error!(error = %e, reports = taken.len(), "could not put 7726 first halves back to wait");
                    }
                    let _ = reply.send(r.map_err(|e| format!("{e:#}")));
                    continue;
                }
                Job::OptOut { changes, reply } => {
                    // Stored first: a change is in force only once durable.
                    let r = self.store.record_optout_changes(&changes).map_err(|e| format!("{e:#}"));
                    if r.is_ok() {
                        self.optouts.write().unwrap_or_else(|e| e.into_inner()).apply(&changes);
                    } else if let Err(e) = &r {
                        tracing::error!(error = %e, "storing an opt-out failed");
                    }
                    let _ = reply.send(r);
                    continue;
                }
            };
            match self.process(messages) {
                Ok(results) => {
                    let _ = reply.send(Ok(results));
                }
                Err(Failed::Refused(e)) => {
                    let e = format!("{e:#}");
                    tracing::error!(error = %e, "ingest batch refused");
                    let _ = reply.send(Err(e));
                }
                Err(Failed::Fatal(e)) => {
                    // The engine has already counted the batch but the database
                    // did not take it: going on would answer "duplicate" for
                    // messages that were never stored. Fail stop; a restart
                    // reloads the engine from what was committed.
                    let e = format!("{e:#}");
                    tracing::error!(error = %e, "ingest batch failed");
                    eprintln!("textwatch serve: a database write failed ({e}); exiting so that a restart reloads a consistent state");
                    let _ = reply.send(Err(e));
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    std::process::exit(70);
                }
            }
        }
        self.watcher.finish();
        // Seal the open segment so the files at rest are complete streams
        // (a killed server leaves that to the next writer).
        if let Err(e) = self.store.close_segment() {
            tracing::error!(error = %e, "closing the message log's segment");
        }
    }

    /// Analyzes, assigns and stores a batch. A [`Failed::Refused`] batch
    /// left the engine as it was; after a [`Failed::Fatal`] one the engine
    /// counted what the database did not take.
    fn process(&mut self, messages: Vec<(Message, String)>) -> std::result::Result<Vec<RecordResult>, Failed> {
        let analyzer = &self.analyzer;
        let mut analyzed: Vec<(textwatch_engine::Analyzed, String)> = messages
            .into_par_iter()
            .map_init(Scratch::default, |s, (m, origin)| (analyzer.analyze(m, s), origin))
            .collect();
        // Within a request, the order a scan assigns in (time, then
        // identity), so that the same messages give the same campaigns
        // through either.
        analyzed.sort_by_key(|(a, _)| textwatch_pipeline::batch::order_key(a));
        let batch: Vec<&textwatch_engine::Analyzed> = analyzed.iter().map(|(a, _)| a).collect();
        let origins: Vec<&str> = analyzed.iter().map(|(_, o)| o.as_str()).collect();
        // Messages older than the keys the engine holds are looked up in
        // the log under the read lock: checks go on meanwhile, and only
        // this thread changes the engine.
        let known = {
            let engine = self.engine.read().map_err(|_| Failed::Refused(poisoned()))?;
            textwatch_pipeline::batch::stored_repeats(
                &engine,
                &batch,
                &mut textwatch_pipeline::batch::Lookups(&mut *self.store),
            )
            .map_err(|e| Failed::Refused(e.into()))?
        };
        let assigned = {
            let mut engine = self.engine.write().map_err(|_| Failed::Refused(poisoned()))?;
            textwatch_pipeline::batch::assign_known(&mut engine, &batch, &mut std::collections::HashMap::new(), &known)
        };
        let results: Vec<RecordResult> = batch
            .iter()
            .zip(&assigned.outcomes)
            .map(|(a, o)| match o {
                Outcome::Duplicate => RecordResult { id: a.display_id(), status: "duplicate", campaign: None },
                Outcome::Accepted { campaign, .. } => RecordResult {
                    id: a.display_id(),
                    status: "accepted",
                    campaign: campaign.map(textwatch_engine::campaign_id),
                },
            })
            .collect();
        // The batch is stored before anything else; an alert problem is
        // then logged, not fatal.
        let raised = {
            let optouts = self.optouts.read().unwrap_or_else(|e| e.into_inner());
            textwatch_pipeline::batch::commit(
                &mut *self.store,
                &batch,
                &origins,
                &assigned,
                &optouts,
                &mut self.watcher,
            )
            .map_err(|e| Failed::Fatal(e.into()))?
        };
        let stored = assigned.accepted().count();
        self.metrics.messages_in.fetch_add(stored as u64, std::sync::atomic::Ordering::Relaxed);
        for c in &assigned.delta.clusters {
            if self.known_clusters.insert(c.seq) {
                let ev = serde_json::json!({"type": "campaign-created", "campaign": c.id(), "messages": c.messages, "senders": c.senders});
                let _ = self.events.send(ev.to_string());
            }
        }
        if raised > 0 {
            let alerts = self.store.alerts().unwrap_or_default();
            for a in alerts.into_iter().rev().take(raised as usize) {
                let _ = self.events.send(format!("{{\"type\":\"campaign-alert\",\"alert\":{a}}}"));
            }
        }
        Ok(results)
    }
}
