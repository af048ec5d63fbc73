//! Rules and findings: what is wrong with a text, with the evidence.
//!
//! Rules are data. A rule pack is a TOML file of `[[rule]]` tables (the
//! default pack, `rules/default.toml`, is built in; users add packs without
//! recompiling, and a user rule with an existing id replaces it). Each rule
//! has a stable kebab-case `id`, a `severity` and a `kind`:
//!
//! - `absent`: a feature the text lacks (`optout`, `sender_id`);
//! - `pattern`: any of its regular expressions matches;
//! - `assemble`: a call to gather (`patterns`) with a place
//!   (`place_patterns`) and a time (`time_patterns`) extracted into the
//!   evidence; raised to `severity_at_election_site` when the place names an
//!   election site;
//! - `link`: a link together with a lure (`lures`); raised when the link goes
//!   through a URL shortener or its domain imitates a brand (`brands`);
//! - `shortener`: a link through a public URL shortener.
//!
//! Rules run once per distinct template (see [`crate::campaigns`]), on the
//! folded text of a real message, and evidence points back into that
//! message's original body by byte span.

use std::ops::Range;

use regex::{Regex, RegexSet};
use serde::{Deserialize, Serialize};

use crate::features::{Link, TemplateFeatures};

/// The default rule pack, built into the binary.
pub const DEFAULT_PACK: &str = include_str!("../../../rules/default.toml");

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Points toward a campaign's risk (see [`risk`]).
    pub const fn weight(self) -> u32 {
        match self {
            Severity::Info => 0,
            Severity::Low => 15,
            Severity::Medium => 30,
            Severity::High => 55,
            Severity::Critical => 75,
        }
    }
}

/// What triggered a finding.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Byte range in the original message body, when the evidence is text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span: Option<(usize, usize)>,
    /// The text that matched (from the original body), or the fact.
    pub excerpt: String,
    /// For `assemble` rules: the place asked to gather at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    /// For `assemble` rules: the time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

/// A rule broken, with its evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub rule: String,
    pub severity: Severity,
    pub evidence: Evidence,
    /// Share of a campaign's messages that must break the rule before the
    /// campaign carries it (from the rule's `campaign_share`; 0 = any).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub campaign_share: f32,
}

fn is_zero(x: &f32) -> bool {
    *x == 0.0
}

/// Rule pack errors.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("{origin}: {source}")]
    Toml { origin: String, source: toml::de::Error },
    #[error("{origin}: rule {id:?}: {reason}")]
    Rule { origin: String, id: String, reason: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PackFile {
    #[serde(default)]
    rule: Vec<RuleSpec>,
}

/// One `[[rule]]` table as written.
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    id: String,
    kind: String,
    severity: Severity,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    reference: String,
    #[serde(default)]
    feature: Option<String>,
    #[serde(default)]
    patterns: Vec<String>,
    #[serde(default)]
    place_patterns: Vec<String>,
    #[serde(default)]
    time_patterns: Vec<String>,
    #[serde(default)]
    election_sites: Vec<String>,
    #[serde(default)]
    severity_at_election_site: Option<Severity>,
    #[serde(default)]
    lures: Vec<String>,
    #[serde(default)]
    brands: Vec<String>,
    #[serde(default)]
    official_domains: Vec<String>,
    #[serde(default)]
    severity_with_shortener: Option<Severity>,
    #[serde(default)]
    severity_with_lookalike: Option<Severity>,
    #[serde(default)]
    campaign_share: f32,
    /// Patterns that, when any matches the text, mean the rule does not
    /// apply to it (a news alert that reports the count is not a call to
    /// gather; "the Senate votes Thursday" is no false voting date).
    #[serde(default)]
    unless_patterns: Vec<String>,
    /// `quiet-hours`: the allowed window, `HH:MM-HH:MM` (recipient local time).
    #[serde(default)]
    window: Option<String>,
    /// `quiet-hours`: per-state windows (`FL = "08:00-20:00"`).
    #[serde(default)]
    state_windows: std::collections::BTreeMap<String, String>,
    /// A finding of this rule settles the template's category (the
    /// classifier is not asked): stronger evidence than the model's guess.
    #[serde(default)]
    implies_category: Option<String>,
    /// ... when the finding is at least this severe (default: any).
    #[serde(default)]
    implies_category_at: Option<Severity>,
}

/// A rule's description, for documentation and reports.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RuleInfo {
    pub id: String,
    pub kind: String,
    pub severity: Severity,
    pub campaign_share: f32,
    pub title: String,
    pub description: String,
    pub reference: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Feature {
    Optout,
    SenderId,
}

#[derive(Clone, Debug)]
enum Check {
    Absent(Feature),
    Pattern(Vec<Regex>),
    Assemble {
        patterns: Vec<Regex>,
        places: Vec<Regex>,
        times: Vec<Regex>,
        sites: Vec<String>,
        at_site: Severity,
    },
    Link {
        lures: RegexSet,
        lure_list: Vec<Regex>,
        brands: Vec<String>,
        official: Vec<String>,
        shortener: Severity,
        lookalike: Severity,
    },
    Shortener,
    /// Judged per message from the recipient's local time, not the text.
    QuietHours(textwatch_numbers::quiet::QuietHours),
}

#[derive(Clone, Debug)]
struct Rule {
    info: RuleInfo,
    check: Check,
    unless: Vec<Regex>,
    /// The category a finding of this rule settles, and from which severity.
    implies: Option<(String, Severity)>,
}

/// A compiled set of rules.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

/// What a rule looks at: one real message of a template.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// The original body.
    pub body: &'a str,
    /// The folded body (see [`crate::fold::fold_with_offsets`]).
    pub folded: &'a str,
    /// For each byte of `folded`, the byte of `body` it came from.
    pub offsets: &'a [u32],
    /// Opt-out and sender identification of the template.
    pub features: &'a TemplateFeatures,
    /// Links in the message.
    pub links: &'a [Link],
}

