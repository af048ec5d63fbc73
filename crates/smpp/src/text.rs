//! A short message's octets as text, by SMPP `data_coding` (SMPP 3.4
//! section 5.2.19):
//!
//! | data_coding | alphabet |
//! |---|---|
//! | 0 | SMSC default: GSM 03.38, one septet per octet (unpacked), or Latin-1 for SMSCs configured so ([`DefaultAlphabet`]) |
//! | 1 | IA5 (ASCII) |
//! | 3 | Latin-1 (ISO-8859-1) |
//! | 8 | UCS-2 (UTF-16BE; surrogate pairs are decoded) |
//! | 0xF0-0xF3 | GSM 03.38 with a message class |
//! | 2, 4, 0xF4-0xF7 | binary: shown as Latin-1 so that any text in it is still judged |
//!
//! Other codings (JIS, Cyrillic, Hebrew, KS C 5601) are read as UTF-8 where
//! they are, else Latin-1: a verdict on a rare alphabet is better than
//! none. Decoding never fails.

/// What `data_coding` 0 means on this link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DefaultAlphabet {
    /// GSM 03.38 (the usual SMSC default; Kannel and smpplib send it).
    #[default]
    Gsm,
    /// ISO-8859-1 (some US aggregators).
    Latin1,
}

impl std::str::FromStr for DefaultAlphabet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "gsm" | "gsm0338" | "gsm7" => Ok(DefaultAlphabet::Gsm),
            "latin1" | "latin-1" | "iso-8859-1" | "ascii" => Ok(DefaultAlphabet::Latin1),
            _ => Err(format!("unknown alphabet {s:?}: use gsm or latin1")),
        }
    }
}

/// GSM 03.38 default alphabet (3GPP TS 23.038 section 6.2.1); 0x1B is the
/// escape to [`GSM_EXT`].
const GSM: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1b}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// The extension table (after 0x1B), TS 23.038 section 6.2.1.1.
fn gsm_ext(b: u8) -> Option<char> {
    Some(match b {
        0x0A => '\u{0c}',
        0x14 => '^',
        0x28 => '{',
        0x29 => '}',
        0x2F => '\\',
        0x3C => '[',
        0x3D => '~',
        0x3E => ']',
        0x40 => '|',
        0x65 => '€',
        _ => return None,
    })
}

/// GSM 03.38, one septet per octet.
pub fn gsm(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut it = bytes.iter().peekable();
    while let Some(&b) = it.next() {
        let b = b & 0x7F;
        if b == 0x1B {
            match it.peek().and_then(|&&n| gsm_ext(n & 0x7F)) {
                Some(c) => {
                    out.push(c);
                    it.next();
                }
                // An unknown escape reads as a space (TS 23.038).
                None => out.push(' '),
            }
        } else {
            out.push(GSM[b as usize]);
        }
    }
    out
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

fn ucs2(bytes: &[u8]) -> String {
    let units = bytes.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]]));
    char::decode_utf16(units).map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER)).collect()
}

/// The text of `bytes` under `data_coding`.
pub fn decode(data_coding: u8, bytes: &[u8], default: DefaultAlphabet) -> String {
    match data_coding {
        0x00 => match default {
            DefaultAlphabet::Gsm => gsm(bytes),
            DefaultAlphabet::Latin1 => latin1(bytes),
        },
        0x01 => bytes.iter().map(|&b| (b & 0x7F) as char).collect(),
        0x02..=0x04 => latin1(bytes),
        0x08 => ucs2(bytes),
        0xF0..=0xF3 => gsm(bytes),
        0xF4..=0xF7 => latin1(bytes),
        _ => match std::str::from_utf8(bytes) {
            Ok(s) => s.to_string(),
            Err(_) => latin1(bytes),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm_decodes_the_default_and_extension_tables() {
        assert_eq!(gsm(b"Hello"), "Hello");
        assert_eq!(gsm(&[0x00, 0x02, 0x11, 0x1B, 0x65, 0x1B, 0x28, 0x1B, 0x29]), "@$_€{}");
        assert_eq!(gsm(&[0x1B]), " ", "a dangling escape");
        assert_eq!(gsm(&[0xFF]), "à", "the eighth bit is ignored");
    }

    #[test]
    fn each_coding_reads_as_its_alphabet() {
        assert_eq!(decode(0x08, &[0x00, 0x48, 0x00, 0xE9, 0xD8, 0x3D, 0xDE, 0x00], DefaultAlphabet::Gsm), "Hé😀");
        assert_eq!(decode(0x08, &[0xD8, 0x00], DefaultAlphabet::Gsm), "\u{fffd}", "a lone surrogate");
        assert_eq!(decode(0x03, &[0x63, 0x61, 0x66, 0xE9], DefaultAlphabet::Gsm), "café");
        assert_eq!(decode(0x00, b"a_b", DefaultAlphabet::Latin1), "a_b");
        assert_eq!(decode(0x00, &[0x61, 0x11, 0x62], DefaultAlphabet::Gsm), "a_b");
        assert_eq!(decode(0x01, b"STOP", DefaultAlphabet::Gsm), "STOP");
        assert_eq!("latin1".parse::<DefaultAlphabet>(), Ok(DefaultAlphabet::Latin1));
        assert!("ebcdic".parse::<DefaultAlphabet>().is_err());
    }
}
