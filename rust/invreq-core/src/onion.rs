//! BOLT 4 onion messages, the sending side: the packet that carries a reply (an
//! `invoice_error`) to a payee over the blinded path it gave us.
//!
//! Core Lightning's `injectonionmessage` takes an `onion_message_packet` and the path key
//! the local node decrypts its own hop with, and processes it as if a peer had sent it. So
//! a reply is built the way CLN's offers plugin builds one: the local node is the first hop
//! (a one-hop blinded segment of our own whose data says `next_node_id` = the reply path's
//! introduction node and `next_path_key_override` = its first path key, BOLT 4 "Route
//! Blinding" for a sender joining a blinded path), then the reply path's hops, the last one
//! carrying the message. The whole construction is checked byte for byte against BOLT 4's
//! `blinded-onion-message-onion-test.json`, which is exactly this case.

use hmac::{Hmac, Mac};
use secp256k1::ecdh::SharedSecret;
use secp256k1::{PublicKey, Scalar, Secp256k1, SecretKey};
use sha2::{Digest, Sha256};

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;

use crate::error::{Error, Result};
use crate::tlv;

/// Bytes of hop payloads in an onion message packet: 1300, or 32768 when they do not fit
/// (BOLT 4: "SHOULD set `onion_message_packet` `len` to 1366 or 32834").
pub const SMALL_PAYLOADS: usize = 1300;
pub const LARGE_PAYLOADS: usize = 32768;
const HMAC_LEN: usize = 32;

/// `onionmsg_tlv` types (BOLT 4 and BOLT 12).
pub const ONIONMSG_ENCRYPTED_RECIPIENT_DATA: u64 = 4;
pub const ONIONMSG_INVOICE_ERROR: u64 = 68;
/// `encrypted_data_tlv` types (BOLT 4).
const ENCDATA_NEXT_NODE_ID: u64 = 4;
const ENCDATA_NEXT_PATH_KEY_OVERRIDE: u64 = 8;
/// `invoice_error` field (BOLT 12): the explanation, as UTF-8.
const INVOICE_ERROR_ERROR: u64 = 5;

type HmacSha256 = Hmac<Sha256>;

fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidField { field, reason: reason.into() }
}

fn hmac256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// ChaCha20 with a zero nonce from block 0: BOLT 4's `generate_cipher_stream`.
fn xor_stream(key: &[u8; 32], data: &mut [u8]) {
    ChaCha20::new(key.into(), &[0u8; 12].into()).apply_keystream(data);
}

fn stream(key: &[u8; 32], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    xor_stream(key, &mut out);
    out
}

fn scalar(bytes: [u8; 32]) -> Result<Scalar> {
    Scalar::from_be_bytes(bytes).map_err(|_| invalid("blinding", "factor out of range"))
}

/// The per-hop ephemeral keys of a Sphinx construction: (E_i, ss_i) for each node, where
/// ss_i = SHA256(ECDH(e_i, N_i)) and e_{i+1} = e_i * SHA256(E_i || ss_i).
fn hop_secrets<C: secp256k1::Signing + secp256k1::Verification>(
    secp: &Secp256k1<C>,
    first: &SecretKey,
    nodes: &[PublicKey],
) -> Result<Vec<(PublicKey, [u8; 32])>> {
    let mut e = *first;
    let mut out = Vec::with_capacity(nodes.len());
    for node in nodes {
        let big_e = PublicKey::from_secret_key(secp, &e);
        let ss = SharedSecret::new(node, &e).secret_bytes();
        out.push((big_e, ss));
        let b = sha256(&[&big_e.serialize(), &ss]);
        e = e.mul_tweak(&scalar(b)?).map_err(|_| invalid("blinding", "tweak failed"))?;
    }
    Ok(out)
}

