//! `textwatch alerts`: the alerts recorded so far (raised by
//! [`textwatch_sinks::alerts::Watcher`] during scans and ingest).

use std::collections::HashMap;
use std::io::Write;

use anyhow::Result;
use textwatch_store::{Store, StoreError};

#[derive(clap::Args, Debug)]
pub struct AlertsArgs {
    /// Only the alerts of this campaign (an id or a unique prefix; alerts
    /// raised under an id later joined into it count too).
    #[arg(long, value_name = "ID")]
    campaign: Option<String>,
}

/// `textwatch alerts`: every recorded alert, one JSON object per line.
pub fn list(db: &std::path::Path, args: AlertsArgs) -> Result<std::process::ExitCode> {
    let store = crate::output::open(db)?;
    let wanted = match &args.campaign {
        Some(id) => Some(store.resolve_seq(id)?.ok_or_else(|| StoreError::NotFound(id.clone()))?.0),
        None => None,
    };
    let mut seqs: HashMap<String, Option<i64>> = HashMap::new();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for a in store.alerts()? {
        if let Some(want) = wanted {
            let id = serde_json::from_str::<serde_json::Value>(&a)
                .ok()
                .and_then(|v| v.get("campaign").and_then(|c| c.as_str()).map(str::to_owned))
                .unwrap_or_default();
            let seq = match seqs.get(&id) {
                Some(s) => *s,
                None => {
                    let s = store.resolve_seq(&id)?.map(|r| r.0);
                    seqs.insert(id, s);
                    s
                }
            };
            if seq != Some(want) {
                continue;
            }
        }
        writeln!(out, "{a}")?;
    }
    out.flush()?;
    Ok(std::process::ExitCode::SUCCESS)
}
