"""Row shapes shared by the SQL stores: payments, the records-by-state count, runes."""

from __future__ import annotations

import base64
from typing import Any

from invreq.store.base import BLACKLIST_OFFSET, Payment, StoredRune

__all__ = [
    "COUNT_BY_STATE",
    "PAYMENT_COLUMNS",
    "PAYMENT_INSERT",
    "RUNE_COLUMNS",
    "blacklist_range",
    "blacklist_row",
    "payment_from_row",
    "payment_values",
    "restrictions_of_rune",
    "states",
    "stored_rune",
]

COUNT_BY_STATE = (
    "SELECT active <> 0, used <> 0, count(*) FROM invoice_requests GROUP BY active <> 0, used <> 0"
)


def states(rows: list[Any]) -> dict[str, int]:
    """(active, used, n) rows -> metrics states: active (unused), used, disabled (unused)."""
    out = {"active": 0, "used": 0, "disabled": 0}
    for active, used, n in rows:
        out["used" if used else "active" if active else "disabled"] += int(n)
    return out


PAYMENT_INSERT = (
    "invreq_id, invoice, amount_msat, payment_hash, status, created_at, resolved_at,"
    " preimage, error"
)
PAYMENT_COLUMNS = "payment_id, " + PAYMENT_INSERT


def payment_values(p: Payment) -> tuple[Any, ...]:
    return (
        p.invreq_id,
        p.invoice,
        p.amount_msat,
        p.payment_hash,
        p.status,
        p.created_at,
        p.resolved_at,
        p.preimage,
        p.error,
    )


def payment_from_row(row: Any) -> Payment:
    return Payment(
        payment_id=int(row[0]),
        invreq_id=row[1],
        invoice=row[2],
        amount_msat=int(row[3]),
        payment_hash=row[4],
        status=row[5],
        created_at=int(row[6]),
        resolved_at=None if row[7] is None else int(row[7]),
        preimage=row[8],
        error=row[9],
    )


# --- runes ---------------------------------------------------------------------------

#: The columns ``stored_rune`` reads, in its order.
RUNE_COLUMNS = "unique_id, restrictions, created_at, last_used"


def stored_rune(row: Any) -> StoredRune:
    return StoredRune(
        unique_id=int(row[0]),
        restrictions=str(row[1]),
        created_at=int(row[2]),
        last_used_ns=None if row[3] is None else int(row[3]),
    )


def restrictions_of_rune(rune: str) -> str:
    """The restrictions of a rune string after its unique id, in the rune's encoding: what
    the migration that stopped storing rune strings keeps of each row. (A rune is base64 of
    a 32-byte authcode then the '&'-joined restrictions; ours start with ``=<unique id>``,
    which holds no '&'.)"""
    text = base64.urlsafe_b64decode(rune)[32:].decode("utf-8")
    return text.split("&", 1)[1] if "&" in text else ""


def blacklist_row(first: int, last: int) -> tuple[int, int]:
    """A u64 range as the signed 64-bit columns hold it (see ``BLACKLIST_OFFSET``)."""
    return first - BLACKLIST_OFFSET, last - BLACKLIST_OFFSET


def blacklist_range(row: Any) -> tuple[int, int]:
    return int(row[0]) + BLACKLIST_OFFSET, int(row[1]) + BLACKLIST_OFFSET
