//! `textwatch smpp`: the options of the SMPP gateway, turned into a
//! [`textwatch_server::ServerConfig`] with an SMPP part.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use textwatch_server::smpp::SmppConfig;
use textwatch_server::ServerConfig;
use textwatch_smpp::text::DefaultAlphabet;

use crate::context::ContextArgs;
use crate::report::ReporterArgs;
use crate::serve::RepliesArgs;

#[derive(clap::Args, Debug)]
pub struct SmppArgs {
    /// Where ESMEs bind (as to an SMSC). Loopback by default.
    #[arg(long, env = "TEXTWATCH_SMPP_LISTEN", default_value = "127.0.0.1:2775", value_name = "ADDR:PORT")]
    listen: SocketAddr,
    /// The SMSC that texts go on to, HOST:PORT.
    #[arg(long, env = "TEXTWATCH_SMPP_UPSTREAM", value_name = "HOST:PORT")]
    upstream: String,
    /// The system_id textwatch binds upstream with.
    #[arg(long, env = "TEXTWATCH_SMPP_UPSTREAM_SYSTEM_ID", value_name = "ID")]
    upstream_system_id: String,
    /// The password textwatch binds upstream with (prefer the environment
    /// variable: command lines are visible to other users).
    #[arg(long, env = "TEXTWATCH_SMPP_UPSTREAM_PASSWORD", value_name = "PASSWORD", hide_env_values = true)]
    upstream_password: String,
    /// What data_coding 0 means on these links: gsm (GSM 03.38, the usual
    /// default) or latin1.
    #[arg(long, default_value = "gsm", value_name = "ALPHABET")]
    default_alphabet: DefaultAlphabet,
    /// Seconds to hold the parts of a concatenated text for the rest; then
    /// what arrived is judged.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    concat_timeout: u64,
    /// Seconds of upstream silence before an enquire_link keeps the link
    /// up.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    enquire_link: u64,
    /// Also run the HTTP API, metrics and dashboard here (as `serve`).
    #[arg(long, env = "TEXTWATCH_LISTEN", value_name = "ADDR:PORT")]
    http: Option<SocketAddr>,
    /// Add rule packs from this directory.
    #[arg(long, value_name = "DIR", env = "TEXTWATCH_RULES", value_delimiter = ':')]
    rules: Vec<PathBuf>,
    #[command(flatten)]
    replies: RepliesArgs,
    #[command(flatten)]
    reporter: ReporterArgs,
    #[command(flatten)]
    ctx: ContextArgs,
    #[command(flatten)]
    dedup: crate::dedup::DedupArgs,
}

pub fn run(db: &textwatch_store::Location, args: SmppArgs) -> Result<ExitCode> {
    if args.concat_timeout == 0 || args.enquire_link == 0 {
        anyhow::bail!("--concat-timeout and --enquire-link must be at least 1 second");
    }
    let config = ServerConfig {
        listen: args.http,
        smpp: Some(SmppConfig {
            listen: args.listen,
            upstream: args.upstream,
            upstream_system_id: args.upstream_system_id,
            upstream_password: args.upstream_password,
            default_alphabet: args.default_alphabet,
            concat_timeout: Duration::from_secs(args.concat_timeout),
            enquire_link: Duration::from_secs(args.enquire_link),
        }),
        max_body: 8 * 1024 * 1024,
        rate_limit: 2000,
        queue: 64,
        twilio_auth_token: None,
        public_url: None,
        upstream: None,
        alerts: Vec::new(),
        rules: args.rules,
        reporter: args.reporter.into(),
        files: args.ctx.files(),
        replies: args.replies.into(),
        nats: None,
        reload_every: std::time::Duration::from_secs(30),
        dedup_keys: args.dedup.keys(),
    };
    textwatch_server::run(db, config).map_err(|e| anyhow::anyhow!("serving {db}: {e}"))?;
    Ok(ExitCode::SUCCESS)
}
