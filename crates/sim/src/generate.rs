//! The generator: a time-ordered message stream in the scan input format,
//! and its ground truth, written as it goes (memory does not grow with the
//! number of messages).
//!
//! Time: message `i` of `n` sits at quantile `(i + u)/n` of the scenario's
//! traffic curve (a day/night rhythm in US Eastern time), so the stream has
//! exactly `n` messages, in order, within the span. At each message the
//! source is background traffic with the scenario's probability, otherwise
//! one of the campaigns active at that time, by weight, damped outside its
//! bursts for bursty campaigns.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::path::Path;

use crate::evasion::Evasion;
use crate::rng::Rng;
use crate::scenario::{parse_template, CampaignSpec, Scenario, Seg, Slot};

/// Generator settings.
#[derive(Clone, Debug)]
pub struct Options {
    pub scenario: Scenario,
    pub messages: u64,
    pub seed: u64,
    /// Base evasion rates (scaled per scenario and campaign).
    pub evasion: Evasion,
    /// Real texts to mix into background traffic (half of it), if any.
    pub background_texts: Vec<String>,
    /// Send campaigns' further wordings too (see `CampaignSpec::paraphrases`).
    pub paraphrase: bool,
}

/// What was generated, per campaign.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub messages: u64,
    pub background: u64,
    pub campaigns: Vec<(String, u64)>,
}

struct Live {
    spec: CampaignSpec,
    segs: Vec<Vec<Seg>>,
    senders: Vec<String>,
    used: Vec<bool>,
    count: u64,
    /// Messages sent in quiet hours (recipient local time).
    quiet: u64,
    rng: Rng,
    phone: String,
    burst_period: i64,
    burst_phase: i64,
    evasion: Evasion,
    /// The pool proper: `senders[..pool]`; after it, the numbers the
    /// operator rotates to after a takedown.
    pool: usize,
    /// When each sender first sent.
    first_used: Vec<Option<i64>>,
    /// Messages that arrived as spam reports (the recipient reported them).
    reports: u64,
    /// The takedown, if the scenario reports this campaign: (report time,
    /// time the provider acts, the takedown).
    takedown: Option<(i64, Option<i64>, crate::scenario::Takedown)>,
}

const FIRST: &[&str] = &[
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Chris",
    "Karen",
    "Daniel",
    "Lisa",
    "Matthew",
    "Nancy",
    "Anthony",
    "Betty",
    "Mark",
    "Sandra",
    "Donald",
    "Ashley",
    "Steven",
    "Kimberly",
    "Andrew",
    "Emily",
    "Paul",
    "Donna",
    "Joshua",
    "Michelle",
    "Kevin",
    "Carol",
    "Brian",
    "Amanda",
    "Maria",
    "Jose",
    "Luis",
    "Ana",
    "Carmen",
    "Juan",
    "Priya",
    "Aisha",
    "Omar",
    "Wei",
    "Dana",
    "Tyrone",
    "Keisha",
    "Hector",
    "Rosa",
    "Sam",
    "Alex",
    "Jordan",
];

const TIMES: &[&str] = &["3pm", "4pm", "5pm", "3:30pm", "4:30pm", "2pm", "6pm"];

