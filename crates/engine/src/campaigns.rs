//! Campaign assignment: the sequential heart of textwatch.
//!
//! Messages arrive analyzed (template, template key, features). For each, in
//! order:
//!
//! 1. **Duplicate check** by identity key: a rescanned message changes nothing.
//! 2. **Exact template** fast path: a known template key goes straight to its
//!    cluster. Almost all copies of a campaign take this path, because the
//!    template already folded away names, links, numbers and look-alikes.
//! 3. **Near-duplicate** search for a new template: its MinHash signature is
//!    looked up in two banded LSH indexes, one of campaign representatives
//!    (a few per campaign, never every member) and one of recent singleton
//!    templates. The most similar candidate at or above the join threshold
//!    wins; ties go to the earlier one.
//!
//! A cluster is formed when a second message arrives for a template (or a
//! near-duplicate of it): campaigns are at least two messages, and singletons
//! carry no cluster at all.
//!
//! 4. **Links by infrastructure and meaning.** A campaign is what one sender
//!    sends for one purpose, however reworded, so clusters that share the
//!    sender's infrastructure and say the same thing are joined: a new
//!    template sent by a number of a campaign, whose meaning is close
//!    (`join_meaning`), joins it; two campaigns that share a large part of
//!    their numbers, a link domain or a callback number, and whose meaning
//!    is related (`link_meaning`), merge, the older keeping its id. Numbers
//!    that send for several unrelated campaigns (platform short codes,
//!    shared pools) and domains many campaigns use link nothing.
//! 5. **Actors kept apart.** A near-duplicate that names another
//!    organization ("this is {name} with Keystone Action" against "... with
//!    Philly Votes Together") does not join, nor does one from a number
//!    outside a campaign whose pool is saturated (many messages per number):
//!    the same script from another pool is another sender. Shared numbers
//!    still join waves that claim different brands (one operator, two
//!    lures).
//!
//! Every join is kept as a [`LinkRow`] with its evidence, so a campaign
//! can say why each of its variants belongs to it.
//!
//! Memory is bounded: singleton templates stay searchable for a window of
//! [`EngineConfig::singleton_window`] newer singletons (two generations),
//! then only their key remains. Campaign representatives are capped per
//! campaign.
//!
//! Determinism: the outcome depends only on the order of `assign` calls and
//! never on hash-map iteration order or threads; the pipeline fixes that
//! order (time, then identity key).

use hashbrown::{HashMap, HashSet};

use std::sync::Arc;

use crate::analyze::Analyzed;
use crate::features::{MessageFeatures, TemplateFeatures};
use crate::lsh::{BandIndex, LIGHT_BANDS};
use crate::meaning::{MeaningModel, Vector};
use crate::minhash::{signature, MinHashScratch, Print, Signature};
use crate::rules::{Finding, RuleSet};
use crate::seen::SeenKeys;
use crate::state::{campaign_id, ClusterRow, Delta, LinkRow, MinuteRow, SenderRow, Snapshot, TemplateRow};
use crate::template::{templatize, TemplateScratch};

mod links;

const NONE: u32 = u32::MAX;
/// Marks a campaign (not a template) in a refused-candidates list.
const CLUSTER_BIT: u32 = 1 << 31;

/// Tunables of assignment. Defaults are documented in `docs/engine.md`.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// Estimated Jaccard similarity of shingle sets at which a new template
    /// joins an existing campaign or singleton.
    pub join_threshold: f32,
    /// Shortest template skeleton (letters, digits, slots) that may form a
    /// campaign.
    pub min_template_len: usize,
    /// Most representatives indexed per campaign.
    pub max_reps: usize,
    /// A joining template below this similarity to every representative is
    /// indexed as a new representative (so campaigns that drift stay found).
    pub rep_novelty: f32,
    /// Singleton templates per LSH generation; two generations are searched.
    pub singleton_window: usize,
    /// Meaning similarity at which two campaigns that share infrastructure
    /// (a large share of numbers, a link domain, a callback number) merge:
    /// "about the same thing", well below a near-duplicate. Measured with
    /// the shipped table: a parcel lure against a toll lure 0.19, a bank
    /// lock against a gift-card prize 0.2, a bank lock against "polls moved
    /// to Wednesday" -0.06; rewordings of one text 0.4-0.95.
    pub link_meaning: f32,
    /// Meaning similarity at which a new wording sent by one number of a
    /// campaign joins it (one shared number is weaker evidence than many).
    pub join_meaning: f32,
    /// Campaigns link only when active within this many milliseconds of
    /// each other (numbers are recycled to new clients).
    pub link_window_ms: i64,
    /// A number or domain seen in this many unlinked campaigns is shared
    /// infrastructure (a platform's short code, a public resource) and
    /// links nothing.
    pub platform_clients: usize,
    /// Identity keys of accepted messages held in memory for
    /// deduplication (`usize::MAX`, the default: all of them). Past this
    /// many, the oldest by message time leave, and a message older than
    /// those held is checked against the store instead (see
    /// [`crate::seen`], and what it does not catch).
    pub dedup_keys: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            join_threshold: 0.5,
            min_template_len: 20,
            max_reps: 8,
            rep_novelty: 0.75,
            singleton_window: 100_000,
            link_meaning: 0.1,
            join_meaning: 0.5,
            link_window_ms: 48 * 3_600_000,
            platform_clients: 3,
            dedup_keys: usize::MAX,
        }
    }
}

