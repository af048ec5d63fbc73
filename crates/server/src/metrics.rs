//! Prometheus metrics, kept in atomics and written in the text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Latency buckets in seconds.
const BUCKETS: [f64; 12] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.0];

#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; 12],
    total: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.total.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{b}\"}} {}", self.counts[i].load(Ordering::Relaxed));
        }
        let n = self.total.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {n}");
        let _ = writeln!(
            out,
            "{name}_sum{{{}}} {}",
            labels.trim_end_matches(','),
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{{{}}} {n}", labels.trim_end_matches(','));
    }
}

#[derive(Default)]
pub struct Metrics {
    pub messages_in: AtomicU64,
    pub messages_rejected: AtomicU64,
    pub verdict_allow: AtomicU64,
    pub verdict_flag: AtomicU64,
    pub verdict_block: AtomicU64,
    pub queue_depth: AtomicU64,
    pub rate_limited: AtomicU64,
    /// Inbound keywords handled: out, in, help.
    pub optout_keywords: [AtomicU64; 3],
    /// Texts refused because the recipient had opted out.
    pub optout_refused: AtomicU64,
    /// SMPP: bound sessions now.
    pub smpp_sessions: AtomicU64,
    /// SMPP: submits forwarded, submits refused, deliver_sm relayed,
    /// generic_nack sent.
    pub smpp_forwarded: AtomicU64,
    pub smpp_refused: AtomicU64,
    pub smpp_delivered: AtomicU64,
    pub smpp_nacks: AtomicU64,
    /// With --nats: messages published to the cluster's input stream, and
    /// ingest requests refused because the broker did not store them.
    pub messages_published: AtomicU64,
    pub broker_errors: AtomicU64,
    pub routes: Mutex<Vec<(String, std::sync::Arc<Histogram>)>>,
}

impl Metrics {
    pub fn histogram(&self, route: &str) -> std::sync::Arc<Histogram> {
        let mut r = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, h)) = r.iter().find(|(n, _)| n == route) {
            return h.clone();
        }
        let h = std::sync::Arc::new(Histogram::default());
        r.push((route.to_string(), h.clone()));
        h
    }

    pub fn verdict(&self, action: &str) {
        match action {
            "block" => &self.verdict_block,
            "flag" => &self.verdict_flag,
            _ => &self.verdict_allow,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    pub fn optout(&self, k: textwatch_engine::optout::Keyword) {
        use textwatch_engine::optout::Keyword;
        let i = match k {
            Keyword::Out => 0,
            Keyword::In => 1,
            Keyword::Help => 2,
        };
        self.optout_keywords[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self, campaigns: usize, messages: usize, dedup_keys: usize) -> String {
        let mut o = String::new();
        let g = |o: &mut String, name: &str, help: &str, kind: &str, v: u64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        g(
            &mut o,
            "textwatch_messages_in_total",
            "Messages accepted and stored.",
            "counter",
            self.messages_in.load(Ordering::Relaxed),
        );
        g(
            &mut o,
            "textwatch_messages_rejected_total",
            "Records rejected as malformed.",
            "counter",
            self.messages_rejected.load(Ordering::Relaxed),
        );
        let _ = writeln!(o, "# HELP textwatch_verdicts_total Verdicts given by POST /v1/check and the Twilio send endpoint.\n# TYPE textwatch_verdicts_total counter");
        for (a, c) in [("allow", &self.verdict_allow), ("flag", &self.verdict_flag), ("block", &self.verdict_block)] {
            let _ = writeln!(o, "textwatch_verdicts_total{{action=\"{a}\"}} {}", c.load(Ordering::Relaxed));
        }
        g(&mut o, "textwatch_campaigns", "Campaigns in the engine.", "gauge", campaigns as u64);
        g(&mut o, "textwatch_messages_seen", "Distinct messages the engine has seen.", "gauge", messages as u64);
        g(
            &mut o,
            "textwatch_dedup_keys_held",
            "Identity keys of stored messages held in memory for duplicate detection (at most about --dedup-keys).",
            "gauge",
            dedup_keys as u64,
        );
        g(
            &mut o,
            "textwatch_ingest_queue_depth",
            "Batches waiting for the ingest worker.",
            "gauge",
            self.queue_depth.load(Ordering::Relaxed),
        );
        g(
            &mut o,
            "textwatch_rate_limited_total",
            "Requests refused with 429.",
            "counter",
            self.rate_limited.load(Ordering::Relaxed),
        );
        let _ = writeln!(o, "# HELP textwatch_optout_keywords_total Inbound opt-out keywords handled (out: STOP and the like, in: START, help: HELP).\n# TYPE textwatch_optout_keywords_total counter");
        for (k, c) in ["out", "in", "help"].iter().zip(&self.optout_keywords) {
            let _ = writeln!(o, "textwatch_optout_keywords_total{{keyword=\"{k}\"}} {}", c.load(Ordering::Relaxed));
        }
        g(
            &mut o,
            "textwatch_optout_refused_total",
            "Texts refused because the recipient had opted out.",
            "counter",
            self.optout_refused.load(Ordering::Relaxed),
        );
        g(
            &mut o,
            "textwatch_messages_published_total",
            "With --nats: messages JetStream stored on TEXTWATCH_IN for the workers.",
            "counter",
            self.messages_published.load(Ordering::Relaxed),
        );
        g(
            &mut o,
            "textwatch_broker_errors_total",
            "With --nats: ingest requests answered 503 because NATS did not store them.",
            "counter",
            self.broker_errors.load(Ordering::Relaxed),
        );
        g(
            &mut o,
            "textwatch_smpp_sessions",
            "SMPP sessions bound now.",
            "gauge",
            self.smpp_sessions.load(Ordering::Relaxed),
        );
        let _ = writeln!(o, "# HELP textwatch_smpp_pdus_total SMPP traffic: submits forwarded and refused, deliver_sm relayed, generic_nack sent.\n# TYPE textwatch_smpp_pdus_total counter");
        for (k, c) in [
            ("submit_forwarded", &self.smpp_forwarded),
            ("submit_refused", &self.smpp_refused),
            ("deliver_relayed", &self.smpp_delivered),
            ("generic_nack", &self.smpp_nacks),
        ] {
            let _ = writeln!(o, "textwatch_smpp_pdus_total{{kind=\"{k}\"}} {}", c.load(Ordering::Relaxed));
        }
        let _ = writeln!(
            o,
            "# HELP textwatch_request_seconds Request latency by route.\n# TYPE textwatch_request_seconds histogram"
        );
        for (route, h) in self.routes.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            h.write(&mut o, "textwatch_request_seconds", &format!("route=\"{route}\","));
        }
        o
    }
}