const WORDS: &[&str] = &[
    "i",
    "you",
    "we",
    "it",
    "the",
    "a",
    "to",
    "and",
    "is",
    "are",
    "was",
    "going",
    "go",
    "get",
    "got",
    "can",
    "can't",
    "will",
    "just",
    "so",
    "but",
    "not",
    "at",
    "on",
    "in",
    "for",
    "with",
    "my",
    "your",
    "home",
    "work",
    "store",
    "car",
    "dinner",
    "lunch",
    "tonight",
    "tomorrow",
    "today",
    "later",
    "now",
    "soon",
    "back",
    "think",
    "know",
    "want",
    "need",
    "love",
    "miss",
    "call",
    "text",
    "see",
    "saw",
    "mom",
    "dad",
    "kids",
    "dog",
    "game",
    "movie",
    "class",
    "meeting",
    "early",
    "late",
    "traffic",
    "weather",
    "rain",
    "coffee",
    "pizza",
    "beer",
    "gym",
    "bus",
    "train",
    "train",
    "park",
    "party",
    "weekend",
    "friday",
    "saturday",
    "sunday",
    "money",
    "rent",
    "bill",
    "phone",
    "charger",
    "keys",
    "door",
    "left",
    "right",
    "here",
    "there",
    "what",
    "when",
    "where",
    "why",
    "how",
    "who",
    "yeah",
    "yes",
    "no",
    "maybe",
    "lol",
    "haha",
    "omg",
    "ok",
    "okay",
    "sure",
    "thanks",
    "sorry",
    "please",
    "really",
    "so",
    "very",
    "too",
    "also",
    "still",
    "already",
    "again",
    "never",
    "always",
    "pick",
    "up",
    "drop",
    "off",
    "bring",
    "take",
    "make",
    "made",
    "cook",
    "eat",
    "ate",
    "sleep",
    "tired",
    "sick",
    "fine",
    "good",
    "great",
    "bad",
    "funny",
    "crazy",
    "nice",
    "cute",
    "picture",
    "video",
    "song",
    "show",
    "episode",
    "season",
    "team",
    "won",
    "lost",
    "score",
    "ticket",
    "flight",
    "hotel",
    "beach",
    "birthday",
    "gift",
    "cake",
    "wedding",
    "baby",
    "doctor",
    "appointment",
    "school",
    "homework",
    "test",
    "grade",
    "boss",
    "shift",
    "hours",
    "paycheck",
    "groceries",
    "milk",
    "eggs",
    "bread",
    "gas",
    "wine",
    "vote",
    "voted",
    "polls",
    "line",
    "sticker",
    "news",
    "election",
    "results",
    "count",
    "tv",
    "watching",
    "waiting",
];

const OPENERS: &[&str] =
    &["", "", "", "hey ", "hi ", "yo ", "omg ", "ok so ", "lol ", "sorry ", "hey so ", "morning! "];
const CLOSERS: &[&str] = &["", "", "", "?", "!", ".", " lol", " haha", " 😂", " ❤️", " thx", " ttyl", "??", "..."];

struct Curve {
    /// Cumulative traffic weight at the end of each minute.
    cum: Vec<f64>,
}

impl Curve {
    fn new(start: i64, span: i64) -> Self {
        let minutes = (span / 60).max(1) as usize;
        let mut cum = Vec::with_capacity(minutes);
        let mut acc = 0.0;
        for m in 0..minutes {
            let t = start + m as i64 * 60;
            let et_hour = ((t - 5 * 3600).rem_euclid(86_400)) / 3600;
            acc += match et_hour {
                0..=5 => 0.12,
                6..=7 => 0.5,
                8..=20 => 1.0,
                _ => 0.4,
            };
            cum.push(acc);
        }
        Curve { cum }
    }

    /// Seconds from the start at quantile q in [0, 1).
    fn at(&self, q: f64) -> f64 {
        let total = *self.cum.last().unwrap_or(&1.0);
        let target = q * total;
        let m = self.cum.partition_point(|&c| c <= target).min(self.cum.len() - 1);
        let before = if m == 0 { 0.0 } else { self.cum[m - 1] };
        let w = self.cum[m] - before;
        let frac = if w > 0.0 { (target - before) / w } else { 0.0 };
        (m as f64 + frac.clamp(0.0, 0.999_999)) * 60.0
    }
}

/// Whether `t` (seconds) falls in federal quiet hours (before 08:00 or from
/// 21:00) in US Eastern time. The scenarios sit in early November 2020,
/// after daylight-saving time ended: Eastern is UTC-5 throughout.
fn quiet_hour(t: i64) -> bool {
    let h = (t - 5 * 3600).rem_euclid(86_400) / 3600;
    !(8..21).contains(&h)
}

