//! Stores: where messages, templates and campaigns are kept.
//!
//! [`Store`] is the one interface the pipeline and the commands use;
//! [`sqlite::SqliteStore`] is the embedded default (one file, WAL);
//! [`pg::PgStore`] keeps the same in PostgreSQL, for several machines.
//!
//! What a store promises:
//! - [`Store::commit`] appends a batch's messages to the message log
//!   ([`log`]), syncs them, then writes the engine's
//!   [`Delta`](textwatch_engine::Delta) and how far the log is committed in
//!   one transaction: after a crash the database holds whole batches only,
//!   and the engine restored from [`Store::load_snapshot`] continues exactly
//!   where the last whole batch left off.
//! - Recipient numbers arrive already keyed-hashed; a store never sees them
//!   in clear.

pub mod appeals;
mod blobs;
mod dedup;
pub mod editing;
pub mod edits;
mod findings;
pub mod keys;
pub mod log;
pub mod optouts;
pub mod pg;
mod pg_records;
mod pg_tls;
mod reads;
pub mod reporters;
pub mod reports;
pub mod retention;
mod segments;
pub mod sqlite;
pub mod time;
pub mod views;

use textwatch_engine::{Analyzed, Delta, Snapshot};

pub use views::{CampaignDetail, CampaignQuery, CampaignSummary, LinkView, MessageView, ProviderGroup, StoreStats};

/// Store errors.
/// Matching campaign ids an ambiguous-prefix error lists.
pub const AMBIGUOUS_SHOWN: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] postgres::Error),
    /// The database could not be reached (which, and why).
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    #[error("{0}")]
    Schema(String),
    #[error("no database at {0}: run `textwatch scan FILE` first, or pass --db PATH")]
    Missing(String),
    #[error("campaign id {prefix:?} matches {count} campaigns ({}{}); give more of it", .candidates.join(", "), if *.count > .candidates.len() { ", ..." } else { "" })]
    Ambiguous {
        prefix: String,
        count: usize,
        /// The first matching ids, in order (at most [`AMBIGUOUS_SHOWN`]).
        candidates: Vec<String>,
    },
    #[error("no campaign {0:?}; `textwatch campaigns` lists them")]
    NotFound(String),
    #[error("{0}")]
    Edit(String),
    #[error("message log: {0}")]
    Log(String),
    /// Another process holds the writer's lock.
    #[error("another textwatch process is writing to {0} (scan, serve or a worker assigning); wait for it or stop it")]
    Locked(String),
    #[error("{0} keeps its messages in SQLite, as textwatch before the message log did: run `textwatch --db {0} migrate` once to move them into segments")]
    NeedsMigration(String),
    /// Something other than a campaign is not there (an appeal, a report).
    #[error("{0}")]
    Absent(String),
    /// The change conflicts with what is stored (an appeal decided twice).
    #[error("{0}")]
    Conflict(String),
}

impl StoreError {
    /// The database could not be reached or its connection was lost (a
    /// restart, a failover): a retry later may succeed.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Connect(..) => true,
            // Not an answer of the server (an error it sent has a code):
            // the connection itself failed.
            StoreError::Postgres(e) => e.is_closed() || e.as_db_error().is_none(),
            _ => self.is_busy(),
        }
    }

    /// SQLite stayed busy or locked past the busy timeout: another
    /// connection holds the database, and a retry may succeed.
    pub fn is_busy(&self) -> bool {
        matches!(self, StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
    }
}

/// What a prune did ([`WriteStore::prune`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Pruned {
    pub segments: u64,
    pub messages: u64,
    pub bytes: u64,
    /// Templates in no campaign whose messages were all in pruned segments.
    pub templates: u64,
    /// Campaigns that lost messages (their counts and samples are kept).
    pub campaigns_touched: u64,
}

/// Evidence samples kept per campaign when its messages are pruned.
pub const KEPT_SAMPLES: usize = 20;

