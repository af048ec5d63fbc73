//! People who reported a campaign's texts as spam (7726 or an app), as
//! keyed hashes: the first half of a 7726 report waiting for its number,
//! and which reporters each campaign has. Distinct reporters become the
//! campaign's `reported-by-recipients` finding.

use rusqlite::{params, Connection, OptionalExtension};
use textwatch_engine::Severity;

use crate::views::Finding;
use crate::StoreError;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS report_pending (
    reporter BLOB PRIMARY KEY,
    ts INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS campaign_reporters (
    cluster INTEGER NOT NULL,
    reporter BLOB NOT NULL,
    first_ts INTEGER NOT NULL,
    PRIMARY KEY (cluster, reporter)
);
";

/// The rule name of the finding.
pub const REPORTED: &str = "reported-by-recipients";

/// Keeps a reporter's forwarded text until its number comes (replacing an
/// earlier one).
pub(crate) fn put_pending(conn: &Connection, reporter: &[u8; 16], ts: i64, text: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT OR REPLACE INTO report_pending (reporter, ts, text) VALUES (?1, ?2, ?3)",
        params![&reporter[..], ts, text],
    )?;
    Ok(())
}

/// Puts back a forwarded text taken for a report that was not stored,
/// unless the reporter has forwarded a newer one since (which must not be
/// replaced by an older text).
pub(crate) fn put_back_pending(conn: &Connection, reporter: &[u8; 16], ts: i64, text: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO report_pending (reporter, ts, text) VALUES (?1, ?2, ?3)
         ON CONFLICT (reporter) DO UPDATE SET ts = excluded.ts, text = excluded.text WHERE excluded.ts > report_pending.ts",
        params![&reporter[..], ts, text],
    )?;
    Ok(())
}

/// Takes the reporter's waiting text if it was forwarded within
/// `window_ms` before `ts`.
pub(crate) fn take_pending(
    conn: &Connection,
    reporter: &[u8; 16],
    ts: i64,
    window_ms: i64,
) -> Result<Option<(i64, String)>, StoreError> {
    let found: Option<(i64, String)> = conn
        .query_row("SELECT ts, text FROM report_pending WHERE reporter = ?1", [&reporter[..]], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    conn.execute("DELETE FROM report_pending WHERE reporter = ?1", [&reporter[..]])?;
    Ok(found.filter(|(t, _)| *t <= ts && ts - *t <= window_ms))
}

/// Notes that these reporters reported these campaigns (by id).
/// Records who reported which campaign, in the caller's transaction (the
/// batch's commit: a crash keeps both or neither).
pub(crate) fn record(tx: &Connection, rows: &[(String, [u8; 16], i64)]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    {
        let mut seq = tx.prepare_cached("SELECT seq FROM clusters WHERE id = ?1")?;
        let mut st = tx.prepare_cached(
            "INSERT INTO campaign_reporters (cluster, reporter, first_ts) VALUES (?1, ?2, ?3)
             ON CONFLICT (cluster, reporter) DO UPDATE SET first_ts = MIN(first_ts, excluded.first_ts)",
        )?;
        for (campaign, reporter, ts) in rows {
            if let Some(cluster) = seq.query_row([campaign], |r| r.get::<_, i64>(0)).optional()? {
                st.execute(params![cluster, &reporter[..], ts])?;
            }
        }
    }
    Ok(())
}

/// The campaign's `reported-by-recipients` finding: distinct reporters
/// (with campaigns merged into it); low for one or two, medium from 3,
/// high from 10.
pub(crate) fn finding(conn: &Connection, seq: i64) -> Result<Option<Finding>, StoreError> {
    let mut st = match conn.prepare_cached(
        "SELECT COUNT(DISTINCT reporter), MIN(first_ts) FROM campaign_reporters
         WHERE cluster = ?1 OR cluster IN (SELECT seq FROM clusters WHERE merged_into = ?1)",
    ) {
        Ok(st) => st,
        Err(e) if e.to_string().contains("no such table") => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let (n, first): (i64, Option<i64>) = st.query_row([seq], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(finding_of(n, first))
}

/// The finding from its figures: distinct reporters and the first report's
/// time.
pub(crate) fn finding_of(n: i64, first: Option<i64>) -> Option<Finding> {
    if n == 0 {
        return None;
    }
    let severity = match n {
        10.. => Severity::High,
        3..=9 => Severity::Medium,
        _ => Severity::Low,
    };
    let first = first.map(crate::time::format_ts).unwrap_or_default();
    Some(Finding {
        rule: REPORTED.into(),
        severity,
        count: n as u64,
        example: textwatch_engine::Evidence {
            span: None,
            excerpt: format!(
                "reported as spam by {n} distinct recipient{} (7726 or app reports; first {first})",
                if n == 1 { "" } else { "s" }
            ),
            place: None,
            time: None,
        },
    })
}
