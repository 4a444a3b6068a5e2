//! Route blinding for onion messages (BOLT 4 "Route Blinding") and the `blinded_path`
//! encoding that `invreq_paths`, `offer_paths` and `invoice_paths` carry.
//!
//! - Writing: [`PathSpec::build`] makes a path to a destination node, optionally entered
//!   through an introduction node, whose final hop carries a 32-byte `path_id`; [`blind`] is
//!   the bare algorithm over any hops and plaintexts (what the test vectors exercise).
//! - Reading the hop data, as the node a hop is for: [`receive`] (shared secret, decryption,
//!   the next path key).
//! - [`path_id`]: HMAC-SHA256 of a request's `invreq_metadata` under a path secret, so the
//!   paying node recognises its own paths without keeping state.
//! - The wire form: [`read_paths`], [`parse_path`], [`encode_paths`].
//!
//! Only the final hop is ever ours: no dummy hops are written, because the receiving node
//! (CLN's `onion_message` handling) treats the first hop encrypted to it as the end of the
//! path; a hop after it would have to be peeled by the node itself, which CLN does not do.

use std::sync::OnceLock;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use hmac::{Hmac, Mac};
use secp256k1::ecdh::SharedSecret;
use secp256k1::{All, PublicKey, Scalar, Secp256k1, SecretKey};
use sha2::{Digest, Sha256};

use crate::error::{Result, SemanticError};
use crate::read::{invalid, read_point, semantic, Check, Cursor};
use crate::tlv;

pub(crate) fn secp() -> &'static Secp256k1<All> {
    static S: OnceLock<Secp256k1<All>> = OnceLock::new();
    S.get_or_init(Secp256k1::new)
}

// ---- the wire form ----------------------------------------------------------------------

/// The introduction node of a blinded path (`sciddir_or_pubkey`, BOLT 1): a node id, or a
/// short channel id and which end of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntroductionNode {
    /// The node's compressed public key.
    NodeId([u8; 33]),
    /// One end of a channel (`sciddir`): the path enters at the node on that end.
    Sciddir {
        /// 0 or 1: which end of the channel (BOLT 7's `node_id_1` or `node_id_2`).
        direction: u8,
        /// The short channel id as a u64 (block << 40 | tx << 16 | output).
        scid: u64,
    },
}

/// One hop of a blinded path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlindedHop {
    /// The hop's node id, blinded: who the onion layer is encrypted to.
    pub blinded_node_id: [u8; 33],
    /// The hop's `encrypted_data_tlv`, readable only by that node (see [`receive`]).
    pub encrypted_recipient_data: Vec<u8>,
}

/// A `blinded_path` (BOLT 4 "Route Blinding").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlindedPath {
    /// Where the path starts, in the clear: the introduction node.
    pub first_node: IntroductionNode,
    /// `E_0`, the path key the introduction node derives its shared secret from.
    pub first_path_key: [u8; 33],
    /// The hops, introduction node first; never empty.
    pub hops: Vec<BlindedHop>,
}

/// Reads one `blinded_path` off the front of `c`.
fn read_path(c: &mut Cursor<'_>, check: Check) -> Result<BlindedPath> {
    let field = c.field;
    let first_node = match c.b.first() {
        // sciddir_or_pubkey: a point's first byte is 2 or 3, so 0 and 1 mark a direction.
        Some(0 | 1) => {
            let s = c.take(9)?;
            let mut scid = [0u8; 8];
            scid.copy_from_slice(&s[1..]);
            IntroductionNode::Sciddir { direction: s[0], scid: u64::from_be_bytes(scid) }
        }
        _ => IntroductionNode::NodeId(read_point(field, c.take(33)?, check)?),
    };
    let first_path_key = read_point(field, c.take(33)?, check)?;
    let num_hops = c.take(1)?[0];
    if num_hops == 0 {
        return Err(semantic(field, "blinded path with zero hops"));
    }
    let mut hops = Vec::with_capacity(num_hops.into());
    for _ in 0..num_hops {
        let blinded_node_id = read_point(field, c.take(33)?, check)?;
        let l = c.take(2)?;
        let enclen = usize::from(u16::from_be_bytes([l[0], l[1]]));
        hops.push(BlindedHop {
            blinded_node_id,
            encrypted_recipient_data: c.take(enclen)?.to_vec(),
        });
    }
    Ok(BlindedPath { first_node, first_path_key, hops })
}

