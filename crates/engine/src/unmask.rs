//! Spelling evasions that folding keeps, undone for the rules.
//!
//! Folding ([`crate::fold`]) maps characters that *look* alike ("Ѕ", "𝐒",
//! "ｓ" to "s"), but two evasions are made of plain ASCII and survive it:
//!
//! - letters spaced out by a separator: "s.t.e.a.l", "e-l-e-c-t-i-o-n",
//!   "v o t e", "s_t_o_l_e_n";
//! - digits and symbols standing in for letters inside a word ("leet"):
//!   "st3al", "el3cti0n", "c1aim", "ca$h", "amaz0n", "ver!fy".
//!
//! They cannot be folded into the template itself: "kl341" is a claim code
//! and "b4" a word of chat; a template must keep them. The rules, which look
//! for claims and lures in a text, read an *unmasked* view as well: the
//! folded text with spaced-out letters joined and stand-ins read as
//! letters, each byte still mapped to the byte of the original body it came
//! from, so evidence found in the view points into the message as sent.
//!
//! The readings are conservative. Letters are joined only when at least
//! three single letters follow each other with one and the same separator
//! (four with spaces, where "a" and "i" are words), and the run stands
//! alone (no letter or digit touches either end). A stand-in is read as a
//! letter between two letters of a word, and at either end of one
//! ("$how", "vot3", "@ddr3ss") when three letters remain, or two in a word
//! of four ("7hi5") that are not a time or an ordinal ("10am", "3pm",
//! "1st"), so numbers, codes and prices ("$25", "2nite", "covid19", "mp3",
//! "b4") are left alone; a word holding any other digit is left alone too.
//! "1" reads as "l" before a vowel or at the end of a word and as "i"
//! before a consonant ("c1aim", "e1ection", "stea1"; "g1ft", "r1gged");
//! since that guess fails on some words ("we1come", "elect1on"), [`views`]
//! adds the other readings: every combination of "l" and "i" over the
//! text's "1"s when it has at most [`MAX_ONES`] ("c1aim ... elect1on"
//! needs an "l" in one word and an "i" in the other), else two whole-text
//! readings. "!" is an "i" only inside a word ("ver!fy"), since it ends so
//! many sentences.

/// How a "1" standing in for a letter is read: before a vowel, at the end
/// of a word (or before another "1"), and before a consonant.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct OneAs {
    pub before_vowel: u8,
    pub at_end: u8,
    pub before_consonant: u8,
}

impl OneAs {
    /// The usual reading: "c1aim", "stea1" (l); "g1ft" (i).
    pub const USUAL: OneAs = OneAs { before_vowel: b'l', at_end: b'l', before_consonant: b'i' };
    /// Every "1" the other way: "we1come" is not "weicome" here.
    pub const FLIPPED: OneAs = OneAs { before_vowel: b'i', at_end: b'i', before_consonant: b'l' };
    /// An "i" before a vowel too ("elect1on"), while a word's last "1"
    /// stays an "l" ("stea1 this elect1on").
    pub const I_BEFORE_VOWEL: OneAs = OneAs { before_vowel: b'i', at_end: b'l', before_consonant: b'i' };
}

/// What a stand-in character reads as, given the byte after it.
fn letter_for(b: u8, next: u8, one: OneAs) -> Option<u8> {
    Some(match b {
        b'0' => b'o',
        b'1' if matches!(next, b'a' | b'e' | b'i' | b'o' | b'u') => one.before_vowel,
        // A doubled "11" is "ll" far more often than "ii" ("to11", "bi11").
        b'1' if !is_letterlike(next) || next == b'1' => one.at_end,
        b'1' => one.before_consonant,
        b'3' => b'e',
        b'4' => b'a',
        b'5' => b's',
        b'7' => b't',
        b'@' => b'a',
        b'$' => b's',
        b'!' => b'i',
        _ => return None,
    })
}

fn is_letter(b: u8) -> bool {
    b.is_ascii_lowercase()
}

/// A letter, or a character that may stand in for one.
fn is_letterlike(b: u8) -> bool {
    is_letter(b) || letter_for(b, 0, OneAs::USUAL).is_some()
}

