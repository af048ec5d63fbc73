//! The `textwatch` command.

mod act;
mod alerts;
mod appeals;
mod cluster;
mod commands;
mod config;
mod context;
mod dedup;
mod edit;
mod keys;
mod model;
mod numbers;
mod optouts;
mod output;
mod report;
mod reports;
mod retention;
mod scan;
mod serve;
mod sim;
mod smpp;
mod spam_reports;
mod tokens;

use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc instead of the system allocator: records are allocated on the
/// analysis threads and freed on the writer's, which glibc's malloc pays
/// for in locks and consolidation (docs/benchmarks.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

/// textwatch finds bulk text-message campaigns: copies of one text sent from
/// many numbers, however the sender reworded, personalized or disguised them.
///
/// Start with `textwatch scan messages.jsonl`, then look at what it found
/// with `textwatch campaigns` and `textwatch campaign ID`.
/// Everything is kept in one database (`--db`, default ./textwatch.db): a
/// SQLite file for campaigns and, next to it, `textwatch.db.segments/` for
/// the messages.
#[derive(Parser, Debug)]
#[command(name = "textwatch", version, propagate_version = true, max_term_width = 100)]
struct Cli {
    /// Database file (its messages are in PATH.segments/ next to it).
    /// Created by `scan` if missing.
    #[arg(long, global = true, env = "TEXTWATCH_DB", default_value = "textwatch.db", value_name = "PATH")]
    db: PathBuf,

    /// A PostgreSQL database instead of the SQLite file, for workers on
    /// several machines: a connection string (`postgresql://user@host/db`,
    /// or `host=... dbname=...`; `options='-c search_path=NAME'` picks a
    /// schema; `sslmode=verify-full sslrootcert=CA.pem` checks the server,
    /// as in libpq). Tables are made on first use. Every command works on
    /// it except `scan` (publish to the workers instead), `import-reports`,
    /// `migrate` and `eval`, which need the SQLite file
    /// (docs/deployment.md#postgresql-the-shared-store).
    #[arg(long, global = true, env = "TEXTWATCH_POSTGRES", value_name = "URL")]
    postgres: Option<String>,

    /// Configuration file to read instead of looking for textwatch.toml in
    /// ~/.config/textwatch/ and in the database's folder (see `textwatch
    /// config`).
    #[arg(long, global = true, env = "TEXTWATCH_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// More log output on standard error (-v info, -vv debug). Message bodies
    /// and recipient numbers are never logged below debug.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Read message files and group their messages into campaigns.
    ///
    /// Inputs are JSONL (one message object per line), CSV with a header
    /// (columns ts, from, to, body, id, source), or Twilio's message-log CSV
    /// export; gzip is detected, and `-` reads standard input. Rescanning a
    /// file never counts a message twice. Bad records are reported with file,
    /// line and reason, and the scan goes on.
    ///
    /// Example: textwatch scan gateway-2020-11-04.jsonl.gz reports.csv
    Scan(scan::ScanArgs),

    /// List campaigns, largest first.
    ///
    /// Example: textwatch campaigns --format json --limit 20
    Campaigns(commands::CampaignsArgs),

    /// Show one campaign: template, variants and the links that joined
    /// them, senders, timeline, samples; or correct it by hand (`split`,
    /// `merge`).
    ///
    /// ID is the campaign id from `textwatch campaigns`, or a unique prefix
    /// of it (6 characters usually suffice). An id of a campaign that was
    /// joined into another shows that one.
    Campaign(commands::CampaignArgs),

    /// Export stored messages, optionally one campaign's.
    ///
    /// Example: textwatch messages --campaign 3f9a1c --format jsonl > campaign.jsonl
    Messages(commands::MessagesArgs),

    /// Analyze one message: its template, features, and the campaign it
    /// would join. Changes nothing in the database.
    ///
    /// Example: textwatch check --from +12155550123 --body "Polls moved to Wednesday"
    Check(commands::CheckArgs),

