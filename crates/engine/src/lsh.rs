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
//! Layout: a flat open-addressing table from band key to its bucket
//! (`Heads`): a bucket of one entry is held in its slot; one of more
//! points to a [`Block`] of its newest [`MAX_BUCKET_VISITS`] entries (half
//! a cache line), so a lookup reads every band's bucket in two rounds of
//! independent loads (the slots, then the blocks) however full the
//! buckets are. No per-entry allocation.

use crate::minhash::{mix64, similarity_at_least, Print, Signature, SIG_LEN};

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
/// Marks a slot's value as a block number rather than an entry.
const BLOCK: u32 = 1 << 31;

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
    sigs: Vec<Signature>,
    /// Each entry's [`Print`]: candidates are screened on it before their
    /// signature is read.
    prints: Vec<Print>,
    owners: Vec<u32>,
}

/// Band key to its bucket: open addressing with linear probing over 8-byte
/// slots, each the key's upper 32 bits (its tag) and a value: the bucket's
/// one entry, or [`BLOCK`] and the number of its [`Block`]. A cache line
/// holds eight slots, and a lookup costs one cache miss. Band keys are
/// already mixed: their low bits pick the slot, their high bits are the
/// tag. Two keys with the same slot and tag share a bucket (one key in four
/// billion): that adds candidates, verified on the full signature anyway,
/// and the two share [`MAX_BUCKET_VISITS`]. Never shrinks; an empty slot
/// holds [`NIL`].
#[derive(Debug, Clone, Default)]
struct Heads {
    slots: Vec<u64>,
    len: usize,
    blocks: Vec<Block>,
}

/// The newest entries of a bucket that has held more than one, newest
/// first, [`NIL`] past the last: all a lookup visits of it, since older
/// entries are never visited. Half a cache line, aligned so that it never
/// straddles two.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(32))]
struct Block([u32; MAX_BUCKET_VISITS]);
const _: () = assert!(std::mem::size_of::<Block>() == 32);

impl Block {
    /// Adds `entry` as the newest, dropping the oldest of a full block.
    #[inline]
    fn push(&mut self, entry: u32) {
        self.0.copy_within(..MAX_BUCKET_VISITS - 1, 1);
        self.0[0] = entry;
    }
}

#[inline]
fn slot_of(key: u64, entry: u32) -> u64 {
    (key & !0xFFFF_FFFF) | u64::from(entry)
}

#[inline]
fn slot_entry(slot: u64) -> u32 {
    slot as u32
}

#[inline]
fn same_tag(slot: u64, key: u64) -> bool {
    (slot ^ key) >> 32 == 0
}

impl Heads {
    /// Where `key`'s probe starts.
    #[inline]
    fn home(&self, key: u64) -> usize {
        key as usize & (self.slots.len().wrapping_sub(1))
    }

    /// Loads the slot where `key`'s probe starts, so that a later
    /// [`Heads::get`] finds its cache line warm. Lookups of many keys load
    /// all their lines first: independent loads overlap their misses.
    #[inline]
    fn touch(&self, key: u64) -> u64 {
        self.slots.get(self.home(key)).copied().unwrap_or(0)
    }

    /// The slot value of `key`'s bucket: [`NIL`], an entry, or [`BLOCK`]
    /// and a block number.
    #[inline]
    fn get(&self, key: u64) -> u32 {
        if self.slots.is_empty() {
            return NIL;
        }
        let mask = self.slots.len() - 1;
        let mut i = key as usize & mask;
        loop {
            let s = self.slots[i];
            let e = slot_entry(s);
            if e == NIL || same_tag(s, key) {
                return e;
            }
            i = (i + 1) & mask;
        }
    }

    /// Whether one more key could push the load past 3/4.
    #[inline]
    fn full(&self) -> bool {
        (self.len + 1) * 4 > self.slots.len() * 3
    }

    /// An empty table twice the size (at least 64 slots). The keys are not
    /// stored whole, so the owner re-inserts them.
    fn doubled(&self) -> Heads {
        Heads { slots: vec![u64::from(NIL); (self.slots.len() * 2).max(64)], len: 0, blocks: Vec::new() }
    }

    /// Adds `entry` (below [`BLOCK`]) as the newest of `key`'s bucket. The
    /// caller grows the table first when it is [`Heads::full`].
    fn insert(&mut self, key: u64, entry: u32) {
        debug_assert!(!self.full() && entry < BLOCK);
        let mask = self.slots.len() - 1;
        let mut i = key as usize & mask;
        loop {
            let s = self.slots[i];
            let v = slot_entry(s);
            if v == NIL {
                self.slots[i] = slot_of(key, entry);
                self.len += 1;
                return;
            }
            if same_tag(s, key) {
                if v & BLOCK != 0 {
                    self.blocks[(v & !BLOCK) as usize].push(entry);
                } else {
                    let b = self.blocks.len() as u32;
                    assert!(b < BLOCK - 1, "LSH index: too many shared buckets");
                    let mut block = Block([NIL; MAX_BUCKET_VISITS]);
                    block.0[0] = entry;
                    block.0[1] = v;
                    self.blocks.push(block);
                    self.slots[i] = slot_of(key, b | BLOCK);
                }
                return;
            }
            i = (i + 1) & mask;
        }
    }

