//! `textwatch.toml`: the defaults people would otherwise repeat on every
//! command (database, rule packs, policy, provider registry, reporter
//! identity, listen address).
//!
//! Where it is looked for, later files winning key by key:
//!
//! 1. `$XDG_CONFIG_HOME/textwatch/textwatch.toml` (by default
//!    `~/.config/textwatch/textwatch.toml`): yours, for every folder;
//! 2. `textwatch.toml` in the data folder: the folder of the database named
//!    by `--db` or `TEXTWATCH_DB`, or the current folder.
//!
//! A file another user owns (but root) is not read, with a warning: a
//! folder someone else controls must not choose where this process listens
//! or writes. `--config FILE` (or `TEXTWATCH_CONFIG`) reads that file alone. A value
//! from a file is used only where neither a flag nor the environment gives
//! one: each setting becomes the environment variable the option reads
//! (`TEXTWATCH_DB`, ...) when that variable is not set, so the order is
//! flag, then environment, then file, then the built-in default. Relative
//! paths in a file are relative to the file's folder.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::Deserialize;

/// The file's name in a folder.
pub const FILE_NAME: &str = "textwatch.toml";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    db: Option<PathBuf>,
    policy: Option<PathBuf>,
    providers: Option<PathBuf>,
    rules: Option<Vec<PathBuf>>,
    reporter: Option<ReporterSection>,
    serve: Option<ServeSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReporterSection {
    org: Option<String>,
    contact: Option<String>,
    domain: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeSection {
    listen: Option<String>,
}

/// Where one setting's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A file gave it and it is in use.
    File(PathBuf),
    /// A file gave it, but the environment variable was already set.
    Environment,
}

/// One setting found in a file.
#[derive(Debug, Clone)]
pub struct Setting {
    pub key: &'static str,
    pub env: &'static str,
    pub value: String,
    pub origin: Origin,
}

/// What became of a configuration file looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Looked {
    Read,
    Missing,
    /// Owned by another user (not root): not read.
    NotOurs,
}

/// What was looked for and what was applied.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Files looked for, in order, and what became of each.
    pub looked: Vec<(PathBuf, Looked)>,
    pub settings: Vec<Setting>,
}

/// The files to look for, in order (later wins).
pub fn candidates(explicit: Option<&Path>, db: &Path) -> Vec<PathBuf> {
    if let Some(p) = explicit {
        return vec![p.to_path_buf()];
    }
    let mut out = Vec::new();
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".config")));
    if let Some(x) = xdg {
        out.push(x.join("textwatch").join(FILE_NAME));
    }
    let folder = db.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    out.push(folder.join(FILE_NAME));
    out
}

/// Whether `path` (if it exists) belongs to this process's user or to
/// root. A missing file counts as ours (there is nothing to read).
fn owned_by_us(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(file) = std::fs::metadata(path) else { return true };
    // The owner of /proc/self is this process's effective user.
    let me = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(file.uid());
    file.uid() == me || file.uid() == 0
}

/// Reads the files and sets, for every setting they give, the environment
/// variable its option reads, unless it is set already. Call before any
/// thread starts (it changes the process environment).
pub fn apply(explicit: Option<&Path>, db: &Path) -> Result<Loaded> {
    let mut loaded = Loaded::default();
    let mut found: Vec<(PathBuf, File)> = Vec::new();
    for path in candidates(explicit, db) {
        if explicit.is_none() && !owned_by_us(&path) {
            // Like git's safe.directory: a folder someone else controls
            // must not choose where this process listens or writes.
            crate::output::report(
                crate::output::Level::Warning,
                &format!("not reading {}: another user owns it", path.display()),
            );
            loaded.looked.push((path, Looked::NotOurs));
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let file: File =
                    toml::from_str(&text).with_context(|| format!("reading configuration {}", path.display()))?;
                loaded.looked.push((path.clone(), Looked::Read));
                found.push((path, file));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
                loaded.looked.push((path, Looked::Missing));
            }
            Err(e) => return Err(e).with_context(|| format!("reading configuration {}", path.display())),
        }
    }
    // Key by key, the last file that gives a value wins.
    let mut chosen: Vec<(&'static str, &'static str, String, PathBuf)> = Vec::new();
    for (path, f) in &found {
        let dir = path.parent().unwrap_or(Path::new("."));
        let rel = |p: &PathBuf| dir.join(p).display().to_string();
        let reporter = f.reporter.as_ref();
        let values: [(&'static str, &'static str, Option<String>); 8] = [
            ("db", "TEXTWATCH_DB", f.db.as_ref().map(rel)),
            ("policy", "TEXTWATCH_POLICY", f.policy.as_ref().map(rel)),
            ("providers", "TEXTWATCH_PROVIDERS", f.providers.as_ref().map(rel)),
            ("rules", "TEXTWATCH_RULES", f.rules.as_ref().map(|r| r.iter().map(rel).collect::<Vec<_>>().join(":"))),
            ("reporter.org", "TEXTWATCH_REPORTER_ORG", reporter.and_then(|r| r.org.clone())),
            ("reporter.contact", "TEXTWATCH_REPORTER_CONTACT", reporter.and_then(|r| r.contact.clone())),
            ("reporter.domain", "TEXTWATCH_REPORTER_DOMAIN", reporter.and_then(|r| r.domain.clone())),
            ("serve.listen", "TEXTWATCH_LISTEN", f.serve.as_ref().and_then(|s| s.listen.clone())),
        ];
        for (key, env, value) in values {
            let Some(value) = value else { continue };
            chosen.retain(|c| c.0 != key);
            chosen.push((key, env, value, path.clone()));
        }
    }
    for (key, env, value, path) in chosen {
        let origin = if std::env::var_os(env).is_some_and(|v| !v.is_empty()) {
            Origin::Environment
        } else {
            std::env::set_var(env, &value);
            Origin::File(path)
        };
        loaded.settings.push(Setting { key, env, value, origin });
    }
    Ok(loaded)
}

