//! One batch through assign → store → act: the step `scan`, `serve` and
//! workers share.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use textwatch_engine::minhash::Signature;
use textwatch_engine::optout::Registry;
use textwatch_engine::{Analyzed, ClusterRow, Delta, Engine, Outcome};
use textwatch_store::optouts::IgnoredOptOut;
use textwatch_store::sqlite::SqliteStore;
use textwatch_store::{BatchFacts, WriteStore};
use textwatch_store::{NewMessage, Store, StoreError};

use crate::PipelineError;

/// What runs after each committed batch (alerts, live events). The batch
/// is durable when it is called: a failure here is reported, and the
/// caller decides whether it is fatal.
pub trait AfterCommit {
    /// `changed` are the campaigns the batch created or changed. Returns
    /// how many alerts it raised.
    fn after_commit(&mut self, store: &mut dyn Store, changed: &[ClusterRow]) -> Result<u64, String>;
    /// A process takes over a store another one left (the cluster's
    /// assigner after a failover): every campaign (`campaigns`) is looked
    /// at once, so that what a crash between a commit and its
    /// `after_commit` left undone (alerts) is done now. Returns how many
    /// alerts it raised.
    fn resume(&mut self, _store: &mut dyn Store, _campaigns: &[ClusterRow]) -> Result<u64, String> {
        Ok(0)
    }
    /// The run is over: flush and stop (alert deliveries in flight).
    fn finish(self: Box<Self>);
}

/// Nothing after a commit.
pub struct NoAct;

impl AfterCommit for NoAct {
    fn after_commit(&mut self, _: &mut dyn Store, _: &[ClusterRow]) -> Result<u64, String> {
        Ok(0)
    }
    fn finish(self: Box<Self>) {}
}

/// The order every path assigns in: time, then identity, then template.
/// Campaigns then do not depend on file order, request order or threads.
pub fn order_key(a: &Analyzed) -> (i64, u64, u64) {
    (a.msg.ts_ms, a.key, a.template_key)
}

/// Records per assignment batch (and per store commit).
pub const BATCH: usize = 32 * 1024;
/// A group of equal timestamps larger than this is split anyway.
const MAX_CARRY: usize = 1 << 20;

/// Cuts a sequence of records into assignment batches, the same way on
/// every path that assigns a sequence (`scan` over files, the cluster's
/// assigner over a broker stream), so that the batches, and with them the
/// campaigns, are a function of the records' order alone.
///
/// A batch closes once it holds `size` records, keeping back those with
/// its latest timestamp: more of them may follow, and equal-time records
/// are ordered together (unless there are more than a million of them).
#[derive(Debug)]
pub struct Batcher<T> {
    pending: Vec<T>,
    size: usize,
    /// The latest timestamp pending, and how many records have it.
    max_ts: i64,
    at_max: usize,
}

impl<T> Batcher<T> {
    pub fn new(size: usize) -> Self {
        Batcher { pending: Vec::new(), size: size.max(1), max_ts: i64::MIN, at_max: 0 }
    }

    /// Records waiting for their batch to close.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The records waiting (kept back from the last batch, or not yet
    /// enough for one).
    pub fn pending(&self) -> &[T] {
        &self.pending
    }

    /// Adds a record (`ts` gives a record's time); returns a batch when
    /// one closes.
    pub fn push(&mut self, item: T, ts: impl Fn(&T) -> i64) -> Option<Vec<T>> {
        let ts_ms = ts(&item);
        match ts_ms.cmp(&self.max_ts) {
            std::cmp::Ordering::Greater => (self.max_ts, self.at_max) = (ts_ms, 1),
            std::cmp::Ordering::Equal => self.at_max += 1,
            std::cmp::Ordering::Less => {}
        }
        self.pending.push(item);
        if self.pending.len() < self.size {
            return None;
        }
        if self.at_max < self.pending.len() {
            let max = self.max_ts;
            // The batch keeps the pending vector; the records kept back
            // start the next one, in a vector made for a whole batch.
            let mut batch = std::mem::replace(&mut self.pending, Vec::with_capacity(self.size));
            self.pending.extend(batch.extract_if(.., |r| ts(r) == max));
            return Some(batch);
        }
        if self.at_max > MAX_CARRY {
            return Some(self.finish());
        }
        None
    }

