//! The `invoice_request` message (BOLT 12 "Invoice Requests"): build, sign, read.
//!
//! Writing follows the "not responding to an offer" case (what CLN's `invoicerequest`
//! makes, a *refund* in LDK's words). Reading accepts both cases and applies every reader
//! requirement of BOLT 12 to each (REFERENCE §7).

use std::ops::RangeInclusive;

use sha2::{Digest, Sha256};

use crate::blinding::{read_paths, BlindedPath};
use crate::error::{Result, SemanticError, SignatureError};
use crate::read::{invalid, read_point, semantic, Check, Cursor};
use crate::signature::{verify, xonly_of, Unsigned};
use crate::{merkle, string, tlv};

/// The human-readable part of an invoice_request string.
pub const HRP: &str = "lnr";

/// TLV types of the `invoice_request` stream.
pub mod types {
    /// `invreq_metadata`: the payer's random bytes, first so they salt every merkle leaf.
    pub const INVREQ_METADATA: u64 = 0;
    /// `offer_chains`: the chains an offer may be paid on.
    pub const OFFER_CHAINS: u64 = 2;
    /// `offer_metadata`: the offer writer's own bytes.
    pub const OFFER_METADATA: u64 = 4;
    /// `offer_currency`: ISO 4217 code when `offer_amount` is not in msat.
    pub const OFFER_CURRENCY: u64 = 6;
    /// `offer_amount`: in msat, or in `offer_currency`'s minor unit.
    pub const OFFER_AMOUNT: u64 = 8;
    /// `offer_description`: what the money is for (the request's description too).
    pub const OFFER_DESCRIPTION: u64 = 10;
    /// `offer_features`.
    pub const OFFER_FEATURES: u64 = 12;
    /// `offer_absolute_expiry`: seconds since 1970-01-01 UTC.
    pub const OFFER_ABSOLUTE_EXPIRY: u64 = 14;
    /// `offer_paths`: blinded paths to the offer's writer.
    pub const OFFER_PATHS: u64 = 16;
    /// `offer_issuer`: who is asking, as text.
    pub const OFFER_ISSUER: u64 = 18;
    /// `offer_quantity_max`: how many items one request may ask for (0: any).
    pub const OFFER_QUANTITY_MAX: u64 = 20;
    /// `offer_issuer_id`: the key the offer's invoices are signed by.
    pub const OFFER_ISSUER_ID: u64 = 22;
    /// `invreq_chain`: absent for bitcoin.
    pub const INVREQ_CHAIN: u64 = 80;
    /// `invreq_amount`: in msat.
    pub const INVREQ_AMOUNT: u64 = 82;
    /// `invreq_features`.
    pub const INVREQ_FEATURES: u64 = 84;
    /// `invreq_quantity`: items asked for, when the offer has `offer_quantity_max`.
    pub const INVREQ_QUANTITY: u64 = 86;
    /// `invreq_payer_id`: the key that signs the request (our payer key).
    pub const INVREQ_PAYER_ID: u64 = 88;
    /// `invreq_payer_note`: a note from the payer, as text.
    pub const INVREQ_PAYER_NOTE: u64 = 89;
    /// `invreq_paths`: blinded paths an invoice answering the request is sent over.
    pub const INVREQ_PATHS: u64 = 90;
    /// `invreq_bip_353_name`: the payer's human-readable name (BIP 353).
    pub const INVREQ_BIP_353_NAME: u64 = 91;
    /// `signature`: BIP-340, by `invreq_payer_id`, over the merkle root.
    pub const SIGNATURE: u64 = crate::signature::SIGNATURE_TYPE;

    /// Every type this module knows, ascending.
    pub const KNOWN: [u64; 21] = [
        INVREQ_METADATA,
        OFFER_CHAINS,
        OFFER_METADATA,
        OFFER_CURRENCY,
        OFFER_AMOUNT,
        OFFER_DESCRIPTION,
        OFFER_FEATURES,
        OFFER_ABSOLUTE_EXPIRY,
        OFFER_PATHS,
        OFFER_ISSUER,
        OFFER_QUANTITY_MAX,
        OFFER_ISSUER_ID,
        INVREQ_CHAIN,
        INVREQ_AMOUNT,
        INVREQ_FEATURES,
        INVREQ_QUANTITY,
        INVREQ_PAYER_ID,
        INVREQ_PAYER_NOTE,
        INVREQ_PATHS,
        INVREQ_BIP_353_NAME,
        SIGNATURE,
    ];
}

