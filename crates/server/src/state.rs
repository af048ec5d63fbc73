//! What every handler shares: the server's state, its errors, the caller's
//! token.

use std::collections::HashMap;

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use textwatch_engine::policy::Decision;
use textwatch_engine::{Analyzer, Engine, RuleSet};
use textwatch_store::{Location, Store, WriteStore};
use tokio::sync::broadcast;

use super::{metrics, worker};
use crate::error::{Result, ServerError};
use textwatch_sinks::enrich::Enricher;

/// How long a token lookup is trusted before the database is asked again.
pub(super) const TOKEN_TTL: Duration = Duration::from_secs(10);

/// A known token: id and scopes.
pub(super) type TokenEntry = (i64, Vec<String>);

/// A per-token token bucket.
pub(super) struct Bucket {
    pub(super) tokens: f64,
    pub(super) at: Instant,
}

/// Why a server stops by itself.
pub(super) const KEY_ROTATED: &str = "the recipient key was rotated since this server started: it stopped; start it \
     again so that it hashes recipients under the new key";

pub struct AppState {
    pub(super) engine: Arc<RwLock<Engine>>,
    pub(super) analyzer: Analyzer,
    pub(super) rules: RuleSet,
    pub(super) model: Option<textwatch_engine::categorize::Categorizer>,
    pub(super) enricher: RwLock<Enricher>,
    pub(super) readers: Mutex<Vec<Box<dyn WriteStore>>>,
    pub(super) db: Location,
    pub(super) ingest: crossbeam_channel::Sender<worker::Job>,
    pub(super) events: broadcast::Sender<String>,
    pub(super) metrics: Arc<metrics::Metrics>,
    /// token hash -> (looked up at, id and scopes), refreshed after
    /// [`TOKEN_TTL`] so that a revoked token stops working.
    pub(super) tokens: Mutex<HashMap<String, (Instant, Option<TokenEntry>)>>,
    pub(super) buckets: Mutex<HashMap<i64, Bucket>>,
    pub(super) rate: f64,
    /// The largest request body read (`--max-body`).
    pub(super) max_body: usize,
    /// template key -> (computed at, verdict) for `check`.
    pub(super) verdicts: Mutex<HashMap<u64, (Instant, TemplateVerdict)>>,
    /// campaign id -> (computed at, its decision and size) for `check`.
    pub(super) campaign_ctx: Mutex<HashMap<String, (Instant, Option<textwatch_sinks::views::CampaignContext>)>>,
    pub(super) twilio_auth_token: Option<String>,
    pub(super) public_url: Option<String>,
    pub(super) upstream: Option<String>,
    pub(super) reporter: textwatch_sinks::report::Reporter,
    pub(super) http: ureq::Agent,
    pub(super) started: Instant,
    /// Who opted out of what (the worker writes it once stored).
    pub(super) optouts: Arc<RwLock<textwatch_engine::optout::Registry>>,
    /// Follow-ups of takedown reports, computed at most every 30 s.
    pub(super) followups: Mutex<Option<(Instant, Computed)>>,
    /// The one rate bucket of unauthenticated callers (`POST /v1/appeals`).
    pub(super) public_bucket: Mutex<Bucket>,
    /// Replies to HELP, STOP and START.
    pub(super) replies: crate::replies::Replies,
    /// With `--nats`: ingest is published to the cluster's input stream.
    pub(super) broker: Option<textwatch_cluster::broker::Broker>,
    /// With `--nats`: the campaigns and the number of alerts seen at the
    /// last engine reload; what the workers added since goes out as
    /// events.
    pub(super) reloaded: Mutex<(std::collections::HashSet<u32>, usize)>,
    /// The recipient key this process hashes under (read at start), and
    /// whether a reload found the database's changed (a rotation: the
    /// server stops, to be started again with the new key).
    pub(super) key: Vec<u8>,
    pub(super) rotated: std::sync::atomic::AtomicBool,
    /// True once the server is stopping.
    pub(super) stopping: tokio::sync::watch::Receiver<bool>,
}

