//! Features: the facts about a message that rules and people look at.
//!
//! Two kinds, computed at different rates:
//!
//! - [`MessageFeatures`], per message and cheap: the links (host, registrable
//!   domain, shortener or not), phone numbers and e-mail addresses in the
//!   body. They come from the spans the template step already found.
//! - [`TemplateFeatures`], once per distinct template: whether the text
//!   carries opt-out language and a sender identification. These are regex
//!   matches over the template and are cached with it, so a million copies
//!   cost one match.

use std::ops::Range;
use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::shorteners::is_shortener;
use crate::template::{host_of, Slot, TemplateScratch};

/// A link found in a message body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The link as written (after folding: lowercase).
    pub url: String,
    /// Host name.
    pub host: String,
    /// Registrable domain (public suffix plus one label), if the host has one.
    pub domain: Option<String>,
    /// Whether the host is a public URL shortener (CTIA 5.3.2 discourages them).
    pub shortener: bool,
}

/// Per-message features.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageFeatures {
    pub links: Vec<Link>,
    pub phones: Vec<String>,
    pub emails: Vec<String>,
}

impl MessageFeatures {
    /// Reads the features out of the spans the last `templatize` call left.
    pub fn from_scratch(scratch: &TemplateScratch) -> Self {
        let mut f = MessageFeatures::default();
        for span in &scratch.spans {
            let text = &scratch.folded[span.range.clone()];
            match span.slot {
                Slot::Url | Slot::ShortUrl => f.links.push(link(text)),
                Slot::Email => f.emails.push(text.to_owned()),
                Slot::Phone => f.phones.push(digits_of_phone(text)),
                _ => {}
            }
        }
        f
    }
}

fn digits_of_phone(text: &str) -> String {
    let plus = text.starts_with('+');
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    if plus {
        format!("+{digits}")
    } else if digits.len() == 10 {
        format!("+1{digits}")
    } else if digits.len() == 11 && digits.starts_with('1') {
        format!("+{digits}")
    } else {
        digits
    }
}

/// Builds a [`Link`] from link text.
pub fn link(text: &str) -> Link {
    // A defanged link's host is the host it leads to.
    let plain = crate::template::refang(text);
    let host = host_of(plain.as_deref().unwrap_or(text)).trim_start_matches("www.").to_owned();
    let domain = psl::domain_str(&host).map(str::to_owned);
    let shortener = is_shortener(&host);
    Link { url: text.to_owned(), host, domain, shortener }
}

/// Per-template features: computed once per distinct template and cached.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TemplateFeatures {
    /// Byte range in the template of the opt-out instruction, if any.
    pub optout: Option<Range<usize>>,
    /// Byte range in the template of the sender identification, if any.
    pub sender_id: Option<Range<usize>>,
}

impl TemplateFeatures {
    /// Analyzes a template.
    pub fn of(template: &str) -> Self {
        TemplateFeatures {
            optout: optout_re().find(template).map(|m| m.range()),
            sender_id: sender_id_res()
                .iter()
                .filter_map(|re| re.find(template))
                .find(|m| !is_generic_prefix(m.as_str()))
                .map(|m| m.range()),
        }
    }
}

/// Opt-out instructions, English and Spanish, as gateways and CTIA phrase
/// them: "Reply STOP to opt out", "Txt STOP", "STOP to end", "STOP2END",
/// "Responde STOP/BAJA", "text QUIT to 12345", "opt out: reply stop",
/// "unsubscribe: {url}". A bare "stop" ("Stop the steal!") is not opt-out
/// language.
pub fn optout_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(concat!(
            r"(?x)",
            r"\b(?:reply|respond|text|txt|send|msg|sms|type|enter|answer|rply|reply\s+with)\W{0,3}",
            r"(?:stop|end|quit|cancel|unsubscribe|stopall|stop\s?all|optout|opt\s?out|unsub|stop\{num\}end|stop\{num\}quit)\b",
            r"(?:\W{0,3}(?:to|2|\{num\}|for)\W{0,3}(?:opt\W?out|end|stop|quit|unsub\w*|cancel|cease|be\s+removed|remove)\b)?",
            r"|\b(?:stop|end|quit|cancel|unsubscribe|stopall)\W{0,3}(?:to|2|\{num\}|=|for)\W{0,3}(?:opt\W?out|end|stop|quit|unsub\w*|cancel|cease|be\s+removed|remove)",
            r"|\bstop\{num\}(?:end|quit|stop|opt)",
            r"|\bopt(?:\s|-)?out\W{0,6}(?:reply|text|txt|send|at|here|\{url\}|\{shorturl\})",
            r"|\bto\s+(?:opt(?:\s|-)?out|unsubscribe|stop\s+(?:receiving|getting|these)|be\s+removed)\b",
            r"|\bunsubscribe\W{0,3}(?:at|here|\{url\}|\{shorturl\})",
            r"|\b(?:responde|responda|contesta|envia|envie|manda|escribe|texto|textea)\W{0,3}(?:stop|baja|alto|parar|cancelar|salir|fin)\b",
            r"|\b(?:stop|baja|alto|parar)\W{0,3}(?:para|pa)\W{0,3}(?:cancelar|salir|no\s+recibir|darte\s+de\s+baja|terminar|detener)",
            r"|\bpara\s+(?:cancelar|darse\s+de\s+baja|dejar\s+de\s+recibir|no\s+recibir)",
        ))
        .expect("static opt-out regex compiles")
    })
}

