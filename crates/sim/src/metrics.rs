//! Scoring found campaigns against ground truth.
//!
//! **B-cubed** (Bagga & Baldwin 1998) scores each message: precision is the
//! share of its found campaign that truly belongs with it, recall the share
//! of its true campaign found with it; both averaged over messages. Messages
//! with no true campaign count as their own singleton, and so do messages
//! textwatch put in no campaign. It is reported over all messages and over
//! the messages of true campaigns only (background singletons are easy and
//! otherwise dominate).
//!
//! Per true campaign: its *dominant* found campaign (the one holding most of
//! its messages), whether it was *split* (its messages are in two or more
//! found campaigns) or *merged* (its dominant found campaign also holds
//! messages of another true campaign), the share of its senders that the
//! dominant campaign lists, and *messages-to-detect*: how many of its
//! messages had been sent when the dominant campaign formed.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;

use serde::{Deserialize, Serialize};

/// Errors reading a truth file.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("reading the truth file: {0}")]
    Io(#[from] std::io::Error),
    #[error("truth file line {line}: {reason}")]
    Line { line: u64, reason: String },
}

/// The facts of one true campaign, as the simulator writes them.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Fact {
    pub label: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub messages: u64,
    #[serde(default)]
    pub senders: Vec<String>,
    #[serde(default)]
    pub findings: Vec<String>,
}

/// Precision, recall, F1.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct Prf {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

impl Prf {
    fn new(p: f64, r: f64) -> Self {
        let f1 = if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 };
        Prf { precision: p, recall: r, f1 }
    }
}

/// The score of one true campaign.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CampaignScore {
    pub label: String,
    pub kind: String,
    pub messages: u64,
    /// Messages scored (found in the predictions).
    pub seen: u64,
    /// Its dominant found campaign, if any of its messages are in one.
    pub found_as: Option<String>,
    /// Share of its messages in the dominant found campaign.
    pub coverage: f64,
    /// Share of the dominant found campaign that is this campaign.
    pub purity: f64,
    pub split: bool,
    pub merged: bool,
    /// Share of its true senders listed by the dominant found campaign.
    pub senders_found: f64,
    /// How many of its messages had been sent when the dominant found
    /// campaign formed.
    pub messages_to_detect: Option<u64>,
    /// Category of the dominant found campaign.
    pub category: Option<String>,
    /// Rules the truth expects that the found campaign lacks.
    pub findings_missing: Vec<String>,
    /// Rules the found campaign carries that the truth does not expect.
    pub findings_extra: Vec<String>,
    /// Share of its true senders attributed to its true provider; present
    /// when attribution was scored.
    pub attribution: Option<f64>,
}

/// Finding quality over (true campaign, rule) pairs: a rule expected of a
/// true campaign and carried by its dominant found campaign is a true
/// positive; carried but not expected, a false positive; expected but not
/// carried (or the campaign not found), a false negative.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct FindingScore {
    pub true_positives: u64,
    pub false_positives: u64,
    pub false_negatives: u64,
    pub precision: f64,
    pub recall: f64,
}

/// The whole evaluation.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Report {
    pub messages: u64,
    /// Predicted messages absent from the truth file (ignored).
    pub unknown_messages: u64,
    /// Truth messages absent from the predictions.
    pub missing_messages: u64,
    pub bcubed: Prf,
    pub bcubed_campaign_messages: Prf,
    pub true_campaigns: u64,
    pub found_campaigns: u64,
    pub split: u64,
    pub merged: u64,
    /// Present when the found campaigns' findings were given.
    pub findings: Option<FindingScore>,
    /// Share of true campaigns whose dominant found campaign has the true
    /// category; present when found categories were given.
    pub category_accuracy: Option<f64>,
    /// Share of the true campaigns' senders attributed to the provider the
    /// truth names; present when attribution was scored.
    pub attribution_accuracy: Option<f64>,
    pub campaigns: Vec<CampaignScore>,
}

