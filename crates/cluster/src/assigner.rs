//! The assigner: the one stateful step. It takes the workers' records
//! from `TEXTWATCH_ANALYZED`, puts them back in input order (their
//! `TEXTWATCH_IN` sequence), cuts them into the batches `scan` would cut
//! ([`Batcher`]), assigns each batch with the engine and commits it to the
//! store together with its cursor.
//!
//! `TEXTWATCH_IN` is the source of truth; the analyzed records are the
//! workers' work, which the assigner can always redo. The cursor is the
//! next input sequence to feed, stored with the *carry*: the sequences
//! below it a batch kept back for the next (equal timestamps). A record is
//! acked once fed to the batcher; a new assigner reads the carry, and any
//! input from the cursor on that no record brings, straight from
//! `TEXTWATCH_IN` and analyzes it itself. An input the
//! assigner waits for too long (a worker died holding it, its record was
//! unreadable, or the records after it filled the in-flight limit) is read
//! from `TEXTWATCH_IN` the same way, so no gap stalls it for good. What is
//! delivered twice is dropped by sequence, and what the engine saw
//! already is a duplicate to its exact check.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::stream::{LastRawMessageErrorKind, Stream};
use async_nats::jetstream::Message as JsMessage;
use futures_util::StreamExt;
use textwatch_engine::minhash::Signature;
use textwatch_engine::optout::Registry;
use textwatch_engine::{Analyzed, Analyzer, Engine, Scratch};
use textwatch_pipeline::batch::{self, AfterCommit, Batcher, BATCH};
use textwatch_store::WriteStore;

use crate::broker::Broker;
use crate::wire::{self, Record};
use crate::ClusterError;

/// The name the assigner's cursor is stored under.
pub const CURSOR: &str = "nats:TEXTWATCH_IN";
/// Records fetched per round.
const FETCH: usize = 4096;
/// With nothing new for this long and nothing in flight, what is pending
/// is assigned as if the input had ended.
const IDLE: Duration = Duration::from_millis(750);
/// Waiting this long for the next input (longer than a worker's ack
/// wait), the assigner reads it from `TEXTWATCH_IN` itself.
const GAP: Duration = Duration::from_secs(20);
/// Records waiting behind a gap that make the assigner fill it at once
/// (before the broker's in-flight limit stops deliveries; past that limit
/// the gap is filled after [`GAP`]).
const GAP_AHEAD: usize = 65_536;

