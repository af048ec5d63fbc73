//! libphonenumber's carrier prefixes (`prefix|Carrier`), for numbers
//! outside the NANP mainland. Built by `scripts/carrier-table.sh` from the
//! `phonenumber` crate's assets; decompressed on first use.

use std::collections::HashMap;
use std::io::Read;
use std::sync::OnceLock;

const GZ: &[u8] = include_bytes!("../data/carriers.txt.gz");

struct Table {
    names: Vec<String>,
    by_prefix: HashMap<String, u32>,
    max_len: usize,
}

fn table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    T.get_or_init(|| {
        let mut text = String::new();
        // The embedded file is ours and checked by a test; a failure here
        // leaves the table empty rather than panicking.
        let _ = flate2::read::GzDecoder::new(GZ).read_to_string(&mut text);
        let mut names: Vec<String> = Vec::new();
        let mut ids: HashMap<&str, u32> = HashMap::new();
        let mut by_prefix = HashMap::new();
        let mut max_len = 0;
        for line in text.lines() {
            let Some((p, name)) = line.split_once('|') else { continue };
            let id = *ids.entry(name).or_insert_with(|| {
                names.push(name.to_string());
                names.len() as u32 - 1
            });
            max_len = max_len.max(p.len());
            by_prefix.insert(p.to_string(), id);
        }
        Table { names, by_prefix, max_len }
    })
}

/// The carrier libphonenumber names for E.164 digits (no `+`), longest
/// prefix first, with the matching prefix.
pub fn lookup(digits: &str) -> Option<(&'static str, &str)> {
    let t = table();
    for len in (1..=digits.len().min(t.max_len)).rev() {
        if let Some(&id) = t.by_prefix.get(&digits[..len]) {
            return Some((t.names[id as usize].as_str(), &digits[..len]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_table_answers() {
        assert!(super::table().by_prefix.len() > 20_000);
        let (name, prefix) = super::lookup("447911123456").unwrap();
        assert!(!name.is_empty());
        assert!("447911123456".starts_with(prefix));
        assert!(super::lookup("").is_none());
    }
}
