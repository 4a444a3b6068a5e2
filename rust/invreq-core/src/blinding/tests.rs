//! BOLT 4's route blinding vectors, reproduced byte for byte, and the reader rules of the
//! `blinded_path` encoding.

use super::*;
use crate::invoice_request::{self as ir, Builder};
use serde_json::Value;

const ROUTE_BLINDING: &str =
    include_str!("../../../../tests/vectors/bolt04/route-blinding-test.json");
const ONION_MESSAGE: &str =
    include_str!("../../../../tests/vectors/bolt04/blinded-onion-message-onion-test.json");

fn h(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("a hex string")).expect("valid hex")
}

fn node_id(secret: &[u8]) -> [u8; 33] {
    PublicKey::from_secret_key(secp(), &SecretKey::from_slice(secret).unwrap()).serialize()
}

/// Asserts every value the vector gives for a writer's hop.
fn check_generated(hop: &Value, got: &HopSecrets, path_key_secret: &str) {
    let alias = hop["alias"].as_str().unwrap();
    assert_eq!(hex::encode(got.path_key_secret), path_key_secret, "{alias} e_i");
    for (name, value) in [
        ("path_key", got.path_key.to_vec()),
        ("E", got.path_key.to_vec()),
        ("shared_secret", got.shared_secret.to_vec()),
        ("ss", got.shared_secret.to_vec()),
        ("rho", got.rho.to_vec()),
        ("blinded_node_id", got.blinded_node_id.to_vec()),
        ("encrypted_data", got.encrypted_recipient_data.clone()),
        ("encrypted_recipient_data", got.encrypted_recipient_data.clone()),
        ("HMAC256('blinded_node_id', ss)", blinding_factor(&got.shared_secret).to_vec()),
    ] {
        if let Some(v) = hop.get(name) {
            assert_eq!(hex::encode(value), v.as_str().unwrap(), "{alias} {name}");
        }
    }
    if let Some(v) = hop.get("H(E || ss)") {
        let e = PublicKey::from_slice(&got.path_key).unwrap();
        assert_eq!(hex::encode(path_key_factor(&e, &got.shared_secret)), v.as_str().unwrap());
    }
}

/// The route of two joined blinded routes (Bob -> Carol from one session key, Dave -> Eve
/// from another, Carol's data overriding the next path key): every path key, shared secret,
/// rho, blinded node id and ciphertext of "generate", and the resulting "route".
#[test]
fn route_blinding_vector_generate() {
    let v: Value = serde_json::from_str(ROUTE_BLINDING).unwrap();
    let hops = v["generate"]["hops"].as_array().unwrap();
    let mut got = Vec::new();
    for pair in hops.chunks(2) {
        let e0 = h(&pair[0]["session_key"]);
        let ids: Vec<Vec<u8>> = pair.iter().map(|x| h(&x["node_id"])).collect();
        let plain: Vec<Vec<u8>> = pair.iter().map(|x| h(&x["encoded_tlvs"])).collect();
        let input: Vec<(&[u8], &[u8])> =
            ids.iter().zip(&plain).map(|(n, p)| (n.as_slice(), p.as_slice())).collect();
        got.extend(blind(&e0, &input).unwrap());
    }
    assert_eq!(got.len(), 4);
    for (hop, g) in hops.iter().zip(&got) {
        check_generated(hop, g, hop["path_privkey"].as_str().unwrap());
        // The plaintext we were given reads as encrypted_data_tlv and re-encodes exactly.
        let plain = h(&hop["encoded_tlvs"]);
        assert_eq!(EncryptedData::parse(&plain).unwrap().encode(), plain);
    }
    let route = &v["route"];
    assert_eq!(h(&route["first_path_key"]), got[0].path_key);
    assert_eq!(h(&route["first_node_id"]), h(&hops[0]["node_id"]));
    for (r, g) in route["hops"].as_array().unwrap().iter().zip(&got) {
        assert_eq!(h(&r["blinded_node_id"]), g.blinded_node_id);
        assert_eq!(h(&r["encrypted_data"]), g.encrypted_recipient_data);
    }
}

