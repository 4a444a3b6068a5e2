//! The `invoice` message (BOLT 12 "Invoices"): read one, and build one for tests and tools.
//!
//! An invoice copies every record of the invoice_request it answers (types 0..=159 and the
//! experimental 1_000_000_000..=2_999_999_999), adds its own fields (160..=239) and is signed
//! by `invoice_node_id`. `invreq_id` is hashed from the copied records exactly as for the
//! request (REFERENCE §2, §8), so an invoice leads to the request it answers, and finding that
//! request proves the copy is exact.
//!
//! Reading applies the reader rules that need nothing but the invoice. Those that need
//! context are the caller's: the chain is one we serve, the invoice has not expired
//! ([`Invoice::expires_at`]), the request is ours and still active.

use std::ops::RangeInclusive;

use secp256k1::{PublicKey, XOnlyPublicKey};
use sha2::{Digest, Sha256};

use crate::blinding::{read_paths, BlindedHop, BlindedPath, IntroductionNode};
use crate::error::{Result, SemanticError};
use crate::invoice_request::{self as ir, Fields};
use crate::read::{invalid, read_point, semantic, Check, Cursor};
use crate::signature::{verify, Unsigned};
use crate::{merkle, string, tlv};

pub use crate::blinding::encode_paths;

/// The human-readable part of an invoice string.
pub const HRP: &str = "lni";

/// TLV types an invoice adds to the records of its invoice_request.
pub mod types {
    /// `invoice_paths`: blinded paths to the payee, to pay through.
    pub const INVOICE_PATHS: u64 = 160;
    /// `invoice_blindedpay`: what paying through each path costs.
    pub const INVOICE_BLINDEDPAY: u64 = 162;
    /// `invoice_created_at`: seconds since 1970-01-01 UTC.
    pub const INVOICE_CREATED_AT: u64 = 164;
    /// `invoice_relative_expiry`: seconds after `invoice_created_at` (default 7200).
    pub const INVOICE_RELATIVE_EXPIRY: u64 = 166;
    /// `invoice_payment_hash`: SHA-256 of the preimage the payment reveals.
    pub const INVOICE_PAYMENT_HASH: u64 = 168;
    /// `invoice_amount`: msat, equal to `invreq_amount` when the request has one.
    pub const INVOICE_AMOUNT: u64 = 170;
    /// `invoice_fallbacks`: on-chain addresses, not interpreted here.
    pub const INVOICE_FALLBACKS: u64 = 172;
    /// `invoice_features`.
    pub const INVOICE_FEATURES: u64 = 174;
    /// `invoice_node_id`: the key the invoice is signed by.
    pub const INVOICE_NODE_ID: u64 = 176;
    /// `signature`: BIP-340, over the merkle root of every other record.
    pub const SIGNATURE: u64 = crate::signature::SIGNATURE_TYPE;

    /// Every invoice-range type this module knows, ascending.
    pub const KNOWN: [u64; 9] = [
        INVOICE_PATHS,
        INVOICE_BLINDEDPAY,
        INVOICE_CREATED_AT,
        INVOICE_RELATIVE_EXPIRY,
        INVOICE_PAYMENT_HASH,
        INVOICE_AMOUNT,
        INVOICE_FALLBACKS,
        INVOICE_FEATURES,
        INVOICE_NODE_ID,
    ];
}

/// The types of the invoice's own fields.
pub const INVOICE_TYPES: RangeInclusive<u64> = 160..=239;

/// Seconds after `invoice_created_at` an invoice without `invoice_relative_expiry` expires.
pub const DEFAULT_RELATIVE_EXPIRY: u64 = 7200;

/// `invoice_features` bit 16: the payer must use multi-part payment (MPP/compulsory).
pub const FEATURE_MPP_COMPULSORY: usize = 16;

/// The one even `invoice_features` bit BOLT 12 defines; any other even bit is fatal.
const KNOWN_EVEN_FEATURES: [usize; 1] = [FEATURE_MPP_COMPULSORY];

