//! The embedded store: one SQLite file in WAL mode.
//!
//! Layout (see `docs/formats.md` for the full schema):
//! - messages are not in SQLite: they are appended to the segment log next
//!   to the database file (`DB.segments/`, see [`crate::log`]), indexed by
//!   `segments` and `segment_clusters` (see [`crate::segments`]).
//! - `templates`: every distinct template, the cluster it belongs to and
//!   the first and last segment that hold its messages.
//! - `clusters`, `cluster_senders`, `cluster_minutes`:
//!   campaign state and statistics, kept current by each batch's delta.
//! - `meta`: schema version and the per-database secret.
//!
//! Every batch is one transaction, committed after the batch's messages
//! are synced to their segment; the transaction records how far the
//! segment is committed. With `synchronous=NORMAL` in WAL mode a killed
//! process never loses a committed batch; a power cut may lose the last
//! ones but never leaves a half-written batch, and the segment bytes past
//! the last committed batch are cut off by the next process that takes the
//! writer's lock.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use textwatch_engine::{campaign_id, ClusterRow, Delta, SenderRow, Snapshot, TemplateRow};

use crate::blobs::{reps_blob, reps_from_blob, vectors_blob, vectors_from_blob, Infra};
use crate::log::SegmentLog;
use crate::views::{
    CampaignDetail, CampaignFeatures, CampaignQuery, CampaignSummary, Finding, LinkView, MessageView, MinuteView,
    SenderView, StoreStats, VariantView,
};
use crate::{CampaignTemplate, NewMessage, NumberSource, SenderActivity, SenderCampaign, Store, StoreError, TokenInfo};
use textwatch_numbers::{PrefixRow, SourceKind};

/// 2: messages in the segment log (1 kept them in a `messages` table).
const SCHEMA_VERSION: i64 = 2;

/// The templates table: rows appended in the order templates are first
/// seen, found by key through its unique index.
pub(crate) const TEMPLATES_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS templates (
    key INTEGER NOT NULL UNIQUE,
    seq INTEGER NOT NULL,
    text TEXT NOT NULL,
    cluster INTEGER,
    messages INTEGER NOT NULL,
    first_ts INTEGER NOT NULL,
    first_sender TEXT NOT NULL,
    first_rcpt INTEGER,
    clusterable INTEGER NOT NULL,
    optout INTEGER,
    sender_id INTEGER,
    findings TEXT,
    category TEXT,
    quiet INTEGER NOT NULL DEFAULT 0,
    quiet_finding TEXT,
    category_rule TEXT,
    subcategory TEXT,
    first_seg INTEGER,
    last_seg INTEGER
);
CREATE INDEX IF NOT EXISTS templates_cluster ON templates(cluster) WHERE cluster IS NOT NULL;
";