    /// Import and list number data for attribution (NANPA exchange and
    /// block files, inventories of leased or ported numbers), and derive
    /// the area-code table.
    ///
    /// Example: textwatch numbers import --nanpa-co allutlzd.txt --inventory gateway-numbers.csv
    Numbers(numbers::NumbersArgs),

    /// Show one sender: class (long code, toll-free, short code,
    /// international, alphanumeric, invalid), the provider that serves it
    /// with the source and date of that answer, and its campaigns.
    ///
    /// Example: textwatch number +12155550123
    Number(numbers::NumberArgs),

    /// Show, check or explain the policy that turns findings, category,
    /// risk and size into actions (allow, flag, block).
    ///
    /// Example: textwatch policy explain aff8e3
    Policy(act::PolicyArgs),

    /// Senders and campaign fingerprints the policy blocks, for filters and
    /// apps: CSV `type,value,campaign,reason` or JSON, in a stable order.
    ///
    /// Example: textwatch blocklist --format csv > blocklist.csv
    Blocklist(act::BlocklistArgs),

    /// Every campaign alert raised so far, one JSON object per line
    /// (oldest first): level, campaign, decision, providers, time-to-detect.
    Alerts(alerts::AlertsArgs),

    /// Write a campaign report: XARF v4 for a provider's abuse desk (one per
    /// provider), a STIX 2.1 bundle, or a self-contained HTML or Markdown
    /// dossier.
    ///
    /// Example: textwatch report aff8e3 --format xarf --provider "Textsmart Leasing" --reporter-org "Example Watch" --reporter-contact abuse@example.org --reporter-domain example.org
    Report(report::ReportArgs),

    /// Take in spam reports from files: an app's reports, or a 7726 short
    /// code's inbound texts (the spam text, then the number it came from,
    /// paired per reporter, across files and runs, for up to a day). Each
    /// report is stored as a message with source `report`; the same person
    /// reporting the same text twice counts once; distinct reporters count
    /// toward the campaign's risk.
    ///
    /// Example: textwatch import-reports 7726-inbound.jsonl
    ImportReports(spam_reports::ImportReportsArgs),

    /// Appeals of blocks: a sender or brand opens one (here or with
    /// `POST /v1/appeals`), a reviewer upholds or overturns it. An overturn
    /// adds an allow rule for the number or campaign (a new policy
    /// version) and drops it from the block list.
    ///
    /// Example: textwatch appeal decide 4 --overturn --reason "opt-in records checked"
    Appeal(appeals::AppealArgs),

    /// The append-only audit log: every appeal opened and decided, by
    /// whom, when and why.
    Audit(appeals::AuditArgs),

    /// Follow the takedown reports sent (`report --send` or
    /// `--mark-sent`): for each, whether its numbers went quiet and how
    /// fast, whether the operator rotated to new numbers, and the
    /// provider's answer; then each provider's record.
    ///
    /// States: open, quiet (every reported number silent for --quiet-after),
    /// rotated (quiet, but new numbers send for the campaign), ignored (a
    /// reported number still sends --ignore-after the report).
    ///
    /// Example: textwatch reports show 3
    Reports(reports::ReportsArgs),

    /// Run the HTTP API, the Twilio-compatible endpoints and the live
    /// dashboard on this database.
    ///
    /// Every endpoint but /healthz, /readyz, /openapi.json and the dashboard
    /// page needs a token (`textwatch token create`). See docs/api.md.
    ///
    /// Example: textwatch serve --listen 127.0.0.1:8080
    Serve(serve::ServeArgs),

    /// Run the SMPP 3.4 filtering gateway: ESMEs bind here as to an SMSC,
    /// every submit_sm gets a verdict inline, allowed ones go on to the
    /// upstream SMSC, refused ones are answered with a status saying why.
    /// Inbound STOP, START and HELP texts keep the opt-out state.
    ///
    /// Binds use credentials from `textwatch token create --smpp SYSTEM_ID`.
    /// See docs/api.md#smpp.
    ///
    /// Example: TEXTWATCH_SMPP_UPSTREAM_PASSWORD=secret textwatch smpp --upstream smsc.example.net:2775 --upstream-system-id acme
    Smpp(smpp::SmppArgs),