/// "unblind": each node, with its secret and the path key it is handed, gets the shared
/// secret's blinded secret, the plaintext, and the next path key (the override at Carol).
#[test]
fn route_blinding_vector_unblind() {
    let v: Value = serde_json::from_str(ROUTE_BLINDING).unwrap();
    let route = v["route"]["hops"].as_array().unwrap();
    let gen = v["generate"]["hops"].as_array().unwrap();
    for ((u, r), g) in v["unblind"]["hops"].as_array().unwrap().iter().zip(route).zip(gen) {
        let alias = u["alias"].as_str().unwrap();
        let got = receive(&h(&u["node_privkey"]), &h(&u["path_key"]), &h(&r["encrypted_data"]))
            .unwrap_or_else(|e| panic!("{alias}: {e}"));
        assert_eq!(hex::encode(got.shared_secret), g["shared_secret"].as_str().unwrap());
        assert_eq!(hex::encode(got.blinded_node_secret), u["blinded_privkey"].as_str().unwrap());
        assert_eq!(node_id(&got.blinded_node_secret).to_vec(), h(&r["blinded_node_id"]));
        assert_eq!(got.plaintext, h(&u["decrypted_data"]), "{alias}");
        let next = u.get("next_path_key_override").unwrap_or(&u["next_path_key"]);
        assert_eq!(got.next_path_key.to_vec(), h(next), "{alias}");
        if let Some(o) = u.get("next_path_key_override") {
            assert_eq!(got.data.next_path_key_override.map(|p| p.to_vec()), Some(h(o)));
            // Without the override the chain goes on as computed: the vector's next_path_key.
            let e = PublicKey::from_slice(&h(&u["path_key"])).unwrap();
            let f = scalar(path_key_factor(&e, &got.shared_secret)).unwrap();
            let computed = e.mul_tweak(secp(), &f).unwrap().serialize();
            assert_eq!(computed.to_vec(), h(&u["next_path_key"]));
        }
    }
    // Eve's data: path_id deadbeef, padding, payment fields and an unknown odd type kept.
    let eve = EncryptedData::parse(&h(&v["unblind"]["hops"][3]["decrypted_data"])).unwrap();
    assert_eq!(eve.path_id, Some(vec![0xde, 0xad, 0xbe, 0xef]));
    assert_eq!(eve.padding.as_ref().map(Vec::len), Some(26));
    assert_eq!(eve.unknown, vec![(65535, vec![0x06, 0xc1])]);
    assert!(eve.payment_constraints.is_some() && eve.allowed_features.is_some());
}

