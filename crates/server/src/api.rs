//! The `/v1` handlers.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::stream::Stream;
use serde::{Deserialize, Serialize};
use textwatch_engine::{Message, Peek, Scratch};
use textwatch_store::CampaignQuery;

use super::state::{ApiError, Caller, Shared, TemplateVerdict};
use crate::error::{Result, ServerError};

/// The request's Content-Type, or "".
fn content_type(headers: &HeaderMap) -> &str {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Records in one ingest request, at most.
const MAX_RECORDS: usize = 50_000;

#[derive(Serialize)]
struct RecordError {
    /// 1-based position in the array, or line in NDJSON.
    record: u64,
    error: String,
}

#[derive(Serialize)]
struct IngestReply {
    accepted: usize,
    duplicates: usize,
    /// Records a phone sent (`direction: inbound`): opt-out keywords
    /// handled and other texts, none stored as messages (left out when
    /// none).
    #[serde(skip_serializing_if = "is_zero")]
    keywords: usize,
    /// With `serve --nats`: stored on the cluster's input stream, to be
    /// assigned by the workers (left out when none).
    #[serde(skip_serializing_if = "is_zero")]
    queued: usize,
    rejected: usize,
    errors: Vec<RecordError>,
    results: Vec<super::worker::RecordResult>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A record that a recipient sent (`"direction": "inbound"`): its opt-out
/// keywords change state instead of being stored.
fn inbound(m: &Message) -> bool {
    m.meta.as_deref().is_some_and(|meta| {
        meta.contains("direction")
            && serde_json::from_str::<serde_json::Value>(meta)
                .ok()
                .and_then(|v| v.get("direction").and_then(|d| d.as_str()).map(|d| d.eq_ignore_ascii_case("inbound")))
                .unwrap_or(false)
    })
}

/// Hands decoded messages to the worker and waits for the commit.
pub(super) async fn submit(
    st: &Shared,
    messages: Vec<(Message, String)>,
) -> Result<Vec<super::worker::RecordResult>, ApiError> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(broker) = &st.broker {
        // --nats: stored once JetStream has it; workers assign it later.
        let seqs = textwatch_cluster::publish::publish_messages(broker, &messages).await.map_err(|e| {
            tracing::error!(error = %e, "ingest");
            st.metrics.broker_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("not stored: {e}"))
                .with_header(header::RETRY_AFTER, "5")
        })?;
        st.metrics.messages_published.fetch_add(seqs.len() as u64, std::sync::atomic::Ordering::Relaxed);
        return Ok(messages
            .iter()
            .enumerate()
            .map(|(i, (m, _))| super::worker::RecordResult {
                id: m.id.clone().unwrap_or_else(|| format!("record-{}", i + 1)),
                status: "queued",
                campaign: None,
            })
            .collect());
    }
    st.run_job(|reply| super::worker::Job::Messages { messages, reply }).await
}

