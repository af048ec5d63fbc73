//! The pipeline: read → analyze → assign → store → act.
//!
//! `textwatch scan` runs it over files ([`scan`]), `textwatch serve` over
//! HTTP batches ([`batch`]); both assign in the same order and commit the
//! same way, so the same messages give the same campaigns through either.
//! What happens after a commit (alerts, events) is the caller's, behind
//! [`batch::AfterCommit`]: the pipeline knows no sinks.
//!
//! ```text
//! sources ──▶ analyze (parallel) ──▶ assign (one engine, in (time, identity) order)
//!         ──▶ store (segment log + SQLite, one commit per batch) ──▶ AfterCommit
//! ```

pub mod batch;
pub mod scan;
pub mod setup;
pub mod spam_reports;

/// Pipeline errors.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Store(#[from] textwatch_store::StoreError),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("{0}")]
    Setup(String),
    /// A stage thread stopped unexpectedly.
    #[error("the {0} stopped; see the error above")]
    Stage(&'static str),
    /// What an [`batch::AfterCommit`] reported as fatal.
    #[error("{0}")]
    Act(String),
}
