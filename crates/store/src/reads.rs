//! Reads over the message log that every store does the same way, whatever
//! keeps the segments' bytes ([`SegmentSource`]: files next to a SQLite
//! database, or rows of PostgreSQL): a campaign's earliest messages, its
//! messages in time order, a sender's whole history, and the per-message
//! parts of an engine snapshot. The store gives the segments and the
//! campaign's templates from its own index.

use std::collections::{HashMap, HashSet};

use textwatch_engine::Snapshot;

use crate::log::Rows;
use crate::log::{col, Segment, SegmentSource};
use crate::segments::{message_view, read_campaign_rows, ALL};
use crate::views::MessageView;
use crate::StoreError;

/// A campaign's first `n` messages in time order (stored order breaks
/// ties): `kept` (evidence samples kept when their segments were pruned)
/// and then the log's, from `segs` (the segments that may hold the
/// campaign's `templates`).
pub(crate) fn earliest(
    log: &dyn SegmentSource,
    mut segs: Vec<Segment>,
    templates: &HashMap<u64, String>,
    cid: &str,
    n: usize,
    mut kept_samples: Vec<MessageView>,
) -> Result<Vec<MessageView>, StoreError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    // The n earliest, kept in a max-heap of (ts, stored position).
    // Segments are visited oldest first; once the heap is full, a segment
    // whose oldest message is newer than all kept ones cannot change it,
    // so a time-ordered feed reads one or two segments.
    segs.sort_by_key(|s| (s.min_ts, s.id));
    let mut heap: std::collections::BinaryHeap<(i64, u64)> = std::collections::BinaryHeap::new();
    let mut kept: HashMap<u64, MessageView> = HashMap::new();
    for seg in &segs {
        if heap.len() == n && heap.peek().is_some_and(|&(top, _)| seg.min_ts.is_some_and(|t| t > top)) {
            continue;
        }
        read_campaign_rows(log, seg, templates, &ALL, &mut |rows, i, position, text| {
            let order = ((seg.id as u64) << 32) | position;
            let ts = rows.ts(i);
            if heap.len() == n && heap.peek().is_some_and(|&top| (ts, order) >= top) {
                return true;
            }
            heap.push((ts, order));
            kept.insert(order, message_view(rows, i, text, Some(cid)));
            if heap.len() > n {
                if let Some((_, o)) = heap.pop() {
                    kept.remove(&o);
                }
            }
            true
        })?;
    }
    let mut fresh: Vec<(i64, u64)> = heap.into_vec();
    fresh.sort_unstable();
    kept_samples.extend(fresh.into_iter().filter_map(|(_, o)| kept.remove(&o)));
    // Samples kept by a prune may still be in the log too.
    let mut seen = HashSet::new();
    kept_samples.retain(|m| seen.insert((m.id.clone(), m.ts)));
    kept_samples.sort_by_key(|m| m.ts);
    kept_samples.truncate(n);
    Ok(kept_samples)
}

