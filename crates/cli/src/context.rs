//! The options every campaign-showing command takes: the files that
//! enrich campaigns besides the database.

use textwatch_sinks::enrich::EnrichFiles;

/// Provider registry and policy files (flags, environment, or
/// textwatch.toml).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ContextArgs {
    /// Your provider registry (TOML), merged over the built-in one.
    #[arg(long, env = "TEXTWATCH_PROVIDERS", value_name = "FILE")]
    pub providers: Option<std::path::PathBuf>,
    /// Policy file (TOML) in place of the built-in policy/default.toml.
    #[arg(long, env = "TEXTWATCH_POLICY", value_name = "FILE")]
    pub policy: Option<std::path::PathBuf>,
}

impl ContextArgs {
    /// The files as the enricher takes them.
    pub fn files(&self) -> EnrichFiles {
        EnrichFiles { providers: self.providers.clone(), policy: self.policy.clone() }
    }
}
