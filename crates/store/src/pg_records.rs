//! The PostgreSQL store's records people add, as the embedded store keeps
//! them (`appeals.rs`, `reports.rs`, `reporters.rs`): 7726 halves waiting
//! for their pair, appeals with the allow rules they add and the
//! append-only audit log, and takedown reports sent. Each function runs on
//! the store's connection (`pg.rs` hands it over).

use postgres::{Client, Row};

use crate::appeals::{self, Appeal, AuditEntry, Decided, PolicyAllow, SubjectKind};
use crate::reports::{NewReport, SentReport};
use crate::StoreError;

fn pg(e: postgres::Error) -> StoreError {
    StoreError::Postgres(e)
}

pub(crate) fn put_pending(c: &mut Client, reporter: &[u8; 16], ts: i64, text: &str) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO report_pending (reporter, ts, text) VALUES ($1, $2, $3)
         ON CONFLICT (reporter) DO UPDATE SET ts = EXCLUDED.ts, text = EXCLUDED.text",
        &[&&reporter[..], &ts, &text],
    )
    .map_err(pg)?;
    Ok(())
}

pub(crate) fn put_back_pending(c: &mut Client, reporter: &[u8; 16], ts: i64, text: &str) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO report_pending (reporter, ts, text) VALUES ($1, $2, $3)
         ON CONFLICT (reporter) DO UPDATE SET ts = EXCLUDED.ts, text = EXCLUDED.text
         WHERE EXCLUDED.ts > report_pending.ts",
        &[&&reporter[..], &ts, &text],
    )
    .map_err(pg)?;
    Ok(())
}

pub(crate) fn take_pending(
    c: &mut Client,
    reporter: &[u8; 16],
    ts: i64,
    window_ms: i64,
) -> Result<Option<(i64, String)>, StoreError> {
    let found = c
        .query_opt("DELETE FROM report_pending WHERE reporter = $1 RETURNING ts, text", &[&&reporter[..]])
        .map_err(pg)?
        .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)));
    Ok(found.filter(|(t, _)| *t <= ts && ts - *t <= window_ms))
}

fn audit(
    tx: &mut postgres::Transaction<'_>,
    at: i64,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)",
        &[&at, &actor, &action, &subject, &detail],
    )
    .map_err(pg)?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn open_appeal(
    c: &mut Client,
    at: i64,
    kind: SubjectKind,
    subject: &str,
    contact: &str,
    reason: &str,
    actor: &str,
) -> Result<i64, StoreError> {
    let mut tx = c.transaction().map_err(pg)?;
    let id: i64 = tx
        .query_one(
            "INSERT INTO appeals (opened_at, subject_kind, subject, contact, reason) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&at, &kind.as_str(), &subject, &contact, &reason],
        )
        .map_err(pg)?
        .get(0);
    let (what, detail) = appeals::opened_audit(id, kind, subject, reason);
    audit(&mut tx, at, actor, "appeal-opened", &what, &detail)?;
    tx.commit().map_err(pg)?;
    Ok(id)
}

pub(crate) fn decide_appeal(
    c: &mut Client,
    id: i64,
    overturn: bool,
    by: &str,
    reason: &str,
    at: i64,
) -> Result<Decided, StoreError> {
    let mut tx = c.transaction().map_err(pg)?;
    // Locked for this transaction: two deciders cannot both decide it.
    let row = tx
        .query_opt("SELECT subject_kind, subject, state FROM appeals WHERE id = $1 FOR UPDATE", &[&id])
        .map_err(pg)?;
    let (kind, subject) = appeals::decidable(id, row.map(|r| (r.get(0), r.get(1), r.get(2))))?;
    tx.execute(
        "UPDATE appeals SET state = $2, decided_at = $3, decided_by = $4, decision_reason = $5 WHERE id = $1",
        &[&id, &appeals::decided_state(overturn), &at, &by, &reason],
    )
    .map_err(pg)?;
    let out = if overturn {
        let version: i64 = tx
            .query_one(
                "INSERT INTO policy_allows (added_at, subject_kind, subject, appeal, reason) VALUES ($1, $2, $3, $4, $5)
                 RETURNING version",
                &[&at, &kind, &subject, &id, &reason],
            )
            .map_err(pg)?
            .get(0);
        Decided::Overturned { version }
    } else {
        Decided::Upheld
    };
    let (action, detail) = appeals::decided_audit(id, &out, reason);
    audit(&mut tx, at, by, &action, &format!("{kind} {subject}"), &detail)?;
    tx.commit().map_err(pg)?;
    Ok(out)
}

