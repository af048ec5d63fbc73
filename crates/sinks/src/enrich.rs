//! What is added to a stored campaign before anyone sees or acts on it:
//! its senders' providers, the `sender-invalid` and `use-case-mismatch`
//! findings, and the policy decision. Shared by every command that shows
//! campaigns, by the server and by the alert watcher.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use textwatch_engine::policy::{Action, Decision, Facts, Policy, RuleCheck};
use textwatch_engine::{Evidence, Severity};
use textwatch_numbers::{classify, Directory, NpaTable, Provider, SenderClass};
use textwatch_store::views::Finding;
use textwatch_store::{CampaignSummary, ProviderGroup, Store};

use crate::{Result, SinkError};

/// The rule id for impossible senders.
pub const SENDER_INVALID: &str = "sender-invalid";
/// The finding for traffic its senders' registered 10DLC use case does
/// not allow.
pub const USE_CASE_MISMATCH: &str = "use-case-mismatch";

/// Number data, registry and policy, loaded once per command.
#[derive(Clone)]
pub struct Enricher {
    pub dir: Directory,
    pub policy: Policy,
    /// Campaigns blocked by hand (`POST /v1/campaigns/{id}/block`), with
    /// the reason.
    pub blocked: std::collections::HashMap<String, String>,
    /// Allow rules from overturned appeals.
    pub allows: Allows,
}

/// The allow rules overturned appeals added (`textwatch appeal decide`),
/// by number and by campaign (resolved to the campaign it is now).
#[derive(Clone, Debug, Default)]
pub struct Allows {
    pub numbers: std::collections::HashMap<String, textwatch_store::appeals::PolicyAllow>,
    pub campaigns: std::collections::HashMap<String, textwatch_store::appeals::PolicyAllow>,
    /// The policy version: the newest allow rule's (0 with none).
    pub version: i64,
}

impl Allows {
    pub fn load(store: &dyn Store) -> Result<Allows> {
        use textwatch_store::appeals::SubjectKind;
        let mut a = Allows::default();
        for rule in store.policy_allows()? {
            a.version = a.version.max(rule.version);
            match rule.subject_kind {
                SubjectKind::Number => {
                    a.numbers.insert(rule.subject.clone(), rule);
                }
                SubjectKind::Campaign => {
                    let now = store.resolve_campaign(&rule.subject)?.unwrap_or_else(|| rule.subject.clone());
                    a.campaigns.insert(now, rule);
                }
            }
        }
        Ok(a)
    }

    /// The decision an allow rule makes.
    pub fn decision(rule: &textwatch_store::appeals::PolicyAllow, scope: textwatch_engine::policy::Scope) -> Decision {
        Decision {
            action: Action::Allow,
            scope,
            rule: format!("appeal-{}", rule.appeal),
            reasons: vec![format!(
                "appeal {} overturned (policy version {}): {}",
                rule.appeal, rule.version, rule.reason
            )],
        }
    }
}

/// The files an [`Enricher`] reads besides the store: a provider registry
/// merged over the shipped one, and a policy in place of the built-in one.
#[derive(Debug, Clone, Default)]
pub struct EnrichFiles {
    pub providers: Option<PathBuf>,
    pub policy: Option<PathBuf>,
}

pub fn load_policy(path: Option<&Path>) -> Result<Policy> {
    match path {
        None => Ok(Policy::builtin()),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|source| SinkError::Io { what: format!("reading policy {}", p.display()), source })?;
            Policy::from_toml(&text, &p.display().to_string()).map_err(|e| SinkError::Invalid(e.to_string()))
        }
    }
}

/// The provider registry: the shipped one plus `--providers FILE`.
pub fn load_registry(extra: Option<&Path>) -> Result<textwatch_numbers::Registry> {
    let r = textwatch_numbers::Registry::shipped();
    match extra {
        None => Ok(r),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|source| SinkError::Io { what: format!("reading {}", p.display()), source })?;
            r.merged(&text, &p.display().to_string()).map_err(|e| SinkError::Invalid(e.to_string()))
        }
    }
}

/// The attribution index over everything imported into the store.
pub fn load_directory(store: &dyn Store, registry: textwatch_numbers::Registry) -> Result<Directory> {
    let mut rows = Vec::new();
    store.number_prefixes(&mut |r| rows.push(r))?;
    Ok(Directory::new(rows, registry))
}

