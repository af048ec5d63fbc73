//! A message body as spammers write it: folded, templated, analyzed and
//! signed without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use textwatch_engine::minhash::{signature, MinHashScratch};
use textwatch_engine::template::{templatize, TemplateScratch};
use textwatch_engine::{Analyzer, Message, Scratch};

fuzz_target!(|data: &[u8]| {
    let body = String::from_utf8_lossy(data).into_owned();
    let mut folded = String::new();
    textwatch_engine::fold::fold_into(&body, &mut folded);
    let mut ts = TemplateScratch::default();
    let mut template = String::new();
    templatize(&body, &mut ts, &mut template);
    let _ = signature(&template, &mut MinHashScratch::default(), 20);
    let analyzer = Analyzer::new(b"fuzz", 20);
    let msg = Message {
        id: None,
        ts_ms: 1_604_502_000_000,
        from: "+12155550100".into(),
        to: Some("+12675550100".into()),
        body,
        source: None,
        meta: None,
    };
    let _ = analyzer.analyze(msg, &mut Scratch::default());
});
