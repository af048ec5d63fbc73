//! Upkeep of a PostgreSQL database, as the embedded store does it
//! (`retention.rs`, `keys.rs`): dropping old segments (`textwatch prune`)
//! and rotating the recipient key (`textwatch keys rotate`).
//!
//! Both run under the writer's lock (the advisory lock a worker's
//! assigner holds), so stop the workers first: they wait in the broker.
//! A prune is one transaction (the dropped segments' chunks go with the
//! rows that refer to them); PostgreSQL reuses the space (autovacuum) and
//! returns it to the system only on `VACUUM FULL`.

use super::{hex, pg, unhex, PgStore};
use crate::keys::KeyInfo;
use crate::log::Segment;
use crate::{Pruned, Store as _, StoreError, WriteStore as _, KEPT_SAMPLES};

impl PgStore {
    /// `(secret_rotated_at, secret_grace_until)` as recorded in meta.
    pub(super) fn rotation(&self) -> Result<(Option<i64>, Option<i64>), StoreError> {
        let rows = self
            .db(|c| {
                c.query("SELECT key, value FROM meta WHERE key IN ('secret_rotated_at', 'secret_grace_until')", &[])
            })
            .map_err(pg)?;
        let mut out = (None, None);
        for r in rows {
            let (key, value): (String, String) = (r.get(0), r.get(1));
            let at = value
                .parse::<i64>()
                .map_err(|_| StoreError::Schema(format!("meta.{key} in {} is damaged: {value:?}", self.name)))?;
            if key == "secret_rotated_at" {
                out.0 = Some(at);
            } else {
                out.1 = Some(at);
            }
        }
        Ok(out)
    }

    /// The previous secret while its grace period lasts at `now_ms`.
    pub(super) fn previous_key(&self, now_ms: i64) -> Result<Option<Vec<u8>>, StoreError> {
        if self.rotation()?.1.is_none_or(|until| now_ms >= until) {
            return Ok(None);
        }
        let kept: Option<String> = self
            .db(|c| c.query_opt("SELECT value FROM meta WHERE key = 'secret_previous'", &[]))
            .map_err(pg)?
            .map(|r| r.get(0));
        kept.map(|h| {
            unhex(&h)
                .ok_or_else(|| StoreError::Schema(format!("the previous secret in {} is damaged (not hex)", self.name)))
        })
        .transpose()
    }

