//! `textwatch optouts`: every change of opt-out state the gateway kept
//! (who texted STOP or START to which number, when, through what), with
//! recipients as the first digits of their keyed hash.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use textwatch_engine::optout::Scope;
use textwatch_store::Location;

use crate::output::{short_time, Table};

#[derive(clap::Args, Debug)]
pub struct OptOutsArgs {
    /// Output format: table or jsonl.
    #[arg(long, default_value = "table", value_parser = ["table", "jsonl"])]
    format: String,
}

pub fn run(db: &Location, args: OptOutsArgs) -> Result<ExitCode> {
    let store = db.open_existing().with_context(|| format!("opening database {db}"))?;
    let changes = store.optout_changes()?;
    let hash = |r: &[u8; 16]| r[..6].iter().map(|b| format!("{b:02x}")).collect::<String>();
    if args.format == "jsonl" {
        for c in &changes {
            let mut v = serde_json::to_value(c)?;
            v["recipient"] = hash(&c.recipient).into();
            println!("{v}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(&[
        ("TIME", false),
        ("RECIPIENT", false),
        ("STATE", false),
        ("KEYWORD", false),
        ("SCOPE", false),
        ("TEXTED", false),
        ("SOURCE", false),
    ]);
    for c in &changes {
        let scope = match &c.scope {
            Scope::Number(n) => format!("number {n}"),
            Scope::Campaign(id) => format!("campaign {}", &id[..id.len().min(12)]),
        };
        t.row(vec![
            short_time(c.at_ms),
            hash(&c.recipient),
            if c.out { "opted out" } else { "opted in" }.into(),
            c.keyword.clone(),
            scope,
            c.texted.clone(),
            c.source.clone(),
        ]);
    }
    print!("{}", t.render());
    if changes.is_empty() {
        eprintln!(
            "no opt-out changes yet: they come from inbound STOP and START texts (textwatch smpp, textwatch serve)"
        );
    }
    Ok(ExitCode::SUCCESS)
}
