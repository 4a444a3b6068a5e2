//! Any bytes as a TLV stream: see `invreq_core::properties::tlv_stream`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| invreq_core::properties::tlv_stream(data));
