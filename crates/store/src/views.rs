//! What stores return to commands and the API. These structs are the JSON
//! output contract documented in `docs/formats.md`: fields are added,
//! never renamed.

use serde::Serialize;

use crate::time::rfc3339;

/// Filters for listing campaigns.
#[derive(Clone, Debug, Default)]
pub struct CampaignQuery {
    /// Most campaigns returned (all when `None`).
    pub limit: Option<usize>,
    /// Only campaigns with at least this many messages.
    pub min_messages: u64,
    /// Most senders listed per campaign (all when `None`).
    pub max_senders: Option<usize>,
    /// Campaigns to skip (after filtering and ordering) before the first
    /// returned.
    pub offset: usize,
    /// Only campaigns last seen at or after this time (ms since the epoch).
    pub last_seen_since: Option<i64>,
    /// Only campaigns of this category: a category, `category/subcategory`,
    /// or a subcategory alone (`commercial` and `ham`, the names of earlier
    /// versions, select marketing and transactional, and personal).
    pub category: Option<String>,
}

/// A rule a campaign breaks: how many of its messages break it, the worst
/// severity, and the evidence from one message.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Finding {
    pub rule: String,
    pub severity: textwatch_engine::Severity,
    pub count: u64,
    pub example: textwatch_engine::Evidence,
}

/// Shares of a campaign's messages whose template has these features.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CampaignFeatures {
    /// Share (0-1) of messages carrying opt-out language.
    pub optout: f64,
    /// Share (0-1) of messages identifying their sender.
    pub sender_id: f64,
}

/// One campaign, as listed.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CampaignSummary {
    /// Stable id (16 hex digits).
    pub id: String,
    /// The leading template.
    pub template: String,
    /// Messages in the campaign.
    pub messages: u64,
    /// Distinct senders, most active first, normalized (E.164 where possible).
    pub senders: Vec<String>,
    /// Distinct sender count (equals `senders.len()` unless the list was cut).
    pub sender_count: u64,
    /// Distinct recipients.
    pub recipients: u64,
    #[serde(with = "rfc3339")]
    pub first_seen: i64,
    #[serde(with = "rfc3339")]
    pub last_seen: i64,
    /// When textwatch formed the campaign (its second message).
    #[serde(with = "rfc3339")]
    pub formed_at: i64,
    /// Distinct templates (variants) in the campaign.
    pub templates: u64,
    pub features: CampaignFeatures,
    pub findings: Vec<Finding>,
    pub category: Option<String>,
    /// The second level of `category` (`fundraising`, `election-office`,
    /// `phishing`, ...; see docs/rules.md#categories), when known.
    pub subcategory: Option<String>,
    /// The rule that settled `category` (its template's text broke a rule
    /// that implies the category, see `implies_category` in docs/rules.md);
    /// absent when the classifier chose it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category_rule: Option<String>,
    pub risk: Option<u8>,
    /// Senders grouped by the provider that serves them (filled from the
    /// imported number data; empty without it).
    pub providers: Vec<ProviderGroup>,
    /// What the policy decides for the campaign.
    pub decision: Option<textwatch_engine::policy::Decision>,
    /// Messages per listed sender (aligned with `senders`; not serialized).
    #[serde(skip)]
    pub sender_messages: Vec<u64>,
}

/// A campaign's senders served by one provider.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ProviderGroup {
    /// The provider (registry name where known; `unknown` when no number
    /// data covers the senders).
    pub name: String,
    pub senders: Vec<String>,
    /// Where the attribution came from, e.g. `inventory: gateway.csv`,
    /// `NANPA block 215-555-1 (2019-03-01)`; distinct sources joined by `; `.
    pub source: String,
    /// The NANPA block or exchange holders of these senders when the
    /// provider came from an inventory: `NAME (N senders; NANPA blocks, FILE)`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub holders: Vec<String>,
    /// Where the provider's abuse desk takes reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abuse_contact: Option<String>,
    /// The report format the provider prefers (`xarf`, `stix`, `html`,
    /// `md`), from the registry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_format: Option<String>,
}

/// A sender within a campaign.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SenderView {
    pub sender: String,
    pub messages: u64,
    #[serde(with = "rfc3339")]
    pub first_seen: i64,
    #[serde(with = "rfc3339")]
    pub last_seen: i64,
}

/// A template variant within a campaign.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct VariantView {
    /// The template's fingerprint (16 hex digits, as `check` prints
    /// `template_key`); `campaign split --variant` takes it or a prefix.
    pub id: String,
    pub template: String,
    pub messages: u64,
    pub optout: Option<bool>,
    pub sender_id: Option<bool>,
    /// Rule ids the variant breaks.
    pub findings: Vec<String>,
    /// How it joined the campaign (absent for the variant that formed it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joined: Option<LinkView>,
}

/// A link that joined a variant (or a whole campaign) to a campaign, with
/// its evidence.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LinkView {
    /// The variant that joined (for a campaign merged in, its first variant).
    pub variant: String,
    /// The variant of the campaign it was linked to.
    pub via: String,
    /// `near-duplicate`, `sender`, `senders`, `domain`, `callback`, `manual`.
    pub kind: String,
    /// "shares 13 of 13 numbers; meaning similarity 0.91".
    pub evidence: String,
    pub similarity: f32,
    #[serde(with = "rfc3339")]
    pub at: i64,
}

/// Messages in one minute.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MinuteView {
    #[serde(with = "rfc3339")]
    pub minute: i64,
    pub messages: u64,
}

/// One campaign in full.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CampaignDetail {
    #[serde(flatten)]
    pub summary: CampaignSummary,
    pub sender_stats: Vec<SenderView>,
    pub variants: Vec<VariantView>,
    /// The links that joined its variants and campaigns beyond
    /// near-duplicates (shared numbers, domains, callback numbers, meaning,
    /// an analyst's merge), oldest first.
    pub links: Vec<LinkView>,
    /// Ids of campaigns joined into this one: they resolve to it.
    pub absorbed: Vec<String>,
    pub timeline: Vec<MinuteView>,
    pub samples: Vec<MessageView>,
}

/// A stored message.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MessageView {
    /// The input id, or `h-` and the identity hash when the input had none.
    pub id: String,
    #[serde(with = "rfc3339")]
    pub ts: i64,
    pub from: String,
    pub body: String,
    pub source: Option<String>,
    pub template: String,
    /// Campaign id, or null for messages in no campaign.
    pub campaign: Option<String>,
    /// Where it was read (`file:line`).
    pub origin: Option<String>,
    /// Fields of the input the decoder did not know.
    pub meta: Option<serde_json::Value>,
}

/// Totals of a store.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct StoreStats {
    pub messages: u64,
    pub templates: u64,
    pub campaigns: u64,
    pub messages_in_campaigns: u64,
}
