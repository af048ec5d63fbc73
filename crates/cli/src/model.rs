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
    read_csv(&dir.join("mishra-soni-smishing/Dataset_5971.csv"), 1, 0, "")
}

/// The Indonesian SMS set: `0` normal, `1` fraud (penipuan), `2` promotion
/// (read as labels `id-0`, `id-1`, `id-2`).
fn read_indonesian(dir: &Path) -> Result<Vec<Example>> {
    let p = dir.join("indonesian-sms/dataset_sms_spam_v1.csv");
    if !p.exists() {
        eprintln!("note: {} not found; training without the Indonesian set", p.display());
        return Ok(Vec::new());
    }
    read_csv(&p, 0, 1, "id-")
}

/// A labelled CSV with a header: the text and label columns, the label
/// lowercased and prefixed.
fn read_csv(p: &Path, text_col: usize, label_col: usize, prefix: &str) -> Result<Vec<Example>> {
    let mut r =
        csv::ReaderBuilder::new().flexible(true).from_path(p).with_context(|| format!("reading {}", p.display()))?;
    let mut out = Vec::new();
    for rec in r.byte_records() {
        let rec = rec?;
        if let (Some(t), Some(l)) = (rec.get(text_col), rec.get(label_col)) {
            out.push(Example {
                text: String::from_utf8_lossy(t).into_owned(),
                label: format!("{prefix}{}", String::from_utf8_lossy(l).trim().to_ascii_lowercase()),
            });
        }
    }
    Ok(out)
}

