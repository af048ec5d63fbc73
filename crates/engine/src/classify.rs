//! A fast linear text classifier: a multiclass linear SVM (Crammer-Singer
//! hinge loss; or, optionally, multinomial logistic regression) over hashed
//! word and character n-grams of the template and the folded text, plus a
//! few "shape" features of the raw text.
//!
//! Features of a text (its template: folded, with `{url}`, `{amount}`,
//! `{phone}` ... slots, which are themselves strong signals):
//! - word unigrams and bigrams (slots count as words);
//! - character 3-, 4- and 5-grams of each word padded with spaces;
//!
//! each hashed (xxh3, fixed seed) into 2^`bits` buckets and counted (a
//! repeated n-gram is a repeated entry: no sorting per text), the vector
//! L2-normalized by its entry count. Training is deterministic AdaGrad SGD with L2
//! regularization over a seeded shuffle. Inference costs one pass over the
//! text and `classes` dot products over a few hundred active features, and
//! runs once per distinct template.

use crate::template::{templatize, TemplateScratch, HASH_SEED};

/// A sparse, L2-normalized feature vector.
pub type Features = Vec<(u32, f32)>;

/// Turns a text into hashed features (its template is computed first).
pub fn features(text: &str, bits: u32, scratch: &mut TemplateScratch, out: &mut Features) {
    let mut t = String::new();
    templatize(text, scratch, &mut t);
    text_features(&t, &scratch.folded, text, bits, out);
}

/// Hashed features from a template and the folded text it came from: the
/// template's words and word pairs, and character 2- to 5-grams of the
/// folded text (digits, links and punctuation included: "0906", "txt",
/// "£" carry signal that slots remove).
pub fn text_features(template: &str, folded: &str, raw: &str, bits: u32, out: &mut Features) {
    word_features(template, bits, out);
    shape_features(raw, bits, out);
    let mask = (1u64 << bits) - 1;
    let b = folded.as_bytes();
    // Character 2- to 5-grams of " folded ", hashed incrementally (FNV-1a
    // over each window's prefix, then a multiplicative mix per length):
    // one pass, no per-gram hash call.
    let at = |i: usize| if i == 0 || i == b.len() + 1 { b' ' } else { b[i - 1] };
    let len = b.len() + 2;
    for i in 0..len {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ HASH_SEED;
        for n in 1..=5usize.min(len - i) {
            h = (h ^ u64::from(at(i + n - 1))).wrapping_mul(0x0000_0100_0000_01b3);
            if n >= 2 {
                let m = (h ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xD6E8_FEB8_6659_FD93);
                out.push((((m >> 32) & mask) as u32, 1.0));
            }
        }
    }
    // Repeated n-grams stay as repeated entries: a count, without the cost
    // of sorting hundreds of entries per text.
    let norm = (out.len() as f32).sqrt();
    for f in out.iter_mut() {
        f.1 = 1.0 / norm;
    }
}

/// What folding hides: capitals, currency signs, digits, shouting, length.
/// Each is bucketed and hashed like a word.
fn shape_features(raw: &str, bits: u32, out: &mut Features) {
    let mask = (1u32 << bits) - 1;
    let (mut caps_words, mut digits, mut bangs, mut money, mut letters, mut upper) =
        (0u32, 0u32, 0u32, false, 0u32, 0u32);
    for w in raw.split_whitespace() {
        let l = w.chars().filter(|c| c.is_alphabetic()).count();
        if l >= 2 && w.chars().filter(|c| c.is_alphabetic()).all(char::is_uppercase) {
            caps_words += 1;
        }
    }
    for c in raw.chars() {
        match c {
            '0'..='9' => digits += 1,
            '!' => bangs += 1,
            '£' | '$' | '€' => money = true,
            c if c.is_alphabetic() => {
                letters += 1;
                upper += c.is_uppercase() as u32;
            }
            _ => {}
        }
    }
    let bucket = |v: u32, edges: &[u32]| edges.iter().position(|&e| v < e).unwrap_or(edges.len()) as u8;
    let len = raw.chars().count() as u32;
    let shapes: [(u8, u8); 6] = [
        (0, bucket(caps_words, &[1, 2, 3, 6])),
        (1, bucket(digits, &[1, 4, 8, 12])),
        (2, bucket(bangs, &[1, 2, 4])),
        (3, money as u8),
        (4, bucket(len, &[20, 50, 100, 160])),
        (5, bucket((upper * 10).checked_div(letters).unwrap_or(0), &[1, 2, 4, 7])),
    ];
    for (kind, v) in shapes {
        out.push(((xxhash_rust::xxh3::xxh3_64_with_seed(&[kind, v], HASH_SEED ^ 99) as u32) & mask, 1.0));
    }
}

