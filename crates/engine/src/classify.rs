//! A fast linear text classifier: a multiclass linear SVM (Crammer-Singer
//! hinge loss; or, optionally, multinomial logistic regression) over hashed
//! word and character n-grams of the template and the folded text, plus a
//! few "shape" features of the raw text.
//!
//! Features of a text:
//! - word unigrams and bigrams of its template (folded, with `{url}`,
//!   `{amount}`, `{phone}` ... slots, which count as words and are strong
//!   signals), FNV-hashed while the template is scanned;
//! - character 2- to 5-grams of the folded text padded with spaces, each
//!   masked out of a register holding the last five bytes;
//! - six "shape" features of the raw text (capitals, digits, `!`, currency,
//!   length), bucketed, and each run of three or more digits as its length
//!   and first two digits.
//!
//! Each lands in one of 2^`bits` buckets and is counted (a repeated n-gram
//! is a repeated entry: no sorting per text), the vector L2-normalized by
//! its entry count. Training is deterministic AdaGrad SGD with L2
//! regularization over a seeded shuffle; internal cross-validation chooses
//! how many passes to make (the lowest held-out loss, [`held_out_loss`])
//! and moves each class's decision threshold to where it finds the best
//! macro-F1 ([`tune_offsets`]). Inference ([`Model::classify`])
//! adds each feature's 8-bit weights as it is hashed, with no feature
//! vector, and runs once per distinct template.

use crate::template::{templatize, TemplateScratch, HASH_SEED};

/// The categories of the shipped model, in its label order (see
/// [`crate::taxonomy`]).
pub use crate::taxonomy::CATEGORIES;

/// A sparse, L2-normalized feature vector.
pub type Features = Vec<(u32, f32)>;

/// Turns a text into hashed features (its template is computed first).
pub fn features(text: &str, bits: u32, scratch: &mut TemplateScratch, out: &mut Features) {
    let mut t = String::new();
    templatize(text, scratch, &mut t);
    text_features(&t, &scratch.folded, text, bits, out);
}

/// Hashed features from a template and the folded text it came from: the
/// template's words and word pairs, six shape features of the raw text, and
/// character 2- to 5-grams of the folded text (digits, links and punctuation
/// included: "0906", "txt", "£" carry signal that slots remove); counted and
/// L2-normalized.
pub fn text_features(template: &str, folded: &str, raw: &str, bits: u32, out: &mut Features) {
    out.clear();
    for_each_feature(template, folded, raw, bits, |i| out.push((i, 1.0)));
    // Repeated n-grams stay as repeated entries: a count, without the cost
    // of sorting hundreds of entries per text.
    let norm = (out.len() as f32).sqrt();
    for f in out.iter_mut() {
        f.1 = 1.0 / norm;
    }
}

/// Calls `f` with the bucket of every feature of a text, repeats included:
/// the one definition of the features that training ([`text_features`])
/// and the fused inference path ([`Model::classify`]) share.
#[inline]
fn for_each_feature(template: &str, folded: &str, raw: &str, bits: u32, mut f: impl FnMut(u32)) {
    word_features(template, bits, &mut f);
    shape_features(raw, bits, &mut f);
    fold_char_grams(folded, bits, (), |(), i| f(i));
}

/// Folds `f` over the buckets of the character 2- to 5-grams of
/// `" folded "` (the text padded with a space at each end, so that word
/// starts and ends are grams too). The last five bytes ride in one
/// register; each gram is that register masked to its length, mixed with
/// the length and multiplied by an odd constant (the top bits are the
/// bucket): no per-gram hash call, and an accumulator passed by value
/// stays in registers.
#[inline(always)]
fn fold_char_grams<A>(folded: &str, bits: u32, mut acc: A, mut f: impl FnMut(A, u32) -> A) -> A {
    let shift = 64 - bits;
    let seed = HASH_SEED.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let bucket = |window: u64, n: u32| {
        let gram = window & (u64::MAX >> (64 - 8 * n));
        (((gram ^ seed ^ (u64::from(n) << 56)).wrapping_mul(0xD6E8_FEB8_6659_FD93)) >> shift) as u32
    };
    let mut window = u64::from(b' ');
    let mut filled = 1u32;
    for &byte in folded.as_bytes().iter().chain(std::iter::once(&b' ')) {
        window = (window << 8) | u64::from(byte);
        if filled >= 4 {
            acc = f(acc, bucket(window, 2));
            acc = f(acc, bucket(window, 3));
            acc = f(acc, bucket(window, 4));
            acc = f(acc, bucket(window, 5));
        } else {
            filled += 1;
            for n in 2..=filled {
                acc = f(acc, bucket(window, n));
            }
        }
    }
    acc
}

const DIGIT: u8 = 1;
const BANG: u8 = 2;
const MONEY: u8 = 4;
const LOWER: u8 = 8;
const UPPER: u8 = 16;
const SPACE: u8 = 32;

/// What each ASCII byte counts as in [`shape_features`].
static ASCII_CLASS: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut b = 0;
    while b < 128 {
        t[b] = match b as u8 {
            b'0'..=b'9' => DIGIT,
            b'!' => BANG,
            b'$' => MONEY,
            b'a'..=b'z' => LOWER,
            b'A'..=b'Z' => UPPER,
            b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' => SPACE,
            _ => 0,
        };
        b += 1;
    }
    t
};

