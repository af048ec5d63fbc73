//! The assigner: the one stateful step. It takes the workers' records
//! from `TEXTWATCH_ANALYZED`, puts them back in input order (their
//! `TEXTWATCH_IN` sequence), cuts them into the batches `scan` would cut
//! ([`Batcher`]), assigns each batch with the engine and commits it to the
//! store together with its cursor, then acks the records.
//!
//! The cursor is the lowest input sequence not yet committed: records a
//! batch kept back for the next one (equal timestamps) are not acked, so
//! after a crash the broker hands out everything from the cursor on again;
//! what was already committed among them is a duplicate to the engine
//! (its check is exact) and is not stored twice.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::Message as JsMessage;
use futures_util::StreamExt;
use textwatch_engine::minhash::Signature;
use textwatch_engine::optout::Registry;
use textwatch_engine::{Analyzed, Engine, Outcome};
use textwatch_pipeline::batch::{self, AfterCommit, Batcher, BATCH};
use textwatch_store::sqlite::SqliteStore;

use crate::broker::Broker;
use crate::wire::Record;
use crate::ClusterError;

/// The name the assigner's cursor is stored under.
pub const CURSOR: &str = "nats:TEXTWATCH_IN";
/// Records fetched per round.
const FETCH: usize = 4096;
/// With nothing new for this long and nothing in flight, what is pending
/// is assigned as if the input had ended.
const IDLE: Duration = Duration::from_millis(750);
/// A missing input sequence is reported this often while the assigner
/// waits for it.
const GAP_REPORT: Duration = Duration::from_secs(30);

/// Counters of an assigner (for logs and `/metrics`).
#[derive(Debug, Default)]
pub struct AssignerStats {
    pub accepted: AtomicU64,
    pub duplicates: AtomicU64,
    pub skipped: AtomicU64,
    pub batches: AtomicU64,
    pub alerts: AtomicU64,
    /// The cursor after the last commit.
    pub cursor: AtomicU64,
}

struct Item {
    seq: u64,
    a: Analyzed,
    origin: String,
    sig: Option<Signature>,
}

struct Waiting {
    rec: Record,
    msg: JsMessage,
}

/// One assigner's state.
pub struct Assigner {
    store: SqliteStore,
    engine: Engine,
    after: Box<dyn AfterCommit + Send>,
    optouts: Registry,
    /// The next input sequence to feed the batcher.
    next: u64,
    /// Records that arrived ahead of `next`.
    ahead: BTreeMap<u64, Waiting>,
    /// Fed records not yet acked (their batch is not committed, or the
    /// cursor has not passed them).
    held: BTreeMap<u64, JsMessage>,
    batcher: Batcher<Item>,
    stats: Arc<AssignerStats>,
}

impl Assigner {
    /// An assigner continuing from `store` (which must hold the writer's
    /// lock) with `engine` restored from it. A store that has never
    /// assigned from the broker starts at the first input the stream holds.
    pub async fn new(
        broker: &Broker,
        store: SqliteStore,
        engine: Engine,
        after: Box<dyn AfterCommit + Send>,
        stats: Arc<AssignerStats>,
    ) -> Result<Self, ClusterError> {
        let (first, _) = broker.in_bounds().await?;
        let next = match store.cursor(CURSOR)? {
            Some(c) => c as u64,
            None => first.max(1),
        };
        let mut optouts = Registry::default();
        optouts.apply(&store.optout_changes()?);
        // Alerts the last assigner may have died before raising.
        let mut store = store;
        let mut after = after;
        let window = engine.config().singleton_window;
        let campaigns = textwatch_store::Store::load_peek_snapshot(&mut store, window)?.clusters;
        match after.resume(&mut store, &campaigns) {
            Ok(0) => {}
            Ok(n) => tracing::warn!(alerts = n, "assigner: raised alerts a stopped assigner had not"),
            Err(e) => tracing::error!(error = %e, "assigner: catching up on alerts"),
        }
        stats.cursor.store(next, Ordering::Relaxed);
        tracing::info!(next, messages = engine.messages_seen(), campaigns = engine.campaigns(), "assigner: starting");
        Ok(Assigner {
            store,
            engine,
            after,
            optouts,
            next,
            ahead: BTreeMap::new(),
            held: BTreeMap::new(),
            batcher: Batcher::new(BATCH),
            stats,
        })
    }