/// Word unigrams and bigrams of a template (slots count as words).
fn word_features(template: &str, bits: u32, out: &mut Features) {
    out.clear();
    let mask = (1u32 << bits) - 1;
    let h = |kind: u64, s: &[u8]| (xxhash_rust::xxh3::xxh3_64_with_seed(s, HASH_SEED ^ kind) as u32) & mask;
    let mut prev: Option<&str> = None;
    let mut buf: Vec<u8> = Vec::with_capacity(64);
    for w in
        template.split(|c: char| !(c.is_alphanumeric() || c == '{' || c == '}' || c == '\'')).filter(|w| !w.is_empty())
    {
        out.push((h(1, w.as_bytes()), 1.0));
        if let Some(p) = prev {
            buf.clear();
            buf.extend_from_slice(p.as_bytes());
            buf.push(b' ');
            buf.extend_from_slice(w.as_bytes());
            out.push((h(2, &buf), 1.0));
        }
        prev = Some(w);
    }
}

/// Hashed features of a template string alone (what is known of a
/// template when no message text is at hand).
pub fn template_features(template: &str, bits: u32, out: &mut Features) {
    out.clear();
    let mask = (1u32 << bits) - 1;
    let h = |kind: u64, s: &[u8]| (xxhash_rust::xxh3::xxh3_64_with_seed(s, HASH_SEED ^ kind) as u32) & mask;
    let words: Vec<&str> = template
        .split(|c: char| !(c.is_alphanumeric() || c == '{' || c == '}' || c == '\''))
        .filter(|w| !w.is_empty())
        .collect();
    let mut buf: Vec<u8> = Vec::with_capacity(64);
    for (i, w) in words.iter().enumerate() {
        out.push((h(1, w.as_bytes()), 1.0));
        if i + 1 < words.len() {
            buf.clear();
            buf.extend_from_slice(w.as_bytes());
            buf.push(b' ');
            buf.extend_from_slice(words[i + 1].as_bytes());
            out.push((h(2, &buf), 1.0));
        }
        buf.clear();
        buf.push(b' ');
        buf.extend_from_slice(w.as_bytes());
        buf.push(b' ');
        for n in 3..=5usize {
            if buf.len() < n {
                continue;
            }
            for g in buf.windows(n) {
                out.push((h(10 + n as u64, g), 1.0));
            }
        }
    }
    if out.is_empty() {
        out.push((h(0, b""), 1.0));
    }
    let norm = (out.len() as f32).sqrt();
    for f in out.iter_mut() {
        f.1 /= norm;
    }
}

/// A trained model.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub labels: Vec<String>,
    pub bits: u32,
    /// `labels.len()` weights per bucket, bucket-major.
    weights: Vec<f32>,
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
        }
    }
}

impl Model {
    /// Class scores turned into a softmax: probabilities for a model trained
    /// with logistic loss, a ranking (not calibrated) with hinge loss.
    pub fn probabilities(&self, x: &[(u32, f32)], out: &mut Vec<f32>) {
        let k = self.labels.len();
        out.clear();
        out.extend_from_slice(&self.bias);
        for &(i, v) in x {
            let w = &self.weights[i as usize * k..i as usize * k + k];
            for (o, wi) in out.iter_mut().zip(w) {
                *o += wi * v;
            }
        }
        softmax(out);
    }

    /// The category of a message, from its template and body (the features
    /// the model is trained on).
    pub fn categorize(&self, template: &str, body: &str) -> &str {
        let mut folded = String::new();
        crate::fold::fold_into(body, &mut folded);
        let mut f = Vec::new();
        text_features(template, &folded, body, self.bits, &mut f);
        &self.labels[self.predict(&f).0]
    }

    /// The most likely label and its probability.
    pub fn predict(&self, x: &[(u32, f32)]) -> (usize, f32) {
        let mut p = Vec::with_capacity(self.labels.len());
        self.probabilities(x, &mut p);
        let (i, v) = p.iter().enumerate().fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
        (i, v)
    }

    /// Trains on `(features, label index)` examples.
    pub fn train(labels: Vec<String>, examples: &[(Features, usize)], cfg: &TrainConfig) -> Model {
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
        let (mut w_sum, mut b_sum, mut averaged) = (Vec::new(), vec![0f32; k], 0u32);
        for epoch in 0..cfg.epochs {
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
            if cfg.average && epoch >= cfg.epochs / 2 {
                if w_sum.is_empty() {
                    w_sum = vec![0f32; w.len()];
                }
                for (s, v) in w_sum.iter_mut().zip(&w) {
                    *s += v;
                }
                for (s, v) in b_sum.iter_mut().zip(&b) {
                    *s += v;
                }
                averaged += 1;
            }
        }
        if averaged > 0 {
            let n = averaged as f32;
            w = w_sum.into_iter().map(|v| v / n).collect();
            b = b_sum.into_iter().map(|v| v / n).collect();
        }
        Model { labels, bits: cfg.bits, weights: w, bias: b }
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
        Ok(Model { labels, bits, weights, bias })
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
    fn scores_by_hand() {
        let s = Scores::from_pairs(vec!["a".into(), "b".into()], &[(0, 0), (0, 1), (1, 1), (1, 1)]);
        assert_eq!(s.matrix, vec![vec![1, 1], vec![0, 2]]);
        assert!((s.precision[1] - 2.0 / 3.0).abs() < 1e-9);
        assert!((s.recall[0] - 0.5).abs() < 1e-9);
        assert!((s.accuracy - 0.75).abs() < 1e-9);
    }
}
