//! The reader kit every message shares: how much curve arithmetic a read does ([`Check`]),
//! the two error makers (a builder value that cannot be encoded, a read value that breaks a
//! rule), a compressed point, and a cursor over fixed-size pieces of a value.
//!
//! It lives apart from the messages so that each of them (`invoice_request`, `invoice`,
//! `offer`, the blinded paths inside them, onion messages) reads with the same tools while
//! none imports another only to borrow them: the modules form a one-way stack, this kit
//! and [`crate::error`] at its foot.

use secp256k1::PublicKey;

use crate::error::{Error, Result, SemanticError};

/// How much of the curve arithmetic a read performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Everything: points lie on the curve and the signature verifies.
    Full,
    /// Structure only: every framing, range, presence and value rule, but points are only
    /// checked for form (33 bytes, prefix 02/03) and the signature is not verified. For
    /// callers that verify separately, and for measuring the parser alone.
    StructureOnly,
}

/// A builder value that cannot be encoded.
pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidField { field, reason: reason.into() }
}

/// A field whose value a reader cannot accept.
pub(crate) fn semantic(field: &'static str, reason: &'static str) -> Error {
    SemanticError::InvalidField { field, reason }.into()
}

/// Reads a compressed point (BOLT 1 `point`); on the curve too under [`Check::Full`].
pub(crate) fn read_point(field: &'static str, b: &[u8], check: Check) -> Result<[u8; 33]> {
    let p: [u8; 33] = b.try_into().map_err(|_| semantic(field, "not 33 bytes"))?;
    if p[0] != 2 && p[0] != 3 {
        return Err(semantic(field, "not a compressed point"));
    }
    if check == Check::Full && PublicKey::from_slice(&p).is_err() {
        return Err(semantic(field, "not a point on the curve"));
    }
    Ok(p)
}

/// Reads fixed-size pieces off the front of a value; running short is an error of `field`.
pub(crate) struct Cursor<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) field: &'static str,
}

impl<'a> Cursor<'a> {
    /// The next `n` bytes, or `truncated` when fewer are left.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.b.len() < n {
            return Err(semantic(self.field, "truncated"));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
}