/// The most msat an amount may be: 21,000,000 BTC, every bitcoin there will ever be. BOLT 12
/// has no such rule; LDK refuses larger amounts (its `MAX_VALUE_MSAT`) and so do we, in
/// builders and readers alike, so nobody can be asked for more than exists.
pub const MAX_AMOUNT_MSAT: u64 = 21_000_000 * 100_000_000 * 1000;

/// Why an amount above [`MAX_AMOUNT_MSAT`] is refused, as error messages say it.
pub const MAX_AMOUNT_RULE: &str =
    "above 21,000,000 BTC (2100000000000000000 msat), the bitcoin supply";

/// Non-signature types an invoice_request may carry (BOLT 12 "Requirements").
pub const INVOICE_REQUEST_TYPES: RangeInclusive<u64> = 0..=159;
/// The experimental range, also allowed and also part of `invreq_id`.
pub const EXPERIMENTAL_TYPES: RangeInclusive<u64> = 1_000_000_000..=2_999_999_999;

/// Whether `t` is copied into an invoice and hashed into `invreq_id` (REFERENCE §2).
pub(crate) fn in_invreq_ranges(t: u64) -> bool {
    INVOICE_REQUEST_TYPES.contains(&t) || EXPERIMENTAL_TYPES.contains(&t)
}

/// Every field of an invoice_request, as read (all optional at this level).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    /// `invreq_metadata` (required in a request).
    pub metadata: Option<Vec<u8>>,
    /// `offer_chains`: 32-byte chain hashes, wire order.
    pub offer_chains: Option<Vec<[u8; 32]>>,
    /// `offer_metadata`.
    pub offer_metadata: Option<Vec<u8>>,
    /// `offer_currency`.
    pub offer_currency: Option<String>,
    /// `offer_amount` (msat when there is no `offer_currency`).
    pub offer_amount: Option<u64>,
    /// `offer_description`.
    pub description: Option<String>,
    /// `offer_features`.
    pub offer_features: Option<Vec<u8>>,
    /// `offer_absolute_expiry`, seconds since 1970-01-01 UTC.
    pub absolute_expiry: Option<u64>,
    /// `offer_paths`.
    pub offer_paths: Option<Vec<BlindedPath>>,
    /// `offer_issuer`.
    pub issuer: Option<String>,
    /// `offer_quantity_max`.
    pub offer_quantity_max: Option<u64>,
    /// `offer_issuer_id`.
    pub offer_issuer_id: Option<[u8; 33]>,
    /// `invreq_chain` (absent: bitcoin).
    pub chain: Option<[u8; 32]>,
    /// `invreq_amount`, in msat.
    pub amount_msat: Option<u64>,
    /// `invreq_features`.
    pub features: Option<Vec<u8>>,
    /// `invreq_quantity`.
    pub quantity: Option<u64>,
    /// `invreq_payer_id` (required in a request).
    pub payer_id: Option<[u8; 33]>,
    /// `invreq_payer_note`.
    pub payer_note: Option<String>,
    /// `invreq_paths`.
    pub paths: Option<Vec<BlindedPath>>,
    /// `invreq_bip_353_name`: (name, domain).
    pub bip353_name: Option<(String, String)>,
    /// Unknown odd records, byte for byte, in stream order.
    pub unknown: Vec<(u64, Vec<u8>)>,
}

impl Fields {
    /// Whether these fields answer an offer (`offer_issuer_id` or `offer_paths` set): such a
    /// request must be signed; one that answers no offer (a refund, in LDK's words) may not be.
    pub fn answers_offer(&self) -> bool {
        self.offer_issuer_id.is_some() || self.offer_paths.is_some()
    }
}

