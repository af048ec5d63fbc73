//! Scenarios: which campaigns run, when, from which numbers, saying what.
//!
//! Message texts are written here as templates:
//! - `{first}` recipient's first name, `{vol}` the sending volunteer's name
//!   (fixed per sender number), `{link}` a link from the campaign's link
//!   spec, `{code}` a tracking/reference code, `{num}` a 6-digit number,
//!   `{amount}` a dollar amount, `{last4}` four digits, `{time}` a time of
//!   day, `{phone}` the campaign's call-back number;
//! - `[a|b|c]` a word swap: the first option normally, another with the
//!   `word_swap` evasion rate;
//! - `<a|b|c>` an interchangeable part: each option equally likely (scripts
//!   assembled from parts, like the "wrong number" scam's greeting x
//!   pretext x closing line).

/// Everything about one simulated campaign.
#[derive(Clone, Debug)]
pub struct CampaignSpec {
    /// Label in the truth file.
    pub label: String,
    /// What it is: `election-misinfo`, `voter-suppression`, `gotv`,
    /// `commercial`, `smishing`.
    pub kind: &'static str,
    /// Category it should get (see `textwatch_engine::taxonomy`).
    pub category: &'static str,
    /// Relative volume among campaigns.
    pub weight: f64,
    /// Active window as fractions of the scenario span.
    pub window: (f64, f64),
    /// Sends in bursts (minutes on, most of the hour off) rather than evenly.
    pub bursty: bool,
    /// Sender pool: this many long codes in these area codes, or one short code.
    pub pool: usize,
    pub npas: &'static [u16],
    pub short_code: Option<&'static str>,
    /// Who serves the pool (written to the numbers inventory).
    pub provider: &'static str,
    /// Template variants (usually one base text).
    pub templates: Vec<String>,
    /// Further wordings of the same message (a clause moved, a synonym, a
    /// shorter version, a sentence added or dropped), sent alongside the
    /// templates when paraphrasing is on (`--paraphrase`).
    pub paraphrases: Vec<String>,
    /// Link domains rotated through; shortener links with `shortener_rate`.
    pub domains: Vec<String>,
    pub shortener_rate: f64,
    /// How hard it evades (multiplies the evasion rates).
    pub evasion_scale: f64,
    /// Share of its messages that arrive as user spam reports rather than
    /// gateway traffic.
    pub reported: f64,
    /// Rule ids the analysis should raise for it.
    pub findings: Vec<&'static str>,
}

/// A named scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: &'static str,
    /// First message time, epoch seconds.
    pub start: i64,
    /// Span in seconds.
    pub span: i64,
    /// Share of messages that are background person-to-person traffic.
    pub background: f64,
    /// Multiplier of every evasion rate.
    pub evasion_scale: f64,
    pub campaigns: Vec<CampaignSpec>,
    /// Campaigns reported to their provider during the scenario, and what
    /// the provider and the operator do about it.
    pub takedowns: Vec<Takedown>,
}

/// A takedown report on one campaign and what follows it.
#[derive(Clone, Debug)]
pub struct Takedown {
    /// The campaign's label.
    pub label: &'static str,
    /// When it is reported, as a fraction of the scenario span.
    pub reported_at: f64,
    /// Seconds until the provider silences the reported numbers; `None`:
    /// the provider ignores the report.
    pub acts_after: Option<i64>,
    /// Fresh numbers the operator moves to once silenced (same campaign,
    /// same texts).
    pub rotate: usize,
}

/// 2020-11-03T11:00:00Z, 6 am Eastern on Election Day.
const ELECTION_DAY: i64 = 1_604_401_200;