    /// Everything pending, as the last batch (the end of the input).
    pub fn finish(&mut self) -> Vec<T> {
        (self.max_ts, self.at_max) = (i64::MIN, 0);
        std::mem::take(&mut self.pending)
    }
}

/// What assigning a batch gave: one outcome per message, in batch order,
/// and the engine's changes to store.
pub struct Assigned {
    pub outcomes: Vec<Outcome>,
    pub delta: Delta,
}

impl Assigned {
    /// Positions of the accepted (new) messages.
    pub fn accepted(&self) -> impl Iterator<Item = usize> + '_ {
        self.outcomes.iter().enumerate().filter(|(_, o)| matches!(o, Outcome::Accepted { .. })).map(|(i, _)| i)
    }
}

/// Answers, for messages older than the identity keys the engine holds
/// ([`Engine::needs_store_check`]), which are already stored.
pub trait StoredKeys {
    /// Of `keys` (identity key, message time in ms), those stored.
    fn stored_keys(&mut self, keys: &[(u64, i64)]) -> Result<HashSet<u64>, StoreError>;
}

impl StoredKeys for SqliteStore {
    fn stored_keys(&mut self, keys: &[(u64, i64)]) -> Result<HashSet<u64>, StoreError> {
        WriteStore::stored_keys(self, keys)
    }
}

/// Lookups in a store that writes (whichever kind it is).
pub struct Lookups<'a>(pub &'a mut dyn WriteStore);

impl StoredKeys for Lookups<'_> {
    fn stored_keys(&mut self, keys: &[(u64, i64)]) -> Result<HashSet<u64>, StoreError> {
        self.0.stored_keys(keys)
    }
}

/// A read handle on a database, opened the first time a lookup needs it:
/// for a pipeline whose writer owns the store (scan), so lookups do not
/// wait for the writer's thread.
pub struct LazyLookup {
    path: Option<PathBuf>,
    store: Option<SqliteStore>,
}

impl LazyLookup {
    /// Lookups in the database that `store` opened (an in-memory one has
    /// no second handle: past the engine's key cap, its lookups fail).
    pub fn of(store: &SqliteStore) -> Self {
        LazyLookup { path: store.path(), store: None }
    }
}

impl StoredKeys for LazyLookup {
    fn stored_keys(&mut self, keys: &[(u64, i64)]) -> Result<HashSet<u64>, StoreError> {
        if self.store.is_none() {
            let Some(path) = &self.path else {
                return Err(StoreError::Schema(
                    "an in-memory database cannot look up messages older than the engine holds".into(),
                ));
            };
            self.store = Some(SqliteStore::open_reader(path)?);
        }
        match &mut self.store {
            Some(s) => WriteStore::stored_keys(s, keys),
            None => Ok(HashSet::new()),
        }
    }
}

/// Assigns `batch` (already in [`order_key`] order) to campaigns. `sigs`
/// holds signatures computed ahead for new templates (taken as used);
/// without one the engine computes it. Messages older than the keys the
/// engine holds are first looked up in `stored`: those it has are
/// duplicates.
pub fn assign(
    engine: &mut Engine,
    batch: &[&Analyzed],
    sigs: &mut HashMap<u64, Signature>,
    stored: &mut dyn StoredKeys,
) -> Result<Assigned, StoreError> {
    let known = stored_repeats(engine, batch, stored)?;
    Ok(assign_known(engine, batch, sigs, &known))
}

/// The identity keys of `batch` that only the store holds (messages older
/// than the keys the engine holds): repeats to refuse. Needs only a shared
/// borrow of the engine, so a server can look up without blocking the
/// readers of its engine; nothing changes if the lookup fails.
pub fn stored_repeats(
    engine: &Engine,
    batch: &[&Analyzed],
    stored: &mut dyn StoredKeys,
) -> Result<HashSet<u64>, StoreError> {
    let old: Vec<(u64, i64)> =
        batch.iter().filter(|a| engine.needs_store_check(a)).map(|a| (a.key, a.msg.ts_ms)).collect();
    if old.is_empty() {
        return Ok(HashSet::new());
    }
    stored.stored_keys(&old)
}