/// Bytes that may space letters out.
fn is_separator(b: u8) -> bool {
    matches!(b, b'.' | b'-' | b'_' | b'*' | b' ' | b'+' | b'~' | b'/')
}

/// The length of the spaced-out run starting at `i` (a letter-like byte
/// with no word character before it), or 0: `L s L s L ...` with one
/// separator `s` throughout and nothing word-like after the last letter.
fn spaced_run(b: &[u8], i: usize) -> usize {
    if i > 0 && b[i - 1].is_ascii_alphanumeric() {
        return 0;
    }
    let Some(&sep) = b.get(i + 1) else { return 0 };
    if !is_separator(sep) {
        return 0;
    }
    let mut letters = 1;
    let mut end = i + 1;
    while end + 1 < b.len() && b[end] == sep && is_letterlike(b[end + 1]) {
        // The letter must be single: followed by the separator or the end
        // of the word.
        if b.get(end + 2).is_some_and(|&n| n.is_ascii_alphanumeric()) {
            break;
        }
        letters += 1;
        end += 2;
    }
    let needed = if sep == b' ' { 4 } else { 3 };
    // Mostly letters: "4-5-7" is a rating, not a word.
    let real = (i..end).step_by(2).filter(|&k| is_letter(b[k])).count();
    if letters < needed || real * 2 < letters {
        return 0;
    }
    end - i
}

/// Writes the unmasked view of `folded` (whose byte `k` came from byte
/// `offsets[k]` of the original) into `out`/`out_offsets`, reading each
/// "1" as `one` says, and the positions in `out` of the "1"s it read as
/// letters into `ones`. Returns whether anything changed; when nothing
/// did, the outputs hold a copy.
pub fn unmask(
    folded: &str,
    offsets: &[u32],
    one: OneAs,
    out: &mut String,
    out_offsets: &mut Vec<u32>,
    ones: &mut Vec<usize>,
) -> bool {
    out.clear();
    out_offsets.clear();
    ones.clear();
    let b = folded.as_bytes();
    let off = |k: usize| offsets.get(k).copied().unwrap_or(0);
    // Pass 1: join spaced-out letters (bytes and their offsets).
    let mut joined: Vec<u8> = Vec::with_capacity(b.len());
    let mut joined_off: Vec<u32> = Vec::with_capacity(b.len());
    let mut changed = false;
    let mut i = 0;
    while i < b.len() {
        let run = if is_letterlike(b[i]) { spaced_run(b, i) } else { 0 };
        if run > 0 {
            for k in (i..i + run).step_by(2) {
                joined.push(b[k]);
                joined_off.push(off(k));
            }
            changed = true;
            i += run;
            continue;
        }
        joined.push(b[i]);
        joined_off.push(off(i));
        i += 1;
    }
    // Pass 2: stand-ins between two letters of a word that has no other
    // digits.
    let mut start = 0;
    while start < joined.len() {
        if !is_letterlike(joined[start]) {
            start += 1;
            continue;
        }
        let mut end = start;
        while end < joined.len() && (joined[end].is_ascii_alphanumeric() || is_letterlike(joined[end])) {
            end += 1;
        }
        let word = start..end;
        start = end.max(start + 1);
        if joined[word.clone()].iter().any(|&c| c.is_ascii_digit() && letter_for(c, 0, OneAs::USUAL).is_none()) {
            continue;
        }
        let (Some(first), Some(last)) = (
            joined[word.clone()].iter().position(|&c| is_letter(c)),
            joined[word.clone()].iter().rposition(|&c| is_letter(c)),
        ) else {
            continue;
        };
        // Stand-ins at the ends of a word too ("$how", "vot3", "7hi5",
        // "@ddr3ss") when enough letters remain to make it a word, and not
        // a time or an ordinal ("10am", "3pm", "1st").
        let letters = &joined[word.start + first..=word.start + last];
        let edges = letters.len() >= 3
            || (letters.len() == 2
                && word.len() >= 4
                && !matches!(letters, b"am" | b"pm" | b"st" | b"nd" | b"rd" | b"th"));
        let span = if edges { word.clone() } else { word.start + first..word.start + last };
        let inner = word.start + first..word.start + last;
        for k in span {
            let next = joined.get(k + 1).copied().unwrap_or(b' ');
            // "!" ends sentences: it is an "i" only inside a word ("ver!fy").
            if joined[k] == b'!' && !inner.contains(&k) {
                continue;
            }
            if let Some(l) = (!is_letter(joined[k])).then(|| letter_for(joined[k], next, one)).flatten() {
                if joined[k] == b'1' {
                    ones.push(k);
                }
                joined[k] = l;
                changed = true;
            }
        }
    }
    // Only ASCII bytes were dropped or replaced, so the bytes stay UTF-8;
    // the lossy conversion never has to replace anything.
    out.push_str(&String::from_utf8_lossy(&joined));
    out_offsets.extend_from_slice(&joined_off);
    changed
}