const PA: &[u16] = &[215, 267, 445, 484, 610, 717, 814, 412, 724, 878];

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn commercial() -> Vec<CampaignSpec> {
    vec![
        CampaignSpec {
            label: "pharmacy-ready".into(),
            kind: "commercial",
            category: "transactional",
            weight: 3.0,
            window: (0.0, 1.0),
            bursty: false,
            pool: 1,
            npas: &[],
            short_code: Some("72345"),
            provider: "Twilio",
            templates: s(&["Acme Pharmacy: your prescription #{num} is ready for pickup at our [Main St|Market St] store. Reply STOP to opt out"]),
            domains: vec![],
            shortener_rate: 0.0,
            evasion_scale: 0.0,
            reported: 0.0,
            paraphrases: vec![],
            findings: vec![],
        },
        CampaignSpec {
            label: "parcel-delivery".into(),
            kind: "commercial",
            category: "transactional",
            weight: 3.0,
            window: (0.0, 1.0),
            bursty: false,
            pool: 1,
            npas: &[],
            short_code: Some("468311"),
            provider: "Sinch",
            templates: s(&["QuickShip: your order {code} is out for delivery today between {time} and 8pm. Track it at {link} Txt STOP to end"]),
            domains: s(&["quickship.com"]),
            shortener_rate: 0.0,
            evasion_scale: 0.0,
            reported: 0.0,
            paraphrases: vec![],
            findings: vec![],
        },
        CampaignSpec {
            label: "bank-alert".into(),
            kind: "commercial",
            category: "transactional",
            weight: 2.0,
            window: (0.0, 1.0),
            bursty: false,
            pool: 1,
            npas: &[],
            short_code: Some("27222"),
            provider: "Bandwidth",
            templates: s(&["Keystone Bank Alert: a purchase of {amount} was made on your card ending {last4}. Not you? Call {phone}. Reply STOP to opt out"]),
            domains: vec![],
            shortener_rate: 0.0,
            evasion_scale: 0.0,
            reported: 0.0,
            paraphrases: vec![],
            findings: vec![],
        },
    ]
}

pub(crate) fn election_2020() -> Scenario {
    let mut campaigns = commercial();
    campaigns.extend([
        CampaignSpec {
            label: "gotv-philly".into(),
            kind: "gotv",
            category: "political",
            weight: 6.0,
            window: (0.0, 0.4),
            bursty: false,
            pool: 240,
            npas: PA,
            short_code: None,
            provider: "Bandwidth",
            templates: s(&["Hi {first}, this is {vol} with Philly Votes Together. Polls are open until 8pm [today|tonight]! Find your polling place at {link} Reply STOP to opt out"]),
            domains: s(&["iwillvote.com"]),
            shortener_rate: 0.0,
            evasion_scale: 0.3,
            reported: 0.0,
            paraphrases: vec![],
            findings: vec![],
        },
        CampaignSpec {
            label: "gotv-espanol".into(),
            kind: "gotv",
            category: "political",
            weight: 2.0,
            window: (0.0, 0.4),
            bursty: false,
            pool: 80,
            npas: PA,
            short_code: None,
            provider: "Bandwidth",
            templates: s(&["Hola {first}, soy {vol} con Mi Familia Vota. ¡Las urnas cierran a las 8pm [hoy|esta noche]! Encuentra tu lugar de votación en {link} Responde STOP para cancelar"]),
            domains: s(&["iwillvote.com"]),
            shortener_rate: 0.0,
            evasion_scale: 0.3,
            reported: 0.0,
            paraphrases: vec![],
            findings: vec![],
        },
        CampaignSpec {
            label: "smish-usps".into(),
            kind: "smishing",
            category: "scam",
            weight: 4.0,
            window: (0.05, 1.0),
            bursty: true,
            pool: 400,
            npas: &[302, 410, 856, 609, 732, 201, 347, 929, 646, 718],
            short_code: None,
            provider: "Telnyx",
            templates: s(&["USPS: Your package {code} could not be delivered due to an [incomplete|invalid] address. Please update [here|now]: {link}"]),
            domains: s(&["usps-redelivery.top", "usps-parcelcare.info", "uspostal-help.xyz", "usps-track-id.com", "redeliver-usps.online"]),
            shortener_rate: 0.2,
            evasion_scale: 1.5,
            reported: 0.3,
            paraphrases: vec![],
            findings: vec!["smishing-link", "optout-missing", "url-shortener"],
        },
        CampaignSpec {
            label: "smish-bank".into(),
            kind: "smishing",
            category: "scam",
            weight: 2.5,
            window: (0.3, 1.0),
            bursty: true,
            pool: 250,
            npas: &[305, 786, 954, 561, 407, 813, 469, 972, 214, 832],
            short_code: None,
            provider: "Telnyx",
            templates: s(&["[Chase] Your account has been [locked|suspended] due to unusual activity. Verify your identity at {link} to restore access."]),
            domains: s(&["chase-secure-verify.com", "chase.account-restore.info", "secure-chase-login.top", "chaseverify-id.net"]),
            shortener_rate: 0.15,
            evasion_scale: 1.5,
            reported: 0.3,
            paraphrases: vec![],
            findings: vec!["smishing-link", "optout-missing", "url-shortener"],
        },
        CampaignSpec {
            label: "incident-steal".into(),
            kind: "election-misinfo",
            category: "political",
            weight: 2.5,
            window: (0.45, 0.75),
            bursty: true,
            pool: 13,
            npas: &[267, 215, 484, 610, 445],
            short_code: None,
            provider: "Textsmart Leasing",
            templates: s(&["[Radical|Far-left] Liberals & [Dems|Democrats] are trying to [STEAL|steal|rig] this election! We need all hands on deck. Show your support at the corner of 12th & Arch, near the Convention Center, {time} today."]),
            domains: vec![],
            shortener_rate: 0.0,
            evasion_scale: 1.0,
            reported: 0.2,
            paraphrases: vec![],
            findings: vec!["optout-missing", "sender-id-missing", "election-misinfo", "call-to-assemble"],
        },
        CampaignSpec {
            label: "suppression-wednesday".into(),
            kind: "voter-suppression",
            category: "political",
            weight: 2.0,
            window: (0.1, 0.4),
            bursty: true,
            pool: 60,
            npas: &[412, 724, 814, 570, 717],
            short_code: None,
            provider: "Textsmart Leasing",
            templates: s(&["Due to [high|record] turnout, Democrats are asked to vote on Wednesday, Nov 4 this year. [Spread the word|Tell your friends]!"]),
            domains: vec![],
            shortener_rate: 0.0,
            evasion_scale: 1.0,
            reported: 0.2,
            paraphrases: vec![],
            findings: vec!["optout-missing", "sender-id-missing", "election-misinfo"],
        },
        CampaignSpec {
            label: "suppression-miercoles".into(),
            kind: "voter-suppression",
            category: "political",
            weight: 1.5,
            window: (0.1, 0.4),
            bursty: true,
            pool: 40,
            npas: &[215, 267, 484],
            short_code: None,
            provider: "Textsmart Leasing",
            templates: s(&["Debido a la [alta|enorme] participación, los demócratas deben votar el miércoles 4 de noviembre este año. ¡[Compártelo|Avísale a tus amigos]!"]),
            domains: vec![],
            shortener_rate: 0.0,
            evasion_scale: 1.0,
            reported: 0.2,
            paraphrases: vec![],
            findings: vec!["optout-missing", "sender-id-missing", "election-misinfo"],
        },
    ]);
    Scenario {
        name: "election-2020",
        start: ELECTION_DAY,
        span: 36 * 3600,
        background: 0.55,
        evasion_scale: 1.0,
        campaigns,
        takedowns: Vec::new(),
    }
}

