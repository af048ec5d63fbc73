//! Deduplication past what the engine holds: whether messages older than
//! the engine's horizon (see `textwatch_engine::seen`) are already stored,
//! answered from the log.
//!
//! A message's candidates are the segments whose time range covers its
//! time. Each segment read gives the set of its identity keys, and the
//! last few sets are kept, so a re-import of an old file, message after
//! message in time order, reads each segment once. The open segment's set
//! is read again once more rows are committed to it.

use std::collections::{HashSet, VecDeque};

use crate::log::{col, Segment, SegmentSource};
use crate::StoreError;

/// Segment key sets kept between lookups (a segment holds up to 1M keys,
/// about 16 MB as a set).
const CACHED_SEGMENTS: usize = 4;

/// Identity-key sets of recently read segments: (segment id, rows when
/// read, keys), most recently used last.
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    sets: VecDeque<(i64, u64, HashSet<u64>)>,
}

/// Of `keys` (identity key, message time in ms), those already stored,
/// looked up in those of `segs` (every segment) that cover each message's
/// time (see the module documentation).
pub(crate) fn stored_keys(
    segs: &[Segment],
    log: &dyn SegmentSource,
    cache: &mut KeyCache,
    keys: &[(u64, i64)],
) -> Result<HashSet<u64>, StoreError> {
    let mut found = HashSet::new();
    if keys.is_empty() {
        return Ok(found);
    }
    for seg in segs {
        let (Some(lo), Some(hi)) = (seg.min_ts, seg.max_ts) else { continue };
        let wanted: Vec<u64> =
            keys.iter().filter(|(k, ts)| (lo..=hi).contains(ts) && !found.contains(k)).map(|&(k, _)| k).collect();
        if wanted.is_empty() {
            continue;
        }
        let pos = cache.sets.iter().position(|(id, rows, _)| *id == seg.id && *rows == seg.rows);
        let entry = match pos.and_then(|p| cache.sets.remove(p)) {
            Some(e) => e,
            None => {
                let mut set = HashSet::with_capacity(seg.rows as usize);
                log.read_segment(seg, &[col::KEY], &mut |rows| {
                    set.extend((0..rows.len()).map(|i| rows.key(i)));
                    true
                })?;
                tracing::debug!(segment = seg.id, rows = seg.rows, "read a segment's keys for deduplication");
                (seg.id, seg.rows, set)
            }
        };
        found.extend(wanted.into_iter().filter(|k| entry.2.contains(k)));
        cache.sets.retain(|(id, _, _)| *id != seg.id);
        cache.sets.push_back(entry);
        while cache.sets.len() > CACHED_SEGMENTS {
            cache.sets.pop_front();
        }
    }
    Ok(found)
}