impl Enricher {
    pub fn load(store: &dyn Store, args: &EnrichFiles) -> Result<Enricher> {
        let registry = load_registry(args.providers.as_deref())?;
        Ok(Enricher {
            dir: load_directory(store, registry)?,
            policy: load_policy(args.policy.as_deref())?,
            blocked: store.blocked_campaigns()?.into_iter().collect(),
            allows: Allows::load(store)?,
        })
    }

    /// Fills providers, adds `sender-invalid`, recomputes risk and decides.
    /// `senders` are (sender, messages) for the whole campaign.
    pub fn enrich(&self, s: &mut CampaignSummary, senders: &[(String, u64)]) {
        s.providers = self.providers(senders);
        let classes = sender_classes(senders.iter().map(|x| x.0.as_str()));
        let mut added = false;
        if let Some(f) = invalid_finding(senders) {
            s.findings.retain(|x| x.rule != SENDER_INVALID);
            s.findings.push(f);
            added = true;
        }
        if let Some(f) = self.use_case_finding(s.category.as_deref(), s.subcategory.as_deref(), senders) {
            s.findings.retain(|x| x.rule != USE_CASE_MISMATCH);
            s.findings.push(f);
            added = true;
        }
        if added {
            s.findings.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.rule.cmp(&b.rule)));
            s.risk = Some(textwatch_engine::rules::risk(s.findings.iter().map(|f| &f.severity), s.messages));
        }
        // An overturned appeal is the last word on its campaign, over the
        // policy and a manual block, until another decision.
        if let Some(rule) = self.allows.campaigns.get(&s.id) {
            s.decision = Some(Allows::decision(rule, textwatch_engine::policy::Scope::Campaign));
            return;
        }
        s.decision = Some(match self.blocked.get(&s.id) {
            Some(reason) => Decision {
                action: Action::Block,
                scope: textwatch_engine::policy::Scope::Campaign,
                rule: "manual-block".into(),
                reasons: vec![reason.clone()],
            },
            None => self.policy.decide(&facts(s, &classes)),
        });
    }

    /// A campaign whose senders are registered (inventory `use_case`) under
    /// a 10DLC use case that does not allow its observed category: political
    /// texts over a marketing registration (high: political traffic must
    /// use the Political use case), a scam or spam over any (high), anything
    /// else outside what the use case allows (medium).
    pub fn use_case_finding(
        &self,
        category: Option<&str>,
        subcategory: Option<&str>,
        senders: &[(String, u64)],
    ) -> Option<Finding> {
        let category = category?;
        let mut count = 0;
        let mut example = None;
        for (s, n) in senders {
            let a = self.dir.attribute(s);
            let Some(fact) = a.provider_fact.as_ref().filter(|f| f.kind == textwatch_numbers::SourceKind::Inventory)
            else {
                continue;
            };
            let Some(code) = textwatch_numbers::use_case::of_detail(&fact.detail) else { continue };
            if textwatch_numbers::use_case::allows(code).contains(&category) {
                continue;
            }
            count += n;
            example.get_or_insert_with(|| {
                let observed = match subcategory {
                    Some(sub) => format!("{category}/{sub}"),
                    None => category.to_string(),
                };
                format!("{s} is registered for {code} ({}) but sends {observed}", fact.source)
            });
        }
        let severity =
            if matches!(category, "political" | "scam" | "spam") { Severity::High } else { Severity::Medium };
        example.map(|excerpt| Finding {
            rule: USE_CASE_MISMATCH.into(),
            severity,
            count,
            example: Evidence { span: None, excerpt, place: None, time: None },
        })
    }

    /// The policy's reasoning for an enriched campaign, rule by rule.
    pub fn explain(&self, s: &CampaignSummary, senders: &[(String, u64)]) -> (Decision, Vec<RuleCheck>) {
        let classes = sender_classes(senders.iter().map(|x| x.0.as_str()));
        let f = facts(s, &classes);
        (self.policy.decide(&f), self.policy.explain(&f))
    }

    /// Senders grouped by provider, largest group first, then by name.
    pub fn providers(&self, senders: &[(String, u64)]) -> Vec<ProviderGroup> {
        struct Acc {
            senders: Vec<String>,
            messages: u64,
            sources: Vec<String>,
            /// holder name -> (senders, source files)
            holders: BTreeMap<String, (u64, Vec<String>)>,
        }
        let mut groups: BTreeMap<String, Acc> = BTreeMap::new();
        for (sender, n) in senders {
            let a = self.dir.attribute(sender);
            let name = a.provider.clone().unwrap_or_else(|| "unknown".into());
            let source = match &a.provider_fact {
                Some(f) => match f.kind {
                    textwatch_numbers::SourceKind::Inventory => format!("inventory: {}", f.source),
                    _ => match &f.date {
                        Some(d) => format!("{} ({d})", f.detail),
                        None => f.detail.clone(),
                    },
                },
                None => "no number data covers these senders".into(),
            };
            let holder = match a.provider_fact.as_ref().map(|f| f.kind) {
                Some(textwatch_numbers::SourceKind::Inventory) => a.block.as_ref().or(a.exchange.as_ref()),
                _ => None,
            };
            let g = groups.entry(name).or_insert_with(|| Acc {
                senders: Vec::new(),
                messages: 0,
                sources: Vec::new(),
                holders: BTreeMap::new(),
            });
            g.senders.push(sender.clone());
            g.messages += n;
            if !g.sources.contains(&source) {
                g.sources.push(source);
            }
            if let Some(h) = holder {
                let e = g.holders.entry(h.name.clone()).or_default();
                e.0 += 1;
                let what = match h.kind {
                    textwatch_numbers::SourceKind::NanpaBlock => format!("NANPA blocks, {}", h.source),
                    _ => format!("NANPA exchanges, {}", h.source),
                };
                if !e.1.contains(&what) {
                    e.1.push(what);
                }
            }
        }
        let mut out: Vec<(u64, ProviderGroup)> = groups
            .into_iter()
            .map(|(name, mut g)| {
                g.sources.sort();
                g.senders.sort();
                let holders = g
                    .holders
                    .into_iter()
                    .map(|(h, (n, mut src))| {
                        src.sort();
                        format!("{h} ({n} sender{}; {})", if n == 1 { "" } else { "s" }, src.join("; "))
                    })
                    .collect();
                let known = self.dir.registry().get(&name);
                let group = ProviderGroup {
                    abuse_contact: known.and_then(abuse_contact),
                    report_format: known.map(|p| p.report_format.clone()),
                    name,
                    senders: g.senders,
                    source: g.sources.join("; "),
                    holders,
                };
                (g.messages, group)
            })
            .collect();
        out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
        out.into_iter().map(|x| x.1).collect()
    }
}

