//! `textwatch train` and `textwatch eval-model`: the category classifier.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use textwatch_engine::classify::{stratified_folds, text_features, Features, Model, Scores, TrainConfig};
use textwatch_engine::template::{templatize, TemplateScratch};

/// The categories of the shipped model.
pub use textwatch_engine::classify::CATEGORIES;

/// The model built into the binary (trained by `textwatch train`; see the README).
pub const BUILTIN_MODEL: &[u8] = include_bytes!("../../../models/category.twm");

/// The built-in category model (none in a build made before the first
/// `textwatch train`).
pub fn builtin_model() -> Result<Option<Model>> {
    if BUILTIN_MODEL.is_empty() {
        return Ok(None);
    }
    Model::from_bytes(BUILTIN_MODEL).map(Some).context("the built-in category model is damaged")
}

/// The meaning table built into the binary (distilled by
/// `scripts/distill-meaning.py`; see the README).
pub const BUILTIN_MEANING: &[u8] = include_bytes!("../../../models/meaning.twe");

/// The built-in meaning table, shared by every engine of the process.
pub fn builtin_meaning() -> Result<std::sync::Arc<textwatch_engine::meaning::MeaningModel>> {
    static TABLE: std::sync::OnceLock<std::sync::Arc<textwatch_engine::meaning::MeaningModel>> =
        std::sync::OnceLock::new();
    if let Some(t) = TABLE.get() {
        return Ok(t.clone());
    }
    let t = textwatch_engine::meaning::MeaningModel::from_bytes(BUILTIN_MEANING)
        .context("the built-in meaning table is damaged")?;
    Ok(TABLE.get_or_init(|| std::sync::Arc::new(t)).clone())
}

struct Example {
    text: String,
    label: String,
}

fn read_uci(dir: &Path) -> Result<Vec<Example>> {
    let p = dir.join("uci-sms-spam/SMSSpamCollection");
    let raw = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
    let mut out = Vec::new();
    for line in String::from_utf8_lossy(&raw).lines() {
        if let Some((label, text)) = line.split_once('\t') {
            out.push(Example { text: text.to_string(), label: label.trim().to_ascii_lowercase() });
        }
    }
    Ok(out)
}

fn read_mishra(dir: &Path) -> Result<Vec<Example>> {
    let p = dir.join("mishra-soni-smishing/Dataset_5971.csv");
    let mut r =
        csv::ReaderBuilder::new().flexible(true).from_path(&p).with_context(|| format!("reading {}", p.display()))?;
    let mut out = Vec::new();
    for rec in r.byte_records() {
        let rec = rec?;
        if let (Some(l), Some(t)) = (rec.get(0), rec.get(1)) {
            out.push(Example {
                text: String::from_utf8_lossy(t).into_owned(),
                label: String::from_utf8_lossy(l).trim().to_ascii_lowercase(),
            });
        }
    }
    Ok(out)
}

fn read_extra(path: &Path) -> Result<Vec<Example>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((label, t)) = line.split_once('\t') else {
            bail!("{} line {}: expected label<TAB>text", path.display(), i + 1);
        };
        out.push(Example { text: t.to_string(), label: label.trim().to_string() });
    }
    Ok(out)
}

/// Drops exact duplicate texts (keeping the first), so that copies cannot
/// sit on both sides of a fold.
fn dedupe(v: Vec<Example>) -> Vec<Example> {
    let mut seen = HashSet::new();
    v.into_iter().filter(|e| seen.insert(e.text.clone())).collect()
}

/// A text as the classifier sees it: its template and folded form (the
/// input of [`Model::classify`]), and its training feature vector.
struct Prepared {
    template: String,
    folded: String,
    features: Features,
}

fn prepare(texts: &[&str], bits: u32) -> Vec<Prepared> {
    use rayon::prelude::*;
    texts
        .par_iter()
        .map_init(TemplateScratch::default, |s, text| {
            let mut template = String::new();
            templatize(text, s, &mut template);
            let mut features = Vec::new();
            text_features(&template, &s.folded, text, bits, &mut features);
            Prepared { template, folded: s.folded.clone(), features }
        })
        .collect()
}