/// What folding hides: capitals, currency signs, digits, shouting, length.
/// Each is bucketed and hashed like a word.
fn shape_features(raw: &str, bits: u32, f: &mut impl FnMut(u32)) {
    let mask = (1u32 << bits) - 1;
    let (mut caps_words, mut digits, mut bangs, mut money, mut letters, mut upper, mut len) =
        (0u32, 0u32, 0u32, false, 0u32, 0u32, 0u32);
    // One pass: a word is all capitals when it has two or more letters and
    // no lower-case one. ASCII bytes go through a class table without
    // branches; other characters are decoded where they start.
    let (mut word_letters, mut word_lower) = (0u32, false);
    // Runs of three or more digits: their length and first two digits (a
    // premium-rate 09..., a freephone 08..., a five-digit short code).
    let (mut run, mut lead) = (0u32, [0u8; 2]);
    let number = |run: u32, lead: [u8; 2], f: &mut dyn FnMut(u32)| {
        if run >= 3 {
            f((xxhash_rust::xxh3::xxh3_64_with_seed(&[6, run.min(15) as u8, lead[0], lead[1]], HASH_SEED ^ 99) as u32)
                & mask);
        }
    };
    for (at, &byte) in raw.as_bytes().iter().enumerate() {
        if byte < 0x80 {
            let class = ASCII_CLASS[byte as usize];
            if class & DIGIT != 0 {
                if run < 2 {
                    lead[run as usize] = byte;
                }
                run += 1;
            } else if run > 0 {
                number(run, lead, f);
                run = 0;
            }
            let (space, letter, up) =
                ((class & SPACE) != 0, (class & (LOWER | UPPER)) != 0, u32::from(class & UPPER != 0));
            len += 1;
            digits += u32::from(class & DIGIT != 0);
            bangs += u32::from(class & BANG != 0);
            money |= class & MONEY != 0;
            letters += u32::from(letter);
            upper += up;
            caps_words += u32::from(space & (word_letters >= 2) & !word_lower);
            word_letters = if space { 0 } else { word_letters + u32::from(letter) };
            word_lower = !space & (word_lower | (class & LOWER != 0));
            continue;
        }
        if byte < 0xC0 {
            continue; // inside a character
        }
        let c = raw[at..].chars().next().unwrap_or(' ');
        len += 1;
        if run > 0 {
            number(run, lead, f);
            run = 0;
        }
        if c.is_whitespace() {
            caps_words += u32::from(word_letters >= 2 && !word_lower);
            (word_letters, word_lower) = (0, false);
        } else if matches!(c, '£' | '€') {
            money = true;
        } else if c.is_alphabetic() {
            letters += 1;
            word_letters += 1;
            if c.is_uppercase() {
                upper += 1;
            } else {
                word_lower = true;
            }
        }
    }
    number(run, lead, f);
    caps_words += (word_letters >= 2 && !word_lower) as u32;
    let bucket = |v: u32, edges: &[u32]| edges.iter().position(|&e| v < e).unwrap_or(edges.len()) as u8;
    let shapes: [(u8, u8); 6] = [
        (0, bucket(caps_words, &[1, 2, 3, 6])),
        (1, bucket(digits, &[1, 4, 8, 12])),
        (2, bucket(bangs, &[1, 2, 4])),
        (3, money as u8),
        (4, bucket(len, &[20, 50, 100, 160])),
        (5, bucket((upper * 10).checked_div(letters).unwrap_or(0), &[1, 2, 4, 7])),
    ];
    for (kind, v) in shapes {
        f((xxhash_rust::xxh3::xxh3_64_with_seed(&[kind, v], HASH_SEED ^ 99) as u32) & mask);
    }
}

/// Word unigrams and bigrams of a template (slots count as words). A word
/// is a run of letters, digits, `{`, `}`, `'` and non-ASCII bytes; each is
/// hashed as it is scanned (FNV-1a), a pair by mixing its two words' hashes.
fn word_features(template: &str, bits: u32, f: &mut impl FnMut(u32)) {
    let shift = 64 - bits;
    let bucket = |h: u64, kind: u64| (((h ^ kind).wrapping_mul(0x9E37_79B9_7F4A_7C15)) >> shift) as u32;
    const BASIS: u64 = 0xcbf2_9ce4_8422_2325 ^ HASH_SEED;
    let (mut h, mut prev, mut in_word) = (BASIS, None::<u64>, false);
    for &b in template.as_bytes().iter().chain(std::iter::once(&b' ')) {
        if b.is_ascii_alphanumeric() || matches!(b, b'{' | b'}' | b'\'') || b >= 0x80 {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
            in_word = true;
        } else if in_word {
            f(bucket(h, 1 << 60));
            if let Some(p) = prev {
                f(bucket(p.rotate_left(29) ^ h, 2 << 60));
            }
            (prev, h, in_word) = (Some(h), BASIS, false);
        }
    }
}

/// Assigns each example a fold, stratified by label: per class a seeded
/// shuffle, then round-robin, so every fold holds each class in proportion.
pub fn stratified_folds(y: &[usize], classes: usize, folds: usize, seed: u64) -> Vec<usize> {
    let mut fold_of = vec![0usize; y.len()];
    let mut state = seed ^ 0xD1B5_4A32_D192_ED03;
    for c in 0..classes {
        let mut idx: Vec<usize> = (0..y.len()).filter(|&i| y[i] == c).collect();
        for i in (1..idx.len()).rev() {
            state = crate::minhash::mix64(state.wrapping_add(0x9E37_79B9_7F4A_7C15));
            idx.swap(i, (state % (i as u64 + 1)) as usize);
        }
        for (n, i) in idx.into_iter().enumerate() {
            fold_of[i] = n % folds.max(1);
        }
    }
    fold_of
}

