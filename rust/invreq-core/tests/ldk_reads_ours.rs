//! LDK (the `lightning` crate) reads the requests we make, in their unsigned form, and its
//! answer is an invoice our reader accepts for the same request.
//!
//! LDK's `Refund` is BOLT 12's "invoice_request not responding to an offer", whose writer
//! "MUST NOT include signature": LDK's parser has no slot for one and refuses our signed
//! strings (checked below), which is why the service hands out both forms.

mod ldk_common;

use invreq_core::blinding::IntroductionNode;
use invreq_core::blinding::PathSpec;
use invreq_core::chain::{chain_hash, CHAINS};
use invreq_core::invoice;
use invreq_core::invoice_request::{self as ir, Builder, MAX_AMOUNT_MSAT};
use invreq_core::read::Check;
use ldk_common::{key, signed, CREATED_AT, NODE, PAYER};
use lightning::blinded_path::IntroductionNode as LdkIntro;
use lightning::offers::refund::Refund;
use secp256k1::PublicKey;

/// Every shape of request the service makes: each network, with and without issuer and
/// expiry, amounts from 1 msat to the maximum, unicode text, unknown odd records, and a
/// two-hop blinded path (`invreq_paths`) from our blinding module.
fn requests() -> Vec<ir::InvoiceRequest> {
    let (_, payer) = key(PAYER);
    let payer = payer.serialize();
    let (_, intro) = key(0x55);
    let intro = intro.serialize();
    let spec =
        PathSpec { destination: &payer, introduction: Some(&intro), path_id: &[9; 32], pad: true };
    let path = [spec.build(&[0x33; 32]).unwrap()];
    let unknown = [(101u64, b"odd".to_vec()), (1_000_000_001u64, vec![1, 2, 3])];
    let mut out = Vec::new();
    for (i, (network, hash)) in CHAINS.iter().enumerate() {
        for amount in [1, 1_000_000, 21_000_000_000, MAX_AMOUNT_MSAT] {
            let chain = (*network != "bitcoin").then_some(hash.as_slice());
            let b = Builder {
                metadata: &[i as u8 + 1; 16],
                description: if amount % 2 == 0 {
                    "ATM withdrawal"
                } else {
                    "Rückzahlung ✓ 払い戻し 🚀"
                },
                amount_msat: amount,
                payer_id: &payer,
                absolute_expiry: (amount > 1).then_some(1_900_000_000),
                issuer: (amount != 1_000_000).then_some("Bänk ⚡"),
                chain,
                unknown: if amount == 21_000_000_000 { &unknown } else { &[] },
                paths: if amount == 1_000_000 { &path } else { &[] },
            };
            out.push(signed(&b));
        }
    }
    out
}

#[test]
fn ldk_refuses_our_signed_strings_and_reads_every_unsigned_one_with_the_same_fields() {
    for r in requests() {
        let plain = r.to_bolt12_unsigned().expect("our requests answer no offer");
        assert!(r.to_bolt12().parse::<Refund>().is_err(), "LDK has no signature slot");
        let refund: Refund = plain.parse().unwrap_or_else(|e| panic!("{e:?}: {plain}"));
        let f = &r.fields;
        // LDK keeps the string it read: unknown records included, byte for byte.
        assert_eq!(refund.to_string(), plain);
        assert_eq!(refund.payer_metadata(), f.metadata.as_deref().unwrap());
        assert_eq!(refund.description().0, f.description.as_deref().unwrap());
        assert_eq!(refund.issuer().map(|s| s.0), f.issuer.as_deref());
        assert_eq!(refund.absolute_expiry().map(|d| d.as_secs()), f.absolute_expiry);
        assert_eq!(Some(refund.amount_msats()), f.amount_msat);
        assert_eq!(refund.payer_signing_pubkey().serialize(), f.payer_id.unwrap());
        let chain = f.chain.unwrap_or_else(|| chain_hash("bitcoin").unwrap());
        assert_eq!(refund.chain().as_bytes(), &chain);
        assert_eq!(refund.quantity(), None);
        assert_eq!(refund.payer_note(), None);
        let ours = f.paths.as_deref().unwrap_or_default();
        assert_eq!(refund.paths().len(), ours.len());
        for (theirs, ours) in refund.paths().iter().zip(ours) {
            let IntroductionNode::NodeId(first) = ours.first_node else { panic!("node id") };
            assert_eq!(
                theirs.introduction_node(),
                &LdkIntro::NodeId(PublicKey::from_slice(&first).unwrap())
            );
            assert_eq!(theirs.blinding_point().serialize(), ours.first_path_key);
            let hops: Vec<_> = theirs
                .blinded_hops()
                .iter()
                .map(|h| (h.blinded_node_id.serialize(), h.encrypted_payload.clone()))
                .collect();
            let want: Vec<_> = ours
                .hops
                .iter()
                .map(|h| (h.blinded_node_id, h.encrypted_recipient_data.clone()))
                .collect();
            assert_eq!(hops, want);
        }
    }
}

#[test]
fn ldk_answers_the_unsigned_form_and_we_accept_its_invoice_for_the_same_request() {
    let (_, node) = key(NODE);
    for (i, r) in requests().into_iter().enumerate() {
        let hash = [i as u8; 32];
        let bytes = ldk_common::ldk_invoice_bytes(&r.to_bolt12_unsigned().unwrap(), hash);
        let inv = invoice::parse(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(inv.invreq_id, r.invreq_id, "the same request, signed or not");
        assert_eq!(inv.request.unknown, r.fields.unknown);
        assert_eq!(inv.amount_msat, r.fields.amount_msat.unwrap());
        assert_eq!(inv.payment_hash, hash);
        assert_eq!(inv.node_id, node.serialize());
        assert_eq!(inv.created_at, CREATED_AT);
        assert_eq!((inv.paths.len(), inv.paths[0].hops.len()), (1, 1));
        // The string form reads back too, as receiveinvoice reads it.
        assert_eq!(invoice::decode(&inv.to_bolt12()).unwrap(), inv);
    }
}

#[test]
fn the_unsigned_form_decodes_in_our_reader_as_the_same_request() {
    for r in requests() {
        let back = ir::decode(&r.to_bolt12_unsigned().unwrap(), Check::Full).unwrap();
        assert_eq!((back.fields, back.invreq_id, back.signature), (r.fields, r.invreq_id, None));
    }
}

#[test]
fn cln_example_strings_without_their_signature_are_read_by_ldk() {
    // The two examples of CLN's lightning-invoicerequest.7 (see src/invoice_request/tests.rs).
    let cln = [
        "lnr1qqgypua5g7rp293k00s66ayvnv26czst2d5k6urvv5s8getnw3gzqp3zderpzxstt8927ynqg044h0egcd8n5h3n9g0u0v4h8ncc3yg02gps7sjqtqssytfzxcs2xkdy0lml0tzy0jzugmyj8kjn8zfzrgq9fsgurc72x82e7pq947t0ks7a4yejz8w79x4zj25s3pu6zrnw2e0v2ugdescpcqsq307z4p2dlxe92fv7xd43qut0pjkg4y094hupqyhsj8dlhvmmfng6sv",
    ];
    for s in cln {
        assert!(s.parse::<Refund>().is_err());
        let plain = ir::decode(s, Check::Full).unwrap().to_bolt12_unsigned().unwrap();
        let refund: Refund = plain.parse().unwrap();
        assert_eq!(
            refund.amount_msats(),
            ir::decode(s, Check::Full).unwrap().fields.amount_msat.unwrap()
        );
    }
}
