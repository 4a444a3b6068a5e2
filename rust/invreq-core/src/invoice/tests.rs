//! Unit tests of building and reading invoices, and of their link to the request answered.

use super::*;
use crate::error::{Error, SignatureError};
use crate::testing::{key, sign, with, without};

const AMOUNT: u64 = 1_000_000;
const PAYER: u8 = 0x11;
const NODE: u8 = 0x22;

/// A request signed by key 0x11, with `unknown` odd records.
fn request(unknown: &[(u64, Vec<u8>)]) -> ir::InvoiceRequest {
    let (kp, id) = key(PAYER);
    let b = ir::Builder {
        metadata: &[7u8; 16],
        description: "ATM withdrawal",
        amount_msat: AMOUNT,
        payer_id: &id,
        absolute_expiry: Some(1_900_000_000),
        issuer: Some("bank"),
        chain: Some(&crate::chain::CHAINS[4].1),
        paths: &[],
        unknown,
    };
    let u = b.build().unwrap();
    u.with_signature(&sign(&kp, u.digest())).unwrap()
}

fn payinfo() -> BlindedPayInfo {
    BlindedPayInfo {
        fee_base_msat: 1000,
        fee_proportional_millionths: 200,
        cltv_expiry_delta: 144,
        htlc_minimum_msat: 1,
        htlc_maximum_msat: AMOUNT,
        features: vec![],
    }
}

/// Builds and signs an invoice for `req` with key 0x22.
fn invoice_for(req: &ir::InvoiceRequest, unknown: &[(u64, Vec<u8>)]) -> (UnsignedInvoice, Invoice) {
    let (kp, node) = key(NODE);
    let paths = encode_paths(&[placeholder_path(node)]).unwrap();
    let b = InvoiceBuilder {
        invoice_request: &req.bytes,
        paths: &paths,
        payinfo: &payinfo(),
        created_at: 1_800_000_000,
        relative_expiry: Some(600),
        payment_hash: &[9u8; 32],
        amount_msat: AMOUNT,
        node_id: &node,
        features: Some(&[0x02, 0x00, 0x00]),
        unknown,
    };
    let u = b.build().unwrap();
    let signed = u.with_signature(&sign(&kp, u.digest())).unwrap();
    (u, signed)
}

#[test]
fn built_invoices_sign_encode_decode_and_round_trip() {
    let req = request(&[]);
    let (u, inv) = invoice_for(&req, &[(201, b"odd".to_vec())]);
    let s = inv.to_bolt12();
    assert!(s.starts_with("lni1"));
    let back = decode(&s).unwrap();
    assert_eq!(back, inv);
    assert_eq!(back.bytes.len(), u.bytes().len() + 66);
    let (_, node) = key(NODE);
    assert_eq!(back.node_id, node);
    assert_eq!(back.amount_msat, AMOUNT);
    assert_eq!(back.created_at, 1_800_000_000);
    assert_eq!(back.relative_expiry, Some(600));
    assert_eq!(back.expires_at(), 1_800_000_600);
    assert_eq!(back.payment_hash, [9u8; 32]);
    assert_eq!(back.paths, vec![placeholder_path(node)]);
    assert_eq!(back.blindedpay, vec![payinfo()]);
    assert_eq!(back.features.as_deref(), Some(&[0x02, 0x00, 0x00][..]));
    assert_eq!(back.fallbacks, None);
    assert_eq!(back.unknown, vec![(201, b"odd".to_vec())]);
    // Every request field is copied and read by the request's rules.
    let mut copied = req.fields.clone();
    copied.unknown.clear();
    assert_eq!(back.request, copied);
    assert_eq!(back.request.description.as_deref(), Some("ATM withdrawal"));
}

#[test]
fn the_invoice_leads_to_the_request_it_answers() {
    // Experimental records are copied too, and sit after the invoice's signature.
    let extra = [(101u64, b"odd".to_vec()), (1_000_000_001u64, vec![1, 2])];
    let req = request(&extra);
    let (u, inv) = invoice_for(&req, &[]);
    assert_eq!(u.invreq_id(), req.invreq_id);
    assert_eq!(inv.invreq_id, req.invreq_id);
    assert_eq!(decode(&inv.to_bolt12()).unwrap().invreq_id, req.invreq_id);
    assert_eq!(inv.request.unknown, extra.to_vec());
    let last = tlv::records(&inv.bytes).last().unwrap().unwrap();
    assert_eq!(last.typ, 1_000_000_001);
}

