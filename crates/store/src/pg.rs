//! The shared store: PostgreSQL, for textwatch on several machines (a
//! server and workers over NATS, see `docs/deployment.md`).
//!
//! It holds what the embedded store holds, in the same shapes
//! (`pg_schema.sql`): templates, campaigns and their statistics, number
//! data, tokens and alerts, and the message log. Messages are not rows:
//! each committed batch is one chunk of an Arrow IPC segment
//! (`segment_chunks`), written in the same transaction as the metadata
//! that refers to it, so a crash keeps whole batches only, there is no
//! torn tail to cut, and every machine that reaches the database reads the
//! messages; the segments are the bytes of the embedded store's
//! `.arrows` files (`textwatch messages` exports them). One row per batch,
//! not per message, is what keeps PostgreSQL off the per-message path.
//!
//! One writer at a time: [`PgStore::lock_for_writing`] takes a session
//! advisory lock (per database schema), held while the connection lives.
//!
//! A database is a connection string (`postgresql://user@host/db` or
//! `host=... dbname=...`); several textwatch installations can share one
//! database, each in its own schema (`options=-csearch_path=NAME`).

use crate::WriteStore as _;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io::Read;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Row};
use textwatch_engine::{campaign_id, ClusterRow, Delta, SenderRow, Snapshot, TemplateRow};
use textwatch_numbers::{PrefixRow, SourceKind};

use crate::blobs::{reps_blob, reps_from_blob, vectors_blob, vectors_from_blob, Infra};
use crate::log::{ChunkWriter, Rows, Segment, SegmentSource, SEGMENT_ROWS};
use crate::pg_records as records;
use crate::views::{
    CampaignDetail, CampaignFeatures, CampaignQuery, CampaignSummary, Finding, LinkView, MessageView, MinuteView,
    SenderView, StoreStats, VariantView,
};
use crate::{
    BatchFacts, CampaignTemplate, NewMessage, NumberSource, SenderActivity, SenderCampaign, Store, StoreError,
    TokenInfo,
};

/// The schema version this textwatch writes (`meta.schema_version`).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = include_str!("pg_schema.sql");

mod pg_edits;
mod upkeep;

/// Chunks fetched per query when a segment is read.
const CHUNKS_PER_FETCH: i64 = 16;

/// The PostgreSQL store.
pub struct PgStore {
    client: RefCell<Conn>,
    /// What the connection string names, without a password (errors, logs).
    name: String,
    /// The connection string (with any password: never logged), to
    /// reconnect a reader whose connection was lost.
    url: String,
    secret: Vec<u8>,
    recipient_hash: textwatch_engine::RecipientHash,
    /// The segment being appended to, with its next chunk number.
    open: Option<(ChunkWriter, i32)>,
    roll_rows: u64,
    next_segment: i64,
    locked: bool,
    /// Templates whose campaign's segments are indexed, and in which
    /// campaign; (campaign, segment) pairs indexed.
    indexed: HashMap<u64, u32>,
    pairs: HashSet<(u32, i64)>,
    staged_cursor: Option<(String, i64, Vec<u64>)>,
    staged_facts: BatchFacts,
    /// Segment key sets of deduplication lookups.
    key_cache: crate::dedup::KeyCache,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("database", &self.name).finish_non_exhaustive()
    }
}

/// The connection; closed (which blocks) off any async runtime, as every
/// call on it is.
struct Conn(Option<Client>);

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            off_runtime(move || drop(c));
        }
    }
}

/// Runs `f` here, or, on a thread that drives async tasks (the cluster's
/// assigner, the server's handlers), on a scoped thread of its own: the
/// client blocks on a runtime of its own, which tokio forbids there.
fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

fn pg(e: postgres::Error) -> StoreError {
    StoreError::Postgres(e)
}

/// The parts of a connection string that say where, never a password.
pub fn describe(url: &str) -> String {
    let rest = crate::pg_tls::split(url).map_or_else(|_| url.to_string(), |(rest, _)| rest);
    match rest.parse::<postgres::Config>() {
        Ok(c) => {
            let hosts: Vec<String> = c
                .get_hosts()
                .iter()
                .map(|h| match h {
                    postgres::config::Host::Tcp(h) => h.clone(),
                    #[cfg(unix)]
                    postgres::config::Host::Unix(p) => p.display().to_string(),
                })
                .collect();
            format!("postgresql://{}@{}/{}", c.get_user().unwrap_or(""), hosts.join(","), c.get_dbname().unwrap_or(""))
        }
        Err(_) => "the PostgreSQL database".into(),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

fn segment_of(r: &Row) -> Segment {
    Segment {
        id: r.get(0),
        rows: r.get::<_, i64>(1) as u64,
        bytes: r.get::<_, i64>(2) as u64,
        sealed: r.get(3),
        min_ts: r.get(4),
        max_ts: r.get(5),
        hash: r.get::<_, Option<i64>>(6).map(|h| h as u64),
    }
}

const SEGMENT_COLUMNS: &str = "id, rows, bytes, sealed, min_ts, max_ts, hash";

/// Records a segment's committed state (and, with `chunk`, its next chunk).
fn record_segment(
    tx: &mut impl postgres::GenericClient,
    s: &Segment,
    chunk: Option<(i32, &[u8])>,
) -> Result<(), StoreError> {
    if let Some((n, data)) = chunk {
        tx.execute("INSERT INTO segment_chunks (segment, n, data) VALUES ($1, $2, $3)", &[&s.id, &n, &data])
            .map_err(pg)?;
    }
    let chunks = chunk.map(|(n, _)| n + 1);
    tx.execute(
        "INSERT INTO segments (id, rows, bytes, sealed, min_ts, max_ts, hash, chunks)
         VALUES ($1, $2, $3, $4, $5, $6, $7, COALESCE($8, 0))
         ON CONFLICT (id) DO UPDATE SET rows = EXCLUDED.rows, bytes = EXCLUDED.bytes, sealed = EXCLUDED.sealed,
            min_ts = EXCLUDED.min_ts, max_ts = EXCLUDED.max_ts, hash = EXCLUDED.hash,
            chunks = COALESCE($8, segments.chunks)",
        &[
            &s.id,
            &(s.rows as i64),
            &(s.bytes as i64),
            &s.sealed,
            &s.min_ts,
            &s.max_ts,
            &s.hash.map(|h| h as i64),
            &chunks,
        ],
    )
    .map_err(pg)?;
    // The highest id ever used, kept when prune drops the segment: ids are
    // never reused.
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('last_segment', $1::BIGINT::TEXT)
         ON CONFLICT (key) DO UPDATE SET value = GREATEST(meta.value::BIGINT, EXCLUDED.value::BIGINT)::TEXT",
        &[&s.id],
    )
    .map_err(pg)?;
    Ok(())
}

/// Campaign `from` joins `into`: the campaigns kept apart from it are kept
/// apart from `into`.
fn move_apart(tx: &mut postgres::Transaction<'_>, from: i64, into: i64) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO campaign_apart (a, b)
         SELECT LEAST(other, $2), GREATEST(other, $2) FROM
            (SELECT CASE WHEN a = $1 THEN b ELSE a END AS other FROM campaign_apart WHERE a = $1 OR b = $1) o
         WHERE other != $2
         ON CONFLICT DO NOTHING",
        &[&from, &into],
    )
    .map_err(pg)?;
    tx.execute("DELETE FROM campaign_apart WHERE a = $1 OR b = $1", &[&from]).map_err(pg)?;
    Ok(())
}

/// The filters of a [`CampaignQuery`] (`$1` minimum messages, `$2` last
/// seen since, `$3` category, decided as [`PgStore::summary`] decides it),
/// as the embedded store's.
const CAMPAIGN_FILTER: &str = "WHERE c.merged_into IS NULL AND c.messages >= $1 AND ($2::BIGINT IS NULL OR c.last_ts >= $2)
    AND ($3::TEXT IS NULL OR EXISTS (SELECT 1 FROM (
            SELECT category || '/' || COALESCE(subcategory, '') AS k FROM templates WHERE cluster = c.seq AND category IS NOT NULL
            ORDER BY category_rule IS NOT NULL DESC, messages DESC, seq LIMIT 1) x
         WHERE x.k = $3 OR x.k LIKE $3 || '/%' OR x.k LIKE '%/' || $3
            OR ($3 = 'commercial' AND (x.k LIKE 'marketing/%' OR x.k LIKE 'transactional/%'))
            OR ($3 = 'ham' AND x.k LIKE 'personal/%')))";