/// The election day with takedowns: the incident is reported 17 hours in
/// (48% of the span) and its provider silences the 13 numbers two hours later, after which
/// the operator moves to two fresh ones; the Wednesday suppression texts
/// are reported and silenced within an hour, with no rotation; the USPS
/// smishing is reported early and its provider ignores it.
pub(crate) fn takedowns_2020() -> Scenario {
    let mut s = election_2020();
    s.name = "takedowns-2020";
    s.takedowns = vec![
        Takedown { label: "incident-steal", reported_at: 0.48, acts_after: Some(2 * 3600), rotate: 2 },
        Takedown { label: "suppression-wednesday", reported_at: 0.15, acts_after: Some(3600), rotate: 0 },
        Takedown { label: "smish-usps", reported_at: 0.1, acts_after: None, rotate: 0 },
    ];
    s
}

/// Scam bases: (brand, text, names a sender). Each becomes one campaign with
/// its own pool and domains in the `smishing` scenario.
const SCAMS: &[(&str, &str, bool)] = &[
    ("usps", "USPS: Your package {code} is on hold due to an unpaid [fee|charge] of {amount}. Pay [now|today] at {link}", true),
    ("fedex", "FedEx: We attempted delivery of parcel {code}. Reschedule your delivery at {link}", true),
    ("amazon", "Amazon: A charge of {amount} for an iPhone 12 was placed on your account. If this wasn't you, [cancel|dispute] at {link}", true),
    ("chase", "Chase Fraud Alert: did you attempt a {amount} purchase at Walmart? Reply YES or NO, or [secure|verify] your account at {link}", true),
    ("wellsfargo", "Wells Fargo: your online access has been [disabled|restricted]. Restore it within 24 hours at {link}", true),
    ("irs", "IRS: You are eligible for a stimulus payment of {amount}. Claim it before Friday at {link}", true),
    ("netflix", "Netflix: your payment was declined and your membership will be [cancelled|suspended]. Update billing at {link}", true),
    ("apple", "Apple ID: your account was signed in from a new device in Moscow. If this wasn't you, [lock|secure] it at {link}", true),
    ("prize", "Congratulations {first}! You've won a {amount} Walmart gift card. Claim your [reward|prize] at {link} before midnight", false),
    ("toll", "E-ZPass: you have an unpaid toll balance of {amount}. Avoid a late fee of $50 by paying at {link}", true),
    ("jobs", "Hi {first}, I'm a recruiter with Remote Staffing. Earn $300-$500/day [part time|from home]. Reply on WhatsApp: {link}", true),
    ("crypto", "Your Coinbase wallet shows a pending withdrawal of {amount}. If you did not request this, [cancel|stop] it at {link}", false),
    ("dhl", "DHL Express: customs duty of {amount} is due before your shipment {code} can be released. Settle it at {link}", true),
    ("paypal", "PayPal: we limited your account after a login from an unrecognized browser. Confirm your details at {link} to lift the limit", true),
    ("verizon", "Verizon: thank you for paying your bill! As a gift we selected you for a free [AirPods|iPad] drawing. Enter at {link}", true),
    ("medicare", "Medicare alert: your benefits card expires this month. Request your free replacement card at {link} or lose coverage", true),
    ("loan", "You are pre-approved for a {amount} personal loan at 0% interest, no credit check needed. Accept the offer at {link}", false),
    ("venmo", "Venmo: a payment of {amount} to Jason M. is pending your approval. Did not authorize it? Cancel it here {link}", true),
    ("dmv", "DMV notice: your driver's license will be suspended for unpaid traffic fines. Pay the balance at {link} within 48 hours", true),
    ("walmart", "Walmart: your order could not be shipped because the card was declined. Update your payment method at {link}", true),
    ("bofa", "BofA: Unusual sign-in attempt blocked on your online banking. If it was not you, secure your account at {link}", true),
    ("ups", "UPS: your parcel {code} is waiting at our depot, the address label is damaged. Confirm your address at {link}", true),
    ("utility", "PECO: your electric service will be disconnected today at 5pm for an overdue balance of {amount}. Pay now at {link}", true),
    ("tax", "Notice: you have an unclaimed state tax refund of {amount}. Submit your claim form at {link} before the deadline", false),
    ("wrongnum", "Hi {first}, is this still your number? It's Linda from the reunion, I put the photos here {link}", true),
];