/// Reads a TLV value holding one or more blinded paths back to back (`offer_paths`,
/// `invreq_paths`, `invoice_paths`): none at all, zero hops, a value ending inside a path,
/// and (under [`Check::Full`]) a point off the curve are refused, naming `field`.
pub fn read_paths(field: &'static str, b: &[u8], check: Check) -> Result<Vec<BlindedPath>> {
    let mut c = Cursor { b, field };
    let mut paths = Vec::new();
    while !c.b.is_empty() {
        paths.push(read_path(&mut c, check)?);
    }
    if paths.is_empty() {
        return Err(semantic(field, "no blinded paths"));
    }
    Ok(paths)
}

/// Reads exactly one `blinded_path`; bytes after it are refused.
pub fn parse_path(field: &'static str, b: &[u8], check: Check) -> Result<BlindedPath> {
    let mut c = Cursor { b, field };
    let p = read_path(&mut c, check)?;
    if !c.b.is_empty() {
        return Err(semantic(field, "trailing bytes after the blinded path"));
    }
    Ok(p)
}

/// Encodes blinded paths back to back, as `invoice_paths`, `offer_paths` and `invreq_paths`
/// carry them. Refuses what no reader would accept (no path, 0 or over 255 hops, a sciddir
/// direction other than 0 or 1, data over 65535 bytes); points are written as given.
pub fn encode_paths(paths: &[BlindedPath]) -> Result<Vec<u8>> {
    if paths.is_empty() {
        return Err(invalid("paths", "at least one blinded path is needed"));
    }
    let mut out = Vec::new();
    for p in paths {
        match p.first_node {
            IntroductionNode::NodeId(n) => out.extend_from_slice(&n),
            IntroductionNode::Sciddir { direction, scid } => {
                if direction > 1 {
                    return Err(invalid("paths", "sciddir direction must be 0 or 1"));
                }
                out.push(direction);
                out.extend_from_slice(&scid.to_be_bytes());
            }
        }
        out.extend_from_slice(&p.first_path_key);
        let hops = u8::try_from(p.hops.len()).ok().filter(|n| *n > 0);
        out.push(hops.ok_or_else(|| invalid("paths", "a path has 1 to 255 hops"))?);
        for h in &p.hops {
            let len = u16::try_from(h.encrypted_recipient_data.len())
                .map_err(|_| invalid("paths", "encrypted_recipient_data over 65535 bytes"))?;
            out.extend_from_slice(&h.blinded_node_id);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&h.encrypted_recipient_data);
        }
    }
    Ok(out)
}

// ---- the hop data: encrypted_data_tlv ---------------------------------------------------

/// TLV types of `encrypted_data_tlv` (BOLT 4).
pub mod types {
    /// `padding`: filler that makes hops of a path the same size.
    pub const PADDING: u64 = 1;
    /// `short_channel_id`: the channel to the next hop (payment paths).
    pub const SHORT_CHANNEL_ID: u64 = 2;
    /// `next_node_id`: the node the message goes on to.
    pub const NEXT_NODE_ID: u64 = 4;
    /// `path_id`: the final hop's proof that the path is the recipient's own.
    pub const PATH_ID: u64 = 6;
    /// `next_path_key_override`: the path key of a path joined at this hop.
    pub const NEXT_PATH_KEY_OVERRIDE: u64 = 8;
    /// `payment_relay`: fees and CLTV delta (payment paths only).
    pub const PAYMENT_RELAY: u64 = 10;
    /// `payment_constraints`: expiry and minimum amount (payment paths only).
    pub const PAYMENT_CONSTRAINTS: u64 = 12;
    /// `allowed_features`: features the hop allows (payment paths only).
    pub const ALLOWED_FEATURES: u64 = 14;
}

