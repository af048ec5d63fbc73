//! The SQLite side of the message log: the index of segments (what each
//! holds, how much of it is committed) and reading a campaign's messages
//! from only the segments that hold them.
//!
//! - `segments`: one row per segment file: committed messages and bytes,
//!   sealed or not, time range.
//! - `segment_clusters`: which campaigns have messages in which segment (a
//!   superset: a template that joins a campaign late marks every segment
//!   since its first message; a merge gives the survivor the segments of
//!   the campaign it absorbed).
//! - `campaign_samples`: evidence samples kept for campaigns whose messages
//!   were pruned.

use std::collections::HashMap;

use rusqlite::{params, Connection};

use crate::log::{col, Rows, Segment, SegmentSource};
use crate::views::MessageView;
use crate::StoreError;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY,
    rows INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    sealed INTEGER NOT NULL,
    min_ts INTEGER,
    max_ts INTEGER,
    hash INTEGER
);
CREATE TABLE IF NOT EXISTS segment_clusters (
    cluster INTEGER NOT NULL,
    segment INTEGER NOT NULL,
    PRIMARY KEY (cluster, segment)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS campaign_samples (
    cluster INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    id TEXT NOT NULL,
    sender TEXT NOT NULL,
    body TEXT NOT NULL,
    source TEXT,
    template TEXT NOT NULL,
    origin TEXT,
    meta TEXT
);
CREATE INDEX IF NOT EXISTS campaign_samples_cluster ON campaign_samples(cluster);
";

fn segment_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Segment> {
    Ok(Segment {
        id: r.get(0)?,
        rows: r.get::<_, i64>(1)? as u64,
        bytes: r.get::<_, i64>(2)? as u64,
        sealed: r.get(3)?,
        min_ts: r.get(4)?,
        max_ts: r.get(5)?,
        hash: r.get::<_, Option<i64>>(6)?.map(|h| h as u64),
    })
}

/// Every segment, oldest first.
pub(crate) fn all(conn: &Connection) -> Result<Vec<Segment>, StoreError> {
    let mut st =
        conn.prepare_cached("SELECT id, rows, bytes, sealed, min_ts, max_ts, hash FROM segments ORDER BY id")?;
    let rows = st.query_map([], segment_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The segments that may hold messages of campaign `seq`, oldest first.
pub(crate) fn of_cluster(conn: &Connection, seq: i64) -> Result<Vec<Segment>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT s.id, s.rows, s.bytes, s.sealed, s.min_ts, s.max_ts, s.hash FROM segments s
         JOIN segment_clusters c ON c.segment = s.id WHERE c.cluster = ?1 ORDER BY s.id",
    )?;
    let rows = st.query_map([seq], segment_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Records a segment's committed state.
pub(crate) fn record(conn: &Connection, s: &Segment) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO segments (id, rows, bytes, sealed, min_ts, max_ts, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(id) DO UPDATE SET rows = excluded.rows, bytes = excluded.bytes, sealed = excluded.sealed,
            min_ts = excluded.min_ts, max_ts = excluded.max_ts, hash = excluded.hash",
    )?
    .execute(params![
        s.id,
        s.rows as i64,
        s.bytes as i64,
        s.sealed,
        s.min_ts,
        s.max_ts,
        s.hash.map(|h| h as i64)
    ])?;
    // The highest id ever used, kept when prune drops the segment: ids are
    // never reused (campaign views and outside readers go by them).
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('last_segment', ?1)
         ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)",
    )?
    .execute([s.id])?;
    Ok(())
}

/// The id the next new segment gets: past every segment ever recorded.
pub(crate) fn next_id(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row(
        "SELECT MAX(COALESCE((SELECT MAX(id) FROM segments), 0),
                    COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'last_segment'), 0)) + 1",
        [],
        |r| r.get(0),
    )?)
}

/// A campaign's templates: key to text.
pub(crate) fn templates_of(conn: &Connection, seq: i64) -> Result<HashMap<u64, String>, StoreError> {
    let mut st = conn.prepare_cached("SELECT key, text FROM templates WHERE cluster = ?1")?;
    let rows = st.query_map([seq], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Calls `f(rows, i, template text)` for every stored message of campaign
/// `seq`, in stored order, reading columns `cols` (plus `template`) of only
/// the segments that may hold them. `f` returns false to stop.
pub(crate) fn for_campaign(
    conn: &Connection,
    log: &dyn SegmentSource,
    seq: i64,
    cols: &[usize],
    f: &mut dyn FnMut(&Rows, usize, &str) -> bool,
) -> Result<(), StoreError> {
    let templates = templates_of(conn, seq)?;
    if templates.is_empty() {
        return Ok(());
    }
    for seg in of_cluster(conn, seq)? {
        if !read_campaign_rows(log, &seg, &templates, cols, &mut |rows, i, _, text| f(rows, i, text))? {
            break;
        }
    }
    Ok(())
}

/// Calls `f(rows, i, position in the segment, template text)` for the
/// messages of one segment whose template is in `templates` (a campaign's),
/// reading columns `cols` plus `template`. Returns false if `f` stopped.
pub(crate) fn read_campaign_rows(
    log: &dyn SegmentSource,
    seg: &Segment,
    templates: &HashMap<u64, String>,
    cols: &[usize],
    f: &mut dyn FnMut(&Rows, usize, u64, &str) -> bool,
) -> Result<bool, StoreError> {
    let mut cols = cols.to_vec();
    cols.push(col::TEMPLATE);
    let mut position = 0u64;
    log.read_segment(seg, &cols, &mut |rows| {
        for i in 0..rows.len() {
            position += 1;
            if let Some(text) = templates.get(&rows.template(i)) {
                if !f(rows, i, position, text) {
                    return false;
                }
            }
        }
        true
    })
}

/// Every column (for [`message_view`]).
pub(crate) const ALL: [usize; 10] =
    [col::KEY, col::ID, col::TS, col::SENDER, col::RCPT, col::BODY, col::SOURCE, col::META, col::TEMPLATE, col::ORIGIN];

/// Row `i` as the product shows a message.
pub(crate) fn message_view(rows: &Rows, i: usize, template: &str, campaign: Option<&str>) -> MessageView {
    MessageView {
        id: textwatch_engine::analyze::display_id(rows.id(i), rows.key(i)),
        ts: rows.ts(i),
        from: rows.sender(i).to_string(),
        body: rows.body(i).to_string(),
        source: rows.source(i).map(str::to_owned),
        template: template.to_string(),
        campaign: campaign.map(str::to_owned),
        origin: rows.origin(i).map(str::to_owned),
        meta: rows.meta(i).and_then(|m| serde_json::from_str(m).ok()),
    }
}
