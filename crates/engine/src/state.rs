//! The rows the engine hands to a store after each batch ([`Delta`]) and
//! takes back on start ([`Snapshot`]). Plain data: the engine never does I/O,
//! and a store never needs to understand campaign assignment to persist it.

use crate::minhash::Signature;

/// A distinct template. Written when first seen and whenever its count or
/// cluster changes.
#[derive(Clone, Debug, PartialEq)]
pub struct TemplateRow {
    /// Template key (xxh3 of the skeleton).
    pub key: u64,
    /// Order of first sight; restores the engine's template numbering.
    pub seq: u32,
    /// Template text. Set when the row is new; updates may leave it empty.
    pub text: String,
    /// Cluster the template belongs to (its `seq`), if any.
    pub cluster: Option<u32>,
    /// Messages with this template.
    pub messages: u64,
    /// The first message's time, sender and recipient hash: what a cluster
    /// formed later from this template counts for it.
    pub first_ts: i64,
    pub first_sender: String,
    pub first_rcpt: Option<u64>,
    /// Whether the template may join campaigns (long enough).
    pub clusterable: bool,
    /// Opt-out language present (known once the template is in a campaign).
    pub optout: Option<bool>,
    /// Sender identification present (known once the template is in a campaign).
    pub sender_id: Option<bool>,
    /// Rules the template breaks, computed when it joins a campaign; `None`
    /// in an update means "unchanged".
    pub findings: Option<Vec<crate::rules::Finding>>,
    /// Category ([`crate::taxonomy::CATEGORIES`]), when one is set; `None`
    /// in an update means "unchanged".
    pub category: Option<String>,
    /// Subcategory (`fundraising`, `election-office`, ...; see
    /// [`crate::taxonomy`]), set with the category.
    pub subcategory: Option<String>,
    /// The rule that settled the category (`implies_category`), when one
    /// did; `None` when the classifier gave it, or in an update "unchanged".
    pub category_rule: Option<String>,
    /// Messages of this template received in quiet hours.
    pub quiet: u64,
    /// The `quiet-hours` finding of its first such message; `None` in an
    /// update means "unchanged".
    pub quiet_finding: Option<crate::rules::Finding>,
}

/// A cluster: the state of a campaign. A cluster exists only once it has two
/// messages.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterRow {
    /// Dense number, in order of formation.
    pub seq: u32,
    /// Stable id: the key of the leader template, shown as 16 hex digits.
    pub label: u64,
    /// Key of the template that led it.
    pub leader: u64,
    pub messages: u64,
    pub templates: u32,
    pub senders: u32,
    pub recipients: u32,
    pub first_ts: i64,
    pub last_ts: i64,
    /// When it formed (time of the message that made it a campaign).
    pub formed_ts: i64,
    /// Representative signatures in the LSH index.
    pub reps: Vec<Signature>,
    /// The campaign this cluster was joined into (its `seq`), when it was:
    /// its id then resolves to that campaign's everywhere.
    pub merged_into: Option<u32>,
    /// The organization or brand its texts name as their sender.
    pub actor: Option<String>,
    /// Meaning vectors of its wordings (see `meaning`).
    pub meaning: Vec<crate::meaning::Vector>,
    /// Registrable link domains and callback numbers its texts carry (the
    /// infrastructure that links it to others), capped.
    pub domains: Vec<String>,
    pub phones: Vec<String>,
}

impl ClusterRow {
    /// The campaign id users see.
    pub fn id(&self) -> String {
        campaign_id(self.label)
    }
}

/// The campaign id users see for a cluster label.
pub fn campaign_id(label: u64) -> String {
    format!("{label:016x}")
}

/// Why a variant is part of a campaign: the link that joined it, with
/// its evidence ("shares 13 of 13 numbers with variant 2", "same domain
/// usps-care.top", "meaning similarity 0.91").
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LinkRow {
    /// The campaign (cluster `seq`) the link joined into.
    pub cluster: u32,
    /// The template that joined (for a campaign merged in: its leader).
    pub variant: u64,
    /// The template of the campaign it was linked to.
    pub via: u64,
    /// `near-duplicate`, `sender`, `senders`, `domain`, `callback` or `manual`.
    pub kind: String,
    /// What a person reads: the shared numbers, domain or similarity.
    pub evidence: String,
    /// Text similarity (near-duplicate) or meaning similarity, 0-1.
    pub similarity: f32,
    /// When (ms since the epoch, the joining message's time).
    pub ts: i64,
}

/// Per-sender statistics within a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderRow {
    pub cluster: u32,
    pub sender: String,
    pub messages: u64,
    pub first_ts: i64,
    pub last_ts: i64,
}

/// Messages per minute for a cluster, as an increment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinuteRow {
    pub cluster: u32,
    /// Minutes since the Unix epoch.
    pub minute: i64,
    pub count: u32,
}

/// What changed in one batch. Written by a store in one transaction together
/// with the batch's messages, so a crash leaves either all of it or none.
#[derive(Clone, Debug, Default)]
pub struct Delta {
    pub templates: Vec<TemplateRow>,
    pub clusters: Vec<ClusterRow>,
    pub senders: Vec<SenderRow>,
    pub minutes: Vec<MinuteRow>,
    /// New (cluster, recipient hash) pairs (a store may keep them or rebuild
    /// them from its messages).
    pub recipients: Vec<(u32, u64)>,
    /// Campaigns joined in this batch, (absorbed, into), in order: the
    /// store moves the absorbed one's templates, senders and minutes.
    pub merges: Vec<(u32, u32)>,
    /// Links made in this batch.
    pub links: Vec<LinkRow>,
}

impl Delta {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
            && self.clusters.is_empty()
            && self.senders.is_empty()
            && self.minutes.is_empty()
            && self.merges.is_empty()
    }
}

/// Everything the engine needs to continue where a previous run stopped.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Every template; `text` may be empty except for the most recent
    /// clusterable singletons, whose signatures are rebuilt from it.
    pub templates: Vec<TemplateRow>,
    pub clusters: Vec<ClusterRow>,
    pub senders: Vec<SenderRow>,
    pub recipients: Vec<(u32, u64)>,
    /// Identity keys of stored messages, with their message times: every
    /// one from `seen_complete_from` on (all of them when that is `None`),
    /// and maybe some older ones.
    pub seen: Vec<(u64, i64)>,
    /// See `seen`: messages before this time (ms) may be stored without
    /// their key in `seen`.
    pub seen_complete_from: Option<i64>,
    /// Messages stored in all.
    pub messages: u64,
    /// Campaign pairs an analyst split apart (cluster `seq`s): never joined
    /// again by links.
    pub apart: Vec<(u32, u32)>,
    /// The message body of singletons given with text (template key,
    /// body): when one becomes a campaign, its findings come from its real
    /// text (links are in the body, not the template), as they would have
    /// without a restart.
    pub bodies: Vec<(u64, String)>,
}
