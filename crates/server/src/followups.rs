//! `GET /v1/takedowns`: the takedown reports recorded and what followed
//! each, with every provider's record; the same figures for `/metrics`.
//! Computed from the stored messages, at most every 30 seconds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::{Extension, Json};
use textwatch_sinks::followup::{by_provider, follow_ups};

use super::state::{ApiError, Caller, Computed, Shared};
use crate::error::ServerError;

/// How long a computed set of follow-ups is reused.
const TTL: Duration = Duration::from_secs(30);

/// The current follow-ups (cached for [`TTL`]).
pub(super) fn current(st: &Shared) -> Result<Computed, ApiError> {
    if let Some((at, c)) = st.followups.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        if at.elapsed() < TTL {
            return Ok(c.clone());
        }
    }
    let fs = st.read(|s| Ok(follow_ups(s, &Default::default())?))?;
    let providers = by_provider(&fs);
    let c: Computed = Arc::new((fs, providers));
    *st.followups.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), c.clone()));
    Ok(c)
}

/// `GET /v1/takedowns` (`read`).
pub async fn list(
    State(st): State<Shared>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require("read")?;
    let st2 = st.clone();
    let c = tokio::task::spawn_blocking(move || current(&st2))
        .await
        .map_err(|e| ServerError::Internal(e.to_string()))??;
    Ok(Json(serde_json::json!({"reports": c.0, "providers": c.1})))
}

/// The `/metrics` lines: reports by provider and state, median seconds to
/// quiet, share ignored.
pub(super) fn metrics(st: &Shared) -> String {
    use std::fmt::Write as _;
    let Ok(c) = current(st) else { return String::new() };
    let mut o = String::from(
        "# HELP textwatch_reports Takedown reports recorded, by provider and follow-up state.\n# TYPE textwatch_reports gauge\n",
    );
    let label = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', " ");
    for p in &c.1 {
        for (state, n) in [("open", p.open), ("quiet", p.quiet), ("rotated", p.rotated), ("ignored", p.ignored)] {
            let _ = writeln!(o, "textwatch_reports{{provider=\"{}\",state=\"{state}\"}} {n}", label(&p.provider));
        }
    }
    o.push_str("# HELP textwatch_report_median_quiet_seconds Median time from a report to a reported number's last text, by provider.\n# TYPE textwatch_report_median_quiet_seconds gauge\n");
    for p in &c.1 {
        if let Some(s) = p.median_quiet_s {
            let _ = writeln!(o, "textwatch_report_median_quiet_seconds{{provider=\"{}\"}} {s}", label(&p.provider));
        }
    }
    o.push_str("# HELP textwatch_reports_ignored_ratio Share of a provider's reports ignored.\n# TYPE textwatch_reports_ignored_ratio gauge\n");
    for p in &c.1 {
        let _ =
            writeln!(o, "textwatch_reports_ignored_ratio{{provider=\"{}\"}} {}", label(&p.provider), p.ignored_share);
    }
    o
}
