//! `textwatch simulate` and `textwatch eval`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use textwatch_sim::{Evasion, Prediction, Truth};
use textwatch_store::sqlite::SqliteStore;
use textwatch_store::{CampaignQuery, Store};

use crate::output::{thousands, Table};

#[derive(clap::Args, Debug)]
pub struct SimulateArgs {
    /// election-2020 (the 2020 incident among ordinary traffic), smishing
    /// (many concurrent scam campaigns, heavy evasion), baseline (ordinary
    /// traffic only, for false-positive rates), rewordings (election day:
    /// waves in several wordings, one script from two organizations, a
    /// scam from parts, lure rotation, a platform short code) or
    /// scam-rotation (operators rotating lures and wordings, look-alike
    /// waves from different operators, platforms).
    #[arg(long, default_value = "election-2020")]
    scenario: String,
    /// Messages to write.
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// Random seed: the same seed writes the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Message stream (scan input format). `-` for standard output.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Ground truth: one line per message, then one per campaign.
    #[arg(long, value_name = "FILE")]
    truth: PathBuf,
    /// Also write the number data attribution reads (inventory.csv,
    /// nanpa-co.txt, nanpa-blocks.csv) into this directory.
    #[arg(long, value_name = "DIR")]
    numbers: Option<PathBuf>,
    /// Mix real texts into background traffic: a directory holding
    /// uci-sms-spam/SMSSpamCollection and/or
    /// mishra-soni-smishing/Dataset_5971.csv (their ham texts are used).
    #[arg(long, value_name = "DIR")]
    background: Option<PathBuf>,
    /// Multiply every evasion rate (0 turns evasion off; 2 doubles it).
    #[arg(long, default_value_t = 1.0)]
    evasion: f64,
    /// Send each campaign's further wordings too (paraphrases: a clause
    /// moved, a synonym, a shorter version, the Spanish said two ways), so
    /// a campaign is several texts from one sender.
    #[arg(long)]
    paraphrase: bool,
    /// No summary on standard error.
    #[arg(short, long)]
    quiet: bool,
}

pub fn simulate(args: SimulateArgs) -> Result<ExitCode> {
    let Some(scenario) = textwatch_sim::by_name(&args.scenario) else {
        bail!("unknown scenario {:?}; choose one of: {}", args.scenario, textwatch_sim::NAMES.join(", "));
    };
    if !(0.0..=20.0).contains(&args.evasion) {
        bail!("--evasion must be between 0 and 20");
    }
    let background_texts = match &args.background {
        Some(dir) => load_background(dir)?,
        None => Vec::new(),
    };
    let opts = textwatch_sim::Options {
        scenario,
        messages: args.messages,
        seed: args.seed,
        evasion: Evasion::default().scaled(args.evasion),
        background_texts,
        paraphrase: args.paraphrase,
    };
    let started = Instant::now();
    let mut stream: Box<dyn Write> = if args.out.as_os_str() == "-" {
        Box::new(BufWriter::with_capacity(1 << 20, std::io::stdout().lock()))
    } else {
        Box::new(BufWriter::with_capacity(
            1 << 20,
            File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?,
        ))
    };
    let mut truth = BufWriter::with_capacity(
        1 << 20,
        File::create(&args.truth).with_context(|| format!("creating {}", args.truth.display()))?,
    );
    let summary = textwatch_sim::generate(&opts, &mut stream, &mut truth, args.numbers.as_deref())
        .context("writing the simulation")?;
    drop(stream);
    if !args.quiet {
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "wrote {} messages ({} background) in {:.1}s ({}/s), scenario {}, seed {}",
            thousands(summary.messages),
            thousands(summary.background),
            secs,
            thousands((summary.messages as f64 / secs.max(1e-9)) as u64),
            opts.scenario.name,
            opts.seed
        );
        let mut t = Table::new(&[("CAMPAIGN", false), ("MESSAGES", true)]);
        for (label, n) in &summary.campaigns {
            t.row(vec![label.clone(), thousands(*n)]);
        }
        eprint!("{}", t.render());
    }
    Ok(ExitCode::SUCCESS)
}