/// A valid invoice_request: from [`UnsignedInvoiceRequest::with_signature`] or [`decode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceRequest {
    /// Every field, as read or built.
    pub fields: Fields,
    /// `None` only for a request that answers no offer and was written without one (BOLT 12's
    /// writer rule for that case, what LDK reads); every request invreq makes has one.
    pub signature: Option<[u8; 64]>,
    /// The whole TLV stream, as read or built.
    pub bytes: Vec<u8>,
    /// SHA-256 of the records in the invoice_request ranges, as CLN computes it: an invoice
    /// answering this request copies those records, so it leads back to the request.
    pub invreq_id: [u8; 32],
}

impl InvoiceRequest {
    /// The `lnr1...` string of the stream as it is (signed when it has a signature), lower case.
    pub fn to_bolt12(&self) -> String {
        string::encode(HRP, &self.bytes).expect("lnr is a valid human-readable part")
    }

    /// The stream without its signature records (types 240..=1000).
    pub fn unsigned_bytes(&self) -> Vec<u8> {
        without_signatures(&self.bytes)
    }

    /// The BOLT 12 form of a request that answers no offer: the same records without the
    /// signature, which is what LDK-based wallets read (CLN's readers need the signed form).
    /// It has the same `invreq_id`, so an invoice answering it answers this request. `None`
    /// for a request answering an offer: that one must be signed.
    pub fn to_bolt12_unsigned(&self) -> Option<String> {
        if self.fields.answers_offer() {
            return None;
        }
        Some(string::encode(HRP, &self.unsigned_bytes()).expect("lnr is a valid hrp"))
    }
}

/// `stream` without its records of the signature range: the records of a valid stream are
/// well framed, so this only copies bytes.
fn without_signatures(stream: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stream.len());
    for r in tlv::records(stream).map_while(std::result::Result::ok) {
        if !merkle::SIGNATURE_TYPES.contains(&r.typ) {
            out.extend_from_slice(r.raw);
        }
    }
    out
}

/// The fields a writer sets (REFERENCE §1); references, so building copies nothing twice.
#[derive(Debug, Clone, Copy)]
pub struct Builder<'a> {
    /// `invreq_metadata`: fresh random bytes per request (not empty).
    pub metadata: &'a [u8],
    /// `offer_description`.
    pub description: &'a str,
    /// `invreq_amount`, in msat: positive, at most [`MAX_AMOUNT_MSAT`].
    pub amount_msat: u64,
    /// `invreq_payer_id`: the compressed key that will sign.
    pub payer_id: &'a [u8],
    /// `offer_absolute_expiry`; `None` writes none.
    pub absolute_expiry: Option<u64>,
    /// `offer_issuer`; `None` writes none.
    pub issuer: Option<&'a str>,
    /// `invreq_chain`: 32 bytes, or `None` for bitcoin (BOLT 12: omit it for bitcoin).
    pub chain: Option<&'a [u8]>,
    /// `invreq_paths`: blinded paths to the node that receives invoices for us (empty: none).
    /// Inside the signed records, so `invreq_id` and the signature cover them.
    pub paths: &'a [BlindedPath],
    /// Extra odd records of the invoice_request ranges, not known fields, each type once.
    pub unknown: &'a [(u64, Vec<u8>)],
}

/// An invoice_request ready to be signed.
#[derive(Debug, Clone)]
pub struct UnsignedInvoiceRequest {
    fields: Fields,
    unsigned: Unsigned,
    invreq_id: [u8; 32],
}

