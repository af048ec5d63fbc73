//! The identity keys of accepted messages, bounded in memory.
//!
//! Exact deduplication needs every stored message's key, and by default
//! the engine holds them all. That makes memory grow with everything ever
//! stored (a server that ingests for weeks, a 100M-message scan), so a cap
//! can be set ([`EngineConfig::dedup_keys`]): the engine then holds the
//! keys of the newest messages by message time, and says how far back that
//! goes: the *horizon*. Every stored message whose time is at or after the
//! horizon has its key here. A message from before the horizon may repeat
//! one that is only in the store; the pipeline asks the store about those
//! ([`SeenKeys::needs_store_check`]) before assigning.
//!
//! What a cap gives up: a message with an id is keyed by the id alone, so
//! a repeat of an id under another time than its first copy (later, or
//! earlier but outside the segments that hold the first copy), once that
//! copy's key has left memory, is not found and is stored again. A message
//! without an id is keyed by its time too, so its repeats stay exact.
//!
//! Keys leave memory a few batches after they are picked to go
//! ([`RETIRE_AFTER`] trims), not at once: a pipeline may still be writing
//! the last batches when the engine moves on, and a key must be in the
//! store before it leaves memory.
//!
//! [`EngineConfig::dedup_keys`]: crate::EngineConfig::dedup_keys

use std::collections::{BTreeMap, VecDeque};

use hashbrown::HashSet;

/// Trims between a key being picked to leave memory and it leaving: more
/// than the batches a pipeline keeps in flight between the engine and the
/// store's commit (scan: two queued and one being written).
pub const RETIRE_AFTER: usize = 8;

const MINUTE_MS: i64 = 60_000;

/// See the module documentation.
#[derive(Debug)]
pub struct SeenKeys {
    set: HashSet<u64>,
    /// Keys held, by message minute, that are not yet picked to leave.
    minutes: BTreeMap<i64, Vec<u64>>,
    live: usize,
    cap: usize,
    /// Messages before this time (ms) may be stored without their key here.
    horizon: i64,
    /// Keys picked to leave at each of the last trims, with the horizon
    /// that holds once they are gone.
    retiring: VecDeque<(Vec<u64>, i64)>,
    /// Messages accepted, restored ones included (the set holds fewer).
    accepted: u64,
}

impl SeenKeys {
    /// Empty, holding at most `cap` keys (a few batches' more while keys
    /// retire).
    pub fn new(cap: usize) -> Self {
        SeenKeys {
            set: HashSet::new(),
            minutes: BTreeMap::new(),
            live: 0,
            cap: cap.max(1),
            horizon: i64::MIN,
            retiring: VecDeque::new(),
            accepted: 0,
        }
    }

    /// Restored from a store: `keys` (with message times) are stored
    /// messages, `horizon` is where they stop being complete (every stored
    /// message at or after it is among them), `accepted` the messages the
    /// store holds in all.
    pub fn restore(cap: usize, keys: Vec<(u64, i64)>, horizon: i64, accepted: u64) -> Self {
        let mut s = SeenKeys::new(cap);
        s.set.reserve(keys.len().min(s.cap.saturating_add(s.cap / 8)));
        for (k, ts) in keys {
            s.insert(k, ts);
        }
        s.horizon = horizon;
        s.accepted = accepted.max(s.set.len() as u64);
        // All of these are stored already: over the cap they go at once.
        let (keys, h) = s.pick_retiring();
        s.drop_keys(keys, h);
        s
    }

    /// Records an accepted message's key; false if it was already here.
    pub fn insert(&mut self, key: u64, ts_ms: i64) -> bool {
        if !self.set.insert(key) {
            return false;
        }
        // Without a cap nothing leaves: no need to know when keys came.
        if self.cap != usize::MAX {
            self.minutes.entry(ts_ms.div_euclid(MINUTE_MS)).or_default().push(key);
            self.live += 1;
        }
        self.accepted += 1;
        true
    }

    /// Whether a message with this key is known here.
    pub fn contains(&self, key: u64) -> bool {
        self.set.contains(&key)
    }

    /// Whether only the store can tell if this message is a repeat: it is
    /// from before the horizon and its key is not held.
    pub fn needs_store_check(&self, key: u64, ts_ms: i64) -> bool {
        ts_ms < self.horizon && !self.set.contains(&key)
    }

    /// Messages before this time (ms) may be stored without their key held.
    pub fn horizon(&self) -> i64 {
        self.horizon
    }

    /// Keys held now.
    pub fn held(&self) -> usize {
        self.set.len()
    }

    /// Messages accepted in all, restored ones included.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Once per batch, after it is assigned: keys picked [`RETIRE_AFTER`]
    /// trims ago leave (and the horizon moves past them), and if more than
    /// the cap are held, the oldest minutes are picked to leave next.
    pub fn trim(&mut self) {
        if self.retiring.len() >= RETIRE_AFTER {
            if let Some((keys, h)) = self.retiring.pop_front() {
                self.drop_keys(keys, h);
            }
        }
        // One generation per trim, empty or not: the delay counts trims.
        let picked = self.pick_retiring();
        self.retiring.push_back(picked);
    }

