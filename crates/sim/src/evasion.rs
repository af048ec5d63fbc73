//! The tricks bulk senders use to make copies of one text look different,
//! each a knob with a default rate drawn from how often it is seen.
//!
//! Rates are the share of a campaign's messages a trick is applied to.
//! Scenario-level `scale` multiplies them (the `smishing` scenario doubles
//! them). Link rotation, personalization and sender rotation are properties
//! of each campaign's spec, not of this table.

use crate::rng::Rng;

/// Per-trick application rates (0-1).
#[derive(Clone, Debug, PartialEq)]
pub struct Evasion {
    /// Swap 1-3 Latin letters for Cyrillic or Greek look-alikes.
    pub homoglyph: f64,
    /// Insert zero-width characters inside words.
    pub zero_width: f64,
    /// Odd spacing: doubled spaces, a letter-spaced word.
    pub spacing: f64,
    /// Emoji at the start, the end, or between words.
    pub emoji: f64,
    /// Pick a synonym where the template offers `[a|b|c]` choices.
    pub word_swap: f64,
    /// Shuffle the order of sentences.
    pub reorder: f64,
    /// Shift case of a word ("STEAL", "Steal").
    pub case: f64,
}

impl Default for Evasion {
    fn default() -> Self {
        Evasion {
            homoglyph: 0.08,
            zero_width: 0.06,
            spacing: 0.05,
            emoji: 0.15,
            word_swap: 0.35,
            reorder: 0.04,
            case: 0.1,
        }
    }
}

impl Evasion {
    /// No tricks at all.
    pub fn none() -> Self {
        Evasion { homoglyph: 0.0, zero_width: 0.0, spacing: 0.0, emoji: 0.0, word_swap: 0.0, reorder: 0.0, case: 0.0 }
    }

    /// Every rate multiplied by `k` (capped at 1).
    pub fn scaled(&self, k: f64) -> Self {
        let f = |x: f64| (x * k).min(1.0);
        Evasion {
            homoglyph: f(self.homoglyph),
            zero_width: f(self.zero_width),
            spacing: f(self.spacing),
            emoji: f(self.emoji),
            word_swap: f(self.word_swap),
            reorder: f(self.reorder),
            case: f(self.case),
        }
    }

    /// Applies the character-level tricks to `s` in place.
    pub fn apply(&self, s: &mut String, rng: &mut Rng, scratch: &mut String) {
        if rng.chance(self.reorder) {
            reorder(s, rng, scratch);
        }
        if rng.chance(self.case) {
            shift_case(s, rng, scratch);
        }
        if rng.chance(self.homoglyph) {
            homoglyphs(s, rng, scratch);
        }
        if rng.chance(self.zero_width) {
            zero_width(s, rng, scratch);
        }
        if rng.chance(self.spacing) {
            spacing(s, rng, scratch);
        }
        if rng.chance(self.emoji) {
            emoji(s, rng, scratch);
        }
    }
}

const LOOKALIKES: &[(char, &[char])] = &[
    ('a', &['\u{0430}', '\u{03B1}']),
    ('c', &['\u{0441}', '\u{03F2}']),
    ('e', &['\u{0435}']),
    ('i', &['\u{0456}', '\u{03B9}']),
    ('o', &['\u{043E}', '\u{03BF}']),
    ('p', &['\u{0440}', '\u{03C1}']),
    ('x', &['\u{0445}']),
    ('y', &['\u{0443}']),
    ('s', &['\u{0455}']),
    ('A', &['\u{0410}', '\u{0391}']),
    ('E', &['\u{0415}', '\u{0395}']),
    ('O', &['\u{041E}', '\u{039F}']),
    ('T', &['\u{0422}', '\u{03A4}']),
    ('S', &['\u{0405}']),
];

fn homoglyphs(s: &mut String, rng: &mut Rng, out: &mut String) {
    let n = 1 + rng.below(3);
    let candidates: Vec<usize> =
        s.char_indices().filter(|(_, c)| LOOKALIKES.iter().any(|(l, _)| l == c)).map(|(i, _)| i).collect();
    if candidates.is_empty() {
        return;
    }
    let chosen: Vec<usize> = (0..n).map(|_| *rng.pick(&candidates)).collect();
    out.clear();
    for (i, c) in s.char_indices() {
        if chosen.contains(&i) {
            if let Some((_, alts)) = LOOKALIKES.iter().find(|(l, _)| *l == c) {
                out.push(*rng.pick(alts));
                continue;
            }
        }
        out.push(c);
    }
    std::mem::swap(s, out);
}

const ZW: &[char] = &['\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}'];

fn zero_width(s: &mut String, rng: &mut Rng, out: &mut String) {
    let n = 1 + rng.below(3);
    let inside: Vec<usize> = s
        .char_indices()
        .zip(s.chars().skip(1))
        .filter(|((_, a), b)| a.is_alphabetic() && b.is_alphabetic())
        .map(|((i, a), _)| i + a.len_utf8())
        .collect();
    if inside.is_empty() {
        return;
    }
    let chosen: Vec<usize> = (0..n).map(|_| *rng.pick(&inside)).collect();
    out.clear();
    for (i, c) in s.char_indices() {
        if chosen.contains(&i) {
            out.push(*rng.pick(ZW));
        }
        out.push(c);
    }
    std::mem::swap(s, out);
}