/// BOLT 4 "Packet Construction" for an onion message: `version || E_0 || hop_payloads ||
/// hmac` for `hops` (node key, `onionmsg_tlv` payload) in order, with no associated data.
pub fn onion_packet(session_key: &[u8; 32], hops: &[(PublicKey, Vec<u8>)]) -> Result<Vec<u8>> {
    if hops.is_empty() {
        return Err(invalid("hops", "an onion needs at least one hop"));
    }
    let secp = Secp256k1::new();
    let session = SecretKey::from_slice(session_key)
        .map_err(|_| invalid("session_key", "not a valid secret key"))?;
    let nodes: Vec<PublicKey> = hops.iter().map(|(n, _)| *n).collect();
    let secrets = hop_secrets(&secp, &session, &nodes)?;
    let sizes: Vec<usize> =
        hops.iter().map(|(_, p)| tlv::bigsize_len(p.len() as u64) + p.len() + HMAC_LEN).collect();
    let total: usize = sizes.iter().sum();
    let len = if total <= SMALL_PAYLOADS {
        SMALL_PAYLOADS
    } else if total <= LARGE_PAYLOADS {
        LARGE_PAYLOADS
    } else {
        return Err(invalid("hops", format!("payloads of {total} bytes do not fit an onion")));
    };
    let rho: Vec<[u8; 32]> = secrets.iter().map(|(_, ss)| hmac256(b"rho", ss)).collect();
    let mu: Vec<[u8; 32]> = secrets.iter().map(|(_, ss)| hmac256(b"mu", ss)).collect();

    // The filler: what the hops before the last will have shifted in from the right, so the
    // last hop's HMAC covers the bytes it will really see.
    let filler_len: usize = sizes[..sizes.len() - 1].iter().sum();
    let mut filler = vec![0u8; filler_len];
    let mut used = 0;
    for i in 0..hops.len() - 1 {
        let s = stream(&rho[i], len + sizes[i]);
        let start = len - used;
        let end = len + sizes[i];
        for (f, k) in filler.iter_mut().zip(&s[start..end]) {
            *f ^= k;
        }
        used += sizes[i];
    }

    // Start from pseudo-random bytes (the "pad" key of the session key), then wrap each hop
    // from the last to the first.
    let mut packet = stream(&hmac256(b"pad", session_key), len);
    let mut next_hmac = [0u8; HMAC_LEN];
    for i in (0..hops.len()).rev() {
        let payload = &hops[i].1;
        packet.copy_within(0..len - sizes[i], sizes[i]);
        let mut at = Vec::with_capacity(sizes[i]);
        tlv::write_bigsize(&mut at, payload.len() as u64);
        at.extend_from_slice(payload);
        at.extend_from_slice(&next_hmac);
        packet[..sizes[i]].copy_from_slice(&at);
        xor_stream(&rho[i], &mut packet);
        if i == hops.len() - 1 {
            packet[len - filler_len..].copy_from_slice(&filler);
        }
        next_hmac = hmac256(&mu[i], &packet);
    }
    let mut out = Vec::with_capacity(1 + 33 + len + HMAC_LEN);
    out.push(0);
    out.extend_from_slice(&secrets[0].0.serialize());
    out.extend_from_slice(&packet);
    out.extend_from_slice(&next_hmac);
    Ok(out)
}

/// One hop of a blinded path built by us (BOLT 4 "Route Blinding"): the blinded node id
/// and the encrypted `encrypted_data_tlv`, for the node whose path key secret is `e`.
fn blind_hop<C: secp256k1::Signing + secp256k1::Verification>(
    secp: &Secp256k1<C>,
    e: &SecretKey,
    node: &PublicKey,
    data: &[u8],
) -> Result<(PublicKey, Vec<u8>)> {
    let ss = SharedSecret::new(node, e).secret_bytes();
    let blinded = node
        .mul_tweak(secp, &scalar(hmac256(b"blinded_node_id", &ss))?)
        .map_err(|_| invalid("node_id", "blinding failed"))?;
    let rho = hmac256(b"rho", &ss);
    let encrypted = ChaCha20Poly1305::new((&rho).into())
        .encrypt(&[0u8; 12].into(), Payload { msg: data, aad: &[] })
        .map_err(|_| invalid("encrypted_recipient_data", "encryption failed"))?;
    Ok((blinded, encrypted))
}

