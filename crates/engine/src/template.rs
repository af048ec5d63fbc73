//! Templates: a folded message body with its variable parts replaced by
//! typed slots.
//!
//! Bulk senders personalize ("Hi Chris,"), rotate links and numbers, and
//! stamp codes into every copy. A template keeps what the copies share:
//! `hi {name}, your package {code} is held. pay {amount} at {url}`. Two
//! messages with the same template are copies of one text; templates that
//! are near each other are variants of one campaign (see [`crate::minhash`]).
//!
//! The **skeleton** of a template is what identity is computed from: only its
//! letters and digits, each slot as one byte. Spacing and punctuation tricks
//! ("V o t e", "vote!!!") therefore do not change it, and the **template
//! key** (xxh3 of the skeleton, fixed seed) is stable across runs and
//! versions of the binary that keep the same slot rules.
//!
//! Everything here works on the output of [`crate::fold`] and reuses the
//! caller's [`TemplateScratch`]: no allocation per message beyond the
//! template string the caller keeps.

use std::ops::Range;

use crate::fold::fold_into;

/// Seed for every persisted hash. Changing it changes every stored key.
pub const HASH_SEED: u64 = 0x7465_7874_7761_7463; // "textwatc"

/// A typed placeholder for a variable part of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// A link, with or without scheme (`https://...`, `usps-help.top/x`).
    Url,
    /// A link through a public URL shortener (`bit.ly/x`): kept apart from
    /// `{url}` because hiding the destination is itself a finding.
    ShortUrl,
    /// An e-mail address.
    Email,
    /// A phone number (NANP or international).
    Phone,
    /// A money amount (`$25`, `€9.99`).
    Amount,
    /// Any other number (dates, times, counts).
    Num,
    /// A token mixing letters and digits: tracking numbers, reference codes.
    Code,
    /// A personal name in a greeting or a self-introduction.
    Name,
}

impl Slot {
    /// Every slot, in code order.
    pub const ALL: [Slot; 7] = [Slot::Url, Slot::Email, Slot::Phone, Slot::Amount, Slot::Num, Slot::Code, Slot::Name];

    /// The marker written into template text.
    pub const fn marker(self) -> &'static str {
        match self {
            Slot::Url => "{url}",
            Slot::ShortUrl => "{shorturl}",
            Slot::Email => "{email}",
            Slot::Phone => "{phone}",
            Slot::Amount => "{amount}",
            Slot::Num => "{num}",
            Slot::Code => "{code}",
            Slot::Name => "{name}",
        }
    }

    /// The byte that stands for the slot in a skeleton (never a letter or
    /// digit, never valid UTF-8 on its own in a sequence of letters).
    pub const fn code(self) -> u8 {
        match self {
            Slot::Url => 0x01,
            Slot::Email => 0x02,
            Slot::Phone => 0x03,
            Slot::Amount => 0x04,
            Slot::Num => 0x05,
            Slot::Code => 0x06,
            Slot::Name => 0x07,
            Slot::ShortUrl => 0x08,
        }
    }

    fn from_marker_name(name: &str) -> Option<Slot> {
        Some(match name {
            "url" => Slot::Url,
            "email" => Slot::Email,
            "phone" => Slot::Phone,
            "amount" => Slot::Amount,
            "num" => Slot::Num,
            "code" => Slot::Code,
            "name" => Slot::Name,
            "shorturl" => Slot::ShortUrl,
            _ => return None,
        })
    }
}

/// A variable part found in the folded text: links, e-mail addresses and
/// phone numbers are kept (as byte ranges into the folded text) because
/// features are computed from them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    pub slot: Slot,
    pub range: Range<usize>,
}

/// Reusable buffers for templating; keep one per thread.
#[derive(Default, Debug)]
pub struct TemplateScratch {
    /// The folded body of the last message templated.
    pub folded: String,
    /// Links, e-mails and phones found in `folded`.
    pub spans: Vec<Span>,
    tokens: Vec<Tok>,
    names: Vec<bool>,
    skeleton: Vec<u8>,
    /// Skeleton length (in units) of the last template made.
    pub skeleton_units: usize,
}

/// A whitespace-separated token: `start..end` in the folded text, with its
/// leading and trailing punctuation split off (`core_start..core_end`).
#[derive(Clone, Copy, Debug, Default)]
struct Tok {
    start: usize,
    core_start: usize,
    core_end: usize,
    end: usize,
}

