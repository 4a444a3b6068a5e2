"""The signer interface: where the BIP-340 signature of an invoice_request comes from.

A signer receives the whole unsigned TLV stream (not only the digest) so a device can
recompute the merkle root and show what it signs. The service verifies every returned
signature against ``payer_id`` before anything is stored (``UnsignedInvoiceRequest.
with_signature`` refuses a bad one), so a faulty signer can never produce a stored record.
"""

from __future__ import annotations

from typing import Any, Protocol

from invreq.errors import StartupError

__all__ = ["Approver", "Signer", "StartupError"]


class Signer(Protocol):
    #: 33-byte compressed public key: the invreq_payer_id of every request it signs.
    payer_id: bytes
    #: How the key is identified in records, e.g. "software:<hex>" or "hwi:<fp>/<path>".
    key_id: str
    #: What kind of signer it is ("software", "hwi"): what getinfo reports.
    kind: str

    async def sign_invoice_request(self, unsigned_tlv: bytes, digest: bytes) -> bytes:
        """Return the 64-byte BIP-340 signature of ``digest``.

        ``digest`` is H("lightning"||"invoice_request"||"signature", merkle_root(unsigned_tlv)).
        Raises ``invreq.errors.SignerError`` when it cannot sign (refused, busy, timeout).
        """

    async def close(self) -> None: ...


class Approver(Protocol):
    """Something that must agree to each request before it is signed (``--approver``), or
    to each payment before it is sent (``--payout-approver``)."""

    #: the approval key (compressed, pinned at start): every approval is checked against it
    pubkey: bytes

    async def approve(self, text: str) -> dict[str, Any]:
        """Return the evidence of approval (stored with the record and listed), or raise
        ``SignerError`` when it is declined, times out or fails: then nothing is stored.

        The evidence holds ``message`` (exactly ``text``), ``signature`` (BIP-137) and
        ``pubkey`` (hex, the key the approver verified it against); the service checks
        again that it signs ``text`` and names this request (:mod:`invreq.approval`)."""

    async def close(self) -> None: ...
