//! The provider registry: who a provider is, how to reach its abuse desk,
//! and which names in number data mean it.
//!
//! Shipped as `providers.toml` (see `docs/attribution.md`); users add or
//! override entries with their own file. An entry:
//!
//! ```toml
//! [[provider]]
//! name = "Bandwidth"
//! match = ["bandwidth.com", "bandwidth clec"]   # case-insensitive substrings of holder names
//! abuse_email = "abuse@bandwidth.com"
//! abuse_url = "https://..."
//! report_format = "xarf"                          # xarf | stix | html | md
//! ```

use serde::{Deserialize, Serialize};

/// One provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    pub name: String,
    /// Case-insensitive substrings of holder names (NANPA company, block
    /// holder, inventory provider) that mean this provider.
    #[serde(default, rename = "match")]
    pub matches: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abuse_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abuse_url: Option<String>,
    #[serde(default = "default_format")]
    pub report_format: String,
    /// The provider's web domain (XARF's `sender.domain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

fn default_format() -> String {
    "xarf".into()
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    provider: Vec<Provider>,
}

/// Registry errors.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{file}: {source}")]
    Toml { file: String, source: toml::de::Error },
    #[error("{file}: provider {name:?}: report_format must be xarf, stix, html or md, not {format:?}")]
    Format { file: String, name: String, format: String },
}

/// Providers by name.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    providers: Vec<Provider>,
}

const SHIPPED: &str = include_str!("../data/providers.toml");

impl Registry {
    /// The registry shipped with textwatch.
    pub fn shipped() -> Registry {
        Registry::default().merged(SHIPPED, "built-in providers.toml").unwrap_or_default()
    }

    /// Adds the providers of a TOML file; an entry with an existing name
    /// replaces it.
    pub fn merged(mut self, text: &str, file: &str) -> Result<Registry, RegistryError> {
        let f: File = toml::from_str(text).map_err(|source| RegistryError::Toml { file: file.into(), source })?;
        for p in f.provider {
            if !["xarf", "stix", "html", "md"].contains(&p.report_format.as_str()) {
                return Err(RegistryError::Format { file: file.into(), name: p.name, format: p.report_format });
            }
            match self.providers.iter_mut().find(|q| q.name.eq_ignore_ascii_case(&p.name)) {
                Some(q) => *q = p,
                None => self.providers.push(p),
            }
        }
        Ok(self)
    }

    /// The provider a holder or provider name means: an exact name match,
    /// else the first entry one of whose `match` strings it contains.
    pub fn resolve(&self, holder: &str) -> Option<&Provider> {
        let lower = holder.to_lowercase();
        self.providers
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(holder))
            .or_else(|| self.providers.iter().find(|p| p.matches.iter().any(|m| lower.contains(&m.to_lowercase()))))
    }

    pub fn get(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_registry_resolves_holder_names() {
        let r = Registry::shipped();
        assert!(r.providers().len() >= 5);
        assert_eq!(r.resolve("Bandwidth.com CLEC, LLC").unwrap().name, "Bandwidth");
        assert_eq!(r.resolve("twilio").unwrap().name, "Twilio");
        assert!(r.resolve("Unheard Of Telecom").is_none());
    }

    #[test]
    fn user_file_overrides_and_validates() {
        let r = Registry::shipped()
            .merged("[[provider]]\nname = \"Twilio\"\nabuse_email = \"t@example.org\"\n[[provider]]\nname = \"Textsmart Leasing\"\nmatch = [\"textsmart\"]\n", "mine.toml")
            .unwrap();
        assert_eq!(r.get("twilio").unwrap().abuse_email.as_deref(), Some("t@example.org"));
        assert_eq!(r.resolve("TEXTSMART LEASING LLC").unwrap().name, "Textsmart Leasing");
        let e = Registry::shipped()
            .merged("[[provider]]\nname = \"X\"\nreport_format = \"pdf\"\n", "bad.toml")
            .unwrap_err();
        assert!(e.to_string().contains("bad.toml") && e.to_string().contains("pdf"));
        assert!(Registry::shipped()
            .merged("[[provider]\n", "broken.toml")
            .unwrap_err()
            .to_string()
            .contains("broken.toml"));
    }
}
