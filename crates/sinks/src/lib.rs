//! What acts on campaigns once they are stored: enrichment (providers,
//! campaign-level findings, the policy's decision), the views the CLI and
//! the server show, takedown and intelligence reports (XARF, STIX, HTML,
//! Markdown), alerts and block lists. No argument parsing and no printing:
//! the `textwatch` binary and the server call these and present the result.

pub mod alerts;
pub mod blocklist;
pub mod enrich;
pub mod followup;
pub mod mail;
pub mod markup;
pub mod report;
pub mod views;

use textwatch_store::StoreError;

/// What can go wrong while enriching, reporting or alerting.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Bad input or configuration, with what to do about it.
    #[error("{0}")]
    Invalid(String),
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),
}

pub type Result<T> = std::result::Result<T, SinkError>;
