//! textwatch past one machine: the pipeline over NATS JetStream.
//!
//! ```text
//! publish ──▶ TEXTWATCH_IN (stream, every accepted message, in order)
//!     ──▶ workers (any number): decode, fold, template, features, keyed recipient hash,
//!         signatures of templates new to them
//!     ──▶ TEXTWATCH_ANALYZED (stream, one record per input message, tagged with its input sequence)
//!     ──▶ the assigner (one, elected by the store's writer lock): puts records back in input
//!         order, cuts them into the batches `scan` would cut, assigns, commits, then acks
//! ```
//!
//! Why one assigner: campaigns come from a sequential process (a message
//! joins what the messages before it formed), and the embedded run's
//! answers are a function of the order of its records. An assigner that
//! replays the input order exactly gives the same campaigns; a sharded
//! index would need a merge whose result depends on timing. The per-message
//! work, most of the CPU, is what scales out; docs/deployment.md says
//! where the assigner saturates.
//!
//! Nothing acknowledged is lost: a publisher's message is acknowledged by
//! JetStream once stored; a worker acks its input only after the broker
//! stored the analyzed record; the assigner acks records only after the
//! store committed them (and the cursor saying how far it got, in the same
//! transaction). A record delivered twice is dropped by its input sequence,
//! and a message seen twice by the engine's exact duplicate check.

pub mod assigner;
pub mod broker;
pub mod node;
pub mod publish;
pub mod wire;
pub mod worker;

/// Cluster errors.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The broker could not be reached or refused a request.
    #[error("NATS: {0}")]
    Broker(String),
    #[error(transparent)]
    Store(#[from] textwatch_store::StoreError),
    #[error(transparent)]
    Pipeline(#[from] textwatch_pipeline::PipelineError),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    /// A record on a stream could not be read.
    #[error("{0}")]
    Wire(String),
}

/// A single-threaded async runtime (for the binary's one-off commands).
pub fn runtime() -> Result<tokio::runtime::Runtime, ClusterError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| ClusterError::Io { what: "starting the async runtime".into(), source })
}
