//! Bytes an ESME or an SMSC sends the gateway: framed, decoded (rusmpp)
//! and read as short messages (text by data_coding, UDH, sar TLVs) without
//! a panic, under both meanings of data_coding 0.
#![no_main]

use libfuzzer_sys::fuzz_target;
use textwatch_smpp::text::DefaultAlphabet;

fuzz_target!(|data: &[u8]| {
    let _ = textwatch_smpp::sm::read_stream(data, DefaultAlphabet::Gsm);
    let _ = textwatch_smpp::sm::read_stream(data, DefaultAlphabet::Latin1);
    let _ = textwatch_smpp::concat::split_udh(data);
});
