//! Unicode folding: the first step of turning a message body into a template.
//!
//! Spammers dodge exact-match filters with characters that look the same but
//! are not: Cyrillic "а" for Latin "a", fullwidth "Ｖｏｔｅ", mathematical
//! "𝐕𝐨𝐭𝐞", zero-width joiners inside words, combining accents, emoji sprinkled
//! between letters, and runs of odd spaces. Folding maps all of those to one
//! plain lowercase form so that the copies of one text look alike again.
//!
//! What this module is not: it does not replace variable parts (links,
//! numbers, names); that is [`crate::template`]'s job, which runs on the
//! folded text.
//!
//! Cost: pure-ASCII bodies (most traffic) take a byte loop with no Unicode
//! tables. Anything else goes through NFKD, confusable folding
//! (`decancer`), mark and emoji removal, one char at a time, still without
//! allocating beyond the caller's buffer.

use unicode_normalization::UnicodeNormalization;

/// Folds `body` into `out` (cleared first): lowercase, confusables mapped to
/// their Latin look-alikes, invisible characters, combining marks and emoji
/// removed, every run of whitespace collapsed to one space, trimmed.
///
/// Braces are turned into parentheses so that the slot markers the template
/// step writes (`{url}`, `{num}`, ...) can never be forged by the sender.
pub fn fold_into(body: &str, out: &mut String) {
    out.clear();
    out.reserve(body.len());
    let mut pending_space = false;
    if body.is_ascii() {
        // SAFETY: only ASCII bytes are pushed, so the String stays UTF-8.
        let bytes = unsafe { out.as_mut_vec() };
        for &b in body.as_bytes() {
            if b.is_ascii_whitespace() || b < 0x20 || b == 0x7f {
                pending_space = !bytes.is_empty();
                continue;
            }
            if pending_space {
                bytes.push(b' ');
                pending_space = false;
            }
            bytes.push(fold_ascii(b));
        }
        return;
    }
    for c in body.nfkd() {
        if c.is_ascii() {
            let b = c as u8;
            if b.is_ascii_whitespace() || b < 0x20 || b == 0x7f {
                pending_space = !out.is_empty();
                continue;
            }
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(fold_ascii(b) as char);
            continue;
        }
        // Combining marks (accents, and the rarer marks whose order NFKD
        // would otherwise have to settle) carry no signal here: dropping
        // them all keeps folding idempotent.
        if is_invisible(c) || is_pictograph(c) || is_mark(c) {
            continue;
        }
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if is_currency(c) {
            push_folded(out, c, &mut pending_space);
            continue;
        }
        if let Some(p) = inverted_punctuation(c) {
            push_folded(out, p, &mut pending_space);
            continue;
        }
        match decancer::cure_char(c, decancer::Options::default()) {
            decancer::Translation::Character(t) => {
                push_folded(out, t, &mut pending_space);
            }
            decancer::Translation::String(s) => {
                for t in s.chars() {
                    push_folded(out, t, &mut pending_space);
                }
            }
            decancer::Translation::None => {}
        }
    }
}

/// A combining mark (non-zero canonical combining class).
fn is_mark(c: char) -> bool {
    unicode_normalization::char::canonical_combining_class(c) != 0
}

