//! MinHash signatures of templates, for near-duplicate detection.
//!
//! A template is shingled into overlapping 5-byte windows of its skeleton
//! (letters, digits and slot codes; see [`crate::template`]) with known
//! boilerplate removed. Each shingle is hashed once with xxh3 (fixed seed),
//! and the signature is built by one-permutation hashing with
//! densification: one pass over the shingles for all [`SIG_LEN`] slots. The fraction of equal positions between two signatures estimates the
//! Jaccard similarity of their shingle sets.
//!
//! Character shingles of a space-free skeleton are what SMS needs: texts are
//! short, so word shingles are too few; and spacing tricks vanish with the
//! spaces. Signatures are computed once per distinct template, never per
//! message.

use std::ops::Range;

use crate::template::{skeleton_into, Slot, HASH_SEED};

/// Number of hash functions in a signature.
pub const SIG_LEN: usize = 120;
/// Shingle width in skeleton bytes.
pub const SHINGLE: usize = 5;

/// A MinHash signature.
pub type Signature = [u32; SIG_LEN];

/// Reusable buffers for signature computation.
#[derive(Default, Debug)]
pub struct MinHashScratch {
    skeleton: Vec<u8>,
    stripped: String,
    ranges: Vec<Range<usize>>,
    hashes: Vec<u64>,
}

/// Writes into `stripped` the template with boilerplate removed and returns
/// true, unless nothing was removed or too little would remain to say
/// anything (then the whole template is shingled).
fn strip_boilerplate(
    template: &str,
    ranges: &mut Vec<Range<usize>>,
    stripped: &mut String,
    skeleton: &mut Vec<u8>,
    min_len: usize,
) -> bool {
    crate::features::boilerplate_ranges(template, ranges);
    if ranges.is_empty() {
        return false;
    }
    stripped.clear();
    let mut last = 0;
    for r in ranges.iter() {
        stripped.push_str(&template[last..r.start]);
        stripped.push(' ');
        last = r.end;
    }
    stripped.push_str(&template[last..]);
    skeleton_into(stripped, skeleton);
    crate::template::skeleton_len(skeleton) >= min_len
}

/// Computes the signature of `template` (boilerplate stripped when enough
/// remains; `min_len` is the shortest skeleton that may stand alone).
pub fn signature(template: &str, scratch: &mut MinHashScratch, min_len: usize) -> Signature {
    let MinHashScratch { skeleton, stripped, ranges, hashes } = scratch;
    if !strip_boilerplate(template, ranges, stripped, skeleton, min_len) {
        skeleton_into(template, skeleton);
    }
    unify_interchangeable_slots(skeleton);
    hashes.clear();
    if skeleton.len() <= SHINGLE {
        hashes.push(xxhash_rust::xxh3::xxh3_64_with_seed(skeleton, HASH_SEED));
    } else {
        for w in skeleton.windows(SHINGLE) {
            hashes.push(xxhash_rust::xxh3::xxh3_64_with_seed(w, HASH_SEED));
        }
    }
    hashes.sort_unstable();
    hashes.dedup();
    one_permutation(hashes)
}

/// Slots that senders swap for one another without changing the message:
/// a tracking or order number written with or without letters (`{num}`,
/// `{code}`), and a link on the sender's domain or behind a shortener
/// (`{url}`, `{shorturl}`: link rotation across domains and shorteners).
/// For similarity each pair is one slot; the templates (and their keys,
/// and the `url-shortener` finding) keep the difference.
fn unify_interchangeable_slots(skeleton: &mut [u8]) {
    for b in skeleton.iter_mut() {
        if *b == Slot::Code.code() {
            *b = Slot::Num.code();
        } else if *b == Slot::ShortUrl.code() {
            *b = Slot::Url.code();
        }
    }
}

const EMPTY: u32 = u32::MAX;

/// One-permutation hashing with optimal densification (Li, Owen & Zhang
/// 2012; Shrivastava 2017): each shingle hash lands in one of [`SIG_LEN`]
/// bins by its high bits and competes on its low bits; an empty bin borrows
/// the value of a bin picked by a fixed hash sequence. The collision
/// probability per bin is the Jaccard similarity, as with K permutations, at
/// the cost of one pass instead of K.
fn one_permutation(hashes: &[u64]) -> Signature {
    let mut sig = [EMPTY; SIG_LEN];
    for &h in hashes {
        let bin = (((h >> 32) * SIG_LEN as u64) >> 32) as usize;
        let v = (h as u32).min(EMPTY - 1);
        if v < sig[bin] {
            sig[bin] = v;
        }
    }
    if sig.contains(&EMPTY) {
        let filled = sig;
        for (j, slot) in sig.iter_mut().enumerate() {
            if *slot != EMPTY {
                continue;
            }
            let mut attempt = 0u64;
            loop {
                attempt += 1;
                let r = mix64(HASH_SEED ^ ((j as u64) << 32) ^ attempt);
                let k = (((r >> 32) * SIG_LEN as u64) >> 32) as usize;
                if filled[k] != EMPTY {
                    *slot = filled[k];
                    break;
                }
            }
        }
    }
    sig
}