/// The plaintext of one hop's `encrypted_recipient_data`, as read. The payment fields
/// (`payment_relay`, `payment_constraints`, `allowed_features`) are kept as raw bytes: onion
/// message paths must not carry them, and nothing here forwards payments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncryptedData {
    /// `padding`, as read (its bytes are not checked: only its length matters).
    pub padding: Option<Vec<u8>>,
    /// `short_channel_id` of the next hop.
    pub short_channel_id: Option<u64>,
    /// `next_node_id`: where the message goes on to.
    pub next_node_id: Option<[u8; 33]>,
    /// `path_id`: set on the final hop of our own paths.
    pub path_id: Option<Vec<u8>>,
    /// `next_path_key_override`: the next path key, when the path is joined to another.
    pub next_path_key_override: Option<[u8; 33]>,
    /// `payment_relay`, raw.
    pub payment_relay: Option<Vec<u8>>,
    /// `payment_constraints`, raw.
    pub payment_constraints: Option<Vec<u8>>,
    /// `allowed_features`, raw.
    pub allowed_features: Option<Vec<u8>>,
    /// Unknown odd records, in stream order.
    pub unknown: Vec<(u64, Vec<u8>)>,
}

impl EncryptedData {
    /// Reads an `encrypted_data_tlv` stream: BOLT 1 framing, no unknown even type, points
    /// on the curve, an 8-byte short channel id.
    pub fn parse(stream: &[u8]) -> Result<Self> {
        use types::*;
        const F: &str = "encrypted_data_tlv";
        let mut d = EncryptedData::default();
        for r in tlv::records(stream) {
            let r = r?;
            let v = r.value;
            match r.typ {
                PADDING => d.padding = Some(v.to_vec()),
                SHORT_CHANNEL_ID => {
                    let b: [u8; 8] =
                        v.try_into().map_err(|_| semantic(F, "short_channel_id not 8 bytes"))?;
                    d.short_channel_id = Some(u64::from_be_bytes(b));
                }
                NEXT_NODE_ID => d.next_node_id = Some(read_point(F, v, Check::Full)?),
                PATH_ID => d.path_id = Some(v.to_vec()),
                NEXT_PATH_KEY_OVERRIDE => {
                    d.next_path_key_override = Some(read_point(F, v, Check::Full)?)
                }
                PAYMENT_RELAY => d.payment_relay = Some(v.to_vec()),
                PAYMENT_CONSTRAINTS => d.payment_constraints = Some(v.to_vec()),
                ALLOWED_FEATURES => d.allowed_features = Some(v.to_vec()),
                t if t % 2 == 0 => return Err(SemanticError::UnknownEvenType(t).into()),
                t => d.unknown.push((t, v.to_vec())),
            }
        }
        Ok(d)
    }

    /// Encodes the stream, types ascending.
    pub fn encode(&self) -> Vec<u8> {
        use types::*;
        let scid = self.short_channel_id.map(u64::to_be_bytes);
        let known: [(u64, Option<&[u8]>); 8] = [
            (PADDING, self.padding.as_deref()),
            (SHORT_CHANNEL_ID, scid.as_ref().map(|s| s.as_slice())),
            (NEXT_NODE_ID, self.next_node_id.as_ref().map(|p| p.as_slice())),
            (PATH_ID, self.path_id.as_deref()),
            (NEXT_PATH_KEY_OVERRIDE, self.next_path_key_override.as_ref().map(|p| p.as_slice())),
            (PAYMENT_RELAY, self.payment_relay.as_deref()),
            (PAYMENT_CONSTRAINTS, self.payment_constraints.as_deref()),
            (ALLOWED_FEATURES, self.allowed_features.as_deref()),
        ];
        let mut recs: Vec<(u64, &[u8])> =
            known.iter().filter_map(|(t, v)| v.map(|v| (*t, v))).collect();
        recs.extend(self.unknown.iter().map(|(t, v)| (*t, v.as_slice())));
        recs.sort_by_key(|(t, _)| *t);
        let mut out = Vec::new();
        for (t, v) in recs {
            tlv::write_record(&mut out, t, v);
        }
        out
    }
}

// ---- the algorithm ----------------------------------------------------------------------

/// HMAC-SHA256 with `key` over `msg`.
fn hmac256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(msg);
    m.finalize().into_bytes().into()
}