/// Facts about a batch stored with it ([`WriteStore::stage_facts`]).
#[derive(Debug, Default)]
pub struct BatchFacts {
    /// (campaign id, reporter's keyed hash, time of the report).
    pub reporters: Vec<(String, [u8; 16], i64)>,
    pub ignored: Vec<optouts::IgnoredOptOut>,
}

/// A store opened to write, beyond [`Store`]: what a process that
/// assigns needs (scan's writer, the server's ingest worker, the cluster's
/// assigner: the writer's lock, batch facts and a consumer's cursor
/// committed with the batch, opt-out history, the recipient key's grace
/// period, lookups of old messages), and the records people add (7726
/// halves waiting for their pair, appeals, sent takedown reports).
pub trait WriteStore: Store + Send {
    /// Takes the writer's lock (one writing process per database) and
    /// makes the log agree with what was committed.
    fn lock_for_writing(&mut self) -> Result<(), StoreError>;
    /// Seals the open segment (a writer that stops calls it).
    fn close_segment(&mut self) -> Result<(), StoreError>;
    /// Records `value` as the cursor `name`, with `carry` (positions below
    /// it not yet committed), in the next commit's transaction.
    fn stage_cursor(&mut self, name: &str, value: i64, carry: Vec<u64>);
    /// A cursor recorded by a commit, with its carry.
    fn cursor(&self, name: &str) -> Result<Option<(i64, Vec<u64>)>, StoreError>;
    /// Facts about the next commit's batch, written in its transaction.
    fn stage_facts(&mut self, facts: BatchFacts);
    /// Every change of opt-out state, oldest first.
    fn optout_changes(&self) -> Result<Vec<textwatch_engine::optout::Change>, StoreError>;
    /// Appends changes of opt-out state (durable when this returns).
    fn record_optout_changes(&mut self, changes: &[textwatch_engine::optout::Change]) -> Result<(), StoreError>;
    /// The previous recipient key while its grace period lasts at `now_ms`.
    fn previous_secret(&self, now_ms: i64) -> Result<Option<Vec<u8>>, StoreError>;
    /// Of `keys` (identity key, message time in ms), those already stored
    /// (messages older than the identity keys the engine holds).
    fn stored_keys(&mut self, keys: &[(u64, i64)]) -> Result<std::collections::HashSet<u64>, StoreError>;
    /// Keeps a reporter's forwarded text (the first half of a 7726 report)
    /// until its number comes, replacing an earlier one.
    fn put_pending_report(&mut self, reporter: &[u8; 16], ts: i64, text: &str) -> Result<(), StoreError>;
    /// Puts back a forwarded text taken for a report that was not stored,
    /// unless a newer one from the same reporter waits now.
    fn put_back_pending_report(&mut self, reporter: &[u8; 16], ts: i64, text: &str) -> Result<(), StoreError>;
    /// Takes the reporter's waiting forwarded text, if it came within
    /// `window_ms` before `ts`.
    fn take_pending_report(
        &mut self,
        reporter: &[u8; 16],
        ts: i64,
        window_ms: i64,
    ) -> Result<Option<(i64, String)>, StoreError>;
    /// Opens an appeal of a block (logged); returns its id.
    fn open_appeal(
        &mut self,
        at: i64,
        kind: appeals::SubjectKind,
        subject: &str,
        contact: &str,
        reason: &str,
        actor: &str,
    ) -> Result<i64, StoreError>;
    /// Decides an open appeal: uphold, or overturn (adding an allow rule,
    /// a new policy version); logged either way, in one transaction.
    fn decide_appeal(
        &mut self,
        id: i64,
        overturn: bool,
        by: &str,
        reason: &str,
        at: i64,
    ) -> Result<appeals::Decided, StoreError>;
    /// Records a takedown report as sent; returns its id.
    fn record_report(&mut self, r: &reports::NewReport<'_>) -> Result<i64, StoreError>;
    /// Records the provider's answer to a report; false if there is no such
    /// report.
    fn answer_report(&mut self, id: i64, text: &str, at: i64) -> Result<bool, StoreError>;
    /// When the recipient key was last rotated, and until when the previous
    /// one is matched (ms), as recorded.
    fn key_rotation(&self) -> Result<(Option<i64>, Option<i64>), StoreError>;
    /// The current recipient key's fingerprint (never the key) and the
    /// rotation state at `now_ms`.
    fn key_info(&self, now_ms: i64) -> Result<keys::KeyInfo, StoreError> {
        let (rotated_at, until) = self.key_rotation()?;
        Ok(keys::KeyInfo::of(self.secret(), self.recipient_hash(), rotated_at, self.previous_secret(now_ms)?, until))
    }
    /// Makes a new recipient key the current one and keeps the old one
    /// until `now_ms + grace_ms`; a previous key from an earlier rotation
    /// goes. Take the writer's lock first: a running writer keeps the key
    /// it started with.
    fn rotate_secret(&mut self, now_ms: i64, grace_ms: i64) -> Result<keys::KeyInfo, StoreError>;
    /// Deletes a previous key whose grace period is over at `now_ms` (it
    /// can no longer match anything); whether one was deleted.
    fn forget_expired_secret(&mut self, now_ms: i64) -> Result<bool, StoreError>;
    /// Drops every segment whose newest message is older than `before`
    /// (ms), and the templates in no campaign that only those segments
    /// used. Campaigns keep their counts, senders and timelines; each that
    /// loses messages first keeps its [`KEPT_SAMPLES`] earliest as
    /// evidence. Takes the writer's lock.
    fn prune(&mut self, before: i64) -> Result<Pruned, StoreError>;
    /// Messages in the message log, and the bytes they take.
    fn log_usage(&self) -> Result<(u64, u64), StoreError>;
    /// Splits `variants` (template keys) and every variant that joined the
    /// campaign through them off campaign `id` into a campaign of their
    /// own, kept apart from it from now on. The variant that formed the
    /// campaign cannot be split off (split the others instead). Takes the
    /// writer's lock.
    fn split_campaign(
        &mut self,
        id: &str,
        variants: &[u64],
        edit: &editing::Edit<'_>,
        meaning: Option<&textwatch_engine::meaning::MeaningModel>,
    ) -> Result<editing::EditOutcome, StoreError>;
    /// Merges campaigns `a` and `b`: the older keeps its id, the other's
    /// resolves to it. Undoes an earlier split between them. Takes the
    /// writer's lock.
    fn merge_campaigns(
        &mut self,
        a: &str,
        b: &str,
        edit: &editing::Edit<'_>,
        meaning: Option<&textwatch_engine::meaning::MeaningModel>,
    ) -> Result<editing::EditOutcome, StoreError>;
}

/// Where a database is: an SQLite file (the embedded default) or a
/// PostgreSQL connection string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Location {
    /// Opens the database to write (creating its tables if new).
    pub fn open_writer(&self) -> Result<Box<dyn WriteStore>, StoreError> {
        Ok(match self {
            Location::Sqlite(p) => Box::new(sqlite::SqliteStore::open(p)?),
            Location::Postgres(url) => Box::new(pg::PgStore::connect(url)?),
        })
    }

