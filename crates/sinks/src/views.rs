//! Campaigns and numbers as people and tools see them: stored state
//! enriched with providers, the findings only the whole campaign shows, and
//! the policy's decision; and the verdict for one message that has not been
//! stored (`check`, `/v1/check`, the Twilio send endpoint).

use serde::Serialize;
use textwatch_engine::policy::{Action, Decision, Facts, Scope};
use textwatch_engine::sender::normalize_address;
use textwatch_engine::{Engine, Peek};
use textwatch_numbers::{classify, Attribution, Directory, NpaTable, SenderInfo};
use textwatch_store::{CampaignQuery, SenderActivity, Store};

use crate::enrich::Enricher;
use crate::Result;

/// The category and subcategory of one checked message: the one its
/// findings settle, else the model's (as the engine gives campaign templates
/// theirs).
/// Without models (a build before the first `textwatch train`), neither.
pub fn category_of(
    rules: &textwatch_engine::RuleSet,
    findings: &[textwatch_engine::rules::Finding],
    model: Option<&textwatch_engine::categorize::Categorizer>,
    a: &textwatch_engine::Analyzed,
) -> (Option<String>, Option<String>) {
    match model {
        Some(m) => {
            let c = m.categorize(rules, findings, &a.template, &a.msg.body);
            (Some(c.category.to_string()), c.subcategory.map(str::to_owned))
        }
        None => (None, None),
    }
}

/// The `quiet-hours` finding of one checked message: it landed in quiet
/// hours and is marketing (not `ham`) or part of a campaign.
pub fn quiet_finding(
    rules: &textwatch_engine::RuleSet,
    a: &textwatch_engine::Analyzed,
    category: Option<&str>,
    joins_campaign: bool,
) -> Option<textwatch_engine::Finding> {
    let q = a.quiet.as_ref()?;
    if !joins_campaign && category.is_none_or(|c| c == "personal" || c == "ham") {
        return None;
    }
    let (rule, severity) = rules.quiet_rule()?;
    Some(textwatch_engine::Finding {
        rule: rule.to_string(),
        severity,
        evidence: textwatch_engine::Evidence { excerpt: q.fact.clone(), ..Default::default() },
        campaign_share: 0.0,
    })
}

/// "the campaign", "its senders", "the message" for a decision's scope.
pub fn scope_word(s: Scope) -> &'static str {
    match s {
        Scope::Message => "the message",
        Scope::Sender => "its senders",
        Scope::Campaign => "the campaign",
    }
}

/// Campaigns from the store with providers, `sender-invalid` and the
/// policy decision filled in.
pub fn enriched_campaigns(
    store: &dyn Store,
    ctx: &Enricher,
    q: &CampaignQuery,
) -> Result<Vec<textwatch_store::CampaignSummary>> {
    let mut list = store.campaigns(q)?;
    for s in &mut list {
        let senders = crate::enrich::summary_senders(s);
        ctx.enrich(s, &senders);
    }
    Ok(list)
}

/// One campaign, enriched like [`enriched_campaigns`].
pub fn enriched_campaign(
    store: &dyn Store,
    ctx: &Enricher,
    id: &str,
    samples: usize,
) -> Result<Option<textwatch_store::CampaignDetail>> {
    let Some(mut d) = store.campaign(id, samples)? else { return Ok(None) };
    let senders: Vec<(String, u64)> = d.sender_stats.iter().map(|v| (v.sender.clone(), v.messages)).collect();
    ctx.enrich(&mut d.summary, &senders);
    Ok(Some(d))
}

/// Where a message would go. Stored templates are looked up in the store;
/// only new ones go through the engine, which holds just the campaigns'
/// representatives and the recent singletons (see
/// [`Store::load_peek_snapshot`]), so a check costs the same on any size of
/// database.
pub fn peek(store: &dyn Store, engine: &Engine, a: &textwatch_engine::Analyzed) -> Result<Peek> {
    Ok(match store.template_campaign(a.template_key)? {
        Some((Some(campaign), _)) => Peek::ExactCampaign { campaign },
        Some((None, true)) => Peek::ExactSingleton,
        Some((None, false)) => Peek::TooShort,
        None => engine.peek(a),
    })
}