/// One distinct template. There are millions (every unique chat text is
/// one), so it holds only fixed-size facts (56 bytes); the text of
/// searchable singletons and fresh findings live in side maps.
#[derive(Clone, Debug)]
struct Tmpl {
    key: u64,
    messages: u64,
    first_ts: i64,
    /// The first message's recipient hash (valid when `has_rcpt`).
    first_rcpt: u64,
    cluster: u32,
    /// The first message's sender: a slice of `sender_arena` (senders are
    /// interned only once they are in a campaign).
    first_sender_at: u32,
    first_sender_len: u8,
    has_rcpt: bool,
    clusterable: bool,
    features: Option<(bool, bool)>,
    category: Option<u8>,
    subcategory: Option<u8>,
    /// Messages received in quiet hours.
    quiet: u32,
    /// Findings computed since the last delta.
    characterized: bool,
    dirty: bool,
    is_new: bool,
}

#[derive(Clone, Debug)]
struct Cluster {
    label: u64,
    leader: u32,
    messages: u64,
    templates: u32,
    senders: u32,
    recipients: u32,
    first_ts: i64,
    last_ts: i64,
    formed_ts: i64,
    reps: Vec<Signature>,
    dirty: bool,
    /// The campaign it was joined into (`NONE` while it is its own).
    merged_into: u32,
    actor: Option<Box<str>>,
    vecs: Vec<Vector>,
    /// Its templates and senders (ids), for merges and shared-number counts.
    members: Vec<u32>,
    sender_list: Vec<u32>,
    domains: Vec<Box<str>>,
    phones: Vec<Box<str>>,
    rcpts: HashSet<u64>,
}

#[derive(Clone, Copy, Debug)]
struct SenderStat {
    messages: u64,
    first_ts: i64,
    last_ts: i64,
    dirty: bool,
}

/// What `assign` did with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Already stored earlier (same identity key): nothing changed.
    Duplicate,
    /// Accepted; `campaign` is the cluster label when the message is in one.
    Accepted { campaign: Option<u64>, new_template: bool },
}

/// Where a message would go, without assigning it (see [`Engine::peek`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Peek {
    /// Its template is already part of this campaign.
    ExactCampaign { campaign: String },
    /// Its template was seen once before; this message would form a campaign.
    ExactSingleton,
    /// A near-duplicate of this campaign.
    NearCampaign { campaign: String, similarity: f32 },
    /// A near-duplicate of an earlier singleton; would form a campaign.
    NearSingleton { similarity: f32 },
    /// Nothing like it yet.
    New,
    /// Too short to join campaigns.
    TooShort,
}

enum Match {
    Cluster(u32, f32),
    /// A singleton template, its similarity, and where its signature is:
    /// (in the young generation?, entry).
    Singleton(u32, f32, (bool, u32)),
}

/// The assignment state. One per store; not thread-safe by design (the
/// pipeline parallelizes analysis around it).
pub struct Engine {
    cfg: EngineConfig,
    seen: SeenKeys,
    by_key: HashMap<u64, u32>,
    templates: Vec<Tmpl>,
    clusters: Vec<Cluster>,
    reps: BandIndex,
    young: BandIndex,
    old: BandIndex,
    sender_ids: HashMap<Box<str>, u32>,
    sender_names: Vec<Box<str>>,
    /// First senders of all templates, back to back.
    sender_arena: String,
    cluster_senders: HashMap<(u32, u32), SenderStat>,
    /// Live campaigns each sender (id) sent in, each link domain and each
    /// callback number appeared in.
    sender_clusters: HashMap<u32, Vec<u32>>,
    domain_clusters: HashMap<Box<str>, Vec<u32>>,
    phone_clusters: HashMap<Box<str>, Vec<u32>>,
    /// Campaign pairs an analyst split apart.
    apart: HashSet<(u32, u32)>,
    meaning: Option<Arc<MeaningModel>>,
    /// Brands' own link domains (from the rule packs): never evidence.
    official: HashSet<String>,
    pending_links: Vec<LinkRow>,
    pending_merges: Vec<(u32, u32)>,
    /// (campaign, sender) pairs made by the current message, to follow.
    link_queue: Vec<(u32, u32)>,
    dirty_templates: Vec<u32>,
    dirty_clusters: Vec<u32>,
    dirty_senders: Vec<(u32, u32)>,
    minutes: HashMap<(u32, i64), u32>,
    new_recipients: Vec<(u32, u64)>,
    cand: Vec<u32>,
    mh: MinHashScratch,
    lookups: u64,
    verified: u64,
    rules: RuleSet,
    classifier: Option<crate::categorize::Categorizer>,
    /// First quiet-hours finding of templates, until the next delta.
    quiet_findings: HashMap<u32, Finding>,
    /// Text and a body of each searchable singleton template: a campaign
    /// formed from it later needs them for features and findings.
    kept: HashMap<u32, (Box<str>, Option<Box<str>>)>,
    /// Findings of templates characterized since the last delta.
    pending_findings: HashMap<u32, Vec<Finding>>,
    /// The rule that settled a template's category, until the next delta.
    category_rules: HashMap<u32, String>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("templates", &self.templates.len())
            .field("clusters", &self.clusters.len())
            .field("messages", &self.seen.accepted())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An empty engine.
    pub fn new(cfg: EngineConfig) -> Self {
        Engine {
            seen: SeenKeys::new(cfg.dedup_keys),
            cfg,
            by_key: HashMap::new(),
            templates: Vec::new(),
            clusters: Vec::new(),
            reps: BandIndex::default(),
            young: BandIndex::with_bands(LIGHT_BANDS),
            old: BandIndex::with_bands(LIGHT_BANDS),
            sender_ids: HashMap::new(),
            sender_names: Vec::new(),
            sender_arena: String::new(),
            cluster_senders: HashMap::new(),
            sender_clusters: HashMap::new(),
            domain_clusters: HashMap::new(),
            phone_clusters: HashMap::new(),
            apart: HashSet::new(),
            meaning: None,
            official: RuleSet::builtin().official_domains().map(str::to_owned).collect(),
            pending_links: Vec::new(),
            pending_merges: Vec::new(),
            link_queue: Vec::new(),
            dirty_templates: Vec::new(),
            dirty_clusters: Vec::new(),
            dirty_senders: Vec::new(),
            minutes: HashMap::new(),
            new_recipients: Vec::new(),
            cand: Vec::new(),
            mh: MinHashScratch::default(),
            lookups: 0,
            verified: 0,
            rules: RuleSet::builtin(),
            classifier: None,
            quiet_findings: HashMap::new(),
            kept: HashMap::new(),
            pending_findings: HashMap::new(),
            category_rules: HashMap::new(),
        }
    }

