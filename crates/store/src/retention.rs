//! Moving a version-1 database's messages into the log (`textwatch
//! migrate`), and dropping old segments (`textwatch prune`).

use crate::{Store as _, WriteStore as _};
use rusqlite::params;
use textwatch_engine::{Analyzed, Message};

use crate::sqlite::SqliteStore;
use crate::{NewMessage, Pruned, StoreError, KEPT_SAMPLES};

/// What a migration did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Migrated {
    /// Messages moved into segments by this run.
    pub messages: u64,
    /// Messages still in SQLite when this run started.
    pub remaining_at_start: u64,
    pub segments: u64,
}

impl SqliteStore {
    /// Messages still kept in SQLite by a version-1 database.
    pub fn legacy_messages(&self) -> Result<u64, StoreError> {
        let exists: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages')",
            [],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(0);
        }
        Ok(self.conn.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get::<_, i64>(0))? as u64)
    }

    /// Moves a version-1 database's messages, in stored order, into
    /// segments, `batch` at a time: each batch is appended to the log and
    /// deleted from SQLite in one commit, so a stopped migration resumes
    /// where it stopped and nothing is moved twice. `progress(moved,
    /// total)` is called after each batch.
    pub fn migrate_messages(
        &mut self,
        batch: usize,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Migrated, StoreError> {
        let total = self.legacy_messages()?;
        let mut out = Migrated { remaining_at_start: total, ..Default::default() };
        self.recover_log()?;
        if total == 0 {
            self.finish_migration()?;
            return Ok(out);
        }
        let before = self.segments()?.len();
        loop {
            let rows: Vec<(i64, Analyzed, Option<String>)> = {
                let mut st = self.conn.prepare_cached(
                    "SELECT rowid, key, id, ts, sender, rcpt, body, source, meta, template, origin FROM messages
                     ORDER BY rowid LIMIT ?1",
                )?;
                let rows = st.query_map([batch as i64], |r| {
                    let rcpt: Option<Vec<u8>> = r.get(5)?;
                    Ok((
                        r.get::<_, i64>(0)?,
                        Analyzed {
                            msg: Message {
                                id: r.get(2)?,
                                ts_ms: r.get(3)?,
                                from: String::new(),
                                to: None,
                                body: r.get(6)?,
                                source: r.get(7)?,
                                meta: r.get(8)?,
                            },
                            key: r.get::<_, i64>(1)? as u64,
                            sender: r.get(4)?,
                            rcpt: rcpt.and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok()),
                            rcpt_prev: None,
                            template: String::new(),
                            template_key: r.get::<_, i64>(9)? as u64,
                            clusterable: false,
                            features: Default::default(),
                            quiet: None,
                        },
                        r.get::<_, Option<String>>(10)?,
                    ))
                })?;
                rows.collect::<Result<_, _>>()?
            };
            if rows.is_empty() {
                break;
            }
            let last_rowid = rows.last().map_or(0, |r| r.0);
            let msgs: Vec<NewMessage<'_>> = rows
                .iter()
                .map(|(_, a, origin)| NewMessage { msg: a, origin: origin.as_deref().unwrap_or("") })
                .collect();
            let appended = self.log.append(&msgs, self.next_segment())?;
            let seg = appended.segment.id;
            self.bump_segment(seg);
            let done = (|| -> Result<(), StoreError> {
                let tx = self.conn.transaction()?;
                if let Some(s) = &appended.sealed {
                    crate::segments::record(&tx, s)?;
                }
                crate::segments::record(&tx, &appended.segment)?;
                {
                    let mut first = tx.prepare_cached(
                        "UPDATE templates SET first_seg = COALESCE(first_seg, ?2), last_seg = ?2 WHERE key = ?1",
                    )?;
                    let mut pair = tx.prepare_cached(
                        "INSERT OR IGNORE INTO segment_clusters (cluster, segment)
                         SELECT cluster, ?2 FROM templates WHERE key = ?1 AND cluster IS NOT NULL",
                    )?;
                    let mut keys: Vec<u64> = rows.iter().map(|r| r.1.template_key).collect();
                    keys.sort_unstable();
                    keys.dedup();
                    for k in keys {
                        first.execute(params![k as i64, seg])?;
                        pair.execute(params![k as i64, seg])?;
                    }
                }
                tx.execute("DELETE FROM messages WHERE rowid <= ?1", [last_rowid])?;
                tx.commit()?;
                Ok(())
            })();
            if let Err(e) = done {
                self.log.abort();
                return Err(e);
            }
            out.messages += rows.len() as u64;
            progress(out.messages, total);
        }
        self.close_segment()?;
        self.finish_migration()?;
        out.segments = (self.segments()?.len() - before) as u64;
        Ok(out)
    }

    fn finish_migration(&mut self) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute_batch(
            "DROP TABLE IF EXISTS messages;
             UPDATE meta SET value = 2 WHERE key = 'schema_version' AND value = 1;",
        )?;
        // Version 1 keyed the templates table by the template's hash, so
        // every new template was a random insert into it; version 2 appends
        // rows and finds them through an index on the key (half the
        // metadata cost at 10M messages).
        let keyed: bool = tx.query_row(
            "SELECT COALESCE((SELECT pk FROM pragma_table_info('templates') WHERE name = 'key'), 0) = 1",
            [],
            |r| r.get(0),
        )?;
        if keyed {
            let cols = "key, seq, text, cluster, messages, first_ts, first_sender, first_rcpt, clusterable, optout, \
                        sender_id, findings, category, quiet, quiet_finding, category_rule, subcategory, first_seg, last_seg";
            tx.execute_batch(&format!(
                "ALTER TABLE templates RENAME TO templates_v1;
                 DROP INDEX IF EXISTS templates_cluster;
                 {schema}
                 INSERT INTO templates ({cols}) SELECT {cols} FROM templates_v1 ORDER BY seq;
                 DROP TABLE templates_v1;",
                schema = crate::sqlite::TEMPLATES_SCHEMA,
            ))?;
        }
        tx.commit()?;
        Ok(())
    }
}

