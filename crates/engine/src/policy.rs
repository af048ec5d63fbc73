//! Policy: what to do about a campaign or a message.
//!
//! A policy is an ordered list of rules (TOML, `policy/default.toml` is
//! shipped); each has conditions on the facts textwatch knows (findings,
//! category, risk, message and sender counts, sender classes) and an action
//! (`allow`, `flag`, `block`) with a scope (`message`, `sender`,
//! `campaign`). The first rule whose conditions all hold decides; no match
//! means allow. [`Policy::explain`] tells for every rule which condition
//! held or failed, so a decision can always be read back.

use serde::{Deserialize, Serialize};

use crate::rules::Severity;

/// The shipped policy.
pub const DEFAULT_POLICY: &str = include_str!("../../../policy/default.toml");

/// What to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Flag,
    Block,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Flag => "flag",
            Action::Block => "block",
        }
    }
}

/// What the action applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// The message judged (and each like it).
    Message,
    /// The senders of the campaign or message.
    Sender,
    /// The whole campaign, by template fingerprint.
    Campaign,
}

/// Conditions; all given ones must hold.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// At least one of these finding rule ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings_any: Vec<String>,
    /// Every one of these finding rule ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings_all: Vec<String>,
    /// Some finding at least this severe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<Severity>,
    /// The category is one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub category: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_risk: Option<u8>,
    /// Messages in the campaign (1 for a lone message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_messages: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_senders: Option<u64>,
    /// Some sender is of one of these classes (`long-code`, `toll-free`,
    /// `short-code`, `international`, `alphanumeric`, `invalid`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sender_class: Vec<String>,
}

/// One policy rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub action: Action,
    #[serde(default = "default_scope")]
    pub scope: Scope,
    #[serde(default)]
    pub when: When,
}

fn default_scope() -> Scope {
    Scope::Campaign
}

/// Alert settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    /// Alert when a decision reaches this action (`flag` or `block`).
    #[serde(default = "default_alert")]
    pub min_action: Action,
}

fn default_alert() -> Action {
    Action::Flag
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig { min_action: Action::Flag }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    alerts: AlertConfig,
    #[serde(default)]
    rule: Vec<PolicyRule>,
}

/// A loaded policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub rules: Vec<PolicyRule>,
    pub alerts: AlertConfig,
    /// Where it came from (file name or `built-in`).
    pub origin: String,
}

/// Policy file errors.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{file}: {source}")]
    Toml { file: String, source: toml::de::Error },
    #[error("{file}: rule {name:?}: {reason}")]
    Rule { file: String, name: String, reason: String },
}

/// The facts a decision is made from.
#[derive(Clone, Debug, Default)]
pub struct Facts<'a> {
    /// (rule id, severity) of each finding.
    pub findings: Vec<(&'a str, Severity)>,
    pub category: Option<&'a str>,
    /// The category's second level, when known.
    pub subcategory: Option<&'a str>,
    pub risk: u8,
    pub messages: u64,
    pub senders: u64,
    pub sender_classes: Vec<&'a str>,
}

/// A decision and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub action: Action,
    pub scope: Scope,
    /// The policy rule that decided (`default` when none matched).
    pub rule: String,
    /// The conditions that held, in words.
    pub reasons: Vec<String>,
}

/// One rule's verdict in an explanation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleCheck {
    pub rule: String,
    pub action: Action,
    pub scope: Scope,
    pub matched: bool,
    /// Each condition: (held, what it says).
    pub conditions: Vec<(bool, String)>,
}

impl Policy {
    /// The shipped policy.
    pub fn builtin() -> Policy {
        Policy::from_toml(DEFAULT_POLICY, "built-in policy").expect("the shipped policy parses (tested)")
    }

