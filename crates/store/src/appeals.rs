//! Appeals of blocks, the policy's allow rules that overturned ones add,
//! and the audit log of every decision.
//!
//! The audit log is append-only: triggers refuse any UPDATE or DELETE of
//! it, so a decision cannot be rewritten after the fact, even with SQL.
//! Allow rules are versioned: each overturn adds one with the next policy
//! version, and none is ever edited (withdrawing one adds a row too).

use rusqlite::{params, Connection, OptionalExtension};

use crate::StoreError;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS appeals (
    id INTEGER PRIMARY KEY,
    opened_at INTEGER NOT NULL,
    subject_kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    contact TEXT NOT NULL,
    reason TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'open',
    decided_at INTEGER,
    decided_by TEXT,
    decision_reason TEXT
);
CREATE TABLE IF NOT EXISTS policy_allows (
    version INTEGER PRIMARY KEY AUTOINCREMENT,
    added_at INTEGER NOT NULL,
    subject_kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    appeal INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
";

/// What an appeal is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    /// A sending number (normalized).
    Number,
    /// A campaign, by id.
    Campaign,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Number => "number",
            SubjectKind::Campaign => "campaign",
        }
    }
    pub(crate) fn parse(s: &str) -> SubjectKind {
        if s == "campaign" {
            SubjectKind::Campaign
        } else {
            SubjectKind::Number
        }
    }
}

/// An appeal.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Appeal {
    pub id: i64,
    #[serde(with = "crate::time::rfc3339")]
    pub opened_at: i64,
    pub subject_kind: SubjectKind,
    pub subject: String,
    /// How to reach the appellant.
    pub contact: String,
    pub reason: String,
    /// `open`, `upheld` (the block stays) or `overturned`.
    pub state: String,
    #[serde(with = "crate::time::rfc3339_opt")]
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
}

/// An allow rule an overturned appeal added.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PolicyAllow {
    /// The policy version it made.
    pub version: i64,
    #[serde(with = "crate::time::rfc3339")]
    pub added_at: i64,
    pub subject_kind: SubjectKind,
    pub subject: String,
    pub appeal: i64,
    pub reason: String,
}

/// One line of the audit log.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    pub id: i64,
    #[serde(with = "crate::time::rfc3339")]
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
}

fn audit(conn: &Connection, at: i64, actor: &str, action: &str, subject: &str, detail: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![at, actor, action, subject, detail],
    )?;
    Ok(())
}

/// Opens an appeal (and logs it); returns its id.
pub(crate) fn open(
    conn: &mut Connection,
    at: i64,
    kind: SubjectKind,
    subject: &str,
    contact: &str,
    reason: &str,
    actor: &str,
) -> Result<i64, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO appeals (opened_at, subject_kind, subject, contact, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![at, kind.as_str(), subject, contact, reason],
    )?;
    let id = tx.last_insert_rowid();
    let (what, detail) = opened_audit(id, kind, subject, reason);
    audit(&tx, at, actor, "appeal-opened", &what, &detail)?;
    tx.commit()?;
    Ok(id)
}

/// The outcome of deciding an appeal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decided {
    /// Upheld: the block stays.
    Upheld,
    /// Overturned: an allow rule was added, making this policy version.
    Overturned { version: i64 },
}

/// What every store records when an appeal opens: the audit line's
/// subject and detail.
pub(crate) fn opened_audit(id: i64, kind: SubjectKind, subject: &str, reason: &str) -> (String, String) {
    (format!("{} {subject}", kind.as_str()), format!("appeal {id}: {reason}"))
}

/// An appeal found by id (its subject kind, subject and state) that may be
/// decided: its kind and subject, or why not (absent, decided already).
pub(crate) fn decidable(id: i64, found: Option<(String, String, String)>) -> Result<(String, String), StoreError> {
    let Some((kind, subject, state)) = found else {
        return Err(StoreError::Absent(format!("no appeal {id}; `textwatch appeal list` lists them")));
    };
    if state != "open" {
        return Err(StoreError::Conflict(format!("appeal {id} was already decided ({state})")));
    }
    Ok((kind, subject))
}