pub(crate) fn smishing() -> Scenario {
    let area: &[u16] =
        &[302, 410, 856, 609, 732, 201, 347, 929, 646, 718, 305, 786, 954, 469, 972, 214, 832, 213, 310, 424];
    let tlds = ["top", "info", "xyz", "online", "site", "click", "com"];
    let mut campaigns = commercial();
    for k in 0..25usize {
        let (brand, text, named) = SCAMS[k % SCAMS.len()];
        let domains: Vec<String> = (0..6)
            .map(|d| {
                format!(
                    "{brand}-{}{}.{}",
                    ["secure", "verify", "help", "pay", "care", "id"][d],
                    k,
                    tlds[(k + d) % tlds.len()]
                )
            })
            .collect();
        let start = (k as f64 * 0.031) % 0.7;
        campaigns.push(CampaignSpec {
            label: format!("scam-{k:02}-{brand}"),
            kind: "smishing",
            category: "scam",
            weight: 1.0 + (k % 4) as f64,
            window: (start, (start + 0.3 + (k % 3) as f64 * 0.1).min(1.0)),
            bursty: k % 2 == 0,
            pool: 200 + (k * 137) % 1800,
            npas: area,
            short_code: None,
            provider: ["Telnyx", "Textsmart Leasing", "Plivo", "Bandwidth"][k % 4],
            templates: vec![text.to_string()],
            domains,
            shortener_rate: 0.25,
            evasion_scale: 1.0,
            reported: 0.4,
            paraphrases: vec![],
            findings: if named {
                vec!["smishing-link", "optout-missing", "url-shortener"]
            } else {
                vec!["smishing-link", "optout-missing", "url-shortener", "sender-id-missing"]
            },
        });
    }
    Scenario {
        name: "smishing",
        start: ELECTION_DAY,
        span: 48 * 3600,
        background: 0.4,
        evasion_scale: 2.0,
        campaigns,
        takedowns: Vec::new(),
    }
}

