//! Block lists: the senders and template fingerprints the policy blocks,
//! for gateway filters and spam-blocking apps.

use serde::Serialize;
use textwatch_engine::policy::{Action, Scope};
use textwatch_store::{CampaignQuery, Store};

use crate::enrich::Enricher;
use crate::views::enriched_campaigns;
use crate::{Result, SinkError};

/// One block-list entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct BlockEntry {
    /// `sender` (an address to refuse) or `fingerprint` (a template key:
    /// refuse any message whose `template_key` is this).
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub value: String,
    pub campaign: String,
    pub reason: String,
}

/// Everything the policy blocks: a `sender`-scope block lists the
/// campaign's senders, a `campaign`-scope block its senders and its
/// template fingerprints. Sorted by type, value, campaign so that two runs
/// diff cleanly.
pub fn blocklist_entries(store: &dyn Store, e: &Enricher, categories: &[String]) -> Result<Vec<BlockEntry>> {
    if let Some(bad) = categories.iter().find(|c| !textwatch_engine::taxonomy::is_known(c)) {
        return Err(SinkError::Invalid(format!(
            "unknown category {bad:?}: give a category ({}), category/subcategory or a subcategory (docs/rules.md#categories)",
            textwatch_engine::taxonomy::CATEGORIES.join(", ")
        )));
    }
    let q = CampaignQuery { min_messages: 2, ..Default::default() };
    let mut out = Vec::new();
    for c in enriched_campaigns(store, e, &q)? {
        let wanted = categories.is_empty()
            || categories.iter().any(|sel| {
                textwatch_engine::taxonomy::selects(sel, c.category.as_deref().unwrap_or(""), c.subcategory.as_deref())
            });
        if !wanted {
            continue;
        }
        let Some(d) = &c.decision else { continue };
        if d.action != Action::Block || d.scope == Scope::Message {
            continue;
        }
        let reason = format!("policy rule {}: {}", d.rule, d.reasons.join(", "));
        for s in &c.senders {
            // A number whose appeal was overturned leaves the list.
            if e.allows.numbers.contains_key(s) {
                continue;
            }
            out.push(BlockEntry { kind: "sender", value: s.clone(), campaign: c.id.clone(), reason: reason.clone() });
        }
        if d.scope == Scope::Campaign {
            for f in store.campaign_fingerprints(&c.id)? {
                out.push(BlockEntry { kind: "fingerprint", value: f, campaign: c.id.clone(), reason: reason.clone() });
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}