    pub fn from_toml(text: &str, file: &str) -> Result<Policy, PolicyError> {
        let f: PolicyFile = toml::from_str(text).map_err(|source| PolicyError::Toml { file: file.into(), source })?;
        for r in &f.rule {
            let bad =
                |reason: &str| PolicyError::Rule { file: file.into(), name: r.name.clone(), reason: reason.into() };
            if r.name.trim().is_empty() {
                return Err(bad("every rule needs a name"));
            }
            if r.when == When::default() {
                return Err(bad(
                    "a rule with no conditions would decide everything; give at least one `when` condition",
                ));
            }
            if let Some(c) = r.when.sender_class.iter().find(|c| {
                !["long-code", "toll-free", "short-code", "international", "alphanumeric", "invalid"]
                    .contains(&c.as_str())
            }) {
                return Err(bad(&format!("unknown sender_class {c:?}")));
            }
            if let Some(c) = r.when.category.iter().find(|c| !crate::taxonomy::is_known(c)) {
                return Err(bad(&format!(
                    "unknown category {c:?} (a category: {}; or category/subcategory, see docs/rules.md#categories)",
                    crate::taxonomy::CATEGORIES.join(", ")
                )));
            }
        }
        if f.alerts.min_action == Action::Allow {
            return Err(PolicyError::Rule {
                file: file.into(),
                name: "alerts".into(),
                reason: "min_action = \"allow\" would alert on everything; use flag or block".into(),
            });
        }
        Ok(Policy { rules: f.rule, alerts: f.alerts, origin: file.to_string() })
    }

    /// Every rule's conditions checked against the facts, in order.
    pub fn explain(&self, f: &Facts<'_>) -> Vec<RuleCheck> {
        self.rules
            .iter()
            .map(|r| {
                let conditions = check(&r.when, f);
                RuleCheck {
                    rule: r.name.clone(),
                    action: r.action,
                    scope: r.scope,
                    matched: conditions.iter().all(|c| c.0),
                    conditions,
                }
            })
            .collect()
    }

    /// The decision: the first rule whose conditions all hold.
    pub fn decide(&self, f: &Facts<'_>) -> Decision {
        for r in &self.rules {
            let conditions = check(&r.when, f);
            if conditions.iter().all(|c| c.0) {
                return Decision {
                    action: r.action,
                    scope: r.scope,
                    rule: r.name.clone(),
                    reasons: conditions.into_iter().map(|c| c.1).collect(),
                };
            }
        }
        Decision {
            action: Action::Allow,
            scope: Scope::Message,
            rule: "default".into(),
            reasons: vec!["no policy rule matched".into()],
        }
    }
}