/// A found assignment for one message.
#[derive(Clone, Copy, Debug)]
pub struct Prediction<'a> {
    pub id: &'a str,
    pub campaign: Option<&'a str>,
    pub ts_ms: i64,
    pub from: &'a str,
}

#[derive(Deserialize)]
struct TruthLine {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    campaign: Option<String>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

/// FNV-1a: a stable 64-bit key for message ids, to keep ten million of them
/// in memory cheaply.
fn id_key(id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

const NONE: u32 = u32::MAX;

/// Ground truth loaded for scoring.
#[derive(Debug, Default)]
pub struct Truth {
    labels: Vec<String>,
    label_ids: HashMap<String, u32>,
    by_id: HashMap<u64, u32>,
    pub facts: Vec<Fact>,
}

impl Truth {
    /// Reads a truth file: `{"type":"message","id":..,"campaign":..}` lines
    /// and `{"type":"campaign", ...facts}` lines, in any order.
    pub fn read(r: impl BufRead) -> Result<Self, EvalError> {
        let mut t = Truth::default();
        for (i, line) in r.lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let v: TruthLine = serde_json::from_str(&line)
                .map_err(|e| EvalError::Line { line: i as u64 + 1, reason: e.to_string() })?;
            match v.kind.as_deref() {
                Some("campaign") => {
                    let mut obj = v.rest;
                    if let Some(c) = v.campaign {
                        obj.insert("campaign".into(), c.into());
                    }
                    let fact: Fact = serde_json::from_value(serde_json::Value::Object(obj))
                        .map_err(|e| EvalError::Line { line: i as u64 + 1, reason: e.to_string() })?;
                    t.intern(&fact.label);
                    t.facts.push(fact);
                }
                Some("message") | None => {
                    let id =
                        v.id.ok_or_else(|| EvalError::Line { line: i as u64 + 1, reason: "missing `id`".into() })?;
                    let label = match v.campaign {
                        Some(c) => t.intern(&c),
                        None => NONE,
                    };
                    t.by_id.insert(id_key(&id), label);
                }
                Some(other) => {
                    return Err(EvalError::Line { line: i as u64 + 1, reason: format!("unknown type {other:?}") })
                }
            }
        }
        Ok(t)
    }

    fn intern(&mut self, label: &str) -> u32 {
        if let Some(&i) = self.label_ids.get(label) {
            return i;
        }
        let i = self.labels.len() as u32;
        self.labels.push(label.to_string());
        self.label_ids.insert(label.to_string(), i);
        i
    }

    /// Number of messages in the truth.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether the truth holds no messages.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The true campaign of a message id (None for background or unknown).
    pub fn label_of(&self, id: &str) -> Option<&str> {
        match self.by_id.get(&id_key(id)) {
            Some(&l) if l != NONE => Some(&self.labels[l as usize]),
            _ => None,
        }
    }

    /// Scores predictions. `formed` gives each found campaign's formation
    /// time (ms), for messages-to-detect.
    pub fn score<'a>(&self, preds: impl IntoIterator<Item = Prediction<'a>>, formed: &HashMap<String, i64>) -> Report {
        let nl = self.labels.len();
        let mut pred_ids: HashMap<String, u32> = HashMap::new();
        let mut pred_names: Vec<String> = Vec::new();
        // (true, pred) for every message; NONE for none.
        let mut rows: Vec<(u32, u32)> = Vec::with_capacity(self.by_id.len());
        let mut unknown = 0u64;
        let mut ts_by_label: Vec<Vec<i64>> = vec![Vec::new(); nl];
        let mut senders_by_pred: HashMap<u32, std::collections::HashSet<String>> = HashMap::new();
        for p in preds {
            let Some(&t) = self.by_id.get(&id_key(p.id)) else {
                unknown += 1;
                continue;
            };
            let c = match p.campaign {
                Some(c) => {
                    let next = pred_names.len() as u32;
                    let id = *pred_ids.entry(c.to_string()).or_insert_with(|| {
                        pred_names.push(c.to_string());
                        next
                    });
                    senders_by_pred.entry(id).or_default().insert(p.from.to_string());
                    id
                }
                None => NONE,
            };
            if t != NONE {
                ts_by_label[t as usize].push(p.ts_ms);
            }
            rows.push((t, c));
        }
        let n = rows.len() as f64;
        let mut size_t: HashMap<u32, u64> = HashMap::new();
        let mut size_p: HashMap<u32, u64> = HashMap::new();
        let mut both: HashMap<(u32, u32), u64> = HashMap::new();
        for &(t, p) in &rows {
            if t != NONE {
                *size_t.entry(t).or_default() += 1;
            }
            if p != NONE {
                *size_p.entry(p).or_default() += 1;
            }
            if t != NONE && p != NONE {
                *both.entry((t, p)).or_default() += 1;
            }
        }
        let bcubed_over = |only_campaigns: bool| -> Prf {
            // Restricting to campaign messages changes found-campaign sizes too.
            let (sp, bo): (HashMap<u32, u64>, HashMap<(u32, u32), u64>) = if only_campaigns {
                let mut sp = HashMap::new();
                for &(t, p) in &rows {
                    if t != NONE && p != NONE {
                        *sp.entry(p).or_default() += 1;
                    }
                }
                (sp, both.clone())
            } else {
                (size_p.clone(), both.clone())
            };
            let (mut ps, mut rs, mut m) = (0.0, 0.0, 0.0);
            for &(t, p) in &rows {
                if only_campaigns && t == NONE {
                    continue;
                }
                m += 1.0;
                let inter = if t != NONE && p != NONE { bo[&(t, p)] as f64 } else { 1.0 };
                let pn = if p != NONE { sp[&p] as f64 } else { 1.0 };
                let tn = if t != NONE { size_t[&t] as f64 } else { 1.0 };
                ps += inter / pn;
                rs += inter / tn;
            }
            if m == 0.0 {
                return Prf::new(1.0, 1.0);
            }
            Prf::new(ps / m, rs / m)
        };
        let bcubed = if n > 0.0 { bcubed_over(false) } else { Prf::new(1.0, 1.0) };
        let bcubed_campaign_messages = bcubed_over(true);

        // Per true campaign.
        let mut by_t: BTreeMap<u32, Vec<(u32, u64)>> = BTreeMap::new();
        for (&(t, p), &k) in &both {
            by_t.entry(t).or_default().push((p, k));
        }
        let mut labels_in_pred: HashMap<u32, u32> = HashMap::new();
        for &(t, p) in both.keys() {
            let _ = t;
            *labels_in_pred.entry(p).or_default() += 1;
        }
        let mut campaigns = Vec::new();
        let (mut split, mut merged) = (0, 0);
        for (li, label) in self.labels.iter().enumerate() {
            let li = li as u32;
            let fact = self.facts.iter().find(|f| &f.label == label);
            let seen = size_t.get(&li).copied().unwrap_or(0);
            let mut parts = by_t.get(&li).cloned().unwrap_or_default();
            parts.sort_by(|a, b| b.1.cmp(&a.1).then(pred_names[a.0 as usize].cmp(&pred_names[b.0 as usize])));
            let dominant = parts.first().copied();
            let is_split = parts.len() > 1;
            let is_merged = dominant.is_some_and(|(p, _)| labels_in_pred.get(&p).copied().unwrap_or(0) > 1);
            split += is_split as u64;
            merged += is_merged as u64;
            let (found_as, coverage, purity, senders_found, mtd) = match dominant {
                Some((p, k)) => {
                    let name = pred_names[p as usize].clone();
                    let true_senders = fact.map(|f| f.senders.as_slice()).unwrap_or(&[]);
                    let listed = senders_by_pred.get(&p);
                    let found = true_senders.iter().filter(|s| listed.is_some_and(|l| l.contains(*s))).count();
                    let sf = if true_senders.is_empty() { 0.0 } else { found as f64 / true_senders.len() as f64 };
                    let mtd = formed
                        .get(&name)
                        .map(|&f| ts_by_label[li as usize].iter().filter(|&&ts| ts <= f).count() as u64);
                    (Some(name), k as f64 / seen.max(1) as f64, k as f64 / size_p[&p] as f64, sf, mtd)
                }
                None => (None, 0.0, 0.0, 0.0, None),
            };
            campaigns.push(CampaignScore {
                label: label.clone(),
                kind: fact.map(|f| f.kind.clone()).unwrap_or_default(),
                messages: fact.map_or(seen, |f| f.messages),
                seen,
                found_as,
                coverage,
                purity,
                split: is_split,
                merged: is_merged,
                senders_found,
                messages_to_detect: mtd,
                category: None,
                findings_missing: Vec::new(),
                findings_extra: Vec::new(),
                attribution: None,
            });
        }
        let missing = self.by_id.len() as u64 - (rows.len() as u64).min(self.by_id.len() as u64);
        Report {
            messages: rows.len() as u64,
            unknown_messages: unknown,
            missing_messages: missing,
            bcubed,
            bcubed_campaign_messages,
            true_campaigns: self.labels.len() as u64,
            found_campaigns: pred_names.len() as u64,
            split,
            merged,
            findings: None,
            category_accuracy: None,
            attribution_accuracy: None,
            campaigns,
        }
    }

