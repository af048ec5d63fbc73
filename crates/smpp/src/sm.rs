//! What a verdict needs from a message PDU (`submit_sm`, `data_sm`,
//! `deliver_sm`): addresses, coding, concatenation and text.

use rusmpp::tlvs::TlvValue;
use rusmpp::Pdu;

use crate::concat::{split_udh, Part};
use crate::text::{decode, DefaultAlphabet};

/// A short message as the proxy judges it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShortMessage {
    pub source: String,
    pub destination: String,
    pub esm_class: u8,
    pub data_coding: u8,
    /// Its place in a concatenated message (UDH or `sar_` TLVs).
    pub part: Option<Part>,
    /// This PDU's text (this part's, for a part).
    pub text: String,
}

impl ShortMessage {
    /// A delivery receipt (`esm_class` message type 0x04 or 0x08 in a
    /// `deliver_sm`), not a text from a person.
    pub fn is_receipt(&self) -> bool {
        matches!(self.esm_class & 0x3C, 0x04 | 0x08 | 0x10 | 0x20)
    }
}

struct Fields<'a> {
    source: &'a [u8],
    destination: &'a [u8],
    esm_class: u8,
    data_coding: u8,
    short_message: &'a [u8],
    tlvs: Vec<&'a TlvValue>,
}

fn text_of(f: Fields<'_>, default: DefaultAlphabet) -> ShortMessage {
    // SMPP says short_message and message_payload exclude each other; an
    // SMSC given both may deliver either, so both are judged, together.
    let mut joined: Vec<u8>;
    let mut payload: &[u8] = f.short_message;
    let (mut sar_ref, mut sar_total, mut sar_seq) = (None, None, None);
    for t in &f.tlvs {
        match t {
            TlvValue::MessagePayload(p) if payload.is_empty() => payload = &p.value,
            TlvValue::MessagePayload(p) => {
                joined = payload.to_vec();
                joined.extend_from_slice(&p.value);
                payload = &joined;
            }
            TlvValue::SarMsgRefNum(r) => sar_ref = Some(*r),
            TlvValue::SarTotalSegments(n) => sar_total = Some(*n),
            TlvValue::SarSegmentSeqnum(n) => sar_seq = Some(*n),
            _ => {}
        }
    }
    let (mut part, body) = if f.esm_class & 0x40 != 0 { split_udh(payload) } else { (None, payload) };
    if part.is_none() {
        if let (Some(reference), Some(total), Some(seq)) = (sar_ref, sar_total, sar_seq) {
            part = Some(Part { reference, total, seq }).filter(|p| p.total > 0 && p.seq >= 1 && p.seq <= p.total);
        }
    }
    // rusmpp's C-octet strings carry their NUL terminator.
    let addr = |b: &[u8]| String::from_utf8_lossy(b).trim_end_matches('\0').to_string();
    ShortMessage {
        source: addr(f.source),
        destination: addr(f.destination),
        esm_class: f.esm_class,
        data_coding: f.data_coding,
        part: part.filter(|p| p.total > 1),
        text: decode(f.data_coding, body, default),
    }
}

/// The short message a PDU carries, if it carries one.
pub fn of(pdu: &Pdu, default: DefaultAlphabet) -> Option<ShortMessage> {
    let f = match pdu {
        Pdu::SubmitSm(s) => Fields {
            source: &s.source_addr,
            destination: &s.destination_addr,
            esm_class: u8::from(s.esm_class),
            data_coding: u8::from(s.data_coding),
            short_message: s.short_message(),
            tlvs: s.tlvs().iter().filter_map(|t| t.value()).collect(),
        },
        Pdu::DeliverSm(s) => Fields {
            source: &s.source_addr,
            destination: &s.destination_addr,
            esm_class: u8::from(s.esm_class),
            data_coding: u8::from(s.data_coding),
            short_message: s.short_message(),
            tlvs: s.tlvs().iter().filter_map(|t| t.value()).collect(),
        },
        Pdu::DataSm(s) => Fields {
            source: &s.source_addr,
            destination: &s.destination_addr,
            esm_class: u8::from(s.esm_class),
            data_coding: u8::from(s.data_coding),
            short_message: &[],
            tlvs: s.tlvs().iter().filter_map(|t| t.value()).collect(),
        },
        _ => return None,
    };
    Some(text_of(f, default))
}

/// Everything the gateway reads from a byte stream, as it reads it: each
/// PDU framed, decoded, and its short message extracted. Stops where the
/// framing breaks. (The fuzz target `smpp` runs this on arbitrary bytes.)
pub fn read_stream(stream: &[u8], default: DefaultAlphabet) -> Vec<Result<Option<ShortMessage>, String>> {
    let mut buf = bytes::BytesMut::from(stream);
    let mut out = Vec::new();
    loop {
        match crate::frame::next(&mut buf) {
            Ok(Some(pdu)) => {
                let _ = crate::frame::Header::read(&pdu);
                out.push(crate::frame::decode(&pdu).map(|c| c.pdu().and_then(|p| of(p, default))));
            }
            Ok(None) => break,
            Err(e) => {
                out.push(Err(e.to_string()));
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A submit_sm as smpplib writes one: UDH part 1 of 2, GSM text.
    fn submit(esm: u8, dc: u8, sm: &[u8]) -> Vec<u8> {
        let mut body = vec![0u8, 1, 1];
        body.extend_from_slice(b"12155550100\0");
        body.extend_from_slice(&[1, 1]);
        body.extend_from_slice(b"12675550100\0");
        body.extend_from_slice(&[esm, 0, 0, 0, 0, 0, 0, dc, 0, sm.len() as u8]);
        body.extend_from_slice(sm);
        let mut pdu = ((16 + body.len()) as u32).to_be_bytes().to_vec();
        pdu.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 3]);
        pdu.extend_from_slice(&body);
        pdu
    }

    #[test]
    fn a_submit_gives_addresses_without_terminators_its_part_and_text() {
        let mut sm = vec![0x05, 0x00, 0x03, 0x09, 0x02, 0x01];
        sm.extend_from_slice(&[0x48, 0x69, 0x11, 0x1B, 0x65]);
        let got = read_stream(&submit(0x40, 0, &sm), DefaultAlphabet::Gsm);
        let m = got[0].clone().unwrap().unwrap();
        assert_eq!((m.source.as_str(), m.destination.as_str()), ("12155550100", "12675550100"));
        assert_eq!(m.part, Some(Part { reference: 9, total: 2, seq: 1 }));
        assert_eq!(m.text, "Hi_€");
        // Without the UDHI bit the same octets are all text.
        let m = read_stream(&submit(0, 3, b"caf\xe9"), DefaultAlphabet::Gsm)[0].clone().unwrap().unwrap();
        assert_eq!((m.part, m.text.as_str()), (None, "café"));
    }

    #[test]
    fn a_broken_stream_is_read_up_to_the_break() {
        let mut s = submit(0, 1, b"ok");
        s.extend_from_slice(&[0, 0, 0, 2]);
        let got = read_stream(&s, DefaultAlphabet::Gsm);
        assert_eq!(got.len(), 2);
        assert!(got[0].is_ok() && got[1].is_err());
    }
}