/// Size of a `blinded_payinfo` before its features: u32, u32, u16, u64, u64, u16.
const PAYINFO_FIXED: usize = 28;

/// Aggregated fees and limits of one blinded path (`blinded_payinfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlindedPayInfo {
    /// Fee in msat the whole path charges per payment.
    pub fee_base_msat: u32,
    /// Fee the whole path charges per million msat paid.
    pub fee_proportional_millionths: u32,
    /// Blocks of CLTV delta the whole path adds.
    pub cltv_expiry_delta: u16,
    /// The smallest HTLC the path carries, in msat.
    pub htlc_minimum_msat: u64,
    /// The largest HTLC the path carries, in msat.
    pub htlc_maximum_msat: u64,
    /// The path's features (no even bit may be set: see [`BlindedPayInfo::usable`]).
    pub features: Vec<u8>,
}

impl BlindedPayInfo {
    /// Whether its path may be used: we know no payinfo feature, so no even bit may be set.
    pub fn usable(&self) -> bool {
        !has_even_bit(&self.features)
    }
}

fn has_even_bit(features: &[u8]) -> bool {
    features.iter().any(|b| b & 0x55 != 0)
}

/// A signed, valid invoice: from [`UnsignedInvoice::with_signature`], [`parse`] or [`decode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    /// The records copied from the invoice_request (offer fields included), read by its rules.
    pub request: Fields,
    /// `invoice_paths`: where to pay; never empty.
    pub paths: Vec<BlindedPath>,
    /// One entry per path, in the order of `paths`.
    pub blindedpay: Vec<BlindedPayInfo>,
    /// `invoice_created_at`, seconds since 1970-01-01 UTC.
    pub created_at: u64,
    /// As written; [`Invoice::expires_at`] applies the default.
    pub relative_expiry: Option<u32>,
    /// `invoice_payment_hash`.
    pub payment_hash: [u8; 32],
    /// `invoice_amount`, in msat.
    pub amount_msat: u64,
    /// `invoice_fallbacks` as written (a list of `fallback_address`), not interpreted.
    pub fallbacks: Option<Vec<u8>>,
    /// `invoice_features`, as written.
    pub features: Option<Vec<u8>>,
    /// `invoice_node_id`: the key that signed the invoice.
    pub node_id: [u8; 33],
    /// Unknown odd records that are not copied from the request: of the invoice range
    /// 160..=239 and of no range at all (e.g. LDK's experimental 3_000_000_000..), byte for
    /// byte, in stream order.
    pub unknown: Vec<(u64, Vec<u8>)>,
    /// The BIP-340 signature by `node_id`.
    pub signature: [u8; 64],
    /// The whole signed TLV stream.
    pub bytes: Vec<u8>,
    /// The `invreq_id` of the invoice_request this invoice answers.
    pub invreq_id: [u8; 32],
}

impl Invoice {
    /// The `lni1...` string, lower case.
    pub fn to_bolt12(&self) -> String {
        string::encode(HRP, &self.bytes).expect("lni is a valid human-readable part")
    }

    /// When payment must no longer be attempted: `invoice_created_at` plus the relative
    /// expiry, 7200 s when absent (saturating).
    pub fn expires_at(&self) -> u64 {
        let relative = self.relative_expiry.map_or(DEFAULT_RELATIVE_EXPIRY, u64::from);
        self.created_at.saturating_add(relative)
    }
}

// ---- reading ----------------------------------------------------------------------------

/// A tu32 (BOLT 1): a tu64 that fits in 4 bytes.
fn read_tu32(field: &'static str, v: &[u8]) -> Result<u32> {
    let n = tlv::read_tu64(field, v)?;
    u32::try_from(n).map_err(|_| semantic(field, "tu32 longer than 4 bytes"))
}

/// A big-endian unsigned integer of at most 8 bytes.
fn be(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
}

