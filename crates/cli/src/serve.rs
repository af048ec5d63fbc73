//! `textwatch serve`: the options, turned into a
//! [`textwatch_server::ServerConfig`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use textwatch_server::ServerConfig;

use crate::context::ContextArgs;
use crate::report::ReporterArgs;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on. Loopback by default: expose it on purpose.
    #[arg(long, env = "TEXTWATCH_LISTEN", default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
    listen: SocketAddr,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = 8 * 1024 * 1024, value_name = "BYTES")]
    max_body: usize,
    /// Requests per second allowed per token (a burst of twice this).
    #[arg(long, default_value_t = 2000, value_name = "N")]
    rate_limit: u32,
    /// Ingest batches that may wait for the worker; beyond it, 429.
    #[arg(long, default_value_t = 64, value_name = "N")]
    queue: usize,
    /// Twilio auth token: verifies X-Twilio-Signature on the inbound
    /// webhook (requests without a valid signature get 403).
    #[arg(long, env = "TEXTWATCH_TWILIO_AUTH_TOKEN", value_name = "TOKEN")]
    twilio_auth_token: Option<String>,
    /// The public base URL Twilio calls (for signature checks behind a
    /// proxy), e.g. https://textwatch.example.org.
    #[arg(long, env = "TEXTWATCH_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// Forward messages the send endpoint lets pass to this Twilio-compatible
    /// API base (e.g. https://api.twilio.com); without it they are accepted
    /// as sent.
    #[arg(long, env = "TEXTWATCH_UPSTREAM", value_name = "URL")]
    upstream: Option<String>,
    /// Also send alerts here (as for `scan --alert`).
    #[arg(long = "alert", value_name = "SINK")]
    alerts: Vec<textwatch_sinks::alerts::Sink>,
    /// Add rule packs from this directory.
    #[arg(long, value_name = "DIR", env = "TEXTWATCH_RULES", value_delimiter = ':')]
    rules: Vec<PathBuf>,
    #[command(flatten)]
    replies: RepliesArgs,

    /// Put ingested messages on the cluster's input stream at this NATS
    /// server (JetStream) instead of assigning them here: a 2xx means
    /// JetStream stored them, and `textwatch worker`s assign them into the
    /// same database. 503 with Retry-After while NATS does not answer.
    #[arg(long, env = "TEXTWATCH_NATS", value_name = "URL")]
    nats: Option<String>,
    /// With --nats: how often the workers' campaigns are read back, for
    /// `/v1/check` and for the live events (`/v1/events`, the dashboard) of
    /// the campaigns and alerts they made.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, requires = "nats")]
    reload_every: u64,
    #[command(flatten)]
    reporter: ReporterArgs,
    #[command(flatten)]
    ctx: ContextArgs,
    #[command(flatten)]
    dedup: crate::dedup::DedupArgs,
}

/// What recipients get back when they text HELP, STOP or START.
#[derive(clap::Args, Debug, Clone)]
pub struct RepliesArgs {
    /// Reply to HELP, INFO and AYUDA (who is texting, how to stop), for
    /// numbers without their own `--help-reply-for`.
    #[arg(long, env = "TEXTWATCH_HELP_REPLY", value_name = "TEXT")]
    help_reply: Option<String>,
    /// A number's own HELP reply, as NUMBER=TEXT (repeat for each number).
    #[arg(long, value_name = "NUMBER=TEXT", value_parser = number_reply)]
    help_reply_for: Vec<(String, String)>,
    /// Confirmation sent once for STOP and the like (none by default: the
    /// carrier often sends its own).
    #[arg(long, env = "TEXTWATCH_STOP_REPLY", value_name = "TEXT")]
    stop_reply: Option<String>,
    /// Confirmation sent once for START, UNSTOP and YES.
    #[arg(long, env = "TEXTWATCH_START_REPLY", value_name = "TEXT")]
    start_reply: Option<String>,
}

fn number_reply(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((n, t)) if !n.trim().is_empty() && !t.trim().is_empty() => {
            Ok((textwatch_engine::sender::normalize_address(n), t.trim().to_string()))
        }
        _ => Err(format!("expected NUMBER=TEXT, e.g. +12155550100=\"Acme Alerts: help at acme.example. Reply STOP to end.\"; got {s:?}")),
    }
}

impl From<RepliesArgs> for textwatch_server::optout::Replies {
    fn from(a: RepliesArgs) -> Self {
        textwatch_server::optout::Replies {
            help: a.help_reply,
            help_for: a.help_reply_for.into_iter().collect(),
            stop: a.stop_reply,
            start: a.start_reply,
        }
    }
}

pub fn run(db: &textwatch_store::Location, args: ServeArgs) -> Result<ExitCode> {
    let config = ServerConfig {
        listen: Some(args.listen),
        smpp: None,
        max_body: args.max_body,
        rate_limit: args.rate_limit,
        queue: args.queue,
        twilio_auth_token: args.twilio_auth_token,
        public_url: args.public_url,
        upstream: args.upstream,
        alerts: args.alerts,
        rules: args.rules,
        reporter: args.reporter.into(),
        files: args.ctx.files(),
        replies: args.replies.into(),
        nats: args.nats,
        reload_every: std::time::Duration::from_secs(args.reload_every),
        dedup_keys: args.dedup.keys(),
    };
    textwatch_server::run(db, config).map_err(|e| anyhow::anyhow!("serving {db}: {e}"))?;
    Ok(ExitCode::SUCCESS)
}
