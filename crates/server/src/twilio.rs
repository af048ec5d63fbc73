//! Twilio-compatible endpoints: the inbound-message webhook (a spam-trap
//! number on Twilio feeds textwatch) and the send endpoint (textwatch as a
//! filtering gateway in front of Twilio or any compatible API).

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use hmac::{Hmac, Mac};
use textwatch_engine::Message;
use textwatch_store::time::now_ms;

use super::state::{ApiError, Caller, Shared};
use crate::error::{Result, ServerError};

fn field<'a>(f: &'a [(String, String)], name: &str) -> Option<&'a str> {
    f.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn require_form(headers: &HeaderMap) -> Result<(), ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send application/x-www-form-urlencoded, as Twilio does",
        ));
    }
    Ok(())
}

/// Twilio's webhook signature: base64(HMAC-SHA1(auth token, URL + each
/// POST parameter name and value, sorted by name)).
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    use base64::Engine as _;
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let mut data = url.to_string();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key");
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// `POST /v1/twilio/inbound`: Twilio's incoming-message webhook. With
/// `--twilio-auth-token` the `X-Twilio-Signature` must verify (403
/// otherwise); without it an `ingest` token is required. Answers with
/// empty TwiML once the message is stored.
pub async fn inbound(
    State(st): State<Shared>,
    caller: Option<Extension<Caller>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    require_form(&headers)?;
    let f = crate::bodies::form(&body)?;
    match (&st.twilio_auth_token, &caller) {
        (Some(auth), _) => {
            let base = match &st.public_url {
                Some(u) => u.trim_end_matches('/').to_string(),
                None => {
                    format!("http://{}", headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost"))
                }
            };
            let url = format!("{base}{uri}");
            let given = headers.get("x-twilio-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
            let want = twilio_signature(auth, &url, &f);
            if given.is_empty() || !constant_time_eq(given.as_bytes(), want.as_bytes()) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "X-Twilio-Signature does not verify for this URL and body",
                ));
            }
        }
        (None, Some(Extension(c))) => c.require("ingest")?,
        (None, None) => return Err(ApiError::new(StatusCode::UNAUTHORIZED, "missing token")),
    }
    let (Some(from), Some(body_text)) = (field(&f, "From"), field(&f, "Body")) else {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "the webhook needs From and Body"));
    };
    // A recipient's STOP, START or HELP changes opt-out state (Twilio's own
    // Advanced Opt-Out may answer too; the reply here is the configured
    // one, as TwiML).
    if let Some(h) =
        super::optout::handle_inbound(&st, from, field(&f, "To").unwrap_or(""), body_text, now_ms(), "twilio:inbound")
            .await?
    {
        let reply =
            h.reply.map(|r| format!("<Message>{}</Message>", textwatch_sinks::report::esc(&r))).unwrap_or_default();
        return Ok((
            [(header::CONTENT_TYPE, "text/xml")],
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>{reply}</Response>"),
        )
            .into_response());
    }
    let sid = field(&f, "MessageSid").or_else(|| field(&f, "SmsSid")).map(str::to_string);
    let mut meta = serde_json::Map::new();
    for (k, v) in &f {
        if !["From", "To", "Body", "MessageSid", "SmsSid"].contains(&k.as_str()) {
            meta.insert(k.clone(), v.clone().into());
        }
    }
    let msg = Message {
        id: sid,
        ts_ms: now_ms(),
        from: from.to_string(),
        to: field(&f, "To").map(str::to_string),
        body: body_text.to_string(),
        source: Some("twilio-inbound".into()),
        meta: if meta.is_empty() { None } else { serde_json::to_string(&meta).ok() },
    };
    super::api::submit(&st, vec![(msg, "twilio:inbound".into())]).await?;
    Ok(([(header::CONTENT_TYPE, "text/xml")], "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>")
        .into_response())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Twilio's error body.
fn twilio_error(status: StatusCode, code: u32, message: String) -> Response {
    let body = serde_json::json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, Json(body)).into_response()
}

