//! What phones get back when they text HELP, STOP or START: the replies
//! configured per sending number, with defaults.

use std::collections::HashMap;

use textwatch_engine::optout::Keyword;

/// Replies to HELP (and, if set, confirmations of STOP and START), per
/// sending number, with defaults.
#[derive(Clone, Debug, Default)]
pub struct Replies {
    /// HELP reply for any number without its own.
    pub help: Option<String>,
    /// HELP replies for given numbers (normalized by the server).
    pub help_for: HashMap<String, String>,
    /// Sent back once for STOP, if set.
    pub stop: Option<String>,
    /// Sent back once for START, if set.
    pub start: Option<String>,
}

impl Replies {
    pub(crate) fn for_keyword(&self, k: Keyword, number: &str) -> Option<String> {
        match k {
            Keyword::Help => self.help_for.get(number).or(self.help.as_ref()).cloned(),
            Keyword::Out => self.stop.clone(),
            Keyword::In => self.start.clone(),
        }
    }
}
