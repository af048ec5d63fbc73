//! Sender and recipient address normalization.
//!
//! Inputs write numbers every way people do: `+1 (215) 555-0123`,
//! `2155550123`, `1-215-555-0123`, `tel:+12155550123`. Campaign statistics
//! count distinct senders, so the same number must always be the same
//! string. This is a cheap syntactic normalizer (no validity tables): full
//! classification and validity with the `phonenumber` crate belongs to
//! attribution, which runs once per distinct sender.

/// Normalizes an address: E.164 (`+12155550123`) for anything that reads as
/// a NANP or international number, bare digits for short codes, and the
/// trimmed text for alphanumeric sender IDs. Empty input stays empty.
pub fn normalize_address(raw: &str) -> String {
    let s = raw.trim();
    let s = s.strip_prefix("tel:").or_else(|| s.strip_prefix("sms:")).unwrap_or(s).trim();
    if s.is_empty() {
        return String::new();
    }
    let mut digits = String::with_capacity(16);
    let mut other = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else if !matches!(c, '+' | '(' | ')' | '-' | '.' | ' ' | '\u{00A0}') {
            other = true;
        }
    }
    if other || digits.is_empty() {
        // Alphanumeric sender ID ("ACME", "VERIFY"): keep as written, spaces collapsed.
        return s.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    let plus = s.starts_with('+');
    if plus {
        // "+" followed by digits; a "+" with 10 NANP digits lacking the 1 is
        // ambiguous, keep what was written.
        return format!("+{digits}");
    }
    if s.starts_with("011") && digits.len() > 11 {
        return format!("+{}", &digits[3..]);
    }
    match digits.len() {
        10 if !digits.starts_with(['0', '1']) => format!("+1{digits}"),
        11 if digits.starts_with('1') => format!("+{digits}"),
        _ => digits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanp_forms_become_e164() {
        for raw in [
            "+1 (215) 555-0123",
            "2155550123",
            "1-215-555-0123",
            "(215) 555.0123",
            "tel:+12155550123",
            " 215 555 0123 ",
        ] {
            assert_eq!(normalize_address(raw), "+12155550123", "{raw}");
        }
    }

    #[test]
    fn international_and_short_codes() {
        assert_eq!(normalize_address("+44 20 7946 0958"), "+442079460958");
        assert_eq!(normalize_address("011 44 20 7946 0958"), "+442079460958");
        assert_eq!(normalize_address("72345"), "72345");
        assert_eq!(normalize_address("898-287"), "898287");
    }

    #[test]
    fn alphanumeric_ids_are_kept() {
        assert_eq!(normalize_address("  ACME  Bank "), "ACME Bank");
        assert_eq!(normalize_address("VERIFY"), "VERIFY");
        assert_eq!(normalize_address(""), "");
    }
}
