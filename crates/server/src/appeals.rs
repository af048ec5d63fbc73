//! Appeals: the public explanation page of a blocked number or campaign
//! (`GET /explain/{number or campaign}`: which rule, which evidence, how to
//! appeal; never other people's messages or recipients), the public
//! `POST /v1/appeals` to open one, and the reviewers' `GET /v1/appeals`
//! and `POST /v1/appeals/{id}/decision` (`admin`). Decisions go to the
//! append-only audit log; an overturn adds an allow rule (a new policy
//! version) that takes effect at once.

use std::fmt::Write as _;
use textwatch_store::time::now_ms;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use textwatch_sinks::markup::esc;
use textwatch_store::appeals::{Decided, SubjectKind};

use super::state::{ApiError, Caller, Shared};
use crate::error::ServerError;

#[derive(Deserialize, Default)]
struct OpenBody {
    number: Option<String>,
    campaign: Option<String>,
    contact: Option<String>,
    reason: Option<String>,
}

/// `POST /v1/appeals`: public (a blocked sender has no token), JSON or a
/// form (the explanation page's). Rate-limited for everyone together.
pub async fn open(State(st): State<Shared>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let form = ct.starts_with("application/x-www-form-urlencoded");
    let b: OpenBody = if form {
        let f = crate::bodies::form(&body)?;
        let get = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).filter(|v| !v.trim().is_empty());
        OpenBody { number: get("number"), campaign: get("campaign"), contact: get("contact"), reason: get("reason") }
    } else if ct.starts_with("application/json") {
        serde_json::from_slice(&body).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("body: {e}")))?
    } else {
        return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "send JSON or a form"));
    };
    let bad = |m: &str| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m.to_string());
    let contact =
        b.contact.filter(|c| !c.trim().is_empty()).ok_or_else(|| bad("`contact`: how can a reviewer reach you?"))?;
    let reason = b.reason.filter(|c| !c.trim().is_empty()).ok_or_else(|| bad("`reason`: why is the block wrong?"))?;
    if contact.chars().count() > 200 || reason.chars().count() > 4000 {
        return Err(bad("`contact` is at most 200 characters and `reason` 4,000"));
    }
    let (kind, subject) = match (b.number, b.campaign) {
        (Some(n), None) => {
            let n = textwatch_engine::sender::normalize_address(&n);
            if n.is_empty() || n.chars().count() > 32 {
                return Err(bad("`number`: a phone number, short code or sender id"));
            }
            (SubjectKind::Number, n)
        }
        (None, Some(c)) => {
            let id = st
                .read(|s| Ok(s.resolve_campaign(&c)?))
                .ok()
                .flatten()
                .ok_or_else(|| bad("`campaign`: no such campaign"))?;
            (SubjectKind::Campaign, id)
        }
        _ => return Err(bad("give `number` or `campaign` (one of them)")),
    };
    {
        // One bucket for every unauthenticated caller: 1 appeal a second,
        // bursts of 20.
        let mut b = st.public_bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64()).min(20.0);
        b.at = now;
        if b.tokens < 1.0 {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many appeals right now; try again in a minute",
            )
            .with_header(header::RETRY_AFTER, "60"));
        }
        b.tokens -= 1.0;
    }
    let (db, subj, cont, why) = (st.db.clone(), subject.clone(), contact.clone(), reason.clone());
    let id = tokio::task::spawn_blocking(move || -> Result<i64, ServerError> {
        let mut w = db.open_existing()?;
        Ok(w.open_appeal(now_ms(), kind, &subj, &cont, &why, "public")?)
    })
    .await
    .map_err(|e| ServerError::Internal(e.to_string()))??;
    if form {
        let page = format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Appeal {id} received</title></head>\
             <body><h1>Appeal {id} received</h1><p>A reviewer will look at the block of {} <code>{}</code> and answer at {}.</p></body></html>",
            kind.as_str(),
            esc(&subject),
            esc(&contact)
        );
        return Ok((StatusCode::CREATED, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response());
    }
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"id": id, "state": "open", "subject_kind": kind, "subject": subject})),
    )
        .into_response())
}