pub(crate) fn baseline() -> Scenario {
    Scenario {
        name: "baseline",
        start: ELECTION_DAY,
        span: 24 * 3600,
        background: 0.8,
        evasion_scale: 1.0,
        campaigns: commercial(),
        takedowns: Vec::new(),
    }
}

/// A segment of a parsed template.
#[derive(Clone, Debug, PartialEq)]
pub enum Seg {
    Lit(String),
    Choice(Vec<String>),
    /// Interchangeable parts: each equally likely.
    Pick(Vec<String>),
    Slot(Slot),
}

/// Variable parts of a template.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Slot {
    First,
    Vol,
    Link,
    Code,
    Num,
    Amount,
    Last4,
    Time,
    Phone,
}

/// Parses `{slot}` and `[a|b]` markup.
pub fn parse_template(t: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut rest = t;
    while let Some(i) = rest.find(['{', '[', '<']) {
        lit.push_str(&rest[..i]);
        let open = rest.as_bytes()[i];
        let close = match open {
            b'{' => '}',
            b'<' => '>',
            _ => ']',
        };
        let Some(j) = rest[i..].find(close) else {
            lit.push_str(&rest[i..]);
            rest = "";
            break;
        };
        let inner = &rest[i + 1..i + j];
        if !lit.is_empty() {
            out.push(Seg::Lit(std::mem::take(&mut lit)));
        }
        if open == b'<' {
            out.push(Seg::Pick(inner.split('|').map(str::to_string).collect()));
        } else if open == b'[' && !inner.contains('|') {
            // "[Chase]" is text, not a choice.
            out.push(Seg::Lit(format!("[{inner}]")));
        } else if open == b'[' {
            out.push(Seg::Choice(inner.split('|').map(str::to_string).collect()));
        } else {
            let slot = match inner {
                "first" => Slot::First,
                "vol" => Slot::Vol,
                "link" => Slot::Link,
                "code" => Slot::Code,
                "num" => Slot::Num,
                "amount" => Slot::Amount,
                "last4" => Slot::Last4,
                "time" => Slot::Time,
                "phone" => Slot::Phone,
                other => panic!("unknown slot {{{other}}} in a built-in template"),
            };
            out.push(Seg::Slot(slot));
        }
        rest = &rest[i + j + 1..];
    }
    lit.push_str(rest);
    if !lit.is_empty() {
        out.push(Seg::Lit(lit));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{by_name, NAMES};

    #[test]
    fn every_builtin_template_parses() {
        for name in NAMES {
            for c in by_name(name).unwrap().campaigns {
                for t in &c.templates {
                    let segs = parse_template(t);
                    assert!(segs.iter().any(|s| matches!(s, Seg::Lit(_))));
                    if segs.iter().any(|s| matches!(s, Seg::Slot(Slot::Link))) {
                        assert!(!c.domains.is_empty(), "{} uses links but has no domains", c.label);
                    }
                }
            }
        }
    }

    #[test]
    fn markup() {
        assert_eq!(
            parse_template("Hi {first}, [a|b]!"),
            vec![
                Seg::Lit("Hi ".into()),
                Seg::Slot(Slot::First),
                Seg::Lit(", ".into()),
                Seg::Choice(vec!["a".into(), "b".into()]),
                Seg::Lit("!".into())
            ]
        );
    }

    #[test]
    fn brackets_without_choices_are_text() {
        assert_eq!(parse_template("[Chase] hi"), vec![Seg::Lit("[Chase]".into()), Seg::Lit(" hi".into())]);
    }

    #[test]
    fn the_incident_has_13_numbers() {
        let s = by_name("election-2020").unwrap();
        let c = s.campaigns.iter().find(|c| c.kind == "election-misinfo").unwrap();
        assert_eq!(c.pool, 13);
        assert!(c.findings.contains(&"call-to-assemble"));
    }
}
