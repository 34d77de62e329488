//! Arbitrary bytes through every envelope decoder, seeded with JSON envelopes. Also feeds the
//! bytes as KV metadata text.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    common::check_envelope(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(h) = kv_envelope::envelope::Header::from_metadata(text) {
            let _ = h.to_metadata();
        }
    }
});
