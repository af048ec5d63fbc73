//! A CSV file (a header and records; Twilio's export is recognised by its
//! header): every chunk decoded or rejected, never a panic.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use textwatch_sources::csv::CsvDecoder;

fuzz_target!(|data: &[u8]| {
    let reader = Box::new(Cursor::new(data.to_vec()));
    let Ok(mut d) = CsvDecoder::new(reader, "fuzz.csv".into()) else { return };
    while let Ok(Some(_)) = d.next_chunk() {}
});
