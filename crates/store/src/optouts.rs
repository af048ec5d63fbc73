//! Opt-out state as stored: every change a recipient made (STOP, START),
//! kept forever with its time and source, and the texts campaigns sent to
//! recipients after they opted out (the `optout-ignored` finding).
//!
//! Recipients are keyed hashes here as everywhere in the store.

use rusqlite::{params, Connection};
use textwatch_engine::optout::{Change, Scope};
use textwatch_engine::Severity;

use crate::views::Finding;
use crate::StoreError;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS optout_changes (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    recipient BLOB NOT NULL,
    scope TEXT NOT NULL,
    out INTEGER NOT NULL,
    keyword TEXT NOT NULL,
    source TEXT NOT NULL,
    texted TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS optout_ignored (
    cluster INTEGER NOT NULL,
    recipient BLOB NOT NULL,
    messages INTEGER NOT NULL,
    first_ts INTEGER NOT NULL,
    last_ts INTEGER NOT NULL,
    sender TEXT NOT NULL,
    opted_out_at INTEGER NOT NULL,
    keyword TEXT NOT NULL,
    PRIMARY KEY (cluster, recipient)
);
";

/// The rule name of the finding.
pub const OPTOUT_IGNORED: &str = "optout-ignored";

/// A text a campaign sent to a recipient who had opted out of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IgnoredOptOut {
    /// The campaign (id) the text joined.
    pub campaign: String,
    pub recipient: [u8; 16],
    /// When the text was sent.
    pub ts_ms: i64,
    /// Who sent it.
    pub sender: String,
    /// When and with which keyword the recipient had opted out.
    pub opted_out_at: i64,
    pub keyword: String,
}

/// Appends changes of opt-out state, in one transaction (durable when
/// this returns).
pub(crate) fn record_changes(conn: &mut Connection, changes: &[Change]) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    {
        let mut st = tx.prepare_cached(
            "INSERT INTO optout_changes (at, recipient, scope, out, keyword, source, texted)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for c in changes {
            st.execute(params![c.at_ms, &c.recipient[..], c.scope.key(), c.out as i64, c.keyword, c.source, c.texted])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Every change, oldest first (to rebuild the registry on start).
pub(crate) fn changes(conn: &Connection) -> Result<Vec<Change>, StoreError> {
    let mut st = match conn
        .prepare_cached("SELECT at, recipient, scope, out, keyword, source, texted FROM optout_changes ORDER BY id")
    {
        Ok(st) => st,
        // A database opened read-only from before opt-outs existed.
        Err(e) if missing_table(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let rows = st.query_map([], |r| {
        let blob: Vec<u8> = r.get(1)?;
        let scope: String = r.get(2)?;
        Ok((r.get::<_, i64>(0)?, blob, scope, r.get::<_, i64>(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (at_ms, blob, scope, o, keyword, source, texted) = row?;
        out.push(change_of(at_ms, &blob, &scope, o != 0, keyword, source, texted)?);
    }
    Ok(out)
}

/// A stored change of opt-out state from its columns.
pub(crate) fn change_of(
    at_ms: i64,
    recipient: &[u8],
    scope: &str,
    out: bool,
    keyword: String,
    source: String,
    texted: String,
) -> Result<Change, StoreError> {
    let (Ok(recipient), Some(scope)) = (<[u8; 16]>::try_from(recipient), Scope::parse(scope)) else {
        return Err(StoreError::Schema(format!("optout_changes holds a malformed row (scope {scope:?})")));
    };
    Ok(Change { at_ms, recipient, scope, out, keyword, source, texted })
}

/// Counts texts sent after an opt-out, per campaign and recipient.
/// Counts texts sent after an opt-out, in the caller's transaction (the
/// batch's commit: counted once, with the batch).
pub(crate) fn record_ignored(tx: &Connection, rows: &[IgnoredOptOut]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    {
        let mut seq = tx.prepare_cached("SELECT seq FROM clusters WHERE id = ?1")?;
        let mut st = tx.prepare_cached(
            "INSERT INTO optout_ignored (cluster, recipient, messages, first_ts, last_ts, sender, opted_out_at, keyword)
             VALUES (?1, ?2, 1, ?3, ?3, ?4, ?5, ?6)
             ON CONFLICT (cluster, recipient) DO UPDATE SET messages = messages + 1,
                first_ts = MIN(first_ts, excluded.first_ts), last_ts = MAX(last_ts, excluded.last_ts)",
        )?;
        for r in rows {
            let Some(cluster) = seq.query_map([&r.campaign], |x| x.get::<_, i64>(0))?.next().transpose()? else {
                continue;
            };
            st.execute(params![cluster, &r.recipient[..], r.ts_ms, r.sender, r.opted_out_at, r.keyword])?;
        }
    }
    Ok(())
}

fn missing_table(e: &rusqlite::Error) -> bool {
    e.to_string().contains("no such table")
}

/// The campaign's `optout-ignored` finding (critical), counting the texts
/// it sent to recipients after they opted out, with campaigns merged into
/// it.
pub(crate) fn ignored_finding(conn: &Connection, seq: i64) -> Result<Option<Finding>, StoreError> {
    let mut st = match conn.prepare_cached(
        "WITH o AS (SELECT * FROM optout_ignored
                    WHERE cluster = ?1 OR cluster IN (SELECT seq FROM clusters WHERE merged_into = ?1))
         SELECT (SELECT COALESCE(SUM(messages), 0) FROM o), (SELECT COUNT(*) FROM o),
                (SELECT MIN(opted_out_at) FROM o), f.first_ts, f.sender, f.keyword
         FROM (SELECT 1) LEFT JOIN (SELECT first_ts, sender, keyword FROM o ORDER BY first_ts LIMIT 1) f",
    ) {
        Ok(st) => st,
        Err(e) if missing_table(&e) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let (messages, recipients, opted, first, sender, keyword): (
        i64,
        i64,
        Option<i64>,
        Option<i64>,
        Option<String>,
        Option<String>,
    ) = st.query_row([seq], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?;
    Ok(ignored_finding_of(messages, recipients, opted, first, sender, keyword))
}

/// The `optout-ignored` finding from its figures: texts after an opt-out,
/// distinct recipients, the first opt-out's time, the first such text's
/// time, its sender and the opt-out keyword.
pub(crate) fn ignored_finding_of(
    messages: i64,
    recipients: i64,
    opted: Option<i64>,
    first: Option<i64>,
    sender: Option<String>,
    keyword: Option<String>,
) -> Option<Finding> {
    if messages == 0 {
        return None;
    }
    let when = |ms: Option<i64>| {
        ms.and_then(chrono::DateTime::from_timestamp_millis)
            .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default()
    };
    let excerpt = format!(
        "{messages} text{} to {recipients} recipient{} after they opted out (first opt-out {} with {}; first text after it {} from {})",
        if messages == 1 { "" } else { "s" },
        if recipients == 1 { "" } else { "s" },
        when(opted),
        keyword.unwrap_or_default(),
        when(first),
        sender.unwrap_or_default(),
    );
    Some(Finding {
        rule: OPTOUT_IGNORED.into(),
        severity: Severity::Critical,
        count: messages as u64,
        example: textwatch_engine::Evidence { span: None, excerpt, place: None, time: None },
    })
}
