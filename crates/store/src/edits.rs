//! An analyst's edits of campaigns: split variants off a campaign, merge two
//! campaigns. Both are recorded (`campaign_edits`), both survive later
//! scans: a split pair is kept apart (`campaign_apart`, read by the engine
//! on restore), a merge is a campaign row pointing at the one it joined,
//! exactly as when the engine merges.
//!
//! Counts, senders, minutes and the engine's state of each campaign touched
//! (representatives, meaning vectors, named sender) are recomputed from the
//! stored messages, so the edited campaigns look as if the engine had built
//! them that way.

use rusqlite::{params, OptionalExtension, Transaction};
use textwatch_engine::meaning::MeaningModel;
use textwatch_engine::minhash::{signature, MinHashScratch};

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::log::{col, SegmentLog};
use crate::sqlite::SqliteStore;
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

impl SqliteStore {
    /// Splits `variants` (template keys) and every variant that joined the
    /// campaign through them off campaign `id` into a campaign of their own,
    /// kept apart from it from now on. The variant that formed the campaign
    /// cannot be split off (split the others instead).
    pub fn split_campaign(
        &mut self,
        id: &str,
        variants: &[u64],
        edit: &Edit<'_>,
        meaning: Option<&MeaningModel>,
    ) -> Result<EditOutcome, StoreError> {
        let (seq, cid) = self.resolve_seq(id)?.ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        self.editable(&[(seq, &cid)])?;
        let log = &self.log;
        let tx = self.conn.transaction()?;
        let leader: i64 = tx.query_row("SELECT leader FROM clusters WHERE seq = ?1", [seq], |r| r.get(0))?;
        let members: Vec<i64> = tx
            .prepare("SELECT key FROM templates WHERE cluster = ?1")?
            .query_map([seq], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
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
        // The variants that joined through the ones split off go with them.
        let edges: Vec<(i64, i64)> = tx
            .prepare("SELECT variant, via FROM campaign_links WHERE cluster = ?1 ORDER BY ts, rowid")?
            .query_map([seq], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut moving: Vec<i64> = variants.iter().map(|v| *v as i64).collect();
        moving.sort_unstable();
        moving.dedup();
        loop {
            let before = moving.len();
            for &(v, via) in &edges {
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
        // The new campaign takes the id of its first variant; a campaign
        // merged in earlier under that id comes back to life.
        let first: i64 = {
            let list = moving.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(",");
            tx.query_row(&format!("SELECT key FROM templates WHERE key IN ({list}) ORDER BY seq LIMIT 1"), [], |r| {
                r.get(0)
            })?
        };
        let new_id = format!("{:016x}", first as u64);
        let revived: Option<i64> =
            tx.query_row("SELECT seq FROM clusters WHERE id = ?1", [&new_id], |r| r.get(0)).optional()?;
        let new_seq = match revived {
            Some(s) => {
                tx.execute("UPDATE clusters SET merged_into = NULL WHERE seq = ?1", [s])?;
                s
            }
            None => {
                let s: i64 = tx.query_row("SELECT COALESCE(MAX(seq), -1) + 1 FROM clusters", [], |r| r.get(0))?;
                tx.execute(
                    "INSERT INTO clusters (seq, id, leader, messages, templates, senders, recipients, first_ts, last_ts, formed_ts, reps)
                     VALUES (?1, ?2, ?3, 0, 0, 0, 0, 0, 0, 0, x'')",
                    params![s, new_id, first],
                )?;
                s
            }
        };
        tx.execute("UPDATE clusters SET leader = ?2 WHERE seq = ?1", params![new_seq, first])?;
        for k in &moving {
            tx.execute("UPDATE templates SET cluster = ?2 WHERE key = ?1", params![k, new_seq])?;
            tx.execute(
                "UPDATE campaign_links SET cluster = ?2 WHERE cluster = ?1 AND variant = ?3",
                params![seq, new_seq, k],
            )?;
        }
        // The links the split cuts (a moved variant joined through one that
        // stays) no longer explain anything: the edit record says why.
        let moved = moving.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(",");
        tx.execute(
            &format!("DELETE FROM campaign_links WHERE cluster = ?1 AND variant IN ({moved}) AND via NOT IN ({moved})"),
            [new_seq],
        )?;
        let (a, b) = (seq.min(new_seq), seq.max(new_seq));
        tx.execute("INSERT OR IGNORE INTO campaign_apart (a, b) VALUES (?1, ?2)", params![a, b])?;
        tx.execute(
            "INSERT INTO campaign_edits (at, action, campaign, other, by, reason) VALUES (?1, 'split', ?2, ?3, ?4, ?5)",
            params![edit.at, cid, new_id, edit.by, edit.reason],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO segment_clusters (cluster, segment) SELECT ?2, segment FROM segment_clusters WHERE cluster = ?1",
            params![seq, new_seq],
        )?;
        recompute(&tx, log, seq, meaning)?;
        let messages = recompute(&tx, log, new_seq, meaning)?;
        tx.commit()?;
        Ok(EditOutcome { campaign: cid, other: new_id, variants: moving.len() as u64, messages })
    }

    /// Merges campaigns `a` and `b`: the older keeps its id, the other's
    /// resolves to it. Undoes an earlier split between them.
    pub fn merge_campaigns(
        &mut self,
        a: &str,
        b: &str,
        edit: &Edit<'_>,
        meaning: Option<&MeaningModel>,
    ) -> Result<EditOutcome, StoreError> {
        let (sa, ia) = self.resolve_seq(a)?.ok_or_else(|| StoreError::NotFound(a.to_string()))?;
        let (sb, ib) = self.resolve_seq(b)?.ok_or_else(|| StoreError::NotFound(b.to_string()))?;
        if sa == sb {
            return Err(StoreError::Edit(format!("{a} and {b} are the same campaign, {ia}")));
        }
        let ((into, into_id), (from, from_id)) = if sa < sb { ((sa, ia), (sb, ib)) } else { ((sb, ib), (sa, ia)) };
        self.editable(&[(into, &into_id), (from, &from_id)])?;
        let log = &self.log;
        let tx = self.conn.transaction()?;
        let (variant, via): (i64, i64) = (
            tx.query_row("SELECT leader FROM clusters WHERE seq = ?1", [from], |r| r.get(0))?,
            tx.query_row("SELECT leader FROM clusters WHERE seq = ?1", [into], |r| r.get(0))?,
        );
        let moved: i64 = tx.query_row("SELECT COUNT(*) FROM templates WHERE cluster = ?1", [from], |r| r.get(0))?;
        tx.execute("UPDATE templates SET cluster = ?2 WHERE cluster = ?1", params![from, into])?;
        tx.execute("UPDATE campaign_links SET cluster = ?2 WHERE cluster = ?1", params![from, into])?;
        tx.execute("UPDATE campaign_samples SET cluster = ?2 WHERE cluster = ?1", params![from, into])?;
        tx.execute("UPDATE clusters SET merged_into = ?2 WHERE seq = ?1", params![from, into])?;
        tx.execute("DELETE FROM cluster_senders WHERE cluster = ?1", [from])?;
        tx.execute("DELETE FROM cluster_minutes WHERE cluster = ?1", [from])?;
        tx.execute("DELETE FROM campaign_apart WHERE a = ?1 AND b = ?2", params![into, from])?;
        crate::sqlite::move_apart(&tx, from, into)?;
        tx.execute(
            "INSERT INTO campaign_links (cluster, variant, via, kind, evidence, similarity, ts) VALUES (?1, ?2, ?3, 'manual', ?4, 1.0, ?5)",
            params![into, variant, via, format!("merged by {}: {}", edit.by, edit.reason), edit.at],
        )?;
        tx.execute(
            "INSERT INTO campaign_edits (at, action, campaign, other, by, reason) VALUES (?1, 'merge', ?2, ?3, ?4, ?5)",
            params![edit.at, into_id, from_id, edit.by, edit.reason],
        )?;
        let messages: i64 = tx.query_row("SELECT messages FROM clusters WHERE seq = ?1", [from], |r| r.get(0))?;
        tx.execute(
            "INSERT OR IGNORE INTO segment_clusters (cluster, segment) SELECT ?2, segment FROM segment_clusters WHERE cluster = ?1",
            params![from, into],
        )?;
        recompute(&tx, log, into, meaning)?;
        tx.commit()?;
        Ok(EditOutcome { campaign: into_id, other: from_id, variants: moved as u64, messages: messages as u64 })
    }
}

impl SqliteStore {
    /// Edits recompute campaigns from their stored messages: they take the
    /// writer's lock (a running scan or server would overwrite them), and
    /// refuse campaigns some of whose messages were pruned (their counts
    /// would shrink to what is left).
    fn editable(&mut self, campaigns: &[(i64, &str)]) -> Result<(), StoreError> {
        self.recover_log()?;
        for (seq, id) in campaigns {
            let pruned: bool = self.conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM campaign_samples WHERE cluster = ?1)",
                [seq],
                |r| r.get(0),
            )?;
            if pruned {
                return Err(StoreError::Edit(format!(
                    "campaign {id} has messages that were pruned; split and merge recompute a campaign from its stored \
                     messages and would lose them"
                )));
            }
        }
        Ok(())
    }
}

/// Rebuilds a campaign's row, senders and minutes from its stored messages,
/// and its engine state from its largest templates. Returns its messages.
fn recompute(
    tx: &Transaction<'_>,
    log: &SegmentLog,
    seq: i64,
    meaning: Option<&MeaningModel>,
) -> Result<u64, StoreError> {
    // One pass over the campaign's messages in the log: senders, minutes,
    // totals, recipients, and link domains and callback numbers as the
    // engine counts them (no shorteners, no brand's own domain, no
    // sender's own number).
    let official: Vec<String> = textwatch_engine::RuleSet::builtin().official_domains().map(str::to_owned).collect();
    let mut infra = crate::blobs::Infra::default();
    let mut senders: HashMap<String, (i64, i64, i64)> = HashMap::new();
    let mut minutes: BTreeMap<i64, i64> = BTreeMap::new();
    let mut recipients: HashSet<Vec<u8>> = HashSet::new();
    let mut times: Vec<i64> = Vec::new();
    let mut ts = textwatch_engine::template::TemplateScratch::default();
    let mut out = String::new();
    crate::segments::for_campaign(tx, log, seq, &[col::SENDER, col::TS, col::RCPT, col::BODY], &mut |rows, i, _| {
        let (sender, t) = (rows.sender(i), rows.ts(i));
        let e = senders.entry(sender.to_string()).or_insert((0, t, t));
        *e = (e.0 + 1, e.1.min(t), e.2.max(t));
        *minutes.entry(t.div_euclid(60_000)).or_default() += 1;
        if let Some(r) = rows.rcpt(i) {
            recipients.insert(r.to_vec());
        }
        times.push(t);
        textwatch_engine::template::templatize(rows.body(i), &mut ts, &mut out);
        let f = textwatch_engine::features::MessageFeatures::from_scratch(&ts);
        for l in f.links.iter().filter(|l| !l.shortener) {
            if let Some(d) = &l.domain {
                if !official.contains(d) && !infra.domains.contains(d) && infra.domains.len() < 64 {
                    infra.domains.push(d.clone());
                }
            }
        }
        for p in f.phones {
            if p.len() >= 10 && p != sender && !infra.phones.contains(&p) && infra.phones.len() < 64 {
                infra.phones.push(p);
            }
        }
        true
    })?;
    tx.execute("DELETE FROM cluster_senders WHERE cluster = ?1", [seq])?;
    {
        let mut st = tx.prepare_cached(
            "INSERT INTO cluster_senders (cluster, sender, messages, first_ts, last_ts) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (sender, (n, first, last)) in &senders {
            st.execute(params![seq, sender, n, first, last])?;
        }
    }
    tx.execute("DELETE FROM cluster_minutes WHERE cluster = ?1", [seq])?;
    {
        let mut st = tx.prepare_cached("INSERT INTO cluster_minutes (cluster, minute, count) VALUES (?1, ?2, ?3)")?;
        for (minute, n) in &minutes {
            st.execute(params![seq, minute, n])?;
        }
    }
    times.sort_unstable();
    let (messages, first, last, recipients) =
        (times.len() as i64, times.first().copied(), times.last().copied(), recipients.len() as i64);
    let formed = times.get(1).copied();
    let senders = senders.len() as i64;
    let texts: Vec<(String, i64)> = tx
        .prepare("SELECT text, key FROM templates WHERE cluster = ?1 ORDER BY messages DESC, seq")?
        .query_map([seq], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let leader: i64 = tx.query_row("SELECT leader FROM clusters WHERE seq = ?1", [seq], |r| r.get(0))?;
    let leader_text = texts.iter().find(|(_, k)| *k == leader).or(texts.first()).map(|(t, _)| t.as_str()).unwrap_or("");
    // The engine's own limits, so that the edited campaign looks as the
    // engine would have built it.
    let cfg = textwatch_engine::EngineConfig::default();
    let mut mh = MinHashScratch::default();
    let reps: Vec<u8> = texts
        .iter()
        .filter(|(t, _)| !t.is_empty())
        .take(cfg.max_reps)
        .flat_map(|(t, _)| signature(t, &mut mh, cfg.min_template_len))
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let vecs: Vec<u8> = match meaning {
        Some(m) => texts
            .iter()
            .take(cfg.max_reps)
            .filter_map(|(t, _)| m.embed(t))
            .flat_map(|v| v.into_iter().flat_map(|f| f.to_le_bytes()))
            .collect(),
        None => Vec::new(),
    };
    tx.execute(
        "UPDATE clusters SET messages = ?2, templates = ?3, senders = ?4, recipients = ?5, first_ts = ?6, last_ts = ?7,
                formed_ts = ?8, reps = ?9, meaning = ?10, actor = ?11, infra = ?12 WHERE seq = ?1",
        params![
            seq,
            messages,
            texts.len() as i64,
            senders,
            recipients,
            first.unwrap_or(0),
            last.unwrap_or(0),
            formed.or(first).unwrap_or(0),
            reps,
            vecs,
            textwatch_engine::identity::of(leader_text),
            serde_json::to_string(&infra).unwrap_or_default(),
        ],
    )?;
    Ok(messages as u64)
}
