//! The `offer` message (BOLT 12 "Offers"): read one (`lno1...`), so that every BOLT 12 string
//! a user may paste into `decode` is decoded. invreq answers no offers; this is a reader only.

use std::ops::RangeInclusive;

use sha2::{Digest, Sha256};

use crate::error::{Result, SemanticError};
use crate::invoice_request::{self as ir, Fields};
use crate::read::Check;
use crate::{string, tlv};

/// The human-readable part of an offer string.
pub const HRP: &str = "lno";

/// The types an offer may carry (BOLT 12 reader of an offer).
pub const OFFER_TYPES: RangeInclusive<u64> = 1..=79;
/// The experimental range of offers.
pub const EXPERIMENTAL_OFFER_TYPES: RangeInclusive<u64> = 1_000_000_000..=1_999_999_999;

/// A valid offer. Its fields are the offer fields of [`Fields`] (the others stay `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The offer's fields, read by the same rules as an invoice_request's copy of them.
    pub fields: Fields,
    /// The whole TLV stream.
    pub bytes: Vec<u8>,
    /// SHA-256 of the whole stream: the id CLN gives an offer (`offer_id`).
    pub offer_id: [u8; 32],
}

impl Offer {
    /// The `lno1...` string, lower case.
    pub fn to_bolt12(&self) -> String {
        string::encode(HRP, &self.bytes).expect("lno is a valid human-readable part")
    }
}

/// Reads an offer stream and applies the rules under which a reader may respond to it,
/// except those needing context (chain, expiry, currency).
pub fn parse(bytes: &[u8], check: Check) -> Result<Offer> {
    let mut f = Fields::default();
    for r in tlv::records(bytes) {
        let r = r?;
        let (t, v) = (r.typ, r.value);
        let in_ranges = OFFER_TYPES.contains(&t) || EXPERIMENTAL_OFFER_TYPES.contains(&t);
        if !in_ranges {
            return Err(SemanticError::TypeOutOfOfferRanges(t).into());
        }
        match t {
            // Only offer fields are in range, so the shared reader reads nothing else.
            _ if ir::read_field(&mut f, t, v, check)? => {}
            _ if t % 2 == 0 => return Err(SemanticError::UnknownEvenType(t).into()),
            _ => f.unknown.push((t, v.to_vec())),
        }
    }
    if f.offer_amount.is_some() && f.description.is_none() {
        return Err(SemanticError::Missing("offer_description").into());
    }
    if f.offer_currency.is_some() && f.offer_amount.is_none() {
        return Err(SemanticError::Missing("offer_amount").into());
    }
    if !f.answers_offer() {
        return Err(SemanticError::Missing("offer_issuer_id").into());
    }
    Ok(Offer { fields: f, bytes: bytes.to_vec(), offer_id: Sha256::digest(bytes).into() })
}

/// Decodes an `lno1...` string and applies every reader rule.
pub fn decode(s: &str, check: Check) -> Result<Offer> {
    parse(&string::decode_with_hrp(s, HRP)?, check)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The offer of the string tests: a description and an issuer id, nothing else.
    const OFFER: &str = "lno1pqps7sjqpgtyzm3qv4uxzmtsd3jjqer9wd3hy6tsw35k7msjzfpy7nz5yqcnygrfdej82um5wf5k2uckyypwa3eyt44h6txtxquqh7lz5djge4afgfjn7k4rgrkuag0jsd5xvxg";

    #[test]
    fn reads_an_offer_and_its_id() {
        let o = decode(OFFER, Check::Full).unwrap();
        assert!(o.fields.description.is_some());
        assert!(o.fields.offer_issuer_id.is_some());
        assert_eq!(o.to_bolt12(), OFFER);
        let bytes = string::decode_with_hrp(OFFER, HRP).unwrap();
        assert_eq!(o.offer_id, <[u8; 32]>::from(Sha256::digest(&bytes)));
    }

    #[test]
    fn refuses_what_no_reader_may_respond_to() {
        let bytes = string::decode_with_hrp(OFFER, HRP).unwrap();
        let mut recs = tlv::parse_stream(&bytes).unwrap();
        let err = |recs: &[(u64, Vec<u8>)]| {
            let refs: Vec<(u64, &[u8])> = recs.iter().map(|(t, v)| (*t, v.as_slice())).collect();
            parse(&tlv::encode_stream(&refs).unwrap(), Check::Full).unwrap_err().to_string()
        };
        let mut out_of_range = recs.clone();
        out_of_range.push((80, vec![0; 32]));
        assert_eq!(err(&out_of_range), "type 80 is outside the offer ranges");
        let mut even = recs.clone();
        even.insert(0, (2, vec![0; 31]));
        assert!(err(&even).contains("offer_chains"));
        recs.retain(|(t, _)| *t != 22);
        assert_eq!(err(&recs), "offer_issuer_id missing");
        let mut odd = string::decode_with_hrp(OFFER, HRP).unwrap();
        tlv::write_record(&mut odd, 1_000_000_001, b"x");
        assert_eq!(
            parse(&odd, Check::Full).unwrap().fields.unknown,
            vec![(1_000_000_001, b"x".to_vec())]
        );
    }
}