/// `ss = SHA256(k * P)` with `P` compressed: BOLT 4's ECDH, the same from both ends.
pub fn shared_secret(secret: &SecretKey, point: &PublicKey) -> [u8; 32] {
    SharedSecret::new(point, secret).secret_bytes()
}

/// `rho = HMAC256("rho", ss)`: the ChaCha20-Poly1305 key of a hop's data.
pub fn rho(ss: &[u8; 32]) -> [u8; 32] {
    hmac256(b"rho", ss)
}

/// `HMAC256("blinded_node_id", ss)`: the factor that blinds a node id (and its secret).
pub fn blinding_factor(ss: &[u8; 32]) -> [u8; 32] {
    hmac256(b"blinded_node_id", ss)
}

/// `SHA256(E || ss)`: the factor from one path key to the next.
pub fn path_key_factor(path_key: &PublicKey, ss: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(path_key.serialize());
    h.update(ss);
    h.finalize().into()
}

/// A factor as a scalar. A hash output at or above the curve order has probability about
/// 2^-128; it is reported, not worked around.
fn scalar(factor: [u8; 32]) -> Result<Scalar> {
    Scalar::from_be_bytes(factor).map_err(|_| invalid("blinding", "hash out of the curve order"))
}

/// ChaCha20-Poly1305 under `key` with the all-zero nonce and no associated data.
fn seal(key: &[u8; 32], plaintext: &[u8]) -> Vec<u8> {
    let cipher = ChaCha20Poly1305::new(key.into());
    let payload = Payload { msg: plaintext, aad: &[] };
    cipher.encrypt(&[0u8; 12].into(), payload).expect("in-memory encryption cannot fail")
}

fn open(key: &[u8; 32], ciphertext: &[u8]) -> Result<Vec<u8>> {
    let cipher = ChaCha20Poly1305::new(key.into());
    let payload = Payload { msg: ciphertext, aad: &[] };
    cipher
        .decrypt(&[0u8; 12].into(), payload)
        .map_err(|_| semantic("encrypted_recipient_data", "does not decrypt with this key"))
}

/// A secret key from bytes, or an error naming `field`.
pub(crate) fn secret_key(field: &'static str, b: &[u8]) -> Result<SecretKey> {
    let b: [u8; 32] = b.try_into().map_err(|_| invalid(field, "must be 32 bytes"))?;
    SecretKey::from_slice(&b).map_err(|_| invalid(field, "not a valid secp256k1 secret key"))
}

/// A point from bytes, on the curve, or an error naming `field`.
pub fn public_key(field: &'static str, b: &[u8]) -> Result<PublicKey> {
    if b.len() != 33 {
        return Err(invalid(field, "must be 33 bytes"));
    }
    PublicKey::from_slice(b).map_err(|_| invalid(field, "not a compressed secp256k1 point"))
}

/// Everything the writer derives for one hop (BOLT 4 "Route Blinding", writer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopSecrets {
    /// `e_i`, the path key's secret.
    pub path_key_secret: [u8; 32],
    /// `E_i = e_i * G`.
    pub path_key: [u8; 33],
    /// `ss_i = SHA256(e_i * N_i)`.
    pub shared_secret: [u8; 32],
    /// `rho_i`.
    pub rho: [u8; 32],
    /// `B_i = HMAC256("blinded_node_id", ss_i) * N_i`.
    pub blinded_node_id: [u8; 33],
    /// The plaintext sealed under `rho_i`.
    pub encrypted_recipient_data: Vec<u8>,
}