fn nanp_number(rng: &mut Rng, npa: u16) -> String {
    loop {
        let nxx = 200 + rng.below(800);
        if nxx % 100 == 11 || nxx == 555 || nxx == 950 || nxx == 958 || nxx == 959 || nxx == 976 {
            continue;
        }
        return format!("+1{npa}{nxx}{:04}", rng.below(10_000));
    }
}

fn push_alnum(out: &mut String, rng: &mut Rng, n: usize) {
    const A: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    for _ in 0..n {
        out.push(A[rng.below(A.len())] as char);
    }
}

fn push_digits(out: &mut String, rng: &mut Rng, n: usize) {
    for _ in 0..n {
        out.push((b'0' + rng.below(10) as u8) as char);
    }
}

impl Live {
    fn new(
        spec: CampaignSpec,
        rng: &mut Rng,
        idx: u64,
        evasion: &Evasion,
        scenario_scale: f64,
        paraphrase: bool,
    ) -> Self {
        let mut r = rng.fork(idx);
        let senders: Vec<String> = match spec.short_code {
            Some(sc) => vec![sc.to_string()],
            None => {
                let mut set = BTreeSet::new();
                let mut v = Vec::new();
                while v.len() < spec.pool.max(1) {
                    let npa = *r.pick(spec.npas);
                    let n = nanp_number(&mut r, npa);
                    if set.insert(n.clone()) {
                        v.push(n);
                    }
                }
                v
            }
        };
        let phone = nanp_number(&mut r, 800);
        let burst_period = 2700 + r.below(2700) as i64;
        let burst_phase = r.below(burst_period as usize) as i64;
        let wordings = spec.templates.iter().chain(if paraphrase { &spec.paraphrases[..] } else { &[] });
        let segs = wordings.map(|t| parse_template(t)).collect();
        let evasion = evasion.scaled(spec.evasion_scale * scenario_scale);
        Live {
            pool: senders.len(),
            first_used: vec![None; senders.len()],
            reports: 0,
            takedown: None,
            used: vec![false; senders.len()],
            quiet: 0,
            senders,
            segs,
            count: 0,
            rng: r,
            phone,
            burst_period,
            burst_phase,
            evasion,
            spec,
        }
    }

    /// Adds the scenario's takedown of this campaign, with fresh numbers
    /// for the operator to rotate to.
    fn with_takedown(mut self, td: Option<&crate::scenario::Takedown>, start: i64, span: i64) -> Self {
        let Some(td) = td else { return self };
        let at = start + (td.reported_at * span as f64) as i64;
        let mut have: BTreeSet<String> = self.senders.iter().cloned().collect();
        let mut added = 0;
        while added < td.rotate && self.spec.short_code.is_none() {
            let npa = *self.rng.pick(self.spec.npas);
            let n = nanp_number(&mut self.rng, npa);
            if have.insert(n.clone()) {
                self.senders.push(n);
                self.used.push(false);
                self.first_used.push(None);
                added += 1;
            }
        }
        self.takedown = Some((at, td.acts_after.map(|d| at + d), td.clone()));
        self
    }

    /// Whether the provider has silenced the pool by `t`.
    fn silenced(&self, t: i64) -> bool {
        matches!(self.takedown, Some((_, Some(act), _)) if t >= act)
    }

    /// A sender for a text at `t`: from the pool, or once silenced from
    /// the rotated numbers (`None`: silenced with nothing to rotate to).
    fn pick_sender(&mut self, t: i64) -> Option<usize> {
        if self.silenced(t) {
            let extra = self.senders.len() - self.pool;
            if extra == 0 {
                return None;
            }
            return Some(self.pool + self.rng.below(extra));
        }
        Some(self.rng.below(self.pool))
    }

    fn weight_at(&self, frac: f64, t: i64) -> f64 {
        if frac < self.spec.window.0 || frac >= self.spec.window.1 {
            return 0.0;
        }
        // Compliant senders keep quiet hours (their recipients are all in
        // US Eastern time).
        if self.spec.findings.is_empty() && quiet_hour(t) {
            return 0.0;
        }
        let mut w = self.spec.weight;
        if self.spec.bursty {
            let pos = (t + self.burst_phase).rem_euclid(self.burst_period);
            if pos >= 900 {
                w *= 0.04;
            }
        }
        w
    }

