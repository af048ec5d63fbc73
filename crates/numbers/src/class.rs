//! What kind of sender an address is, and whether it can exist at all.
//!
//! Carriers must block texts whose From is an invalid, unallocated or
//! unused NANP number (FCC 23-21). [`classify`] finds the impossible ones:
//! wrong length, area codes or exchanges starting with 0 or 1, N11 service
//! codes, the fictional 555-01XX range, and area codes NANPA has not
//! assigned (checked against the shipped area-code table and, for codes
//! assigned after that table's date, libphonenumber's newer metadata).

use serde::Serialize;

use crate::npa::NpaTable;

/// The class of a sender address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SenderClass {
    /// A ten-digit NANP number (10DLC, P2P).
    LongCode,
    /// NANP toll-free: 800, 833, 844, 855, 866, 877, 888.
    TollFree,
    /// A US/Canadian short code: 5 or 6 digits.
    ShortCode,
    /// A valid number outside the NANP.
    International,
    /// An alphanumeric sender ID (`ACME`).
    Alphanumeric,
    /// Cannot be a real sender.
    Invalid,
}

impl SenderClass {
    pub fn as_str(self) -> &'static str {
        match self {
            SenderClass::LongCode => "long-code",
            SenderClass::TollFree => "toll-free",
            SenderClass::ShortCode => "short-code",
            SenderClass::International => "international",
            SenderClass::Alphanumeric => "alphanumeric",
            SenderClass::Invalid => "invalid",
        }
    }
}

/// A classified sender.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SenderInfo {
    pub class: SenderClass,
    /// Why the sender is invalid (only for [`SenderClass::Invalid`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid: Option<String>,
    /// ISO country (or NANPA location for NANP numbers), if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

const TOLL_FREE: [&str; 7] = ["800", "833", "844", "855", "866", "877", "888"];

fn invalid(reason: impl Into<String>) -> SenderInfo {
    SenderInfo { class: SenderClass::Invalid, invalid: Some(reason.into()), region: None }
}

/// Classifies a sender address as normalized by the engine (`+E164`, bare
/// digits for short codes, text for alphanumeric IDs).
pub fn classify(addr: &str, npas: &NpaTable) -> SenderInfo {
    let addr = addr.trim();
    if addr.is_empty() {
        return invalid("empty sender");
    }
    if let Some(rest) = addr.strip_prefix('+') {
        if !rest.bytes().all(|b| b.is_ascii_digit()) {
            return invalid("a '+' number with non-digits");
        }
        if let Some(national) = rest.strip_prefix('1') {
            return classify_nanp(national, npas);
        }
        return match phonenumber::parse(None, addr) {
            Ok(n) if n.is_valid() => SenderInfo {
                class: SenderClass::International,
                invalid: None,
                region: n.country().id().map(|id| format!("{id:?}")),
            },
            Ok(_) => invalid(format!("not a valid number for country code +{}", country_code_guess(rest))),
            Err(e) => invalid(format!("not a phone number: {e}")),
        };
    }
    if addr.bytes().all(|b| b.is_ascii_digit()) {
        return match addr.len() {
            5 | 6 if !addr.starts_with('0') => {
                SenderInfo { class: SenderClass::ShortCode, invalid: None, region: None }
            }
            10 => classify_nanp(addr, npas),
            n => invalid(format!("{n} digits: neither a short code (5-6) nor a full number")),
        };
    }
    if addr.chars().count() > 11 {
        return invalid("alphanumeric sender IDs are at most 11 characters");
    }
    SenderInfo { class: SenderClass::Alphanumeric, invalid: None, region: None }
}

fn country_code_guess(digits: &str) -> &str {
    &digits[..digits.len().min(3)]
}

fn classify_nanp(national: &str, npas: &NpaTable) -> SenderInfo {
    if national.len() != 10 {
        return invalid(format!("NANP numbers have 10 digits after +1, this has {}", national.len()));
    }
    let (npa, nxx, line) = (&national[..3], &national[3..6], &national[6..]);
    if npa.starts_with(['0', '1']) {
        return invalid(format!("area code {npa} cannot start with 0 or 1"));
    }
    if &npa[1..] == "11" {
        return invalid(format!("{npa} is an N11 service code, not an area code"));
    }
    if nxx.starts_with(['0', '1']) {
        return invalid(format!("exchange {nxx} cannot start with 0 or 1"));
    }
    if &nxx[1..] == "11" {
        return invalid(format!("exchange {nxx} is an N11 service code"));
    }
    if nxx == "555" && line.starts_with("01") {
        return invalid(format!("555-{line} is in the 555-0100..0199 range reserved for fiction"));
    }
    let npa_n: u16 = npa.parse().unwrap_or(0);
    let entry = npas.get(npa_n);
    if TOLL_FREE.contains(&npa) {
        return SenderInfo { class: SenderClass::TollFree, invalid: None, region: None };
    }
    let assigned = entry.is_some_and(|e| e.assigned);
    if !assigned {
        // The shipped table may predate a new area code: libphonenumber's
        // metadata is newer, so a number it accepts is not called invalid.
        let newer = phonenumber::parse(None, format!("+1{national}")).map(|n| n.is_valid()).unwrap_or(false);
        if !newer {
            let date = if npas.file_date.is_empty() { String::new() } else { format!(" (NANPA, {})", npas.file_date) };
            return invalid(format!("area code {npa} is not assigned{date}"));
        }
    }
    SenderInfo {
        class: SenderClass::LongCode,
        invalid: None,
        region: entry.map(|e| {
            if e.country == "US" || e.country.is_empty() {
                e.location.clone()
            } else {
                e.country.clone()
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(a: &str) -> SenderInfo {
        classify(a, NpaTable::shipped())
    }

    #[test]
    fn classes() {
        assert_eq!(c("+12152345678").class, SenderClass::LongCode);
        assert_eq!(c("+12152345678").region.as_deref(), Some("PA"));
        assert_eq!(c("+18882345678").class, SenderClass::TollFree);
        assert_eq!(c("+18332345678").class, SenderClass::TollFree);
        assert_eq!(c("74642").class, SenderClass::ShortCode);
        assert_eq!(c("898211").class, SenderClass::ShortCode);
        assert_eq!(c("+447400123456").class, SenderClass::International);
        assert_eq!(c("+447400123456").region.as_deref(), Some("GB"));
        assert_eq!(c("ACME").class, SenderClass::Alphanumeric);
    }

    #[test]
    fn impossible_senders_say_why() {
        for (addr, why) in [
            ("+12155550155", "reserved for fiction"),
            ("+19115551234", "N11"),
            ("+12159111234", "exchange 911"),
            ("+11235551234", "cannot start with 0 or 1"),
            ("+12150551234", "exchange 055"),
            ("+1215555012", "10 digits"),
            ("+15555551234", "not assigned"),
            ("+449", "country code"),
            ("1234", "4 digits"),
            ("VERYLONGSENDERNAME", "11 characters"),
            ("", "empty"),
        ] {
            let i = c(addr);
            assert_eq!(i.class, SenderClass::Invalid, "{addr}");
            assert!(i.invalid.as_deref().unwrap().contains(why), "{addr}: {:?}", i.invalid);
        }
    }
}
