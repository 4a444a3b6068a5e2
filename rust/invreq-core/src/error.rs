//! Typed errors of the byte layer.
//!
//! Two syntax layers (the string of BOLT 12 "Encoding", the TLV framing of BOLT 1) wrap a
//! semantic layer (the reader rules of BOLT 12 for invoice requests and invoices). Every
//! variant renders as a short lower-case message that names what is wrong, e.g.
//! `unknown even type 78` or `invreq_payer_id missing`.

use std::fmt;

/// Any failure of the byte layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Input that is not a valid string, stream, invoice_request or invoice.
    Decode(DecodeError),
    /// A signature that does not verify against the key it must come from.
    Signature(SignatureError),
    /// A value handed to a builder that cannot be encoded.
    InvalidField {
        /// The builder's parameter, as the caller named it.
        field: &'static str,
        /// What is wrong with it, in a few words.
        reason: String,
    },
}

/// Input refused by a reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// BOLT 12 "Encoding": the text form.
    String(StringError),
    /// BOLT 1 TLV framing.
    Tlv(TlvError),
    /// A reader rule of BOLT 12 for a well-framed stream.
    Semantic(SemanticError),
}

/// The text is not a bolt12 string (REFERENCE §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StringError {
    /// A `+` not standing between two data characters, or two `+` in a row.
    MisplacedPlus {
        /// Where the `+` stands, in characters from the start.
        position: usize,
    },
    /// Upper and lower case mixed.
    MixedCase,
    /// No `1` separating the human-readable part from the data.
    MissingSeparator,
    /// A character outside the bech32 alphabet (or not ASCII).
    InvalidCharacter {
        /// The character refused.
        character: char,
    },
    /// The human-readable part is empty or malformed.
    InvalidHrp,
    /// The human-readable part is not the one expected (e.g. `lno` where `lnr` is needed).
    WrongHrp {
        /// The prefix the caller asked for.
        expected: &'static str,
        /// The prefix the string has.
        found: String,
    },
    /// More than 4 bits left over after the last whole byte.
    TooMuchPadding,
    /// Left-over bits that are not zero.
    NonZeroPadding,
}

/// The bytes are not a valid TLV stream (BOLT 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlvError {
    /// The stream ends inside a record's type.
    TruncatedType,
    /// The stream ends inside the length of record `typ`.
    TruncatedLength {
        /// The record's type.
        typ: u64,
    },
    /// The value of record `typ` is longer than the rest of the stream.
    TruncatedValue {
        /// The record's type.
        typ: u64,
    },
    /// A BigSize (type or length) not in its shortest form.
    NonMinimalBigSize,
    /// Types must strictly increase.
    NotAscending {
        /// The type of the record before.
        previous: u64,
        /// The type that does not follow it.
        typ: u64,
    },
}

/// A reader rule of BOLT 12 is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SemanticError {
    /// An even type we do not know: "it's OK to be odd", never to be even and unknown.
    UnknownEvenType(u64),
    /// A non-signature type outside 0..=159 and 1_000_000_000..=2_999_999_999.
    TypeOutOfRange(u64),
    /// In an offer: a type outside 1..=79 and 1_000_000_000..=1_999_999_999.
    TypeOutOfOfferRanges(u64),
    /// A required field is absent.
    Missing(&'static str),
    /// A field that must not be present in this kind of invoice_request.
    Unexpected {
        /// The field's BOLT 12 name.
        field: &'static str,
        /// Why this kind of message may not carry it.
        why: &'static str,
    },
    /// A field whose value cannot be read.
    InvalidField {
        /// The field's BOLT 12 name.
        field: &'static str,
        /// The rule its value breaks.
        reason: &'static str,
    },
    /// A feature bit we do not know is set in an even (compulsory) position.
    UnknownEvenFeature {
        /// The features field (`invreq_features`, `offer_features`, `invoice_features`).
        field: &'static str,
        /// The bit's number, counted from the least significant bit of the last byte.
        bit: usize,
    },
    /// An invoice needs exactly one `invoice_blindedpay` entry per `invoice_paths` path.
    BlindedPayCount {
        /// How many `invoice_blindedpay` entries the invoice has.
        entries: usize,
        /// How many `invoice_paths` paths it has.
        paths: usize,
    },
}

