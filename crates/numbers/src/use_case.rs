//! The 10DLC use case a number is registered under (The Campaign
//! Registry's codes, as carriers and Twilio's API name them), from the
//! inventory's optional `use_case` column, and the categories of traffic
//! each allows. A campaign whose observed category its senders' registered
//! use case does not allow is a finding (`use-case-mismatch`): political
//! texts over a marketing registration, or phishing over any.
//!
//! The use case rides in the inventory fact's detail (`inventory: gw.csv;
//! use case MARKETING`), so imported number data needs no new columns.

/// Use case codes and the categories they allow (see `docs/rules.md#categories`).
pub const CODES: &[(&str, &[&str])] = &[
    ("2FA", &["transactional"]),
    ("ACCOUNT_NOTIFICATION", &["transactional", "news"]),
    ("CUSTOMER_CARE", &["transactional"]),
    ("DELIVERY_NOTIFICATION", &["transactional"]),
    ("FRAUD_ALERT", &["transactional"]),
    ("SECURITY_ALERT", &["transactional"]),
    ("MARKETING", &["marketing", "news"]),
    ("SWEEPSTAKE", &["marketing"]),
    ("POLLING_VOTING", &["marketing"]),
    ("MIXED", &["marketing", "transactional", "news"]),
    ("LOW_VOLUME", &["marketing", "transactional", "news"]),
    ("HIGHER_EDUCATION", &["civic", "transactional"]),
    ("K12_EDUCATION", &["civic", "transactional"]),
    ("PUBLIC_SERVICE_ANNOUNCEMENT", &["civic", "charity"]),
    ("EMERGENCY", &["civic"]),
    ("CHARITY", &["charity"]),
    ("POLITICAL", &["political"]),
    ("AGENTS_FRANCHISES", &["marketing", "transactional"]),
    ("PROXY", &["personal", "transactional"]),
];

/// Whether `code` is a known use case.
pub fn is_known(code: &str) -> bool {
    CODES.iter().any(|(c, _)| *c == code)
}

/// The categories a use case allows.
pub fn allows(code: &str) -> &'static [&'static str] {
    CODES.iter().find(|(c, _)| *c == code).map_or(&[], |(_, a)| a)
}

/// The detail of an inventory fact, with its use case when one is given.
pub fn detail(file: &str, use_case: &str) -> String {
    if use_case.is_empty() {
        format!("inventory: {file}")
    } else {
        format!("inventory: {file}; use case {use_case}")
    }
}

/// The use case recorded in an inventory fact's detail.
pub fn of_detail(detail: &str) -> Option<&str> {
    detail.rsplit_once("; use case ").map(|(_, c)| c).filter(|c| is_known(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_allowed_categories() {
        let d = detail("gw.csv", "MARKETING");
        assert_eq!(of_detail(&d), Some("MARKETING"));
        assert_eq!(of_detail(&detail("gw.csv", "")), None);
        assert!(allows("MARKETING").contains(&"marketing"));
        assert!(!allows("MARKETING").contains(&"political"));
        assert!(allows("POLITICAL").contains(&"political"));
        assert!(allows("NOPE").is_empty());
    }
}
