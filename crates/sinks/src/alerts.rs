//! Campaign alerts: when the policy's decision for a campaign reaches the
//! alert level, one JSON alert per campaign per level (`flag`, `block`)
//! goes to every configured sink, with the time-to-detect.
//!
//! The store records each alert (campaign, level) before it is sent, so a
//! re-run or a restart never alerts twice. Sinks run on their own thread:
//! a slow webhook never holds up the scan.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;
use textwatch_store::time::now_ms;

use crossbeam_channel::{bounded, Receiver, Sender};
use serde::Serialize;
use textwatch_engine::policy::{Action, Decision};
use textwatch_engine::ClusterRow;
use textwatch_store::time::format_ts;
use textwatch_store::{ProviderGroup, Store};

use crate::enrich::Enricher;
use crate::{Result, SinkError};

/// Where alerts go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sink {
    Stdout,
    File(std::path::PathBuf),
    Webhook(String),
}

impl std::str::FromStr for Sink {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Sink, String> {
        if s == "stdout" || s == "-" {
            return Ok(Sink::Stdout);
        }
        if let Some(p) = s.strip_prefix("file:") {
            return Ok(Sink::File(p.into()));
        }
        if s.starts_with("http://") || s.starts_with("https://") {
            return Ok(Sink::Webhook(s.to_string()));
        }
        if let Some(u) = s.strip_prefix("webhook:") {
            return Ok(Sink::Webhook(u.to_string()));
        }
        Err(format!("{s:?}: an alert sink is `stdout`, `file:PATH` or a webhook URL (http:// or https://)"))
    }
}

/// How soon a campaign was caught, counted from its first message.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TimeToDetect {
    /// Messages the campaign had when the policy first reached this level.
    pub messages: u64,
    /// Seconds of message time from its first message to that point.
    pub seconds: f64,
}

/// One alert (the JSON sent to sinks).
#[derive(Clone, Debug, Serialize)]
pub struct Alert {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub level: Action,
    pub campaign: String,
    pub template: String,
    pub category: Option<String>,
    pub risk: Option<u8>,
    pub findings: Vec<String>,
    /// Messages and senders when the alert was raised (at or after detection).
    pub messages: u64,
    pub senders: u64,
    pub providers: Vec<ProviderGroup>,
    pub decision: Decision,
    pub first_seen: String,
    /// Message time of the message that brought the campaign to this level.
    pub detected_at: String,
    pub time_to_detect: TimeToDetect,
    /// Wall-clock time the alert was raised.
    pub raised_at: String,
}

/// Decides when to look at a campaign again: every batch while it is
/// small, then each time it has doubled. Campaigns alerted at `block` are
/// done.
pub struct Watcher {
    enricher: Enricher,
    next: HashMap<u32, u64>,
    done: std::collections::HashSet<u32>,
    tx: Option<Sender<String>>,
    sink_thread: Option<std::thread::JoinHandle<()>>,
    pub raised: u64,
}

/// Below this size a changed campaign is evaluated at every batch.
const ALWAYS_BELOW: u64 = 64;

impl Watcher {
    pub fn new(enricher: Enricher, sinks: Vec<Sink>) -> Result<Watcher> {
        for s in &sinks {
            if let Sink::File(p) = s {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|source| SinkError::Io { what: format!("opening alert file {}", p.display()), source })?;
            }
        }
        let (tx, sink_thread) = if sinks.is_empty() {
            (None, None)
        } else {
            let (tx, rx) = bounded::<String>(1024);
            let h = std::thread::Builder::new()
                .name("alerts".into())
                .spawn(move || deliver(rx, sinks))
                .map_err(|source| SinkError::Io { what: "starting the alert thread".into(), source })?;
            (Some(tx), Some(h))
        };
        Ok(Watcher { enricher, next: HashMap::new(), done: Default::default(), tx, sink_thread, raised: 0 })
    }

    /// Looks at the campaigns a batch changed; records and sends new alerts.
    pub fn after_commit(&mut self, store: &mut dyn Store, changed: &[ClusterRow]) -> Result<()> {
        for c in changed {
            if self.done.contains(&c.seq) || c.messages < 2 {
                continue;
            }
            let next = self.next.get(&c.seq).copied().unwrap_or(0);
            if c.messages < next {
                continue;
            }
            self.next.insert(c.seq, if c.messages < ALWAYS_BELOW { c.messages + 1 } else { c.messages * 2 });
            self.evaluate(store, c)?;
        }
        Ok(())
    }

    fn evaluate(&mut self, store: &mut dyn Store, c: &ClusterRow) -> Result<()> {
        let id = c.id();
        let Some(mut d) = store.campaign(&id, 0)? else { return Ok(()) };
        let senders: Vec<(String, u64)> = d.sender_stats.iter().map(|v| (v.sender.clone(), v.messages)).collect();
        self.enricher.enrich(&mut d.summary, &senders);
        let s = d.summary;
        let Some(decision) = s.decision.clone() else { return Ok(()) };
        let min = self.enricher.policy.alerts.min_action;
        if decision.action < min {
            return Ok(());
        }
        if decision.action == Action::Block {
            self.done.insert(c.seq);
        }
        for level in [Action::Flag, Action::Block] {
            if level < min || level > decision.action || store.has_alert(&s.id, level.as_str())? {
                continue;
            }
            // Detected at the first message after which the policy would
            // have decided this level (not at the batch boundary).
            let det = self.enricher.first_decision_at(store, &s.id, level)?.unwrap_or(crate::enrich::Detection {
                messages: s.messages,
                first_ts: s.first_seen,
                at_ts: s.last_seen,
            });
            let alert = Alert {
                kind: "campaign-alert",
                level,
                campaign: s.id.clone(),
                template: s.template.clone(),
                category: s.category.clone(),
                risk: s.risk,
                findings: s.findings.iter().map(|f| f.rule.clone()).collect(),
                messages: s.messages,
                senders: s.sender_count,
                providers: s.providers.clone(),
                decision: decision.clone(),
                first_seen: format_ts(det.first_ts),
                detected_at: format_ts(det.at_ts),
                time_to_detect: TimeToDetect {
                    messages: det.messages,
                    seconds: (det.at_ts - det.first_ts).max(0) as f64 / 1000.0,
                },
                raised_at: format_ts(now_ms()),
            };
            let body = serde_json::to_string(&alert)?;
            if store.record_alert(&s.id, level.as_str(), now_ms(), &body)? {
                self.raised += 1;
                tracing::info!(campaign = %s.id, level = level.as_str(), messages = s.messages, "alert");
                if let Some(tx) = &self.tx {
                    if tx.send(body).is_err() {
                        return Err(SinkError::Invalid("the alert sink thread stopped".into()));
                    }
                }
            }
        }
        Ok(())
    }

    /// Waits for the sinks to deliver what is queued.
    pub fn finish(mut self) {
        drop(self.tx.take());
        if let Some(h) = self.sink_thread.take() {
            let _ = h.join();
        }
    }
}

