//! Any bytes as a TLV stream, and as an `lnr` string: reading never panics; what is read
//! keeps its bytes exactly, and its string form reads back to the same request.
#![no_main]
use invreq_core::invoice_request::{decode, parse, Check};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for check in [Check::StructureOnly, Check::Full] {
        if let Ok(r) = parse(data, check) {
            assert_eq!(r.bytes, data);
            let back = decode(&r.to_bolt12(), check).expect("encoded request decodes");
            assert_eq!(back, r);
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = decode(s, Check::Full);
    }
});
