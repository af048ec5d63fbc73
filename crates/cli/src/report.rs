//! `textwatch report`: one campaign as a takedown report (XARF v4), a
//! threat-intelligence bundle (STIX 2.1), a self-contained HTML dossier, or
//! Markdown, written by [`textwatch_sinks::report`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use serde_json::Value;
use textwatch_sinks::report::{dossier, html, markdown, stix, xarf, Reporter};

use crate::context::ContextArgs;
use crate::output::open;
use textwatch_sinks::enrich::Enricher;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// XARF v4 messaging/spam, one report per provider (a JSON array; one
    /// object with --provider): for a provider's abuse desk.
    Xarf,
    /// A STIX 2.1 bundle (campaign, indicators for links and numbers): for
    /// sharing intelligence.
    Stix,
    /// A self-contained HTML dossier (summary, timeline chart, senders by
    /// provider, rules broken with evidence, samples, policy decision).
    Html,
    /// The same dossier as Markdown.
    Md,
}

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Campaign id, or a unique prefix of it.
    campaign: String,
    #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
    format: ReportFormat,
    /// Only the part served by this provider (XARF: a single report).
    #[arg(long, value_name = "NAME")]
    provider: Option<String>,
    /// Sample messages included (per provider for XARF).
    #[arg(long, default_value_t = 10, value_name = "N")]
    samples: usize,
    /// Write here instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    reporter: ReporterArgs,
    #[command(flatten)]
    ctx: ContextArgs,
}

/// Who files the report (XARF `reporter` and `sender`; STIX identity).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ReporterArgs {
    /// Your organisation, as the report's reporter.
    #[arg(long, env = "TEXTWATCH_REPORTER_ORG", value_name = "NAME")]
    pub reporter_org: Option<String>,
    /// An e-mail address where the provider can reach you.
    #[arg(long, env = "TEXTWATCH_REPORTER_CONTACT", value_name = "EMAIL")]
    pub reporter_contact: Option<String>,
    /// Your organisation's domain.
    #[arg(long, env = "TEXTWATCH_REPORTER_DOMAIN", value_name = "DOMAIN")]
    pub reporter_domain: Option<String>,
}

impl From<ReporterArgs> for Reporter {
    fn from(a: ReporterArgs) -> Reporter {
        Reporter {
            reporter_org: a.reporter_org,
            reporter_contact: a.reporter_contact,
            reporter_domain: a.reporter_domain,
        }
    }
}

pub fn run(db: &Path, args: ReportArgs) -> Result<ExitCode> {
    let store = open(db)?;
    let e = Enricher::load(&store, &args.ctx.files())?;
    let Some(mut dos) = dossier(&store, &e, &args.campaign, args.samples)? else {
        crate::output::report(
            crate::output::Level::Error,
            &format!("no campaign {:?}; `textwatch campaigns` lists them", args.campaign),
        );
        return Ok(ExitCode::FAILURE);
    };
    if let Some(p) = &args.provider {
        let names: Vec<String> = dos.parts.iter().map(|p| p.group.name.clone()).collect();
        dos.parts.retain(|x| x.group.name.eq_ignore_ascii_case(p));
        if dos.parts.is_empty() {
            bail!("no sender of campaign {} is served by {p:?}; its providers: {}", dos.d.summary.id, names.join(", "));
        }
    }
    let text = match args.format {
        ReportFormat::Xarf => {
            let reporter = Reporter::from(args.reporter.clone());
            let reports = xarf(&dos, &reporter)?;
            let v = if args.provider.is_some() {
                reports.into_iter().next().unwrap_or(Value::Null)
            } else {
                Value::Array(reports)
            };
            serde_json::to_string_pretty(&v)? + "\n"
        }
        ReportFormat::Stix => serde_json::to_string_pretty(&stix(&dos, &Reporter::from(args.reporter.clone())))? + "\n",
        ReportFormat::Html => html(&dos),
        ReportFormat::Md => markdown(&dos),
    };
    match &args.out {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?,
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}