    fn body(&mut self, sender: usize, out: &mut String, scratch: &mut String) {
        out.clear();
        let r = &mut self.rng;
        let segs = &self.segs[r.below(self.segs.len())];
        for seg in segs {
            match seg {
                Seg::Lit(s) => out.push_str(s),
                Seg::Pick(opts) => out.push_str(&opts[r.below(opts.len())]),
                Seg::Choice(opts) => {
                    let pick = if opts.len() > 1 && r.chance(self.evasion.word_swap) {
                        1 + r.below(opts.len() - 1)
                    } else {
                        0
                    };
                    out.push_str(&opts[pick]);
                }
                Seg::Slot(slot) => match slot {
                    Slot::First => out.push_str(r.pick_str(FIRST)),
                    Slot::Vol => out.push_str(FIRST[(sender * 7 + 3) % FIRST.len()]),
                    Slot::Link => {
                        if r.chance(self.spec.shortener_rate) {
                            out.push_str(r.pick_str(&["bit.ly/", "tinyurl.com/", "rb.gy/", "cutt.ly/"]));
                            push_alnum(out, r, 6);
                        } else {
                            out.push_str("https://");
                            out.push_str(r.pick(&self.spec.domains).as_str());
                            out.push('/');
                            let len = 5 + r.below(4);
                            push_alnum(out, r, len);
                        }
                    }
                    Slot::Code => {
                        out.push_str(r.pick_str(&["US", "1Z", "TBA", "9400"]));
                        push_digits(out, r, 12);
                    }
                    Slot::Num => push_digits(out, r, 6),
                    Slot::Amount => {
                        out.push('$');
                        out.push_str(&(1 + r.below(999)).to_string());
                        out.push('.');
                        push_digits(out, r, 2);
                    }
                    Slot::Last4 => push_digits(out, r, 4),
                    Slot::Time => out.push_str(r.pick_str(TIMES)),
                    Slot::Phone => out.push_str(&self.phone),
                },
            }
        }
        self.evasion.apply(out, r, scratch);
    }
}

fn chatter(rng: &mut Rng, out: &mut String) {
    out.clear();
    out.push_str(rng.pick_str(OPENERS));
    let n = 3 + rng.below(14);
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        if rng.chance(0.06) {
            out.push_str(rng.pick_str(FIRST));
        } else if rng.chance(0.04) {
            out.push_str(&(1 + rng.below(12)).to_string());
        } else {
            out.push_str(rng.pick_str(WORDS));
        }
    }
    out.push_str(rng.pick_str(CLOSERS));
}

/// Writes `s` as a JSON string literal.
fn json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// RFC 3339 UTC for epoch seconds (days-from-civil inverse, Howard Hinnant).
pub fn rfc3339(t: i64, out: &mut Vec<u8>) {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    let _ = write!(out, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60);
}

