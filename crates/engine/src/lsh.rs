//! Banded LSH over MinHash signatures.
//!
//! A signature is cut into [`BANDS`] bands of [`ROWS`] slots; two signatures
//! that agree on any whole band become candidates. With 40 bands of 3, a pair
//! at Jaccard 0.5 is a candidate with probability 0.995, at 0.3 with 0.68 and
//! at 0.1 with 0.04; candidates are then checked on the full signature.
//!
//! The index holds **representatives**, never every member: a campaign of a
//! million copies has at most a handful of entries, so a lookup costs the
//! same at the end of a run as at the start (an index of every member makes
//! buckets hold whole campaigns and lookups quadratic).
//!
//! Layout: a flat open-addressing table from band key to the newest entry
//! (`Heads`), and a flat `next` array chaining older entries of the same
//! bucket. No per-entry allocation.

use crate::minhash::{mix64, Signature, SIG_LEN};

/// Bands per signature in a full index (campaign representatives).
pub const BANDS: usize = 40;
/// Bands in a light index (recent singletons): half the memory and lookups;
/// a pair at Jaccard 0.5 is a candidate with probability 0.93, at 0.6 with
/// 0.99.
pub const LIGHT_BANDS: usize = 20;
/// Signature slots per band.
pub const ROWS: usize = 3;
const _: () = assert!(BANDS * ROWS <= SIG_LEN);

const NIL: u32 = u32::MAX;

/// Most entries visited per bucket per query, newest first. A bucket that
/// holds more is a common band value (texts sharing everyday words), not
/// evidence of a shared text; a true near-duplicate shares many bands and is
/// found through the others. Without the cap, unrelated chatter makes
/// lookups quadratic.
pub const MAX_BUCKET_VISITS: usize = 8;

/// When a lookup returns more candidates than this, only those that collide
/// in at least two bands are kept. A pair at Jaccard 0.5 collides in five
/// bands on average (and in two or more with probability 0.97; at 0.6,
/// 0.993), unrelated texts that share everyday words in almost none.
pub const CROWDED: usize = 48;

/// A banded LSH index of signatures, each tagged with an owner id.
#[derive(Debug, Clone)]
pub struct BandIndex {
    bands: usize,
    heads: Heads,
    next: Vec<u32>,
    sigs: Vec<Signature>,
    owners: Vec<u32>,
}

/// Band key to the newest entry of its bucket: open addressing with linear
/// probing over `(key, entry)` slots, so a lookup costs one cache miss (a
/// general hash map keeps control bytes and slots apart: two). Band keys are
/// already mixed, so their low bits are the slot. Never shrinks; an empty
/// slot holds entry [`NIL`].
#[derive(Debug, Clone, Default)]
struct Heads {
    slots: Vec<(u64, u32)>,
    len: usize,
}

impl Heads {
    #[inline]
    fn get(&self, key: u64) -> u32 {
        if self.slots.is_empty() {
            return NIL;
        }
        let mask = self.slots.len() - 1;
        let mut i = key as usize & mask;
        loop {
            let (k, e) = self.slots[i];
            if e == NIL || k == key {
                return e;
            }
            i = (i + 1) & mask;
        }
    }

