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
//! Layout: one hash map from band key to the newest entry, and a flat
//! `next` array chaining older entries of the same bucket. No per-entry
//! allocation.

use hashbrown::HashMap;

use crate::minhash::{mix64, Signature, SIG_LEN};

/// Bands per signature.
pub const BANDS: usize = 40;
/// Signature slots per band.
pub const ROWS: usize = 3;
const _: () = assert!(BANDS * ROWS <= SIG_LEN);

const NIL: u32 = u32::MAX;

/// A banded LSH index of signatures, each tagged with an owner id.
#[derive(Default, Debug, Clone)]
pub struct BandIndex {
    heads: HashMap<u64, u32>,
    next: Vec<u32>,
    sigs: Vec<Signature>,
    owners: Vec<u32>,
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

impl BandIndex {
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
        for band in 0..BANDS {
            let key = band_key(sig, band);
            let prev = self.heads.insert(key, entry).unwrap_or(NIL);
            self.next.push(prev);
        }
        entry
    }

    /// The signature and owner of an entry.
    pub fn entry(&self, entry: u32) -> (&Signature, u32) {
        (&self.sigs[entry as usize], self.owners[entry as usize])
    }

    /// Pushes the distinct candidate entries for `sig` into `out` (cleared
    /// first), in ascending entry order.
    pub fn candidates(&self, sig: &Signature, out: &mut Vec<u32>) {
        out.clear();
        for band in 0..BANDS {
            let mut e = self.heads.get(&band_key(sig, band)).copied().unwrap_or(NIL);
            while e != NIL {
                out.push(e);
                e = self.next[e as usize * BANDS + band];
            }
        }
        out.sort_unstable();
        out.dedup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
