//! Opt-out state: the keywords a recipient texts back (STOP, START, HELP)
//! and who is opted out of what.
//!
//! The keywords are the ones US carriers and the CTIA Messaging Principles
//! and Best Practices require a sender to honour, with the Spanish ones of
//! the CTIA short code handbook and the carriers' lists. As on the
//! carriers' own gateways, a keyword counts only as the whole text (any
//! case, surrounding spaces and a trailing `.` or `!` allowed): "STOP"
//! opts out, "please stop calling my mom" does not.
//!
//! An opt-out names a [`Scope`]: the number that was texted, or a campaign.
//! One STOP is recorded for the number and for every campaign it sends
//! for, and for each of those campaigns' numbers: rotating to a fresh
//! number does not reset the recipient's choice. [`Registry`] holds the
//! current state in memory; stores keep every change with its time and
//! source.

use std::collections::HashMap;

/// What a keyword asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Keyword {
    /// Stop all texts from this sender (STOP, UNSUBSCRIBE, ALTO...).
    Out,
    /// Start again (START, UNSTOP, YES).
    In,
    /// Ask who is texting and how to stop (HELP, INFO, AYUDA).
    Help,
}

impl Keyword {
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::Out => "out",
            Keyword::In => "in",
            Keyword::Help => "help",
        }
    }
}

/// Opt-out keywords: CTIA and the US carriers (STOP, STOPALL, UNSUBSCRIBE,
/// CANCEL, END, QUIT; REVOKE and OPTOUT since the FCC's 2025 consent
/// revocation rule), and the Spanish ones carriers honour.
pub const OPT_OUT: &[&str] = &[
    "STOP",
    "STOPALL",
    "STOP ALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
    "OPT-OUT",
    "OPT OUT",
    "ALTO",
    "PARAR",
    "DETENER",
    "CANCELAR",
];

/// Opt-in keywords (a recipient who opted out texts one to resume).
pub const OPT_IN: &[&str] = &["START", "UNSTOP", "YES"];

/// Help keywords: the sender must answer with who it is and how to stop.
pub const HELP: &[&str] = &["HELP", "INFO", "AYUDA"];

/// The keyword a whole inbound text is, if it is one.
pub fn keyword(body: &str) -> Option<(Keyword, &'static str)> {
    let t = body.trim().trim_end_matches(['.', '!']).trim();
    if t.len() > 12 {
        return None;
    }
    // Collapse inner runs of spaces ("STOP  ALL").
    let mut norm = String::with_capacity(t.len());
    for w in t.split_whitespace() {
        if !norm.is_empty() {
            norm.push(' ');
        }
        norm.push_str(w);
    }
    let norm = norm.to_uppercase();
    for (list, kind) in [(OPT_OUT, Keyword::Out), (OPT_IN, Keyword::In), (HELP, Keyword::Help)] {
        if let Some(k) = list.iter().find(|k| **k == norm) {
            return Some((kind, k));
        }
    }
    None
}

/// What an opt-out is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum Scope {
    /// One sending number (normalized, as the analyzer writes senders).
    Number(String),
    /// A campaign, by id.
    Campaign(String),
}

impl Scope {
    /// `number:+12155550100` or `campaign:9f2c...`, as stored.
    pub fn key(&self) -> String {
        match self {
            Scope::Number(n) => format!("number:{n}"),
            Scope::Campaign(c) => format!("campaign:{c}"),
        }
    }

    /// The inverse of [`Scope::key`].
    pub fn parse(key: &str) -> Option<Scope> {
        match key.split_once(':')? {
            ("number", n) if !n.is_empty() => Some(Scope::Number(n.to_string())),
            ("campaign", c) if !c.is_empty() => Some(Scope::Campaign(c.to_string())),
            _ => None,
        }
    }
}

/// One change of a recipient's state, as kept forever.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Change {
    /// When (ms since the epoch).
    pub at_ms: i64,
    /// The recipient's keyed hash (as [`crate::Analyzer::hash_recipient`]).
    #[serde(skip)]
    pub recipient: [u8; 16],
    pub scope: Scope,
    /// Opted out (`true`) or back in.
    pub out: bool,
    /// The keyword texted ("STOP", "ALTO", "START").
    pub keyword: String,
    /// Where it came from: `smpp:deliver_sm`, `twilio:inbound`, `api`.
    pub source: String,
    /// The number the recipient texted (the scope's origin).
    pub texted: String,
}