    /// Opens a database that must exist (an SQLite file that is missing is
    /// an error saying what to do; one that may not be written here opens
    /// read-only).
    pub fn open_existing(&self) -> Result<Box<dyn WriteStore>, StoreError> {
        Ok(match self {
            Location::Sqlite(p) => Box::new(sqlite::SqliteStore::open_existing(p)?),
            Location::Postgres(url) => Box::new(pg::PgStore::connect(url)?),
        })
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
            Location::Postgres(url) => f.write_str(&pg::describe(url)),
        }
    }
}

/// A message to store, with where it came from (`file:line`).
#[derive(Clone, Copy, Debug)]
pub struct NewMessage<'a> {
    pub msg: &'a Analyzed,
    pub origin: &'a str,
}

/// One imported number data source.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NumberSource {
    /// What a re-import replaces: `nanpa-co`, `nanpa-blocks`, or
    /// `inventory:FILE`.
    pub key: String,
    pub kind: String,
    pub file: String,
    pub file_date: Option<String>,
    pub rows: u64,
    /// Milliseconds since the epoch.
    pub imported_at: i64,
}

/// A sender's activity in one campaign.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SenderCampaign {
    pub campaign: String,
    pub messages: u64,
    #[serde(with = "time::rfc3339")]
    pub first_seen: i64,
    #[serde(with = "time::rfc3339")]
    pub last_seen: i64,
}