fn spacing(s: &mut String, rng: &mut Rng, out: &mut String) {
    out.clear();
    let words: Vec<&str> = s.split(' ').collect();
    let target = rng.below(words.len().max(1));
    let letter_space = rng.chance(0.5);
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push_str(if rng.chance(0.3) { "  " } else { " " });
        }
        if i == target && letter_space && w.chars().count() > 3 && w.chars().all(char::is_alphabetic) {
            for (k, c) in w.chars().enumerate() {
                if k > 0 {
                    out.push(' ');
                }
                out.push(c);
            }
        } else {
            out.push_str(w);
        }
    }
    std::mem::swap(s, out);
}

const EMOJI: &[&str] = &["🚨", "🇺🇸", "🗳️", "✅", "❗", "🔥", "👉", "📦", "💳", "⚠️", "🙏", "👍", "🎉"];

fn emoji(s: &mut String, rng: &mut Rng, out: &mut String) {
    out.clear();
    match rng.below(3) {
        0 => {
            out.push_str(rng.pick_str(EMOJI));
            out.push(' ');
            out.push_str(s);
        }
        1 => {
            out.push_str(s);
            out.push(' ');
            out.push_str(rng.pick_str(EMOJI));
            if rng.chance(0.5) {
                out.push_str(rng.pick_str(EMOJI));
            }
        }
        _ => {
            let words: Vec<&str> = s.split(' ').collect();
            let at = rng.below(words.len().max(1));
            for (i, w) in words.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(w);
                if i == at {
                    out.push(' ');
                    out.push_str(rng.pick_str(EMOJI));
                }
            }
        }
    }
    std::mem::swap(s, out);
}

fn reorder(s: &mut String, rng: &mut Rng, out: &mut String) {
    let mut sentences: Vec<&str> = Vec::new();
    let mut start = 0;
    let b = s.as_bytes();
    for i in 0..b.len() {
        if matches!(b[i], b'.' | b'!' | b'?') && (i + 1 == b.len() || b[i + 1] == b' ') {
            sentences.push(s[start..=i].trim());
            start = i + 1;
        }
    }
    if start < s.len() && !s[start..].trim().is_empty() {
        sentences.push(s[start..].trim());
    }
    if sentences.len() < 3 {
        return;
    }
    // Keep the last sentence (often the opt-out line) in place; swap two others.
    let i = rng.below(sentences.len() - 1);
    let j = rng.below(sentences.len() - 1);
    sentences.swap(i, j);
    out.clear();
    out.push_str(&sentences.join(" "));
    std::mem::swap(s, out);
}

fn shift_case(s: &mut String, rng: &mut Rng, out: &mut String) {
    let words: Vec<&str> = s.split(' ').collect();
    let at = rng.below(words.len().max(1));
    out.clear();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if i == at {
            if rng.chance(0.5) {
                out.push_str(&w.to_uppercase());
            } else {
                out.push_str(&w.to_lowercase());
            }
        } else {
            out.push_str(w);
        }
    }
    std::mem::swap(s, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str =
        "Radical Liberals are trying to STEAL this election. Show your support at 12th and Arch. Reply now!";

    fn only(f: impl Fn(&mut Evasion)) -> Evasion {
        let mut e = Evasion::none();
        f(&mut e);
        e
    }

    fn run(e: &Evasion, seed: u64) -> String {
        let mut s = BASE.to_string();
        e.apply(&mut s, &mut Rng::new(seed), &mut String::new());
        s
    }

    #[test]
    fn none_changes_nothing() {
        assert_eq!(run(&Evasion::none(), 1), BASE);
    }

    #[test]
    fn each_knob_is_applied() {
        let h = run(&only(|e| e.homoglyph = 1.0), 3);
        assert!(h.chars().any(|c| ('\u{0370}'..='\u{04FF}').contains(&c)), "{h}");
        let z = run(&only(|e| e.zero_width = 1.0), 3);
        assert!(z.chars().any(|c| ZW.contains(&c)), "{z:?}");
        let sp = (0..20).map(|k| run(&only(|e| e.spacing = 1.0), k)).find(|s| s != BASE).unwrap();
        assert_ne!(sp.replace("  ", " "), BASE.replace("  ", " ").replace(' ', "X"));
        let em = run(&only(|e| e.emoji = 1.0), 3);
        assert!(EMOJI.iter().any(|x| em.contains(x)), "{em}");
        let re = (0..20).map(|k| run(&only(|e| e.reorder = 1.0), k)).find(|s| s != BASE).unwrap();
        assert!(re.ends_with("Reply now!") && re.starts_with("Show") || re.contains("Arch. Radical"), "{re}");
        let ca = (0..20).map(|k| run(&only(|e| e.case = 1.0), k)).find(|s| s != BASE).unwrap();
        assert_eq!(ca.to_lowercase(), BASE.to_lowercase());
    }
}
