//! Campaign links: joining what one sender sends for one purpose, and
//! keeping different senders apart.
//!
//! Near-duplicate search (in the parent module) joins copies and light
//! rewordings. This module joins what it cannot see: a new wording sent by
//! a number of a campaign ([`Engine::sender_join`]), and two campaigns that
//! share infrastructure ([`Engine::settle_links`] -> `try_link` -> `merge`).
//! Each decision needs two kinds of evidence, infrastructure and meaning:
//!
//! | shared | meaning at least | names |
//! | --- | --- | --- |
//! | many numbers (2+, half the smaller pool) | `link_meaning` (`join_meaning` when most are busy in other campaigns) | may differ when 3+ numbers are shared (one operator, two brands) |
//! | one number (not a platform's) | `join_meaning` | must not conflict |
//! | a link domain or callback number (not a brand's own, not a public resource) | `link_meaning` | must be the same |
//!
//! Every join is recorded as a [`LinkRow`] with the evidence a person reads.

use hashbrown::HashSet;

use super::{Cluster, Engine, SenderStat, NONE};
use crate::analyze::Analyzed;
use crate::meaning::{cosine, Vector};
use crate::state::LinkRow;

/// Most campaigns one new shared number is compared with.
const MAX_LINK_TRIES: usize = 64;
/// Most meaning vectors and infrastructure items kept per campaign.
pub(super) const MAX_VECS: usize = 8;
const MAX_INFRA: usize = 64;