/// Per-class score offsets (class 0's stays 0) that maximize macro-F1 of
/// `argmax(score + offset)` over held-out `scores` (`k` per example) with
/// true labels `y`, and the macro-F1 they reach: coordinate ascent over a
/// grid of offsets within ±1.5 (the hinge margin is 1), three rounds; among
/// equal scores the offset nearest 0 wins, so a class is moved only for a
/// real gain.
pub fn tune_offsets(k: usize, scores: &[f32], y: &[usize]) -> (Vec<f32>, f64) {
    let mut offsets = vec![0f32; k];
    let macro_f1 = |offsets: &[f32]| {
        let mut m = vec![0u32; k * k];
        for (s, &t) in scores.chunks_exact(k).zip(y) {
            let p = (0..k).fold(0, |b, c| if s[c] + offsets[c] > s[b] + offsets[b] { c } else { b });
            m[t * k + p] += 1;
        }
        (0..k)
            .map(|c| {
                let tp = f64::from(m[c * k + c]);
                let predicted: f64 = (0..k).map(|r| f64::from(m[r * k + c])).sum();
                let actual: f64 = (0..k).map(|p| f64::from(m[c * k + p])).sum();
                if predicted + actual > 0.0 {
                    2.0 * tp / (predicted + actual)
                } else {
                    0.0
                }
            })
            .sum::<f64>()
            / k as f64
    };
    let grid: Vec<f32> = (-30..=30).map(|i| i as f32 * 0.05).collect();
    let mut best = macro_f1(&offsets);
    for _round in 0..3 {
        let mut moved = false;
        for c in 1..k {
            let mut pick = offsets[c];
            for &g in &grid {
                offsets[c] = g;
                let f = macro_f1(&offsets);
                if f > best + 1e-12 || (f >= best - 1e-12 && g.abs() < pick.abs()) {
                    moved |= g != pick;
                    (best, pick) = (f.max(best), g);
                }
            }
            offsets[c] = pick;
        }
        if !moved {
            break;
        }
    }
    (offsets, best)
}

/// The mean loss of held-out `scores` (`k` per example) against labels
/// `y`: the multiclass hinge loss (Crammer-Singer, margin 1) or, with
/// `hinge` false, the softmax cross-entropy: the quantity training
/// minimizes, without its regularization, on texts it did not see.
pub fn held_out_loss(k: usize, scores: &[f32], y: &[usize], hinge: bool) -> f64 {
    let mut total = 0.0f64;
    let mut p = vec![0f32; k];
    for (s, &t) in scores.chunks_exact(k).zip(y) {
        total += if hinge {
            let rival = (0..k).filter(|&c| c != t).map(|c| s[c]).fold(f32::MIN, f32::max);
            f64::from((1.0 - (s[t] - rival)).max(0.0))
        } else {
            p.copy_from_slice(s);
            softmax(&mut p);
            -f64::from(p[t].max(1e-12)).ln()
        };
    }
    total / y.len().max(1) as f64
}

/// A trained model.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub labels: Vec<String>,
    pub bits: u32,
    /// `labels.len()` weights per bucket, bucket-major.
    weights: Vec<f32>,
    /// The same weights as 8-bit integers (`weights / scale`, rounded),
    /// for [`Model::classify`]: a quarter of the cache footprint (256 KiB
    /// at 2^16 buckets, so the table stays in a core's L2 cache), exact
    /// integer sums; the cross-validation in `eval-model` scores through
    /// this path.
    quantized: Vec<i8>,
    scale: f32,
    bias: Vec<f32>,
}

/// Model file errors.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("not a textwatch model file (bad magic)")]
    Magic,
    #[error("model file is truncated or damaged")]
    Truncated,
}

const MAGIC: &[u8; 4] = b"TWM1";

/// Scores to probabilities, in place (shifted by the maximum for stability).
fn softmax(p: &mut [f32]) {
    let m = p.iter().copied().fold(f32::MIN, f32::max);
    let mut sum = 0.0;
    for v in p.iter_mut() {
        *v = (*v - m).exp();
        sum += *v;
    }
    for v in p.iter_mut() {
        *v /= sum;
    }
}

/// The index of the highest score (the first of equals) and its softmax
/// probability; `scores` is turned into probabilities.
fn best_of(scores: &mut [f32]) -> (usize, f32) {
    softmax(scores);
    argmax(scores)
}

/// The index of the highest value (the first of equals) and the value.
fn argmax(v: &[f32]) -> (usize, f32) {
    v.iter().enumerate().fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b })
}

/// Training settings.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    pub bits: u32,
    pub epochs: usize,
    pub learning_rate: f32,
    pub l2: f32,
    pub seed: u64,
    /// Weight each example by how rare its class is (`n / (classes · n_c)`),
    /// so that a minority class (spam is 13% of UCI) is not traded away
    /// for accuracy on the majority.
    pub balanced: bool,
    /// Multiclass hinge loss (Crammer-Singer margin, as a linear SVM)
    /// instead of logistic loss.
    pub hinge: bool,
    /// Average the weights over the epochs of the second half of training
    /// (Polyak averaging): a steadier model than the last step's.
    pub average: bool,
    /// Tune the class biases by this many folds of internal
    /// cross-validation on the training data (0: don't): each class's
    /// score is shifted by the offset that maximizes macro-F1 on the
    /// training texts' held-out scores (the decision threshold a linear
    /// model's loss does not choose for F1). Costs `tune_folds` extra
    /// trainings.
    pub tune_folds: usize,
    /// With `tune_folds`: let the same internal cross-validation also
    /// choose how long to train, among [`TrainConfig::epoch_choices`]
    /// (stopping early regularizes; the best length depends on the data's
    /// size and noise). Costs nothing more: every inner training runs
    /// `epochs` passes once and is scored at each shorter length on the way.
    pub choose_epochs: bool,
}

impl TrainConfig {
    /// The training lengths [`TrainConfig::choose_epochs`] chooses from:
    /// an eighth, a quarter, a third, half, two thirds and all of `epochs`.
    pub fn epoch_choices(&self) -> Vec<usize> {
        let n = self.epochs;
        let mut v: Vec<usize> = [n / 8, n / 4, n / 3, n / 2, 2 * n / 3, n].into_iter().filter(|&e| e > 0).collect();
        v.dedup();
        v
    }
}

