"""A small, independent, pure-Python BOLT 12 oracle, written from the spec text only.

It exists to check the native core (Hypothesis properties compare the two) and to give the
benchmarks a pure-Python baseline. It is deliberately plain: no caching, no cleverness, so
that it is easy to read against BOLT 12 and REFERENCE §1-§3. The product never imports it.

Names mirror ``invreq.bolt12`` for the subset it covers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "BECH32",
    "OracleError",
    "UnsignedInvoiceRequest",
    "bigsize",
    "decode_invoice_request_fields",
    "decode_string",
    "encode_string",
    "encode_tlv_stream",
    "invreq_id",
    "merkle_root",
    "parse_tlv_stream",
    "signature_digest",
    "tagged_hash",
    "tu64",
]

BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
SIGNATURE_RANGE = range(240, 1001)
# offer_* 2..22, invreq_* 0 and 80..90, signature 240 (BOLT 12 invoice_request TLVs)
KNOWN_EVEN = frozenset([0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 80, 82, 84, 86, 88, 90, 240])


class OracleError(ValueError):
    pass


def sha256(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def tagged_hash(tag: bytes, msg: bytes) -> bytes:
    t = sha256(tag)
    return sha256(t + t + msg)


# --- BOLT 1 ---------------------------------------------------------------------------------


def bigsize(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "big")
    if n <= 0xFFFFFFFF:
        return b"\xfe" + n.to_bytes(4, "big")
    return b"\xff" + n.to_bytes(8, "big")


def read_bigsize(b: bytes, i: int) -> tuple[int, int]:
    if i >= len(b):
        raise OracleError("truncated bigsize")
    first = b[i]
    if first < 0xFD:
        return first, i + 1
    width = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
    if i + 1 + width > len(b):
        raise OracleError("truncated bigsize")
    n = int.from_bytes(b[i + 1 : i + 1 + width], "big")
    if n < {2: 0xFD, 4: 0x10000, 8: 0x100000000}[width]:
        raise OracleError("non-minimal bigsize")
    return n, i + 1 + width


def tu64(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def encode_tlv_stream(records: Sequence[tuple[int, bytes]]) -> bytes:
    out = b""
    last = -1
    for t, v in records:
        if t <= last:
            raise OracleError("types must strictly increase")
        last = t
        out += bigsize(t) + bigsize(len(v)) + v
    return out


def parse_tlv_stream(stream: bytes) -> list[tuple[int, bytes]]:
    i = 0
    last = -1
    records = []
    while i < len(stream):
        t, i = read_bigsize(stream, i)
        n, i = read_bigsize(stream, i)
        if t <= last:
            raise OracleError("types must strictly increase")
        if i + n > len(stream):
            raise OracleError("length past the end")
        records.append((t, stream[i : i + n]))
        last = t
        i += n
    return records


def record_bytes(t: int, v: bytes) -> bytes:
    return bigsize(t) + bigsize(len(v)) + v


# --- BOLT 12 merkle -------------------------------------------------------------------------


def merkle_root(stream: bytes) -> bytes:
    records = [(t, v) for t, v in parse_tlv_stream(stream) if t not in SIGNATURE_RANGE]
    if not records:
        raise OracleError("no records")
    first = record_bytes(*parse_tlv_stream(stream)[0])
    level = []
    for t, v in records:
        leaf = tagged_hash(b"LnLeaf", record_bytes(t, v))
        nonce = tagged_hash(b"LnNonce" + first, bigsize(t))
        level.append(_branch(leaf, nonce))
    while len(level) > 1:
        nxt = []
        for k in range(0, len(level) - 1, 2):
            nxt.append(_branch(level[k], level[k + 1]))
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def _branch(a: bytes, b: bytes) -> bytes:
    lo, hi = (a, b) if a < b else (b, a)
    return tagged_hash(b"LnBranch", lo + hi)


def signature_digest(messagename: str, fieldname: str, root: bytes) -> bytes:
    return tagged_hash(b"lightning" + messagename.encode() + fieldname.encode(), root)


def invreq_id(stream: bytes) -> bytes:
    kept = b"".join(
        record_bytes(t, v)
        for t, v in parse_tlv_stream(stream)
        if t <= 159 or 1_000_000_000 <= t <= 2_999_999_999
    )
    return sha256(kept)


# --- strings (bech32, no checksum) ----------------------------------------------------------


def encode_string(hrp: str, data: bytes) -> str:
    bits = "".join(f"{byte:08b}" for byte in data)
    bits += "0" * (-len(bits) % 5)
    return hrp + "1" + "".join(BECH32[int(bits[k : k + 5], 2)] for k in range(0, len(bits), 5))


def decode_string(s: str) -> tuple[str, bytes]:
    if s != s.lower() and s != s.upper():
        raise OracleError("mixed case")
    s = s.lower()
    # '+' followed by optional whitespace joins two parts; it must stand between data.
    parts = s.split("+")
    if len(parts) > 1:
        joined = parts[0]
        for p in parts[1:]:
            p = p.lstrip(" \t\r\n")
            if not p or not joined:
                raise OracleError("misplaced +")
            joined += p
        s = joined
    if "1" not in s:
        raise OracleError("no separator")
    hrp, data = s.rsplit("1", 1)
    if not hrp:
        raise OracleError("empty hrp")
    bits = ""
    for c in data:
        k = BECH32.find(c)
        if k < 0:
            raise OracleError(f"bad character {c!r}")
        bits += f"{k:05b}"
    pad = len(bits) % 8
    if pad > 4 or (pad and "1" in bits[-pad:]):
        raise OracleError("bad padding")
    if pad:
        bits = bits[:-pad]
    return hrp, bytes(int(bits[k : k + 8], 2) for k in range(0, len(bits), 8))


# --- invoice_request ------------------------------------------------------------------------


class UnsignedInvoiceRequest:
    """The unsigned records ``invoicerequest`` writes (REFERENCE §1), built by hand."""

    def __init__(
        self,
        *,
        metadata: bytes,
        description: str,
        amount_msat: int,
        payer_id: bytes,
        absolute_expiry: int | None = None,
        issuer: str | None = None,
        chain: bytes | None = None,
        unknown_records: Sequence[tuple[int, bytes]] = (),
    ) -> None:
        records: list[tuple[int, bytes]] = [(0, metadata), (10, description.encode())]
        if absolute_expiry is not None:
            records.append((14, tu64(absolute_expiry)))
        if issuer is not None:
            records.append((18, issuer.encode()))
        if chain is not None:
            records.append((80, chain))
        records.append((82, tu64(amount_msat)))
        records.append((88, payer_id))
        records.extend(unknown_records)
        records.sort()
        self.records = records
        self.tlv_stream = encode_tlv_stream(records)
        self.merkle_root = merkle_root(self.tlv_stream)
        self.digest = signature_digest("invoice_request", "signature", self.merkle_root)
        self.invreq_id = invreq_id(self.tlv_stream)

    def bolt12(self, signature: bytes) -> str:
        """The ``lnr1...`` string with ``signature`` attached (not verified here)."""
        return encode_string("lnr", self.signed_stream(signature))

    def signed_stream(self, signature: bytes) -> bytes:
        # Type 240 goes in order: before any experimental (>= 1e9) record.
        return encode_tlv_stream(sorted([*self.records, (240, signature)]))


def decode_invoice_request_fields(s: str) -> dict[int, bytes]:
    """Decode and check the structure of an ``lnr`` string (no signature check): the
    records by type. Raises ``OracleError`` on a broken rule of REFERENCE §3 and §7 that
    needs no curve arithmetic."""
    hrp, data = decode_string(s)
    if hrp != "lnr":
        raise OracleError("not lnr")
    fields = dict(parse_tlv_stream(data))
    for t in fields:
        allowed = t <= 159 or 1_000_000_000 <= t <= 2_999_999_999 or t in SIGNATURE_RANGE
        if not allowed:
            raise OracleError(f"type {t} out of range")
        if t % 2 == 0 and t not in KNOWN_EVEN:
            raise OracleError(f"unknown even type {t}")
    for required in (0, 88, 82, 240):
        if required not in fields:
            raise OracleError(f"type {required} missing")
    for forbidden in (2, 12, 20):
        if forbidden in fields:
            raise OracleError(f"type {forbidden} present")
    if len(fields[88]) != 33 or len(fields[240]) != 64:
        raise OracleError("bad key or signature length")
    return fields
