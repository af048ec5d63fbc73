//! `textwatch reports`: the takedown reports sent (`report --send` or
//! `--mark-sent`) and what followed each: its numbers going quiet, the
//! operator rotating to new ones, the provider's answer.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use textwatch_sinks::followup::{by_provider, follow_up, follow_ups, human, FollowUp, Settings};
use textwatch_store::Location;

use crate::output::{short_time, Table};

#[derive(clap::Args, Debug)]
pub struct ReportsArgs {
    #[command(subcommand)]
    command: Option<ReportsCommand>,
    #[command(flatten)]
    follow: FollowArgs,
}

/// How follow-ups are judged.
#[derive(clap::Args, Debug, Clone)]
pub struct FollowArgs {
    /// A number is quiet after this long without a text for the campaign
    /// (e.g. 6h, 90m, 2d).
    #[arg(long, default_value = "6h", value_name = "DURATION", value_parser = humantime::parse_duration, global = true)]
    quiet_after: Duration,
    /// A report is ignored when a reported number still sends this long
    /// after it.
    #[arg(long, default_value = "24h", value_name = "DURATION", value_parser = humantime::parse_duration, global = true)]
    ignore_after: Duration,
    /// Judge as of this time (RFC 3339) instead of the newest message
    /// stored.
    #[arg(long, value_name = "TIME", global = true)]
    now: Option<String>,
    /// table or json.
    #[arg(long, default_value = "table", value_parser = ["table", "json"], global = true)]
    format: String,
}

impl FollowArgs {
    fn settings(&self) -> Result<Settings> {
        let now = match &self.now {
            Some(t) => Some(textwatch_sources::time::parse_ts(t).map_err(|e| anyhow::anyhow!("--now: {e}"))?),
            None => None,
        };
        Ok(Settings {
            quiet_after_ms: self.quiet_after.as_millis() as i64,
            ignore_after_ms: self.ignore_after.as_millis() as i64,
            now,
        })
    }
}

