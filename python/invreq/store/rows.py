"""Row shapes shared by the SQL stores: the payments columns and the records-by-state count."""

from __future__ import annotations

from typing import Any

from invreq.store.base import Payment

__all__ = [
    "COUNT_BY_STATE",
    "PAYMENT_COLUMNS",
    "PAYMENT_INSERT",
    "payment_from_row",
    "payment_values",
    "states",
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
