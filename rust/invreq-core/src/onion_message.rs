//! Onion messages (BOLT 4 "Onion Messages"), both ways.
//!
//! - Receiving ([`peel`], BOLT 4 "Onion Decryption"): peel one layer of an
//!   `onion_message_packet` with a node's secret and the `path_key` that came with it, then
//!   read the hop's `encrypted_recipient_data` ([`blinding::receive`]). Tests use it to
//!   follow a message another implementation built for one of our paths to its `path_id`.
//! - Sending ([`reply_onion`], BOLT 4 "Packet Construction"): the packet that carries a
//!   reply (an `invoice_error`) to a payee over the blinded path it gave us. Core
//!   Lightning's `injectonionmessage` takes an `onion_message_packet` and the path key the
//!   local node decrypts its own hop with, and processes it as if a peer had sent it; so the
//!   local node is the first hop (a one-hop blinded segment of ours whose data says
//!   `next_node_id` = the reply path's introduction node and `next_path_key_override` = its
//!   first path key: a sender joining a blinded path), then the reply path's hops, the last
//!   one carrying the message. Checked byte for byte against BOLT 4's
//!   `blinded-onion-message-onion-test.json`, which is exactly this case.

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;
use hmac::{Hmac, Mac};
use secp256k1::{PublicKey, Scalar, Secp256k1, SecretKey};
use sha2::Sha256;

use crate::blinding::{
    self, public_key, secret_key, BlindedPath, EncryptedData, IntroductionNode, ReceivedHop,
};
use crate::error::Result;
use crate::read::{invalid, semantic};
use crate::tlv;

/// The type of the `onion_message` peer message.
pub const ONION_MESSAGE_TYPE: u16 = 513;

/// `onionmsg_tlv` types (BOLT 4).
pub mod types {
    /// `reply_path`: the blinded path an answer goes back over.
    pub const REPLY_PATH: u64 = 2;
    /// `encrypted_recipient_data`: the hop's data from the blinded path.
    pub const ENCRYPTED_RECIPIENT_DATA: u64 = 4;
    /// `invoice_request` (BOLT 12): a request answering an offer.
    pub const INVOICE_REQUEST: u64 = 64;
    /// `invoice` (BOLT 12): an invoice answering a request.
    pub const INVOICE: u64 = 66;
    /// `invoice_error` (BOLT 12): why an invoice_request or invoice was refused.
    pub const INVOICE_ERROR: u64 = 68;
}

/// An `onion_message` peer message: the path key and the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnionMessage {
    /// The path key the receiving node derives its shared secret from (`E_i`).
    pub path_key: [u8; 33],
    /// The `onion_message_packet`: version, public key, hop payloads, HMAC.
    pub packet: Vec<u8>,
}

impl OnionMessage {
    /// Reads the message (type 513 first, as on the wire); nothing may follow the packet.
    pub fn parse(b: &[u8]) -> Result<Self> {
        const F: &str = "onion_message";
        if b.len() < 2 + 33 + 2 || b[..2] != ONION_MESSAGE_TYPE.to_be_bytes() {
            return Err(semantic(F, "not an onion_message"));
        }
        let path_key: [u8; 33] = b[2..35].try_into().expect("33 bytes");
        let len = usize::from(u16::from_be_bytes([b[35], b[36]]));
        if b.len() != 37 + len {
            return Err(semantic(F, "packet length does not match"));
        }
        Ok(OnionMessage { path_key, packet: b[37..].to_vec() })
    }

    /// The message as sent to a peer: type 513, the path key, the packet's length and the packet.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(37 + self.packet.len());
        out.extend_from_slice(&ONION_MESSAGE_TYPE.to_be_bytes());
        out.extend_from_slice(&self.path_key);
        out.extend_from_slice(&(self.packet.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.packet);
        out
    }
}

/// What one node learns from an onion message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peeled {
    /// This hop's `onionmsg_tlv`, byte for byte.
    pub onionmsg_tlv: Vec<u8>,
    /// Its `encrypted_recipient_data`, decrypted ([`blinding::receive`]).
    pub hop: ReceivedHop,
    /// The message to forward (the next path key and packet); `None` at the final node.
    pub next: Option<OnionMessage>,
}