/// When a campaign first met a policy level: its message count and the
/// message time then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Detection {
    pub messages: u64,
    pub first_ts: i64,
    pub at_ts: i64,
}

impl Enricher {
    /// Replays a campaign's messages in time order and finds the first
    /// message after which the policy decides `level` or stronger, with
    /// the findings, category, risk and senders the campaign had then. This
    /// is what time-to-detect reports, independent of how the input was
    /// batched.
    pub fn first_decision_at(&self, store: &dyn Store, id: &str, level: Action) -> Result<Option<Detection>> {
        use std::collections::{HashMap, HashSet};
        let templates = store.campaign_templates(id)?;
        let index: HashMap<u64, usize> = templates.iter().enumerate().map(|(i, t)| (t.key, i)).collect();
        // rule id -> (messages, worst severity, campaign share)
        let mut rules: Vec<(&str, u64, Severity, f32)> = Vec::new();
        let mut rule_slots: Vec<Vec<usize>> = Vec::with_capacity(templates.len());
        for t in &templates {
            let mut slots = Vec::new();
            for f in &t.findings {
                let i = match rules.iter().position(|r| r.0 == f.rule) {
                    Some(i) => {
                        rules[i].2 = rules[i].2.max(f.severity);
                        i
                    }
                    None => {
                        rules.push((f.rule.as_str(), 0, f.severity, f.campaign_share));
                        rules.len() - 1
                    }
                };
                slots.push(i);
            }
            rule_slots.push(slots);
        }
        let mut counts = vec![0u64; templates.len()];
        let mut best: Option<usize> = None;
        let mut total = 0u64;
        let mut senders: HashSet<String> = HashSet::new();
        let mut classes: Vec<&'static str> = Vec::new();
        let mut invalid_msgs = 0u64;
        let mut first_ts = None;
        let mut found = None;
        store.campaign_stream(id, &mut |ts, key, sender| {
            let Some(&t) = index.get(&key) else { return true };
            first_ts.get_or_insert(ts);
            total += 1;
            counts[t] += 1;
            if best.is_none_or(|b| counts[t] > counts[b]) {
                best = Some(t);
            }
            for &r in &rule_slots[t] {
                rules[r].1 += 1;
            }
            if !senders.contains(sender) {
                let info = classify(sender, NpaTable::shipped());
                let c = info.class.as_str();
                if !classes.contains(&c) {
                    classes.push(c);
                }
                senders.insert(sender.to_string());
            }
            if classes.contains(&"invalid") && classify(sender, NpaTable::shipped()).class == SenderClass::Invalid {
                invalid_msgs += 1;
            }
            if total < 2 {
                // A campaign is two or more copies of a text.
                return true;
            }
            let mut findings: Vec<(&str, Severity)> = rules
                .iter()
                .filter(|r| r.1 > 0 && r.1 as f64 >= r.3 as f64 * total as f64)
                .map(|r| (r.0, r.2))
                .collect();
            if invalid_msgs > 0 {
                findings.push((SENDER_INVALID, Severity::High));
            }
            let risk = textwatch_engine::rules::risk(findings.iter().map(|f| &f.1), total);
            let facts = Facts {
                findings,
                category: best.and_then(|b| templates[b].category.as_deref()),
                subcategory: None,
                risk,
                messages: total,
                senders: senders.len() as u64,
                sender_classes: classes.clone(),
            };
            if self.policy.decide(&facts).action >= level {
                found = Some(Detection { messages: total, first_ts: first_ts.unwrap_or(ts), at_ts: ts });
                return false;
            }
            true
        })?;
        Ok(found)
    }
}