impl Tok {
    fn new(text: &str, start: usize, end: usize) -> Tok {
        let b = &text.as_bytes()[start..end];
        let mut s = 0;
        while s < b.len() && LEAD_PUNCT.contains(&b[s]) {
            s += 1;
        }
        let mut e = b.len();
        while e > s && TRAIL_PUNCT.contains(&b[e - 1]) {
            e -= 1;
        }
        Tok { start, core_start: start + s, core_end: start + e, end }
    }
    fn core<'a>(&self, text: &'a str) -> &'a str {
        &text[self.core_start..self.core_end]
    }
    fn trail<'a>(&self, text: &'a str) -> &'a str {
        &text[self.core_end..self.end]
    }
    fn lead<'a>(&self, text: &'a str) -> &'a str {
        &text[self.start..self.core_start]
    }
    fn raw<'a>(&self, text: &'a str) -> &'a str {
        &text[self.start..self.end]
    }
}

/// Folds `body` and writes its template into `out` (cleared first). Spans of
/// links, e-mails and phone numbers in the folded text are left in
/// `scratch.spans`. Returns the template key.
pub fn templatize(body: &str, scratch: &mut TemplateScratch, out: &mut String) -> u64 {
    fold_into(body, &mut scratch.folded);
    out.clear();
    scratch.spans.clear();
    scratch.tokens.clear();
    let text = scratch.folded.as_str();
    let mut start = None;
    for (i, b) in text.bytes().enumerate() {
        if b == b' ' {
            if let Some(s) = start.take() {
                scratch.tokens.push(Tok::new(text, s, i));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        scratch.tokens.push(Tok::new(text, s, text.len()));
    }
    mark_names(text, &scratch.tokens, &mut scratch.names);

    let toks = &scratch.tokens;
    let mut i = 0;
    while i < toks.len() {
        if !out.is_empty() {
            out.push(' ');
        }
        if scratch.names[i] {
            let mut j = i;
            while j + 1 < toks.len() && scratch.names[j + 1] {
                j += 1;
            }
            out.push_str(Slot::Name.marker());
            out.push_str(toks[j].trail(text));
            i = j + 1;
            continue;
        }
        if let Some((end_tok, trail)) = phone_run(text, toks, i) {
            let range = toks[i].start..toks[end_tok].end - trail.len();
            scratch.spans.push(Span { slot: Slot::Phone, range });
            out.push_str(Slot::Phone.marker());
            out.push_str(trail);
            i = end_tok + 1;
            continue;
        }
        // A link written across several words.
        if let Some((end_tok, slot)) = spaced_link(text, toks, i).or_else(|| separated_host(text, toks, i)) {
            let (first, last) = (toks[i], toks[end_tok]);
            out.push_str(first.lead(text));
            scratch.spans.push(Span { slot, range: first.core_start..last.core_end });
            out.push_str(slot.marker());
            out.push_str(last.trail(text));
            i = end_tok + 1;
            continue;
        }
        let tok = toks[i];
        let (core, trail, core_start) = (tok.core(text), tok.trail(text), tok.core_start);
        out.push_str(tok.lead(text));
        if is_email(core) {
            scratch.spans.push(Span { slot: Slot::Email, range: core_start..core_start + core.len() });
            out.push_str(Slot::Email.marker());
        } else if let Some(link) = as_link(core) {
            let slot = link_slot(host_of(&link));
            scratch.spans.push(Span { slot, range: core_start..core_start + core.len() });
            out.push_str(slot.marker());
        } else if is_amount(core) {
            out.push_str(Slot::Amount.marker());
        } else {
            push_word(core, out);
        }
        out.push_str(trail);
        i += 1;
    }
    let key = template_key(out, &mut scratch.skeleton);
    scratch.skeleton_units = skeleton_len(&scratch.skeleton);
    key
}

/// The key of a template string: xxh3 of its skeleton. `buf` is scratch.
pub fn template_key(template: &str, buf: &mut Vec<u8>) -> u64 {
    skeleton_into(template, buf);
    xxhash_rust::xxh3::xxh3_64_with_seed(buf, HASH_SEED)
}

/// Writes the skeleton of `template` into `out`: letters and digits as UTF-8,
/// each slot marker as its one-byte code, everything else dropped.
pub fn skeleton_into(template: &str, out: &mut Vec<u8>) {
    out.clear();
    let bytes = template.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'{' {
            if let Some(close) = template[i + 1..].find('}') {
                if let Some(slot) = Slot::from_marker_name(&template[i + 1..i + 1 + close]) {
                    out.push(slot.code());
                    i += close + 2;
                    continue;
                }
            }
            i += 1;
        } else if b.is_ascii() {
            if b.is_ascii_alphanumeric() {
                out.push(b);
            }
            i += 1;
        } else {
            let c = template[i..].chars().next().unwrap_or(' ');
            let len = c.len_utf8();
            if c.is_alphanumeric() {
                out.extend_from_slice(&bytes[i..i + len]);
            }
            i += len;
        }
    }
}

/// Number of skeleton units (slots count as one, multi-byte letters as one).
pub fn skeleton_len(skeleton: &[u8]) -> usize {
    skeleton.iter().filter(|&&b| (b & 0xC0) != 0x80).count()
}

const LEAD_PUNCT: &[u8] = b"([<\"'*_~";
const TRAIL_PUNCT: &[u8] = b".,;:!?)]>\"'*_~";

const GREETINGS: &[&str] = &[
    "hi",
    "hey",
    "hello",
    "hiya",
    "heya",
    "dear",
    "hola",
    "greetings",
    "yo",
    "howdy",
    "morning",
    "evening",
    "afternoon",
    "buenos",
    "buenas",
    "attn",
    "attention",
];
const SELF_INTRO_CONNECTORS: &[&str] = &[
    "with",
    "from",
    "at",
    "here",
    "and",
    "of",
    "for",
    "on",
    "volunteering",
    "w",
    "w/",
    "con",
    "de",
    "del",
    "y",
    "calling",
    "texting",
    "reaching",
];

fn is_letters(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_alphabetic() || c == '\'' || c == '-')
}