/// `POST /v1/messages`: stores messages; answers after they are committed.
pub async fn ingest(
    State(st): State<Shared>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require("ingest")?;
    let recs = crate::bodies::records(content_type(&headers), &body)?;
    if recs.len() > MAX_RECORDS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{} records; at most {MAX_RECORDS} per request", recs.len()),
        ));
    }
    let file: std::sync::Arc<str> = std::sync::Arc::from(format!("api:token-{}", caller.id));
    let mut errors = Vec::new();
    let mut messages = Vec::with_capacity(recs.len());
    let mut keywords = Vec::new();
    for (n, raw) in recs {
        match textwatch_sources::jsonl::decode_line(&file, n, &raw) {
            Ok(m) if inbound(&m) => match super::optout::handle_inbound(
                &st,
                &m.from,
                m.to.as_deref().unwrap_or(""),
                &m.body,
                m.ts_ms,
                "api:inbound",
            )
            .await
            {
                Ok(Some(h)) => keywords.push(super::worker::RecordResult {
                    id: m.id.clone().unwrap_or_else(|| format!("record-{n}")),
                    status: match h.keyword {
                        textwatch_engine::optout::Keyword::Out => "opted-out",
                        textwatch_engine::optout::Keyword::In => "opted-in",
                        textwatch_engine::optout::Keyword::Help => "help",
                    },
                    campaign: None,
                }),
                // Any other text a phone sends: not stored (its sender is
                // a person whose number is kept only as a keyed hash).
                Ok(None) => keywords.push(super::worker::RecordResult {
                    id: m.id.clone().unwrap_or_else(|| format!("record-{n}")),
                    status: "inbound",
                    campaign: None,
                }),
                Err(e) if e.status() == StatusCode::BAD_REQUEST => {
                    errors.push(RecordError { record: n, error: e.message().to_string() })
                }
                Err(e) => return Err(e),
            },
            Ok(m) => messages.push((m, format!("{file}:{n}"))),
            Err(e) => errors.push(RecordError { record: n, error: e.reason }),
        }
    }
    st.metrics.messages_rejected.fetch_add(errors.len() as u64, std::sync::atomic::Ordering::Relaxed);
    let mut results = submit(&st, messages).await?;
    results.extend(keywords);
    let accepted = results.iter().filter(|r| r.status == "accepted").count();
    let duplicates = results.iter().filter(|r| r.status == "duplicate").count();
    let queued = results.iter().filter(|r| r.status == "queued").count();
    let keywords = results.len() - accepted - duplicates - queued;
    let reply = IngestReply { accepted, duplicates, keywords, queued, rejected: errors.len(), errors, results };
    let status = if reply.rejected > 0 && accepted + reply.duplicates + reply.keywords + reply.queued == 0 {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, Json(reply)).into_response())
}

/// A verdict.
#[derive(Serialize)]
pub struct Verdict {
    pub id: String,
    pub action: &'static str,
    pub rule: String,
    pub scope: textwatch_engine::policy::Scope,
    pub reasons: Vec<String>,
    pub risk: u8,
    pub category: Option<String>,
    /// The category's second level (docs/rules.md#categories).
    pub subcategory: Option<String>,
    pub findings: Vec<textwatch_engine::Finding>,
    pub campaign: Option<String>,
    pub template_key: String,
}

/// How long a cached template verdict is trusted: campaigns grow, so the
/// campaign's decision is looked up again after this.
const VERDICT_TTL: Duration = Duration::from_secs(2);

/// The campaign context for `check`, cached per campaign for
/// [`VERDICT_TTL`]: big campaigns are costly to enrich.
fn campaign_context(st: &Shared, id: &str) -> Result<Option<textwatch_sinks::views::CampaignContext>, ApiError> {
    if let Some((at, c)) = st.campaign_ctx.lock().unwrap_or_else(|e| e.into_inner()).get(id) {
        if at.elapsed() < VERDICT_TTL {
            return Ok(c.clone());
        }
    }
    let enricher = st.enricher();
    let c = st.read(|s| Ok(textwatch_sinks::views::campaign_context(&enricher, s, id)?))?;
    let mut cache = st.campaign_ctx.lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() > 100_000 {
        cache.clear();
    }
    cache.insert(id.to_string(), (Instant::now(), c.clone()));
    Ok(c)
}

