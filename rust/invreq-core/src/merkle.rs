//! BOLT 12 "Signature Calculation": tagged hashes and the merkle root of a TLV stream.
//!
//! `H(tag, msg) = SHA256(SHA256(tag) || SHA256(tag) || msg)`. The 64-byte prefix is exactly
//! one SHA-256 block, so each tag's hasher state after that block (its midstate) is computed
//! once and cloned for every hash: a leaf then costs only the compressions of its own bytes.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::tlv;

/// Types 240..=1000 hold signatures and are left out of the merkle tree.
pub const SIGNATURE_TYPES: std::ops::RangeInclusive<u64> = 240..=1000;

/// A SHA-256 state that has already absorbed `SHA256(tag) || SHA256(tag)`.
#[derive(Clone)]
pub struct TaggedHasher(Sha256);

impl TaggedHasher {
    /// A hasher for `tag`: SHA256(tag) written twice (BIP-340's tagged hash prefix).
    pub fn new(tag: &[u8]) -> Self {
        let t = Sha256::digest(tag);
        let mut h = Sha256::new();
        h.update(t);
        h.update(t);
        TaggedHasher(h)
    }

    /// `H(tag, msg)` for the tag this state was made with.
    #[inline]
    pub fn hash(&self, msg: &[u8]) -> [u8; 32] {
        let mut h = self.0.clone();
        h.update(msg);
        h.finalize().into()
    }

    #[inline]
    fn hash2(&self, a: &[u8], b: &[u8]) -> [u8; 32] {
        let mut h = self.0.clone();
        h.update(a);
        h.update(b);
        h.finalize().into()
    }
}

fn leaf_tag() -> &'static TaggedHasher {
    static T: OnceLock<TaggedHasher> = OnceLock::new();
    T.get_or_init(|| TaggedHasher::new(b"LnLeaf"))
}

fn branch_tag() -> &'static TaggedHasher {
    static T: OnceLock<TaggedHasher> = OnceLock::new();
    T.get_or_init(|| TaggedHasher::new(b"LnBranch"))
}

/// `H(tag, msg)` for any tag.
pub fn tagged_hash(tag: &[u8], msg: &[u8]) -> [u8; 32] {
    TaggedHasher::new(tag).hash(msg)
}

/// `H("LnBranch", min(a, b) || max(a, b))`: ordering the children makes proofs smaller.
#[inline]
fn branch(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    if a <= b {
        branch_tag().hash2(a, b)
    } else {
        branch_tag().hash2(b, a)
    }
}

/// The hasher for `"lightning" || messagename || fieldname`, cached for the one pair the
/// service signs all day.
pub fn signature_tag(messagename: &str, fieldname: &str) -> TaggedHasher {
    static INVREQ: OnceLock<TaggedHasher> = OnceLock::new();
    if messagename == "invoice_request" && fieldname == "signature" {
        return INVREQ
            .get_or_init(|| TaggedHasher::new(b"lightninginvoice_requestsignature"))
            .clone();
    }
    let mut tag = Vec::with_capacity(9 + messagename.len() + fieldname.len());
    tag.extend_from_slice(b"lightning");
    tag.extend_from_slice(messagename.as_bytes());
    tag.extend_from_slice(fieldname.as_bytes());
    TaggedHasher::new(&tag)
}

/// The digest a BIP-340 signature of `messagename`.`fieldname` signs.
pub fn signature_digest(messagename: &str, fieldname: &str, root: &[u8; 32]) -> [u8; 32] {
    signature_tag(messagename, fieldname).hash(root)
}