/// Stratified k-fold cross-validation: returns (text index, true,
/// predicted) for every text, fold by fold.
/// Held-out texts are scored by [`Model::classify`], the path the product
/// uses (8-bit weights added as features are hashed), not by the
/// floating-point vector that training uses.
fn cross_validate(
    labels: &[String],
    y: &[usize],
    texts: &[&str],
    x: &[Prepared],
    folds: usize,
    cfg: &TrainConfig,
) -> Vec<(usize, usize, usize)> {
    let fold_of = stratified_folds(y, labels.len(), folds, cfg.seed);
    // Folds train on all cores; each is deterministic on its own and they
    // are joined in fold order, so the answer does not depend on the cores.
    use rayon::prelude::*;
    let per_fold: Vec<Vec<(usize, usize, usize)>> = (0..folds)
        .into_par_iter()
        .map(|f| {
            let train: Vec<(Features, usize)> =
                (0..y.len()).filter(|&i| fold_of[i] != f).map(|i| (x[i].features.clone(), y[i])).collect();
            let m = Model::train(labels.to_vec(), &train, cfg);
            (0..y.len())
                .filter(|&i| fold_of[i] == f)
                .map(|i| (i, y[i], m.classify(&x[i].template, &x[i].folded, texts[i]).0))
                .collect()
        })
        .collect();
    per_fold.into_iter().flatten().collect()
}

#[derive(clap::Args, Debug)]
pub struct EvalModelArgs {
    /// Directory with uci-sms-spam/ and mishra-soni-smishing/.
    #[arg(long, default_value = "../shared/data", value_name = "DIR")]
    data: PathBuf,
    /// Folds.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Shuffle seed of the first repeat (the fold split and the training
    /// order; repeat r uses seed + r).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Run the whole cross-validation this many times, each with its own
    /// fold split, and report the mean: one split's F1 moves by a few
    /// thousandths with the split alone (1 = the single split of --seed).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    #[command(flatten)]
    hyper: Hyper,
    /// table for people, json for tools.
    #[arg(long, value_enum, default_value_t = crate::Format::Table)]
    format: crate::Format,
    /// The project's political and commercial examples: with them, a third
    /// cross-validation over the shipped model's own training set and four
    /// categories (skipped if the file is missing).
    #[arg(long, default_value = "data/train-extra.tsv", value_name = "FILE")]
    extra: PathBuf,
    /// Also write every held-out text the model got wrong in the first
    /// repeat to FILE, one JSON object per line (`dataset`, `label`,
    /// `predicted`, `text`), to read what it misses.
    #[arg(long, value_name = "FILE")]
    misclassified: Option<PathBuf>,
}

/// Training settings (defaults are those of the shipped model).
#[derive(clap::Args, Debug, Clone)]
pub struct Hyper {
    /// Passes over the training data: the most, when the internal
    /// cross-validation chooses the length (it tries an eighth, a quarter,
    /// a third, half, two thirds and all of them and keeps the one with
    /// the lowest held-out loss; see --fixed-epochs).
    #[arg(long, default_value_t = TrainConfig::default().epochs)]
    epochs: usize,
    /// Train exactly --epochs passes instead of letting the internal
    /// cross-validation choose a shorter length.
    #[arg(long)]
    fixed_epochs: bool,
    /// AdaGrad learning rate.
    #[arg(long, default_value_t = TrainConfig::default().learning_rate)]
    learning_rate: f32,
    /// L2 regularization.
    #[arg(long, default_value_t = TrainConfig::default().l2)]
    l2: f32,
    /// Feature hash size, as a power of two.
    #[arg(long, default_value_t = TrainConfig::default().bits)]
    bits: u32,
    /// Weight classes by rarity (measured here: worse on both data sets).
    #[arg(long)]
    balanced: bool,
    /// Multinomial logistic loss instead of the multiclass hinge loss (a
    /// linear SVM) the shipped model uses (then --learning-rate 1
    /// --epochs 30 suit it); see docs/accuracy.md.
    #[arg(long)]
    logistic: bool,
    /// Keep the last step's weights instead of averaging over the second
    /// half of training.
    #[arg(long)]
    no_average: bool,
    /// Folds of internal cross-validation on the training data that choose
    /// the training length (lowest held-out loss) and tune each class's
    /// decision threshold for macro-F1 (0: neither; --epochs passes,
    /// untuned thresholds).
    #[arg(long, default_value_t = TrainConfig::default().tune_folds)]
    tune_folds: usize,
}