impl SqliteStore {
    /// [`WriteStore::prune`] on the embedded self. Segment files go after
    /// the commit that forgets them; a crash between leaves files the next
    /// writer removes as unreferenced.
    ///
    /// [`WriteStore::prune`]: crate::WriteStore::prune
    pub(crate) fn prune_segments(&mut self, before: i64) -> Result<Pruned, StoreError> {
        self.recover_log()?;
        self.close_segment()?;
        let doomed: Vec<crate::log::Segment> =
            self.segments()?.into_iter().filter(|s| s.max_ts.is_none_or(|t| t < before)).collect();
        let mut out = Pruned::default();
        if doomed.is_empty() {
            return Ok(out);
        }
        let ids: Vec<i64> = doomed.iter().map(|s| s.id).collect();
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let campaigns: Vec<(i64, String)> = self
            .conn
            .prepare(&format!(
                "SELECT DISTINCT c.seq, c.id FROM segment_clusters s JOIN clusters c ON c.seq = s.cluster
                 WHERE s.segment IN ({list}) AND c.merged_into IS NULL"
            ))?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        // Samples first (they read the segments about to go).
        let mut kept = Vec::new();
        for (seq, cid) in &campaigns {
            // Those kept by an earlier prune and the log's, earliest first.
            kept.push((*seq, self.samples(*seq, cid, KEPT_SAMPLES)?));
        }
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO campaign_samples (cluster, ts, id, sender, body, source, template, origin, meta)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for (seq, samples) in &kept {
                tx.execute("DELETE FROM campaign_samples WHERE cluster = ?1", [seq])?;
                for m in samples {
                    st.execute(params![
                        seq,
                        m.ts,
                        m.id,
                        m.from,
                        m.body,
                        m.source,
                        m.template,
                        m.origin,
                        m.meta.as_ref().map(|v| v.to_string())
                    ])?;
                }
            }
        }
        // A template in no campaign goes when no kept segment may hold its
        // messages (its first..last segment range holds only dropped ones).
        out.templates = tx.execute(
            &format!(
                "DELETE FROM templates WHERE cluster IS NULL AND last_seg IN ({list})
                 AND key NOT IN (SELECT leader FROM clusters)
                 AND NOT EXISTS (SELECT 1 FROM segments s WHERE s.id BETWEEN templates.first_seg AND templates.last_seg
                                 AND s.id NOT IN ({list}))"
            ),
            [],
        )? as u64;
        if out.templates > 0 {
            // The engine numbers templates densely when it loads them; so
            // does the table, or new templates would reuse kept numbers.
            tx.execute_batch(
                "UPDATE templates SET seq = r.n FROM
                    (SELECT rowid AS rid, ROW_NUMBER() OVER (ORDER BY seq, rowid) - 1 AS n FROM templates) AS r
                 WHERE templates.rowid = r.rid AND templates.seq != r.n;",
            )?;
        }
        tx.execute(&format!("DELETE FROM segment_clusters WHERE segment IN ({list})"), [])?;
        tx.execute(&format!("DELETE FROM segments WHERE id IN ({list})"), [])?;
        tx.commit()?;
        // The files go once nothing refers to them; a crash before this
        // leaves files the next writer removes as unreferenced.
        for s in &doomed {
            out.bytes += self.log.disk_bytes(s.id);
            self.log.remove(s.id)?;
            out.messages += s.rows;
        }
        out.segments = doomed.len() as u64;
        out.campaigns_touched = campaigns.len() as u64;
        Ok(out)
    }
}