impl PgStore {
    /// Connects to the database `url` names, creating textwatch's tables on
    /// first use (several processes may do this at once).
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        off_runtime(|| Self::connect_here(url))
    }

    fn connect_here(url: &str) -> Result<Self, StoreError> {
        let name = describe(url);
        let mut client = crate::pg_tls::connect(url, &name)?;
        // The tables are made (or completed) only when the schema lacks
        // this version: an up-to-date database is not locked or altered by
        // a connection, and a role that does not own the tables can use it.
        let current = match client.query_opt("SELECT value FROM meta WHERE key = 'schema_version'", &[]) {
            Ok(row) => row.map(|r| r.get::<_, String>(0)) == Some(SCHEMA_VERSION.to_string()),
            Err(e) if e.code() == Some(&postgres::error::SqlState::UNDEFINED_TABLE) => false,
            Err(e) => return Err(pg(e)),
        };
        if !current {
            let mut tx = client.transaction().map_err(pg)?;
            tx.execute("SELECT pg_advisory_xact_lock(hashtext('textwatch.schema.' || current_schema()))", &[])
                .map_err(pg)?;
            tx.batch_execute(SCHEMA).map_err(pg)?;
            let version: Option<String> =
                tx.query_opt("SELECT value FROM meta WHERE key = 'schema_version'", &[]).map_err(pg)?.map(|r| r.get(0));
            match version.as_deref().map(str::parse::<i64>) {
                None => {
                    tx.execute(
                        "INSERT INTO meta (key, value) VALUES ('schema_version', $1)",
                        &[&SCHEMA_VERSION.to_string()],
                    )
                    .map_err(pg)?;
                }
                Some(Ok(SCHEMA_VERSION)) => {}
                Some(v) => {
                    return Err(StoreError::Schema(format!(
                        "{name} holds textwatch schema version {} where this textwatch uses {SCHEMA_VERSION}",
                        v.map_or_else(|_| "?".into(), |v| v.to_string())
                    )))
                }
            }
            let secret: Option<String> =
                tx.query_opt("SELECT value FROM meta WHERE key = 'secret'", &[]).map_err(pg)?.map(|r| r.get(0));
            if secret.is_none() {
                let mut s = vec![0u8; 32];
                getrandom::getrandom(&mut s)
                    .map_err(|e| StoreError::Schema(format!("no randomness for the database secret: {e}")))?;
                tx.execute("INSERT INTO meta (key, value) VALUES ('secret', $1)", &[&hex(&s)]).map_err(pg)?;
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('recipient_hash', $1)",
                    &[&textwatch_engine::RecipientHash::Blake3.name()],
                )
                .map_err(pg)?;
            }
            tx.commit().map_err(pg)?;
        }
        let secret: String = client.query_one("SELECT value FROM meta WHERE key = 'secret'", &[]).map_err(pg)?.get(0);
        let secret =
            unhex(&secret).ok_or_else(|| StoreError::Schema(format!("the secret in {name} is damaged (not hex)")))?;
        let hash: String =
            client.query_one("SELECT value FROM meta WHERE key = 'recipient_hash'", &[]).map_err(pg)?.get(0);
        let recipient_hash = textwatch_engine::RecipientHash::parse(&hash).ok_or_else(|| {
            StoreError::Schema(format!("{name} hashes recipients with {hash:?}, which this textwatch does not know"))
        })?;
        let mut store = PgStore {
            client: RefCell::new(Conn(Some(client))),
            name,
            url: url.to_string(),
            secret,
            recipient_hash,
            open: None,
            roll_rows: SEGMENT_ROWS,
            next_segment: 1,
            locked: false,
            indexed: HashMap::new(),
            pairs: HashSet::new(),
            staged_cursor: None,
            staged_facts: BatchFacts::default(),
            key_cache: Default::default(),
        };
        store.next_segment = store.next_segment_id()?;
        Ok(store)
    }

    /// Rolls segments after `rows` messages (tests of multi-segment logs).
    pub fn with_segment_rows(mut self, rows: u64) -> Self {
        self.roll_rows = rows.max(1);
        self
    }

    /// The database, as the connection string names it (no password).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this connection is encrypted (TLS).
    pub fn encrypted(&self) -> Result<bool, StoreError> {
        Ok(self
            .db(|c| {
                c.query_one("SELECT COALESCE((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)", &[])
            })
            .map_err(pg)?
            .get(0))
    }

    /// Runs `f` on the connection (see [`off_runtime`]).
    fn db<R: Send>(&self, f: impl FnOnce(&mut Client) -> R + Send) -> R {
        let mut conn = self.client.borrow_mut();
        let Some(client) = conn.0.as_mut() else { unreachable!("the connection is closed only when dropped") };
        // A reader (or a writer of records, as the server) whose connection
        // was lost (a database restart, a failover) connects again: the
        // call that found it lost failed, this one reconnects. The writer
        // of batches does not: its lock went with the connection, and it
        // must bid for it again.
        let (url, name, reconnect) = (&self.url, &self.name, !self.locked);
        off_runtime(move || {
            if reconnect && client.is_closed() {
                match crate::pg_tls::connect(url, name) {
                    Ok(c) => {
                        *client = c;
                        tracing::info!(database = %name, "connected again after the connection was lost");
                    }
                    Err(e) => {
                        tracing::warn!(database = %name, error = %e, "the connection was lost; connecting again failed")
                    }
                }
            }
            f(client)
        })
    }

    /// Runs `f` in a transaction, committed when it succeeds.
    fn in_transaction<R: Send>(
        &self,
        f: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<R, StoreError> + Send,
    ) -> Result<R, StoreError> {
        self.db(|c| {
            let mut tx = c.transaction().map_err(pg)?;
            let r = f(&mut tx)?;
            tx.commit().map_err(pg)?;
            Ok(r)
        })
    }

    fn next_segment_id(&self) -> Result<i64, StoreError> {
        Ok(self
            .db(|c| {
                c.query_one(
                    "SELECT GREATEST(COALESCE((SELECT MAX(id) FROM segments), 0),
                                 COALESCE((SELECT value::BIGINT FROM meta WHERE key = 'last_segment'), 0)) + 1",
                    &[],
                )
            })
            .map_err(pg)?
            .get(0))
    }

    fn segments_of(&self, seq: i64) -> Result<Vec<Segment>, StoreError> {
        Ok(self
            .db(|c| {
                c.query(
                    "SELECT s.id, s.rows, s.bytes, s.sealed, s.min_ts, s.max_ts, s.hash FROM segments s
                 JOIN segment_clusters c ON c.segment = s.id WHERE c.cluster = $1 ORDER BY s.id",
                    &[&seq],
                )
            })
            .map_err(pg)?
            .iter()
            .map(segment_of)
            .collect())
    }

    fn templates_of(&self, seq: i64) -> Result<HashMap<u64, String>, StoreError> {
        Ok(self
            .db(|c| c.query("SELECT key, text FROM templates WHERE cluster = $1", &[&seq]))
            .map_err(pg)?
            .iter()
            .map(|r| (r.get::<_, i64>(0) as u64, r.get(1)))
            .collect())
    }

    fn commit_meta(
        &mut self,
        chunk: Option<(&Segment, i32, &[u8])>,
        sealed: Option<(&Segment, i32, &[u8])>,
        delta: &Delta,
    ) -> Result<(), StoreError> {
        let current = chunk.map(|(s, _, _)| s.id);
        // Which campaigns have messages in which segments: a template new to
        // a campaign marks every segment since its first message (merges
        // are handled in the transaction).
        let mut late_cluster: Vec<i64> = Vec::new();
        let mut late_key: Vec<i64> = Vec::new();
        let mut pair_cluster: Vec<i64> = Vec::new();
        let mut pair_segment: Vec<i64> = Vec::new();
        for t in &delta.templates {
            let Some(c) = t.cluster else { continue };
            if self.indexed.get(&t.key) != Some(&c) {
                late_cluster.push(i64::from(c));
                late_key.push(t.key as i64);
                self.indexed.insert(t.key, c);
            }
            if let Some(seg) = current {
                if self.pairs.insert((c, seg)) {
                    pair_cluster.push(i64::from(c));
                    pair_segment.push(seg);
                }
            }
        }
        let (cursor, facts) = (&self.staged_cursor, &self.staged_facts);
        self.in_transaction(|tx| {
        if let Some((name, value, carry)) = cursor {
            let upsert =
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value";
            tx.execute(upsert, &[&format!("cursor:{name}"), &value.to_string()]).map_err(pg)?;
            tx.execute(upsert, &[&format!("cursor:{name}:carry"), &serde_json::to_string(carry).unwrap_or_default()])
                .map_err(pg)?;
        }
        if let Some((s, n, data)) = sealed {
            record_segment(tx, s, Some((n, data)))?;
        }
        if let Some((s, n, data)) = chunk {
            record_segment(tx, s, Some((n, data)))?;
        }
        let ts = &delta.templates;
        if !ts.is_empty() {
            let json = |f: &Option<Vec<textwatch_engine::Finding>>| {
                f.as_ref().map(|f| serde_json::to_string(f).unwrap_or_default())
            };
            let key: Vec<i64> = ts.iter().map(|t| t.key as i64).collect();
            let seq: Vec<i64> = ts.iter().map(|t| i64::from(t.seq)).collect();
            let text: Vec<&str> = ts.iter().map(|t| t.text.as_str()).collect();
            let cluster: Vec<Option<i64>> = ts.iter().map(|t| t.cluster.map(i64::from)).collect();
            let messages: Vec<i64> = ts.iter().map(|t| t.messages as i64).collect();
            let first_ts: Vec<i64> = ts.iter().map(|t| t.first_ts).collect();
            let first_sender: Vec<&str> = ts.iter().map(|t| t.first_sender.as_str()).collect();
            let first_rcpt: Vec<Option<i64>> = ts.iter().map(|t| t.first_rcpt.map(|r| r as i64)).collect();
            let clusterable: Vec<bool> = ts.iter().map(|t| t.clusterable).collect();
            let optout: Vec<Option<bool>> = ts.iter().map(|t| t.optout).collect();
            let sender_id: Vec<Option<bool>> = ts.iter().map(|t| t.sender_id).collect();
            let findings: Vec<Option<String>> = ts.iter().map(|t| json(&t.findings)).collect();
            let category: Vec<Option<&str>> = ts.iter().map(|t| t.category.as_deref()).collect();
            let quiet: Vec<i64> = ts.iter().map(|t| t.quiet as i64).collect();
            let quiet_finding: Vec<Option<String>> = ts
                .iter()
                .map(|t| t.quiet_finding.as_ref().map(|f| serde_json::to_string(f).unwrap_or_default()))
                .collect();
            let category_rule: Vec<Option<&str>> = ts.iter().map(|t| t.category_rule.as_deref()).collect();
            let subcategory: Vec<Option<&str>> = ts.iter().map(|t| t.subcategory.as_deref()).collect();
            tx.execute(
                "INSERT INTO templates (key, seq, text, cluster, messages, first_ts, first_sender, first_rcpt, clusterable, optout,
                                        sender_id, findings, category, quiet, quiet_finding, category_rule, subcategory, first_seg, last_seg)
                 SELECT k, s, tx, c, m, ft, fs, fr, cl, oo, si, fi, ca, q, qf, cr, sc, $18::BIGINT, $18::BIGINT
                 FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[], $6::BIGINT[], $7::TEXT[],
                             $8::BIGINT[], $9::BOOLEAN[], $10::BOOLEAN[], $11::BOOLEAN[], $12::TEXT[], $13::TEXT[], $14::BIGINT[],
                             $15::TEXT[], $16::TEXT[], $17::TEXT[])
                      AS u(k, s, tx, c, m, ft, fs, fr, cl, oo, si, fi, ca, q, qf, cr, sc)
                 ON CONFLICT (key) DO UPDATE SET cluster = EXCLUDED.cluster, messages = EXCLUDED.messages,
                    first_seg = COALESCE(templates.first_seg, EXCLUDED.first_seg),
                    last_seg = COALESCE(EXCLUDED.last_seg, templates.last_seg),
                    optout = COALESCE(EXCLUDED.optout, templates.optout),
                    sender_id = COALESCE(EXCLUDED.sender_id, templates.sender_id),
                    findings = COALESCE(EXCLUDED.findings, templates.findings),
                    category = COALESCE(EXCLUDED.category, templates.category),
                    quiet = EXCLUDED.quiet, quiet_finding = COALESCE(EXCLUDED.quiet_finding, templates.quiet_finding),
                    category_rule = COALESCE(EXCLUDED.category_rule, templates.category_rule),
                    subcategory = CASE WHEN EXCLUDED.category IS NULL THEN templates.subcategory ELSE EXCLUDED.subcategory END",
                &[
                    &key,
                    &seq,
                    &text,
                    &cluster,
                    &messages,
                    &first_ts,
                    &first_sender,
                    &first_rcpt,
                    &clusterable,
                    &optout,
                    &sender_id,
                    &findings,
                    &category,
                    &quiet,
                    &quiet_finding,
                    &category_rule,
                    &subcategory,
                    &current,
                ],
            )
            .map_err(pg)?;
        }
        // Campaigns joined in this batch: the absorbed one's templates,
        // numbers, minutes and links move to the one it joined. The batch's
        // own rows (below) then carry the merged counts.
        for &(from, into) in &delta.merges {
            let (from, into) = (i64::from(from), i64::from(into));
            tx.execute("UPDATE templates SET cluster = $2 WHERE cluster = $1", &[&from, &into]).map_err(pg)?;
            // The batch's sender rows (below) carry the merged numbers.
            tx.execute("DELETE FROM cluster_senders WHERE cluster = $1", &[&from]).map_err(pg)?;
            tx.execute(
                "INSERT INTO cluster_minutes (cluster, minute, count)
                 SELECT $2, minute, count FROM cluster_minutes WHERE cluster = $1
                 ON CONFLICT (cluster, minute) DO UPDATE SET count = cluster_minutes.count + EXCLUDED.count",
                &[&from, &into],
            )
            .map_err(pg)?;
            tx.execute("DELETE FROM cluster_minutes WHERE cluster = $1", &[&from]).map_err(pg)?;
            tx.execute("UPDATE campaign_links SET cluster = $2 WHERE cluster = $1", &[&from, &into]).map_err(pg)?;
            tx.execute("UPDATE campaign_samples SET cluster = $2 WHERE cluster = $1", &[&from, &into]).map_err(pg)?;
            move_apart(tx, from, into)?;
            tx.execute(
                "INSERT INTO segment_clusters (cluster, segment) SELECT $2, segment FROM segment_clusters WHERE cluster = $1
                 ON CONFLICT DO NOTHING",
                &[&from, &into],
            )
            .map_err(pg)?;
        }
        if !delta.links.is_empty() {
            let ls = &delta.links;
            let cluster: Vec<i64> = ls.iter().map(|l| i64::from(l.cluster)).collect();
            let variant: Vec<i64> = ls.iter().map(|l| l.variant as i64).collect();
            let via: Vec<i64> = ls.iter().map(|l| l.via as i64).collect();
            let kind: Vec<&str> = ls.iter().map(|l| l.kind.as_str()).collect();
            let evidence: Vec<&str> = ls.iter().map(|l| l.evidence.as_str()).collect();
            let similarity: Vec<f64> = ls.iter().map(|l| f64::from(l.similarity)).collect();
            let at: Vec<i64> = ls.iter().map(|l| l.ts).collect();
            tx.execute(
                "INSERT INTO campaign_links (cluster, variant, via, kind, evidence, similarity, ts)
                 SELECT c, v, w, k, e, s, t FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[],
                                                      $6::DOUBLE PRECISION[], $7::BIGINT[]) WITH ORDINALITY AS u(c, v, w, k, e, s, t, o)
                 ORDER BY o",
                &[&cluster, &variant, &via, &kind, &evidence, &similarity, &at],
            )
            .map_err(pg)?;
        }
        if !delta.clusters.is_empty() {
            // One row per campaign (the last wins, as a replace would).
            let mut last: HashMap<u32, &ClusterRow> = HashMap::new();
            for c in &delta.clusters {
                last.insert(c.seq, c);
            }
            let mut cs: Vec<&ClusterRow> = last.into_values().collect();
            cs.sort_by_key(|c| c.seq);
            let seq: Vec<i64> = cs.iter().map(|c| i64::from(c.seq)).collect();
            let id: Vec<String> = cs.iter().map(|c| campaign_id(c.label)).collect();
            let leader: Vec<i64> = cs.iter().map(|c| c.leader as i64).collect();
            let messages: Vec<i64> = cs.iter().map(|c| c.messages as i64).collect();
            let templates: Vec<i64> = cs.iter().map(|c| i64::from(c.templates)).collect();
            let senders: Vec<i64> = cs.iter().map(|c| i64::from(c.senders)).collect();
            let recipients: Vec<i64> = cs.iter().map(|c| i64::from(c.recipients)).collect();
            let first_ts: Vec<i64> = cs.iter().map(|c| c.first_ts).collect();
            let last_ts: Vec<i64> = cs.iter().map(|c| c.last_ts).collect();
            let formed_ts: Vec<i64> = cs.iter().map(|c| c.formed_ts).collect();
            let reps: Vec<Vec<u8>> = cs.iter().map(|c| reps_blob(&c.reps)).collect();
            let merged_into: Vec<Option<i64>> = cs.iter().map(|c| c.merged_into.map(i64::from)).collect();
            let actor: Vec<Option<&str>> = cs.iter().map(|c| c.actor.as_deref()).collect();
            let meaning: Vec<Vec<u8>> = cs.iter().map(|c| vectors_blob(&c.meaning)).collect();
            let infra: Vec<String> = cs
                .iter()
                .map(|c| {
                    serde_json::to_string(&Infra { domains: c.domains.clone(), phones: c.phones.clone() })
                        .unwrap_or_default()
                })
                .collect();
            tx.execute(
                "INSERT INTO clusters (seq, id, leader, messages, templates, senders, recipients, first_ts, last_ts, formed_ts,
                                       reps, merged_into, actor, meaning, infra)
                 SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[], $6::BIGINT[],
                                      $7::BIGINT[], $8::BIGINT[], $9::BIGINT[], $10::BIGINT[], $11::BYTEA[], $12::BIGINT[],
                                      $13::TEXT[], $14::BYTEA[], $15::TEXT[])
                 ON CONFLICT (seq) DO UPDATE SET id = EXCLUDED.id, leader = EXCLUDED.leader, messages = EXCLUDED.messages,
                    templates = EXCLUDED.templates, senders = EXCLUDED.senders, recipients = EXCLUDED.recipients,
                    first_ts = EXCLUDED.first_ts, last_ts = EXCLUDED.last_ts, formed_ts = EXCLUDED.formed_ts,
                    reps = EXCLUDED.reps, merged_into = EXCLUDED.merged_into, actor = EXCLUDED.actor,
                    meaning = EXCLUDED.meaning, infra = EXCLUDED.infra",
                &[
                    &seq,
                    &id,
                    &leader,
                    &messages,
                    &templates,
                    &senders,
                    &recipients,
                    &first_ts,
                    &last_ts,
                    &formed_ts,
                    &reps,
                    &merged_into,
                    &actor,
                    &meaning,
                    &infra,
                ],
            )
            .map_err(pg)?;
        }
        if !delta.senders.is_empty() {
            let mut last: HashMap<(u32, &str), &SenderRow> = HashMap::new();
            for s in &delta.senders {
                last.insert((s.cluster, s.sender.as_str()), s);
            }
            let ss: Vec<&SenderRow> = last.into_values().collect();
            let cluster: Vec<i64> = ss.iter().map(|s| i64::from(s.cluster)).collect();
            let sender: Vec<&str> = ss.iter().map(|s| s.sender.as_str()).collect();
            let messages: Vec<i64> = ss.iter().map(|s| s.messages as i64).collect();
            let first_ts: Vec<i64> = ss.iter().map(|s| s.first_ts).collect();
            let last_ts: Vec<i64> = ss.iter().map(|s| s.last_ts).collect();
            tx.execute(
                "INSERT INTO cluster_senders (cluster, sender, messages, first_ts, last_ts)
                 SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[])
                 ON CONFLICT (cluster, sender) DO UPDATE SET messages = EXCLUDED.messages, first_ts = EXCLUDED.first_ts,
                    last_ts = EXCLUDED.last_ts",
                &[&cluster, &sender, &messages, &first_ts, &last_ts],
            )
            .map_err(pg)?;
        }
        if !delta.minutes.is_empty() {
            let mut sum: HashMap<(u32, i64), i64> = HashMap::new();
            for m in &delta.minutes {
                *sum.entry((m.cluster, m.minute)).or_default() += i64::from(m.count);
            }
            let (keys, counts): (Vec<(u32, i64)>, Vec<i64>) = sum.into_iter().unzip();
            let cluster: Vec<i64> = keys.iter().map(|k| i64::from(k.0)).collect();
            let minute: Vec<i64> = keys.iter().map(|k| k.1).collect();
            tx.execute(
                "INSERT INTO cluster_minutes (cluster, minute, count)
                 SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[])
                 ON CONFLICT (cluster, minute) DO UPDATE SET count = cluster_minutes.count + EXCLUDED.count",
                &[&cluster, &minute, &counts],
            )
            .map_err(pg)?;
        }
        if !late_key.is_empty() {
            tx.execute(
                "INSERT INTO segment_clusters (cluster, segment)
                 SELECT u.c, s.id FROM UNNEST($1::BIGINT[], $2::BIGINT[]) AS u(c, k)
                 JOIN templates t ON t.key = u.k JOIN segments s ON s.id >= COALESCE(t.first_seg, $3)
                 ON CONFLICT DO NOTHING",
                &[&late_cluster, &late_key, &current.unwrap_or(i64::MAX)],
            )
            .map_err(pg)?;
        }
        if !pair_cluster.is_empty() {
            tx.execute(
                "INSERT INTO segment_clusters (cluster, segment) SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[])
                 ON CONFLICT DO NOTHING",
                &[&pair_cluster, &pair_segment],
            )
            .map_err(pg)?;
        }
        // The batch's facts refer to its campaigns, written above.
        for (campaign, reporter, ts) in &facts.reporters {
            tx.execute(
                "INSERT INTO campaign_reporters (cluster, reporter, first_ts)
                 SELECT seq, $2, $3 FROM clusters WHERE id = $1
                 ON CONFLICT (cluster, reporter) DO UPDATE SET first_ts = LEAST(campaign_reporters.first_ts, EXCLUDED.first_ts)",
                &[campaign, &&reporter[..], ts],
            )
            .map_err(pg)?;
        }
        for r in &facts.ignored {
            tx.execute(
                "INSERT INTO optout_ignored (cluster, recipient, messages, first_ts, last_ts, sender, opted_out_at, keyword)
                 SELECT seq, $2, 1, $3, $3, $4, $5, $6 FROM clusters WHERE id = $1
                 ON CONFLICT (cluster, recipient) DO UPDATE SET messages = optout_ignored.messages + 1,
                    first_ts = LEAST(optout_ignored.first_ts, EXCLUDED.first_ts),
                    last_ts = GREATEST(optout_ignored.last_ts, EXCLUDED.last_ts)",
                &[&r.campaign, &&r.recipient[..], &r.ts_ms, &r.sender, &r.opted_out_at, &r.keyword],
            )
            .map_err(pg)?;
        }
        Ok(())
        })
    }

    fn resolve(&self, id: &str) -> Result<Option<(i64, String)>, StoreError> {
        let id = id.trim().to_ascii_lowercase();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let upper = format!("{id}g");
        let rows: Vec<(i64, String)> = self
            .db(|c| {
                c.query("SELECT seq, id FROM clusters WHERE id >= $1 AND id < $2 ORDER BY id LIMIT 2", &[&id, &upper])
            })
            .map_err(pg)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let found = match rows.len() {
            0 => return Ok(None),
            1 => rows.into_iter().next(),
            _ if rows[0].1 == id => rows.into_iter().next(),
            _ => {
                let n: i64 = self
                    .db(|c| c.query_one("SELECT COUNT(*) FROM clusters WHERE id >= $1 AND id < $2", &[&id, &upper]))
                    .map_err(pg)?
                    .get(0);
                let candidates: Vec<String> = self
                    .db(|c| {
                        c.query(
                            "SELECT id FROM clusters WHERE id >= $1 AND id < $2 ORDER BY id LIMIT $3",
                            &[&id, &upper, &(crate::AMBIGUOUS_SHOWN as i64)],
                        )
                    })
                    .map_err(pg)?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                return Err(StoreError::Ambiguous { prefix: id, count: n as usize, candidates });
            }
        };
        // A campaign joined into another resolves to the one it joined.
        let Some((mut seq, mut id)) = found else { return Ok(None) };
        for _ in 0..64 {
            let next = self.db(|c| c.query_opt(
                    "SELECT c.merged_into, m.id FROM clusters c JOIN clusters m ON m.seq = c.merged_into WHERE c.seq = $1",
                    &[&seq],
                ))
                .map_err(pg)?
                .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)));
            match next {
                Some((next, next_id)) if next != seq => (seq, id) = (next, next_id),
                _ => break,
            }
        }
        Ok(Some((seq, id)))
    }

    fn summary(&self, seq: i64, max_senders: Option<usize>) -> Result<CampaignSummary, StoreError> {
        let r = self.db(|c| c.query_one(
                "SELECT c.id, t.text, c.messages, c.senders, c.recipients, c.first_ts, c.last_ts, c.formed_ts, c.templates
                 FROM clusters c JOIN templates t ON t.key = c.leader WHERE c.seq = $1",
                &[&seq],
            ))
            .map_err(pg)?;
        let mut s = CampaignSummary {
            id: r.get(0),
            template: r.get(1),
            messages: r.get::<_, i64>(2) as u64,
            senders: Vec::new(),
            sender_count: r.get::<_, i64>(3) as u64,
            recipients: r.get::<_, i64>(4) as u64,
            first_seen: r.get(5),
            last_seen: r.get(6),
            formed_at: r.get(7),
            templates: r.get::<_, i64>(8) as u64,
            features: CampaignFeatures { optout: 0.0, sender_id: 0.0 },
            findings: Vec::new(),
            category: None,
            subcategory: None,
            category_rule: None,
            risk: None,
            providers: Vec::new(),
            decision: None,
            sender_messages: Vec::new(),
        };
        let limit = max_senders.map(|m| m as i64);
        let senders: Vec<(String, i64)> = self.db(|c| c.query(
                "SELECT sender, messages FROM cluster_senders WHERE cluster = $1 ORDER BY messages DESC, sender COLLATE \"C\" LIMIT $2",
                &[&seq, &limit],
            ))
            .map_err(pg)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        (s.senders, s.sender_messages) = senders.into_iter().map(|(a, n)| (a, n as u64)).unzip();
        let r = self
            .db(|c| {
                c.query_one(
                    "SELECT COALESCE(SUM(CASE WHEN optout THEN messages ELSE 0 END), 0)::BIGINT,
                        COALESCE(SUM(CASE WHEN sender_id THEN messages ELSE 0 END), 0)::BIGINT,
                        COALESCE(SUM(messages), 0)::BIGINT
                 FROM templates WHERE cluster = $1",
                    &[&seq],
                )
            })
            .map_err(pg)?;
        let (o, i, n): (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
        if n > 0 {
            s.features = CampaignFeatures { optout: o as f64 / n as f64, sender_id: i as f64 / n as f64 };
        }
        s.findings = self.campaign_findings(seq)?;
        (s.category, s.subcategory, s.category_rule) = self
            .db(|c| {
                c.query_opt(
                "SELECT category, subcategory, category_rule FROM templates WHERE cluster = $1 AND category IS NOT NULL
                 ORDER BY category_rule IS NOT NULL DESC, messages DESC, seq LIMIT 1",
                &[&seq],
            )
            })
            .map_err(pg)?
            .map_or((None, None, None), |r| (Some(r.get(0)), r.get(1), r.get(2)));
        s.risk = Some(textwatch_engine::rules::risk(s.findings.iter().map(|f| &f.severity), s.messages));
        Ok(s)
    }

    /// A campaign's findings, as the embedded store gives them.
    fn campaign_findings(&self, seq: i64) -> Result<Vec<Finding>, StoreError> {
        let rows: Vec<(u64, String)> = self.db(|c| c.query(
                "SELECT messages, findings FROM templates WHERE cluster = $1 AND findings IS NOT NULL ORDER BY messages DESC, seq",
                &[&seq],
            ))
            .map_err(pg)?
            .iter()
            .map(|r| (r.get::<_, i64>(0) as u64, r.get(1)))
            .collect();
        let mut kept = crate::findings::of_templates(rows);
        let r = self
            .db(|c| {
                c.query_one(
                    "SELECT COALESCE(SUM(quiet), 0)::BIGINT,
                        (SELECT quiet_finding FROM templates WHERE cluster = $1 AND quiet_finding IS NOT NULL
                         ORDER BY quiet DESC, seq LIMIT 1)
                 FROM templates WHERE cluster = $1",
                    &[&seq],
                )
            })
            .map_err(pg)?;
        let (quiet, example): (i64, Option<String>) = (r.get(0), r.get(1));
        kept.extend(crate::findings::quiet(quiet as u64, example.as_deref()));
        let r = self.db(|c| c.query_one(
                "WITH o AS (SELECT * FROM optout_ignored
                            WHERE cluster = $1 OR cluster IN (SELECT seq FROM clusters WHERE merged_into = $1))
                 SELECT (SELECT COALESCE(SUM(messages), 0)::BIGINT FROM o), (SELECT COUNT(*) FROM o),
                        (SELECT MIN(opted_out_at) FROM o), f.first_ts, f.sender, f.keyword
                 FROM (SELECT 1) one LEFT JOIN (SELECT first_ts, sender, keyword FROM o ORDER BY first_ts LIMIT 1) f ON TRUE",
                &[&seq],
            ))
            .map_err(pg)?;
        kept.extend(crate::optouts::ignored_finding_of(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)));
        let r = self
            .db(|c| {
                c.query_one(
                    "SELECT COUNT(DISTINCT reporter), MIN(first_ts) FROM campaign_reporters
                 WHERE cluster = $1 OR cluster IN (SELECT seq FROM clusters WHERE merged_into = $1)",
                    &[&seq],
                )
            })
            .map_err(pg)?;
        kept.extend(crate::reporters::finding_of(r.get(0), r.get(1)));
        crate::findings::sort(&mut kept);
        Ok(kept)
    }

    /// Every link into a campaign, oldest first.
    fn links_of(&self, seq: i64) -> Result<Vec<LinkView>, StoreError> {
        Ok(self.db(|c| c.query(
                "SELECT variant, via, kind, evidence, similarity, ts FROM campaign_links WHERE cluster = $1 ORDER BY ts, n",
                &[&seq],
            ))
            .map_err(pg)?
            .iter()
            .map(|r| LinkView {
                variant: format!("{:016x}", r.get::<_, i64>(0) as u64),
                via: format!("{:016x}", r.get::<_, i64>(1) as u64),
                kind: r.get(2),
                evidence: r.get(3),
                similarity: r.get::<_, f64>(4) as f32,
                at: r.get(5),
            })
            .collect())
    }

    /// Every cluster row, in order; a gap in the numbering is damage.
    fn cluster_rows(&self) -> Result<Vec<ClusterRow>, StoreError> {
        let clusters: Vec<ClusterRow> = self
            .db(|c| {
                c.query(
                "SELECT seq, id, leader, messages, templates, senders, recipients, first_ts, last_ts, formed_ts, reps,
                        merged_into, actor, meaning, infra
                 FROM clusters ORDER BY seq",
                &[],
            )
            })
            .map_err(pg)?
            .iter()
            .map(|r| {
                let id: String = r.get(1);
                let infra: Option<Infra> = r.get::<_, Option<String>>(14).and_then(|i| serde_json::from_str(&i).ok());
                let infra = infra.unwrap_or_default();
                ClusterRow {
                    seq: r.get::<_, i64>(0) as u32,
                    label: u64::from_str_radix(&id, 16).unwrap_or(0),
                    leader: r.get::<_, i64>(2) as u64,
                    messages: r.get::<_, i64>(3) as u64,
                    templates: r.get::<_, i64>(4) as u32,
                    senders: r.get::<_, i64>(5) as u32,
                    recipients: r.get::<_, i64>(6) as u32,
                    first_ts: r.get(7),
                    last_ts: r.get(8),
                    formed_ts: r.get(9),
                    reps: reps_from_blob(r.get::<_, &[u8]>(10)),
                    merged_into: r.get::<_, Option<i64>>(11).map(|m| m as u32),
                    actor: r.get(12),
                    meaning: r.get::<_, Option<&[u8]>>(13).map(vectors_from_blob).unwrap_or_default(),
                    domains: infra.domains,
                    phones: infra.phones,
                }
            })
            .collect();
        for (i, c) in clusters.iter().enumerate() {
            if c.seq as usize != i {
                return Err(StoreError::Schema(format!("cluster numbering has a gap at {i}: the database is damaged")));
            }
        }
        Ok(clusters)
    }

    fn apart_pairs(&self) -> Result<Vec<(u32, u32)>, StoreError> {
        Ok(self
            .db(|c| c.query("SELECT a, b FROM campaign_apart ORDER BY a, b", &[]))
            .map_err(pg)?
            .iter()
            .map(|r| (r.get::<_, i64>(0) as u32, r.get::<_, i64>(1) as u32))
            .collect())
    }

    /// A campaign's first `n` messages in time order: those kept when their
    /// segments were pruned, then the log's.
    fn samples(&self, seq: i64, cid: &str, n: usize) -> Result<Vec<MessageView>, StoreError> {
        let kept: Vec<MessageView> = self
            .db(|c| {
                c.query(
                    "SELECT id, ts, sender, body, source, template, origin, meta FROM campaign_samples
                 WHERE cluster = $1 ORDER BY ts, n",
                    &[&seq],
                )
            })
            .map_err(pg)?
            .iter()
            .map(|r| MessageView {
                id: r.get(0),
                ts: r.get(1),
                from: r.get(2),
                body: r.get(3),
                source: r.get(4),
                template: r.get(5),
                campaign: Some(cid.to_string()),
                origin: r.get(6),
                meta: r.get::<_, Option<String>>(7).and_then(|m| serde_json::from_str(&m).ok()),
            })
            .collect();
        let templates = self.templates_of(seq)?;
        let segs = self.segments_of(seq)?;
        crate::reads::earliest(self, segs, &templates, cid, n, kept)
    }
}