pub type Shared = Arc<AppState>;

/// Takedown follow-ups and the provider records, as last computed.
pub type Computed = Arc<(Vec<textwatch_sinks::followup::FollowUp>, Vec<textwatch_sinks::followup::ProviderRecord>)>;

impl AppState {
    /// Runs `f` with a read connection from the pool.
    pub(super) fn read<T>(&self, f: impl FnOnce(&dyn Store) -> Result<T>) -> Result<T> {
        let conn = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => self.db.open_existing()?,
        };
        let r = f(&*conn);
        // A connection that failed may be broken (a database restart):
        // the next read opens a fresh one.
        let mut pool = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if r.is_ok() && pool.len() < 8 {
            pool.push(conn);
        }
        r
    }

    /// Hands a job to the ingest worker (the one writer) and waits for its
    /// answer: 429 with Retry-After when the queue is full, 503 when the
    /// worker could not store it or stopped.
    pub(super) async fn run_job<T>(
        &self,
        job: impl FnOnce(tokio::sync::oneshot::Sender<Result<T, String>>) -> worker::Job,
    ) -> Result<T, ApiError> {
        use std::sync::atomic::Ordering;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.metrics.queue_depth.fetch_add(1, Ordering::Relaxed);
        if self.ingest.try_send(job(tx)).is_err() {
            self.metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
            self.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
            return Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, "the ingest queue is full; retry shortly")
                .with_header(header::RETRY_AFTER, "1"));
        }
        match rx.await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("not stored: {e}"))),
            Err(_) => {
                Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the ingest worker stopped; nothing was stored"))
            }
        }
    }

    /// As [`AppState::run_job`], but a full queue makes it wait for room
    /// instead of answering 429: for work that must not be dropped (first
    /// halves of 7726 reports going back to wait).
    pub(super) async fn run_job_waiting<T: Send + 'static>(
        &self,
        job: impl FnOnce(tokio::sync::oneshot::Sender<Result<T, String>>) -> worker::Job + Send + 'static,
    ) -> Result<T, String> {
        use std::sync::atomic::Ordering;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (queue, metrics) = (self.ingest.clone(), self.metrics.clone());
        metrics.queue_depth.fetch_add(1, Ordering::Relaxed);
        let sent = tokio::task::spawn_blocking(move || queue.send(job(tx)).is_ok()).await.unwrap_or(false);
        if !sent {
            metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
            return Err("the ingest worker stopped".into());
        }
        rx.await.unwrap_or_else(|_| Err("the ingest worker stopped".into()))
    }

    /// Drops the cached verdicts and campaign contexts: a decision changed
    /// (a block, an appeal) and the next check must see it.
    pub(super) fn forget_verdicts(&self) {
        self.verdicts.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.campaign_ctx.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// With `--nats`: the campaigns the cluster's workers formed since
    /// the last reload, for `check` (the engine is rebuilt from the
    /// store's campaigns and newest singletons).
    pub(super) fn reload_engine(&self) -> Result<(), ApiError> {
        let cfg = textwatch_engine::EngineConfig::default();
        let mut store = self.db.open_existing()?;
        if store.secret() != self.key.as_slice() {
            self.rotated.store(true, std::sync::atomic::Ordering::Relaxed);
            return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, KEY_ROTATED));
        }
        let snap = store.load_peek_snapshot(cfg.singleton_window)?;
        let alerts = store.alerts()?;
        drop(store);
        {
            // The workers formed these and raised these since the last
            // reload: the dashboard's live feed hears of them now.
            let mut seen = self.reloaded.lock().unwrap_or_else(|e| e.into_inner());
            for c in snap.clusters.iter().filter(|c| c.merged_into.is_none()) {
                if seen.0.insert(c.seq) {
                    let ev = serde_json::json!({"type": "campaign-created", "campaign": c.id(), "messages": c.messages, "senders": c.senders});
                    let _ = self.events.send(ev.to_string());
                }
            }
            for a in alerts.iter().skip(seen.1) {
                let _ = self.events.send(format!("{{\"type\":\"campaign-alert\",\"alert\":{a}}}"));
            }
            seen.1 = seen.1.max(alerts.len());
        }
        let mut engine = Engine::restore(cfg, snap);
        textwatch_pipeline::setup::configure(&mut engine, self.rules.clone())
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        *self.engine.write().unwrap_or_else(|e| e.into_inner()) = engine;
        self.forget_verdicts();
        Ok(())
    }

    pub(super) fn enricher(&self) -> std::sync::RwLockReadGuard<'_, Enricher> {
        self.enricher.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// An API error: a status and a JSON body `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError(StatusCode, String, Vec<(header::HeaderName, String)>);

