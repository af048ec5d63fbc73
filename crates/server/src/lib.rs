//! The HTTP server behind `textwatch serve`: the API, the Twilio-compatible
//! endpoints and the live dashboard, on the embedded SQLite store.
//!
//! Threads: tokio serves requests; one ingest worker owns the writer
//! connection and assigns messages (handlers wait for its commit); reads go
//! through a small pool of read-only connections. The engine sits behind a
//! read-write lock: the worker writes, `check` reads.

mod api;
mod appeals;
pub mod bodies;
mod error;
mod followups;
mod metrics;
pub mod optout;
mod replies;
pub mod smpp;
mod spam;
mod state;
mod twilio;
mod worker;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use textwatch_engine::{Engine, EngineConfig};
use textwatch_store::Location;
use tokio::sync::broadcast;

pub use error::{Result, ServerError};
use state::{bearer, ApiError, AppState, Bucket, Caller, Shared, TOKEN_TTL};
use textwatch_sinks::enrich::{EnrichFiles, Enricher};

/// How the server runs: what `textwatch serve` takes as options (see its
/// `--help` for each).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address the HTTP API listens on (port 0: any free port; the chosen
    /// address is printed); `None`: no HTTP (an SMPP-only gateway).
    pub listen: Option<SocketAddr>,
    /// The SMPP gateway, when it runs.
    pub smpp: Option<smpp::SmppConfig>,
    /// Largest request body accepted, in bytes.
    pub max_body: usize,
    /// Requests per second allowed per token (a burst of twice this).
    pub rate_limit: u32,
    /// Ingest batches that may wait for the worker; beyond it, 429.
    pub queue: usize,
    /// Verifies X-Twilio-Signature on the inbound webhook.
    pub twilio_auth_token: Option<String>,
    /// The public base URL Twilio calls (for signature checks behind a
    /// proxy).
    pub public_url: Option<String>,
    /// Where the send endpoint forwards what it lets pass.
    pub upstream: Option<String>,
    /// Alert sinks, as for `scan --alert`.
    pub alerts: Vec<textwatch_sinks::alerts::Sink>,
    /// Rule pack folders added to the built-in rules.
    pub rules: Vec<PathBuf>,
    /// Who files the reports the API writes.
    pub reporter: textwatch_sinks::report::Reporter,
    /// Provider registry and policy files.
    pub files: EnrichFiles,
    /// Replies to inbound HELP (and STOP, START) keywords.
    pub replies: optout::Replies,
    /// NATS server: ingest goes onto the cluster's input stream
    /// (`TEXTWATCH_IN`) for `textwatch worker`s, and this server reads
    /// what they assign.
    pub nats: Option<String>,
    /// With `nats`: how often the workers' campaigns are read back (for
    /// `check`, and the live events of campaigns and alerts they made).
    pub reload_every: Duration,
    /// Identity keys of stored messages held in memory
    /// ([`EngineConfig::dedup_keys`]).
    pub dedup_keys: usize,
}

/// The stored form of an API token: its SHA-256, in hex. Tokens are 256
/// random bits, so a fast hash is as safe as a slow one, and a lookup by
/// hash compares no secret byte by byte.
pub fn token_hash(token: &str) -> String {
    use sha2::Digest as _;
    format!("{:x}", sha2::Sha256::digest(token.as_bytes()))
}

/// Authenticates every `/v1`, `/2010-04-01` and `/metrics` request:
/// 401 without a valid token, 429 over the token's rate.
async fn auth(State(st): State<Shared>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    // Opening an appeal is public: a blocked sender has no token. It has
    // its own rate limit (appeals::open).
    if path == "/v1/appeals" && req.method() == axum::http::Method::POST {
        return next.run(req).await;
    }
    if let Err(e) = admit(&st, &path, &mut req) {
        // Read what the client is still sending before refusing: one that
        // writes its whole body before reading the answer (most HTTP
        // clients) would otherwise get a broken pipe instead of the 401 or
        // the 429 with its Retry-After.
        let _ = axum::body::to_bytes(req.into_body(), st.max_body).await;
        return e.into_response();
    }
    let route = match path.as_str() {
        p if p.starts_with("/v1/campaigns/") => "/v1/campaigns/{id}",
        p if p.starts_with("/v1/numbers/") => "/v1/numbers/{e164}",
        p if p.starts_with("/v1/appeals/") => "/v1/appeals/{id}/decision",
        p if p.starts_with("/2010-04-01/") => "/2010-04-01/Accounts/{sid}/Messages.json",
        p => p,
    }
    .to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    if path != "/v1/events" {
        st.metrics.histogram(&route).observe(started.elapsed().as_secs_f64());
    }
    resp
}