impl Context<'_> {
    /// The original-body span and text for a range of the folded text.
    fn evidence(&self, r: Range<usize>) -> Evidence {
        if r.start >= r.end || r.end > self.offsets.len() {
            return Evidence { excerpt: self.folded.get(r).unwrap_or("").to_string(), ..Default::default() };
        }
        let start = self.offsets[r.start] as usize;
        let last = self.offsets[r.end - 1] as usize;
        let end = self.body[last..].chars().next().map_or(last, |c| last + c.len_utf8());
        Evidence {
            span: Some((start, end)),
            excerpt: self.body.get(start..end).unwrap_or("").to_string(),
            ..Default::default()
        }
    }
}

fn compile(origin: &str, id: &str, pats: &[String]) -> Result<Vec<Regex>, RuleError> {
    pats.iter()
        .map(|p| {
            Regex::new(p).map_err(|e| RuleError::Rule { origin: origin.into(), id: id.into(), reason: e.to_string() })
        })
        .collect()
}

impl RuleSet {
    /// The built-in pack.
    pub fn builtin() -> Self {
        RuleSet::from_toml(DEFAULT_PACK, "built-in rules/default.toml").expect("the built-in rule pack is valid")
    }

    /// Compiles a pack. `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, RuleError> {
        let pack: PackFile =
            toml::from_str(text).map_err(|source| RuleError::Toml { origin: origin.into(), source })?;
        let mut set = RuleSet::default();
        for spec in pack.rule {
            set.add(spec, origin)?;
        }
        Ok(set)
    }

    /// Adds the rules of `other`; a rule with an id already present replaces it.
    pub fn extend(&mut self, other: RuleSet) {
        for r in other.rules {
            match self.rules.iter_mut().find(|x| x.info.id == r.info.id) {
                Some(x) => *x = r,
                None => self.rules.push(r),
            }
        }
    }

    /// The quiet-hours law of the `quiet-hours` rule, if the set has one.
    pub fn quiet_hours(&self) -> Option<textwatch_numbers::quiet::QuietHours> {
        self.rules.iter().find_map(|r| match &r.check {
            Check::QuietHours(q) => Some(q.clone()),
            _ => None,
        })
    }

    /// The id and severity of the quiet-hours rule.
    pub fn quiet_rule(&self) -> Option<(&str, Severity)> {
        self.rules.iter().find_map(|r| match &r.check {
            Check::QuietHours(_) => Some((r.info.id.as_str(), r.info.severity)),
            _ => None,
        })
    }

    /// The category that `findings` settle, if any: that of the first rule,
    /// in pack order, with `implies_category` whose finding is at least
    /// `implies_category_at`. A phishing link behind a shortener makes a
    /// text a scam whatever the classifier thinks of its wording.
    pub fn implied_category(&self, findings: &[Finding]) -> Option<&str> {
        self.settled_category(findings).map(|(_, category)| category)
    }

    /// The category of a text with `findings`: the one a rule settles, with
    /// that rule's id, else the model's (with `None`). The engine and the
    /// single-message paths (`check`, the API) decide it the same way.
    pub fn category<'a>(
        &'a self,
        findings: &[Finding],
        model: &'a crate::classify::Model,
        template: &str,
        body: &str,
    ) -> (&'a str, Option<&'a str>) {
        match self.settled_category(findings) {
            Some((rule, category)) => (category, Some(rule)),
            None => (model.categorize(template, body), None),
        }
    }

    /// [`RuleSet::implied_category`] with the id of the rule that settles it.
    pub fn settled_category(&self, findings: &[Finding]) -> Option<(&str, &str)> {
        self.rules.iter().find_map(|r| {
            let (category, at) = r.implies.as_ref()?;
            findings
                .iter()
                .any(|f| f.rule == r.info.id && f.severity >= *at)
                .then_some((r.info.id.as_str(), category.as_str()))
        })
    }

    /// Brands' own link domains named by the link rules
    /// (`official_domains`): a link there is the brand's, never evidence
    /// that two campaigns share a sender.
    pub fn official_domains(&self) -> impl Iterator<Item = &str> {
        self.rules
            .iter()
            .flat_map(|r| match &r.check {
                Check::Link { official, .. } => official.as_slice(),
                _ => &[],
            })
            .map(String::as_str)
    }

    /// The rules, in order.
    pub fn infos(&self) -> impl Iterator<Item = &RuleInfo> {
        self.rules.iter().map(|r| &r.info)
    }

    fn add(&mut self, s: RuleSpec, origin: &str) -> Result<(), RuleError> {
        let bad = |reason: String| RuleError::Rule { origin: origin.into(), id: s.id.clone(), reason };
        if !(0.0..=1.0).contains(&s.campaign_share) {
            return Err(bad("campaign_share is a share of messages, between 0 and 1".into()));
        }
        if s.id.is_empty() || !s.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(bad("ids are kebab-case: lowercase letters, digits and '-'".into()));
        }
        let check = match s.kind.as_str() {
            "absent" => Check::Absent(match s.feature.as_deref() {
                Some("optout") => Feature::Optout,
                Some("sender_id") => Feature::SenderId,
                other => {
                    return Err(bad(format!(
                        "kind \"absent\" needs feature = \"optout\" or \"sender_id\", not {other:?}"
                    )))
                }
            }),
            "pattern" => {
                if s.patterns.is_empty() {
                    return Err(bad("kind \"pattern\" needs patterns".into()));
                }
                Check::Pattern(compile(origin, &s.id, &s.patterns)?)
            }
            "assemble" => Check::Assemble {
                patterns: compile(origin, &s.id, &s.patterns)?,
                places: compile(origin, &s.id, &s.place_patterns)?,
                times: compile(origin, &s.id, &s.time_patterns)?,
                sites: s.election_sites.clone(),
                at_site: s.severity_at_election_site.unwrap_or(s.severity),
            },
            "link" => Check::Link {
                lures: RegexSet::new(&s.lures).map_err(|e| bad(e.to_string()))?,
                lure_list: compile(origin, &s.id, &s.lures)?,
                brands: s.brands.clone(),
                official: s.official_domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
                shortener: s.severity_with_shortener.unwrap_or(s.severity),
                lookalike: s.severity_with_lookalike.unwrap_or(s.severity),
            },
            "shortener" => Check::Shortener,
            "quiet-hours" => {
                use textwatch_numbers::quiet::{QuietHours, Window};
                let parse = |w: &str| {
                    Window::parse(w)
                        .ok_or_else(|| bad(format!("window {w:?} is not HH:MM-HH:MM with start before end")))
                };
                let mut q = QuietHours::default();
                if let Some(w) = &s.window {
                    q.default = parse(w)?;
                }
                if !s.state_windows.is_empty() {
                    q.states = s
                        .state_windows
                        .iter()
                        .map(|(st, w)| Ok((st.clone(), parse(w)?)))
                        .collect::<Result<_, RuleError>>()?;
                }
                Check::QuietHours(q)
            }
            other => {
                return Err(bad(format!(
                    "unknown kind {other:?}; kinds are absent, pattern, assemble, link, shortener, quiet-hours"
                )))
            }
        };
        let info = RuleInfo {
            id: s.id.clone(),
            kind: s.kind.clone(),
            severity: s.severity,
            campaign_share: s.campaign_share,
            title: s.title.clone(),
            description: s.description.clone(),
            reference: s.reference.clone(),
        };
        let implies = match (&s.implies_category, s.implies_category_at) {
            (Some(c), at) => {
                // A category (earlier versions' `ham` and `commercial` are
                // read as personal and marketing).
                let Some(known) = crate::taxonomy::category_of(c).filter(|_| !c.contains('/')) else {
                    return Err(bad(format!(
                        "implies_category {c:?} is not a category; categories are {}",
                        crate::classify::CATEGORIES.join(", ")
                    )));
                };
                Some((known.to_string(), at.unwrap_or(Severity::Info)))
            }
            (None, Some(_)) => return Err(bad("implies_category_at needs implies_category".into())),
            (None, None) => None,
        };
        let unless = compile(origin, &s.id, &s.unless_patterns)?;
        self.extend(RuleSet { rules: vec![Rule { info, check, unless, implies }] });
        Ok(())
    }

    /// Runs every rule on one message given its body, template and links:
    /// folds the body (keeping offsets for evidence) and detects the
    /// template's opt-out and sender identification first. Text rules also
    /// read the body's unmasked views (spaced-out letters joined, digits
    /// standing in for letters read as letters; see [`crate::unmask`]) when
    /// the folded text alone does not break them.
    pub fn evaluate_message(&self, body: &str, template: &str, links: &[Link]) -> Vec<Finding> {
        let features = TemplateFeatures::of(template);
        let (mut folded, mut offsets) = (String::new(), Vec::new());
        crate::fold::fold_with_offsets(body, &mut folded, &mut offsets);
        let views = crate::unmask::views(&folded, &offsets);
        let mut ctxs = vec![Context { body, folded: &folded, offsets: &offsets, features: &features, links }];
        ctxs.extend(views.iter().map(|(t, o)| Context { body, folded: t, offsets: o, features: &features, links }));
        self.evaluate_views(&ctxs)
    }

    /// Runs every rule on one message.
    pub fn evaluate(&self, ctx: &Context<'_>) -> Vec<Finding> {
        self.evaluate_views(std::slice::from_ref(ctx))
    }

    /// Runs every rule on views of one message (the first is the folded
    /// text): a rule's finding is from the first view that breaks it.
    fn evaluate_views(&self, ctxs: &[Context<'_>]) -> Vec<Finding> {
        let mut out = Vec::new();
        for r in &self.rules {
            if let Some((severity, evidence)) = ctxs.iter().find_map(|ctx| check(r, ctx)) {
                out.push(Finding {
                    rule: r.info.id.clone(),
                    severity,
                    evidence,
                    campaign_share: r.info.campaign_share,
                });
            }
        }
        out
    }
}

