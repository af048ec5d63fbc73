//! A text's category and subcategory: the one a rule settles
//! (`implies_category`), else the category model's; the subcategory from
//! the subcategory model, among those of that category. The engine (for
//! campaign templates), `check` and the API (for single messages) all
//! decide here, so they give one text the same answer.

use crate::classify::Model;
use crate::rules::{Finding, RuleSet};

/// The category models built into a release: the top-level one and,
/// optionally, the subcategory one (labels `category/subcategory`).
#[derive(Clone, Debug, PartialEq)]
pub struct Categorizer {
    pub top: Model,
    pub sub: Option<Model>,
}

/// What [`Categorizer::categorize`] says of a text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Categorized<'a> {
    pub category: &'a str,
    pub subcategory: Option<&'a str>,
    /// The rule that settled the category, when one did.
    pub rule: Option<&'a str>,
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
        let subcategory = self.sub.as_ref().and_then(|m| subcategory(m, category, template, body));
        Categorized { category, subcategory, rule }
    }

    /// Index of a category among the top model's labels.
    pub fn category_index(&self, category: &str) -> Option<u8> {
        self.top.labels.iter().position(|l| l == category).map(|i| i as u8)
    }

    /// Index of `category/subcategory` among the subcategory model's labels.
    pub fn subcategory_index(&self, category: &str, subcategory: &str) -> Option<u8> {
        let m = self.sub.as_ref()?;
        m.labels.iter().position(|l| l.split_once('/') == Some((category, subcategory))).map(|i| i as u8)
    }

    /// The subcategory (its part after the `/`) at an index.
    pub fn subcategory_name(&self, index: u8) -> Option<&str> {
        let label = self.sub.as_ref()?.labels.get(index as usize)?;
        label.split_once('/').map(|(_, s)| s)
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

/// The best-scoring subcategory of `category` for a text.
fn subcategory<'a>(m: &'a Model, category: &str, template: &str, body: &str) -> Option<&'a str> {
    thread_local! {
        static SCRATCH: std::cell::RefCell<(String, Vec<f32>)> = const { std::cell::RefCell::new((String::new(), Vec::new())) };
    }
    let best = SCRATCH.with(|s| {
        let (folded, scores) = &mut *s.borrow_mut();
        crate::fold::fold_into(body, folded);
        m.scores_of(template, folded, body, scores);
        m.labels
            .iter()
            .zip(scores.iter())
            .filter(|(l, _)| l.split_once('/').is_some_and(|(c, _)| c == category))
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(l, _)| l)
    })?;
    best.split_once('/').map(|(_, s)| s)
}
