//! Any bytes as an invoice: see `invreq_core::properties::invoice`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| invreq_core::properties::invoice(data));
