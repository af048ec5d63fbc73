//! The categories textwatch sorts traffic into: two levels, aligned with the
//! use cases carriers and The Campaign Registry (10DLC) already register
//! A2P traffic under, so a user filters by what they mean ("political",
//! "civic/election-office") and a carrier compares what a sender does with
//! what it registered.
//!
//! `docs/rules.md#categories` lists them with the 10DLC use cases they map
//! to. The two categories of earlier versions are read as aliases: `ham` is
//! `personal`, `commercial` is `marketing` or `transactional`.

/// Top-level categories, in the order the category model's labels use.
pub const CATEGORIES: [&str; 9] =
    ["political", "civic", "charity", "news", "marketing", "transactional", "personal", "scam", "spam"];

/// (category, subcategory, the 10DLC use cases (Campaign Registry codes, as
/// Twilio's API names them) it corresponds to).
pub const SUBCATEGORIES: &[(&str, &str, &str)] = &[
    ("political", "fundraising", "POLITICAL"),
    ("political", "gotv", "POLITICAL"),
    ("political", "poll", "POLITICAL (POLLING_VOTING is for non-political polls)"),
    ("political", "mobilization", "POLITICAL"),
    ("civic", "election-office", "PUBLIC_SERVICE_ANNOUNCEMENT"),
    ("civic", "government", "PUBLIC_SERVICE_ANNOUNCEMENT, K12_EDUCATION, HIGHER_EDUCATION"),
    ("civic", "public-safety", "EMERGENCY"),
    ("charity", "donation", "CHARITY"),
    ("charity", "volunteering", "CHARITY"),
    ("news", "alert", "MIXED / MARKETING (media)"),
    ("news", "subscription", "ACCOUNT_NOTIFICATION"),
    ("marketing", "promotion", "MARKETING, SWEEPSTAKE"),
    ("marketing", "loyalty", "MARKETING, POLLING_VOTING (non-political)"),
    ("transactional", "otp", "2FA"),
    ("transactional", "account-alert", "ACCOUNT_NOTIFICATION, FRAUD_ALERT, SECURITY_ALERT"),
    ("transactional", "delivery", "DELIVERY_NOTIFICATION"),
    ("transactional", "customer-care", "CUSTOMER_CARE"),
    ("personal", "conversation", "(person to person: not A2P)"),
    ("scam", "phishing", "(fraud: never registrable)"),
    ("scam", "impersonation", "(fraud: never registrable)"),
    ("scam", "advance-fee", "(fraud: never registrable)"),
    ("scam", "job", "(fraud: never registrable)"),
    ("scam", "investment", "(fraud: never registrable)"),
    ("scam", "wrong-number", "(fraud: never registrable)"),
    ("spam", "unsolicited", "(unregistered MARKETING)"),
    ("spam", "adult", "(SHAFT content: refused)"),
    ("spam", "gambling", "(SHAFT content: age-gated)"),
    ("spam", "loans", "(unregistered MARKETING)"),
];

/// The category a label names: a category, `category/subcategory`, or an
/// earlier version's name (`ham`, `commercial`).
pub fn category_of(label: &str) -> Option<&'static str> {
    let top = label.split('/').next().unwrap_or(label);
    match top {
        "ham" => Some("personal"),
        "commercial" => Some("marketing"),
        _ => CATEGORIES.iter().find(|c| **c == top).copied(),
    }
}

/// Whether `selector` names a category, a `category/subcategory`, a
/// subcategory alone, or an alias of an earlier version.
pub fn is_known(selector: &str) -> bool {
    let s = selector.trim();
    matches!(s, "ham" | "commercial")
        || CATEGORIES.contains(&s)
        || SUBCATEGORIES.iter().any(|(c, sub, _)| *sub == s || s.split_once('/') == Some((c, sub)))
}

/// Whether a campaign of `category` / `subcategory` is what `selector`
/// asks for. `commercial` (earlier versions' name) selects both marketing
/// and transactional; `ham` selects personal.
pub fn selects(selector: &str, category: &str, subcategory: Option<&str>) -> bool {
    let s = selector.trim();
    match s {
        "ham" => category == "personal" || category == "ham",
        "commercial" => matches!(category, "marketing" | "transactional" | "commercial"),
        _ => match s.split_once('/') {
            Some((c, sub)) => c == category && subcategory == Some(sub),
            None => s == category || (subcategory == Some(s) && !CATEGORIES.contains(&s)),
        },
    }
}

/// The category an earlier version stored, in this version's terms.
pub fn migrate(old: &str) -> Option<&'static str> {
    match old {
        "ham" => Some("personal"),
        "commercial" => Some("marketing"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subcategory_has_a_known_parent() {
        for (c, sub, _) in SUBCATEGORIES {
            assert!(CATEGORIES.contains(c), "{c}/{sub}");
            assert!(is_known(&format!("{c}/{sub}")));
            assert!(is_known(sub));
        }
        for c in CATEGORIES {
            assert!(SUBCATEGORIES.iter().any(|(p, _, _)| *p == c), "{c} has subcategories");
        }
    }

    #[test]
    fn selectors() {
        assert!(selects("political", "political", Some("fundraising")));
        assert!(selects("political/fundraising", "political", Some("fundraising")));
        assert!(selects("fundraising", "political", Some("fundraising")));
        assert!(!selects("political", "civic", Some("election-office")));
        assert!(selects("commercial", "transactional", Some("delivery")));
        assert!(selects("ham", "personal", None));
        assert!(!is_known("politics"));
        assert_eq!(category_of("civic/election-office"), Some("civic"));
        assert_eq!(category_of("ham"), Some("personal"));
    }
}
