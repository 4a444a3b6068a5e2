//! What the unit tests of every message share: deterministic keys, signing as CLN signs, and
//! editing a list of TLV records (the reader rules are tested by taking a valid message's
//! records and changing one).

use secp256k1::{Keypair, Message, PublicKey, Secp256k1, SecretKey};

/// The keypair of secret `[byte; 32]` and its compressed public key.
pub(crate) fn key(byte: u8) -> (Keypair, [u8; 33]) {
    let secp = Secp256k1::new();
    let sk = SecretKey::from_slice(&[byte; 32]).unwrap();
    let kp = Keypair::from_secret_key(&secp, &sk);
    (kp, PublicKey::from_secret_key(&secp, &sk).serialize())
}

/// BIP-340 with an all-zero auxiliary random, as CLN signs.
pub(crate) fn sign(kp: &Keypair, digest: [u8; 32]) -> [u8; 64] {
    let secp = Secp256k1::new();
    *secp.sign_schnorr_with_aux_rand(&Message::from_digest(digest), kp, &[0u8; 32]).as_ref()
}

/// `recs` with record `t` set to `v` (replaced if present), types kept ascending.
pub(crate) fn with(mut recs: Vec<(u64, Vec<u8>)>, t: u64, v: Vec<u8>) -> Vec<(u64, Vec<u8>)> {
    recs.retain(|(u, _)| *u != t);
    recs.push((t, v));
    recs.sort_by_key(|(t, _)| *t);
    recs
}

/// `recs` without record `t`.
pub(crate) fn without(mut recs: Vec<(u64, Vec<u8>)>, t: u64) -> Vec<(u64, Vec<u8>)> {
    recs.retain(|(u, _)| *u != t);
    recs
}