/// [`assign`] with the stored repeats already known
/// ([`stored_repeats`]).
pub fn assign_known(
    engine: &mut Engine,
    batch: &[&Analyzed],
    sigs: &mut HashMap<u64, Signature>,
    known: &HashSet<u64>,
) -> Assigned {
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut new_templates: HashMap<u64, usize> = HashMap::new();
    for (i, a) in batch.iter().enumerate() {
        if !known.is_empty() && known.contains(&a.key) {
            outcomes.push(Outcome::Duplicate);
            continue;
        }
        let sig = if !sigs.is_empty() && engine.needs_signature(a) { sigs.remove(&a.template_key) } else { None };
        let o = engine.assign(a, sig.as_ref());
        if let Outcome::Accepted { new_template: true, .. } = o {
            new_templates.insert(a.template_key, i);
        }
        outcomes.push(o);
    }
    let delta = engine.take_delta(|k| new_templates.get(&k).map(|&i| batch[i].template.as_str()));
    Assigned { outcomes, delta }
}

/// Sorts a closed batch into [`order_key`] order, assigns it, and keeps
/// the accepted records: returns them with their outcomes (re-indexed to
/// them) and the engine's delta, and how many were duplicates. What
/// `scan` and the cluster's assigner both do with a batch.
pub fn assign_accepted<T>(
    engine: &mut Engine,
    mut items: Vec<T>,
    analyzed: impl Fn(&T) -> &Analyzed,
    sigs: &mut HashMap<u64, Signature>,
    stored: &mut dyn StoredKeys,
) -> Result<(Vec<T>, Assigned, u64), StoreError> {
    items.sort_unstable_by_key(|i| order_key(analyzed(i)));
    let refs: Vec<&Analyzed> = items.iter().map(&analyzed).collect();
    let assigned = assign(engine, &refs, sigs, stored)?;
    drop(refs);
    // Duplicates leave in place: the records are large, and most stay.
    let mut outcomes = assigned.outcomes;
    let before = outcomes.len();
    let mut accepted = outcomes.iter().map(|o| matches!(o, Outcome::Accepted { .. }));
    items.retain(|_| accepted.next().unwrap_or(false));
    outcomes.retain(|o| matches!(o, Outcome::Accepted { .. }));
    let duplicates = (before - outcomes.len()) as u64;
    Ok((items, Assigned { outcomes, delta: assigned.delta }, duplicates))
}

/// The accepted texts of a batch that went to a recipient after that
/// recipient opted out of their sender or their campaign.
pub fn ignored_optouts(optouts: &Registry, batch: &[&Analyzed], assigned: &Assigned) -> Vec<IgnoredOptOut> {
    if optouts.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (a, o) in batch.iter().zip(&assigned.outcomes) {
        let Outcome::Accepted { campaign: Some(label), .. } = o else { continue };
        let Some(rcpt) = a.rcpt else { continue };
        let campaign = textwatch_engine::campaign_id(*label);
        if let Some(c) = optouts.forbids(&[a.rcpt, a.rcpt_prev], &a.sender, Some(&campaign)) {
            if c.at_ms < a.msg.ts_ms {
                out.push(IgnoredOptOut {
                    campaign,
                    recipient: rcpt,
                    ts_ms: a.msg.ts_ms,
                    sender: a.sender.clone(),
                    opted_out_at: c.at_ms,
                    keyword: c.keyword.clone(),
                });
            }
        }
    }
    out
}