/// Delivery attempts per webhook alert, and the first back-off.
const WEBHOOK_TRIES: u32 = 5;
const WEBHOOK_BACKOFF: Duration = Duration::from_millis(250);

fn deliver(rx: Receiver<String>, sinks: Vec<Sink>) {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build();
    for body in rx.iter() {
        for s in &sinks {
            match s {
                Sink::Stdout => {
                    let mut o = std::io::stdout().lock();
                    let _ = writeln!(o, "{body}");
                }
                Sink::File(p) => {
                    let r = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(p)
                        .and_then(|mut f| writeln!(f, "{body}"));
                    if let Err(e) = r {
                        eprintln!("textwatch: alert not written to {}: {e}", p.display());
                    }
                }
                Sink::Webhook(url) => post_with_retries(&agent, url, &body),
            }
        }
    }
}

/// POSTs an alert, retrying connection failures, 429 and 5xx with
/// exponential back-off; other 4xx are not retried.
fn post_with_retries(agent: &ureq::Agent, url: &str, body: &str) {
    let mut wait = WEBHOOK_BACKOFF;
    for attempt in 1..=WEBHOOK_TRIES {
        match agent.post(url).set("Content-Type", "application/json").send_string(body) {
            Ok(_) => return,
            Err(ureq::Error::Status(code, _)) if code != 429 && code < 500 => {
                eprintln!("textwatch: webhook {url} refused an alert with HTTP {code}; not retrying");
                return;
            }
            Err(e) => {
                if attempt == WEBHOOK_TRIES {
                    eprintln!("textwatch: webhook {url} failed {WEBHOOK_TRIES} times, alert dropped (it stays in `textwatch alerts`): {e}");
                    return;
                }
                tracing::warn!(%url, attempt, error = %e, "webhook failed, retrying");
                std::thread::sleep(wait);
                wait *= 2;
            }
        }
    }
}

impl textwatch_pipeline::batch::AfterCommit for Watcher {
    fn after_commit(&mut self, store: &mut dyn Store, changed: &[ClusterRow]) -> std::result::Result<u64, String> {
        let before = self.raised;
        Watcher::after_commit(self, store, changed).map_err(|e| format!("raising alerts: {e}"))?;
        Ok(self.raised - before)
    }

    fn resume(&mut self, store: &mut dyn Store, campaigns: &[ClusterRow]) -> std::result::Result<u64, String> {
        let before = self.raised;
        let live: Vec<ClusterRow> = campaigns.iter().filter(|c| c.merged_into.is_none()).cloned().collect();
        Watcher::after_commit(self, store, &live)
            .map_err(|e| format!("raising alerts missed before a restart: {e}"))?;
        Ok(self.raised - before)
    }

    fn finish(self: Box<Self>) {
        Watcher::finish(*self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinks_parse() {
        assert_eq!("stdout".parse::<Sink>().unwrap(), Sink::Stdout);
        assert_eq!("file:a.jsonl".parse::<Sink>().unwrap(), Sink::File("a.jsonl".into()));
        assert_eq!("https://x.example/h".parse::<Sink>().unwrap(), Sink::Webhook("https://x.example/h".into()));
        assert!("ftp://x".parse::<Sink>().unwrap_err().contains("alert sink"));
    }
}
