//! CSV inputs: a header row naming the columns, then one message per record.
//!
//! Column names are matched case-insensitively, with the aliases exports
//! use: `id`/`sid`/`message_id`, `ts`/`timestamp`/`date`/`sentdate`/
//! `date_sent`, `from`/`sender`, `to`/`recipient`, `body`/`text`/`message`,
//! `source`. Twilio's message-log export (`From, To, Body, Status,
//! SentDate, ApiVersion, NumSegments, ErrorCode, AccountSid, Sid,
//! Direction, Price, PriceUnit`) is recognized by its `SentDate` and `Sid`
//! columns; its rows get source `twilio` unless the file has a `source`
//! column. Columns not used are kept as metadata.

use std::io::BufRead;
use std::sync::Arc;

use textwatch_engine::Message;

use crate::chunk::{Chunk, FileFormat, InputError, CHUNK_RECORDS};
use crate::time::parse_ts;
use crate::{Decoded, Reject};

/// Header names accepted for each column (lower case, spaces and dashes
/// as underscores).
const ID: &[&str] = &["id", "sid", "message_id", "messageid", "message_sid", "messagesid"];
const TS: &[&str] = &[
    "ts",
    "timestamp",
    "time",
    "date",
    "sentdate",
    "sent_date",
    "date_sent",
    "datesent",
    "sent_at",
    "received_at",
    "created_at",
    "datecreated",
    "date_created",
];
const FROM: &[&str] = &["from", "sender", "from_number", "originator"];
const TO: &[&str] = &["to", "recipient", "to_number", "destination"];
const BODY: &[&str] = &["body", "text", "message", "content", "message_body"];

