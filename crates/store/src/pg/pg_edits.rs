//! An analyst's split and merge of campaigns on PostgreSQL, as the embedded
//! store makes them (`edits.rs`; the shared rules in `editing.rs`).
//!
//! The campaigns' messages are read first and tallied by where each of
//! them goes; then one transaction moves the variants and writes the
//! rebuilt campaigns. Nothing changes in between: an edit holds the
//! writer's lock (the workers' assigner must be stopped), so nothing else
//! writes campaigns meanwhile.

use std::collections::HashMap;

use textwatch_engine::meaning::MeaningModel;

use super::{move_apart, pg, PgStore};
use crate::editing::{merge_pair, moving_variants, Edit, EditOutcome, Rebuilt, Tally};
use crate::log::{col, Segment};
use crate::StoreError;
use crate::WriteStore as _;

/// A campaign's variant: (template key, text, messages, order of making).
type Variant = (i64, String, i64, i64);

impl PgStore {
    /// Edits recompute campaigns from their stored messages: they take the
    /// writer's lock, and refuse campaigns some of whose messages were
    /// pruned (their counts would shrink to what is left).
    fn editable(&mut self, campaigns: &[(i64, &str)]) -> Result<(), StoreError> {
        self.lock_for_writing()?;
        for (seq, id) in campaigns {
            let pruned: bool = self
                .db(|c| c.query_one("SELECT EXISTS (SELECT 1 FROM campaign_samples WHERE cluster = $1)", &[seq]))
                .map_err(pg)?
                .get(0);
            if pruned {
                return Err(crate::editing::pruned(id));
            }
        }
        Ok(())
    }

    fn variants_of(&self, seq: i64) -> Result<Vec<Variant>, StoreError> {
        Ok(self
            .db(|c| c.query("SELECT key, text, messages, seq FROM templates WHERE cluster = $1", &[&seq]))
            .map_err(pg)?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect())
    }

    fn leader_of(&self, seq: i64) -> Result<i64, StoreError> {
        Ok(self.db(|c| c.query_one("SELECT leader FROM clusters WHERE seq = $1", &[&seq])).map_err(pg)?.get(0))
    }

    /// Tallies the messages of `variants` in `segs` into `tallies`, each
    /// into the one `route` names for its template.
    fn tally(
        &self,
        segs: &[Segment],
        variants: &[Variant],
        tallies: &mut [Tally],
        route: &dyn Fn(i64) -> usize,
    ) -> Result<(), StoreError> {
        let texts: HashMap<u64, String> = variants.iter().map(|v| (v.0 as u64, v.1.clone())).collect();
        for seg in segs {
            crate::segments::read_campaign_rows(
                self,
                seg,
                &texts,
                &[col::SENDER, col::TS, col::RCPT, col::BODY],
                &mut |rows, i, _, _| {
                    let t = &mut tallies[route(rows.template(i) as i64)];
                    t.add(rows.sender(i), rows.ts(i), rows.rcpt(i), rows.body(i));
                    true
                },
            )?;
        }
        Ok(())
    }

