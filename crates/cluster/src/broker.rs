//! The broker: connecting to NATS, and the streams and consumers textwatch
//! uses, created on first use with the settings below (docs/deployment.md
//! lists them).

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};

use crate::ClusterError;

/// Every accepted message, in the order it was accepted.
pub const IN_STREAM: &str = "TEXTWATCH_IN";
pub const IN_SUBJECT: &str = "textwatch.in";
/// One record per input message, from the workers to the assigner.
pub const ANALYZED_STREAM: &str = "TEXTWATCH_ANALYZED";
pub const ANALYZED_SUBJECT: &str = "textwatch.analyzed";
/// The workers' shared durable consumer of [`IN_STREAM`].
pub const WORKERS: &str = "textwatch-workers";
/// The assigner's durable consumer of [`ANALYZED_STREAM`].
pub const ASSIGNER: &str = "textwatch-assigner";

/// How long input messages are kept: the time a new store (or a worker
/// fleet stopped for maintenance) has to catch up.
pub const IN_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// A worker that took a message and said nothing for this long is taken
/// for dead: the message goes to another worker.
pub const WORKER_ACK_WAIT: Duration = Duration::from_secs(15);
/// The assigner holds records until their batch commits; this is how long
/// the broker waits before it hands them out again.
pub const ASSIGNER_ACK_WAIT: Duration = Duration::from_secs(120);
/// Stream messages of records the assigner may hold unacknowledged (a
/// worker's round is one to a few of them, up to 512 records): about
/// four batches, which bounds the assigner's memory.
pub const ASSIGNER_MAX_PENDING: i64 = 256;

/// A connection to NATS with JetStream.
#[derive(Clone)]
pub struct Broker {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
}

impl Broker {
    /// Connects to `url` (`nats://host:4222`, or several separated by
    /// commas); fails after a few seconds when nothing answers.
    pub async fn connect(url: &str) -> Result<Self, ClusterError> {
        let client = async_nats::ConnectOptions::new()
            .name("textwatch")
            .connection_timeout(Duration::from_secs(5))
            .event_callback(|ev| async move {
                match ev {
                    async_nats::Event::Disconnected => tracing::warn!("NATS: disconnected; reconnecting"),
                    async_nats::Event::Connected => tracing::info!("NATS: connected"),
                    other => tracing::debug!(event = %other, "NATS"),
                }
            })
            .connect(url)
            .await
            .map_err(|e| ClusterError::Broker(format!("connecting to {url}: {e}")))?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(Duration::from_secs(10));
        Ok(Broker { client, js })
    }

    /// [`IN_STREAM`], created if missing: file storage, limits retention
    /// (kept [`IN_MAX_AGE`], so sequences stay gapless for the assigner),
    /// a two-minute duplicate window for publishers' retries.
    pub async fn in_stream(&self) -> Result<stream::Stream, ClusterError> {
        self.js
            .get_or_create_stream(stream::Config {
                name: IN_STREAM.into(),
                subjects: vec![IN_SUBJECT.into()],
                retention: stream::RetentionPolicy::Limits,
                storage: stream::StorageType::File,
                max_age: IN_MAX_AGE,
                duplicate_window: Duration::from_secs(120),
                description: Some("textwatch: every accepted message, in order".into()),
                ..Default::default()
            })
            .await
            .map_err(|e| ClusterError::Broker(format!("creating stream {IN_STREAM}: {e}")))
    }

    /// [`ANALYZED_STREAM`], created if missing: file storage, work-queue
    /// retention (a batch of records is gone once the assigner committed
    /// all of them). A record that comes twice (two workers analyzed one
    /// input) is dropped by the assigner by its input sequence.
    pub async fn analyzed_stream(&self) -> Result<stream::Stream, ClusterError> {
        self.js
            .get_or_create_stream(stream::Config {
                name: ANALYZED_STREAM.into(),
                subjects: vec![ANALYZED_SUBJECT.into()],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                duplicate_window: Duration::from_secs(600),
                description: Some("textwatch: analyzed messages, waiting for the assigner".into()),
                ..Default::default()
            })
            .await
            .map_err(|e| ClusterError::Broker(format!("creating stream {ANALYZED_STREAM}: {e}")))
    }