/// Reads the `blinded_payinfo` list of `invoice_blindedpay` (possibly empty).
fn read_blindedpay(b: &[u8]) -> Result<Vec<BlindedPayInfo>> {
    let mut c = Cursor { b, field: "invoice_blindedpay" };
    let mut out = Vec::new();
    while !c.b.is_empty() {
        let f = c.take(PAYINFO_FIXED)?;
        let flen = be(&f[26..28]) as usize;
        out.push(BlindedPayInfo {
            fee_base_msat: be(&f[0..4]) as u32,
            fee_proportional_millionths: be(&f[4..8]) as u32,
            cltv_expiry_delta: be(&f[8..10]) as u16,
            htlc_minimum_msat: be(&f[10..18]),
            htlc_maximum_msat: be(&f[18..26]),
            features: c.take(flen)?.to_vec(),
        });
    }
    Ok(out)
}

/// Reads and validates a signed invoice stream, verifying its signature.
pub fn parse(stream: &[u8]) -> Result<Invoice> {
    parse_with(stream, Check::Full)
}

/// Decodes an `lni1...` string and applies every reader rule, the signature included.
pub fn decode(s: &str) -> Result<Invoice> {
    decode_with(s, Check::Full)
}

/// [`decode`] with a choice of how much curve arithmetic to do.
pub fn decode_with(s: &str, check: Check) -> Result<Invoice> {
    let bytes = string::decode_with_hrp(s, HRP)?;
    parse_with(&bytes, check)
}

/// The invoice fields as read, before the presence rules.
#[derive(Default)]
struct Read<'a> {
    paths: Option<Vec<BlindedPath>>,
    blindedpay: Option<Vec<BlindedPayInfo>>,
    created_at: Option<u64>,
    relative_expiry: Option<u32>,
    payment_hash: Option<[u8; 32]>,
    amount_msat: Option<u64>,
    fallbacks: Option<Vec<u8>>,
    features: Option<Vec<u8>>,
    node_id: Option<[u8; 33]>,
    signature: Option<&'a [u8]>,
}

