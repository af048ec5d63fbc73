//! Who a text says it is from: the organization or brand named in its
//! self-identification ("this is {name} with Philly Votes Together",
//! "Acme Pharmacy: ...", "Paid for by Friends of Jane Doe", "- The Corner
//! Bistro").
//!
//! Campaign assignment uses it to keep actors apart: two organizations that
//! send the same volunteer script, each signing with its own name, are two
//! campaigns, however alike the rest of the text is. The name is read from
//! the template (folded, lowercase), so a volunteer's first name is a
//! `{name}` slot and never mistaken for the organization.
//!
//! What it is not: proof of who sent a text. A scammer's "USPS:" names the
//! brand it impersonates; that is still the name the text claims, and two
//! waves claiming different brands from the same numbers are joined by the
//! numbers, not kept apart by the names (see `campaigns`).

use std::sync::OnceLock;

use regex::Regex;

/// Words that end a name: what follows is the message, not the sender.
const STOP: &[&str] = &[
    "and", "who", "about", "here", "asking", "checking", "reaching", "texting", "writing", "letting", "just", "wanted",
    "want", "with", "is", "are", "we", "i", "you", "your", "our", "today", "tonight", "now", "again", "y", "para",
    "que", "quiero", "queria", "hoy", "reply", "txt", "text", "msg", "stop",
];

fn patterns() -> &'static [Regex] {
    static RES: OnceLock<Vec<Regex>> = OnceLock::new();
    RES.get_or_init(|| {
        [
            // "this is {name} with X", "it's {name} from X", "soy {name} con X",
            // "{name} here from X", "i'm {name}, a volunteer with X".
            r"\b(?:this is|it's|its|it is|i'm|im|i am|my name is|soy|me llamo|te saluda|le saluda|te escribe|le escribe|te habla|le habla|habla)\s+(?:\{name\}|[a-z]+)(?:\s*,?\s*(?:an?|un|una)\s+(?:volunteer|voluntari[oa]|organizer|organizador[a]?))?\s*,?\s+(?:with|from|at|for|of|on behalf of|w/|con|de|del|por)\s+(?P<n>[a-z0-9&'.\-{} ]{2,60})",
            r"(?:^|[\s,.!])(?:\{name\}|[a-z]+)\s+here\s+(?:with|from|at|for|of|con|de)\s+(?P<n>[a-z0-9&'.\-{} ]{2,60})",
            // "omar from X here".
            r"(?:^|[\s,.!])(?:\{name\}|[a-z]+)\s+(?:with|from|at|con|de)\s+(?P<n>[a-z0-9&'.\-{} ]{2,60}?)\s+here\b",
            // "{name} from X here", "{name} with X": a person's name (a slot)
            // introduced with an organization.
            r"\{name\}\s*,?\s+(?:with|from|at|con|de)\s+(?P<n>[a-z0-9&'.\-{} ]{2,60})",
            r"\b(?:volunteer|volunteers|organizer|voluntari[oa]s?)\s+(?:with|from|for|at|con|de)\s+(?P<n>[a-z0-9&'.\-{} ]{2,60})",
            // Political disclaimers.
            r"\b(?:paid for by|pd for by|pd\. for by|authorized by|approved by|sponsored by|pagado por)\s+(?P<n>[a-z0-9&'.\-{} ]{2,80})",
            // A brand prefix: "acme pharmacy: ...", "[acme] ...".
            r"^\[(?P<n>[a-z0-9][a-z0-9&' .\-]{1,48})\]\s",
            r"^(?P<n>[a-z0-9][a-z0-9&' .\-]{1,48}):\s",
            // "message from X", "reminder from X".
            r"\b(?:msg|message|text|alert|reminder|notice|update|mensaje|recordatorio)\s+(?:from|de)\s+(?P<n>(?:[a-su-z]|t[a-df-z0-9]|te[a-wyz0-9])[a-z0-9&' .\-]{1,40})",
            // A signature: "- acme pharmacy", "~the corner bistro".
            r"(?:^|[\s.!?])[-~\u{2013}\u{2014}]\s?(?P<n>[a-z][a-z0-9&'.]*(?:\s[a-z0-9&'.]+){0,4})\s*[.!]?\s*(?:$|(?:reply|txt|text|msg|stop|to\s+opt|unsub|responde)\b)",
            // "thanks, the acme team".
            r"\b(?:thanks|thank you|sincerely|regards|gracias),?\s+(?P<n>(?:the\s+)?[a-z][a-z0-9&'. ]{2,40}(?:team|staff|campaign|office|committee|pac|party|pharmacy|clinic|store|bank|equipo))\b",
        ]
        .iter()
        .map(|p| Regex::new(p).expect("static identity regex compiles"))
        .collect()
    })
}