/// Marks tokens that are personal names: the name after a greeting ("hi
/// chris,"), in a self-introduction ("this is sarah with ..."), or a leading
/// "maria, ...". Names vary per copy in peer-to-peer campaigns, so they
/// become `{name}`.
fn mark_names(text: &str, toks: &[Tok], names: &mut Vec<bool>) {
    names.clear();
    names.resize(toks.len(), false);
    let n = toks.len();
    if n < 2 {
        return;
    }
    let core = |i: usize| toks[i].core(text);
    let trail = |i: usize| toks[i].trail(text);
    let ends_clause = |i: usize| {
        let t = trail(i);
        t.contains(',') || t.contains('!') || t.contains(':') || t.contains('.')
    };
    let is_connector = |i: usize| i < n && SELF_INTRO_CONNECTORS.contains(&core(i));
    let is_dash = |i: usize| i < n && matches!(core(i), "" | "-" | "--" | "\u{2014}" | "\u{2013}");
    let starts_intro = |i: usize| {
        i < n
            && (matches!(core(i), "this" | "it's" | "its" | "im" | "i'm" | "soy" | "es")
                || (core(i) == "it" && i + 1 < n && core(i + 1) == "is"))
    };

    // Greeting at the start: "hi chris," / "hey maria -" / "hi chris this is".
    let mut g = 0;
    if GREETINGS.contains(&core(0)) && !ends_clause(0) {
        g = 1;
        if matches!(core(0), "good" | "buenos" | "buenas") && n > 1 {
            g = 2;
        }
    } else if core(0) == "good" && n > 2 && matches!(core(1), "morning" | "afternoon" | "evening") && !ends_clause(1) {
        g = 2;
    }
    if g > 0 && g < n && is_letters(core(g)) && !starts_intro(g) && core(g) != "there" {
        if ends_clause(g) || is_dash(g + 1) || starts_intro(g + 1) {
            names[g] = true;
        } else if g + 1 < n && is_letters(core(g + 1)) && (ends_clause(g + 1) || is_dash(g + 2) || starts_intro(g + 2))
        {
            names[g] = true;
            names[g + 1] = true;
        }
    }

    // Self-introductions anywhere: "this is sarah (jones) with ...".
    let mut i = 0;
    while i + 2 < n {
        let intro_len = match (core(i), core(i + 1)) {
            ("this", "is") | ("it", "is") | ("my", "name") => 2,
            ("it's" | "its" | "im" | "i'm" | "soy", _) => 1,
            ("me", "llamo") => 2,
            _ => 0,
        };
        let mut k = i + intro_len;
        if core(i) == "my" && k < n && core(k) == "is" {
            k += 1;
        }
        if intro_len > 0
            && k < n
            && is_letters(core(k))
            && !matches!(
                core(k),
                "a" | "an"
                    | "the"
                    | "your"
                    | "our"
                    | "not"
                    | "about"
                    | "to"
                    | "just"
                    | "only"
                    | "important"
                    | "urgent"
                    | "my"
            )
        {
            if is_connector(k + 1) || (ends_clause(k) && intro_len > 0) {
                names[k] = true;
            } else if k + 1 < n && is_letters(core(k + 1)) && !ends_clause(k) && is_connector(k + 2) {
                names[k] = true;
                names[k + 1] = true;
            }
        }
        i += 1;
    }

    // A bare leading name: "maria, polls close at 8".
    if g == 0 && n > 3 && is_letters(core(0)) && trail(0).starts_with(',') && !names[0] {
        names[0] = true;
    }
}

