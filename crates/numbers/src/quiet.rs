//! Quiet hours: whether a text reached its recipient outside the hours the
//! law allows for marketing, in the recipient's local time.
//!
//! Federal: 08:00-21:00 (47 CFR 64.1200(c)(1)); Florida and Oklahoma
//! 08:00-20:00 (Fla. Stat. 501.616(6); OK HB 3168), which presume an
//! in-state area code means an in-state person. Local time comes from the
//! recipient's area code (the shipped NANPA-derived table); for codes that
//! span zones only the hours legal in every zone are allowed. Recipients
//! outside the US and its territories, and unknown area codes, are not
//! judged.

use chrono::{TimeZone, Timelike};
use chrono_tz::Tz;

use crate::npa::NpaTable;

/// An allowed window, in minutes after local midnight: `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: u16,
    pub end: u16,
}

impl Window {
    /// Parses `HH:MM-HH:MM`.
    pub fn parse(s: &str) -> Option<Window> {
        let (a, b) = s.split_once('-')?;
        let m = |t: &str| -> Option<u16> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
        };
        let w = Window { start: m(a)?, end: m(b)? };
        (w.start < w.end).then_some(w)
    }

    fn allows(self, minute: u16) -> bool {
        minute >= self.start && minute < self.end
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}-{:02}:{:02}", self.start / 60, self.start % 60, self.end / 60, self.end % 60)
    }
}

/// The quiet-hours law: a default window and per-state windows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuietHours {
    pub default: Window,
    /// (state as in the area-code table, e.g. `FL`, window)
    pub states: Vec<(String, Window)>,
}

impl Default for QuietHours {
    fn default() -> Self {
        let w = |s: &str| Window::parse(s).expect("valid constant window");
        QuietHours {
            default: w("08:00-21:00"),
            states: vec![("FL".into(), w("08:00-20:00")), ("OK".into(), w("08:00-20:00"))],
        }
    }
}

/// A text sent in quiet hours: where and when it landed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub npa: u16,
    /// The zone in which the time was outside the window.
    pub zone: &'static str,
    /// Local time there, `HH:MM`.
    pub local: String,
    pub window: Window,
    pub state: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "received at {} local time ({}) by area code {} ({}), outside {}",
            self.local, self.zone, self.npa, self.state, self.window
        )
    }
}

fn tz_of(name: &str) -> Option<(Tz, &'static str)> {
    let tz: Tz = name.parse().ok()?;
    Some((tz, tz.name()))
}

impl QuietHours {
    /// The window for a state.
    pub fn window_for(&self, state: &str) -> Window {
        self.states.iter().find(|(s, _)| s == state).map(|x| x.1).unwrap_or(self.default)
    }

    /// Checks a recipient (normalized, `+1NPA...`) at a time (ms since the
    /// epoch). `None` when the time is allowed or cannot be judged.
    pub fn check(&self, recipient: &str, ts_ms: i64, npas: &NpaTable) -> Option<Violation> {
        let digits = recipient.strip_prefix("+1")?;
        if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let npa: u16 = digits[..3].parse().ok()?;
        let entry = npas.get(npa)?;
        if entry.country != "US" || entry.zones.is_empty() {
            return None;
        }
        let window = self.window_for(&entry.location);
        let utc = chrono::Utc.timestamp_millis_opt(ts_ms).single()?;
        for z in &entry.zones {
            let Some((tz, name)) = tz_of(z) else { continue };
            let local = utc.with_timezone(&tz);
            let minute = (local.hour() * 60 + local.minute()) as u16;
            if !window.allows(minute) {
                return Some(Violation {
                    npa,
                    zone: name,
                    local: format!("{:02}:{:02}", local.hour(), local.minute()),
                    window,
                    state: entry.location.clone(),
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    fn q(to: &str, ts: &str) -> Option<Violation> {
        QuietHours::default().check(to, at(ts), NpaTable::shipped())
    }

    #[test]
    fn philadelphia_in_standard_and_daylight_time() {
        // 2020-11-04 02:00Z is 21:00 EST (UTC-5): quiet.
        let v = q("+12155551234", "2020-11-04T02:00:00Z").unwrap();
        assert_eq!((v.local.as_str(), v.zone, v.state.as_str()), ("21:00", "America/New_York", "PA"));
        assert!(v.to_string().contains("outside 08:00-21:00"));
        // 01:59Z is 20:59 EST: allowed.
        assert!(q("+12155551234", "2020-11-04T01:59:00Z").is_none());
        // In July (EDT, UTC-4) 00:59Z is 20:59 local: allowed; 01:00Z is 21:00.
        assert!(q("+12155551234", "2020-07-04T00:59:00Z").is_none());
        assert!(q("+12155551234", "2020-07-04T01:00:00Z").is_some());
        // 07:59 local is too early.
        assert!(q("+12155551234", "2020-11-04T12:59:00Z").is_some());
        assert!(q("+12155551234", "2020-11-04T13:00:00Z").is_none());
    }

    #[test]
    fn florida_and_oklahoma_stop_at_eight() {
        // 305 Miami, 20:30 EST.
        assert_eq!(q("+13055551234", "2020-11-04T01:30:00Z").unwrap().window.to_string(), "08:00-20:00");
        // 405 Oklahoma City, 20:30 CST (UTC-6) = 02:30Z.
        assert!(q("+14055551234", "2020-11-04T02:30:00Z").is_some());
        // Pennsylvania at 20:30 is fine.
        assert!(q("+12155551234", "2020-11-04T01:30:00Z").is_none());
    }

    #[test]
    fn multi_zone_codes_allow_only_hours_legal_everywhere() {
        // 850 (Florida panhandle) spans Eastern and Central. 13:30Z is
        // 08:30 EST but 07:30 CST: too early in the Central part.
        let v = q("+18505551234", "2020-11-04T13:30:00Z").unwrap();
        assert_eq!(v.zone, "America/Chicago");
        // 01:30Z is 20:30 EST (past Florida's 20:00) though 19:30 CST.
        assert_eq!(q("+18505551234", "2020-11-04T01:30:00Z").unwrap().zone, "America/New_York");
        assert!(q("+18505551234", "2020-11-04T15:00:00Z").is_none());
    }

    #[test]
    fn arizona_and_hawaii_keep_standard_time() {
        // Phoenix is UTC-7 all year: 2020-07-04 03:59Z is 20:59 there.
        assert!(q("+16025551234", "2020-07-04T03:59:00Z").is_none());
        assert!(q("+16025551234", "2020-07-04T04:00:00Z").is_some());
        // Honolulu UTC-10: 07:00Z is 21:00.
        assert!(q("+18085551234", "2020-11-04T07:00:00Z").is_some());
    }

    #[test]
    fn unknown_or_foreign_recipients_are_not_judged() {
        assert!(q("+15555551234", "2020-11-04T05:00:00Z").is_none());
        assert!(q("+14165551234", "2020-11-04T05:00:00Z").is_none(), "Toronto: not US law");
        assert!(q("+447400123456", "2020-11-04T05:00:00Z").is_none());
        assert!(q("", "2020-11-04T05:00:00Z").is_none());
        assert!(q("12345", "2020-11-04T05:00:00Z").is_none());
    }

    #[test]
    fn windows_parse() {
        assert_eq!(Window::parse("09:00-20:00").unwrap(), Window { start: 540, end: 1200 });
        assert!(Window::parse("21:00-08:00").is_none());
        assert!(Window::parse("25:00-26:00").is_none());
        assert!(Window::parse("nine-five").is_none());
    }
}
