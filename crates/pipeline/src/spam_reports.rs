//! Spam reports into messages: an app's report is one; a 7726 report is
//! two texts from the same person (the spam text, then the number it came
//! from), paired here across requests and restarts (the first half waits
//! in the store, keyed by the reporter's hash, for up to a day).
//!
//! A report becomes a message from the reported sender to the reporter
//! (who received it), with source `report`, so it joins the campaign its
//! text belongs to; its id is a hash of reporter, sender and text, so the
//! same person reporting the same text twice counts once.

use textwatch_engine::sender::normalize_address;
use textwatch_engine::{Analyzer, Message};
use textwatch_sources::spam_reports::{reported_number, ReportRecord};
use textwatch_store::WriteStore;

use crate::PipelineError;

/// How long the first half of a 7726 report waits for its number.
pub const PAIR_WINDOW_MS: i64 = 24 * 3_600_000;

/// What pairing gave.
#[derive(Debug, Default)]
pub struct Paired {
    /// One message per report.
    pub messages: Vec<Message>,
    /// Forwarded texts now waiting for their number.
    pub waiting: usize,
    /// Numbers with no forwarded text before them (within a day).
    pub unpaired: usize,
    /// The waiting first halves this pairing took from the store
    /// (reporter's keyed hash, time, text): what [`give_back`] returns if
    /// the paired reports cannot be stored.
    pub taken: Vec<([u8; 16], i64, String)>,
}

fn message(an: &Analyzer, reporter: &str, sender: &str, text: String, ts_ms: i64) -> Message {
    let r = an.hash_recipient(reporter);
    let sender = normalize_address(sender);
    let mut key = Vec::with_capacity(64 + text.len());
    key.extend_from_slice(&r);
    key.extend_from_slice(sender.as_bytes());
    key.push(0);
    key.extend_from_slice(text.as_bytes());
    Message {
        id: Some(format!("rpt-{:016x}", xxhash_rust::xxh3::xxh3_64(&key))),
        ts_ms,
        from: sender,
        to: Some(reporter.to_string()),
        body: text,
        source: Some("report".into()),
        meta: None,
    }
}

/// Pairs `records` (in time order) against what waits in `store`.
pub fn pair(
    store: &mut dyn WriteStore,
    an: &Analyzer,
    mut records: Vec<ReportRecord>,
) -> Result<Paired, PipelineError> {
    let ts = |r: &ReportRecord| match r {
        ReportRecord::App { ts_ms, .. } | ReportRecord::Forward { ts_ms, .. } => *ts_ms,
    };
    records.sort_by_key(ts);
    let mut out = Paired::default();
    for r in records {
        match r {
            ReportRecord::App { reporter, sender, text, ts_ms } => {
                out.messages.push(message(an, &reporter, &sender, text, ts_ms));
            }
            ReportRecord::Forward { reporter, body, ts_ms } => {
                let who = an.hash_recipient(&reporter);
                match reported_number(&body) {
                    Some(sender) => match store.take_pending_report(&who, ts_ms, PAIR_WINDOW_MS)? {
                        Some((t, text)) => {
                            out.waiting = out.waiting.saturating_sub(1);
                            out.taken.push((who, t, text.clone()));
                            out.messages.push(message(an, &reporter, &sender, text, t));
                        }
                        None => out.unpaired += 1,
                    },
                    None => {
                        store.put_pending_report(&who, ts_ms, &body)?;
                        out.waiting += 1;
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Puts first halves taken by [`pair`] back to wait, when the reports
/// they made could not be stored: the reporter's next number pairs them.
/// A reporter who forwarded a newer text since keeps that one (a number
/// pairs with the latest text).
pub fn give_back(store: &mut dyn WriteStore, taken: &[([u8; 16], i64, String)]) -> Result<(), PipelineError> {
    for (who, ts, text) in taken {
        store.put_back_pending_report(who, *ts, text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use textwatch_store::Store;

    fn fwd(reporter: &str, body: &str, ts_ms: i64) -> ReportRecord {
        ReportRecord::Forward { reporter: reporter.into(), body: body.into(), ts_ms }
    }

    #[test]
    fn forwarded_text_then_number_make_one_report_across_calls() {
        let mut store = textwatch_store::sqlite::SqliteStore::in_memory().unwrap();
        let an = Analyzer::keyed(store.secret(), store.recipient_hash(), 3);
        let spam = "USPS: your parcel is on hold, pay the $1.99 fee at usps-fee.top";
        let p = pair(&mut store, &an, vec![fwd("+12155550199", spam, 1_000)]).unwrap();
        assert_eq!((p.messages.len(), p.waiting), (0, 1));
        // The number comes in a later request: paired with the kept text.
        let p = pair(&mut store, &an, vec![fwd("+12155550199", "(302) 555-0177", 60_000)]).unwrap();
        assert_eq!(p.messages.len(), 1);
        let m = &p.messages[0];
        assert_eq!((m.from.as_str(), m.body.as_str(), m.ts_ms), ("+13025550177", spam, 1_000));
        assert_eq!(m.source.as_deref(), Some("report"));
        // A number on its own, and one a day too late, pair with nothing.
        let p = pair(
            &mut store,
            &an,
            vec![
                fwd("+12155550100", "3025550177", 5),
                fwd("+12155550101", spam, 0),
                fwd("+12155550101", "3025550177", PAIR_WINDOW_MS + 1),
            ],
        )
        .unwrap();
        assert_eq!((p.messages.len(), p.unpaired), (0, 2));
        // The same person, text and sender twice: the same id.
        let a = message(&an, "+12155550199", "+13025550177", spam.into(), 1);
        let b = message(&an, "+1 215 555 0199", "3025550177", spam.into(), 2);
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, message(&an, "+12155550198", "+13025550177", spam.into(), 1).id);
    }

    #[test]
    fn halves_given_back_wait_again_but_never_over_a_newer_text() {
        let mut store = textwatch_store::sqlite::SqliteStore::in_memory().unwrap();
        let an = Analyzer::keyed(store.secret(), store.recipient_hash(), 3);
        let (t1, t2) =
            ("USPS: your parcel is on hold at usps-fee.top", "Your bank account is locked, verify at bank-lock.top");
        pair(&mut store, &an, vec![fwd("+12155550199", t1, 1_000)]).unwrap();
        let p = pair(&mut store, &an, vec![fwd("+12155550199", "(302) 555-0177", 2_000)]).unwrap();
        assert_eq!((p.messages.len(), p.taken.len()), (1, 1));
        // Its report was not stored: the text waits again, and the retry
        // of the number pairs it.
        give_back(&mut store, &p.taken).unwrap();
        let again = pair(&mut store, &an, vec![fwd("+12155550199", "(302) 555-0177", 3_000)]).unwrap();
        assert_eq!(again.messages.len(), 1);
        assert_eq!(again.messages[0].body, t1);
        // A newer text forwarded meanwhile keeps its place: the old one,
        // given back, does not replace it.
        pair(&mut store, &an, vec![fwd("+12155550199", t2, 4_000)]).unwrap();
        give_back(&mut store, &again.taken).unwrap();
        let last = pair(&mut store, &an, vec![fwd("+12155550199", "(302) 555-0188", 5_000)]).unwrap();
        assert_eq!(last.messages.len(), 1);
        assert_eq!(last.messages[0].body, t2);
    }
}
