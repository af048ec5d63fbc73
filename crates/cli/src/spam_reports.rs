//! `textwatch import-reports`: spam reports from files (a 7726 short
//! code's inbound traffic, or an app's reports), paired and scanned in
//! as messages with source `report`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Parser as _;
use textwatch_sources::spam_reports::decode_record;
use textwatch_store::sqlite::SqliteStore;

use crate::output::{report, Level};

#[derive(clap::Args, Debug)]
pub struct ImportReportsArgs {
    /// JSONL files of reports: `{"reporter", "sender", "text", "ts"}` (an
    /// app's report) or `{"reporter" or "from", "body", "ts"}` (a text
    /// forwarded to 7726: the spam, then the number it came from).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
}

/// Wraps `scan`'s options to build them from words.
#[derive(clap::Parser)]
struct ScanWords {
    #[command(flatten)]
    args: crate::scan::ScanArgs,
}

pub fn run(db: &Path, args: ImportReportsArgs) -> Result<ExitCode> {
    let mut records = Vec::new();
    let mut rejected = 0u64;
    for f in &args.files {
        let file: std::sync::Arc<str> = std::sync::Arc::from(f.display().to_string());
        let r = BufReader::new(std::fs::File::open(f).with_context(|| format!("opening {}", f.display()))?);
        for (i, line) in r.split(b'\n').enumerate() {
            let line = line.with_context(|| format!("reading {}", f.display()))?;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match decode_record(&file, i as u64 + 1, &line) {
                Ok(rec) => records.push(rec),
                Err(e) => {
                    rejected += 1;
                    report(Level::Warning, &e.to_string());
                }
            }
        }
    }
    let (paired, tmp) = {
        let mut store = SqliteStore::open(db).with_context(|| format!("opening database {}", db.display()))?;
        let analyzer =
            textwatch_pipeline::setup::analyzer(&store, textwatch_engine::EngineConfig::default().min_template_len)?;
        let paired = textwatch_pipeline::spam_reports::pair(&mut store, &analyzer, records)?;
        // The reports as messages, for the scan below (next to the
        // database, removed after).
        let tmp = tempfile::Builder::new()
            .prefix(".textwatch-reports-")
            .suffix(".jsonl")
            .tempfile_in(db.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")))
            .context("creating a temporary file next to the database")?;
        let mut w = std::io::BufWriter::new(tmp.as_file());
        for m in &paired.messages {
            let v = serde_json::json!({
                "id": m.id, "ts": textwatch_store::time::format_ts(m.ts_ms), "from": m.from, "to": m.to,
                "body": m.body, "source": "report",
            });
            writeln!(w, "{v}")?;
        }
        w.flush()?;
        drop(w);
        (paired, tmp)
    };
    eprintln!(
        "{} report{} paired or given, {} forwarded text{} waiting for its number, {} number{} with no text before it, {rejected} rejected",
        paired.messages.len(),
        if paired.messages.len() == 1 { "" } else { "s" },
        paired.waiting,
        if paired.waiting == 1 { "" } else { "s" },
        paired.unpaired,
        if paired.unpaired == 1 { "" } else { "s" },
    );
    if paired.messages.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let path = tmp.path().to_string_lossy().into_owned();
    let mut words = vec!["scan".to_string(), path];
    if args.quiet {
        words.push("-q".into());
    }
    let scan = ScanWords::try_parse_from(words).context("building the scan")?;
    crate::scan::run(db, scan.args)
}
