//! A worker's analyzing half: takes input messages from `TEXTWATCH_IN`
//! (a durable consumer shared by every worker, so each message goes to
//! one), does the per-message work, puts one [`Record`] per message on
//! `TEXTWATCH_ANALYZED` (a round's records in a few stream messages), and
//! acks its inputs once the broker stored the records. A worker that dies leaves its unacked inputs to the others
//! after [`crate::broker::WORKER_ACK_WAIT`].

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::message::PublishMessage;
use futures_util::StreamExt;
use textwatch_engine::minhash::{signature, MinHashScratch};
use textwatch_engine::{Analyzer, Scratch};

use crate::broker::{Broker, ANALYZED_SUBJECT};
use crate::wire::{self, Record, What};
use crate::ClusterError;

/// Input messages taken per round.
const FETCH: usize = 512;
/// Templates a worker remembers having sent a signature for; past it, it
/// forgets and sends some signatures again (the assigner uses or drops
/// them: results do not change).
const KNOWN_MAX: usize = 4 << 20;

/// A stream message of records is closed past this size (NATS takes 1 MB
/// by default).
const BATCH_BYTES: usize = 256 * 1024;

/// Publishes a batch of records to `TEXTWATCH_ANALYZED`.
async fn send(
    broker: &Broker,
    batch: Vec<u8>,
) -> Result<async_nats::jetstream::context::PublishAckFuture, ClusterError> {
    broker
        .js
        .send_publish(ANALYZED_SUBJECT, PublishMessage::build().payload(wire::finish_batch(batch)))
        .await
        .map_err(|e| ClusterError::Broker(format!("publishing records: {e}")))
}

/// Counters a worker keeps (for logs and `/metrics`).
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub analyzed: AtomicU64,
    pub rejected: AtomicU64,
    pub broker_errors: AtomicU64,
}

/// Runs the analyzing loop until `stop` is set (the round in hand is
/// finished first). Broker failures are logged and retried with backoff:
/// what was not acknowledged is handed out again.
pub async fn analyze_loop(
    broker: &Broker,
    analyzer: &Analyzer,
    min_len: usize,
    stop: &AtomicBool,
    stats: &Arc<WorkerStats>,
) -> Result<(), ClusterError> {
    let mut known: HashSet<u64> = HashSet::new();
    let mut scratch = Scratch::default();
    let mut mh = MinHashScratch::default();
    let mut backoff = Duration::from_millis(100);
    let mut consumer = None;
    while !stop.load(Ordering::Relaxed) {
        let round = async {
            if consumer.is_none() {
                broker.analyzed_stream().await?;
                consumer = Some(broker.workers().await?);
            }
            let Some(c) = consumer.as_ref() else { return Ok(0) };
            let mut batch = c
                .fetch()
                .max_messages(FETCH)
                .expires(Duration::from_millis(500))
                .messages()
                .await
                .map_err(|e| ClusterError::Broker(format!("fetching input: {e}")))?;
            let mut taken = Vec::with_capacity(FETCH);
            while let Some(m) = batch.next().await {
                taken.push(m.map_err(|e| ClusterError::Broker(format!("fetching input: {e}")))?);
            }
            // The round's records, a few stream messages of up to
            // BATCH_BYTES each (the assigner puts them back in order).
            let mut acks = Vec::new();
            let mut batch: Vec<u8> = Vec::with_capacity(BATCH_BYTES + 4096);
            for m in &taken {
                let seq = m
                    .info()
                    .map_err(|e| ClusterError::Broker(format!("a message without its sequence: {e}")))?
                    .stream_sequence;
                let origin = m
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(wire::ORIGIN))
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default();
                let rec = match wire::decode_message(&m.payload) {
                    Ok(msg) => {
                        let a = analyzer.analyze(msg, &mut scratch);
                        if known.len() > KNOWN_MAX {
                            known.clear();
                        }
                        let sig = (a.clusterable && known.insert(a.template_key))
                            .then(|| signature(&a.template, &mut mh, min_len));
                        stats.analyzed.fetch_add(1, Ordering::Relaxed);
                        Record::analyzed(seq, origin, a, sig.as_ref())
                    }
                    Err(reason) => {
                        stats.rejected.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(seq, %reason, "an input message that is not a textwatch message");
                        Record { seq, origin, what: What::Rejected { reason } }
                    }
                };
                rec.encode_into(&mut batch);
                if batch.len() >= BATCH_BYTES {
                    acks.push(send(broker, std::mem::take(&mut batch)).await?);
                }
            }
            if !batch.is_empty() {
                acks.push(send(broker, batch).await?);
            }
            for a in acks {
                a.await.map_err(|e| ClusterError::Broker(format!("storing records: {e}")))?;
            }
            for m in &taken {
                m.ack().await.map_err(|e| ClusterError::Broker(format!("acknowledging input: {e}")))?;
            }
            Ok::<usize, ClusterError>(taken.len())
        };
        match round.await {
            Ok(_) => backoff = Duration::from_millis(100),
            Err(e) => {
                stats.broker_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, retry_in_ms = backoff.as_millis() as u64, "worker");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    Ok(())
}