/// If tokens starting at `i` form a phone number, returns the last token
/// index of the run and the trailing punctuation of that token.
fn phone_run<'a>(text: &'a str, toks: &[Tok], i: usize) -> Option<(usize, &'a str)> {
    let first = toks[i].raw(text);
    if !first.as_bytes().first().is_some_and(|&b| b.is_ascii_digit() || b == b'(' || b == b'+') {
        return None;
    }
    let mut digits = 0usize;
    let mut best: Option<(usize, &str)> = None;
    let plus = first.starts_with('+');
    let mut first_digit = None;
    for (j, t) in toks.iter().enumerate().skip(i).take(5) {
        let raw = t.raw(text);
        let trimmed = raw.trim_end_matches([',', ';', ':', '!', '?', '.']);
        let trail = &raw[trimmed.len()..];
        if trimmed.is_empty()
            || !trimmed.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'(' | b')' | b'+' | b'-' | b'.'))
        {
            break;
        }
        if j > i && trimmed.contains('+') {
            break;
        }
        for b in trimmed.bytes().filter(u8::is_ascii_digit) {
            if first_digit.is_none() {
                first_digit = Some(b);
            }
            digits += 1;
        }
        let seps = j > i || trimmed.bytes().any(|b| matches!(b, b'-' | b'.' | b'(' | b')'));
        let ok = if plus {
            (8..=15).contains(&digits)
        } else {
            // NANP with or without its country code 1; a national number
            // with its trunk prefix 0 (UK 0871 873 0666, 020 7946 0958).
            digits == 10
                || (digits == 11 && matches!(first_digit, Some(b'1' | b'0')))
                || (digits == 7 && seps && trimmed.len() >= 8)
        };
        if ok {
            best = Some((j, trail));
        }
        if digits > 15 || !trail.is_empty() {
            break;
        }
    }
    best
}

/// A link: with scheme, `www.`, or a bare host whose suffix is a known
/// public suffix (`usps-track.info/x`, `bit.ly/abc`).
pub fn is_url(core: &str) -> bool {
    if core.len() < 4 || !core.as_bytes().contains(&b'.') {
        return false;
    }
    if let Some(r) = core.strip_prefix("https://").or_else(|| core.strip_prefix("http://")) {
        return r.len() > 1;
    }
    if let Some(r) = core.strip_prefix("www.") {
        return r.len() > 2 && r.contains('.');
    }
    looks_like_domain(host_of(core))
}