fn hmac256(key: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    for p in parts {
        m.update(p);
    }
    m
}

/// Peels one layer of `packet` as the node with `node_secret`, given the `path_key` that came
/// with it: checks the packet's HMAC, extracts this hop's `onionmsg_tlv`, decrypts its
/// `encrypted_recipient_data`, and builds the message for the next node unless this one is
/// the last. Any failure (wrong node, tampered packet, malformed payload) is an error.
pub fn peel(node_secret: &[u8], path_key: &[u8], packet: &[u8]) -> Result<Peeled> {
    const F: &str = "onion_message_packet";
    // version, public key, at least one byte of payloads, hmac.
    if packet.len() < 1 + 33 + 1 + 32 {
        return Err(semantic(F, "too short"));
    }
    if packet[0] != 0 {
        return Err(semantic(F, "unknown version"));
    }
    let onion_key = public_key("onion public_key", &packet[1..34])?;
    let (payloads, hmac) = packet[34..].split_at(packet.len() - 34 - 32);
    // The onion is encrypted to the blinded node id, whose secret the path key gives us.
    let k = secret_key("node_secret", node_secret)?;
    let blinded = {
        let big_e = public_key("path_key", path_key)?;
        let factor = blinding::blinding_factor(&blinding::shared_secret(&k, &big_e));
        let factor = secp256k1::Scalar::from_be_bytes(factor)
            .map_err(|_| semantic(F, "blinding factor out of range"))?;
        k.mul_tweak(&factor).map_err(|_| semantic(F, "blinded secret became zero"))?
    };
    let ss = blinding::shared_secret(&blinded, &onion_key);
    let mu = hmac256(b"mu", &[&ss]).finalize().into_bytes();
    // Constant-time comparison (verify_slice) of HMAC256(mu, hop_payloads || empty data).
    hmac256(&mu, &[payloads]).verify_slice(hmac).map_err(|_| semantic(F, "hmac does not match"))?;
    let rho = blinding::rho(&ss);
    let mut unwrapped = payloads.to_vec();
    unwrapped.resize(2 * payloads.len(), 0);
    ChaCha20::new(&rho.into(), &[0u8; 12].into()).apply_keystream(&mut unwrapped);
    let (len, n) = tlv::read_bigsize(&unwrapped)
        .map_err(|_| semantic(F, "malformed payload length"))?
        .ok_or_else(|| semantic(F, "malformed payload length"))?;
    let len = usize::try_from(len).map_err(|_| semantic(F, "payload too long"))?;
    if len < 2 || n + len + 32 > payloads.len() {
        return Err(semantic(F, "payload length out of range"));
    }
    let payload = &unwrapped[n..n + len];
    let next_hmac = &unwrapped[n + len..n + len + 32];
    let mut encrypted = None;
    for r in tlv::records(payload) {
        let r = r?;
        match r.typ {
            types::ENCRYPTED_RECIPIENT_DATA => encrypted = Some(r.value),
            types::REPLY_PATH | types::INVOICE_REQUEST | types::INVOICE | types::INVOICE_ERROR => {}
            t if t % 2 == 0 => {
                return Err(crate::error::SemanticError::UnknownEvenType(t).into());
            }
            _ => {}
        }
    }
    let encrypted = encrypted.ok_or_else(|| semantic(F, "no encrypted_recipient_data"))?;
    let hop = blinding::receive(node_secret, path_key, encrypted)?;
    let next = if next_hmac.iter().all(|&b| b == 0) {
        None
    } else {
        let factor = blinding::path_key_factor(&onion_key, &ss);
        let factor = secp256k1::Scalar::from_be_bytes(factor)
            .map_err(|_| semantic(F, "blinding tweak out of range"))?;
        let next_key: PublicKey = onion_key
            .mul_tweak(blinding::secp(), &factor)
            .map_err(|_| semantic(F, "next onion key at infinity"))?;
        let mut next_packet = Vec::with_capacity(packet.len());
        next_packet.push(0);
        next_packet.extend_from_slice(&next_key.serialize());
        next_packet.extend_from_slice(&unwrapped[n + len + 32..][..payloads.len()]);
        next_packet.extend_from_slice(next_hmac);
        Some(OnionMessage { path_key: hop.next_path_key, packet: next_packet })
    };
    Ok(Peeled { onionmsg_tlv: payload.to_vec(), hop, next })
}