impl Hyper {
    fn config(&self, seed: u64) -> Result<TrainConfig> {
        if !(10..=22).contains(&self.bits) {
            bail!("--bits must be between 10 and 22");
        }
        if self.epochs == 0 {
            bail!("--epochs must be at least 1");
        }
        if self.tune_folds == 1 {
            bail!("--tune-folds must be 0 (no threshold tuning) or at least 2");
        }
        Ok(TrainConfig {
            bits: self.bits,
            epochs: self.epochs,
            learning_rate: self.learning_rate,
            l2: self.l2,
            seed,
            balanced: self.balanced,
            hinge: !self.logistic,
            average: !self.no_average,
            tune_folds: self.tune_folds,
            choose_epochs: !self.fixed_epochs,
        })
    }
}

#[derive(serde::Serialize)]
struct Evaluation {
    dataset: &'static str,
    texts: usize,
    folds: usize,
    /// The first repeat's seed; `scores` are that split's.
    seed: u64,
    scores: Scores,
    /// Every repeat's scores, the first included.
    repeats: Vec<Repeat>,
    /// Per-class precision, recall and F1, accuracy and macro-F1, each the
    /// mean over the repeats.
    mean: Mean,
}

#[derive(serde::Serialize)]
struct Repeat {
    seed: u64,
    accuracy: f64,
    macro_f1: f64,
    f1: Vec<f64>,
}

#[derive(serde::Serialize)]
struct Mean {
    precision: Vec<f64>,
    recall: Vec<f64>,
    f1: Vec<f64>,
    accuracy: f64,
    macro_f1: f64,
}

impl Mean {
    fn of(runs: &[Scores]) -> Mean {
        let n = runs.len().max(1) as f64;
        let per_class = |get: fn(&Scores) -> &Vec<f64>| -> Vec<f64> {
            let k = runs.first().map_or(0, |r| get(r).len());
            (0..k).map(|c| runs.iter().map(|r| get(r)[c]).sum::<f64>() / n).collect()
        };
        Mean {
            precision: per_class(|s| &s.precision),
            recall: per_class(|s| &s.recall),
            f1: per_class(|s| &s.f1),
            accuracy: runs.iter().map(|r| r.accuracy).sum::<f64>() / n,
            macro_f1: runs.iter().map(|r| r.macro_f1).sum::<f64>() / n,
        }
    }
}