/// A link broken up by spaces around a dot, `bit . ly/3xyz`, `sms. ac/rewards`,
/// `bit .ly/x`, starting at token `i`: the last token and the link's slot.
/// Only when the joined text is a link with a path (`/`) right after its
/// host, so that a sentence ending before a word that is also a top-level
/// domain ("the end. it was fun") is not read as one.
fn spaced_link(text: &str, toks: &[Tok], i: usize) -> Option<(usize, Slot)> {
    let first = toks[i].raw(text);
    // A path may only follow the joined host, but a scheme may lead it
    // ("https://usps-id0 . click/x").
    let after_scheme = first.split_once("://").map_or(first, |(_, rest)| rest);
    if after_scheme.contains('/') || first.starts_with('.') {
        return None;
    }
    // Cheap refusals first (this runs for every token of every message):
    // the next token must meet this one at a dot, and a path must follow.
    let next = toks.get(i + 1)?.raw(text);
    if !(first.ends_with('.') || next.starts_with('.')) {
        return None;
    }
    if !(next.contains('/') || next == "." && toks.get(i + 2).is_some_and(|t| t.raw(text).contains('/'))) {
        return None;
    }
    // "today. bit.ly/x": the next token is a link by itself.
    if is_url(toks[i + 1].core(text)) {
        return None;
    }
    let mut joined = String::new();
    for (j, t) in toks.iter().enumerate().skip(i).take(3) {
        let raw = if j == i { &text[toks[i].core_start..t.end] } else { t.raw(text) };
        // Tokens meet at a dot: the left one ends with it, the right one
        // starts with it, or it stands alone.
        if j > i && !(joined.ends_with('.') || raw.starts_with('.')) {
            return None;
        }
        joined.push_str(raw);
        if j == i {
            continue;
        }
        let core = joined.trim_end_matches(|c: char| c.is_ascii() && TRAIL_PUNCT.contains(&(c as u8)));
        let host = host_of(core);
        let Some(path) = core.find(host).map(|at| &core[at + host.len()..]) else { continue };
        if !path.starts_with('/') || !is_url(core) {
            continue;
        }
        // Chat has "fun. me/you": a broken-up link is one to a shortener, or
        // one whose scheme or www. is written, or whose path holds a digit
        // (a tracking id).
        let slot = link_slot(host);
        let marked = core.contains("://") || host.starts_with("www.");
        if slot == Slot::ShortUrl || marked || (path.len() >= 4 && path.bytes().any(|b| b.is_ascii_digit())) {
            return Some((j, slot));
        }
    }
    None
}

/// Top-level domains common enough in links sent by text that "name . com"
/// with nothing after it is read as a host. Two-letter country codes are
/// left out: "it", "me", "so", "to", "us", "in" are words.
const SPACED_TLDS: &[&str] = &[
    "com", "net", "org", "info", "biz", "top", "xyz", "click", "online", "site", "live", "shop", "link", "store",
    "app", "icu", "vip", "club", "gov", "edu",
];

/// A host written as separate words around its last dot, with nothing to
/// mark it but the dot: "usps . com", "website (dot) com",
/// "chase-secure [.] info/x", starting at token `i`: the last token and the
/// slot. A spelled-out dot (`(dot)`, `[dot]`, `[.]`, `(.)`) marks a link
/// for any known suffix; a bare " . " only before a common top-level
/// domain ([`SPACED_TLDS`]), since "the end . it was" is a sentence.
fn separated_host(text: &str, toks: &[Tok], i: usize) -> Option<(usize, Slot)> {
    // Cheap refusal first: the next token is a dot standing alone.
    let dot = toks.get(i + 1)?.raw(text);
    let spelled = matches!(dot, "(dot)" | "[dot]" | "[.]" | "(.)");
    if !(spelled || dot == ".") {
        return None;
    }
    let left = toks[i].core(text);
    let right = toks.get(i + 2)?.core(text);
    let label = left.split_once("://").map_or(left, |(_, rest)| rest);
    if label.is_empty()
        || !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        || !label.bytes().any(|b| b.is_ascii_alphabetic())
        || !toks[i].trail(text).is_empty()
    {
        return None;
    }
    let joined = format!("{left}.{right}");
    let host = host_of(&joined);
    if !is_url(&joined) || !looks_like_domain(host) {
        return None;
    }
    let tld = host.rsplit('.').next().unwrap_or("");
    if !spelled && !SPACED_TLDS.contains(&tld) {
        return None;
    }
    Some((i + 2, link_slot(host)))
}

/// The slot of a link to `host`: `{shorturl}` through a public shortener.
fn link_slot(host: &str) -> Slot {
    if crate::shorteners::is_shortener(host.trim_start_matches("www.")) {
        Slot::ShortUrl
    } else {
        Slot::Url
    }
}

/// `core` as a link, defanged links written plainly; `None` if it is none.
fn as_link(core: &str) -> Option<std::borrow::Cow<'_, str>> {
    if is_url(core) {
        return Some(std::borrow::Cow::Borrowed(core));
    }
    refang(core).filter(|r| is_url(r)).map(std::borrow::Cow::Owned)
}