/// Sender identification: "this is {name} with Acme", "paid for by ...",
/// a "Brand:" prefix, a "- Acme Pharmacy" signature, "msg from Acme".
pub fn sender_id_res() -> &'static [Regex] {
    static RES: OnceLock<Vec<Regex>> = OnceLock::new();
    RES.get_or_init(|| {
        [
            // Self-introduction naming a person or an organisation.
            r"\b(?:this is|it's|its|i'm|im|my name is|soy|me llamo|le saluda|te saluda)\s+(?:an?\s+)?(?:\{name\}|[a-z][a-z'&.-]+(?:\s[a-z][a-z'&.-]+)?)\s+(?:with|from|at|of|for|on behalf of|volunteering|w/|con|de|del)\s+[a-z{]",
            r"\b(?:this is|it's|its)\s+\{name\}",
            // An appointment with a named doctor names the office that sends it.
            r"\b(?:appointment|appt|visit|cita|consulta)\s+(?:with|con)\s+(?:el\s+|la\s+)?(?:dr|dra|doctor|doctora)\.?\s+[a-z{]",
            // Political disclaimers.
            r"\b(?:paid for by|pd for by|pd\. for by|authorized by|approved by|sponsored by|pagado por)\b",
            // A brand prefix: "acme pharmacy: your rx is ready", "[acme] ...".
            r"^(?:\[[a-z0-9][\w&' .-]{1,48}\]|[a-z0-9][a-z0-9&' .-]{1,48}:)\s",
            // "message from acme", "reminder from dr smith's office".
            // ("mensaje de texto" is "text message", not a sender: a name
            // starting "tex" is not read).
            r"\b(?:msg|message|text|alert|reminder|notice|update|note|mensaje)\s+(?:from|de)\s+(?:[a-su-z{]|t[a-df-z0-9]|te[a-wyz0-9])[a-z0-9&' .-]{1,40}",
            // A signature at the end: "- acme pharmacy", "~the acme team", "thanks, acme".
            r"(?:^|[\s.!?])[-~\u2013\u2014]\s?[a-z][a-z0-9&'.]*(?:\s[a-z0-9&'.]+){0,4}\s*[.!]?\s*(?:$|(?:reply|txt|text|msg|stop|to\s+opt|unsub)\b)",
            r"\b(?:thanks|thank you|sincerely|regards|gracias),?\s+(?:the\s+)?[a-z{][a-z0-9&'. ]{2,40}(?:team|staff|campaign|office|committee|pac|party|pharmacy|clinic|store|bank)\b",
        ]
        .iter()
        .map(|p| Regex::new(p).expect("static sender-id regex compiles"))
        .collect()
    })
}

/// "Notice:", "URGENT:", "Hi:" name nobody: a prefix of this kind is not a
/// sender identification.
fn is_generic_prefix(m: &str) -> bool {
    let t = m.trim();
    let Some(head) = t.strip_suffix(':').or_else(|| t.strip_prefix('[').and_then(|x| x.strip_suffix(']'))) else {
        return false;
    };
    is_generic_name(head.trim())
}