/// `GET /v1/appeals` (`admin`): every appeal and the audit log.
pub async fn list(
    State(st): State<Shared>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require("admin")?;
    let v = st.read(|s| {
        Ok(serde_json::json!({"appeals": s.appeals()?, "audit": s.audit_log()?, "allows": s.policy_allows()?}))
    })?;
    Ok(Json(v))
}

#[derive(Deserialize)]
struct DecisionBody {
    decision: String,
    reason: String,
}

/// `POST /v1/appeals/{id}/decision` (`admin`): `{"decision": "uphold" |
/// "overturn", "reason": "..."}`.
pub async fn decide(
    State(st): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require("admin")?;
    let id: i64 = id.parse().map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "no such appeal"))?;
    let b: DecisionBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("body: {e} (send {{\"decision\": \"uphold\" or \"overturn\", \"reason\": \"...\"}})"),
        )
    })?;
    let overturn = match b.decision.as_str() {
        "overturn" => true,
        "uphold" => false,
        other => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("decision {other:?}: uphold or overturn"),
            ))
        }
    };
    if b.reason.trim().is_empty() {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "a decision needs a reason"));
    }
    let by = format!("token {}", caller.id);
    let db = st.db.clone();
    let reason = b.reason.clone();
    let decided = tokio::task::spawn_blocking(move || -> Result<Decided, textwatch_store::StoreError> {
        let mut w = db.open_existing()?;
        w.decide_appeal(id, overturn, &by, &reason, now_ms())
    })
    .await
    .map_err(|e| ServerError::Internal(e.to_string()))?;
    let out = match decided {
        Ok(o) => o,
        Err(textwatch_store::StoreError::Absent(m)) => return Err(ApiError::new(StatusCode::NOT_FOUND, m)),
        Err(textwatch_store::StoreError::Conflict(m)) => return Err(ApiError::new(StatusCode::CONFLICT, m)),
        Err(e) => return Err(ServerError::from(e).into()),
    };
    refresh_allows(&st)?;
    Ok(Json(match out {
        Decided::Upheld => serde_json::json!({"id": id, "state": "upheld"}),
        Decided::Overturned { version } => {
            serde_json::json!({"id": id, "state": "overturned", "policy_version": version})
        }
    }))
}

/// Reloads the allow rules into the server's enricher (and forgets cached
/// verdicts), so a decision takes effect at once.
pub(super) fn refresh_allows(st: &Shared) -> Result<(), ApiError> {
    let allows = st.read(|s| Ok(textwatch_sinks::enrich::Allows::load(s)?))?;
    let mut e = st.enricher.write().unwrap_or_else(|e| e.into_inner());
    if e.allows.version != allows.version {
        e.allows = allows;
        drop(e);
        st.forget_verdicts();
    }
    Ok(())
}