/// splitmix64's finalizer: a fast bijective 64-bit mix.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Slots compared before deciding whether a full comparison is worth it.
pub const PREFIX: usize = 30;

/// Estimated similarity, or `None` when the first `PREFIX` slots already
/// show it is far below `threshold`: fewer equal slots than three standard
/// deviations under what `threshold` would give. At Jaccard 0.5 a true pair
/// is cut this way about once in a thousand; unrelated pairs almost always
/// are, after reading a quarter of the signature.
pub fn similarity_at_least(a: &Signature, b: &Signature, threshold: f32) -> Option<f32> {
    let head = a[..PREFIX].iter().zip(&b[..PREFIX]).filter(|(x, y)| x == y).count() as f32;
    if head < head_cut(threshold) {
        return None;
    }
    let tail = a[PREFIX..].iter().zip(&b[PREFIX..]).filter(|(x, y)| x == y).count() as f32;
    Some((head + tail) / SIG_LEN as f32)
}

/// The low four bits of every slot of a signature, in one cache line: an
/// exact upper bound on how many slots two signatures share (two slots
/// whose low bits differ differ), read where the whole signature (eight
/// lines) would be. Verifying a near-duplicate candidate starts here, and
/// most candidates end here: unrelated texts agree on about a sixth of the
/// nibbles, a near-duplicate on at least half.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Print(pub(crate) [u64; 8]);

/// Nibbles of the first [`PREFIX`] slots in word 1 of a [`Print`] (word 0
/// holds slots 0-15).
const HEAD_MASK_1: u64 = (1 << ((PREFIX - 16) * 4)) - 1;
const _: () = assert!(PREFIX > 16 && PREFIX <= 32 && SIG_LEN <= 128);
const NIBBLE_LOW_BITS: u64 = 0x1111_1111_1111_1111;

impl Print {
    pub fn of(sig: &Signature) -> Print {
        let mut w = [0u64; 8];
        for (i, &v) in sig.iter().enumerate() {
            w[i / 16] |= u64::from(v & 0xF) << ((i % 16) * 4);
        }
        Print(w)
    }

    /// Whether `self` and `other`'s signatures can pass
    /// [`similarity_at_least`] at `threshold` with an estimate above
    /// `floor`. `false` is exact: then they cannot. (The unused nibbles
    /// past [`SIG_LEN`] are zero in both, so they never count as a
    /// difference.)
    #[inline]
    pub fn may_exceed(&self, other: &Print, threshold: f32, floor: f32) -> bool {
        let diff = |i: usize| {
            let x = self.0[i] ^ other.0[i];
            (x | x >> 1 | x >> 2 | x >> 3) & NIBBLE_LOW_BITS
        };
        let head_diff = diff(0).count_ones() + (diff(1) & HEAD_MASK_1).count_ones();
        let head_upper = PREFIX as f32 - head_diff as f32;
        if head_upper < head_cut(threshold) {
            return false;
        }
        let all_diff: u32 = (0..8).map(|i| diff(i).count_ones()).sum();
        let upper = (SIG_LEN as u32 - all_diff) as f32 / SIG_LEN as f32;
        upper > floor
    }
}

/// Fewest equal slots among the first [`PREFIX`] that [`similarity_at_least`]
/// goes on with.
#[inline]
fn head_cut(threshold: f32) -> f32 {
    let mean = threshold * PREFIX as f32;
    let sd = (PREFIX as f32 * threshold * (1.0 - threshold)).sqrt();
    mean - 3.0 * sd
}

