//! The option every assigning command (scan, serve, smpp, worker) takes:
//! how many identity keys of stored messages stay in memory.

/// Memory for duplicate detection.
#[derive(clap::Args, Debug, Clone)]
pub struct DedupArgs {
    /// Hold at most N identity keys of stored messages in memory (about 25
    /// bytes each) instead of all of them, to bound a long-running
    /// server's memory. Past N, the oldest by message time leave memory,
    /// and a message older than those still held is checked against the
    /// message log instead. The price: a repeat of a message id under
    /// another time than its first copy (later, or earlier but outside that
    /// copy's log segments), once that copy left memory, is stored again;
    /// repeats of messages without an id stay exact. Under `serve --nats`
    /// set it on the workers: the server does not assign.
    /// Default: all keys, exact.
    #[arg(long, env = "TEXTWATCH_DEDUP_KEYS", value_name = "N")]
    pub dedup_keys: Option<usize>,
}

impl DedupArgs {
    /// The engine's cap (`usize::MAX`: none).
    pub fn keys(&self) -> usize {
        self.dedup_keys.unwrap_or(usize::MAX)
    }
}