impl Builder<'_> {
    /// Builds the unsigned stream, its merkle root, signature digest and `invreq_id`.
    pub fn build(&self) -> Result<UnsignedInvoiceRequest> {
        use types::*;
        if self.metadata.is_empty() {
            return Err(invalid("metadata", "must not be empty"));
        }
        if self.amount_msat == 0 {
            return Err(invalid("amount_msat", "must be positive"));
        }
        if self.amount_msat > MAX_AMOUNT_MSAT {
            return Err(invalid("amount_msat", MAX_AMOUNT_RULE));
        }
        let payer_key = xonly_of(self.payer_id)
            .ok_or_else(|| invalid("payer_id", "not a compressed secp256k1 point"))?;
        let chain: Option<[u8; 32]> = match self.chain {
            None => None,
            Some(c) => Some(c.try_into().map_err(|_| invalid("chain", "must be 32 bytes"))?),
        };
        for (i, (t, _)) in self.unknown.iter().enumerate() {
            if t % 2 == 0 {
                return Err(invalid("unknown_records", format!("type {t} is even")));
            }
            if types::KNOWN.contains(t) {
                return Err(invalid("unknown_records", format!("type {t} is a known field")));
            }
            if !in_invreq_ranges(*t) {
                return Err(invalid(
                    "unknown_records",
                    format!("type {t} is outside the invoice_request ranges"),
                ));
            }
            if self.unknown[..i].iter().any(|(u, _)| u == t) {
                return Err(invalid("unknown_records", format!("type {t} appears twice")));
            }
        }
        let paths = if self.paths.is_empty() {
            None
        } else {
            let encoded = crate::blinding::encode_paths(self.paths)?;
            // What we write must read back: points on the curve, every hop well-formed.
            read_paths("paths", &encoded, Check::Full)
                .map_err(|e| invalid("paths", e.to_string()))?;
            Some(encoded)
        };
        let (amount, askip) = tlv::tu64_bytes(self.amount_msat);
        let expiry = self.absolute_expiry.map(tlv::tu64_bytes);
        let mut recs: Vec<(u64, &[u8])> = Vec::with_capacity(8 + self.unknown.len());
        recs.push((INVREQ_METADATA, self.metadata));
        recs.push((OFFER_DESCRIPTION, self.description.as_bytes()));
        if let Some((b, skip)) = expiry.as_ref() {
            recs.push((OFFER_ABSOLUTE_EXPIRY, &b[*skip..]));
        }
        if let Some(i) = self.issuer {
            recs.push((OFFER_ISSUER, i.as_bytes()));
        }
        if let Some(c) = chain.as_ref() {
            recs.push((INVREQ_CHAIN, c));
        }
        recs.push((INVREQ_AMOUNT, &amount[askip..]));
        recs.push((INVREQ_PAYER_ID, self.payer_id));
        if let Some(p) = paths.as_ref() {
            recs.push((INVREQ_PATHS, p));
        }
        if !self.unknown.is_empty() {
            recs.extend(self.unknown.iter().map(|(t, v)| (*t, v.as_slice())));
            recs.sort_unstable_by_key(|(t, _)| *t);
        }
        // Room for the signature record too, so attaching it does not reallocate.
        let size: usize = recs.iter().map(|(t, v)| tlv::record_len(*t, v.len())).sum();
        let mut bytes = Vec::with_capacity(size + 2 + 64);
        let mut id = Sha256::new();
        let mut signature_at = None;
        for (t, v) in &recs {
            let start = bytes.len();
            if *t > SIGNATURE && signature_at.is_none() {
                signature_at = Some(start);
            }
            tlv::write_record(&mut bytes, *t, v);
            id.update(&bytes[start..]);
        }
        let signature_at = signature_at.unwrap_or(bytes.len());
        let unsigned = Unsigned::new("invoice_request", bytes, payer_key, signature_at)?;
        let fields = Fields {
            metadata: Some(self.metadata.to_vec()),
            description: Some(self.description.to_owned()),
            absolute_expiry: self.absolute_expiry,
            issuer: self.issuer.map(str::to_owned),
            chain,
            amount_msat: Some(self.amount_msat),
            payer_id: Some(self.payer_id.try_into().expect("checked by xonly_of")),
            paths: (!self.paths.is_empty()).then(|| self.paths.to_vec()),
            unknown: self.unknown.to_vec(),
            ..Fields::default()
        };
        Ok(UnsignedInvoiceRequest { fields, unsigned, invreq_id: id.finalize().into() })
    }
}

