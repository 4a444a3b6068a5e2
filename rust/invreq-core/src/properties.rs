//! The properties the fuzzers check, as plain functions: `fuzz/` runs them on generated
//! inputs, and `tests/corpus.rs` replays every committed corpus and regression file through
//! them in `cargo test`, so an input that once broke a property stays a test forever.
//!
//! Each function panics (with a message saying which property) when the input breaks one;
//! on any other input, however malformed, it returns quietly.

use crate::{blinding, invoice, invoice_request, merkle, string, tlv};

/// Text: whatever decodes re-encodes to a string that decodes to the same hrp and bytes.
pub fn decode_string(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok((hrp, bytes)) = string::decode(s) {
        let again = string::encode(&hrp, &bytes).expect("a decoded hrp encodes");
        assert_eq!(string::decode(&again).expect("re-encoded string decodes"), (hrp, bytes));
    }
}

/// Bytes: a stream that parses re-encodes byte for byte, and its merkle root is defined.
pub fn tlv_stream(data: &[u8]) {
    if let Ok(records) = tlv::parse_stream(data) {
        let refs: Vec<(u64, &[u8])> = records.iter().map(|(t, v)| (*t, v.as_slice())).collect();
        assert_eq!(tlv::encode_stream(&refs).expect("parsed records are ascending"), data);
        let _ = merkle::merkle_root(data);
    }
}

/// Bytes as an invoice_request stream and as text: reading never panics; what is read keeps
/// its bytes exactly, and its string form reads back to the same request; its unsigned form
/// (when it answers no offer) reads back to the same fields and `invreq_id`.
pub fn invoice_request(data: &[u8]) {
    use crate::read::Check;
    use invoice_request::{decode, parse};
    for check in [Check::StructureOnly, Check::Full] {
        if let Ok(r) = parse(data, check) {
            assert_eq!(r.bytes, data);
            let back = decode(&r.to_bolt12(), check).expect("encoded request decodes");
            assert_eq!(back, r);
            if let Some(plain) = r.to_bolt12_unsigned() {
                let back = decode(&plain, check).expect("the unsigned form decodes");
                assert_eq!((back.fields, back.invreq_id), (r.fields, r.invreq_id));
            }
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = decode(s, Check::Full);
    }
}

/// Bytes as an invoice stream and as text: the same properties for `lni` invoices.
pub fn invoice(data: &[u8]) {
    use crate::read::Check;
    for check in [Check::StructureOnly, Check::Full] {
        if let Ok(inv) = invoice::parse_with(data, check) {
            assert_eq!(inv.bytes, data);
            let back =
                invoice::decode_with(&inv.to_bolt12(), check).expect("encoded invoice decodes");
            assert_eq!(back, inv);
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = invoice::decode(s);
    }
}

/// Bytes as blinded paths (`invreq_paths`'s value), as one path, and as a hop's plaintext:
/// reading never panics, what is read re-encodes byte for byte, and decrypting any hop read
/// (with a fixed node secret) fails or succeeds quietly.
pub fn blinded_path(data: &[u8]) {
    use crate::read::Check;
    for check in [Check::StructureOnly, Check::Full] {
        if let Ok(paths) = blinding::read_paths("paths", data, check) {
            assert_eq!(blinding::encode_paths(&paths).expect("read paths encode"), data);
            for hop in paths.iter().flat_map(|p| &p.hops) {
                let _ = blinding::receive(
                    &[0x44; 32],
                    &hop.blinded_node_id,
                    &hop.encrypted_recipient_data,
                );
            }
        }
        if let Ok(path) = blinding::parse_path("path", data, check) {
            assert_eq!(blinding::encode_paths(&[path]).expect("a read path encodes"), data);
        }
    }
    if let Ok(d) = blinding::EncryptedData::parse(data) {
        assert_eq!(d.encode(), data, "encrypted_data_tlv re-encodes byte for byte");
    }
}
