"""BIP-32 private derivation and extended-key serialisation, only as the device needs it.

The device holds a seed and answers ``get_xpub`` and signs with keys at a path, so it needs
CKDpriv (hardened and normal), the key fingerprint and the Base58Check encoding of extended
keys; nothing here derives from a public parent. Point arithmetic is left to coincurve
(libsecp256k1); the scalar addition is plain integer arithmetic modulo the group order.

Correctness is pinned by the official BIP-32 test vectors in ``tests/test_refdevice.py``,
not by agreement with another implementation of ours.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field

from coincurve import PrivateKey

__all__ = [
    "HARDENED",
    "ExtendedPrivateKey",
    "InvalidKeyError",
    "base58check",
    "format_path",
    "hash160",
    "parse_path",
]

HARDENED = 0x8000_0000

# Order of the secp256k1 group (SEC 2, section 2.4.1). A wrong constant here still lets two
# of our own implementations agree, which is why the tests use the published vectors.
_N = 0xFFFFFFFF_FFFFFFFF_FFFFFFFF_FFFFFFFE_BAAEDCE6_AF48A03B_BFD25E8C_D0364141

# Version bytes of BIP-32 serialisation: mainnet xpub/xprv, testnet tpub/tprv.
_VERSION_PUB = {False: 0x0488B21E, True: 0x043587CF}
_VERSION_PRV = {False: 0x0488ADE4, True: 0x04358394}

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


class InvalidKeyError(ValueError):
    """A derivation step produced an invalid key (probability below 2^-127 per step).

    BIP-32 tells a wallet to skip to the next index; a device asked for an explicit path
    cannot choose another one, so it refuses instead.
    """


def hash160(data: bytes) -> bytes:
    """RIPEMD160(SHA256(data)): the identifier BIP-32 takes fingerprints from."""
    return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()


def base58check(payload: bytes) -> str:
    """Base58 of ``payload`` followed by the first 4 bytes of its double SHA-256."""
    data = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58_ALPHABET[r])
    # Each leading zero byte is written as a '1': base58 of the integer alone would drop it.
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(out))


def parse_path(text: str) -> list[int]:
    """``m/0H/1/2h/3'`` -> child numbers; hardened markers are ``H``, ``h`` or ``'``."""
    parts = text.strip().split("/")
    if parts[0] != "m":
        raise ValueError(f"path must start with 'm': {text!r}")
    path = []
    for part in parts[1:]:
        hardened = part[-1:] in ("H", "h", "'")
        digits = part[:-1] if hardened else part
        if not digits.isdecimal() or int(digits) >= HARDENED:
            raise ValueError(f"bad path element {part!r} in {text!r}")
        path.append(int(digits) + (HARDENED if hardened else 0))
    return path


def format_path(path: Iterable[int]) -> str:
    """Child numbers -> ``m/9735h/0h``, the notation the console shows."""
    return "/".join(["m"] + [f"{i - HARDENED}h" if i >= HARDENED else str(i) for i in path])


@dataclass(frozen=True, slots=True)
class ExtendedPrivateKey:
    """A node of the BIP-32 tree: private key, chain code and the metadata of its position."""

    secret: bytes = field(repr=False)
    chain_code: bytes = field(repr=False)
    depth: int = 0
    parent_fingerprint: bytes = bytes(4)
    child_number: int = 0

    @classmethod
    def from_seed(cls, seed: bytes) -> ExtendedPrivateKey:
        """The master node: HMAC-SHA512 keyed with ``Bitcoin seed``."""
        if not 16 <= len(seed) <= 64:
            raise ValueError(f"a BIP-32 seed has 16 to 64 bytes, not {len(seed)}")
        i = hmac.digest(b"Bitcoin seed", seed, "sha512")
        k = int.from_bytes(i[:32], "big")
        if not 0 < k < _N:
            raise InvalidKeyError("this seed gives an invalid master key")
        return cls(secret=i[:32], chain_code=i[32:])

    @property
    def public_key(self) -> bytes:
        """The 33-byte compressed public key."""
        return PrivateKey(self.secret).public_key.format(compressed=True)

    @property
    def fingerprint(self) -> bytes:
        """First 4 bytes of HASH160 of the public key; of the master it is the wallet's."""
        return hash160(self.public_key)[:4]

    def child(self, index: int) -> ExtendedPrivateKey:
        """CKDpriv: hardened indices commit to the private key, normal ones to the public."""
        if not 0 <= index <= 0xFFFF_FFFF:
            raise ValueError(f"child index out of range: {index}")
        if index >= HARDENED:
            data = b"\0" + self.secret + index.to_bytes(4, "big")
        else:
            data = self.public_key + index.to_bytes(4, "big")
        i = hmac.digest(self.chain_code, data, "sha512")
        tweak = int.from_bytes(i[:32], "big")
        k = (tweak + int.from_bytes(self.secret, "big")) % _N
        if tweak >= _N or k == 0:
            raise InvalidKeyError(f"child {index} of this key is invalid")
        return ExtendedPrivateKey(
            secret=k.to_bytes(32, "big"),
            chain_code=i[32:],
            depth=self.depth + 1,
            parent_fingerprint=self.fingerprint,
            child_number=index,
        )

    def derive(self, path: Iterable[int]) -> ExtendedPrivateKey:
        key = self
        for index in path:
            key = key.child(index)
        return key

    def _serialise(self, version: int, key_data: bytes) -> str:
        if self.depth > 255:
            raise ValueError("BIP-32 serialises depths up to 255 only")
        payload = (
            version.to_bytes(4, "big")
            + bytes([self.depth])
            + self.parent_fingerprint
            + self.child_number.to_bytes(4, "big")
            + self.chain_code
            + key_data
        )
        return base58check(payload)

    def xpub(self, *, testnet: bool = False) -> str:
        """The extended public key (``xpub...``, or ``tpub...`` for test networks)."""
        return self._serialise(_VERSION_PUB[testnet], self.public_key)

    def xprv(self, *, testnet: bool = False) -> str:
        """The extended private key (``xprv...`` / ``tprv...``); the device never sends it."""
        return self._serialise(_VERSION_PRV[testnet], b"\0" + self.secret)
