//! A campaign's findings from what its templates carry: the fold every
//! store does over the rows its own SQL selects.

use crate::views::Finding;

/// Per rule, over a campaign's templates given as (messages, findings as
/// JSON) largest first: the messages whose template breaks it, the worst
/// severity, and the evidence from the largest template. Rules that judge
/// the campaign as a whole (absence of opt-out or sender id) need a share
/// of its messages, so that one odd variant does not brand a compliant
/// campaign.
pub(crate) fn of_templates(rows: impl IntoIterator<Item = (u64, String)>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    let mut shares: Vec<f32> = Vec::new();
    let mut total = 0u64;
    for (n, text) in rows {
        total += n;
        let fs: Vec<textwatch_engine::Finding> = serde_json::from_str(&text).unwrap_or_default();
        for f in fs {
            match out.iter_mut().find(|x| x.rule == f.rule) {
                Some(x) => {
                    x.count += n;
                    x.severity = x.severity.max(f.severity);
                }
                None => {
                    shares.push(f.campaign_share);
                    out.push(Finding { rule: f.rule, severity: f.severity, count: n, example: f.evidence })
                }
            }
        }
    }
    out.into_iter()
        .zip(shares)
        .filter(|(f, share)| f.count as f64 >= *share as f64 * total as f64)
        .map(|(f, _)| f)
        .collect()
}

/// Quiet hours are counted per message: the campaign carries the finding
/// when any of its messages broke it (`quiet` of them), with the evidence
/// of the template that broke it most (`example`, the stored JSON).
pub(crate) fn quiet(quiet: u64, example: Option<&str>) -> Option<Finding> {
    if quiet == 0 {
        return None;
    }
    let f = serde_json::from_str::<textwatch_engine::Finding>(example?).ok()?;
    Some(Finding { rule: f.rule, severity: f.severity, count: quiet, example: f.evidence })
}

/// The order findings are shown in: worst first, then by rule.
pub(crate) fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.rule.cmp(&b.rule)));
}
