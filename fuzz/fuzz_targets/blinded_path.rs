//! Any bytes as blinded paths, one path, and hop data: see `invreq_core::properties::blinded_path`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| invreq_core::properties::blinded_path(data));
