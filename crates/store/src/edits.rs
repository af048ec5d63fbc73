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

use crate::editing::{merge_pair, moving_variants, Tally};
pub use crate::editing::{Edit, EditOutcome};
use crate::log::{col, SegmentLog};
use crate::sqlite::SqliteStore;
use crate::StoreError;

impl SqliteStore {
    /// Splits `variants` (template keys) and every variant that joined the
    /// campaign through them off campaign `id` into a campaign of their own,
    /// kept apart from it from now on. The variant that formed the campaign
    /// cannot be split off (split the others instead).
    pub(crate) fn split(
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
        // The variants that joined through the ones split off go with them.
        let edges: Vec<(i64, i64)> = tx
            .prepare("SELECT variant, via FROM campaign_links WHERE cluster = ?1 ORDER BY ts, rowid")?
            .query_map([seq], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let moving = moving_variants(&cid, &members, leader, &edges, variants)?;
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
    pub(crate) fn merge(
        &mut self,
        a: &str,
        b: &str,
        edit: &Edit<'_>,
        meaning: Option<&MeaningModel>,
    ) -> Result<EditOutcome, StoreError> {
        let ((into, into_id), (from, from_id)) = merge_pair((a, self.resolve_seq(a)?), (b, self.resolve_seq(b)?))?;
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
                return Err(crate::editing::pruned(id));
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
    let mut tally = Tally::default();
    crate::segments::for_campaign(tx, log, seq, &[col::SENDER, col::TS, col::RCPT, col::BODY], &mut |rows, i, _| {
        tally.add(rows.sender(i), rows.ts(i), rows.rcpt(i), rows.body(i));
        true
    })?;
    let texts: Vec<(String, i64)> = tx
        .prepare("SELECT text, key FROM templates WHERE cluster = ?1 ORDER BY messages DESC, seq")?
        .query_map([seq], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let leader: i64 = tx.query_row("SELECT leader FROM clusters WHERE seq = ?1", [seq], |r| r.get(0))?;
    let c = tally.finish(&texts, leader, meaning);
    tx.execute("DELETE FROM cluster_senders WHERE cluster = ?1", [seq])?;
    {
        let mut st = tx.prepare_cached(
            "INSERT INTO cluster_senders (cluster, sender, messages, first_ts, last_ts) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (sender, (n, first, last)) in &c.sender_rows {
            st.execute(params![seq, sender, n, first, last])?;
        }
    }
    tx.execute("DELETE FROM cluster_minutes WHERE cluster = ?1", [seq])?;
    {
        let mut st = tx.prepare_cached("INSERT INTO cluster_minutes (cluster, minute, count) VALUES (?1, ?2, ?3)")?;
        for (minute, n) in &c.minute_rows {
            st.execute(params![seq, minute, n])?;
        }
    }
    tx.execute(
        "UPDATE clusters SET messages = ?2, templates = ?3, senders = ?4, recipients = ?5, first_ts = ?6, last_ts = ?7,
                formed_ts = ?8, reps = ?9, meaning = ?10, actor = ?11, infra = ?12 WHERE seq = ?1",
        params![
            seq,
            c.messages,
            c.templates,
            c.senders,
            c.recipients,
            c.first_ts,
            c.last_ts,
            c.formed_ts,
            c.reps,
            c.meaning,
            c.actor,
            c.infra,
        ],
    )?;
    Ok(c.messages as u64)
}
