//! Any bytes: a stream that parses re-encodes byte for byte, and its merkle root is defined.
#![no_main]
use invreq_core::{merkle, tlv};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(records) = tlv::parse_stream(data) {
        let refs: Vec<(u64, &[u8])> = records.iter().map(|(t, v)| (*t, v.as_slice())).collect();
        assert_eq!(tlv::encode_stream(&refs).expect("parsed records are ascending"), data);
        let _ = merkle::merkle_root(data);
    }
});
