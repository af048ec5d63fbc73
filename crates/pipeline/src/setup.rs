//! What every engine of the process starts from: the built-in models, the
//! rule packs, and the state restored from the store.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use textwatch_engine::categorize::Categorizer;
use textwatch_engine::classify::Model;
use textwatch_engine::meaning::MeaningModel;
use textwatch_engine::{Analyzer, Engine, EngineConfig, RuleSet};
use textwatch_store::Store;

use crate::PipelineError;

/// The models built into the binary (trained by `textwatch train`; see the
/// README): categories, and subcategories within them.
pub const BUILTIN_MODEL: &[u8] = include_bytes!("../../../models/category.twm");
pub const BUILTIN_SUBMODEL: &[u8] = include_bytes!("../../../models/subcategory.twm");
/// The meaning table built into the binary (distilled by
/// `scripts/distill-meaning.py`; see the README).
pub const BUILTIN_MEANING: &[u8] = include_bytes!("../../../models/meaning.twe");

/// The built-in category models (none in a build made before the first
/// `textwatch train`).
pub fn builtin_model() -> Result<Option<Categorizer>, PipelineError> {
    if BUILTIN_MODEL.is_empty() {
        return Ok(None);
    }
    let top = Model::from_bytes(BUILTIN_MODEL)
        .map_err(|e| PipelineError::Setup(format!("the built-in category model is damaged: {e}")))?;
    let subs = if BUILTIN_SUBMODEL.is_empty() {
        Vec::new()
    } else {
        textwatch_engine::categorize::subs_from_bytes(BUILTIN_SUBMODEL)
            .map_err(|e| PipelineError::Setup(format!("the built-in subcategory models are damaged: {e}")))?
    };
    Ok(Some(Categorizer { top, subs }))
}

/// The built-in meaning table, shared by every engine of the process.
pub fn builtin_meaning() -> Result<Arc<MeaningModel>, PipelineError> {
    static TABLE: OnceLock<Arc<MeaningModel>> = OnceLock::new();
    if let Some(t) = TABLE.get() {
        return Ok(t.clone());
    }
    let t = MeaningModel::from_bytes(BUILTIN_MEANING)
        .map_err(|e| PipelineError::Setup(format!("the built-in meaning table is damaged: {e}")))?;
    Ok(TABLE.get_or_init(|| Arc::new(t)).clone())
}

/// The built-in rule pack plus every `*.toml` in each directory (in name
/// order; a rule id seen again replaces the earlier rule).
pub fn load_rules(dirs: &[PathBuf]) -> Result<RuleSet, PipelineError> {
    let mut set = RuleSet::builtin();
    for dir in dirs {
        let io = |what: String| move |source| PipelineError::Io { what, source };
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(io(format!("reading rules directory {}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(PipelineError::Setup(format!("rules directory {} holds no .toml rule packs", dir.display())));
        }
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(io(format!("reading {}", f.display())))?;
            let pack =
                RuleSet::from_toml(&text, &f.display().to_string()).map_err(|e| PipelineError::Setup(e.to_string()))?;
            set.extend(pack);
        }
    }
    Ok(set)
}

/// An engine restored from `store`, with `rules`, the built-in models and
/// the meaning table: what scan, serve and workers assign with. It holds
/// up to `dedup_keys` identity keys of stored messages
/// ([`EngineConfig::dedup_keys`]).
pub fn restore_engine(store: &mut dyn Store, rules: RuleSet, dedup_keys: usize) -> Result<Engine, PipelineError> {
    let cfg = EngineConfig { dedup_keys, ..EngineConfig::default() };
    let snap = store.load_snapshot(cfg.singleton_window, cfg.dedup_keys)?;
    let mut engine = Engine::restore(cfg, snap);
    configure(&mut engine, rules)?;
    Ok(engine)
}

/// Gives an engine `rules`, the built-in models and the meaning table.
pub fn configure(engine: &mut Engine, rules: RuleSet) -> Result<(), PipelineError> {
    engine.set_rules(rules);
    if let Some(m) = builtin_model()? {
        engine.set_classifier(m);
    }
    engine.set_meaning(builtin_meaning()?);
    Ok(())
}

/// The analyzer for messages going into `store`: recipients hashed under
/// the database's key and, during a key rotation's grace period, under the
/// previous key too (so recipients seen before the rotation are matched).
pub fn analyzer(store: &dyn textwatch_store::WriteStore, min_template_len: usize) -> Result<Analyzer, PipelineError> {
    let now = textwatch_store::time::now_ms();
    let previous = store.previous_secret(now)?;
    Ok(Analyzer::keyed(store.secret(), store.recipient_hash(), min_template_len)
        .with_previous_key(previous.as_deref(), store.recipient_hash()))
}
