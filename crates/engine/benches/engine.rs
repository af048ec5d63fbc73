//! Per-message costs of the engine: templating (fold + slots), features,
//! full analysis, signatures (per new template) and assignment.
//!
//! The corpus mixes what real traffic holds: ASCII campaign copies with
//! rotated links and names, homoglyph/zero-width evasions, and unique
//! person-to-person chatter.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use textwatch_engine::minhash::{signature, MinHashScratch};
use textwatch_engine::template::{templatize, TemplateScratch};
use textwatch_engine::{Analyzer, Engine, EngineConfig, Message, Scratch};

fn corpus(n: usize) -> Vec<Message> {
    let names = ["Chris", "Maria", "Dana", "James", "Priya", "Tom", "Aisha", "Luis"];
    let chatter = [
        "hey are we still on for dinner tonight",
        "running late, be there in 10",
        "did you see the game last night?? unreal",
        "can you grab milk on the way home",
    ];
    (0..n)
        .map(|i| {
            let body = match i % 6 {
                0 => format!("Hi {}, this is Sarah with Vote Forward. Polls close at 8pm! Find yours: https://iwillvote.com/{} Reply STOP to opt out", names[i % 8], i % 977),
                1 => format!("USPS: your package US{:013} is held. Pay the $1.99 fee at https://usps-{}.top/x{}", i * 7919, i % 13, i),
                2 => "Radical Liberals & Dems are trying to STEAL this election! Show your support at 12th & Arch, 3pm".to_string(),
                3 => "R\u{0430}dic\u{0430}l Liberals & Dems are trying to ST\u{200B}EAL this election! 🇺🇸 Show your support at 12th & Arch, 3pm".to_string(),
                4 => format!("{} {} {}", chatter[i % 4], names[(i / 7) % 8], i),
                _ => format!("Acme Pharmacy: your prescription #{} is ready for pickup. Reply STOP to opt out", 100_000 + i),
            };
            Message {
                id: Some(format!("m{i}")),
                ts_ms: 1_604_502_000_000 + i as i64 * 100,
                from: format!("+1215555{:04}", i % 500),
                to: Some(format!("+1267{:07}", i)),
                body,
                source: None,
                meta: None,
            }
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let msgs = corpus(6000);
    let mut g = c.benchmark_group("per_message");
    g.throughput(Throughput::Elements(msgs.len() as u64));

    g.bench_function("templatize", |b| {
        let mut s = TemplateScratch::default();
        let mut out = String::new();
        b.iter(|| {
            let mut acc = 0u64;
            for m in &msgs {
                acc ^= templatize(&m.body, &mut s, &mut out);
            }
            acc
        })
    });

    g.bench_function("features", |b| {
        let mut s = TemplateScratch::default();
        let mut out = String::new();
        b.iter(|| {
            let mut n = 0;
            for m in &msgs {
                templatize(&m.body, &mut s, &mut out);
                n += textwatch_engine::features::MessageFeatures::from_scratch(&s).links.len();
            }
            n
        })
    });

    let analyzer = Analyzer::new(b"bench-secret", 20);
    g.bench_function("analyze", |b| {
        let mut s = Scratch::default();
        b.iter_batched(
            || msgs.clone(),
            |ms| ms.into_iter().map(|m| analyzer.analyze(m, &mut s).template_key).fold(0, |a, k| a ^ k),
            BatchSize::LargeInput,
        )
    });

    let analyzed: Vec<_> = {
        let mut s = Scratch::default();
        msgs.iter().cloned().map(|m| analyzer.analyze(m, &mut s)).collect()
    };
    g.bench_function("assign", |b| {
        b.iter_batched(
            || Engine::new(EngineConfig::default()),
            |mut e| {
                for a in &analyzed {
                    e.assign(a, None);
                }
                e.campaigns()
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();

    let mut g = c.benchmark_group("per_template");
    let templates: Vec<String> = analyzed.iter().map(|a| a.template.clone()).take(1000).collect();
    g.throughput(Throughput::Elements(templates.len() as u64));
    g.bench_function("signature", |b| {
        let mut s = MinHashScratch::default();
        b.iter(|| templates.iter().map(|t| signature(t, &mut s, 20)[0]).fold(0, |a, x| a ^ x))
    });
    // The shipped category model, as the binary embeds it.
    let model = textwatch_engine::classify::Model::from_bytes(include_bytes!("../../../models/category.twm"))
        .expect("models/category.twm loads");
    let folded: Vec<String> = analyzed
        .iter()
        .take(1000)
        .map(|a| {
            let mut f = String::new();
            textwatch_engine::fold::fold_into(&a.msg.body, &mut f);
            f
        })
        .collect();
    g.bench_function("classify", |b| {
        b.iter(|| {
            templates
                .iter()
                .zip(&folded)
                .zip(&analyzed)
                .map(|((t, f), a)| model.classify(t, f, &a.msg.body).0)
                .sum::<usize>()
        })
    });
    // Category then subcategory, as campaign templates get them.
    let cats = textwatch_engine::categorize::Categorizer {
        top: model.clone(),
        subs: textwatch_engine::categorize::subs_from_bytes(include_bytes!("../../../models/subcategory.twm"))
            .expect("models/subcategory.twm loads"),
    };
    let rules = textwatch_engine::RuleSet::builtin();
    g.bench_function("categorize", |b| {
        b.iter(|| {
            templates
                .iter()
                .zip(&analyzed)
                .map(|(t, a)| cats.categorize(&rules, &[], t, &a.msg.body).subcategory.map_or(0, str::len))
                .sum::<usize>()
        })
    });
    g.bench_function("classify_via_feature_vector", |b| {
        let mut feats = Vec::new();
        b.iter(|| {
            templates
                .iter()
                .zip(&folded)
                .zip(&analyzed)
                .map(|((t, f), a)| {
                    textwatch_engine::classify::text_features(t, f, &a.msg.body, model.bits, &mut feats);
                    model.predict(&feats).0
                })
                .sum::<usize>()
        })
    });
    // The shipped meaning table: a vector per new campaign wording.
    let meaning = textwatch_engine::meaning::MeaningModel::from_bytes(include_bytes!("../../../models/meaning.twe"))
        .expect("models/meaning.twe loads");
    g.bench_function("meaning", |b| {
        b.iter(|| templates.iter().filter_map(|t| meaning.embed(t)).map(|v| v[0]).sum::<f32>())
    });
    g.bench_function("identity", |b| {
        b.iter(|| templates.iter().filter(|t| textwatch_engine::identity::of(t).is_some()).count())
    });
    g.bench_function("template_features", |b| {
        b.iter(|| {
            templates.iter().filter(|t| textwatch_engine::features::TemplateFeatures::of(t).optout.is_some()).count()
        })
    });
    g.finish();
}

criterion_group!(engine, benches);
criterion_main!(engine);