/// Up to this many "1"s standing in for letters, [`views`] reads each
/// both ways (at most 2^4 = 16 views); beyond, two whole-text readings.
pub const MAX_ONES: usize = 4;

/// The unmasked views of a folded text worth reading besides the text
/// itself: none when nothing is masked; the usual reading first; then,
/// when "1"s stand in for letters, the other readings of them (see the
/// module notes), each view distinct.
pub fn views(folded: &str, offsets: &[u32]) -> Vec<(String, Vec<u32>)> {
    let mut out: Vec<(String, Vec<u32>)> = Vec::new();
    let (mut t, mut o, mut ones) = (String::new(), Vec::new(), Vec::new());
    if !unmask(folded, offsets, OneAs::USUAL, &mut t, &mut o, &mut ones) {
        return out;
    }
    out.push((t, o));
    if ones.is_empty() {
        return out;
    }
    let push = |out: &mut Vec<(String, Vec<u32>)>, t: String, o: Vec<u32>| {
        if out.iter().all(|v| v.0 != t) {
            out.push((t, o));
        }
    };
    if ones.len() <= MAX_ONES {
        // Bit j of `flip` set: the j-th "1" takes the other letter. Only
        // ASCII "l" and "i" are swapped, so the text stays UTF-8.
        let (usual, usual_offsets) = (out[0].0.clone().into_bytes(), out[0].1.clone());
        for flip in 1u32..(1 << ones.len()) {
            let mut b = usual.clone();
            for (j, &k) in ones.iter().enumerate() {
                if flip >> j & 1 == 1 {
                    b[k] = if b[k] == b'l' { b'i' } else { b'l' };
                }
            }
            push(&mut out, String::from_utf8_lossy(&b).into_owned(), usual_offsets.clone());
        }
        return out;
    }
    for one in [OneAs::FLIPPED, OneAs::I_BEFORE_VOWEL] {
        let (mut t, mut o) = (String::new(), Vec::new());
        unmask(folded, offsets, one, &mut t, &mut o, &mut ones);
        push(&mut out, t, o);
    }
    out
}

