//! `textwatch alerts`: the alerts recorded so far (raised by
//! [`textwatch_sinks::alerts::Watcher`] during scans and ingest).

use std::collections::HashMap;
use std::io::Write;

use anyhow::Result;
use textwatch_store::StoreError;

#[derive(clap::Args, Debug)]
pub struct AlertsArgs {
    /// Only the alerts of this campaign (an id or a unique prefix; alerts
    /// raised under an id later joined into it count too).
    #[arg(long, value_name = "ID")]
    campaign: Option<String>,
}

/// `textwatch alerts`: every recorded alert, one JSON object per line.
pub fn list(db: &textwatch_store::Location, args: AlertsArgs) -> Result<std::process::ExitCode> {
    let store = crate::output::open_at(db)?;
    // Campaigns by the id they go by now (one joined into another, by that
    // one's).
    let wanted = match &args.campaign {
        Some(id) => Some(store.resolve_campaign(id)?.ok_or_else(|| StoreError::NotFound(id.clone()))?),
        None => None,
    };
    let mut live: HashMap<String, Option<String>> = HashMap::new();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for a in store.alerts()? {
        if let Some(want) = &wanted {
            let id = serde_json::from_str::<serde_json::Value>(&a)
                .ok()
                .and_then(|v| v.get("campaign").and_then(|c| c.as_str()).map(str::to_owned))
                .unwrap_or_default();
            let now = match live.get(&id) {
                Some(s) => s.clone(),
                None => {
                    let s = store.resolve_campaign(&id)?;
                    live.insert(id, s.clone());
                    s
                }
            };
            if now.as_ref() != Some(want) {
                continue;
            }
        }
        writeln!(out, "{a}")?;
    }
    out.flush()?;
    Ok(std::process::ExitCode::SUCCESS)
}