/// What rule `r` finds in one view of a message, if anything.
fn check(r: &Rule, ctx: &Context<'_>) -> Option<(Severity, Evidence)> {
    if r.unless.iter().any(|re| re.is_match(ctx.folded)) {
        return None;
    }
    match &r.check {
        Check::Absent(f) => {
            let missing = match f {
                Feature::Optout => ctx.features.optout.is_none(),
                Feature::SenderId => ctx.features.sender_id.is_none(),
            };
            missing.then(|| {
                let what = if *f == Feature::Optout { "no opt-out instruction" } else { "no sender identification" };
                (r.info.severity, Evidence { excerpt: what.into(), ..Default::default() })
            })
        }
        Check::Pattern(res) => {
            res.iter().find_map(|re| re.find(ctx.folded)).map(|m| (r.info.severity, ctx.evidence(m.range())))
        }
        Check::Assemble { patterns, places, times, sites, at_site } => {
            assemble(ctx, patterns, places, times, sites, r.info.severity, *at_site)
        }
        Check::Link { lures, lure_list, brands, official, shortener, lookalike } => {
            // A link to a brand's own domain is the brand's real alert
            // ("unusual sign-in ... chase.com"), not a lure's target.
            let links: Vec<&Link> = ctx
                .links
                .iter()
                .filter(|l| !l.domain.as_deref().is_some_and(|d| official.iter().any(|o| o == d)))
                .collect();
            if links.is_empty() {
                return None;
            }
            // A host made to be misread as a brand's is a lure by itself
            // ("usps.com-trackhelp.xyz": no wording needed).
            let impostor = links.iter().copied().find(|l| is_disguised(l) && is_lookalike(l, brands));
            let lure = lures.is_match(ctx.folded);
            if !lure && impostor.is_none() {
                return None;
            }
            let m = lure.then(|| lure_list.iter().find_map(|re| re.find(ctx.folded))).flatten();
            let mut sev = r.info.severity;
            let mut ev = m.map(|m| ctx.evidence(m.range())).unwrap_or_default();
            let link = impostor.unwrap_or(links[0]);
            if links.iter().any(|l| l.shortener) {
                sev = sev.max(*shortener);
            }
            if links.iter().any(|l| is_lookalike(l, brands) || is_disguised(l)) {
                sev = sev.max(*lookalike);
            }
            ev.excerpt = if m.is_some() {
                format!("{} (link: {})", ev.excerpt, link.url)
            } else {
                format!("link: {} (a host disguised as a brand's)", link.url)
            };
            Some((sev, ev))
        }
        Check::Shortener => ctx
            .links
            .iter()
            .find(|l| l.shortener)
            .map(|l| (r.info.severity, Evidence { excerpt: l.url.clone(), ..Default::default() })),
        // Judged per message by the analyzer, counted per template.
        Check::QuietHours(_) => None,
    }
}