    /// [`crate::WriteStore::split_campaign`] on PostgreSQL.
    pub(super) fn split(
        &mut self,
        id: &str,
        variants: &[u64],
        edit: &Edit<'_>,
        meaning: Option<&MeaningModel>,
    ) -> Result<EditOutcome, StoreError> {
        let (seq, cid) = self.resolve(id)?.ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        self.editable(&[(seq, &cid)])?;
        let leader = self.leader_of(seq)?;
        let members = self.variants_of(seq)?;
        let keys: Vec<i64> = members.iter().map(|v| v.0).collect();
        let links: Vec<(i64, i64)> = self
            .db(|c| c.query("SELECT variant, via FROM campaign_links WHERE cluster = $1 ORDER BY ts, n", &[&seq]))
            .map_err(pg)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let moving = moving_variants(&cid, &keys, leader, &links, variants)?;
        let (going, staying): (Vec<Variant>, Vec<Variant>) = members.into_iter().partition(|v| moving.contains(&v.0));
        // The new campaign takes the id of its first variant; a campaign
        // merged in earlier under that id comes back to life.
        let first = going.iter().min_by_key(|v| v.3).map(|v| v.0).unwrap_or(leader);
        let new_id = format!("{:016x}", first as u64);
        let mut tallies = [Tally::default(), Tally::default()];
        self.tally(&self.segments_of(seq)?, &[staying.clone(), going.clone()].concat(), &mut tallies, &|k| {
            usize::from(moving.contains(&k))
        })?;
        let [stay, go] = tallies;
        let (stay, go) =
            (stay.finish(&ordered(&staying), leader, meaning), go.finish(&ordered(&going), first, meaning));
        let messages = go.messages as u64;
        self.in_transaction(|tx| {
            let revived: Option<i64> =
                tx.query_opt("SELECT seq FROM clusters WHERE id = $1", &[&new_id]).map_err(pg)?.map(|r| r.get(0));
            let new_seq = match revived {
                Some(s) => {
                    tx.execute("UPDATE clusters SET merged_into = NULL WHERE seq = $1", &[&s]).map_err(pg)?;
                    s
                }
                None => {
                    let s: i64 =
                        tx.query_one("SELECT COALESCE(MAX(seq), -1) + 1 FROM clusters", &[]).map_err(pg)?.get(0);
                    tx.execute(
                        "INSERT INTO clusters (seq, id, leader, messages, templates, senders, recipients, first_ts,
                                               last_ts, formed_ts, reps)
                         VALUES ($1, $2, $3, 0, 0, 0, 0, 0, 0, 0, '')",
                        &[&s, &new_id, &first],
                    )
                    .map_err(pg)?;
                    s
                }
            };
            tx.execute("UPDATE clusters SET leader = $2 WHERE seq = $1", &[&new_seq, &first]).map_err(pg)?;
            tx.execute("UPDATE templates SET cluster = $2 WHERE key = ANY($1)", &[&moving, &new_seq]).map_err(pg)?;
            tx.execute(
                "UPDATE campaign_links SET cluster = $2 WHERE cluster = $1 AND variant = ANY($3)",
                &[&seq, &new_seq, &moving],
            )
            .map_err(pg)?;
            // The links the split cuts (a moved variant joined through one
            // that stays) no longer explain anything: the edit record says
            // why.
            tx.execute(
                "DELETE FROM campaign_links WHERE cluster = $1 AND variant = ANY($2) AND NOT (via = ANY($2))",
                &[&new_seq, &moving],
            )
            .map_err(pg)?;
            tx.execute(
                "INSERT INTO campaign_apart (a, b) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&seq.min(new_seq), &seq.max(new_seq)],
            )
            .map_err(pg)?;
            tx.execute(
                "INSERT INTO campaign_edits (at, action, campaign, other, by, reason) VALUES ($1, 'split', $2, $3, $4, $5)",
                &[&edit.at, &cid, &new_id, &edit.by, &edit.reason],
            )
            .map_err(pg)?;
            tx.execute(
                "INSERT INTO segment_clusters (cluster, segment) SELECT $2, segment FROM segment_clusters WHERE cluster = $1
                 ON CONFLICT DO NOTHING",
                &[&seq, &new_seq],
            )
            .map_err(pg)?;
            write_campaign(tx, seq, &stay)?;
            write_campaign(tx, new_seq, &go)
        })?;
        // The writer's memory of which campaign a template is in is stale.
        self.indexed.clear();
        self.pairs.clear();
        Ok(EditOutcome { campaign: cid, other: new_id, variants: moving.len() as u64, messages })
    }

    /// [`crate::WriteStore::merge_campaigns`] on PostgreSQL.
    pub(super) fn merge(
        &mut self,
        a: &str,
        b: &str,
        edit: &Edit<'_>,
        meaning: Option<&MeaningModel>,
    ) -> Result<EditOutcome, StoreError> {
        let ((into, into_id), (from, from_id)) = merge_pair((a, self.resolve(a)?), (b, self.resolve(b)?))?;
        self.editable(&[(into, &into_id), (from, &from_id)])?;
        let (variant, via) = (self.leader_of(from)?, self.leader_of(into)?);
        let from_variants = self.variants_of(from)?;
        let moved = from_variants.len() as u64;
        let variants = [self.variants_of(into)?, from_variants].concat();
        let from_messages: i64 =
            self.db(|c| c.query_one("SELECT messages FROM clusters WHERE seq = $1", &[&from])).map_err(pg)?.get(0);
        // The merged campaign's segments: both lists, in order.
        let mut segs = self.segments_of(into)?;
        for s in self.segments_of(from)? {
            if !segs.iter().any(|x| x.id == s.id) {
                segs.push(s);
            }
        }
        segs.sort_by_key(|s| s.id);
        let mut tally = [Tally::default()];
        self.tally(&segs, &variants, &mut tally, &|_| 0)?;
        let [tally] = tally;
        let merged = tally.finish(&ordered(&variants), via, meaning);
        self.in_transaction(|tx| {
            tx.execute("UPDATE templates SET cluster = $2 WHERE cluster = $1", &[&from, &into]).map_err(pg)?;
            tx.execute("UPDATE campaign_links SET cluster = $2 WHERE cluster = $1", &[&from, &into]).map_err(pg)?;
            tx.execute("UPDATE campaign_samples SET cluster = $2 WHERE cluster = $1", &[&from, &into]).map_err(pg)?;
            tx.execute("UPDATE clusters SET merged_into = $2 WHERE seq = $1", &[&from, &into]).map_err(pg)?;
            tx.execute("DELETE FROM cluster_senders WHERE cluster = $1", &[&from]).map_err(pg)?;
            tx.execute("DELETE FROM cluster_minutes WHERE cluster = $1", &[&from]).map_err(pg)?;
            tx.execute("DELETE FROM campaign_apart WHERE a = $1 AND b = $2", &[&into, &from]).map_err(pg)?;
            move_apart(tx, from, into)?;
            tx.execute(
                "INSERT INTO campaign_links (cluster, variant, via, kind, evidence, similarity, ts)
                 VALUES ($1, $2, $3, 'manual', $4, 1.0, $5)",
                &[&into, &variant, &via, &format!("merged by {}: {}", edit.by, edit.reason), &edit.at],
            )
            .map_err(pg)?;
            tx.execute(
                "INSERT INTO campaign_edits (at, action, campaign, other, by, reason) VALUES ($1, 'merge', $2, $3, $4, $5)",
                &[&edit.at, &into_id, &from_id, &edit.by, &edit.reason],
            )
            .map_err(pg)?;
            tx.execute(
                "INSERT INTO segment_clusters (cluster, segment) SELECT $2, segment FROM segment_clusters WHERE cluster = $1
                 ON CONFLICT DO NOTHING",
                &[&from, &into],
            )
            .map_err(pg)?;
            write_campaign(tx, into, &merged)
        })?;
        // The writer's memory of which campaign a template is in is stale.
        self.indexed.clear();
        self.pairs.clear();
        Ok(EditOutcome { campaign: into_id, other: from_id, variants: moved, messages: from_messages as u64 })
    }
}