/// Like [`fold_into`], and also records for every byte of `out` the byte
/// offset in `body` of the character it came from, so that evidence found
/// in the folded text can be shown in the original. Used once per template,
/// not per message.
pub fn fold_with_offsets(body: &str, out: &mut String, offsets: &mut Vec<u32>) {
    out.clear();
    offsets.clear();
    let mut pending_space = false;
    let push = |out: &mut String, offsets: &mut Vec<u32>, t: char, at: usize, pending: &mut bool| {
        if t.is_whitespace() || (t.is_ascii() && (t as u8) < 0x20) || t == '\u{7f}' {
            *pending = !out.is_empty();
            return;
        }
        if t.is_control() || is_invisible(t) || is_pictograph(t) {
            return;
        }
        if *pending {
            out.push(' ');
            offsets.push(at as u32);
            *pending = false;
        }
        let before = out.len();
        if t.is_ascii() {
            out.push(fold_ascii(t as u8) as char);
        } else {
            for l in t.to_lowercase() {
                out.push(l);
            }
        }
        offsets.extend(std::iter::repeat_n(at as u32, out.len() - before));
    };
    for (at, c) in body.char_indices() {
        if c.is_ascii() {
            push(out, offsets, c, at, &mut pending_space);
            continue;
        }
        for d in std::iter::once(c).nfkd() {
            if d.is_ascii() {
                push(out, offsets, d, at, &mut pending_space);
                continue;
            }
            if is_invisible(d) || is_pictograph(d) || is_mark(d) {
                continue;
            }
            if d.is_whitespace() {
                pending_space = !out.is_empty();
                continue;
            }
            if is_currency(d) {
                push(out, offsets, d, at, &mut pending_space);
                continue;
            }
            if let Some(p) = inverted_punctuation(d) {
                push(out, offsets, p, at, &mut pending_space);
                continue;
            }
            match decancer::cure_char(d, decancer::Options::default()) {
                decancer::Translation::Character(t) => push(out, offsets, t, at, &mut pending_space),
                decancer::Translation::String(s) => {
                    for t in s.chars() {
                        push(out, offsets, t, at, &mut pending_space);
                    }
                }
                decancer::Translation::None => {}
            }
        }
    }
}

#[inline]
fn push_folded(out: &mut String, t: char, pending_space: &mut bool) {
    if t.is_whitespace() {
        *pending_space = !out.is_empty();
        return;
    }
    if t.is_control() || is_invisible(t) || is_pictograph(t) {
        return;
    }
    if *pending_space {
        out.push(' ');
        *pending_space = false;
    }
    if t.is_ascii() {
        out.push(fold_ascii(t as u8) as char);
    } else {
        for l in t.to_lowercase() {
            out.push(l);
        }
    }
}

#[inline]
fn fold_ascii(b: u8) -> u8 {
    match b {
        b'{' => b'(',
        b'}' => b')',
        _ => b.to_ascii_lowercase(),
    }
}

/// Currency signs, which stay as they are: the confusables table would
/// turn "£" into "e" and "€" into "e" or "c", and a price is a signal
/// (an `{amount}` slot, a premium-rate charge), not a disguise.
/// Spanish opening marks: the confusables table reads "¡" as the letter
/// "i", which made "¡Las urnas" the word "ilas".
#[inline]
fn inverted_punctuation(c: char) -> Option<char> {
    match c {
        '¡' => Some('!'),
        '¿' => Some('?'),
        _ => None,
    }
}

#[inline]
fn is_currency(c: char) -> bool {
    matches!(c, '¢' | '£' | '¤' | '¥' | '₠'..='⃀')
}

/// Characters that render as nothing: zero-width spaces and joiners, word
/// joiners, bidi controls, soft hyphens, variation selectors, tag characters.
/// Spammers put them inside words to break exact matching.
#[inline]
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF0}'..='\u{FFF8}'
        | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E0FFF}')
}

