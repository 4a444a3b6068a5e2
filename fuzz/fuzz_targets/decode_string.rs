//! Any text: see `invreq_core::properties::decode_string`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| invreq_core::properties::decode_string(data));
