//! Scenario families that do not flatter the engine: what one sender sends
//! for one purpose, said several ways, next to different senders that say
//! the same thing.
//!
//! - `rewordings`: election day. The misinformation and suppression waves
//!   are each sent in several wordings (English and Spanish) from one pool;
//!   two organizations send the same volunteer script, each signed with its
//!   own name, from its own pool and with the same link; a "wrong number"
//!   scam is assembled from interchangeable parts; a smishing wave rotates
//!   between two lures; a platform's short code carries five unrelated
//!   clients.
//! - `scam-rotation`: two days of fraud. Operators rotate lures and
//!   rewordings across their pools and domains; look-alike waves from
//!   different operators claim the same brands; job and investment scripts
//!   come from parts; two platform short codes carry many clients each.
//!
//! Both are written to be scored on, not tuned on: docs/accuracy.md says
//! which seeds and settings were used while tuning.

use crate::scenario::{CampaignSpec, Scenario};

/// 2022-11-08T11:00:00Z, 6 am Eastern on Election Day 2022.
const ELECTION_DAY_2022: i64 = 1_667_905_200;

const PA: &[u16] = &[215, 267, 445, 484, 610, 717, 814, 412, 724, 878];
const AZ: &[u16] = &[480, 602, 623, 520, 928];
const MIXED: &[u16] = &[302, 410, 856, 609, 732, 201, 347, 929, 646, 718, 305, 786, 954, 469, 972, 214];

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[allow(clippy::too_many_arguments)]
fn spec(
    label: &str,
    kind: &'static str,
    category: &'static str,
    weight: f64,
    window: (f64, f64),
    pool: usize,
    npas: &'static [u16],
    short_code: Option<&'static str>,
    provider: &'static str,
    templates: &[&str],
    paraphrases: &[&str],
    domains: &[&str],
    findings: &[&'static str],
) -> CampaignSpec {
    let compliant = findings.is_empty();
    CampaignSpec {
        label: label.into(),
        kind,
        category,
        weight,
        window,
        bursty: !compliant && pool > 1,
        pool,
        npas,
        short_code,
        provider,
        templates: s(templates),
        paraphrases: s(paraphrases),
        domains: s(domains),
        shortener_rate: if compliant { 0.0 } else { 0.15 },
        evasion_scale: if compliant { 0.2 } else { 1.0 },
        reported: if compliant { 0.0 } else { 0.25 },
        findings: findings.to_vec(),
    }
}

/// Five unrelated clients of one platform short code, each signing its
/// texts.
fn platform_clients(code: &'static str, provider: &'static str, tag: &str) -> Vec<CampaignSpec> {
    let c = |label: &str, category: &'static str, weight: f64, t: &[&str], domains: &[&str]| {
        spec(
            &format!("{tag}-{label}"),
            "commercial",
            category,
            weight,
            (0.0, 1.0),
            1,
            &[],
            Some(code),
            provider,
            t,
            &[],
            domains,
            &[],
        )
    };
    vec![
        c(
            "dentist",
            "transactional",
            1.0,
            &["Bright Smile Dental: reminder of your cleaning on {time} tomorrow. Reply C to confirm or call {phone}. Reply STOP to opt out"],
            &[],
        ),
        c(
            "school",
            "civic",
            1.2,
            &["Lincoln County Schools: classes are canceled on Tuesday for Election Day; buildings are polling places. Txt STOP to end"],
            &[],
        ),
        c(
            "retail",
            "marketing",
            1.5,
            &["Trailhead Outfitters: 30% off all boots through Sunday with code {code}. Shop at {link} Reply STOP to opt out"],
            &["trailheadoutfitters.com"],
        ),
        c(
            "gym",
            "marketing",
            0.8,
            &["Peak Fitness: your membership renews on the 15th. Manage it in the app or at {link} Reply STOP to unsubscribe"],
            &["peakfitness.com"],
        ),
        c(
            "city",
            "civic",
            1.0,
            &["City of Maple Grove: street sweeping on your block {time} Thursday. Please move your car. Txt STOP to end"],
            &[],
        ),
    ]
}