/// Emoji and pictographic symbols. They carry tone, not identity, and are
/// sprinkled between words (or inside them) to make copies differ.
#[inline]
pub fn is_pictograph(c: char) -> bool {
    matches!(c,
        '\u{2190}'..='\u{21FF}'   // arrows
        | '\u{2300}'..='\u{23FF}' // misc technical (⌚ ⏰)
        | '\u{2460}'..='\u{24FF}' // enclosed alphanumerics are folded by decancer first; leftovers
        | '\u{25A0}'..='\u{27BF}' // shapes, misc symbols, dingbats (☎ ✅ ❗)
        | '\u{2900}'..='\u{297F}'
        | '\u{2B00}'..='\u{2BFF}' // ⬆ ⭐
        | '\u{3030}' | '\u{303D}' | '\u{3297}' | '\u{3299}'
        | '\u{1F000}'..='\u{1FAFF}' // emoji blocks, flags, symbols & pictographs
        | '\u{1FC00}'..='\u{1FFFD}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(s: &str) -> String {
        let mut out = String::new();
        fold_into(s, &mut out);
        out
    }

    #[test]
    fn ascii_is_lowercased_and_spaces_collapse() {
        assert_eq!(fold("  Vote   TODAY!\r\n\tNow "), "vote today! now");
    }

    #[test]
    fn cyrillic_homoglyphs_fold_to_latin() {
        // "Vоte" with Cyrillic о (U+043E), "раy" with Cyrillic р and а.
        assert_eq!(fold("V\u{043E}te and p\u{0430}y"), "vote and pay");
        assert_eq!(fold("\u{0410}\u{0441}\u{0441}\u{043E}unt"), "account");
    }

    #[test]
    fn greek_homoglyphs_fold() {
        // Greek omicron and alpha.
        assert_eq!(fold("P\u{03BF}lls cl\u{03BF}se"), "polls close");
    }

    #[test]
    fn fullwidth_and_math_letters_fold() {
        assert_eq!(fold("ＶＯＴＥ ｎｏｗ"), "vote now");
        assert_eq!(fold("𝐕𝐨𝐭𝐞 𝓷𝓸𝔀"), "vote now");
        assert_eq!(fold("🅅🄾🅃🄴"), "vote");
    }

    #[test]
    fn zero_width_characters_are_removed() {
        assert_eq!(fold("st\u{200B}eal the el\u{200D}ection\u{FEFF}"), "steal the election");
        assert_eq!(fold("cl\u{2060}ick h\u{00AD}ere"), "click here");
    }

    #[test]
    fn accents_and_zalgo_marks_are_removed() {
        assert_eq!(fold("Respondé BAJA"), "responde baja");
        assert_eq!(fold("v\u{0336}o\u{0301}t\u{0308}e"), "vote");
    }

    #[test]
    fn emoji_are_removed_even_inside_words() {
        assert_eq!(fold("🚨 URGENT 🚨 vo🗳️te now ✅"), "urgent vote now");
        assert_eq!(fold("Go 🇺🇸 vote"), "go vote");
    }

    #[test]
    fn unicode_spaces_collapse() {
        assert_eq!(fold("vote\u{00A0}\u{2003}\u{3000}now"), "vote now");
    }

    #[test]
    fn spanish_opening_marks_are_punctuation() {
        assert_eq!(fold("¡Las urnas cierran! ¿Ya votaste?"), "!las urnas cierran! ?ya votaste?");
    }

    #[test]
    fn currency_signs_are_kept() {
        assert_eq!(fold("WIN £250 or €100 (¥5, ₹900)"), "win £250 or €100 (¥5, ₹900)");
        assert_eq!(fold("￡250"), "£250", "fullwidth pound is a pound");
        let (mut out, mut offsets) = (String::new(), Vec::new());
        fold_with_offsets("a £5", &mut out, &mut offsets);
        assert_eq!(out, "a £5");
    }

    #[test]
    fn braces_cannot_forge_slots() {
        assert_eq!(fold("{url} here"), "(url) here");
        assert_eq!(fold("｛url｝"), "(url)");
    }

    #[test]
    fn offsets_map_folded_bytes_to_the_original() {
        let body = "Hi  ST\u{200B}\u{0415}AL 🇺🇸 now";
        let (mut out, mut off) = (String::new(), Vec::new());
        fold_with_offsets(body, &mut out, &mut off);
        let mut plain = String::new();
        fold_into(body, &mut plain);
        assert_eq!(out, plain, "same folding as the fast path");
        assert_eq!(out, "hi steal now");
        assert_eq!(off.len(), out.len());
        let e = out.find('e').unwrap();
        assert_eq!(&body[off[e] as usize..], "\u{0415}AL 🇺🇸 now");
    }

    #[test]
    fn other_scripts_survive() {
        // Folding must not erase non-Latin text, only Latin look-alikes.
        let f = fold("投票してください");
        assert!(!f.is_empty());
    }
}