/// [`parse`] with a choice of how much curve arithmetic to do: [`Check::StructureOnly`]
/// checks points for form only and skips the signature.
pub fn parse_with(stream: &[u8], check: Check) -> Result<Invoice> {
    use types::*;
    let mut request = Fields::default();
    let mut r = Read::default();
    let mut unknown = Vec::new();
    let mut id = Sha256::new();
    for rec in tlv::records(stream) {
        let rec = rec?;
        let (t, v) = (rec.typ, rec.value);
        // BOLT 12 sets no type range for invoices, so BOLT 1's "it's OK to be odd" holds
        // for every type outside the copied ones: unknown odd records are kept wherever they
        // stand, unknown even ones refused (below).
        let copied = ir::in_invreq_ranges(t);
        if copied {
            id.update(rec.raw);
        }
        match t {
            INVOICE_PATHS => r.paths = Some(read_paths("invoice_paths", v, check)?),
            INVOICE_BLINDEDPAY => r.blindedpay = Some(read_blindedpay(v)?),
            INVOICE_CREATED_AT => r.created_at = Some(tlv::read_tu64("invoice_created_at", v)?),
            INVOICE_RELATIVE_EXPIRY => {
                r.relative_expiry = Some(read_tu32("invoice_relative_expiry", v)?)
            }
            INVOICE_PAYMENT_HASH => {
                let h = v.try_into().map_err(|_| semantic("invoice_payment_hash", "not 32 bytes"));
                r.payment_hash = Some(h?);
            }
            INVOICE_AMOUNT => r.amount_msat = Some(ir::read_msat("invoice_amount", v)?),
            INVOICE_FALLBACKS => r.fallbacks = Some(v.to_vec()),
            INVOICE_FEATURES => {
                ir::check_features_except("invoice_features", v, &KNOWN_EVEN_FEATURES)?;
                r.features = Some(v.to_vec());
            }
            // The curve check, when asked for, comes with the x-only key below: one parse.
            INVOICE_NODE_ID => {
                r.node_id = Some(read_point("invoice_node_id", v, Check::StructureOnly)?)
            }
            SIGNATURE => r.signature = Some(v),
            _ if ir::read_field(&mut request, t, v, check)? => {}
            _ if t % 2 == 0 => return Err(SemanticError::UnknownEvenType(t).into()),
            _ if copied => request.unknown.push((t, v.to_vec())),
            // Unknown odd signature-range records are not signed: not ours to keep.
            _ if merkle::SIGNATURE_TYPES.contains(&t) => {}
            _ => unknown.push((t, v.to_vec())),
        }
    }
    let missing = |field| SemanticError::Missing(field);
    let amount_msat = r.amount_msat.ok_or(missing("invoice_amount"))?;
    let created_at = r.created_at.ok_or(missing("invoice_created_at"))?;
    let payment_hash = r.payment_hash.ok_or(missing("invoice_payment_hash"))?;
    let node_id = r.node_id.ok_or(missing("invoice_node_id"))?;
    let paths = r.paths.ok_or(missing("invoice_paths"))?;
    let blindedpay = r.blindedpay.ok_or(missing("invoice_blindedpay"))?;
    if blindedpay.len() != paths.len() {
        let (entries, paths) = (blindedpay.len(), paths.len());
        return Err(SemanticError::BlindedPayCount { entries, paths }.into());
    }
    if !blindedpay.iter().any(BlindedPayInfo::usable) {
        return Err(semantic("invoice_blindedpay", "every entry has unknown even features"));
    }
    if request.amount_msat.is_some_and(|a| a != amount_msat) {
        return Err(semantic("invoice_amount", "not equal to invreq_amount"));
    }
    check_node_id(&request, &node_id)?;
    let sig = r.signature.ok_or(missing("signature"))?;
    let sig: [u8; 64] = sig.try_into().map_err(|_| semantic("signature", "not 64 bytes"))?;
    if check == Check::Full {
        let key = PublicKey::from_slice(&node_id)
            .map_err(|_| semantic("invoice_node_id", "not a point on the curve"))?
            .x_only_public_key()
            .0;
        let root = merkle::merkle_root(stream)?;
        verify(&merkle::signature_digest("invoice", "signature", &root), &sig, &key)?;
    }
    Ok(Invoice {
        request,
        paths,
        blindedpay,
        created_at,
        relative_expiry: r.relative_expiry,
        payment_hash,
        amount_msat,
        fallbacks: r.fallbacks,
        features: r.features,
        node_id,
        unknown,
        signature: sig,
        bytes: stream.to_vec(),
        invreq_id: id.finalize().into(),
    })
}

/// BOLT 12: an invoice for an offer is signed by the offer's `offer_issuer_id` when it has
/// one, otherwise by the final `blinded_node_id` of the `offer_paths` path the request was
/// sent along (not knowing which, any of them). A request answering no offer names no key.
fn check_node_id(request: &Fields, node_id: &[u8; 33]) -> Result<()> {
    if let Some(issuer) = &request.offer_issuer_id {
        if issuer != node_id {
            return Err(semantic("invoice_node_id", "not the offer_issuer_id of the offer"));
        }
    } else if let Some(paths) = &request.offer_paths {
        let last = |p: &BlindedPath| p.hops.last().map(|h| h.blinded_node_id);
        if !paths.iter().any(|p| last(p).as_ref() == Some(node_id)) {
            return Err(semantic(
                "invoice_node_id",
                "not the final blinded_node_id of any offer_paths path",
            ));
        }
    }
    Ok(())
}

// ---- writing ----------------------------------------------------------------------------

/// A one-hop path whose introduction node, path key and blinded node are all `node_id`,
/// without encrypted data: well-formed, so invoices for tests can carry it, but no node
/// could route a payment along it.
pub fn placeholder_path(node_id: [u8; 33]) -> BlindedPath {
    BlindedPath {
        first_node: IntroductionNode::NodeId(node_id),
        first_path_key: node_id,
        hops: vec![BlindedHop { blinded_node_id: node_id, encrypted_recipient_data: Vec::new() }],
    }
}