// ---- the sending side -------------------------------------------------------------------

/// Bytes of hop payloads in an onion message packet: 1300, or 32768 when they do not fit
/// (BOLT 4: "SHOULD set `onion_message_packet` `len` to 1366 or 32834").
pub const SMALL_PAYLOADS: usize = 1300;
/// Bytes of hop payloads in a packet whose payloads do not fit in [`SMALL_PAYLOADS`].
pub const LARGE_PAYLOADS: usize = 32768;
const HMAC_LEN: usize = 32;

/// `invoice_error` field (BOLT 12): the explanation, as UTF-8.
const INVOICE_ERROR_ERROR: u64 = 5;

/// `HMAC256(key_type, secret)`: BOLT 4's `generate_key` (for "mu" and "pad"; "rho" is
/// [`blinding::rho`]).
fn generate_key(key_type: &[u8], secret: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key_type).expect("any key length");
    mac.update(secret);
    mac.finalize().into_bytes().into()
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

/// The per-hop keys of a Sphinx construction: (E_i, ss_i) for each node, with
/// ss_i = SHA256(ECDH(e_i, N_i)) and e_{i+1} = e_i * SHA256(E_i || ss_i), the same
/// progression as route blinding's path keys.
fn hop_secrets(first: &SecretKey, nodes: &[PublicKey]) -> Result<Vec<(PublicKey, [u8; 32])>> {
    let secp = Secp256k1::signing_only();
    let mut e = *first;
    let mut out = Vec::with_capacity(nodes.len());
    for node in nodes {
        let big_e = PublicKey::from_secret_key(&secp, &e);
        let ss = blinding::shared_secret(&e, node);
        out.push((big_e, ss));
        let factor = Scalar::from_be_bytes(blinding::path_key_factor(&big_e, &ss))
            .map_err(|_| invalid("session_key", "hash out of the curve order"))?;
        e = e.mul_tweak(&factor).map_err(|_| invalid("session_key", "became zero"))?;
    }
    Ok(out)
}

/// BOLT 4 "Packet Construction" for an onion message: `version || E_0 || hop_payloads ||
/// hmac` for `hops` (node key, `onionmsg_tlv` payload) in order, with no associated data.
pub fn onion_packet(session_key: &[u8; 32], hops: &[(PublicKey, Vec<u8>)]) -> Result<Vec<u8>> {
    if hops.is_empty() {
        return Err(invalid("hops", "an onion needs at least one hop"));
    }
    let session = SecretKey::from_slice(session_key)
        .map_err(|_| invalid("session_key", "not a valid secret key"))?;
    let nodes: Vec<PublicKey> = hops.iter().map(|(n, _)| *n).collect();
    let secrets = hop_secrets(&session, &nodes)?;
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
    let rho: Vec<[u8; 32]> = secrets.iter().map(|(_, ss)| blinding::rho(ss)).collect();
    let mu: Vec<[u8; 32]> = secrets.iter().map(|(_, ss)| generate_key(b"mu", ss)).collect();

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
    let mut packet = stream(&generate_key(b"pad", session_key), len);
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
        next_hmac = generate_key(&mu[i], &packet);
    }
    let mut out = Vec::with_capacity(1 + 33 + len + HMAC_LEN);
    out.push(0);
    out.extend_from_slice(&secrets[0].0.serialize());
    out.extend_from_slice(&packet);
    out.extend_from_slice(&next_hmac);
    Ok(out)
}

