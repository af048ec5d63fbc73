//! Rule packs and policy files (TOML written by users): loaded or refused
//! with an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(rules) = textwatch_engine::RuleSet::from_toml(text, "fuzz.toml") {
        let _ = rules.quiet_hours();
    }
    let _ = textwatch_engine::policy::Policy::from_toml(text, "fuzz-policy.toml");
});
