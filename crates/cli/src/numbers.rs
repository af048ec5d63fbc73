//! `textwatch numbers ...` (import and inspect number data) and
//! `textwatch number E164` (one sender: class, attribution, activity).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use textwatch_store::time::now_ms;

use anyhow::{bail, Context, Result};
use textwatch_numbers::nanpa::{self, Parsed};
use textwatch_sinks::views::number_view;
use textwatch_store::{Location, NumberSource};

use crate::output::Format;
use crate::output::{short_time, thousands, Table};

#[derive(clap::Args, Debug)]
pub struct NumbersArgs {
    #[command(subcommand)]
    command: NumbersCommand,
}

#[derive(clap::Subcommand, Debug)]
enum NumbersCommand {
    /// Load number data attribution uses. Each file replaces what the same
    /// source imported before: the NANPA exchange file and the block report
    /// are one source each, every inventory file (by name) is its own.
    ///
    /// Example: textwatch numbers import --nanpa-co allutlzd.txt --nanpa-blocks AllBlocksAugmentedReport.txt --inventory gateway-numbers.csv
    Import(ImportArgs),
    /// List imported number sources: kind, file, file date, rows.
    Sources,
    /// Derive the area-code table textwatch ships (crates/numbers/data/npa.tsv)
    /// from NANPA's NPA report CSV, to standard output.
    ///
    /// Example: textwatch numbers npa-table --from ../shared/data/nanp/npa_report.csv > crates/numbers/data/npa.tsv
    NpaTable {
        /// NANPA's NPA Database report (CSV).
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
struct ImportArgs {
    /// NANPA central office code file (tab-separated, as NANPA publishes
    /// it; unzip first; .gz is read directly).
    #[arg(long, value_name = "FILE")]
    nanpa_co: Vec<PathBuf>,
    /// NANPA thousands-block report (tab- or comma-separated).
    #[arg(long, value_name = "FILE")]
    nanpa_blocks: Vec<PathBuf>,
    /// Inventory CSV `prefix,provider,source`: numbers or ranges and the
    /// provider that actually serves them (leases, ports, a gateway's own
    /// numbers). Outranks NANPA data.
    #[arg(long, value_name = "FILE")]
    inventory: Vec<PathBuf>,
}

fn read_file(path: &Path) -> Result<Box<dyn Read>> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic)?;
    let head = std::io::Cursor::new(magic[..n].to_vec());
    if n >= 4 && magic == [b'P', b'K', 3, 4] {
        bail!("{} is a zip archive: unzip it and import the text file inside", path.display());
    }
    let r = head.chain(f);
    if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        return Ok(Box::new(flate2::read::MultiGzDecoder::new(r)));
    }
    Ok(Box::new(r))
}

