//! What travels on the streams, and how it is written.
//!
//! - `TEXTWATCH_IN`: one message per stream message, as JSON (the fields
//!   of [`Message`]), with where it came from in the [`ORIGIN`] header
//!   (`file:line` for a published file).
//! - `TEXTWATCH_ANALYZED`: [`Record`]s, one per input message, as a JSON
//!   array per stream message (a worker's round, up to about 256 KB): the
//!   input's stream sequence, its origin, and what the worker made of it
//!   (or why it could not).

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use textwatch_engine::minhash::{Signature, SIG_LEN};
use textwatch_engine::{Analyzed, Message};

/// The header naming where a message came from.
pub const ORIGIN: &str = "Textwatch-Origin";

/// A message as it goes on `TEXTWATCH_IN`.
pub fn encode_message(m: &Message) -> Bytes {
    Bytes::from(serde_json::to_vec(m).unwrap_or_default())
}

/// A message from `TEXTWATCH_IN`.
pub fn decode_message(payload: &[u8]) -> Result<Message, String> {
    serde_json::from_slice(payload).map_err(|e| format!("not a textwatch message: {e}"))
}

/// Closes a batch written with [`Record::encode_into`].
pub fn finish_batch(mut batch: Vec<u8>) -> Bytes {
    if batch.is_empty() {
        batch.push(b'[');
    }
    batch.push(b']');
    Bytes::from(batch)
}

/// One input message after a worker.
#[derive(Debug, Serialize, Deserialize)]
pub struct Record {
    /// The input message's sequence in `TEXTWATCH_IN`: the order the
    /// assigner puts records back in.
    pub seq: u64,
    /// Where the message came from (`file:line`, `http`).
    pub origin: String,
    pub what: What,
}

/// What a worker made of a message.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum What {
    Analyzed {
        a: Box<Analyzed>,
        /// The keyed recipient hashes (not part of `Analyzed`'s JSON, which
        /// users see elsewhere).
        rcpt: Option<[u8; 16]>,
        rcpt_prev: Option<[u8; 16]>,
        /// The MinHash signature, when the template was new to the worker.
        sig: Option<Vec<u32>>,
    },
    /// The stream message was not a textwatch message (published by
    /// something else): the assigner skips its sequence, with a log line.
    Rejected { reason: String },
}

impl Record {
    pub fn analyzed(seq: u64, origin: String, a: Analyzed, sig: Option<&Signature>) -> Self {
        let (rcpt, rcpt_prev) = (a.rcpt, a.rcpt_prev);
        Record { seq, origin, what: What::Analyzed { a: Box::new(a), rcpt, rcpt_prev, sig: sig.map(|s| s.to_vec()) } }
    }

    /// Appends this record to a batch being written (`[` first, `,`
    /// between, [`finish_batch`] closes it).
    pub fn encode_into(&self, batch: &mut Vec<u8>) {
        batch.push(if batch.is_empty() { b'[' } else { b',' });
        // Serializing these plain structs cannot fail.
        let _ = serde_json::to_writer(&mut *batch, self);
    }

    /// The records of one stream message.
    pub fn decode_batch(payload: &[u8]) -> Result<Vec<Self>, String> {
        serde_json::from_slice(payload).map_err(|e| format!("not a batch of analyzed records: {e}"))
    }

    /// The analyzed message with its hashes back in place, and its
    /// signature; `Err` with the reason for a rejected one.
    pub fn into_parts(self) -> Result<(Analyzed, Option<Signature>), String> {
        match self.what {
            What::Analyzed { a, rcpt, rcpt_prev, sig } => {
                let mut a = *a;
                a.rcpt = rcpt;
                a.rcpt_prev = rcpt_prev;
                let sig = match sig {
                    Some(v) => Some(
                        <Signature>::try_from(v.as_slice())
                            .map_err(|_| format!("a signature of {} values, not {SIG_LEN}", v.len()))?,
                    ),
                    None => None,
                };
                Ok((a, sig))
            }
            What::Rejected { reason } => Err(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use textwatch_engine::minhash::{signature, MinHashScratch};
    use textwatch_engine::{Analyzer, RecipientHash, Scratch};

    #[test]
    fn an_analyzed_message_crosses_the_wire_unchanged() {
        let an = Analyzer::keyed(b"0123456789abcdef0123456789abcdef", RecipientHash::Blake3, 24)
            .with_previous_key(Some(b"previous key, during a rotation."), RecipientHash::Blake3);
        let m = Message {
            id: Some("m1".into()),
            ts_ms: 1_604_502_000_123,
            from: "+12155550100".into(),
            to: Some("+12675550000".into()),
            body: "Radical Liberals & Dems are trying to steal this election! Gather at https://bit.ly/x 📣".into(),
            source: Some("gateway".into()),
            meta: Some(r#"{"carrier":"x"}"#.into()),
        };
        let back = decode_message(&encode_message(&m)).unwrap();
        assert_eq!(back, m);
        let a = an.analyze(m, &mut Scratch::default());
        let sig = signature(&a.template, &mut MinHashScratch::default(), 24);
        let rec = Record::analyzed(7, "f.jsonl:3".into(), a.clone(), Some(&sig));
        let mut batch = Vec::new();
        rec.encode_into(&mut batch);
        Record { seq: 8, origin: String::new(), what: What::Rejected { reason: "x".into() } }.encode_into(&mut batch);
        let mut all = Record::decode_batch(&finish_batch(batch)).unwrap();
        assert_eq!(all.len(), 2);
        assert!(matches!(all[1].what, What::Rejected { .. }));
        let back = all.remove(0);
        assert_eq!((back.seq, back.origin.as_str()), (7, "f.jsonl:3"));
        let (b, s) = back.into_parts().unwrap();
        assert_eq!(s, Some(sig));
        assert!(a.rcpt.is_some() && a.rcpt_prev.is_some());
        assert_eq!((b.rcpt, b.rcpt_prev, b.key, b.template_key), (a.rcpt, a.rcpt_prev, a.key, a.template_key));
        assert_eq!(serde_json::to_value(&b).unwrap(), serde_json::to_value(&a).unwrap());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_message(b"\xff{").is_err());
        assert!(Record::decode_batch(b"[{\"seq\":1}]").is_err());
        assert_eq!(Record::decode_batch(&finish_batch(Vec::new())).unwrap().len(), 0);
        let bad = Record {
            seq: 1,
            origin: String::new(),
            what: What::Analyzed {
                a: Box::new(
                    Analyzer::keyed(b"k", RecipientHash::Blake3, 24)
                        .analyze(Message::default(), &mut Scratch::default()),
                ),
                rcpt: None,
                rcpt_prev: None,
                sig: Some(vec![1, 2, 3]),
            },
        };
        assert!(bad.into_parts().unwrap_err().contains("signature of 3 values"));
    }
}
