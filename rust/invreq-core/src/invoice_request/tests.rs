//! Unit tests of building and reading, against the spec vectors and the seed doc examples.

use super::*;
use crate::error::Error;
use crate::testing::{key, sign, with, without};

const SIGNATURE_TEST: &str = include_str!("../../../../tests/vectors/bolt12/signature-test.json");

/// The two examples of `lightning-invoicerequest.7.txt` with their documented `invreq_id`.
const SEED_EXAMPLES: [(&str, &str); 2] = [
    (
        "lnr1qqgypua5g7rp293k00s66ayvnv26czst2d5k6urvv5s8getnw3gzqp3zderpzxstt8927ynqg044h0egcd8n5h3n9g0u0v4h8ncc3yg02gps7sjqtqssytfzxcs2xkdy0lml0tzy0jzugmyj8kjn8zfzrgq9fsgurc72x82e7pq947t0ks7a4yejz8w79x4zj25s3pu6zrnw2e0v2ugdescpcqsq307z4p2dlxe92fv7xd43qut0pjkg4y094hupqyhsj8dlhvmmfng6sv",
        "93f193cd2432d292f8b64af08942989d71c0a0366fb52d57ddb688c8fb066399",
    ),
    (
        "lnr1qqgx5t5hcw5ru9fgkhgxj4thjq4ugzsk2fjhzat9wd6xjmn8ypnx7u3qd9h8vmmfvdj3yyrrd35kw6r5de5kueeqwd6x7un92qsqvgnwgcg35z6ee2h3yczraddm72xrfua9uve2rlrm9deu7xyfzr6jqwvfdqzcyypz6g3kyz34nfrl7lm6c3rushzxey3a55ecjgs6qp2vz8q78j336k0sgpvamrunx5t6vdaeu7nmmlh5u6f0dnscasy2alyxq79f5wnc043gxrzyqt640dmuj7c94644j5ae6wfse7tsejwqnmc575ly9t38h4hf",
        "a621a0e8e8ea9aa97fd47ab9b140e413be7f4ea45377617e693eb7afe5a3dbf9",
    ),
];

#[test]
fn seed_doc_examples_decode_verify_and_give_the_documented_id() {
    for (s, id) in SEED_EXAMPLES {
        let r = decode(s, Check::Full).unwrap();
        assert_eq!(hex::encode(r.invreq_id), id);
        assert_eq!(r.to_bolt12(), s);
    }
    let r = decode(SEED_EXAMPLES[1].0, Check::Full).unwrap();
    assert_eq!(r.fields.description.as_deref(), Some("Requesting for invoice"));
    assert_eq!(r.fields.issuer.as_deref(), Some("clightning store"));
    assert_eq!(r.fields.amount_msat, Some(10_000_000));
    assert_eq!(r.fields.metadata.as_ref().map(Vec::len), Some(16));
}

#[test]
fn spec_vector_invoice_request_verifies_and_re_signs_byte_for_byte() {
    let v: serde_json::Value = serde_json::from_str(SIGNATURE_TEST).unwrap();
    let case = v.as_array().unwrap().iter().find(|c| c["tlv"] == "invoice_request").unwrap();
    let r = decode(case["bolt12"].as_str().unwrap(), Check::Full).unwrap();
    assert_eq!(hex::encode(r.signature.unwrap()), case["signature"].as_str().unwrap());
    let unsigned = &r.bytes[..r.bytes.len() - 66];
    let root = merkle::merkle_root(unsigned).unwrap();
    assert_eq!(hex::encode(root), case["merkle"].as_str().unwrap());
    let digest = merkle::signature_digest("invoice_request", "signature", &root);
    assert_eq!(hex::encode(digest), case["H(signature_tag,merkle)"].as_str().unwrap());
    let (bob, bob_id) = key(0x42);
    assert_eq!(r.fields.payer_id, Some(bob_id));
    assert_eq!(hex::encode(sign(&bob, digest)), case["signature"].as_str().unwrap());
}

fn builder<'a>(payer: &'a [u8; 33], unknown: &'a [(u64, Vec<u8>)]) -> Builder<'a> {
    Builder {
        metadata: &[7u8; 16],
        description: "ATM withdrawal",
        amount_msat: 1_000_000,
        payer_id: payer,
        absolute_expiry: Some(1_900_000_000),
        issuer: Some("bank"),
        chain: None,
        paths: &[],
        unknown,
    }
}

