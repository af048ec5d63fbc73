//! JSON Lines: one message object per line.
//!
//! ```json
//! {"id": "m1", "ts": "2020-11-04T15:02:11Z", "from": "+12155550123",
//!  "to": "+12675550199", "body": "...", "source": "report"}
//! ```
//!
//! `ts`, `from` and `body` are required; `id`, `to` and `source` are
//! optional; `ts` is RFC 3339 (or another form [`crate::time`] accepts) or
//! epoch seconds. Any other field is kept, verbatim, in the message's
//! metadata. Lines are decoded independently (in parallel by the caller),
//! borrowing from the line buffer; only the fields kept are copied.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use textwatch_engine::Message;

use crate::time::{check_range, epoch_number, parse_ts};
use crate::Reject;

/// Decodes one line (without its newline). Blank lines are the caller's to
/// skip.
pub fn decode_line(file: &Arc<str>, line: u64, bytes: &[u8]) -> Result<Message, Reject> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Reject::new(file, line, format!("invalid UTF-8 at byte {} of the line", e.valid_up_to()), bytes)
    })?;
    let rec: Record = serde_json::from_str(text).map_err(|e| Reject::new(file, line, json_reason(&e), bytes))?;
    let ts_ms = match rec.ts {
        Some(Ts::Ms(ms)) => check_range(ms, &ms.to_string()).map_err(|r| Reject::new(file, line, r, bytes))?,
        Some(Ts::Text(s)) => parse_ts(&s).map_err(|r| Reject::new(file, line, format!("field `ts`: {r}"), bytes))?,
        None => return Err(Reject::new(file, line, "missing field `ts`", bytes)),
    };
    let from = rec.from.ok_or_else(|| Reject::new(file, line, "missing field `from`", bytes))?;
    let body = rec.body.ok_or_else(|| Reject::new(file, line, "missing field `body`", bytes))?;
    let msg = Message {
        id: rec.id.map(Cow::into_owned).filter(|s| !s.is_empty()),
        ts_ms,
        from: from.into_owned(),
        to: rec.to.map(Cow::into_owned).filter(|s| !s.trim().is_empty()),
        body: body.into_owned(),
        source: rec.source.map(Cow::into_owned),
        meta: rec.meta,
    };
    crate::check_limits(&msg).map_err(|r| Reject::new(file, line, r, bytes))?;
    Ok(msg)
}

fn json_reason(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    // serde_json appends " at line 1 column N": the line is ours, keep the column.
    match msg.rsplit_once(" at line 1 column ") {
        Some((what, col)) => format!("invalid JSON: {what} (column {col})"),
        None => format!("invalid JSON: {msg}"),
    }
}

enum Ts {
    Ms(i64),
    Text(String),
}

#[derive(Default)]
struct Record<'a> {
    id: Option<Cow<'a, str>>,
    ts: Option<Ts>,
    from: Option<Cow<'a, str>>,
    to: Option<Cow<'a, str>>,
    body: Option<Cow<'a, str>>,
    source: Option<Cow<'a, str>>,
    meta: Option<String>,
}

/// A string or null (with `NUMBERS`, a number too, as text: ids are
/// sometimes numbers; bodies never are).
struct Text<'a, const NUMBERS: bool = true>(Option<Cow<'a, str>>);

impl<'de, const NUMBERS: bool> de::Deserialize<'de> for Text<'de, NUMBERS> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const N: bool>;
        impl<'de, const N: bool> Visitor<'de> for V<N> {
            type Value = Text<'de, N>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                if !N {
                    return Err(E::invalid_type(de::Unexpected::Signed(v), &self));
                }
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                if !N {
                    return Err(E::invalid_type(de::Unexpected::Unsigned(v), &self));
                }
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
        }
        d.deserialize_any(V::<NUMBERS>)
    }
}

struct TsField(Option<Ts>);

