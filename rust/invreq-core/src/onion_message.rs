//! The receiving side of an onion message (BOLT 4 "Onion Decryption" and "Onion Messages"):
//! peel one layer of an `onion_message_packet` with a node's secret and the `path_key` that
//! came with it, then read the hop's `encrypted_recipient_data` ([`blinding::receive`]).
//!
//! invreq sends no onion messages; this exists so that tests can follow a message another
//! implementation built for one of our paths all the way to its `path_id`, as the paying
//! node does.

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;
use hmac::{Hmac, Mac};
use secp256k1::PublicKey;
use sha2::Sha256;

use crate::blinding::{self, public_key, secret_key, ReceivedHop};
use crate::error::Result;
use crate::invoice_request::semantic;
use crate::tlv;

/// The type of the `onion_message` peer message.
pub const ONION_MESSAGE_TYPE: u16 = 513;

/// `onionmsg_tlv` types (BOLT 4).
pub mod types {
    pub const REPLY_PATH: u64 = 2;
    pub const ENCRYPTED_RECIPIENT_DATA: u64 = 4;
    pub const INVOICE_REQUEST: u64 = 64;
    pub const INVOICE: u64 = 66;
    pub const INVOICE_ERROR: u64 = 68;
}

/// An `onion_message` peer message: the path key and the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnionMessage {
    pub path_key: [u8; 33],
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
