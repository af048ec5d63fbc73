//! NANPA's central-office and block files and a provider inventory: parsed
//! or rejected line by line, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use textwatch_numbers::nanpa;

fuzz_target!(|data: &[u8]| {
    let _ = nanpa::read_co(data, "fuzz-co.txt");
    let _ = nanpa::read_blocks(data, "fuzz-blocks.csv");
    let _ = nanpa::read_inventory(data, "fuzz-inventory.csv");
});
