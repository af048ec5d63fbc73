//! `POST /v1/reports`: spam reports in. An app's report (`reporter`,
//! `sender`, `text`, `ts`) or a text forwarded to 7726 (`reporter`,
//! `body`, `ts`; the spam text, then later the number it came from) per
//! record, as a JSON array, one object, or NDJSON. Reports are stored as
//! messages with source `report`; distinct reporters count toward the
//! campaign's risk.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::{Extension, Json};
use serde::Serialize;

use super::state::{ApiError, Caller, Shared};

#[derive(Serialize)]
struct RecordError {
    record: u64,
    error: String,
}

#[derive(Serialize)]
struct ReportsReply {
    /// Reports stored as new messages.
    accepted: usize,
    /// Reports already stored (the same person, sender and text).
    duplicates: usize,
    /// Forwarded texts waiting for their number (7726's second text).
    waiting: usize,
    /// Numbers that came with no forwarded text before them.
    unpaired: usize,
    /// With `serve --nats`: reports put on the cluster's input stream,
    /// stored by the workers later (status `queued`).
    queued: usize,
    rejected: usize,
    errors: Vec<RecordError>,
    results: Vec<super::worker::RecordResult>,
}

/// Records in one request, at most.
const MAX_RECORDS: usize = 50_000;

pub async fn ingest(
    State(st): State<Shared>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    caller.require("ingest")?;
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let recs = crate::bodies::records(ct, &body)?;
    if recs.len() > MAX_RECORDS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{} records; at most {MAX_RECORDS} per request", recs.len()),
        ));
    }
    let file: std::sync::Arc<str> = std::sync::Arc::from(format!("api:reports:token-{}", caller.id));
    let mut errors = Vec::new();
    let mut records = Vec::with_capacity(recs.len());
    for (n, raw) in recs {
        match textwatch_sources::spam_reports::decode_record(&file, n, &raw) {
            Ok(r) => records.push(r),
            Err(e) => errors.push(RecordError { record: n, error: e.reason }),
        }
    }
    let outcome = if st.broker.is_some() && !records.is_empty() {
        // --nats: 7726 halves pair here (they wait in this database); the
        // reports go on the input stream as messages, and a worker stores
        // them. First halves a failed publish took are put back to wait.
        // In a task of its own, so a client that hangs up cannot stop it
        // between taking the halves and giving them back.
        let st2 = st.clone();
        tokio::spawn(async move {
            let paired = st2.run_job(|reply| super::worker::Job::PairReports { records, reply }).await?;
            let messages: Vec<_> = paired.messages.into_iter().map(|m| (m, "api:reports".to_string())).collect();
            match super::api::submit(&st2, messages).await {
                Ok(results) => {
                    Ok(super::worker::ReportsOutcome { results, waiting: paired.waiting, unpaired: paired.unpaired })
                }
                Err(e) => {
                    if !paired.taken.is_empty() {
                        let taken = paired.taken;
                        // Waits for room in the queue: a 429 here would lose them.
                        if let Err(g) = st2.run_job_waiting(|reply| super::worker::Job::GiveBack { taken, reply }).await
                        {
                            tracing::error!(error = %g, "could not put 7726 first halves back to wait");
                        }
                    }
                    Err(e)
                }
            }
        })
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("pairing reports: {e}")))??
    } else if records.is_empty() {
        super::worker::ReportsOutcome { results: Vec::new(), waiting: 0, unpaired: 0 }
    } else {
        st.run_job(|reply| super::worker::Job::Reports { records, reply }).await?
    };
    let accepted = outcome.results.iter().filter(|r| r.status == "accepted").count();
    let queued = outcome.results.iter().filter(|r| r.status == "queued").count();
    let reply = ReportsReply {
        accepted,
        duplicates: outcome.results.len() - accepted - queued,
        queued,
        waiting: outcome.waiting,
        unpaired: outcome.unpaired,
        rejected: errors.len(),
        errors,
        results: outcome.results,
    };
    let status = if reply.rejected > 0
        && reply.accepted + reply.duplicates + reply.queued + reply.waiting + reply.unpaired == 0
    {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, Json(serde_json::to_value(reply).map_err(|e| crate::error::ServerError::Internal(e.to_string()))?)))
}
