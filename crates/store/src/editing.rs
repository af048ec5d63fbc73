//! What an analyst's edit of campaigns changes, the same in both stores
//! (`edits.rs` writes it to SQLite, `pg/pg_edits.rs` to PostgreSQL): which
//! variants a split moves, and a campaign's counts, senders, minutes and
//! engine state rebuilt from its stored messages, so that an edited
//! campaign looks as if the engine had built it that way.

use std::collections::{BTreeMap, HashMap, HashSet};

use textwatch_engine::meaning::MeaningModel;
use textwatch_engine::minhash::{signature, MinHashScratch};

use crate::StoreError;

/// Who made an edit and why (kept with it).
#[derive(Clone, Debug)]
pub struct Edit<'a> {
    pub at: i64,
    pub by: &'a str,
    pub reason: &'a str,
}

/// What a split or merge did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct EditOutcome {
    /// The campaign that remains (for a merge, the one kept).
    pub campaign: String,
    /// The other campaign: the one split off, or the one merged in.
    pub other: String,
    /// Variants moved.
    pub variants: u64,
    /// Messages moved.
    pub messages: u64,
}

/// Why an edit refuses campaign `id`: some of its messages were pruned,
/// and an edit recomputes a campaign from its stored messages.
pub(crate) fn pruned(id: &str) -> StoreError {
    StoreError::Edit(format!(
        "campaign {id} has messages that were pruned; split and merge recompute a campaign from its stored messages \
         and would lose them"
    ))
}

/// A campaign as found: its number and id.
pub(crate) type Found = (i64, String);

/// Which of two campaigns, `a` and `b` as given and as found, a merge
/// keeps and which it merges in: the older is kept.
pub(crate) fn merge_pair(
    (a, found_a): (&str, Option<Found>),
    (b, found_b): (&str, Option<Found>),
) -> Result<(Found, Found), StoreError> {
    let (sa, ia) = found_a.ok_or_else(|| StoreError::NotFound(a.to_string()))?;
    let (sb, ib) = found_b.ok_or_else(|| StoreError::NotFound(b.to_string()))?;
    if sa == sb {
        return Err(StoreError::Edit(format!("{a} and {b} are the same campaign, {ia}")));
    }
    Ok(if sa < sb { ((sa, ia), (sb, ib)) } else { ((sb, ib), (sa, ia)) })
}

/// The variants a split of `variants` off campaign `cid` moves: those,
/// and every variant that joined through them (`links`: (variant, via) in
/// the order they joined). `members` are the campaign's variants,
/// `leader` the one that formed it (it stays).
pub(crate) fn moving_variants(
    cid: &str,
    members: &[i64],
    leader: i64,
    links: &[(i64, i64)],
    variants: &[u64],
) -> Result<Vec<i64>, StoreError> {
    for v in variants {
        if !members.contains(&(*v as i64)) {
            return Err(StoreError::Edit(format!("variant {v:016x} is not part of campaign {cid}")));
        }
        if *v as i64 == leader {
            return Err(StoreError::Edit(format!(
                "variant {v:016x} formed campaign {cid}; split the other variants off instead"
            )));
        }
    }
    let mut moving: Vec<i64> = variants.iter().map(|v| *v as i64).collect();
    moving.sort_unstable();
    moving.dedup();
    loop {
        let before = moving.len();
        for &(v, via) in links {
            if moving.contains(&via) && !moving.contains(&v) && members.contains(&v) && v != leader {
                moving.push(v);
            }
        }
        if moving.len() == before {
            break;
        }
    }
    if moving.len() == members.len() {
        return Err(StoreError::Edit("that would move every variant; nothing would be left".into()));
    }
    Ok(moving)
}

/// A campaign's messages, tallied one at a time as they are read: senders,
/// minutes, totals, recipients, and link domains and callback numbers as
/// the engine counts them (no shorteners, no brand's own domain, no
/// sender's own number).
pub(crate) struct Tally {
    official: Vec<String>,
    infra: crate::blobs::Infra,
    senders: HashMap<String, (i64, i64, i64)>,
    minutes: BTreeMap<i64, i64>,
    recipients: HashSet<Vec<u8>>,
    times: Vec<i64>,
    scratch: textwatch_engine::template::TemplateScratch,
    out: String,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            official: textwatch_engine::RuleSet::builtin().official_domains().map(str::to_owned).collect(),
            infra: Default::default(),
            senders: HashMap::new(),
            minutes: BTreeMap::new(),
            recipients: HashSet::new(),
            times: Vec::new(),
            scratch: Default::default(),
            out: String::new(),
        }
    }
}