impl UnsignedInvoiceRequest {
    /// The unsigned TLV stream.
    pub fn bytes(&self) -> &[u8] {
        &self.unsigned.bytes
    }
    /// The merkle root of the unsigned records (BOLT 12 "Signature Calculation").
    pub fn merkle_root(&self) -> [u8; 32] {
        self.unsigned.merkle_root
    }
    /// `H("lightning" || "invoice_request" || "signature", merkle_root)`: what the signer signs.
    pub fn digest(&self) -> [u8; 32] {
        self.unsigned.digest
    }
    /// The request's `invreq_id`, the same signed or not.
    pub fn invreq_id(&self) -> [u8; 32] {
        self.invreq_id
    }
    /// The fields as built.
    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    /// The `lnr1...` string of the unsigned stream: BOLT 12's form of a request answering no
    /// offer (every request this builder makes), what LDK's `Refund` parser reads.
    pub fn to_bolt12(&self) -> String {
        string::encode(HRP, &self.unsigned.bytes).expect("lnr is a valid human-readable part")
    }

    /// Attaches `signature` after checking it against `invreq_payer_id`: a signer that
    /// returns garbage can never produce an invoice_request that leaves this function.
    pub fn with_signature(&self, signature: &[u8]) -> Result<InvoiceRequest> {
        let (sig, bytes) = self.unsigned.attach(signature)?;
        Ok(InvoiceRequest {
            fields: self.fields.clone(),
            signature: Some(sig),
            bytes,
            invreq_id: self.invreq_id,
        })
    }
}

// ---- reading ----------------------------------------------------------------------------

fn read_utf8(field: &'static str, b: &[u8]) -> Result<String> {
    String::from_utf8(b.to_vec()).map_err(|_| semantic(field, "invalid utf-8"))
}

/// Refuses a feature bitmap with any even bit set: we know no invoice_request feature, and
/// BOLT 12 says unknown even bits are fatal while unknown odd bits are ignored.
pub(crate) fn check_features(field: &'static str, b: &[u8]) -> Result<()> {
    check_features_except(field, b, &[])
}

/// Refuses a feature bitmap with an even bit set that is not in `known_even`.
pub(crate) fn check_features_except(
    field: &'static str,
    b: &[u8],
    known_even: &[usize],
) -> Result<()> {
    for (i, byte) in b.iter().rev().enumerate() {
        for bit in (0..8).step_by(2) {
            let n = i * 8 + bit;
            if byte & (1 << bit) != 0 && !known_even.contains(&n) {
                return Err(SemanticError::UnknownEvenFeature { field, bit: n }.into());
            }
        }
    }
    Ok(())
}

fn read_bip353(b: &[u8]) -> Result<(String, String)> {
    const F: &str = "invreq_bip_353_name";
    let mut c = Cursor { b, field: F };
    let nl = c.take(1)?[0];
    let name = c.take(nl.into())?;
    let dl = c.take(1)?[0];
    let domain = c.take(dl.into())?;
    if !c.b.is_empty() {
        return Err(semantic(F, "trailing bytes"));
    }
    let ok = |s: &[u8]| s.iter().all(|&ch| ch.is_ascii_alphanumeric() || b"-_.".contains(&ch));
    if !ok(name) || !ok(domain) {
        return Err(semantic(F, "characters other than 0-9 a-z A-Z - _ ."));
    }
    // Only ASCII passed the check above, so these conversions cannot fail.
    Ok((String::from_utf8_lossy(name).into_owned(), String::from_utf8_lossy(domain).into_owned()))
}

/// Reads an amount in msat, refusing more than [`MAX_AMOUNT_MSAT`].
pub(crate) fn read_msat(field: &'static str, v: &[u8]) -> Result<u64> {
    let a = tlv::read_tu64(field, v)?;
    if a > MAX_AMOUNT_MSAT {
        return Err(semantic(field, MAX_AMOUNT_RULE));
    }
    Ok(a)
}