/// What one sender sent.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SenderActivity {
    pub messages: u64,
    #[serde(with = "time::rfc3339_opt")]
    pub first_seen: Option<i64>,
    #[serde(with = "time::rfc3339_opt")]
    pub last_seen: Option<i64>,
    pub campaigns: Vec<SenderCampaign>,
}

/// An API token as stored: its id, scopes and name (the token itself is
/// kept only as a SHA-256 hash).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TokenInfo {
    pub id: i64,
    pub scopes: String,
    pub name: Option<String>,
    pub created_at: i64,
    pub revoked: bool,
}

/// One template of a campaign, with what per-template analysis found.
#[derive(Clone, Debug, PartialEq)]
pub struct CampaignTemplate {
    pub key: u64,
    pub findings: Vec<textwatch_engine::Finding>,
    pub category: Option<String>,
}

/// The persistence interface.
pub trait Store {
    /// The per-database secret that keys recipient hashes (created with
    /// the database).
    fn secret(&self) -> &[u8];
    /// How this database hashes recipients (with [`Store::secret`]).
    fn recipient_hash(&self) -> textwatch_engine::RecipientHash;
    /// Everything the engine needs to continue: templates (with text for
    /// the last `singleton_window * 2` clusterable singletons), clusters,
    /// per-sender stats, recipient pairs, and the identity keys of the
    /// newest stored messages (about `dedup_keys`; see
    /// `textwatch_engine::seen`).
    fn load_snapshot(&mut self, singleton_window: usize, dedup_keys: usize) -> Result<Snapshot, StoreError>;
    /// Just enough for [`textwatch_engine::Engine::peek`] on templates the
    /// store does not know: every campaign with its representatives, and
    /// the newest `singleton_window * 2` clusterable singletons with text.
    /// Nothing per message: cheap at any size.
    fn load_peek_snapshot(&mut self, singleton_window: usize) -> Result<Snapshot, StoreError>;
    /// A stored template by key: its campaign id (if in one) and whether it
    /// is long enough to join campaigns.
    fn template_campaign(&self, key: u64) -> Result<Option<(Option<String>, bool)>, StoreError>;
    /// Writes new messages and the engine's delta atomically.
    fn commit(&mut self, messages: &[NewMessage<'_>], delta: &Delta) -> Result<(), StoreError>;
    /// Campaigns, largest first.
    fn campaigns(&self, q: &CampaignQuery) -> Result<Vec<CampaignSummary>, StoreError>;
    /// How many campaigns `q`'s filters select (its limit and offset aside).
    fn count_campaigns(&self, q: &CampaignQuery) -> Result<u64, StoreError>;
    /// The full campaign id for an id or unique prefix (`None` if no
    /// campaign matches; an error if several do).
    fn resolve_campaign(&self, id: &str) -> Result<Option<String>, StoreError>;
    /// One campaign by id or unique id prefix.
    fn campaign(&self, id: &str, samples: usize) -> Result<Option<CampaignDetail>, StoreError>;
    /// Messages in stored order, optionally of one campaign; `f` returns
    /// false to stop.
    fn messages(&self, campaign: Option<&str>, f: &mut dyn FnMut(MessageView) -> bool) -> Result<(), StoreError>;
    /// Replaces one number source's rows (a re-import of the same source
    /// replaces what it imported before), in one transaction.
    fn replace_number_source(
        &mut self,
        source: &NumberSource,
        rows: &[textwatch_numbers::PrefixRow],
    ) -> Result<(), StoreError>;
    /// Imported number sources.
    fn number_sources(&self) -> Result<Vec<NumberSource>, StoreError>;
    /// Every imported attribution row, in import order.
    fn number_prefixes(&self, f: &mut dyn FnMut(textwatch_numbers::PrefixRow)) -> Result<(), StoreError>;
    /// What a sender sent: message count, first and last time, campaigns.
    fn sender_activity(&self, sender: &str) -> Result<SenderActivity, StoreError>;
    /// Records an alert unless one was already recorded for this campaign
    /// and level; true when it is new (and should be sent).
    fn record_alert(&mut self, campaign: &str, level: &str, fired_at: i64, body: &str) -> Result<bool, StoreError>;
    /// Stores an API token's hash with its scopes; returns its id.
    fn create_token(
        &mut self,
        hash: &str,
        scopes: &str,
        name: Option<&str>,
        created_at: i64,
    ) -> Result<i64, StoreError>;
    /// The id and scopes of a live token, by hash.
    fn token_scopes(&self, hash: &str) -> Result<Option<(i64, String)>, StoreError>;
    /// Every token (never the secret, which is not stored).
    fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError>;
    /// Revokes a token; false when there is none with that id.
    fn revoke_token(&mut self, id: i64) -> Result<bool, StoreError>;
    /// Blocks a campaign by hand (an analyst's kill switch): the policy
    /// decision becomes `block` for the campaign whatever its rules say.
    fn block_campaign(&mut self, campaign: &str, at: i64, by: &str, reason: &str) -> Result<(), StoreError>;
    /// Campaigns blocked by hand, with the reason.
    fn blocked_campaigns(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// Allow rules added by overturned appeals, oldest (lowest policy
    /// version) first.
    fn policy_allows(&self) -> Result<Vec<appeals::PolicyAllow>, StoreError>;
    /// Whether an alert for this campaign and level was recorded.
    fn has_alert(&self, campaign: &str, level: &str) -> Result<bool, StoreError>;
    /// Every recorded alert (JSON bodies), oldest first.
    fn alerts(&self) -> Result<Vec<String>, StoreError>;
    /// The template fingerprints (16 hex digits, as `check` prints
    /// `template_key`) of a campaign, ascending.
    fn campaign_fingerprints(&self, id: &str) -> Result<Vec<String>, StoreError>;
    /// A campaign's templates: (key, findings, category).
    fn campaign_templates(&self, id: &str) -> Result<Vec<CampaignTemplate>, StoreError>;
    /// A campaign's messages in time order as (ts, template key, sender);
    /// `f` returns false to stop.
    fn campaign_stream(&self, id: &str, f: &mut dyn FnMut(i64, u64, &str) -> bool) -> Result<(), StoreError>;
    /// Totals.
    fn stats(&self) -> Result<StoreStats, StoreError>;
    /// Every segment of the message log, oldest first.
    fn segments(&self) -> Result<Vec<log::Segment>, StoreError>;
    /// The time of the newest stored message.
    fn newest_message_ts(&self) -> Result<Option<i64>, StoreError>;
    /// Every appeal, oldest first.
    fn appeals(&self) -> Result<Vec<appeals::Appeal>, StoreError>;
    /// The audit log, oldest first.
    fn audit_log(&self) -> Result<Vec<appeals::AuditEntry>, StoreError>;
    /// Every takedown report sent, oldest first.
    fn sent_reports(&self) -> Result<Vec<reports::SentReport>, StoreError>;
    /// One sent report.
    fn sent_report(&self, id: i64) -> Result<Option<reports::SentReport>, StoreError>;
}