/// Judges one message (without storing it).
pub(super) fn verdict(st: &Shared, msg: Message) -> Result<Verdict, ApiError> {
    let a = st.analyzer.analyze(msg, &mut Scratch::default());
    let cached = st
        .verdicts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&a.template_key)
        .and_then(|(at, v)| (at.elapsed() < VERDICT_TTL).then(|| v.clone()));
    let base = match cached {
        Some(v) => v,
        None => {
            let findings = st.rules.evaluate_message(&a.msg.body, &a.template, &a.features.links);
            let risk = textwatch_engine::rules::risk(findings.iter().map(|f| &f.severity), 1);
            let (category, subcategory) =
                textwatch_sinks::views::category_of(&st.rules, &findings, st.model.as_ref(), &a);
            let campaign =
                match st.engine.read().map_err(|_| ServerError::Internal("engine lock poisoned".into()))?.peek(&a) {
                    Peek::ExactCampaign { campaign } | Peek::NearCampaign { campaign, .. } => Some(campaign),
                    _ => None,
                };
            let ctx = match &campaign {
                Some(id) => campaign_context(st, id)?,
                None => None,
            };
            let decision = textwatch_sinks::views::decide_message(
                &st.enricher(),
                &findings,
                category.as_deref(),
                subcategory.as_deref(),
                risk,
                &a.sender,
                ctx.as_ref(),
            );
            let v = TemplateVerdict { findings, category, subcategory, campaign, ctx, decision, risk };
            let mut cache = st.verdicts.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() > 100_000 {
                cache.clear();
            }
            cache.insert(a.template_key, (Instant::now(), v.clone()));
            v
        }
    };
    let own: Vec<textwatch_engine::Finding> = textwatch_sinks::enrich::sender_finding(&a.sender)
        .into_iter()
        .chain(textwatch_sinks::views::quiet_finding(&st.rules, &a, base.category.as_deref(), base.campaign.is_some()))
        .collect();
    let v = if own.is_empty() {
        base
    } else {
        let mut findings = base.findings.clone();
        findings.extend(own);
        let risk = textwatch_engine::rules::risk(findings.iter().map(|f| &f.severity), 1);
        let decision = textwatch_sinks::views::decide_message(
            &st.enricher(),
            &findings,
            base.category.as_deref(),
            base.subcategory.as_deref(),
            risk,
            &a.sender,
            base.ctx.as_ref(),
        );
        TemplateVerdict { findings, risk, decision, ..base }
    };
    // A number whose appeal was overturned: allowed, whatever others who
    // send the same text get (so not cached per template).
    let v = match textwatch_sinks::views::number_allowed(&st.enricher(), &a.sender) {
        Some(decision) => TemplateVerdict { decision, ..v },
        None => v,
    };
    // A recipient who opted out of this number or campaign gets nothing
    // from it, whatever the content.
    let v = match super::optout::forbidding(st, &a, v.campaign.as_deref()) {
        Some(c) => {
            st.metrics.optout_refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut findings = v.findings.clone();
            findings.insert(0, super::optout::finding(&c));
            let decision = textwatch_engine::policy::Decision {
                action: textwatch_engine::policy::Action::Block,
                scope: textwatch_engine::policy::Scope::Message,
                rule: super::optout::RULE.into(),
                reasons: vec![super::optout::REASON.into()],
            };
            let risk = textwatch_engine::rules::risk(findings.iter().map(|f| &f.severity), 1);
            TemplateVerdict { findings, decision, risk, ..v }
        }
        None => v,
    };
    st.metrics.verdict(v.decision.action.as_str());
    Ok(Verdict {
        id: a.display_id(),
        action: v.decision.action.as_str(),
        rule: v.decision.rule.clone(),
        scope: v.decision.scope,
        reasons: v.decision.reasons.clone(),
        risk: v.risk,
        category: v.category,
        subcategory: v.subcategory,
        findings: v.findings,
        campaign: v.campaign,
        template_key: format!("{:016x}", a.template_key),
    })
}

/// `POST /v1/check`: one message in the scan format, one verdict out.
pub async fn check(
    State(st): State<Shared>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Verdict>, ApiError> {
    caller.require("check")?;
    let recs = crate::bodies::records(content_type(&headers), &body)?;
    if recs.len() != 1 || !body.trim_ascii_start().starts_with(b"{") {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "send one message as a JSON object"));
    }
    let file: std::sync::Arc<str> = std::sync::Arc::from("check");
    let msg = textwatch_sources::jsonl::decode_line(&file, 1, &recs[0].1)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.reason))?;
    Ok(Json(verdict(&st, msg)?))
}

#[derive(Deserialize)]
pub struct ListQuery {
    /// Campaigns seen at or after this time (RFC 3339).
    since: Option<String>,
    category: Option<String>,
    min_risk: Option<u8>,
    finding: Option<String>,
    action: Option<String>,
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
    min_messages: Option<u64>,
}

