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
    /// Digits and symbols for letters in one or two words, trigger words
    /// first ("ST3AL", "v0te", "cl@im", "$tolen").
    pub leet: f64,
    /// Break the link so that a link pattern misses it: "bit . ly/x",
    /// "bit[.]ly/x", "bit(dot)ly/x", "hxxps://".
    pub link_break: f64,
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
            leet: 0.05,
            link_break: 0.04,
        }
    }
}

impl Evasion {
    /// No tricks at all.
    pub fn none() -> Self {
        Evasion {
            homoglyph: 0.0,
            zero_width: 0.0,
            spacing: 0.0,
            emoji: 0.0,
            word_swap: 0.0,
            reorder: 0.0,
            case: 0.0,
            leet: 0.0,
            link_break: 0.0,
        }
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
            leet: f(self.leet),
            link_break: f(self.link_break),
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
        if rng.chance(self.leet) {
            leet(s, rng, scratch);
        }
        if rng.chance(self.link_break) {
            link_break(s, rng, scratch);
        }
    }
}

/// Words a filter is likely to look for, which senders disguise first.
const TRIGGERS: &[&str] = &[
    "steal",
    "stolen",
    "stealing",
    "rigged",
    "fraud",
    "election",
    "vote",
    "voting",
    "ballot",
    "polls",
    "claim",
    "prize",
    "winner",
    "free",
    "gift",
    "reward",
    "account",
    "verify",
    "suspended",
    "locked",
    "package",
    "delivery",
    "refund",
    "payment",
    "urgent",
];

const STAND_INS: &[(char, &[char])] = &[
    ('a', &['4', '@']),
    ('e', &['3']),
    ('i', &['1', '!']),
    ('o', &['0']),
    ('s', &['5', '$']),
    ('t', &['7']),
    ('l', &['1']),
];

fn leet(s: &mut String, rng: &mut Rng, out: &mut String) {
    let words: Vec<&str> = s.split(' ').collect();
    let core = |w: &str| w.trim_end_matches(|c: char| c.is_ascii_punctuation()).to_string();
    let candidates: Vec<usize> = (0..words.len())
        .filter(|&i| {
            let c = core(words[i]);
            c.chars().count() >= 4 && c.chars().all(|ch| ch.is_ascii_alphabetic())
        })
        .collect();
    if candidates.is_empty() {
        return;
    }
    let triggers: Vec<usize> =
        candidates.iter().copied().filter(|&i| TRIGGERS.contains(&core(words[i]).to_lowercase().as_str())).collect();
    let n = 1 + rng.below(2);
    let chosen: Vec<usize> = (0..n)
        .map(|_| if !triggers.is_empty() && rng.chance(0.8) { *rng.pick(&triggers) } else { *rng.pick(&candidates) })
        .collect();
    out.clear();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if !chosen.contains(&i) {
            out.push_str(w);
            continue;
        }
        let swappable: Vec<usize> = w
            .char_indices()
            .filter(|(_, c)| STAND_INS.iter().any(|(l, _)| *l == c.to_ascii_lowercase()))
            .map(|(at, _)| at)
            .collect();
        let swaps: Vec<usize> = match swappable.len() {
            0 => Vec::new(),
            n => (0..1 + rng.below(2.min(n))).map(|_| *rng.pick(&swappable)).collect(),
        };
        for (at, c) in w.char_indices() {
            match STAND_INS.iter().find(|(l, _)| *l == c.to_ascii_lowercase()) {
                Some((_, alts)) if swaps.contains(&at) => out.push(*rng.pick(alts)),
                _ => out.push(c),
            }
        }
    }
    std::mem::swap(s, out);
}

fn link_break(s: &mut String, rng: &mut Rng, out: &mut String) {
    let Some((start, link)) = s
        .split(' ')
        .scan(0usize, |at, w| {
            let here = *at;
            *at += w.len() + 1;
            Some((here, w))
        })
        .find(|(_, w)| {
            let w = w.to_ascii_lowercase();
            (w.contains('/') || w.starts_with("www.")) && w.contains('.') && !w.contains("..")
        })
    else {
        return;
    };
    let scheme_end = link.find("://").map_or(0, |i| i + 3);
    let host_end = link[scheme_end..].find('/').map_or(link.len(), |i| scheme_end + i);
    let Some(dot) = link[scheme_end..host_end].rfind('.').map(|i| scheme_end + i) else {
        return;
    };
    out.clear();
    out.push_str(&s[..start]);
    match rng.below(if scheme_end > 0 { 5 } else { 4 }) {
        0 => {
            out.push_str(&link[..dot]);
            out.push_str(" . ");
            out.push_str(&link[dot + 1..]);
        }
        k @ 1..=3 => {
            out.push_str(&link[..dot]);
            out.push_str(["[.]", "(.)", "[dot]"][k - 1]);
            out.push_str(&link[dot + 1..]);
        }
        _ => {
            out.push_str(&link.replacen("http", "hxxp", 1));
        }
    }
    out.push_str(&s[start + link.len()..]);
    std::mem::swap(s, out);
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

    #[test]
    fn leet_disguises_trigger_words_first() {
        let mut hit_trigger = 0;
        for seed in 0..50 {
            let l = run(&only(|e| e.leet = 1.0), seed);
            assert_ne!(l, BASE, "seed {seed}");
            assert_eq!(l.split(' ').count(), BASE.split(' ').count(), "{l}");
            let changed: Vec<(&str, &str)> = BASE.split(' ').zip(l.split(' ')).filter(|(a, b)| a != b).collect();
            assert!((1..=2).contains(&changed.len()), "{l}");
            for (a, b) in &changed {
                assert!(b.chars().any(|c| "4@31!05$7".contains(c)), "{a} -> {b}");
            }
            hit_trigger +=
                usize::from(changed.iter().any(|(a, _)| a.starts_with("STEAL") || a.starts_with("election")));
        }
        assert!(hit_trigger > 35, "trigger words are disguised first: {hit_trigger} of 50");
    }

    #[test]
    fn link_break_breaks_the_host_not_the_path() {
        let base = "Your package is held: https://usps-redeliver.top/a1B2 today. Reply STOP to end";
        let mut forms = std::collections::HashSet::new();
        for seed in 0..60 {
            let mut s = base.to_string();
            only(|e| e.link_break = 1.0).apply(&mut s, &mut Rng::new(seed), &mut String::new());
            assert!(s.ends_with("/a1B2 today. Reply STOP to end"), "{s}");
            let form = [
                "usps-redeliver . top",
                "usps-redeliver[.]top",
                "usps-redeliver(.)top",
                "usps-redeliver[dot]top",
                "hxxps://usps-redeliver.top",
            ]
            .into_iter()
            .find(|f| s.contains(f));
            forms.insert(form.unwrap_or_else(|| panic!("unexpected break: {s}")));
        }
        assert_eq!(forms.len(), 5, "every form is drawn");
        let mut s = "no link here, just text.".to_string();
        link_break(&mut s, &mut Rng::new(1), &mut String::new());
        assert_eq!(s, "no link here, just text.");
    }
}