/// A reply path given to us: where it enters and its blinded hops (BOLT 4 `blinded_path`).
pub struct ReplyPath<'a> {
    pub first_node_id: PublicKey,
    pub first_path_key: PublicKey,
    /// (blinded_node_id, encrypted_recipient_data) per hop, at least one.
    pub hops: &'a [(PublicKey, Vec<u8>)],
}

/// The onion message that carries `final_records` (extra `onionmsg_tlv` records for the
/// last hop, e.g. `invoice_error`) over `reply` from the node `own_node_id`, for CLN's
/// `injectonionmessage`: returns (`path_key`, `onion_message_packet`).
///
/// `path_key_secret` blinds our own first hop; `session_key` is the Sphinx session key.
/// Both must be fresh random for every message (they are arguments so that the test
/// vectors can be reproduced).
pub fn reply_onion(
    own_node_id: &PublicKey,
    reply: &ReplyPath<'_>,
    final_records: &[(u64, Vec<u8>)],
    session_key: &[u8; 32],
    path_key_secret: &[u8; 32],
) -> Result<(PublicKey, Vec<u8>)> {
    let secp = Secp256k1::new();
    if reply.hops.is_empty() {
        return Err(invalid("reply_path", "num_hops is 0"));
    }
    if final_records.iter().any(|(t, _)| *t == ONIONMSG_ENCRYPTED_RECIPIENT_DATA) {
        return Err(invalid("final_records", "type 4 is the path's own"));
    }
    let mut onion_hops: Vec<(PublicKey, Vec<u8>)> = Vec::with_capacity(reply.hops.len() + 1);
    let path_key = if reply.first_node_id == *own_node_id {
        // The reply path starts here: we decrypt its first hop ourselves.
        reply.first_path_key
    } else {
        let e = SecretKey::from_slice(path_key_secret)
            .map_err(|_| invalid("path_key_secret", "not a valid secret key"))?;
        let data = tlv::encode_stream(&[
            (ENCDATA_NEXT_NODE_ID, &reply.first_node_id.serialize()),
            (ENCDATA_NEXT_PATH_KEY_OVERRIDE, &reply.first_path_key.serialize()),
        ])?;
        let (blinded, encrypted) = blind_hop(&secp, &e, own_node_id, &data)?;
        onion_hops.push((
            blinded,
            tlv::encode_stream(&[(ONIONMSG_ENCRYPTED_RECIPIENT_DATA, &encrypted)])?,
        ));
        PublicKey::from_secret_key(&secp, &e)
    };
    let last = reply.hops.len() - 1;
    for (i, (blinded, encrypted)) in reply.hops.iter().enumerate() {
        let mut recs: Vec<(u64, &[u8])> = vec![(ONIONMSG_ENCRYPTED_RECIPIENT_DATA, encrypted)];
        if i == last {
            recs.extend(final_records.iter().map(|(t, v)| (*t, v.as_slice())));
            recs.sort_by_key(|(t, _)| *t);
        }
        onion_hops.push((*blinded, tlv::encode_stream(&recs)?));
    }
    Ok((path_key, onion_packet(session_key, &onion_hops)?))
}

