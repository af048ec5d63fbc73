//! `textwatch migrate` and `textwatch prune`: the message log's upkeep.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use textwatch_store::sqlite::SqliteStore;
use textwatch_store::Location;

use crate::output::thousands;

#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    /// Messages moved per step (each step is one commit; a stopped
    /// migration resumes at the next step).
    #[arg(long, default_value_t = 65_536, value_name = "N")]
    batch: usize,

    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Drop segments whose newest message is older than this: a date
    /// (`2020-11-01`, midnight UTC) or a time (`2020-11-01T12:00:00Z`).
    #[arg(long, value_name = "DATE")]
    before: String,

    /// Say what would go, change nothing.
    #[arg(long)]
    dry_run: bool,
}

pub fn migrate(db: &Path, args: MigrateArgs) -> Result<ExitCode> {
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let mut store =
        SqliteStore::open_for_migration(db).with_context(|| format!("opening database {}", db.display()))?;
    let total = store.legacy_messages()?;
    if total == 0 {
        store.migrate_messages(args.batch, &mut |_, _| {})?;
        println!("{}: nothing to migrate, its messages are already in the message log", db.display());
        return Ok(ExitCode::SUCCESS);
    }
    let pb = if args.quiet { ProgressBar::hidden() } else { ProgressBar::new(total) };
    if let Ok(s) = ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} messages  {elapsed}") {
        pb.set_style(s.progress_chars("=> "));
    }
    let done = store
        .migrate_messages(args.batch, &mut |moved, _| pb.set_position(moved))
        .context("moving messages into the message log")?;
    pb.finish_and_clear();
    let dir = store.segments_dir().map(|d| d.display().to_string()).unwrap_or_default();
    println!(
        "moved {} messages into {} segment{} in {dir}",
        thousands(done.messages),
        done.segments,
        if done.segments == 1 { "" } else { "s" }
    );
    Ok(ExitCode::SUCCESS)
}

/// `2020-11-01` (midnight UTC) or any time `scan` accepts.
fn parse_before(s: &str) -> Result<i64> {
    let t = s.trim();
    let full =
        if t.len() == 10 && t.as_bytes().get(4) == Some(&b'-') { format!("{t}T00:00:00Z") } else { t.to_string() };
    textwatch_sources::time::parse_ts(&full).map_err(|e| anyhow::anyhow!("--before: {e}"))
}

pub fn prune(db: &Location, args: PruneArgs) -> Result<ExitCode> {
    let before = parse_before(&args.before)?;
    let mut store = db.open_existing().with_context(|| format!("opening database {db}"))?;
    let mut out = std::io::stdout().lock();
    if args.dry_run {
        let segs: Vec<_> = store.segments()?.into_iter().filter(|s| s.max_ts.is_none_or(|t| t < before)).collect();
        let messages: u64 = segs.iter().map(|s| s.rows).sum();
        writeln!(
            out,
            "would drop {} segment{} holding {} messages older than {}",
            segs.len(),
            if segs.len() == 1 { "" } else { "s" },
            thousands(messages),
            crate::output::short_time(before)
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let p = store.prune(before).context("pruning the message log")?;
    let (left, bytes) = store.log_usage()?;
    writeln!(
        out,
        "dropped {} segment{} ({} messages, {} MB) and {} templates no campaign uses; {} campaigns keep their counts and samples",
        p.segments,
        if p.segments == 1 { "" } else { "s" },
        thousands(p.messages),
        (p.bytes as f64 / 1e6).round() as u64,
        thousands(p.templates),
        thousands(p.campaigns_touched)
    )?;
    writeln!(out, "the log now holds {} messages in {} MB", thousands(left), (bytes as f64 / 1e6).round() as u64)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn before_takes_dates_and_times() {
        assert_eq!(parse_before("2020-11-04").unwrap(), 1_604_448_000_000);
        assert_eq!(parse_before("2020-11-04T12:00:00Z").unwrap(), 1_604_491_200_000);
        assert!(parse_before("last tuesday").unwrap_err().to_string().contains("--before"));
    }
}
