//! Concatenated short messages: a long text goes out as parts, each with
//! a reference, a count and a position, either in a User Data Header
//! (`esm_class` bit 0x40, information elements 0x00 and 0x08 of 3GPP TS
//! 23.040 section 9.2.3.24) or in the `sar_msg_ref_num`,
//! `sar_total_segments` and `sar_segment_seqnum` TLVs. [`Reassembler`]
//! collects parts until the text is whole, so that the verdict is on the
//! text the recipient reads, not on a fragment.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// One part's place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    pub reference: u16,
    pub total: u8,
    /// 1-based.
    pub seq: u8,
}

/// Splits a short message with a UDH (`esm_class` & 0x40) into its
/// concatenation element, if any, and the text octets after the header.
/// A header that does not fit is no header: all octets are text.
pub fn split_udh(sm: &[u8]) -> (Option<Part>, &[u8]) {
    let Some(&udhl) = sm.first() else { return (None, sm) };
    let end = 1 + udhl as usize;
    if end > sm.len() {
        return (None, sm);
    }
    let mut part = None;
    let mut i = 1;
    while i + 2 <= end {
        let (iei, len) = (sm[i], sm[i + 1] as usize);
        let v = &sm[(i + 2).min(end)..(i + 2 + len).min(end)];
        match (iei, v) {
            (0x00, [r, t, s]) => part = Some(Part { reference: *r as u16, total: *t, seq: *s }),
            (0x08, [r1, r2, t, s]) => {
                part = Some(Part { reference: u16::from_be_bytes([*r1, *r2]), total: *t, seq: *s })
            }
            _ => {}
        }
        i += 2 + len;
    }
    // A part 0, or past the count, is not a concatenation (TS 23.040).
    let part = part.filter(|p| p.total > 0 && p.seq >= 1 && p.seq <= p.total);
    (part, &sm[end..])
}

/// Which message a part belongs to: who submitted it (the bind's
/// system_id, so that parts sent over several binds of one ESME meet),
/// sender, recipient and reference.
pub type Key = (String, String, String, u16);

struct Pending<T> {
    started: Instant,
    total: u8,
    parts: Vec<Option<(String, T)>>,
}

/// Parts waiting for their siblings. `T` is what the caller keeps per part
/// (its PDU and sequence number, to answer each).
pub struct Reassembler<T> {
    pending: HashMap<Key, Pending<T>>,
    /// Messages held at most this long; then what arrived is judged.
    pub timeout: Duration,
    /// At most this many messages pending per reassembler.
    pub capacity: usize,
}

/// What adding a part gave.
pub enum Added<T> {
    /// Still waiting for other parts. `displaced` are values this part
    /// replaced (a resent position, or a message restarted by a part with
    /// another count): the caller must still answer them.
    Waiting { displaced: Vec<T> },
    /// Whole: the text in order and every part's value, in order, and any
    /// value displaced on the way.
    Complete { text: String, parts: Vec<T>, displaced: Vec<T> },
}

impl<T> Reassembler<T> {
    pub fn new(timeout: Duration, capacity: usize) -> Self {
        Reassembler { pending: HashMap::new(), timeout, capacity }
    }

    /// Adds a part's text. A repeated position replaces the earlier one; a
    /// part whose count differs from its siblings' starts the message
    /// again (a reused reference). Replaced values come back as
    /// `displaced`, never silently dropped.
    pub fn add(&mut self, key: Key, part: Part, text: String, value: T) -> Result<Added<T>, Vec<T>> {
        if !self.pending.contains_key(&key) && self.pending.len() >= self.capacity {
            return Err(vec![value]);
        }
        let mut displaced = Vec::new();
        let p = self.pending.entry(key.clone()).or_insert_with(|| Pending {
            started: Instant::now(),
            total: part.total,
            parts: (0..part.total).map(|_| None).collect(),
        });
        if p.total != part.total {
            let old = std::mem::replace(
                p,
                Pending { started: Instant::now(), total: part.total, parts: (0..part.total).map(|_| None).collect() },
            );
            displaced.extend(old.parts.into_iter().flatten().map(|(_, v)| v));
        }
        if let Some((_, v)) = p.parts[part.seq as usize - 1].replace((text, value)) {
            displaced.push(v);
        }
        if p.parts.iter().all(Option::is_some) {
            let p = self.pending.remove(&key).expect("present");
            let mut text = String::new();
            let mut values = Vec::with_capacity(p.parts.len());
            for (t, v) in p.parts.into_iter().flatten() {
                text.push_str(&t);
                values.push(v);
            }
            return Ok(Added::Complete { text, parts: values, displaced });
        }
        Ok(Added::Waiting { displaced })
    }