/// The onion message vector: Alice's hop prepended (own path key secret, overriding the
/// next path key with Bob's path's first), then Bob -> Carol -> Dave. Every secret of
/// "generate", then the "decrypt" walk: each node's path key (as carried in its
/// `onion_message`), next node, and Dave's path_id.
#[test]
fn onion_message_vector() {
    let v: Value = serde_json::from_str(ONION_MESSAGE).unwrap();
    let hops = v["generate"]["hops"].as_array().unwrap();
    let ids: Vec<Vec<u8>> = ["41", "42", "43", "44"]
        .iter()
        .map(|b| node_id(&hex::decode(b.repeat(32)).unwrap()).to_vec())
        .collect();
    let plain: Vec<Vec<u8>> = hops.iter().map(|x| h(&x["encrypted_data_tlv"])).collect();
    let alice = blind(&h(&hops[0]["path_key_secret"]), &[(&ids[0], &plain[0])]).unwrap();
    let rest: Vec<(&[u8], &[u8])> =
        (1..4).map(|i| (ids[i].as_slice(), plain[i].as_slice())).collect();
    let bob_on = blind(&h(&hops[1]["path_key_secret"]), &rest).unwrap();
    let got: Vec<&HopSecrets> = alice.iter().chain(&bob_on).collect();
    for (i, (hop, g)) in hops.iter().zip(&got).enumerate() {
        check_generated(hop, g, hops[i]["path_key_secret"].as_str().unwrap());
        // next_e is the next hop's path key secret (printed with a trailing 01).
        if (1..3).contains(&i) {
            let next = hop["next_e"].as_str().unwrap();
            assert_eq!(format!("{}01", hex::encode(got[i + 1].path_key_secret)), next);
        }
        assert_eq!(EncryptedData::parse(&plain[i]).unwrap().encode(), plain[i]);
    }
    // Alice's data overrides the next path key with Bob's path's first: E_1 of "generate".
    let alice_data = EncryptedData::parse(&plain[0]).unwrap();
    assert_eq!(alice_data.next_path_key_override, Some(got[1].path_key));
    let route = &v["route"];
    assert_eq!(h(&route["first_node_id"]), ids[0]);
    assert_eq!(h(&route["first_path_key"]), got[0].path_key);
    for (r, g) in route["hops"].as_array().unwrap().iter().zip(&got) {
        assert_eq!(h(&r["blinded_node_id"]), g.blinded_node_id);
        assert_eq!(h(&r["encrypted_recipient_data"]), g.encrypted_recipient_data);
    }
    // Decrypt: each onion_message is type 513, then the path key the node is handed.
    let dec = v["decrypt"]["hops"].as_array().unwrap();
    for (i, d) in dec.iter().enumerate() {
        let msg = h(&d["onion_message"]);
        assert_eq!(&msg[..2], &[0x02, 0x01]);
        let path_key = &msg[2..35];
        assert_eq!(path_key, got[i].path_key, "path key handed to hop {i}");
        let r = receive(&h(&d["privkey"]), path_key, &got[i].encrypted_recipient_data).unwrap();
        assert_eq!(r.shared_secret, got[i].shared_secret);
        assert_eq!(node_id(&r.blinded_node_secret), got[i].blinded_node_id);
        match d.get("next_node_id") {
            Some(n) => {
                assert_eq!(r.data.next_node_id.map(|p| p.to_vec()), Some(h(n)));
                let next_msg = h(&dec[i + 1]["onion_message"]);
                assert_eq!(r.next_path_key, next_msg[2..35], "next path key after hop {i}");
            }
            None => {
                let want = h(&hops[3]["tlvs"]["path_id"]);
                assert_eq!(r.data.path_id, Some(want));
                assert_eq!(r.data.unknown, vec![(65535, vec![0x06, 0xc1])]);
                assert_eq!(
                    h(&d["tlvs"]["encrypted_recipient_data"]),
                    got[i].encrypted_recipient_data
                );
            }
        }
    }
}

/// 02 then x = 0: no point of secp256k1 has x = 0.
const OFF_CURVE: [u8; 33] = {
    let mut p = [0u8; 33];
    p[0] = 2;
    p
};

const DEST: u8 = 0x44;
const INTRO: u8 = 0x43;

fn spec<'a>(dest: &'a [u8; 33], intro: Option<&'a [u8; 33]>, pad: bool) -> PathSpec<'a> {
    PathSpec {
        destination: dest,
        introduction: intro.map(|i| i.as_slice()),
        path_id: &[0x5a; 32],
        pad,
    }
}

#[test]
fn built_paths_decrypt_hop_by_hop_to_the_path_id() {
    let dest = node_id(&[DEST; 32]);
    let intro = node_id(&[INTRO; 32]);
    for pad in [false, true] {
        // One hop: the destination is the introduction node.
        let p = spec(&dest, None, pad).build(&[1u8; 32]).unwrap();
        assert_eq!(p.first_node, IntroductionNode::NodeId(dest));
        assert_eq!(p.hops.len(), 1);
        let r =
            receive(&[DEST; 32], &p.first_path_key, &p.hops[0].encrypted_recipient_data).unwrap();
        assert_eq!(r.data.path_id, Some(vec![0x5a; 32]));
        assert_eq!(node_id(&r.blinded_node_secret), p.hops[0].blinded_node_id);
        // Two hops: the introduction node learns the destination, which gets the path_id.
        let p = spec(&dest, Some(&intro), pad).build(&[2u8; 32]).unwrap();
        assert_eq!(p.first_node, IntroductionNode::NodeId(intro));
        let r0 =
            receive(&[INTRO; 32], &p.first_path_key, &p.hops[0].encrypted_recipient_data).unwrap();
        assert_eq!(r0.data.next_node_id, Some(dest));
        assert_eq!(r0.data.path_id, None);
        let r1 =
            receive(&[DEST; 32], &r0.next_path_key, &p.hops[1].encrypted_recipient_data).unwrap();
        assert_eq!(r1.data.path_id, Some(vec![0x5a; 32]));
        // Another node, or the right node with the wrong path key, cannot read it.
        let wrong = receive(&[INTRO; 32], &r0.next_path_key, &p.hops[1].encrypted_recipient_data);
        assert!(wrong.is_err());
        let wrong = receive(&[DEST; 32], &p.first_path_key, &p.hops[1].encrypted_recipient_data);
        assert!(wrong.is_err());
    }
}