/// A host that hides its real domain behind the look of another: a
/// top-level domain written as a label in front of the registrable domain
/// ("usps.com-trackhelp.xyz", whose domain is com-trackhelp.xyz;
/// "appleid.apple.com.verify-id.info"). Real hosts do not need one. Only
/// the generic top-level domains a reader takes for a domain's end: country
/// codes ("us.", "de.", "in.") are common regional subdomains of real sites.
fn is_disguised(link: &Link) -> bool {
    const TLDS: [&str; 5] = ["com", "net", "org", "gov", "edu"];
    let Some(domain) = link.domain.as_deref() else { return false };
    let label = domain.split('.').next().unwrap_or("");
    let prefix = link.host.strip_suffix(domain).unwrap_or("");
    TLDS.iter().any(|t| label.strip_prefix(t).is_some_and(|r| r.starts_with('-')) || prefix.split('.').any(|l| l == *t))
}

/// A host that carries a brand name without being the brand's own domain:
/// `usps-redelivery.top`, `chase.account-restore.info`.
/// Digits standing in for letters count: `amaz0n-rewards.co`, `paypa1.help`.
fn is_lookalike(link: &Link, brands: &[String]) -> bool {
    let Some(domain) = link.domain.as_deref() else { return false };
    let label = domain.split('.').next().unwrap_or("");
    let readings = crate::unmask::host_readings(&link.host);
    brands.iter().any(|b| label != b.as_str() && readings.iter().any(|h| h.contains(b.as_str())))
}

fn assemble(
    ctx: &Context<'_>,
    patterns: &[Regex],
    places: &[Regex],
    times: &[Regex],
    sites: &[String],
    base: Severity,
    at_site: Severity,
) -> Option<(Severity, Evidence)> {
    // Of what each pattern captures after a call, the longest is the most
    // specific ("12th & arch, near the convention center" over "arch").
    let capture = |res: &[Regex], after: usize| {
        res.iter()
            .filter_map(|re| re.captures_at(ctx.folded, after).and_then(|c| c.get(1).or_else(|| c.get(0))))
            .max_by_key(|m| (m.len(), std::cmp::Reverse(m.start())))
    };
    // A place belongs to a call when it follows soon ("rally tomorrow, 3pm,
    // at city hall"); one sentences away answers something else.
    const MAX_GAP: usize = 120;
    let place_of =
        |call: &regex::Match<'_>| capture(places, call.start()).filter(|p| p.start() <= call.end() + MAX_GAP);
    // The first call, in the text's order, that a place follows: a call
    // with no place after it ("..., be there") does not hide an earlier or
    // later one that has one ("everyone to the capitol").
    let mut calls: Vec<regex::Match<'_>> = patterns.iter().flat_map(|re| re.find_iter(ctx.folded)).collect();
    calls.sort_by_key(|m| (m.start(), std::cmp::Reverse(m.end())));
    // Each try scans the rest of the text: a bound keeps a long body with
    // many calls (an archive, a forwarded thread) cheap.
    const MAX_CALLS: usize = 16;
    let (m, place) = calls.into_iter().take(MAX_CALLS).find_map(|m| place_of(&m).map(|p| (m, p)))?;
    let after = m.start();
    let time =
        times.iter().find_map(|re| re.captures_at(ctx.folded, after).and_then(|c| c.get(1).or_else(|| c.get(0))));
    let end = [m.end(), place.end(), time.map_or(0, |t| t.end())].into_iter().max().unwrap_or(m.end());
    let mut ev = ctx.evidence(m.start()..end);
    let place_text = ctx.evidence(place.range()).excerpt;
    let site = sites.iter().any(|s| ctx.folded[m.start()..end.max(place.end())].contains(s.as_str()));
    ev.place = Some(place_text);
    ev.time = time.map(|t| ctx.evidence(t.range()).excerpt);
    Some((if site { at_site } else { base }, ev))
}

