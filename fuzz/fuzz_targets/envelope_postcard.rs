//! Arbitrary bytes behind a valid binary-frame preamble (`C5 01 01`), so every input exercises
//! the postcard header and payload decoders; the raw bytes are checked too (frame errors).
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    common::check_envelope(data);
    let mut framed = Vec::with_capacity(data.len() + 3);
    framed.extend_from_slice(&[0xC5, 0x01, 0x01]);
    framed.extend_from_slice(data);
    common::check_envelope(&framed);
});
