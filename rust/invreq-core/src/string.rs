//! The bolt12 text form (BOLT 12 "Encoding"): bech32 characters without a checksum.
//!
//! The `bech32` crate does the alphabet, the case check and the 5-to-8-bit regrouping;
//! this module adds what BOLT 12 has beyond BIP-173: the `+` continuation, the absence of a
//! checksum (so no length limit), and the padding rule applied to a string without one.

use bech32::primitives::decode::{CharError, UncheckedHrpstringError};
use bech32::primitives::decode::{CheckedHrpstring, CheckedHrpstringError, PaddingError};
use bech32::{Hrp, NoChecksum};

use crate::error::{Result, StringError};

/// Encodes `data` as `hrp1...` in lower case, without checksum and without `+`.
pub fn encode(hrp: &str, data: &[u8]) -> Result<String> {
    let parsed = Hrp::parse(hrp).map_err(|_| StringError::InvalidHrp)?;
    // NoChecksum has no length limit, so encoding cannot fail past the HRP check.
    bech32::encode_lower::<NoChecksum>(parsed, data).map_err(|_| StringError::InvalidHrp.into())
}

/// Removes each `+` and the whitespace after it, when it stands between two characters of
/// the string proper; refuses a leading or trailing `+` and `++`.
///
/// Returns the input unchanged (borrowed) in the common case of no `+` at all.
fn join_plus(s: &str) -> Result<std::borrow::Cow<'_, str>> {
    if !s.contains('+') {
        return Ok(std::borrow::Cow::Borrowed(s));
    }
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c != b'+' {
            out.push(c as char);
            i += 1;
            continue;
        }
        let before_ok = i > 0 && b[i - 1].is_ascii_alphanumeric();
        let mut j = i + 1;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        let after_ok = j < b.len() && b[j].is_ascii_alphanumeric();
        if !before_ok || !after_ok {
            return Err(StringError::MisplacedPlus { position: i }.into());
        }
        i = j;
    }
    Ok(std::borrow::Cow::Owned(out))
}

/// Decodes a bolt12 string: returns the lower-case human-readable part and the bytes.
pub fn decode(s: &str) -> Result<(String, Vec<u8>)> {
    let joined = join_plus(s)?;
    if let Some(c) = joined.chars().find(|c| !c.is_ascii()) {
        return Err(StringError::InvalidCharacter { character: c }.into());
    }
    let checked = CheckedHrpstring::new::<NoChecksum>(&joined).map_err(string_error)?;
    checked.validate_segwit_padding().map_err(|e| match e {
        PaddingError::TooMuch => StringError::TooMuchPadding,
        _ => StringError::NonZeroPadding,
    })?;
    let hrp = checked.hrp().to_lowercase();
    Ok((hrp, checked.byte_iter().collect()))
}

/// Decodes a string that must carry the human-readable part `expected`.
pub fn decode_with_hrp(s: &str, expected: &'static str) -> Result<Vec<u8>> {
    let (hrp, data) = decode(s)?;
    if hrp != expected {
        return Err(StringError::WrongHrp { expected, found: hrp }.into());
    }
    Ok(data)
}

fn string_error(e: CheckedHrpstringError) -> crate::error::Error {
    let CheckedHrpstringError::Parse(unchecked) = e else {
        // Checksum errors cannot happen with NoChecksum; never panic on input.
        return StringError::InvalidHrp.into();
    };
    match unchecked {
        UncheckedHrpstringError::Char(c) => match c {
            CharError::MissingSeparator => StringError::MissingSeparator,
            CharError::MixedCase => StringError::MixedCase,
            CharError::InvalidChar(ch) => StringError::InvalidCharacter { character: ch },
            CharError::NothingAfterSeparator => StringError::MissingSeparator,
            _ => StringError::InvalidCharacter { character: '?' },
        },
        _ => StringError::InvalidHrp,
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "lno1pqps7sjqpgtyzm3qv4uxzmtsd3jjqer9wd3hy6tsw35k7msjzfpy7nz5yqcnygrfdej82um5wf5k2uckyypwa3eyt44h6txtxquqh7lz5djge4afgfjn7k4rgrkuag0jsd5xvxg";

    #[test]
    fn round_trips_lower_case() {
        let (hrp, data) = decode(OFFER).unwrap();
        assert_eq!(hrp, "lno");
        assert_eq!(encode(&hrp, &data).unwrap(), OFFER);
    }

    #[test]
    fn upper_case_decodes_to_the_same_bytes() {
        assert_eq!(decode(&OFFER.to_uppercase()).unwrap(), decode(OFFER).unwrap());
    }

    #[test]
    fn plus_and_whitespace_are_removed_between_characters() {
        let split = "lno1pqps7sjqpgt+ yzm3qv4uxzmtsd3jjqer9wd3hy6tsw3+  5k7msjzfpy7nz5yqcn+\nygrfdej82um5wf5k2uckyypwa3eyt44h6txtxquqh7lz5djge4afgfjn7k4rgrkuag0jsd+\r\n 5xvxg";
        assert_eq!(decode(split).unwrap(), decode(OFFER).unwrap());
        assert_eq!(decode(&format!("l+{}", &OFFER[1..])).unwrap(), decode(OFFER).unwrap());
    }

    #[test]
    fn misplaced_plus_is_refused() {
        for bad in [
            format!("{OFFER}+"),
            format!("{OFFER}+ "),
            format!("+{OFFER}"),
            format!("+ {OFFER}"),
            format!("ln++{}", &OFFER[2..]),
        ] {
            assert!(
                matches!(
                    decode(&bad),
                    Err(crate::error::Error::Decode(crate::error::DecodeError::String(
                        StringError::MisplacedPlus { .. }
                    )))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn mixed_case_is_refused() {
        assert_eq!(decode("lnO1qq"), Err(StringError::MixedCase.into()));
    }

    #[test]
    fn padding_rules_are_enforced() {
        // 'q' = 0: two characters are 10 bits, one byte and 2 zero bits: fine.
        assert_eq!(decode("lnr1qq").unwrap().1, vec![0u8]);
        // 'p' = 1: the 2 left-over bits are not zero.
        assert_eq!(decode("lnr1qp"), Err(StringError::NonZeroPadding.into()));
        // Three characters: 15 bits, one byte and 7 left over: too much padding.
        assert_eq!(decode("lnr1qqq"), Err(StringError::TooMuchPadding.into()));
    }

    #[test]
    fn wrong_prefix_is_named() {
        let e = decode_with_hrp(OFFER, "lnr").unwrap_err();
        assert_eq!(e.to_string(), "unexpected prefix 'lno', expected 'lnr'");
    }
}
