//! Longest-prefix attribution: which provider serves a number, and who
//! holds its block and exchange, each with the source and date of the
//! answer.
//!
//! Precedence: the longest matching inventory prefix (leases, ports, a
//! gateway's own numbers) outranks the NANPA thousands-block holder, which
//! outranks the NANPA exchange holder, which outranks libphonenumber's
//! carrier. Lookups hash a few integer keys and allocate nothing until an
//! owned [`Attribution`] is asked for.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use crate::nanpa::{PrefixRow, SourceKind};
use crate::registry::Registry;

/// One attribution fact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fact {
    /// The holder or provider as the source names it.
    pub name: String,
    pub kind: SourceKind,
    /// The file or data set it came from.
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    pub detail: String,
    /// The matching prefix (E.164 digits).
    pub prefix: String,
}

impl fmt::Display for Fact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            SourceKind::Inventory => write!(f, "{} (inventory: {})", self.name, self.source)?,
            _ => {
                write!(f, "{} ({}", self.name, self.detail)?;
                if let Some(d) = &self.date {
                    write!(f, ", {d}")?;
                }
                write!(f, "; {})", self.source)?;
            }
        }
        Ok(())
    }
}

/// Everything known about who serves a number.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Attribution {
    /// The provider that serves the number: the registry's name for the
    /// highest-precedence fact's holder (the holder's own name when the
    /// registry does not know it).
    pub provider: Option<String>,
    /// The fact the provider comes from.
    pub provider_fact: Option<Fact>,
    /// The NANPA thousands-block holder, when a block report covers it.
    pub block: Option<Fact>,
    /// The NANPA exchange (NPA-NXX) holder.
    pub exchange: Option<Fact>,
    /// libphonenumber's carrier (outside the NANP mainland).
    pub carrier: Option<Fact>,
}

impl fmt::Display for Attribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.provider, &self.provider_fact) {
            (Some(p), Some(fact)) => {
                write!(f, "provider: {p}")?;
                match fact.kind {
                    SourceKind::Inventory => write!(f, " (inventory: {})", fact.source)?,
                    _ if fact.name != *p => write!(f, " via {fact}")?,
                    _ => write!(f, " ({}; {})", fact.detail, fact.source)?,
                }
            }
            _ => write!(f, "provider: unknown")?,
        }
        let top = self.provider_fact.as_ref().map(|p| p.kind);
        if let Some(b) = &self.block {
            if top != Some(SourceKind::NanpaBlock) {
                write!(f, "; block holder: {b}")?;
            }
        }
        if let Some(e) = &self.exchange {
            if self.block.is_none() && top != Some(SourceKind::NanpaExchange) {
                write!(f, "; exchange holder: {e}")?;
            }
        }
        Ok(())
    }
}

/// The attribution index.
#[derive(Clone, Debug, Default)]
pub struct Directory {
    facts: Vec<Fact>,
    inventory: HashMap<u64, u32>,
    /// Bit `n` set when some inventory prefix has `n` digits.
    inventory_lens: u16,
    blocks: HashMap<u64, u32>,
    exchanges: HashMap<u64, u32>,
    registry: Registry,
}

/// Packs up to 15 digits and their count into one key.
fn key(digits: &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(d - b'0');
    }
    Some(v << 4 | digits.len() as u64)
}

