//! PDUs on the wire: a 16-octet header (length, id, status, sequence)
//! and a body. Framing is done here, so that a PDU whose body does not
//! decode can still be answered (`generic_nack` with its sequence number)
//! and the session lives on; the body is decoded by `rusmpp`.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use rusmpp::decode::DecodeWithLength as _;
use rusmpp::encode::{Encode as _, Length as _};
use rusmpp::Command;

/// The header's size.
pub const HEADER: usize = 16;

/// The largest PDU accepted: a `submit_sm` carries at most 255 octets of
/// short message or 64 KB of `message_payload`.
pub const MAX_PDU: usize = 70_000;

/// A PDU's header, readable even when its body is not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub length: u32,
    pub id: u32,
    pub status: u32,
    pub sequence: u32,
}

impl Header {
    /// Reads a header from the first 16 octets.
    pub fn read(b: &[u8]) -> Option<Header> {
        let mut b = b.get(..HEADER)?;
        Some(Header { length: b.get_u32(), id: b.get_u32(), status: b.get_u32(), sequence: b.get_u32() })
    }

    /// Whether the id is a response's (bit 31 set).
    pub fn is_response(&self) -> bool {
        self.id & 0x8000_0000 != 0
    }
}

/// Why the stream cannot go on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("command_length {0} is below the 16-octet header")]
    TooShort(u32),
    #[error("command_length {0} is over the {MAX_PDU}-octet limit")]
    TooLong(u32),
}

/// Takes the next whole PDU off `buf`, if it holds one. An impossible
/// length is an error: the stream has lost its framing and the session
/// must end (after a `generic_nack`).
pub fn next(buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if (len as usize) < HEADER {
        return Err(FrameError::TooShort(len));
    }
    if len as usize > MAX_PDU {
        return Err(FrameError::TooLong(len));
    }
    if buf.len() < len as usize {
        buf.reserve(len as usize - buf.len());
        return Ok(None);
    }
    Ok(Some(buf.split_to(len as usize).freeze()))
}

/// Decodes a whole PDU (as [`next`] gives it).
pub fn decode(pdu: &[u8]) -> Result<Command, String> {
    if pdu.len() < HEADER {
        return Err(format!("{} octets is shorter than a header", pdu.len()));
    }
    let mut body = BytesMut::from(&pdu[4..]);
    let len = body.len();
    match Command::decode(&mut body, len) {
        Ok((cmd, used)) if used == len => Ok(cmd),
        Ok((_, used)) => Err(format!("{} octets after the PDU's fields", len - used)),
        Err(e) => Err(e.to_string()),
    }
}

/// Encodes a command (length prefixed).
pub fn encode(cmd: &Command) -> Bytes {
    let len = 4 + cmd.length();
    let mut out = BytesMut::with_capacity(len);
    out.put_u32(len as u32);
    let start = out.len();
    out.resize(len, 0);
    cmd.encode(&mut out[start..]);
    out.freeze()
}

/// The same PDU with another sequence number: a proxy forwards what it
/// relays octet for octet, renumbered for the other session.
pub fn with_sequence(pdu: &[u8], sequence: u32) -> Bytes {
    let mut b = BytesMut::from(pdu);
    if b.len() >= HEADER {
        b[12..16].copy_from_slice(&sequence.to_be_bytes());
    }
    b.freeze()
}

/// A bodyless PDU (`generic_nack`, `enquire_link_resp`, `unbind_resp`...)
/// built by hand: no codec can refuse it.
pub fn bare(id: u32, status: u32, sequence: u32) -> Bytes {
    let mut b = BytesMut::with_capacity(HEADER);
    b.put_u32(HEADER as u32);
    b.put_u32(id);
    b.put_u32(status);
    b.put_u32(sequence);
    b.freeze()
}

/// A response whose body is one C-octet string (`submit_sm_resp`,
/// `data_sm_resp` without TLVs, `bind_*_resp`, `deliver_sm_resp`).
pub fn with_c_string(id: u32, status: u32, sequence: u32, s: &str) -> Bytes {
    let s: String = s.chars().filter(|c| *c != '\0').take(64).collect();
    let len = HEADER + s.len() + 1;
    let mut b = BytesMut::with_capacity(len);
    b.put_u32(len as u32);
    b.put_u32(id);
    b.put_u32(status);
    b.put_u32(sequence);
    b.put_slice(s.as_bytes());
    b.put_u8(0);
    b.freeze()
}

/// Command ids used by the proxy.
pub mod id {
    pub const GENERIC_NACK: u32 = 0x8000_0000;
    pub const BIND_RECEIVER: u32 = 0x0000_0001;
    pub const BIND_TRANSMITTER: u32 = 0x0000_0002;
    pub const QUERY_SM: u32 = 0x0000_0003;
    pub const SUBMIT_SM: u32 = 0x0000_0004;
    pub const DELIVER_SM: u32 = 0x0000_0005;
    pub const UNBIND: u32 = 0x0000_0006;
    pub const REPLACE_SM: u32 = 0x0000_0007;
    pub const CANCEL_SM: u32 = 0x0000_0008;
    pub const BIND_TRANSCEIVER: u32 = 0x0000_0009;
    pub const OUTBIND: u32 = 0x0000_000B;
    pub const ENQUIRE_LINK: u32 = 0x0000_0015;
    pub const SUBMIT_MULTI: u32 = 0x0000_0021;
    pub const ALERT_NOTIFICATION: u32 = 0x0000_0102;
    pub const DATA_SM: u32 = 0x0000_0103;
    /// A request's response id.
    pub const fn resp(id: u32) -> u32 {
        id | 0x8000_0000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_a_stream_and_refuse_impossible_lengths() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&bare(id::ENQUIRE_LINK, 0, 7));
        buf.extend_from_slice(&bare(id::ENQUIRE_LINK, 0, 8)[..10]);
        let one = next(&mut buf).unwrap().unwrap();
        assert_eq!(Header::read(&one).unwrap().sequence, 7);
        assert_eq!(next(&mut buf).unwrap(), None, "half a PDU waits");
        let mut bad = BytesMut::from(&[0u8, 0, 0, 3][..]);
        assert_eq!(next(&mut bad), Err(FrameError::TooShort(3)));
        let mut big = BytesMut::from(&[0x7fu8, 0, 0, 0][..]);
        assert!(matches!(next(&mut big), Err(FrameError::TooLong(_))));
    }

    #[test]
    fn decode_reads_what_encode_and_bare_write() {
        let link = bare(id::ENQUIRE_LINK, 0, 42);
        let c = decode(&link).unwrap();
        assert_eq!((c.id(), c.sequence_number()), (rusmpp::CommandId::EnquireLink, 42));
        let again = encode(&c);
        assert_eq!(again, link);
        let resp = with_c_string(id::resp(id::SUBMIT_SM), 0x45, 9, "");
        let c = decode(&resp).unwrap();
        assert_eq!(c.id(), rusmpp::CommandId::SubmitSmResp);
        assert_eq!(Header::read(&with_sequence(&resp, 77)).unwrap().sequence, 77);
    }

    #[test]
    fn a_body_that_does_not_decode_is_an_error_not_a_panic() {
        // submit_sm whose body stops inside service_type.
        let mut b = BytesMut::new();
        b.put_u32(19);
        b.put_u32(id::SUBMIT_SM);
        b.put_u32(0);
        b.put_u32(5);
        b.put_slice(b"abc");
        assert!(decode(&b).is_err());
    }
}