/// Blinds `hops` (each a node id and the plaintext `encrypted_data_tlv` for it) starting
/// from the path key secret `e_0`. The plaintexts are taken as given (overrides, padding
/// and all), so two routes can be joined as BOLT 4's vectors do.
pub fn blind(e0: &[u8], hops: &[(&[u8], &[u8])]) -> Result<Vec<HopSecrets>> {
    let mut e = secret_key("session_secret", e0)?;
    let mut out = Vec::with_capacity(hops.len());
    for (i, (node, plaintext)) in hops.iter().enumerate() {
        let n = public_key("node_id", node)?;
        let big_e = PublicKey::from_secret_key(secp(), &e);
        let ss = shared_secret(&e, &n);
        let blinded = n
            .mul_tweak(secp(), &scalar(blinding_factor(&ss))?)
            .map_err(|_| invalid("blinding", "blinded node id at infinity"))?;
        let rho = rho(&ss);
        out.push(HopSecrets {
            path_key_secret: e.secret_bytes(),
            path_key: big_e.serialize(),
            shared_secret: ss,
            rho,
            blinded_node_id: blinded.serialize(),
            encrypted_recipient_data: seal(&rho, plaintext),
        });
        if i + 1 < hops.len() {
            e = e
                .mul_tweak(&scalar(path_key_factor(&big_e, &ss))?)
                .map_err(|_| invalid("blinding", "path key secret became zero"))?;
        }
    }
    Ok(out)
}

/// The length every hop's plaintext is padded to when [`PathSpec::pad`] is set: the
/// longest hop we write (`next_node_id`, 35 bytes) plus an empty padding record. A final
/// hop (`path_id`, 34 bytes) gets one byte of padding, so one- and two-hop paths made with
/// padding have hops of one size, and the final hop cannot be told by its length.
pub const PADDED_DATA_LEN: usize = 37;

/// What [`PathSpec::build`] makes: a path to `destination` whose final hop's data holds
/// `path_id`.
#[derive(Debug, Clone, Copy)]
pub struct PathSpec<'a> {
    /// The node the path leads to (33-byte compressed point).
    pub destination: &'a [u8],
    /// A node to enter through (the path's `first_node_id`, told to forward to
    /// `destination`); without it, the path starts at `destination` itself.
    pub introduction: Option<&'a [u8]>,
    /// Exactly 32 bytes: CLN hands a final hop's `path_id` to plugins (as `pathsecret`)
    /// only when it has this length.
    pub path_id: &'a [u8],
    /// Pad every hop's data to [`PADDED_DATA_LEN`].
    pub pad: bool,
}

impl PathSpec<'_> {
    /// The path, blinded from `session_secret` (`e_0`): deterministic, for tests and for
    /// callers with their own randomness.
    pub fn build(&self, session_secret: &[u8]) -> Result<BlindedPath> {
        let plain = self.plaintexts()?;
        let mut nodes: Vec<&[u8]> = Vec::with_capacity(2);
        nodes.extend(self.introduction);
        nodes.push(self.destination);
        let hops: Vec<(&[u8], &[u8])> =
            nodes.iter().zip(&plain).map(|(n, p)| (*n, p.as_slice())).collect();
        let secrets = blind(session_secret, &hops)?;
        let first_node: [u8; 33] = nodes[0].try_into().expect("checked by blind");
        Ok(BlindedPath {
            first_node: IntroductionNode::NodeId(first_node),
            first_path_key: secrets[0].path_key,
            hops: secrets
                .into_iter()
                .map(|s| BlindedHop {
                    blinded_node_id: s.blinded_node_id,
                    encrypted_recipient_data: s.encrypted_recipient_data,
                })
                .collect(),
        })
    }

    /// The path, blinded from a session secret drawn with `fill` (a CSPRNG, in production);
    /// draws again in the negligible case that 32 random bytes are not a valid secret.
    pub fn build_with_entropy(&self, mut fill: impl FnMut(&mut [u8; 32])) -> Result<BlindedPath> {
        for _ in 0..8 {
            let mut e0 = [0u8; 32];
            fill(&mut e0);
            if SecretKey::from_slice(&e0).is_ok() {
                return self.build(&e0);
            }
        }
        Err(invalid("session_secret", "the entropy source gave no valid secret in 8 draws"))
    }

    /// The `encrypted_data_tlv` of each hop, in path order.
    fn plaintexts(&self) -> Result<Vec<Vec<u8>>> {
        let destination: [u8; 33] = public_key("destination", self.destination)?.serialize();
        if self.path_id.len() != 32 {
            return Err(invalid("path_id", "must be 32 bytes"));
        }
        let mut hops = Vec::with_capacity(2);
        if let Some(intro) = self.introduction {
            if public_key("introduction", intro)?.serialize() == destination {
                return Err(invalid("introduction", "is the destination itself"));
            }
            hops.push(EncryptedData { next_node_id: Some(destination), ..Default::default() });
        }
        hops.push(EncryptedData { path_id: Some(self.path_id.to_vec()), ..Default::default() });
        Ok(hops.into_iter().map(|d| if self.pad { padded(d) } else { d.encode() }).collect())
    }
}

