//! BigSize and TLV streams (BOLT 1 "Type-Length-Value Format").
//!
//! Readers enforce what BOLT 1 requires of every stream: minimal BigSize for types and
//! lengths, strictly increasing types, values inside the stream. Which types are known, and
//! what to do with unknown even ones, is the business of the message layer above.

use crate::error::{Result, SemanticError, TlvError};

/// One record of a stream, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The record's type.
    pub typ: u64,
    /// The record's value, without type and length.
    pub value: &'a [u8],
    /// The whole record as it stands in the stream: type, length and value.
    pub raw: &'a [u8],
    /// The encoded type alone (the `tlv-type` of the merkle nonce leaf).
    pub type_bytes: &'a [u8],
}

/// Reads one BigSize from the front of `buf`: the value and how many bytes it took.
///
/// Returns `None` when `buf` is too short; refuses non-minimal encodings.
pub fn read_bigsize(buf: &[u8]) -> std::result::Result<Option<(u64, usize)>, TlvError> {
    let Some(&first) = buf.first() else { return Ok(None) };
    let (value, len, min) = match first {
        0xfd => {
            let Some(b) = buf.get(1..3) else { return Ok(None) };
            (u64::from(u16::from_be_bytes([b[0], b[1]])), 3, 0xfd)
        }
        0xfe => {
            let Some(b) = buf.get(1..5) else { return Ok(None) };
            (u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])), 5, 0x1_0000)
        }
        0xff => {
            let Some(b) = buf.get(1..9) else { return Ok(None) };
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            (u64::from_be_bytes(a), 9, 0x1_0000_0000)
        }
        v => return Ok(Some((u64::from(v), 1))),
    };
    if value < min {
        return Err(TlvError::NonMinimalBigSize);
    }
    Ok(Some((value, len)))
}