    /// Replaces the rules that characterize campaign templates (the
    /// built-in pack by default).
    pub fn set_rules(&mut self, rules: RuleSet) {
        self.official = rules.official_domains().map(str::to_owned).collect();
        self.rules = rules;
    }

    /// Sets the meaning table that links reworded campaigns (without one,
    /// the text similarity of their representatives stands in, which sees
    /// far fewer rewordings).
    pub fn set_meaning(&mut self, model: Arc<MeaningModel>) {
        self.meaning = Some(model);
    }

    /// Sets the models that give campaign templates a category and a
    /// subcategory.
    pub fn set_classifier(&mut self, models: crate::categorize::Categorizer) {
        self.classifier = Some(models);
    }

    /// The category and subcategory of a template, from one real message
    /// with it (see [`crate::categorize`]).
    fn categorize(&mut self, tid: u32, text: &str, body: &str, findings: &[Finding]) -> (Option<u8>, Option<u8>) {
        let Some(m) = self.classifier.as_ref() else { return (None, None) };
        let c = m.categorize(&self.rules, findings, text, body);
        let (cat, sub) = (m.category_index(c.category), c.subcategory.and_then(|s| m.subcategory_index(c.category, s)));
        if let Some(rule) = c.rule {
            self.category_rules.insert(tid, rule.to_string());
        }
        (cat, sub)
    }

    /// Features and findings of a template, from one real message with it.
    /// Runs once per template that joins a campaign.
    fn characterize(&self, text: &str, body: &str) -> ((bool, bool), Vec<Finding>) {
        let tf = TemplateFeatures::of(text);
        // Links come from the body itself: the template has only slots.
        let mut ts = TemplateScratch::default();
        let mut t = String::new();
        templatize(body, &mut ts, &mut t);
        let links = MessageFeatures::from_scratch(&ts).links;
        let findings = self.rules.evaluate_message(body, text, &links);
        ((tf.optout.is_some(), tf.sender_id.is_some()), findings)
    }

    /// The configuration in force.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Rebuilds an engine from what a store kept.
    pub fn restore(cfg: EngineConfig, snap: Snapshot) -> Self {
        let mut e = Engine::new(cfg);
        let mut bodies: HashMap<u64, String> = snap.bodies.into_iter().collect();
        e.seen =
            SeenKeys::restore(e.cfg.dedup_keys, snap.seen, snap.seen_complete_from.unwrap_or(i64::MIN), snap.messages);
        for c in &snap.clusters {
            for r in &c.reps {
                e.reps.insert(r, c.seq);
            }
            let live = c.merged_into.is_none();
            if live {
                for d in &c.domains {
                    e.domain_clusters.entry(d.as_str().into()).or_default().push(c.seq);
                }
                for p in &c.phones {
                    e.phone_clusters.entry(p.as_str().into()).or_default().push(c.seq);
                }
            }
            e.clusters.push(Cluster {
                label: c.label,
                leader: NONE,
                messages: c.messages,
                templates: c.templates,
                senders: c.senders,
                recipients: c.recipients,
                first_ts: c.first_ts,
                last_ts: c.last_ts,
                formed_ts: c.formed_ts,
                reps: c.reps.clone(),
                dirty: false,
                merged_into: c.merged_into.unwrap_or(NONE),
                actor: c.actor.as_deref().map(Into::into),
                vecs: c.meaning.clone(),
                members: Vec::new(),
                sender_list: Vec::new(),
                domains: c.domains.iter().map(|d| d.as_str().into()).collect(),
                phones: c.phones.iter().map(|p| p.as_str().into()).collect(),
                rcpts: HashSet::new(),
            });
        }
        e.apart.extend(snap.apart.iter().map(|&(a, b)| (a.min(b), a.max(b))));
        let mut templates = snap.templates;
        templates.sort_by_key(|t| t.seq);
        let mut pending_sigs = Vec::new();
        for t in templates {
            let tid = e.templates.len() as u32;
            let (first_sender_at, first_sender_len) = e.arena_push(&t.first_sender);
            let cluster = t.cluster.unwrap_or(NONE);
            if cluster != NONE {
                if let Some(c) = e.clusters.get_mut(cluster as usize) {
                    if c.label == t.key {
                        c.leader = tid;
                    }
                    c.members.push(tid);
                }
            }
            let keep_text = cluster == NONE && t.clusterable && !t.text.is_empty();
            if keep_text {
                pending_sigs.push(tid);
            }
            e.by_key.insert(t.key, tid);
            if keep_text {
                let body = bodies.remove(&t.key).map(String::into_boxed_str);
                e.kept.insert(tid, (t.text.clone().into_boxed_str(), body));
            }
            e.templates.push(Tmpl {
                key: t.key,
                cluster,
                messages: t.messages,
                first_ts: t.first_ts,
                first_sender_at,
                first_sender_len,
                first_rcpt: t.first_rcpt.unwrap_or(0),
                has_rcpt: t.first_rcpt.is_some(),
                clusterable: t.clusterable,
                features: t.optout.zip(t.sender_id),
                category: None,
                subcategory: None,
                quiet: t.quiet.min(u32::MAX as u64) as u32,
                characterized: false,
                dirty: false,
                is_new: false,
            });
        }
        let window = e.cfg.singleton_window.max(1);
        let start = pending_sigs.len().saturating_sub(window * 2);
        for &tid in &pending_sigs[start..] {
            let text = e.kept.get(&tid).map(|k| k.0.clone()).unwrap_or_default();
            let sig = signature(&text, &mut e.mh, e.cfg.min_template_len);
            e.index_singleton(&sig, tid);
        }
        for &tid in &pending_sigs[..start] {
            e.kept.remove(&tid);
        }
        for c in &mut e.clusters {
            if c.leader == NONE {
                // A campaign whose leader joined elsewhere (merged): its
                // first member leads.
                c.leader = c.members.first().copied().unwrap_or(NONE);
            }
        }
        for s in snap.senders {
            let sid = e.intern(&s.sender);
            let Some(c) = e.clusters.get_mut(s.cluster as usize) else { continue };
            if c.merged_into != NONE {
                continue;
            }
            c.sender_list.push(sid);
            e.sender_clusters.entry(sid).or_default().push(s.cluster);
            e.cluster_senders.insert(
                (s.cluster, sid),
                SenderStat { messages: s.messages, first_ts: s.first_ts, last_ts: s.last_ts, dirty: false },
            );
        }
        // Kept sorted, as the live engine keeps them (binary search).
        for v in e.sender_clusters.values_mut() {
            v.sort_unstable();
            v.dedup();
        }
        for c in &mut e.clusters {
            let names = &e.sender_names;
            c.sender_list.sort_unstable_by(|a, b| names[*a as usize].cmp(&names[*b as usize]));
        }
        for (c, r) in snap.recipients {
            if let Some(cl) = e.clusters.get_mut(c as usize) {
                cl.rcpts.insert(r);
            }
        }
        e
    }