/// `s` cut to `max` characters, control characters shown as escapes (a
/// header is shown back to the user in an error).
fn printable(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[derive(Default, Debug)]
struct Columns {
    id: Option<usize>,
    ts: Option<usize>,
    from: Option<usize>,
    to: Option<usize>,
    body: Option<usize>,
    source: Option<usize>,
    names: Vec<String>,
}

/// Decodes CSV records into messages.
pub struct CsvDecoder {
    reader: csv::Reader<Box<dyn BufRead + Send>>,
    cols: Columns,
    file: Arc<str>,
    format: FileFormat,
    record: csv::ByteRecord,
}

impl CsvDecoder {
    /// Reads the header and maps the columns. A header without `from`,
    /// `body` and a time column is an error for the whole file.
    pub fn new(reader: Box<dyn BufRead + Send>, file: Arc<str>) -> Result<Self, InputError> {
        let mut reader = csv::ReaderBuilder::new().flexible(true).has_headers(true).from_reader(reader);
        let header = reader
            .byte_headers()
            .map_err(|e| InputError::Format { path: file.to_string(), reason: format!("reading the CSV header: {e}") })?
            .clone();
        let mut cols = Columns::default();
        let mut seen_sentdate = false;
        let mut seen_sid = false;
        for (i, raw) in header.iter().enumerate() {
            let name = String::from_utf8_lossy(raw).trim().trim_start_matches('\u{feff}').to_string();
            let key = name.to_ascii_lowercase().replace([' ', '-'], "_");
            seen_sentdate |= key == "sentdate";
            seen_sid |= key == "sid";
            let k = key.as_str();
            let slot = if ID.contains(&k) {
                &mut cols.id
            } else if TS.contains(&k) {
                &mut cols.ts
            } else if FROM.contains(&k) {
                &mut cols.from
            } else if TO.contains(&k) {
                &mut cols.to
            } else if BODY.contains(&k) {
                &mut cols.body
            } else if k == "source" {
                &mut cols.source
            } else {
                cols.names.push(name);
                continue;
            };
            if slot.is_none() {
                *slot = Some(i);
            }
            cols.names.push(name);
        }
        let mut missing = Vec::new();
        for (col, name, aliases) in [(cols.from, "from", FROM), (cols.body, "body", BODY), (cols.ts, "ts", TS)] {
            if col.is_none() {
                missing.push(format!("{name} (named one of: {})", aliases.join(", ")));
            }
        }
        if !missing.is_empty() {
            let found: Vec<String> = cols.names.iter().map(|n| printable(n, 40)).collect();
            return Err(InputError::Format {
                path: file.to_string(),
                reason: format!(
                    "the CSV header has no column for {}; columns found: {} (names match case-insensitively; spaces and dashes count as underscores)",
                    missing.join("; "),
                    found.join(", ")
                ),
            });
        }
        let format = if seen_sentdate && seen_sid { FileFormat::TwilioCsv } else { FileFormat::Csv };
        Ok(CsvDecoder { reader, cols, file, format, record: csv::ByteRecord::new() })
    }

    /// The detected format.
    pub fn format(&self) -> FileFormat {
        self.format
    }

    /// Reads and decodes the next chunk of records.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, InputError> {
        let mut records = Vec::new();
        while records.len() < CHUNK_RECORDS {
            match self.reader.read_byte_record(&mut self.record) {
                Ok(false) => break,
                Ok(true) => {
                    let line = self.record.position().map_or(0, |p| p.line());
                    records.push(self.decode(line));
                }
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    if let csv::ErrorKind::Io(_) = e.kind() {
                        return Err(InputError::Read {
                            path: self.file.to_string(),
                            line,
                            source: std::io::Error::other(e.to_string()),
                        });
                    }
                    records.push(Err(Reject::new(&self.file, line, format!("invalid CSV: {e}"), b"")));
                }
            }
        }
        if records.is_empty() {
            return Ok(None);
        }
        Ok(Some(Chunk::Decoded { file: self.file.clone(), records }))
    }

    fn raw(&self) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_byte_record(&self.record);
        w.into_inner().unwrap_or_default()
    }

    fn field(&self, col: Option<usize>, name: &str, line: u64) -> Result<Option<&str>, Reject> {
        let Some(i) = col else { return Ok(None) };
        match self.record.get(i) {
            None => Ok(None),
            Some(b) => std::str::from_utf8(b).map(Some).map_err(|e| {
                Reject::new(
                    &self.file,
                    line,
                    format!("column `{name}`: invalid UTF-8 at byte {}", e.valid_up_to()),
                    &self.raw(),
                )
            }),
        }
    }

    fn decode(&self, line: u64) -> Result<Decoded, Reject> {
        let c = &self.cols;
        let body = self
            .field(c.body, "body", line)?
            .ok_or_else(|| Reject::new(&self.file, line, "missing field `body`", &self.raw()))?;
        let from = self.field(c.from, "from", line)?.unwrap_or("");
        let ts = self.field(c.ts, "ts", line)?.unwrap_or("");
        let ts_ms = parse_ts(ts).map_err(|r| Reject::new(&self.file, line, format!("field `ts`: {r}"), &self.raw()))?;
        let nonempty = |s: Option<&str>| s.map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        let source = nonempty(self.field(c.source, "source", line)?)
            .or_else(|| (self.format == FileFormat::TwilioCsv).then(|| "twilio".to_owned()));
        let used = [c.id, c.ts, c.from, c.to, c.body, c.source];
        let mut meta = serde_json::Map::new();
        for (i, v) in self.record.iter().enumerate() {
            if used.contains(&Some(i)) || v.is_empty() {
                continue;
            }
            let name = c.names.get(i).cloned().unwrap_or_else(|| format!("column_{}", i + 1));
            meta.insert(name, serde_json::Value::String(String::from_utf8_lossy(v).into_owned()));
        }
        let msg = Message {
            id: nonempty(self.field(c.id, "id", line)?),
            ts_ms,
            from: from.trim().to_owned(),
            to: nonempty(self.field(c.to, "to", line)?),
            body: body.to_owned(),
            source,
            meta: (!meta.is_empty()).then(|| serde_json::Value::Object(meta).to_string()),
        };
        if msg.from.is_empty() {
            return Err(Reject::new(&self.file, line, "missing field `from`", &self.raw()));
        }
        crate::check_limits(&msg).map_err(|r| Reject::new(&self.file, line, r, &self.raw()))?;
        Ok(Decoded { msg, line })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(data: &str) -> Result<(FileFormat, Vec<Result<Decoded, Reject>>), InputError> {
        let reader: Box<dyn BufRead + Send> = Box::new(std::io::Cursor::new(data.as_bytes().to_vec()));
        let mut d = CsvDecoder::new(reader, Arc::from("t.csv"))?;
        let mut all = Vec::new();
        while let Some(Chunk::Decoded { records, .. }) = d.next_chunk()? {
            all.extend(records);
        }
        Ok((d.format(), all))
    }

    #[test]
    fn plain_csv_with_quoted_multiline_body() {
        let (fmt, recs) = decode_all(
            "id,ts,from,to,body,carrier\nm1,2020-11-04T15:02:11Z,+12155550123,+12675550199,\"Hi, there\nline two\",tmo\nm2,1604502131,72345,,plain,\n",
        )
        .unwrap();
        assert_eq!(fmt, FileFormat::Csv);
        let a = recs[0].as_ref().unwrap();
        assert_eq!(a.msg.body, "Hi, there\nline two");
        assert_eq!(a.msg.meta.as_deref(), Some(r#"{"carrier":"tmo"}"#));
        assert_eq!(a.line, 2);
        let b = recs[1].as_ref().unwrap();
        assert_eq!(b.line, 4);
        assert_eq!(b.msg.to, None);
    }

    #[test]
    fn twilio_export_is_recognized() {
        let (fmt, recs) = decode_all(
            "From,To,Body,Status,SentDate,ApiVersion,NumSegments,ErrorCode,AccountSid,Sid,Direction,Price,PriceUnit\n\
             +12155550123,+12675550199,Polls moved to Wednesday,delivered,2020-11-04T10:02:11-05:00,2010-04-01,1,0,AC1,SM1,outbound-api,-0.0075,USD\n",
        )
        .unwrap();
        assert_eq!(fmt, FileFormat::TwilioCsv);
        let m = &recs[0].as_ref().unwrap().msg;
        assert_eq!(m.id.as_deref(), Some("SM1"));
        assert_eq!(m.ts_ms, 1_604_502_131_000);
        assert_eq!(m.source.as_deref(), Some("twilio"));
        assert!(m.meta.as_deref().unwrap().contains("\"Status\":\"delivered\""));
    }

    #[test]
    fn header_without_body_is_a_file_error() {
        let e = decode_all("from,ts,note\n1,2,3\n").unwrap_err();
        assert!(
            e.to_string().contains("no column for body (named one of: body, text, message, content, message_body)"),
            "{e}"
        );
        assert!(e.to_string().contains("columns found: from, ts, note"), "{e}");
    }

    #[test]
    fn header_errors_show_control_bytes_escaped() {
        let e = decode_all("a\x1b[31m,b\n1,2\n").unwrap_err().to_string();
        assert!(!e.contains('\x1b'), "{e}");
        assert!(e.contains("a\\u{1b}[31m"), "{e}");
        assert!(e.contains("no column for from (named one of: from, sender"), "{e}");
    }

    #[test]
    fn bad_rows_are_rejected_with_line_numbers() {
        let (_, recs) = decode_all("ts,from,body\nnope,1,x\n1604502131,,x\n1604502131,1\n1604502131,1,ok\n").unwrap();
        let reasons: Vec<String> = recs
            .iter()
            .map(|r| r.as_ref().err().map(|e| format!("{}:{}", e.line, e.reason)).unwrap_or_default())
            .collect();
        assert!(reasons[0].starts_with("2:field `ts`"), "{reasons:?}");
        assert_eq!(reasons[1], "3:missing field `from`");
        assert_eq!(reasons[2], "4:missing field `body`");
        assert!(recs[3].is_ok());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let mut data = b"ts,from,body,x\n".to_vec();
            data.extend_from_slice(&body);
            let reader: Box<dyn BufRead + Send> = Box::new(std::io::Cursor::new(data));
            if let Ok(mut d) = CsvDecoder::new(reader, Arc::from("p")) {
                while let Ok(Some(_)) = d.next_chunk() {}
            }
        }
    }
}
