//! Meaning similarity: whether two texts say the same thing in other words.
//!
//! Campaign linking asks this of texts that share infrastructure (sending
//! numbers, link domains, callback numbers) but are not near-duplicates: the
//! same claim reworded, shortened, said in Spanish two ways. Near-duplicate
//! hashing cannot see that; a sentence-embedding model can, but a
//! transformer pass costs milliseconds. textwatch ships a **static** table
//! distilled from one (`models/meaning.twe`, made by
//! `scripts/distill-meaning.py` from multilingual-e5-small): each word's
//! vector is the model's embedding of that word, and a text's vector is the
//! weighted mean of its words' vectors (smooth inverse frequency, so "the"
//! and "de" count for little). That is a few table look-ups per text, and it
//! runs once per new campaign template, never per message.
//!
//! What it is not: a judge of truth or intent. It says "about the same
//! thing", which is only ever one half of a link; the other half is shared
//! infrastructure (see `campaigns`).

use hashbrown::HashMap;

/// Dimensions of a meaning vector.
pub const DIM: usize = 64;

/// A unit-length meaning vector (all zero when the text had no known word).
pub type Vector = [f32; DIM];

/// Errors reading a meaning table.
#[derive(Debug, thiserror::Error)]
pub enum MeaningError {
    #[error("not a textwatch meaning table (bad magic); rebuild it with scripts/distill-meaning.py")]
    Magic,
    #[error("meaning table is truncated at byte {0}")]
    Truncated(usize),
    #[error("meaning table has {0} dimensions, this textwatch reads {DIM}")]
    Dims(u32),
}

/// The static word-vector table.
pub struct MeaningModel {
    /// The mean text vector of real SMS texts, subtracted from every text's
    /// vector so that similarity is about what a text says, not that it is
    /// a text.
    centre: Vector,
    index: HashMap<Box<str>, u32>,
    /// Per word: dequantization scale times the word's weight.
    gain: Vec<f32>,
    vecs: Vec<i8>,
}

impl std::fmt::Debug for MeaningModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeaningModel").field("words", &self.gain.len()).finish_non_exhaustive()
    }
}

impl MeaningModel {
    /// Reads a table written by `scripts/distill-meaning.py`: magic
    /// `TWMEAN02`, word count and dimensions (u32 LE), the centre (DIM f32
    /// LE), then per word its length (u8), bytes, scale (f32 LE) and weight
    /// (u8, /255), then the int8 vectors row by row.
    pub fn from_bytes(b: &[u8]) -> Result<Self, MeaningError> {
        if b.len() < 16 || &b[..8] != b"TWMEAN02" {
            return Err(MeaningError::Magic);
        }
        let n = u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize;
        let dims = u32::from_le_bytes([b[12], b[13], b[14], b[15]]);
        if dims as usize != DIM {
            return Err(MeaningError::Dims(dims));
        }
        let mut at = 16;
        let mut centre = [0f32; DIM];
        for c in centre.iter_mut() {
            let x = b.get(at..at + 4).ok_or(MeaningError::Truncated(at))?;
            *c = f32::from_le_bytes([x[0], x[1], x[2], x[3]]);
            at += 4;
        }
        let mut index = HashMap::with_capacity(n);
        let mut gain = Vec::with_capacity(n);
        for i in 0..n {
            let len = *b.get(at).ok_or(MeaningError::Truncated(at))? as usize;
            let word = b.get(at + 1..at + 1 + len).ok_or(MeaningError::Truncated(at))?;
            at += 1 + len;
            let tail = b.get(at..at + 5).ok_or(MeaningError::Truncated(at))?;
            let scale = f32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
            let weight = f32::from(tail[4]) / 255.0;
            at += 5;
            index.insert(String::from_utf8_lossy(word).into(), i as u32);
            gain.push(scale * weight);
        }
        let vecs = b.get(at..at + n * DIM).ok_or(MeaningError::Truncated(at))?;
        Ok(MeaningModel { centre, index, gain, vecs: vecs.iter().map(|&x| x as i8).collect() })
    }

    /// Words in the table.
    pub fn words(&self) -> usize {
        self.gain.len()
    }

    /// The meaning vector of a folded text or template. Slots (`{url}`,
    /// `{name}`) and boilerplate (opt-out instructions, rate notices) say
    /// nothing about what a text is about and are skipped. `None` when no
    /// word of the text is in the table.
    pub fn embed(&self, text: &str) -> Option<Vector> {
        let mut skip = Vec::new();
        crate::features::boilerplate_ranges(text, &mut skip);
        let mut acc = [0f32; DIM];
        let mut any = false;
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if let Some(r) = skip.iter().find(|r| r.start == i) {
                i = r.end.max(i + 1);
                continue;
            }
            let b = bytes[i];
            if b == b'{' {
                // A slot: skip to its end.
                i = text[i..].find('}').map_or(bytes.len(), |j| i + j + 1);
                continue;
            }
            if !b.is_ascii_alphabetic() {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            let word = &text[start..i];
            if word.len() < 2 {
                continue;
            }
            if let Some(&w) = self.index.get(word) {
                let g = self.gain[w as usize];
                let row = &self.vecs[w as usize * DIM..(w as usize + 1) * DIM];
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += g * f32::from(v);
                }
                any = true;
            }
        }
        if !any {
            return None;
        }
        let norm = acc.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm <= f32::EPSILON {
            return None;
        }
        for (a, c) in acc.iter_mut().zip(&self.centre) {
            *a = *a / norm - c;
        }
        let norm = acc.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm <= f32::EPSILON {
            return None;
        }
        for a in &mut acc {
            *a /= norm;
        }
        Some(acc)
    }
}

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &Vector, b: &Vector) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