/// A host name read with its stand-ins as letters, both readings of "1"
/// ("amaz0n-rewards.co" reads "amazon-rewards.co"; "paypa1.help" both
/// "paypai.help" and "paypal.help"), for spotting brand look-alikes.
pub fn host_readings(host: &str) -> [String; 2] {
    let read = |one: u8| {
        host.bytes()
            .map(|c| match c {
                b'1' => one,
                b'0'..=b'9' => letter_for(c, 0, OneAs::USUAL).unwrap_or(c),
                _ => c,
            } as char)
            .collect::<String>()
    };
    [read(b'i'), read(b'l')]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(s: &str) -> Vec<String> {
        let off: Vec<u32> = (0..s.len() as u32).collect();
        let v = views(s, &off);
        for (t, o) in &v {
            assert_eq!(t.len(), o.len(), "an offset per byte");
        }
        v.into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn spaced_out_letters_are_joined() {
        assert_eq!(view("they will s.t.e.a.l this e-l-e-c-t-i-o-n"), ["they will steal this election"]);
        assert_eq!(view("s_t_o_l_e_n votes"), ["stolen votes"]);
        assert_eq!(view("r i g g e d"), ["rigged"]);
        assert_eq!(view("v.o.t.e by text"), ["vote by text"]);
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for s in [
            "i am a big fan",
            "e.g. at 5 p.m. in the u.s.",
            "a b c",
            "call 555-123-4567 or reply y/n",
            "save $25 on covid19 tests, 2nite only, b4 9pm",
            "your code is kl3x9 and mp3 files",
            "win a 4k tv",
            "rated 4-5-7 by 1/2/3",
        ] {
            assert!(view(s).is_empty(), "{s:?} became {:?}", view(s));
        }
    }

    #[test]
    fn stand_ins_between_letters_read_as_letters() {
        assert_eq!(view("they will st3al this el3cti0n"), ["they will steal this election"]);
        assert_eq!(
            view("c1aim your g1ft"),
            ["claim your gift", "ciaim your gift", "claim your glft", "ciaim your glft"]
        );
        assert_eq!(view("ca$h"), ["cash"]);
        assert_eq!(
            view("r1gged e1ection"),
            ["rigged election", "rlgged election", "rigged eiection", "rlgged eiection"]
        );
        assert_eq!(view("g00d"), ["good"]);
    }

    #[test]
    fn stand_ins_at_the_ends_of_words_read_as_letters() {
        assert_eq!(view("$how your support"), ["show your support"]);
        assert_eq!(view("vot3 on wednesday"), ["vote on wednesday"]);
        assert_eq!(view("update your @ddr3ss"), ["update your address"]);
        assert_eq!(view("if 7hi5 wasn't you"), ["if this wasn't you"]);
        assert_eq!(view("73ll your friends"), ["tell your friends"]);
        assert_eq!(view("stea1 this e1ection")[0], "steal this election");
        assert_eq!(view("unpaid to11, pay your bi11ing")[0], "unpaid toll, pay your billing");
        assert!(view("STEA1 this elect1on".to_lowercase().as_str()).contains(&"steal this election".to_string()));
        // Each "1" is read both ways, so words that need different
        // readings are read right together.
        let v = view("c1aim it, they stea1 the elect1on, we1come");
        assert!(v.contains(&"claim it, they steal the election, welcome".to_string()), "{v:?}");
        assert_eq!(v.len(), 16);
        // Beyond four, two whole-text readings besides the usual one.
        assert_eq!(view("c1aim c1aim c1aim c1aim c1aim").len(), 2);
        assert_eq!(view("ver!fy your account, cl@!m it"), ["verify your account, claim it"]);
        assert!(view("wow! steal this election!").is_empty(), "a '!' that ends a word stays");
        // Times, ordinals and short words stay.
        for s in ["meet at 10am or 3pm", "the 1st and 3rd", "b4 5pm", "mp3 or 4k", "at 7 or 10"] {
            assert!(view(s).is_empty(), "{s:?} became {:?}", view(s));
        }
    }

    #[test]
    fn both_evasions_at_once_and_offsets_point_back() {
        let body = "s-t-3-a-l it";
        let off: Vec<u32> = (0..body.len() as u32).collect();
        let v = views(body, &off);
        assert_eq!(v[0].0, "steal it");
        assert_eq!(v[0].1[..5], [0, 2, 4, 6, 8], "each letter maps to where it was written");
    }

    #[test]
    fn hosts_read_both_ways() {
        assert_eq!(
            host_readings("paypa1-secure.com"),
            ["paypai-secure.com".to_string(), "paypal-secure.com".to_string()]
        );
        assert_eq!(host_readings("amaz0n.co")[0], "amazon.co");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Any folded text unmasks without panicking, every view keeps an
        /// offset per byte pointing inside the original, and a view never
        /// grows.
        #[test]
        fn views_are_well_formed(s in "[a-z0-9 .\\-_*+~/@$!,\u{e9}\u{6771}]{0,120}") {
            let body = s.as_str();
            let (mut folded, mut offsets) = (String::new(), Vec::new());
            crate::fold::fold_with_offsets(body, &mut folded, &mut offsets);
            for (t, o) in views(&folded, &offsets) {
                proptest::prop_assert_eq!(t.len(), o.len());
                proptest::prop_assert!(t.len() <= folded.len());
                proptest::prop_assert!(o.iter().all(|&k| (k as usize) < body.len().max(1)));
            }
        }
    }
}