#[derive(Serialize)]
struct Page<T> {
    total: usize,
    offset: usize,
    limit: usize,
    items: Vec<T>,
}

/// A campaign as listed, with a sparkline of its last 24 hours.
#[derive(Serialize)]
struct ListedCampaign {
    #[serde(flatten)]
    summary: textwatch_store::CampaignSummary,
    /// Messages per hour over the campaign's last 24 hours of activity.
    trend: Vec<u64>,
}

/// `GET /v1/campaigns`
pub async fn campaigns(
    State(st): State<Shared>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require("read")?;
    let since = match &q.since {
        Some(s) => Some(
            textwatch_sources::time::parse_ts(s)
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("since: {e}")))?,
        ),
        None => None,
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let st2 = st.clone();
    let page = tokio::task::spawn_blocking(move || -> Result<serde_json::Value> {
        let enricher = st2.enricher();
        st2.read(|s| {
            let mut query = CampaignQuery {
                min_messages: q.min_messages.unwrap_or(2),
                last_seen_since: since,
                category: q.category.clone(),
                ..Default::default()
            };
            // Risk, findings and the policy's action depend on the sender
            // context (attribution, blocked numbers), so those filters need
            // every matching campaign enriched; without them the database
            // pages and only the page is enriched.
            let needs_context = q.min_risk.is_some() || q.finding.is_some() || q.action.is_some();
            let (total, page) = if needs_context {
                let filtered: Vec<_> = textwatch_sinks::views::enriched_campaigns(s, &enricher, &query)?
                    .into_iter()
                    .filter(|c| q.min_risk.is_none_or(|r| c.risk.unwrap_or(0) >= r))
                    .filter(|c| q.finding.as_ref().is_none_or(|f| c.findings.iter().any(|x| &x.rule == f)))
                    .filter(|c| {
                        q.action.as_ref().is_none_or(|a| c.decision.as_ref().is_some_and(|d| d.action.as_str() == a))
                    })
                    .collect();
                (filtered.len(), filtered.into_iter().skip(q.offset).take(limit).collect::<Vec<_>>())
            } else {
                let total = s.count_campaigns(&query)? as usize;
                (query.offset, query.limit) = (q.offset, Some(limit));
                (total, textwatch_sinks::views::enriched_campaigns(s, &enricher, &query)?)
            };
            let mut items = Vec::new();
            for mut c in page {
                c.senders.truncate(50);
                let trend = s.campaign(&c.id, 0)?.map(|d| hourly(&d.timeline)).unwrap_or_default();
                items.push(ListedCampaign { summary: c, trend });
            }
            Ok(serde_json::to_value(Page { total, offset: q.offset, limit, items })?)
        })
    })
    .await
    .map_err(|e| ServerError::Internal(e.to_string()))??;
    Ok(Json(page))
}

fn hourly(minutes: &[textwatch_store::views::MinuteView]) -> Vec<u64> {
    let Some(last) = minutes.last() else { return Vec::new() };
    let end = last.minute / 3_600_000;
    let mut v = vec![0u64; 24];
    for m in minutes {
        let h = m.minute / 3_600_000;
        if end - h < 24 {
            v[(23 - (end - h)) as usize] += m.messages;
        }
    }
    v
}

/// `GET /v1/campaigns/{id}`
pub async fn campaign(
    State(st): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require("read")?;
    let st2 = st.clone();
    let r = tokio::task::spawn_blocking(move || {
        let enricher = st2.enricher();
        st2.read(|s| {
            let Some(d) = textwatch_sinks::views::enriched_campaign(s, &enricher, &id, 20)? else { return Ok(None) };
            let mut v = serde_json::to_value(&d)?;
            let senders: std::collections::HashMap<String, String> =
                d.sender_stats.iter().map(|x| (x.sender.clone(), enricher.dir.attribute(&x.sender).to_string())).collect();
            v["attribution"] = serde_json::to_value(senders)?;
            let dos = textwatch_sinks::report::dossier(s, &enricher, &d.summary.id, 0)?;
            if let Some(dos) = dos {
                v["chart"] = serde_json::json!({
                    "start": textwatch_store::time::format_ts(dos.timeline.start),
                    "width_minutes": dos.timeline.width_ms / 60_000,
                    "series": dos.timeline.series.iter().map(|(l, c)| serde_json::json!({"label": l, "counts": c})).collect::<Vec<_>>(),
                });
            }
            Ok(Some(v))
        })
    })
    .await
    .map_err(|e| ServerError::Internal(e.to_string()))??;
    r.map(Json).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such campaign"))
}