impl<'de> de::Deserialize<'de> for TsField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TsField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an RFC 3339 string or epoch seconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(TsField(Some(Ts::Text(v.to_owned()))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(TsField(Some(Ts::Ms(epoch_number(v)))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(TsField(Some(Ts::Ms(epoch_number(i64::try_from(v).unwrap_or(i64::MAX / 1000))))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                if v.is_finite() && v.abs() < 1e15 {
                    Ok(TsField(Some(Ts::Ms((v * 1000.0).round() as i64))))
                } else {
                    Err(E::custom("field `ts` is not a usable number"))
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(TsField(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> de::Deserialize<'de> for Record<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Record<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object with ts, from and body")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut r = Record::default();
                let mut meta = String::new();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match key.as_ref() {
                        "id" => r.id = map.next_value::<Text>()?.0,
                        "ts" => r.ts = map.next_value::<TsField>()?.0,
                        "from" => r.from = map.next_value::<Text>()?.0,
                        "to" => r.to = map.next_value::<Text>()?.0,
                        "body" => {
                            r.body = Some(
                                map.next_value::<Text<'de, false>>()?
                                    .0
                                    .ok_or_else(|| de::Error::custom("field `body` is null"))?,
                            )
                        }
                        "source" => r.source = map.next_value::<Text>()?.0,
                        other => {
                            let raw: &RawValue = match map.next_value::<&RawValue>() {
                                Ok(v) => v,
                                Err(_) => {
                                    map.next_value::<IgnoredAny>()?;
                                    continue;
                                }
                            };
                            meta.push(if meta.is_empty() { '{' } else { ',' });
                            meta.push_str(&serde_json::to_string(other).unwrap_or_else(|_| "\"?\"".into()));
                            meta.push(':');
                            meta.push_str(raw.get());
                        }
                    }
                }
                if !meta.is_empty() {
                    meta.push('}');
                    r.meta = Some(meta);
                }
                Ok(r)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Result<Message, Reject> {
        decode_line(&Arc::from("t.jsonl"), 7, s.as_bytes())
    }

    #[test]
    fn full_record() {
        let m = dec(r#"{"id":"m1","ts":"2020-11-04T15:02:11Z","from":"+12155550123","to":"+12675550199","body":"Hi \"you\"","source":"report"}"#).unwrap();
        assert_eq!(m.id.as_deref(), Some("m1"));
        assert_eq!(m.ts_ms, 1_604_502_131_000);
        assert_eq!(m.body, "Hi \"you\"");
        assert_eq!(m.source.as_deref(), Some("report"));
        assert_eq!(m.meta, None);
    }

    #[test]
    fn optional_fields_and_epoch_seconds() {
        let m = dec(r#"{"ts":1604502131,"from":"72345","body":"x"}"#).unwrap();
        assert_eq!(m.id, None);
        assert_eq!(m.to, None);
        assert_eq!(m.ts_ms, 1_604_502_131_000);
        let m = dec(r#"{"id":42,"ts":1604502131,"from":"72345","body":"x","to":null}"#).unwrap();
        assert_eq!(m.id.as_deref(), Some("42"));
    }

    #[test]
    fn unknown_fields_become_metadata() {
        let m = dec(r#"{"ts":1604502131,"carrier":"T-Mobile","from":"1","body":"x","tags":["a",{"b":1}]}"#).unwrap();
        assert_eq!(m.meta.as_deref(), Some(r#"{"carrier":"T-Mobile","tags":["a",{"b":1}]}"#));
        let v: serde_json::Value = serde_json::from_str(m.meta.as_deref().unwrap()).unwrap();
        assert_eq!(v["carrier"], "T-Mobile");
    }

    #[test]
    fn bad_records_name_the_reason() {
        let cases = [
            (r#"{"ts":1604502131,"from":"1"}"#, "missing field `body`"),
            (r#"{"ts":1604502131,"body":"x"}"#, "missing field `from`"),
            (r#"{"from":"1","body":"x"}"#, "missing field `ts`"),
            (r#"{"ts":"soon","from":"1","body":"x"}"#, "field `ts`"),
            (r#"{"ts":1604502131,"from":"1","body":"x""#, "invalid JSON"),
            (r#"[1,2]"#, "invalid JSON"),
            (r#"{"ts":1604502131,"from":"1","body":null}"#, "null"),
            (r#"{"ts":1604502131,"from":"1","body":5}"#, "invalid JSON"),
        ];
        for (line, want) in cases {
            let r = dec(line).unwrap_err();
            assert!(r.reason.contains(want), "{line}: {} (wanted {want})", r.reason);
            assert_eq!(r.line, 7);
            assert_eq!(r.raw, line.as_bytes());
        }
    }

    #[test]
    fn invalid_utf8_and_huge_bodies_are_rejected() {
        let r = decode_line(&Arc::from("t"), 1, b"{\"ts\":1,\"from\":\"1\",\"body\":\"\xff\"}").unwrap_err();
        assert!(r.reason.contains("invalid UTF-8 at byte 27"), "{}", r.reason);
        let big = format!(r#"{{"ts":1604502131,"from":"1","body":"{}"}}"#, "a".repeat(1 << 20));
        let r = dec(&big).unwrap_err();
        assert!(r.reason.contains("body is 1048576 bytes"), "{}", r.reason);
        assert_eq!(r.raw.len(), crate::MAX_REJECT_BYTES);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = decode_line(&Arc::from("p"), 1, &bytes);
        }

        #[test]
        fn never_panics_on_jsonish(s in r#"\{("[a-z]{1,5}":("[^"\\]{0,10}"|[0-9]{1,13}|null|\[\]|\{\}),?){0,6}\}"#) {
            let _ = decode_line(&Arc::from("p"), 1, s.as_bytes());
        }
    }
}
