//! Timestamps as sources write them.
//!
//! Accepted: RFC 3339 (`2020-11-04T15:02:11Z`, offsets, fractions), the same
//! with a space instead of `T` and an optional ` UTC`/`GMT` suffix (naive
//! times are UTC), RFC 2822 (Twilio's API dates), and integer or decimal
//! epoch seconds (integers of 13 digits or more are taken as milliseconds,
//! which some exports write). Times before 1990 or after 2100 are rejected as
//! mistakes rather than stored.

use chrono::{DateTime, NaiveDateTime};

const MIN_MS: i64 = 631_152_000_000; // 1990-01-01
const MAX_MS: i64 = 4_102_444_800_000; // 2100-01-01

/// Parses a timestamp string into milliseconds since the epoch.
pub fn parse_ts(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("time is empty".into());
    }
    let ms = if s.bytes().all(|b| b.is_ascii_digit() || b == b'-') && !s[1..].contains('-') {
        let n: i64 = s.parse().map_err(|_| format!("time {s:?} is not a number"))?;
        epoch_number(n)
    } else if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() {
            return Err(format!("time {s:?} is not a finite number"));
        }
        (f * 1000.0).round() as i64
    } else if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        d.timestamp_millis()
    } else if let Some(ms) = parse_naive(s) {
        ms
    } else if let Ok(d) = DateTime::parse_from_rfc2822(s) {
        d.timestamp_millis()
    } else {
        return Err(format!("time {s:?} is not RFC 3339, RFC 2822 or epoch seconds"));
    };
    check_range(ms, s)
}

/// Milliseconds from an integer epoch value (seconds, or milliseconds when
/// it has 13 or more digits).
pub fn epoch_number(n: i64) -> i64 {
    if n.unsigned_abs() >= 1_000_000_000_000 {
        n
    } else {
        n.saturating_mul(1000)
    }
}

/// Rejects times outside 1990..2100.
pub fn check_range(ms: i64, shown: &str) -> Result<i64, String> {
    if (MIN_MS..MAX_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(format!("time {shown} is outside 1990-2100"))
    }
}

fn parse_naive(s: &str) -> Option<i64> {
    let s = s.strip_suffix(" UTC").or_else(|| s.strip_suffix(" GMT")).or_else(|| s.strip_suffix('Z')).unwrap_or(s);
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M"]
    {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(n.and_utc().timestamp_millis());
        }
    }
    // "2020-11-04 15:02:11-05:00" / "+0000"
    for fmt in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f %z"] {
        if let Ok(d) = DateTime::parse_from_str(s, fmt) {
            return Some(d.timestamp_millis());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_604_502_131_000; // 2020-11-04T15:02:11Z

    #[test]
    fn accepted_forms() {
        for s in [
            "2020-11-04T15:02:11Z",
            "2020-11-04T10:02:11-05:00",
            "2020-11-04 15:02:11",
            "2020-11-04 15:02:11 UTC",
            "2020-11-04 10:02:11-05:00",
            "Wed, 04 Nov 2020 15:02:11 +0000",
            "1604502131",
            "1604502131000",
            "1604502131.0",
        ] {
            assert_eq!(parse_ts(s), Ok(T), "{s}");
        }
    }

    #[test]
    fn rejected_forms_say_why() {
        assert!(parse_ts("").unwrap_err().contains("empty"));
        assert!(parse_ts("yesterday").unwrap_err().contains("not RFC 3339"));
        assert!(parse_ts("99999999999").unwrap_err().contains("outside"));
        assert!(parse_ts("NaN").is_err());
        assert!(parse_ts("-").is_err());
    }
}
