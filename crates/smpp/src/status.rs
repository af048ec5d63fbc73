//! The `command_status` values textwatch's gateway answers with. SMPP 3.4
//! section 5.1.3 defines the standard ones; 0x400-0x4FF is reserved for
//! SMSC vendors, and textwatch uses it to say why a text was refused.

/// Accepted.
pub const OK: u32 = 0x0000_0000;
/// Unknown or unsupported command.
pub const INVALID_COMMAND: u32 = 0x0000_0003;
/// A PDU not allowed in the session's state (submit before bind, or on a
/// receiver).
pub const INVALID_BIND_STATUS: u32 = 0x0000_0004;
/// Already bound.
pub const ALREADY_BOUND: u32 = 0x0000_0005;
/// System error (the upstream SMSC is unreachable, a store failed).
pub const SYSTEM_ERROR: u32 = 0x0000_0008;
/// The bind failed (upstream refused, or textwatch could not open it).
pub const BIND_FAILED: u32 = 0x0000_000D;
/// Wrong system_id or password.
pub const INVALID_PASSWORD: u32 = 0x0000_000E;
/// submit_sm failed: the generic refusal (textwatch's policy blocked it).
pub const SUBMIT_FAILED: u32 = 0x0000_0045;
/// Throttling: the ingest queue is full; retry.
pub const THROTTLED: u32 = 0x0000_0058;

/// Vendor range: textwatch's policy blocked the text (the findings and the
/// rule are logged and in `/v1/check` for the same text).
pub const TW_POLICY_BLOCK: u32 = 0x0000_0400;
/// Vendor range: the recipient opted out of this sender or campaign
/// (STOP).
pub const TW_OPTED_OUT: u32 = 0x0000_0401;
/// Vendor range: the token behind the bind lacks the scope for this PDU.
pub const TW_NOT_ALLOWED: u32 = 0x0000_0402;

/// A short name for logs and docs.
pub fn name(status: u32) -> &'static str {
    match status {
        OK => "ESME_ROK",
        INVALID_COMMAND => "ESME_RINVCMDID",
        INVALID_BIND_STATUS => "ESME_RINVBNDSTS",
        ALREADY_BOUND => "ESME_RALYBND",
        SYSTEM_ERROR => "ESME_RSYSERR",
        BIND_FAILED => "ESME_RBINDFAIL",
        INVALID_PASSWORD => "ESME_RINVPASWD",
        SUBMIT_FAILED => "ESME_RSUBMITFAIL",
        THROTTLED => "ESME_RTHROTTLED",
        TW_POLICY_BLOCK => "TW_POLICY_BLOCK",
        TW_OPTED_OUT => "TW_OPTED_OUT",
        TW_NOT_ALLOWED => "TW_NOT_ALLOWED",
        _ => "other",
    }
}
