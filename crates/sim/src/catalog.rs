//! The built-in scenarios, by name: the hand-written ones of
//! [`crate::scenario`] and the scenario families of [`crate::families`].

use crate::scenario::Scenario;

/// The names of the built-in scenarios.
pub const NAMES: &[&str] = &["election-2020", "takedowns-2020", "smishing", "baseline", "rewordings", "scam-rotation"];

/// Builds a scenario by name.
pub fn by_name(name: &str) -> Option<Scenario> {
    match name {
        "election-2020" => Some(crate::scenario::election_2020()),
        "takedowns-2020" => Some(crate::scenario::takedowns_2020()),
        "smishing" => Some(crate::scenario::smishing()),
        "baseline" => Some(crate::scenario::baseline()),
        "rewordings" => Some(crate::families::rewordings()),
        "scam-rotation" => Some(crate::families::scam_rotation()),
        _ => None,
    }
}