fn write_payinfo(out: &mut Vec<u8>, p: &BlindedPayInfo, flen: u16) {
    out.extend_from_slice(&p.fee_base_msat.to_be_bytes());
    out.extend_from_slice(&p.fee_proportional_millionths.to_be_bytes());
    out.extend_from_slice(&p.cltv_expiry_delta.to_be_bytes());
    out.extend_from_slice(&p.htlc_minimum_msat.to_be_bytes());
    out.extend_from_slice(&p.htlc_maximum_msat.to_be_bytes());
    out.extend_from_slice(&flen.to_be_bytes());
    out.extend_from_slice(&p.features);
}

/// What a payee sets when answering an invoice_request; references, like the request's
/// builder. For tests and tools: invreq never writes invoices in production.
#[derive(Debug, Clone, Copy)]
pub struct InvoiceBuilder<'a> {
    /// The signed invoice_request stream answered: all its records but the signature are
    /// copied.
    pub invoice_request: &'a [u8],
    /// `invoice_paths` as on the wire: one or more blinded paths ([`encode_paths`]).
    pub paths: &'a [u8],
    /// The `blinded_payinfo` written for every path.
    pub payinfo: &'a BlindedPayInfo,
    /// `invoice_created_at`, seconds since 1970-01-01 UTC.
    pub created_at: u64,
    /// `invoice_relative_expiry`; `None` writes none (the default, 7200 s, applies).
    pub relative_expiry: Option<u32>,
    /// `invoice_payment_hash`: 32 bytes.
    pub payment_hash: &'a [u8],
    /// Must equal `invreq_amount` when the request has one.
    pub amount_msat: u64,
    /// `invoice_node_id`: the compressed key that will sign.
    pub node_id: &'a [u8],
    /// `invoice_features`; `None` writes none.
    pub features: Option<&'a [u8]>,
    /// Extra odd records of the invoice range 160..=239.
    pub unknown: &'a [(u64, Vec<u8>)],
}

/// An invoice ready to be signed by `invoice_node_id`.
#[derive(Debug, Clone)]
pub struct UnsignedInvoice {
    unsigned: Unsigned,
    invreq_id: [u8; 32],
}