/// Election Day 2022 with rewordings, shared scripts and platforms.
pub fn rewordings() -> Scenario {
    let mut campaigns = vec![
        spec(
            "steal-wave",
            "election-misinfo",
            "political",
            2.5,
            (0.4, 0.8),
            13,
            &[267, 215, 484, 610, 445],
            None,
            "Textsmart Leasing",
            &["They are trying to [STEAL|rig] this election in Philadelphia! Patriots, gather at 12th & Arch near the Convention Center at {time} today."],
            &[
                "Patriots: gather at 12th & Arch near the Convention Center at {time} today. They are trying to [STEAL|rig] this election in Philadelphia!",
                "The election is being stolen in Philly. Be at the Convention Center, 12th & Arch, {time} today. Bring everyone you know.",
                "Philly officials are stealing the vote right now. Stand up: Convention Center, corner of 12th and Arch, {time}.",
                "Están robando esta elección en Filadelfia. Reúnanse en la esquina de 12th y Arch, frente al Centro de Convenciones, a las {time} hoy.",
                "¡Nos están robando el voto en Filadelfia! Todos al Centro de Convenciones (12th y Arch) hoy a las {time}.",
            ],
            &[],
            &["optout-missing", "sender-id-missing", "election-misinfo", "call-to-assemble"],
        ),
        spec(
            "wednesday-wave",
            "voter-suppression",
            "political",
            2.0,
            (0.05, 0.45),
            60,
            &[412, 724, 814, 570, 717],
            None,
            "Textsmart Leasing",
            &["Due to [high|record] turnout, Democrats are asked to vote on Wednesday, Nov 9 this year. [Spread the word|Tell your friends]!"],
            &[
                "Reminder for Democrats: because of record turnout your voting day is Wednesday, Nov 9.",
                "Democrats vote Wednesday Nov 9 this year because of high turnout. Tell your friends!",
                "Debido a la alta participación, los demócratas deben votar el miércoles 9 de noviembre este año. ¡Compártelo!",
                "Aviso para demócratas: por la participación récord, su día para votar es el miércoles 9 de noviembre.",
            ],
            &[],
            &["optout-missing", "sender-id-missing", "election-misinfo"],
        ),
        // One volunteer script, two organizations: each signs with its own
        // name and sends from its own pool, with the same link.
        spec(
            "gotv-pvt",
            "gotv",
            "political",
            5.0,
            (0.0, 0.5),
            200,
            PA,
            None,
            "Bandwidth",
            &["Hi {first}, this is {vol} with Philly Votes Together. Polls are open until 8pm [today|tonight]! Find your polling place at {link} Reply STOP to opt out"],
            &[
                "Hi {first}, it's {vol} with Philly Votes Together. You still have time: polls close at 8pm! Look up where you vote at {link} Reply STOP to opt out",
                "{first}, {vol} from Philly Votes Together here. Have you voted yet? Polls are open until 8pm, find your polling place at {link} Reply STOP to opt out",
            ],
            &["iwillvote.com"],
            &[],
        ),
        spec(
            "gotv-keystone",
            "gotv",
            "political",
            3.0,
            (0.0, 0.5),
            120,
            PA,
            None,
            "Twilio",
            &["Hi {first}, this is {vol} with Keystone Action Fund. Polls are open until 8pm [today|tonight]! Find your polling place at {link} Reply STOP to opt out"],
            &[
                "Hi {first}, it's {vol} with Keystone Action Fund. You still have time: polls close at 8pm! Look up where you vote at {link} Reply STOP to opt out",
                "{first}, {vol} from Keystone Action Fund here. Have you voted yet? Polls are open until 8pm, find your polling place at {link} Reply STOP to opt out",
            ],
            &["iwillvote.com"],
            &[],
        ),
        spec(
            "gotv-az-es",
            "gotv",
            "political",
            2.0,
            (0.05, 0.55),
            70,
            AZ,
            None,
            "Bandwidth",
            &["Hola {first}, soy {vol} con Arizona Vota Unida. ¡Las urnas cierran a las 7pm [hoy|esta noche]! Encuentra tu casilla en {link} Responde STOP para cancelar"],
            &[
                "Hola {first}, te escribe {vol} de Arizona Vota Unida. ¿Ya votaste? Tienes hasta las 7pm; busca dónde votar en {link} Responde STOP para cancelar",
                "{first}, soy {vol} con Arizona Vota Unida. Todavía puedes votar hasta las 7pm. Tu casilla: {link} Responde STOP para cancelar",
            ],
            &["iwillvote.com"],
            &[],
        ),
        // The "wrong number" opener, assembled from interchangeable parts.
        spec(
            "wrong-number",
            "smishing",
            "scam",
            2.0,
            (0.0, 1.0),
            150,
            MIXED,
            None,
            "Telnyx",
            &["<Hi|Hello|Hey there|Good morning> {first}, <is this still your number?|are you free for dinner this week?|did you get my message about the trip?|long time no see!> <It's Linda from the reunion.|This is Jenny, we met at the yoga class.|Amy here, your old neighbor.|It's Grace from the conference.>"],
            &[],
            &[],
            &["optout-missing"],
        ),
        // One operator, two lures from one pool and one set of domains.
        spec(
            "lure-rotation",
            "smishing",
            "scam",
            3.0,
            (0.1, 1.0),
            300,
            MIXED,
            None,
            "Telnyx",
            &[
                "USPS: Your package {code} could not be delivered due to an [incomplete|invalid] address. Update it [here|now]: {link}",
                "E-ZPass: you have an unpaid toll balance of {amount}. Avoid a $50 late fee by paying [today|now] at {link}",
            ],
            &[
                "USPS notice: we were unable to deliver parcel {code}, the address is incomplete. Confirm your address at {link}",
                "Final notice: unpaid toll of {amount} on your E-ZPass account. Pay at {link} to avoid a late fee.",
            ],
            &["usps-tollcare.top", "ezpass-usps.info", "redeliver-pay.xyz", "toll-parcel.online"],
            &["smishing-link", "optout-missing", "url-shortener"],
        ),
        spec(
            "pharmacy-ready",
            "commercial",
            "transactional",
            3.0,
            (0.0, 1.0),
            1,
            &[],
            Some("72345"),
            "Twilio",
            &["Acme Pharmacy: your prescription #{num} is ready for pickup at our [Main St|Market St] store. Reply STOP to opt out"],
            &[],
            &[],
            &[],
        ),
    ];
    campaigns.extend(platform_clients("62000", "Sinch", "platform"));
    Scenario {
        name: "rewordings",
        start: ELECTION_DAY_2022,
        span: 36 * 3600,
        background: 0.5,
        evasion_scale: 1.0,
        campaigns,
        takedowns: Vec::new(),
    }
}