    /// Messages held past the timeout, with the parts that arrived (text
    /// joined in order, gaps marked with `…`).
    pub fn expired(&mut self, now: Instant) -> Vec<(Key, String, Vec<T>)> {
        let old: Vec<Key> = self
            .pending
            .iter()
            .filter(|(_, p)| now.duration_since(p.started) >= self.timeout)
            .map(|(k, _)| k.clone())
            .collect();
        old.into_iter()
            .filter_map(|k| {
                let p = self.pending.remove(&k)?;
                let mut text = String::new();
                let mut values = Vec::new();
                for slot in p.parts {
                    match slot {
                        Some((t, v)) => {
                            text.push_str(&t);
                            values.push(v);
                        }
                        None => text.push('…'),
                    }
                }
                Some((k, text, values))
            })
            .collect()
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udh_parts_are_read_with_8_and_16_bit_references() {
        let sm = [0x05, 0x00, 0x03, 0x2A, 0x02, 0x01, b'h', b'i'];
        assert_eq!(split_udh(&sm), (Some(Part { reference: 0x2A, total: 2, seq: 1 }), &b"hi"[..]));
        let sm = [0x06, 0x08, 0x04, 0x01, 0x02, 0x03, 0x03, b'x'];
        assert_eq!(split_udh(&sm), (Some(Part { reference: 0x0102, total: 3, seq: 3 }), &b"x"[..]));
        // Another element first (port addressing), then the concatenation.
        let sm = [0x0B, 0x05, 0x04, 0x0B, 0x84, 0x23, 0xF0, 0x00, 0x03, 0x01, 0x02, 0x02, b'z'];
        assert_eq!(split_udh(&sm).0, Some(Part { reference: 1, total: 2, seq: 2 }));
        // Header longer than the message; part 0.
        assert_eq!(split_udh(&[0x09, 0x00]).0, None);
        assert_eq!(split_udh(&[0x05, 0x00, 0x03, 0x01, 0x02, 0x00]).0, None);
        assert_eq!(split_udh(&[]).0, None);
    }

    #[test]
    fn parts_in_any_order_make_the_whole_text() {
        let mut r: Reassembler<u32> = Reassembler::new(Duration::from_secs(10), 10);
        let key = ("esme".to_string(), "a".to_string(), "b".to_string(), 7);
        let p = |seq| Part { reference: 7, total: 3, seq };
        assert!(matches!(r.add(key.clone(), p(2), "lo ".into(), 2), Ok(Added::Waiting { .. })));
        assert!(matches!(r.add(key.clone(), p(1), "Hel".into(), 1), Ok(Added::Waiting { .. })));
        // Part 1 resent: the first copy comes back to be answered.
        match r.add(key.clone(), p(1), "Hel".into(), 11) {
            Ok(Added::Waiting { displaced }) => assert_eq!(displaced, vec![1]),
            _ => panic!("still waiting"),
        }
        match r.add(key.clone(), p(3), "world".into(), 3) {
            Ok(Added::Complete { text, parts, displaced }) => {
                assert_eq!(text, "Hello world");
                assert_eq!(parts, vec![11, 2, 3]);
                assert!(displaced.is_empty());
            }
            _ => panic!("not complete"),
        }
        assert!(r.is_empty());
        // A part with another count restarts the message; the held parts
        // come back.
        let _ = r.add(key.clone(), p(1), "x".into(), 21);
        match r.add(key.clone(), Part { reference: 7, total: 2, seq: 1 }, "y".into(), 22) {
            Ok(Added::Waiting { displaced }) => assert_eq!(displaced, vec![21]),
            _ => panic!("restarted"),
        }
    }

    #[test]
    fn stale_messages_expire_with_what_arrived_and_capacity_is_bounded() {
        let mut r: Reassembler<u32> = Reassembler::new(Duration::ZERO, 1);
        let key = ("esme".to_string(), "a".to_string(), "b".to_string(), 7);
        let _ = r.add(key.clone(), Part { reference: 7, total: 2, seq: 2 }, "world".into(), 2);
        let other = ("esme".to_string(), "a".to_string(), "b".to_string(), 8);
        assert!(r.add(other, Part { reference: 8, total: 2, seq: 1 }, "x".into(), 9).is_err(), "full");
        let e = r.expired(Instant::now());
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].1.as_str(), e[0].2.clone()), ("…world", vec![2]));
    }
}