/// The organization or brand a template names as its sender, normalized
/// (lowercase, single spaces, no leading "the"), or `None` when it names
/// none. A generic prefix ("Notice:", "Breaking:") is not a name.
pub fn of(template: &str) -> Option<String> {
    for re in patterns() {
        for caps in re.captures_iter(template) {
            let Some(m) = caps.name("n") else { continue };
            if let Some(name) = clean(m.as_str()) {
                if crate::features::is_generic_name(&name) {
                    continue;
                }
                return Some(name);
            }
        }
    }
    None
}

/// Cuts a captured name at the first word that starts the message again,
/// and normalizes it.
fn clean(raw: &str) -> Option<String> {
    let joined = join_spaced_letters(raw);
    let mut words: Vec<&str> = Vec::new();
    for w in joined.split(|c: char| c.is_whitespace()) {
        if w.is_empty() {
            continue;
        }
        if words.is_empty() && w.starts_with("{name}") {
            continue;
        }
        // A slot inside the name ("philly v{num}tes together"): digits
        // stood in for letters. It is kept, and matches what it could read.
        let bare = w.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '&' && c != '{' && c != '}');
        if bare.is_empty() || (STOP.contains(&bare) && !words.is_empty()) {
            break;
        }
        let ends = w.ends_with(['.', ',', '!', '?', ':', ';']) && !is_abbreviation(w);
        words.push(bare);
        if ends || words.len() == 5 {
            break;
        }
    }
    while words.first().is_some_and(|w| matches!(*w, "the" | "el" | "la" | "los" | "las")) {
        words.remove(0);
    }
    while words.last().is_some_and(|w| STOP.contains(w)) {
        words.pop();
    }
    let name = words.join(" ");
    (name.len() >= 2 && name.bytes().any(|b| b.is_ascii_alphabetic())).then_some(name)
}

/// "k e y s t o n e bank" -> "keystone bank": letters spaced out to dodge
/// filters are one word.
fn join_spaced_letters(raw: &str) -> String {
    let words: Vec<&str> = raw.split(' ').collect();
    let single = |w: &str| w.len() == 1 && w.bytes().all(|b| b.is_ascii_alphanumeric());
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < words.len() {
        let mut j = i;
        while j < words.len() && single(words[j]) {
            j += 1;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        if j - i >= 3 {
            out.extend(words[i..j].iter().copied());
            i = j;
        } else {
            out.push_str(words[i]);
            i += 1;
        }
    }
    out
}

fn is_abbreviation(w: &str) -> bool {
    matches!(w, "dr." | "st." | "inc." | "co." | "jr." | "sr." | "mr." | "ms." | "mrs.")
}

/// Whether two names conflict: both known and different. One that begins
/// with the other ("chase" and "chase fraud dept") is the same brand; a
/// slot in a name (`philly v{num}tes together`: digits for letters) matches
/// up to eight letters or digits of the other.
pub fn conflict(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => !same(x, y),
        _ => false,
    }
}

/// Whether two texts name the same sender, or neither names one.
pub fn compatible(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => same(x, y),
        (None, None) => true,
        _ => false,
    }
}

fn same(x: &str, y: &str) -> bool {
    let word_prefix = |long: &str, short: &str| long.strip_prefix(short).is_some_and(|rest| rest.starts_with(' '));
    x == y
        || word_prefix(x, y)
        || word_prefix(y, x)
        || slot_match(x.as_bytes(), y.as_bytes())
        || slot_match(y.as_bytes(), x.as_bytes())
}