/// Two days of fraud: rotating lures and rewordings, look-alike waves
/// from different operators, scripts from parts, and platforms.
pub fn scam_rotation() -> Scenario {
    let mut campaigns = vec![
        spec(
            "op-parcel",
            "smishing",
            "scam",
            3.0,
            (0.0, 0.8),
            400,
            MIXED,
            None,
            "Telnyx",
            &[
                "FedEx: we attempted delivery of parcel {code}. Reschedule your delivery at {link}",
                "DHL Express: customs duty of {amount} is due before shipment {code} can be released. Settle it at {link}",
            ],
            &[
                "Your FedEx parcel {code} is waiting: the courier could not reach you. Pick a new delivery time at {link}",
                "DHL: shipment {code} is held at customs until a duty of {amount} is paid. Pay at {link}",
                "FedEx notice: second delivery attempt for {code} failed. Book a redelivery at {link}",
            ],
            &["parcel-reschedule.top", "fdx-dhl-care.info", "customs-release.xyz"],
            &["smishing-link", "optout-missing", "url-shortener"],
        ),
        // The same bank lure from two operators, each with its own pool
        // and domains, worded a little differently.
        spec(
            "op-bank-a",
            "smishing",
            "scam",
            2.0,
            (0.1, 0.9),
            250,
            MIXED,
            None,
            "Plivo",
            &["Chase Fraud Alert: did you attempt a {amount} purchase at Walmart? If not, [secure|verify] your account at {link}"],
            &[
                "Chase: a {amount} charge at Walmart was flagged on your card. Not you? Secure your account at {link}",
                "Chase Fraud Dept: unusual {amount} purchase at Walmart. Confirm or cancel it at {link} now",
            ],
            &["chase-alert-verify.com", "secure-chase-id.top"],
            &["smishing-link", "optout-missing", "url-shortener"],
        ),
        spec(
            "op-bank-b",
            "smishing",
            "scam",
            2.0,
            (0.2, 1.0),
            250,
            MIXED,
            None,
            "Bandwidth",
            &["Chase Fraud Alert: did you make a {amount} purchase at Target? If not, [lock|protect] your card at {link}"],
            &[
                "Chase: we blocked a {amount} payment at Target. If this was not you, protect your card at {link}",
                "Chase security: {amount} purchase at Target declined. Verify it was you at {link}",
            ],
            &["chase-cardprotect.info", "chasecard-lock.xyz"],
            &["smishing-link", "optout-missing", "url-shortener"],
        ),
        spec(
            "job-parts",
            "smishing",
            "scam",
            2.0,
            (0.0, 1.0),
            200,
            MIXED,
            None,
            "Textsmart Leasing",
            &["<Hi|Hello> {first}, <I'm a recruiter with Remote Staffing.|I'm Emma from a staffing agency.|this is HR at Talent Hub.> <Earn $300-$500 a day from home.|We have a part-time remote job paying $500/day.|Flexible online work, 1-2 hours, daily pay.> <Reply on WhatsApp: {link}|Contact us on Telegram: {link}|Text Y to learn more.>"],
            &[],
            &["talent-jobs.top"],
            &["optout-missing"],
        ),
        spec(
            "crypto-callback",
            "smishing",
            "scam",
            1.5,
            (0.2, 1.0),
            120,
            MIXED,
            None,
            "Plivo",
            &["Coinbase: a withdrawal of {amount} is pending on your wallet. If you did not request this, call support at {phone} now"],
            &[
                "Your Coinbase account sent {amount} to an unknown wallet. Not you? Call our security line {phone} immediately",
                "Coinbase security: withdrawal request of {amount} received. To cancel, call {phone}",
            ],
            &[],
            &["optout-missing", "sender-id-missing"],
        ),
        spec(
            "bank-alerts",
            "commercial",
            "transactional",
            2.0,
            (0.0, 1.0),
            1,
            &[],
            Some("27222"),
            "Bandwidth",
            &["Keystone Bank Alert: a purchase of {amount} was made on your card ending {last4}. Not you? Call {phone}. Reply STOP to opt out"],
            &[],
            &[],
            &[],
        ),
    ];
    campaigns.extend(platform_clients("62000", "Sinch", "platform-a"));
    let mut more = platform_clients("39000", "Twilio", "platform-b");
    for c in &mut more {
        // Other businesses on the second platform.
        for t in &mut c.templates {
            *t = t
                .replace("Bright Smile Dental", "Harbor Family Dentistry")
                .replace("Lincoln County Schools", "Westfield Public Library")
                .replace("Trailhead Outfitters", "Corner Bistro")
                .replace("Peak Fitness", "Sunrise Yoga")
                .replace("City of Maple Grove", "Oak Park Water Dept");
        }
        for d in &mut c.domains {
            *d = d.replace("trailheadoutfitters", "cornerbistro").replace("peakfitness", "sunriseyoga");
        }
    }
    campaigns.extend(more);
    Scenario {
        name: "scam-rotation",
        start: ELECTION_DAY_2022,
        span: 48 * 3600,
        background: 0.45,
        evasion_scale: 1.5,
        campaigns,
        takedowns: Vec::new(),
    }
}