/// Generates the stream and truth. `numbers`, if given, is a directory that
/// receives the number data attribution reads (see `docs/simulate.md`).
pub fn generate(
    opts: &Options,
    stream: &mut dyn Write,
    truth: &mut dyn Write,
    numbers: Option<&Path>,
) -> io::Result<Summary> {
    let sc = &opts.scenario;
    let mut rng = Rng::new(opts.seed);
    let mut live: Vec<Live> = sc
        .campaigns
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, c)| {
            let td = sc.takedowns.iter().find(|t| t.label == c.label);
            Live::new(c, &mut rng, i as u64, &opts.evasion, sc.evasion_scale, opts.paraphrase)
                .with_takedown(td, sc.start, sc.span)
        })
        .collect();
    let curve = Curve::new(sc.start, sc.span);
    let n = opts.messages;
    let mut body = String::with_capacity(512);
    let mut scratch = String::with_capacity(512);
    let mut line: Vec<u8> = Vec::with_capacity(1024);
    let mut tline: Vec<u8> = Vec::with_capacity(128);
    let mut weights: Vec<f64> = vec![0.0; live.len()];
    let mut summary = Summary::default();
    for i in 0..n {
        let q = (i as f64 + rng.f64()) / n as f64;
        let t = sc.start + curve.at(q) as i64;
        let frac = (t - sc.start) as f64 / sc.span as f64;
        let mut chosen = None;
        if !rng.chance(sc.background) {
            let mut total = 0.0;
            for (k, l) in live.iter().enumerate() {
                weights[k] = l.weight_at(frac, t);
                total += weights[k];
            }
            if total > 0.0 {
                let mut x = rng.f64() * total;
                for (k, w) in weights.iter().enumerate() {
                    if x < *w {
                        chosen = Some(k);
                        break;
                    }
                    x -= w;
                }
                chosen = chosen.or(Some(live.len() - 1));
            }
        }
        // A campaign whose numbers were silenced, with none to rotate to,
        // sends nothing more: the slot goes to background traffic.
        let picked = chosen.and_then(|k| live[k].pick_sender(t).map(|s| (k, s)));
        if picked.is_none() {
            chosen = None;
        }
        let to_npa = *rng.pick(&[215u16, 267, 445, 484, 610, 717, 814, 412, 724]);
        let to = nanp_number(&mut rng, to_npa);
        let (from, source, label): (String, &str, Option<&str>) = match chosen {
            Some(k) => {
                let l = &mut live[k];
                let s = picked.map_or(0, |p| p.1);
                l.used[s] = true;
                l.first_used[s].get_or_insert(t);
                l.count += 1;
                l.quiet += quiet_hour(t) as u64;
                l.body(s, &mut body, &mut scratch);
                let src = if l.rng.chance(l.spec.reported) { "report" } else { "gateway" };
                l.reports += (src == "report") as u64;
                (l.senders[s].clone(), src, Some(l.spec.label.as_str()))
            }
            None => {
                summary.background += 1;
                if !opts.background_texts.is_empty() && rng.chance(0.5) {
                    body.clear();
                    body.push_str(rng.pick(&opts.background_texts).as_str());
                } else {
                    chatter(&mut rng, &mut body);
                }
                let npa = *rng.pick(&[215u16, 267, 484, 610, 412, 717, 202, 301, 973]);
                (nanp_number(&mut rng, npa), "gateway", None)
            }
        };
        line.clear();
        let _ = write!(line, "{{\"id\":\"m{:09}\",\"ts\":\"", i + 1);
        rfc3339(t, &mut line);
        line.extend_from_slice(b"\",\"from\":\"");
        line.extend_from_slice(from.as_bytes());
        line.extend_from_slice(b"\",\"to\":\"");
        line.extend_from_slice(to.as_bytes());
        line.extend_from_slice(b"\",\"body\":");
        json_str(&mut line, &body);
        line.extend_from_slice(b",\"source\":\"");
        line.extend_from_slice(source.as_bytes());
        line.extend_from_slice(b"\"}\n");
        stream.write_all(&line)?;

        tline.clear();
        let _ = write!(tline, "{{\"type\":\"message\",\"id\":\"m{:09}\",\"campaign\":", i + 1);
        match label {
            Some(l) => json_str(&mut tline, l),
            None => tline.extend_from_slice(b"null"),
        }
        tline.extend_from_slice(b"}\n");
        truth.write_all(&tline)?;
    }
    summary.messages = n;
    for l in &live {
        let senders: Vec<&str> = l.senders.iter().zip(&l.used).filter(|(_, u)| **u).map(|(s, _)| s.as_str()).collect();
        // Every recipient is in Eastern time, so a campaign breaks the
        // quiet-hours rule when any of its messages went out in them.
        let mut findings = l.spec.findings.clone();
        if l.quiet > 0 {
            findings.push("quiet-hours");
        }
        // Recipients reported some of its texts: textwatch counts them.
        if l.reports > 0 {
            findings.push("reported-by-recipients");
        }
        let mut fact = serde_json::json!({
            "type": "campaign",
            "label": l.spec.label,
            "kind": l.spec.kind,
            "category": l.spec.category,
            "provider": l.spec.provider,
            "messages": l.count,
            "senders": senders,
            "findings": findings,
        });
        if let Some((at, act, td)) = &l.takedown {
            // The report names the numbers used by then; what follows is
            // what the provider and the operator did, so the state a
            // follow-up should find.
            let named: Vec<&str> = l
                .senders
                .iter()
                .zip(&l.first_used)
                .filter(|(_, f)| f.is_some_and(|f| f <= *at))
                .map(|(s, _)| s.as_str())
                .collect();
            let rotated: Vec<&str> = l.senders[l.pool..]
                .iter()
                .zip(&l.used[l.pool..])
                .filter(|(_, u)| **u)
                .map(|(s, _)| s.as_str())
                .collect();
            let expect = match (act, rotated.is_empty()) {
                (None, _) => "ignored",
                (Some(_), false) => "rotated",
                (Some(_), true) => "quiet",
            };
            let mut when = Vec::new();
            rfc3339(*at, &mut when);
            fact["report"] = serde_json::json!({
                "at": String::from_utf8_lossy(&when),
                "provider": l.spec.provider,
                "numbers": named,
                "acts_after_s": td.acts_after,
                "rotated": rotated,
                "expect": expect,
            });
        }
        serde_json::to_writer(&mut *truth, &fact)?;
        truth.write_all(b"\n")?;
        summary.campaigns.push((l.spec.label.clone(), l.count));
    }
    if let Some(dir) = numbers {
        write_numbers(dir, &live)?;
    }
    stream.flush()?;
    truth.flush()?;
    Ok(summary)
}