/// Appends the minimal BigSize encoding of `v`.
pub fn write_bigsize(out: &mut Vec<u8>, v: u64) {
    match v {
        0..=0xfc => out.push(v as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(v as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(v as u32).to_be_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

/// The length of the minimal BigSize encoding of `v`.
pub fn bigsize_len(v: u64) -> usize {
    match v {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// Appends one record.
pub fn write_record(out: &mut Vec<u8>, typ: u64, value: &[u8]) {
    write_bigsize(out, typ);
    write_bigsize(out, value.len() as u64);
    out.extend_from_slice(value);
}

/// The size `write_record` will append.
pub fn record_len(typ: u64, value_len: usize) -> usize {
    bigsize_len(typ) + bigsize_len(value_len as u64) + value_len
}

/// tu64 (BOLT 1): big-endian, no leading zero bytes; zero is the empty value.
pub fn tu64_bytes(v: u64) -> ([u8; 8], usize) {
    let bytes = v.to_be_bytes();
    let skip = (v.leading_zeros() / 8) as usize;
    (bytes, skip)
}

/// Appends a record whose value is `v` as tu64.
pub fn write_tu64_record(out: &mut Vec<u8>, typ: u64, v: u64) {
    let (bytes, skip) = tu64_bytes(v);
    write_record(out, typ, &bytes[skip..]);
}

/// Reads a tu64 value, refusing leading zeros and more than 8 bytes.
pub fn read_tu64(field: &'static str, value: &[u8]) -> Result<u64> {
    if value.len() > 8 {
        return Err(
            SemanticError::InvalidField { field, reason: "tu64 longer than 8 bytes" }.into()
        );
    }
    if value.first() == Some(&0) {
        return Err(
            SemanticError::InvalidField { field, reason: "tu64 not minimally encoded" }.into()
        );
    }
    Ok(value.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// Iterates over the records of a stream, checking framing as it goes.
///
/// Yields an error once and then stops.
pub struct Records<'a> {
    rest: &'a [u8],
    previous: Option<u64>,
    failed: bool,
}

/// Reads the records of `stream` lazily (no allocation).
pub fn records(stream: &[u8]) -> Records<'_> {
    Records { rest: stream, previous: None, failed: false }
}

impl<'a> Records<'a> {
    fn next_record(&mut self) -> std::result::Result<Record<'a>, TlvError> {
        let start = self.rest;
        let (typ, tlen) = read_bigsize(start)?.ok_or(TlvError::TruncatedType)?;
        let (len, llen) = read_bigsize(&start[tlen..])?.ok_or(TlvError::TruncatedLength { typ })?;
        if let Some(previous) = self.previous {
            if typ <= previous {
                return Err(TlvError::NotAscending { previous, typ });
            }
        }
        let header = tlen + llen;
        let avail = (start.len() - header) as u64;
        if len > avail {
            return Err(TlvError::TruncatedValue { typ });
        }
        let end = header + len as usize;
        self.previous = Some(typ);
        self.rest = &start[end..];
        Ok(Record {
            typ,
            value: &start[header..end],
            raw: &start[..end],
            type_bytes: &start[..tlen],
        })
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = std::result::Result<Record<'a>, TlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let r = self.next_record();
        self.failed = r.is_err();
        Some(r)
    }
}

/// Parses a whole stream into owned `(type, value)` pairs.
pub fn parse_stream(stream: &[u8]) -> Result<Vec<(u64, Vec<u8>)>> {
    let mut out = Vec::new();
    for r in records(stream) {
        let r = r?;
        out.push((r.typ, r.value.to_vec()));
    }
    Ok(out)
}

/// Encodes records, which must have strictly increasing types.
pub fn encode_stream(recs: &[(u64, &[u8])]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(recs.iter().map(|(t, v)| record_len(*t, v.len())).sum());
    let mut previous: Option<u64> = None;
    for &(typ, value) in recs {
        if let Some(p) = previous {
            if typ <= p {
                return Err(TlvError::NotAscending { previous: p, typ }.into());
            }
        }
        previous = Some(typ);
        write_record(&mut out, typ, value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bigsize_round_trips_at_every_boundary() {
        for v in [0u64, 0xfc, 0xfd, 0xffff, 0x1_0000, 0xffff_ffff, 0x1_0000_0000, u64::MAX] {
            let mut out = Vec::new();
            write_bigsize(&mut out, v);
            assert_eq!(out.len(), bigsize_len(v));
            assert_eq!(read_bigsize(&out).unwrap(), Some((v, out.len())));
        }
    }

    #[test]
    fn bigsize_refuses_non_minimal_forms() {
        // BOLT 1 test vectors "decoding" failures.
        for hex in ["fd00fc", "fe0000ffff", "ff00000000ffffffff"] {
            let b = hex::decode(hex).unwrap();
            assert_eq!(read_bigsize(&b), Err(TlvError::NonMinimalBigSize), "{hex}");
        }
    }

    #[test]
    fn bigsize_reports_short_input() {
        for hex in ["fd00", "feffff", "ffffffffff", ""] {
            let b = hex::decode(hex).unwrap();
            assert_eq!(read_bigsize(&b), Ok(None), "{hex}");
        }
    }

    #[test]
    fn tu64_is_minimal_big_endian() {
        let (b, skip) = tu64_bytes(1000);
        assert_eq!(&b[skip..], &[0x03, 0xe8]);
        let (_, skip) = tu64_bytes(0);
        assert_eq!(skip, 8);
        assert_eq!(read_tu64("x", &[0x03, 0xe8]).unwrap(), 1000);
        assert_eq!(read_tu64("x", &[]).unwrap(), 0);
        assert!(read_tu64("x", &[0, 1]).is_err());
        assert!(read_tu64("x", &[1; 9]).is_err());
    }

    #[test]
    fn stream_framing_errors_are_named() {
        let cases: [(&str, TlvError); 5] = [
            ("0201", TlvError::TruncatedValue { typ: 2 }),
            ("02", TlvError::TruncatedLength { typ: 2 }),
            ("fd01", TlvError::TruncatedType),
            ("02000100", TlvError::NotAscending { previous: 2, typ: 1 }),
            ("02000200", TlvError::NotAscending { previous: 2, typ: 2 }),
        ];
        for (hex, want) in cases {
            let b = hex::decode(hex).unwrap();
            assert_eq!(parse_stream(&b), Err(want.into()), "{hex}");
        }
    }

    #[test]
    fn stream_round_trips() {
        let recs: Vec<(u64, &[u8])> = vec![(0, b"abc"), (253, b""), (70000, &[7u8; 300])];
        let enc = encode_stream(&recs).unwrap();
        let dec = parse_stream(&enc).unwrap();
        assert_eq!(dec.len(), 3);
        for ((t1, v1), (t2, v2)) in recs.iter().zip(dec.iter()) {
            assert_eq!(t1, t2);
            assert_eq!(*v1, v2.as_slice());
        }
    }
}