/// Ham texts from the shared data sets (never copied into the project).
fn load_background(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let uci = dir.join("uci-sms-spam/SMSSpamCollection");
    if uci.exists() {
        let f = BufReader::new(File::open(&uci).with_context(|| format!("reading {}", uci.display()))?);
        for line in f.split(b'\n') {
            let line = line?;
            let line = String::from_utf8_lossy(&line);
            if let Some(text) = line.strip_prefix("ham\t") {
                out.push(text.trim_end().to_string());
            }
        }
    }
    let mishra = dir.join("mishra-soni-smishing/Dataset_5971.csv");
    if mishra.exists() {
        let mut r = csv::ReaderBuilder::new().flexible(true).from_path(&mishra)?;
        for rec in r.byte_records() {
            let rec = rec?;
            if rec.get(0).is_some_and(|l| l.eq_ignore_ascii_case(b"ham")) {
                if let Some(t) = rec.get(1) {
                    out.push(String::from_utf8_lossy(t).into_owned());
                }
            }
        }
    }
    if out.is_empty() {
        bail!(
            "--background {}: found neither uci-sms-spam/SMSSpamCollection nor mishra-soni-smishing/Dataset_5971.csv",
            dir.display()
        );
    }
    Ok(out)
}

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Ground truth written by `textwatch simulate --truth`.
    #[arg(long, value_name = "FILE")]
    truth: PathBuf,
    /// Score another tool's assignments instead of the database: JSONL with
    /// `id` and `campaign` (null for none) per message.
    #[arg(long, value_name = "FILE")]
    predictions: Option<PathBuf>,
    /// table for people, json for tools.
    #[arg(long, value_enum, default_value_t = crate::output::Format::Table)]
    format: crate::output::Format,
}