pub fn eval_model(args: EvalModelArgs) -> Result<ExitCode> {
    if args.folds < 2 {
        bail!("--folds must be at least 2");
    }
    if args.repeats == 0 {
        bail!("--repeats must be at least 1");
    }
    let cfg = args.hyper.config(args.seed)?;
    let seeds: Vec<u64> = (0..args.repeats as u64).map(|r| args.seed.wrapping_add(r)).collect();
    let mut results = Vec::new();
    let mut wrong = match &args.misclassified {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => None,
    };
    let mut sets = vec![
        ("uci-sms-spam", read_uci(&args.data)?, vec!["ham", "spam"]),
        ("mishra-soni-smishing", read_mishra(&args.data)?, vec!["ham", "spam", "smishing"]),
    ];
    if args.extra.exists() {
        sets.push(("textwatch-categories", shipped_training_set(&args.data, &args.extra)?, CATEGORIES.to_vec()));
    } else {
        eprintln!("note: {} not found; skipping the cross-validation of the shipped categories", args.extra.display());
    }
    for (name, data, label_order) in sets {
        let data = dedupe(data);
        let labels: Vec<String> = label_order.iter().map(|s| s.to_string()).collect();
        let mut y = Vec::new();
        let mut texts = Vec::new();
        for e in &data {
            let Some(c) = labels.iter().position(|l| *l == e.label) else {
                bail!("{name}: unknown label {:?}", e.label);
            };
            y.push(c);
            texts.push(e.text.as_str());
        }
        let trainings = seeds.len() * args.folds * (1 + if cfg.tune_folds >= 2 { cfg.tune_folds } else { 0 });
        eprintln!(
            "{name}: {} distinct texts, {}-fold cross-validation{} ({trainings} trainings)...",
            texts.len(),
            args.folds,
            if seeds.len() > 1 { format!(" repeated {} times", seeds.len()) } else { String::new() }
        );
        let x = prepare(&texts, cfg.bits);
        // Repeats run side by side as their folds do; each is deterministic
        // on its own and they are joined in seed order.
        use rayon::prelude::*;
        let mut runs: Vec<Vec<(usize, usize, usize)>> = seeds
            .par_iter()
            .map(|&seed| cross_validate(&labels, &y, &texts, &x, args.folds, &TrainConfig { seed, ..cfg.clone() }))
            .collect();
        let scores: Vec<Scores> = runs
            .iter()
            .map(|pairs| {
                let pairs: Vec<(usize, usize)> = pairs.iter().map(|&(_, t, p)| (t, p)).collect();
                Scores::from_pairs(labels.clone(), &pairs)
            })
            .collect();
        // The first repeat's errors: every text once.
        let pairs = runs.swap_remove(0);
        if let Some(w) = wrong.as_mut() {
            for &(i, truth, predicted) in pairs.iter().filter(|p| p.1 != p.2) {
                let line = serde_json::json!({
                    "dataset": name,
                    "label": labels[truth],
                    "predicted": labels[predicted],
                    "text": texts[i],
                });
                writeln!(w, "{line}")?;
            }
        }
        let repeats = seeds
            .iter()
            .zip(&scores)
            .map(|(&seed, s)| Repeat { seed, accuracy: s.accuracy, macro_f1: s.macro_f1, f1: s.f1.clone() })
            .collect();
        let mean = Mean::of(&scores);
        results.push(Evaluation {
            dataset: name,
            texts: texts.len(),
            folds: args.folds,
            seed: args.seed,
            scores: scores.into_iter().next().expect("at least one repeat"),
            repeats,
            mean,
        });
    }
    if let Some(mut w) = wrong {
        w.flush()?;
    }
    let mut out = std::io::stdout().lock();
    if args.format != crate::Format::Table {
        serde_json::to_writer_pretty(&mut out, &results)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    for r in &results {
        let s = &r.scores;
        let (m, n) = (&r.mean, r.repeats.len());
        if n > 1 {
            writeln!(
                out,
                "{}: {} distinct texts, stratified {}-fold CV repeated {n} times (seeds {}-{}); mean accuracy {:.4}, mean macro-F1 {:.4}",
                r.dataset,
                r.texts,
                r.folds,
                r.seed,
                r.repeats[n - 1].seed,
                m.accuracy,
                m.macro_f1
            )?;
            writeln!(out, "  means over the {n} repeats, then each repeat's F1:")?;
        } else {
            writeln!(
                out,
                "{}: {} distinct texts, stratified {}-fold CV, seed {}; accuracy {:.4}, macro-F1 {:.4}",
                r.dataset, r.texts, r.folds, r.seed, s.accuracy, s.macro_f1
            )?;
        }
        let seeds: String = if n > 1 {
            std::iter::once(" |".to_string()).chain(r.repeats.iter().map(|x| format!(" seed {:<2}", x.seed))).collect()
        } else {
            String::new()
        };
        writeln!(out, "  {:<10} {:>9} {:>9} {:>9}{seeds}", "class", "precision", "recall", "F1")?;
        let by_seed = |v: &dyn Fn(&Repeat) -> f64| -> String {
            if n > 1 {
                std::iter::once(" |".to_string()).chain(r.repeats.iter().map(|x| format!(" {:>7.4}", v(x)))).collect()
            } else {
                String::new()
            }
        };
        for (i, l) in s.labels.iter().enumerate() {
            let by_seed = by_seed(&|x| x.f1[i]);
            writeln!(out, "  {:<10} {:>9.4} {:>9.4} {:>9.4}{by_seed}", l, m.precision[i], m.recall[i], m.f1[i])?;
        }
        if n > 1 {
            let by_seed = by_seed(&|x| x.macro_f1);
            writeln!(out, "  {:<10} {:>9} {:>9} {:>9.4}{by_seed}", "macro-F1", "", "", m.macro_f1)?;
            writeln!(
                out,
                "  seed {}'s split alone: accuracy {:.4}, macro-F1 {:.4}; its confusion (rows true, columns predicted: {}):",
                r.seed,
                s.accuracy,
                s.macro_f1,
                s.labels.join(", ")
            )?;
        } else {
            writeln!(out, "  confusion (rows true, columns predicted: {}):", s.labels.join(", "))?;
        }
        for (i, row) in s.matrix.iter().enumerate() {
            writeln!(out, "  {:<10} {}", s.labels[i], row.iter().map(|v| format!("{v:>6}")).collect::<String>())?;
        }
        writeln!(out)?;
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Directory with uci-sms-spam/ and mishra-soni-smishing/.
    #[arg(long, default_value = "../shared/data", value_name = "DIR")]
    data: PathBuf,
    /// The project's own political and commercial examples.
    #[arg(long, default_value = "data/train-extra.tsv", value_name = "FILE")]
    extra: PathBuf,
    /// Where to write the model.
    #[arg(long, default_value = "models/category.twm", value_name = "FILE")]
    out: PathBuf,
    /// Shuffle seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    hyper: Hyper,
}

/// Maps source labels to categories: UCI and Mishra spam and smishing are
/// `scam` (prize, premium-rate and phishing texts), ham is `ham`, the
/// project's examples carry their own.
fn category_of(label: &str) -> Option<&'static str> {
    match label {
        "ham" => Some("ham"),
        "spam" | "smishing" | "scam" => Some("scam"),
        "commercial" => Some("commercial"),
        "political" => Some("political"),
        _ => None,
    }
}

/// The shipped model's training set: the project's examples, then UCI and
/// Mishra & Soni, exact duplicates dropped, labelled with [`CATEGORIES`].
fn shipped_training_set(data: &Path, extra: &Path) -> Result<Vec<Example>> {
    let mut all = read_extra(extra)?;
    all.extend(read_uci(data)?);
    all.extend(read_mishra(data)?);
    dedupe(all)
        .into_iter()
        .map(|e| match category_of(&e.label) {
            Some(c) => Ok(Example { text: e.text, label: c.to_string() }),
            None => bail!("unknown label {:?}", e.label),
        })
        .collect()
}

pub fn train(args: TrainArgs) -> Result<ExitCode> {
    // Bad settings are refused before any file is read.
    let cfg = args.hyper.config(args.seed)?;
    let all = shipped_training_set(&args.data, &args.extra)?;
    let labels: Vec<String> = CATEGORIES.iter().map(|s| s.to_string()).collect();
    let mut texts = Vec::new();
    let mut y = Vec::new();
    for e in &all {
        y.push(CATEGORIES.iter().position(|x| *x == e.label).unwrap_or(0));
        texts.push(e.text.as_str());
    }
    let x = prepare(&texts, cfg.bits);
    let examples: Vec<(Features, usize)> = x.into_iter().map(|p| p.features).zip(y.iter().copied()).collect();
    let (model, tuning) = Model::train_tuned(labels, &examples, &cfg);
    let bytes = model.to_bytes();
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent).ok();
    }
    std::fs::write(&args.out, &bytes).with_context(|| format!("writing {}", args.out.display()))?;
    let counts: Vec<String> =
        CATEGORIES.iter().enumerate().map(|(c, n)| format!("{n} {}", y.iter().filter(|&&v| v == c).count())).collect();
    eprintln!(
        "trained on {} distinct texts ({}); wrote {} ({} KiB)",
        texts.len(),
        counts.join(", "),
        args.out.display(),
        bytes.len() / 1024
    );
    if let Some(t) = tuning {
        let tried: Vec<String> = t.tried.iter().map(|(e, l)| format!("{e}: {l:.4}")).collect();
        eprintln!(
            "{}-fold internal cross-validation, held-out loss by training length: {}",
            cfg.tune_folds,
            tried.join(", ")
        );
        let shifts: Vec<String> = CATEGORIES.iter().zip(&t.offsets).map(|(c, o)| format!("{c} {o:+.2}")).collect();
        eprintln!("chosen: {} epochs; class offsets {}", t.epochs, shifts.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
