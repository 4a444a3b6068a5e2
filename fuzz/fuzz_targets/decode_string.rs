//! Any text: decoding never panics, and whatever decodes re-encodes to a string that
//! decodes to the same human-readable part and bytes.
#![no_main]
use invreq_core::string;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok((hrp, bytes)) = string::decode(s) {
        let again = string::encode(&hrp, &bytes).expect("a decoded hrp encodes");
        assert_eq!(string::decode(&again).expect("re-encoded string decodes"), (hrp, bytes));
    }
});