/// Whether a would-be sender name is a generic word ("notice", "breaking",
/// "patriots") that names nobody.
pub(crate) fn is_generic_name(name: &str) -> bool {
    const GENERIC: &[&str] = &[
        "notice",
        "alert",
        "reminder",
        "urgent",
        "important",
        "attention",
        "warning",
        "final notice",
        "update",
        "info",
        "congratulations",
        "congrats",
        "hi",
        "hey",
        "hello",
        "dear",
        "re",
        "fwd",
        "fw",
        "note",
        "action required",
        "security alert",
        "fraud alert",
        "account alert",
        // Calls to act and sales hooks name nobody either.
        "last chance",
        "final call",
        "breaking",
        "breaking news",
        "psa",
        "fyi",
        "announcement",
        "official",
        "hurry",
        "act now",
        "today only",
        "limited time",
        "flash sale",
        "sale",
        "deal",
        "hot deal",
        "special offer",
        "offer",
        "exclusive",
        "free",
        "winner",
        "new",
        "confirmed",
        "verification",
        "security notice",
        "delivery notice",
        "payment due",
        // Nor does an address to the readers ("Patriots: ...").
        "patriots",
        "attention patriots",
        "friends",
        "neighbors",
        "voters",
        "democrats",
        "republicans",
        "dems",
        "everyone",
        // Polls, surveys and news hooks name nobody either.
        "quick poll",
        "poll",
        "survey",
        "quick survey",
        "quick question",
        "question",
        "news",
        "news alert",
        "election alert",
        "election update",
        "important update",
        "urgent update",
        "reminder to vote",
        // Spanish.
        "encuesta",
        "votacion",
        "recuerde",
        "recuerda",
        "democratas",
        "republicanos",
        "votantes",
        "ultima hora",
        "aviso",
        "alerta",
        "urgente",
        "importante",
        "atencion",
        "recordatorio",
        "oferta",
        "ultima oportunidad",
    ];
    GENERIC.contains(&name)
}