/// The onion message that carries `final_records` (extra `onionmsg_tlv` records for the
/// last hop, e.g. `invoice_error`) over the payee's `reply` path from the node
/// `own_node_id`, for CLN's `injectonionmessage`: returns (`path_key`,
/// `onion_message_packet`).
///
/// `path_key_secret` blinds our own first hop; `session_key` is the Sphinx session key.
/// Both must be fresh random for every message (they are arguments so that the test
/// vectors can be reproduced). A path entered at a channel end (`sciddir`) is refused: the
/// caller resolves it to a node first.
pub fn reply_onion(
    own_node_id: &[u8],
    reply: &BlindedPath,
    final_records: &[(u64, Vec<u8>)],
    session_key: &[u8],
    path_key_secret: &[u8],
) -> Result<([u8; 33], Vec<u8>)> {
    let own = blinding::public_key("own_node_id", own_node_id)?;
    let IntroductionNode::NodeId(first_node_id) = &reply.first_node else {
        return Err(invalid("reply_path", "enters at a short channel id, not a node id"));
    };
    if reply.hops.is_empty() {
        return Err(invalid("reply_path", "num_hops is 0"));
    }
    if final_records.iter().any(|(t, _)| *t == types::ENCRYPTED_RECIPIENT_DATA) {
        return Err(invalid("final_records", "type 4 is the path's own"));
    }
    let mut onion_hops: Vec<(PublicKey, Vec<u8>)> = Vec::with_capacity(reply.hops.len() + 1);
    let path_key = if *first_node_id == own.serialize() {
        // The reply path starts here: we decrypt its first hop ourselves.
        reply.first_path_key
    } else {
        // Our own one-hop segment, joined to theirs (BOLT 4: a sender prepending hops
        // tells the last of them the path's first path key with next_path_key_override).
        let data = EncryptedData {
            next_node_id: Some(*first_node_id),
            next_path_key_override: Some(reply.first_path_key),
            ..Default::default()
        }
        .encode();
        let ours = blinding::blind(path_key_secret, &[(own_node_id, &data[..])])?;
        let hop = &ours[0];
        onion_hops.push((
            blinding::public_key("blinded_node_id", &hop.blinded_node_id)?,
            tlv::encode_stream(&[(
                types::ENCRYPTED_RECIPIENT_DATA,
                &hop.encrypted_recipient_data,
            )])?,
        ));
        hop.path_key
    };
    let last = reply.hops.len() - 1;
    for (i, hop) in reply.hops.iter().enumerate() {
        let mut recs: Vec<(u64, &[u8])> =
            vec![(types::ENCRYPTED_RECIPIENT_DATA, &hop.encrypted_recipient_data)];
        if i == last {
            recs.extend(final_records.iter().map(|(t, v)| (*t, v.as_slice())));
            recs.sort_by_key(|(t, _)| *t);
        }
        onion_hops.push((
            blinding::public_key("blinded_node_id", &hop.blinded_node_id)?,
            tlv::encode_stream(&recs)?,
        ));
    }
    let session_key: [u8; 32] =
        session_key.try_into().map_err(|_| invalid("session_key", "must be 32 bytes"))?;
    Ok((path_key, onion_packet(&session_key, &onion_hops)?))
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
    use serde_json::Value;

    const ONION_MESSAGE: &str =
        include_str!("../../../tests/vectors/bolt04/blinded-onion-message-onion-test.json");

    fn h(v: &Value) -> Vec<u8> {
        hex::decode(v.as_str().expect("a hex string")).expect("valid hex")
    }

    /// BOLT 4's onion message vector, peeled node by node: each node's forwarded message is
    /// byte for byte the next node's, and Dave finds "hello" and his path_id.
    #[test]
    fn onion_message_vector_peels_to_every_next_message_and_the_path_id() {
        let v: Value = serde_json::from_str(ONION_MESSAGE).unwrap();
        let dec = v["decrypt"]["hops"].as_array().unwrap();
        let first = OnionMessage::parse(&h(&dec[0]["onion_message"])).unwrap();
        assert_eq!(first.packet, h(&v["onionmessage"]["onion_message_packet"]));
        for (i, d) in dec.iter().enumerate() {
            let raw = h(&d["onion_message"]);
            let msg = OnionMessage::parse(&raw).unwrap();
            assert_eq!(msg.encode(), raw);
            let p = peel(&h(&d["privkey"]), &msg.path_key, &msg.packet).unwrap();
            match p.next {
                Some(next) => {
                    assert_eq!(next.encode(), h(&dec[i + 1]["onion_message"]), "after hop {i}");
                    assert_eq!(p.hop.data.next_node_id.unwrap().to_vec(), h(&d["next_node_id"]));
                }
                None => {
                    assert_eq!(i, 3);
                    let tlvs = tlv::parse_stream(&p.onionmsg_tlv).unwrap();
                    assert_eq!(tlvs[0], (1, h(&d["tlvs"]["unknown_tag_1"])));
                    assert_eq!(tlvs[1], (4, h(&d["tlvs"]["encrypted_recipient_data"])));
                    let want = h(&v["generate"]["hops"][3]["tlvs"]["path_id"]);
                    assert_eq!(p.hop.data.path_id, Some(want));
                }
            }
        }
    }

    #[test]
    fn a_wrong_node_or_a_flipped_bit_is_refused() {
        let v: Value = serde_json::from_str(ONION_MESSAGE).unwrap();
        let d = &v["decrypt"]["hops"][0];
        let msg = OnionMessage::parse(&h(&d["onion_message"])).unwrap();
        let e = peel(&[0x42; 32], &msg.path_key, &msg.packet).unwrap_err();
        assert_eq!(e.to_string(), "invalid onion_message_packet: hmac does not match");
        let mut bad = msg.packet.clone();
        bad[100] ^= 1;
        assert!(peel(&h(&d["privkey"]), &msg.path_key, &bad).is_err());
        bad = msg.packet.clone();
        bad[0] = 1;
        assert!(peel(&h(&d["privkey"]), &msg.path_key, &bad).is_err());
        assert!(peel(&h(&d["privkey"]), &msg.path_key, &msg.packet[..60]).is_err());
        assert!(OnionMessage::parse(&h(&d["onion_message"])[..100]).is_err());
    }
}