impl InvoiceBuilder<'_> {
    /// Checks the values a reader would refuse, so a built invoice always reads back.
    fn check(&self) -> Result<(usize, XOnlyPublicKey)> {
        use types::*;
        if self.payment_hash.len() != 32 {
            return Err(invalid("payment_hash", "must be 32 bytes"));
        }
        if self.amount_msat > ir::MAX_AMOUNT_MSAT {
            return Err(invalid("amount_msat", ir::MAX_AMOUNT_RULE));
        }
        let node_key = (self.node_id.len() == 33)
            .then(|| PublicKey::from_slice(self.node_id).ok())
            .flatten()
            .ok_or_else(|| invalid("node_id", "not a compressed secp256k1 point"))?
            .x_only_public_key()
            .0;
        let paths = read_paths("paths", self.paths, Check::Full)
            .map_err(|e| invalid("paths", e.to_string()))?;
        if let Some(f) = self.features {
            ir::check_features_except("invoice_features", f, &KNOWN_EVEN_FEATURES)
                .map_err(|e| invalid("features", e.to_string()))?;
        }
        if !self.payinfo.usable() {
            return Err(invalid("payinfo", "an even feature bit makes the path unusable"));
        }
        if self.payinfo.features.len() > usize::from(u16::MAX) {
            return Err(invalid("payinfo", "features over 65535 bytes"));
        }
        for (i, (t, _)) in self.unknown.iter().enumerate() {
            if t % 2 == 0 || KNOWN.contains(t) || !INVOICE_TYPES.contains(t) {
                let why = format!("type {t} is not an unknown odd type in 160..=239");
                return Err(invalid("unknown_records", why));
            }
            if self.unknown[..i].iter().any(|(u, _)| u == t) {
                return Err(invalid("unknown_records", format!("type {t} appears twice")));
            }
        }
        Ok((paths.len(), node_key))
    }

    /// Builds the unsigned stream, its merkle root, signature digest and `invreq_id`.
    pub fn build(&self) -> Result<UnsignedInvoice> {
        use types::*;
        let request = ir::parse(self.invoice_request, Check::Full)
            .map_err(|e| invalid("invoice_request", e.to_string()))?;
        if request.fields.amount_msat.is_some_and(|a| a != self.amount_msat) {
            return Err(invalid("amount_msat", "must equal invreq_amount"));
        }
        let (npaths, node_key) = self.check()?;
        let flen = self.payinfo.features.len() as u16;
        let mut payinfo = Vec::with_capacity(npaths * (PAYINFO_FIXED + usize::from(flen)));
        for _ in 0..npaths {
            write_payinfo(&mut payinfo, self.payinfo, flen);
        }
        let tu64 = |v: u64| {
            let (b, skip) = tlv::tu64_bytes(v);
            b[skip..].to_vec()
        };
        let mut recs: Vec<(u64, Vec<u8>)> = vec![
            (INVOICE_PATHS, self.paths.to_vec()),
            (INVOICE_BLINDEDPAY, payinfo),
            (INVOICE_CREATED_AT, tu64(self.created_at)),
            (INVOICE_PAYMENT_HASH, self.payment_hash.to_vec()),
            (INVOICE_AMOUNT, tu64(self.amount_msat)),
            (INVOICE_NODE_ID, self.node_id.to_vec()),
        ];
        if let Some(e) = self.relative_expiry {
            recs.push((INVOICE_RELATIVE_EXPIRY, tu64(e.into())));
        }
        if let Some(f) = self.features {
            recs.push((INVOICE_FEATURES, f.to_vec()));
        }
        recs.extend_from_slice(self.unknown);
        recs.sort_unstable_by_key(|(t, _)| *t);

        let mut bytes = Vec::new();
        let mut id = Sha256::new();
        let mut experimental = Vec::new();
        for rec in tlv::records(self.invoice_request) {
            let rec = rec?;
            if ir::INVOICE_REQUEST_TYPES.contains(&rec.typ) {
                bytes.extend_from_slice(rec.raw);
                id.update(rec.raw);
            } else if ir::EXPERIMENTAL_TYPES.contains(&rec.typ) {
                experimental.push(rec.raw);
            }
        }
        for (t, v) in &recs {
            tlv::write_record(&mut bytes, *t, v);
        }
        let signature_at = bytes.len();
        for raw in experimental {
            bytes.extend_from_slice(raw);
            id.update(raw);
        }
        let invreq_id: [u8; 32] = id.finalize().into();
        debug_assert_eq!(invreq_id, request.invreq_id);
        let unsigned = Unsigned::new("invoice", bytes, node_key, signature_at)?;
        Ok(UnsignedInvoice { unsigned, invreq_id })
    }
}

impl UnsignedInvoice {
    /// The unsigned TLV stream.
    pub fn bytes(&self) -> &[u8] {
        &self.unsigned.bytes
    }
    /// The merkle root of the unsigned records (BOLT 12 "Signature Calculation").
    pub fn merkle_root(&self) -> [u8; 32] {
        self.unsigned.merkle_root
    }
    /// `H("lightning" || "invoice" || "signature", merkle_root)`: what the node id signs.
    pub fn digest(&self) -> [u8; 32] {
        self.unsigned.digest
    }
    /// The `invreq_id` of the request answered.
    pub fn invreq_id(&self) -> [u8; 32] {
        self.invreq_id
    }

    /// Attaches `signature` after checking it against `invoice_node_id`, then reads the
    /// result back with the reader's rules.
    pub fn with_signature(&self, signature: &[u8]) -> Result<Invoice> {
        let (_, bytes) = self.unsigned.attach(signature)?;
        parse_with(&bytes, Check::StructureOnly)
    }
}

#[cfg(test)]
mod tests;