/// A campaign's risk, 0-100: the weight of its worst finding (low 15,
/// medium 30, high 55, critical 75), plus 8 for every other distinct rule of
/// medium or worse, plus 5/10/15 for reach (100, 1,000, 10,000 messages),
/// capped at 100. No findings, no risk.
pub fn risk<'a>(findings: impl IntoIterator<Item = &'a Severity>, messages: u64) -> u8 {
    let mut sev: Vec<Severity> = findings.into_iter().copied().collect();
    if sev.is_empty() {
        return 0;
    }
    sev.sort_unstable_by(|a, b| b.cmp(a));
    let mut r = sev[0].weight();
    r += 8 * sev[1..].iter().filter(|s| **s >= Severity::Medium).count() as u32;
    r += match messages {
        0..=99 => 0,
        100..=999 => 5,
        1000..=9999 => 10,
        _ => 15,
    };
    r.min(100) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{templatize, TemplateScratch};

    fn findings(body: &str) -> Vec<Finding> {
        let set = RuleSet::builtin();
        let mut ts = TemplateScratch::default();
        let mut t = String::new();
        templatize(body, &mut ts, &mut t);
        let links = crate::features::MessageFeatures::from_scratch(&ts).links;
        set.evaluate_message(body, &t, &links)
    }

    fn ids(body: &str) -> Vec<String> {
        findings(body).into_iter().map(|f| f.rule).collect()
    }

    const INCIDENT: &str = "Radical Liberals & Dems are trying to STEAL this election! We need all hands on deck. Show your support at the corner of 12th & Arch, near the Convention Center, 3pm today.";

    #[test]
    fn the_incident_breaks_four_rules_with_place_and_time() {
        let f = findings(INCIDENT);
        let ids: Vec<&str> = f.iter().map(|f| f.rule.as_str()).collect();
        for want in ["optout-missing", "sender-id-missing", "election-misinfo", "call-to-assemble"] {
            assert!(ids.contains(&want), "missing {want}: {ids:?}");
        }
        let a = f.iter().find(|f| f.rule == "call-to-assemble").unwrap();
        assert_eq!(a.severity, Severity::High, "the Convention Center is where votes were counted");
        assert!(a.evidence.place.as_deref().unwrap().contains("12th & Arch"), "{:?}", a.evidence);
        assert_eq!(a.evidence.time.as_deref(), Some("3pm"));
        let m = f.iter().find(|f| f.rule == "election-misinfo").unwrap();
        let (s, e) = m.evidence.span.unwrap();
        assert_eq!(&INCIDENT[s..e], "STEAL this election");
    }

    #[test]
    fn evidence_spans_point_into_the_original_even_through_evasions() {
        let body = "Radical Liberals are trying to ST\u{200B}\u{0415}AL this election!!";
        let f = findings(body);
        let m = f.iter().find(|f| f.rule == "election-misinfo").expect("found through zero-width and Cyrillic E");
        let (s, e) = m.evidence.span.unwrap();
        assert_eq!(&body[s..e], "ST\u{200B}\u{0415}AL this election");
    }

    #[test]
    fn civic_and_news_texts_about_the_count_break_no_election_rule() {
        for body in [
            "Sierra Club Alert: the Senate votes Thursday on the clean energy bill. Call Sen. Casey now.",
            "AP: Election officials in Philadelphia are still counting mail ballots at the Convention Center. Protesters gathered outside at 12th & Arch this afternoon.",
            "Breaking News: counting continues at the Convention Center; officials expect results Friday.",
            "Local 98 members: the contract ratification vote is Thursday at the union hall, 7am-7pm.",
            "Philadelphia County Board of Elections: your mail ballot needs a signature to be counted. Visit 520 N Columbus Blvd by 5pm Nov 9 to cure it.",
        ] {
            let ids = ids(body);
            assert!(
                !ids.iter().any(|i| i == "election-misinfo" || i == "call-to-assemble"),
                "{body}: {ids:?}"
            );
        }
    }

    #[test]
    fn spanish_false_dates_and_methods_in_common_phrasings() {
        for body in [
            "Demócratas: ustedes votan mañana miércoles por la alta participación.",
            "La elección se pospuso al viernes por problemas técnicos. Comparte este mensaje.",
            "Vote por mensaje de texto al 55123 y evite las filas.",
            "No hace falta que vayas: ya estás contado como votante.",
        ] {
            assert!(ids(body).iter().any(|i| i == "election-misinfo"), "{body}");
        }
    }

    #[test]
    fn a_rally_with_a_place_and_time_is_a_call_to_assemble() {
        for body in [
            "Rally against the steal! Saturday 2pm at the State Capitol steps, Harrisburg. Bring signs.",
            "Protest at City Hall tomorrow at noon. Stop the count!",
        ] {
            assert!(ids(body).iter().any(|i| i == "call-to-assemble"), "{body}");
        }
    }

    #[test]
    fn election_misinfo_phrasings() {
        for body in [
            "Due to high turnout, Democrats are asked to vote on Wednesday, Nov 4 this year.",
            "Republicans vote Tuesday, Democrats vote Wednesday",
            "You can now vote by text! Reply with your candidate's name",
            "Skip the lines this year: text your vote to 40404",
            "ALERT: polls have been moved to the high school gym",
            "The election was stolen. Stop the steal!",
            "Debido a la alta participación, los demócratas deben votar el miércoles 4 de noviembre",
            "Están robando la elección en Filadelfia",
            "Mail-in ballots postmarked late will count if you vote again in person on Wednesday",
            "Due to COVID, this year you can vote online at vote-gov.us",
            "Skip the lines: cast your ballot online before Nov 3",
            "Aviso: su lugar de votación ha cambiado a la escuela Lincoln",
            "Los centros de votación fueron trasladados al gimnasio",
            "Ahora puede votar en línea desde su celular",
            "No aceptaremos una elección robada",
        ] {
            assert!(ids(body).contains(&"election-misinfo".to_string()), "missed: {body}");
        }
        for body in [
            "Hi Chris, this is Sarah with Vote Forward. Polls are open until 8pm today! Find your polling place at iwillvote.com Reply STOP to opt out",
            "Remember to vote on Tuesday, Nov 3! Polls open 7am-8pm. Reply STOP to opt out",
            "Hola Juan, soy Ana con Mi Familia Vota. ¡Las urnas cierran a las 8pm hoy!",
            "We are watching the vote count on TV tonight, come over",
            "Register to vote online at vote.org in 2 minutes. Reply STOP to opt out",
            "Text VOTE to 30330 for election day reminders. Msg&data rates may apply. Reply STOP to opt out",
            "You can now view your sample ballot online at vote411.org",
            "Regístrese para votar en línea hoy. Responda STOP para salir",
            "Su lugar de votación es la escuela Lincoln. Las urnas abren a las 7am",
        ] {
            assert!(!ids(body).contains(&"election-misinfo".to_string()), "false alarm: {body}");
        }
    }

    #[test]
    fn spelled_out_and_leet_claims_are_read() {
        for (body, evidence) in [
            ("Radical Dems are trying to ST3AL this el3cti0n!", "ST3AL this el3cti0n"),
            ("They will s.t.e.a.l this e-l-e-c-t-i-o-n tonight", "s.t.e.a.l this e-l-e-c-t-i-o-n"),
            ("the e l e c t i o n was r1gged", "e l e c t i o n was r1gged"),
            // One "1" an "l", the other an "i": read right together.
            ("They will STEA1 this E1ECT1ON", "STEA1 this E1ECT1ON"),
            ("D3mocrats v-o-t-e on Wednesday", "v-o-t-e on Wednesday"),
            ("Los demócratas deben v0tar el miércoles", "deben v0tar el miércoles"),
        ] {
            let f = findings(body);
            let m = f.iter().find(|f| f.rule == "election-misinfo").unwrap_or_else(|| panic!("missed: {body}"));
            let (s, e) = m.evidence.span.unwrap();
            assert_eq!(&body[s..e], evidence, "evidence is the text as sent");
            assert_eq!(m.evidence.excerpt, evidence);
        }
        // Numbers, codes and prices are not words in disguise.
        for body in [
            "Vote 4 change on Nov 3! 2020 is our year. Reply STOP to opt out",
            "Your code is 4-5-7-1, rated 5/5 by 3 out of 4 voters",
        ] {
            assert!(!ids_has(body, "election-misinfo"), "false alarm: {body}");
        }
    }

    #[test]
    fn leet_lures_and_look_alike_hosts() {
        let f = findings("Urgent: c1aim y0ur $500 Amaz0n g1ft card at https://amaz0n-rewards.co/x");
        let s = f.iter().find(|f| f.rule == "smishing-link").expect("a gift-card lure with a link");
        assert_eq!(s.severity, Severity::Critical, "amaz0n-rewards.co imitates amazon");
        let f = findings("PayPal: your account is locked. Restore access at https://paypa1-support.help/r");
        let s = f.iter().find(|f| f.rule == "smishing-link").unwrap();
        assert_eq!(s.severity, Severity::Critical, "paypa1 reads paypal");
        let f = findings("USPS: your package could not be delivered. Update at hxxps://usps-redeliver[.]top/track");
        let s = f.iter().find(|f| f.rule == "smishing-link").expect("a defanged link is a link");
        assert_eq!(s.severity, Severity::Critical);
        assert!(s.evidence.excerpt.contains("usps-redeliver[.]top"), "the link as written: {}", s.evidence.excerpt);
    }

    #[test]
    fn a_host_disguised_as_a_brands_is_a_lure_by_itself() {
        for (body, host) in [
            (
                "Your USPS package is waiting. Schedule delivery: https://usps.com-trackhelp.xyz",
                "usps.com-trackhelp.xyz",
            ),
            (
                "Apple: sign in to keep your photos at appleid.apple.com.verify-id.info",
                "appleid.apple.com.verify-id.info",
            ),
        ] {
            let f = findings(body);
            let s = f.iter().find(|f| f.rule == "smishing-link").unwrap_or_else(|| panic!("missed: {body}"));
            assert_eq!(s.severity, Severity::Critical, "{body}");
            assert!(s.evidence.excerpt.contains(host), "{}", s.evidence.excerpt);
        }
        // A lure on a disguised host of no known brand: critical too.
        let f = findings("You have an unpaid toll of $6.99. Pay now: https://ezdrivema.com-ticketsb.top/pay");
        assert_eq!(f.iter().find(|f| f.rule == "smishing-link").unwrap().severity, Severity::Critical);
        // A lure with a link to the brand's own domain is the brand's real
        // alert; the same lure on a look-alike is not.
        let real = "Chase: unusual sign-in attempt. If this wasn't you, review it at https://www.chase.com/security";
        assert!(!ids_has(real, "smishing-link"), "the brand's own domain");
        let fake = real.replace("www.chase.com", "chase-security-review.info");
        assert_eq!(findings(&fake).iter().find(|f| f.rule == "smishing-link").unwrap().severity, Severity::Critical);
        let both = format!("{real} or https://bit.ly/3xYz9");
        assert!(ids_has(&both, "smishing-link"), "another link still counts");
        // The brand's own host, or an ordinary one, with no lure: nothing.
        for body in [
            "USPS: your package is out for delivery today. Track at https://www.usps.com/track?n=92001",
            "Our new menu is up at https://tacos.com-munity.example.org/menu",
            "Photos from the trip: https://photos.example.com/a/1",
        ] {
            assert!(!ids_has(body, "smishing-link"), "false alarm: {body}");
        }
    }

    #[test]
    fn calls_to_assemble_need_a_place() {
        assert!(!ids("We need your support this election, vote Tuesday!").contains(&"call-to-assemble".into()));
        let f = findings("Join us for a rally at City Hall tomorrow at 5pm, bring signs! Reply STOP to opt out");
        let a = f.iter().find(|f| f.rule == "call-to-assemble").expect("rally at city hall");
        assert_eq!(a.severity, Severity::High);
        let f = findings("Come out and meet us at Liberty Park on Saturday for our food drive");
        let a = f.iter().find(|f| f.rule == "call-to-assemble").unwrap();
        assert_eq!(a.severity, Severity::Medium);
        assert!(a.evidence.place.as_deref().unwrap().to_lowercase().contains("liberty park"));
        let f = findings("Patriots: meet at the Convention Center at 3pm, they are counting fake ballots");
        let a = f.iter().find(|f| f.rule == "call-to-assemble").expect("meet at");
        assert_eq!((a.severity, a.evidence.time.as_deref()), (Severity::High, Some("3pm")));
        // In Spanish, with the place and time read in Spanish.
        let f = findings("El fraude es real. Reúnanse frente al centro de convenciones a las 3pm");
        let a = f.iter().find(|f| f.rule == "call-to-assemble").expect("reúnanse frente al centro");
        assert_eq!(a.severity, Severity::High, "a counting site");
        assert_eq!(a.evidence.place.as_deref(), Some("centro de convenciones"));
        assert_eq!(a.evidence.time.as_deref(), Some("3pm"));
        // A call with no place after it ("be there") does not hide one that has one.
        let f = findings("The election was rigged! Everyone to the capitol Jan 6, be there, will be wild");
        let a = f.iter().find(|f| f.rule == "call-to-assemble").expect("everyone to the capitol");
        assert_eq!(a.evidence.place.as_deref(), Some("capitol"));
        // Street addresses and corners are places; "convene" is a call.
        let f = findings("Meet at 1200 Arch St at 3:00 PM, bring your flags. Stop the count!");
        let a = f.iter().find(|f| f.rule == "call-to-assemble").expect("a street address");
        assert_eq!((a.evidence.place.as_deref(), a.evidence.time.as_deref()), (Some("1200 Arch St"), Some("3:00 PM")));
        let f = findings("Patriots! Convene at the Philadelphia Convention Center Thursday at noon");
        let a = f.iter().find(|f| f.rule == "call-to-assemble").expect("convene");
        assert_eq!(a.severity, Severity::High);
        let f = findings("Rally at Broad & Vine at noon");
        assert_eq!(
            f.iter().find(|f| f.rule == "call-to-assemble").unwrap().evidence.place.as_deref(),
            Some("Broad & Vine")
        );
        // A lone number, day or word after "at" / "by" / "on" is a time as
        // often as a place (real chat from the UCI ham texts).
        for body in [
            "ok i'll be there by 8",
            "sorry cant meet up l8r. quite tired got in at 3",
            "My mate is getting me them on sat, join us",
            "Join us at 5pm tonight",
            "Its on May, be there",
        ] {
            assert!(!ids_has(body, "call-to-assemble"), "false alarm: {body}");
        }
        // A place sentences after the call answers something else.
        let far = "Join us! We have been organizing all year and it has been an amazing ride with all of you, thank you so much for everything, truly. PS my new office is at the Liberty Building";
        assert!(!ids_has(far, "call-to-assemble"), "{far}");
        // Chat about going somewhere is not a call to gather there.
        assert!(!ids_has("I'll be there in sathy then we'll go to RTO office", "call-to-assemble"));
        assert!(!ids_has("Everyone to the beach this weekend!", "call-to-assemble"));
        assert!(!ids_has("Hola, vengan a la fiesta en casa de Ana mañana", "call-to-assemble"));
    }

    #[test]
    fn smishing_links() {
        let f = findings("USPS: Your package US9514961195221 could not be delivered due to an incomplete address. Please update here: https://usps-redelivery.top/a1B2c");
        let s = f.iter().find(|f| f.rule == "smishing-link").expect("delivery lure with a link");
        assert_eq!(s.severity, Severity::Critical, "usps-redelivery.top imitates usps");
        let f = findings("[Chase] Your account has been locked due to unusual activity. Verify your identity at bit.ly/3xYz9 to restore access.");
        let ids: Vec<&str> = f.iter().map(|f| f.rule.as_str()).collect();
        assert!(ids.contains(&"smishing-link") && ids.contains(&"url-shortener"), "{ids:?}");
        // A real delivery notice with a tracking link on the brand's own domain is high at most, and
        // without a lure nothing fires.
        assert!(!ids_has("QuickShip: your order 1Z999 is out for delivery today. Track it at https://quickship.com/t/1 Txt STOP to end", "smishing-link"));
        assert!(!ids_has("See the photos from saturday at https://photos.example.com/album", "smishing-link"));
    }

    fn ids_has(body: &str, id: &str) -> bool {
        ids(body).iter().any(|x| x == id)
    }

    #[test]
    fn compliant_texts_break_nothing_that_matters() {
        for body in [
            "Acme Pharmacy: your prescription #481516 is ready for pickup at our Main St store. Reply STOP to opt out",
            "Hi Maria, this is Tom with Philly Votes Together. Polls are open until 8pm today! Find your polling place at https://iwillvote.com/x Reply STOP to opt out",
            "Keystone Bank Alert: a purchase of $12.99 was made on your card ending 1234. Not you? Call 8005550100. Reply STOP to opt out",
        ] {
            let f = ids(body);
            assert!(f.is_empty(), "{body}: {f:?}");
        }
    }

    #[test]
    fn shaft_content() {
        assert!(ids_has("Happy hour! 2-for-1 tequila shots delivery tonight only", "shaft-content"));
        assert!(ids_has("New CBD edibles in stock at our dispensary", "shaft-content"));
        assert!(!ids_has("Your table is ready at Luigi's", "shaft-content"));
        assert!(ids_has("Watch FREE XXX videos now, txt XXX to 89555", "shaft-content"));
        assert!(ids_has("Hot XXX chat 24/7 call 09099726429", "shaft-content"));
        // Kisses, as UK texts sign off.
        assert!(!ids_has("Night night, love you lots xxx", "shaft-content"));
        assert!(!ids_has("Thanks for the lift home! XXX", "shaft-content"));
    }

    #[test]
    fn user_packs_add_and_replace_rules() {
        let mut set = RuleSet::builtin();
        let user = RuleSet::from_toml(
            r#"
            [[rule]]
            id = "crypto-lure"
            kind = "pattern"
            severity = "high"
            patterns = ['\bbitcoin\b']

            [[rule]]
            id = "url-shortener"
            kind = "shortener"
            severity = "medium"
            "#,
            "user.toml",
        )
        .unwrap();
        let before = set.infos().count();
        set.extend(user);
        assert_eq!(set.infos().count(), before + 1);
        assert_eq!(set.infos().find(|r| r.id == "url-shortener").unwrap().severity, Severity::Medium);
    }

    #[test]
    fn bad_packs_say_where() {
        let e = RuleSet::from_toml("[[rule]]\nid='x'\nkind='pattern'\nseverity='high'\npatterns=['(']\n", "mine.toml")
            .unwrap_err();
        assert!(e.to_string().starts_with("mine.toml: rule \"x\""), "{e}");
        let e = RuleSet::from_toml("[[rule]]\nid='x'\nkind='pattern'\nseverity='high'\npaterns=['a']\n", "mine.toml")
            .unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let e = RuleSet::from_toml("[[rule]]\nid='Bad Id'\nkind='shortener'\nseverity='low'\n", "m").unwrap_err();
        assert!(e.to_string().contains("kebab-case"), "{e}");
    }

    #[test]
    fn a_critical_phishing_link_settles_the_category() {
        let set = RuleSet::builtin();
        let shortened = findings("Amazon: a charge of $899.99 for an iPhone was placed on your account. If this wasn't you, cancel at bit.ly/3xAmz");
        assert_eq!(set.implied_category(&shortened), Some("scam"));
        // The same lure on an ordinary domain is high, not critical: the
        // category is left to the classifier.
        let plain = findings("Acme Bank: a charge of $89.99 was placed on your card. If this wasn't you, call us or visit acmebank.com/help");
        assert!(plain.iter().any(|f| f.rule == "smishing-link" && f.severity == Severity::High), "{plain:?}");
        assert_eq!(set.implied_category(&plain), None);
        assert_eq!(set.implied_category(&findings("see you at dinner")), None);
        // A stolen-election claim is political however it is spelled.
        let spelled = findings("they are trying to s.t.e.a.l this e-l-e-c-t-i-o-n, be there");
        assert_eq!(set.settled_category(&spelled), Some(("election-misinfo", "political")));
        assert_eq!(set.implied_category(&findings("Polls are open until 8pm. Reply STOP to opt out")), None);
        let bad = RuleSet::from_toml(
            "[[rule]]\nid='x'\nkind='shortener'\nseverity='low'\nimplies_category='politics'\n",
            "bad.toml",
        );
        assert!(bad.unwrap_err().to_string().contains("not a category"));
        let bad = RuleSet::from_toml(
            "[[rule]]\nid='x'\nkind='shortener'\nseverity='low'\nimplies_category_at='high'\n",
            "bad.toml",
        );
        assert!(bad.unwrap_err().to_string().contains("needs implies_category"));
        let any = RuleSet::from_toml(
            "[[rule]]\nid='short'\nkind='shortener'\nseverity='low'\nimplies_category='commercial'\n",
            "mine.toml",
        )
        .unwrap();
        let links =
            crate::features::MessageFeatures { links: vec![crate::features::link("bit.ly/x")], ..Default::default() };
        let f = any.evaluate_message("deals at bit.ly/x", "deals at {shorturl}", &links.links);
        assert_eq!(any.implied_category(&f), Some("marketing"), "no severity floor; 'commercial' reads as marketing");
    }

    #[test]
    fn risk_formula() {
        assert_eq!(risk(&[], 1000), 0);
        assert_eq!(risk(&[Severity::Medium, Severity::Critical, Severity::High], 50), 75 + 16);
        assert_eq!(risk(&[Severity::Medium, Severity::Medium, Severity::Critical, Severity::High], 3000), 100);
        assert_eq!(risk(&[Severity::Low], 5), 15);
    }

    #[test]
    fn quiet_hours_rule_carries_its_windows() {
        let set = RuleSet::builtin();
        let q = set.quiet_hours().expect("built in");
        assert_eq!(q.default.to_string(), "08:00-21:00");
        assert_eq!(q.window_for("FL").to_string(), "08:00-20:00");
        assert_eq!(set.quiet_rule(), Some(("quiet-hours", Severity::Low)));
        let mine = RuleSet::from_toml(
            "[[rule]]\nid='quiet-hours'\nkind='quiet-hours'\nseverity='medium'\nwindow='09:00-20:00'\nstate_windows={TX='09:00-21:00'}\n",
            "mine.toml",
        )
        .unwrap();
        let q = mine.quiet_hours().unwrap();
        assert_eq!(
            (q.default.to_string(), q.window_for("TX").to_string()),
            ("09:00-20:00".into(), "09:00-21:00".into())
        );
        let e = RuleSet::from_toml(
            "[[rule]]\nid='q'\nkind='quiet-hours'\nseverity='low'\nwindow='21:00-08:00'\n",
            "bad.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("bad.toml") && e.contains("21:00-08:00"), "{e}");
    }
}