/// Boilerplate that many unrelated texts share (opt-out instructions, rate
/// notices, help lines). It is removed before near-duplicate hashing so that
/// two different texts that both end in "Reply STOP to opt out" do not look
/// alike. Returns the byte ranges to drop from the template.
pub fn boilerplate_ranges(template: &str, out: &mut Vec<Range<usize>>) {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(concat!(
            r"(?x)",
            r"(?:\b(?:reply|respond|text|txt|send)\W{0,3}(?:stop|end|quit|cancel|unsubscribe|stopall|optout|baja)\b",
            r"(?:\W{0,3}(?:to|2|\{num\}|for)\W{0,3}(?:opt\W?out|end|stop|quit|unsubscribe|cancel|be\s+removed)\b)?",
            r"(?:[\s,]*(?:or\s+)?(?:help|info)\W{0,3}(?:for|\{num\})\W{0,3}(?:help|info)\b)?)",
            r"|\bstop\W{0,3}(?:to|2|\{num\})\W{0,3}(?:opt\W?out|end|quit|unsubscribe|cancel)\b",
            r"|\bmsg\s*(?:&|and)\s*data\s+rates\s+may\s+apply\b",
            r"|\bmsg\s+freq(?:uency)?\s+varies\b",
            r"|\b(?:responde|responda|envia)\W{0,3}(?:stop|baja)(?:\W{0,3}para\W{0,3}(?:cancelar|salir|no\s+recibir\w*))?",
            r"|\bto\s+opt\W?out\b",
        ))
        .expect("static boilerplate regex compiles")
    });
    out.clear();
    out.extend(re.find_iter(template).map(|m| m.range()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::templatize;

    fn tmpl(body: &str) -> String {
        let mut s = TemplateScratch::default();
        let mut out = String::new();
        templatize(body, &mut s, &mut out);
        out
    }

    fn has_optout(body: &str) -> bool {
        TemplateFeatures::of(&tmpl(body)).optout.is_some()
    }

    fn has_sender_id(body: &str) -> bool {
        TemplateFeatures::of(&tmpl(body)).sender_id.is_some()
    }

    #[test]
    fn optout_phrasings_are_found() {
        for body in [
            "Your Rx is ready. Reply STOP to opt out",
            "Polls close 8pm. Txt STOP to end",
            "Sale ends today! STOP to end, HELP for help",
            "Deals inside. Text QUIT to 12345",
            "Reply STOP2END",
            "reply stop 2 quit",
            "To unsubscribe reply END",
            "Opt out: reply stop",
            "Unsubscribe at acme.com/u",
            "Responde STOP para cancelar",
            "Vota el martes. Responde BAJA",
            "Msg&data rates may apply. Reply CANCEL to cancel",
            "Ｒｅｐｌｙ ＳＴＯＰ to opt out",
        ] {
            assert!(has_optout(body), "missed opt-out in {body:?}");
        }
    }

    #[test]
    fn stop_in_other_senses_is_not_optout() {
        for body in [
            "Radical Liberals & Dems are trying to STEAL this election! Stop the steal, gather at 12th & Arch 3pm",
            "We can't stop now, vote tomorrow",
            "The bus stop at 5th is closed",
            "Please end the war",
        ] {
            assert!(!has_optout(body), "false opt-out in {body:?}");
        }
    }

    #[test]
    fn sender_identification_is_found() {
        for body in [
            "Hi Chris, this is Sarah with Vote Forward. Polls are open",
            "It's Dana from the Smith campaign, can we count on you?",
            "CVS Pharmacy: your prescription is ready for pickup",
            "Your order has shipped - Acme Outdoor",
            "Early voting starts Monday. Paid for by Friends of Jane Doe",
            "Reminder from Dr. Patel's office: appointment tomorrow 3pm",
            "Hola Juan, soy Ana con Mi Familia Vota",
            "Your table is ready! ~The Corner Bistro. Reply STOP to opt out",
            "Recordatorio: tu cita con el Dr. García es mañana a las 10am. Responde 1 para confirmar",
            "Reminder: your appointment with Dr. Patel is Tuesday at 3pm. Reply C to confirm",
            "Philadelphia County Board of Elections: your mail ballot needs a signature to be counted",
            "Sierra Club Alert: the Senate votes Thursday on the clean energy bill",
            "Keystone Bank: a purchase of $42 was made on your card ending 1234",
        ] {
            assert!(has_sender_id(body), "missed sender id in {body:?}");
        }
    }

    #[test]
    fn anonymous_texts_have_no_sender_id() {
        for body in [
            "Notice: you have an unclaimed state tax refund of $312.20. Submit your claim at tax-refunds.top/a",
            "URGENT: your account will be closed today",
            "Radical Liberals & Dems are trying to STEAL this election! We need every patriot at the Convention Center at 3pm",
            "Due to high turnout, vote on Wednesday Nov 4",
            "Your package could not be delivered. Update your address: usps-redelivery.top/a1",
            "hey whats up, dinner tonight?",
            "Last chance: 50% off everything today only at shop-now.com",
            "Patriots: meet at the Convention Center at 3pm. They are stealing it",
            "Aviso: su lugar de votación ha cambiado",
            "Quick poll: who are you voting for? Reply 1 Biden 2 Trump",
            "Survey: how likely are you to vote? Reply 1-5",
            "Vote por mensaje de texto al 55123 y evite las filas.",
            "Recuerde: si vota por correo, su boleta debe llegar antes del 10 de noviembre.",
        ] {
            assert!(!has_sender_id(body), "false sender id in {body:?}");
        }
    }

    #[test]
    fn links_carry_domain_and_shortener() {
        let mut s = TemplateScratch::default();
        let mut out = String::new();
        templatize("Pay now bit.ly/x1 or https://secure.chase.com-verify.info/login", &mut s, &mut out);
        let f = MessageFeatures::from_scratch(&s);
        assert_eq!(f.links.len(), 2);
        assert_eq!(f.links[0].host, "bit.ly");
        assert!(f.links[0].shortener);
        assert_eq!(f.links[1].host, "secure.chase.com-verify.info");
        assert_eq!(f.links[1].domain.as_deref(), Some("com-verify.info"));
        assert!(!f.links[1].shortener);
    }

    #[test]
    fn phones_are_normalized_to_e164() {
        let mut s = TemplateScratch::default();
        let mut out = String::new();
        templatize("call (215) 555-0123 or +44 20 7946 0958", &mut s, &mut out);
        let f = MessageFeatures::from_scratch(&s);
        assert_eq!(f.phones, vec!["+12155550123", "+442079460958"]);
    }

    #[test]
    fn boilerplate_is_located() {
        let t = tmpl("Flu shots in stock now. Reply STOP to opt out");
        let mut r = Vec::new();
        boilerplate_ranges(&t, &mut r);
        assert_eq!(r.len(), 1);
        assert_eq!(&t[r[0].clone()], "reply stop to opt out");
    }

    #[test]
    fn optout_evidence_covers_the_whole_instruction() {
        let t = tmpl("Sale today. Reply STOP to opt out");
        let f = TemplateFeatures::of(&t);
        assert_eq!(&t[f.optout.unwrap()], "reply stop to opt out");
    }
}
