//! Chain hashes as they appear on the wire (byte-reversed from block-explorer order).

/// `(network name, chain hash)` for every network invreq serves.
pub const CHAINS: [(&str, [u8; 32]); 5] = [
    ("bitcoin", hex32("6fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000")),
    ("testnet", hex32("43497fd7f826957108f4a30fd9cec3aeba79972084e90ead01ea330900000000")),
    ("testnet4", hex32("43f08bdab050e35b567c864b91f47f50ae725ae2de53bcfbbaf284da00000000")),
    ("signet", hex32("f61eee3b63a380a477a063af32b2bbc97c9ff9f01f2c4225e973988108000000")),
    ("regtest", hex32("06226e46111a0b59caaf126043eb5bbf28c34f3a5e332a1fc7b2b73cf188910f")),
];

/// The chain hash of `network`, if we know it.
pub fn chain_hash(network: &str) -> Option<[u8; 32]> {
    CHAINS.iter().find(|(n, _)| *n == network).map(|(_, h)| *h)
}

/// The network whose chain hash is `hash`, if we know it.
pub fn network_of(hash: &[u8]) -> Option<&'static str> {
    CHAINS.iter().find(|(_, h)| h.as_slice() == hash).map(|(n, _)| *n)
}

/// The `invreq_chain` to write for `network`: `Some(None)` for bitcoin (BOLT 12: a request
/// for bitcoin omits the field), `Some(Some(hash))` otherwise, `None` for an unknown network.
pub fn invreq_chain_for(network: &str) -> Option<Option<[u8; 32]>> {
    let hash = chain_hash(network)?;
    Some((network != "bitcoin").then_some(hash))
}

/// The network an `invreq_chain` value names (absent means bitcoin), if we know it.
pub fn network_of_invreq_chain(chain: Option<&[u8]>) -> Option<&'static str> {
    match chain {
        None => Some("bitcoin"),
        Some(hash) => network_of(hash),
    }
}

const fn hex32(s: &str) -> [u8; 32] {
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("not a lower-case hex digit"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bitcoin_chain_is_the_reversed_genesis_hash() {
        let mut h = super::chain_hash("bitcoin").unwrap();
        h.reverse();
        assert_eq!(
            hex::encode(h),
            "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
        );
        assert_eq!(super::network_of(&super::chain_hash("regtest").unwrap()), Some("regtest"));
        assert_eq!(super::chain_hash("mainnet"), None);
    }

    #[test]
    fn bitcoin_omits_invreq_chain_and_absence_means_bitcoin() {
        assert_eq!(super::invreq_chain_for("bitcoin"), Some(None));
        let regtest = super::chain_hash("regtest").unwrap();
        assert_eq!(super::invreq_chain_for("regtest"), Some(Some(regtest)));
        assert_eq!(super::invreq_chain_for("mainnet"), None);
        assert_eq!(super::network_of_invreq_chain(None), Some("bitcoin"));
        assert_eq!(super::network_of_invreq_chain(Some(&regtest)), Some("regtest"));
        assert_eq!(super::network_of_invreq_chain(Some(&[0; 32])), None);
    }
}