    /// Empties the table, keeping its memory.
    fn clear(&mut self) {
        self.slots.fill(u64::from(NIL));
        self.len = 0;
        self.blocks.clear();
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
        BandIndex { bands, heads: Heads::default(), sigs: Vec::new(), prints: Vec::new(), owners: Vec::new() }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.owners.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// Makes room for `n` entries in all, so that filling the index to
    /// that many moves no signature (the head table still grows as it
    /// fills: its memory is written when made, the entries' only as they
    /// come).
    pub fn reserve(&mut self, n: usize) {
        let more = n.saturating_sub(self.owners.len());
        self.sigs.reserve_exact(more);
        self.prints.reserve_exact(more);
        self.owners.reserve_exact(more);
    }

    /// Removes every entry, keeping the memory (a cleared index refills
    /// without growing, up to the size it had).
    pub fn clear(&mut self) {
        self.heads.clear();
        self.sigs.clear();
        self.prints.clear();
        self.owners.clear();
    }

    /// Adds a signature for `owner`. Returns the entry number.
    pub fn insert(&mut self, sig: &Signature, owner: u32) -> u32 {
        let entry = self.owners.len() as u32;
        assert!(entry < BLOCK - 1, "LSH index full");
        if (self.heads.len + self.bands) * 4 > self.heads.slots.len() * 3 {
            self.grow();
        }
        self.sigs.push(*sig);
        self.prints.push(Print::of(sig));
        self.owners.push(owner);
        for band in 0..self.bands {
            self.heads.insert(band_key(sig, band), entry);
        }
        entry
    }

    /// Doubles the head table (until it has room for one more entry) and
    /// re-inserts every entry's band keys in entry order, rebuilding the
    /// blocks with the heads.
    #[cold]
    fn grow(&mut self) {
        let mut heads = self.heads.doubled();
        while (self.owners.len() + 1) * self.bands * 4 > heads.slots.len() * 3 {
            heads = heads.doubled();
        }
        for (entry, sig) in self.sigs.iter().enumerate() {
            for band in 0..self.bands {
                // The blocks are rebuilt too: two keys that shared a slot
                // (same tag, overlapping probes) may not share one now.
                heads.insert(band_key(sig, band), entry as u32);
            }
        }
        self.heads = heads;
    }

    /// The signature and owner of an entry.
    pub fn entry(&self, entry: u32) -> (&Signature, u32) {
        (&self.sigs[entry as usize], self.owners[entry as usize])
    }

    /// Starts loading the bucket heads `sig` would read, so that a
    /// [`BandIndex::candidates`] right after (on this or another index)
    /// does not wait for them one by one.
    pub fn warm(&self, sig: &Signature) {
        let mut keys = [0u64; BANDS];
        for (band, k) in keys.iter_mut().enumerate().take(self.bands) {
            *k = band_key(sig, band);
        }
        self.touch_heads(&keys[..self.bands]);
    }

    /// Loads the home slot of every key: independent loads, whose cache
    /// misses overlap, where probing key by key would take them in turn.
    #[inline]
    fn touch_heads(&self, keys: &[u64]) {
        let mut acc = 0u64;
        for &k in keys {
            acc ^= self.heads.touch(k);
        }
        std::hint::black_box(acc);
    }

    /// The estimated similarity of `sig` (whose print is `print`) to
    /// `entry`, when it passes [`similarity_at_least`] at `threshold` and
    /// exceeds `floor`. Cheapest first: the entry's print (one cache line;
    /// what it rules out could not pass), then its signature.
    #[inline]
    pub fn similarity_above(
        &self,
        entry: u32,
        sig: &Signature,
        print: &Print,
        threshold: f32,
        floor: f32,
    ) -> Option<f32> {
        if !self.prints[entry as usize].may_exceed(print, threshold, floor) {
            return None;
        }
        similarity_at_least(sig, &self.sigs[entry as usize], threshold).filter(|&s| s > floor)
    }

    /// Starts loading the prints of `entries` (what screening a candidate
    /// reads), so that their cache misses overlap.
    pub fn warm_entries(&self, entries: &[u32]) {
        let mut acc = 0u64;
        for &e in entries {
            if let Some(p) = self.prints.get(e as usize) {
                acc ^= p.0[0];
            }
        }
        std::hint::black_box(acc);
    }

    /// Pushes the distinct candidate entries for `sig` into `out` (cleared
    /// first), in ascending entry order. Crowded lookups keep only
    /// candidates seen in two or more bands (see [`CROWDED`]).
    pub fn candidates(&self, sig: &Signature, out: &mut Vec<u32>) {
        out.clear();
        // Every band's slot first, then every block: the loads of each
        // round are independent of each other, so their cache misses
        // overlap instead of queueing.
        let mut keys = [0u64; BANDS];
        for (band, k) in keys.iter_mut().enumerate().take(self.bands) {
            *k = band_key(sig, band);
        }
        self.touch_heads(&keys[..self.bands]);
        let mut blocks = [0u32; BANDS];
        let mut n = 0;
        for &k in &keys[..self.bands] {
            let v = self.heads.get(k);
            if v == NIL {
                continue;
            }
            if v & BLOCK == 0 {
                out.push(v);
            } else {
                blocks[n] = v & !BLOCK;
                n += 1;
            }
        }
        for &b in &blocks[..n] {
            for &e in &self.heads.blocks[b as usize].0 {
                if e == NIL {
                    break;
                }
                out.push(e);
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

    /// A signature of independent random slots, one per `i`.
    fn random_sig(i: u64) -> Signature {
        let mut s = [0u32; SIG_LEN];
        for (j, v) in s.iter_mut().enumerate() {
            *v = mix64(i.wrapping_mul(1000).wrapping_add(j as u64)) as u32;
        }
        s
    }

    #[test]
    fn heads_keep_the_newest_entries_per_key_through_collisions() {
        let mut h = Heads::default();
        assert_eq!(h.get(7), NIL);
        while (1000 + 1) * 4 > h.slots.len() * 3 {
            h = h.doubled();
        }
        // Keys sharing their low bits (their home slot) probe past each
        // other and are told apart by their tags.
        for i in 0..1000u64 {
            assert!(!h.full());
            h.insert(i << 32, i as u32);
        }
        for i in 0..1000u64 {
            assert_eq!(h.get(i << 32), i as u32);
        }
        // A second entry turns the slot into a block, newest first; past
        // MAX_BUCKET_VISITS the oldest leave.
        h.insert(5 << 32, 77);
        let v = h.get(5 << 32);
        assert_ne!(v & BLOCK, 0);
        assert_eq!(&h.blocks[(v & !BLOCK) as usize].0[..3], &[77, 5, NIL]);
        for e in 100_000..100_010u32 {
            h.insert(5 << 32, e);
        }
        let want: Vec<u32> = (100_002..100_010u32).rev().collect();
        assert_eq!(h.blocks[(h.get(5 << 32) & !BLOCK) as usize].0.to_vec(), want);
        assert_eq!(h.get(1001 << 32), NIL);
        assert_eq!(h.len, 1000);
        assert!(h.slots.len() * 3 >= h.len * 4, "load stays at most 3/4");
    }

    #[test]
    fn growth_keeps_every_entry_and_every_chain() {
        let mut idx = BandIndex::with_bands(LIGHT_BANDS);
        let repeated = random_sig(u64::MAX);
        let mut repeats = Vec::new();
        for i in 0..20_000u64 {
            if i % 3000 == 0 {
                repeats.push(idx.insert(&repeated, 1_000_000 + i as u32));
            }
            idx.insert(&random_sig(i), i as u32);
        }
        assert!(idx.heads.slots.len() * 3 >= idx.heads.len * 4);
        let mut out = Vec::new();
        for i in (0..20_000u64).step_by(7) {
            idx.candidates(&random_sig(i), &mut out);
            assert!(out.iter().any(|&e| idx.entry(e).1 == i as u32), "entry {i} lost");
        }
        // The copies inserted before and after each growth are all one
        // bucket, newest first, capped.
        idx.candidates(&repeated, &mut out);
        let want: Vec<u32> = repeats.iter().rev().take(MAX_BUCKET_VISITS).rev().copied().collect();
        assert_eq!(out, want);
    }

    #[test]
    fn a_cleared_index_forgets_everything_and_refills_without_growing() {
        let mut idx = BandIndex::with_bands(LIGHT_BANDS);
        for i in 0..5_000u64 {
            idx.insert(&random_sig(i), i as u32);
        }
        let slots = idx.heads.slots.len();
        idx.clear();
        assert!(idx.is_empty());
        let mut out = Vec::new();
        idx.candidates(&random_sig(17), &mut out);
        assert!(out.is_empty(), "a cleared index has no candidates");
        for i in 10_000..15_000u64 {
            idx.insert(&random_sig(i), i as u32);
        }
        assert_eq!(idx.heads.slots.len(), slots, "refilling to the same size does not grow");
        for i in (10_000..15_000u64).step_by(11) {
            idx.candidates(&random_sig(i), &mut out);
            assert_eq!(out.len(), 1);
            assert_eq!(idx.entry(out[0]).1, i as u32);
        }
        idx.candidates(&random_sig(17), &mut out);
        assert!(out.is_empty(), "nothing from before the clear comes back");
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