/// What training chose by internal cross-validation.
#[derive(Clone, Debug, PartialEq)]
pub struct Tuning {
    /// Added to each class's bias (class 0's is 0).
    pub offsets: Vec<f32>,
    /// Passes over the data the model was trained with.
    pub epochs: usize,
    /// Every length tried and its mean held-out loss ([`held_out_loss`]),
    /// shortest first.
    pub tried: Vec<(usize, f64)>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            bits: 16,
            epochs: 60,
            learning_rate: 0.01,
            l2: 1e-6,
            seed: 0,
            balanced: false,
            hinge: true,
            average: true,
            tune_folds: 10,
            choose_epochs: true,
        }
    }
}

impl Model {
    fn new(labels: Vec<String>, bits: u32, weights: Vec<f32>, bias: Vec<f32>) -> Model {
        let max = weights.iter().fold(0f32, |m, w| m.max(w.abs()));
        let scale = if max > 0.0 { max / f32::from(i8::MAX) } else { 1.0 };
        let quantized = weights.iter().map(|w| (w / scale).round() as i8).collect();
        Model { labels, bits, weights, quantized, scale, bias }
    }

    /// Class scores turned into a softmax: probabilities for a model trained
    /// with logistic loss, a ranking (not calibrated) with hinge loss.
    pub fn probabilities(&self, x: &[(u32, f32)], out: &mut Vec<f32>) {
        self.scores(x, out);
        softmax(out);
    }

    /// The class scores of a feature vector (biases plus weights, before
    /// the softmax), with the floating-point weights.
    pub fn scores(&self, x: &[(u32, f32)], out: &mut Vec<f32>) {
        let k = self.labels.len();
        out.clear();
        out.extend_from_slice(&self.bias);
        for &(i, v) in x {
            let w = &self.weights[i as usize * k..i as usize * k + k];
            for (o, wi) in out.iter_mut().zip(w) {
                *o += wi * v;
            }
        }
    }