pub(crate) fn appeals(c: &mut Client) -> Result<Vec<Appeal>, StoreError> {
    let rows = c
        .query(
            "SELECT id, opened_at, subject_kind, subject, contact, reason, state, decided_at, decided_by, decision_reason
             FROM appeals ORDER BY id",
            &[],
        )
        .map_err(pg)?;
    Ok(rows
        .iter()
        .map(|r| Appeal {
            id: r.get(0),
            opened_at: r.get(1),
            subject_kind: SubjectKind::parse(r.get(2)),
            subject: r.get(3),
            contact: r.get(4),
            reason: r.get(5),
            state: r.get(6),
            decided_at: r.get(7),
            decided_by: r.get(8),
            decision_reason: r.get(9),
        })
        .collect())
}

pub(crate) fn allows(c: &mut Client) -> Result<Vec<PolicyAllow>, StoreError> {
    let rows = c
        .query(
            "SELECT version, added_at, subject_kind, subject, appeal, reason FROM policy_allows ORDER BY version",
            &[],
        )
        .map_err(pg)?;
    Ok(rows
        .iter()
        .map(|r| PolicyAllow {
            version: r.get(0),
            added_at: r.get(1),
            subject_kind: SubjectKind::parse(r.get(2)),
            subject: r.get(3),
            appeal: r.get(4),
            reason: r.get(5),
        })
        .collect())
}

pub(crate) fn audit_log(c: &mut Client) -> Result<Vec<AuditEntry>, StoreError> {
    let rows = c.query("SELECT id, at, actor, action, subject, detail FROM audit_log ORDER BY id", &[]).map_err(pg)?;
    Ok(rows
        .iter()
        .map(|r| AuditEntry {
            id: r.get(0),
            at: r.get(1),
            actor: r.get(2),
            action: r.get(3),
            subject: r.get(4),
            detail: r.get(5),
        })
        .collect())
}

pub(crate) fn record_report(c: &mut Client, r: &NewReport<'_>) -> Result<i64, StoreError> {
    let numbers = serde_json::to_string(r.numbers).unwrap_or_else(|_| "[]".into());
    Ok(c.query_one(
        "INSERT INTO reports (campaign, provider, sent_at, sent_to, via, format, numbers, reference)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        &[&r.campaign, &r.provider, &r.sent_at, &r.sent_to, &r.via, &r.format, &numbers, &r.reference],
    )
    .map_err(pg)?
    .get(0))
}

pub(crate) fn answer_report(c: &mut Client, id: i64, text: &str, at: i64) -> Result<bool, StoreError> {
    Ok(c.execute("UPDATE reports SET answer = $2, answered_at = $3 WHERE id = $1", &[&id, &text, &at]).map_err(pg)?
        == 1)
}

const REPORT_COLUMNS: &str =
    "id, campaign, provider, sent_at, sent_to, via, format, numbers, reference, answer, answered_at";

fn report(r: &Row) -> SentReport {
    let numbers: String = r.get(7);
    SentReport {
        id: r.get(0),
        campaign: r.get(1),
        provider: r.get(2),
        sent_at: r.get(3),
        sent_to: r.get(4),
        via: r.get(5),
        format: r.get(6),
        numbers: serde_json::from_str(&numbers).unwrap_or_default(),
        reference: r.get(8),
        answer: r.get(9),
        answered_at: r.get(10),
    }
}

pub(crate) fn sent_reports(c: &mut Client) -> Result<Vec<SentReport>, StoreError> {
    let rows = c.query(&format!("SELECT {REPORT_COLUMNS} FROM reports ORDER BY sent_at, id"), &[]).map_err(pg)?;
    Ok(rows.iter().map(report).collect())
}

pub(crate) fn sent_report(c: &mut Client, id: i64) -> Result<Option<SentReport>, StoreError> {
    Ok(c.query_opt(&format!("SELECT {REPORT_COLUMNS} FROM reports WHERE id = $1"), &[&id])
        .map_err(pg)?
        .map(|r| report(&r)))
}