/// `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`: the filtering
/// gateway. HTTP Basic auth as the Twilio client sends it (the password is
/// a textwatch token with `check` and `ingest`). A message the policy
/// blocks is refused (HTTP 400, Twilio error 30007, "filtered"); one that
/// passes is stored and forwarded upstream, or accepted as sent.
pub async fn send(
    State(st): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require("check")?;
    caller.require("ingest")?;
    require_form(&headers)?;
    let f = crate::bodies::form(&body)?;
    let Some(to) = field(&f, "To") else {
        return Ok(twilio_error(StatusCode::BAD_REQUEST, 21604, "A 'To' phone number is required.".into()));
    };
    let from = field(&f, "From").or_else(|| field(&f, "MessagingServiceSid"));
    let Some(from) = from else {
        return Ok(twilio_error(StatusCode::BAD_REQUEST, 21603, "A 'From' phone number is required.".into()));
    };
    let Some(text) = field(&f, "Body") else {
        return Ok(twilio_error(StatusCode::BAD_REQUEST, 21602, "Message body is required.".into()));
    };
    let sid = {
        let mut b = [0u8; 16];
        getrandom::getrandom(&mut b).map_err(|e| ServerError::Internal(e.to_string()))?;
        format!("SM{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>())
    };
    let msg = Message {
        id: Some(sid.clone()),
        ts_ms: now_ms(),
        from: from.to_string(),
        to: Some(to.to_string()),
        body: text.to_string(),
        source: Some("twilio-send".into()),
        meta: None,
    };
    let v = super::api::verdict(&st, msg.clone())?;
    if v.rule == super::optout::RULE {
        // Twilio's own code for a recipient who replied STOP.
        return Ok(twilio_error(
            StatusCode::BAD_REQUEST,
            21610,
            format!("Attempt to send to unsubscribed recipient: {}", super::optout::REASON),
        ));
    }
    if v.action == "block" {
        let rules: Vec<&str> = v.findings.iter().map(|f| f.rule.as_str()).collect();
        return Ok(twilio_error(
            StatusCode::BAD_REQUEST,
            30007,
            format!(
                "Message filtered by textwatch policy rule {}: {} (findings: {})",
                v.rule,
                v.reasons.join(", "),
                rules.join(", ")
            ),
        ));
    }
    super::api::submit(&st, vec![(msg, format!("twilio:send:{account}"))]).await?;
    if let Some(up) = &st.upstream {
        let url = format!("{}/2010-04-01/Accounts/{account}/Messages.json", up.trim_end_matches('/'));
        let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let agent = st.http.clone();
        let body = body.to_vec();
        // The upstream's answer (status and body), or why it could not be reached.
        let r: Result<(u16, String), String> = tokio::task::spawn_blocking(move || {
            match agent
                .post(&url)
                .set("Authorization", &auth)
                .set("Content-Type", "application/x-www-form-urlencoded")
                .send_bytes(&body)
            {
                Ok(resp) => Ok((resp.status(), resp.into_string().unwrap_or_default())),
                Err(ureq::Error::Status(code, resp)) => Ok((code, resp.into_string().unwrap_or_default())),
                Err(e) => Err(e.to_string()),
            }
        })
        .await
        .map_err(|e| ServerError::Internal(e.to_string()))?;
        return Ok(match r {
            Ok((code, text)) => {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
                (status, [(header::CONTENT_TYPE, "application/json")], text).into_response()
            }
            Err(e) => twilio_error(StatusCode::BAD_GATEWAY, 20500, format!("upstream unreachable: {e}")),
        });
    }
    let now = chrono::DateTime::from_timestamp_millis(now_ms())
        .map(|d| d.format("%a, %d %b %Y %H:%M:%S +0000").to_string())
        .unwrap_or_default();
    let body = serde_json::json!({
        "sid": sid, "account_sid": account, "to": to, "from": from, "body": text,
        "status": "sent", "direction": "outbound-api", "num_segments": "1", "num_media": "0",
        "date_created": now, "date_updated": now, "date_sent": now,
        "error_code": null, "error_message": null, "price": null, "price_unit": "USD",
        "api_version": "2010-04-01", "messaging_service_sid": field(&f, "MessagingServiceSid"),
        "uri": format!("/2010-04-01/Accounts/{account}/Messages/{sid}.json"),
        "subresource_uris": {"media": format!("/2010-04-01/Accounts/{account}/Messages/{sid}/Media.json")},
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_matches_twilios_documented_example() {
        // Twilio's documented example; the official twilio 9.13
        // RequestValidator computes the same signature.
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let sig = super::twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &params);
        assert_eq!(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    }
}