    /// The category of a message, from its template and body (the features
    /// the model is trained on).
    pub fn categorize(&self, template: &str, body: &str) -> &str {
        thread_local! {
            static FOLDED: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        let best = FOLDED.with(|folded| {
            let mut folded = folded.borrow_mut();
            crate::fold::fold_into(body, &mut folded);
            self.classify(template, &folded, body).0
        });
        &self.labels[best]
    }

    /// The most likely label of a text and its softmax score: the same
    /// answer as [`text_features`] then [`Model::predict`], with each
    /// feature's weights added as it is hashed, so no feature vector is
    /// built (the inference path; one pass over the text).
    pub fn classify(&self, template: &str, folded: &str, raw: &str) -> (usize, f32) {
        match self.labels.len() {
            2 => self.classify_k::<2>(template, folded, raw),
            3 => self.classify_k::<3>(template, folded, raw),
            4 => self.classify_k::<4>(template, folded, raw),
            9 => self.classify_k::<9>(template, folded, raw),
            _ => {
                let mut scores = Vec::new();
                self.scores_of(template, folded, raw, &mut scores);
                best_of(&mut scores)
            }
        }
    }

    /// Every label's score for a text, on the inference path (8-bit
    /// weights, no feature vector), for any number of labels: what
    /// [`Model::classify`] ranks, before the softmax.
    pub fn scores_of(&self, template: &str, folded: &str, raw: &str, out: &mut Vec<f32>) {
        let k = self.labels.len();
        // The shipped models' sizes take the register path.
        out.clear();
        match k {
            9 => return out.extend(self.scores_k::<9>(template, folded, raw)),
            28 => return out.extend(self.scores_k::<28>(template, folded, raw)),
            _ => {}
        }
        let row = |sum: &mut Vec<i32>, i: u32| {
            let at = i as usize * k;
            if let Some(r) = self.quantized.get(at..at + k) {
                for (s, w) in sum.iter_mut().zip(r) {
                    *s += i32::from(*w);
                }
            }
        };
        let mut sum = vec![0i32; k];
        let mut n = 0usize;
        word_features(template, self.bits, &mut |i| {
            row(&mut sum, i);
            n += 1;
        });
        shape_features(raw, self.bits, &mut |i| {
            row(&mut sum, i);
            n += 1;
        });
        let (sum, n) = fold_char_grams(folded, self.bits, (sum, n), |(mut s, n), i| {
            row(&mut s, i);
            (s, n + 1)
        });
        let scale = self.scale / (n.max(1) as f32).sqrt();
        out.clear();
        out.extend(sum.iter().zip(&self.bias).map(|(s, b)| b + *s as f32 * scale));
    }

    /// Adds bucket `i`'s 8-bit weights to `sum`.
    #[inline(always)]
    fn add_row<const K: usize>(&self, sum: &mut [i32; K], i: u32) {
        let at = i as usize * K;
        if let Some(row) = self.quantized.get(at..at + K) {
            for c in 0..K {
                sum[c] += i32::from(row[c]);
            }
        }
    }

    fn classify_k<const K: usize>(&self, template: &str, folded: &str, raw: &str) -> (usize, f32) {
        let mut scores = self.scores_k::<K>(template, folded, raw);
        best_of(&mut scores)
    }

    /// Every label's score, for `K` labels known at compile time (the sums
    /// stay in registers).
    fn scores_k<const K: usize>(&self, template: &str, folded: &str, raw: &str) -> [f32; K] {
        let mut sum = [0i32; K];
        let mut n = 0usize;
        let mut add = |i: u32| {
            self.add_row(&mut sum, i);
            n += 1;
        };
        word_features(template, self.bits, &mut add);
        shape_features(raw, self.bits, &mut add);
        // Most features are character n-grams: their loop keeps its own
        // sums, in registers (the row loads are independent of each other,
        // so the processor overlaps their cache misses).
        let (grams, count) = fold_char_grams(folded, self.bits, ([0i32; K], 0usize), |(mut grams, count), i| {
            self.add_row(&mut grams, i);
            (grams, count + 1)
        });
        n += count;
        for c in 0..K {
            sum[c] += grams[c];
        }
        let scale = self.scale / (n.max(1) as f32).sqrt();
        let mut scores = [0f32; K];
        for c in 0..K {
            scores[c] = self.bias[c] + sum[c] as f32 * scale;
        }
        scores
    }

    /// The most likely label and its probability.
    pub fn predict(&self, x: &[(u32, f32)]) -> (usize, f32) {
        let mut p = Vec::with_capacity(self.labels.len());
        self.probabilities(x, &mut p);
        argmax(&p)
    }

    /// Trains on `(features, label index)` examples; with
    /// `cfg.tune_folds`, internal cross-validation then chooses the class
    /// offsets (and, with `cfg.choose_epochs`, the training length): see
    /// [`Model::train_tuned`].
    pub fn train(labels: Vec<String>, examples: &[(Features, usize)], cfg: &TrainConfig) -> Model {
        Model::train_tuned(labels, examples, cfg).0
    }

    /// [`Model::train`], also returning what the internal cross-validation
    /// chose (`None` when it did not run: `tune_folds` under 2, or fewer
    /// than two examples per fold). Each of the `tune_folds` inner models
    /// trains on the other folds and scores its own; the held-out scores
    /// choose the training length (with `cfg.choose_epochs`; the lowest
    /// mean held-out loss, the longer among equals) and the per-class
    /// offsets ([`tune_offsets`]) for that length; the model is then
    /// trained on everything for that length and its biases shifted.
    pub fn train_tuned(
        labels: Vec<String>,
        examples: &[(Features, usize)],
        cfg: &TrainConfig,
    ) -> (Model, Option<Tuning>) {
        if cfg.tune_folds < 2 || examples.len() < 2 * cfg.tune_folds {
            let model = Model::fit(labels, examples, cfg, &[cfg.epochs]).pop().expect("one stop, one model");
            return (model, None);
        }
        let k = labels.len();
        let stops = if cfg.choose_epochs { cfg.epoch_choices() } else { vec![cfg.epochs] };
        let y: Vec<usize> = examples.iter().map(|e| e.1).collect();
        let fold_of = stratified_folds(&y, k, cfg.tune_folds, cfg.seed ^ 0x5EED_7E57);
        // Held-out scores, one table per training length.
        let mut held_out = vec![vec![0f32; examples.len() * k]; stops.len()];
        let mut s = Vec::with_capacity(k);
        for f in 0..cfg.tune_folds {
            let train: Vec<(Features, usize)> =
                examples.iter().zip(&fold_of).filter(|e| *e.1 != f).map(|e| e.0.clone()).collect();
            let inner = Model::fit(labels.clone(), &train, cfg, &stops);
            for (table, m) in held_out.iter_mut().zip(&inner) {
                for (i, e) in examples.iter().enumerate().filter(|e| fold_of[e.0] == f) {
                    m.scores(&e.0, &mut s);
                    table[i * k..i * k + k].copy_from_slice(&s);
                }
            }
        }
        let tried: Vec<(usize, f64)> =
            stops.iter().zip(&held_out).map(|(&e, table)| (e, held_out_loss(k, table, &y, cfg.hinge))).collect();
        // The lowest loss; the longer training among equals.
        let (at, &(epochs, _)) = tried
            .iter()
            .enumerate()
            .rev()
            .min_by(|a, b| a.1 .1.total_cmp(&b.1 .1))
            .expect("at least one training length");
        let (offsets, _) = tune_offsets(k, &held_out[at], &y);
        let mut model = Model::fit(labels, examples, cfg, &[epochs]).pop().expect("one stop, one model");
        for (b, o) in model.bias.iter_mut().zip(&offsets) {
            *b += o;
        }
        (model, Some(Tuning { offsets, epochs, tried }))
    }

    /// One training run (no bias tuning), with the model as it stands
    /// after each of `stops` passes (ascending; the run makes the last
    /// one's passes). With `cfg.average`, the model at `n` passes averages
    /// the weights after passes `n/2` to `n`, so it is the same model a run
    /// of `n` passes ends with.
    fn fit(labels: Vec<String>, examples: &[(Features, usize)], cfg: &TrainConfig, stops: &[usize]) -> Vec<Model> {
        let k = labels.len();
        let dim = 1usize << cfg.bits;
        let mut w = vec![0f32; dim * k];
        let mut g2 = vec![1e-8f32; dim * k];
        let mut b = vec![0f32; k];
        let mut bg2 = vec![1e-8f32; k];
        let mut order: Vec<usize> = (0..examples.len()).collect();
        let mut state = cfg.seed ^ 0x9E37_79B9_7F4A_7C15;
        let mut p = vec![0f32; k];
        let mut per_class = vec![0usize; k];
        for e in examples {
            per_class[e.1] += 1;
        }
        let class_weight: Vec<f32> = per_class
            .iter()
            .map(|&n| if cfg.balanced && n > 0 { examples.len() as f32 / (k as f32 * n as f32) } else { 1.0 })
            .collect();
        let epochs = stops.last().copied().unwrap_or(0);
        // Per stop: its running sums of weights and biases, and how many
        // passes they hold.
        let mut sums: Vec<(Vec<f32>, Vec<f32>, u32)> = stops.iter().map(|_| (Vec::new(), vec![0f32; k], 0)).collect();
        let mut models = Vec::with_capacity(stops.len());
        for epoch in 0..epochs {
            // Fisher-Yates with a splitmix64 stream: the same seed, the same model.
            for i in (1..order.len()).rev() {
                state = crate::minhash::mix64(state.wrapping_add(0x9E37_79B9_7F4A_7C15));
                order.swap(i, (state % (i as u64 + 1)) as usize);
            }
            for &e in &order {
                let (x, y) = (&examples[e].0, examples[e].1);
                p.copy_from_slice(&b);
                for &(i, v) in x {
                    for c in 0..k {
                        p[c] += w[i as usize * k + c] * v;
                    }
                }
                // One AdaGrad step on class c's bias and weights for gradient `err`.
                let mut step = |c: usize, err: f32| {
                    bg2[c] += err * err;
                    b[c] -= cfg.learning_rate * err / bg2[c].sqrt();
                    for &(i, v) in x {
                        let j = i as usize * k + c;
                        let g = err * v + cfg.l2 * w[j];
                        g2[j] += g * g;
                        w[j] -= cfg.learning_rate * g / g2[j].sqrt();
                    }
                };
                if cfg.hinge {
                    // The most violating other class, if within the margin.
                    let (rival, best) = (0..k)
                        .filter(|&c| c != y)
                        .map(|c| (c, p[c]))
                        .fold((usize::MAX, f32::MIN), |a, b| if b.1 > a.1 { b } else { a });
                    if rival != usize::MAX && p[y] - best < 1.0 {
                        step(y, -class_weight[y]);
                        step(rival, class_weight[y]);
                    }
                    continue;
                }
                softmax(&mut p);
                for (c, &pc) in p.iter().enumerate() {
                    step(c, (pc - if c == y { 1.0 } else { 0.0 }) * class_weight[y]);
                }
            }
            for (&stop, (w_sum, b_sum, averaged)) in stops.iter().zip(sums.iter_mut()) {
                if cfg.average && epoch >= stop / 2 && epoch < stop {
                    if w_sum.is_empty() {
                        *w_sum = vec![0f32; w.len()];
                    }
                    for (s, v) in w_sum.iter_mut().zip(&w) {
                        *s += v;
                    }
                    for (s, v) in b_sum.iter_mut().zip(&b) {
                        *s += v;
                    }
                    *averaged += 1;
                }
                if epoch + 1 == stop {
                    models.push(if *averaged > 0 {
                        let n = *averaged as f32;
                        let wa = std::mem::take(w_sum).into_iter().map(|v| v / n).collect();
                        let ba = b_sum.iter().map(|v| v / n).collect();
                        Model::new(labels.clone(), cfg.bits, wa, ba)
                    } else {
                        Model::new(labels.clone(), cfg.bits, w.clone(), b.clone())
                    });
                }
            }
        }
        // Stops of zero passes: the untrained model.
        while models.len() < stops.len() {
            models.insert(0, Model::new(labels.clone(), cfg.bits, w.clone(), b.clone()));
        }
        models
    }

    /// Serializes: magic, bits, labels, biases, then the non-zero buckets.
    pub fn to_bytes(&self) -> Vec<u8> {
        let k = self.labels.len();
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.bits.to_le_bytes());
        out.extend_from_slice(&(k as u32).to_le_bytes());
        for l in &self.labels {
            out.extend_from_slice(&(l.len() as u32).to_le_bytes());
            out.extend_from_slice(l.as_bytes());
        }
        for b in &self.bias {
            out.extend_from_slice(&b.to_le_bytes());
        }
        let rows: Vec<usize> =
            (0..1usize << self.bits).filter(|&i| self.weights[i * k..i * k + k].iter().any(|w| *w != 0.0)).collect();
        out.extend_from_slice(&(rows.len() as u32).to_le_bytes());
        for i in rows {
            out.extend_from_slice(&(i as u32).to_le_bytes());
            for w in &self.weights[i * k..i * k + k] {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
        out
    }

    /// Reads what [`Model::to_bytes`] wrote.
    pub fn from_bytes(b: &[u8]) -> Result<Model, ModelError> {
        let mut at = 0usize;
        let mut take = |n: usize| -> Result<&[u8], ModelError> {
            let s = b.get(at..at + n).ok_or(ModelError::Truncated)?;
            at += n;
            Ok(s)
        };
        if take(4)? != MAGIC {
            return Err(ModelError::Magic);
        }
        let u32_at = |s: &[u8]| u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
        let bits = u32_at(take(4)?);
        let k = u32_at(take(4)?) as usize;
        if !(4..=24).contains(&bits) || k == 0 || k > 64 {
            return Err(ModelError::Truncated);
        }
        let mut labels = Vec::with_capacity(k);
        for _ in 0..k {
            let n = u32_at(take(4)?) as usize;
            labels.push(String::from_utf8_lossy(take(n)?).into_owned());
        }
        let mut bias = Vec::with_capacity(k);
        for _ in 0..k {
            let s = take(4)?;
            bias.push(f32::from_le_bytes([s[0], s[1], s[2], s[3]]));
        }
        let rows = u32_at(take(4)?) as usize;
        let mut weights = vec![0f32; (1usize << bits) * k];
        for _ in 0..rows {
            let i = u32_at(take(4)?) as usize;
            if i >= 1usize << bits {
                return Err(ModelError::Truncated);
            }
            for c in 0..k {
                let s = take(4)?;
                weights[i * k + c] = f32::from_le_bytes([s[0], s[1], s[2], s[3]]);
            }
        }
        Ok(Model::new(labels, bits, weights, bias))
    }
}

/// Per-class precision, recall and F1, and the confusion matrix
/// (`matrix[true][predicted]`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Scores {
    pub labels: Vec<String>,
    pub matrix: Vec<Vec<u64>>,
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
    pub f1: Vec<f64>,
    pub macro_f1: f64,
    pub accuracy: f64,
}

impl Scores {
    /// Scores from (true, predicted) pairs.
    pub fn from_pairs(labels: Vec<String>, pairs: &[(usize, usize)]) -> Scores {
        let k = labels.len();
        let mut m = vec![vec![0u64; k]; k];
        for &(t, p) in pairs {
            m[t][p] += 1;
        }
        let (mut precision, mut recall, mut f1) = (vec![0.0; k], vec![0.0; k], vec![0.0; k]);
        for c in 0..k {
            let tp = m[c][c] as f64;
            let pred: f64 = (0..k).map(|t| m[t][c] as f64).sum();
            let act: f64 = m[c].iter().map(|&v| v as f64).sum();
            precision[c] = if pred > 0.0 { tp / pred } else { 0.0 };
            recall[c] = if act > 0.0 { tp / act } else { 0.0 };
            f1[c] = if precision[c] + recall[c] > 0.0 {
                2.0 * precision[c] * recall[c] / (precision[c] + recall[c])
            } else {
                0.0
            };
        }
        let correct: u64 = (0..k).map(|c| m[c][c]).sum();
        Scores {
            macro_f1: f1.iter().sum::<f64>() / k as f64,
            accuracy: correct as f64 / pairs.len().max(1) as f64,
            labels,
            matrix: m,
            precision,
            recall,
            f1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(text: &str, y: usize) -> (Features, usize) {
        let mut f = Vec::new();
        features(text, 16, &mut TemplateScratch::default(), &mut f);
        (f, y)
    }

    #[test]
    fn learns_a_separable_toy_problem_and_round_trips() {
        let data: Vec<(Features, usize)> = (0..40)
            .flat_map(|i| {
                [
                    ex(&format!("WINNER! claim your {i} prize now call 09061701461"), 1),
                    ex(&format!("hey are we still on for dinner at {i}"), 0),
                ]
            })
            .collect();
        let cfg = TrainConfig { bits: 16, epochs: 5, ..Default::default() };
        let m = Model::train(vec!["ham".into(), "spam".into()], &data, &cfg);
        assert_eq!(m.predict(&ex("you have won a prize, claim now", 0).0).0, 1);
        assert_eq!(m.predict(&ex("still on for dinner tonight?", 0).0).0, 0);
        let again = Model::from_bytes(&m.to_bytes()).unwrap();
        assert_eq!(again, m);
        assert_eq!(Model::train(vec!["ham".into(), "spam".into()], &data, &cfg), m, "deterministic");
        assert!(matches!(Model::from_bytes(b"nope"), Err(ModelError::Magic)));
        let logistic = Model::train(
            vec!["ham".into(), "spam".into()],
            &data,
            &TrainConfig { hinge: false, learning_rate: 1.0, ..cfg.clone() },
        );
        assert_eq!(
            logistic.predict(&ex("you have won a prize, claim now", 0).0).0,
            1,
            "the logistic loss learns it too"
        );
        assert_eq!(logistic.predict(&ex("still on for dinner tonight?", 0).0).0, 0);
        assert!(Model::from_bytes(&m.to_bytes()[..40]).is_err());
    }

    #[test]
    fn fused_inference_agrees_with_the_feature_vector() {
        let m = Model::from_bytes(include_bytes!("../../../models/category.twm")).unwrap();
        let texts = [
            "WINNER!! You have been selected to receive a £900 prize reward! Call 09061701461. Claim code KL341",
            "Hi Chris, this is Sarah with Vote Forward. Polls are open until 8pm. Reply STOP to opt out",
            "USPS: your package could not be delivered. Update your address: usps-redelivery.top/a1",
            "ok lor see u later",
            "Radical Liberals & Dems are trying to STEAL this election! Gather at 12th & Arch 3pm",
            "Vota el miércoles por la alta participación. ÉSTE ES UN AVISO",
            "",
            "   ",
            "🎉🎉 FREE ENTRY 2 WIN!!! txt WIN to 80086 ΑΒΓ 東京",
        ];
        let mut s = TemplateScratch::default();
        let (mut t, mut f) = (String::new(), Vec::new());
        for text in texts {
            templatize(text, &mut s, &mut t);
            text_features(&t, &s.folded, text, m.bits, &mut f);
            let (want, p) = m.predict(&f);
            let (got, q) = m.classify(&t, &s.folded, text);
            assert_eq!(got, want, "{text:?}");
            // 8-bit weights move a probability by about 1e-3 at most on these.
            assert!((p - q).abs() < 5e-3, "{text:?}: {p} vs {q} (8-bit weights)");
            assert_eq!(m.categorize(&t, text), m.labels[want], "{text:?}");
        }
    }

    #[test]
    fn shape_features_see_capitals_money_and_shouting() {
        let mut a = Vec::new();
        shape_features("WIN £900 NOW!!! call 0906", 16, &mut |i| a.push(i));
        let mut b = Vec::new();
        shape_features("win nine now call please", 16, &mut |i| b.push(i));
        assert_eq!((a.len(), b.len()), (8, 6), "two digit runs, then the six shapes");
        assert_eq!(a[2..].iter().zip(&b).filter(|(x, y)| x != y).count(), 5, "all but the length bucket differ");
        // A digit run is its length and first two digits.
        let runs = |s: &str| {
            let mut v = Vec::new();
            shape_features(s, 16, &mut |i| v.push(i));
            v.truncate(v.len() - 6);
            v
        };
        assert_eq!(runs("call 09061701461"), runs("ring 09069999999 now"));
        assert_ne!(runs("call 09061701461"), runs("call 08001701461"));
        assert_ne!(runs("call 09061701461"), runs("call 0906170146"));
        assert_eq!(runs("call 12 or 3"), Vec::<u32>::new(), "runs under three digits are not numbers");
    }

    #[test]
    fn tuned_offsets_move_a_threshold_only_for_a_gain() {
        // Class 1's scores run low: every positive scores 0.2-0.4 below
        // class 0, every negative 0.8 or more below. The F1-best cut lies
        // between, so class 1 gains an offset in (0.4, 0.8].
        let mut scores = Vec::new();
        let mut y = Vec::new();
        for i in 0..20 {
            scores.extend_from_slice(&[0.0, -0.2 - 0.01 * i as f32]);
            y.push(1);
            scores.extend_from_slice(&[0.0, -0.8 - 0.01 * i as f32]);
            y.push(0);
        }
        let (o, _) = tune_offsets(2, &scores, &y);
        assert_eq!(o[0], 0.0);
        assert!(o[1] > 0.39 && o[1] <= 0.8, "{o:?}");
        // Already separated at 0: nothing to gain, nothing moves.
        let scores: Vec<f32> = y.iter().flat_map(|&c| if c == 1 { [0.0, 1.0] } else { [1.0, 0.0] }).collect();
        assert_eq!(tune_offsets(2, &scores, &y), (vec![0.0, 0.0], 1.0));
    }

    /// A noisy two-class problem: spam-like and ham-like texts, every
    /// seventh label flipped.
    fn noisy() -> Vec<(Features, usize)> {
        (0..60)
            .map(|i| {
                let y = usize::from(i % 2 == 0) ^ usize::from(i % 7 == 0);
                if i % 2 == 0 {
                    ex(&format!("WINNER claim your {i} prize now txt {} to 8008{}", i * 3, i % 10), y)
                } else {
                    ex(&format!("see you at {} for dinner, bring the {i} books", i % 12), y)
                }
            })
            .collect()
    }

    #[test]
    fn one_run_scored_on_the_way_equals_shorter_runs() {
        let data = noisy();
        let labels = vec!["ham".to_string(), "spam".to_string()];
        for average in [true, false] {
            let cfg = TrainConfig { epochs: 9, average, ..Default::default() };
            let on_the_way = Model::fit(labels.clone(), &data, &cfg, &[1, 4, 9]);
            assert_eq!(on_the_way.len(), 3);
            for (m, n) in on_the_way.iter().zip([1, 4, 9]) {
                assert_eq!(*m, Model::fit(labels.clone(), &data, &cfg, &[n])[0], "{n} passes, average {average}");
            }
            assert_ne!(on_the_way[0], on_the_way[2]);
        }
    }

    #[test]
    fn internal_cross_validation_chooses_the_length_with_the_lowest_held_out_loss() {
        let data = noisy();
        let labels = vec!["ham".to_string(), "spam".to_string()];
        let cfg = TrainConfig { epochs: 24, tune_folds: 3, ..Default::default() };
        assert_eq!(cfg.epoch_choices(), vec![3, 6, 8, 12, 16, 24]);
        let (m, t) = Model::train_tuned(labels.clone(), &data, &cfg);
        let t = t.expect("tuning ran");
        assert_eq!(t.tried.iter().map(|x| x.0).collect::<Vec<_>>(), cfg.epoch_choices());
        let lowest = t.tried.iter().map(|x| x.1).fold(f64::MAX, f64::min);
        assert_eq!(t.tried.iter().find(|x| x.0 == t.epochs).unwrap().1, lowest);
        // The model is the one trained on everything for that length, its
        // biases shifted by the offsets.
        let mut plain = Model::fit(labels.clone(), &data, &cfg, &[t.epochs]).pop().unwrap();
        for (b, o) in plain.bias.iter_mut().zip(&t.offsets) {
            *b += o;
        }
        assert_eq!(m, plain);
        // Fixed length: only that one is tried.
        let fixed = TrainConfig { choose_epochs: false, ..cfg.clone() };
        let t = Model::train_tuned(labels.clone(), &data, &fixed).1.unwrap();
        assert_eq!((t.epochs, t.tried.len()), (24, 1));
        // No tuning: `epochs` passes, nothing reported.
        let none = TrainConfig { tune_folds: 0, ..cfg };
        let (m, t) = Model::train_tuned(labels.clone(), &data, &none);
        assert_eq!(t, None);
        assert_eq!(m, Model::fit(labels, &data, &none, &[24]).pop().unwrap());
    }

    #[test]
    fn held_out_loss_by_hand() {
        // Hinge: margins 2 (no loss), 0.5 (loss 0.5), -1 (loss 2).
        let scores = [2.0, 0.0, 0.0, 0.5, 1.0, 0.0];
        assert!((held_out_loss(2, &scores, &[0, 1, 1], true) - 2.5 / 3.0).abs() < 1e-6);
        // Cross-entropy: equal scores give ln 2.
        assert!((held_out_loss(2, &[0.0, 0.0], &[1], false) - std::f64::consts::LN_2).abs() < 1e-6);
    }

    #[test]
    fn folds_are_stratified_and_seeded() {
        let y: Vec<usize> = (0..100).map(|i| usize::from(i % 10 == 0)).collect();
        let f = stratified_folds(&y, 2, 5, 7);
        for fold in 0..5 {
            let (pos, all) = y.iter().zip(&f).filter(|p| *p.1 == fold).fold((0, 0), |a, p| (a.0 + p.0, a.1 + 1));
            assert_eq!((pos, all), (2, 20), "fold {fold}");
        }
        assert_eq!(f, stratified_folds(&y, 2, 5, 7));
        assert_ne!(f, stratified_folds(&y, 2, 5, 8));
    }

    #[test]
    fn scores_by_hand() {
        let s = Scores::from_pairs(vec!["a".into(), "b".into()], &[(0, 0), (0, 1), (1, 1), (1, 1)]);
        assert_eq!(s.matrix, vec![vec![1, 1], vec![0, 2]]);
        assert!((s.precision[1] - 2.0 / 3.0).abs() < 1e-9);
        assert!((s.recall[0] - 0.5).abs() < 1e-9);
        assert!((s.accuracy - 0.75).abs() < 1e-9);
    }
}
