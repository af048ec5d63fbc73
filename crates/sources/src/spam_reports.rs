//! Spam reports as they arrive: an app's report (who reported, the sender,
//! the text, when) or a text a subscriber forwarded to the 7726 ("SPAM")
//! short code. 7726 takes a report as two texts from the same person: the
//! spam text, then, asked for it, the number it came from. This module
//! decodes both and says which texts are numbers; pairing them across
//! requests and restarts is the pipeline's (`textwatch_pipeline::reports`).

use std::sync::Arc;

use serde::Deserialize;

use crate::Reject;

/// One record of a spam-report feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportRecord {
    /// An app's report.
    App { reporter: String, sender: String, text: String, ts_ms: i64 },
    /// A text forwarded to 7726: the spam, or the number it came from.
    Forward { reporter: String, body: String, ts_ms: i64 },
}

#[derive(Deserialize)]
struct Raw {
    reporter: Option<String>,
    sender: Option<String>,
    text: Option<String>,
    body: Option<String>,
    from: Option<String>,
    ts: Option<serde_json::Value>,
}

/// Decodes one record (a JSON object): `{"reporter", "sender", "text",
/// "ts"}` for an app's report; `{"reporter", "body", "ts"}` (or the scan
/// format's `from` as the reporter) for a text forwarded to 7726.
pub fn decode_record(file: &Arc<str>, line: u64, bytes: &[u8]) -> Result<ReportRecord, Reject> {
    let reject = |reason: String| Reject::new(file, line, reason, bytes);
    let raw: Raw = serde_json::from_slice(bytes).map_err(|e| reject(format!("not a JSON object: {e}")))?;
    let reporter = raw
        .reporter
        .or(raw.from)
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| reject("field `reporter` (who reported) is missing".into()))?;
    let ts_ms = match &raw.ts {
        Some(serde_json::Value::String(s)) => {
            crate::time::parse_ts(s).map_err(|e| reject(format!("field `ts`: {e}")))?
        }
        Some(serde_json::Value::Number(n)) => {
            n.as_f64().map(|x| (x * 1000.0) as i64).ok_or_else(|| reject("field `ts`: not a time".into()))?
        }
        _ => return Err(reject("field `ts` (when it was reported) is missing".into())),
    };
    match (raw.sender, raw.text, raw.body) {
        (Some(sender), Some(text), _) if !sender.trim().is_empty() => {
            Ok(ReportRecord::App { reporter, sender, text, ts_ms })
        }
        (Some(_), None, _) => Err(reject("an app report needs `text` with its `sender`".into())),
        (None, _, Some(body)) => Ok(ReportRecord::Forward { reporter, body, ts_ms }),
        _ => Err(reject(
            "a report needs `sender` and `text` (an app's report) or `body` (a text forwarded to 7726)".into(),
        )),
    }
}

/// The number a forwarded text gives, if the whole text is one (as the
/// reporter answers 7726's "what number did it come from?"): 10 or 11
/// NANP digits or an E.164 number with punctuation, or a 5-6 digit short
/// code.
pub fn reported_number(body: &str) -> Option<String> {
    let t = body.trim();
    if t.is_empty() || t.len() > 24 {
        return None;
    }
    if !t.chars().all(|c| c.is_ascii_digit() || matches!(c, '+' | '(' | ')' | '-' | '.' | ' ')) {
        return None;
    }
    let digits: String = t.chars().filter(char::is_ascii_digit).collect();
    if t.starts_with('+') {
        // International as written: E.164 holds 8 to 15 digits.
        return (8..=15).contains(&digits.len()).then(|| format!("+{digits}"));
    }
    match digits.len() {
        5 | 6 => Some(digits),
        10 => Some(format!("+1{digits}")),
        11 if digits.starts_with('1') => Some(format!("+{digits}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_whole_texts_of_digits() {
        assert_eq!(reported_number("(267) 555-0142"), Some("+12675550142".into()));
        assert_eq!(reported_number(" 1-267-555-0142 "), Some("+12675550142".into()));
        assert_eq!(reported_number("72345"), Some("72345".into()));
        assert_eq!(reported_number("+44 7700 900123"), Some("+447700900123".into()));
        assert_eq!(reported_number("+4930123456"), Some("+4930123456".into()), "ten digits, not NANP");
        assert_eq!(reported_number("call 2675550142"), None);
        assert_eq!(reported_number("Your package is held, pay $2.99"), None);
        assert_eq!(reported_number("1234"), None);
    }

    #[test]
    fn records_of_both_kinds_decode_and_bad_ones_say_why() {
        let f: Arc<str> = Arc::from("r.jsonl");
        let app =
            br#"{"reporter":"app-user-17","sender":"+12675550142","text":"USPS: pay now","ts":"2020-11-04T15:00:00Z"}"#;
        assert!(matches!(decode_record(&f, 1, app), Ok(ReportRecord::App { .. })));
        let fwd = br#"{"from":"+12155550199","to":"7726","body":"USPS: pay now","ts":1604502000}"#;
        assert_eq!(
            decode_record(&f, 2, fwd),
            Ok(ReportRecord::Forward {
                reporter: "+12155550199".into(),
                body: "USPS: pay now".into(),
                ts_ms: 1_604_502_000_000
            })
        );
        let e = decode_record(&f, 3, br#"{"sender":"+1","text":"x","ts":1}"#).unwrap_err();
        assert!(e.reason.contains("reporter"), "{}", e.reason);
        let e = decode_record(&f, 4, br#"{"reporter":"a","ts":1}"#).unwrap_err();
        assert!(e.reason.contains("`body`"), "{}", e.reason);
        assert!(decode_record(&f, 5, b"[1,2]").is_err());
    }
}