/// The state a decision gives an appeal.
pub(crate) fn decided_state(overturn: bool) -> &'static str {
    if overturn {
        "overturned"
    } else {
        "upheld"
    }
}

/// The audit line of a decision: its action and detail.
pub(crate) fn decided_audit(id: i64, out: &Decided, reason: &str) -> (String, String) {
    let detail = match out {
        Decided::Upheld => format!("appeal {id} upheld: {reason}"),
        Decided::Overturned { version } => {
            format!("appeal {id} overturned, allow rule added (policy version {version}): {reason}")
        }
    };
    (format!("appeal-{}", decided_state(matches!(out, Decided::Overturned { .. }))), detail)
}

/// Decides an open appeal; an overturn adds the allow rule; both are
/// logged. In one transaction.
pub(crate) fn decide(
    conn: &mut Connection,
    id: i64,
    overturn: bool,
    by: &str,
    reason: &str,
    at: i64,
) -> Result<Decided, StoreError> {
    // Immediate: the write lock is taken before the read, so a writer
    // committing in between cannot make the upgrade fail.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let row: Option<(String, String, String)> = tx
        .query_row("SELECT subject_kind, subject, state FROM appeals WHERE id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let (kind, subject) = decidable(id, row)?;
    tx.execute(
        "UPDATE appeals SET state = ?2, decided_at = ?3, decided_by = ?4, decision_reason = ?5 WHERE id = ?1",
        params![id, decided_state(overturn), at, by, reason],
    )?;
    let out = if overturn {
        tx.execute(
            "INSERT INTO policy_allows (added_at, subject_kind, subject, appeal, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![at, kind, subject, id, reason],
        )?;
        Decided::Overturned { version: tx.last_insert_rowid() }
    } else {
        Decided::Upheld
    };
    let (action, detail) = decided_audit(id, &out, reason);
    audit(&tx, at, by, &action, &format!("{kind} {subject}"), &detail)?;
    tx.commit()?;
    Ok(out)
}

fn appeal_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Appeal> {
    let kind: String = r.get(2)?;
    Ok(Appeal {
        id: r.get(0)?,
        opened_at: r.get(1)?,
        subject_kind: SubjectKind::parse(&kind),
        subject: r.get(3)?,
        contact: r.get(4)?,
        reason: r.get(5)?,
        state: r.get(6)?,
        decided_at: r.get(7)?,
        decided_by: r.get(8)?,
        decision_reason: r.get(9)?,
    })
}

fn missing(e: &rusqlite::Error) -> bool {
    e.to_string().contains("no such table")
}

pub(crate) fn list(conn: &Connection) -> Result<Vec<Appeal>, StoreError> {
    let mut st = match conn.prepare_cached(
        "SELECT id, opened_at, subject_kind, subject, contact, reason, state, decided_at, decided_by, decision_reason
         FROM appeals ORDER BY id",
    ) {
        Ok(st) => st,
        Err(e) if missing(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let rows = st.query_map([], appeal_row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn allows(conn: &Connection) -> Result<Vec<PolicyAllow>, StoreError> {
    let mut st = match conn.prepare_cached(
        "SELECT version, added_at, subject_kind, subject, appeal, reason FROM policy_allows ORDER BY version",
    ) {
        Ok(st) => st,
        Err(e) if missing(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let rows = st
        .query_map([], |r| {
            let kind: String = r.get(2)?;
            Ok(PolicyAllow {
                version: r.get(0)?,
                added_at: r.get(1)?,
                subject_kind: SubjectKind::parse(&kind),
                subject: r.get(3)?,
                appeal: r.get(4)?,
                reason: r.get(5)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn audit_log(conn: &Connection) -> Result<Vec<AuditEntry>, StoreError> {
    let mut st = match conn.prepare_cached("SELECT id, at, actor, action, subject, detail FROM audit_log ORDER BY id") {
        Ok(st) => st,
        Err(e) if missing(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let rows = st
        .query_map([], |r| {
            Ok(AuditEntry {
                id: r.get(0)?,
                at: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                subject: r.get(4)?,
                detail: r.get(5)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
