//! Stores: where messages, templates and campaigns are kept.
//!
//! [`Store`] is the one interface the pipeline and the commands use;
//! [`sqlite::SqliteStore`] is the embedded default (one file, WAL). A
//! PostgreSQL store implements the same trait; nothing above it changes.
//!
//! What a store promises:
//! - [`Store::commit`] writes a batch's messages and the engine's
//!   [`Delta`](textwatch_engine::Delta) in one transaction: after a crash
//!   the database holds whole batches only, and the engine restored from
//!   [`Store::load_snapshot`] continues exactly where the last whole batch
//!   left off.
//! - Recipient numbers arrive already keyed-hashed; a store never sees them
//!   in clear.

pub mod sqlite;
pub mod time;
pub mod views;

use textwatch_engine::{Analyzed, Delta, Snapshot};

pub use views::{CampaignDetail, CampaignQuery, CampaignSummary, MessageView, StoreStats};

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Schema(String),
    #[error("no database at {0}: run `textwatch scan FILE` first, or pass --db PATH")]
    Missing(String),
    #[error("campaign id {0:?} matches {1} campaigns; give more of it")]
    Ambiguous(String, usize),
}

/// A message to store, with where it came from (`file:line`).
#[derive(Clone, Copy, Debug)]
pub struct NewMessage<'a> {
    pub msg: &'a Analyzed,
    pub origin: &'a str,
}

/// The persistence interface.
pub trait Store {
    /// The per-database secret that keys recipient hashes (created with
    /// the database).
    fn secret(&self) -> &[u8];
    /// Everything the engine needs to continue: templates (with text for
    /// the last `singleton_window * 2` clusterable singletons), clusters,
    /// per-sender stats, recipient pairs and seen message keys.
    fn load_snapshot(&mut self, singleton_window: usize) -> Result<Snapshot, StoreError>;
    /// Writes new messages and the engine's delta atomically.
    fn commit(&mut self, messages: &[NewMessage<'_>], delta: &Delta) -> Result<(), StoreError>;
    /// Campaigns, largest first.
    fn campaigns(&self, q: &CampaignQuery) -> Result<Vec<CampaignSummary>, StoreError>;
    /// The full campaign id for an id or unique prefix (`None` if no
    /// campaign matches; an error if several do).
    fn resolve_campaign(&self, id: &str) -> Result<Option<String>, StoreError>;
    /// One campaign by id or unique id prefix.
    fn campaign(&self, id: &str, samples: usize) -> Result<Option<CampaignDetail>, StoreError>;
    /// Messages in stored order, optionally of one campaign; `f` returns
    /// false to stop.
    fn messages(&self, campaign: Option<&str>, f: &mut dyn FnMut(MessageView) -> bool) -> Result<(), StoreError>;
    /// Totals.
    fn stats(&self) -> Result<StoreStats, StoreError>;
}
