//! Campaign links through the store: merges made by the engine persist and
//! resolve, an analyst's split and merge are recomputed from the messages
//! and hold in later batches.

use std::sync::Arc;

use textwatch_engine::meaning::MeaningModel;
use textwatch_engine::{Analyzer, Engine, EngineConfig, Message, Outcome, Scratch};
use textwatch_store::edits::Edit;
use textwatch_store::sqlite::SqliteStore;
use textwatch_store::{CampaignQuery, NewMessage, Store, WriteStore as _};

fn meaning() -> Arc<MeaningModel> {
    Arc::new(MeaningModel::from_bytes(include_bytes!("../../../models/meaning.twe")).unwrap())
}

fn engine(store: &mut SqliteStore) -> Engine {
    let cfg = EngineConfig::default();
    let mut e = Engine::restore(cfg.clone(), store.load_snapshot(cfg.singleton_window, cfg.dedup_keys).unwrap());
    e.set_meaning(meaning());
    e
}

/// Scans (id, from, body) triples as one batch, a minute apart from `t0`.
fn ingest(store: &mut SqliteStore, t0: i64, rows: &[(String, String, String)]) {
    let mut e = engine(store);
    let an = Analyzer::keyed(store.secret(), store.recipient_hash(), 20);
    let mut s = Scratch::default();
    let analyzed: Vec<_> = rows
        .iter()
        .enumerate()
        .map(|(i, (id, from, body))| {
            an.analyze(
                Message {
                    id: Some(id.clone()),
                    ts_ms: t0 + i as i64 * 60_000,
                    from: from.clone(),
                    to: Some(format!("+1267555{i:04}")),
                    body: body.clone(),
                    ..Default::default()
                },
                &mut s,
            )
        })
        .collect();
    let mut new = Vec::new();
    for a in &analyzed {
        if let Outcome::Accepted { .. } = e.assign(a, None) {
            new.push(NewMessage { msg: a, origin: "t:1" });
        }
    }
    let delta = e.take_delta(|k| analyzed.iter().find(|a| a.template_key == k).map(|a| a.template.as_str()));
    store.commit(&new, &delta).unwrap();
}

const A: &str = "They are trying to STEAL this election in Philadelphia! Patriots, gather at 12th & Arch near the Convention Center at 3pm today.";
const B: &str =
    "The election is being stolen in Philly. Be at the Convention Center, 12th & Arch, 3pm today. Bring everyone you know.";

/// Wording A from numbers 0-5, then wording B alone from numbers 6-7 (its
/// own campaign), then B from the numbers of A: the two join.
fn wave(tag: &str) -> Vec<(String, String, String)> {
    let mut rows = Vec::new();
    for i in 0..12 {
        rows.push((format!("{tag}a{i}"), format!("+121555501{:02}", i % 6), A.to_string()));
    }
    for i in 0..2 {
        rows.push((format!("{tag}b{i}"), format!("+121555502{i:02}"), B.to_string()));
    }
    for i in 0..6 {
        rows.push((format!("{tag}c{i}"), format!("+121555501{i:02}"), B.to_string()));
    }
    rows
}

#[test]
fn joined_campaigns_keep_the_older_id_and_the_absorbed_id_resolves() {
    let mut store = SqliteStore::in_memory().unwrap();
    ingest(&mut store, 1_604_502_000_000, &wave("x"));
    let list = store.campaigns(&CampaignQuery::default()).unwrap();
    assert_eq!(list.len(), 1, "{:?}", list.iter().map(|c| &c.template).collect::<Vec<_>>());
    let c = &list[0];
    assert_eq!(c.messages, 20);
    assert_eq!(c.sender_count, 8);
    let d = store.campaign(&c.id, 3).unwrap().unwrap();
    assert_eq!(d.absorbed.len(), 1, "the second wording formed its own campaign first");
    assert!(d.links.iter().any(|l| l.kind == "senders" || l.kind == "sender"), "{:?}", d.links);
    assert!(d.variants.iter().skip(1).all(|v| v.joined.is_some()), "every later variant says how it joined");
    // The absorbed id resolves to the campaign it joined, everywhere.
    assert_eq!(store.resolve_campaign(&d.absorbed[0]).unwrap().as_deref(), Some(c.id.as_str()));
    assert_eq!(store.campaign(&d.absorbed[0], 0).unwrap().unwrap().summary.id, c.id);
    let mut n = 0;
    store
        .messages(Some(&d.absorbed[0]), &mut |_| {
            n += 1;
            true
        })
        .unwrap();
    assert_eq!(n, 20);
    assert_eq!(store.stats().unwrap().campaigns, 1);
}

#[test]
fn an_analysts_split_is_recomputed_and_holds_in_later_scans() {
    let mut store = SqliteStore::in_memory().unwrap();
    ingest(&mut store, 1_604_502_000_000, &wave("x"));
    let id = store.campaigns(&CampaignQuery::default()).unwrap()[0].id.clone();
    let d = store.campaign(&id, 0).unwrap().unwrap();
    let b = d.variants.iter().find(|v| v.template.starts_with("the election is being stolen")).unwrap();
    let key = u64::from_str_radix(&b.id, 16).unwrap();
    let edit = Edit { at: 1, by: "tester", reason: "two operators" };
    let m = meaning();
    let leader = u64::from_str_radix(&d.variants.iter().find(|v| v.joined.is_none()).unwrap().id, 16).unwrap();
    assert!(store.split_campaign(&id, &[leader], &edit, Some(&m)).is_err(), "the variant that formed it stays");
    let out = store.split_campaign(&id, &[key], &edit, Some(&m)).unwrap();
    assert_eq!(out.messages, 8);
    let list = store.campaigns(&CampaignQuery::default()).unwrap();
    assert_eq!(list.len(), 2);
    let a = list.iter().find(|c| c.id == id).unwrap();
    assert_eq!((a.messages, a.sender_count), (12, 6), "counts recomputed from the messages");
    let split = list.iter().find(|c| c.id == out.other).unwrap();
    assert_eq!((split.messages, split.sender_count), (8, 8));
    // More of both wordings from the same numbers: they stay apart.
    ingest(&mut store, 1_604_503_500_000, &wave("y"));
    let list = store.campaigns(&CampaignQuery::default()).unwrap();
    assert_eq!(list.len(), 2, "{:?}", list.iter().map(|c| (&c.id, c.messages)).collect::<Vec<_>>());
    assert_eq!(list.iter().map(|c| c.messages).sum::<u64>(), 40);

    // Merging by hand undoes it, and the merge holds too.
    let out = store.merge_campaigns(&id, &out.other, &edit, Some(&m)).unwrap();
    assert_eq!(out.campaign, id, "the older keeps its id");
    let list = store.campaigns(&CampaignQuery::default()).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].messages, 40);
    let d = store.campaign(&id, 0).unwrap().unwrap();
    assert!(d.links.iter().any(|l| l.kind == "manual" && l.evidence.contains("tester")));
}