#[derive(clap::Args, Debug)]
pub struct ConfigArgs {}

/// `textwatch config`: the database in use, which files were read and
/// what they set.
pub fn show(loaded: &Loaded, db: &Path, postgres: Option<&str>) {
    if let Some(url) = postgres {
        let from = if std::env::args().any(|a| a == "--postgres" || a.starts_with("--postgres=")) {
            "from --postgres"
        } else {
            "from TEXTWATCH_POSTGRES"
        };
        println!("database: {} ({from})\n", textwatch_store::pg::describe(url));
        return show_files(loaded);
    }
    let flag = std::env::args().any(|a| a == "--db" || a.starts_with("--db="));
    let from_file = loaded.settings.iter().any(|s| s.key == "db" && matches!(s.origin, Origin::File(_)));
    let source = if flag {
        "from --db"
    } else if from_file {
        "from a configuration file"
    } else if std::env::var_os("TEXTWATCH_DB").is_some_and(|v| !v.is_empty()) {
        "from TEXTWATCH_DB"
    } else {
        "the default"
    };
    println!("database: {} ({source})\n", db.display());
    show_files(loaded);
}

/// The configuration files looked at and the settings they gave.
fn show_files(loaded: &Loaded) {
    println!("configuration files (a later one wins, key by key):");
    for (path, what) in &loaded.looked {
        let what = match what {
            Looked::Read => "read",
            Looked::Missing => "not found",
            Looked::NotOurs => "skipped: another user owns it",
        };
        println!("  {:<60} {what}", path.display());
    }
    if loaded.settings.is_empty() {
        println!("\nno settings from files: flags, the environment and the built-in defaults apply");
        println!("(docs/cli.md#configuration-file lists the settings a {FILE_NAME} can hold)");
        return;
    }
    println!("\nsettings (a flag on the command line still wins over these):");
    for s in &loaded.settings {
        let from = match &s.origin {
            Origin::File(p) => format!("from {}", p.display()),
            Origin::Environment => format!("not used: {} is set in the environment", s.env),
        };
        println!("  {:<18} {:<40} {from}", s.key, s.value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let e = toml::from_str::<File>("lisen = 1\n").unwrap_err().to_string();
        assert!(e.contains("unknown field `lisen`"), "{e}");
        let e = toml::from_str::<File>("[serve]\nlisten = 8080\n").unwrap_err().to_string();
        assert!(e.contains("invalid type"), "{e}");
    }

    #[test]
    fn the_data_folder_is_the_databases_folder() {
        let c = candidates(None, Path::new("/srv/tw/main.db"));
        assert_eq!(c.last().unwrap(), Path::new("/srv/tw/textwatch.toml"));
        let c = candidates(None, Path::new("textwatch.db"));
        assert_eq!(c.last().unwrap(), Path::new("./textwatch.toml"));
        let c = candidates(Some(Path::new("/etc/tw.toml")), Path::new("x.db"));
        assert_eq!(c, vec![PathBuf::from("/etc/tw.toml")]);
    }
}
