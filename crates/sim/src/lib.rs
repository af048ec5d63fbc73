//! textwatch's instruments: a simulator that writes realistic, labelled SMS
//! traffic (with the evasions spammers use), and the metrics that score
//! found campaigns against its ground truth.
//!
//! See `docs/simulate.md` for the scenarios, the truth file and the metrics.

pub mod catalog;
pub mod evasion;
pub mod families;
pub mod generate;
pub mod metrics;
pub mod rng;
pub mod scenario;

pub use catalog::{by_name, NAMES};
pub use evasion::Evasion;
pub use generate::{generate, Options, Summary};
pub use metrics::{Prediction, Report, Truth};
pub use scenario::Scenario;