/// A segment's committed bytes as one stream: its chunks in order,
/// fetched a few at a time (the connection is borrowed only while
/// fetching), up to the byte count the segment's row said when it was
/// read. A writer may append chunks (or seal the segment) meanwhile:
/// committed bytes end on a chunk boundary, so what is read is exactly
/// the segment as it was.
struct Chunks<'a> {
    store: &'a PgStore,
    segment: i64,
    next: i32,
    left: u64,
    buf: Vec<u8>,
    at: usize,
    queued: std::collections::VecDeque<Vec<u8>>,
}

impl Chunks<'_> {
    fn lacks(&self) -> std::io::Error {
        std::io::Error::other(format!(
            "segment {} lacks chunk {} (the database was changed outside textwatch)",
            self.segment, self.next
        ))
    }
}

impl Read for Chunks<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        while self.at == self.buf.len() {
            if let Some(b) = self.queued.pop_front() {
                (self.buf, self.at) = (b, 0);
                continue;
            }
            let (segment, next) = (self.segment, self.next);
            let rows = self
                .store
                .db(|c| {
                    c.query(
                        "SELECT n, data FROM segment_chunks WHERE segment = $1 AND n >= $2 ORDER BY n LIMIT $3",
                        &[&segment, &next, &CHUNKS_PER_FETCH],
                    )
                })
                .map_err(std::io::Error::other)?;
            if rows.is_empty() {
                return Err(self.lacks());
            }
            for r in rows {
                if r.get::<_, i32>(0) != self.next {
                    return Err(self.lacks());
                }
                self.next += 1;
                self.queued.push_back(r.get(1));
            }
        }
        let n = out.len().min(self.buf.len() - self.at).min(usize::try_from(self.left).unwrap_or(usize::MAX));
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        self.left -= n as u64;
        Ok(n)
    }
}