/// Calls `f(ts, template, sender)` for a campaign's messages in time order
/// (stored order breaks ties) until it returns false, reading `segs` (the
/// segments that may hold the campaign's `templates`) oldest first: what
/// is older than every unread segment's oldest message is final and goes
/// out, so a replay that stops early (detection is usually within the
/// first messages) reads one or two segments.
pub(crate) fn in_time_order(
    log: &dyn SegmentSource,
    mut segs: Vec<Segment>,
    templates: &HashMap<u64, String>,
    f: &mut dyn FnMut(i64, u64, &str) -> bool,
) -> Result<(), StoreError> {
    segs.sort_by_key(|s| (s.min_ts, s.id));
    // (ts, segment, row, template, sender)
    let mut pending: Vec<(i64, i64, u64, u64, String)> = Vec::new();
    for (k, seg) in segs.iter().enumerate() {
        read_campaign_rows(log, seg, templates, &[col::TS, col::SENDER], &mut |rows, i, position, _| {
            pending.push((rows.ts(i), seg.id, position, rows.template(i), rows.sender(i).to_string()));
            true
        })?;
        let bound = segs.get(k + 1).map_or(i64::MAX, |s| s.min_ts.unwrap_or(i64::MIN));
        pending.sort_unstable_by_key(|m| std::cmp::Reverse((m.0, m.1, m.2)));
        while pending.last().is_some_and(|m| m.0 < bound || k + 1 == segs.len()) {
            let Some((ts, _, _, template, sender)) = pending.pop() else { break };
            if !f(ts, template, &sender) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// A sender's whole history in the log (not only its campaigns): messages,
/// first and last time.
pub(crate) fn sender_history(
    log: &dyn SegmentSource,
    segs: &[Segment],
    sender: &str,
) -> Result<(u64, Option<i64>, Option<i64>), StoreError> {
    let (mut messages, mut first, mut last) = (0u64, None::<i64>, None::<i64>);
    for seg in segs {
        log.read_segment(seg, &[col::SENDER, col::TS], &mut |rows| {
            for i in 0..rows.len() {
                if rows.sender(i) == sender {
                    let ts = rows.ts(i);
                    messages += 1;
                    first = Some(first.map_or(ts, |f| f.min(ts)));
                    last = Some(last.map_or(ts, |l| l.max(ts)));
                }
            }
            true
        })?;
    }
    Ok((messages, first, last))
}

/// The segments whose identity keys a snapshot holds: the newest by their
/// newest message, until they hold `cap` messages. Returns their ids and
/// the time from which they hold every stored message (`None`: all of
/// them).
pub(crate) fn newest_segments(segs: &[Segment], cap: usize) -> (HashSet<i64>, Option<i64>) {
    let mut by_newest: Vec<&Segment> = segs.iter().filter(|s| s.rows > 0).collect();
    by_newest.sort_by_key(|s| std::cmp::Reverse((s.max_ts.unwrap_or(i64::MIN), s.id)));
    let mut keyed = HashSet::new();
    let mut held = 0u64;
    let mut complete_from = None;
    for s in by_newest {
        if held >= cap as u64 {
            // Everything stored at or after just past this segment's newest
            // message is in the segments already taken.
            let newest = s.max_ts.unwrap_or(i64::MIN).saturating_add(1);
            complete_from = Some(complete_from.map_or(newest, |c: i64| c.max(newest)));
            continue;
        }
        held += s.rows;
        keyed.insert(s.id);
    }
    (keyed, complete_from)
}

/// Fills the per-message parts of a snapshot whose templates the store
/// loaded (`snap.templates`, with text for the singletons the engine
/// rebuilds): stored-message count, the identity keys of the newest
/// segments (about `dedup_keys` of them; older messages are looked up in
/// the log when needed), each campaign's distinct recipients, and the one
/// body of each singleton given with text, read from the segments from
/// `bodies_from` on.
pub(crate) fn snapshot_messages(
    log: &dyn SegmentSource,
    segs: &[Segment],
    snap: &mut Snapshot,
    dedup_keys: usize,
    bodies_from: i64,
) -> Result<(), StoreError> {
    let clustered: HashMap<u64, u32> = snap.templates.iter().filter_map(|t| t.cluster.map(|c| (t.key, c))).collect();
    let mut wanted: HashSet<u64> =
        snap.templates.iter().filter(|t| t.cluster.is_none() && !t.text.is_empty()).map(|t| t.key).collect();
    snap.messages = segs.iter().map(|s| s.rows).sum();
    let (keyed, complete_from) = newest_segments(segs, dedup_keys);
    snap.seen_complete_from = complete_from;
    snap.seen.reserve(segs.iter().filter(|s| keyed.contains(&s.id)).map(|s| s.rows as usize).sum());
    for seg in segs {
        let with_bodies = !wanted.is_empty() && seg.id >= bodies_from;
        let with_keys = keyed.contains(&seg.id);
        let cols: &[usize] = if with_bodies {
            &[col::KEY, col::TS, col::RCPT, col::TEMPLATE, col::BODY]
        } else {
            &[col::KEY, col::TS, col::RCPT, col::TEMPLATE]
        };
        log.read_segment(seg, cols, &mut |rows| {
            for i in 0..rows.len() {
                if with_keys {
                    snap.seen.push((rows.key(i), rows.ts(i)));
                }
                if let (Some(&c), Some(r)) = (clustered.get(&rows.template(i)), rows.rcpt(i)) {
                    let mut k = [0u8; 8];
                    k.copy_from_slice(&r[..8]);
                    snap.recipients.push((c, u64::from_le_bytes(k)));
                }
                if with_bodies && wanted.remove(&rows.template(i)) {
                    snap.bodies.push((rows.template(i), rows.body(i).to_owned()));
                }
            }
            true
        })?;
    }
    Ok(())
}

/// Calls `f` for every stored message, in stored order, until it returns
/// false; `names` looks up a template's text and campaign id (kept for the
/// next rows, up to a million templates).
pub(crate) fn every_message(
    log: &dyn SegmentSource,
    segs: &[Segment],
    names: &mut dyn FnMut(u64) -> Result<(String, Option<String>), StoreError>,
    f: &mut dyn FnMut(MessageView) -> bool,
) -> Result<(), StoreError> {
    let mut known: HashMap<u64, (String, Option<String>)> = HashMap::new();
    let mut failed = None;
    for seg in segs {
        let go = log.read_segment(seg, &ALL, &mut |rows: &Rows| {
            for i in 0..rows.len() {
                let key = rows.template(i);
                if !known.contains_key(&key) {
                    if known.len() >= 1 << 20 {
                        known.clear();
                    }
                    match names(key) {
                        Ok(n) => known.insert(key, n),
                        Err(e) => {
                            failed = Some(e);
                            return false;
                        }
                    };
                }
                let (text, cid) = &known[&key];
                if !f(message_view(rows, i, text, cid.as_deref())) {
                    return false;
                }
            }
            true
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        if !go {
            break;
        }
    }
    Ok(())
}