    /// A new secret becomes the current one; the old one is kept until
    /// `now_ms + grace_ms`. Under the writer's lock.
    pub(super) fn rotate_key(&mut self, now_ms: i64, grace_ms: i64) -> Result<KeyInfo, StoreError> {
        self.lock_for_writing()?;
        // Every other process of this installation (serve, analyzing
        // workers, which hash recipients without the writer's lock) would
        // go on hashing under the old key.
        let others: i64 = self
            .db(|c| {
                c.query_one(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()
                     AND pid <> pg_backend_pid() AND application_name = current_setting('application_name')",
                    &[],
                )
            })
            .map_err(pg)?
            .get(0);
        if others > 0 {
            return Err(StoreError::Conflict(format!(
                "{others} other textwatch connection{} to {} (serve, workers, commands): stop them first, so that \
                 none goes on hashing recipients under the old key",
                if others == 1 { " is open" } else { "s are open" },
                self.name
            )));
        }
        let fresh = crate::keys::fresh_secret()?;
        let (name, new) = (self.name.clone(), hex(&fresh));
        let until = now_ms.saturating_add(grace_ms).to_string();
        self.in_transaction(|tx| {
            // The key as stored now (not as this process read it): a
            // rotation made meanwhile is not thrown away.
            let current: String =
                tx.query_one("SELECT value FROM meta WHERE key = 'secret' FOR UPDATE", &[]).map_err(pg)?.get(0);
            if unhex(&current).is_none() {
                return Err(StoreError::Schema(format!("the secret in {name} is damaged (not hex)")));
            }
            for (key, value) in [
                ("secret_previous", current),
                ("secret_rotated_at", now_ms.to_string()),
                ("secret_grace_until", until),
                ("secret", new),
            ] {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ($1, $2)
                     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    &[&key, &value],
                )
                .map_err(pg)?;
            }
            Ok(())
        })?;
        self.secret = fresh;
        self.key_info(now_ms)
    }

    /// Deletes a previous secret whose grace period is over. PostgreSQL
    /// keeps a deleted row's bytes until vacuum reuses its space, and in
    /// its write-ahead log and backups until they roll over.
    pub(super) fn forget_expired_key(&mut self, now_ms: i64) -> Result<bool, StoreError> {
        match self.rotation()?.1 {
            Some(until) if now_ms >= until => {
                Ok(self.db(|c| c.execute("DELETE FROM meta WHERE key = 'secret_previous'", &[])).map_err(pg)? > 0)
            }
            _ => Ok(false),
        }
    }

    /// [`crate::WriteStore::prune`]: the same choices as the embedded
    /// store's, in one transaction.
    pub(super) fn prune_segments(&mut self, before: i64) -> Result<Pruned, StoreError> {
        self.lock_for_writing()?;
        self.close_segment()?;
        let doomed: Vec<Segment> =
            self.segments()?.into_iter().filter(|s| s.max_ts.is_none_or(|t| t < before)).collect();
        let mut out = Pruned::default();
        if doomed.is_empty() {
            return Ok(out);
        }
        let ids: Vec<i64> = doomed.iter().map(|s| s.id).collect();
        let campaigns: Vec<(i64, String)> = self
            .db(|c| {
                c.query(
                    "SELECT DISTINCT c.seq, c.id FROM segment_clusters s JOIN clusters c ON c.seq = s.cluster
                     WHERE s.segment = ANY($1) AND c.merged_into IS NULL ORDER BY c.seq",
                    &[&ids],
                )
            })
            .map_err(pg)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        // Samples first: they read the segments about to go (those kept by
        // an earlier prune and the log's, earliest first).
        let mut kept = Vec::with_capacity(campaigns.len());
        for (seq, cid) in &campaigns {
            kept.push((*seq, self.samples(*seq, cid, KEPT_SAMPLES)?));
        }
        out.templates = self.in_transaction(|tx| {
            for (seq, samples) in &kept {
                tx.execute("DELETE FROM campaign_samples WHERE cluster = $1", &[seq]).map_err(pg)?;
                for m in samples {
                    let meta = m.meta.as_ref().map(|v| v.to_string());
                    tx.execute(
                        "INSERT INTO campaign_samples (cluster, ts, id, sender, body, source, template, origin, meta)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                        &[seq, &m.ts, &m.id, &m.from, &m.body, &m.source, &m.template, &m.origin, &meta],
                    )
                    .map_err(pg)?;
                }
            }
            // A template in no campaign goes when no kept segment may hold
            // its messages (its first..last segment range holds only
            // dropped ones).
            let templates = tx
                .execute(
                    "DELETE FROM templates t WHERE t.cluster IS NULL AND t.last_seg = ANY($1)
                     AND t.key NOT IN (SELECT leader FROM clusters)
                     AND NOT EXISTS (SELECT 1 FROM segments s WHERE s.id BETWEEN t.first_seg AND t.last_seg
                                     AND NOT (s.id = ANY($1)))",
                    &[&ids],
                )
                .map_err(pg)?;
            if templates > 0 {
                // The engine numbers templates densely when it loads them;
                // so does the table, or new templates would reuse kept
                // numbers.
                tx.batch_execute(
                    "UPDATE templates SET seq = r.n FROM
                        (SELECT key, ROW_NUMBER() OVER (ORDER BY seq, key) - 1 AS n FROM templates) AS r
                     WHERE templates.key = r.key AND templates.seq <> r.n",
                )
                .map_err(pg)?;
            }
            tx.execute("DELETE FROM segment_clusters WHERE segment = ANY($1)", &[&ids]).map_err(pg)?;
            tx.execute("DELETE FROM segment_chunks WHERE segment = ANY($1)", &[&ids]).map_err(pg)?;
            tx.execute("DELETE FROM segments WHERE id = ANY($1)", &[&ids]).map_err(pg)?;
            Ok(templates)
        })?;
        out.segments = doomed.len() as u64;
        out.messages = doomed.iter().map(|s| s.rows).sum();
        out.bytes = doomed.iter().map(|s| s.bytes).sum();
        out.campaigns_touched = campaigns.len() as u64;
        Ok(out)
    }

    /// Messages in the log and the bytes of their segments.
    pub(super) fn usage(&self) -> Result<(u64, u64), StoreError> {
        let r = self
            .db(|c| {
                c.query_one("SELECT COALESCE(SUM(rows), 0)::BIGINT, COALESCE(SUM(bytes), 0)::BIGINT FROM segments", &[])
            })
            .map_err(pg)?;
        Ok((r.get::<_, i64>(0) as u64, r.get::<_, i64>(1) as u64))
    }
}