    /// Put message files on the cluster's input stream (NATS JetStream,
    /// stream TEXTWATCH_IN) for `textwatch worker`s to analyze and assign.
    /// Files are read and checked as `scan` reads them; a message counts as
    /// published once JetStream acknowledged storing it.
    ///
    /// Example: textwatch publish --nats nats://127.0.0.1:4222 gateway-2020-11-04.jsonl.gz
    Publish(cluster::PublishArgs),

    /// Run a worker of the cluster: analyze messages from the input stream
    /// and, while this worker holds the store's writer lock, assign them to
    /// campaigns (one worker at a time assigns; another takes over when it
    /// stops). Run as many as you have cores; see docs/deployment.md.
    ///
    /// Example: textwatch --db /srv/textwatch.db worker --nats nats://127.0.0.1:4222
    Worker(cluster::WorkerArgs),

    /// How far the cluster has got: messages published, waiting for
    /// workers, waiting for the assigner, and assigned into the store.
    ///
    /// Example: textwatch status --nats nats://127.0.0.1:4222
    Status(cluster::StatusArgs),

    /// List opt-out changes: recipients (as keyed hashes) who texted STOP
    /// or START to a number, the numbers and campaigns it covered, when,
    /// and through which path.
    ///
    /// Example: textwatch optouts --format jsonl
    Optouts(optouts::OptOutsArgs),

    /// Drop old messages: whole segments of the message log whose newest
    /// message is older than a date. Campaigns keep their counts, senders,
    /// timelines and 20 evidence samples; templates in no campaign that only
    /// those messages used go too.
    ///
    /// Example: textwatch prune --before 2020-12-01
    Prune(retention::PruneArgs),

    /// Move the messages of a database written by textwatch before the
    /// message log (one SQLite row per message) into segments. Resumable;
    /// other commands refuse such a database until it is migrated.
    ///
    /// Example: textwatch --db textwatch.db migrate
    Migrate(retention::MigrateArgs),

    /// Show the configuration files read (textwatch.toml in
    /// ~/.config/textwatch/ and in the database's folder) and the settings
    /// they give: database, rules, policy, providers, reporter identity,
    /// listen address. Flags and environment variables win over them.
    Config(config::ConfigArgs),

    /// Create, list and revoke API tokens for `serve`.
    ///
    /// Example: textwatch token create --scope ingest,check,read --name gateway-1
    Token(tokens::TokenArgs),

    /// The recipient key: show its fingerprint, or rotate it (the old key
    /// is still matched for a grace period).
    ///
    /// Example: textwatch keys rotate --grace-days 30
    Keys(keys::KeysArgs),

    /// Write realistic labelled traffic: a message stream and its ground truth.
    ///
    /// Example: textwatch simulate --scenario election-2020 --messages 1000000 --seed 7 --out stream.jsonl --truth truth.jsonl
    Simulate(sim::SimulateArgs),

    /// Score the campaigns in the database (or another tool's) against a
    /// simulation's ground truth: B-cubed precision/recall/F1, split and
    /// merged campaigns, senders found, messages-to-detect.
    ///
    /// Example: textwatch scan stream.jsonl && textwatch eval --truth truth.jsonl
    Eval(sim::EvalArgs),

    /// Train the category models (political, civic, charity, news,
    /// marketing, transactional, personal, scam, spam, and their
    /// subcategories) from the labelled data sets and the project's own
    /// examples.
    ///
    /// Example: textwatch train --data ../shared/data
    Train(model::TrainArgs),

    /// Cross-validate the classifier on each labelled data set (stratified,
    /// exact duplicates removed, never training on one set and scoring on
    /// the other).
    ///
    /// Example: textwatch eval-model --data ../shared/data
    EvalModel(model::EvalModelArgs),
}