/// `d` encoded with a padding record making it [`PADDED_DATA_LEN`] bytes long.
fn padded(d: EncryptedData) -> Vec<u8> {
    let bare = d.encode().len();
    // The record's type and length take two bytes while the padding is under 253 bytes.
    let fill = PADDED_DATA_LEN.checked_sub(bare + 2).expect("our hops fit PADDED_DATA_LEN");
    let out = EncryptedData { padding: Some(vec![0u8; fill]), ..d }.encode();
    debug_assert_eq!(out.len(), PADDED_DATA_LEN);
    out
}

// ---- the receiving side -----------------------------------------------------------------

/// What the node a hop is for learns from it (BOLT 4, reader of `encrypted_recipient_data`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedHop {
    /// `ss_i = SHA256(k_i * E_i)`.
    pub shared_secret: [u8; 32],
    /// `b_i = HMAC256("blinded_node_id", ss_i) * k_i`: the secret of the blinded node id,
    /// which the onion layer is encrypted to.
    pub blinded_node_secret: [u8; 32],
    /// The decrypted `encrypted_data_tlv`, byte for byte.
    pub plaintext: Vec<u8>,
    /// The plaintext's records, read.
    pub data: EncryptedData,
    /// `next_path_key_override` if the data has one, else `SHA256(E_i || ss_i) * E_i`.
    pub next_path_key: [u8; 33],
}

/// Decrypts a hop's `encrypted_recipient_data` with the node's secret and the path key it
/// was handed. Fails when the data does not decrypt (another node's hop, a wrong path key)
/// or is not a valid `encrypted_data_tlv` (including an unknown even type).
pub fn receive(node_secret: &[u8], path_key: &[u8], encrypted: &[u8]) -> Result<ReceivedHop> {
    let k = secret_key("node_secret", node_secret)?;
    let big_e = public_key("path_key", path_key)?;
    let ss = shared_secret(&k, &big_e);
    let b = k
        .mul_tweak(&scalar(blinding_factor(&ss))?)
        .map_err(|_| invalid("blinding", "blinded node secret became zero"))?;
    let plaintext = open(&rho(&ss), encrypted)?;
    let data = EncryptedData::parse(&plaintext)?;
    let next_path_key = match data.next_path_key_override {
        Some(p) => p,
        None => big_e
            .mul_tweak(secp(), &scalar(path_key_factor(&big_e, &ss))?)
            .map_err(|_| invalid("blinding", "next path key at infinity"))?
            .serialize(),
    };
    Ok(ReceivedHop {
        shared_secret: ss,
        blinded_node_secret: b.secret_bytes(),
        plaintext,
        data,
        next_path_key,
    })
}

// ---- path_id ----------------------------------------------------------------------------

/// The `path_id` of the paths of a request: `HMAC-SHA256(path_secret, invreq_metadata)`.
/// Only the holder of `path_secret` can make it, and the metadata (random, in every request
/// and in every invoice answering it) ties it to one request.
pub fn path_id(path_secret: &[u8], metadata: &[u8]) -> Result<[u8; 32]> {
    if path_secret.len() != 32 {
        return Err(invalid("path_secret", "must be 32 bytes"));
    }
    if metadata.is_empty() {
        return Err(invalid("metadata", "must not be empty"));
    }
    Ok(hmac256(path_secret, metadata))
}

/// Whether `candidate` is the `path_id` of `metadata` under `path_secret`, compared in
/// constant time (a `pathsecret` comes from whoever sent the onion message).
pub fn path_id_matches(path_secret: &[u8], metadata: &[u8], candidate: &[u8]) -> Result<bool> {
    path_id(path_secret, metadata)?;
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(path_secret).expect("any key length");
    m.update(metadata);
    Ok(m.verify_slice(candidate).is_ok())
}

#[cfg(test)]
mod tests;
