//! What reading an input yields: chunks of records, the input's format, and
//! the errors that stop an input. Shared by the opener ([`crate::input`])
//! and the decoders.

use std::io;
use std::sync::Arc;

use crate::{Decoded, Reject};

/// Records per chunk.
pub const CHUNK_RECORDS: usize = 16 * 1024;
/// Longest line buffered; longer ones are rejected without being held.
pub const MAX_LINE_BYTES: usize = 4 << 20;

/// Input errors that stop one input (not single records).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot open {path}: {source}")]
    Open { path: String, source: io::Error },
    #[error("reading {path} near line {line}: {source}")]
    Read { path: String, line: u64, source: io::Error },
    #[error("{path}: {reason}")]
    Format { path: String, reason: String },
}

/// The format of an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    Jsonl,
    Csv,
    TwilioCsv,
}

impl std::fmt::Display for FileFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileFormat::Jsonl => "jsonl",
            FileFormat::Csv => "csv",
            FileFormat::TwilioCsv => "twilio-csv",
        })
    }
}

/// A chunk of records.
#[derive(Debug)]
pub enum Chunk {
    /// Raw JSONL lines: `(line number, start, end)` into `buf`.
    Lines { file: Arc<str>, buf: Vec<u8>, lines: Vec<(u64, usize, usize)>, rejects: Vec<Reject> },
    /// Records already decoded (CSV).
    Decoded { file: Arc<str>, records: Vec<Result<Decoded, Reject>> },
}

impl Chunk {
    /// Records in the chunk, rejected ones included.
    pub fn len(&self) -> usize {
        match self {
            Chunk::Lines { lines, rejects, .. } => lines.len() + rejects.len(),
            Chunk::Decoded { records, .. } => records.len(),
        }
    }

    /// Whether the chunk holds no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
