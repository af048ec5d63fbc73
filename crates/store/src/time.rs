//! Time formatting for everything a store shows.

use chrono::DateTime;

/// Now, in milliseconds since the epoch (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Milliseconds since the epoch as RFC 3339 UTC (`2020-11-04T15:02:11Z`;
/// milliseconds shown only when present).
pub fn format_ts(ms: i64) -> String {
    match DateTime::from_timestamp_millis(ms) {
        Some(d) if ms % 1000 == 0 => d.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Some(d) => d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => ms.to_string(),
    }
}

/// Serde helper: serialize an `i64` of milliseconds as RFC 3339.
pub mod rfc3339 {
    use serde::Serializer;

    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_ts(*ms))
    }
}

/// Serde helper: an optional `i64` of milliseconds as RFC 3339 or null.
pub mod rfc3339_opt {
    use serde::Serializer;

    pub fn serialize<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match ms {
            Some(ms) => s.serialize_str(&super::format_ts(*ms)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats() {
        assert_eq!(super::format_ts(1_604_502_131_000), "2020-11-04T15:02:11Z");
        assert_eq!(super::format_ts(1_604_502_131_250), "2020-11-04T15:02:11.250Z");
    }
}
