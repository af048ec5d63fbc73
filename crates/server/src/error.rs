//! The server's error type: what can stop it, or fail a request inside it
//! (handlers turn these into a 500 with the message; see `state::ApiError`).

/// What can stop the server or fail a request inside it.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] textwatch_store::StoreError),
    #[error(transparent)]
    Sink(#[from] textwatch_sinks::SinkError),
    #[error(transparent)]
    Pipeline(#[from] textwatch_pipeline::PipelineError),
    #[error(transparent)]
    Cluster(#[from] textwatch_cluster::ClusterError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A setting that cannot work, with what to do.
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Internal(String),
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Results inside the server (handlers answer with [`ApiError`]).
pub type Result<T, E = ServerError> = std::result::Result<T, E>;