    /// Adds category accuracy to a report, given each found campaign's
    /// category.
    pub fn score_categories(&self, report: &mut Report, found: &HashMap<String, Option<String>>) {
        let (mut right, mut total) = (0u64, 0u64);
        for c in &mut report.campaigns {
            let Some(fact) = self.facts.iter().find(|f| f.label == c.label) else { continue };
            if fact.category.is_empty() {
                continue;
            }
            c.category = c.found_as.as_ref().and_then(|id| found.get(id)).cloned().flatten();
            total += 1;
            right += (c.category.as_deref() == Some(fact.category.as_str())) as u64;
        }
        if total > 0 {
            report.category_accuracy = Some(right as f64 / total as f64);
        }
    }

    /// Adds attribution accuracy: for every true campaign's sender, whether
    /// `provider_of(sender)` names the campaign's true provider
    /// (case-insensitive).
    pub fn score_attribution(&self, report: &mut Report, provider_of: &dyn Fn(&str) -> Option<String>) {
        let (mut right, mut total) = (0u64, 0u64);
        for c in &mut report.campaigns {
            let Some(fact) = self.facts.iter().find(|f| f.label == c.label) else { continue };
            if fact.provider.is_empty() || fact.senders.is_empty() {
                continue;
            }
            let ok = fact
                .senders
                .iter()
                .filter(|s| provider_of(s).is_some_and(|p| p.eq_ignore_ascii_case(&fact.provider)))
                .count() as u64;
            c.attribution = Some(ok as f64 / fact.senders.len() as f64);
            right += ok;
            total += fact.senders.len() as u64;
        }
        if total > 0 {
            report.attribution_accuracy = Some(right as f64 / total as f64);
        }
    }