/// Counters of an assigner (for logs and `/metrics`).
#[derive(Debug, Default)]
pub struct AssignerStats {
    pub accepted: AtomicU64,
    pub duplicates: AtomicU64,
    /// Inputs that were not messages, or expired before they were assigned.
    pub skipped: AtomicU64,
    /// Inputs the assigner analyzed itself (gaps, carry after a restart).
    pub filled: AtomicU64,
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

/// One assigner's state.
pub struct Assigner {
    store: Box<dyn WriteStore>,
    engine: Engine,
    after: Box<dyn AfterCommit + Send>,
    optouts: Registry,
    /// To analyze inputs read from `TEXTWATCH_IN` directly.
    analyzer: Analyzer,
    scratch: Scratch,
    input: Stream,
    /// The next input sequence to feed the batcher.
    next: u64,
    /// Records that arrived ahead of `next`, with the stream message that
    /// brought them.
    ahead: BTreeMap<u64, (Record, u64)>,
    /// Fed records not yet done with (`None`: read from the input stream,
    /// or carried over a restart).
    held: BTreeMap<u64, Option<u64>>,
    /// Stream messages not yet acked, each with how many of its records
    /// are not yet done with; acked when none is left.
    messages: HashMap<u64, (JsMessage, usize)>,
    next_message: u64,
    batcher: Batcher<Item>,
    stats: Arc<AssignerStats>,
}

impl Assigner {
    /// An assigner continuing from `store` (which must hold the writer's
    /// lock) with `engine` restored from it. A store that has never
    /// assigned from the broker starts at the first input the stream
    /// holds; records a batch had kept back are read again from the input.
    pub async fn new(
        broker: &Broker,
        mut store: Box<dyn WriteStore>,
        engine: Engine,
        mut after: Box<dyn AfterCommit + Send>,
        analyzer: Analyzer,
        stats: Arc<AssignerStats>,
    ) -> Result<Self, ClusterError> {
        let input = broker.in_stream().await?;
        let (first, last) = broker.in_bounds().await?;
        let (mut next, carry) = match store.cursor(CURSOR)? {
            Some((c, carry)) => (c as u64, carry),
            None => (first.max(1), Vec::new()),
        };
        if next < first {
            tracing::error!(
                from = next,
                to = first - 1,
                "assigner: inputs expired from the stream before they were assigned; skipping them"
            );
            stats.skipped.fetch_add(first - next, Ordering::Relaxed);
            next = first;
        }
        if next > last + 1 {
            tracing::error!(
                cursor = next,
                stream_last = last,
                "assigner: the input stream holds less than the store has assigned (was it recreated?); \
                 starting at its first message (what the store has is a duplicate to the engine)"
            );
            next = first.max(1);
        }
        let mut optouts = Registry::default();
        optouts.apply(&store.optout_changes()?);
        // Alerts the last assigner may have died before raising.
        let window = engine.config().singleton_window;
        let campaigns = store.load_peek_snapshot(window)?.clusters;
        match after.resume(&mut *store, &campaigns) {
            Ok(0) => {}
            Ok(n) => tracing::warn!(alerts = n, "assigner: raised alerts a stopped assigner had not"),
            Err(e) => tracing::error!(error = %e, "assigner: catching up on alerts"),
        }
        stats.cursor.store(next, Ordering::Relaxed);
        tracing::info!(
            next,
            carry = carry.len(),
            messages = engine.messages_seen(),
            campaigns = engine.campaigns(),
            "assigner: starting"
        );
        let mut a = Assigner {
            store,
            engine,
            after,
            optouts,
            analyzer,
            scratch: Scratch::default(),
            input,
            next,
            ahead: BTreeMap::new(),
            held: BTreeMap::new(),
            messages: HashMap::new(),
            next_message: 0,
            batcher: Batcher::new(BATCH),
            stats,
        };
        // The carry goes back into the batcher first, as it was.
        for seq in carry {
            if let Some(item) = a.read_input(seq).await? {
                a.held.insert(seq, None);
                a.batcher.push(item, |i| i.a.msg.ts_ms);
            }
        }
        Ok(a)
    }

