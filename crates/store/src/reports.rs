//! Takedown reports as sent: to whom, when, about which numbers of which
//! campaign, and the provider's answer once it comes. What happened after
//! (numbers going quiet, rotation) is computed from the messages by
//! `textwatch_sinks::followup`, so it is always current.

use rusqlite::{params, Connection, OptionalExtension};

use crate::StoreError;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS reports (
    id INTEGER PRIMARY KEY,
    campaign TEXT NOT NULL,
    provider TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    sent_to TEXT,
    via TEXT NOT NULL,
    format TEXT NOT NULL,
    numbers TEXT NOT NULL,
    reference TEXT,
    answer TEXT,
    answered_at INTEGER
);
";

/// A report as recorded.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SentReport {
    pub id: i64,
    /// The campaign reported (as it was then; merges resolve on reading).
    pub campaign: String,
    /// The provider it went to.
    pub provider: String,
    #[serde(with = "crate::time::rfc3339")]
    pub sent_at: i64,
    /// The address it was sent to (none when marked sent by hand).
    pub sent_to: Option<String>,
    /// `smtp` (sent by textwatch) or `marked` (sent some other way).
    pub via: String,
    /// `xarf`, `stix`, `html`, `md`.
    pub format: String,
    /// The numbers it named.
    pub numbers: Vec<String>,
    /// The e-mail Message-ID or the provider's ticket, if any.
    pub reference: Option<String>,
    /// The provider's answer, when recorded.
    pub answer: Option<String>,
    #[serde(with = "crate::time::rfc3339_opt")]
    pub answered_at: Option<i64>,
}

/// What a new report records.
#[derive(Clone, Debug)]
pub struct NewReport<'a> {
    pub campaign: &'a str,
    pub provider: &'a str,
    pub sent_at: i64,
    pub sent_to: Option<&'a str>,
    pub via: &'a str,
    pub format: &'a str,
    pub numbers: &'a [String],
    pub reference: Option<&'a str>,
}

pub(crate) fn record(conn: &Connection, r: &NewReport<'_>) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO reports (campaign, provider, sent_at, sent_to, via, format, numbers, reference)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            r.campaign,
            r.provider,
            r.sent_at,
            r.sent_to,
            r.via,
            r.format,
            serde_json::to_string(r.numbers).unwrap_or_else(|_| "[]".into()),
            r.reference
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

pub(crate) fn answer(conn: &Connection, id: i64, text: &str, at: i64) -> Result<bool, StoreError> {
    Ok(conn.execute("UPDATE reports SET answer = ?2, answered_at = ?3 WHERE id = ?1", params![id, text, at])? == 1)
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SentReport> {
    let numbers: String = r.get(7)?;
    Ok(SentReport {
        id: r.get(0)?,
        campaign: r.get(1)?,
        provider: r.get(2)?,
        sent_at: r.get(3)?,
        sent_to: r.get(4)?,
        via: r.get(5)?,
        format: r.get(6)?,
        numbers: serde_json::from_str(&numbers).unwrap_or_default(),
        reference: r.get(8)?,
        answer: r.get(9)?,
        answered_at: r.get(10)?,
    })
}

const COLUMNS: &str = "id, campaign, provider, sent_at, sent_to, via, format, numbers, reference, answer, answered_at";

/// Every report, oldest first.
pub(crate) fn all(conn: &Connection) -> Result<Vec<SentReport>, StoreError> {
    let mut st = match conn.prepare_cached(&format!("SELECT {COLUMNS} FROM reports ORDER BY sent_at, id")) {
        Ok(st) => st,
        Err(e) if e.to_string().contains("no such table") => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let rows = st.query_map([], row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn one(conn: &Connection, id: i64) -> Result<Option<SentReport>, StoreError> {
    let mut st = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM reports WHERE id = ?1"))?;
    Ok(st.query_row([id], row).optional()?)
}