    /// The workers' durable pull consumer of [`IN_STREAM`].
    pub async fn workers(&self) -> Result<consumer::PullConsumer, ClusterError> {
        let s = self.in_stream().await?;
        s.get_or_create_consumer(
            WORKERS,
            consumer::pull::Config {
                durable_name: Some(WORKERS.into()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: WORKER_ACK_WAIT,
                max_ack_pending: 20_000,
                description: Some("textwatch workers".into()),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| ClusterError::Broker(format!("creating consumer {WORKERS}: {e}")))
    }

    /// The assigner's durable pull consumer of [`ANALYZED_STREAM`], made
    /// anew: a new assigner (the last one stopped or died) gets every
    /// record still in the stream at once, those the last one held
    /// unacked included, instead of after their ack wait. Records are
    /// removed from the stream only when acked, so nothing is skipped.
    pub async fn assigner(&self) -> Result<consumer::PullConsumer, ClusterError> {
        let s = self.analyzed_stream().await?;
        match s.delete_consumer(ASSIGNER).await {
            Ok(_) => {}
            // Not there (the first assigner, or deleted already): fine.
            Err(e) if matches!(e.kind(), async_nats::jetstream::stream::ConsumerErrorKind::JetStream(j) if j.error_code() == async_nats::jetstream::ErrorCode::CONSUMER_NOT_FOUND) =>
                {}
            Err(e) => return Err(ClusterError::Broker(format!("replacing consumer {ASSIGNER}: {e}"))),
        }
        s.get_or_create_consumer(
            ASSIGNER,
            consumer::pull::Config {
                durable_name: Some(ASSIGNER.into()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: ASSIGNER_ACK_WAIT,
                max_ack_pending: ASSIGNER_MAX_PENDING,
                description: Some("textwatch assigner".into()),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| ClusterError::Broker(format!("creating consumer {ASSIGNER}: {e}")))
    }

    /// The first and last sequence [`IN_STREAM`] holds.
    pub async fn in_bounds(&self) -> Result<(u64, u64), ClusterError> {
        let mut s = self.in_stream().await?;
        let info = s.info().await.map_err(|e| ClusterError::Broker(format!("reading {IN_STREAM}: {e}")))?;
        Ok((info.state.first_sequence, info.state.last_sequence))
    }
}

/// How far the cluster has got: what `textwatch status` prints.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    /// Sequences [`IN_STREAM`] holds (first, last; 0 when empty).
    pub in_first: u64,
    pub in_last: u64,
    /// Input messages no worker has taken yet, and taken but not acked.
    pub workers_pending: u64,
    pub workers_in_flight: u64,
    /// Analyzed records waiting for the assigner.
    pub analyzed_waiting: u64,
}

/// [`Broker::progress`] from synchronous code.
pub fn progress_of(url: &str) -> Result<Progress, ClusterError> {
    crate::runtime()?.block_on(async { Broker::connect(url).await?.progress().await })
}

impl Broker {
    /// The streams' and consumers' counts (creating nothing that is
    /// missing: a count of a missing stream or consumer is 0).
    pub async fn progress(&self) -> Result<Progress, ClusterError> {
        let mut p = Progress::default();
        if let Ok(mut s) = self.js.get_stream(IN_STREAM).await {
            let info = s.info().await.map_err(|e| ClusterError::Broker(format!("reading {IN_STREAM}: {e}")))?;
            (p.in_first, p.in_last) = (info.state.first_sequence, info.state.last_sequence);
            if let Ok(c) = s.consumer_info(WORKERS).await {
                p.workers_pending = c.num_pending;
                p.workers_in_flight = c.num_ack_pending as u64;
            }
        }
        if let Ok(mut s) = self.js.get_stream(ANALYZED_STREAM).await {
            let info = s.info().await.map_err(|e| ClusterError::Broker(format!("reading {ANALYZED_STREAM}: {e}")))?;
            p.analyzed_waiting = info.state.messages;
        }
        Ok(p)
    }
}