    /// Adds finding precision and recall to a report, given each found
    /// campaign's rule ids.
    pub fn score_findings(&self, report: &mut Report, found: &HashMap<String, Vec<String>>) {
        let mut s = FindingScore::default();
        for c in &mut report.campaigns {
            let expected: Vec<String> =
                self.facts.iter().find(|f| f.label == c.label).map(|f| f.findings.clone()).unwrap_or_default();
            let carried: Vec<String> = c.found_as.as_ref().and_then(|id| found.get(id)).cloned().unwrap_or_default();
            c.findings_missing = expected.iter().filter(|r| !carried.contains(r)).cloned().collect();
            c.findings_extra = carried.iter().filter(|r| !expected.contains(r)).cloned().collect();
            s.true_positives += expected.iter().filter(|r| carried.contains(r)).count() as u64;
            s.false_negatives += c.findings_missing.len() as u64;
            s.false_positives += c.findings_extra.len() as u64;
        }
        let tp = s.true_positives as f64;
        s.precision = if tp + s.false_positives as f64 > 0.0 { tp / (tp + s.false_positives as f64) } else { 1.0 };
        s.recall = if tp + s.false_negatives as f64 > 0.0 { tp / (tp + s.false_negatives as f64) } else { 1.0 };
        report.findings = Some(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribution_accuracy_counts_senders_with_the_true_provider() {
        let lines = [
            r#"{"type":"message","id":"1","campaign":"A"}"#,
            r#"{"type":"message","id":"2","campaign":"B"}"#,
            r#"{"type":"campaign","label":"A","provider":"Textsmart","senders":["+1","+2","+3"]}"#,
            r#"{"type":"campaign","label":"B","provider":"Twilio","senders":["+4"]}"#,
        ]
        .join("\n");
        let t = Truth::read(lines.as_bytes()).unwrap();
        let preds = [
            Prediction { id: "1", campaign: Some("x"), ts_ms: 0, from: "+1" },
            Prediction { id: "2", campaign: Some("y"), ts_ms: 0, from: "+4" },
        ];
        let mut r = t.score(preds, &HashMap::new());
        let of = |s: &str| match s {
            "+1" | "+2" => Some("textsmart".to_string()),
            "+3" => Some("Bandwidth".to_string()),
            _ => None,
        };
        t.score_attribution(&mut r, &of);
        assert_eq!(r.attribution_accuracy, Some(0.5));
        let a = r.campaigns.iter().find(|c| c.label == "A").unwrap();
        assert!((a.attribution.unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(r.campaigns.iter().find(|c| c.label == "B").unwrap().attribution, Some(0.0));
    }

    fn truth(rows: &[(&str, Option<&str>)]) -> Truth {
        let mut s = String::new();
        for (id, c) in rows {
            s.push_str(&serde_json::json!({"type":"message","id":id,"campaign":c}).to_string());
            s.push('\n');
        }
        Truth::read(s.as_bytes()).unwrap()
    }

    fn preds<'a>(rows: &'a [(&'a str, Option<&'a str>)]) -> Vec<Prediction<'a>> {
        rows.iter().map(|(id, c)| Prediction { id, campaign: *c, ts_ms: 0, from: "x" }).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn perfect() {
        let t = truth(&[("1", Some("A")), ("2", Some("A")), ("3", None)]);
        let r = t.score(preds(&[("1", Some("x")), ("2", Some("x")), ("3", None)]), &HashMap::new());
        assert_eq!(r.bcubed, Prf::new(1.0, 1.0));
        assert_eq!((r.split, r.merged), (0, 0));
    }

    /// Truth A = {1,2,3,4}; found x = {1,2}, y = {3,4}: a split.
    /// Precision 1 for all; recall 2/4 for each: 0.5.
    #[test]
    fn split_campaign_by_hand() {
        let t = truth(&[("1", Some("A")), ("2", Some("A")), ("3", Some("A")), ("4", Some("A"))]);
        let r =
            t.score(preds(&[("1", Some("x")), ("2", Some("x")), ("3", Some("y")), ("4", Some("y"))]), &HashMap::new());
        assert!(close(r.bcubed.precision, 1.0));
        assert!(close(r.bcubed.recall, 0.5));
        assert!(close(r.bcubed.f1, 2.0 / 3.0));
        assert_eq!((r.split, r.merged), (1, 0));
    }

    /// Truth A = {1,2}, B = {3,4,5}; found x = {1,2,3,4,5}: merged.
    /// Precision: A members 2/5 each, B members 3/5 each → (2·0.4 + 3·0.6)/5 = 0.52.
    /// Recall 1.
    #[test]
    fn merged_campaigns_by_hand() {
        let t = truth(&[("1", Some("A")), ("2", Some("A")), ("3", Some("B")), ("4", Some("B")), ("5", Some("B"))]);
        let r = t.score(
            preds(&[("1", Some("x")), ("2", Some("x")), ("3", Some("x")), ("4", Some("x")), ("5", Some("x"))]),
            &HashMap::new(),
        );
        assert!(close(r.bcubed.precision, 0.52));
        assert!(close(r.bcubed.recall, 1.0));
        assert_eq!((r.split, r.merged), (0, 2));
    }

    /// Background merged into a campaign costs precision; a campaign message
    /// left out costs recall.
    #[test]
    fn background_and_missed_messages() {
        let t = truth(&[("1", Some("A")), ("2", Some("A")), ("3", Some("A")), ("4", None)]);
        // found x = {1,2,4}; 3 unassigned.
        let r = t.score(preds(&[("1", Some("x")), ("2", Some("x")), ("3", None), ("4", Some("x"))]), &HashMap::new());
        // precision: 1,2: 2/3; 3: 1/1; 4: 1/3 → (2/3+2/3+1+1/3)/4 = 2/3
        // recall: 1,2: 2/3; 3: 1/3; 4: 1 → (2/3+2/3+1/3+1)/4 = 2/3
        assert!(close(r.bcubed.precision, 2.0 / 3.0));
        assert!(close(r.bcubed.recall, 2.0 / 3.0));
        // campaign messages only: found x restricted to {1,2}: p = (1+1+1)/3, r = (2/3+2/3+1/3)/3
        assert!(close(r.bcubed_campaign_messages.precision, 1.0));
        assert!(close(r.bcubed_campaign_messages.recall, 5.0 / 9.0));
        let a = &r.campaigns[0];
        assert_eq!(a.found_as.as_deref(), Some("x"));
        assert!(close(a.coverage, 2.0 / 3.0));
        assert!(!a.split);
    }

    #[test]
    fn senders_and_messages_to_detect() {
        let s = [
            r#"{"type":"message","id":"1","campaign":"A"}"#,
            r#"{"type":"message","id":"2","campaign":"A"}"#,
            r#"{"type":"message","id":"3","campaign":"A"}"#,
            r#"{"type":"campaign","label":"A","kind":"k","senders":["+1","+2","+3"],"messages":3}"#,
        ]
        .join("\n");
        let t = Truth::read(s.as_bytes()).unwrap();
        let p = vec![
            Prediction { id: "1", campaign: Some("x"), ts_ms: 10, from: "+1" },
            Prediction { id: "2", campaign: Some("x"), ts_ms: 20, from: "+2" },
            Prediction { id: "3", campaign: None, ts_ms: 30, from: "+3" },
        ];
        let formed = HashMap::from([("x".to_string(), 20)]);
        let r = t.score(p, &formed);
        let a = &r.campaigns[0];
        assert!(close(a.senders_found, 2.0 / 3.0));
        assert_eq!(a.messages_to_detect, Some(2));
    }

    #[test]
    fn finding_precision_and_recall_by_hand() {
        let s = [
            r#"{"type":"message","id":"1","campaign":"A"}"#,
            r#"{"type":"message","id":"2","campaign":"A"}"#,
            r#"{"type":"message","id":"3","campaign":"B"}"#,
            r#"{"type":"message","id":"4","campaign":"B"}"#,
            r#"{"type":"campaign","label":"A","findings":["x","y"]}"#,
            r#"{"type":"campaign","label":"B","findings":[]}"#,
        ]
        .join("\n");
        let t = Truth::read(s.as_bytes()).unwrap();
        let p = preds(&[("1", Some("a")), ("2", Some("a")), ("3", Some("b")), ("4", Some("b"))]);
        let mut r = t.score(p, &HashMap::new());
        let found = HashMap::from([("a".to_string(), vec!["x".to_string()]), ("b".to_string(), vec!["z".to_string()])]);
        t.score_findings(&mut r, &found);
        let f = r.findings.unwrap();
        assert_eq!((f.true_positives, f.false_positives, f.false_negatives), (1, 1, 1));
        assert!(close(f.precision, 0.5) && close(f.recall, 0.5));
        assert_eq!(r.campaigns[0].findings_missing, vec!["y"]);
        assert_eq!(r.campaigns[1].findings_extra, vec!["z"]);
    }

    #[test]
    fn bad_truth_lines_name_the_line() {
        let e = Truth::read("{\"type\":\"message\"}\n".as_bytes()).unwrap_err();
        assert!(e.to_string().contains("line 1"));
    }
}