/// Indexes on columns that [`migrate`] may have to add first.
const INDEXES_AFTER_MIGRATION: &str = "
-- Campaigns absorbed into one: read with every campaign's findings (texts
-- after an opt-out, reporters). Without it each read scanned the table,
-- signatures and all: at 10M messages the alert watcher spent 65 s there.
CREATE INDEX IF NOT EXISTS clusters_merged_into ON clusters(merged_into) WHERE merged_into IS NOT NULL;
";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS clusters (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    leader INTEGER NOT NULL,
    messages INTEGER NOT NULL,
    templates INTEGER NOT NULL,
    senders INTEGER NOT NULL,
    recipients INTEGER NOT NULL,
    first_ts INTEGER NOT NULL,
    last_ts INTEGER NOT NULL,
    formed_ts INTEGER NOT NULL,
    reps BLOB NOT NULL,
    merged_into INTEGER,
    actor TEXT,
    meaning BLOB,
    infra TEXT
);
CREATE TABLE IF NOT EXISTS campaign_links (
    cluster INTEGER NOT NULL,
    variant INTEGER NOT NULL,
    via INTEGER NOT NULL,
    kind TEXT NOT NULL,
    evidence TEXT NOT NULL,
    similarity REAL NOT NULL,
    ts INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS campaign_links_cluster ON campaign_links(cluster);
CREATE TABLE IF NOT EXISTS campaign_apart (
    a INTEGER NOT NULL,
    b INTEGER NOT NULL,
    PRIMARY KEY (a, b)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS campaign_edits (
    at INTEGER NOT NULL,
    action TEXT NOT NULL,
    campaign TEXT NOT NULL,
    other TEXT NOT NULL,
    by TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cluster_senders (
    cluster INTEGER NOT NULL,
    sender TEXT NOT NULL,
    messages INTEGER NOT NULL,
    first_ts INTEGER NOT NULL,
    last_ts INTEGER NOT NULL,
    PRIMARY KEY (cluster, sender)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cluster_minutes (
    cluster INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (cluster, minute)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS number_sources (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    file TEXT NOT NULL,
    file_date TEXT,
    rows INTEGER NOT NULL,
    imported_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS number_prefixes (
    source TEXT NOT NULL,
    prefix TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    origin TEXT NOT NULL,
    date TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS number_prefixes_source ON number_prefixes(source);
CREATE TABLE IF NOT EXISTS campaign_blocks (
    campaign TEXT PRIMARY KEY,
    blocked_at INTEGER NOT NULL,
    by TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id INTEGER PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    name TEXT,
    created_at INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS alerts (
    campaign TEXT NOT NULL,
    level TEXT NOT NULL,
    fired_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (campaign, level)
);
";

/// Columns added after a database may have been made: added in place.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let cols: Vec<String> =
        conn.prepare("PRAGMA table_info(templates)")?.query_map([], |r| r.get(1))?.collect::<Result<_, _>>()?;
    if !cols.iter().any(|c| c == "quiet") {
        conn.execute_batch(
            "ALTER TABLE templates ADD COLUMN quiet INTEGER NOT NULL DEFAULT 0;
             ALTER TABLE templates ADD COLUMN quiet_finding TEXT;",
        )?;
    }
    if !cols.iter().any(|c| c == "category_rule") {
        conn.execute_batch("ALTER TABLE templates ADD COLUMN category_rule TEXT;")?;
    }
    if !cols.iter().any(|c| c == "first_seg") {
        // Version 1 kept messages in SQLite; their segments are set when
        // `textwatch migrate` moves them.
        conn.execute_batch(
            "ALTER TABLE templates ADD COLUMN first_seg INTEGER;
             ALTER TABLE templates ADD COLUMN last_seg INTEGER;",
        )?;
    }
    if !cols.iter().any(|c| c == "subcategory") {
        // Two-level categories: the earlier names become this version's
        // (`ham` is personal, `commercial` marketing), subcategory unknown.
        conn.execute_batch(
            "ALTER TABLE templates ADD COLUMN subcategory TEXT;
             UPDATE templates SET category = 'personal' WHERE category = 'ham';
             UPDATE templates SET category = 'marketing' WHERE category = 'commercial';",
        )?;
    }
    let cols: Vec<String> =
        conn.prepare("PRAGMA table_info(clusters)")?.query_map([], |r| r.get(1))?.collect::<Result<_, _>>()?;
    if !cols.iter().any(|c| c == "merged_into") {
        conn.execute_batch(
            "ALTER TABLE clusters ADD COLUMN merged_into INTEGER;
             ALTER TABLE clusters ADD COLUMN actor TEXT;
             ALTER TABLE clusters ADD COLUMN meaning BLOB;
             ALTER TABLE clusters ADD COLUMN infra TEXT;",
        )?;
    }
    Ok(())
}

pub use crate::BatchFacts;

/// The SQLite store.
pub struct SqliteStore {
    pub(crate) conn: Connection,
    pub(crate) secret: Vec<u8>,
    recipient_hash: textwatch_engine::RecipientHash,
    pub(crate) log: SegmentLog,
    /// Whether the log was recovered (tails cut, open segments sealed):
    /// done once, before the first write.
    recovered: bool,
    /// The id a new segment gets.
    next_segment: i64,
    /// Templates whose campaign's segments are indexed, and in which
    /// campaign; (campaign, segment) pairs indexed.
    indexed: HashMap<u64, u32>,
    pairs: HashSet<(u32, i64)>,
    /// A consumer's position to record with the next commit
    /// ([`SqliteStore::stage_cursor`]).
    staged_cursor: Option<(String, i64, Vec<u64>)>,
    /// Facts of the next commit's batch ([`SqliteStore::stage_facts`]).
    staged_facts: BatchFacts,
    /// Time spent appending to the log and committing metadata.
    pub(crate) times: WriteTimes,
    /// Segment key sets of deduplication lookups ([`SqliteStore::stored_keys`]).
    pub(crate) key_cache: crate::dedup::KeyCache,
    /// The path it was opened with (`None` in memory): its segments are
    /// next to it, whatever links SQLite resolved.
    db_path: Option<PathBuf>,
}

/// Where a store's commits spent their time.
#[derive(Clone, Copy, Debug, Default)]
pub struct WriteTimes {
    /// Encoding, compressing, writing and syncing segment data.
    pub log: std::time::Duration,
    /// The SQLite transaction (templates, campaigns, segment index).
    pub metadata: std::time::Duration,
}

/// The folder of a database's segment log: `PATH.segments` next to it.
pub fn segments_dir(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".segments");
    PathBuf::from(s)
}

/// How the database hashes recipients (`meta.recipient_hash`; absent in
/// databases made before 2026-12, which use HMAC-SHA256).
fn recipient_hash_of(conn: &Connection) -> Result<textwatch_engine::RecipientHash, StoreError> {
    let name: Option<String> =
        conn.query_row("SELECT value FROM meta WHERE key = 'recipient_hash'", [], |r| r.get(0)).optional()?;
    match name.as_deref() {
        None => Ok(textwatch_engine::RecipientHash::HmacSha256),
        Some(n) => textwatch_engine::RecipientHash::parse(n).ok_or_else(|| {
            StoreError::Schema(format!(
                "this database hashes recipients with {n:?}, which this textwatch does not know"
            ))
        }),
    }
}

/// Whether SQLite refused because the database (or its folder) may not be
/// written here.
fn is_read_only(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ReadOnly || f.code == rusqlite::ErrorCode::CannotOpen)
}

/// How a database is opened.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Normal,
    /// A version-1 database may still hold messages in SQLite.
    Migration,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.conn.path()).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` for writing.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        Self::init(conn, SegmentLog::in_dir(segments_dir(path)), Mode::Normal).map(|s| s.at(path))
    }

    fn at(mut self, path: &Path) -> Self {
        self.db_path = Some(path.to_path_buf());
        self
    }

    /// A second, read-only handle on a database another handle of this
    /// process writes (scan's deduplication lookups): it sees what the
    /// writer commits, changes nothing, and does no schema work.
    pub fn open_reader(path: &Path) -> Result<Self, StoreError> {
        Self::open_read_only(path, true)
    }

    /// Opens a database for `textwatch migrate`: a version-1 database that
    /// still keeps messages in SQLite opens instead of being refused.
    pub fn open_for_migration(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing(path.display().to_string()));
        }
        let conn = Connection::open(path)?;
        Self::init(conn, SegmentLog::in_dir(segments_dir(path)), Mode::Migration).map(|s| s.at(path))
    }

    /// Opens an existing database for reading; a missing file is an error
    /// that tells the user what to do.
    pub fn open_existing(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing(path.display().to_string()));
        }
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        match Self::init(conn, SegmentLog::in_dir(segments_dir(path)), Mode::Normal) {
            Err(StoreError::Sqlite(e)) if is_read_only(&e) => Self::open_read_only(path, false),
            r => r.map(|s| s.at(path)),
        }
    }

    /// A database this process may read but not write (a backup, a copy
    /// handed to an analyst, another user's files): opened as a snapshot
    /// of its main file (SQLite's `immutable`: no locks, no WAL), so the
    /// read commands work and every write is refused by SQLite.
    /// `live`: a writer of this process has it open; never fall back to
    /// reading the main file alone (it would miss what is in the WAL).
    fn open_read_only(path: &Path, live: bool) -> Result<Self, StoreError> {
        let escaped = path.display().to_string().replace('%', "%25").replace('?', "%3f").replace('#', "%23");
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let version_of = |conn: &Connection| -> rusqlite::Result<Option<i64>> {
            conn.query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0)).optional()
        };
        // Read-only with locks first: it sees a live writer's log and takes
        // part in its locking. That needs the writer's shared-memory file;
        // without one (a copy, a closed database) the main file alone is
        // the database, read as immutable.
        let locked = Connection::open_with_flags(format!("file:{escaped}?mode=ro"), flags)
            .and_then(|c| version_of(&c).map(|v| (c, v)));
        let (conn, version) = match locked {
            Ok(cv) => cv,
            Err(e) if live => return Err(e.into()),
            Err(_) => {
                let c = Connection::open_with_flags(format!("file:{escaped}?mode=ro&immutable=1"), flags)?;
                let v = version_of(&c)?;
                (c, v)
            }
        };
        // What `migrate` would add in place (the schema version stays): a
        // read-only database must already have it.
        let has = |table: &str, col: &str| -> bool {
            conn.prepare(&format!("PRAGMA table_info({table})"))
                .and_then(|mut st| st.query_map([], |r| r.get::<_, String>(1))?.collect::<Result<Vec<_>, _>>())
                .is_ok_and(|cols| cols.iter().any(|c| c == col))
        };
        let current = [("templates", "quiet"), ("templates", "category_rule"), ("templates", "first_seg")]
            .iter()
            .chain(&[("templates", "subcategory"), ("clusters", "merged_into"), ("segments", "hash")])
            .all(|(t, c)| has(t, c));
        if version != Some(SCHEMA_VERSION) || !current {
            return Err(StoreError::Schema(format!(
                "{} is read-only and was written by an older version of textwatch: \
                 open it once where textwatch may write it, to upgrade it",
                path.display()
            )));
        }
        let secret: Vec<u8> = conn.query_row("SELECT value FROM meta WHERE key = 'secret'", [], |r| r.get(0))?;
        let recipient_hash = recipient_hash_of(&conn)?;
        let next_segment = crate::segments::next_id(&conn)?;
        if !live {
            tracing::info!(db = %path.display(), "the database is not writable here: opened read-only");
        }
        Ok(SqliteStore {
            conn,
            secret,
            recipient_hash,
            log: SegmentLog::in_dir(segments_dir(path)),
            recovered: false,
            next_segment,
            indexed: HashMap::new(),
            pairs: HashSet::new(),
            staged_cursor: None,
            staged_facts: BatchFacts::default(),
            times: WriteTimes::default(),
            key_cache: Default::default(),
            db_path: Some(path.to_path_buf()),
        })
    }

    /// A throwaway in-memory database (tests, `check` without a database).
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?, SegmentLog::in_memory(), Mode::Normal)
    }

    /// Rolls segments after `rows` messages (tests of multi-segment logs).
    pub fn with_segment_rows(mut self, rows: u64) -> Self {
        self.log = std::mem::replace(&mut self.log, SegmentLog::in_memory()).with_roll_rows(rows);
        self
    }

    fn init(conn: Connection, log: SegmentLog, mode: Mode) -> Result<Self, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        // Pages stay at SQLite's 4 KiB: 16 KiB pages looked 10% faster at 1M
        // messages and made the writer 2.4 times slower at 10M, where the
        // random inserts into the template index and table miss the cache
        // and each dirties a page four times larger.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "cache_size", -131_072)?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.pragma_update(None, "wal_autocheckpoint", 65_536)?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(TEMPLATES_SCHEMA)?;
        conn.execute_batch(crate::segments::SCHEMA)?;
        conn.execute_batch(crate::optouts::SCHEMA)?;
        conn.execute_batch(crate::reports::SCHEMA)?;
        conn.execute_batch(crate::reporters::SCHEMA)?;
        conn.execute_batch(crate::appeals::SCHEMA)?;
        migrate(&conn)?;
        // After `migrate`: databases made before merges lack the column.
        conn.execute_batch(INDEXES_AFTER_MIGRATION)?;
        let legacy: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages')",
            [],
            |r| r.get(0),
        )?;
        let mut legacy_rows = false;
        if legacy {
            legacy_rows = conn.query_row("SELECT EXISTS (SELECT 1 FROM messages)", [], |r| r.get(0))?;
            if !legacy_rows {
                conn.execute_batch("DROP TABLE messages;")?;
            } else if mode == Mode::Normal {
                let path = conn.path().unwrap_or("DB").to_string();
                return Err(StoreError::NeedsMigration(path));
            }
        }
        if !legacy_rows {
            conn.execute("UPDATE meta SET value = ?1 WHERE key = 'schema_version' AND value = 1", [SCHEMA_VERSION])?;
        }
        let version: Option<i64> =
            conn.query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0)).optional()?;
        match version {
            None => {
                conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?1)", [SCHEMA_VERSION])?;
            }
            Some(1) if legacy_rows => {}
            Some(v) if v != SCHEMA_VERSION => {
                return Err(StoreError::Schema(format!(
                    "database schema version {v} is not the {SCHEMA_VERSION} this textwatch uses"
                )))
            }
            Some(_) => {}
        }
        let secret: Option<Vec<u8>> =
            conn.query_row("SELECT value FROM meta WHERE key = 'secret'", [], |r| r.get(0)).optional()?;
        let secret = match secret {
            Some(s) => s,
            None => {
                let mut s = vec![0u8; 32];
                getrandom::getrandom(&mut s)
                    .map_err(|e| StoreError::Schema(format!("no randomness for the database secret: {e}")))?;
                conn.execute("INSERT INTO meta (key, value) VALUES ('secret', ?1)", [&s])?;
                // A new database hashes recipients with keyed BLAKE3; one
                // made before keeps HMAC-SHA256 (its stored hashes use it).
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('recipient_hash', ?1)",
                    [textwatch_engine::RecipientHash::Blake3.name()],
                )?;
                s
            }
        };
        let recipient_hash = recipient_hash_of(&conn)?;
        let next_segment = crate::segments::next_id(&conn)?;
        Ok(SqliteStore {
            conn,
            secret,
            recipient_hash,
            log,
            recovered: false,
            next_segment,
            indexed: HashMap::new(),
            pairs: HashSet::new(),
            staged_cursor: None,
            staged_facts: BatchFacts::default(),
            times: WriteTimes::default(),
            key_cache: Default::default(),
            db_path: None,
        })
    }

    fn commit_meta(
        &mut self,
        appended: Option<&crate::log::Appended>,
        current: Option<i64>,
        delta: &Delta,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            if let Some((name, value, carry)) = &self.staged_cursor {
                tx.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                    params![format!("cursor:{name}"), value],
                )?;
                tx.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                    params![format!("cursor:{name}:carry"), serde_json::to_string(carry).unwrap_or_default()],
                )?;
            }
            if let Some(a) = appended {
                if let Some(sealed) = &a.sealed {
                    crate::segments::record(&tx, sealed)?;
                }
                crate::segments::record(&tx, &a.segment)?;
            }
            let mut st = tx.prepare_cached(
                "INSERT INTO templates (key, seq, text, cluster, messages, first_ts, first_sender, first_rcpt, clusterable, optout, sender_id, findings, category, quiet, quiet_finding, category_rule, subcategory, first_seg, last_seg)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?18)
                 ON CONFLICT(key) DO UPDATE SET cluster = excluded.cluster, messages = excluded.messages,
                    first_seg = COALESCE(first_seg, excluded.first_seg), last_seg = COALESCE(excluded.last_seg, last_seg),
                    optout = COALESCE(excluded.optout, optout), sender_id = COALESCE(excluded.sender_id, sender_id),
                    findings = COALESCE(excluded.findings, findings), category = COALESCE(excluded.category, category),
                    quiet = excluded.quiet, quiet_finding = COALESCE(excluded.quiet_finding, quiet_finding),
                    category_rule = COALESCE(excluded.category_rule, category_rule),
                    subcategory = CASE WHEN excluded.category IS NULL THEN subcategory ELSE excluded.subcategory END",
            )?;
            for t in &delta.templates {
                st.execute(params![
                    t.key as i64,
                    t.seq as i64,
                    t.text,
                    t.cluster.map(|c| c as i64),
                    t.messages as i64,
                    t.first_ts,
                    t.first_sender,
                    t.first_rcpt.map(|r| r as i64),
                    t.clusterable,
                    t.optout,
                    t.sender_id,
                    t.findings.as_ref().map(|f| serde_json::to_string(f).unwrap_or_default()),
                    t.category,
                    t.quiet as i64,
                    t.quiet_finding.as_ref().map(|f| serde_json::to_string(f).unwrap_or_default()),
                    t.category_rule,
                    t.subcategory,
                    current,
                ])?;
            }
            // Campaigns joined in this batch: the absorbed one's templates,
            // numbers, minutes and links move to the one it joined. The
            // batch's own rows (below) then carry the merged counts.
            for &(from, into) in &delta.merges {
                let (from, into) = (from as i64, into as i64);
                tx.execute("UPDATE templates SET cluster = ?2 WHERE cluster = ?1", params![from, into])?;
                tx.execute("DELETE FROM cluster_senders WHERE cluster = ?1", [from])?;
                tx.execute(
                    "INSERT INTO cluster_minutes (cluster, minute, count) SELECT ?2, minute, count FROM cluster_minutes WHERE cluster = ?1
                     ON CONFLICT(cluster, minute) DO UPDATE SET count = count + excluded.count",
                    params![from, into],
                )?;
                tx.execute("DELETE FROM cluster_minutes WHERE cluster = ?1", [from])?;
                tx.execute("UPDATE campaign_links SET cluster = ?2 WHERE cluster = ?1", params![from, into])?;
                tx.execute("UPDATE campaign_samples SET cluster = ?2 WHERE cluster = ?1", params![from, into])?;
                move_apart(&tx, from, into)?;
            }
            let mut st = tx.prepare_cached(
                "INSERT INTO campaign_links (cluster, variant, via, kind, evidence, similarity, ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for l in &delta.links {
                st.execute(params![
                    l.cluster as i64,
                    l.variant as i64,
                    l.via as i64,
                    l.kind,
                    l.evidence,
                    f64::from(l.similarity),
                    l.ts
                ])?;
            }
            let mut st = tx.prepare_cached(
                "INSERT OR REPLACE INTO clusters (seq, id, leader, messages, templates, senders, recipients, first_ts, last_ts, formed_ts, reps,
                                                  merged_into, actor, meaning, infra)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            )?;
            for c in &delta.clusters {
                st.execute(params![
                    c.seq as i64,
                    campaign_id(c.label),
                    c.leader as i64,
                    c.messages as i64,
                    c.templates as i64,
                    c.senders as i64,
                    c.recipients as i64,
                    c.first_ts,
                    c.last_ts,
                    c.formed_ts,
                    reps_blob(&c.reps),
                    c.merged_into.map(|m| m as i64),
                    c.actor,
                    vectors_blob(&c.meaning),
                    serde_json::to_string(&Infra { domains: c.domains.clone(), phones: c.phones.clone() })
                        .unwrap_or_default(),
                ])?;
            }
            let mut st = tx.prepare_cached(
                "INSERT OR REPLACE INTO cluster_senders (cluster, sender, messages, first_ts, last_ts) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for s in &delta.senders {
                st.execute(params![s.cluster as i64, s.sender, s.messages as i64, s.first_ts, s.last_ts])?;
            }
            let mut st = tx.prepare_cached(
                "INSERT INTO cluster_minutes (cluster, minute, count) VALUES (?1, ?2, ?3)
                 ON CONFLICT(cluster, minute) DO UPDATE SET count = count + excluded.count",
            )?;
            for m in &delta.minutes {
                st.execute(params![m.cluster as i64, m.minute, m.count as i64])?;
            }
            // Which campaigns have messages in which segments. A merge gives
            // the survivor the absorbed campaign's segments; a template new
            // to a campaign marks every segment since its first message.
            for &(from, into) in &delta.merges {
                tx.execute(
                    "INSERT OR IGNORE INTO segment_clusters (cluster, segment) SELECT ?2, segment FROM segment_clusters WHERE cluster = ?1",
                    params![from as i64, into as i64],
                )?;
            }
            let mut late = tx.prepare_cached(
                "INSERT OR IGNORE INTO segment_clusters (cluster, segment)
                 SELECT ?1, id FROM segments WHERE id >= COALESCE((SELECT first_seg FROM templates WHERE key = ?2), ?3)",
            )?;
            let mut pair =
                tx.prepare_cached("INSERT OR IGNORE INTO segment_clusters (cluster, segment) VALUES (?1, ?2)")?;
            for t in &delta.templates {
                let Some(c) = t.cluster else { continue };
                if self.indexed.get(&t.key) != Some(&c) {
                    late.execute(params![c as i64, t.key as i64, current.unwrap_or(i64::MAX)])?;
                    self.indexed.insert(t.key, c);
                }
                if let Some(seg) = current {
                    if self.pairs.insert((c, seg)) {
                        pair.execute(params![c as i64, seg])?;
                    }
                }
            }
        }
        // The batch's facts refer to its campaigns, written above.
        crate::reporters::record(&tx, &self.staged_facts.reporters)?;
        crate::optouts::record_ignored(&tx, &self.staged_facts.ignored)?;
        tx.commit()?;
        Ok(())
    }

    /// A campaign's first `n` messages in time order (stored order breaks
    /// ties): those kept when their segments were pruned, then the log's.
    pub(crate) fn samples(&self, seq: i64, cid: &str, n: usize) -> Result<Vec<MessageView>, StoreError> {
        let out: Vec<MessageView> = self
            .conn
            .prepare_cached(
                "SELECT id, ts, sender, body, source, template, origin, meta FROM campaign_samples
                 WHERE cluster = ?1 ORDER BY ts, rowid",
            )?
            .query_map([seq], |r| {
                Ok(MessageView {
                    id: r.get(0)?,
                    ts: r.get(1)?,
                    from: r.get(2)?,
                    body: r.get(3)?,
                    source: r.get(4)?,
                    template: r.get(5)?,
                    campaign: Some(cid.to_string()),
                    origin: r.get(6)?,
                    meta: r.get::<_, Option<String>>(7)?.and_then(|m| serde_json::from_str(&m).ok()),
                })
            })?
            .collect::<Result<_, _>>()?;
        let templates = crate::segments::templates_of(&self.conn, seq)?;
        let segs = crate::segments::of_cluster(&self.conn, seq)?;
        crate::reads::earliest(&self.log, segs, &templates, cid, n, out)
    }

    pub(crate) fn recover_log(&mut self) -> Result<(), StoreError> {
        if self.recovered {
            return Ok(());
        }
        // The lock first, then what was committed: a writer that finished
        // between this store's open and now is seen in full.
        self.log.lock()?;
        let segs = crate::segments::all(&self.conn)?;
        self.next_segment = self.next_segment.max(crate::segments::next_id(&self.conn)?);
        let fixed = self.log.recover(&segs)?;
        if !fixed.is_empty() {
            let tx = self.conn.transaction()?;
            for r in &fixed {
                crate::segments::record(&tx, &r.segment)?;
            }
            tx.commit()?;
        }
        self.recovered = true;
        Ok(())
    }

    /// The database file (`None` for an in-memory database).
    pub fn path(&self) -> Option<PathBuf> {
        self.db_path.clone()
    }

    /// Where this store's commits spent their time so far.
    pub fn write_times(&self) -> WriteTimes {
        self.times
    }

    /// The id the next new segment gets.
    pub(crate) fn next_segment(&self) -> i64 {
        self.next_segment
    }

    /// Notes that segment `id` exists.
    pub(crate) fn bump_segment(&mut self, id: i64) {
        self.next_segment = self.next_segment.max(id + 1);
    }

    /// The segment log's folder (None in memory).
    pub fn segments_dir(&self) -> Option<&Path> {
        self.log.dir()
    }

    /// Every link into a campaign, oldest first.
    fn links_of(&self, seq: i64) -> Result<Vec<LinkView>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT variant, via, kind, evidence, similarity, ts FROM campaign_links WHERE cluster = ?1 ORDER BY ts, rowid",
        )?;
        let rows = st
            .query_map([seq], |r| {
                Ok(LinkView {
                    variant: format!("{:016x}", r.get::<_, i64>(0)? as u64),
                    via: format!("{:016x}", r.get::<_, i64>(1)? as u64),
                    kind: r.get(2)?,
                    evidence: r.get(3)?,
                    similarity: r.get::<_, f64>(4)? as f32,
                    at: r.get(5)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn apart_pairs(&self) -> Result<Vec<(u32, u32)>, StoreError> {
        let mut st = self.conn.prepare("SELECT a, b FROM campaign_apart ORDER BY a, b")?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, i64>(0)? as u32, r.get::<_, i64>(1)? as u32)))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Every cluster row, in order; a gap in the numbering is damage.
    fn cluster_rows(&self) -> Result<Vec<ClusterRow>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT seq, id, leader, messages, templates, senders, recipients, first_ts, last_ts, formed_ts, reps,
                    merged_into, actor, meaning, infra
             FROM clusters ORDER BY seq",
        )?;
        let clusters: Vec<ClusterRow> = st
            .query_map([], |r| {
                let id: String = r.get(1)?;
                Ok(ClusterRow {
                    seq: r.get::<_, i64>(0)? as u32,
                    label: u64::from_str_radix(&id, 16).unwrap_or(0),
                    leader: r.get::<_, i64>(2)? as u64,
                    messages: r.get::<_, i64>(3)? as u64,
                    templates: r.get::<_, i64>(4)? as u32,
                    senders: r.get::<_, i64>(5)? as u32,
                    recipients: r.get::<_, i64>(6)? as u32,
                    first_ts: r.get(7)?,
                    last_ts: r.get(8)?,
                    formed_ts: r.get(9)?,
                    reps: reps_from_blob(&r.get::<_, Vec<u8>>(10)?),
                    merged_into: r.get::<_, Option<i64>>(11)?.map(|m| m as u32),
                    actor: r.get(12)?,
                    meaning: r.get::<_, Option<Vec<u8>>>(13)?.map(|b| vectors_from_blob(&b)).unwrap_or_default(),
                    domains: Vec::new(),
                    phones: Vec::new(),
                })
                .map(|mut c| {
                    if let Ok(Some(infra)) = r.get::<_, Option<String>>(14) {
                        if let Ok(i) = serde_json::from_str::<Infra>(&infra) {
                            (c.domains, c.phones) = (i.domains, i.phones);
                        }
                    }
                    c
                })
            })?
            .collect::<Result<_, _>>()?;
        for (i, c) in clusters.iter().enumerate() {
            if c.seq as usize != i {
                return Err(StoreError::Schema(format!("cluster numbering has a gap at {i}: the database is damaged")));
            }
        }
        Ok(clusters)
    }

    /// A campaign's row number and id, by id or unique prefix (a campaign
    /// merged into another resolves to that one).
    pub fn resolve_seq(&self, id: &str) -> Result<Option<(i64, String)>, StoreError> {
        self.resolve(id)
    }

    fn resolve(&self, id: &str) -> Result<Option<(i64, String)>, StoreError> {
        let id = id.trim().to_ascii_lowercase();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let mut st =
            self.conn.prepare_cached("SELECT seq, id FROM clusters WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT 2")?;
        let upper = format!("{id}g");
        let rows: Vec<(i64, String)> =
            st.query_map(params![id, upper], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
        let found = match rows.len() {
            0 => return Ok(None),
            1 => rows.into_iter().next(),
            _ if rows[0].1 == id => rows.into_iter().next(),
            _ => {
                let n: i64 = self
                    .conn
                    .prepare_cached("SELECT COUNT(*) FROM clusters WHERE id >= ?1 AND id < ?2")?
                    .query_row(params![id, upper], |r| r.get(0))?;
                let candidates = self
                    .conn
                    .prepare_cached("SELECT id FROM clusters WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT ?3")?
                    .query_map(params![id, upper, crate::AMBIGUOUS_SHOWN as i64], |r| r.get(0))?
                    .collect::<Result<Vec<String>, _>>()?;
                return Err(StoreError::Ambiguous { prefix: id, count: n as usize, candidates });
            }
        };
        // A campaign joined into another resolves to the one it joined.
        let Some((mut seq, mut id)) = found else { return Ok(None) };
        let mut st = self.conn.prepare_cached(
            "SELECT c.merged_into, m.id FROM clusters c JOIN clusters m ON m.seq = c.merged_into WHERE c.seq = ?1",
        )?;
        for _ in 0..64 {
            match st.query_row([seq], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))).optional()? {
                Some((next, next_id)) if next != seq => (seq, id) = (next, next_id),
                _ => break,
            }
        }
        Ok(Some((seq, id)))
    }

    fn summary(&self, seq: i64, max_senders: Option<usize>) -> Result<CampaignSummary, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT c.id, t.text, c.messages, c.senders, c.recipients, c.first_ts, c.last_ts, c.formed_ts, c.templates
             FROM clusters c JOIN templates t ON t.key = c.leader WHERE c.seq = ?1",
        )?;
        let mut s = st.query_row([seq], |r| {
            Ok(CampaignSummary {
                id: r.get(0)?,
                template: r.get(1)?,
                messages: r.get::<_, i64>(2)? as u64,
                senders: Vec::new(),
                sender_count: r.get::<_, i64>(3)? as u64,
                recipients: r.get::<_, i64>(4)? as u64,
                first_seen: r.get(5)?,
                last_seen: r.get(6)?,
                formed_at: r.get(7)?,
                templates: r.get::<_, i64>(8)? as u64,
                features: CampaignFeatures { optout: 0.0, sender_id: 0.0 },
                findings: Vec::new(),
                category: None,
                subcategory: None,
                category_rule: None,
                risk: None,
                providers: Vec::new(),
                decision: None,
                sender_messages: Vec::new(),
            })
        })?;
        let limit = max_senders.map_or(-1, |m| m as i64);
        let mut st = self.conn.prepare_cached(
            "SELECT sender, messages FROM cluster_senders WHERE cluster = ?1 ORDER BY messages DESC, sender LIMIT ?2",
        )?;
        let senders: Vec<(String, i64)> =
            st.query_map(params![seq, limit], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
        (s.senders, s.sender_messages) = senders.into_iter().map(|(a, n)| (a, n as u64)).unzip();
        let mut st = self.conn.prepare_cached(
            "SELECT COALESCE(SUM(messages * COALESCE(optout, 0)), 0), COALESCE(SUM(messages * COALESCE(sender_id, 0)), 0),
                    COALESCE(SUM(messages), 0)
             FROM templates WHERE cluster = ?1",
        )?;
        let (o, i, n): (i64, i64, i64) = st.query_row([seq], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        if n > 0 {
            s.features = CampaignFeatures { optout: o as f64 / n as f64, sender_id: i as f64 / n as f64 };
        }
        s.findings = self.campaign_findings(seq)?;
        (s.category, s.subcategory, s.category_rule) = self
            .conn
            .prepare_cached(
                "SELECT category, subcategory, category_rule FROM templates WHERE cluster = ?1 AND category IS NOT NULL
                 ORDER BY category_rule IS NOT NULL DESC, messages DESC, seq LIMIT 1",
            )?
            .query_row([seq], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?
            .map_or((None, None, None), |(c, sub, r)| (Some(c), sub, r));
        s.risk = Some(textwatch_engine::rules::risk(s.findings.iter().map(|f| &f.severity), s.messages));
        Ok(s)
    }

    /// A campaign's findings: per rule, the messages whose template breaks
    /// it, the worst severity, and the evidence from the largest template.
    fn campaign_findings(&self, seq: i64) -> Result<Vec<Finding>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT messages, findings FROM templates WHERE cluster = ?1 AND findings IS NOT NULL ORDER BY messages DESC, seq",
        )?;
        let rows: Vec<(i64, String)> =
            st.query_map([seq], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
        let mut kept = crate::findings::of_templates(rows.into_iter().map(|(n, f)| (n as u64, f)));
        // Quiet hours are counted per message: the campaign carries the
        // finding when any of its messages broke it.
        let (quiet, example): (i64, Option<String>) = self
            .conn
            .prepare_cached(
                "SELECT COALESCE(SUM(quiet), 0),
                        (SELECT quiet_finding FROM templates WHERE cluster = ?1 AND quiet_finding IS NOT NULL
                         ORDER BY quiet DESC, seq LIMIT 1)
                 FROM templates WHERE cluster = ?1",
            )?
            .query_row([seq], |r| Ok((r.get(0)?, r.get(1)?)))?;
        kept.extend(crate::findings::quiet(quiet as u64, example.as_deref()));
        kept.extend(crate::optouts::ignored_finding(&self.conn, seq)?);
        kept.extend(crate::reporters::finding(&self.conn, seq)?);
        crate::findings::sort(&mut kept);
        Ok(kept)
    }
}

/// An analyst's split holds against what the absorbed campaign joins: its
/// apart pairs move to the campaign it joined.
pub(crate) fn move_apart(tx: &rusqlite::Transaction<'_>, from: i64, into: i64) -> Result<(), StoreError> {
    tx.execute(
        "INSERT OR IGNORE INTO campaign_apart (a, b)
         SELECT MIN(other, ?2), MAX(other, ?2) FROM
            (SELECT CASE WHEN a = ?1 THEN b ELSE a END AS other FROM campaign_apart WHERE a = ?1 OR b = ?1)
         WHERE other != ?2",
        params![from, into],
    )?;
    tx.execute("DELETE FROM campaign_apart WHERE a = ?1 OR b = ?1", [from])?;
    Ok(())
}

/// The filters of a [`CampaignQuery`] in SQL (`?1` minimum messages, `?2`
/// last seen since, `?3` category; the category as [`SqliteStore::summary`]
/// decides it: a rule-settled template's first, else the largest's).
const CAMPAIGN_FILTER: &str = "WHERE c.merged_into IS NULL AND c.messages >= ?1 AND (?2 IS NULL OR c.last_ts >= ?2)
    AND (?3 IS NULL OR EXISTS (SELECT 1 FROM (
            SELECT category || '/' || COALESCE(subcategory, '') AS k FROM templates WHERE cluster = c.seq AND category IS NOT NULL
            ORDER BY category_rule IS NOT NULL DESC, messages DESC, seq LIMIT 1)
         WHERE k = ?3 OR k LIKE ?3 || '/%' OR k LIKE '%/' || ?3
            OR (?3 = 'commercial' AND (k LIKE 'marketing/%' OR k LIKE 'transactional/%'))
            OR (?3 = 'ham' AND k LIKE 'personal/%')))";

impl crate::WriteStore for SqliteStore {
    fn lock_for_writing(&mut self) -> Result<(), StoreError> {
        self.recover_log()?;
        // A previous recipient key past its grace period goes now.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        if self.forget_expired_secret(now)? {
            tracing::info!("deleted the previous recipient key: its grace period is over");
        }
        Ok(())
    }
    fn close_segment(&mut self) -> Result<(), StoreError> {
        if let Some(seg) = self.log.seal()? {
            crate::segments::record(&self.conn, &seg)?;
        }
        Ok(())
    }
    fn stage_cursor(&mut self, name: &str, value: i64, carry: Vec<u64>) {
        self.staged_cursor = Some((name.to_owned(), value, carry));
    }
    fn cursor(&self, name: &str) -> Result<Option<(i64, Vec<u64>)>, StoreError> {
        let value: Option<i64> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [format!("cursor:{name}")], |r| r.get(0))
            .optional()?;
        let Some(value) = value else { return Ok(None) };
        let carry: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [format!("cursor:{name}:carry")], |r| r.get(0))
            .optional()?;
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
        crate::optouts::changes(&self.conn)
    }
    fn record_optout_changes(&mut self, changes: &[textwatch_engine::optout::Change]) -> Result<(), StoreError> {
        crate::optouts::record_changes(&mut self.conn, changes)
    }
    fn previous_secret(&self, now_ms: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let until: Option<i64> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'secret_grace_until'", [], |r| r.get(0))
            .optional()?;
        if until.is_none_or(|u| now_ms >= u) {
            return Ok(None);
        }
        Ok(self.conn.query_row("SELECT value FROM meta WHERE key = 'secret_previous'", [], |r| r.get(0)).optional()?)
    }
    fn stored_keys(&mut self, keys: &[(u64, i64)]) -> Result<HashSet<u64>, StoreError> {
        if keys.is_empty() {
            return Ok(HashSet::new());
        }
        let segs = crate::segments::all(&self.conn)?;
        crate::dedup::stored_keys(&segs, &self.log, &mut self.key_cache, keys)
    }
    fn put_pending_report(&mut self, reporter: &[u8; 16], ts: i64, text: &str) -> Result<(), StoreError> {
        crate::reporters::put_pending(&self.conn, reporter, ts, text)
    }
    fn put_back_pending_report(&mut self, reporter: &[u8; 16], ts: i64, text: &str) -> Result<(), StoreError> {
        crate::reporters::put_back_pending(&self.conn, reporter, ts, text)
    }
    fn take_pending_report(
        &mut self,
        reporter: &[u8; 16],
        ts: i64,
        window_ms: i64,
    ) -> Result<Option<(i64, String)>, StoreError> {
        crate::reporters::take_pending(&self.conn, reporter, ts, window_ms)
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
        crate::appeals::open(&mut self.conn, at, kind, subject, contact, reason, actor)
    }
    fn decide_appeal(
        &mut self,
        id: i64,
        overturn: bool,
        by: &str,
        reason: &str,
        at: i64,
    ) -> Result<crate::appeals::Decided, StoreError> {
        crate::appeals::decide(&mut self.conn, id, overturn, by, reason, at)
    }
    fn record_report(&mut self, r: &crate::reports::NewReport<'_>) -> Result<i64, StoreError> {
        crate::reports::record(&self.conn, r)
    }
    fn answer_report(&mut self, id: i64, text: &str, at: i64) -> Result<bool, StoreError> {
        crate::reports::answer(&self.conn, id, text, at)
    }
    fn key_rotation(&self) -> Result<(Option<i64>, Option<i64>), StoreError> {
        crate::keys::rotation(&self.conn)
    }
    fn rotate_secret(&mut self, now_ms: i64, grace_ms: i64) -> Result<crate::keys::KeyInfo, StoreError> {
        self.secret = crate::keys::rotate(&mut self.conn, &self.secret, now_ms, grace_ms)?;
        self.key_info(now_ms)
    }
    fn forget_expired_secret(&mut self, now_ms: i64) -> Result<bool, StoreError> {
        crate::keys::forget_expired(&self.conn, now_ms)
    }
    fn prune(&mut self, before: i64) -> Result<crate::Pruned, StoreError> {
        self.prune_segments(before)
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
    fn log_usage(&self) -> Result<(u64, u64), StoreError> {
        let segs = self.segments()?;
        Ok((segs.iter().map(|s| s.rows).sum(), segs.iter().map(|s| self.log.disk_bytes(s.id)).sum()))
    }
}

impl Store for SqliteStore {
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
        let text_from: i64 = self.conn.query_row(
            "SELECT COALESCE(MIN(seq), 0) FROM (SELECT seq FROM templates WHERE cluster IS NULL AND clusterable = 1
             ORDER BY seq DESC LIMIT ?1)",
            [(singleton_window * 2) as i64],
            |r| r.get(0),
        )?;
        let mut st = self.conn.prepare(
            "SELECT key, seq, CASE WHEN cluster IS NULL AND clusterable = 1 AND seq >= ?1 THEN text ELSE '' END,
                    cluster, messages, first_ts, first_sender, first_rcpt, clusterable, optout, sender_id, quiet
             FROM templates",
        )?;
        snap.templates = st
            .query_map([text_from], |r| {
                Ok(TemplateRow {
                    key: r.get::<_, i64>(0)? as u64,
                    seq: r.get::<_, i64>(1)? as u32,
                    text: r.get(2)?,
                    cluster: r.get::<_, Option<i64>>(3)?.map(|c| c as u32),
                    messages: r.get::<_, i64>(4)? as u64,
                    first_ts: r.get(5)?,
                    first_sender: r.get(6)?,
                    first_rcpt: r.get::<_, Option<i64>>(7)?.map(|v| v as u64),
                    clusterable: r.get(8)?,
                    optout: r.get(9)?,
                    sender_id: r.get(10)?,
                    findings: None,
                    category: None,
                    subcategory: None,
                    category_rule: None,
                    quiet: r.get::<_, i64>(11)? as u64,
                    quiet_finding: None,
                })
            })?
            .collect::<Result<_, _>>()?;
        snap.clusters = self.cluster_rows()?;
        let mut st = self.conn.prepare("SELECT cluster, sender, messages, first_ts, last_ts FROM cluster_senders")?;
        snap.senders = st
            .query_map([], |r| {
                Ok(SenderRow {
                    cluster: r.get::<_, i64>(0)? as u32,
                    sender: r.get(1)?,
                    messages: r.get::<_, i64>(2)? as u64,
                    first_ts: r.get(3)?,
                    last_ts: r.get(4)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        // Distinct recipients per campaign, the identities of stored
        // messages and the singletons' bodies come from the log; the bodies
        // from the segments from the oldest such singleton's first on.
        let bodies_from: i64 = self.conn.query_row(
            "SELECT COALESCE(MIN(first_seg), 0) FROM templates WHERE cluster IS NULL AND clusterable = 1 AND seq >= ?1",
            [text_from],
            |r| r.get(0),
        )?;
        let segs = crate::segments::all(&self.conn)?;
        crate::reads::snapshot_messages(&self.log, &segs, &mut snap, dedup_keys, bodies_from)?;
        snap.apart = self.apart_pairs()?;
        Ok(snap)
    }

    fn load_peek_snapshot(&mut self, singleton_window: usize) -> Result<Snapshot, StoreError> {
        let mut snap = Snapshot::default();
        let mut st = self.conn.prepare(
            "SELECT key, seq, text, messages, first_ts, first_sender, first_rcpt FROM templates
             WHERE cluster IS NULL AND clusterable = 1 ORDER BY seq DESC LIMIT ?1",
        )?;
        snap.templates = st
            .query_map([(singleton_window * 2) as i64], |r| {
                Ok(TemplateRow {
                    key: r.get::<_, i64>(0)? as u64,
                    seq: r.get::<_, i64>(1)? as u32,
                    text: r.get(2)?,
                    cluster: None,
                    messages: r.get::<_, i64>(3)? as u64,
                    first_ts: r.get(4)?,
                    first_sender: r.get(5)?,
                    first_rcpt: r.get::<_, Option<i64>>(6)?.map(|v| v as u64),
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
            })?
            .collect::<Result<_, _>>()?;
        snap.clusters = self.cluster_rows()?;
        snap.messages = crate::segments::all(&self.conn)?.iter().map(|s| s.rows).sum();
        Ok(snap)
    }

    fn template_campaign(&self, key: u64) -> Result<Option<(Option<String>, bool)>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT c.id, t.clusterable FROM templates t LEFT JOIN clusters c ON c.seq = t.cluster WHERE t.key = ?1",
            )?
            .query_row([key as i64], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    fn commit(&mut self, messages: &[NewMessage<'_>], delta: &Delta) -> Result<(), StoreError> {
        self.recover_log()?;
        // Messages first, synced; then the metadata that refers to them,
        // with how far their segment is committed, in one transaction.
        let t = std::time::Instant::now();
        let appended = if messages.is_empty() { None } else { Some(self.log.append(messages, self.next_segment)?) };
        self.times.log += t.elapsed();
        let t = std::time::Instant::now();
        let current = appended.as_ref().map(|a| a.segment.id);
        if let Some(id) = current {
            self.next_segment = self.next_segment.max(id + 1);
        }
        let result = self.commit_meta(appended.as_ref(), current, delta);
        self.staged_cursor = None;
        self.staged_facts = BatchFacts::default();
        self.times.metadata += t.elapsed();
        if result.is_err() {
            // The segment's tail is not committed: start a new one, and
            // let the next writer cut this one back.
            self.log.abort();
            self.indexed.clear();
            self.pairs.clear();
        }
        result
    }

    fn campaigns(&self, q: &CampaignQuery) -> Result<Vec<CampaignSummary>, StoreError> {
        let limit = q.limit.map_or(-1, |l| l as i64);
        let sql = format!("SELECT seq FROM clusters c {CAMPAIGN_FILTER} ORDER BY messages DESC, id LIMIT ?4 OFFSET ?5");
        let mut st = self.conn.prepare_cached(&sql)?;
        let seqs: Vec<i64> = st
            .query_map(params![q.min_messages as i64, q.last_seen_since, q.category, limit, q.offset as i64], |r| {
                r.get(0)
            })?
            .collect::<Result<_, _>>()?;
        seqs.into_iter().map(|s| self.summary(s, q.max_senders)).collect()
    }

    fn count_campaigns(&self, q: &CampaignQuery) -> Result<u64, StoreError> {
        let sql = format!("SELECT COUNT(*) FROM clusters c {CAMPAIGN_FILTER}");
        let n: i64 = self
            .conn
            .prepare_cached(&sql)?
            .query_row(params![q.min_messages as i64, q.last_seen_since, q.category], |r| r.get(0))?;
        Ok(n as u64)
    }

    fn resolve_campaign(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.resolve(id)?.map(|(_, id)| id))
    }

    fn campaign(&self, id: &str, samples: usize) -> Result<Option<CampaignDetail>, StoreError> {
        let Some((seq, _)) = self.resolve(id)? else { return Ok(None) };
        let summary = self.summary(seq, None)?;
        let mut st = self.conn.prepare_cached(
            "SELECT sender, messages, first_ts, last_ts FROM cluster_senders WHERE cluster = ?1 ORDER BY messages DESC, sender",
        )?;
        let sender_stats = st
            .query_map([seq], |r| {
                Ok(SenderView {
                    sender: r.get(0)?,
                    messages: r.get::<_, i64>(1)? as u64,
                    first_seen: r.get(2)?,
                    last_seen: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let links = self.links_of(seq)?;
        let mut st = self.conn.prepare_cached(
            "SELECT text, messages, optout, sender_id, findings, key FROM templates WHERE cluster = ?1 ORDER BY messages DESC, seq LIMIT 50",
        )?;
        let variants: Vec<VariantView> = st
            .query_map([seq], |r| {
                let f: Option<String> = r.get(4)?;
                let f: Vec<textwatch_engine::Finding> =
                    f.and_then(|f| serde_json::from_str(&f).ok()).unwrap_or_default();
                let id = format!("{:016x}", r.get::<_, i64>(5)? as u64);
                Ok(VariantView {
                    joined: links.iter().find(|l| l.variant == id).cloned(),
                    id,
                    template: r.get(0)?,
                    messages: r.get::<_, i64>(1)? as u64,
                    optout: r.get(2)?,
                    sender_id: r.get(3)?,
                    findings: f.into_iter().map(|f| f.rule).collect(),
                })
            })?
            .collect::<Result<_, _>>()?;
        let links: Vec<LinkView> = links.into_iter().filter(|l| l.kind != "near-duplicate").collect();
        let absorbed: Vec<String> = self
            .conn
            .prepare_cached("SELECT id FROM clusters WHERE merged_into = ?1 ORDER BY seq")?
            .query_map([seq], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut st =
            self.conn.prepare_cached("SELECT minute, count FROM cluster_minutes WHERE cluster = ?1 ORDER BY minute")?;
        let timeline = st
            .query_map([seq], |r| {
                Ok(MinuteView { minute: r.get::<_, i64>(0)? * 60_000, messages: r.get::<_, i64>(1)? as u64 })
            })?
            .collect::<Result<_, _>>()?;
        let samples = self.samples(seq, &summary.id, samples)?;
        Ok(Some(CampaignDetail { summary, sender_stats, variants, links, absorbed, timeline, samples }))
    }

    fn messages(&self, campaign: Option<&str>, f: &mut dyn FnMut(MessageView) -> bool) -> Result<(), StoreError> {
        use crate::segments::{message_view, ALL};
        if let Some(id) = campaign {
            let Some((seq, cid)) = self.resolve(id)? else { return Ok(()) };
            return crate::segments::for_campaign(&self.conn, &self.log, seq, &ALL, &mut |rows, i, text| {
                f(message_view(rows, i, text, Some(&cid)))
            });
        }
        let mut st = self.conn.prepare_cached(
            "SELECT t.text, c.id FROM templates t LEFT JOIN clusters c ON c.seq = t.cluster WHERE t.key = ?1",
        )?;
        let segs = crate::segments::all(&self.conn)?;
        crate::reads::every_message(
            &self.log,
            &segs,
            &mut |key| Ok(st.query_row([key as i64], |r| Ok((r.get(0)?, r.get(1)?))).optional()?.unwrap_or_default()),
            f,
        )
    }

    fn replace_number_source(&mut self, source: &NumberSource, rows: &[PrefixRow]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM number_prefixes WHERE source = ?1", [&source.key])?;
        tx.execute("DELETE FROM number_sources WHERE key = ?1", [&source.key])?;
        tx.execute(
            "INSERT INTO number_sources (key, kind, file, file_date, rows, imported_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![source.key, source.kind, source.file, source.file_date, rows.len() as i64, source.imported_at],
        )?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO number_prefixes (source, prefix, kind, name, origin, date, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for r in rows {
                st.execute(params![source.key, r.prefix, r.kind.as_str(), r.name, r.source, r.date, r.detail])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn number_sources(&self) -> Result<Vec<NumberSource>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT key, kind, file, file_date, rows, imported_at FROM number_sources ORDER BY key")?;
        let rows = st
            .query_map([], |r| {
                Ok(NumberSource {
                    key: r.get(0)?,
                    kind: r.get(1)?,
                    file: r.get(2)?,
                    file_date: r.get(3)?,
                    rows: r.get::<_, i64>(4)? as u64,
                    imported_at: r.get(5)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn number_prefixes(&self, f: &mut dyn FnMut(PrefixRow)) -> Result<(), StoreError> {
        let mut st =
            self.conn.prepare("SELECT prefix, kind, name, origin, date, detail FROM number_prefixes ORDER BY rowid")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let kind: String = r.get(1)?;
            let Some(kind) = SourceKind::parse(&kind) else { continue };
            f(PrefixRow {
                prefix: r.get(0)?,
                kind,
                name: r.get(2)?,
                source: r.get(3)?,
                date: r.get(4)?,
                detail: r.get(5)?,
            });
        }
        Ok(())
    }

    fn sender_activity(&self, sender: &str) -> Result<SenderActivity, StoreError> {
        let segs = crate::segments::all(&self.conn)?;
        let (messages, first, last) = crate::reads::sender_history(&self.log, &segs, sender)?;
        let mut st = self.conn.prepare_cached(
            "SELECT c.id, s.messages, s.first_ts, s.last_ts FROM cluster_senders s JOIN clusters c ON c.seq = s.cluster
             WHERE s.sender = ?1 ORDER BY s.messages DESC, c.id",
        )?;
        let campaigns = st
            .query_map([sender], |r| {
                Ok(SenderCampaign {
                    campaign: r.get(0)?,
                    messages: r.get::<_, i64>(1)? as u64,
                    first_seen: r.get(2)?,
                    last_seen: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(SenderActivity { messages, first_seen: first, last_seen: last, campaigns })
    }

    fn record_alert(&mut self, campaign: &str, level: &str, fired_at: i64, body: &str) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO alerts (campaign, level, fired_at, body) VALUES (?1, ?2, ?3, ?4)",
            params![campaign, level, fired_at, body],
        )?;
        Ok(n == 1)
    }

    fn create_token(
        &mut self,
        hash: &str,
        scopes: &str,
        name: Option<&str>,
        created_at: i64,
    ) -> Result<i64, StoreError> {
        self.conn.execute(
            "INSERT INTO tokens (hash, scopes, name, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![hash, scopes, name, created_at],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    fn token_scopes(&self, hash: &str) -> Result<Option<(i64, String)>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT id, scopes FROM tokens WHERE hash = ?1 AND revoked = 0")?
            .query_row([hash], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let mut st =
            self.conn.prepare_cached("SELECT id, scopes, name, created_at, revoked FROM tokens ORDER BY id")?;
        let rows = st
            .query_map([], |r| {
                Ok(TokenInfo {
                    id: r.get(0)?,
                    scopes: r.get(1)?,
                    name: r.get(2)?,
                    created_at: r.get(3)?,
                    revoked: r.get(4)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn revoke_token(&mut self, id: i64) -> Result<bool, StoreError> {
        Ok(self.conn.execute("UPDATE tokens SET revoked = 1 WHERE id = ?1", [id])? == 1)
    }

    fn block_campaign(&mut self, campaign: &str, at: i64, by: &str, reason: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO campaign_blocks (campaign, blocked_at, by, reason) VALUES (?1, ?2, ?3, ?4)",
            params![campaign, at, by, reason],
        )?;
        Ok(())
    }

    fn policy_allows(&self) -> Result<Vec<crate::appeals::PolicyAllow>, StoreError> {
        crate::appeals::allows(&self.conn)
    }

    fn blocked_campaigns(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut st = self.conn.prepare_cached("SELECT campaign, reason FROM campaign_blocks ORDER BY campaign")?;
        let rows: Vec<(String, String)> =
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
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

    fn has_alert(&self, campaign: &str, level: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM alerts WHERE campaign = ?1 AND level = ?2")?
            .query_row(params![campaign, level], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn alerts(&self) -> Result<Vec<String>, StoreError> {
        let mut st = self.conn.prepare_cached("SELECT body FROM alerts ORDER BY fired_at, campaign, level")?;
        let rows = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn campaign_fingerprints(&self, id: &str) -> Result<Vec<String>, StoreError> {
        let Some((seq, _)) = self.resolve(id)? else { return Ok(Vec::new()) };
        let mut st = self.conn.prepare_cached("SELECT key FROM templates WHERE cluster = ?1")?;
        let mut keys: Vec<u64> =
            st.query_map([seq], |r| r.get::<_, i64>(0))?.map(|k| k.map(|k| k as u64)).collect::<Result<_, _>>()?;
        keys.sort_unstable();
        Ok(keys.into_iter().map(|k| format!("{k:016x}")).collect())
    }

    fn campaign_templates(&self, id: &str) -> Result<Vec<CampaignTemplate>, StoreError> {
        let Some((seq, _)) = self.resolve(id)? else { return Ok(Vec::new()) };
        let mut st = self
            .conn
            .prepare_cached("SELECT key, findings, category FROM templates WHERE cluster = ?1 ORDER BY seq")?;
        let rows = st
            .query_map([seq], |r| {
                let f: Option<String> = r.get(1)?;
                Ok(CampaignTemplate {
                    key: r.get::<_, i64>(0)? as u64,
                    findings: f.and_then(|f| serde_json::from_str(&f).ok()).unwrap_or_default(),
                    category: r.get(2)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn campaign_stream(&self, id: &str, f: &mut dyn FnMut(i64, u64, &str) -> bool) -> Result<(), StoreError> {
        let Some((seq, _)) = self.resolve(id)? else { return Ok(()) };
        let templates = crate::segments::templates_of(&self.conn, seq)?;
        let segs = crate::segments::of_cluster(&self.conn, seq)?;
        crate::reads::in_time_order(&self.log, segs, &templates, f)
    }

    fn segments(&self) -> Result<Vec<crate::log::Segment>, StoreError> {
        crate::segments::all(&self.conn)
    }
    fn stats(&self) -> Result<StoreStats, StoreError> {
        let q =
            |sql: &str| -> Result<u64, StoreError> { Ok(self.conn.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64) };
        Ok(StoreStats {
            messages: q("SELECT COALESCE(SUM(rows), 0) FROM segments")?,
            templates: q("SELECT COUNT(*) FROM templates")?,
            campaigns: q("SELECT COUNT(*) FROM clusters WHERE merged_into IS NULL")?,
            messages_in_campaigns: q("SELECT COALESCE(SUM(messages), 0) FROM clusters WHERE merged_into IS NULL")?,
        })
    }

    fn appeals(&self) -> Result<Vec<crate::appeals::Appeal>, StoreError> {
        crate::appeals::list(&self.conn)
    }

    fn newest_message_ts(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.conn.query_row("SELECT MAX(max_ts) FROM segments", [], |r| r.get(0))?)
    }

    fn audit_log(&self) -> Result<Vec<crate::appeals::AuditEntry>, StoreError> {
        crate::appeals::audit_log(&self.conn)
    }

    fn sent_reports(&self) -> Result<Vec<crate::reports::SentReport>, StoreError> {
        crate::reports::all(&self.conn)
    }

    fn sent_report(&self, id: i64) -> Result<Option<crate::reports::SentReport>, StoreError> {
        crate::reports::one(&self.conn, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use textwatch_engine::{Analyzer, Engine, EngineConfig, Message, Outcome, Scratch};

    fn ingest(store: &mut SqliteStore, engine: &mut Engine, bodies: &[(&str, &str, &str)]) {
        let an = Analyzer::keyed(store.secret(), store.recipient_hash(), engine.config().min_template_len);
        let mut s = Scratch::default();
        let analyzed: Vec<_> = bodies
            .iter()
            .enumerate()
            .map(|(i, (id, from, body))| {
                an.analyze(
                    Message {
                        id: Some((*id).into()),
                        ts_ms: 1_604_502_131_000 + i as i64 * 61_000,
                        from: (*from).into(),
                        to: Some(format!("+1267555{i:04}")),
                        body: (*body).into(),
                        ..Default::default()
                    },
                    &mut s,
                )
            })
            .collect();
        let mut new = Vec::new();
        for a in &analyzed {
            if let Outcome::Accepted { .. } = engine.assign(a, None) {
                new.push(NewMessage { msg: a, origin: "t:1" });
            }
        }
        let delta = engine.take_delta(|k| analyzed.iter().find(|a| a.template_key == k).map(|a| a.template.as_str()));
        store.commit(&new, &delta).unwrap();
    }

    const STEAL: &str =
        "Radical Liberals are trying to STEAL this election! Patriots gather at the Convention Center 3pm";

    #[test]
    fn a_database_from_before_campaign_links_opens_and_gains_its_columns_and_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(SqliteStore::open(&path).unwrap());
        {
            // What a database made before campaign links looked like.
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "DROP INDEX clusters_merged_into;
                 ALTER TABLE clusters DROP COLUMN merged_into;
                 ALTER TABLE clusters DROP COLUMN actor;
                 ALTER TABLE clusters DROP COLUMN meaning;
                 ALTER TABLE clusters DROP COLUMN infra;",
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let has_index: bool = store
            .conn
            .query_row("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'clusters_merged_into')", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(has_index);
        assert_eq!(store.stats().unwrap().campaigns, 0);
    }

    #[test]
    fn campaigns_round_trip_and_survive_restore() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut store = SqliteStore::open(&path).unwrap();
        let mut engine = Engine::new(EngineConfig::default());
        ingest(
            &mut store,
            &mut engine,
            &[("a", "+12155550101", STEAL), ("b", "+12155550102", "hey are we still on for dinner")],
        );
        assert_eq!(store.stats().unwrap().campaigns, 0);
        drop(store);

        let mut store = SqliteStore::open(&path).unwrap();
        let snap = store.load_snapshot(1000, usize::MAX).unwrap();
        assert_eq!(snap.seen.len(), 2);
        let mut engine = Engine::restore(EngineConfig::default(), snap);
        ingest(
            &mut store,
            &mut engine,
            &[("a", "+12155550101", STEAL), ("c", "+12155550103", &STEAL.replace("Radical", "Radikal"))],
        );
        let stats = store.stats().unwrap();
        assert_eq!(stats.messages, 3, "the rescanned message a is not stored twice");
        assert_eq!(stats.campaigns, 1);
        let list = store.campaigns(&CampaignQuery::default()).unwrap();
        assert_eq!(list[0].messages, 2);
        assert_eq!(list[0].senders, vec!["+12155550101", "+12155550103"]);
        assert_eq!(list[0].recipients, 2);
        let d = store.campaign(&list[0].id[..6], 10).unwrap().unwrap();
        assert_eq!(d.samples.len(), 2);
        assert_eq!(d.samples[0].id, "a");
        assert_eq!(d.timeline.len(), 2);
        assert_eq!(d.variants.len(), 2);
        let mut ids = Vec::new();
        store
            .messages(Some(&list[0].id), &mut |m| {
                ids.push(m.id);
                true
            })
            .unwrap();
        assert_eq!(ids, vec!["a", "c"]);

        // The light snapshot `check` uses: campaigns and recent singletons
        // only, and exact templates straight from the store.
        ingest(
            &mut store,
            &mut engine,
            &[("d", "+12155550104", "a singleton text long enough to be searched later on")],
        );
        let light = store.load_peek_snapshot(1000).unwrap();
        assert_eq!(light.clusters.len(), 1);
        assert!(light.seen.is_empty() && light.senders.is_empty());
        assert!(light.templates.iter().all(|t| t.cluster.is_none() && !t.text.is_empty()));
        let a = Analyzer::keyed(store.secret(), store.recipient_hash(), 20).analyze(
            Message { id: None, ts_ms: 0, from: "+1".into(), to: None, body: STEAL.into(), source: None, meta: None },
            &mut Scratch::default(),
        );
        assert_eq!(store.template_campaign(a.template_key).unwrap(), Some((Some(list[0].id.clone()), true)));
        assert_eq!(store.template_campaign(12345).unwrap(), None);
    }

    #[test]
    fn a_category_a_rule_settled_outweighs_a_larger_template() {
        let mut store = SqliteStore::in_memory().unwrap();
        let mut engine = Engine::new(EngineConfig::default());
        engine.set_classifier(textwatch_engine::categorize::Categorizer {
            top: textwatch_engine::classify::Model::from_bytes(include_bytes!("../../../models/category.twm")).unwrap(),
            subs: Vec::new(),
        });
        // One text, its link rotated: on an ordinary domain (smishing-link
        // high, the model names the category) and behind a shortener
        // (critical: scam, settled by the rule).
        let text = "Your card was charged $899.99 for an iPhone 15. If this wasn't you, cancel the order at";
        let plain = format!("{text} orders-help.com/c1");
        let short = format!("{text} bit.ly/c1x");
        ingest(
            &mut store,
            &mut engine,
            &[
                ("a", "+12155550101", &plain),
                ("b", "+12155550102", &plain),
                ("c", "+12155550103", &plain),
                ("d", "+12155550104", &short),
                ("e", "+12155550105", &short),
            ],
        );
        let rows: Vec<(i64, Option<String>, Option<String>)> = store
            .conn
            .prepare("SELECT messages, category, category_rule FROM templates WHERE cluster IS NOT NULL ORDER BY messages DESC")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), 2, "one campaign of two templates: {rows:?}");
        assert_eq!(rows[0].0, 3);
        assert_eq!(rows[0].2, None, "the model categorized the larger one");
        assert_eq!((rows[1].1.as_deref(), rows[1].2.as_deref()), (Some("scam"), Some("smishing-link")));
        // Whatever the model said of the larger template, the campaign is
        // what the rule settled.
        store.conn.execute("UPDATE templates SET category = 'commercial' WHERE category_rule IS NULL", []).unwrap();
        let list = store.campaigns(&CampaignQuery::default()).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].category.as_deref(), Some("scam"));
        assert_eq!(list[0].category_rule.as_deref(), Some("smishing-link"), "and says which rule settled it");
        store.conn.execute("UPDATE templates SET category_rule = NULL", []).unwrap();
        let list = store.campaigns(&CampaignQuery::default()).unwrap();
        assert_eq!(list[0].category.as_deref(), Some("commercial"), "else the largest template's");
        assert_eq!(list[0].category_rule, None);
    }

    #[test]
    fn recipients_are_never_stored_in_clear() {
        let mut store = SqliteStore::in_memory().unwrap();
        let mut engine = Engine::new(EngineConfig::default());
        ingest(&mut store, &mut engine, &[("a", "+12155550101", STEAL)]);
        let mut seen = 0;
        for seg in store.segments().unwrap() {
            store
                .log
                .read(&seg, &crate::segments::ALL, &mut |rows| {
                    for i in 0..rows.len() {
                        let r = rows.rcpt(i).expect("a recipient hash");
                        assert_eq!(r.len(), 16);
                        assert!(!String::from_utf8_lossy(r).contains("2675550000"));
                        assert!(!rows.body(i).contains("2675550000") && !rows.sender(i).contains("2675550000"));
                        seen += 1;
                    }
                    true
                })
                .unwrap();
        }
        assert_eq!(seen, 1);
    }

    #[test]
    fn a_campaign_streams_in_time_order_across_overlapping_segments() {
        let mut store = SqliteStore::in_memory().unwrap().with_segment_rows(1);
        let mut engine = Engine::new(EngineConfig::default());
        // Three batches (three segments) over the same minutes.
        for batch in 0..3 {
            let rows: Vec<(String, String)> =
                (0..3).map(|i| (format!("b{batch}m{i}"), format!("+121555501{batch}{i}"))).collect();
            let refs: Vec<(&str, &str, &str)> =
                rows.iter().map(|(id, from)| (id.as_str(), from.as_str(), STEAL)).collect();
            ingest(&mut store, &mut engine, &refs);
        }
        assert_eq!(store.segments().unwrap().len(), 3);
        let id = store.campaigns(&CampaignQuery::default()).unwrap()[0].id.clone();
        let mut seen = Vec::new();
        store
            .campaign_stream(&id, &mut |ts, _, sender| {
                seen.push((ts, sender.to_string()));
                true
            })
            .unwrap();
        assert_eq!(seen.len(), 9);
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{seen:?}");
        // Equal times keep stored order: batch 0's message first.
        assert_eq!(seen[0].1, "+12155550100");
        assert_eq!(seen[1].1, "+12155550110");
        // A replay that stops early stops.
        let mut n = 0;
        store
            .campaign_stream(&id, &mut |_, _, _| {
                n += 1;
                n < 2
            })
            .unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn missing_database_tells_what_to_do() {
        let e = SqliteStore::open_existing(Path::new("/nonexistent/x.db")).unwrap_err();
        assert!(e.to_string().contains("textwatch scan"), "{e}");
    }
}
