"""What the device shows before it signs an invoice_request, read from the TLV records.

The device decodes the few fields a person needs to decide (what, how much, to whom, until
when, on which chain) from the records it was sent, not from anything the host says about
them. A field it cannot read unambiguously is an error, never shown approximately: an
amount shown wrong is worse than a refusal.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from invreq import bolt12

__all__ = ["InvoiceRequestSummary", "printable"]

# BOLT 12 record types of the fields shown.
_OFFER_DESCRIPTION = 10
_OFFER_ABSOLUTE_EXPIRY = 14
_OFFER_ISSUER = 18
_INVREQ_CHAIN = 80
_INVREQ_AMOUNT = 82
_INVREQ_PAYER_ID = 88
_INVREQ_PAYER_NOTE = 89


def printable(text: str) -> str:
    """``text`` with control and other non-printing characters escaped, so a description
    cannot rewrite the console lines around it (a newline, a carriage return, ANSI codes)."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def _tu64(t: int, value: bytes) -> int:
    # BOLT 1: a truncated integer has no leading zero bytes and at most 8 bytes.
    if len(value) > 8 or value[:1] == b"\0":
        raise ValueError(f"record {t} is not a minimal tu64")
    return int.from_bytes(value, "big")


def _utf8(t: int, value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"record {t} is not valid UTF-8") from None


@dataclass(frozen=True, slots=True)
class InvoiceRequestSummary:
    description: str | None = None
    amount_msat: int | None = None
    issuer: str | None = None
    absolute_expiry: int | None = None
    chain: bytes | None = None
    payer_id: bytes | None = None
    payer_note: str | None = None

    @classmethod
    def from_records(cls, records: list[tuple[int, bytes]]) -> InvoiceRequestSummary:
        """Reads the shown fields; ValueError names the record that cannot be read."""
        fields = dict(records)  # types strictly increase: parse_tlv_stream checked that
        expiry = fields.get(_OFFER_ABSOLUTE_EXPIRY)
        amount = fields.get(_INVREQ_AMOUNT)
        chain = fields.get(_INVREQ_CHAIN)
        description = fields.get(_OFFER_DESCRIPTION)
        issuer = fields.get(_OFFER_ISSUER)
        note = fields.get(_INVREQ_PAYER_NOTE)
        payer_id = fields.get(_INVREQ_PAYER_ID)
        if chain is not None and len(chain) != 32:
            raise ValueError(f"record {_INVREQ_CHAIN} (invreq_chain) is not 32 bytes")
        if payer_id is not None and len(payer_id) != 33:
            raise ValueError(f"record {_INVREQ_PAYER_ID} (invreq_payer_id) is not 33 bytes")
        return cls(
            description=None if description is None else _utf8(_OFFER_DESCRIPTION, description),
            amount_msat=None if amount is None else _tu64(_INVREQ_AMOUNT, amount),
            issuer=None if issuer is None else _utf8(_OFFER_ISSUER, issuer),
            absolute_expiry=None if expiry is None else _tu64(_OFFER_ABSOLUTE_EXPIRY, expiry),
            chain=chain,
            payer_id=payer_id,
            payer_note=None if note is None else _utf8(_INVREQ_PAYER_NOTE, note),
        )

    @property
    def network(self) -> str:
        name = bolt12.network_for_chain(self.chain)
        if name is None:
            assert self.chain is not None  # None is always bitcoin
            return f"unknown chain {self.chain.hex()}"
        return name

    def lines(self) -> list[str]:
        def text(value: str | None) -> str:
            return "(none)" if value is None else printable(value)

        if self.absolute_expiry is None:
            expiry = "(none)"
        else:
            try:
                when = datetime.datetime.fromtimestamp(self.absolute_expiry, datetime.UTC)
                expiry = f"{self.absolute_expiry} ({when:%Y-%m-%d %H:%M:%S} UTC)"
            except (OverflowError, ValueError, OSError):  # beyond what datetime can show
                expiry = str(self.absolute_expiry)
        amount = "(none)" if self.amount_msat is None else f"{self.amount_msat} msat"
        return [
            f"  description:     {text(self.description)}",
            f"  amount:          {amount}",
            f"  issuer:          {text(self.issuer)}",
            f"  absolute_expiry: {expiry}",
            f"  chain:           {self.network}",
            f"  payer_note:      {text(self.payer_note)}",
        ]
