//! The message: what every source decodes to and everything else reads.

use serde::{Deserialize, Serialize};

/// Longest body accepted, in bytes. Concatenated SMS top out near 1,600
/// characters (Twilio's limit); MMS text can be longer. Anything past this is
/// not a text message and is rejected with a reason rather than analyzed.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// One text message as decoded from a source.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The source's id for the message, if it has one (its identity then).
    pub id: Option<String>,
    /// When it was sent, milliseconds since the Unix epoch (UTC).
    pub ts_ms: i64,
    /// Sender as written: E.164, short code, or alphanumeric ID.
    pub from: String,
    /// Recipient as written, if known. Stored only as a keyed hash.
    pub to: Option<String>,
    /// The text.
    pub body: String,
    /// Where it came from ("gateway", "report", "trap", a file name...).
    pub source: Option<String>,
    /// Fields the decoder did not know, as a JSON object text, kept as metadata.
    pub meta: Option<String>,
}