impl Directory {
    /// Builds the index. Later rows with the same kind and prefix replace
    /// earlier ones.
    pub fn new(rows: impl IntoIterator<Item = PrefixRow>, registry: Registry) -> Directory {
        let mut d = Directory { registry, ..Directory::default() };
        for r in rows {
            let bytes = r.prefix.as_bytes();
            if bytes.is_empty() || bytes.len() > 15 {
                continue;
            }
            let Some(k) = key(bytes) else { continue };
            let idx = d.facts.len() as u32;
            let map = match r.kind {
                SourceKind::Inventory => {
                    d.inventory_lens |= 1 << bytes.len();
                    &mut d.inventory
                }
                SourceKind::NanpaBlock => &mut d.blocks,
                SourceKind::NanpaExchange => &mut d.exchanges,
                SourceKind::Carrier => continue,
            };
            map.insert(k, idx);
            d.facts.push(Fact {
                name: r.name,
                kind: r.kind,
                source: r.source,
                date: r.date,
                detail: r.detail,
                prefix: r.prefix,
            });
        }
        d
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Imported facts held.
    pub fn len(&self) -> usize {
        self.facts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.facts.is_empty()
    }

    fn digits(e164: &str) -> &[u8] {
        let b = e164.strip_prefix('+').unwrap_or(e164).as_bytes();
        &b[..b.len().min(15)]
    }

    fn inventory_fact(&self, d: &[u8]) -> Option<&Fact> {
        if self.inventory_lens == 0 {
            return None;
        }
        (1..=d.len()).rev().filter(|&n| self.inventory_lens & (1 << n) != 0).find_map(|n| {
            let k = key(&d[..n])?;
            self.inventory.get(&k).map(|&i| &self.facts[i as usize])
        })
    }

    fn nanp_fact(&self, d: &[u8], map: &HashMap<u64, u32>, len: usize) -> Option<&Fact> {
        if d.len() != 11 || d[0] != b'1' {
            return None;
        }
        map.get(&key(&d[..len])?).map(|&i| &self.facts[i as usize])
    }

    /// The highest-precedence fact for a number (no allocation).
    pub fn top_fact(&self, e164: &str) -> Option<&Fact> {
        let d = Self::digits(e164);
        self.inventory_fact(d)
            .or_else(|| self.nanp_fact(d, &self.blocks, 8))
            .or_else(|| self.nanp_fact(d, &self.exchanges, 7))
    }

    /// The provider name for a number (registry name where known).
    pub fn provider_of(&self, e164: &str) -> Option<String> {
        self.attribute(e164).provider
    }

    /// Everything known about a number.
    pub fn attribute(&self, e164: &str) -> Attribution {
        let d = Self::digits(e164);
        let block = self.nanp_fact(d, &self.blocks, 8).cloned();
        let exchange = self.nanp_fact(d, &self.exchanges, 7).cloned();
        let inventory = self.inventory_fact(d).cloned();
        let nanp_mainland = d.len() == 11 && d[0] == b'1';
        let carrier = if e164.starts_with('+') && (!nanp_mainland || (block.is_none() && exchange.is_none())) {
            std::str::from_utf8(d).ok().and_then(crate::carriers::lookup).map(|(name, prefix)| Fact {
                name: name.to_string(),
                kind: SourceKind::Carrier,
                source: "libphonenumber carrier data".into(),
                date: None,
                detail: format!("carrier prefix +{prefix}"),
                prefix: prefix.to_string(),
            })
        } else {
            None
        };
        let provider_fact =
            inventory.or_else(|| block.clone()).or_else(|| exchange.clone()).or_else(|| carrier.clone());
        let provider = provider_fact
            .as_ref()
            .map(|f| self.registry.resolve(&f.name).map(|p| p.name.clone()).unwrap_or_else(|| f.name.clone()));
        Attribution { provider, provider_fact, block, exchange, carrier }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(prefix: &str, kind: SourceKind, name: &str) -> PrefixRow {
        PrefixRow {
            prefix: prefix.into(),
            kind,
            name: name.into(),
            source: "f".into(),
            date: Some("2019-03-01".into()),
            detail: format!("d {prefix}"),
        }
    }

    fn dir() -> Directory {
        Directory::new(
            [
                row("1215555", SourceKind::NanpaExchange, "Onvoy, LLC"),
                row("12155551", SourceKind::NanpaBlock, "Bandwidth.com CLEC, LLC"),
                row("1215555", SourceKind::Inventory, "Twilio"),
                row("121555512", SourceKind::Inventory, "Textsmart Leasing"),
                row("1267", SourceKind::NanpaExchange, "ignored: wrong length is harmless"),
            ],
            Registry::shipped(),
        )
    }

    #[test]
    fn inventory_over_block_over_exchange_longest_first() {
        let d = dir();
        let a = d.attribute("+12155551234");
        assert_eq!(a.provider.as_deref(), Some("Textsmart Leasing"));
        assert_eq!(a.block.as_ref().unwrap().name, "Bandwidth.com CLEC, LLC");
        assert_eq!(d.provider_of("+12155551999").as_deref(), Some("Twilio"));
        let x = Directory::new(
            [
                row("1215555", SourceKind::NanpaExchange, "Onvoy, LLC"),
                row("12155551", SourceKind::NanpaBlock, "Bandwidth.com CLEC, LLC"),
            ],
            Registry::shipped(),
        );
        let a = x.attribute("+12155551234");
        assert_eq!(a.provider.as_deref(), Some("Bandwidth"));
        assert_eq!(a.provider_fact.unwrap().kind, SourceKind::NanpaBlock);
        let a = x.attribute("+12155552234");
        assert_eq!(a.provider.as_deref(), Some("Onvoy (Inteliquent/Sinch)"));
        assert!(x.attribute("+13125550000").provider.is_none());
    }

    #[test]
    fn display_names_sources_and_dates() {
        let a = dir().attribute("+12155551234");
        assert_eq!(a.to_string(), "provider: Textsmart Leasing (inventory: f); block holder: Bandwidth.com CLEC, LLC (d 12155551, 2019-03-01; f)");
    }

    #[test]
    fn outside_the_nanp_libphonenumber_answers() {
        let a = dir().attribute("+447911123456");
        assert_eq!(a.provider_fact.unwrap().kind, SourceKind::Carrier);
        assert!(a.provider.is_some());
        assert!(dir().attribute("ACME").provider.is_none());
        assert!(dir().attribute("+1").provider.is_none());
    }
}