/// The verdict for one message: the policy's decision on the message
/// itself (a campaign of one, or of the campaign's size if it joins one),
/// or the campaign's decision when that is stronger.
#[allow(clippy::too_many_arguments)]
pub fn message_decision(
    ctx: &Enricher,
    store: &dyn Store,
    findings: &[textwatch_engine::Finding],
    category: Option<&str>,
    subcategory: Option<&str>,
    risk: u8,
    sender: &str,
    campaign: Option<&str>,
) -> Result<Decision> {
    let c = match campaign {
        Some(id) => campaign_context(ctx, store, id)?,
        None => None,
    };
    Ok(number_allowed(ctx, sender)
        .unwrap_or_else(|| decide_message(ctx, findings, category, subcategory, risk, sender, c.as_ref())))
}

/// The allow an overturned appeal gave this sending number, if any. Applied
/// per message, after any per-template decision: it belongs to the number,
/// not to the text.
pub fn number_allowed(ctx: &Enricher, sender: &str) -> Option<Decision> {
    ctx.allows
        .numbers
        .get(sender)
        .map(|rule| crate::enrich::Allows::decision(rule, textwatch_engine::policy::Scope::Sender))
}

/// What a message joining a campaign inherits from it: the campaign's own
/// decision, its message and sender counts.
#[derive(Clone, Debug)]
pub struct CampaignContext {
    pub decision: Option<Decision>,
    pub messages: u64,
    pub senders: u64,
}

/// The enriched campaign's decision and size (`None` if it does not exist).
pub fn campaign_context(ctx: &Enricher, store: &dyn Store, id: &str) -> Result<Option<CampaignContext>> {
    let Some(d) = store.campaign(id, 0)? else { return Ok(None) };
    let mut s = d.summary;
    let pairs: Vec<(String, u64)> = d.sender_stats.iter().map(|v| (v.sender.clone(), v.messages)).collect();
    ctx.enrich(&mut s, &pairs);
    Ok(Some(CampaignContext { decision: s.decision, messages: s.messages, senders: s.sender_count }))
}

/// The policy's decision for one message: on its own facts (counted as one
/// more message of its campaign), or the campaign's decision when that is
/// stronger.
pub fn decide_message(
    ctx: &Enricher,
    findings: &[textwatch_engine::Finding],
    category: Option<&str>,
    subcategory: Option<&str>,
    risk: u8,
    sender: &str,
    campaign: Option<&CampaignContext>,
) -> Decision {
    // A campaign whose appeal was overturned: its texts pass.
    if let Some(d) = campaign.and_then(|c| c.decision.as_ref()).filter(|d| d.rule.starts_with("appeal-")) {
        return d.clone();
    }
    let class = textwatch_numbers::classify(sender, textwatch_numbers::NpaTable::shipped()).class.as_str();
    let facts = Facts {
        findings: findings.iter().map(|f| (f.rule.as_str(), f.severity)).collect(),
        category,
        subcategory,
        risk,
        messages: campaign.map_or(1, |c| c.messages + 1),
        senders: campaign.map_or(1, |c| c.senders),
        sender_classes: vec![class],
    };
    let own = ctx.policy.decide(&facts);
    match campaign.and_then(|c| c.decision.clone()) {
        Some(c) if c.action >= own.action && c.action != Action::Allow => c,
        _ => own,
    }
}

/// What `number` shows (and `GET /v1/numbers/{e164}` returns).
#[derive(Serialize)]
pub struct NumberView {
    pub number: String,
    #[serde(flatten)]
    pub info: SenderInfo,
    pub attribution: Attribution,
    /// One-line account of the attribution with its sources.
    pub attribution_text: String,
    pub abuse_contact: Option<String>,
    #[serde(flatten)]
    pub activity: SenderActivity,
}

pub fn number_view(store: &dyn Store, dir: &Directory, raw: &str) -> Result<NumberView> {
    let number = normalize_address(raw);
    let info = classify(&number, NpaTable::shipped());
    let attribution = dir.attribute(&number);
    let abuse_contact =
        attribution.provider.as_deref().and_then(|p| dir.registry().get(p)).and_then(crate::enrich::abuse_contact);
    let activity = store.sender_activity(&number)?;
    Ok(NumberView { attribution_text: attribution.to_string(), number, info, attribution, abuse_contact, activity })
}
