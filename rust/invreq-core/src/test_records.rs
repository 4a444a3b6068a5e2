//! Editing a list of TLV records, for the unit tests of every message: the reader rules are
//! tested by taking a valid message's records and changing one.

/// `recs` with record `t` set to `v` (replaced if present), types kept ascending.
pub(crate) fn with(mut recs: Vec<(u64, Vec<u8>)>, t: u64, v: Vec<u8>) -> Vec<(u64, Vec<u8>)> {
    recs.retain(|(u, _)| *u != t);
    recs.push((t, v));
    recs.sort_by_key(|(t, _)| *t);
    recs
}

/// `recs` without record `t`.
pub(crate) fn without(mut recs: Vec<(u64, Vec<u8>)>, t: u64) -> Vec<(u64, Vec<u8>)> {
    recs.retain(|(u, _)| *u != t);
    recs
}
