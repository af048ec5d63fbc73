//! A worker process: the analyzing loop, and a bid for the assigner's
//! role. Every worker bids; the one holding the store's writer lock
//! assigns, the others retry every second, so when it dies (its lock goes
//! with it) another takes over from the store's state and cursor.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use textwatch_engine::RuleSet;
use textwatch_pipeline::batch::AfterCommit;
use textwatch_store::{Location, Store, StoreError, WriteStore};

use crate::assigner::{Assigner, AssignerStats};
use crate::broker::Broker;
use crate::worker::{analyze_loop, WorkerStats};
use crate::ClusterError;

/// What runs after each of the assigner's commits, made for the store it
/// commits to (alerts and their sinks; the binary decides).
pub type AfterFactory = Box<dyn Fn(&dyn Store) -> Result<Box<dyn AfterCommit + Send>, String> + Send + Sync>;

/// How a worker process runs.
pub struct NodeConfig {
    /// NATS server(s), `nats://host:4222`.
    pub nats: String,
    /// The store: the SQLite file every worker reaches, or PostgreSQL.
    pub db: Location,
    /// Rule packs added to the built-in ones (as `scan --rules`).
    pub rules: Vec<PathBuf>,
    /// Analyze input messages.
    pub analyze: bool,
    /// Bid for the assigner's role.
    pub assign: bool,
    /// Identity keys of stored messages the assigner holds in memory
    /// (`EngineConfig::dedup_keys`).
    pub dedup_keys: usize,
}

/// Counters of one worker process.
#[derive(Debug, Default)]
pub struct NodeStats {
    pub worker: Arc<WorkerStats>,
    pub assigner: Arc<AssignerStats>,
    /// Whether this process is the assigner now.
    pub assigning: AtomicBool,
}

/// Runs a worker process until `stop` is set.
pub fn run(
    cfg: NodeConfig,
    after: AfterFactory,
    stop: Arc<AtomicBool>,
    stats: Arc<NodeStats>,
) -> Result<(), ClusterError> {
    let rules = textwatch_pipeline::setup::load_rules(&cfg.rules)?;
    // The database (made here if new) before the assigner's bid opens it.
    let min_len = textwatch_engine::EngineConfig::default().min_template_len;
    let (analyzer, secret) = {
        let store = open_store(&cfg.db)?;
        let analyzer = textwatch_pipeline::setup::analyzer(&*store, min_len)?.with_quiet_hours(rules.quiet_hours());
        (analyzer, Arc::new(store.secret().to_vec()))
    };
    // A worker hashes recipients under the key it read at start: after a
    // rotation it stops, to be started again (systemd does) with the new.
    let rotated = Arc::new(AtomicBool::new(false));
    let watch = {
        let (db, secret, stop, rotated) = (cfg.db.clone(), secret.clone(), stop.clone(), rotated.clone());
        std::thread::Builder::new()
            .name("key-watch".into())
            .spawn(move || watch_key(&db, &secret, KEY_CHECK, &stop, &rotated))
            .map_err(|source| ClusterError::Io { what: "starting the key watch".into(), source })?
    };
    let assigner = if cfg.assign {
        let (cfg_nats, db, rules, stop, stats) =
            (cfg.nats.clone(), cfg.db.clone(), rules.clone(), stop.clone(), stats.clone());
        let dedup_keys = cfg.dedup_keys;
        let (secret, rotated) = (secret.clone(), rotated.clone());
        Some(
            std::thread::Builder::new()
                .name("assigner".into())
                .spawn(move || {
                    let ends = Ends { stop: &stop, secret: &secret, rotated: &rotated };
                    bid(&cfg_nats, &db, rules, dedup_keys, after, &ends, &stats)
                })
                .map_err(|source| ClusterError::Io { what: "starting the assigner thread".into(), source })?,
        )
    } else {
        None
    };
    let rt = crate::runtime()?;
    let analyzed = if cfg.analyze {
        rt.block_on(async {
            let broker = connect_retrying(&cfg.nats, &stop).await?;
            analyze_loop(&broker, &analyzer, min_len, &stop, &stats.worker).await
        })
    } else {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    };
    if let Some(t) = assigner {
        if t.join().is_err() {
            tracing::error!("assigner: its thread panicked (see above)");
        }
    }
    let _ = watch.join();
    if rotated.load(Ordering::Relaxed) {
        return Err(ClusterError::Wire(KEY_ROTATED.into()));
    }
    analyzed
}

/// How often a worker checks that the recipient key it hashes under is
/// still the database's.
const KEY_CHECK: Duration = Duration::from_secs(30);

const KEY_ROTATED: &str =
    "the recipient key was rotated since this worker started: it stopped; start it again so that it hashes \
     recipients under the new key";

/// What ends a worker: `stop`, set by a signal or when the recipient key
/// is no longer `secret`, the one it started with (then `rotated` too).
struct Ends<'a> {
    stop: &'a AtomicBool,
    secret: &'a [u8],
    rotated: &'a AtomicBool,
}

/// The database's current recipient key, read without writing anything.
fn stored_secret(db: &Location) -> Result<Vec<u8>, StoreError> {
    Ok(match db {
        Location::Sqlite(p) => textwatch_store::sqlite::SqliteStore::open_reader(p)?.secret().to_vec(),
        Location::Postgres(_) => db.open_existing()?.secret().to_vec(),
    })
}