#[derive(Deserialize)]
pub struct ReportQuery {
    format: Option<String>,
    provider: Option<String>,
}

/// `GET /v1/campaigns/{id}/report?format=xarf|stix|html|md`
pub async fn report(
    State(st): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    caller.require("read")?;
    let format = q.format.unwrap_or_else(|| "html".into());
    let st2 = st.clone();
    let r: Option<(String, &'static str, String)> = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let enricher = st2.enricher();
        let dos = st2.read(|s| {
            let Some(mut dos) = textwatch_sinks::report::dossier(s, &enricher, &id, 10)? else { return Ok(None) };
            dos.followups = textwatch_sinks::followup::for_campaign(s, &dos.d.summary.id, &Default::default())?;
            Ok(Some(dos))
        })?;
        let Some(mut dos) = dos else { return Ok(None) };
        if let Some(p) = &q.provider {
            dos.parts.retain(|x| x.group.name.eq_ignore_ascii_case(p));
        }
        let cid = dos.d.summary.id.clone();
        Ok(Some(match format.as_str() {
            "xarf" => {
                let reports = textwatch_sinks::report::xarf(&dos, &st2.reporter)
                    .map_err(|e| ApiError::new(StatusCode::CONFLICT, format!("{e:#}")))?;
                let v = if q.provider.is_some() {
                    reports.into_iter().next().unwrap_or_default()
                } else {
                    serde_json::Value::Array(reports)
                };
                (serde_json::to_string_pretty(&v).unwrap_or_default(), "application/json", format!("{cid}.xarf.json"))
            }
            "stix" => (
                serde_json::to_string_pretty(&textwatch_sinks::report::stix(&dos, &st2.reporter)).unwrap_or_default(),
                "application/json",
                format!("{cid}.stix.json"),
            ),
            "html" => (textwatch_sinks::report::html(&dos), "text/html; charset=utf-8", format!("{cid}.html")),
            "md" => (textwatch_sinks::report::markdown(&dos), "text/markdown; charset=utf-8", format!("{cid}.md")),
            other => {
                return Err(ApiError::new(StatusCode::BAD_REQUEST, format!("format {other:?}: xarf, stix, html or md")))
            }
        }))
    })
    .await
    .map_err(|e| ServerError::Internal(e.to_string()))??;
    let Some((body, ct, name)) = r else { return Err(ApiError::new(StatusCode::NOT_FOUND, "no such campaign")) };
    Ok((
        [(header::CONTENT_TYPE, ct.to_string()), (header::CONTENT_DISPOSITION, format!("inline; filename=\"{name}\""))],
        body,
    )
        .into_response())
}

#[derive(Deserialize, Default)]
pub struct BlockBody {
    reason: Option<String>,
}

/// `POST /v1/campaigns/{id}/block` (admin): the kill switch.
pub async fn block(
    State(st): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require("admin")?;
    let b: BlockBody = if body.is_empty() {
        BlockBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("body: {e}")))?
    };
    let full = st
        .read(|s| Ok(s.resolve_campaign(&id)?))?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such campaign"))?;
    let reason =
        format!("blocked by hand (token {}): {}", caller.id, b.reason.unwrap_or_else(|| "no reason given".into()));
    let at = textwatch_store::time::now_ms();
    let mut w = st.db.open_existing().map_err(ServerError::from)?;
    w.block_campaign(&full, at, &format!("token {}", caller.id), &reason).map_err(ServerError::from)?;
    st.enricher.write().unwrap_or_else(|e| e.into_inner()).blocked.insert(full.clone(), reason.clone());
    st.forget_verdicts();
    let ev = serde_json::json!({"type": "campaign-blocked", "campaign": full, "reason": reason});
    let _ = st.events.send(ev.to_string());
    Ok(Json(ev))
}