/// The category/subcategory of a public data set's label. The public sets
/// label only ham and spam (and smishing); their spam is split by what it
/// asks for, with a few keywords (documented in docs/accuracy.md): prizes
/// and premium-rate claims are advance-fee scams, the rest unsolicited
/// marketing, adult, gambling or loans.
fn public_label(label: &str, text: &str) -> Option<&'static str> {
    let t = text.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| t.contains(w));
    Some(match label {
        "ham" | "id-0" => "personal/conversation",
        "smishing" => "scam/phishing",
        "id-1" => {
            if has(&["mama", "papa", "bapak", "ibu ", "pulsa", "transfer", "rekening", "nomor baru"]) {
                "scam/impersonation"
            } else {
                "scam/advance-fee"
            }
        }
        "id-2" => "marketing/promotion",
        "spam" => {
            if has(&["won ", "winner", "prize", "claim", "award", "selected to receive", "guaranteed", "cash", "bonus"])
            {
                "scam/advance-fee"
            } else if has(&["sex", "xxx", "horny", "naughty", "dating", "date ", "singles", "babe", "flirt"]) {
                "spam/adult"
            } else if has(&["casino", "bet ", "betting", "poker", "slots"]) {
                "spam/gambling"
            } else if has(&["loan", "credit", "debt", "mortgage"]) {
                "spam/loans"
            } else {
                "spam/unsolicited"
            }
        }
        _ => return None,
    })
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
    grouped: bool,
) -> Vec<(usize, usize, usize)> {
    let fold_of = if grouped {
        grouped_folds(y, x, labels.len(), folds, cfg.seed)
    } else {
        stratified_folds(y, labels.len(), folds, cfg.seed)
    };
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

/// Names of the per-category subcategory cross-validations, in
/// [`CATEGORIES`] order.
const SUB_SETS: [&str; 9] = [
    "textwatch-subcategories-political",
    "textwatch-subcategories-civic",
    "textwatch-subcategories-charity",
    "textwatch-subcategories-news",
    "textwatch-subcategories-marketing",
    "textwatch-subcategories-transactional",
    "textwatch-subcategories-personal",
    "textwatch-subcategories-scam",
    "textwatch-subcategories-spam",
];

/// Folds that keep every text of one template (near-copies: the same text
/// with another name, link or number) on one side: each template's texts
/// go to the fold its first text is given, stratified by that text's label.
fn grouped_folds(y: &[usize], x: &[Prepared], classes: usize, folds: usize, seed: u64) -> Vec<usize> {
    let mut first: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut reps = Vec::new();
    let mut group_of = Vec::with_capacity(y.len());
    for (i, p) in x.iter().enumerate() {
        let g = *first.entry(p.template.as_str()).or_insert_with(|| {
            reps.push(i);
            reps.len() - 1
        });
        group_of.push(g);
    }
    let rep_labels: Vec<usize> = reps.iter().map(|&i| y[i]).collect();
    let fold_of_group = stratified_folds(&rep_labels, classes, folds, seed);
    group_of.iter().map(|&g| fold_of_group[g]).collect()
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
    #[arg(long, value_enum, default_value_t = crate::output::Format::Table)]
    format: crate::output::Format,
    /// The project's political and commercial examples: with them, a third
    /// cross-validation over the shipped model's own training set and four
    /// categories (skipped if the file is missing).
    #[arg(long, default_value = "data/categories.tsv", value_name = "FILE")]
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
    dataset: String,
    texts: usize,
    folds: usize,
    /// `stratified`, or `grouped by template` (near-copies of one text on
    /// one side of every split).
    split: &'static str,
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
    let mut sets: Vec<(&str, Vec<Example>, Vec<String>, bool)> = vec![
        ("uci-sms-spam", read_uci(&args.data)?, vec!["ham".into(), "spam".into()], false),
        ("mishra-soni-smishing", read_mishra(&args.data)?, vec!["ham".into(), "spam".into(), "smishing".into()], false),
    ];
    if args.extra.exists() {
        // The shipped models' own training set, with folds grouped by
        // template: once by category, once by subcategory.
        let all = shipped_training_set(&args.data, &args.extra)?;
        let top: Vec<Example> = all
            .iter()
            .map(|e| Example { text: e.text.clone(), label: e.label.split('/').next().unwrap_or("").to_string() })
            .collect();
        sets.push(("textwatch-categories", top, CATEGORIES.iter().map(|s| s.to_string()).collect(), true));
        // Each category's subcategories among its own texts, as the
        // shipped subcategory models are trained and used.
        for c in CATEGORIES {
            let labels: Vec<String> =
                subcategory_labels().into_iter().filter(|l| l.split('/').next() == Some(c)).collect();
            if labels.len() > 1 {
                let mine: Vec<Example> = all
                    .iter()
                    .filter(|e| e.label.split('/').next() == Some(c))
                    .map(|e| Example { text: e.text.clone(), label: e.label.clone() })
                    .collect();
                if mine.len() < 2 * args.folds {
                    eprintln!("note: {} has {} texts; too few to cross-validate its subcategories", c, mine.len());
                    continue;
                }
                sets.push((SUB_SETS[CATEGORIES.iter().position(|x| *x == c).unwrap_or(0)], mine, labels, true));
            }
        }
    } else {
        eprintln!("note: {} not found; skipping the cross-validation of the shipped categories", args.extra.display());
    }
    for (name, data, labels, grouped) in sets {
        let data = dedupe(data);
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
            .map(|&seed| {
                cross_validate(&labels, &y, &texts, &x, args.folds, &TrainConfig { seed, ..cfg.clone() }, grouped)
            })
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
            dataset: name.to_string(),
            split: if grouped { "grouped by template" } else { "stratified" },
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
    if args.format != crate::output::Format::Table {
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
                "{}: {} distinct texts, {} {}-fold CV repeated {n} times (seeds {}-{}); mean accuracy {:.4}, mean macro-F1 {:.4}",
                r.dataset,
                r.texts,
                r.split,
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
                "{}: {} distinct texts, {} {}-fold CV, seed {}; accuracy {:.4}, macro-F1 {:.4}",
                r.dataset, r.texts, r.split, r.folds, r.seed, s.accuracy, s.macro_f1
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
    /// The project's own labelled examples (`category/subcategory<TAB>text`).
    #[arg(long, default_value = "data/categories.tsv", value_name = "FILE")]
    extra: PathBuf,
    /// Where to write the category model.
    #[arg(long, default_value = "models/category.twm", value_name = "FILE")]
    out: PathBuf,
    /// Where to write the subcategory model.
    #[arg(long, default_value = "models/subcategory.twm", value_name = "FILE")]
    sub_out: PathBuf,
    /// Shuffle seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    hyper: Hyper,
}

/// The shipped models' training set, labelled `category/subcategory`: the
/// project's examples (`data/categories.tsv`), then UCI, Mishra & Soni and
/// the Indonesian set, exact duplicates dropped.
fn shipped_training_set(data: &Path, extra: &Path) -> Result<Vec<Example>> {
    let mut all = read_extra(extra)?;
    for e in &all {
        let known = e.label.split_once('/').is_some_and(|(c, sub)| {
            textwatch_engine::taxonomy::SUBCATEGORIES.iter().any(|(a, b, _)| *a == c && *b == sub)
        });
        if !known {
            bail!(
                "{}: unknown label {:?} (category/subcategory, see docs/rules.md#categories)",
                extra.display(),
                e.label
            );
        }
    }
    all.extend(read_uci(data)?);
    all.extend(read_mishra(data)?);
    all.extend(read_indonesian(data)?);
    dedupe(all)
        .into_iter()
        .map(|e| {
            if e.label.contains('/') {
                return Ok(e);
            }
            match public_label(&e.label, &e.text) {
                Some(l) => Ok(Example { text: e.text, label: l.to_string() }),
                None => bail!("unknown label {:?}", e.label),
            }
        })
        .collect()
}

fn write_model(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).ok();
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {} ({} KiB)", path.display(), bytes.len() / 1024);
    Ok(())
}

/// The subcategory labels, `category/subcategory`, in the taxonomy's order.
fn subcategory_labels() -> Vec<String> {
    textwatch_engine::taxonomy::SUBCATEGORIES.iter().map(|(c, s, _)| format!("{c}/{s}")).collect()
}

pub fn train(args: TrainArgs) -> Result<ExitCode> {
    // Bad settings are refused before any file is read.
    let cfg = args.hyper.config(args.seed)?;
    let all = shipped_training_set(&args.data, &args.extra)?;
    let texts: Vec<&str> = all.iter().map(|e| e.text.as_str()).collect();
    let x = prepare(&texts, cfg.bits);
    let cats: Vec<String> = CATEGORIES.iter().map(|s| s.to_string()).collect();
    let top_of = |e: &Example| e.label.split('/').next().unwrap_or("").to_string();
    // The category model over every text; then, per category with several
    // subcategories, a model over that category's texts alone.
    let mut jobs: Vec<(String, Vec<String>, Vec<usize>)> =
        vec![("categories".into(), cats.clone(), (0..all.len()).collect())];
    for c in CATEGORIES {
        let labels: Vec<String> = subcategory_labels().into_iter().filter(|l| l.split('/').next() == Some(c)).collect();
        if labels.len() > 1 {
            let idx: Vec<usize> = (0..all.len()).filter(|&i| top_of(&all[i]) == c).collect();
            jobs.push((format!("{c} subcategories"), labels, idx));
        }
    }
    let mut subs = Vec::new();
    for (what, labels, idx) in jobs {
        let top = what == "categories";
        let y: Vec<usize> = idx
            .iter()
            .map(|&i| {
                let key = if top { top_of(&all[i]) } else { all[i].label.clone() };
                labels.iter().position(|l| *l == key).unwrap_or(0)
            })
            .collect();
        let examples: Vec<(Features, usize)> =
            idx.iter().map(|&i| x[i].features.clone()).zip(y.iter().copied()).collect();
        let (model, tuning) = Model::train_tuned(labels.clone(), &examples, &cfg);
        let counts: Vec<String> =
            labels.iter().enumerate().map(|(c, n)| format!("{n} {}", y.iter().filter(|&&v| v == c).count())).collect();
        eprintln!("{what}: trained on {} distinct texts ({})", idx.len(), counts.join(", "));
        if let Some(t) = tuning {
            let tried: Vec<String> = t.tried.iter().map(|(e, l)| format!("{e}: {l:.4}")).collect();
            eprintln!(
                "  {}-fold internal cross-validation, held-out loss by training length: {}",
                cfg.tune_folds,
                tried.join(", ")
            );
            let shifts: Vec<String> = labels.iter().zip(&t.offsets).map(|(c, o)| format!("{c} {o:+.2}")).collect();
            eprintln!("  chosen: {} epochs; class offsets {}", t.epochs, shifts.join(", "));
        }
        if top {
            write_model(&args.out, &model.to_bytes())?;
        } else {
            subs.push(model);
        }
    }
    write_model(&args.sub_out, &textwatch_engine::categorize::subs_to_bytes(&subs))?;
    Ok(ExitCode::SUCCESS)
}