#[test]
fn built_requests_sign_decode_and_round_trip() {
    let (kp, id) = key(0x11);
    let extra = [(101u64, b"odd".to_vec()), (1_000_000_001u64, vec![1, 2])];
    let u = builder(&id, &extra).build().unwrap();
    let signed = u.with_signature(&sign(&kp, u.digest())).unwrap();
    let s = signed.to_bolt12();
    let back = decode(&s, Check::Full).unwrap();
    assert_eq!(back, signed);
    assert_eq!(back.fields.unknown, extra.to_vec());
    // invreq_id covers the unsigned records only.
    assert_eq!(back.invreq_id, <[u8; 32]>::from(Sha256::digest(u.bytes())));
}

#[test]
fn a_signature_from_another_key_is_refused() {
    let (_, id) = key(0x11);
    let (other, _) = key(0x22);
    let u = builder(&id, &[]).build().unwrap();
    let err = u.with_signature(&sign(&other, u.digest())).unwrap_err();
    assert_eq!(err, Error::Signature(SignatureError::DoesNotVerify));
    assert_eq!(err.to_string(), "signature does not verify");
}

#[test]
fn builder_refuses_what_it_cannot_encode() {
    let (_, id) = key(0x11);
    let even = [(100u64, vec![])];
    assert!(matches!(builder(&id, &even).build(), Err(Error::InvalidField { .. })));
    let known = [(89u64, vec![])];
    assert!(matches!(builder(&id, &known).build(), Err(Error::InvalidField { .. })));
    let out = [(161u64, vec![])];
    assert!(matches!(builder(&id, &out).build(), Err(Error::InvalidField { .. })));
    let mut b = builder(&id, &[]);
    b.amount_msat = 0;
    assert!(b.build().is_err());
    let bad = [9u8; 33];
    assert!(matches!(
        builder(&bad, &[]).build(),
        Err(Error::InvalidField { field: "payer_id", .. })
    ));
}

/// Re-signs `records` (unsigned) with key 0x11 so only the rule under test can fail.
fn signed_stream(records: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let (kp, _) = key(0x11);
    let refs: Vec<(u64, &[u8])> = records.iter().map(|(t, v)| (*t, v.as_slice())).collect();
    let mut s = tlv::encode_stream(&refs).unwrap();
    let root = merkle::merkle_root(&s).unwrap();
    let sig = sign(&kp, merkle::signature_digest("invoice_request", "signature", &root));
    tlv::write_record(&mut s, 240, &sig);
    s
}

fn base() -> Vec<(u64, Vec<u8>)> {
    let (_, id) = key(0x11);
    vec![(0, vec![1; 16]), (10, b"d".to_vec()), (82, vec![0x03, 0xe8]), (88, id.to_vec())]
}

fn err_of(recs: Vec<(u64, Vec<u8>)>) -> String {
    parse(&signed_stream(&recs), Check::Full).unwrap_err().to_string()
}

#[test]
fn reader_rules_each_give_their_own_message() {
    assert!(parse(&signed_stream(&base()), Check::Full).is_ok());
    assert_eq!(err_of(with(base(), 78, vec![])), "unknown even type 78");
    assert_eq!(err_of(with(base(), 160, vec![])), "type 160 is outside the invoice_request ranges");
    assert_eq!(err_of(without(base(), 0)), "invreq_metadata missing");
    assert_eq!(err_of(without(base(), 88)), "invreq_payer_id missing");
    assert_eq!(err_of(without(base(), 82)), "invreq_amount missing");
    assert!(err_of(with(base(), 2, vec![0; 32])).starts_with("offer_chains not allowed"));
    assert!(err_of(with(base(), 12, vec![])).starts_with("offer_features not allowed"));
    assert!(err_of(with(base(), 20, vec![])).starts_with("offer_quantity_max not allowed"));
    assert_eq!(
        err_of(with(base(), 84, vec![0x01, 0x00])),
        "unknown even feature bit 8 in invreq_features"
    );
    assert!(parse(&signed_stream(&with(base(), 84, vec![0x02, 0x00])), Check::Full).is_ok());
    assert_eq!(
        err_of(with(base(), 82, vec![0, 1])),
        "invalid invreq_amount: tu64 not minimally encoded"
    );
    assert_eq!(err_of(with(base(), 10, vec![0xff])), "invalid offer_description: invalid utf-8");
    let (_, id) = key(0x33);
    let zero_hops = [id.to_vec(), id.to_vec(), vec![0]].concat();
    assert_eq!(
        err_of(with(base(), 90, zero_hops)),
        "invalid invreq_paths: blinded path with zero hops"
    );
}