/// Every `every`, until `stop`: if the database's recipient key is no
/// longer `secret` (a rotation), says so, sets `rotated` and `stop`.
fn watch_key(db: &Location, secret: &[u8], every: Duration, stop: &AtomicBool, rotated: &AtomicBool) {
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if last.elapsed() < every {
            continue;
        }
        last = Instant::now();
        match stored_secret(db) {
            Ok(now) if now != secret => {
                tracing::error!("{KEY_ROTATED}");
                rotated.store(true, Ordering::Relaxed);
                stop.store(true, Ordering::Relaxed);
                return;
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "checking the recipient key"),
        }
    }
}

/// Opens the store, retrying a few times while another process holds a
/// lock SQLite does not wait for (workers starting together on a new
/// database make its tables at the same moment).
fn open_store(db: &Location) -> Result<Box<dyn WriteStore>, ClusterError> {
    let mut tries = 0;
    loop {
        match db.open_writer() {
            Err(e) if tries < 20 && e.is_busy() => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(100 * tries));
            }
            r => return Ok(r?),
        }
    }
}

/// Sets `stop` on Ctrl-C or SIGTERM, so a worker finishes the work in
/// hand and lets go of the assigner's role; a second signal ends the
/// process at once.
pub fn stop_on_signals(stop: Arc<AtomicBool>) -> Result<(), ClusterError> {
    let rt = crate::runtime()?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            rt.block_on(async {
                #[cfg(unix)]
                let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
                    return;
                };
                for _ in 0..2 {
                    #[cfg(unix)]
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                    #[cfg(not(unix))]
                    let _ = tokio::signal::ctrl_c().await;
                    if stop.swap(true, Ordering::Relaxed) {
                        std::process::exit(130);
                    }
                    eprintln!("textwatch: stopping after the work in hand (again to stop at once)");
                }
            })
        })
        .map_err(|source| ClusterError::Io { what: "starting the signal thread".into(), source })?;
    Ok(())
}

/// Connects, retrying with backoff until it works or `stop` is set.
async fn connect_retrying(url: &str, stop: &AtomicBool) -> Result<Broker, ClusterError> {
    let mut backoff = Duration::from_millis(200);
    loop {
        match Broker::connect(url).await {
            Ok(b) => return Ok(b),
            Err(e) if !stop.load(Ordering::Relaxed) => {
                tracing::error!(error = %e, retry_in_ms = backoff.as_millis() as u64, "worker");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Bids for the assigner's role until `stop`; assigns while it holds it.
/// A failure (the store, the broker) ends this term: the lock is let go,
/// and the bid starts again after a pause, from the store's state.
fn bid(
    nats: &str,
    db: &Location,
    rules: RuleSet,
    dedup_keys: usize,
    after: AfterFactory,
    ends: &Ends<'_>,
    stats: &NodeStats,
) {
    let stop = ends.stop;
    let rt = match crate::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "assigner");
            return;
        }
    };
    let mut backoff = Duration::from_secs(1);
    // Opened once and kept while another process holds the lock: opening
    // writes (schema checks), and the lock is all a bid needs to try.
    let mut waiting: Option<Box<dyn WriteStore>> = None;
    while !stop.load(Ordering::Relaxed) {
        let mut term = || -> Result<bool, ClusterError> {
            let mut store = match waiting.take() {
                Some(s) => s,
                None => open_store(db)?,
            };
            match store.lock_for_writing() {
                Ok(()) => {}
                Err(StoreError::Locked(_)) => {
                    waiting = Some(store);
                    return Ok(false);
                }
                Err(e) => return Err(e.into()),
            }
            if store.secret() != ends.secret {
                // Its analyzing side hashes under the key it started with.
                tracing::error!("{KEY_ROTATED}");
                ends.rotated.store(true, Ordering::Relaxed);
                stop.store(true, Ordering::Relaxed);
                return Ok(false);
            }
            tracing::info!("assigner: this worker holds the store's lock and assigns");
            stats.assigning.store(true, Ordering::Relaxed);
            let quiet = rules.quiet_hours();
            let engine = textwatch_pipeline::setup::restore_engine(&mut *store, rules.clone(), dedup_keys)?;
            let analyzer =
                textwatch_pipeline::setup::analyzer(&*store, engine.config().min_template_len)?.with_quiet_hours(quiet);
            let after = after(&*store).map_err(|e| ClusterError::Wire(format!("setting up alerts: {e}")))?;
            rt.block_on(async {
                let broker = connect_retrying(nats, stop).await?;
                let a = Assigner::new(&broker, store, engine, after, analyzer, stats.assigner.clone()).await?;
                a.run(&broker, stop).await
            })?;
            Ok(true)
        };
        let result = term();
        stats.assigning.store(false, Ordering::Relaxed);
        match result {
            Ok(true) => backoff = Duration::from_secs(1),
            Ok(false) => std::thread::sleep(Duration::from_secs(1)),
            Err(e) => {
                tracing::error!(error = %e, retry_in_s = backoff.as_secs(), "assigner: stopped assigning");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_stops_when_the_recipient_key_is_rotated_under_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = Location::Sqlite(dir.path().join("w.db"));
        let mut store = db.open_writer().unwrap();
        let secret = store.secret().to_vec();
        let (stop, rotated) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let watch = {
            let (db, secret, stop, rotated) = (db.clone(), secret.clone(), stop.clone(), rotated.clone());
            std::thread::spawn(move || watch_key(&db, &secret, Duration::from_millis(50), &stop, &rotated))
        };
        std::thread::sleep(Duration::from_millis(300));
        assert!(!stop.load(Ordering::Relaxed), "the same key: the worker goes on");
        store.lock_for_writing().unwrap();
        store.rotate_secret(1_000, 86_400_000).unwrap();
        drop(store);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !stop.load(Ordering::Relaxed) {
            assert!(Instant::now() < deadline, "the rotation was not noticed");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(rotated.load(Ordering::Relaxed));
        watch.join().unwrap();
    }
}