    /// The oldest minutes past the cap, no longer live, with the horizon
    /// that holds once they are gone.
    fn pick_retiring(&mut self) -> (Vec<u64>, i64) {
        let mut picked = Vec::new();
        let mut horizon = i64::MIN;
        while self.live > self.cap {
            let Some((minute, keys)) = self.minutes.pop_first() else { break };
            self.live -= keys.len();
            horizon = horizon.max(minute.saturating_add(1).saturating_mul(MINUTE_MS));
            picked.extend(keys);
        }
        (picked, horizon)
    }

    fn drop_keys(&mut self, keys: Vec<u64>, horizon: i64) {
        for k in keys {
            self.set.remove(&k);
        }
        self.horizon = self.horizon.max(horizon);
        // A set that shrank a lot gives its memory back.
        if self.set.capacity() > 4 * self.set.len().max(1024) {
            self.set.shrink_to(self.set.len() * 2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: i64 = MINUTE_MS;

    #[test]
    fn under_the_cap_everything_is_held_and_nothing_needs_the_store() {
        let mut s = SeenKeys::new(10);
        for k in 0..10 {
            assert!(s.insert(k, k as i64 * M));
            s.trim();
        }
        assert!(!s.insert(3, 0), "a repeat is refused");
        assert_eq!(s.horizon(), i64::MIN);
        assert!(!s.needs_store_check(99, i64::MIN + 1));
        assert_eq!((s.held(), s.accepted()), (10, 10));
    }

    #[test]
    fn over_the_cap_the_oldest_minutes_leave_after_the_retirement_delay() {
        let mut s = SeenKeys::new(4);
        // Minutes 0..8, one key each, one batch each.
        for k in 0..8u64 {
            s.insert(k, k as i64 * M);
            s.trim();
        }
        // Picked to leave, but still held (the store may not have them yet).
        assert!(s.contains(0) && s.contains(3));
        assert_eq!(s.horizon(), i64::MIN);
        for _ in 0..RETIRE_AFTER {
            s.trim();
        }
        assert!(!s.contains(0) && !s.contains(3), "keys 0..4 left after the delay");
        assert!(s.contains(4) && s.contains(7));
        assert_eq!(s.horizon(), 4 * M, "everything from minute 4 on is held");
        assert!(s.needs_store_check(0, 0), "an old key is the store's to answer");
        assert!(!s.needs_store_check(5, 5 * M), "a held one is not");
        assert!(!s.needs_store_check(100, 4 * M), "at the horizon, memory is complete");
        assert_eq!((s.held(), s.accepted()), (4, 8));
    }

    #[test]
    fn a_late_message_below_the_horizon_is_caught_within_its_batch_and_then_leaves() {
        let mut s = SeenKeys::new(2);
        for k in 0..4u64 {
            s.insert(k, 10 * M + k as i64 * M);
            s.trim();
        }
        for _ in 0..=RETIRE_AFTER {
            s.trim();
        }
        assert_eq!(s.horizon(), 12 * M);
        // A message from minute 1, twice in one batch: the second is a repeat.
        assert!(s.needs_store_check(50, M));
        assert!(s.insert(50, M));
        assert!(!s.insert(50, M));
        for _ in 0..=RETIRE_AFTER {
            s.trim();
        }
        assert!(!s.contains(50), "over the cap, the oldest minute goes first");
        assert_eq!(s.held(), 2);
    }

    #[test]
    fn restoring_over_the_cap_keeps_the_newest() {
        let keys: Vec<(u64, i64)> = (0..10u64).map(|k| (k, k as i64 * M)).collect();
        let s = SeenKeys::restore(3, keys, 2 * M, 25);
        assert_eq!(s.held(), 3);
        assert!(s.contains(9) && s.contains(7) && !s.contains(6));
        assert_eq!(s.horizon(), 7 * M);
        assert_eq!(s.accepted(), 25);
    }

    #[test]
    fn without_a_cap_every_key_stays_and_nothing_needs_the_store() {
        let keys: Vec<(u64, i64)> = (0..100u64).map(|k| (k, k as i64 * M)).collect();
        let mut s = SeenKeys::restore(usize::MAX, keys, i64::MIN, 100);
        for k in 100..200u64 {
            assert!(s.insert(k, -(k as i64) * M));
            s.trim();
        }
        assert_eq!((s.held(), s.accepted(), s.horizon()), (200, 200, i64::MIN));
        assert!(s.minutes.is_empty(), "no bookkeeping of times without a cap");
        assert!(!s.needs_store_check(1_000, i64::MIN));
    }
}