impl Command {
    /// The subcommand as typed (`import-reports`).
    fn name(&self) -> String {
        let debug = format!("{self:?}");
        let variant = debug.split(['(', ' ', '{']).next().unwrap_or("");
        let mut out = String::new();
        for (i, ch) in variant.chars().enumerate() {
            if ch.is_uppercase() && i > 0 {
                out.push('-');
            }
            out.extend(ch.to_lowercase());
        }
        out
    }
}

fn main() -> ExitCode {
    // The configuration files fill in what flags and the environment leave
    // open, so they are read between a first look at the command line (for
    // --db and --config, which say where to look) and the real parse.
    let loaded = match Cli::try_parse() {
        Ok(first) => match config::apply(first.config.as_deref(), &first.db) {
            Ok(l) => l,
            Err(e) => {
                output::report(output::Level::Error, &format!("{e:#}"));
                return ExitCode::FAILURE;
            }
        },
        Err(_) => config::Loaded::default(),
    };
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("TEXTWATCH_LOG").unwrap_or_else(|_| level.into()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    for (path, _) in loaded.looked.iter().filter(|(_, what)| *what == config::Looked::Read) {
        tracing::info!(file = %path.display(), "configuration read");
    }
    let at = match &cli.postgres {
        Some(url) => textwatch_store::Location::Postgres(url.clone()),
        None => textwatch_store::Location::Sqlite(cli.db.clone()),
    };
    let result = match cli.command {
        Command::Campaigns(args) => commands::campaigns(&at, args).map(|()| ExitCode::SUCCESS),
        Command::Campaign(args) => commands::campaign(&at, args),
        Command::Check(args) => commands::check(&at, args).map(|()| ExitCode::SUCCESS),
        Command::Messages(args) => commands::messages(&at, args),
        Command::Blocklist(args) => act::blocklist(&at, args),
        Command::Report(args) => report::run(&at, args),
        Command::Alerts(args) => alerts::list(&at, args),
        Command::Serve(args) => serve::run(&at, args),
        Command::Token(args) => tokens::run(&at, args),
        Command::Worker(args) => cluster::worker(&at, args),
        Command::Status(args) => cluster::status(&at, args),
        Command::Numbers(args) => numbers::numbers(&at, args),
        Command::Number(args) => numbers::number(&at, args),
        Command::Keys(args) => keys::run(&at, args),
        Command::Appeal(args) => appeals::appeal(&at, args),
        Command::Audit(args) => appeals::audit(&at, args),
        Command::Reports(args) => reports::run(&at, args),
        Command::Optouts(args) => optouts::run(&at, args),
        Command::Policy(args) => act::policy(&at, args),
        Command::Smpp(args) => smpp::run(&at, args),
        Command::Prune(args) => retention::prune(&at, args),
        // No database.
        Command::Publish(args) => cluster::publish(args),
        Command::Simulate(args) => sim::simulate(args),
        Command::Train(args) => model::train(args),
        Command::EvalModel(args) => model::eval_model(args),
        Command::Config(_) => {
            config::show(&loaded, &cli.db, cli.postgres.as_deref());
            Ok(ExitCode::SUCCESS)
        }
        command if cli.postgres.is_some() => Err(anyhow::anyhow!(
            "`textwatch {}` does not run on PostgreSQL yet: drop --postgres (and TEXTWATCH_POSTGRES) to use the \
             SQLite file; on PostgreSQL run serve, token, worker, status, numbers, number, campaigns, campaign (with split and merge), \
             messages, check, blocklist, report, alerts, smpp, appeal, audit, reports, optouts, policy, keys and prune",
            command.name()
        )),
        Command::Scan(args) => scan::run(&cli.db, args),
        Command::ImportReports(args) => spam_reports::run(&cli.db, args),
        Command::Migrate(args) => retention::migrate(&cli.db, args),
        Command::Eval(args) => sim::eval(&cli.db, args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if output::is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            output::report(output::Level::Error, &output::describe(&e));
            ExitCode::FAILURE
        }
    }
}