/// Reads record `t` into `f` when it is a known field of the invoice_request ranges, and
/// says whether it was. Invoices copy these records, so their reader shares this one.
#[inline]
pub(crate) fn read_field(f: &mut Fields, t: u64, v: &[u8], check: Check) -> Result<bool> {
    use types::*;
    match t {
        INVREQ_METADATA => f.metadata = Some(v.to_vec()),
        OFFER_CHAINS => {
            let chains = v.chunks_exact(32);
            if v.is_empty() || !chains.remainder().is_empty() {
                return Err(semantic(
                    "offer_chains",
                    "not a non-empty list of 32-byte chain hashes",
                ));
            }
            f.offer_chains = Some(chains.map(|c| c.try_into().expect("32")).collect());
        }
        OFFER_METADATA => f.offer_metadata = Some(v.to_vec()),
        OFFER_CURRENCY => f.offer_currency = Some(read_utf8("offer_currency", v)?),
        OFFER_AMOUNT => {
            let a = tlv::read_tu64("offer_amount", v)?;
            if a == 0 {
                return Err(semantic("offer_amount", "zero"));
            }
            // In msat only without a currency (whose type, 6, comes first).
            if f.offer_currency.is_none() && a > MAX_AMOUNT_MSAT {
                return Err(semantic("offer_amount", MAX_AMOUNT_RULE));
            }
            f.offer_amount = Some(a);
        }
        OFFER_DESCRIPTION => f.description = Some(read_utf8("offer_description", v)?),
        OFFER_FEATURES => {
            check_features("offer_features", v)?;
            f.offer_features = Some(v.to_vec());
        }
        OFFER_ABSOLUTE_EXPIRY => {
            f.absolute_expiry = Some(tlv::read_tu64("offer_absolute_expiry", v)?)
        }
        OFFER_PATHS => f.offer_paths = Some(read_paths("offer_paths", v, check)?),
        OFFER_ISSUER => f.issuer = Some(read_utf8("offer_issuer", v)?),
        OFFER_QUANTITY_MAX => f.offer_quantity_max = Some(tlv::read_tu64("offer_quantity_max", v)?),
        OFFER_ISSUER_ID => f.offer_issuer_id = Some(read_point("offer_issuer_id", v, check)?),
        INVREQ_CHAIN => {
            f.chain = Some(v.try_into().map_err(|_| semantic("invreq_chain", "not 32 bytes"))?)
        }
        INVREQ_AMOUNT => f.amount_msat = Some(read_msat("invreq_amount", v)?),
        INVREQ_FEATURES => {
            check_features("invreq_features", v)?;
            f.features = Some(v.to_vec());
        }
        INVREQ_QUANTITY => f.quantity = Some(tlv::read_tu64("invreq_quantity", v)?),
        INVREQ_PAYER_ID => f.payer_id = Some(read_point("invreq_payer_id", v, check)?),
        INVREQ_PAYER_NOTE => f.payer_note = Some(read_utf8("invreq_payer_note", v)?),
        INVREQ_PATHS => f.paths = Some(read_paths("invreq_paths", v, check)?),
        INVREQ_BIP_353_NAME => f.bip353_name = Some(read_bip353(v)?),
        _ => return Ok(false),
    }
    Ok(true)
}

/// What a reader found of a request's signature, when the rest of it is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureStatus {
    /// Present and verified against `invreq_payer_id` (or not checked: [`Check::StructureOnly`]).
    Valid,
    /// Absent from a request that answers no offer: BOLT 12 writes it so, and that is valid.
    Unsigned,
    /// Absent from a request that answers an offer, which must be signed.
    Missing,
    /// Present but not a signature of this request by `invreq_payer_id`.
    Invalid,
}