    /// Number of messages accepted so far (including earlier runs).
    pub fn messages_seen(&self) -> usize {
        self.seen.accepted() as usize
    }

    /// Identity keys held in memory for deduplication (at most about
    /// [`EngineConfig::dedup_keys`]).
    pub fn dedup_keys_held(&self) -> usize {
        self.seen.held()
    }

    /// Whether only the store can tell if `a` repeats a stored message: it
    /// is older than the messages whose keys the engine holds, and its key
    /// is not held. The pipeline asks the store about those and does not
    /// assign the ones it holds.
    pub fn needs_store_check(&self, a: &Analyzed) -> bool {
        self.seen.needs_store_check(a.key, a.msg.ts_ms)
    }

    /// Number of campaigns (clusters of two or more messages).
    pub fn campaigns(&self) -> usize {
        self.clusters.len()
    }

    /// Number of distinct templates.
    pub fn templates(&self) -> usize {
        self.templates.len()
    }

    /// Keys of every known template.
    pub fn template_keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.templates.iter().map(|t| t.key)
    }

    /// Whether a message with this identity key was already accepted.
    pub fn is_seen(&self, key: u64) -> bool {
        self.seen.contains(key)
    }

    /// Whether `assign` would need a signature for this message: its
    /// template is new and long enough. The pipeline computes those
    /// signatures in parallel before assigning.
    pub fn needs_signature(&self, a: &Analyzed) -> bool {
        a.clusterable && !self.by_key.contains_key(&a.template_key)
    }

    /// Appends a sender to the arena (cut at 255 bytes, on a character
    /// boundary).
    fn arena_push(&mut self, s: &str) -> (u32, u8) {
        let mut end = s.len().min(255);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let at = self.sender_arena.len() as u32;
        self.sender_arena.push_str(&s[..end]);
        (at, end as u8)
    }

    fn first_sender(&self, tid: u32) -> &str {
        let t = &self.templates[tid as usize];
        let at = t.first_sender_at as usize;
        self.sender_arena.get(at..at + t.first_sender_len as usize).unwrap_or("")
    }

    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.sender_ids.get(s) {
            return id;
        }
        let id = self.sender_names.len() as u32;
        self.sender_names.push(s.into());
        self.sender_ids.insert(s.into(), id);
        id
    }

    fn index_singleton(&mut self, sig: &Signature, tid: u32) {
        if self.young.len() >= self.cfg.singleton_window.max(1) {
            for e in 0..self.old.len() as u32 {
                let owner = self.old.entry(e).1 as usize;
                if self.templates[owner].cluster == NONE {
                    self.kept.remove(&(owner as u32));
                }
            }
            // The retired generation's memory becomes the new young one:
            // it is already the size a full generation needs, where a
            // fresh index would grow to it by doubling (copying and
            // faulting in its pages each time).
            std::mem::swap(&mut self.old, &mut self.young);
            self.young.clear();
        }
        if self.young.is_empty() {
            // A generation fills to the window: its signatures are
            // placed once, not copied at every doubling of their vector.
            self.young.reserve(self.cfg.singleton_window.max(1));
        }
        self.young.insert(sig, tid);
    }

    /// Assigns one analyzed message. `sig` is its template's signature when
    /// the caller computed it ahead (see [`Engine::needs_signature`]);
    /// otherwise it is computed here when needed.
    pub fn assign(&mut self, a: &Analyzed, sig: Option<&Signature>) -> Outcome {
        if !self.seen.insert(a.key, a.msg.ts_ms) {
            return Outcome::Duplicate;
        }
        let ts = a.msg.ts_ms;
        let rcpt = (a.rcpt64(), a.rcpt64_prev());
        if let Some(&tid) = self.by_key.get(&a.template_key) {
            self.touch_template(tid);
            self.note_quiet(tid, a);
            let t = &mut self.templates[tid as usize];
            t.messages += 1;
            let (cluster, clusterable) = (t.cluster, t.clusterable);
            let c = if cluster != NONE {
                cluster
            } else if clusterable {
                // Second copy of a singleton template: it is a campaign now.
                self.form_cluster(tid, &a.template, &a.msg.body, None, ts)
            } else {
                return Outcome::Accepted { campaign: None, new_template: false };
            };
            let sender = self.intern(&a.sender);
            self.add_message(c, ts, sender, rcpt);
            let c = self.settle_links(c, a, ts);
            return Outcome::Accepted { campaign: Some(self.clusters[c as usize].label), new_template: false };
        }

        let tid = self.templates.len() as u32;
        self.by_key.insert(a.template_key, tid);
        let (first_sender_at, first_sender_len) = self.arena_push(&a.sender);
        self.templates.push(Tmpl {
            key: a.template_key,
            cluster: NONE,
            messages: 1,
            first_ts: ts,
            first_sender_at,
            first_sender_len,
            first_rcpt: rcpt.0.unwrap_or(0),
            has_rcpt: rcpt.0.is_some(),
            clusterable: a.clusterable,
            features: None,
            category: None,
            subcategory: None,
            quiet: 0,
            characterized: false,
            dirty: false,
            is_new: true,
        });
        self.note_quiet(tid, a);
        self.touch_template(tid);
        if !a.clusterable {
            return Outcome::Accepted { campaign: None, new_template: true };
        }
        let sig = match sig {
            Some(s) => *s,
            None => signature(&a.template, &mut self.mh, self.cfg.min_template_len),
        };
        let known_sender = self.sender_ids.get(a.sender.as_str()).copied();
        let near = match self.best_match_for(&sig, &a.template, known_sender) {
            Some(Match::Cluster(c, sim)) => {
                let c = self.find(c);
                Some((c, self.leader_key(c), sim))
            }
            Some(Match::Singleton(other, sim, (young, entry))) => {
                let other_sig = *if young { &self.young } else { &self.old }.entry(entry).0;
                let (other_text, other_body) = match self.kept.get(&other) {
                    Some((t, b)) => (t.clone(), b.clone().unwrap_or_else(|| t.clone())),
                    None => Default::default(),
                };
                let c = self.form_cluster(other, &other_text, &other_body, Some(other_sig), ts);
                Some((c, self.templates[other as usize].key, sim))
            }
            None => None,
        };
        let c = match near {
            Some((c, via, sim)) => {
                self.join(tid, c, &a.template, &a.msg.body, &sig, sim);
                let evidence = format!("text similarity {sim:.2}");
                self.record_link(c, a.template_key, via, "near-duplicate", evidence, sim, ts);
                Some(c)
            }
            None => match self.sender_join(known_sender, &a.template, ts) {
                // A new wording from a number of a campaign, saying the
                // same thing: the campaign's own rewording.
                Some((c, sim, v)) => {
                    let via = self.leader_key(c);
                    self.join(tid, c, &a.template, &a.msg.body, &sig, 0.0);
                    let cl = &mut self.clusters[c as usize];
                    if cl.vecs.len() < links::MAX_VECS {
                        cl.vecs.push(v);
                    }
                    let evidence =
                        format!("sent by {}, a number of this campaign; meaning similarity {sim:.2}", a.sender);
                    self.record_link(c, a.template_key, via, "sender", evidence, sim, ts);
                    Some(c)
                }
                None => {
                    self.kept.insert(tid, (a.template.as_str().into(), Some(a.msg.body.as_str().into())));
                    self.index_singleton(&sig, tid);
                    None
                }
            },
        };
        let campaign = c.map(|c| {
            let sender = self.intern(&a.sender);
            self.add_message(c, ts, sender, rcpt);
            let c = self.settle_links(c, a, ts);
            self.clusters[c as usize].label
        });
        Outcome::Accepted { campaign, new_template: true }
    }

    /// Where `a` would go, without changing anything.
    pub fn peek(&self, a: &Analyzed) -> Peek {
        if let Some(&tid) = self.by_key.get(&a.template_key) {
            let t = &self.templates[tid as usize];
            return if t.cluster != NONE {
                Peek::ExactCampaign { campaign: campaign_id(self.clusters[t.cluster as usize].label) }
            } else if t.clusterable {
                Peek::ExactSingleton
            } else {
                Peek::TooShort
            };
        }
        if !a.clusterable {
            return Peek::TooShort;
        }
        let sig = signature(&a.template, &mut MinHashScratch::default(), self.cfg.min_template_len);
        let mut cand = Vec::new();
        match self.best_match_with(&sig, &mut cand) {
            Some(Match::Cluster(c, s)) => {
                Peek::NearCampaign { campaign: campaign_id(self.clusters[c as usize].label), similarity: s }
            }
            Some(Match::Singleton(_, s, _)) => Peek::NearSingleton { similarity: s },
            None => Peek::New,
        }
    }

    /// The near-duplicate a new template joins: the most similar
    /// candidate, skipping campaigns of another named sender and campaigns
    /// whose saturated pool never used this number (the same script from
    /// another pool is another sender).
    fn best_match_for(&mut self, sig: &Signature, text: &str, sender: Option<u32>) -> Option<Match> {
        let mut cand = std::mem::take(&mut self.cand);
        let mut actor: Option<Option<String>> = None;
        let mut refused: Vec<u32> = Vec::new();
        let mut found = None;
        loop {
            let (m, verified) = self.best_match_filtered(sig, &mut cand, &refused);
            self.lookups += 1;
            self.verified += verified;
            let Some(m) = m else { break };
            let (owner, other_actor, plausible) = match &m {
                Match::Cluster(c, _) => {
                    let c = self.find(*c);
                    let cl = &self.clusters[c as usize];
                    let saturated = cl.senders >= 5 && cl.messages >= 8 * u64::from(cl.senders);
                    let known = sender.is_some_and(|s| self.cluster_senders.contains_key(&(c, s)));
                    (c | CLUSTER_BIT, cl.actor.as_deref().map(str::to_owned), known || !saturated)
                }
                Match::Singleton(t, _, _) => {
                    let other = self.kept.get(t).map(|k| crate::identity::of(&k.0)).unwrap_or_default();
                    (*t, other, true)
                }
            };
            let mine = actor.get_or_insert_with(|| crate::identity::of(text));
            if plausible && !crate::identity::conflict(mine.as_deref(), other_actor.as_deref()) {
                found = Some(m);
                break;
            }
            refused.push(owner);
            if refused.len() > 8 {
                break;
            }
        }
        self.cand = cand;
        found
    }

    /// Near-duplicate lookups made, and candidates verified in them.
    pub fn lookup_stats(&self) -> (u64, u64) {
        (self.lookups, self.verified)
    }

    fn best_match_with(&self, sig: &Signature, cand: &mut Vec<u32>) -> Option<Match> {
        self.best_match_filtered(sig, cand, &[]).0
    }

    /// The most similar candidate at or above the join threshold, skipping
    /// `refused` owners (campaigns as `seq | CLUSTER_BIT`, singletons as
    /// template ids).
    fn best_match_filtered(&self, sig: &Signature, cand: &mut Vec<u32>, refused: &[u32]) -> (Option<Match>, u64) {
        let mut verified = 0u64;
        let threshold = self.cfg.join_threshold;
        let mut best: Option<Match> = None;
        let mut best_sim = threshold - f32::EPSILON;
        let print = Print::of(sig);
        self.old.warm(sig);
        self.young.warm(sig);
        self.reps.candidates(sig, cand);
        verified += cand.len() as u64;
        self.reps.warm_entries(cand);
        // The owner (a campaign or template record, a cache miss of its
        // own) is read only for a candidate that would win. Skipping
        // refused owners after the comparison picks the same match as
        // skipping them before.
        for &e in cand.iter() {
            let Some(sim) = self.reps.similarity_above(e, sig, &print, threshold, best_sim) else { continue };
            let c = self.find(self.reps.entry(e).1);
            if refused.contains(&(c | CLUSTER_BIT)) {
                continue;
            }
            best_sim = sim;
            best = Some(Match::Cluster(c, sim));
        }
        for (young, idx) in [(false, &self.old), (true, &self.young)] {
            idx.candidates(sig, cand);
            verified += cand.len() as u64;
            idx.warm_entries(cand);
            for &e in cand.iter() {
                let Some(sim) = idx.similarity_above(e, sig, &print, threshold, best_sim) else { continue };
                let tid = idx.entry(e).1;
                let t = &self.templates[tid as usize];
                let owner = if t.cluster != NONE { self.find(t.cluster) | CLUSTER_BIT } else { tid };
                if refused.contains(&owner) {
                    continue;
                }
                best_sim = sim;
                best = Some(if t.cluster != NONE {
                    Match::Cluster(t.cluster, sim)
                } else {
                    Match::Singleton(tid, sim, (young, e))
                });
            }
        }
        (best, verified)
    }

    fn touch_template(&mut self, tid: u32) {
        let t = &mut self.templates[tid as usize];
        if !t.dirty {
            t.dirty = true;
            self.dirty_templates.push(tid);
        }
    }

    fn touch_cluster(&mut self, c: u32) {
        let cl = &mut self.clusters[c as usize];
        if !cl.dirty {
            cl.dirty = true;
            self.dirty_clusters.push(c);
        }
    }

    /// Makes a campaign led by singleton template `tid` and counts the
    /// template's first message in it.
    fn form_cluster(&mut self, tid: u32, text: &str, body: &str, sig: Option<Signature>, now: i64) -> u32 {
        let c = self.clusters.len() as u32;
        let sig = sig.unwrap_or_else(|| signature(text, &mut self.mh, self.cfg.min_template_len));
        let (features, findings) = self.characterize(text, body);
        let (category, subcategory) = self.categorize(tid, text, body, &findings);
        self.kept.remove(&tid);
        self.pending_findings.insert(tid, findings);
        let t = &mut self.templates[tid as usize];
        t.cluster = c;
        t.category = category;
        t.subcategory = subcategory;
        let (label, first_ts, first_rcpt) = (t.key, t.first_ts, t.has_rcpt.then_some(t.first_rcpt));
        t.features = Some(features);
        t.characterized = true;
        let name = self.first_sender(tid).to_string();
        let first_sender = self.intern(&name);
        self.touch_template(tid);
        self.reps.insert(&sig, c);
        let vecs = self.meaning.as_ref().and_then(|m| m.embed(text)).into_iter().collect();
        self.clusters.push(Cluster {
            label,
            leader: tid,
            messages: 0,
            templates: 1,
            senders: 0,
            recipients: 0,
            first_ts,
            last_ts: first_ts,
            formed_ts: now,
            reps: vec![sig],
            dirty: false,
            merged_into: NONE,
            actor: crate::identity::of(text).map(Into::into),
            vecs,
            members: vec![tid],
            sender_list: Vec::new(),
            domains: Vec::new(),
            phones: Vec::new(),
            rcpts: HashSet::new(),
        });
        self.touch_cluster(c);
        self.add_message(c, first_ts, first_sender, (first_rcpt, None));
        c
    }

    fn join(&mut self, tid: u32, c: u32, text: &str, body: &str, sig: &Signature, sim: f32) {
        let (features, findings) = self.characterize(text, body);
        let (category, subcategory) = self.categorize(tid, text, body, &findings);
        self.pending_findings.insert(tid, findings);
        let t = &mut self.templates[tid as usize];
        t.cluster = c;
        t.category = category;
        t.subcategory = subcategory;
        t.features = Some(features);
        t.characterized = true;
        let actor = if self.clusters[c as usize].actor.is_none() { crate::identity::of(text) } else { None };
        let cl = &mut self.clusters[c as usize];
        cl.templates += 1;
        cl.members.push(tid);
        if actor.is_some() {
            cl.actor = actor.map(Into::into);
        }
        if sim < self.cfg.rep_novelty && cl.reps.len() < self.cfg.max_reps {
            cl.reps.push(*sig);
            self.reps.insert(sig, c);
        }
        self.touch_cluster(c);
    }

    /// Counts a message of campaign `c`. `rcpt` is the recipient's hash and,
    /// during a key rotation's grace period, its hash under the previous
    /// key: a recipient the campaign counted under the old key is the same
    /// recipient, and is neither counted again nor added under its new hash
    /// (the set keeps one hash per person, so merges count it once).
    fn add_message(&mut self, c: u32, ts: i64, sender: u32, rcpt: (Option<u64>, Option<u64>)) {
        self.touch_cluster(c);
        let cl = &mut self.clusters[c as usize];
        cl.messages += 1;
        cl.first_ts = cl.first_ts.min(ts);
        cl.last_ts = cl.last_ts.max(ts);
        match self.cluster_senders.entry((c, sender)) {
            hashbrown::hash_map::Entry::Occupied(mut o) => {
                let s = o.get_mut();
                s.messages += 1;
                s.first_ts = s.first_ts.min(ts);
                s.last_ts = s.last_ts.max(ts);
                if !s.dirty {
                    s.dirty = true;
                    self.dirty_senders.push((c, sender));
                }
            }
            hashbrown::hash_map::Entry::Vacant(v) => {
                v.insert(SenderStat { messages: 1, first_ts: ts, last_ts: ts, dirty: true });
                self.dirty_senders.push((c, sender));
                cl.senders += 1;
                cl.sender_list.push(sender);
                self.link_queue.push((c, sender));
            }
        }
        if let (Some(r), prev) = rcpt {
            let known_by_old_key = prev.is_some_and(|p| cl.rcpts.contains(&p));
            if !known_by_old_key && cl.rcpts.insert(r) {
                cl.recipients += 1;
                self.new_recipients.push((c, r));
            }
        }
        *self.minutes.entry((c, ts.div_euclid(60_000))).or_insert(0) += 1;
    }

    /// Counts a quiet-hours message for its template and keeps the first
    /// one's finding for the delta.
    fn note_quiet(&mut self, tid: u32, a: &Analyzed) {
        let Some(q) = &a.quiet else { return };
        let t = &mut self.templates[tid as usize];
        t.quiet = t.quiet.saturating_add(1);
        let first = t.quiet == 1;
        if first {
            let (rule, severity) = self.rules.quiet_rule().unwrap_or(("quiet-hours", crate::rules::Severity::Low));
            self.quiet_findings.insert(
                tid,
                Finding {
                    rule: rule.to_string(),
                    severity,
                    evidence: crate::rules::Evidence { excerpt: q.fact.clone(), ..Default::default() },
                    campaign_share: 0.0,
                },
            );
        }
    }

    /// Takes what changed since the last call, for the store to commit.
    /// `texts` gives the template text for new templates by key (the
    /// caller's analyzed batch holds them).
    pub fn take_delta<'a>(&mut self, mut text_of: impl FnMut(u64) -> Option<&'a str>) -> Delta {
        let mut d = Delta::default();
        for tid in std::mem::take(&mut self.dirty_templates) {
            let t = &mut self.templates[tid as usize];
            t.dirty = false;
            let text = if t.is_new { text_of(t.key).unwrap_or_default().to_owned() } else { String::new() };
            t.is_new = false;
            let findings = if t.characterized { self.pending_findings.remove(&tid) } else { None };
            let (category, subcategory) = match (&self.classifier, t.characterized) {
                (Some(m), true) => (
                    t.category.and_then(|c| m.top.labels.get(c as usize).cloned()),
                    t.subcategory.and_then(|c| m.subcategory_name(c).map(str::to_owned)),
                ),
                _ => (None, None),
            };
            let category_rule = if t.characterized { self.category_rules.remove(&tid) } else { None };
            t.characterized = false;
            d.templates.push(TemplateRow {
                key: t.key,
                seq: tid,
                text,
                cluster: (t.cluster != NONE).then_some(t.cluster),
                messages: t.messages,
                first_ts: t.first_ts,
                first_sender: {
                    let at = t.first_sender_at as usize;
                    self.sender_arena.get(at..at + t.first_sender_len as usize).unwrap_or("").to_string()
                },
                first_rcpt: t.has_rcpt.then_some(t.first_rcpt),
                clusterable: t.clusterable,
                optout: t.features.map(|f| f.0),
                sender_id: t.features.map(|f| f.1),
                findings,
                category,
                subcategory,
                category_rule,
                quiet: u64::from(t.quiet),
                quiet_finding: self.quiet_findings.remove(&tid),
            });
        }
        for c in std::mem::take(&mut self.dirty_clusters) {
            let cl = &mut self.clusters[c as usize];
            cl.dirty = false;
            let leader = if cl.leader == NONE { cl.label } else { self.templates[cl.leader as usize].key };
            let cl = &self.clusters[c as usize];
            d.clusters.push(ClusterRow {
                seq: c,
                label: cl.label,
                leader,
                messages: cl.messages,
                templates: cl.templates,
                senders: cl.senders,
                recipients: cl.recipients,
                first_ts: cl.first_ts,
                last_ts: cl.last_ts,
                formed_ts: cl.formed_ts,
                reps: cl.reps.clone(),
                merged_into: (cl.merged_into != NONE).then_some(cl.merged_into),
                actor: cl.actor.as_deref().map(str::to_owned),
                meaning: cl.vecs.clone(),
                domains: cl.domains.iter().map(|d| d.to_string()).collect(),
                phones: cl.phones.iter().map(|p| p.to_string()).collect(),
            });
        }
        for (c, s) in std::mem::take(&mut self.dirty_senders) {
            if let Some(st) = self.cluster_senders.get_mut(&(c, s)) {
                st.dirty = false;
                d.senders.push(SenderRow {
                    cluster: c,
                    sender: self.sender_names[s as usize].to_string(),
                    messages: st.messages,
                    first_ts: st.first_ts,
                    last_ts: st.last_ts,
                });
            }
        }
        let mut minutes: Vec<MinuteRow> =
            self.minutes.drain().map(|((cluster, minute), count)| MinuteRow { cluster, minute, count }).collect();
        minutes.sort_unstable_by_key(|m| (m.cluster, m.minute));
        d.minutes = minutes;
        d.recipients = std::mem::take(&mut self.new_recipients);
        d.merges = std::mem::take(&mut self.pending_merges);
        d.links = std::mem::take(&mut self.pending_links);
        self.seen.trim();
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::{Analyzer, Scratch};
    use crate::message::Message;

    fn run(bodies: &[(&str, &str)]) -> (Engine, Vec<Option<u64>>) {
        let an = Analyzer::new(b"k", 20);
        let mut s = Scratch::default();
        let mut e = Engine::new(EngineConfig::default());
        let mut out = Vec::new();
        for (i, (from, body)) in bodies.iter().enumerate() {
            let m = Message {
                id: Some(format!("m{i}")),
                ts_ms: i as i64 * 1000,
                from: (*from).into(),
                to: Some(format!("+1267555{:04}", i)),
                body: (*body).into(),
                ..Default::default()
            };
            let a = an.analyze(m, &mut s);
            match e.assign(&a, None) {
                Outcome::Accepted { campaign, .. } => out.push(campaign),
                Outcome::Duplicate => panic!("unexpected duplicate"),
            }
        }
        (e, out)
    }

    #[test]
    fn copies_form_one_campaign_from_the_second_message() {
        let (e, out) = run(&[
            ("+12155550101", "Hi Chris, the election is being stolen! Gather at the Convention Center 3pm"),
            ("+12155550102", "Hey Dana - the election is being st0len! Gather at the Convention Center 3pm"),
            ("+12155550103", "Hi Sam, the election is being stolen!! Gather at the Convention Center at 3pm"),
        ]);
        assert_eq!(e.campaigns(), 1);
        assert!(out[1].is_some());
        assert_eq!(out[1], out[2]);
        let d = Engine::take_delta(&mut { e }, |_| None);
        assert_eq!(d.clusters[0].messages, 3);
        assert_eq!(d.clusters[0].senders, 3);
        assert_eq!(d.clusters[0].recipients, 3);
    }

    #[test]
    fn different_texts_with_the_same_tail_stay_apart() {
        let (e, out) = run(&[
            ("+12155550101", "Your prescription is ready for pickup at Acme Pharmacy. Reply STOP to opt out"),
            (
                "+12155550102",
                "Flash sale: 40% off all boots this weekend at Trailhead Outfitters. Reply STOP to opt out",
            ),
        ]);
        assert_eq!(e.campaigns(), 0);
        assert_eq!(out, vec![None, None]);
    }

    #[test]
    fn duplicates_change_nothing() {
        let an = Analyzer::new(b"k", 20);
        let mut s = Scratch::default();
        let mut e = Engine::new(EngineConfig::default());
        let m = Message {
            id: Some("x".into()),
            body: "Your package is held, pay the fee at usps-fee.top/a".into(),
            ..Default::default()
        };
        let a = an.analyze(m, &mut s);
        assert!(matches!(e.assign(&a, None), Outcome::Accepted { .. }));
        assert_eq!(e.assign(&a, None), Outcome::Duplicate);
        assert_eq!(e.campaigns(), 0);
    }

    #[test]
    fn restore_continues_the_same_campaign() {
        let an = Analyzer::new(b"k", 20);
        let mut s = Scratch::default();
        let mut e = Engine::new(EngineConfig::default());
        let body = |i: usize| Message {
            id: Some(format!("m{i}")),
            ts_ms: i as i64,
            from: format!("+1215555{:04}", i),
            body: format!("URGENT {i}: your bank account is locked, verify at chase-secure{i}.info/login now"),
            ..Default::default()
        };
        let a0 = an.analyze(body(0), &mut s);
        e.assign(&a0, None);
        let d0 = e.take_delta(|k| (k == a0.template_key).then_some(a0.template.as_str()));
        // Persist what a store would: the delta rows.
        let snap =
            Snapshot { templates: d0.templates.clone(), seen: vec![(a0.key, a0.msg.ts_ms)], ..Default::default() };
        let mut e2 = Engine::restore(EngineConfig::default(), snap);
        let a1 = an.analyze(body(1), &mut s);
        let out = e2.assign(&a1, None);
        assert!(matches!(out, Outcome::Accepted { campaign: Some(l), .. } if l == a0.template_key));
        assert_eq!(e2.assign(&a0, None), Outcome::Duplicate);
    }
}
