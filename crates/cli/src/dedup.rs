//! The option every assigning command (scan, serve, smpp, worker) takes:
//! how many identity keys of stored messages stay in memory.

/// Memory for exact duplicate detection.
#[derive(clap::Args, Debug, Clone)]
pub struct DedupArgs {
    /// Identity keys of stored messages held in memory to refuse repeats
    /// (about 25 bytes each: the default holds 8 million in about 200 MB).
    /// Past this many, the oldest by message time leave memory, and a
    /// message older than those still held is checked against the message
    /// log instead: as exact, slower. Lower it to bound a long-running
    /// server's memory; raise it if old messages are often sent again.
    #[arg(long, env = "TEXTWATCH_DEDUP_KEYS", default_value_t = textwatch_engine::EngineConfig::default().dedup_keys, value_name = "N")]
    pub dedup_keys: usize,
}
