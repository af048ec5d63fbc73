//! textwatch's engine: everything between a decoded message and a campaign,
//! as pure computation. No files, sockets or databases here; sources,
//! stores and sinks sit around it (see `DESIGN.md`).
//!
//! The flow for one message:
//! [`fold`] (Unicode tricks undone) → [`template`] (variable parts become
//! slots) → [`features`] (links, phones, opt-out, sender id) →
//! [`campaigns`] (exact template, then MinHash/LSH near-duplicates).
//! [`analyze`] runs the per-message part; [`campaigns::Engine`] the
//! sequential assignment; [`state`] holds the rows a store persists.

pub mod analyze;
pub mod campaigns;
pub mod categorize;
pub mod classify;
pub mod features;
pub mod fold;
pub mod identity;
pub mod lsh;
pub mod meaning;
pub mod message;
pub mod minhash;
pub mod optout;
pub mod policy;
pub mod rules;
pub mod seen;
pub mod sender;
pub mod shorteners;
pub mod state;
pub mod taxonomy;
pub mod template;
pub mod unmask;

pub use analyze::{Analyzed, Analyzer, RecipientHash, Scratch};
pub use campaigns::{Engine, EngineConfig, Outcome, Peek};
pub use message::{Message, MAX_BODY_BYTES};
pub use rules::{Evidence, Finding, RuleSet, Severity};
pub use state::{campaign_id, ClusterRow, Delta, MinuteRow, SenderRow, Snapshot, TemplateRow};