pub fn numbers(db: &Location, args: NumbersArgs) -> Result<ExitCode> {
    match args.command {
        NumbersCommand::Import(a) => import(db, a),
        NumbersCommand::Sources => {
            let store = crate::output::open_at(db)?;
            let mut t = Table::new(&[("SOURCE", false), ("FILE DATE", false), ("ROWS", true), ("IMPORTED", false)]);
            for s in store.number_sources()? {
                t.row(vec![
                    s.key,
                    s.file_date.unwrap_or_else(|| "-".into()),
                    thousands(s.rows),
                    short_time(s.imported_at),
                ]);
            }
            print!("{}", t.render());
            Ok(ExitCode::SUCCESS)
        }
        NumbersCommand::NpaTable { from } => {
            let text = textwatch_numbers::npa::derive_table(read_file(&from)?)
                .with_context(|| format!("reading {}", from.display()))?;
            std::io::stdout().lock().write_all(text.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn import(db: &Location, a: ImportArgs) -> Result<ExitCode> {
    let jobs: Vec<(&str, &PathBuf)> = a
        .nanpa_co
        .iter()
        .map(|p| ("nanpa-co", p))
        .chain(a.nanpa_blocks.iter().map(|p| ("nanpa-blocks", p)))
        .chain(a.inventory.iter().map(|p| ("inventory", p)))
        .collect();
    if jobs.is_empty() {
        bail!("nothing to import: give --nanpa-co, --nanpa-blocks or --inventory FILE");
    }
    let mut store = db.open_writer().with_context(|| format!("opening database {db}"))?;
    let mut rejected = 0usize;
    for (kind, path) in jobs {
        let started = Instant::now();
        let name =
            path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| path.display().to_string());
        let input = read_file(path)?;
        let parsed: Parsed = match kind {
            "nanpa-co" => nanpa::read_co(input, &name),
            "nanpa-blocks" => nanpa::read_blocks(input, &name),
            _ => nanpa::read_inventory(input, &name),
        }
        .with_context(|| format!("reading {}", path.display()))?;
        for r in parsed.rejects.iter().take(20) {
            crate::output::report(
                crate::output::Level::Warning,
                &format!("{}:{}: {}", path.display(), r.line, r.reason),
            );
        }
        if parsed.rejects.len() > 20 {
            crate::output::report(
                crate::output::Level::Warning,
                &format!("{}: ... and {} more bad lines", path.display(), parsed.rejects.len() - 20),
            );
        }
        rejected += parsed.rejects.len();
        let key = if kind == "inventory" { format!("inventory:{name}") } else { kind.to_string() };
        let source = NumberSource {
            key: key.clone(),
            kind: kind.to_string(),
            file: path.display().to_string(),
            file_date: parsed.file_date.clone(),
            rows: parsed.rows.len() as u64,
            imported_at: now_ms(),
        };
        store.replace_number_source(&source, &parsed.rows)?;
        eprintln!(
            "imported {key}: {} rows from {}{} in {:.1} s",
            thousands(parsed.rows.len() as u64),
            path.display(),
            if parsed.rejects.is_empty() {
                String::new()
            } else {
                format!(" ({} bad lines skipped)", parsed.rejects.len())
            },
            started.elapsed().as_secs_f64()
        );
    }
    Ok(if rejected > 0 { ExitCode::from(3) } else { ExitCode::SUCCESS })
}

#[derive(clap::Args, Debug)]
pub struct NumberArgs {
    /// The sender: E.164 (+12155550123), any common US format, a short
    /// code or an alphanumeric ID.
    number: String,
    /// table for people, json for tools.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Your provider registry (TOML), merged over the built-in one.
    #[arg(long, env = "TEXTWATCH_PROVIDERS", value_name = "FILE")]
    providers: Option<PathBuf>,
}

pub fn number(db: &Location, args: NumberArgs) -> Result<ExitCode> {
    let store = crate::output::open_at(db)?;
    let dir = textwatch_sinks::enrich::load_directory(
        &*store,
        textwatch_sinks::enrich::load_registry(args.providers.as_deref())?,
    )?;
    let v = number_view(&*store, &dir, &args.number)?;
    let mut out = std::io::stdout().lock();
    if args.format != Format::Table {
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = crate::output::SafeText(out);
    writeln!(out, "{}", v.number)?;
    writeln!(
        out,
        "  class       {}{}",
        v.info.class.as_str(),
        v.info.region.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
    )?;
    if let Some(why) = &v.info.invalid {
        writeln!(out, "  invalid     {why}")?;
    }
    writeln!(out, "  {}", v.attribution_text)?;
    if let Some(c) = &v.abuse_contact {
        writeln!(out, "  abuse desk  {c}")?;
    }
    if dir.is_empty() {
        writeln!(out, "  (no number data imported: `textwatch numbers import --help`)")?;
    }
    match (v.activity.first_seen, v.activity.last_seen) {
        (Some(f), Some(l)) => writeln!(
            out,
            "  messages    {} ({} .. {})",
            thousands(v.activity.messages),
            textwatch_store::time::format_ts(f),
            textwatch_store::time::format_ts(l)
        )?,
        _ => writeln!(out, "  messages    none in this database")?,
    }
    if !v.activity.campaigns.is_empty() {
        writeln!(out, "\ncampaigns:")?;
        let mut t = Table::new(&[("CAMPAIGN", false), ("MESSAGES", true), ("FIRST SEEN", false), ("LAST SEEN", false)]);
        for c in &v.activity.campaigns {
            t.row(vec![c.campaign.clone(), thousands(c.messages), short_time(c.first_seen), short_time(c.last_seen)]);
        }
        for line in t.render().lines() {
            writeln!(out, "  {line}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
