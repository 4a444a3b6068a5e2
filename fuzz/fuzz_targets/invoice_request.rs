//! Any bytes as an invoice_request: see `invreq_core::properties::invoice_request`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| invreq_core::properties::invoice_request(data));