/// Estimated Jaccard similarity of two signatures: the share of equal slots.
pub fn similarity(a: &Signature, b: &Signature) -> f32 {
    let eq = a.iter().zip(b.iter()).filter(|(x, y)| x == y).count();
    eq as f32 / SIG_LEN as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{templatize, TemplateScratch};

    fn sig(body: &str) -> Signature {
        let mut ts = TemplateScratch::default();
        let mut t = String::new();
        templatize(body, &mut ts, &mut t);
        signature(&t, &mut MinHashScratch::default(), 20)
    }

    #[test]
    fn a_print_never_rules_out_a_pair_that_would_pass() {
        // Pairs at every agreement, with values from a small range so that
        // unequal slots often share their low bits (the bound's loose
        // case), and floors from below the threshold to near 1.
        let mut checked = 0;
        let mut ruled_out = 0;
        for seed in 0..4_000u64 {
            let agree = (seed % 121) as usize;
            let range = [16u64, 64, 1 << 20, 1 << 32][(seed / 121 % 4) as usize];
            let mut a = [0u32; SIG_LEN];
            let mut b = [0u32; SIG_LEN];
            for i in 0..SIG_LEN {
                a[i] = (mix64(seed * 1000 + i as u64) % range) as u32;
                b[i] = if mix64(seed ^ (i as u64 * 77)) % 120 < agree as u64 {
                    a[i]
                } else {
                    (mix64(seed * 7777 + i as u64) % range) as u32
                };
            }
            let (pa, pb) = (Print::of(&a), Print::of(&b));
            for threshold in [0.3f32, 0.5, 0.7] {
                for floor in [threshold - f32::EPSILON, 0.55, 0.8, 0.95] {
                    checked += 1;
                    let passes = similarity_at_least(&a, &b, threshold).is_some_and(|s| s > floor);
                    let may = pa.may_exceed(&pb, threshold, floor);
                    assert!(
                        may || !passes,
                        "seed {seed}: ruled out a pair at {:?}",
                        similarity_at_least(&a, &b, threshold)
                    );
                    ruled_out += usize::from(!may);
                }
            }
        }
        assert!(ruled_out > checked / 4, "the bound rules out {ruled_out} of {checked}: it should cut most far pairs");
        let far = sig("Your prescription is ready for pickup at Acme Pharmacy. Reply STOP to opt out");
        let other = sig("Flash sale: 40% off all boots this weekend only at Trailhead. Reply STOP to opt out");
        assert!(!Print::of(&far).may_exceed(&Print::of(&other), 0.5, 0.5 - f32::EPSILON));
        assert!(Print::of(&far).may_exceed(&Print::of(&far), 0.5, 0.99));
    }

    #[test]
    fn identical_texts_are_identical() {
        let a = sig("Radical Liberals & Dems are trying to steal this election");
        assert_eq!(similarity(&a, &a), 1.0);
    }

    #[test]
    fn a_changed_word_stays_similar() {
        let a = sig("Radical Liberals & Dems are trying to steal this election. Patriots, gather at the Convention Center at 3pm!");
        let b = sig("Radical Liberals & Democrats are trying to steal the election. Patriots, gather at the Convention Center at 3pm!");
        assert!(similarity(&a, &b) > 0.6, "{}", similarity(&a, &b));
    }

    #[test]
    fn unrelated_texts_sharing_an_optout_tail_are_far() {
        let a = sig("Your prescription is ready for pickup at Acme Pharmacy. Reply STOP to opt out");
        let b = sig("Flash sale: 40% off all boots this weekend only at Trailhead. Reply STOP to opt out");
        assert!(similarity(&a, &b) < 0.2, "{}", similarity(&a, &b));
    }

    #[test]
    fn swapped_id_and_link_slots_do_not_change_the_signature() {
        // A tracking number with or without letters, a link on a domain or
        // behind a shortener: the same smishing text (seen splitting a
        // campaign in two before slots were unified for similarity).
        let a = sig(
            "USPS: Your package 9400571548218930 could not be delivered. Update: https://usps-parcelcare.info/JN3BwuC",
        );
        let b = sig("USPS: Your package TBA476409015785 could not be delivered. Update: rb.gy/5xW9ca");
        assert_eq!(a, b);
        let (mut ts, mut t, mut u) = (TemplateScratch::default(), String::new(), String::new());
        let ka = templatize("Your package 9400571548218930 https://usps-parcelcare.info/x", &mut ts, &mut t);
        let kb = templatize("Your package TBA476409015785 rb.gy/5xW9ca", &mut ts, &mut u);
        assert_ne!(ka, kb, "the templates themselves stay distinct");
        assert_ne!(t, u);
    }

    #[test]
    fn signatures_are_stable() {
        // Persisted signatures must not change between versions: pin one
        // value. (Unifying `{code}`/`{num}` and `{shorturl}`/`{url}` changed
        // the signatures of templates holding those slots; a database from
        // before compares them with a lower similarity, nothing breaks.)
        let a = sig("vote today");
        assert_eq!(a.len(), SIG_LEN);
        let again = sig("VOTE   today!");
        assert_eq!(a, again);
    }
}
