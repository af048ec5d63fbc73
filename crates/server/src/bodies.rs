//! Request bodies from outside, split and decoded before any handler logic:
//! ingest bodies into records, Twilio's form bodies into fields. Pure
//! functions of the bytes, fuzzed (fuzz/fuzz_targets/http_bodies.rs).

/// Why a body was refused: the HTTP status and a message for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError {
    pub status: u16,
    pub message: String,
}

impl BodyError {
    fn new(status: u16, message: impl Into<String>) -> BodyError {
        BodyError { status, message: message.into() }
    }
}

/// Splits a body into records: a JSON array or object, or NDJSON.
pub fn records(content_type: &str, body: &[u8]) -> Result<Vec<(u64, Vec<u8>)>, BodyError> {
    let ct = content_type.to_ascii_lowercase();
    let ndjson = ct.starts_with("application/x-ndjson")
        || ct.starts_with("application/jsonl")
        || ct.starts_with("application/ndjson");
    if !ndjson && !ct.starts_with("application/json") {
        return Err(BodyError::new(
            415,
            format!("Content-Type {ct:?}: send application/json (an array or one message) or application/x-ndjson"),
        ));
    }
    if ndjson {
        return Ok(body
            .split(|&b| b == b'\n')
            .enumerate()
            .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
            .map(|(i, l)| (i as u64 + 1, l.strip_suffix(b"\r").unwrap_or(l).to_vec()))
            .collect());
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| BodyError::new(400, format!("body is not UTF-8 (byte {})", e.valid_up_to())))?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let items: Vec<&serde_json::value::RawValue> =
            serde_json::from_str(text).map_err(|e| BodyError::new(400, format!("body is not a JSON array: {e}")))?;
        Ok(items.iter().enumerate().map(|(i, r)| (i as u64 + 1, r.get().as_bytes().to_vec())).collect())
    } else if trimmed.starts_with('{') {
        serde_json::from_str::<serde::de::IgnoredAny>(text)
            .map_err(|e| BodyError::new(400, format!("body is not a JSON object: {e}")))?;
        Ok(vec![(1, body.to_vec())])
    } else {
        Err(BodyError::new(400, "body is neither a JSON array nor a JSON object"))
    }
}

/// The fields of an `application/x-www-form-urlencoded` body (Twilio's
/// webhooks and send requests), percent-decoded, in order.
pub fn form(body: &[u8]) -> Result<Vec<(String, String)>, BodyError> {
    let text = std::str::from_utf8(body).map_err(|_| BodyError::new(400, "form body is not UTF-8"))?;
    let mut out = Vec::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let dec = |s: &str| -> Result<String, BodyError> {
            let s = s.replace('+', " ");
            let mut bytes = Vec::with_capacity(s.len());
            let b = s.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' {
                    let h = b
                        .get(i + 1..i + 3)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    match h {
                        Some(x) => {
                            bytes.push(x);
                            i += 3;
                            continue;
                        }
                        None => return Err(BodyError::new(400, "bad percent-encoding in the form")),
                    }
                }
                bytes.push(b[i]);
                i += 1;
            }
            String::from_utf8(bytes).map_err(|_| BodyError::new(400, "form value is not UTF-8"))
        };
        out.push((dec(k)?, dec(v)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode() {
        let f = form(b"Body=Hello+world%21&From=%2B12155551234&Empty=").unwrap();
        assert_eq!(f[0], ("Body".to_string(), "Hello world!".to_string()));
        assert_eq!(f[1].1, "+12155551234");
        assert_eq!(f[2].1, "");
        assert_eq!(form(b"Body=%ZZ").unwrap_err().status, 400);
        assert_eq!(form(b"Body=%C3").unwrap_err().status, 400, "half a UTF-8 character");
    }

    #[test]
    fn records_split_arrays_objects_and_ndjson() {
        assert_eq!(records("application/json", b"[{\"a\":1},{\"b\":2}]").unwrap().len(), 2);
        assert_eq!(records("application/json; charset=utf-8", b" {\"a\":1}").unwrap().len(), 1);
        let nd = records("application/x-ndjson", b"{\"a\":1}\r\n\n{\"b\":2}\n").unwrap();
        assert_eq!(nd.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(nd[0].1, b"{\"a\":1}");
        assert_eq!(records("text/plain", b"{}").unwrap_err().status, 415);
        assert_eq!(records("application/json", b"\xff").unwrap_err().status, 400);
        assert_eq!(records("application/json", b"42").unwrap_err().status, 400);
    }
}
