//! `textwatch report`: one campaign as a takedown report (XARF v4), a
//! threat-intelligence bundle (STIX 2.1), a self-contained HTML dossier, or
//! Markdown, written by [`textwatch_sinks::report`].

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use textwatch_store::time::now_ms;

use anyhow::{bail, Context as _, Result};
use serde_json::Value;
use textwatch_sinks::report::{dossier, html, markdown, stix, xarf, Reporter};

use crate::context::ContextArgs;
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
    /// Send the report to the provider's abuse desk (or --to) through the
    /// SMTP relay (--smtp), as an attachment, and record it: `textwatch
    /// reports` then follows its numbers. Needs --provider when the
    /// campaign has more than one, and --reporter-contact (the From).
    #[arg(long, conflicts_with = "mark_sent")]
    send: bool,
    /// Record the report as sent some other way (a web form, a ticket),
    /// so that `textwatch reports` follows its numbers.
    #[arg(long)]
    mark_sent: bool,
    /// The abuse desk's address, instead of the provider registry's.
    #[arg(long, value_name = "EMAIL")]
    to: Option<String>,
    /// The SMTP relay for --send: smtp://host:25, smtp://host:587?tls=required,
    /// smtps://user:password@host:465.
    #[arg(long, env = "TEXTWATCH_SMTP", value_name = "URL", hide_env_values = true)]
    smtp: Option<String>,
    /// When it was sent, for --mark-sent (RFC 3339; default now).
    #[arg(long, value_name = "TIME", requires = "mark_sent")]
    at: Option<String>,
    /// The provider's ticket or reference, for --mark-sent.
    #[arg(long, value_name = "TEXT", requires = "mark_sent")]
    reference: Option<String>,
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