/// A BOLT 12 `invoice_error` carrying only its explanation (`error`, type 5), as CLN's
/// offers plugin sends them.
pub fn invoice_error(message: &str) -> Vec<u8> {
    let mut out = Vec::new();
    tlv::write_record(&mut out, INVOICE_ERROR_ERROR, message.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }
    fn pk(s: &str) -> PublicKey {
        PublicKey::from_slice(&unhex(s)).unwrap()
    }
    fn key32(s: &str) -> [u8; 32] {
        unhex(s).try_into().unwrap()
    }

    fn vector() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/vectors/bolt04/blinded-onion-message-onion-test.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// BOLT 4's vector is a sender (Alice) joining Dave's blinded path Bob->Carol->Dave and
    /// sending "hello" (type 1): our reply construction, with Alice as the local node.
    #[test]
    fn reply_onion_reproduces_the_bolt4_onion_message_vector() {
        let v = vector();
        let gen = &v["generate"];
        let alice = &gen["hops"][0];
        let route = &v["route"]["hops"];
        let hops: Vec<(PublicKey, Vec<u8>)> = route.as_array().unwrap()[1..]
            .iter()
            .map(|h| {
                (
                    pk(h["blinded_node_id"].as_str().unwrap()),
                    unhex(h["encrypted_recipient_data"].as_str().unwrap()),
                )
            })
            .collect();
        let reply = ReplyPath {
            first_node_id: pk(alice["tlvs"]["next_node_id"].as_str().unwrap()),
            first_path_key: pk(alice["tlvs"]["next_path_key_override"].as_str().unwrap()),
            hops: &hops,
        };
        let own = pk(v["route"]["first_node_id"].as_str().unwrap());
        let (path_key, packet) = reply_onion(
            &own,
            &reply,
            &[(1, unhex(v["onionmessage"]["unknown_tag_1"].as_str().unwrap()))],
            &key32(gen["session_key"].as_str().unwrap()),
            &key32(alice["path_key_secret"].as_str().unwrap()),
        )
        .unwrap();
        assert_eq!(path_key, pk(alice["E"].as_str().unwrap()));
        assert_eq!(
            hex::encode(packet),
            v["onionmessage"]["onion_message_packet"].as_str().unwrap()
        );
    }

    #[test]
    fn our_blinded_hop_matches_the_vector() {
        let v = vector();
        let alice = &v["generate"]["hops"][0];
        let secp = Secp256k1::new();
        let e = SecretKey::from_slice(&unhex(alice["path_key_secret"].as_str().unwrap())).unwrap();
        let (blinded, encrypted) = blind_hop(
            &secp,
            &e,
            &pk(v["route"]["first_node_id"].as_str().unwrap()),
            &unhex(alice["encrypted_data_tlv"].as_str().unwrap()),
        )
        .unwrap();
        assert_eq!(blinded, pk(alice["blinded_node_id"].as_str().unwrap()));
        assert_eq!(hex::encode(encrypted), alice["encrypted_recipient_data"].as_str().unwrap());
    }

    #[test]
    fn a_reply_path_starting_here_is_used_as_it_is() {
        let v = vector();
        let route = &v["route"];
        let hops: Vec<(PublicKey, Vec<u8>)> = route["hops"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    pk(h["blinded_node_id"].as_str().unwrap()),
                    unhex(h["encrypted_recipient_data"].as_str().unwrap()),
                )
            })
            .collect();
        let first = pk(route["first_node_id"].as_str().unwrap());
        let reply = ReplyPath {
            first_node_id: first,
            first_path_key: pk(route["first_path_key"].as_str().unwrap()),
            hops: &hops,
        };
        let session = key32(v["generate"]["session_key"].as_str().unwrap());
        let (path_key, packet) =
            reply_onion(&first, &reply, &[(1, b"hello".to_vec())], &session, &[7; 32]).unwrap();
        // The same onion as the vector's: Alice's hop is the path's own first hop.
        assert_eq!(path_key, reply.first_path_key);
        assert_eq!(
            hex::encode(packet),
            v["onionmessage"]["onion_message_packet"].as_str().unwrap()
        );
    }

    #[test]
    fn refusals() {
        let v = vector();
        let own = pk(v["route"]["first_node_id"].as_str().unwrap());
        let empty = ReplyPath { first_node_id: own, first_path_key: own, hops: &[] };
        assert!(reply_onion(&own, &empty, &[], &[3; 32], &[3; 32]).is_err());
        let hops = vec![(own, vec![1u8; 40000])];
        let huge = ReplyPath { first_node_id: own, first_path_key: own, hops: &hops };
        assert!(reply_onion(&own, &huge, &[], &[3; 32], &[3; 32]).is_err());
        let small = vec![(own, vec![1u8; 4])];
        let path = ReplyPath { first_node_id: own, first_path_key: own, hops: &small };
        assert!(reply_onion(&own, &path, &[(4, vec![])], &[3; 32], &[3; 32]).is_err());
        assert!(reply_onion(&own, &path, &[], &[0; 32], &[3; 32]).is_err()); // zero key
    }

    #[test]
    fn invoice_error_is_a_type_5_record() {
        assert_eq!(invoice_error("no"), vec![5, 2, b'n', b'o']);
    }
}