    /// Points `key` at `entry`; returns the entry it pointed at before.
    fn insert(&mut self, key: u64, entry: u32) -> u32 {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = key as usize & mask;
        loop {
            let (k, e) = self.slots[i];
            if e == NIL {
                self.slots[i] = (key, entry);
                self.len += 1;
                return NIL;
            }
            if k == key {
                self.slots[i].1 = entry;
                return e;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(64);
        let old = std::mem::replace(&mut self.slots, vec![(0, NIL); size]);
        self.len = 0;
        for (k, e) in old {
            if e != NIL {
                self.insert(k, e);
            }
        }
    }
}

#[inline]
fn band_key(sig: &Signature, band: usize) -> u64 {
    let r = &sig[band * ROWS..band * ROWS + ROWS];
    let mut k = (band as u64) << 56;
    for (i, &v) in r.iter().enumerate() {
        k = mix64(k ^ ((v as u64) << (i * 7)) ^ v as u64);
    }
    k
}

impl Default for BandIndex {
    fn default() -> Self {
        BandIndex::with_bands(BANDS)
    }
}

impl BandIndex {
    /// An index using the first `bands` bands of each signature.
    pub fn with_bands(bands: usize) -> Self {
        assert!(bands > 0 && bands <= BANDS);
        BandIndex { bands, heads: Heads::default(), next: Vec::new(), sigs: Vec::new(), owners: Vec::new() }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.owners.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// Adds a signature for `owner`. Returns the entry number.
    pub fn insert(&mut self, sig: &Signature, owner: u32) -> u32 {
        let entry = self.owners.len() as u32;
        self.sigs.push(*sig);
        self.owners.push(owner);
        for band in 0..self.bands {
            let key = band_key(sig, band);
            let prev = self.heads.insert(key, entry);
            self.next.push(prev);
        }
        entry
    }

    /// The signature and owner of an entry.
    pub fn entry(&self, entry: u32) -> (&Signature, u32) {
        (&self.sigs[entry as usize], self.owners[entry as usize])
    }

    /// Pushes the distinct candidate entries for `sig` into `out` (cleared
    /// first), in ascending entry order. Crowded lookups keep only
    /// candidates seen in two or more bands (see [`CROWDED`]).
    pub fn candidates(&self, sig: &Signature, out: &mut Vec<u32>) {
        out.clear();
        // The bucket heads first, then the chains one step at a time across
        // all bands: each step's loads are independent of each other, so
        // their cache misses overlap instead of queueing behind one chain.
        let mut at = [NIL; BANDS];
        for (band, e) in at.iter_mut().enumerate().take(self.bands) {
            *e = self.heads.get(band_key(sig, band));
        }
        for _ in 0..MAX_BUCKET_VISITS {
            let mut live = false;
            for (band, e) in at.iter_mut().enumerate().take(self.bands) {
                if *e != NIL {
                    out.push(*e);
                    *e = self.next[*e as usize * self.bands + band];
                    live = true;
                }
            }
            if !live {
                break;
            }
        }
        out.sort_unstable();
        if out.len() > CROWDED {
            let mut w = 0;
            let mut i = 0;
            while i < out.len() {
                let mut j = i + 1;
                while j < out.len() && out[j] == out[i] {
                    j += 1;
                }
                if j - i >= 2 {
                    out[w] = out[i];
                    w += 1;
                }
                i = j;
            }
            out.truncate(w);
        } else {
            out.dedup();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_keep_the_newest_entry_per_key_through_growth_and_collisions() {
        let mut h = Heads::default();
        assert_eq!(h.get(7), NIL);
        // Keys sharing their low bits probe past each other.
        for i in 0..1000u64 {
            assert_eq!(h.insert(i << 32, i as u32), NIL);
        }
        for i in 0..1000u64 {
            assert_eq!(h.get(i << 32), i as u32);
        }
        assert_eq!(h.insert(5 << 32, 77), 5);
        assert_eq!(h.get(5 << 32), 77);
        assert_eq!(h.get(1001 << 32), NIL);
        assert_eq!(h.len, 1000);
        assert!(h.slots.len() * 3 >= h.len * 4, "load stays at most 3/4");
    }

    #[test]
    fn finds_identical_and_only_then_similar() {
        let mut idx = BandIndex::default();
        let mut a = [0u32; SIG_LEN];
        for (i, v) in a.iter_mut().enumerate() {
            *v = i as u32 * 7919;
        }
        let mut b = a;
        for v in b.iter_mut().step_by(2) {
            *v += 1; // half the slots differ: no band of 3 survives? every band has a changed slot
        }
        let mut c = a;
        for v in c.iter_mut().take(60) {
            *v += 1; // first 20 bands differ, last 20 agree
        }
        idx.insert(&a, 10);
        let mut out = Vec::new();
        idx.candidates(&a, &mut out);
        assert_eq!(out, vec![0]);
        idx.candidates(&b, &mut out);
        assert!(out.is_empty());
        idx.candidates(&c, &mut out);
        assert_eq!(out, vec![0]);
        assert_eq!(idx.entry(0).1, 10);
    }

    #[test]
    fn crowded_buckets_are_cut_but_the_newest_match_is_found() {
        let mut idx = BandIndex::default();
        let common = [7u32; SIG_LEN];
        for i in 0..1000 {
            idx.insert(&common, i);
        }
        let mut out = Vec::new();
        idx.candidates(&common, &mut out);
        assert_eq!(out.len(), MAX_BUCKET_VISITS);
        assert_eq!(idx.entry(*out.last().unwrap()).1, 999);
    }
}