/// A campaign's row as rebuilt by [`Tally::finish`].
pub(crate) struct Rebuilt {
    pub messages: i64,
    pub templates: i64,
    pub senders: i64,
    pub recipients: i64,
    pub first_ts: i64,
    pub last_ts: i64,
    pub formed_ts: i64,
    /// Representatives' signatures, as the clusters table keeps them.
    pub reps: Vec<u8>,
    /// Meaning vectors, as the clusters table keeps them.
    pub meaning: Vec<u8>,
    pub actor: Option<String>,
    /// Shared infrastructure as JSON.
    pub infra: String,
    /// Each sender's messages, first and last time.
    pub sender_rows: HashMap<String, (i64, i64, i64)>,
    /// Messages per minute.
    pub minute_rows: BTreeMap<i64, i64>,
}

impl Tally {
    /// One message of the campaign.
    pub fn add(&mut self, sender: &str, ts: i64, rcpt: Option<&[u8]>, body: &str) {
        let e = self.senders.entry(sender.to_string()).or_insert((0, ts, ts));
        *e = (e.0 + 1, e.1.min(ts), e.2.max(ts));
        *self.minutes.entry(ts.div_euclid(60_000)).or_default() += 1;
        if let Some(r) = rcpt {
            self.recipients.insert(r.to_vec());
        }
        self.times.push(ts);
        textwatch_engine::template::templatize(body, &mut self.scratch, &mut self.out);
        let f = textwatch_engine::features::MessageFeatures::from_scratch(&self.scratch);
        let infra = &mut self.infra;
        for l in f.links.iter().filter(|l| !l.shortener) {
            if let Some(d) = &l.domain {
                if !self.official.contains(d) && !infra.domains.contains(d) && infra.domains.len() < 64 {
                    infra.domains.push(d.clone());
                }
            }
        }
        for p in f.phones {
            if p.len() >= 10 && p != sender && !infra.phones.contains(&p) && infra.phones.len() < 64 {
                infra.phones.push(p);
            }
        }
    }

    /// The campaign's row, given its templates' texts and keys (largest
    /// first, then oldest) and the variant that formed it; the engine's
    /// own limits, so that the campaign looks as the engine would have
    /// built it.
    pub fn finish(mut self, texts: &[(String, i64)], leader: i64, meaning: Option<&MeaningModel>) -> Rebuilt {
        self.times.sort_unstable();
        let first = self.times.first().copied();
        let leader_text =
            texts.iter().find(|(_, k)| *k == leader).or(texts.first()).map(|(t, _)| t.as_str()).unwrap_or("");
        let cfg = textwatch_engine::EngineConfig::default();
        let mut mh = MinHashScratch::default();
        let reps: Vec<u8> = texts
            .iter()
            .filter(|(t, _)| !t.is_empty())
            .take(cfg.max_reps)
            .flat_map(|(t, _)| signature(t, &mut mh, cfg.min_template_len))
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let meaning = match meaning {
            Some(m) => texts
                .iter()
                .take(cfg.max_reps)
                .filter_map(|(t, _)| m.embed(t))
                .flat_map(|v| v.into_iter().flat_map(|f| f.to_le_bytes()))
                .collect(),
            None => Vec::new(),
        };
        Rebuilt {
            messages: self.times.len() as i64,
            templates: texts.len() as i64,
            senders: self.senders.len() as i64,
            recipients: self.recipients.len() as i64,
            first_ts: first.unwrap_or(0),
            last_ts: self.times.last().copied().unwrap_or(0),
            formed_ts: self.times.get(1).copied().or(first).unwrap_or(0),
            reps,
            meaning,
            actor: textwatch_engine::identity::of(leader_text),
            infra: serde_json::to_string(&self.infra).unwrap_or_default(),
            sender_rows: self.senders,
            minute_rows: self.minutes,
        }
    }
}