#[test]
fn padding_gives_every_hop_of_every_shape_one_length() {
    let dest = node_id(&[DEST; 32]);
    let intro = node_id(&[INTRO; 32]);
    let one = spec(&dest, None, true).build(&[1u8; 32]).unwrap();
    let two = spec(&dest, Some(&intro), true).build(&[1u8; 32]).unwrap();
    for h in one.hops.iter().chain(&two.hops) {
        assert_eq!(h.encrypted_recipient_data.len(), PADDED_DATA_LEN + 16);
    }
    let bare = spec(&dest, Some(&intro), false).build(&[1u8; 32]).unwrap();
    let lens: Vec<usize> = bare.hops.iter().map(|h| h.encrypted_recipient_data.len()).collect();
    assert_eq!(lens, vec![35 + 16, 34 + 16]);
}

#[test]
fn building_is_deterministic_and_entropy_is_drawn_until_valid() {
    let dest = node_id(&[DEST; 32]);
    let s = spec(&dest, None, true);
    assert_eq!(s.build(&[9u8; 32]).unwrap(), s.build(&[9u8; 32]).unwrap());
    assert_ne!(s.build(&[9u8; 32]).unwrap(), s.build(&[8u8; 32]).unwrap());
    // A zero secret is invalid: the next draw is used.
    let mut draws = 0;
    let p = s
        .build_with_entropy(|b| {
            draws += 1;
            *b = if draws == 1 { [0u8; 32] } else { [9u8; 32] };
        })
        .unwrap();
    assert_eq!((draws, p), (2, s.build(&[9u8; 32]).unwrap()));
    assert!(s.build_with_entropy(|b| *b = [0xff; 32]).is_err());
}

fn field_of(e: crate::Error) -> &'static str {
    match e {
        crate::Error::InvalidField { field, .. } => field,
        other => panic!("not an InvalidField: {other:?}"),
    }
}

