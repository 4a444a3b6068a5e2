//! LDK (the `lightning` crate) against our blinded paths: its reader reads every shape of
//! path we build exactly as we wrote it, and an onion message LDK builds for one of our
//! paths, peeled by our receive side at each node (`onion_message::peel`), reaches the
//! destination with the request's `path_id`. LDK plays the payee's node sending its invoice;
//! our `peel` stands in for the paying node's onion message handling.

use invreq_core::blinding::{self, BlindedPath, IntroductionNode, PathSpec};
use invreq_core::onion_message::peel;
use lightning::blinded_path::message::BlindedMessagePath;
use lightning::blinded_path::{EmptyNodeIdLookUp, IntroductionNode as LdkIntro};
use lightning::onion_message::messenger::{create_onion_message, Destination, OnionMessagePath};
use lightning::onion_message::packet::OnionMessageContents;
use lightning::sign::KeysManager;
use lightning::util::ser::{Readable, Writeable, Writer};
use secp256k1::{PublicKey, Secp256k1, SecretKey};

const DEST: u8 = 0x44;
const INTRO: u8 = 0x43;
const PATH_SECRET: [u8; 32] = [0x77; 32];

fn node(byte: u8) -> [u8; 33] {
    PublicKey::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[byte; 32]).unwrap())
        .serialize()
}

/// One- and two-hop paths, padded and not, each to the request whose metadata gives its path_id.
fn paths(metadata: &[u8]) -> Vec<BlindedPath> {
    let pid = blinding::path_id(&PATH_SECRET, metadata).unwrap();
    let (dest, intro) = (node(DEST), node(INTRO));
    let mut out = Vec::new();
    for introduction in [None, Some(intro.as_slice())] {
        for pad in [true, false] {
            let spec = PathSpec { destination: &dest, introduction, path_id: &pid, pad };
            out.push(spec.build(&[out.len() as u8 + 1; 32]).unwrap());
        }
    }
    out
}

fn same(ours: &BlindedPath, theirs: &BlindedMessagePath) {
    match (&ours.first_node, theirs.introduction_node()) {
        (IntroductionNode::NodeId(n), LdkIntro::NodeId(l)) => assert_eq!(*n, l.serialize()),
        other => panic!("introduction nodes differ: {other:?}"),
    }
    assert_eq!(ours.first_path_key, theirs.blinding_point().serialize());
    assert_eq!(ours.hops.len(), theirs.blinded_hops().len());
    for (o, t) in ours.hops.iter().zip(theirs.blinded_hops()) {
        assert_eq!(o.blinded_node_id, t.blinded_node_id.serialize());
        assert_eq!(o.encrypted_recipient_data, t.encrypted_payload);
    }
}

/// Every shape of path we build, read alone by LDK's blinded message path reader (whole
/// requests carrying paths are read in `ldk_reads_ours.rs`): the same fields, and LDK writes
/// it back byte for byte.
#[test]
fn ldk_reads_every_shape_of_our_paths() {
    for o in paths(&[5u8; 16]) {
        let bytes = blinding::encode_paths(std::slice::from_ref(&o)).unwrap();
        let mut rest = bytes.as_slice();
        let t = BlindedMessagePath::read(&mut rest).unwrap();
        assert!(rest.is_empty(), "LDK read the whole path");
        same(&o, &t);
        assert_eq!(t.encode(), bytes);
    }
}

/// What LDK's payee sends; any type of 64 and above is a final-hop payload.
#[derive(Debug)]
struct Hello;

impl Writeable for Hello {
    fn write<W: Writer>(&self, w: &mut W) -> Result<(), lightning::io::Error> {
        w.write_all(b"hello")
    }
}

impl OnionMessageContents for Hello {
    fn tlv_type(&self) -> u64 {
        65
    }
    fn msg_type(&self) -> &'static str {
        "hello"
    }
}

#[test]
fn an_onion_message_ldk_builds_for_our_path_reaches_the_path_id() {
    let metadata = [6u8; 16];
    let want = blinding::path_id(&PATH_SECRET, &metadata).unwrap();
    let sender = KeysManager::new(&[0x55; 32], 1_800_000_000, 0, true);
    let secp = Secp256k1::new();
    for ours in paths(&metadata) {
        let bytes = blinding::encode_paths(std::slice::from_ref(&ours)).unwrap();
        let theirs = BlindedMessagePath::read(&mut bytes.as_slice()).unwrap();
        let route = OnionMessagePath {
            intermediate_nodes: vec![],
            destination: Destination::BlindedPath(theirs),
            first_node_addresses: vec![],
        };
        let (first, msg, _) = create_onion_message(
            &&sender,
            &&sender,
            &EmptyNodeIdLookUp {},
            &secp,
            route,
            Hello,
            None,
        )
        .unwrap();
        // The message goes to the path's first node, with the path's first path key.
        assert_eq!(IntroductionNode::NodeId(first.serialize()), ours.first_node);
        let mut path_key = msg.blinding_point.serialize();
        let mut packet = msg.onion_routing_packet.encode();
        let secrets = if ours.hops.len() == 2 { vec![INTRO, DEST] } else { vec![DEST] };
        for (i, s) in secrets.iter().enumerate() {
            let p = peel(&[*s; 32], &path_key, &packet).unwrap();
            match p.next {
                Some(next) => {
                    assert_eq!(i, 0);
                    assert_eq!(p.hop.data.next_node_id, Some(node(DEST)));
                    (path_key, packet) = (next.path_key, next.packet);
                }
                None => {
                    assert_eq!(i, secrets.len() - 1);
                    assert_eq!(p.hop.data.path_id.as_deref(), Some(want.as_slice()));
                    let tlvs = invreq_core::tlv::parse_stream(&p.onionmsg_tlv).unwrap();
                    assert!(tlvs.contains(&(65, b"hello".to_vec())));
                }
            }
        }
    }
}