pub fn eval(db: &Path, args: EvalArgs) -> Result<ExitCode> {
    let f = File::open(&args.truth).with_context(|| format!("opening truth file {}", args.truth.display()))?;
    let truth = Truth::read(BufReader::with_capacity(1 << 20, f))?;
    let report = match &args.predictions {
        Some(p) => score_predictions(&truth, p)?,
        None => score_db(&truth, db)?,
    };
    let follow = match &args.predictions {
        Some(_) => Vec::new(),
        None => follow_up_scores(&args.truth, db)?,
    };
    let mut out = std::io::stdout().lock();
    if args.format != crate::output::Format::Table {
        let mut v = serde_json::to_value(&report)?;
        if !follow.is_empty() {
            v["follow_ups"] = serde_json::to_value(&follow)?;
        }
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "messages scored       {}", thousands(report.messages))?;
    if report.missing_messages > 0 || report.unknown_messages > 0 {
        writeln!(
            out,
            "  not in predictions  {}   not in truth  {}",
            thousands(report.missing_messages),
            thousands(report.unknown_messages)
        )?;
    }
    let b = report.bcubed;
    writeln!(out, "B-cubed, all messages       precision {:.4}  recall {:.4}  F1 {:.4}", b.precision, b.recall, b.f1)?;
    let c = report.bcubed_campaign_messages;
    writeln!(out, "B-cubed, campaign messages  precision {:.4}  recall {:.4}  F1 {:.4}", c.precision, c.recall, c.f1)?;
    writeln!(
        out,
        "true campaigns {}   found campaigns {}   split {}   merged {}",
        report.true_campaigns, report.found_campaigns, report.split, report.merged
    )?;
    if let Some(f) = &report.findings {
        writeln!(
            out,
            "findings                    precision {:.4}  recall {:.4}  ({} right, {} extra, {} missed)",
            f.precision, f.recall, f.true_positives, f.false_positives, f.false_negatives
        )?;
    }
    if let Some(a) = report.category_accuracy {
        writeln!(out, "category accuracy           {:.4} (of true campaigns)", a)?;
    }
    match report.attribution_accuracy {
        Some(a) => writeln!(out, "attribution accuracy        {:.4} (of true campaigns' senders)", a)?,
        None => writeln!(out, "attribution accuracy        - (no number data imported: textwatch numbers import)")?,
    }
    writeln!(out)?;
    let mut t = Table::new(&[
        ("TRUE CAMPAIGN", false),
        ("MESSAGES", true),
        ("FOUND AS", false),
        ("COVERAGE", true),
        ("PURITY", true),
        ("SENDERS FOUND", true),
        ("MSGS TO DETECT", true),
        ("CATEGORY", false),
        ("ATTRIBUTED", true),
        ("FINDINGS MISSED / EXTRA", false),
    ]);
    for s in &report.campaigns {
        t.row(vec![
            s.label.clone(),
            thousands(s.seen),
            s.found_as.clone().unwrap_or_else(|| "-".into()) + if s.split { " (split)" } else { "" },
            format!("{:.1}%", s.coverage * 100.0),
            format!("{:.1}%", s.purity * 100.0),
            format!("{:.1}%", s.senders_found * 100.0),
            s.messages_to_detect.map_or("-".into(), |m| m.to_string()),
            s.category.clone().unwrap_or_else(|| "-".into()),
            s.attribution.map_or("-".into(), |a| format!("{:.1}%", a * 100.0)),
            if s.findings_missing.is_empty() && s.findings_extra.is_empty() {
                "-".into()
            } else {
                format!("-{} +{}", s.findings_missing.join(","), s.findings_extra.join(","))
            },
        ]);
    }
    out.write_all(t.render().as_bytes())?;
    if !follow.is_empty() {
        let right = follow.iter().filter(|f| f.found.as_deref() == Some(f.expected.as_str())).count();
        writeln!(
            out,
            "\nfollow-up states      {right} of {} reports match what the provider and operator did",
            follow.len()
        )?;
        let mut t = Table::new(&[
            ("TRUE CAMPAIGN", false),
            ("PROVIDER", false),
            ("REPORTED", false),
            ("DID", false),
            ("REPORT", true),
            ("STATE FOUND", false),
        ]);
        for f in &follow {
            t.row(vec![
                f.label.clone(),
                f.provider.clone(),
                f.reported_at.clone(),
                f.expected.clone(),
                f.report.map_or("-".into(), |r| r.to_string()),
                f.found.clone().unwrap_or_else(|| "not reported (textwatch report ID --mark-sent --at TIME)".into()),
            ]);
        }
        out.write_all(t.render().as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A simulated takedown and the state textwatch's follow-up finds.
#[derive(serde::Serialize)]
struct FollowUpScore {
    label: String,
    provider: String,
    reported_at: String,
    /// What the provider and the operator did: ignored, quiet or rotated.
    expected: String,
    /// The report textwatch recorded for it (same provider, a shared
    /// number), if any, and its state.
    report: Option<i64>,
    found: Option<String>,
}

/// The truth's takedowns against the reports recorded in the database.
fn follow_up_scores(truth: &Path, db: &Path) -> Result<Vec<FollowUpScore>> {
    let f = BufReader::new(File::open(truth).with_context(|| format!("opening {}", truth.display()))?);
    let mut facts = Vec::new();
    for line in f.lines() {
        let line = line?;
        if !line.contains("\"report\"") {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line)?;
        if v["type"] == "campaign" && v["report"].is_object() {
            facts.push(v);
        }
    }
    if facts.is_empty() {
        return Ok(Vec::new());
    }
    let store = SqliteStore::open_existing(db).with_context(|| format!("opening database {}", db.display()))?;
    let fs = textwatch_sinks::followup::follow_ups(&store, &textwatch_sinks::followup::Settings::default())?;
    Ok(facts
        .iter()
        .map(|v| {
            let r = &v["report"];
            let numbers: Vec<&str> = r["numbers"].as_array().into_iter().flatten().filter_map(|n| n.as_str()).collect();
            let provider = r["provider"].as_str().unwrap_or_default().to_string();
            let found = fs.iter().find(|f| {
                f.report.provider == provider && f.report.numbers.iter().any(|n| numbers.contains(&n.as_str()))
            });
            FollowUpScore {
                label: v["label"].as_str().unwrap_or_default().to_string(),
                provider,
                reported_at: r["at"].as_str().unwrap_or_default().to_string(),
                expected: r["expect"].as_str().unwrap_or_default().to_string(),
                report: found.map(|f| f.report.id),
                found: found.map(|f| f.state.to_string()),
            }
        })
        .collect())
}

fn score_db(truth: &Truth, db: &Path) -> Result<textwatch_sim::Report> {
    let store = SqliteStore::open_existing(db).with_context(|| format!("opening database {}", db.display()))?;
    let list = store.campaigns(&CampaignQuery { max_senders: Some(0), ..Default::default() })?;
    let formed: HashMap<String, i64> = list.iter().map(|c| (c.id.clone(), c.formed_at)).collect();
    let found: HashMap<String, Vec<String>> =
        list.iter().map(|c| (c.id.clone(), c.findings.iter().map(|f| f.rule.clone()).collect())).collect();
    let mut rows: Vec<(String, Option<String>, i64, String)> = Vec::with_capacity(truth.len());
    store.messages(None, &mut |m| {
        rows.push((m.id, m.campaign, m.ts, m.from));
        true
    })?;
    let preds = rows.iter().map(|(id, c, ts, from)| Prediction { id, campaign: c.as_deref(), ts_ms: *ts, from });
    let mut report = truth.score(preds, &formed);
    truth.score_findings(&mut report, &found);
    let categories: HashMap<String, Option<String>> = list.iter().map(|c| (c.id.clone(), c.category.clone())).collect();
    truth.score_categories(&mut report, &categories);
    let dir = textwatch_sinks::enrich::load_directory(&store, textwatch_sinks::enrich::load_registry(None)?)?;
    if !dir.is_empty() {
        let of = |s: &str| dir.provider_of(s);
        truth.score_attribution(&mut report, &of);
    }
    Ok(report)
}

fn score_predictions(truth: &Truth, path: &Path) -> Result<textwatch_sim::Report> {
    let f = BufReader::new(File::open(path).with_context(|| format!("opening {}", path.display()))?);
    let mut rows: Vec<(String, Option<String>)> = Vec::new();
    for (i, line) in f.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(&line).with_context(|| format!("{} line {}", path.display(), i + 1))?;
        let id = v["id"].as_str().with_context(|| format!("{} line {}: no `id`", path.display(), i + 1))?;
        let c = match &v["campaign"] {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        };
        rows.push((id.to_string(), c));
    }
    let preds = rows.iter().map(|(id, c)| Prediction { id, campaign: c.as_deref(), ts_ms: 0, from: "" });
    Ok(truth.score(preds, &HashMap::new()))
}