/// A "defanged" link written plainly: `usps-redeliver[.]top`,
/// `bit(.)ly/x`, `paypal[dot]com`, `hxxps://...`, `bit . ly/x` (senders write links so to
/// get past link filters; the folded text has `(` for `{`). `None` when
/// there is nothing to undo.
pub fn refang(core: &str) -> Option<String> {
    const DOTS: [&str; 4] = ["[.]", "(.)", "[dot]", "(dot)"];
    let scheme = core.starts_with("hxxp://") || core.starts_with("hxxps://");
    // Most words have none of these bytes: one scan refuses them.
    if !scheme && !core.bytes().any(|b| matches!(b, b'[' | b'(' | b' ')) {
        return None;
    }
    if !scheme && !core.contains(' ') && !DOTS.iter().any(|d| core.contains(d)) {
        return None;
    }
    let mut s = if scheme { core.replacen("hxxp", "http", 1) } else { core.to_owned() };
    for d in DOTS {
        s = s.replace(d, ".");
    }
    s.retain(|c| c != ' ');
    Some(s)
}

/// The host part of a link without scheme: up to the first `/`, `?`, `#`, `:`.
pub fn host_of(link: &str) -> &str {
    let s = link.strip_prefix("https://").or_else(|| link.strip_prefix("http://")).unwrap_or(link);
    let s = s.rsplit_once('@').map_or(s, |(_, h)| h);
    let end = s.find(['/', '?', '#', ':']).unwrap_or(s.len());
    &s[..end]
}

fn looks_like_domain(host: &str) -> bool {
    if host.len() < 4 || !host.contains('.') || host.starts_with('.') || host.ends_with('.') {
        return false;
    }
    if !host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') || host.contains("..") {
        return false;
    }
    let tld = host.rsplit('.').next().unwrap_or("");
    if tld.len() < 2 || !tld.bytes().all(|b| b.is_ascii_alphabetic()) {
        return false;
    }
    match psl::suffix(host.as_bytes()) {
        Some(s) if s.is_known() => psl::domain(host.as_bytes()).is_some(),
        _ => false,
    }
}

fn is_email(core: &str) -> bool {
    if !core.as_bytes().contains(&b'@') {
        return false;
    }
    match core.split_once('@') {
        Some((user, domain)) => {
            !user.is_empty()
                && user.bytes().all(|b| b.is_ascii_alphanumeric() || b"._%+-".contains(&b))
                && looks_like_domain(domain)
        }
        None => false,
    }
}

fn is_amount(core: &str) -> bool {
    let b = core.as_bytes();
    if !b.iter().any(u8::is_ascii_digit) {
        return false;
    }
    let starts = core.starts_with('$') || core.starts_with('£') || core.starts_with('€') || core.starts_with('¥');
    let body = if starts {
        core.char_indices().nth(1).map_or("", |(i, _)| &core[i..])
    } else {
        let t = core.trim_end_matches(['$', '£', '€', '¥']);
        if t.len() == core.len() {
            // "25usd", "100dollars"
            let t2 = core.trim_end_matches("usd").trim_end_matches("dollars");
            if t2.len() == core.len() || t2.is_empty() {
                return false;
            }
            t2
        } else {
            t
        }
    };
    !b.is_empty()
        && body.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && body.trim_end_matches(['k', 'm']).bytes().all(|c| c.is_ascii_digit() || c == b',' || c == b'.')
}