/// The merkle root of every record of `stream` outside the signature range.
///
/// Leaves pair `H("LnLeaf", record)` with `H("LnNonce" || first_record, type)` under a
/// branch; neighbours are paired left to right and an odd node at the end of a level moves
/// up unchanged, which puts the deeper subtrees on the lowest types as BOLT 12 requires.
/// A stream without any record outside the signature range has no root: an error.
pub fn merkle_root(stream: &[u8]) -> Result<[u8; 32]> {
    // Most streams have a handful of records: keep their nodes on the stack.
    let mut stack = [[0u8; 32]; 32];
    let mut heap: Vec<[u8; 32]> = Vec::new();
    let mut n = 0usize;
    let mut nonce: Option<TaggedHasher> = None;
    for r in tlv::records(stream) {
        let r = r?;
        let nonce = nonce.get_or_insert_with(|| {
            // The first record of the stream, whatever its type, salts every nonce leaf.
            let mut tag = Vec::with_capacity(7 + r.raw.len());
            tag.extend_from_slice(b"LnNonce");
            tag.extend_from_slice(r.raw);
            TaggedHasher::new(&tag)
        });
        if SIGNATURE_TYPES.contains(&r.typ) {
            continue;
        }
        let node = branch(&leaf_tag().hash(r.raw), &nonce.hash(r.type_bytes));
        if n < stack.len() {
            stack[n] = node;
        } else {
            if heap.is_empty() {
                heap.extend_from_slice(&stack);
            }
            heap.push(node);
        }
        n += 1;
    }
    if n == 0 {
        return Err(crate::error::SemanticError::Missing("non-signature tlv record").into());
    }
    let nodes: &mut [[u8; 32]] = if heap.is_empty() { &mut stack[..n] } else { &mut heap[..] };
    let mut len = n;
    while len > 1 {
        let half = len / 2;
        for i in 0..half {
            nodes[i] = branch(&nodes[2 * i], &nodes[2 * i + 1]);
        }
        if len % 2 == 1 {
            nodes[half] = nodes[len - 1];
        }
        len = half + len % 2;
    }
    Ok(nodes[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    // Values from bolts/bolt12/signature-test.json (tests/vectors/bolt12/ in this repo).
    #[test]
    fn single_record_matches_the_spec_vector() {
        let root = merkle_root(&h("010203e8")).unwrap();
        assert_eq!(
            hex::encode(root),
            "b013756c8fee86503a0b4abdab4cddeb1af5d344ca6fc2fa8b6c08938caa6f93"
        );
    }

    #[test]
    fn three_records_match_the_spec_vector() {
        let s = h("010203e8\
                   02080000010000020003\
                   03310266e4598d1d3c415f572a8488830b60f7e744ed9235eb0b1ba93283b315c0351800000000000000010000000000000002");
        let root = merkle_root(&s).unwrap();
        assert_eq!(
            hex::encode(root),
            "ab2e79b1283b0b31e0b035258de23782df6b89a38cfa7237bde69aed1a658c5d"
        );
    }

    #[test]
    fn leaf_hash_matches_the_spec_vector() {
        assert_eq!(
            hex::encode(leaf_tag().hash(&h("010203e8"))),
            "67a2a995433890d8fe0c18a1765ad19e98f1fcfeff14c13a45bbc80964a78cf7"
        );
    }

    #[test]
    fn signature_records_are_not_leaves() {
        let a = merkle_root(&h("010203e8")).unwrap();
        let b = merkle_root(&h("010203e8f00100")).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn many_records_spill_to_the_heap_consistently() {
        // 40 records exceed the stack buffer; compare against a naive level-by-level build.
        let mut s = Vec::new();
        for t in 0..40u64 {
            tlv::write_record(&mut s, t, &[t as u8]);
        }
        let first = &s[..3];
        let nonce = {
            let mut tag = b"LnNonce".to_vec();
            tag.extend_from_slice(first);
            TaggedHasher::new(&tag)
        };
        let mut level: Vec<[u8; 32]> = tlv::records(&s)
            .map(|r| r.unwrap())
            .map(|r| branch(&leaf_tag().hash(r.raw), &nonce.hash(r.type_bytes)))
            .collect();
        while level.len() > 1 {
            level = level
                .chunks(2)
                .map(|c| if c.len() == 2 { branch(&c[0], &c[1]) } else { c[0] })
                .collect();
        }
        assert_eq!(merkle_root(&s).unwrap(), level[0]);
    }

    #[test]
    fn empty_stream_has_no_root() {
        assert!(merkle_root(&[]).is_err());
    }
}
