//! Small helpers for what people read: tables, numbers, excerpts.

use std::fmt::Write as _;

/// A plain aligned table. Columns are left-aligned unless marked numeric.
pub struct Table {
    headers: Vec<&'static str>,
    numeric: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[(&'static str, bool)]) -> Self {
        Table {
            headers: headers.iter().map(|h| h.0).collect(),
            numeric: headers.iter().map(|h| h.1).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; control characters in a cell are shown escaped (a cell
    /// is one line, and it may hold text from a message).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.into_iter().map(|c| printable(&c, false).into_owned()).collect());
    }

    pub fn render(&self) -> String {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: &[String]| {
            for (i, c) in cells.iter().enumerate().take(n) {
                let pad = widths[i].saturating_sub(c.chars().count());
                let last = i + 1 == n;
                if self.numeric[i] {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(c);
                } else {
                    out.push_str(c);
                    if !last {
                        out.push_str(&" ".repeat(pad));
                    }
                }
                if !last {
                    out.push_str("  ");
                }
            }
            out.push('\n');
        };
        line(&mut out, &self.headers.iter().map(|h| h.to_string()).collect::<Vec<_>>());
        for r in &self.rows {
            line(&mut out, r);
        }
        out
    }
}

/// 1234567 → "1,234,567".
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The first `max` characters of `s` on one line, with an ellipsis if cut:
/// line breaks and other control characters become spaces, bidirectional
/// overrides are dropped (a table cell must not reorder its neighbours).
pub fn excerpt(s: &str, max: usize) -> String {
    let flat: String =
        s.chars().filter(|&c| !is_bidi_control(c)).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if flat.chars().count() <= max {
        return flat;
    }
    let mut out: String = flat.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// "2020-11-04T15:02:11Z" → "2020-11-04 15:02".
pub fn short_time(ms: i64) -> String {
    let s = textwatch_store::time::format_ts(ms);
    let mut t = s.replace('T', " ");
    t.truncate(16);
    t
}

/// A bar of `width` cells for `value` out of `max`.
pub fn bar(value: u64, max: u64, width: usize) -> String {
    if max == 0 {
        return String::new();
    }
    let eighths = ((value as f64 / max as f64) * (width * 8) as f64).round() as usize;
    let mut s = "█".repeat(eighths / 8);
    const PARTS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    s.push_str(PARTS[eighths % 8]);
    if s.is_empty() && value > 0 {
        s.push('▏');
    }
    s
}

/// Seconds as "1.2s" / "3m 04s".
pub fn duration(secs: f64) -> String {
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let m = (secs / 60.0).floor();
        let mut s = String::new();
        let _ = write!(s, "{}m {:02.0}s", m, secs - m * 60.0);
        s
    }
}

/// `s` safe to print on a terminal: control characters (escape sequences,
/// NULs, carriage returns), DEL, C1 controls and bidirectional overrides
/// become `\u{..}` escapes, so text from a file or a message cannot move the
/// cursor, recolor the terminal or reorder what is shown. Newlines are kept
/// when `keep_newlines`.
pub fn printable(s: &str, keep_newlines: bool) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| (c.is_control() && !(keep_newlines && c == '\n') && c != '\t') || is_bidi_control(c);
    if !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A writer that passes human-readable text through [`printable`]
/// (newlines and tabs kept): the tables and views that show templates,
/// message bodies and evidence write through it, so a hostile message
/// cannot reach the terminal as escape sequences. Put it outermost (over
/// any buffer): it sees whole formatted pieces, never half a character.
pub struct SafeText<W: std::io::Write>(pub W);

impl<W: std::io::Write> std::io::Write for SafeText<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(printable(&text, true).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Unicode's explicit bidirectional formatting characters (embeddings,
/// overrides, isolates, marks): they reorder the text around them.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// How a message on standard error is labelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
}

/// Prints `textwatch: error: MSG` (or `warning:`) on standard error: the
/// label in red (yellow for a warning) on a terminal unless `NO_COLOR` is
/// set, plain when redirected; control characters in `msg` escaped.
pub fn report(level: Level, msg: &str) {
    use std::io::IsTerminal as _;
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let (label, code) = match level {
        Level::Error => ("error", "31"),
        Level::Warning => ("warning", "33"),
    };
    let msg = printable(msg, true);
    if color {
        eprintln!("textwatch: \x1b[1;{code}m{label}:\x1b[0m {msg}");
    } else {
        eprintln!("textwatch: {label}: {msg}");
    }
}

/// An error chain as one line for people: each cause once (libraries often
/// repeat their cause in their own message), then what to do for the
/// conditions a user can fix.
pub fn describe(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        let text = text.trim();
        // SQLite's own cause repeats the message after "Error code N: ".
        let lower = text.to_lowercase();
        let bare = match lower.strip_prefix("error code ").and_then(|r| r.split_once(": ")) {
            Some((_, rest)) => rest.trim_start_matches("the ").to_string(),
            None => lower,
        };
        if text.is_empty() || parts.iter().any(|p| p.to_lowercase().contains(&bare)) {
            continue;
        }
        parts.push(text.to_string());
    }
    let mut line = parts.join(": ");
    let io_kind = e.chain().find_map(|c| c.downcast_ref::<std::io::Error>()).map(|io| io.kind());
    let lower = line.to_ascii_lowercase();
    let hint = if matches!(io_kind, Some(std::io::ErrorKind::StorageFull | std::io::ErrorKind::FileTooLarge))
        || lower.contains("os error 28")
        || lower.contains("os error 27")
        || lower.contains("database or disk is full")
    {
        Some("the disk is full (or a file size limit was reached). What was committed before is kept: free space and run the same command again, it goes on from there.")
    } else if (lower.contains("malformed") || lower.contains("file is not a database"))
        && e.chain().any(|c| c.downcast_ref::<textwatch_store::StoreError>().is_some())
    {
        Some("the database file is damaged or is not a textwatch database. Restore it from a backup (docs/deployment.md#data), or point --db elsewhere.")
    } else if lower.contains("read-only") || lower.contains("readonly") || lower.contains("permission denied") {
        Some("textwatch may not write there: check the permissions of the file or folder named (for the database, both the file and its .segments folder).")
    } else {
        None
    };
    if let Some(h) = hint {
        line.push_str("\n  what to do: ");
        line.push_str(h);
    }
    line
}

/// Whether an error chain ends in a closed pipe (`textwatch messages | head`).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| {
            io.kind() == std::io::ErrorKind::BrokenPipe
                // A csv writer's error passed on as an io error keeps the
                // pipe's error inside.
                || io.get_ref().and_then(|e| e.downcast_ref::<csv::Error>()).is_some_and(
                    |e| matches!(e.kind(), csv::ErrorKind::Io(x) if x.kind() == std::io::ErrorKind::BrokenPipe),
                )
        }) || c
            .downcast_ref::<serde_json::Error>()
            .is_some_and(|j| j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
    })
}