/// Checks the caller's token and rate; on success the request carries the
/// [`Caller`].
fn admit(st: &Shared, path: &str, req: &mut Request) -> Result<(), ApiError> {
    // The Twilio inbound webhook may authenticate by signature instead.
    let signed_webhook = path == "/v1/twilio/inbound" && st.twilio_auth_token.is_some();
    let token = bearer(req.headers(), req.uri().query());
    let caller = match token {
        // SMPP bind credentials are for binds only: their password is
        // short and crosses SMPP links in clear.
        Some(t) if t.starts_with("smpp:") => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "SMPP credentials do not open the HTTP API; use an API token",
            ));
        }
        Some(t) => {
            let hash = token_hash(&t);
            let cached = st
                .tokens
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&hash)
                .filter(|(at, _)| at.elapsed() < TOKEN_TTL)
                .map(|(_, e)| e.clone());
            let found = match cached {
                Some(c) => c,
                None => {
                    let f = st
                        .read(|s| Ok(s.token_scopes(&hash)?))?
                        .map(|(id, scopes)| (id, scopes.split(',').map(str::to_string).collect::<Vec<_>>()));
                    let mut cache = st.tokens.lock().unwrap_or_else(|e| e.into_inner());
                    if cache.len() > 10_000 {
                        // Unknown tokens could fill it; start again.
                        cache.clear();
                    }
                    cache.insert(hash, (Instant::now(), f.clone()));
                    f
                }
            };
            match found {
                Some((id, scopes)) => Some(Caller { id, scopes }),
                None if signed_webhook => None,
                None => return Err(ApiError::new(StatusCode::UNAUTHORIZED, "unknown or revoked token")),
            }
        }
        None if signed_webhook => None,
        None => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing token: send `Authorization: Bearer TOKEN` (make one with `textwatch token create`)",
            )
            .with_header(header::WWW_AUTHENTICATE, "Bearer"));
        }
    };
    if let Some(c) = &caller {
        let mut b = st.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = b.entry(c.id).or_insert(Bucket { tokens: st.rate * 2.0, at: Instant::now() });
        let now = Instant::now();
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * st.rate).min(st.rate * 2.0);
        bucket.at = now;
        if bucket.tokens < 1.0 {
            st.metrics.rate_limited.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate limit for this token exceeded")
                .with_header(header::RETRY_AFTER, "1"));
        }
        bucket.tokens -= 1.0;
        drop(b);
        req.extensions_mut().insert(c.clone());
    }
    Ok(())
}

/// axum's own refusals (a query, path or body that does not parse, a body
/// over the limit, a missing Content-Type) come as plain text; every error
/// of the API is JSON `{"error", "status"}`, as its contract says. The
/// text becomes the message.
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    // Plain text, or no body type at all (axum's 405 for a wrong method).
    let plain = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let text = match text.trim() {
        "" => status.canonical_reason().unwrap_or("error").to_string(),
        t => t.to_string(),
    };
    let json = serde_json::json!({"error": text, "status": status.as_u16()});
    parts.headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(json.to_string()))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(st): State<Shared>) -> Response {
    let ok = st.read(|s| Ok(s.stats()?)).is_ok() && st.engine.read().is_ok();
    if ok {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

const OPENAPI: &str = include_str!("openapi.json");
const DASHBOARD: &str = include_str!("dashboard.html");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn dashboard() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, "default-src 'self'; script-src 'unsafe-inline' 'self'; style-src 'unsafe-inline' 'self'; img-src 'self' data:"),
        ],
        DASHBOARD,
    )
        .into_response()
}

async fn fallback() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint; GET /openapi.json lists them")
}

fn router(st: Shared, max_body: usize) -> Router {
    let protected = Router::new()
        .route("/v1/messages", post(api::ingest))
        .route("/v1/check", post(api::check))
        .route("/v1/campaigns", get(api::campaigns))
        .route("/v1/campaigns/{id}", get(api::campaign))
        .route("/v1/campaigns/{id}/report", get(api::report))
        .route("/v1/campaigns/{id}/block", post(api::block))
        .route("/v1/numbers/{e164}", get(api::number))
        .route("/v1/blocklist", get(api::blocklist))
        .route("/v1/takedowns", get(followups::list))
        .route("/v1/reports", post(spam::ingest))
        .route("/v1/appeals", get(appeals::list).post(appeals::open))
        .route("/v1/appeals/{id}/decision", post(appeals::decide))
        .route("/v1/events", get(api::events))
        .route("/v1/twilio/inbound", post(twilio::inbound))
        .route("/2010-04-01/Accounts/{sid}/Messages.json", post(twilio::send))
        .route("/metrics", get(api::metrics))
        .route_layer(axum::middleware::map_response(json_errors))
        .route_layer(axum::middleware::from_fn_with_state(st.clone(), auth));
    Router::new()
        .merge(protected)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi))
        .route("/", get(|| async { axum::response::Redirect::temporary("/dashboard") }))
        .route("/dashboard", get(dashboard))
        .route("/explain/{subject}", get(appeals::explain))
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(st)
}

