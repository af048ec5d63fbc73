//! Sources: turn bytes from files and streams into [`textwatch_engine::Message`]s.
//!
//! Every decoder here follows the same contract: bad input never panics and
//! never stops the run. A record that cannot be decoded becomes a
//! [`Reject`] naming the file, the line and the reason, carrying the raw
//! bytes (truncated) so the user can fix and resubmit it.
//!
//! Formats, detected from the file name or its first bytes:
//! - [`jsonl`]: one JSON object per line (the native format).
//! - [`csv`]: a header naming the columns; Twilio's message-log export is
//!   recognized by its header.
//!
//! Gzip is detected by its magic bytes; `-` is standard input.

pub mod chunk;
pub mod csv;
pub mod input;
pub mod jsonl;
pub mod spam_reports;
pub mod time;

use std::sync::Arc;

pub use chunk::{Chunk, FileFormat, InputError, CHUNK_RECORDS, MAX_LINE_BYTES};
pub use input::{open, Input};

/// Most bytes of a rejected record kept for the rejects file.
pub const MAX_REJECT_BYTES: usize = 64 * 1024;

/// A record that could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    /// File name as given by the user (`-` for standard input).
    pub file: Arc<str>,
    /// 1-based line number where the record starts.
    pub line: u64,
    /// Why it was rejected, for a person.
    pub reason: String,
    /// The raw record, truncated to [`MAX_REJECT_BYTES`].
    pub raw: Vec<u8>,
}

impl Reject {
    /// Builds a reject, keeping at most [`MAX_REJECT_BYTES`] of the record.
    pub fn new(file: &Arc<str>, line: u64, reason: impl Into<String>, raw: &[u8]) -> Self {
        Reject { file: file.clone(), line, reason: reason.into(), raw: raw[..raw.len().min(MAX_REJECT_BYTES)].to_vec() }
    }
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} line {}: {}", self.file, self.line, self.reason)
    }
}

/// A decoded message and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub msg: textwatch_engine::Message,
    pub line: u64,
}

/// Checks the limits every decoder applies to a decoded message.
pub(crate) fn check_limits(msg: &textwatch_engine::Message) -> Result<(), String> {
    if msg.body.len() > textwatch_engine::MAX_BODY_BYTES {
        return Err(format!(
            "body is {} bytes; the limit is {} (no text message is that long)",
            msg.body.len(),
            textwatch_engine::MAX_BODY_BYTES
        ));
    }
    if msg.from.trim().is_empty() {
        return Err("field `from` is empty".into());
    }
    if msg.from.len() > 64 {
        return Err(format!("field `from` is {} bytes; a sender address is at most 64", msg.from.len()));
    }
    Ok(())
}
