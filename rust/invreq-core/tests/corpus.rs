//! Replays every committed fuzz input (`fuzz/corpus/<target>/` seeds and
//! `fuzz/regressions/<target>/`, where each crash the fuzzers ever found is kept) through the
//! same properties the fuzzers check. A failure here names the file.

use std::path::Path;

fn replay(target: &str, property: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut seen = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else { continue };
        for entry in entries {
            let path = entry.expect("readable directory").path();
            if !path.is_file() || path.file_name().is_some_and(|n| n == "README") {
                continue;
            }
            let data = std::fs::read(&path).expect("readable file");
            let outcome = std::panic::catch_unwind(|| property(&data));
            assert!(outcome.is_ok(), "{} breaks a property", path.display());
            seen += 1;
        }
    }
    assert!(seen > 0, "no corpus for {target}");
}

#[test]
fn decode_string_corpus() {
    replay("decode_string", invreq_core::properties::decode_string);
}

#[test]
fn tlv_stream_corpus() {
    replay("tlv_stream", invreq_core::properties::tlv_stream);
}

#[test]
fn invoice_request_corpus() {
    replay("invoice_request", invreq_core::properties::invoice_request);
}

#[test]
fn invoice_corpus() {
    replay("invoice", invreq_core::properties::invoice);
}

#[test]
fn blinded_path_corpus() {
    replay("blinded_path", invreq_core::properties::blinded_path);
}