impl ApiError {
    pub fn new(status: StatusCode, msg: impl Into<String>) -> Self {
        ApiError(status, msg.into(), Vec::new())
    }

    pub fn status(&self) -> StatusCode {
        self.0
    }

    pub fn message(&self) -> &str {
        &self.1
    }

    /// Adds a response header (Retry-After, WWW-Authenticate).
    pub fn with_header(mut self, name: header::HeaderName, value: impl Into<String>) -> Self {
        self.2.push((name, value.into()));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.0, Json(serde_json::json!({"error": self.1, "status": self.0.as_u16()}))).into_response();
        for (k, v) in self.2 {
            if let Ok(v) = v.parse() {
                r.headers_mut().insert(k, v);
            }
        }
        r
    }
}

impl From<crate::bodies::BodyError> for ApiError {
    fn from(e: crate::bodies::BodyError) -> Self {
        ApiError::new(StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST), e.message)
    }
}

impl From<ServerError> for ApiError {
    fn from(e: ServerError) -> Self {
        tracing::error!(error = %e, "request failed");
        match &e {
            // The database is away (a restart, a failover): the client
            // retries, and the next request connects again.
            ServerError::Store(s) if s.is_unavailable() => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("the database is not available: {e}"))
                    .with_header(header::RETRY_AFTER, "1")
            }
            _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}

impl From<textwatch_store::StoreError> for ApiError {
    fn from(e: textwatch_store::StoreError) -> Self {
        ServerError::from(e).into()
    }
}

impl From<textwatch_sinks::SinkError> for ApiError {
    fn from(e: textwatch_sinks::SinkError) -> Self {
        ServerError::from(e).into()
    }
}

/// The caller's token, checked and rate-limited by [`auth`].
#[derive(Clone, Debug)]
pub struct Caller {
    pub id: i64,
    pub scopes: Vec<String>,
}

impl Caller {
    pub fn require(&self, scope: &str) -> Result<(), ApiError> {
        if self.scopes.iter().any(|s| s == scope || s == "admin") {
            Ok(())
        } else {
            Err(ApiError::new(StatusCode::FORBIDDEN, format!("this token lacks the `{scope}` scope")))
        }
    }
}

pub(super) fn bearer(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        if let Some(t) = v.strip_prefix("Bearer ") {
            return Some(t.trim().to_string());
        }
        // HTTP Basic (the Twilio client): the password is the token.
        if let Some(b) = v.strip_prefix("Basic ") {
            use base64::Engine as _;
            let raw = base64::engine::general_purpose::STANDARD.decode(b.trim()).ok()?;
            let s = String::from_utf8(raw).ok()?;
            return s.split_once(':').map(|(_, p)| p.to_string());
        }
    }
    // EventSource and download links cannot set headers.
    query?.split('&').find_map(|kv| kv.strip_prefix("access_token=")).map(|t| t.to_string())
}

/// What `check` computes once per template (and per campaign state).
#[derive(Clone)]
pub struct TemplateVerdict {
    pub findings: Vec<textwatch_engine::Finding>,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    pub campaign: Option<String>,
    pub ctx: Option<textwatch_sinks::views::CampaignContext>,
    pub decision: Decision,
    pub risk: u8,
}