/// Whether `pattern` (a name with `{slot}`s) matches `name`.
fn slot_match(pattern: &[u8], name: &[u8]) -> bool {
    if !pattern.contains(&b'{') {
        return pattern == name;
    }
    match pattern.iter().position(|&b| b == b'{') {
        Some(i) => {
            if name.len() < i || pattern[..i] != name[..i] {
                return false;
            }
            let Some(close) = pattern[i..].iter().position(|&b| b == b'}') else { return false };
            let rest = &pattern[i + close + 1..];
            (0..=8).any(|skip| {
                let at = i + skip;
                at <= name.len()
                    && name[i..at].iter().all(|b| b.is_ascii_alphanumeric())
                    && slot_match(rest, &name[at..])
            })
        }
        None => pattern == name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(body: &str) -> Option<String> {
        let mut s = crate::template::TemplateScratch::default();
        let mut t = String::new();
        crate::template::templatize(body, &mut s, &mut t);
        of(&t)
    }

    #[test]
    fn organizations_are_named() {
        let cases = [
            ("Hi Chris, this is Sarah with Philly Votes Together. Polls are open until 8pm", "philly votes together"),
            (
                "Hey Dana, it's Tom from the Smith for Senate campaign! Can we count on you?",
                "smith for senate campaign",
            ),
            ("Hola Juan, soy Ana con Mi Familia Vota. Las urnas cierran a las 8pm", "mi familia vota"),
            ("Hi Chris, Sarah here from Keystone Action - polls close at 8pm", "keystone action"),
            ("CVS Pharmacy: your prescription is ready for pickup", "cvs pharmacy"),
            ("[Chase] Your account has been locked", "chase"),
            ("Early voting starts Monday. Paid for by Friends of Jane Doe.", "friends of jane doe"),
            ("Your table is ready! ~The Corner Bistro. Reply STOP to opt out", "corner bistro"),
            ("Hi Chris, I'm Sarah, a volunteer with Vote Forward. Polls are open", "vote forward"),
            ("Chris, Sarah from Philly Votes Together here. Have you voted yet?", "philly votes together"),
            ("Chris, Omar from Keystone Action Fund here. Have you voted yet?", "keystone action fund"),
            ("Hola Juan, te escribe Daniel de Arizona Vota Unida. ¿Ya votaste?", "arizona vota unida"),
        ];
        for (body, want) in cases {
            assert_eq!(id(body).as_deref(), Some(want), "{body}");
        }
    }

    #[test]
    fn anonymous_texts_name_nobody() {
        for body in [
            "Radical Liberals & Dems are trying to STEAL this election! Show your support at 12th & Arch",
            "Notice: you have an unclaimed state tax refund. Submit your claim at tax-refunds.top/a",
            "Breaking: polls in Philadelphia will stay open late",
            "Hi Chris, is this still your number? I put the photos here",
            "hey whats up, dinner tonight?",
        ] {
            assert_eq!(id(body), None, "{body}");
        }
    }

    #[test]
    fn a_name_with_digits_for_letters_matches_its_reading() {
        let leet = id("Hola Juan, soy Ana con Mi Familia V0ta. Las urnas cierran a las 8pm");
        let plain = id("Hola Juan, soy Ana con Mi Familia Vota. Las urnas cierran a las 8pm");
        assert!(leet.as_deref().is_some_and(|n| n.contains('{')), "{leet:?}");
        assert!(!conflict(leet.as_deref(), plain.as_deref()));
        let other = id("Hola Juan, soy Ana con Arizona Vota Unida. Las urnas cierran a las 8pm");
        assert!(conflict(leet.as_deref(), other.as_deref()));
        let a = id("Hi Chris, this is Sarah with Philly V0t3s Together. Polls are open");
        let b = id("Hi Chris, this is Sarah with Philly Votes Together. Polls are open");
        assert!(!conflict(a.as_deref(), b.as_deref()), "{a:?} {b:?}");
    }

    #[test]
    fn a_brand_and_its_department_are_one_sender() {
        assert!(!conflict(Some("chase"), Some("chase fraud dept")));
        assert!(conflict(Some("chase"), Some("chasers club")));
        assert!(compatible(None, None));
        assert!(!compatible(Some("chase"), None));
    }

    #[test]
    fn spaced_out_names_are_read() {
        assert_eq!(
            id("K E Y S T O N E Bank Alert: a purchase was made on your card").as_deref(),
            Some("keystone bank alert")
        );
    }

    #[test]
    fn one_script_two_names_conflict() {
        let a = id("Hi Chris, this is Sarah with Philly Votes Together. Polls are open until 8pm today!");
        let b = id("Hi Chris, this is Sarah with Keystone Action. Polls are open until 8pm today!");
        assert!(conflict(a.as_deref(), b.as_deref()));
        assert!(!conflict(a.as_deref(), None));
    }
}
