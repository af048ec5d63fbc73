//! A text's category and subcategory: the one a rule settles
//! (`implies_category`), else the category model's; the subcategory from
//! that category's own subcategory model. The engine (for
//! campaign templates), `check` and the API (for single messages) all
//! decide here, so they give one text the same answer.

use crate::classify::Model;
use crate::rules::{Finding, RuleSet};

/// The category models built into a release: the top-level one and one
/// subcategory model per category that has several (labels
/// `category/subcategory`, trained on that category's texts only).
#[derive(Clone, Debug, PartialEq)]
pub struct Categorizer {
    pub top: Model,
    pub subs: Vec<Model>,
}

/// What [`Categorizer::categorize`] says of a text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Categorized<'a> {
    pub category: &'a str,
    pub subcategory: Option<&'a str>,
    /// The rule that settled the category, when one did.
    pub rule: Option<&'a str>,
}

/// Errors reading the subcategory models.
#[derive(Debug, thiserror::Error)]
pub enum SubsError {
    #[error("not a textwatch subcategory file (bad magic); rebuild it with `textwatch train`")]
    Magic,
    #[error("subcategory file is truncated")]
    Truncated,
    #[error("subcategory model {0}: {1}")]
    Model(usize, crate::classify::ModelError),
}

/// Serializes subcategory models: magic `TWSUBS01`, their count (u32 LE),
/// then each model's length (u32 LE) and bytes.
pub fn subs_to_bytes(subs: &[Model]) -> Vec<u8> {
    let mut out = b"TWSUBS01".to_vec();
    out.extend_from_slice(&(subs.len() as u32).to_le_bytes());
    for m in subs {
        let b = m.to_bytes();
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(&b);
    }
    out
}

/// Reads what [`subs_to_bytes`] wrote.
pub fn subs_from_bytes(b: &[u8]) -> Result<Vec<Model>, SubsError> {
    if b.len() < 12 || &b[..8] != b"TWSUBS01" {
        return Err(SubsError::Magic);
    }
    let n = u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize;
    let mut at = 12;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let len = b.get(at..at + 4).ok_or(SubsError::Truncated)?;
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        at += 4;
        let body = b.get(at..at + len).ok_or(SubsError::Truncated)?;
        out.push(Model::from_bytes(body).map_err(|e| SubsError::Model(i, e))?);
        at += len;
    }
    Ok(out)
}

impl Categorizer {
    /// The category of a text with `findings` (see the module docs).
    pub fn categorize<'a>(
        &'a self,
        rules: &'a RuleSet,
        findings: &[Finding],
        template: &str,
        body: &str,
    ) -> Categorized<'a> {
        let (mut category, rule) = rules.category(findings, &self.top, template, body);
        // Persuasion and urgency alone do not make a text a scam: a
        // political money ask ("FINAL NOTICE: your membership expires
        // tonight, renew now") reads like one to a model trained on spam.
        // Without a phishing finding, a text that names a party, a
        // campaign or an election is political.
        if rule.is_none()
            && category == "scam"
            && !findings.iter().any(|f| f.rule == "smishing-link")
            && political_re().is_match(template)
        {
            category = "political";
        }
        let subcategory = self.subcategory(category, template, body);
        Categorized { category, subcategory, rule }
    }

    /// The subcategory of a text in `category`: the category's own model's
    /// answer, or its only subcategory.
    fn subcategory(&self, category: &str, template: &str, body: &str) -> Option<&'static str> {
        let mut own = crate::taxonomy::SUBCATEGORIES.iter().filter(|(c, _, _)| *c == category);
        let first = own.next()?;
        if own.next().is_none() {
            return Some(first.1);
        }
        let m = self.subs.iter().find(|m| m.labels.first().is_some_and(|l| l.split('/').next() == Some(category)))?;
        thread_local! {
            static FOLDED: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        let best = FOLDED.with(|f| {
            let mut folded = f.borrow_mut();
            crate::fold::fold_into(body, &mut folded);
            m.classify(template, &folded, body).0
        });
        let (_, sub) = m.labels.get(best)?.split_once('/')?;
        crate::taxonomy::SUBCATEGORIES.iter().find(|(c, s, _)| *c == category && *s == sub).map(|(_, s, _)| *s)
    }

    /// Index of a category among the top model's labels.
    pub fn category_index(&self, category: &str) -> Option<u8> {
        self.top.labels.iter().position(|l| l == category).map(|i| i as u8)
    }

    /// Index of `category/subcategory` in [`crate::taxonomy::SUBCATEGORIES`].
    pub fn subcategory_index(&self, category: &str, subcategory: &str) -> Option<u8> {
        crate::taxonomy::SUBCATEGORIES.iter().position(|(c, s, _)| *c == category && *s == subcategory).map(|i| i as u8)
    }

    /// The subcategory at an index of [`crate::taxonomy::SUBCATEGORIES`].
    pub fn subcategory_name(&self, index: u8) -> Option<&'static str> {
        crate::taxonomy::SUBCATEGORIES.get(index as usize).map(|(_, s, _)| *s)
    }
}

/// Words that name politics: parties, campaigns, offices, elections,
/// political fundraising platforms and disclaimers (English and Spanish).
fn political_re() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(concat!(
            r"\b(?:democrats?|democratic|republicans?|gop|dnc|rnc|dccc|dscc|nrcc|nrsc|super pac|pac|actblue|winred|",
            r"candidate|campaign|congress(?:man|woman|ional)?|senate|senator|governor|mayor|midterms?|election|",
            r"ballot|paid for by|stop2end|stop 2 end|maga|trump|biden|harris|obama|pelosi|democratas?|republicanos?|",
            r"candidat[oa]|campana|eleccion(?:es)?|senado)\b"
        ))
        .expect("static political regex compiles")
    })
}