#[test]
fn expiry_defaults_to_7200_seconds() {
    let (_, mut inv) = invoice_for(&request(&[]), &[]);
    inv.relative_expiry = None;
    assert_eq!(inv.expires_at(), 1_800_007_200);
    inv.created_at = u64::MAX;
    assert_eq!(inv.expires_at(), u64::MAX);
}

#[test]
fn a_signature_from_another_key_is_refused() {
    let (u, _) = invoice_for(&request(&[]), &[]);
    let (payer, _) = key(PAYER);
    let err = u.with_signature(&sign(&payer, u.digest())).unwrap_err();
    assert_eq!(err, Error::Signature(SignatureError::DoesNotVerify));
    assert_eq!(u.with_signature(&[0; 63]).unwrap_err().to_string(), "signature is not 64 bytes");
}

#[test]
fn builder_refuses_what_a_reader_would_refuse() {
    let req = request(&[]);
    let (_, node) = key(NODE);
    let paths = encode_paths(&[placeholder_path(node)]).unwrap();
    let pi = payinfo();
    let good = InvoiceBuilder {
        invoice_request: &req.bytes,
        paths: &paths,
        payinfo: &pi,
        created_at: 1,
        relative_expiry: None,
        payment_hash: &[9u8; 32],
        amount_msat: AMOUNT,
        node_id: &node,
        features: None,
        unknown: &[],
    };
    assert!(good.build().is_ok());
    let field_of = |b: InvoiceBuilder<'_>| match b.build() {
        Err(Error::InvalidField { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    assert_eq!(field_of(InvoiceBuilder { amount_msat: AMOUNT + 1, ..good }), "amount_msat");
    assert_eq!(field_of(InvoiceBuilder { payment_hash: &[9u8; 31], ..good }), "payment_hash");
    assert_eq!(field_of(InvoiceBuilder { node_id: &[9u8; 33], ..good }), "node_id");
    assert_eq!(field_of(InvoiceBuilder { paths: &[], ..good }), "paths");
    assert_eq!(field_of(InvoiceBuilder { features: Some(&[0x04, 0, 0]), ..good }), "features");
    let even = BlindedPayInfo { features: vec![1], ..payinfo() };
    assert_eq!(field_of(InvoiceBuilder { payinfo: &even, ..good }), "payinfo");
    for t in [162u64, 178, 241] {
        let u = [(t, vec![])];
        assert_eq!(field_of(InvoiceBuilder { unknown: &u, ..good }), "unknown_records");
    }
    assert_eq!(field_of(InvoiceBuilder { invoice_request: &[1, 2], ..good }), "invoice_request");
    // The unsigned form of a request answering no offer is a request too: the same one.
    let unsigned = req.unsigned_bytes();
    let answered = InvoiceBuilder { invoice_request: &unsigned, ..good }.build().unwrap();
    assert_eq!(answered.invreq_id(), req.invreq_id);
}

#[test]
fn paths_encode_as_the_reader_reads_them() {
    let (_, a) = key(0x33);
    let (_, b) = key(0x44);
    let paths = vec![
        placeholder_path(a),
        BlindedPath {
            first_node: IntroductionNode::Sciddir { direction: 1, scid: 0x0001_0002_0003 },
            first_path_key: b,
            hops: vec![
                BlindedHop { blinded_node_id: a, encrypted_recipient_data: vec![1, 2, 3] },
                BlindedHop { blinded_node_id: b, encrypted_recipient_data: vec![] },
            ],
        },
    ];
    let enc = encode_paths(&paths).unwrap();
    assert_eq!(read_paths("p", &enc, Check::Full).unwrap(), paths);
    let none = BlindedPath { hops: vec![], ..placeholder_path(a) };
    assert!(encode_paths(&[none]).is_err());
}

// ---- one refusal per reader rule --------------------------------------------------------

/// The records of a good unsigned invoice.
fn base() -> Vec<(u64, Vec<u8>)> {
    let (u, _) = invoice_for(&request(&[]), &[]);
    tlv::parse_stream(u.bytes()).unwrap()
}

/// Signs `records` with the node key, so only the rule under test can fail.
fn signed_stream(records: &[(u64, Vec<u8>)]) -> Vec<u8> {
    signed_by(NODE, records)
}

/// Signs `records` with key `signer`, the signature record in its place among them.
fn signed_by(signer: u8, records: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let (kp, _) = key(signer);
    let refs: Vec<(u64, &[u8])> = records.iter().map(|(t, v)| (*t, v.as_slice())).collect();
    let s = tlv::encode_stream(&refs).unwrap();
    let root = merkle::merkle_root(&s).unwrap();
    let sig = sign(&kp, merkle::signature_digest("invoice", "signature", &root)).to_vec();
    tlv::encode_stream(
        &with(records.to_vec(), 240, sig)
            .iter()
            .map(|(t, v)| (*t, v.as_slice()))
            .collect::<Vec<_>>(),
    )
    .unwrap()
}

fn err_of(recs: Vec<(u64, Vec<u8>)>) -> String {
    parse(&signed_stream(&recs)).unwrap_err().to_string()
}

fn value(recs: &[(u64, Vec<u8>)], t: u64) -> Vec<u8> {
    recs.iter().find(|(u, _)| *u == t).unwrap().1.clone()
}

#[test]
fn reader_rules_each_give_their_own_message() {
    assert!(parse(&signed_stream(&base())).is_ok());
    for (t, name) in [
        (170, "invoice_amount"),
        (164, "invoice_created_at"),
        (168, "invoice_payment_hash"),
        (176, "invoice_node_id"),
        (160, "invoice_paths"),
        (162, "invoice_blindedpay"),
    ] {
        assert_eq!(err_of(without(base(), t)), format!("{name} missing"));
    }
    let b = base();
    let path = value(&b, 160);
    let pay = value(&b, 162);
    assert_eq!(
        err_of(with(base(), 160, [path.clone(), path.clone()].concat())),
        "invoice_blindedpay has 1 entries for 2 paths"
    );
    assert_eq!(err_of(with(base(), 162, vec![])), "invoice_blindedpay has 0 entries for 1 paths");
    assert_eq!(err_of(with(base(), 160, vec![])), "invalid invoice_paths: no blinded paths");
    let zero_hops = [&path[..66], &[0]].concat();
    assert_eq!(
        err_of(with(base(), 160, zero_hops)),
        "invalid invoice_paths: blinded path with zero hops"
    );
    assert_eq!(
        err_of(with(base(), 162, pay[..20].to_vec())),
        "invalid invoice_blindedpay: truncated"
    );
    let mut even = pay.clone();
    even[27] = 1; // flen = 1
    even.push(0x04); // feature bit 2
    assert_eq!(
        err_of(with(base(), 162, even)),
        "invalid invoice_blindedpay: every entry has unknown even features"
    );
    assert_eq!(
        err_of(with(base(), 168, vec![9; 31])),
        "invalid invoice_payment_hash: not 32 bytes"
    );
    assert_eq!(
        err_of(with(base(), 176, vec![9; 33])),
        "invalid invoice_node_id: not a compressed point"
    );
    let mut off_curve = vec![2u8];
    off_curve.extend([0xff; 32]);
    assert_eq!(
        err_of(with(base(), 176, off_curve)),
        "invalid invoice_node_id: not a point on the curve"
    );
    assert_eq!(
        err_of(with(base(), 166, vec![1, 0, 0, 0, 0])),
        "invalid invoice_relative_expiry: tu32 longer than 4 bytes"
    );
    assert_eq!(
        err_of(with(base(), 174, vec![0x04, 0x00, 0x00])),
        "unknown even feature bit 18 in invoice_features"
    );
    assert!(parse(&signed_stream(&with(base(), 174, vec![0x01, 0x00, 0x00]))).is_ok());
    assert_eq!(
        err_of(with(base(), 170, vec![0x0f, 0x42, 0x41])),
        "invalid invoice_amount: not equal to invreq_amount"
    );
    assert_eq!(err_of(with(base(), 178, vec![])), "unknown even type 178");
    assert_eq!(err_of(with(base(), 78, vec![])), "unknown even type 78");
    // No range rule for invoices: unknown even types are refused wherever they stand.
    assert_eq!(err_of(with(base(), 1002, vec![])), "unknown even type 1002");
    assert_eq!(err_of(with(base(), 3_000_000_000, vec![])), "unknown even type 3000000000");
    // Copied fields keep the request's value rules.
    assert_eq!(err_of(with(base(), 10, vec![0xff])), "invalid offer_description: invalid utf-8");
    // Unknown odd records are kept, in both ranges.
    let inv = parse(&signed_stream(&with(with(base(), 99, vec![1]), 239, vec![2]))).unwrap();
    assert_eq!(inv.request.unknown, vec![(99, vec![1])]);
    assert_eq!(inv.unknown, vec![(239, vec![2])]);
}

#[test]
fn fallbacks_are_kept_raw() {
    let raw = [vec![0u8, 0, 20], vec![7; 20]].concat();
    let inv = parse(&signed_stream(&with(base(), 172, raw.clone()))).unwrap();
    assert_eq!(inv.fallbacks, Some(raw));
}

#[test]
fn signature_rules() {
    let mut s = signed_stream(&base());
    s[5] ^= 1; // inside invreq_metadata
    assert_eq!(parse(&s).unwrap_err().to_string(), "signature does not verify");
    assert!(parse_with(&s, Check::StructureOnly).is_ok());
    let recs = base();
    let refs: Vec<(u64, &[u8])> = recs.iter().map(|(t, v)| (*t, v.as_slice())).collect();
    let unsigned = tlv::encode_stream(&refs).unwrap();
    assert_eq!(parse(&unsigned).unwrap_err().to_string(), "signature missing");
    // Signed by the payer (the request's key) instead of the node.
    let (payer, _) = key(PAYER);
    let root = merkle::merkle_root(&unsigned).unwrap();
    let mut s = unsigned.clone();
    tlv::write_record(
        &mut s,
        240,
        &sign(&payer, merkle::signature_digest("invoice", "signature", &root)),
    );
    assert_eq!(parse(&s).unwrap_err().to_string(), "signature does not verify");
    // The request's tag does not make an invoice signature.
    let (node, _) = key(NODE);
    let mut s = unsigned;
    let digest = merkle::signature_digest("invoice_request", "signature", &root);
    tlv::write_record(&mut s, 240, &sign(&node, digest));
    assert_eq!(parse(&s).unwrap_err().to_string(), "signature does not verify");
}

#[test]
fn the_string_must_be_an_invoice() {
    let req = request(&[]);
    assert_eq!(
        decode(&req.to_bolt12()).unwrap_err().to_string(),
        "unexpected prefix 'lnr', expected 'lni'"
    );
    let (_, inv) = invoice_for(&req, &[]);
    assert!(ir::decode(&inv.to_bolt12(), Check::Full).is_err());
    assert_eq!(decode(&inv.to_bolt12().to_uppercase()).unwrap(), inv);
}

#[test]
fn unknown_odd_records_outside_every_range_are_kept() {
    // LDK writes its experimental invoice records at 3_000_000_000 and above.
    for t in [1001u64, 999_999_999, 3_000_000_001] {
        let inv = parse(&signed_stream(&with(base(), t, vec![5]))).unwrap();
        assert_eq!(inv.unknown, vec![(t, vec![5])], "{t}");
        assert_eq!(inv.invreq_id, request(&[]).invreq_id, "{t}");
        assert_eq!(decode(&inv.to_bolt12()).unwrap(), inv);
    }
}

#[test]
fn amounts_above_the_bitcoin_supply_are_refused() {
    let max = ir::MAX_AMOUNT_MSAT.to_be_bytes().to_vec();
    let over = (ir::MAX_AMOUNT_MSAT + 1).to_be_bytes().to_vec();
    let recs = without(base(), 82);
    assert!(parse(&signed_stream(&with(recs.clone(), 170, max))).is_ok());
    assert_eq!(
        err_of(with(recs, 170, over)),
        "invalid invoice_amount: above 21,000,000 BTC (2100000000000000000 msat), the bitcoin supply"
    );
}

/// The records of an invoice answering an offer by `issuer`, with `offer_paths` or not.
fn offer_invoice(issuer: Option<[u8; 33]>, paths: Option<Vec<u8>>) -> Vec<(u64, Vec<u8>)> {
    let mut recs = without(base(), 80);
    if let Some(i) = issuer {
        recs = with(recs, 22, i.to_vec());
    }
    if let Some(p) = paths {
        recs = with(recs, 16, p);
    }
    recs
}

#[test]
fn an_invoice_for_an_offer_is_signed_by_its_issuer() {
    let (_, node) = key(NODE);
    let (_, other) = key(0x33);
    assert!(parse(&signed_by(NODE, &offer_invoice(Some(node), None))).is_ok());
    let e = parse(&signed_by(NODE, &offer_invoice(Some(other), None))).unwrap_err();
    assert_eq!(e.to_string(), "invalid invoice_node_id: not the offer_issuer_id of the offer");
    // With offer_paths and no issuer id: the final blinded node of one of the paths.
    let to_node = encode_paths(&[placeholder_path(other), placeholder_path(node)]).unwrap();
    assert!(parse(&signed_by(NODE, &offer_invoice(None, Some(to_node)))).is_ok());
    let elsewhere = encode_paths(&[placeholder_path(other)]).unwrap();
    let e = parse(&signed_by(NODE, &offer_invoice(None, Some(elsewhere)))).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid invoice_node_id: not the final blinded_node_id of any offer_paths path"
    );
    // A request answering no offer names no key: any node may sign (base() is such).
    let (_, payer) = key(PAYER);
    assert_ne!(payer, node);
}