fn check(w: &When, f: &Facts<'_>) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    let has = |id: &str| f.findings.iter().any(|(r, _)| *r == id);
    if !w.findings_any.is_empty() {
        let hit: Vec<&str> = w.findings_any.iter().map(String::as_str).filter(|id| has(id)).collect();
        out.push(if hit.is_empty() {
            (false, format!("none of the findings {}", w.findings_any.join(", ")))
        } else {
            (true, format!("finding {}", hit.join(", ")))
        });
    }
    if !w.findings_all.is_empty() {
        let missing: Vec<&str> = w.findings_all.iter().map(String::as_str).filter(|id| !has(id)).collect();
        out.push(if missing.is_empty() {
            (true, format!("all of the findings {}", w.findings_all.join(", ")))
        } else {
            (false, format!("missing finding {}", missing.join(", ")))
        });
    }
    if let Some(min) = w.min_severity {
        let worst = f.findings.iter().map(|x| x.1).max();
        let name = |s: Severity| format!("{s:?}").to_lowercase();
        out.push(match worst {
            Some(s) if s >= min => (true, format!("a {} finding (at least {})", name(s), name(min))),
            Some(s) => (false, format!("worst finding is {}, below {}", name(s), name(min))),
            None => (false, "no findings".into()),
        });
    }
    if !w.category.is_empty() {
        let c = f.category.unwrap_or("unknown");
        let ok = w.category.iter().any(|x| crate::taxonomy::selects(x, c, f.subcategory));
        let shown = match f.subcategory {
            Some(sub) => format!("{c}/{sub}"),
            None => c.to_string(),
        };
        out.push((
            ok,
            format!("category {shown} {} {}", if ok { "is one of" } else { "is not one of" }, w.category.join(", ")),
        ));
    }
    if let Some(min) = w.min_risk {
        out.push((f.risk >= min, format!("risk {} {} {min}", f.risk, if f.risk >= min { ">=" } else { "<" })));
    }
    if let Some(min) = w.min_messages {
        out.push((
            f.messages >= min,
            format!("{} messages {} {min}", f.messages, if f.messages >= min { ">=" } else { "<" }),
        ));
    }
    if let Some(min) = w.min_senders {
        out.push((
            f.senders >= min,
            format!("{} senders {} {min}", f.senders, if f.senders >= min { ">=" } else { "<" }),
        ));
    }
    if !w.sender_class.is_empty() {
        let hit: Vec<&str> =
            f.sender_classes.iter().copied().filter(|c| w.sender_class.iter().any(|x| x == c)).collect();
        out.push(if hit.is_empty() {
            (false, format!("no sender is {}", w.sender_class.join(" or ")))
        } else {
            (true, format!("a sender is {}", hit.join(", ")))
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(findings: &[(&'a str, Severity)], category: &'a str, risk: u8, messages: u64) -> Facts<'a> {
        Facts {
            findings: findings.to_vec(),
            category: Some(category),
            subcategory: None,
            risk,
            messages,
            senders: 1,
            sender_classes: vec!["long-code"],
        }
    }

    #[test]
    fn shipped_policy_decides_the_incident_and_spares_compliant_texts() {
        let p = Policy::builtin();
        let d = p.decide(&facts(
            &[("election-misinfo", Severity::High), ("optout-missing", Severity::Medium)],
            "political",
            80,
            5000,
        ));
        assert_eq!(
            (d.action, d.scope, d.rule.as_str()),
            (Action::Block, Scope::Campaign, "incitement-or-election-lies")
        );
        assert!(d.reasons.iter().any(|r| r.contains("election-misinfo")), "{:?}", d.reasons);
        let d = p.decide(&facts(&[], "political", 0, 5000));
        assert_eq!((d.action, d.rule.as_str()), (Action::Allow, "default"));
        let d = p.decide(&facts(&[("optout-missing", Severity::Medium)], "commercial", 35, 500));
        assert_eq!((d.action, d.rule.as_str()), (Action::Flag, "bulk-without-opt-out"));
        // A lone person-to-person text without opt-out is not bulk.
        let d = p.decide(&facts(&[("optout-missing", Severity::Medium)], "ham", 30, 1));
        assert_eq!(d.action, Action::Allow);
        let d = p.decide(&facts(&[("sender-invalid", Severity::High)], "ham", 55, 1));
        assert_eq!((d.action, d.scope), (Action::Block, Scope::Sender));
    }

    #[test]
    fn explain_lists_each_condition() {
        let p = Policy::builtin();
        let ex = p.explain(&facts(&[("optout-missing", Severity::Medium)], "commercial", 35, 5));
        let r = ex.iter().find(|r| r.rule == "bulk-without-opt-out").unwrap();
        assert!(!r.matched);
        assert!(r.conditions.iter().any(|(ok, s)| !ok && s == "5 messages < 10"), "{:?}", r.conditions);
        assert!(r.conditions.iter().any(|(ok, s)| *ok && s == "finding optout-missing"));
    }

    #[test]
    fn bad_policies_name_file_and_rule() {
        let e = Policy::from_toml("[[rule]]\nname = \"x\"\naction = \"block\"\n", "p.toml").unwrap_err().to_string();
        assert!(e.contains("p.toml") && e.contains("\"x\"") && e.contains("no conditions"), "{e}");
        let e = Policy::from_toml("[[rule]]\nname = \"x\"\naction = \"nuke\"\n[rule.when]\nmin_risk = 1\n", "p.toml")
            .unwrap_err();
        assert!(e.to_string().contains("p.toml"));
        let e = Policy::from_toml(
            "[[rule]]\nname = \"x\"\naction = \"flag\"\n[rule.when]\ncategory = [\"spamm\"]\n",
            "p.toml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown category"));
        let e = Policy::from_toml("[[rule]]\nname = \"x\"\naction = \"flag\"\n[rule.when]\nmin_rsk = 1\n", "p.toml")
            .unwrap_err();
        assert!(e.to_string().contains("min_rsk"));
    }
}
