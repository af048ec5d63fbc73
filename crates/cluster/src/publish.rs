//! `textwatch publish`: files onto `TEXTWATCH_IN`, read and checked by the
//! same decoders `scan` uses, in file order. A message counts as published
//! once JetStream has acknowledged storing it.

use std::collections::VecDeque;

use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use textwatch_sources::{Chunk, Reject};

use crate::broker::{Broker, IN_SUBJECT};
use crate::{wire, ClusterError};

/// Publishes awaiting their acknowledgement at most.
const IN_FLIGHT: usize = 4096;

/// What `publish` tells its caller as it goes.
pub enum Event<'a> {
    Started {
        name: &'a str,
    },
    /// A file could not be opened or read to its end.
    FileFailed(&'a str),
    Rejected(&'a Reject),
    /// Every chunk (about 16k records).
    Progress {
        bytes: u64,
        records: u64,
        published: u64,
    },
}

/// Counts of a publish.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Published {
    pub files: u64,
    pub files_failed: u64,
    pub records: u64,
    /// Acknowledged by JetStream.
    pub published: u64,
    pub rejected: u64,
    /// The stream sequences of the first and last message published.
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
}

/// Publishes every message of `files` (`-` is standard input) to
/// `TEXTWATCH_IN`, in order. Rejected records are reported through `on`
/// and not published. A broker failure stops the run: the error says how
/// many messages were acknowledged before it.
pub async fn publish(
    broker: &Broker,
    files: &[String],
    on: &mut (dyn FnMut(Event<'_>) + Send),
) -> Result<Published, ClusterError> {
    broker.in_stream().await?;
    let mut run = [0u8; 8];
    getrandom::getrandom(&mut run).map_err(|e| ClusterError::Broker(format!("no randomness for a run id: {e}")))?;
    let run = u64::from_le_bytes(run);
    let mut p = Published::default();
    let mut acks: VecDeque<PublishAckFuture> = VecDeque::with_capacity(IN_FLIGHT);
    let mut done_bytes = 0;
    for path in files {
        let mut input = match textwatch_sources::open(path) {
            Ok(i) => i,
            Err(e) => {
                p.files_failed += 1;
                on(Event::FileFailed(&e.to_string()));
                continue;
            }
        };
        p.files += 1;
        on(Event::Started { name: &input.name });
        loop {
            let chunk = match input.next_chunk() {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    p.files_failed += 1;
                    on(Event::FileFailed(&e.to_string()));
                    break;
                }
            };
            for r in decode(chunk) {
                p.records += 1;
                let (msg, origin) = match r {
                    Ok(d) => d,
                    Err(rej) => {
                        p.rejected += 1;
                        on(Event::Rejected(&rej));
                        continue;
                    }
                };
                // The id makes a retried publish of this run's record a
                // duplicate JetStream drops; a second run publishes anew
                // (and the engine counts those messages as duplicates).
                let m = PublishMessage::build()
                    .payload(wire::encode_message(&msg))
                    .header(wire::ORIGIN, origin.as_str())
                    .message_id(format!("{run:016x}-{}", p.records));
                if acks.len() >= IN_FLIGHT {
                    settle(acks.pop_front(), &mut p).await?;
                }
                let ack = broker.js.send_publish(IN_SUBJECT, m).await.map_err(|e| failed(&p, e))?;
                acks.push_back(ack);
            }
            let bytes = done_bytes + input.progress.load(std::sync::atomic::Ordering::Relaxed);
            on(Event::Progress { bytes, records: p.records, published: p.published });
        }
        done_bytes += input.size.unwrap_or_else(|| input.progress.load(std::sync::atomic::Ordering::Relaxed));
    }
    while let Some(a) = acks.pop_front() {
        settle(Some(a), &mut p).await?;
    }
    Ok(p)
}

/// Publishes `messages` (with their origins) to `TEXTWATCH_IN`, in order,
/// and waits until JetStream has stored every one; returns their
/// sequences. What `serve --nats` does with an ingest request.
pub async fn publish_messages(
    broker: &Broker,
    messages: &[(textwatch_engine::Message, String)],
) -> Result<Vec<u64>, ClusterError> {
    let mut acks = Vec::with_capacity(messages.len());
    for (m, origin) in messages {
        let pm = PublishMessage::build().payload(wire::encode_message(m)).header(wire::ORIGIN, origin.as_str());
        acks.push(
            broker
                .js
                .send_publish(IN_SUBJECT, pm)
                .await
                .map_err(|e| ClusterError::Broker(format!("publishing to {}: {e}", crate::broker::IN_STREAM)))?,
        );
    }
    let mut seqs = Vec::with_capacity(acks.len());
    for a in acks {
        let a =
            a.await.map_err(|e| ClusterError::Broker(format!("publishing to {}: {e}", crate::broker::IN_STREAM)))?;
        seqs.push(a.sequence);
    }
    Ok(seqs)
}

/// [`publish`] from synchronous code: connects to `url` and publishes.
pub fn publish_to(
    url: &str,
    files: &[String],
    on: &mut (dyn FnMut(Event<'_>) + Send),
) -> Result<Published, ClusterError> {
    crate::runtime()?.block_on(async {
        let broker = Broker::connect(url).await?;
        publish(&broker, files, on).await
    })
}

async fn settle(ack: Option<PublishAckFuture>, p: &mut Published) -> Result<(), ClusterError> {
    let Some(ack) = ack else { return Ok(()) };
    let a = ack.await.map_err(|e| failed(p, e))?;
    p.published += 1;
    p.first_seq.get_or_insert(a.sequence);
    p.last_seq = Some(a.sequence);
    Ok(())
}

fn failed(p: &Published, e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Broker(format!(
        "publishing to {}: {e} ({} messages were acknowledged before this; the rest were not published)",
        crate::broker::IN_STREAM,
        p.published
    ))
}

/// A message with its origin (`file:line`), or why it was rejected.
type Decoded = Result<(textwatch_engine::Message, String), Reject>;

/// The chunk's messages with their origins (`file:line`), or rejects, in
/// file order.
fn decode(chunk: Chunk) -> Vec<Decoded> {
    match chunk {
        Chunk::Lines { file, buf, lines, rejects } => {
            let mut out: Vec<(u64, Decoded)> = lines
                .iter()
                .map(|&(line, a, b)| {
                    (
                        line,
                        textwatch_sources::jsonl::decode_line(&file, line, &buf[a..b])
                            .map(|m| (m, format!("{file}:{line}"))),
                    )
                })
                .collect();
            out.extend(rejects.into_iter().map(|r| (r.line, Err(r))));
            out.sort_by_key(|(line, _)| *line);
            out.into_iter().map(|(_, r)| r).collect()
        }
        Chunk::Decoded { file, records } => {
            records.into_iter().map(|r| r.map(|d| (d.msg, format!("{file}:{}", d.line)))).collect()
        }
    }
}
