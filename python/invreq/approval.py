"""The approval text a device signs for ``--approver hwi``, and the check of its signature.

The text is what a person reads on the device before agreeing to a payout, so no field may
change what the other lines say. Its layout is fixed (``LINES`` lines, in this order):

    invreq approval v1
    network: regtest
    amount: 5000000000 msat = 5000000 sat = 0.05000000 BTC
    description (8 chars): approved
    issuer: absent                       | issuer (3 chars): atm
    expires: never                       | expires: 2026-12-02 00:00:00 UTC
    invreq_id:
    3f0c...                              (64 hex digits, alone on the last line)

Untrusted text (description, issuer) only ever ends a line our code started, and it is
shown in printable ASCII: every other character (line breaks of any kind, carriage return,
tab, backspace, other controls, bidi overrides, zero-width and other invisible characters,
anything non-ASCII) becomes ``\\u{hex}``, and a backslash becomes ``\\\\``, so no field can
start a line, end one early, or hide part of one. A field longer than its cap is cut, and
the line says so with the true length: ``description (60000 chars, first 32 shown): ...``.

The invreq_id is read by position (the last line of a text with exactly ``LINES`` lines),
never by searching for a label that a field could imitate.

A signature is a BIP-137 Bitcoin signed message over exactly the UTF-8 text.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
from typing import Any

from coincurve import PublicKey

from invreq.oneline import escape

__all__ = [
    "DESCRIPTION_CAP",
    "HEADER",
    "ISSUER_CAP",
    "LINES",
    "approval_text",
    "bitcoin_message_digest",
    "escape",
    "invreq_id_of",
    "recover_bip137",
    "verify_approval",
]

HEADER = "invreq approval v1"
LINES = 8
#: Shown characters (after escaping) of the untrusted fields; the rest is counted, not shown.
DESCRIPTION_CAP = 160
ISSUER_CAP = 64
_MSAT_PER_SAT = 1000
_MSAT_PER_BTC = 100_000_000_000


def _field(name: str, value: str | None, cap: int) -> str:
    if value is None:
        return f"{name}: absent"
    shown: list[str] = []
    used = 0
    for count, c in enumerate(value):
        e = escape(c)
        if used + len(e) > cap:
            return f"{name} ({len(value)} chars, first {count} shown): {''.join(shown)}"
        shown.append(e)
        used += len(e)
    return f"{name} ({len(value)} chars): {''.join(shown)}"


def _decimal(msat: int, unit: int, min_places: int) -> str:
    """``msat / unit`` exactly, with at least ``min_places`` decimals (none if 0)."""
    whole, frac = divmod(msat, unit)
    places = len(str(unit)) - 1
    digits = str(frac).rjust(places, "0").rstrip("0")
    digits = digits.ljust(min_places, "0")
    return f"{whole}.{digits}" if digits else str(whole)


def amount_line(msat: int) -> str:
    sat = _decimal(msat, _MSAT_PER_SAT, 0)
    btc = _decimal(msat, _MSAT_PER_BTC, 8)
    return f"amount: {msat} msat = {sat} sat = {btc} BTC"


def expiry_line(absolute_expiry: int | None) -> str:
    if absolute_expiry is None:
        return "expires: never"
    try:
        when = datetime.datetime.fromtimestamp(absolute_expiry, datetime.UTC)
    except (OverflowError, ValueError, OSError):  # beyond year 9999
        return f"expires: {absolute_expiry} seconds after 1970-01-01 00:00:00 UTC"
    return f"expires: {when:%Y-%m-%d %H:%M:%S} UTC"


def approval_text(
    *,
    network: str,
    amount_msat: int,
    description: str,
    issuer: str | None,
    absolute_expiry: int | None,
    invreq_id: str,
) -> str:
    """What the approving device shows and signs (layout in the module docstring)."""
    lines = [
        HEADER,
        f"network: {escape(network)}",
        amount_line(amount_msat),
        _field("description", description, DESCRIPTION_CAP),
        _field("issuer", issuer, ISSUER_CAP),
        expiry_line(absolute_expiry),
        "invreq_id:",
        invreq_id,
    ]
    text = "\n".join(lines)
    # Our own lines and escaped fields hold no line break: a failure here is a bug of ours.
    assert invreq_id_of(text) == invreq_id, "approval text layout broken"
    return text


def invreq_id_of(text: str) -> str | None:
    """The invreq_id an approval text is about, by position; None if the layout is not ours."""
    lines = text.split("\n")
    if len(lines) != LINES or lines[0] != HEADER or lines[-2] != "invreq_id:":
        return None
    last = lines[-1]
    if len(last) != 64 or any(c not in "0123456789abcdef" for c in last):
        return None
    return last


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


def recover_bip137(message: str, signature_b64: object) -> bytes | None:
    """The compressed public key that made this BIP-137 signature of ``message``, or None
    if it is not a well-formed signature (base64 of 65 bytes, header 27..42)."""
    if not isinstance(signature_b64, str):
        return None
    try:
        sig = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(sig) != 65 or not 27 <= sig[0] <= 42:
        return None
    recid = (sig[0] - 27) & 3
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