/// Reads a stream by every rule but the signature's, and says what the signature is: for
/// callers that report a bad signature rather than refuse (CLN's `decode` says
/// `valid: false` with a warning). The request returned has the stream's bytes as they are.
pub fn inspect(bytes: &[u8], check: Check) -> Result<(InvoiceRequest, SignatureStatus)> {
    use types::*;
    let mut f = Fields::default();
    let mut signature: Option<&[u8]> = None;
    let mut id = Sha256::new();
    for r in tlv::records(bytes) {
        let r = r?;
        let (t, v) = (r.typ, r.value);
        let in_ranges = in_invreq_ranges(t);
        if !in_ranges && !merkle::SIGNATURE_TYPES.contains(&t) {
            return Err(SemanticError::TypeOutOfRange(t).into());
        }
        if in_ranges {
            id.update(r.raw);
        }
        match t {
            SIGNATURE => signature = Some(v),
            _ if read_field(&mut f, t, v, check)? => {}
            _ if t % 2 == 0 => return Err(SemanticError::UnknownEvenType(t).into()),
            // Unknown odd signature-range records are not ours to keep: they are not signed.
            _ if !in_ranges => {}
            _ => f.unknown.push((t, v.to_vec())),
        }
    }
    if f.metadata.is_none() {
        return Err(SemanticError::Missing("invreq_metadata").into());
    }
    let Some(payer_id) = f.payer_id else {
        return Err(SemanticError::Missing("invreq_payer_id").into());
    };
    check_kind(&f)?;
    let sig: Option<[u8; 64]> = signature
        .map(|s| s.try_into().map_err(|_| semantic("signature", "not 64 bytes")))
        .transpose()?;
    let status = match sig {
        None if f.answers_offer() => SignatureStatus::Missing,
        None => SignatureStatus::Unsigned,
        Some(_) if check == Check::StructureOnly => SignatureStatus::Valid,
        Some(sig) => {
            let root = merkle::merkle_root(bytes)?;
            let digest = merkle::signature_digest("invoice_request", "signature", &root);
            let key = xonly_of(&payer_id)
                .ok_or_else(|| semantic("invreq_payer_id", "not a point on the curve"))?;
            match verify(&digest, &sig, &key) {
                Ok(()) => SignatureStatus::Valid,
                Err(_) => SignatureStatus::Invalid,
            }
        }
    };
    let request = InvoiceRequest {
        fields: f,
        signature: sig,
        bytes: bytes.to_vec(),
        invreq_id: id.finalize().into(),
    };
    Ok((request, status))
}

/// Reads and validates an invoice_request stream (REFERENCE §7): a request answering an offer
/// must carry a signature by `invreq_payer_id`; one answering no offer may carry none, and
/// when it carries one, it must verify.
pub fn parse(bytes: &[u8], check: Check) -> Result<InvoiceRequest> {
    let (request, status) = inspect(bytes, check)?;
    match status {
        SignatureStatus::Valid | SignatureStatus::Unsigned => Ok(request),
        SignatureStatus::Missing => Err(SemanticError::Missing("signature").into()),
        SignatureStatus::Invalid => Err(SignatureError::DoesNotVerify.into()),
    }
}

/// The rules that depend on whether the request answers an offer.
fn check_kind(f: &Fields) -> Result<()> {
    if f.answers_offer() {
        match (f.offer_quantity_max, f.quantity) {
            (Some(_), None) => return Err(SemanticError::Missing("invreq_quantity").into()),
            (Some(max), Some(q)) if q == 0 || (max != 0 && q > max) => {
                return Err(semantic("invreq_quantity", "zero or above offer_quantity_max"))
            }
            (None, Some(_)) => {
                return Err(SemanticError::Unexpected {
                    field: "invreq_quantity",
                    why: "the offer has no offer_quantity_max",
                }
                .into())
            }
            _ => {}
        }
        if f.offer_amount.is_none() && f.amount_msat.is_none() {
            return Err(SemanticError::Missing("invreq_amount").into());
        }
    } else {
        const WHY: &str = "the invoice_request answers no offer";
        if f.offer_chains.is_some() {
            return Err(SemanticError::Unexpected { field: "offer_chains", why: WHY }.into());
        }
        if f.offer_features.is_some() {
            return Err(SemanticError::Unexpected { field: "offer_features", why: WHY }.into());
        }
        if f.offer_quantity_max.is_some() {
            return Err(SemanticError::Unexpected { field: "offer_quantity_max", why: WHY }.into());
        }
        if f.amount_msat.is_none() {
            return Err(SemanticError::Missing("invreq_amount").into());
        }
    }
    Ok(())
}

/// Decodes an `lnr1...` string and applies every reader rule.
pub fn decode(s: &str, check: Check) -> Result<InvoiceRequest> {
    let bytes = string::decode_with_hrp(s, HRP)?;
    parse(&bytes, check)
}

/// Decodes an `lnr1...` string like [`decode`], reporting the signature instead of refusing
/// it (see [`inspect`]).
pub fn decode_inspect(s: &str, check: Check) -> Result<(InvoiceRequest, SignatureStatus)> {
    let bytes = string::decode_with_hrp(s, HRP)?;
    inspect(&bytes, check)
}

#[cfg(test)]
mod tests;