    /// Runs until `stop` is set or the store fails. What is not committed
    /// when it stops stays unacked or in the carry, for the next assigner.
    pub async fn run(mut self, broker: &Broker, stop: &AtomicBool) -> Result<(), ClusterError> {
        let consumer = broker.assigner().await?;
        let mut last_fed = Instant::now();
        let mut backoff = Duration::from_millis(100);
        let mut checked = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let mut any = false;
            let fetched = async {
                let mut batch = consumer
                    .fetch()
                    .max_messages(FETCH)
                    .expires(Duration::from_millis(250))
                    .messages()
                    .await
                    .map_err(|e| ClusterError::Broker(format!("fetching records: {e}")))?;
                let mut got = Vec::new();
                while let Some(m) = batch.next().await {
                    got.push(m.map_err(|e| ClusterError::Broker(format!("fetching records: {e}")))?);
                }
                Ok::<_, ClusterError>(got)
            }
            .await;
            match fetched {
                Ok(got) => {
                    backoff = Duration::from_millis(100);
                    for m in got {
                        any = true;
                        self.take(m).await?;
                    }
                }
                Err(e) => {
                    // The broker is away: the engine's state stays; retry.
                    tracing::error!(error = %e, retry_in_ms = backoff.as_millis() as u64, "assigner");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
            if self.feed().await? > 0 {
                last_fed = Instant::now();
            }
            let waited = last_fed.elapsed();
            if self.ahead.len() >= GAP_AHEAD || (waited > GAP && checked.elapsed() > Duration::from_secs(1)) {
                checked = Instant::now();
                // The next input is late: read it (and what is missing up to
                // the records waiting) from the input stream.
                let (_, last) = broker.in_bounds().await?;
                if last >= self.next {
                    let upto = self.ahead.keys().next().map_or(last, |&k| k - 1).min(self.next + FETCH as u64 - 1);
                    tracing::warn!(from = self.next, to = upto, "assigner: reading late inputs from the input stream");
                    // Until records come again, a round a second: with no
                    // worker running, the assigner analyzes alone.
                    self.fill(upto).await?;
                }
            } else if !any
                && self.ahead.is_empty()
                && (!self.batcher.is_empty() || !self.held.is_empty())
                && waited > IDLE
            {
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

    /// Sorts a fetched stream message's records in: ahead of `next` a
    /// record waits; behind it, or already waiting, it is a second
    /// delivery and done with at once.
    async fn take(&mut self, msg: JsMessage) -> Result<(), ClusterError> {
        let records = match Record::decode_batch(&msg.payload) {
            Ok(r) => r,
            Err(reason) => {
                // Its inputs are read from the input stream when they are due.
                tracing::warn!(%reason, "assigner: dropping a stream message that is not a batch of records");
                return ack(&msg).await;
            }
        };
        if records.is_empty() {
            return ack(&msg).await;
        }
        let id = self.next_message;
        self.next_message += 1;
        self.messages.insert(id, (msg, records.len()));
        for rec in records {
            let seq = rec.seq;
            if seq >= self.next && !self.ahead.contains_key(&seq) {
                self.ahead.insert(seq, (rec, id));
            } else {
                // Fed, committed, or waiting already (two workers analyzed
                // this input, or the broker handed the message out again).
                self.done(Some(id)).await?;
            }
        }
        Ok(())
    }

    /// One record of stream message `id` is done with: acks the message
    /// when it was the last.
    async fn done(&mut self, id: Option<u64>) -> Result<(), ClusterError> {
        let Some(id) = id else { return Ok(()) };
        if let Some((_, left)) = self.messages.get_mut(&id) {
            *left = left.saturating_sub(1);
            if *left == 0 {
                if let Some((m, _)) = self.messages.remove(&id) {
                    ack(&m).await?;
                }
            }
        }
        Ok(())
    }

    /// Feeds the batcher every record that is next in input order,
    /// committing each batch that closes. Returns how many were fed.
    async fn feed(&mut self) -> Result<usize, ClusterError> {
        let mut fed = 0;
        while let Some((rec, id)) = self.ahead.remove(&self.next) {
            let seq = self.next;
            fed += 1;
            // Acked once fed: what a batch has not committed yet is read
            // again from TEXTWATCH_IN after a crash (the carry, and the
            // gap from the cursor on). Holding it would let a batch's
            // records fill the broker's in-flight limit before it closes.
            self.held.insert(seq, None);
            self.done(Some(id)).await?;
            let origin = rec.origin.clone();
            match rec.into_parts() {
                Ok((a, sig)) => self.push(Item { seq, a, origin, sig }).await?,
                Err(reason) => {
                    self.next += 1;
                    self.stats.skipped.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(seq, %reason, "assigner: skipping an input that is not a message");
                }
            }
        }
        Ok(fed)
    }

    /// Feeds one item (the next input) to the batcher.
    async fn push(&mut self, item: Item) -> Result<(), ClusterError> {
        self.next = item.seq + 1;
        if let Some(b) = self.batcher.push(item, |i| i.a.msg.ts_ms) {
            self.commit(b).await?;
        }
        Ok(())
    }

    /// Reads inputs `next..=upto` from the input stream and feeds them.
    async fn fill(&mut self, upto: u64) -> Result<(), ClusterError> {
        while self.next <= upto {
            let seq = self.next;
            self.held.entry(seq).or_insert(None);
            match self.read_input(seq).await? {
                Some(item) => {
                    self.stats.filled.fetch_add(1, Ordering::Relaxed);
                    self.push(item).await?;
                }
                None => self.next += 1,
            }
        }
        self.feed().await?;
        Ok(())
    }

    /// One input message, read from the input stream and analyzed here;
    /// `None` (logged and counted) when it is gone or is not a message.
    async fn read_input(&mut self, seq: u64) -> Result<Option<Item>, ClusterError> {
        let m = match self.input.get_raw_message(seq).await {
            Ok(m) => m,
            Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => {
                tracing::error!(seq, "assigner: an input expired from the stream before it was assigned; skipping it");
                self.stats.skipped.fetch_add(1, Ordering::Relaxed);
                return Ok(None);
            }
            Err(e) => return Err(ClusterError::Broker(format!("reading input {seq}: {e}"))),
        };
        let origin = m.headers.get(wire::ORIGIN).map(|v| v.as_str().to_owned()).unwrap_or_default();
        match wire::decode_message(&m.payload) {
            Ok(msg) => Ok(Some(Item { seq, a: self.analyzer.analyze(msg, &mut self.scratch), origin, sig: None })),
            Err(reason) => {
                tracing::warn!(seq, %reason, "assigner: skipping an input that is not a message");
                self.stats.skipped.fetch_add(1, Ordering::Relaxed);
                Ok(None)
            }
        }
    }

    /// Assigns and commits a closed batch with the cursor and the carry,
    /// then acks every held record but the carry.
    async fn commit(&mut self, mut items: Vec<Item>) -> Result<(), ClusterError> {
        let carry: Vec<u64> = self.batcher.pending().iter().map(|i| i.seq).collect();
        let records = items.len();
        let mut sigs: HashMap<u64, Signature> = HashMap::new();
        for i in &mut items {
            if let Some(s) = i.sig.take() {
                sigs.insert(i.a.template_key, s);
            }
        }
        // The engine and the store work on a thread of their own, outside
        // the async runtime: a store that blocks on a runtime of its own
        // (PostgreSQL) then makes its many calls (the commit, the alerts'
        // reads) directly, not one thread each.
        let (engine, store, after, optouts) = (&mut self.engine, &mut self.store, &mut self.after, &self.optouts);
        let next = self.next as i64;
        let carried = carry.clone();
        let (accepted, duplicates, alerts) = std::thread::scope(|s| {
            s.spawn(move || -> Result<(u64, u64, u64), ClusterError> {
                let (kept, assigned, duplicates) =
                    batch::assign_accepted(engine, items, |i| &i.a, &mut sigs, &mut batch::Lookups(&mut **store))?;
                let refs: Vec<&Analyzed> = kept.iter().map(|i| &i.a).collect();
                let origins: Vec<&str> = kept.iter().map(|i| i.origin.as_str()).collect();
                store.stage_cursor(CURSOR, next, carried);
                let alerts = batch::commit(&mut **store, &refs, &origins, &assigned, optouts, after.as_mut())?;
                Ok((kept.len() as u64, duplicates, alerts))
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })?;
        self.stats.accepted.fetch_add(accepted, Ordering::Relaxed);
        self.stats.duplicates.fetch_add(duplicates, Ordering::Relaxed);
        self.stats.alerts.fetch_add(alerts, Ordering::Relaxed);
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stats.cursor.store(self.next, Ordering::Relaxed);
        tracing::debug!(
            records,
            accepted,
            duplicates,
            next = self.next,
            carry = carry.len(),
            "assigner: committed a batch"
        );
        let carried: std::collections::HashSet<u64> = carry.into_iter().collect();
        let held = std::mem::take(&mut self.held);
        for (seq, id) in held {
            if carried.contains(&seq) {
                self.held.insert(seq, id);
            } else {
                self.done(id).await?;
            }
        }
        Ok(())
    }
}

async fn ack(m: &JsMessage) -> Result<(), ClusterError> {
    m.ack().await.map_err(|e| ClusterError::Broker(format!("acknowledging a record: {e}")))
}