/// Why two campaigns are being compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via<'a> {
    Senders,
    Domain(&'a str),
    Callback(&'a str),
}

impl Engine {
    /// The live campaign a cluster is part of (itself unless merged).
    pub(super) fn find(&self, mut c: u32) -> u32 {
        while let Some(cl) = self.clusters.get(c as usize) {
            if cl.merged_into == NONE || cl.merged_into == c {
                break;
            }
            c = cl.merged_into;
        }
        c
    }

    /// The key of the template that leads campaign `c`.
    pub(super) fn leader_key(&self, c: u32) -> u64 {
        let cl = &self.clusters[c as usize];
        if cl.leader == NONE {
            cl.label
        } else {
            self.templates[cl.leader as usize].key
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn record_link(
        &mut self,
        c: u32,
        variant: u64,
        via: u64,
        kind: &str,
        evidence: String,
        similarity: f32,
        ts: i64,
    ) {
        self.pending_links.push(LinkRow {
            cluster: c,
            variant,
            via,
            kind: kind.to_string(),
            evidence,
            similarity: (similarity * 1000.0).round() / 1000.0,
            ts,
        });
    }

    /// After a message was counted in campaign `c`: follows the new
    /// (campaign, number), domain and callback-number pairs it made to the
    /// other campaigns that share them, and merges those that say the same
    /// thing. Returns the campaign the message ends up in.
    pub(super) fn settle_links(&mut self, c: u32, a: &Analyzed, ts: i64) -> u32 {
        for (cl, sender) in std::mem::take(&mut self.link_queue) {
            let cl = self.find(cl);
            let others: Vec<u32> = match self.sender_clusters.get(&sender) {
                Some(v) => v.iter().copied().filter(|&d| d != cl).take(MAX_LINK_TRIES).collect(),
                None => Vec::new(),
            };
            for d in others {
                self.try_link(cl, d, Via::Senders, ts);
            }
            let cl = self.find(cl);
            let v = self.sender_clusters.entry(sender).or_default();
            if let Err(at) = v.binary_search(&cl) {
                v.insert(at, cl);
            }
        }
        let mut c = self.find(c);
        for l in &a.features.links {
            if l.shortener {
                continue;
            }
            let Some(domain) = l.domain.as_deref() else { continue };
            if self.official.contains(domain) {
                continue;
            }
            c = self.note_infra(c, domain, false, ts);
        }
        for p in &a.features.phones {
            if p.len() >= 10 && p.as_str() != a.sender {
                c = self.note_infra(c, p, true, ts);
            }
        }
        self.find(c)
    }

    /// Counts a link domain or callback number for campaign `c` and links
    /// `c` to the other campaigns that carry it.
    fn note_infra(&mut self, c: u32, item: &str, phone: bool, ts: i64) -> u32 {
        let cl = &self.clusters[c as usize];
        let have = if phone { &cl.phones } else { &cl.domains };
        if have.iter().any(|d| &**d == item) || have.len() >= MAX_INFRA {
            return c;
        }
        let index = if phone { &mut self.phone_clusters } else { &mut self.domain_clusters };
        let list = index.entry(item.into()).or_default();
        // A domain many unrelated campaigns use (a public resource, a
        // platform's own) is nobody's infrastructure in particular.
        let shared = list.len() + 1 >= self.cfg.platform_clients;
        let others: Vec<u32> = if shared { Vec::new() } else { list.clone() };
        if let Err(at) = list.binary_search(&c) {
            list.insert(at, c);
        }
        let cl = &mut self.clusters[c as usize];
        if phone {
            cl.phones.push(item.into());
        } else {
            cl.domains.push(item.into());
        }
        self.touch_cluster(c);
        if shared {
            return c;
        }
        let mut c = c;
        for d in others {
            let via = if phone { Via::Callback(item) } else { Via::Domain(item) };
            self.try_link(c, d, via, ts);
            c = self.find(c);
        }
        c
    }

    /// Meaning similarity of two campaigns: the best pair of their wordings'
    /// vectors, or (without a meaning table) of their representatives'
    /// text signatures.
    fn meaning_sim(&self, c: u32, d: u32) -> f32 {
        let (a, b) = (&self.clusters[c as usize], &self.clusters[d as usize]);
        if self.meaning.is_some() && !a.vecs.is_empty() && !b.vecs.is_empty() {
            let mut best = f32::MIN;
            for x in &a.vecs {
                for y in &b.vecs {
                    best = best.max(cosine(x, y));
                }
            }
            return best;
        }
        let mut best = 0f32;
        for x in &a.reps {
            for y in &b.reps {
                best = best.max(crate::minhash::similarity(x, y));
            }
        }
        best
    }

    /// Numbers two campaigns share, how many of those are busy (sending
    /// for `platform_clients` other campaigns besides these two: a
    /// platform's or a shared pool's), and one that is not.
    fn shared_senders(&self, c: u32, d: u32) -> (usize, usize, Option<u32>) {
        let (small, big) = if self.clusters[c as usize].sender_list.len() <= self.clusters[d as usize].sender_list.len()
        {
            (c, d)
        } else {
            (d, c)
        };
        let (mut k, mut busy) = (0, 0);
        let mut example = None;
        for &s in &self.clusters[small as usize].sender_list {
            if self.cluster_senders.contains_key(&(big, s)) {
                k += 1;
                let others =
                    self.sender_clusters.get(&s).map_or(0, |v| v.iter().filter(|&&x| x != c && x != d).count());
                if others >= self.cfg.platform_clients {
                    busy += 1;
                }
                // One number alone is evidence only when it is no
                // platform's: it sends for fewer campaigns in all, these
                // two included.
                if others + 2 < self.cfg.platform_clients {
                    example.get_or_insert(s);
                }
            }
        }
        (k, busy, example)
    }

    /// Decides whether campaigns `c` and `d` are one, and merges them when
    /// they are. Returns whether they are one now.
    fn try_link(&mut self, c: u32, d: u32, via: Via<'_>, ts: i64) -> bool {
        let (c, d) = (self.find(c), self.find(d));
        if c == d {
            return true;
        }
        if self.apart.contains(&(c.min(d), c.max(d))) {
            return false;
        }
        let (a, b) = (&self.clusters[c as usize], &self.clusters[d as usize]);
        let w = self.cfg.link_window_ms;
        if a.first_ts > b.last_ts + w || b.first_ts > a.last_ts + w {
            return false;
        }
        // Every link needs at least a related meaning: the cheap test first
        // (a large shared pool that never merges is then not walked).
        let sim = self.meaning_sim(c, d);
        if sim < self.cfg.link_meaning {
            return false;
        }
        let (k, busy, example) = self.shared_senders(c, d);
        let (a, b) = (&self.clusters[c as usize], &self.clusters[d as usize]);
        let smaller = a.sender_list.len().min(b.sender_list.len());
        let many_numbers = k >= 2 && 2 * k >= smaller;
        let conflict = crate::identity::conflict(a.actor.as_deref(), b.actor.as_deref());
        // A link domain or callback number is weaker evidence than the
        // numbers themselves (several organizations send people to one
        // voter-information site): the names must agree too.
        let same_name = crate::identity::compatible(a.actor.as_deref(), b.actor.as_deref());
        // Numbers that also send for many other campaigns (a shared pool)
        // say less: the texts must then say the same thing, not merely a
        // related one.
        let pool_bar = if 2 * busy > k { self.cfg.join_meaning } else { self.cfg.link_meaning };
        let (ok, kind, evidence) = match via {
            _ if many_numbers => (
                sim >= pool_bar && (!conflict || k >= 3),
                "senders",
                format!("shares {k} of {smaller} numbers; meaning similarity {sim:.2}"),
            ),
            Via::Domain(dom) => (
                sim >= self.cfg.link_meaning && same_name,
                "domain",
                format!("same link domain {dom}; meaning similarity {sim:.2}"),
            ),
            Via::Callback(p) => (
                sim >= self.cfg.link_meaning && same_name,
                "callback",
                format!("same callback number {p}; meaning similarity {sim:.2}"),
            ),
            Via::Senders => match example {
                Some(s) => (
                    sim >= self.cfg.join_meaning && !conflict,
                    "sender",
                    format!("shares number {}; meaning similarity {sim:.2}", self.sender_names[s as usize]),
                ),
                None => (false, "", String::new()),
            },
        };
        if !ok {
            return false;
        }
        let (into, from) = (c.min(d), c.max(d));
        let (variant, via_key) = (self.leader_key(from), self.leader_key(into));
        self.merge(from, into);
        self.record_link(into, variant, via_key, kind, evidence, sim, ts);
        true
    }

    /// Joins campaign `from` into `into`: its templates, numbers,
    /// recipients, minutes, wordings and infrastructure move; `from` keeps
    /// its row (with its counts at the time), pointing at `into`, so its id
    /// resolves there.
    fn merge(&mut self, from: u32, into: u32) {
        let f = {
            let g = &mut self.clusters[from as usize];
            let taken = Cluster {
                members: std::mem::take(&mut g.members),
                sender_list: std::mem::take(&mut g.sender_list),
                domains: std::mem::take(&mut g.domains),
                phones: std::mem::take(&mut g.phones),
                rcpts: std::mem::take(&mut g.rcpts),
                vecs: std::mem::take(&mut g.vecs),
                actor: g.actor.take(),
                reps: g.reps.clone(),
                ..g.clone()
            };
            g.merged_into = into;
            taken
        };
        self.touch_cluster(from);
        for &t in &f.members {
            self.templates[t as usize].cluster = into;
            self.touch_template(t);
        }
        for &s in &f.sender_list {
            let Some(st) = self.cluster_senders.remove(&(from, s)) else { continue };
            let new = match self.cluster_senders.entry((into, s)) {
                hashbrown::hash_map::Entry::Occupied(mut o) => {
                    let x = o.get_mut();
                    x.messages += st.messages;
                    x.first_ts = x.first_ts.min(st.first_ts);
                    x.last_ts = x.last_ts.max(st.last_ts);
                    x.dirty = true;
                    false
                }
                hashbrown::hash_map::Entry::Vacant(v) => {
                    v.insert(SenderStat { dirty: true, ..st });
                    true
                }
            };
            self.dirty_senders.push((into, s));
            if new {
                self.clusters[into as usize].sender_list.push(s);
            }
            if let Some(v) = self.sender_clusters.get_mut(&s) {
                v.retain(|&x| x != from);
                if let Err(at) = v.binary_search(&into) {
                    v.insert(at, into);
                }
            }
        }
        self.dirty_senders.retain(|&(c, _)| c != from);
        for (index, items) in [(&mut self.domain_clusters, &f.domains), (&mut self.phone_clusters, &f.phones)] {
            for d in items {
                if let Some(v) = index.get_mut(d) {
                    v.retain(|&x| x != from);
                    if let Err(at) = v.binary_search(&into) {
                        v.insert(at, into);
                    }
                }
            }
        }
        let moved: Vec<((u32, i64), u32)> =
            self.minutes.iter().filter(|((c, _), _)| *c == from).map(|(&k, &v)| (k, v)).collect();
        for ((_, m), n) in moved {
            self.minutes.remove(&(from, m));
            *self.minutes.entry((into, m)).or_insert(0) += n;
        }
        for (c, _) in &mut self.new_recipients {
            if *c == from {
                *c = into;
            }
        }
        // Links recorded earlier in this batch belong to the survivor, and
        // an analyst's split holds against whatever the absorbed one joins.
        for l in &mut self.pending_links {
            if l.cluster == from {
                l.cluster = into;
            }
        }
        let apart: Vec<(u32, u32)> = self.apart.iter().copied().filter(|&(a, b)| a == from || b == from).collect();
        for (a, b) in apart {
            let other = if a == from { b } else { a };
            if other != into {
                self.apart.insert((other.min(into), other.max(into)));
            }
        }
        let max_reps = self.cfg.max_reps;
        let t = &mut self.clusters[into as usize];
        t.messages += f.messages;
        t.templates += f.templates;
        t.first_ts = t.first_ts.min(f.first_ts);
        t.last_ts = t.last_ts.max(f.last_ts);
        t.formed_ts = t.formed_ts.min(f.formed_ts);
        t.senders = t.sender_list.len() as u32;
        t.members.extend_from_slice(&f.members);
        let mut rcpts: HashSet<u64> = f.rcpts;
        if rcpts.len() > t.rcpts.len() {
            std::mem::swap(&mut rcpts, &mut t.rcpts);
        }
        t.rcpts.extend(rcpts);
        t.recipients = t.rcpts.len() as u32;
        if t.actor.is_none() {
            t.actor = f.actor;
        }
        for v in f.vecs {
            if t.vecs.len() < MAX_VECS {
                t.vecs.push(v);
            }
        }
        for d in f.domains {
            if !t.domains.contains(&d) && t.domains.len() < MAX_INFRA {
                t.domains.push(d);
            }
        }
        for p in f.phones {
            if !t.phones.contains(&p) && t.phones.len() < MAX_INFRA {
                t.phones.push(p);
            }
        }
        let mut new_reps = Vec::new();
        for r in f.reps {
            if t.reps.len() < max_reps {
                t.reps.push(r);
                new_reps.push(r);
            }
        }
        for r in &new_reps {
            self.reps.insert(r, into);
        }
        self.touch_cluster(into);
        self.pending_merges.push((from, into));
    }

    /// The campaign a new wording sent by one of a campaign's numbers
    /// joins: the one whose meaning is closest, if close enough
    /// (`join_meaning`), with no other name in the text and the number no
    /// platform's. Returns it, the similarity and the wording's vector.
    pub(super) fn sender_join(&mut self, sender: Option<u32>, text: &str, ts: i64) -> Option<(u32, f32, Vector)> {
        let sender = sender?;
        let clusters = self.sender_clusters.get(&sender)?;
        if clusters.is_empty() || clusters.len() >= self.cfg.platform_clients {
            return None;
        }
        let clusters = clusters.clone();
        let v = self.meaning.as_ref()?.embed(text)?;
        let actor = crate::identity::of(text);
        let mut best: Option<(u32, f32)> = None;
        for c in clusters {
            let c = self.find(c);
            let cl = &self.clusters[c as usize];
            if ts > cl.last_ts + self.cfg.link_window_ms
                || crate::identity::conflict(actor.as_deref(), cl.actor.as_deref())
            {
                continue;
            }
            let sim = cl.vecs.iter().map(|x| cosine(x, &v)).fold(f32::MIN, f32::max);
            if sim >= self.cfg.join_meaning && best.is_none_or(|(_, b)| sim > b) {
                best = Some((c, sim));
            }
        }
        best.map(|(c, sim)| (c, sim, v))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::analyze::{Analyzer, Scratch};
    use crate::campaigns::{Engine, EngineConfig, Outcome};
    use crate::meaning::MeaningModel;
    use crate::message::Message;

    /// The shipped meaning table (what `scan` and `serve` use).
    fn meaning() -> Arc<MeaningModel> {
        Arc::new(MeaningModel::from_bytes(include_bytes!("../../../../models/meaning.twe")).unwrap())
    }

    struct Run {
        engine: Engine,
        an: Analyzer,
        s: Scratch,
        n: i64,
    }

    impl Run {
        fn new() -> Self {
            let mut engine = Engine::new(EngineConfig::default());
            engine.set_meaning(meaning());
            Run { engine, an: Analyzer::new(b"k", 20), s: Scratch::default(), n: 0 }
        }

        /// Sends `body` from `from`; returns the campaign label.
        fn send(&mut self, from: &str, body: &str) -> Option<u64> {
            self.n += 1;
            let m = Message {
                id: Some(format!("m{}", self.n)),
                ts_ms: 1_604_502_000_000 + self.n * 60_000,
                from: from.into(),
                to: Some(format!("+1267555{:04}", self.n)),
                body: body.into(),
                ..Default::default()
            };
            let a = self.an.analyze(m, &mut self.s);
            match self.engine.assign(&a, None) {
                Outcome::Accepted { campaign, .. } => campaign,
                Outcome::Duplicate => None,
            }
        }

        /// The live campaign a label belongs to now.
        fn now(&self, label: Option<u64>) -> Option<u64> {
            let c = self.engine.clusters.iter().position(|c| Some(c.label) == label)? as u32;
            Some(self.engine.clusters[self.engine.find(c) as usize].label)
        }
    }

    fn pool(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("+1{prefix}{:04}", 1000 + i * 7)).collect()
    }

    #[test]
    fn a_reworded_wave_from_one_pool_is_one_campaign() {
        let mut r = Run::new();
        let nums = pool("215555", 13);
        let wordings = [
            "They are trying to STEAL this election in Philadelphia! Patriots, gather at 12th & Arch near the Convention Center at 3pm today.",
            "The election is being stolen in Philly. Be at the Convention Center, 12th & Arch, 3pm today. Bring everyone you know.",
            "Están robando esta elección en Filadelfia. Reúnanse en la esquina de 12th y Arch, frente al Centro de Convenciones, a las 3pm hoy.",
        ];
        let mut labels = Vec::new();
        for round in 0..6 {
            for (w, text) in wordings.iter().enumerate() {
                labels.push(r.send(&nums[(round * 3 + w) % nums.len()], text));
            }
        }
        let campaigns: std::collections::BTreeSet<u64> = labels.iter().filter_map(|l| r.now(*l)).collect();
        assert_eq!(campaigns.len(), 1, "three wordings from one pool: {campaigns:?}");
        let d = r.engine.take_delta(|_| None);
        assert!(d.links.iter().any(|l| l.kind == "sender" || l.kind == "senders"), "the join says why: {:?}", d.links);
    }

    #[test]
    fn one_script_from_two_organizations_is_two_campaigns() {
        let mut r = Run::new();
        let (a, b) = (pool("267555", 20), pool("484555", 20));
        let mut la = Vec::new();
        let mut lb = Vec::new();
        for i in 0..40 {
            la.push(r.send(&a[i % 20], &format!("Hi Chris, this is Sam with Philly Votes Together. Polls are open until 8pm! Find your polling place at iwillvote.com/pa{i} Reply STOP to opt out")));
            lb.push(r.send(&b[i % 20], &format!("Hi Chris, this is Sam with Keystone Action Fund. Polls are open until 8pm! Find your polling place at iwillvote.com/pa{i} Reply STOP to opt out")));
        }
        let ca: std::collections::BTreeSet<u64> = la.iter().filter_map(|l| r.now(*l)).collect();
        let cb: std::collections::BTreeSet<u64> = lb.iter().filter_map(|l| r.now(*l)).collect();
        assert_eq!(ca.len(), 1);
        assert_eq!(cb.len(), 1);
        assert_ne!(ca, cb, "two organizations, two pools, one script: two campaigns");
    }

    #[test]
    fn meaning_alone_does_not_join_senders() {
        let mut r = Run::new();
        let (a, b) = (pool("412555", 10), pool("717555", 10));
        let mut la = Vec::new();
        let mut lb = Vec::new();
        for i in 0..30 {
            la.push(r.send(
                &a[i % 10],
                "Polls are open until 8pm tonight! Make sure you vote, find your polling place online",
            ));
            lb.push(r.send(&b[i % 10], "Have you voted yet? You still have time, the polls close at 8pm tonight"));
        }
        let ca: std::collections::BTreeSet<u64> = la.iter().filter_map(|l| r.now(*l)).collect();
        let cb: std::collections::BTreeSet<u64> = lb.iter().filter_map(|l| r.now(*l)).collect();
        assert!(ca.is_disjoint(&cb), "same meaning, different numbers: {ca:?} {cb:?}");
    }

    #[test]
    fn a_platform_short_code_links_no_clients() {
        let mut r = Run::new();
        let clients = [
            "Bright Smile Dental: reminder of your cleaning tomorrow at 3pm. Reply C to confirm. Reply STOP to opt out",
            "Trailhead Outfitters: 30% off all boots through Sunday. Shop at trailheadoutfitters.com Reply STOP to opt out",
            "Peak Fitness: your membership renews on the 15th. Manage it in the app. Reply STOP to unsubscribe",
            "City of Maple Grove: street sweeping on your block Thursday morning. Please move your car. Txt STOP to end",
        ];
        let mut labels = Vec::new();
        for _ in 0..5 {
            for c in clients {
                labels.push(r.send("62000", c));
            }
        }
        let campaigns: std::collections::BTreeSet<u64> = labels.iter().filter_map(|l| r.now(*l)).collect();
        assert_eq!(campaigns.len(), 4, "one short code, four clients: {campaigns:?}");
    }

    #[test]
    fn two_lures_from_one_pool_are_one_operation() {
        let mut r = Run::new();
        let nums = pool("302555", 8);
        let mut labels = Vec::new();
        for i in 0..48 {
            let body = if i % 2 == 0 {
                format!("USPS: Your package US{i:09} could not be delivered due to an incomplete address. Update it here: usps-care{}.top/x{i}", i % 3)
            } else {
                format!("E-ZPass: you have an unpaid toll balance of $12.{i:02}. Avoid a $50 late fee by paying today at ezpass-pay{}.info/t{i}", i % 3)
            };
            labels.push(r.send(&nums[(i / 2) % 8], &body));
        }
        let campaigns: std::collections::BTreeSet<u64> = labels.iter().filter_map(|l| r.now(*l)).collect();
        assert_eq!(campaigns.len(), 1, "one pool rotating two lures: {campaigns:?}");
    }

    #[test]
    fn campaigns_split_by_an_analyst_stay_apart() {
        let mut r = Run::new();
        let nums = pool("610555", 6);
        let a = "Due to record turnout, Democrats are asked to vote on Wednesday, Nov 4 this year. Spread the word!";
        let b =
            "Reminder for Democrats: because of high turnout your voting day is Wednesday, Nov 4. Tell your friends!";
        let la = r.send(&nums[0], a);
        let la = r.send(&nums[1], a).or(la);
        // The analyst said these are apart before the second wording formed.
        let lb = r.send("+17175550000", b);
        let lb = r.send("+17175550001", b).or(lb);
        let (ca, cb) = (r.now(la).unwrap(), r.now(lb).unwrap());
        assert_ne!(ca, cb);
        let seq = |l: u64| r.engine.clusters.iter().position(|c| c.label == l).unwrap() as u32;
        let (sa, sb) = (seq(ca), seq(cb));
        r.engine.apart.insert((sa.min(sb), sa.max(sb)));
        for i in 0..12 {
            r.send(&nums[i % 6], a);
            r.send(&nums[i % 6], b);
        }
        assert_ne!(r.now(Some(ca)), r.now(Some(cb)), "an analyst's split holds");
    }
}
