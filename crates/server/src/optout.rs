//! Opt-outs on every path: an inbound STOP (SMPP deliver_sm, the Twilio
//! webhook, `/v1/messages` with `"direction": "inbound"`) opts the
//! recipient out of the number texted and of every campaign it sends for
//! and their numbers; START opts back in; HELP gets the sender's reply.
//! Later texts to the recipient are refused by every path's verdict.

use axum::http::StatusCode;
use textwatch_engine::optout::{keyword, Change, Keyword, Scope};
use textwatch_engine::sender::normalize_address;
use textwatch_store::Store;

use super::state::{ApiError, Shared};
use crate::error::ServerError;
pub use crate::replies::Replies;

/// At most this many numbers of a campaign are opted out by name; the
/// campaign scope covers the rest (and numbers it rotates to later).
const MAX_NUMBERS: usize = 1_000;

/// The rule and reason every path gives for a text to an opted-out
/// recipient.
pub const RULE: &str = "optout";
pub const REASON: &str = "recipient opted out";

/// What an inbound keyword did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Handled {
    /// `out`, `in` or `help`.
    pub keyword: Keyword,
    /// The keyword as listed ("STOP", "ALTO").
    pub word: &'static str,
    /// Scopes changed (numbers and campaigns).
    pub scopes: usize,
    /// The reply to send back to the recipient, if one is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
}

/// The scopes a STOP to `number` covers: the number, each campaign it
/// sends for, and those campaigns' numbers.
fn scopes_for(store: &dyn Store, number: &str) -> Result<Vec<Scope>, textwatch_store::StoreError> {
    let mut scopes = vec![Scope::Number(number.to_string())];
    let activity = store.sender_activity(number)?;
    for c in activity.campaigns {
        let Some(id) = store.resolve_campaign(&c.campaign)? else { continue };
        if let Some(detail) = store.campaign(&id, 0)? {
            for s in detail.summary.senders.into_iter().take(MAX_NUMBERS) {
                let s = Scope::Number(s);
                if !scopes.contains(&s) {
                    scopes.push(s);
                }
            }
        }
        let c = Scope::Campaign(id);
        if !scopes.contains(&c) {
            scopes.push(c);
        }
    }
    Ok(scopes)
}

/// If `body`, texted by `from` to `to`, is an opt-out keyword: records the
/// change durably and answers what it did. `None`: not a keyword (the
/// caller stores the text as any other).
pub(super) async fn handle_inbound(
    st: &Shared,
    from: &str,
    to: &str,
    body: &str,
    ts_ms: i64,
    source: &str,
) -> Result<Option<Handled>, ApiError> {
    let Some((kind, word)) = keyword(body) else { return Ok(None) };
    let number = normalize_address(to);
    let recipient = st.analyzer.hash_recipient(from);
    if number.is_empty() || normalize_address(from).is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "an inbound keyword needs both from and to"));
    }
    let reply = st.replies.for_keyword(kind, &number);
    if kind == Keyword::Help {
        st.metrics.optout(kind);
        return Ok(Some(Handled { keyword: kind, word, scopes: 0, reply }));
    }
    let changes: Vec<Change> = {
        let st2 = st.clone();
        let n = number.clone();
        let mut scopes = tokio::task::spawn_blocking(move || st2.read(|s| Ok(scopes_for(s, &n)?)))
            .await
            .map_err(|e| ServerError::Internal(e.to_string()))??;
        if kind == Keyword::In {
            // START undoes what STOP to this number did, even where the
            // campaign's numbers have changed since.
            let reg = st.optouts.read().unwrap_or_else(|e| e.into_inner());
            for c in reg.scopes_of(&recipient).filter(|c| c.texted == number) {
                if !scopes.contains(&c.scope) {
                    scopes.push(c.scope.clone());
                }
            }
        }
        scopes
            .into_iter()
            .map(|scope| Change {
                at_ms: ts_ms,
                recipient,
                scope,
                out: kind == Keyword::Out,
                keyword: word.to_string(),
                source: source.to_string(),
                texted: number.clone(),
            })
            .collect()
    };
    let n = changes.len();
    st.run_job(|reply| super::worker::Job::OptOut { changes, reply }).await?;
    st.metrics.optout(kind);
    tracing::info!(keyword = word, scopes = n, number = %number, source, "opt-out state changed");
    Ok(Some(Handled { keyword: kind, word, scopes: n, reply }))
}

/// The opt-out that forbids this text, if any.
pub(super) fn forbidding(st: &Shared, a: &textwatch_engine::Analyzed, campaign: Option<&str>) -> Option<Change> {
    let reg = st.optouts.read().unwrap_or_else(|e| e.into_inner());
    reg.forbids(&[a.rcpt, a.rcpt_prev], &a.sender, campaign).cloned()
}

/// The finding a refused text carries: when and how the recipient opted
/// out.
pub(super) fn finding(c: &Change) -> textwatch_engine::Finding {
    let when = chrono::DateTime::from_timestamp_millis(c.at_ms)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default();
    let scope = match &c.scope {
        Scope::Number(n) => format!("number {n}"),
        Scope::Campaign(id) => format!("campaign {id}"),
    };
    textwatch_engine::Finding {
        rule: "recipient-opted-out".into(),
        severity: textwatch_engine::Severity::Critical,
        evidence: textwatch_engine::Evidence {
            span: None,
            excerpt: format!(
                "the recipient texted {} to {} at {when} ({}); it covers {scope}",
                c.keyword, c.texted, c.source
            ),
            place: None,
            time: None,
        },
        campaign_share: 0.0,
    }
}
