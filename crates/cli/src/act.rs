//! Acting on campaigns: `policy` (show, check, explain) and `blocklist`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use crate::context::ContextArgs;
use textwatch_sinks::blocklist::blocklist_entries;
use textwatch_sinks::enrich::Enricher;
use textwatch_sinks::views::{enriched_campaign, scope_word};
use textwatch_store::Location;

#[derive(clap::Args, Debug)]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(clap::Subcommand, Debug)]
enum PolicyCommand {
    /// Print the policy in effect (the built-in one, or --policy FILE).
    Show {
        #[command(flatten)]
        ctx: ContextArgs,
    },
    /// Check a policy file: exits 0 and says how many rules it has, or
    /// names the file, rule and field that is wrong.
    Check {
        /// The policy file.
        file: std::path::PathBuf,
    },
    /// Say which rule of the policy decided a campaign's action and why,
    /// and why each earlier rule did not.
    ///
    /// Example: textwatch policy explain aff8e3
    Explain {
        /// Campaign id or unique prefix.
        campaign: String,
        #[command(flatten)]
        ctx: ContextArgs,
        /// table for people, json for tools.
        #[arg(long, value_enum, default_value_t = crate::output::Format::Table)]
        format: crate::output::Format,
    },
}

pub fn policy(db: &Location, args: PolicyArgs) -> Result<ExitCode> {
    match args.command {
        PolicyCommand::Show { ctx } => {
            match &ctx.policy {
                Some(p) => print!("{}", std::fs::read_to_string(p)?),
                None => print!("{}", textwatch_engine::policy::DEFAULT_POLICY),
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Check { file } => {
            let p = textwatch_sinks::enrich::load_policy(Some(&file))?;
            println!("{}: {} rules, alerts from {}", file.display(), p.rules.len(), p.alerts.min_action.as_str());
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Explain { campaign, ctx, format } => {
            let store = crate::output::open_at(db)?;
            let e = Enricher::load(&*store, &ctx.files())?;
            let Some(d) = enriched_campaign(&*store, &e, &campaign, 0)? else {
                crate::output::report(
                    crate::output::Level::Error,
                    &format!("no campaign {campaign:?}; `textwatch campaigns` lists them"),
                );
                return Ok(ExitCode::FAILURE);
            };
            let senders: Vec<(String, u64)> = d.sender_stats.iter().map(|v| (v.sender.clone(), v.messages)).collect();
            let (decision, checks) = e.explain(&d.summary, &senders);
            let mut out = std::io::stdout().lock();
            if format != crate::output::Format::Table {
                #[derive(Serialize)]
                struct Explained<'a> {
                    campaign: &'a str,
                    policy: &'a str,
                    decision: &'a textwatch_engine::policy::Decision,
                    rules: &'a [textwatch_engine::policy::RuleCheck],
                }
                let x = Explained {
                    campaign: &d.summary.id,
                    policy: &e.policy.origin,
                    decision: &decision,
                    rules: &checks,
                };
                serde_json::to_writer_pretty(&mut out, &x)?;
                writeln!(out)?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut out = crate::output::SafeText(out);
            writeln!(out, "campaign {} under {}:", d.summary.id, e.policy.origin)?;
            writeln!(
                out,
                "  decision: {} {} (rule {})\n",
                decision.action.as_str(),
                scope_word(decision.scope),
                decision.rule
            )?;
            for c in &checks {
                let mark = if c.matched && c.rule == decision.rule {
                    "DECIDED"
                } else if c.matched {
                    "matched (an earlier rule decided)"
                } else {
                    "no"
                };
                writeln!(out, "  {} -> {} {}: {mark}", c.rule, c.action.as_str(), scope_word(c.scope))?;
                for (ok, what) in &c.conditions {
                    writeln!(out, "      [{}] {what}", if *ok { "x" } else { " " })?;
                }
                if c.matched && c.rule == decision.rule {
                    break;
                }
            }
            if decision.rule == "default" {
                writeln!(out, "  no rule matched: allow")?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct BlocklistArgs {
    /// csv (columns type,value,campaign,reason) or json (an array of the
    /// same fields).
    #[arg(long, value_enum, default_value_t = ListFormat::Csv)]
    format: ListFormat,
    /// Only campaigns of this category (repeatable): a category
    /// (`political`), `category/subcategory` (`scam/phishing`) or a
    /// subcategory alone (`fundraising`); see docs/rules.md#categories.
    #[arg(long = "category", value_name = "CATEGORY")]
    categories: Vec<String>,
    #[command(flatten)]
    ctx: ContextArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Csv,
    Json,
}

pub fn blocklist(db: &textwatch_store::Location, args: BlocklistArgs) -> Result<ExitCode> {
    let store = crate::output::open_at(db)?;
    let e = Enricher::load(&*store, &args.ctx.files())?;
    let entries = blocklist_entries(&*store, &e, &args.categories)?;
    let stdout = std::io::stdout().lock();
    match args.format {
        ListFormat::Json => {
            let mut out = std::io::BufWriter::new(stdout);
            serde_json::to_writer_pretty(&mut out, &entries)?;
            writeln!(out)?;
            out.flush()?;
        }
        ListFormat::Csv => {
            let mut w = csv::Writer::from_writer(stdout);
            // csv errors carry the io error (a closed pipe) through.
            w.write_record(["type", "value", "campaign", "reason"]).map_err(std::io::Error::from)?;
            for b in &entries {
                w.write_record([b.kind, &b.value, &b.campaign, &b.reason]).map_err(std::io::Error::from)?;
            }
            w.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
