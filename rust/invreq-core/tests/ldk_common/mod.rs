//! What the LDK tests share: fixed keys and entropy, our requests in their unsigned form, and
//! LDK playing the payee (a refund answered with a one-hop blinded payment path, built only
//! from LDK's public constructors, as an LDK-based wallet would).
#![allow(dead_code)]

use std::time::Duration;

use invreq_core::invoice_request::{self as ir, Builder};
use lightning::blinded_path::payment::{
    BlindedPaymentPath, Bolt12RefundContext, PaymentConstraints, PaymentContext,
    UnauthenticatedReceiveTlvs,
};
use lightning::ln::inbound_payment::ExpandedKey;
use lightning::offers::invoice::{Bolt12Invoice, UnsignedBolt12Invoice};
use lightning::offers::nonce::Nonce;
use lightning::offers::refund::Refund;
use lightning::sign::EntropySource;
use lightning::types::payment::{PaymentHash, PaymentSecret};
use lightning::util::ser::Writeable;
use secp256k1::{Keypair, Message, PublicKey, Secp256k1, SecretKey};

/// The payer key of our requests and the node key of LDK's invoices.
pub const PAYER: u8 = 0x11;
pub const NODE: u8 = 0x22;
/// When LDK's invoices say they were made (2027-01-15).
pub const CREATED_AT: u64 = 1_800_000_000;

pub fn key(byte: u8) -> (Keypair, PublicKey) {
    let secp = Secp256k1::new();
    let sk = SecretKey::from_slice(&[byte; 32]).unwrap();
    (Keypair::from_secret_key(&secp, &sk), PublicKey::from_secret_key(&secp, &sk))
}

/// Entropy that is the same every run, so LDK's blinded paths (and the invoices carrying
/// them) are reproducible.
pub struct FixedEntropy(pub u8);

impl EntropySource for FixedEntropy {
    fn get_secure_random_bytes(&self) -> [u8; 32] {
        [self.0; 32]
    }
}

/// Our request built from `b` and signed by key [`PAYER`], as the service makes it.
pub fn signed(b: &Builder<'_>) -> ir::InvoiceRequest {
    let (kp, _) = key(PAYER);
    let u = b.build().unwrap();
    let sig = Secp256k1::new().sign_schnorr_no_aux_rand(&Message::from_digest(u.digest()), &kp);
    u.with_signature(sig.as_ref()).unwrap()
}

/// A one-hop blinded payment path to `node`, made the way an LDK node makes one for a refund.
pub fn payment_path(node: PublicKey) -> BlindedPaymentPath {
    let secp = Secp256k1::new();
    let entropy = FixedEntropy(7);
    let expanded_key = ExpandedKey::new([3; 32]);
    let tlvs = UnauthenticatedReceiveTlvs {
        payment_secret: PaymentSecret([5; 32]),
        payment_constraints: PaymentConstraints {
            max_cltv_expiry: 1_000_000,
            htlc_minimum_msat: 1,
        },
        payment_context: PaymentContext::Bolt12Refund(Bolt12RefundContext {}),
    }
    .authenticate(Nonce::from_entropy_source(&entropy), &expanded_key);
    BlindedPaymentPath::one_hop(node, tlvs, 18, &entropy, &secp).unwrap()
}

/// LDK's invoice answering `refund`, made at [`CREATED_AT`], to be signed by key [`NODE`];
/// unsigned so a test may add to it.
pub fn ldk_unsigned_invoice(refund: &Refund, payment_hash: [u8; 32]) -> UnsignedBolt12Invoice {
    ldk_unsigned_invoice_at(refund, payment_hash, CREATED_AT)
}

/// [`ldk_unsigned_invoice`] made at `created_at` (seconds since 1970).
pub fn ldk_unsigned_invoice_at(
    refund: &Refund,
    payment_hash: [u8; 32],
    created_at: u64,
) -> UnsignedBolt12Invoice {
    let (_, node) = key(NODE);
    refund
        .respond_with_no_std(
            vec![payment_path(node)],
            PaymentHash(payment_hash),
            node,
            Duration::from_secs(created_at),
        )
        .unwrap()
        .build()
        .unwrap()
}

/// Signs an LDK unsigned invoice with key [`NODE`], through LDK's own signing call.
pub fn ldk_sign(unsigned: UnsignedBolt12Invoice) -> Bolt12Invoice {
    let (kp, _) = key(NODE);
    let secp = Secp256k1::new();
    unsigned
        .sign(|u: &UnsignedBolt12Invoice| {
            Ok(secp.sign_schnorr_no_aux_rand(u.tagged_hash().as_digest(), &kp))
        })
        .unwrap()
}

/// LDK's invoice answering the request string `lnr` (read by LDK's `Refund` parser), as the
/// bytes LDK writes.
pub fn ldk_invoice_bytes(lnr: &str, payment_hash: [u8; 32]) -> Vec<u8> {
    let refund: Refund = lnr.parse().unwrap();
    ldk_sign(ldk_unsigned_invoice(&refund, payment_hash)).encode()
}
