"""The approval text a device signs for ``--approver hwi``, and the check of its signature.

The text is what a person reads on the device before agreeing to a payout, so no field may
change what the other lines say, on a screen of any width. Layout (version 2):

    invreq approval v2
    network: regtest
    amount: 5000000000 msat
    = 5000000 sat
    = 0.05000000 BTC
    payouts: up to 2                 | payouts: single use | payouts: UNLIMITED
    in all: up to 10000000000 msat   | in all: 5000000000 msat | in all: NO LIMIT
    payouts until: never             | payouts until: 2026-12-02 00:00:00 UTC
    expires: never                   | expires: 2026-12-02 00:00:00 UTC
    description: 8 chars
    > approved                       (rows of outside text, each starting "> ")
    issuer: absent                   | issuer: 3 chars, then its "> " rows
    invreq_id:
    3f0c...                          (64 hex digits, alone on the last row)

Rows 0-8 are ours at fixed positions (the bound rows come from :mod:`invreq.bound`).
Outside text (description, issuer) only ever appears in rows that start with ``"> "`` and
hold at most :data:`ROW_WIDTH` (24) characters, so a device that wraps at 24 or 80 columns
never wraps them: no run of spaces or of letters can push a fake ``amount:`` to the start
of a screen row. No row of ours starts with ``>``. The outside text is shown in printable
ASCII (:func:`invreq.oneline.escape`: line breaks of any kind, controls, bidi overrides,
invisible and non-ASCII characters become ``\\u{hex}``, a backslash ``\\\\``); an escape is
never split across rows. A field longer than its cap is cut and says so with its true
length: ``description: 60000 chars, first 160 shown``.

The invreq_id is read by position (the last row, after a row ``invreq_id:``), never by
searching for a label that a field could imitate. Version 1 texts (8 rows, no bound, one
row per field) are still read, so approvals stored before version 2 can be checked.

A signature is a BIP-137 Bitcoin signed message over exactly the UTF-8 text, made by a
compressed public key for P2PKH (header bytes 31-34): the only kind a device makes for a
key it shows as a public key; the uncompressed and SegWit headers are refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from coincurve import PublicKey

from invreq.bound import SINGLE_USE, PayoutBound, until_text
from invreq.oneline import escape

__all__ = [
    "DESCRIPTION_CAP",
    "HEADER",
    "HEADER_V1",
    "ISSUER_CAP",
    "ROW_WIDTH",
    "approval_text",
    "bitcoin_message_digest",
    "bound_rows_of",
    "escape",
    "invreq_id_of",
    "payment_hash_of",
    "payout_text",
    "recover_bip137",
    "verify_approval",
]

HEADER = "invreq approval v2"
HEADER_V1 = "invreq approval v1"
LINES_V1 = 8
#: Widest row that holds outside text: no device wrapping at 24 columns or more wraps it.
ROW_WIDTH = 24
_QUOTE = "> "
#: Shown characters (after escaping) of the outside fields; the rest is counted, not shown.
DESCRIPTION_CAP = 160
ISSUER_CAP = 64
#: Rows 0-8 (header to expiry) are ours at fixed positions; the bound is rows 5-7.
_FIXED = 9
_BOUND_ROWS = slice(5, 8)
#: More rows than any text of ours has (the fields are capped): a longer one is not ours.
_MAX_ROWS = 64
_MSAT_PER_SAT = 1000
_MSAT_PER_BTC = 100_000_000_000


def _field(name: str, value: str | None, cap: int) -> list[str]:
    """``name: N chars`` then the value's escaped characters in ``> `` rows of at most
    ROW_WIDTH characters; an escape sequence is never split."""
    if value is None:
        return [f"{name}: absent"]
    rows: list[str] = []
    row = ""
    used = 0
    width = ROW_WIDTH - len(_QUOTE)
    shown = len(value)
    for count, c in enumerate(value):
        e = escape(c)
        if used + len(e) > cap:
            shown = count
            break
        if len(row) + len(e) > width:
            rows.append(_QUOTE + row)
            row = ""
        row += e
        used += len(e)
    if row:
        rows.append(_QUOTE + row)
    if shown < len(value):
        head = f"{name}: {len(value)} chars, first {shown} shown"
    else:
        head = f"{name}: {len(value)} chars"
    return [head, *rows]


def _decimal(msat: int, unit: int, min_places: int) -> str:
    """``msat / unit`` exactly, with at least ``min_places`` decimals (none if 0)."""
    whole, frac = divmod(msat, unit)
    places = len(str(unit)) - 1
    digits = str(frac).rjust(places, "0").rstrip("0")
    digits = digits.ljust(min_places, "0")
    return f"{whole}.{digits}" if digits else str(whole)


def amount_rows(msat: int) -> list[str]:
    return [
        f"amount: {msat} msat",
        f"= {_decimal(msat, _MSAT_PER_SAT, 0)} sat",
        f"= {_decimal(msat, _MSAT_PER_BTC, 8)} BTC",
    ]


def expiry_line(absolute_expiry: int | None) -> str:
    # The same time text as the payout window's line (bound.until_text), to the byte.
    return f"expires: {until_text(absolute_expiry)}"


def approval_text(
    *,
    network: str,
    amount_msat: int,
    description: str,
    issuer: str | None,
    absolute_expiry: int | None,
    invreq_id: str,
    bound: PayoutBound = SINGLE_USE,
) -> str:
    """What the approving device shows and signs (layout in the module docstring)."""
    lines = [
        HEADER,
        f"network: {escape(network)}",
        *amount_rows(amount_msat),
        *bound.rows(amount_msat),
        expiry_line(absolute_expiry),
        *_field("description", description, DESCRIPTION_CAP),
        *_field("issuer", issuer, ISSUER_CAP),
        "invreq_id:",
        invreq_id,
    ]
    text = "\n".join(lines)
    # Our own lines and escaped fields hold no line break: a failure here is a bug of ours.
    assert invreq_id_of(text) == invreq_id, "approval text layout broken"
    return text


PAYOUT_HEADER = "invreq payout v1"
LABEL_CAP = 64
#: Introduction nodes shown; an invoice with more paths says how many more.
PATHS_SHOWN = 4


def payout_text(
    *,
    network: str,
    amount_msat: int,
    fee_limit_msat: int,
    payee_node_id: str,
    introductions: list[str],
    invreq_id: str,
    label: str | None,
    payment_hash: str,
) -> str:
    """What ``--payout-approver hwi`` shows and has signed before a payment is sent::

        invreq payout v1
        network: regtest
        pay: 5000 msat
        = 5 sat
        = 0.00000005 BTC
        fee limit: 5000 msat
        to node:
        03ab...                        (the invoice's node id, 66 hex digits)
        via:
        02cd...                        (each path's introduction node, or "scid 1x2x3/0")
        request:
        3f0c...                        (the invreq_id)
        label: 5 chars                 (or "label: absent"), then its "> " rows
        payment_hash:
        9e9e...                        (64 hex digits, alone on the last row)

    The amount, fee limit, node ids and hashes are ours or checked hex; the label (outside
    text) is quoted like the approval text's fields. The payment is read back by position:
    the last row is its payment_hash."""
    shown = introductions[:PATHS_SHOWN]
    more = len(introductions) - len(shown)
    lines = [
        PAYOUT_HEADER,
        f"network: {escape(network)}",
        f"pay: {amount_msat} msat",
        *amount_rows(amount_msat)[1:],
        f"fee limit: {fee_limit_msat} msat",
        "to node:",
        payee_node_id,
        "via:",
        *(shown or ["direct (no blinded path)"]),
        *([f"and {more} more paths"] if more else []),
        "request:",
        invreq_id,
        *_field("label", label, LABEL_CAP),
        "payment_hash:",
        payment_hash,
    ]
    text = "\n".join(lines)
    assert payment_hash_of(text) == payment_hash, "payout text layout broken"
    return text


def payment_hash_of(text: str) -> str | None:
    """The payment_hash a payout text approves, by position; None if it is not one."""
    lines = text.split("\n")
    if len(lines) < 14 or lines[0] != PAYOUT_HEADER or lines[-2] != "payment_hash:":
        return None
    last = lines[-1]
    if len(last) != 64 or any(c not in "0123456789abcdef" for c in last):
        return None
    return last


def _layout_ok(lines: list[str]) -> bool:
    if lines[0] == HEADER_V1:
        return len(lines) == LINES_V1
    if lines[0] != HEADER or not _FIXED + 4 <= len(lines) <= _MAX_ROWS:
        return False
    # Every row after the fixed ones is a field head, a quoted row, or the id's label.
    return all(
        row.startswith(("description: ", "issuer: ", _QUOTE))
        and (not row.startswith(_QUOTE) or len(row) <= ROW_WIDTH)
        for row in lines[_FIXED:-2]
    )


def invreq_id_of(text: str) -> str | None:
    """The invreq_id an approval text is about, by position; None if the layout is not ours."""
    lines = text.split("\n")
    if len(lines) < LINES_V1 or lines[-2] != "invreq_id:" or not _layout_ok(lines):
        return None
    last = lines[-1]
    if len(last) != 64 or any(c not in "0123456789abcdef" for c in last):
        return None
    return last


def bound_rows_of(text: str) -> list[str] | None:
    """The rows of an approval text that state its payout bound; None for a version 1
    text (which stated none) or a text not in our layout."""
    if invreq_id_of(text) is None:
        return None
    lines = text.split("\n")
    return lines[_BOUND_ROWS] if lines[0] == HEADER else None


def bitcoin_message_digest(message: bytes) -> bytes:
    """BIP-137: SHA256d of ``"\\x18Bitcoin Signed Message:\\n" || compact_size(len) || message``."""
    n = len(message)
    if n < 0xFD:
        size = bytes([n])
    elif n <= 0xFFFF:
        size = b"\xfd" + n.to_bytes(2, "little")
    elif n <= 0xFFFF_FFFF:
        size = b"\xfe" + n.to_bytes(4, "little")
    else:
        size = b"\xff" + n.to_bytes(8, "little")
    data = b"\x18Bitcoin Signed Message:\n" + size + message
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


#: BIP-137 header bytes of a compressed-key P2PKH signature: 31 + recovery id (0-3).
COMPRESSED_P2PKH = range(31, 35)


def recover_bip137(message: str, signature_b64: object) -> bytes | None:
    """The compressed public key that made this BIP-137 signature of ``message``, or None
    if it is not a well-formed compressed-key P2PKH signature (base64 of 65 bytes, header
    31..34). Uncompressed (27..30) and SegWit (35..42) headers name other address kinds
    than the key a device shows: refused, so one signature has one reading."""
    if not isinstance(signature_b64, str):
        return None
    try:
        sig = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(sig) != 65 or sig[0] not in COMPRESSED_P2PKH:
        return None
    recid = sig[0] - 31
    digest = bitcoin_message_digest(message.encode("utf-8"))
    try:
        key = PublicKey.from_signature_and_message(sig[1:] + bytes([recid]), digest, hasher=None)
    except Exception:  # coincurve raises ValueError/Exception for r or s out of range
        return None
    return bytes(key.format(compressed=True))


def verify_approval(evidence: Any, *, invreq_id: str, pubkey: bytes) -> str | None:
    """None if ``evidence`` is an approval of ``invreq_id`` signed by ``pubkey``;
    otherwise why not (one short phrase)."""
    if not isinstance(evidence, dict):
        return "the evidence is not an object"
    message = evidence.get("message")
    if not isinstance(message, str):
        return "no message"
    if invreq_id_of(message) != invreq_id:
        return "the message is not an approval of this invreq_id"
    if recover_bip137(message, evidence.get("signature")) != pubkey:
        return f"the signature is not by {pubkey.hex()} over this message"
    return None