pub fn run(at: &textwatch_store::Location, args: ReportArgs) -> Result<ExitCode> {
    let store = crate::output::open_at(at)?;
    let e = Enricher::load(&*store, &args.ctx.files())?;
    let Some(mut dos) = dossier(&*store, &e, &args.campaign, args.samples)? else {
        crate::output::report(
            crate::output::Level::Error,
            &format!("no campaign {:?}; `textwatch campaigns` lists them", args.campaign),
        );
        return Ok(ExitCode::FAILURE);
    };
    dos.followups = textwatch_sinks::followup::for_campaign(&*store, &dos.d.summary.id, &Default::default())?;
    if let Some(p) = &args.provider {
        let names: Vec<String> = dos.parts.iter().map(|p| p.group.name.clone()).collect();
        dos.parts.retain(|x| x.group.name.eq_ignore_ascii_case(p));
        if dos.parts.is_empty() {
            bail!("no sender of campaign {} is served by {p:?}; its providers: {}", dos.d.summary.id, names.join(", "));
        }
    }
    if (args.send || args.mark_sent) && dos.parts.len() != 1 {
        let names: Vec<String> = dos.parts.iter().map(|p| p.group.name.clone()).collect();
        bail!(
            "a report goes to one provider: add --provider (campaign {} is served by {})",
            dos.d.summary.id,
            names.join(", ")
        );
    }
    let text = match args.format {
        ReportFormat::Xarf => {
            let reporter = Reporter::from(args.reporter.clone());
            let reports = xarf(&dos, &reporter)?;
            let v = if args.provider.is_some() || args.send || args.mark_sent {
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
    if args.send || args.mark_sent {
        record(at, &args, &dos, &text)?;
        if args.out.is_none() {
            // The report went out (or was marked); its text is not printed
            // over the confirmation.
            return Ok(ExitCode::SUCCESS);
        }
    }
    match &args.out {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?,
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Sends (`--send`) or marks (`--mark-sent`) the report and records it.
fn record(
    db: &textwatch_store::Location,
    args: &ReportArgs,
    dos: &textwatch_sinks::report::Dossier,
    text: &str,
) -> Result<()> {
    let part = &dos.parts[0];
    let provider = part.group.name.clone();
    let format = args.format.name();
    let all_numbers: Vec<String> = part.senders.iter().map(|s| s.sender.clone()).collect();
    let (sent_at, sent_to, via, reference) = if args.send {
        let Some(smtp) = &args.smtp else {
            bail!("--send needs an SMTP relay: --smtp smtp://host:25 (or TEXTWATCH_SMTP)");
        };
        let Some(to) = args.to.clone().or_else(|| part.group.abuse_contact.clone().filter(|c| c.contains('@'))) else {
            bail!(
                "no abuse address for {provider}: give --to, or add abuse_email for it to the provider registry (docs/attribution.md)"
            );
        };
        let Some(from) = &args.reporter.reporter_contact else {
            bail!("--send needs --reporter-contact (the From of the mail, where the provider answers)");
        };
        let subject = format!(
            "Abuse report: SMS campaign {} from {} number{} ({})",
            dos.d.summary.id,
            all_numbers.len(),
            if all_numbers.len() == 1 { "" } else { "s" },
            provider
        );
        let note = format!(
            "Hello {provider} abuse team,\n\nAttached is a {} report on an SMS campaign sent from {} of your numbers \
             ({} messages seen, {} to {}). The numbers: {}.\n\nPlease answer to {from}.\n\n-- {}\n",
            format.to_uppercase(),
            all_numbers.len(),
            part.messages,
            crate::output::short_time(part.first_seen),
            crate::output::short_time(part.last_seen),
            all_numbers.join(", "),
            args.reporter.reporter_org.as_deref().unwrap_or("textwatch"),
        );
        let (name, mime) = match args.format {
            ReportFormat::Xarf => (format!("xarf-{}.json", dos.d.summary.id), "application/json"),
            ReportFormat::Stix => (format!("stix-{}.json", dos.d.summary.id), "application/json"),
            ReportFormat::Html => (format!("dossier-{}.html", dos.d.summary.id), "text/html; charset=utf-8"),
            ReportFormat::Md => (format!("dossier-{}.md", dos.d.summary.id), "text/markdown; charset=utf-8"),
        };
        let mail = textwatch_sinks::mail::Mail {
            from,
            to: &to,
            subject: &subject,
            text: &note,
            attachment: (&name, mime, text.as_bytes().to_vec()),
        };
        let id = textwatch_sinks::mail::send(smtp, &mail)?;
        (now_ms(), Some(to), "smtp", Some(id))
    } else {
        let at = match &args.at {
            Some(t) => textwatch_sources::time::parse_ts(t).map_err(|e| anyhow::anyhow!("--at: {e}"))?,
            None => now_ms(),
        };
        (at, args.to.clone(), "marked", args.reference.clone())
    };
    // The numbers the campaign had used by the time it was reported
    // (a report marked sent in the past does not name later ones).
    let numbers: Vec<String> =
        part.senders.iter().filter(|s| s.first_seen <= sent_at).map(|s| s.sender.clone()).collect();
    let mut store = db.open_existing().with_context(|| format!("opening {db}"))?;
    let id = store.record_report(&textwatch_store::reports::NewReport {
        campaign: &dos.d.summary.id,
        provider: &provider,
        sent_at,
        sent_to: sent_to.as_deref(),
        via,
        format,
        numbers: &numbers,
        reference: reference.as_deref(),
    })?;
    eprintln!(
        "report {id}: campaign {} to {provider}{} ({} numbers, {}); `textwatch reports` follows it",
        dos.d.summary.id,
        sent_to.map(|t| format!(" at {t}")).unwrap_or_default(),
        numbers.len(),
        if via == "smtp" { "sent" } else { "marked sent" },
    );
    Ok(())
}

impl ReportFormat {
    fn name(self) -> &'static str {
        match self {
            ReportFormat::Xarf => "xarf",
            ReportFormat::Stix => "stix",
            ReportFormat::Html => "html",
            ReportFormat::Md => "md",
        }
    }
}