/// Signature failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// The signature is well-formed but does not verify.
    DoesNotVerify,
    /// The signature bytes are not a BIP-340 signature (64 bytes).
    Malformed,
}

/// The result of every fallible function of the byte layer.
pub type Result<T> = std::result::Result<T, Error>;

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Error::Decode(e)
    }
}
impl From<StringError> for Error {
    fn from(e: StringError) -> Self {
        Error::Decode(DecodeError::String(e))
    }
}
impl From<TlvError> for Error {
    fn from(e: TlvError) -> Self {
        Error::Decode(DecodeError::Tlv(e))
    }
}
impl From<SemanticError> for Error {
    fn from(e: SemanticError) -> Self {
        Error::Decode(DecodeError::Semantic(e))
    }
}
impl From<SignatureError> for Error {
    fn from(e: SignatureError) -> Self {
        Error::Signature(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Decode(e) => e.fmt(f),
            Error::Signature(e) => e.fmt(f),
            Error::InvalidField { field, reason } => write!(f, "{field}: {reason}"),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::String(e) => e.fmt(f),
            DecodeError::Tlv(e) => e.fmt(f),
            DecodeError::Semantic(e) => e.fmt(f),
        }
    }
}

impl fmt::Display for StringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StringError::MisplacedPlus { position } => {
                write!(f, "'+' at position {position} is not between two bech32 characters")
            }
            StringError::MixedCase => f.write_str("mixed upper and lower case"),
            StringError::MissingSeparator => f.write_str("missing '1' separator"),
            StringError::InvalidCharacter { character } => {
                write!(f, "invalid bech32 character {character:?}")
            }
            StringError::InvalidHrp => f.write_str("invalid human-readable part"),
            StringError::WrongHrp { expected, found } => {
                write!(f, "unexpected prefix '{found}', expected '{expected}'")
            }
            StringError::TooMuchPadding => f.write_str("bech32 padding exceeds 4 bits"),
            StringError::NonZeroPadding => f.write_str("bech32 padding bits are not zero"),
        }
    }
}

impl fmt::Display for TlvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlvError::TruncatedType => f.write_str("truncated tlv type"),
            TlvError::TruncatedLength { typ } => write!(f, "truncated length of tlv type {typ}"),
            TlvError::TruncatedValue { typ } => write!(f, "truncated value of tlv type {typ}"),
            TlvError::NonMinimalBigSize => f.write_str("non-minimal bigsize encoding"),
            TlvError::NotAscending { previous, typ } => {
                write!(f, "tlv type {typ} follows type {previous}: types must strictly increase")
            }
        }
    }
}

impl fmt::Display for SemanticError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SemanticError::UnknownEvenType(t) => write!(f, "unknown even type {t}"),
            SemanticError::TypeOutOfRange(t) => {
                write!(f, "type {t} is outside the invoice_request ranges")
            }
            SemanticError::TypeOutOfOfferRanges(t) => {
                write!(f, "type {t} is outside the offer ranges")
            }
            SemanticError::Missing(field) => write!(f, "{field} missing"),
            SemanticError::Unexpected { field, why } => write!(f, "{field} not allowed: {why}"),
            SemanticError::InvalidField { field, reason } => write!(f, "invalid {field}: {reason}"),
            SemanticError::UnknownEvenFeature { field, bit } => {
                write!(f, "unknown even feature bit {bit} in {field}")
            }
            SemanticError::BlindedPayCount { entries, paths } => {
                write!(f, "invoice_blindedpay has {entries} entries for {paths} paths")
            }
        }
    }
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureError::DoesNotVerify => f.write_str("signature does not verify"),
            SignatureError::Malformed => f.write_str("signature is not 64 bytes"),
        }
    }
}

impl std::error::Error for Error {}
