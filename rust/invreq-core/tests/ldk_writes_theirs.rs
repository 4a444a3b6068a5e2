//! We read what LDK writes: its refunds (unsigned non-offer requests), its invoice requests
//! for offers (signed), and its invoices, also with an odd record in its experimental range.

mod ldk_common;

use std::time::Duration;

use invreq_core::invoice;
use invreq_core::invoice_request::{self as ir, SignatureStatus};
use invreq_core::offer;
use invreq_core::read::Check;
use ldk_common::{key, FixedEntropy, NODE, PAYER};
use lightning::bitcoin::Network;
use lightning::ln::channelmanager::PaymentId;
use lightning::ln::inbound_payment::ExpandedKey;
use lightning::offers::invoice::UnsignedBolt12Invoice;
use lightning::offers::nonce::Nonce;
use lightning::offers::offer::OfferBuilder;
use lightning::offers::refund::RefundBuilder;
use lightning::util::ser::Writeable;
use secp256k1::Secp256k1;

#[test]
fn ldk_refunds_decode_as_valid_unsigned_requests() {
    let (_, payer) = key(PAYER);
    let refund = RefundBuilder::new(vec![9; 16], payer, 42_000)
        .unwrap()
        .description("Rückerstattung ⚡".into())
        .absolute_expiry(Duration::from_secs(1_900_000_000))
        .issuer("LDK shop".into())
        .chain(Network::Testnet)
        .payer_note("thanks".into())
        .build()
        .unwrap();
    let s = refund.to_string();
    let (r, status) = ir::decode_inspect(&s, Check::Full).unwrap();
    assert_eq!(status, SignatureStatus::Unsigned);
    let f = &r.fields;
    assert_eq!(f.metadata.as_deref(), Some(&[9u8; 16][..]));
    assert_eq!(f.description.as_deref(), Some("Rückerstattung ⚡"));
    assert_eq!(f.issuer.as_deref(), Some("LDK shop"));
    assert_eq!(f.absolute_expiry, Some(1_900_000_000));
    assert_eq!(f.amount_msat, Some(42_000));
    assert_eq!(f.payer_note.as_deref(), Some("thanks"));
    assert_eq!(f.chain.as_ref(), invreq_core::chain::chain_hash("testnet").as_ref());
    assert_eq!(f.payer_id, Some(payer.serialize()));
    assert_eq!(ir::decode(&s, Check::Full).unwrap().to_bolt12_unsigned().unwrap(), s);
}

#[test]
fn ldk_invoice_requests_for_offers_decode_signed_and_valid() {
    let (_, issuer) = key(NODE);
    let offer =
        OfferBuilder::new(issuer).description("coffee".into()).amount_msats(5_000).build().unwrap();
    // The offer itself, as `decode` reads it.
    let o = offer::decode(&offer.to_string(), Check::Full).unwrap();
    assert_eq!(o.fields.offer_amount, Some(5_000));
    assert_eq!(o.fields.offer_issuer_id, Some(issuer.serialize()));

    let secp = Secp256k1::new();
    let request = offer
        .request_invoice(
            &ExpandedKey::new([4; 32]),
            Nonce::from_entropy_source(&FixedEntropy(8)),
            &secp,
            PaymentId([6; 32]),
        )
        .unwrap()
        .payer_note("two sugars".into())
        .build_and_sign()
        .unwrap();
    let s = invreq_core::string::encode("lnr", &request.encode()).unwrap();
    let (r, status) = ir::decode_inspect(&s, Check::Full).unwrap();
    assert_eq!(status, SignatureStatus::Valid);
    assert_eq!(r.fields.offer_issuer_id, Some(issuer.serialize()));
    assert_eq!(r.fields.payer_note.as_deref(), Some("two sugars"));
    assert_eq!(r.fields.payer_id, Some(request.payer_signing_pubkey().serialize()));
    assert_eq!(r.to_bolt12_unsigned(), None, "an offer's request is always signed");
    // Without its signature it is reported, not silently taken.
    let plain = invreq_core::string::encode("lnr", &r.unsigned_bytes()).unwrap();
    let (_, missing) = ir::decode_inspect(&plain, Check::Full).unwrap();
    assert_eq!(missing, SignatureStatus::Missing);
}

#[test]
fn ldk_invoices_with_an_odd_record_in_its_experimental_range_are_read() {
    let (_, payer) = key(PAYER);
    let refund = RefundBuilder::new(vec![9; 16], payer, 42_000)
        .unwrap()
        .description("refund".into())
        .build()
        .unwrap();
    let unsigned = ldk_common::ldk_unsigned_invoice(&refund, [1; 32]);
    // LDK reads back its unsigned invoice with the extra record (its experimental invoice
    // range starts at 3_000_000_000) and signs it through its own API.
    let mut bytes = unsigned.encode();
    bytes.extend_from_slice(&[0xfe, 0xb2, 0xd0, 0x5e, 0x01, 0x03, b'x', b'y', b'z']);
    let unsigned = UnsignedBolt12Invoice::try_from(bytes).unwrap();
    let ldk = ldk_common::ldk_sign(unsigned).encode();
    let inv = invoice::parse(&ldk).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(inv.unknown, vec![(3_000_000_001, b"xyz".to_vec())]);
    let r = ir::decode(&refund.to_string(), Check::Full).unwrap();
    assert_eq!(inv.invreq_id, r.invreq_id);
}