/// Writes a word, turning digit runs into `{num}` and letter-digit codes into
/// `{code}`.
fn push_word(core: &str, out: &mut String) {
    let bytes = core.as_bytes();
    let digits = bytes.iter().filter(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        out.push_str(core);
        return;
    }
    let letters = core.chars().filter(|c| c.is_alphabetic()).count();
    let mut runs = 0;
    let mut in_run = false;
    for &b in bytes {
        let d = b.is_ascii_digit();
        if d && !in_run {
            runs += 1;
        }
        in_run = d;
    }
    if letters > 0 && (runs >= 2 || (core.len() >= 8 && digits >= 3)) {
        out.push_str(Slot::Code.marker());
        return;
    }
    // Replace each run of digits (with , . : / - between digits) by {num}.
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let mut j = i + 1;
            while j < bytes.len()
                && (bytes[j].is_ascii_digit()
                    || (matches!(bytes[j], b',' | b'.' | b':' | b'/' | b'-')
                        && j + 1 < bytes.len()
                        && bytes[j + 1].is_ascii_digit()))
            {
                j += 1;
            }
            out.push_str(Slot::Num.marker());
            i = j;
        } else {
            let c = core[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(body: &str) -> String {
        let mut s = TemplateScratch::default();
        let mut out = String::new();
        templatize(body, &mut s, &mut out);
        out
    }

    fn key(body: &str) -> u64 {
        let mut s = TemplateScratch::default();
        let mut out = String::new();
        templatize(body, &mut s, &mut out)
    }

    #[test]
    fn defanged_links_are_links() {
        assert_eq!(t("update at usps-redeliver[.]top/track now"), "update at {url} now");
        assert_eq!(t("go to hxxps://paypal(.)com-secure(.)info/x"), "go to {url}");
        assert_eq!(t("tap bit[.]ly/3xYz"), "tap {shorturl}");
        assert_eq!(t("see amazon[dot]com"), "see {url}");
        assert_eq!(refang("plain.com"), None);
        assert_eq!(t("options [.] and (.) alone"), "options [.] and (.) alone");
        assert_eq!(t("verify at bit . ly/2xchase now"), "verify at {shorturl} now");
        assert_eq!(t("visit sms. ac/r/2231 to end"), "visit {url} to end");
        assert_eq!(t("pay at https://usps-id0 . click/zbzad today"), "pay at {url} today", "a scheme may lead");
        assert_eq!(t("see x.com/a . b/c"), "see {url} . b/c", "a path may not");
        assert_eq!(t("go to usps . com to track"), "go to {url} to track");
        assert_eq!(t("visit website (dot) com or usps [dot] com/track."), "visit {url} or {url}.");
        assert_eq!(t("log in at chase-secure [.] info/x now"), "log in at {url} now");
        assert_eq!(t("bit (dot) ly/abc"), "{shorturl}");
        // Sentences with a spaced dot stay words.
        assert_eq!(t("the end . it was fun"), "the end . it was fun");
        assert_eq!(t("that's all . me too"), "that's all . me too");
        assert_eq!(t("i paid 5 . com is weird"), "i paid {num} . com is weird");
        assert_eq!(t("visit sms. ac/smsrewards to end"), "visit sms. ac/smsrewards to end");
        assert_eq!(t("go to bit .ly/x."), "go to {shorturl}.");
        assert_eq!(t("3pm today. bit.ly/3xyz"), "{num}pm today. {shorturl}");
        assert_eq!(t("that's the end. it was fun. me/you"), "that's the end. it was fun. me/you");
        assert!(!t("i'm done. com/on").contains("{url}"));
    }

    #[test]
    fn links_become_url_slots() {
        assert_eq!(t("Track it: https://usps.com-track.info/a1B2"), "track it: {url}");
        assert_eq!(t("go to bit.ly/3xYz. now"), "go to {shorturl}. now");
        assert_eq!(t("visit www.vote.org today"), "visit {url} today");
        assert_eq!(t("see usps-redelivery.top/pkg?id=9"), "see {url}");
    }

    #[test]
    fn abbreviations_are_not_links() {
        assert_eq!(t("the U.S. election, e.g. today at 3 p.m."), "the u.s. election, e.g. today at {num} p.m.");
    }

    #[test]
    fn emails_and_phones_become_slots() {
        assert_eq!(t("write help@acme-pharmacy.com or call (215) 555-0123."), "write {email} or call {phone}.");
        assert_eq!(t("call 1-800-555-0199 now"), "call {phone} now");
        assert_eq!(t("call +44 20 7946 0958"), "call {phone}");
        assert_eq!(t("call 215.555.0123!"), "call {phone}!");
        assert_eq!(t("call 08718730666 or 0800 542 0578 (10p/min)"), "call {phone} or {phone} ({num}p/min)");
    }

    #[test]
    fn amounts_numbers_and_codes() {
        assert_eq!(t("Pay $1,250.00 fee"), "pay {amount} fee");
        assert_eq!(t("WIN £250 cash or €1.000"), "win {amount} cash or {amount}");
        assert_eq!(t("Vote on 11/3 at 3pm, 2nd floor"), "vote on {num} at {num}pm, {num}nd floor");
        assert_eq!(t("package 1Z999AA10123456784 held"), "package {code} held");
        assert_eq!(t("your code is 482913"), "your code is {num}");
    }

    #[test]
    fn greeting_names_become_slots() {
        assert_eq!(t("Hi Chris, polls are open"), "hi {name}, polls are open");
        assert_eq!(t("Hey Maria - polls are open"), "hey {name} - polls are open");
        assert_eq!(t("Hi Mary Ann! polls are open"), "hi {name}! polls are open");
        assert_eq!(t("Hi Chris this is Sarah with Vote Forward"), "hi {name} this is {name} with vote forward");
        assert_eq!(t("Good morning Dave, it's Ana from Acme"), "good morning {name}, it's {name} from acme");
        assert_eq!(t("Hola Juan, soy Ana con Mi Familia Vota"), "hola {name}, soy {name} con mi familia vota");
    }

    #[test]
    fn copies_that_differ_by_personalization_share_a_key() {
        let a =
            key("Hi Chris, this is Sarah with Vote Forward. Polls close at 8pm! Find yours: https://iwillvote.com/a1");
        let b = key(
            "Hey Maria - this is Tom with Vote Forward. Polls close at 8pm!! Find yours: https://iwillvote.com/zz9Q",
        );
        let c =
            key("hi   JAMES,   this is Dana Lee with Vote Forward.  Polls close at 8PM. Find yours: iwillvote.com/q");
        // greeting word differs in b ("hey"), so compare a and c exactly.
        assert_eq!(a, c);
        assert_ne!(a, b);
    }

    #[test]
    fn spacing_and_punctuation_do_not_change_the_key() {
        assert_eq!(key("Vote today!"), key("V o t e   t o d a y"));
        assert_eq!(key("Vote today!!!"), key("vote... today"));
    }

    #[test]
    fn homoglyph_copies_share_a_key() {
        assert_eq!(
            key("They are trying to STEAL the election"),
            key("Th\u{0435}y \u{0430}re trying to ＳＴＥＡＬ the el\u{200B}ection 🇺🇸")
        );
    }

    #[test]
    fn spans_point_into_folded_text() {
        let mut s = TemplateScratch::default();
        let mut out = String::new();
        templatize("Go to HTTPS://Evil.example.com/x now or mail a@b.com", &mut s, &mut out);
        let urls: Vec<&str> = s.spans.iter().map(|sp| &s.folded[sp.range.clone()]).collect();
        assert_eq!(urls, vec!["https://evil.example.com/x", "a@b.com"]);
    }

    #[test]
    fn skeleton_counts_slots_as_one() {
        let mut buf = Vec::new();
        skeleton_into("hi {name}, go {url}!", &mut buf);
        assert_eq!(buf, b"hi\x07go\x01");
        assert_eq!(skeleton_len(&buf), 6);
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use crate::fold::{fold_into, fold_with_offsets};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any text, including every trick's characters, templates without
        /// panicking, and the same text always gives the same key.
        #[test]
        fn templatize_never_panics(s in "\\PC{0,200}") {
            let mut sc = TemplateScratch::default();
            let mut out = String::new();
            let k1 = templatize(&s, &mut sc, &mut out);
            let k2 = templatize(&s, &mut TemplateScratch::default(), &mut String::new());
            prop_assert_eq!(k1, k2);
            for sp in &sc.spans {
                prop_assert!(sc.folded.get(sp.range.clone()).is_some());
            }
        }

        #[test]
        fn templatize_never_panics_on_evasion_alphabet(
            s in "[a-zA-Z0-9 .,:/@$#()+\\-\u{200B}\u{200D}\u{FEFF}\u{0430}\u{0435}\u{043E}\u{FF21}-\u{FF3A}\u{1D400}-\u{1D433}\u{1F600}-\u{1F64F}\u{0301}]{0,120}"
        ) {
            let mut sc = TemplateScratch::default();
            let mut out = String::new();
            templatize(&s, &mut sc, &mut out);
        }

        /// Folding twice changes nothing, and the offsets variant folds the
        /// same way and maps every folded byte to a character of the input.
        #[test]
        fn folding_is_idempotent_and_offsets_are_sound(s in "\\PC{0,200}") {
            let mut once = String::new();
            fold_into(&s, &mut once);
            let mut twice = String::new();
            fold_into(&once, &mut twice);
            prop_assert_eq!(&once, &twice);
            let (mut o, mut off) = (String::new(), Vec::new());
            fold_with_offsets(&s, &mut o, &mut off);
            prop_assert_eq!(&o, &once);
            prop_assert_eq!(off.len(), o.len());
            for &b in &off {
                prop_assert!(s.is_char_boundary(b as usize));
            }
        }
    }
}
