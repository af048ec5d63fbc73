//! Writing outside text into HTML and Markdown inert: spam texts, sender
//! names and provider data never become markup, links or escapes.

use std::fmt::Write as _;

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() && c != '\n' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// Text from messages as inert Markdown on one line: HTML is shown as text
/// (`<` as `&lt;`), Markdown syntax (links, emphasis, code, table pipes) is
/// escaped, URLs are defanged (`hxxps://`, `www[.]`), control characters
/// and bidirectional overrides are shown as escapes.
pub fn md_cell(s: &str) -> String {
    // Links defanged, as threat reports write them: Markdown renderers turn
    // a bare URL or www. name into a live link.
    let s = s.replace("https://", "hxxps://").replace("http://", "hxxp://").replace("www.", "www[.]");
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' | '\r' => o.push(' '),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '!' | '~' => {
                o.push('\\');
                o.push(c);
            }
            c if c.is_control()
                || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}') =>
            {
                let _ = write!(o, "\\u{{{:x}}}", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}