/// Texts and keys, largest first, then oldest (as the engine ranks
/// representatives).
fn ordered(variants: &[Variant]) -> Vec<(String, i64)> {
    let mut v: Vec<&Variant> = variants.iter().collect();
    v.sort_by_key(|x| (std::cmp::Reverse(x.2), x.3));
    v.into_iter().map(|x| (x.1.clone(), x.0)).collect()
}

/// Writes a rebuilt campaign's row, senders and minutes.
fn write_campaign(tx: &mut postgres::Transaction<'_>, seq: i64, c: &Rebuilt) -> Result<(), StoreError> {
    tx.execute("DELETE FROM cluster_senders WHERE cluster = $1", &[&seq]).map_err(pg)?;
    for (sender, (n, first, last)) in &c.sender_rows {
        tx.execute(
            "INSERT INTO cluster_senders (cluster, sender, messages, first_ts, last_ts) VALUES ($1, $2, $3, $4, $5)",
            &[&seq, sender, n, first, last],
        )
        .map_err(pg)?;
    }
    tx.execute("DELETE FROM cluster_minutes WHERE cluster = $1", &[&seq]).map_err(pg)?;
    for (minute, n) in &c.minute_rows {
        tx.execute("INSERT INTO cluster_minutes (cluster, minute, count) VALUES ($1, $2, $3)", &[&seq, minute, n])
            .map_err(pg)?;
    }
    tx.execute(
        "UPDATE clusters SET messages = $2, templates = $3, senders = $4, recipients = $5, first_ts = $6, last_ts = $7,
                formed_ts = $8, reps = $9, meaning = $10, actor = $11, infra = $12 WHERE seq = $1",
        &[
            &seq,
            &c.messages,
            &c.templates,
            &c.senders,
            &c.recipients,
            &c.first_ts,
            &c.last_ts,
            &c.formed_ts,
            &c.reps,
            &c.meaning,
            &c.actor,
            &c.infra,
        ],
    )
    .map_err(pg)?;
    Ok(())
}
