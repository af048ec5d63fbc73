//! Request bodies from the network: ingest bodies (JSON array, object or
//! NDJSON, by Content-Type) split into records, Twilio form bodies decoded;
//! refused with a status, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use textwatch_server::bodies;

const TYPES: [&str; 4] = ["application/json", "application/x-ndjson", "application/json; charset=utf-8", "text/plain"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else { return };
    let _ = bodies::records(TYPES[pick as usize % TYPES.len()], body);
    let _ = bodies::form(body);
});