impl SegmentSource for PgStore {
    fn read_segment(
        &self,
        seg: &Segment,
        cols: &[usize],
        f: &mut dyn FnMut(&Rows) -> bool,
    ) -> Result<bool, StoreError> {
        if seg.rows == 0 {
            return Ok(true);
        }
        let reader = Chunks {
            store: self,
            segment: seg.id,
            next: 0,
            left: seg.bytes,
            buf: Vec::new(),
            at: 0,
            queued: Default::default(),
        };
        crate::log::decode(seg, Box::new(reader), &crate::log::projection(cols), f)
    }
}

impl crate::WriteStore for PgStore {
    fn lock_for_writing(&mut self) -> Result<(), StoreError> {
        if self.locked {
            return Ok(());
        }
        let got: bool = self
            .db(|c| c.query_one("SELECT pg_try_advisory_lock(hashtext('textwatch.writer.' || current_schema()))", &[]))
            .map_err(pg)?
            .get(0);
        if !got {
            return Err(StoreError::Locked(self.name.clone()));
        }
        // A process that read the recipient key before a rotation would
        // store recipients hashed under the old one: it must restart.
        let stored: String =
            self.db(|c| c.query_one("SELECT value FROM meta WHERE key = 'secret'", &[])).map_err(pg)?.get(0);
        if unhex(&stored).as_deref() != Some(self.secret.as_slice()) {
            let _ = self
                .db(|c| c.execute("SELECT pg_advisory_unlock(hashtext('textwatch.writer.' || current_schema()))", &[]));
            return Err(StoreError::Schema(format!(
                "the recipient key of {} was rotated after this process connected: restart it, so that it hashes \
                 recipients under the new key",
                self.name
            )));
        }
        // Segments a stopped writer left open get their end marker, so each
        // segment at rest is a complete Arrow IPC stream.
        let open: Vec<Segment> = self
            .db(|c| c.query(&format!("SELECT {SEGMENT_COLUMNS} FROM segments WHERE NOT sealed ORDER BY id"), &[]))
            .map_err(pg)?
            .iter()
            .map(segment_of)
            .collect();
        for mut seg in open {
            let chunks: Vec<Vec<u8>> = self
                .db(|c| c.query("SELECT data FROM segment_chunks WHERE segment = $1 ORDER BY n", &[&seg.id]))
                .map_err(pg)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            seg.hash = Some(crate::log::seal_hash(chunks.iter().map(Vec::as_slice)));
            seg.bytes += crate::log::END_MARKER.len() as u64;
            seg.sealed = true;
            self.in_transaction(|tx| record_segment(tx, &seg, Some((chunks.len() as i32, &crate::log::END_MARKER))))?;
            tracing::info!(segment = seg.id, "sealed a segment a stopped writer left open");
        }
        self.next_segment = self.next_segment.max(self.next_segment_id()?);
        // A previous recipient key past its grace period goes now.
        if self.forget_expired_key(crate::time::now_ms())? {
            tracing::info!("deleted the previous recipient key: its grace period is over");
        }
        // Only now: a failure above leaves the next call to do it all again
        // (the advisory lock is held already, and taking it twice is fine).
        self.locked = true;
        Ok(())
    }
    fn close_segment(&mut self) -> Result<(), StoreError> {
        let Some((w, n)) = self.open.take() else { return Ok(()) };
        let (chunk, seg) = w.seal()?;
        self.in_transaction(|tx| record_segment(tx, &seg, Some((n, &chunk))))
    }
    fn stage_cursor(&mut self, name: &str, value: i64, carry: Vec<u64>) {
        self.staged_cursor = Some((name.to_owned(), value, carry));
    }
    fn cursor(&self, name: &str) -> Result<Option<(i64, Vec<u64>)>, StoreError> {
        let value: Option<String> = self
            .db(|c| c.query_opt("SELECT value FROM meta WHERE key = $1", &[&format!("cursor:{name}")]))
            .map_err(pg)?
            .map(|r| r.get(0));
        let Some(value) = value else { return Ok(None) };
        let value: i64 =
            value.parse().map_err(|_| StoreError::Schema(format!("cursor {name} is damaged: {value:?}")))?;
        let carry: Option<String> = self
            .db(|c| c.query_opt("SELECT value FROM meta WHERE key = $1", &[&format!("cursor:{name}:carry")]))
            .map_err(pg)?
            .map(|r| r.get(0));
        let carry = match carry {
            Some(c) => serde_json::from_str(&c)
                .map_err(|e| StoreError::Schema(format!("the carry of cursor {name} is damaged: {e}")))?,
            None => Vec::new(),
        };
        Ok(Some((value, carry)))
    }
    fn stage_facts(&mut self, facts: BatchFacts) {
        self.staged_facts = facts;
    }
    fn optout_changes(&self) -> Result<Vec<textwatch_engine::optout::Change>, StoreError> {
        let rows = self
            .db(|c| {
                c.query(
                    "SELECT at, recipient, scope, out, keyword, source, texted FROM optout_changes ORDER BY id",
                    &[],
                )
            })
            .map_err(pg)?;
        rows.iter()
            .map(|r| crate::optouts::change_of(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6)))
            .collect()
    }
    fn record_optout_changes(&mut self, changes: &[textwatch_engine::optout::Change]) -> Result<(), StoreError> {
        self.in_transaction(|tx| {
            for c in changes {
                tx.execute(
                    "INSERT INTO optout_changes (at, recipient, scope, out, keyword, source, texted)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[&c.at_ms, &&c.recipient[..], &c.scope.key(), &c.out, &c.keyword, &c.source, &c.texted],
                )
                .map_err(pg)?;
            }
            Ok(())
        })
    }
    fn previous_secret(&self, now_ms: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.previous_key(now_ms)
    }
    fn stored_keys(&mut self, keys: &[(u64, i64)]) -> Result<HashSet<u64>, StoreError> {
        if keys.is_empty() {
            return Ok(HashSet::new());
        }
        let segs = self.segments()?;
        let mut cache = std::mem::take(&mut self.key_cache);
        let found = crate::dedup::stored_keys(&segs, self, &mut cache, keys);
        self.key_cache = cache;
        found
    }
    fn put_pending_report(&mut self, reporter: &[u8; 16], ts: i64, text: &str) -> Result<(), StoreError> {
        self.db(|c| records::put_pending(c, reporter, ts, text))
    }
    fn put_back_pending_report(&mut self, reporter: &[u8; 16], ts: i64, text: &str) -> Result<(), StoreError> {
        self.db(|c| records::put_back_pending(c, reporter, ts, text))
    }
    fn take_pending_report(
        &mut self,
        reporter: &[u8; 16],
        ts: i64,
        window_ms: i64,
    ) -> Result<Option<(i64, String)>, StoreError> {
        self.db(|c| records::take_pending(c, reporter, ts, window_ms))
    }
    fn open_appeal(
        &mut self,
        at: i64,
        kind: crate::appeals::SubjectKind,
        subject: &str,
        contact: &str,
        reason: &str,
        actor: &str,
    ) -> Result<i64, StoreError> {
        self.db(|c| records::open_appeal(c, at, kind, subject, contact, reason, actor))
    }
    fn decide_appeal(
        &mut self,
        id: i64,
        overturn: bool,
        by: &str,
        reason: &str,
        at: i64,
    ) -> Result<crate::appeals::Decided, StoreError> {
        self.db(|c| records::decide_appeal(c, id, overturn, by, reason, at))
    }
    fn record_report(&mut self, r: &crate::reports::NewReport<'_>) -> Result<i64, StoreError> {
        self.db(|c| records::record_report(c, r))
    }
    fn answer_report(&mut self, id: i64, text: &str, at: i64) -> Result<bool, StoreError> {
        self.db(|c| records::answer_report(c, id, text, at))
    }
    fn key_rotation(&self) -> Result<(Option<i64>, Option<i64>), StoreError> {
        self.rotation()
    }
    fn rotate_secret(&mut self, now_ms: i64, grace_ms: i64) -> Result<crate::keys::KeyInfo, StoreError> {
        self.rotate_key(now_ms, grace_ms)
    }
    fn forget_expired_secret(&mut self, now_ms: i64) -> Result<bool, StoreError> {
        self.forget_expired_key(now_ms)
    }
    fn prune(&mut self, before: i64) -> Result<crate::Pruned, StoreError> {
        self.prune_segments(before)
    }
    fn log_usage(&self) -> Result<(u64, u64), StoreError> {
        self.usage()
    }
    fn split_campaign(
        &mut self,
        id: &str,
        variants: &[u64],
        edit: &crate::editing::Edit<'_>,
        meaning: Option<&textwatch_engine::meaning::MeaningModel>,
    ) -> Result<crate::editing::EditOutcome, StoreError> {
        self.split(id, variants, edit, meaning)
    }
    fn merge_campaigns(
        &mut self,
        a: &str,
        b: &str,
        edit: &crate::editing::Edit<'_>,
        meaning: Option<&textwatch_engine::meaning::MeaningModel>,
    ) -> Result<crate::editing::EditOutcome, StoreError> {
        self.merge(a, b, edit, meaning)
    }
}