/// The abuse contact of a provider: its e-mail, else its web form, else
/// `abuse@` its domain (RFC 2142).
pub fn abuse_contact(p: &Provider) -> Option<String> {
    p.abuse_email.clone().or_else(|| p.abuse_url.clone()).or_else(|| p.domain.as_ref().map(|d| format!("abuse@{d}")))
}

fn sender_classes<'a>(senders: impl Iterator<Item = &'a str>) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = senders.map(|s| classify(s, NpaTable::shipped()).class.as_str()).collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn facts<'a>(s: &'a CampaignSummary, classes: &[&'static str]) -> Facts<'a> {
    Facts {
        findings: s.findings.iter().map(|f| (f.rule.as_str(), f.severity)).collect(),
        category: s.category.as_deref(),
        subcategory: s.subcategory.as_deref(),
        risk: s.risk.unwrap_or(0),
        messages: s.messages,
        senders: s.sender_count,
        sender_classes: classes.to_vec(),
    }
}

/// `sender-invalid` over a campaign's senders: how many messages came from
/// impossible numbers, with the first such sender and why as evidence.
pub fn invalid_finding(senders: &[(String, u64)]) -> Option<Finding> {
    let mut count = 0;
    let mut example = None;
    for (s, n) in senders {
        let info = classify(s, NpaTable::shipped());
        if info.class == SenderClass::Invalid {
            count += n;
            if example.is_none() {
                example = Some(format!("{s}: {}", info.invalid.unwrap_or_default()));
            }
        }
    }
    example.map(|excerpt| Finding {
        rule: SENDER_INVALID.into(),
        severity: Severity::High,
        count,
        example: Evidence { span: None, excerpt, place: None, time: None },
    })
}

/// The finding for one message's sender, if it is impossible.
pub fn sender_finding(sender: &str) -> Option<textwatch_engine::Finding> {
    let info = classify(sender, NpaTable::shipped());
    (info.class == SenderClass::Invalid).then(|| textwatch_engine::Finding {
        rule: SENDER_INVALID.into(),
        severity: Severity::High,
        evidence: Evidence {
            span: None,
            excerpt: format!("{sender}: {}", info.invalid.unwrap_or_default()),
            place: None,
            time: None,
        },
        campaign_share: 0.0,
    })
}

/// Senders of a summary as (sender, messages) pairs.
pub fn summary_senders(s: &CampaignSummary) -> Vec<(String, u64)> {
    s.senders.iter().cloned().zip(s.sender_messages.iter().copied().chain(std::iter::repeat(0))).collect()
}
