//! Replays the fuzz seed corpora and every input that once crashed a fuzz
//! target (`fuzz/corpus/`, `fuzz/regressions/`) through the code the
//! targets call, on the stable toolchain: a fixed crash stays fixed, and
//! the seeds keep decoding. (The fuzzing itself needs nightly:
//! `fuzz/run.sh`, docs/reliability.md.)

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut out = Vec::new();
    for dir in [root.join("corpus").join(target), root.join("regressions").join(target)] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_file() {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

/// Runs `f` on every input of `target`; fails naming the file that panics.
fn replay(target: &str, min_seeds: usize, f: impl Fn(&[u8]) + std::panic::RefUnwindSafe) {
    let all = inputs(target);
    assert!(all.len() >= min_seeds, "{target}: {} inputs, expected a seed corpus", all.len());
    for (path, data) in all {
        if std::panic::catch_unwind(|| f(&data)).is_err() {
            panic!("{target}: {} panics", path.display());
        }
    }
}

#[test]
fn jsonl() {
    let file: Arc<str> = Arc::from("fuzz.jsonl");
    let decoded = std::sync::atomic::AtomicUsize::new(0);
    replay("jsonl", 5, |d| {
        if textwatch_sources::jsonl::decode_line(&file, 1, d).is_ok() {
            decoded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    assert!(decoded.into_inner() >= 5, "the seed lines decode");
}

#[test]
fn csv() {
    replay("csv", 3, |d| {
        let Ok(mut dec) = textwatch_sources::csv::CsvDecoder::new(Box::new(Cursor::new(d.to_vec())), "fuzz.csv".into())
        else {
            return;
        };
        while let Ok(Some(_)) = dec.next_chunk() {}
    });
}

#[test]
fn number_files() {
    replay("number_files", 3, |d| {
        let _ = textwatch_numbers::nanpa::read_co(d, "fuzz-co.txt");
        let _ = textwatch_numbers::nanpa::read_blocks(d, "fuzz-blocks.csv");
        let _ = textwatch_numbers::nanpa::read_inventory(d, "fuzz-inventory.csv");
    });
}

#[test]
fn rules_policy() {
    replay("rules_policy", 2, |d| {
        let Ok(text) = std::str::from_utf8(d) else { return };
        let _ = textwatch_engine::RuleSet::from_toml(text, "fuzz.toml");
        let _ = textwatch_engine::policy::Policy::from_toml(text, "fuzz-policy.toml");
    });
}

#[test]
fn templater() {
    use textwatch_engine::minhash::{signature, MinHashScratch};
    use textwatch_engine::template::{templatize, TemplateScratch};
    let analyzer = textwatch_engine::Analyzer::new(b"fuzz", 20);
    replay("templater", 5, |d| {
        let body = String::from_utf8_lossy(d).into_owned();
        let mut folded = String::new();
        textwatch_engine::fold::fold_into(&body, &mut folded);
        let mut template = String::new();
        templatize(&body, &mut TemplateScratch::default(), &mut template);
        let _ = signature(&template, &mut MinHashScratch::default(), 20);
        let msg = textwatch_engine::Message {
            id: None,
            ts_ms: 1_604_502_000_000,
            from: "+12155550100".into(),
            to: Some("+12675550100".into()),
            body,
            source: None,
            meta: None,
        };
        let _ = analyzer.analyze(msg, &mut textwatch_engine::Scratch::default());
    });
}

#[test]
fn http_bodies() {
    const TYPES: [&str; 4] =
        ["application/json", "application/x-ndjson", "application/json; charset=utf-8", "text/plain"];
    replay("http_bodies", 3, |d| {
        let Some((&pick, body)) = d.split_first() else { return };
        let _ = textwatch_server::bodies::records(TYPES[pick as usize % TYPES.len()], body);
        let _ = textwatch_server::bodies::form(body);
    });
}

#[test]
fn smpp() {
    use textwatch_smpp::text::DefaultAlphabet;
    replay("smpp", 8, |d| {
        let _ = textwatch_smpp::sm::read_stream(d, DefaultAlphabet::Gsm);
        let _ = textwatch_smpp::sm::read_stream(d, DefaultAlphabet::Latin1);
        let _ = textwatch_smpp::concat::split_udh(d);
    });
}