/// The current opt-outs, in memory: recipient -> scope -> the change that
/// opted them out.
#[derive(Default, Debug, Clone)]
pub struct Registry {
    by_recipient: HashMap<[u8; 16], HashMap<Scope, Change>>,
}

impl Registry {
    /// Applies changes in the order given (oldest first).
    pub fn apply<'a>(&mut self, changes: impl IntoIterator<Item = &'a Change>) {
        for c in changes {
            let scopes = self.by_recipient.entry(c.recipient).or_default();
            if c.out {
                scopes.insert(c.scope.clone(), c.clone());
            } else {
                scopes.remove(&c.scope);
                if scopes.is_empty() {
                    self.by_recipient.remove(&c.recipient);
                }
            }
        }
    }

    /// Recipients opted out of at least one scope.
    pub fn len(&self) -> usize {
        self.by_recipient.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_recipient.is_empty()
    }

    /// Every scope this recipient is opted out of.
    pub fn scopes_of(&self, recipient: &[u8; 16]) -> impl Iterator<Item = &Change> {
        self.by_recipient.get(recipient).into_iter().flat_map(|m| m.values())
    }

    /// The opt-out that forbids a text from `sender` (normalized) in
    /// `campaign` to `recipient`, if any. Both hashes of a recipient (the
    /// current key and, during a key rotation, the previous one) are
    /// asked.
    pub fn forbids(&self, recipients: &[Option<[u8; 16]>], sender: &str, campaign: Option<&str>) -> Option<&Change> {
        if self.by_recipient.is_empty() {
            return None;
        }
        for r in recipients.iter().flatten() {
            let Some(scopes) = self.by_recipient.get(r) else { continue };
            if let Some(c) = scopes.get(&Scope::Number(sender.to_string())) {
                return Some(c);
            }
            if let Some(c) = campaign.and_then(|id| scopes.get(&Scope::Campaign(id.to_string()))) {
                return Some(c);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_whole_texts_in_any_case() {
        assert_eq!(keyword("STOP"), Some((Keyword::Out, "STOP")));
        assert_eq!(keyword("  stop. "), Some((Keyword::Out, "STOP")));
        assert_eq!(keyword("Stop  all"), Some((Keyword::Out, "STOP ALL")));
        assert_eq!(keyword("alto!"), Some((Keyword::Out, "ALTO")));
        assert_eq!(keyword("Unstop"), Some((Keyword::In, "UNSTOP")));
        assert_eq!(keyword("ayuda"), Some((Keyword::Help, "AYUDA")));
        assert_eq!(keyword("please stop"), None);
        assert_eq!(keyword("Stop texting me, this is harassment"), None);
        assert_eq!(keyword("stopp"), None);
        assert_eq!(keyword(""), None);
    }

    fn change(r: u8, scope: Scope, out: bool) -> Change {
        Change {
            at_ms: 1,
            recipient: [r; 16],
            scope,
            out,
            keyword: if out { "STOP" } else { "START" }.into(),
            source: "test".into(),
            texted: "+12155550100".into(),
        }
    }

    #[test]
    fn registry_follows_the_last_change_per_scope() {
        let mut reg = Registry::default();
        let num = Scope::Number("+12155550100".into());
        let camp = Scope::Campaign("abc".into());
        reg.apply(&[change(1, num.clone(), true), change(1, camp.clone(), true)]);
        assert!(reg.forbids(&[Some([1; 16])], "+12155550100", None).is_some());
        assert!(reg.forbids(&[Some([1; 16])], "+12155550199", Some("abc")).is_some(), "campaign scope");
        assert!(reg.forbids(&[Some([1; 16])], "+12155550199", Some("xyz")).is_none());
        assert!(reg.forbids(&[Some([2; 16])], "+12155550100", Some("abc")).is_none(), "other recipient");
        assert!(reg.forbids(&[None, Some([1; 16])], "+12155550100", None).is_some(), "previous key");
        reg.apply(&[change(1, num.clone(), false)]);
        assert!(reg.forbids(&[Some([1; 16])], "+12155550100", None).is_none());
        assert!(reg.forbids(&[Some([1; 16])], "+12155550100", Some("abc")).is_some());
        reg.apply(&[change(1, camp, false)]);
        assert!(reg.is_empty());
    }

    #[test]
    fn scope_keys_round_trip() {
        for s in [Scope::Number("+1215".into()), Scope::Campaign("9f".into())] {
            assert_eq!(Scope::parse(&s.key()), Some(s));
        }
        assert_eq!(Scope::parse("number:"), None);
        assert_eq!(Scope::parse("nonsense"), None);
    }
}