/// Original exchange holders for simulated exchanges: who NANPA would say
/// holds the block, before leases and ports.
const HOLDERS: &[(&str, &str)] = &[
    ("Bandwidth.com CLEC, LLC", "981E"),
    ("Onvoy, LLC", "4992"),
    ("Level 3 Communications, LLC", "8825"),
    ("Cellco Partnership DBA Verizon Wireless", "6006"),
    ("T-Mobile USA, Inc.", "6529"),
];

fn write_numbers(dir: &Path, live: &[Live]) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut inv = csv::Writer::from_path(dir.join("inventory.csv"))?;
    inv.write_record(["prefix", "provider", "source"])?;
    let mut exchanges = BTreeSet::new();
    for l in live {
        for (s, used) in l.senders.iter().zip(&l.used) {
            if !*used {
                continue;
            }
            inv.write_record([s.as_str(), l.spec.provider, "simulated gateway inventory"])?;
            if s.starts_with("+1") && s.len() == 12 {
                exchanges.insert(s[2..8].to_string());
            }
        }
    }
    inv.flush()?;
    let mut co = std::io::BufWriter::new(std::fs::File::create(dir.join("nanpa-co.txt"))?);
    writeln!(
        co,
        "State\tNPA-NXX\tOCN\tCompany\tRateCenter\tEffectiveDate\tUse\tAssignDate\tInitial/Growth\tPooled Code\tIn Service File Updated 11/01/2020"
    )?;
    let mut blocks = csv::Writer::from_path(dir.join("nanpa-blocks.csv"))?;
    blocks.write_record([
        "Region",
        "State",
        "NPA",
        "NXX",
        "X",
        "STATUS",
        "Code Holder",
        "Contaminated (Y or N)",
        "Contaminated TNs not Available for Assignment",
        "Rate Center",
        "Block Effective Date",
        "Block Available Date",
        "Assigned To",
        "OCN",
        "Date Assigned",
    ])?;
    for (k, ex) in exchanges.iter().enumerate() {
        let (company, ocn) = HOLDERS[k % HOLDERS.len()];
        let pooled = k % 2 == 0;
        writeln!(
            co,
            "PA\t{}-{}\t{ocn}\t{company}\tPHILADELPHIA\t01/15/2015\tAS\t01/02/2015\tI\t{}\tY",
            &ex[..3],
            &ex[3..],
            if pooled { "Y" } else { "N" }
        )?;
        if pooled {
            // Each 1,000-block of a pooled exchange has its own holder.
            for x in 0..10u32 {
                let (bc, bo) = HOLDERS[(k + x as usize + 1) % HOLDERS.len()];
                blocks.write_record([
                    "1",
                    "PA",
                    &ex[..3],
                    &ex[3..],
                    &x.to_string(),
                    "AS",
                    bc,
                    "N",
                    "",
                    "PHILADELPHIA",
                    "03/01/2019",
                    "",
                    bc,
                    bo,
                    "03/01/2019",
                ])?;
            }
        }
    }
    co.flush()?;
    blocks.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::by_name;

    fn run(seed: u64, n: u64) -> (Vec<u8>, Vec<u8>, Summary) {
        let opts = Options {
            scenario: by_name("election-2020").unwrap(),
            messages: n,
            seed,
            evasion: Evasion::default(),
            background_texts: vec![],
            paraphrase: false,
        };
        let (mut s, mut t) = (Vec::new(), Vec::new());
        let sum = generate(&opts, &mut s, &mut t, None).unwrap();
        (s, t, sum)
    }

    #[test]
    fn same_seed_same_bytes() {
        let a = run(11, 3000);
        let b = run(11, 3000);
        assert_eq!(a.0, b.0);
        assert_eq!(a.1, b.1);
        assert_ne!(a.0, run(12, 3000).0);
    }

    #[test]
    fn truth_matches_stream() {
        let (s, t, sum) = run(5, 5000);
        let msgs: Vec<serde_json::Value> =
            std::str::from_utf8(&s).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let truth: Vec<serde_json::Value> =
            std::str::from_utf8(&t).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(msgs.len(), 5000);
        let labels: Vec<&serde_json::Value> = truth.iter().filter(|v| v["type"] == "message").collect();
        assert_eq!(labels.len(), 5000);
        let mut last = String::new();
        for (m, l) in msgs.iter().zip(&labels) {
            assert_eq!(m["id"], l["id"]);
            let ts = m["ts"].as_str().unwrap().to_string();
            assert!(ts >= last, "time order");
            last = ts;
        }
        for fact in truth.iter().filter(|v| v["type"] == "campaign") {
            let label = fact["label"].as_str().unwrap();
            let mine: Vec<&serde_json::Value> =
                msgs.iter().zip(&labels).filter(|(_, l)| l["campaign"] == label).map(|(m, _)| m).collect();
            assert_eq!(mine.len() as u64, fact["messages"].as_u64().unwrap(), "{label}");
            let senders: BTreeSet<&str> = mine.iter().map(|m| m["from"].as_str().unwrap()).collect();
            let facts: BTreeSet<&str> =
                fact["senders"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
            assert_eq!(senders, facts, "{label}");
        }
        assert!(sum.background > 2000 && sum.background < 3500, "{}", sum.background);
        let incident = truth.iter().find(|v| v["label"] == "incident-steal").unwrap();
        assert!(incident["senders"].as_array().unwrap().len() <= 13);
        assert!(incident["messages"].as_u64().unwrap() > 5);
    }

    #[test]
    fn rfc3339_is_right() {
        let mut b = Vec::new();
        rfc3339(1_604_502_131, &mut b);
        assert_eq!(b, b"2020-11-04T15:02:11Z");
        b.clear();
        rfc3339(951_782_400, &mut b); // leap day 2000
        assert_eq!(b, b"2000-02-29T00:00:00Z");
    }

    #[test]
    fn day_and_night_rhythm() {
        let c = Curve::new(1_604_401_200, 36 * 3600);
        // The first half of the traffic lands well before the middle of the
        // span is reached at night: daytime carries most messages.
        let night_start = 1_604_401_200 + 13 * 3600; // 8 pm ET on the 3rd... 2 am ET at +19h
        let _ = night_start;
        let at_half = c.at(0.5);
        assert!(at_half > 0.0 && at_half < 36.0 * 3600.0);
        assert!(c.at(0.1) < c.at(0.2));
    }
}