/// `GET /v1/numbers/{e164}`
pub async fn number(
    State(st): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(n): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require("read")?;
    let enricher = st.enricher().clone();
    let v = st.read(|s| Ok(serde_json::to_value(textwatch_sinks::views::number_view(s, &enricher.dir, &n)?)?))?;
    Ok(Json(v))
}

#[derive(Deserialize)]
pub struct BlocklistQuery {
    format: Option<String>,
    /// Only campaigns of this category (a category, `category/subcategory`
    /// or a subcategory; comma-separated for several).
    category: Option<String>,
}

/// `GET /v1/blocklist?format=json|csv`
pub async fn blocklist(
    State(st): State<Shared>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<BlocklistQuery>,
) -> Result<Response, ApiError> {
    caller.require("read")?;
    let st2 = st.clone();
    let categories: Vec<String> =
        q.category.as_deref().map(|c| c.split(',').map(|x| x.trim().to_string()).collect()).unwrap_or_default();
    if let Some(bad) = categories.iter().find(|c| !textwatch_engine::taxonomy::is_known(c)) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("unknown category {bad:?} (docs/rules.md#categories)"),
        ));
    }
    let entries = tokio::task::spawn_blocking(move || {
        let enricher = st2.enricher();
        st2.read(|s| Ok(textwatch_sinks::blocklist::blocklist_entries(s, &enricher, &categories)?))
    })
    .await
    .map_err(|e| ServerError::Internal(e.to_string()))??;
    match q.format.as_deref().unwrap_or("json") {
        "csv" => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let _ = w.write_record(["type", "value", "campaign", "reason"]);
            for b in &entries {
                let _ = w.write_record([b.kind, &b.value, &b.campaign, &b.reason]);
            }
            let body = w.into_inner().map_err(|e| ServerError::Internal(e.to_string()))?;
            Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response())
        }
        "json" => Ok(Json(entries).into_response()),
        other => Err(ApiError::new(StatusCode::BAD_REQUEST, format!("format {other:?}: json or csv"))),
    }
}

/// `GET /v1/events`: server-sent events (`campaign-created`,
/// `campaign-alert`, `campaign-blocked`), each a JSON object.
pub async fn events(
    State(st): State<Shared>,
    Extension(caller): Extension<Caller>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require("read")?;
    let rx = st.events.subscribe();
    // The stream ends when the server stops, or the server would wait for
    // its clients to hang up.
    let stream = futures_util::stream::unfold((rx, st.stopping.clone()), |(mut rx, mut stopping)| async move {
        let got = tokio::select! {
            got = rx.recv() => got,
            _ = stopping.wait_for(|s| *s) => return None,
        };
        let ev = match got {
            Ok(data) => {
                let kind = serde_json::from_str::<serde_json::Value>(&data)
                    .ok()
                    .and_then(|v| v["type"].as_str().map(str::to_string))
                    .unwrap_or_else(|| "message".into());
                Event::default().event(kind).data(data)
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                Event::default().event("lagged").data(format!("{{\"type\":\"lagged\",\"missed\":{n}}}"))
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(ev), (rx, stopping)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// `GET /metrics` (any scope).
pub async fn metrics(State(st): State<Shared>) -> Response {
    let (c, m, k) =
        st.engine.read().map(|e| (e.campaigns(), e.messages_seen(), e.dedup_keys_held())).unwrap_or((0, 0, 0));
    let mut body = st.metrics.render(c, m, k);
    let st2 = st.clone();
    body.push_str(&tokio::task::spawn_blocking(move || super::followups::metrics(&st2)).await.unwrap_or_default());
    body.push_str(&format!("# HELP textwatch_uptime_seconds Seconds since start.\n# TYPE textwatch_uptime_seconds gauge\ntextwatch_uptime_seconds {}\n", st.started.elapsed().as_secs()));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

#[allow(dead_code)]
fn _assert_send(_: Arc<super::state::AppState>) {}