#[derive(clap::Subcommand, Debug)]
enum ReportsCommand {
    /// Every report with its state, then the record of each provider
    /// (the default).
    List,
    /// One report: each reported number (texts before and after, last
    /// text, time to quiet) and the numbers that took their place.
    Show { id: i64 },
    /// Record the provider's answer to a report.
    ///
    /// Example: textwatch reports answer 3 "Numbers suspended, ticket 88412"
    Answer {
        id: i64,
        text: String,
        /// When it came (RFC 3339; default now).
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
}

pub fn run(db: &Location, args: ReportsArgs) -> Result<ExitCode> {
    let settings = args.follow.settings()?;
    let json = args.follow.format == "json";
    match args.command.unwrap_or(ReportsCommand::List) {
        ReportsCommand::List => {
            let store = db.open_existing().with_context(|| format!("opening {db}"))?;
            let fs = follow_ups(&*store, &settings)?;
            if json {
                let v = serde_json::json!({"reports": fs, "providers": by_provider(&fs)});
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(ExitCode::SUCCESS);
            }
            if fs.is_empty() {
                eprintln!("no reports yet: `textwatch report ID --send` or `--mark-sent` records one");
                return Ok(ExitCode::SUCCESS);
            }
            print!("{}", list(&fs));
            println!();
            print!("{}", providers(&fs));
        }
        ReportsCommand::Show { id } => {
            let store = db.open_existing().with_context(|| format!("opening {db}"))?;
            let Some(r) = store.sent_report(id)? else {
                bail!("no report {id}; `textwatch reports` lists them");
            };
            let f = follow_up(&*store, &r, &settings)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&f)?);
            } else {
                print!("{}", show(&f));
            }
        }
        ReportsCommand::Answer { id, text, at } => {
            let at = match at {
                Some(t) => textwatch_sources::time::parse_ts(&t).map_err(|e| anyhow::anyhow!("--at: {e}"))?,
                None => textwatch_store::time::now_ms(),
            };
            let mut store = db.open_writer().with_context(|| format!("opening {db}"))?;
            if !store.answer_report(id, &text, at)? {
                bail!("no report {id}; `textwatch reports` lists them");
            }
            eprintln!("report {id}: answer recorded");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list(fs: &[FollowUp]) -> String {
    let mut t = Table::new(&[
        ("ID", true),
        ("CAMPAIGN", false),
        ("PROVIDER", false),
        ("SENT", false),
        ("STATE", false),
        ("QUIET", true),
        ("MEDIAN TO QUIET", true),
        ("ROTATED", true),
        ("UNREPORTED", true),
        ("AFTER", true),
        ("ANSWER", false),
    ]);
    for f in fs {
        let quiet = f.numbers.iter().filter(|n| n.state == "quiet").count();
        let mut times: Vec<i64> = f.numbers.iter().filter_map(|n| n.quiet_after_s).collect();
        times.sort_unstable();
        t.row(vec![
            f.report.id.to_string(),
            f.campaign_now.chars().take(16).collect(),
            f.report.provider.clone(),
            short_time(f.report.sent_at),
            f.state.to_string(),
            format!("{quiet}/{}", f.numbers.len()),
            times.get(times.len() / 2).map(|s| human(*s)).unwrap_or_else(|| "-".into()),
            f.rotated.len().to_string(),
            f.unreported.len().to_string(),
            f.messages_after.to_string(),
            f.report.answer.as_deref().map(|a| a.chars().take(40).collect()).unwrap_or_default(),
        ]);
    }
    t.render()
}

fn providers(fs: &[FollowUp]) -> String {
    let mut t = Table::new(&[
        ("PROVIDER", false),
        ("REPORTS", true),
        ("QUIET", true),
        ("ROTATED", true),
        ("IGNORED", true),
        ("OPEN", true),
        ("MEDIAN TO QUIET", true),
        ("IGNORED SHARE", true),
    ]);
    for p in by_provider(fs) {
        t.row(vec![
            p.provider,
            p.reports.to_string(),
            p.quiet.to_string(),
            p.rotated.to_string(),
            p.ignored.to_string(),
            p.open.to_string(),
            p.median_quiet_s.map(human).unwrap_or_else(|| "-".into()),
            format!("{:.0}%", p.ignored_share * 100.0),
        ]);
    }
    t.render()
}

fn show(f: &FollowUp) -> String {
    let r = &f.report;
    let mut o = format!(
        "report {}  campaign {}  to {}{}\nsent {} ({}{})  state {}  measured at {}\ntexts before {}, after {}\n",
        r.id,
        f.campaign_now,
        r.provider,
        r.sent_to.as_deref().map(|t| format!(" <{t}>")).unwrap_or_default(),
        short_time(r.sent_at),
        r.via,
        r.reference.as_deref().map(|x| format!(", {x}")).unwrap_or_default(),
        f.state,
        short_time(f.measured_at),
        f.messages_before,
        f.messages_after,
    );
    if let Some(a) = &r.answer {
        o.push_str(&format!("answer ({}): {a}\n", r.answered_at.map(short_time).unwrap_or_default()));
    }
    o.push_str("\nreported numbers:\n");
    let mut t = Table::new(&[
        ("NUMBER", false),
        ("BEFORE", true),
        ("AFTER", true),
        ("LAST TEXT", false),
        ("STATE", false),
        ("QUIET AFTER", true),
    ]);
    for n in &f.numbers {
        t.row(vec![
            n.number.clone(),
            n.before.to_string(),
            n.after.to_string(),
            n.last_seen.map(short_time).unwrap_or_else(|| "-".into()),
            n.state.to_string(),
            n.quiet_after_s.map(human).unwrap_or_else(|| "-".into()),
        ]);
    }
    o.push_str(&t.render());
    for (list, title) in [
        (&f.rotated, "numbers the campaign moved to after the reported ones fell silent (rotation)"),
        (&f.unreported, "numbers not in the report that sent for the campaign after it"),
    ] {
        if list.is_empty() {
            continue;
        }
        o.push_str(&format!("\n{title}:\n"));
        let mut t = Table::new(&[("NUMBER", false), ("FIRST TEXT", false), ("LAST TEXT", false), ("TEXTS", true)]);
        for n in list {
            t.row(vec![n.number.clone(), short_time(n.first_seen), short_time(n.last_seen), n.messages.to_string()]);
        }
        o.push_str(&t.render());
    }
    if f.rotated.is_empty() && f.unreported.is_empty() {
        o.push_str("\nno other numbers sent for the campaign after the report\n");
    }
    o
}