/// Serves `db` until Ctrl-C or SIGTERM; prints the address it listens on
/// to standard error once it does.
pub fn run(db: &Location, args: ServerConfig) -> Result<()> {
    let reload_every = args.reload_every.max(Duration::from_secs(1));
    let mut store = db.open_writer()?;
    // With --nats the cluster's assigner writes messages; this server
    // writes only tokens, opt-outs, appeals and reports.
    if args.nats.is_none() {
        store.lock_for_writing()?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| ServerError::Io { what: "starting the async runtime".into(), source })?;
    let broker = match &args.nats {
        Some(url) => Some(rt.block_on(async {
            let b = textwatch_cluster::broker::Broker::connect(url).await?;
            b.in_stream().await?;
            Ok::<_, textwatch_cluster::ClusterError>(b)
        })?),
        None => None,
    };
    let cfg = EngineConfig { dedup_keys: args.dedup_keys, ..EngineConfig::default() };
    // With --nats the workers assign: this server's engine only answers
    // `check` (and reloads every 30 s), for which the peek snapshot is
    // enough, at any size of the log.
    let snap = if args.nats.is_some() {
        store.load_peek_snapshot(cfg.singleton_window)?
    } else {
        store.load_snapshot(cfg.singleton_window, cfg.dedup_keys)?
    };
    let clusters_at_start: std::collections::HashSet<u32> = snap.clusters.iter().map(|c| c.seq).collect();
    let (clusters_seen, alerts_seen) = (clusters_at_start.clone(), store.alerts()?.len());
    let mut engine = Engine::restore(cfg.clone(), snap);
    let rules = textwatch_pipeline::setup::load_rules(&args.rules)?;
    textwatch_pipeline::setup::configure(&mut engine, rules.clone())?;
    // `check` classifies with the same model outside the engine.
    let model = textwatch_pipeline::setup::builtin_model()?;
    let analyzer =
        textwatch_pipeline::setup::analyzer(&*store, cfg.min_template_len)?.with_quiet_hours(rules.quiet_hours());
    let secret = store.secret().to_vec();
    let enricher = Enricher::load(&*store, &args.files)?;
    let mut optouts = textwatch_engine::optout::Registry::default();
    optouts.apply(&store.optout_changes()?);
    let optouts = Arc::new(RwLock::new(optouts));
    let engine = Arc::new(RwLock::new(engine));
    let (events, _) = broadcast::channel(1024);
    let metrics = Arc::new(metrics::Metrics::default());
    let (tx, rx) = crossbeam_channel::bounded::<worker::Job>(args.queue.max(1));
    let watcher = textwatch_sinks::alerts::Watcher::new(enricher.clone(), args.alerts.clone())?;
    let w = worker::Worker {
        engine: engine.clone(),
        store,
        analyzer: analyzer.clone(),
        watcher,
        events: events.clone(),
        known_clusters: clusters_at_start,
        metrics: metrics.clone(),
        optouts: optouts.clone(),
    };
    if args.rate_limit == 0 {
        return Err(ServerError::Config("--rate-limit must be at least 1".into()));
    }
    let worker = std::thread::Builder::new()
        .name("ingest".into())
        .spawn(move || w.run(rx))
        .map_err(|source| ServerError::Io { what: "starting the ingest worker".into(), source })?;
    // Set when the server stops: it stops accepting, and long-lived
    // responses (the event stream) end so that what is in flight can.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let st = Arc::new(AppState {
        stopping: stop_rx.clone(),
        engine,
        analyzer,
        rules,
        model,
        enricher: RwLock::new(enricher),
        readers: Mutex::new(Vec::new()),
        db: db.clone(),
        ingest: tx,
        events,
        metrics,
        tokens: Mutex::new(HashMap::new()),
        buckets: Mutex::new(HashMap::new()),
        rate: f64::from(args.rate_limit),
        max_body: args.max_body,
        verdicts: Mutex::new(HashMap::new()),
        campaign_ctx: Mutex::new(HashMap::new()),
        twilio_auth_token: args.twilio_auth_token.clone(),
        public_url: args.public_url.clone(),
        upstream: args.upstream.clone(),
        reporter: args.reporter.clone(),
        http: ureq::AgentBuilder::new().timeout(Duration::from_secs(15)).build(),
        started: Instant::now(),
        optouts,
        followups: Mutex::new(None),
        public_bucket: Mutex::new(Bucket { tokens: 20.0, at: Instant::now() }),
        replies: args.replies.clone(),
        broker,
        reloaded: Mutex::new((clusters_seen, alerts_seen)),
        key: secret,
        rotated: std::sync::atomic::AtomicBool::new(false),
    });
    let app = router(st.clone(), args.max_body);
    let smpp_state = st.clone();
    rt.block_on(async move {
        // Ctrl-C or SIGTERM: stop accepting, finish what is in flight; the
        // worker then commits what it was given and exits.
        let stop_on_rotation = stop_tx.clone();
        tokio::spawn(async move {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
            }
            eprintln!("textwatch: shutting down");
            let _ = stop_tx.send(true);
        });
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        // With --nats, campaigns are formed by the workers: `check`
        // answers from the store's campaigns as of at most
        // --reload-every ago, and their events go out then.
        if smpp_state.broker.is_some() {
            let st = smpp_state.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(reload_every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let st = st.clone();
                    let reloading = st.clone();
                    match tokio::task::spawn_blocking(move || reloading.reload_engine()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) if st.rotated.load(std::sync::atomic::Ordering::Relaxed) => {
                            tracing::error!("{}", state::KEY_ROTATED);
                            let _ = stop_on_rotation.send(true);
                            return;
                        }
                        Ok(Err(e)) => tracing::error!(error = %e.message(), "reloading campaigns for check"),
                        Err(e) => tracing::error!(error = %e, "reloading campaigns for check"),
                    }
                }
            });
        }
        // Allow rules decided outside this process (`textwatch appeal
        // decide`) take effect within ten seconds.
        let refresh_state = smpp_state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            loop {
                tick.tick().await;
                let st = refresh_state.clone();
                let _ = tokio::task::spawn_blocking(move || appeals::refresh_allows(&st)).await;
            }
        });
        let smpp_task = match &args.smpp {
            Some(cfg) => {
                let listener = tokio::net::TcpListener::bind(cfg.listen)
                    .await
                    .map_err(|source| ServerError::Io { what: format!("listening for SMPP on {}", cfg.listen), source })?;
                let addr = listener
                    .local_addr()
                    .map_err(|source| ServerError::Io { what: "reading the SMPP address".into(), source })?;
                // Tests and scripts read this line to find the port.
                eprintln!("textwatch smpp: listening on {addr}, forwarding to {}", cfg.upstream);
                let (st2, cfg) = (smpp_state.clone(), Arc::new(cfg.clone()));
                Some(tokio::spawn(smpp::serve(listener, st2, cfg)))
            }
            None => None,
        };
        match args.listen {
            Some(listen) => {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .map_err(|source| ServerError::Io { what: format!("listening on {listen}"), source })?;
                let addr = listener
                    .local_addr()
                    .map_err(|source| ServerError::Io { what: "reading the listening address".into(), source })?;
                // Tests and scripts read this line to find the port.
                eprintln!("textwatch serve: listening on http://{addr} (dashboard http://{addr}/dashboard)");
                if !addr.ip().is_loopback() {
                    tracing::warn!(%addr, "listening beyond loopback: every endpoint needs a token, but mind TLS in front");
                }
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped(stop_rx))
                    .await
                    .map_err(|source| ServerError::Io { what: "serving".into(), source })?;
            }
            None => stopped(stop_rx).await,
        }
        if let Some(t) = smpp_task {
            t.abort();
        }
        Ok::<(), ServerError>(())
    })?;
    // The background tasks (the 10 s allow refresh, the 30 s reload) hold
    // the state, and with it the ingest queue's sender, until the runtime
    // drops them: without this the ingest worker never sees its queue
    // close and the process never exits.
    rt.shutdown_timeout(Duration::from_secs(10));
    let rotated = st.rotated.load(std::sync::atomic::Ordering::Relaxed);
    drop(st);
    let _ = worker.join();
    if rotated {
        return Err(ServerError::Config(state::KEY_ROTATED.into()));
    }
    Ok(())
}
