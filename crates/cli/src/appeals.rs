//! `textwatch appeal`: appeals of blocks, decided by a reviewer; and
//! `textwatch audit`, the append-only log of those decisions.

use std::process::ExitCode;
use textwatch_store::time::now_ms;

use anyhow::{bail, Context as _, Result};
use textwatch_store::appeals::{Decided, SubjectKind};
use textwatch_store::Location;

use crate::output::{short_time, Table};

#[derive(clap::Args, Debug)]
pub struct AppealArgs {
    #[command(subcommand)]
    command: AppealCommand,
}

#[derive(clap::Subcommand, Debug)]
enum AppealCommand {
    /// Open an appeal of a block, for a number or a campaign.
    ///
    /// Example: textwatch appeal open --number +12155550100 --contact ops@acme.example --reason "our pharmacy alerts, opt-in list attached"
    Open {
        /// The blocked number.
        #[arg(long, conflicts_with = "campaign", required_unless_present = "campaign")]
        number: Option<String>,
        /// The blocked campaign (id or unique prefix).
        #[arg(long)]
        campaign: Option<String>,
        /// How to reach the appellant.
        #[arg(long)]
        contact: String,
        /// Why the block is wrong.
        #[arg(long)]
        reason: String,
    },
    /// List appeals: open first.
    List {
        /// table or json.
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
    /// Decide an appeal: --uphold keeps the block, --overturn adds an allow
    /// rule for the number or campaign (a new policy version) and drops it
    /// from the block list. Both go to the audit log.
    Decide {
        id: i64,
        #[arg(long, conflicts_with = "overturn", required_unless_present = "overturn")]
        uphold: bool,
        #[arg(long)]
        overturn: bool,
        /// Why (kept in the audit log and shown with the allow rule).
        #[arg(long)]
        reason: String,
        /// Who decides (default: the login name).
        #[arg(long)]
        by: Option<String>,
    },
}

#[derive(clap::Args, Debug)]
pub struct AuditArgs {
    /// table or json.
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    format: String,
}

fn whoami() -> String {
    std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "cli".into())
}

pub fn appeal(db: &Location, args: AppealArgs) -> Result<ExitCode> {
    match args.command {
        AppealCommand::Open { number, campaign, contact, reason } => {
            let mut store = db.open_writer().with_context(|| format!("opening {db}"))?;
            let (kind, subject) = match (number, campaign) {
                (Some(n), _) => {
                    let n = textwatch_engine::sender::normalize_address(&n);
                    if n.is_empty() {
                        bail!("--number is empty");
                    }
                    (SubjectKind::Number, n)
                }
                (None, Some(c)) => match store.resolve_campaign(&c)? {
                    Some(id) => (SubjectKind::Campaign, id),
                    None => bail!("no campaign {c:?}; `textwatch campaigns` lists them"),
                },
                (None, None) => bail!("give --number or --campaign"),
            };
            let id = store.open_appeal(now_ms(), kind, &subject, &contact, &reason, &whoami())?;
            eprintln!("appeal {id} opened for {} {subject}; `textwatch appeal decide {id}` decides it", kind.as_str());
        }
        AppealCommand::List { format } => {
            let store = db.open_existing().with_context(|| format!("opening {db}"))?;
            let mut all = store.appeals()?;
            all.sort_by_key(|a| (a.state != "open", a.id));
            if format == "json" {
                println!("{}", serde_json::to_string_pretty(&all)?);
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = Table::new(&[
                ("ID", true),
                ("OPENED", false),
                ("SUBJECT", false),
                ("CONTACT", false),
                ("STATE", false),
                ("DECIDED", false),
                ("REASON", false),
            ]);
            for a in &all {
                t.row(vec![
                    a.id.to_string(),
                    short_time(a.opened_at),
                    format!("{} {}", a.subject_kind.as_str(), a.subject),
                    a.contact.clone(),
                    a.state.clone(),
                    a.decided_at
                        .map(|t| format!("{} by {}", short_time(t), a.decided_by.clone().unwrap_or_default()))
                        .unwrap_or_default(),
                    a.decision_reason.clone().unwrap_or_else(|| a.reason.clone()).chars().take(60).collect(),
                ]);
            }
            print!("{}", t.render());
            let allows = store.policy_allows()?;
            if !allows.is_empty() {
                println!(
                    "\nallow rules added by overturned appeals (policy version {}):",
                    allows.last().map_or(0, |a| a.version)
                );
                let mut t = Table::new(&[
                    ("VERSION", true),
                    ("ADDED", false),
                    ("SUBJECT", false),
                    ("APPEAL", true),
                    ("REASON", false),
                ]);
                for a in &allows {
                    t.row(vec![
                        a.version.to_string(),
                        short_time(a.added_at),
                        format!("{} {}", a.subject_kind.as_str(), a.subject),
                        a.appeal.to_string(),
                        a.reason.chars().take(60).collect(),
                    ]);
                }
                print!("{}", t.render());
            }
        }
        AppealCommand::Decide { id, uphold: _, overturn, reason, by } => {
            let mut store = db.open_writer().with_context(|| format!("opening {db}"))?;
            let by = by.unwrap_or_else(whoami);
            match store.decide_appeal(id, overturn, &by, &reason, now_ms())? {
                Decided::Upheld => eprintln!("appeal {id} upheld: the block stays"),
                Decided::Overturned { version } => eprintln!(
                    "appeal {id} overturned: allow rule added, policy version {version}; the block list no longer lists it"
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn audit(db: &Location, args: AuditArgs) -> Result<ExitCode> {
    let store = db.open_existing().with_context(|| format!("opening {db}"))?;
    let log = store.audit_log()?;
    if args.format == "json" {
        println!("{}", serde_json::to_string_pretty(&log)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(&[
        ("ID", true),
        ("TIME", false),
        ("WHO", false),
        ("ACTION", false),
        ("SUBJECT", false),
        ("DETAIL", false),
    ]);
    for e in &log {
        t.row(vec![
            e.id.to_string(),
            short_time(e.at),
            e.actor.clone(),
            e.action.clone(),
            e.subject.clone(),
            e.detail.clone(),
        ]);
    }
    print!("{}", t.render());
    Ok(ExitCode::SUCCESS)
}
