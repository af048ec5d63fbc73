//! One JSONL line from a file or a request: decoded or rejected, never a
//! panic.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let file: Arc<str> = Arc::from("fuzz.jsonl");
    let _ = textwatch_sources::jsonl::decode_line(&file, 1, data);
});