#[cfg(test)]
mod sending_tests {
    use super::*;
    use crate::blinding::BlindedHop;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }
    fn point(v: &serde_json::Value) -> [u8; 33] {
        unhex(v.as_str().unwrap()).try_into().unwrap()
    }

    fn vector() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/vectors/bolt04/blinded-onion-message-onion-test.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn hops(route: &serde_json::Value, from: usize) -> Vec<BlindedHop> {
        route["hops"].as_array().unwrap()[from..]
            .iter()
            .map(|h| BlindedHop {
                blinded_node_id: point(&h["blinded_node_id"]),
                encrypted_recipient_data: unhex(h["encrypted_recipient_data"].as_str().unwrap()),
            })
            .collect()
    }

    /// BOLT 4's vector is a sender (Alice) joining Dave's blinded path Bob->Carol->Dave and
    /// sending "hello" (type 1): our reply construction, with Alice as the local node.
    #[test]
    fn reply_onion_reproduces_the_bolt4_onion_message_vector() {
        let v = vector();
        let gen = &v["generate"];
        let alice = &gen["hops"][0];
        let reply = BlindedPath {
            first_node: IntroductionNode::NodeId(point(&alice["tlvs"]["next_node_id"])),
            first_path_key: point(&alice["tlvs"]["next_path_key_override"]),
            hops: hops(&v["route"], 1),
        };
        let (path_key, packet) = reply_onion(
            &point(&v["route"]["first_node_id"]),
            &reply,
            &[(1, unhex(v["onionmessage"]["unknown_tag_1"].as_str().unwrap()))],
            &unhex(gen["session_key"].as_str().unwrap()),
            &unhex(alice["path_key_secret"].as_str().unwrap()),
        )
        .unwrap();
        assert_eq!(path_key, point(&alice["E"]));
        assert_eq!(
            hex::encode(packet),
            v["onionmessage"]["onion_message_packet"].as_str().unwrap()
        );
    }

    #[test]
    fn a_reply_path_starting_here_is_used_as_it_is() {
        let v = vector();
        let route = &v["route"];
        let first = point(&route["first_node_id"]);
        let reply = BlindedPath {
            first_node: IntroductionNode::NodeId(first),
            first_path_key: point(&route["first_path_key"]),
            hops: hops(route, 0),
        };
        let session = unhex(v["generate"]["session_key"].as_str().unwrap());
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
        let own = point(&v["route"]["first_node_id"]);
        let path = |hops: Vec<BlindedHop>| BlindedPath {
            first_node: IntroductionNode::NodeId(own),
            first_path_key: own,
            hops,
        };
        let hop = |len: usize| BlindedHop {
            blinded_node_id: own,
            encrypted_recipient_data: vec![1; len],
        };
        assert!(reply_onion(&own, &path(vec![]), &[], &[3; 32], &[3; 32]).is_err());
        assert!(reply_onion(&own, &path(vec![hop(40000)]), &[], &[3; 32], &[3; 32]).is_err());
        let small = path(vec![hop(4)]);
        assert!(reply_onion(&own, &small, &[(4, vec![])], &[3; 32], &[3; 32]).is_err());
        assert!(reply_onion(&own, &small, &[], &[0; 32], &[3; 32]).is_err()); // zero key
        assert!(reply_onion(&own, &small, &[], &[3; 31], &[3; 32]).is_err());
        assert!(reply_onion(&[4; 33], &small, &[], &[3; 32], &[3; 32]).is_err()); // not a point
        let scid = BlindedPath {
            first_node: IntroductionNode::Sciddir { direction: 0, scid: 1 },
            first_path_key: own,
            hops: vec![hop(4)],
        };
        assert!(reply_onion(&own, &scid, &[], &[3; 32], &[3; 32]).is_err());
        // More than 1300 bytes of payloads: the large packet size.
        let (_, big) = reply_onion(&own, &path(vec![hop(2000)]), &[], &[3; 32], &[3; 32]).unwrap();
        assert_eq!(big.len(), 1 + 33 + LARGE_PAYLOADS + 32);
    }

    /// Our reply to a payee whose reply path enters through a peer of its node: our node
    /// peels its own hop and forwards; the peer forwards; the payee finds the invoice_error
    /// and its own path_id ([`peel`], the receiving side of this module).
    #[test]
    fn a_reply_peels_hop_by_hop_to_the_payee() {
        let secp = Secp256k1::new();
        let node = |b: u8| {
            let k = SecretKey::from_slice(&[b; 32]).unwrap();
            (k.secret_bytes(), PublicKey::from_secret_key(&secp, &k).serialize())
        };
        let (ours_secret, ours) = node(0x11);
        let (peer_secret, peer) = node(0x22);
        let (payee_secret, payee) = node(0x33);
        let reply = blinding::PathSpec {
            destination: &payee,
            introduction: Some(&peer),
            path_id: &[0xab; 32],
            pad: true,
        }
        .build(&[0x44; 32])
        .unwrap();
        let records = [(types::INVOICE_ERROR, invoice_error("invoice expired"))];
        let (path_key, packet) =
            reply_onion(&ours, &reply, &records, &[0x55; 32], &[0x66; 32]).unwrap();
        let at_ours = peel(&ours_secret, &path_key, &packet).unwrap();
        assert_eq!(at_ours.hop.data.next_node_id, Some(peer));
        let msg = at_ours.next.unwrap();
        assert_eq!(msg.path_key, reply.first_path_key);
        let at_peer = peel(&peer_secret, &msg.path_key, &msg.packet).unwrap();
        assert_eq!(at_peer.hop.data.next_node_id, Some(payee));
        let msg = at_peer.next.unwrap();
        let at_payee = peel(&payee_secret, &msg.path_key, &msg.packet).unwrap();
        assert!(at_payee.next.is_none());
        assert_eq!(at_payee.hop.data.path_id, Some(vec![0xab; 32]));
        let tlvs = tlv::parse_stream(&at_payee.onionmsg_tlv).unwrap();
        assert_eq!(tlvs[1], (types::INVOICE_ERROR, invoice_error("invoice expired")));
    }

    #[test]
    fn invoice_error_is_a_type_5_record() {
        assert_eq!(invoice_error("no"), vec![5, 2, b'n', b'o']);
    }
}