#[test]
fn a_tampered_stream_fails_the_signature_check() {
    let mut s = signed_stream(&base());
    s[5] ^= 1; // inside invreq_metadata
    assert_eq!(parse(&s, Check::Full).unwrap_err().to_string(), "signature does not verify");
    assert!(parse(&s, Check::StructureOnly).is_ok());
}

fn unsigned(recs: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let refs: Vec<(u64, &[u8])> = recs.iter().map(|(t, v)| (*t, v.as_slice())).collect();
    tlv::encode_stream(&refs).unwrap()
}

#[test]
fn an_unsigned_request_answering_no_offer_is_valid() {
    // BOLT 12's writer of a request answering no offer "MUST NOT include signature".
    let s = unsigned(&base());
    let r = parse(&s, Check::Full).unwrap();
    assert_eq!(r.signature, None);
    assert_eq!(r.invreq_id, parse(&signed_stream(&base()), Check::Full).unwrap().invreq_id);
    assert_eq!(inspect(&s, Check::Full).unwrap().1, SignatureStatus::Unsigned);
}

#[test]
fn an_unsigned_request_answering_an_offer_is_refused_or_reported() {
    let (_, issuer) = key(0x44);
    let recs = with(base(), 22, issuer.to_vec());
    let s = unsigned(&recs);
    assert_eq!(parse(&s, Check::Full).unwrap_err().to_string(), "signature missing");
    let (r, status) = inspect(&s, Check::Full).unwrap();
    assert_eq!(status, SignatureStatus::Missing);
    assert_eq!(r.to_bolt12_unsigned(), None);
    assert!(parse(&signed_stream(&recs), Check::Full).is_ok());
}

#[test]
fn a_bad_signature_is_refused_by_parse_and_reported_by_inspect() {
    let mut s = signed_stream(&base());
    s[5] ^= 1;
    assert_eq!(inspect(&s, Check::Full).unwrap().1, SignatureStatus::Invalid);
    assert_eq!(inspect(&s, Check::StructureOnly).unwrap().1, SignatureStatus::Valid);
    assert_eq!(inspect(&signed_stream(&base()), Check::Full).unwrap().1, SignatureStatus::Valid);
}

#[test]
fn the_unsigned_string_is_the_request_without_its_signature() {
    let (kp, id) = key(0x11);
    let extra = [(101u64, b"odd".to_vec()), (1_000_000_001u64, vec![1, 2])];
    let u = builder(&id, &extra).build().unwrap();
    let signed = u.with_signature(&sign(&kp, u.digest())).unwrap();
    let plain = signed.to_bolt12_unsigned().unwrap();
    assert_eq!(plain, u.to_bolt12());
    assert_eq!(signed.unsigned_bytes(), u.bytes());
    let back = decode(&plain, Check::Full).unwrap();
    assert_eq!(back.invreq_id, signed.invreq_id);
    assert_eq!(back.fields, signed.fields);
    assert_eq!(back.signature, None);
    // The seed doc's CLN strings too: same id without the signature.
    for (s, id) in SEED_EXAMPLES {
        let plain = decode(s, Check::Full).unwrap().to_bolt12_unsigned().unwrap();
        assert_eq!(hex::encode(decode(&plain, Check::Full).unwrap().invreq_id), id);
    }
}

#[test]
fn amounts_above_the_bitcoin_supply_are_refused_when_built_and_read() {
    let (_, id) = key(0x11);
    let mut b = builder(&id, &[]);
    b.amount_msat = MAX_AMOUNT_MSAT;
    assert!(b.build().is_ok());
    b.amount_msat = MAX_AMOUNT_MSAT + 1;
    assert_eq!(
        b.build().unwrap_err().to_string(),
        "amount_msat: above 21,000,000 BTC (2100000000000000000 msat), the bitcoin supply"
    );
    let over = (MAX_AMOUNT_MSAT + 1).to_be_bytes().to_vec();
    assert_eq!(
        err_of(with(base(), 82, over.clone())),
        "invalid invreq_amount: above 21,000,000 BTC (2100000000000000000 msat), the bitcoin supply"
    );
    // offer_amount is in msat only without offer_currency.
    let (_, issuer) = key(0x44);
    let offer = with(with(base(), 22, issuer.to_vec()), 8, over.clone());
    assert!(err_of(offer.clone()).starts_with("invalid offer_amount: above 21,000,000 BTC"));
    assert!(parse(&signed_stream(&with(offer, 6, b"USD".to_vec())), Check::Full).is_ok());
}