/// Stores the accepted messages of `batch` (with their `origins`) and the
/// delta in one commit, counts texts to recipients who had opted out
/// (`optouts`), then runs `after`. Returns the alerts raised; an `after`
/// failure is logged, not returned (the batch is stored).
pub fn commit(
    store: &mut dyn WriteStore,
    batch: &[&Analyzed],
    origins: &[&str],
    assigned: &Assigned,
    optouts: &Registry,
    after: &mut dyn AfterCommit,
) -> Result<u64, PipelineError> {
    let msgs: Vec<NewMessage<'_>> =
        assigned.accepted().map(|i| NewMessage { msg: batch[i], origin: origins[i] }).collect();
    // Spam reports: who reported which campaign (keyed hashes).
    let reporters: Vec<(String, [u8; 16], i64)> = batch
        .iter()
        .zip(&assigned.outcomes)
        .filter(|(a, _)| a.msg.source.as_deref() == Some("report"))
        .filter_map(|(a, o)| match o {
            Outcome::Accepted { campaign: Some(label), .. } => {
                a.rcpt.map(|r| (textwatch_engine::campaign_id(*label), r, a.msg.ts_ms))
            }
            _ => None,
        })
        .collect();
    let ignored = ignored_optouts(optouts, batch, assigned);
    if !ignored.is_empty() {
        tracing::warn!(texts = ignored.len(), "texts to recipients who had opted out");
    }
    // In the batch's own transaction: a crash keeps both or neither.
    store.stage_facts(BatchFacts { reporters, ignored });
    store.commit(&msgs, &assigned.delta)?;
    match after.after_commit(store, &assigned.delta.clusters) {
        Ok(n) => Ok(n),
        Err(e) => {
            tracing::error!(error = %e, "after a commit");
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use textwatch_engine::{Analyzer, EngineConfig, Message, Scratch};

    struct Count(u64, Vec<u32>);
    impl AfterCommit for Count {
        fn after_commit(&mut self, _: &mut dyn Store, changed: &[ClusterRow]) -> Result<u64, String> {
            self.0 += 1;
            self.1.extend(changed.iter().map(|c| c.seq));
            Ok(0)
        }
        fn finish(self: Box<Self>) {}
    }

    fn cut(ts: &[i64], size: usize) -> Vec<Vec<i64>> {
        let mut b = Batcher::new(size);
        let mut out: Vec<Vec<i64>> = ts.iter().filter_map(|&t| b.push(t, |&t| t)).collect();
        out.push(b.finish());
        out
    }

    #[test]
    fn batches_close_at_their_size_and_keep_back_the_latest_time() {
        // The third record closes the first batch; the two at time 2 wait
        // for more at time 2 that might follow, and go with the next.
        assert_eq!(cut(&[1, 2, 2, 3, 4, 5], 3), vec![vec![1], vec![2, 2], vec![3, 4], vec![5]]);
        // All at one time: nothing closes until the end.
        assert_eq!(cut(&[7, 7, 7, 7, 7], 2), vec![vec![7, 7, 7, 7, 7]]);
        // Out of order: the latest time is kept back wherever it stands.
        assert_eq!(cut(&[5, 1, 2, 5, 3], 4), vec![vec![1, 2], vec![5, 5, 3]]);
        assert_eq!(cut(&[], 4), vec![Vec::<i64>::new()]);
    }

    #[test]
    fn the_batches_depend_on_the_records_alone_not_on_how_they_arrive() {
        // Scan pushes chunk by chunk, the cluster's assigner one record at
        // a time: the same sequence gives the same batches.
        let ts: Vec<i64> = (0..10_000i64).map(|i| i / 3 + (i * 7919 % 13)).collect();
        let whole = cut(&ts, 512);
        let mut b = Batcher::new(512);
        let mut chunked = Vec::new();
        for chunk in ts.chunks(1000) {
            chunked.extend(chunk.iter().filter_map(|&t| b.push(t, |&t| t)));
        }
        chunked.push(b.finish());
        assert_eq!(whole, chunked);
        assert_eq!(whole.iter().map(Vec::len).sum::<usize>(), ts.len());
    }

    #[test]
    fn a_batch_is_assigned_in_order_stored_once_and_acted_on_after_the_commit() {
        let mut store = SqliteStore::in_memory().unwrap();
        let mut engine = Engine::new(EngineConfig::default());
        let an = Analyzer::keyed(store.secret(), store.recipient_hash(), engine.config().min_template_len);
        let body = "Polls in Philadelphia are moved to Wednesday due to high turnout, tell your friends";
        let mut s = Scratch::default();
        let mut msgs: Vec<Analyzed> = (0..6)
            .map(|i| {
                an.analyze(
                    Message {
                        id: Some(format!("m{}", i % 5)),
                        ts_ms: 1_604_502_000_000 + (5 - i) * 1000,
                        from: format!("+1215555010{i}"),
                        to: Some(format!("+1267555000{i}")),
                        body: body.into(),
                        ..Default::default()
                    },
                    &mut s,
                )
            })
            .collect();
        msgs.sort_by_key(order_key);
        assert!(msgs.windows(2).all(|w| w[0].msg.ts_ms <= w[1].msg.ts_ms));
        let batch: Vec<&Analyzed> = msgs.iter().collect();
        let assigned = assign(&mut engine, &batch, &mut HashMap::new(), &mut store).unwrap();
        // m0 twice: the later copy is a duplicate.
        assert_eq!(assigned.accepted().count(), 5);
        let origins = vec!["t:1"; batch.len()];
        let mut after = Count(0, Vec::new());
        commit(&mut store, &batch, &origins, &assigned, &Registry::default(), &mut after).unwrap();
        assert_eq!(store.stats().unwrap().messages, 5);
        assert_eq!((after.0, after.1.len()), (1, 1), "one commit, one campaign changed");
    }

    /// Messages of minute `m` (one per minute from `from`), `n` of them.
    fn minute_msgs(an: &Analyzer, from: i64, n: i64) -> Vec<Analyzed> {
        let mut s = Scratch::default();
        (from..from + n)
            .map(|m| {
                an.analyze(
                    Message {
                        ts_ms: m * 60_000,
                        from: format!("+1215555{:04}", m % 7),
                        to: Some(format!("+1267555{m:04}")),
                        body: format!("Hi, this is Dana with Philly Votes Together. Polls close at 8pm! Ref {m}"),
                        ..Default::default()
                    },
                    &mut s,
                )
            })
            .collect()
    }

    #[test]
    fn past_the_keys_the_engine_holds_repeats_are_found_in_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("t.db")).unwrap().with_segment_rows(8);
        let cfg = EngineConfig { dedup_keys: 10, ..EngineConfig::default() };
        let mut engine = Engine::new(cfg.clone());
        let an = Analyzer::keyed(store.secret(), store.recipient_hash(), cfg.min_template_len);
        let mut after = Count(0, Vec::new());
        let mut feed = |engine: &mut Engine, store: &mut SqliteStore, msgs: &[Analyzed]| -> usize {
            let batch: Vec<&Analyzed> = msgs.iter().collect();
            let assigned = assign(engine, &batch, &mut HashMap::new(), store).unwrap();
            let origins = vec!["t:1"; batch.len()];
            commit(store, &batch, &origins, &assigned, &Registry::default(), &mut after).unwrap();
            assigned.accepted().count()
        };
        // 60 minutes of one message each, in batches of 5: the engine keeps
        // the newest 10 keys (and a few retiring).
        let all = minute_msgs(&an, 0, 60);
        for chunk in all.chunks(5) {
            assert_eq!(feed(&mut engine, &mut store, chunk), 5);
        }
        assert!(engine.dedup_keys_held() < 60, "held {}", engine.dedup_keys_held());
        assert!(engine.needs_store_check(&all[0]), "the oldest are the log's to answer");
        assert_eq!(engine.messages_seen(), 60);
        // The whole feed again, oldest first: every message is a repeat,
        // found in memory or in the log.
        for chunk in all.chunks(7) {
            assert_eq!(feed(&mut engine, &mut store, chunk), 0);
        }
        // New messages older than the horizon are new; twice in one batch,
        // once.
        let mut late = minute_msgs(&an, -30, 3);
        late.push(late[0].clone());
        assert_eq!(feed(&mut engine, &mut store, &late), 3);
        assert_eq!(feed(&mut engine, &mut store, &late), 0);
        assert_eq!(store.stats().unwrap().messages, 63);
        // A restored engine holds about the cap and still finds every repeat.
        let mut engine = Engine::restore(cfg.clone(), store.load_snapshot(100, cfg.dedup_keys).unwrap());
        assert_eq!(engine.messages_seen(), 63);
        for chunk in all.chunks(4) {
            assert_eq!(feed(&mut engine, &mut store, chunk), 0);
        }
        assert_eq!(store.stats().unwrap().messages, 63);
    }
}