/// `GET /explain/{subject}`: public. For a number or a campaign: whether
/// it is blocked, by which rule, on what evidence (the campaign's own
/// template and the rules it breaks; no message of anyone else, no
/// recipient), appeals so far, and a form to appeal.
pub async fn explain(State(st): State<Shared>, Path(subject): Path<String>) -> Result<Response, ApiError> {
    let st2 = st.clone();
    let page = tokio::task::spawn_blocking(move || -> Result<Option<String>, ApiError> {
        let enricher = st2.enricher();
        let page = st2.read(|s| {
            let is_campaign = subject.len() >= 6 && subject.bytes().all(|b| b.is_ascii_hexdigit());
            let number = textwatch_engine::sender::normalize_address(&subject);
            let (kind, key, campaigns): (SubjectKind, String, Vec<String>) =
                match is_campaign.then(|| s.resolve_campaign(&subject)).transpose()?.flatten() {
                    Some(id) => (SubjectKind::Campaign, id.clone(), vec![id]),
                    None => {
                        let act = s.sender_activity(&number)?;
                        let ids = act.campaigns.iter().filter_map(|c| s.resolve_campaign(&c.campaign).ok().flatten()).collect();
                        (SubjectKind::Number, number.clone(), ids)
                    }
                };
            // Only numbers that send for a campaign: a page for any number
            // textwatch has seen would tell strangers who texts.
            if campaigns.is_empty() {
                return Ok(None);
            }
            let mut o = String::new();
            let title = format!("{} {}", if kind == SubjectKind::Number { "Number" } else { "Campaign" }, key);
            let _ = write!(
                o,
                "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>textwatch: {t}</title>\
                 <style>body{{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}}\
                 .state{{font-weight:bold}}.blocked{{color:#b00020}}.allowed{{color:#2a7a2a}}code{{background:#f4f4f4;padding:0 .2rem}}\
                 label{{display:block;margin:.5rem 0}}input,textarea{{width:100%}}</style></head><body><h1>{t}</h1>",
                t = esc(&title)
            );
            let number_allow = (kind == SubjectKind::Number).then(|| enricher.allows.numbers.get(&key)).flatten();
            let mut any_block = false;
            for id in &campaigns {
                let Some(mut sum) = s.campaign(id, 0)?.map(|d| d.summary) else { continue };
                let senders = textwatch_sinks::enrich::summary_senders(&sum);
                enricher.enrich(&mut sum, &senders);
                let Some(d) = &sum.decision else { continue };
                let blocked = d.action == textwatch_engine::policy::Action::Block && number_allow.is_none();
                any_block |= blocked;
                let _ = write!(
                    o,
                    "<section class=\"campaign\"><h2>Campaign <code>{}</code></h2><p class=\"state {}\">{}</p>\
                     <p>Policy rule <code>{}</code>: {}</p><p>The campaign's text, with the parts that vary between messages as slots:</p>\
                     <blockquote><code class=\"template\">{}</code></blockquote><h3>Rules it breaks</h3><ul>",
                    esc(&sum.id),
                    if blocked { "blocked" } else { "allowed" },
                    if blocked { "Blocked" } else { "Not blocked" },
                    esc(&number_allow.map(|a| format!("appeal-{}", a.appeal)).unwrap_or_else(|| d.rule.clone())),
                    esc(&number_allow
                        .map(|a| format!("appeal {} overturned: {}", a.appeal, a.reason))
                        .unwrap_or_else(|| d.reasons.join("; "))),
                    esc(&sum.template),
                );
                for f in &sum.findings {
                    // Evidence from the campaign's text, or a fact; not
                    // counts of other people's messages.
                    let _ = write!(
                        o,
                        "<li><code>{}</code> ({}): {}</li>",
                        esc(&f.rule),
                        esc(&format!("{:?}", f.severity).to_lowercase()),
                        esc(&f.example.excerpt)
                    );
                }
                o.push_str("</ul></section>");
            }
            let appeals: Vec<_> = s.appeals()?.into_iter().filter(|a| a.subject == key).collect();
            if !appeals.is_empty() {
                o.push_str("<section id=\"appeals\"><h2>Appeals</h2><ul>");
                for a in &appeals {
                    let _ = write!(
                        o,
                        "<li>Appeal {} ({}): <span class=\"appeal-state\">{}</span>{}</li>",
                        a.id,
                        esc(&textwatch_store::time::format_ts(a.opened_at)),
                        esc(&a.state),
                        a.decision_reason.as_deref().map(|r| format!(" &mdash; {}", esc(r))).unwrap_or_default()
                    );
                }
                o.push_str("</ul></section>");
            }
            let field = if kind == SubjectKind::Number { "number" } else { "campaign" };
            let _ = write!(
                o,
                "<section id=\"appeal\"><h2>{}</h2><p>If you send these texts and the block is wrong (for example, your recipients \
                 opted in), say why and how to reach you. A reviewer decides; the decision and its reason are kept.</p>\
                 <form method=\"post\" action=\"/v1/appeals\"><input type=\"hidden\" name=\"{field}\" value=\"{}\">\
                 <label>Contact (e-mail or phone) <input name=\"contact\" required maxlength=\"200\"></label>\
                 <label>Why the block is wrong <textarea name=\"reason\" required maxlength=\"4000\" rows=\"5\"></textarea></label>\
                 <button type=\"submit\">Appeal</button></form></section></body></html>",
                if any_block { "Appeal this block" } else { "Appeal" },
                esc(&key)
            );
            Ok(Some(o))
        })?;
        Ok(page)
    })
    .await
    .map_err(|e| ServerError::Internal(e.to_string()))??;
    match page {
        Some(p) => Ok((
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"),
            ],
            p,
        )
            .into_response()),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "textwatch knows nothing about this number or campaign")),
    }
}