/// Opens an existing database for a command that reads it.
/// Opens the database a read command works on: the SQLite file (which
/// must exist) or PostgreSQL.
pub fn open_at(db: &textwatch_store::Location) -> anyhow::Result<Box<dyn textwatch_store::Store>> {
    use anyhow::Context as _;
    Ok(match db {
        textwatch_store::Location::Sqlite(p) => Box::new(open(p)?),
        textwatch_store::Location::Postgres(url) => {
            Box::new(textwatch_store::pg::PgStore::connect(url).with_context(|| format!("opening database {db}"))?)
        }
    })
}

pub fn open(db: &std::path::Path) -> anyhow::Result<textwatch_store::sqlite::SqliteStore> {
    use anyhow::Context as _;
    textwatch_store::sqlite::SqliteStore::open_existing(db)
        .with_context(|| format!("opening database {}", db.display()))
}

/// Output formats shared by the listing commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// One JSON document.
    Json,
    /// One JSON object per line.
    Jsonl,
}

/// The campaign table shared by `scan` and `campaigns`.
pub fn campaign_table(list: &[textwatch_store::CampaignSummary]) -> String {
    let mut table = Table::new(&[
        ("ID", false),
        ("MESSAGES", true),
        ("SENDERS", true),
        ("RISK", true),
        ("ACTION", false),
        ("FIRST SEEN", false),
        ("LAST SEEN", false),
        ("TEMPLATE", false),
    ]);
    for c in list {
        table.row(vec![
            c.id.clone(),
            thousands(c.messages),
            thousands(c.sender_count),
            c.risk.map_or("-".into(), |r| r.to_string()),
            c.decision.as_ref().map_or("-".into(), |d| d.action.as_str().to_string()),
            short_time(c.first_seen),
            short_time(c.last_seen),
            excerpt(&c.template, 60),
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_each_cause_once_and_what_to_do() {
        let io = std::io::Error::from(std::io::ErrorKind::StorageFull);
        let e = anyhow::Error::new(io).context("writing segment 3").context("writing segment 3 of t.db");
        let d = describe(&e);
        assert_eq!(d.matches("writing segment 3").count(), 1, "{d}");
        assert!(d.contains("\n  what to do: the disk is full"), "{d}");
        let store = textwatch_store::StoreError::Schema("database disk image is malformed".into());
        let e = anyhow::Error::new(store).context("opening database t.db");
        assert!(describe(&e).ends_with("or point --db elsewhere."), "{}", describe(&e));
        // The same words from elsewhere (a message, a report file) get no
        // database hint.
        let e = anyhow::anyhow!("line 4: malformed date").context("reading messages.jsonl");
        assert!(!describe(&e).contains("what to do"), "{}", describe(&e));
        let e = anyhow::anyhow!("Error code 11: The database disk image is malformed")
            .context("database disk image is malformed")
            .context("opening database t.db");
        assert_eq!(describe(&e).lines().next().unwrap(), "opening database t.db: database disk image is malformed");
        assert_eq!(describe(&anyhow::anyhow!("no campaign \"x\"")), "no campaign \"x\"");
    }

    #[test]
    fn printable_escapes_what_could_drive_a_terminal() {
        assert_eq!(printable("plain text, tabs\tand\nlines", true), "plain text, tabs\tand\nlines");
        assert_eq!(printable("a\x1b[2Jb\0c\rd", false), "a\\u{1b}[2Jb\\u{0}c\\u{d}d");
        assert_eq!(printable("x\u{202E}gpj.exe", false), "x\\u{202e}gpj.exe");
        assert_eq!(printable("one\ntwo", false), "one\\u{a}two");
    }

    #[test]
    fn formats() {
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(12), "12");
        assert_eq!(excerpt("abcdef", 4), "abc…");
        assert_eq!(excerpt("a\nb", 4), "a b");
        assert_eq!(bar(10, 10, 3), "███");
        assert_eq!(short_time(1_604_502_131_000), "2020-11-04 15:02");
    }

    #[test]
    fn table_aligns() {
        let mut t = Table::new(&[("ID", false), ("N", true)]);
        t.row(vec!["a".into(), "1".into()]);
        t.row(vec!["bbb".into(), "100".into()]);
        assert_eq!(t.render(), "ID     N\na      1\nbbb  100\n");
    }
}
