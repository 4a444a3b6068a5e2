//! BIP-340 signatures of BOLT 12 messages ("Signature Calculation"): checking one, and
//! attaching one to a message built and waiting for it.
//!
//! The invoice_request and the invoice are signed the same way: the signer signs
//! `H("lightning" || messagename || "signature", merkle_root)`, and the signature is record
//! 240, placed where the types stay ascending. [`Unsigned`] holds what both need until the
//! signature comes, so that rule and the check before a signature is attached are written
//! once.

use std::sync::OnceLock;

use secp256k1::{schnorr, Message, PublicKey, Secp256k1, VerifyOnly, XOnlyPublicKey};

use crate::error::{Result, SignatureError};
use crate::read::invalid;
use crate::{merkle, tlv};

/// The type of the `signature` record, in every BOLT 12 message.
pub const SIGNATURE_TYPE: u64 = 240;

fn secp() -> &'static Secp256k1<VerifyOnly> {
    static S: OnceLock<Secp256k1<VerifyOnly>> = OnceLock::new();
    S.get_or_init(Secp256k1::verification_only)
}

/// Parses a compressed point into the x-only key BIP-340 verifies with.
///
/// The service signs every request with one key; remembering the last key parsed saves the
/// square root a parse costs (a few microseconds) on every request.
pub(crate) fn xonly_of(point: &[u8]) -> Option<XOnlyPublicKey> {
    thread_local! {
        static LAST: std::cell::Cell<Option<([u8; 33], XOnlyPublicKey)>> = const { std::cell::Cell::new(None) };
    }
    let point: [u8; 33] = point.try_into().ok()?;
    if let Some((p, k)) = LAST.with(|c| c.get()) {
        if p == point {
            return Some(k);
        }
    }
    let key = PublicKey::from_slice(&point).ok()?.x_only_public_key().0;
    LAST.with(|c| c.set(Some((point, key))));
    Some(key)
}

/// BIP-340 verification with the process-wide verification context.
pub(crate) fn verify(digest: &[u8; 32], sig: &[u8; 64], key: &XOnlyPublicKey) -> Result<()> {
    let sig = schnorr::Signature::from_slice(sig).map_err(|_| SignatureError::Malformed)?;
    let msg = Message::from_digest(*digest);
    secp().verify_schnorr(&sig, &msg, key).map_err(|_| SignatureError::DoesNotVerify.into())
}

/// Checks that a BIP-340 `signature` of `digest` verifies against the compressed `point`.
pub fn verify_signature(digest: &[u8], signature: &[u8], point: &[u8]) -> Result<()> {
    let digest: [u8; 32] = digest.try_into().map_err(|_| invalid("digest", "must be 32 bytes"))?;
    let sig: [u8; 64] = signature.try_into().map_err(|_| SignatureError::Malformed)?;
    let key =
        xonly_of(point).ok_or_else(|| invalid("pubkey", "not a compressed secp256k1 point"))?;
    verify(&digest, &sig, &key)
}

/// A message built and not yet signed: its stream, the key that must sign it, and what that
/// key signs.
#[derive(Debug, Clone)]
pub(crate) struct Unsigned {
    pub(crate) bytes: Vec<u8>,
    key: XOnlyPublicKey,
    pub(crate) merkle_root: [u8; 32],
    /// `H("lightning" || messagename || "signature", merkle_root)`: what the key signs.
    pub(crate) digest: [u8; 32],
    /// Where the signature record goes: before the first experimental record, since types
    /// must ascend and experimental types (1e9..) are above the signature's 240.
    signature_at: usize,
}

impl Unsigned {
    /// The message `messagename` ("invoice_request", "invoice") as `bytes`, to be signed by
    /// `key`, its signature to go at `signature_at`.
    pub(crate) fn new(
        messagename: &str,
        bytes: Vec<u8>,
        key: XOnlyPublicKey,
        signature_at: usize,
    ) -> Result<Self> {
        let merkle_root = merkle::merkle_root(&bytes)?;
        let digest = merkle::signature_digest(messagename, "signature", &merkle_root);
        Ok(Self { bytes, key, merkle_root, digest, signature_at })
    }

    /// The signed stream, after checking that `signature` is the key's signature of the
    /// digest: a signer that returns garbage never gets it attached.
    pub(crate) fn attach(&self, signature: &[u8]) -> Result<([u8; 64], Vec<u8>)> {
        let sig: [u8; 64] = signature.try_into().map_err(|_| SignatureError::Malformed)?;
        verify(&self.digest, &sig, &self.key)?;
        let (low, high) = self.bytes.split_at(self.signature_at);
        let mut bytes = Vec::with_capacity(self.bytes.len() + 3 + 64);
        bytes.extend_from_slice(low);
        tlv::write_record(&mut bytes, SIGNATURE_TYPE, &sig);
        bytes.extend_from_slice(high);
        Ok((sig, bytes))
    }
}