impl Store for PgStore {
    fn secret(&self) -> &[u8] {
        &self.secret
    }

    fn recipient_hash(&self) -> textwatch_engine::RecipientHash {
        self.recipient_hash
    }

    fn load_snapshot(&mut self, singleton_window: usize, dedup_keys: usize) -> Result<Snapshot, StoreError> {
        let mut snap = Snapshot::default();
        // Text is needed only for the newest clusterable singletons, whose
        // signatures the engine rebuilds.
        let text_from: i64 = self
            .db(|c| {
                c.query_one(
                    "SELECT COALESCE(MIN(seq), 0) FROM (SELECT seq FROM templates WHERE cluster IS NULL AND clusterable
                 ORDER BY seq DESC LIMIT $1) t",
                    &[&((singleton_window * 2) as i64)],
                )
            })
            .map_err(pg)?
            .get(0);
        snap.templates = self
            .db(|c| -> Result<Vec<TemplateRow>, postgres::Error> {
                let mut out = Vec::new();
                let mut rows = c.query_raw(
                    "SELECT key, seq, CASE WHEN cluster IS NULL AND clusterable AND seq >= $1 THEN text ELSE '' END,
                        cluster, messages, first_ts, first_sender, first_rcpt, clusterable, optout, sender_id, quiet
                 FROM templates",
                    [&text_from],
                )?;
                while let Some(r) = rows.next()? {
                    out.push(TemplateRow {
                        key: r.get::<_, i64>(0) as u64,
                        seq: r.get::<_, i64>(1) as u32,
                        text: r.get(2),
                        cluster: r.get::<_, Option<i64>>(3).map(|c| c as u32),
                        messages: r.get::<_, i64>(4) as u64,
                        first_ts: r.get(5),
                        first_sender: r.get(6),
                        first_rcpt: r.get::<_, Option<i64>>(7).map(|v| v as u64),
                        clusterable: r.get(8),
                        optout: r.get(9),
                        sender_id: r.get(10),
                        findings: None,
                        category: None,
                        subcategory: None,
                        category_rule: None,
                        quiet: r.get::<_, i64>(11) as u64,
                        quiet_finding: None,
                    });
                }
                Ok(out)
            })
            .map_err(pg)?;
        snap.clusters = self.cluster_rows()?;
        snap.senders = self
            .db(|c| c.query("SELECT cluster, sender, messages, first_ts, last_ts FROM cluster_senders", &[]))
            .map_err(pg)?
            .iter()
            .map(|r| SenderRow {
                cluster: r.get::<_, i64>(0) as u32,
                sender: r.get(1),
                messages: r.get::<_, i64>(2) as u64,
                first_ts: r.get(3),
                last_ts: r.get(4),
            })
            .collect();
        let bodies_from: i64 = self.db(|c| c.query_one(
                "SELECT COALESCE(MIN(first_seg), 0)::BIGINT FROM templates WHERE cluster IS NULL AND clusterable AND seq >= $1",
                &[&text_from],
            ))
            .map_err(pg)?
            .get(0);
        let segs = self.segments()?;
        crate::reads::snapshot_messages(self, &segs, &mut snap, dedup_keys, bodies_from)?;
        snap.apart = self.apart_pairs()?;
        Ok(snap)
    }

    fn load_peek_snapshot(&mut self, singleton_window: usize) -> Result<Snapshot, StoreError> {
        let templates = self
            .db(|c| {
                c.query(
                    "SELECT key, seq, text, messages, first_ts, first_sender, first_rcpt FROM templates
                 WHERE cluster IS NULL AND clusterable ORDER BY seq DESC LIMIT $1",
                    &[&((singleton_window * 2) as i64)],
                )
            })
            .map_err(pg)?
            .iter()
            .map(|r| TemplateRow {
                key: r.get::<_, i64>(0) as u64,
                seq: r.get::<_, i64>(1) as u32,
                text: r.get(2),
                cluster: None,
                messages: r.get::<_, i64>(3) as u64,
                first_ts: r.get(4),
                first_sender: r.get(5),
                first_rcpt: r.get::<_, Option<i64>>(6).map(|v| v as u64),
                clusterable: true,
                optout: None,
                sender_id: None,
                findings: None,
                category: None,
                subcategory: None,
                category_rule: None,
                quiet: 0,
                quiet_finding: None,
            })
            .collect();
        let mut snap = Snapshot { templates, ..Default::default() };
        snap.clusters = self.cluster_rows()?;
        snap.messages = self
            .db(|c| c.query_one("SELECT COALESCE(SUM(rows), 0)::BIGINT FROM segments", &[]))
            .map_err(pg)?
            .get::<_, i64>(0) as u64;
        Ok(snap)
    }

    fn template_campaign(&self, key: u64) -> Result<Option<(Option<String>, bool)>, StoreError> {
        Ok(self.db(|c| c.query_opt(
                "SELECT c.id, t.clusterable FROM templates t LEFT JOIN clusters c ON c.seq = t.cluster WHERE t.key = $1",
                &[&(key as i64)],
            ))
            .map_err(pg)?
            .map(|r| (r.get(0), r.get(1))))
    }

    fn commit(&mut self, messages: &[NewMessage<'_>], delta: &Delta) -> Result<(), StoreError> {
        self.lock_for_writing()?;
        // The batch's chunk (and a full segment's end marker) go in the
        // transaction of the metadata that refers to them.
        let mut sealed: Option<(Vec<u8>, Segment, i32)> = None;
        let mut chunk: Option<(Vec<u8>, Segment, i32)> = None;
        if !messages.is_empty() {
            if self.open.as_ref().is_some_and(|(w, _)| w.segment().rows >= self.roll_rows) {
                if let Some((w, n)) = self.open.take() {
                    let (bytes, seg) = w.seal()?;
                    sealed = Some((bytes, seg, n));
                }
            }
            if self.open.is_none() {
                self.open = Some((ChunkWriter::start(self.next_segment)?, 0));
                self.next_segment += 1;
            }
            if let Some((w, n)) = self.open.as_mut() {
                match w.append(messages) {
                    Ok(bytes) => {
                        chunk = Some((bytes, w.segment().clone(), *n));
                        *n += 1;
                    }
                    Err(e) => {
                        // What it wrote may be partial: start a new segment.
                        self.open = None;
                        return Err(e);
                    }
                }
            }
        }
        let result = self.commit_meta(
            chunk.as_ref().map(|(b, s, n)| (s, *n, b.as_slice())),
            sealed.as_ref().map(|(b, s, n)| (s, *n, b.as_slice())),
            delta,
        );
        self.staged_cursor = None;
        self.staged_facts = BatchFacts::default();
        if result.is_err() {
            // The writer is ahead of what was committed: start a new
            // segment; the next writer seals this one as committed.
            self.open = None;
            self.indexed.clear();
            self.pairs.clear();
        }
        result
    }

    fn campaigns(&self, q: &CampaignQuery) -> Result<Vec<CampaignSummary>, StoreError> {
        let sql = format!("SELECT seq FROM clusters c {CAMPAIGN_FILTER} ORDER BY messages DESC, id LIMIT $4 OFFSET $5");
        let seqs: Vec<i64> = self
            .db(|c| {
                c.query(
                    &sql,
                    &[
                        &(q.min_messages as i64),
                        &q.last_seen_since,
                        &q.category.as_deref().map(str::to_ascii_lowercase),
                        &q.limit.map(|l| l as i64),
                        &(q.offset as i64),
                    ],
                )
            })
            .map_err(pg)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        seqs.into_iter().map(|s| self.summary(s, q.max_senders)).collect()
    }

    fn count_campaigns(&self, q: &CampaignQuery) -> Result<u64, StoreError> {
        let sql = format!("SELECT COUNT(*) FROM clusters c {CAMPAIGN_FILTER}");
        let n: i64 = self
            .db(|c| c.query_one(&sql, &[&(q.min_messages as i64), &q.last_seen_since, &q.category]))
            .map_err(pg)?
            .get(0);
        Ok(n as u64)
    }

    fn resolve_campaign(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.resolve(id)?.map(|(_, id)| id))
    }

    fn campaign(&self, id: &str, samples: usize) -> Result<Option<CampaignDetail>, StoreError> {
        let Some((seq, _)) = self.resolve(id)? else { return Ok(None) };
        let summary = self.summary(seq, None)?;
        let sender_stats = self
            .db(|c| {
                c.query(
                    "SELECT sender, messages, first_ts, last_ts FROM cluster_senders WHERE cluster = $1
                 ORDER BY messages DESC, sender COLLATE \"C\"",
                    &[&seq],
                )
            })
            .map_err(pg)?
            .iter()
            .map(|r| SenderView {
                sender: r.get(0),
                messages: r.get::<_, i64>(1) as u64,
                first_seen: r.get(2),
                last_seen: r.get(3),
            })
            .collect();
        let links = self.links_of(seq)?;
        let variants: Vec<VariantView> = self
            .db(|c| {
                c.query(
                    "SELECT text, messages, optout, sender_id, findings, key FROM templates WHERE cluster = $1
                 ORDER BY messages DESC, seq LIMIT 50",
                    &[&seq],
                )
            })
            .map_err(pg)?
            .iter()
            .map(|r| {
                let f: Option<String> = r.get(4);
                let f: Vec<textwatch_engine::Finding> =
                    f.and_then(|f| serde_json::from_str(&f).ok()).unwrap_or_default();
                let id = format!("{:016x}", r.get::<_, i64>(5) as u64);
                VariantView {
                    joined: links.iter().find(|l| l.variant == id).cloned(),
                    id,
                    template: r.get(0),
                    messages: r.get::<_, i64>(1) as u64,
                    optout: r.get(2),
                    sender_id: r.get(3),
                    findings: f.into_iter().map(|f| f.rule).collect(),
                }
            })
            .collect();
        let links: Vec<LinkView> = links.into_iter().filter(|l| l.kind != "near-duplicate").collect();
        let absorbed: Vec<String> = self
            .db(|c| c.query("SELECT id FROM clusters WHERE merged_into = $1 ORDER BY seq", &[&seq]))
            .map_err(pg)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let timeline = self
            .db(|c| c.query("SELECT minute, count FROM cluster_minutes WHERE cluster = $1 ORDER BY minute", &[&seq]))
            .map_err(pg)?
            .iter()
            .map(|r| MinuteView { minute: r.get::<_, i64>(0) * 60_000, messages: r.get::<_, i64>(1) as u64 })
            .collect();
        let samples = self.samples(seq, &summary.id, samples)?;
        Ok(Some(CampaignDetail { summary, sender_stats, variants, links, absorbed, timeline, samples }))
    }

    fn messages(&self, campaign: Option<&str>, f: &mut dyn FnMut(MessageView) -> bool) -> Result<(), StoreError> {
        use crate::segments::{message_view, read_campaign_rows, ALL};
        if let Some(id) = campaign {
            let Some((seq, cid)) = self.resolve(id)? else { return Ok(()) };
            let templates = self.templates_of(seq)?;
            if templates.is_empty() {
                return Ok(());
            }
            for seg in self.segments_of(seq)? {
                let go = read_campaign_rows(self, &seg, &templates, &ALL, &mut |rows, i, _, text| {
                    f(message_view(rows, i, text, Some(&cid)))
                })?;
                if !go {
                    break;
                }
            }
            return Ok(());
        }
        let segs = self.segments()?;
        crate::reads::every_message(
            self,
            &segs,
            &mut |key| {
                Ok(self.db(|c| c.query_opt(
                        "SELECT t.text, c.id FROM templates t LEFT JOIN clusters c ON c.seq = t.cluster WHERE t.key = $1",
                        &[&(key as i64)],
                    ))
                    .map_err(pg)?
                    .map(|r| (r.get(0), r.get(1)))
                    .unwrap_or_default())
            },
            f,
        )
    }

    fn replace_number_source(&mut self, source: &NumberSource, rows: &[PrefixRow]) -> Result<(), StoreError> {
        self.in_transaction(|tx| {
        tx.execute("DELETE FROM number_prefixes WHERE source = $1", &[&source.key]).map_err(pg)?;
        tx.execute("DELETE FROM number_sources WHERE key = $1", &[&source.key]).map_err(pg)?;
        tx.execute(
            "INSERT INTO number_sources (key, kind, file, file_date, rows, imported_at) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&source.key, &source.kind, &source.file, &source.file_date, &(rows.len() as i64), &source.imported_at],
        )
        .map_err(pg)?;
        for part in rows.chunks(10_000) {
            let prefix: Vec<&str> = part.iter().map(|r| r.prefix.as_str()).collect();
            let kind: Vec<&str> = part.iter().map(|r| r.kind.as_str()).collect();
            let name: Vec<&str> = part.iter().map(|r| r.name.as_str()).collect();
            let origin: Vec<&str> = part.iter().map(|r| r.source.as_str()).collect();
            let date: Vec<Option<&str>> = part.iter().map(|r| r.date.as_deref()).collect();
            let detail: Vec<&str> = part.iter().map(|r| r.detail.as_str()).collect();
            tx.execute(
                "INSERT INTO number_prefixes (source, prefix, kind, name, origin, date, detail)
                 SELECT $1, p, k, n, o, d, x FROM UNNEST($2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[])
                      WITH ORDINALITY AS u(p, k, n, o, d, x, i)
                 ORDER BY i",
                &[&source.key, &prefix, &kind, &name, &origin, &date, &detail],
            )
            .map_err(pg)?;
        }
        Ok(())
        })
    }

    fn number_sources(&self) -> Result<Vec<NumberSource>, StoreError> {
        Ok(self
            .db(|c| {
                c.query(
                "SELECT key, kind, file, file_date, rows, imported_at FROM number_sources ORDER BY key COLLATE \"C\"",
                &[],
            )
            })
            .map_err(pg)?
            .iter()
            .map(|r| NumberSource {
                key: r.get(0),
                kind: r.get(1),
                file: r.get(2),
                file_date: r.get(3),
                rows: r.get::<_, i64>(4) as u64,
                imported_at: r.get(5),
            })
            .collect())
    }

    fn number_prefixes(&self, f: &mut dyn FnMut(PrefixRow)) -> Result<(), StoreError> {
        let rows = self
            .db(|c| -> Result<Vec<PrefixRow>, postgres::Error> {
                let mut out = Vec::new();
                let mut rows = c.query_raw(
                    "SELECT prefix, kind, name, origin, date, detail FROM number_prefixes ORDER BY n",
                    std::iter::empty::<i64>(),
                )?;
                while let Some(r) = rows.next()? {
                    let kind: String = r.get(1);
                    let Some(kind) = SourceKind::parse(&kind) else { continue };
                    out.push(PrefixRow {
                        prefix: r.get(0),
                        kind,
                        name: r.get(2),
                        source: r.get(3),
                        date: r.get(4),
                        detail: r.get(5),
                    });
                }
                Ok(out)
            })
            .map_err(pg)?;
        rows.into_iter().for_each(f);
        Ok(())
    }

    fn sender_activity(&self, sender: &str) -> Result<SenderActivity, StoreError> {
        let segs = self.segments()?;
        let (messages, first, last) = crate::reads::sender_history(self, &segs, sender)?;
        let campaigns = self.db(|c| c.query(
                "SELECT c.id, s.messages, s.first_ts, s.last_ts FROM cluster_senders s JOIN clusters c ON c.seq = s.cluster
                 WHERE s.sender = $1 ORDER BY s.messages DESC, c.id",
                &[&sender],
            ))
            .map_err(pg)?
            .iter()
            .map(|r| SenderCampaign {
                campaign: r.get(0),
                messages: r.get::<_, i64>(1) as u64,
                first_seen: r.get(2),
                last_seen: r.get(3),
            })
            .collect();
        Ok(SenderActivity { messages, first_seen: first, last_seen: last, campaigns })
    }

    fn record_alert(&mut self, campaign: &str, level: &str, fired_at: i64, body: &str) -> Result<bool, StoreError> {
        let n = self
            .db(|c| {
                c.execute(
                "INSERT INTO alerts (campaign, level, fired_at, body) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&campaign, &level, &fired_at, &body],
            )
            })
            .map_err(pg)?;
        Ok(n == 1)
    }

    fn create_token(
        &mut self,
        hash: &str,
        scopes: &str,
        name: Option<&str>,
        created_at: i64,
    ) -> Result<i64, StoreError> {
        Ok(self
            .db(|c| {
                c.query_one(
                    "INSERT INTO tokens (hash, scopes, name, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
                    &[&hash, &scopes, &name, &created_at],
                )
            })
            .map_err(pg)?
            .get(0))
    }

    fn token_scopes(&self, hash: &str) -> Result<Option<(i64, String)>, StoreError> {
        Ok(self
            .db(|c| c.query_opt("SELECT id, scopes FROM tokens WHERE hash = $1 AND NOT revoked", &[&hash]))
            .map_err(pg)?
            .map(|r| (r.get(0), r.get(1))))
    }

    fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        Ok(self
            .db(|c| c.query("SELECT id, scopes, name, created_at, revoked FROM tokens ORDER BY id", &[]))
            .map_err(pg)?
            .iter()
            .map(|r| TokenInfo {
                id: r.get(0),
                scopes: r.get(1),
                name: r.get(2),
                created_at: r.get(3),
                revoked: r.get(4),
            })
            .collect())
    }

    fn revoke_token(&mut self, id: i64) -> Result<bool, StoreError> {
        Ok(self.db(|c| c.execute("UPDATE tokens SET revoked = TRUE WHERE id = $1", &[&id])).map_err(pg)? == 1)
    }

    fn block_campaign(&mut self, campaign: &str, at: i64, by: &str, reason: &str) -> Result<(), StoreError> {
        self.db(|c| {
            c.execute(
                "INSERT INTO campaign_blocks (campaign, blocked_at, by, reason) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (campaign) DO UPDATE SET blocked_at = EXCLUDED.blocked_at, by = EXCLUDED.by,
                    reason = EXCLUDED.reason",
                &[&campaign, &at, &by, &reason],
            )
        })
        .map_err(pg)?;
        Ok(())
    }

    fn blocked_campaigns(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows: Vec<(String, String)> = self
            .db(|c| c.query("SELECT campaign, reason FROM campaign_blocks ORDER BY campaign COLLATE \"C\"", &[]))
            .map_err(pg)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        // A blocked campaign that was joined into another blocks that one:
        // the kill switch stays on.
        let mut out = Vec::with_capacity(rows.len());
        for (id, reason) in rows {
            let live = self.resolve(&id).ok().flatten().map_or(id, |(_, live)| live);
            out.push((live, reason));
        }
        out.sort();
        out.dedup_by(|a, b| a.0 == b.0);
        Ok(out)
    }

    fn policy_allows(&self) -> Result<Vec<crate::appeals::PolicyAllow>, StoreError> {
        self.db(records::allows)
    }

    fn appeals(&self) -> Result<Vec<crate::appeals::Appeal>, StoreError> {
        self.db(records::appeals)
    }

    fn newest_message_ts(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.db(|c| c.query_one("SELECT MAX(max_ts) FROM segments", &[])).map_err(pg)?.get(0))
    }

    fn audit_log(&self) -> Result<Vec<crate::appeals::AuditEntry>, StoreError> {
        self.db(records::audit_log)
    }

    fn sent_reports(&self) -> Result<Vec<crate::reports::SentReport>, StoreError> {
        self.db(records::sent_reports)
    }

    fn sent_report(&self, id: i64) -> Result<Option<crate::reports::SentReport>, StoreError> {
        self.db(|c| records::sent_report(c, id))
    }

    fn has_alert(&self, campaign: &str, level: &str) -> Result<bool, StoreError> {
        Ok(self
            .db(|c| c.query_opt("SELECT 1 FROM alerts WHERE campaign = $1 AND level = $2", &[&campaign, &level]))
            .map_err(pg)?
            .is_some())
    }

    fn alerts(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .db(|c| {
                c.query("SELECT body FROM alerts ORDER BY fired_at, campaign COLLATE \"C\", level COLLATE \"C\"", &[])
            })
            .map_err(pg)?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn campaign_fingerprints(&self, id: &str) -> Result<Vec<String>, StoreError> {
        let Some((seq, _)) = self.resolve(id)? else { return Ok(Vec::new()) };
        let mut keys: Vec<u64> = self
            .db(|c| c.query("SELECT key FROM templates WHERE cluster = $1", &[&seq]))
            .map_err(pg)?
            .iter()
            .map(|r| r.get::<_, i64>(0) as u64)
            .collect();
        keys.sort_unstable();
        Ok(keys.into_iter().map(|k| format!("{k:016x}")).collect())
    }

    fn campaign_templates(&self, id: &str) -> Result<Vec<CampaignTemplate>, StoreError> {
        let Some((seq, _)) = self.resolve(id)? else { return Ok(Vec::new()) };
        Ok(self
            .db(|c| c.query("SELECT key, findings, category FROM templates WHERE cluster = $1 ORDER BY seq", &[&seq]))
            .map_err(pg)?
            .iter()
            .map(|r| {
                let f: Option<String> = r.get(1);
                CampaignTemplate {
                    key: r.get::<_, i64>(0) as u64,
                    findings: f.and_then(|f| serde_json::from_str(&f).ok()).unwrap_or_default(),
                    category: r.get(2),
                }
            })
            .collect())
    }

    fn campaign_stream(&self, id: &str, f: &mut dyn FnMut(i64, u64, &str) -> bool) -> Result<(), StoreError> {
        let Some((seq, _)) = self.resolve(id)? else { return Ok(()) };
        let templates = self.templates_of(seq)?;
        let segs = self.segments_of(seq)?;
        crate::reads::in_time_order(self, segs, &templates, f)
    }

    fn segments(&self) -> Result<Vec<Segment>, StoreError> {
        Ok(self
            .db(|c| c.query(&format!("SELECT {SEGMENT_COLUMNS} FROM segments ORDER BY id"), &[]))
            .map_err(pg)?
            .iter()
            .map(segment_of)
            .collect())
    }
    fn stats(&self) -> Result<StoreStats, StoreError> {
        let r = self
            .db(|c| {
                c.query_one(
                    "SELECT (SELECT COALESCE(SUM(rows), 0)::BIGINT FROM segments),
                        (SELECT COUNT(*) FROM templates),
                        (SELECT COUNT(*) FROM clusters WHERE merged_into IS NULL),
                        (SELECT COALESCE(SUM(messages), 0)::BIGINT FROM clusters WHERE merged_into IS NULL)",
                    &[],
                )
            })
            .map_err(pg)?;
        Ok(StoreStats {
            messages: r.get::<_, i64>(0) as u64,
            templates: r.get::<_, i64>(1) as u64,
            campaigns: r.get::<_, i64>(2) as u64,
            messages_in_campaigns: r.get::<_, i64>(3) as u64,
        })
    }
}