#[test]
fn bad_builder_values_name_their_field() {
    let dest = node_id(&[DEST; 32]);
    let ok = spec(&dest, None, true);
    let cases: [(PathSpec<'_>, &[u8], &str); 6] = [
        (PathSpec { destination: &OFF_CURVE, ..ok }, &[1; 32], "destination"),
        (PathSpec { destination: &dest[..32], ..ok }, &[1; 32], "destination"),
        (PathSpec { introduction: Some(&dest), ..ok }, &[1; 32], "introduction"),
        (PathSpec { path_id: &[1; 16], ..ok }, &[1; 32], "path_id"),
        (ok, &[0; 32], "session_secret"),
        (ok, &[1; 31], "session_secret"),
    ];
    for (s, e0, field) in cases {
        assert_eq!(field_of(s.build(e0).unwrap_err()), field);
    }
    assert_eq!(field_of(receive(&[0; 32], &dest, &[]).unwrap_err()), "node_secret");
    assert_eq!(field_of(receive(&[1; 32], &OFF_CURVE, &[]).unwrap_err()), "path_key");
}

#[test]
fn hop_data_reader_rules() {
    // An unknown even type is refused; unknown odd ones are kept.
    assert!(EncryptedData::parse(&hex::decode("0100fd01010100").unwrap()).is_ok());
    let e = EncryptedData::parse(&hex::decode("1000").unwrap()).unwrap_err();
    assert_eq!(e.to_string(), "unknown even type 16");
    for (bad, msg) in [
        ("020700000000000000", "short_channel_id not 8 bytes"),
        ("0421020000000000000000000000000000000000000000000000000000000000000000", "not a point"),
        ("0601", "truncated value"),
    ] {
        let e = EncryptedData::parse(&hex::decode(bad).unwrap()).unwrap_err().to_string();
        assert!(e.contains(msg), "{bad}: {e}");
    }
    // Data that decrypts but is not a TLV stream is refused after decryption.
    let dest = node_id(&[DEST; 32]);
    let secrets = blind(&[3u8; 32], &[(&dest, &[0x06])]).unwrap();
    let e = receive(&[DEST; 32], &secrets[0].path_key, &secrets[0].encrypted_recipient_data);
    assert_eq!(e.unwrap_err().to_string(), "truncated length of tlv type 6");
}

#[test]
fn path_id_is_hmac_of_the_metadata() {
    let secret = [0x11u8; 32];
    let id = path_id(&secret, b"metadata").unwrap();
    assert_eq!(id, hmac256(&secret, b"metadata"));
    assert_ne!(id, path_id(&secret, b"metadatb").unwrap());
    assert_ne!(id, path_id(&[0x12; 32], b"metadata").unwrap());
    assert!(path_id_matches(&secret, b"metadata", &id).unwrap());
    assert!(!path_id_matches(&secret, b"metadata", &id[..31]).unwrap());
    assert!(!path_id_matches(&secret, b"other", &id).unwrap());
    assert_eq!(field_of(path_id(&[1; 31], b"m").unwrap_err()), "path_secret");
    assert_eq!(field_of(path_id(&secret, b"").unwrap_err()), "metadata");
}

/// RFC 4231 test case 2, so `path_id` is HMAC-SHA256 as everyone computes it.
#[test]
fn hmac_is_rfc_4231() {
    assert_eq!(
        hex::encode(hmac256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

fn sample_path() -> BlindedPath {
    let dest = node_id(&[DEST; 32]);
    let intro = node_id(&[INTRO; 32]);
    spec(&dest, Some(&intro), true).build(&[5u8; 32]).unwrap()
}

#[test]
fn wire_form_round_trips_and_reader_rules() {
    let p = sample_path();
    let enc = encode_paths(std::slice::from_ref(&p)).unwrap();
    assert_eq!(enc.len(), 33 + 33 + 1 + 2 * (33 + 2 + PADDED_DATA_LEN + 16));
    assert_eq!(parse_path("p", &enc, Check::Full).unwrap(), p);
    let two = [enc.clone(), enc.clone()].concat();
    assert_eq!(read_paths("p", &two, Check::Full).unwrap(), vec![p.clone(), p.clone()]);
    let msg = |r: Result<BlindedPath>| r.unwrap_err().to_string();
    // Trailing bytes: refused for one path, a truncated second path for a list.
    assert_eq!(
        msg(parse_path("p", &[enc.as_slice(), &[2]].concat(), Check::Full)),
        "invalid p: trailing bytes after the blinded path"
    );
    assert_eq!(
        read_paths("p", &[enc.as_slice(), &[2]].concat(), Check::Full).unwrap_err().to_string(),
        "invalid p: truncated"
    );
    // Truncated anywhere.
    for cut in [1, 32, 33, 66, 67, 100, enc.len() - 1] {
        assert_eq!(msg(parse_path("p", &enc[..cut], Check::Full)), "invalid p: truncated");
    }
    // Zero hops.
    let mut zero = enc[..66].to_vec();
    zero.push(0);
    assert_eq!(msg(parse_path("p", &zero, Check::Full)), "invalid p: blinded path with zero hops");
    // Empty list.
    assert_eq!(
        read_paths("p", &[], Check::Full).unwrap_err().to_string(),
        "invalid p: no blinded paths"
    );
    // Points: a 02/03 prefix off the curve passes a structure-only read, not a full one.
    let mut off = enc.clone();
    off[34..66].fill(0);
    assert_eq!(msg(parse_path("p", &off, Check::Full)), "invalid p: not a point on the curve");
    assert!(parse_path("p", &off, Check::StructureOnly).is_ok());
    let mut prefix = enc.clone();
    prefix[67] = 4;
    assert_eq!(
        msg(parse_path("p", &prefix, Check::StructureOnly)),
        "invalid p: not a compressed point"
    );
    // An sciddir first node (BOLT 4's sciddir_or_pubkey): 9 bytes, direction 0 or 1.
    let mut scid = vec![1u8, 0, 0, 0x6c, 0, 0, 1, 0, 2];
    scid.extend_from_slice(&enc[33..]);
    let sp = parse_path("p", &scid, Check::Full).unwrap();
    let want = IntroductionNode::Sciddir { direction: 1, scid: 0x6c00_0001_0002 };
    assert_eq!(sp.first_node, want);
    assert_eq!(encode_paths(&[sp]).unwrap(), scid);
    // The writer refuses what the reader would.
    let bad = BlindedPath { hops: vec![], ..p.clone() };
    assert_eq!(field_of(encode_paths(&[bad]).unwrap_err()), "paths");
    let bad = BlindedPath { first_node: IntroductionNode::Sciddir { direction: 2, scid: 1 }, ..p };
    assert_eq!(field_of(encode_paths(&[bad]).unwrap_err()), "paths");
    assert_eq!(field_of(encode_paths(&[]).unwrap_err()), "paths");
}

fn sign_request(u: &ir::UnsignedInvoiceRequest, secret: &[u8; 32]) -> ir::InvoiceRequest {
    let kp = secp256k1::Keypair::from_seckey_slice(secp(), secret).unwrap();
    let msg = secp256k1::Message::from_digest(u.digest());
    let sig = secp().sign_schnorr_with_aux_rand(&msg, &kp, &[0u8; 32]);
    u.with_signature(sig.as_ref()).unwrap()
}

#[test]
fn invoice_requests_carry_paths_under_the_signature() {
    let payer = node_id(&[0x31; 32]);
    let secret = [0x77u8; 32];
    let metadata = [9u8; 16];
    let pid = path_id(&secret, &metadata).unwrap();
    let dest = node_id(&[DEST; 32]);
    let path = PathSpec { destination: &dest, introduction: None, path_id: &pid, pad: true }
        .build(&[6u8; 32])
        .unwrap();
    let paths = [path.clone()];
    let b = Builder {
        metadata: &metadata,
        description: "d",
        amount_msat: 1000,
        payer_id: &payer,
        absolute_expiry: None,
        issuer: None,
        chain: None,
        paths: &paths,
        unknown: &[],
    };
    let u = b.build().unwrap();
    let without = Builder { paths: &[], ..b }.build().unwrap();
    assert_ne!(u.invreq_id(), without.invreq_id());
    assert_ne!(u.merkle_root(), without.merkle_root());
    let r = sign_request(&u, &[0x31; 32]);
    let back = ir::decode(&r.to_bolt12(), Check::Full).unwrap();
    assert_eq!(back.fields.paths, Some(vec![path.clone()]));
    assert_eq!(back.invreq_id, u.invreq_id());
    // Its path decrypts, with the node's secret, to the request's path_id.
    let hop = &back.fields.paths.unwrap()[0];
    let r = receive(&[DEST; 32], &hop.first_path_key, &hop.hops[0].encrypted_recipient_data);
    let got = r.unwrap().data.path_id.unwrap();
    assert!(path_id_matches(&secret, back.fields.metadata.as_ref().unwrap(), &got).unwrap());
    // A path the reader would refuse cannot be built into a request.
    let mut off = path;
    off.first_path_key = OFF_CURVE;
    let bad = [off];
    assert_eq!(field_of(Builder { paths: &bad, ..b }.build().unwrap_err()), "paths");
}