    /// Runs until `stop` is set or the store fails. What is not committed
    /// when it stops stays unacked, for the next assigner.
    pub async fn run(mut self, broker: &Broker, stop: &AtomicBool) -> Result<(), ClusterError> {
        let consumer = broker.assigner().await?;
        let mut last_fed = Instant::now();
        let mut gap_since: Option<Instant> = None;
        let mut gap_reported = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let mut fetched = consumer
                .fetch()
                .max_messages(FETCH)
                .expires(Duration::from_millis(250))
                .messages()
                .await
                .map_err(|e| ClusterError::Broker(format!("fetching records: {e}")))?;
            let mut any = false;
            while let Some(m) = fetched.next().await {
                let m = m.map_err(|e| ClusterError::Broker(format!("fetching records: {e}")))?;
                any = true;
                self.take(m).await?;
            }
            if self.feed().await? > 0 {
                last_fed = Instant::now();
                gap_since = None;
            }
            if !self.ahead.is_empty() {
                // Something after `next` is here and `next` is not: a
                // worker holds it (or died holding it: the broker hands it
                // to another after the ack wait).
                let since = *gap_since.get_or_insert_with(Instant::now);
                if since.elapsed() > GAP_REPORT && gap_reported.elapsed() > GAP_REPORT {
                    gap_reported = Instant::now();
                    let (first, _) = broker.in_bounds().await?;
                    if first > self.next {
                        tracing::error!(
                            from = self.next,
                            to = first - 1,
                            "assigner: input messages expired from the stream before they were assigned; skipping them"
                        );
                        self.stats.skipped.fetch_add(first - self.next, Ordering::Relaxed);
                        self.next = first;
                    } else {
                        tracing::warn!(
                            waiting_for = self.next,
                            ahead = self.ahead.len(),
                            "assigner: waiting for an input message a worker holds"
                        );
                    }
                }
            } else if !any && !self.batcher.is_empty() && last_fed.elapsed() > IDLE {
                // Idle: when every published message has been fed, the
                // input has ended for now; assign what is pending.
                let (_, last) = broker.in_bounds().await?;
                if last < self.next {
                    let b = self.batcher.finish();
                    self.commit(b).await?;
                }
            }
        }
        tracing::info!(next = self.next, "assigner: stopping");
        self.after.finish();
        self.store.close_segment()?;
        Ok(())
    }

    /// Sorts a fetched record in: ahead of `next` it waits; behind it, it
    /// is a second delivery.
    async fn take(&mut self, msg: JsMessage) -> Result<(), ClusterError> {
        let rec = match Record::decode(&msg.payload) {
            Ok(r) => r,
            Err(reason) => {
                tracing::warn!(%reason, "assigner: dropping a stream message that is not a record");
                return ack(&msg).await;
            }
        };
        let seq = rec.seq;
        if seq >= self.next {
            // A record that came twice replaces the one waiting; the other
            // delivery is acked when it comes back behind `next`.
            self.ahead.insert(seq, Waiting { rec, msg });
        } else if let Some(h) = self.held.get_mut(&seq) {
            // Fed and not yet acked: keep the newest delivery to ack.
            *h = msg;
        } else {
            // Committed, and the cursor is past it.
            ack(&msg).await?;
        }
        Ok(())
    }

    /// Feeds the batcher every record that is next in input order,
    /// committing each batch that closes. Returns how many were fed.
    async fn feed(&mut self) -> Result<usize, ClusterError> {
        let mut fed = 0;
        while let Some(w) = self.ahead.remove(&self.next) {
            let seq = self.next;
            self.next += 1;
            fed += 1;
            self.held.insert(seq, w.msg);
            let origin = w.rec.origin.clone();
            match w.rec.into_parts() {
                Ok((a, sig)) => {
                    if let Some(b) = self.batcher.push(Item { seq, a, origin, sig }, |i| i.a.msg.ts_ms) {
                        self.commit(b).await?;
                    }
                }
                Err(reason) => {
                    self.stats.skipped.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(seq, %reason, "assigner: skipping an input that is not a message");
                }
            }
        }
        Ok(fed)
    }

    /// Assigns and commits a closed batch with the new cursor, then acks
    /// every held record the cursor has passed.
    async fn commit(&mut self, mut items: Vec<Item>) -> Result<(), ClusterError> {
        let cursor = self.batcher_min_seq().unwrap_or(self.next);
        items.sort_unstable_by_key(|i| batch::order_key(&i.a));
        let mut sigs: HashMap<u64, Signature> = HashMap::new();
        for i in &mut items {
            if let Some(s) = i.sig.take() {
                sigs.insert(i.a.template_key, s);
            }
        }
        let refs: Vec<&Analyzed> = items.iter().map(|i| &i.a).collect();
        let assigned = batch::assign(&mut self.engine, &refs, &mut sigs);
        // Only the accepted messages are stored; outcomes re-indexed to them.
        let mut kept: Vec<&Analyzed> = Vec::with_capacity(refs.len());
        let mut origins: Vec<&str> = Vec::with_capacity(refs.len());
        let mut outcomes = Vec::with_capacity(refs.len());
        let (mut accepted, mut duplicates) = (0u64, 0u64);
        for (i, o) in items.iter().zip(assigned.outcomes) {
            match o {
                Outcome::Duplicate => duplicates += 1,
                o @ Outcome::Accepted { .. } => {
                    accepted += 1;
                    kept.push(&i.a);
                    origins.push(&i.origin);
                    outcomes.push(o);
                }
            }
        }
        let assigned = batch::Assigned { outcomes, delta: assigned.delta };
        self.store.stage_cursor(CURSOR, cursor as i64);
        let alerts = batch::commit(&mut self.store, &kept, &origins, &assigned, &self.optouts, self.after.as_mut())?;
        self.stats.accepted.fetch_add(accepted, Ordering::Relaxed);
        self.stats.duplicates.fetch_add(duplicates, Ordering::Relaxed);
        self.stats.alerts.fetch_add(alerts, Ordering::Relaxed);
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stats.cursor.store(cursor, Ordering::Relaxed);
        tracing::debug!(records = items.len(), accepted, duplicates, cursor, "assigner: committed a batch");
        let keep = self.held.split_off(&cursor);
        let passed = std::mem::replace(&mut self.held, keep);
        for m in passed.values() {
            ack(m).await?;
        }
        Ok(())
    }

    fn batcher_min_seq(&self) -> Option<u64> {
        self.batcher.pending().iter().map(|i| i.seq).min()
    }
}

async fn ack(m: &JsMessage) -> Result<(), ClusterError> {
    m.ack().await.map_err(|e| ClusterError::Broker(format!("acknowledging a record: {e}")))
}
