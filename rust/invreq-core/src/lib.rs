//! The byte layer of invreq: everything BOLT 12 about an `invoice_request` and the invoice
//! answering it, with no Python.
//!
//! - [`tlv`]: BigSize and TLV streams (BOLT 1).
//! - [`merkle`]: tagged hashes, merkle root and signature digests (BOLT 12 "Signature Calculation").
//! - [`string`]: the `lnr1...` text form (BOLT 12 "Encoding").
//! - [`blinding`]: route blinding for onion messages (BOLT 4) and the `blinded_path`
//!   encoding; `path_id`.
//! - [`onion_message`]: onion messages: peeling one addressed to our path (tests), and the
//!   reply that carries an `invoice_error` to a payee.
//! - [`invoice_request`]: building, signing and reading an `invoice_request`, signed or not.
//! - [`invoice`]: reading an `invoice` (`lni1...`), and building one for tests.
//! - [`offer`]: reading an offer (`lno1...`), for `decode`.
//! - [`chain`]: chain hashes of the networks we serve.
//! - [`signature`]: BIP-340 signatures of the messages: checking one, attaching one.
//! - [`read`]: the reader kit the messages share ([`read::Check`], points, a cursor).
//! - [`properties`]: the round-trip properties the fuzzers and the corpus replay check.
//! - [`error`]: the typed errors of all of the above.

#![warn(missing_docs)]

pub mod blinding;
pub mod chain;
pub mod error;
pub mod invoice;
pub mod invoice_request;
pub mod merkle;
pub mod offer;
pub mod onion_message;
pub mod properties;
pub mod read;
pub mod signature;
pub mod string;
pub mod tlv;

#[cfg(test)]
mod testing;

pub use error::{Error, Result};
