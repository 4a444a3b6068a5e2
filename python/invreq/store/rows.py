"""Row shapes shared by the SQL stores: payments, the records-by-state count, runes."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any

from invreq.bound import PayoutBound
from invreq.errors import PaymentLimited, PaymentNotPending, PayoutBoundReached, StoreError
from invreq.store.base import BLACKLIST_OFFSET, Payment, PaymentLimits, StoredRune

__all__ = [
    "BOUND_TAKEN",
    "COUNT_BY_STATE",
    "LNURL_MIGRATION",
    "PAYMENT_BY_ID",
    "PAYMENT_COLUMNS",
    "PAYMENT_INSERT",
    "PAYMENT_INSERT_COUNT",
    "RECENT_ATTEMPTS",
    "REQUEST_WINDOW",
    "RUNE_COLUMNS",
    "UNSETTLED_ATTEMPTS",
    "blacklist_range",
    "blacklist_row",
    "bound_migration",
    "bounded_select",
    "check_bound",
    "limits_reached_per_minute",
    "limits_reached_per_request",
    "not_pending",
    "payment_from_row",
    "payment_migration",
    "payment_values",
    "restrictions_of_rune",
    "row_bytes",
    "states",
    "stored_rune",
    "within_bytes",
]

# --- reads in bounded chunks (see invreq.paging) ------------------------------------------


def row_bytes(row: Any) -> int:
    """A row's size as read: its text and bytes columns (the rest is a few bytes each)."""
    return sum(len(v) for v in row if isinstance(v, (str, bytes)))


def within_bytes(rows: Iterable[Any], max_bytes: int | None) -> list[Any]:
    """The rows, in order, until they hold ``max_bytes`` (the row that crosses it is the
    last; at least one row). Iterated from a cursor, no row after that one is read."""
    out: list[Any] = []
    size = 0
    for row in rows:
        out.append(row)
        size += row_bytes(row)
        if max_bytes is not None and size >= max_bytes:
            break
    return out


def bounded_select(columns: str, size: str, rest: str, key: str, max_bytes: str) -> str:
    """A query (PostgreSQL) that returns the rows of ``SELECT columns rest`` (ordered by
    ``key``, limited) until they hold ``max_bytes``, judged in the database by ``size`` (an
    expression over the row: ``octet_length`` of a TOASTed text reads its header, not the
    value): a chunk of huge rows is never fetched whole into the process."""
    return (
        f"SELECT * FROM (SELECT {columns}, sum({size}) OVER (ORDER BY {key} ROWS UNBOUNDED"
        f" PRECEDING) - ({size}) AS bytes_before {rest}) chunk"
        f" WHERE bytes_before < {max_bytes} ORDER BY {key}"
    )


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
    " preimage, error, node_id, attempt_deadline, door"
)
#: Columns set by later changes (disable, resolvepayment, the migration), not at insert.
PAYMENT_COLUMNS = (
    "payment_id, "
    + PAYMENT_INSERT
    + ", request_disabled_at, resolved_by, evidence, duplicate_of, payout_approval"
)
PAYMENT_INSERT_COUNT = 12


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
        p.node_id,
        p.attempt_deadline,
        p.door,
    )


def _int(v: Any) -> int | None:
    return None if v is None else int(v)


def payment_from_row(row: Any) -> Payment:
    return Payment(
        payment_id=int(row[0]),
        invreq_id=row[1],
        invoice=row[2],
        amount_msat=int(row[3]),
        payment_hash=row[4],
        status=row[5],
        created_at=int(row[6]),
        resolved_at=_int(row[7]),
        preimage=row[8],
        error=row[9],
        node_id=row[10],
        attempt_deadline=_int(row[11]),
        door=row[12],
        request_disabled_at=_int(row[13]),
        resolved_by=row[14],
        evidence=row[15],
        duplicate_of=_int(row[16]),
        payout_approval=None if row[17] is None else json.loads(row[17]),
    )


#: One payment as it is now (parameter: payment_id).
PAYMENT_BY_ID = f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE payment_id = {{p1}}"


def not_pending(payment_id: int, now: Any) -> StoreError | PaymentNotPending:
    """What to raise when a change meant for a pending payment (finish, approval) matched no
    row: ``now`` is the payment's row read by PAYMENT_BY_ID, None when there is no such payment."""
    if now is None:
        return StoreError(f"payment {payment_id} does not exist")
    return PaymentNotPending(payment_from_row(now))


def bound_migration(bigint: str, boolean: str, false: str) -> tuple[str, ...]:
    """Payout authority (issue 23), for both stores: a reusable request's bound, whether it
    needs an approval (decided at creation: a request stored with an approval did), and the
    payout approval of a payment."""
    return (
        f"ALTER TABLE invoice_requests ADD COLUMN max_payouts {bigint}",
        f"ALTER TABLE invoice_requests ADD COLUMN payout_until {bigint}",
        f"ALTER TABLE invoice_requests ADD COLUMN approval_required {boolean} NOT NULL"
        f" DEFAULT {false}",
        "UPDATE invoice_requests SET approval_required = (approval IS NOT NULL)",
        "ALTER TABLE payments ADD COLUMN payout_approval TEXT",
    )


#: Payouts a request has given or is giving (parameter: invreq_id), counted in the claim's
#: transaction so two workers or instances cannot both take the last one.
BOUND_TAKEN = (
    "SELECT count(*) FROM payments WHERE invreq_id = {p1} AND status IN ('pending', 'paid')"
)


def check_bound(bound: PayoutBound, taken: int, now: int) -> None:
    """Raise ``PayoutBoundReached`` if the request's bound allows no more payouts."""
    why = bound.refusal(taken, now)
    if why is not None:
        raise PayoutBoundReached(f"invoice is not paid: {why}")


def payment_migration(bigint: str) -> tuple[str, ...]:
    """The schema change that records who attempted a payment and enforces one payment per
    invoice, for both stores (``bigint``: the integer type). Rows that an older version
    wrote twice for one payment_hash are kept as history, marked ``duplicate_of`` the first,
    and left out of the unique index."""
    return (
        "ALTER TABLE payments ADD COLUMN node_id TEXT",
        f"ALTER TABLE payments ADD COLUMN attempt_deadline {bigint}",
        f"ALTER TABLE payments ADD COLUMN request_disabled_at {bigint}",
        "ALTER TABLE payments ADD COLUMN resolved_by TEXT",
        "ALTER TABLE payments ADD COLUMN evidence TEXT",
        f"ALTER TABLE payments ADD COLUMN duplicate_of {bigint}",
        "UPDATE payments SET duplicate_of = (SELECT min(d.payment_id) FROM payments d"
        " WHERE d.payment_hash = payments.payment_hash)"
        " WHERE payment_id > (SELECT min(d.payment_id) FROM payments d"
        " WHERE d.payment_hash = payments.payment_hash)",
        "CREATE UNIQUE INDEX payments_one_per_invoice ON payments(payment_hash)"
        " WHERE duplicate_of IS NULL",
        "CREATE INDEX payments_pending ON payments(status) WHERE status = 'pending'",
    )


#: The LNURL-withdraw door (invreq.lnurl), for both stores: a request's k1 (unique: the
#: callback finds the request by it), and which door each payment came through (the rows
#: before it all came through BOLT 12's).
LNURL_MIGRATION = (
    "ALTER TABLE invoice_requests ADD COLUMN lnurl_k1 TEXT",
    "CREATE UNIQUE INDEX invoice_requests_lnurl_k1 ON invoice_requests(lnurl_k1)"
    " WHERE lnurl_k1 IS NOT NULL",
    "ALTER TABLE payments ADD COLUMN door TEXT NOT NULL DEFAULT 'bolt12'",
)


#: A request made under --payout-approver hwi (invreq.payments.authority), for both stores:
#: the key that approves its payouts. The rows before it were made without one recorded.
PAYOUT_APPROVER_MIGRATION = ("ALTER TABLE invoice_requests ADD COLUMN payout_approver_key TEXT",)


# Limits (invreq.store.base.PaymentLimits), counted in the claim's transaction.
#: The window of the per-request bound: an hour after its last failures, a request may
#: be attempted again.
REQUEST_WINDOW = 3600
#: attempts on one request that have not succeeded (parameters: invreq_id, since)
UNSETTLED_ATTEMPTS = (
    "SELECT count(*) FROM payments WHERE invreq_id = {p1} AND created_at >= {p2}"
    " AND status IN ('pending', 'failed')"
)
#: attempts made since a time (parameter: unix seconds)
RECENT_ATTEMPTS = "SELECT count(*) FROM payments WHERE created_at >= {p1} AND status <> 'refused'"


def limits_reached_per_request(unsettled: int, limits: PaymentLimits) -> PaymentLimited:
    return PaymentLimited(
        f"invoice_request has {unsettled} payment attempts that did not succeed in the last "
        f"hour (limit {limits.per_request}, --pay-attempts-per-request): not attempted now"
    )


def limits_reached_per_minute(recent: int, limits: PaymentLimits) -> PaymentLimited:
    return PaymentLimited(
        f"{recent} payment attempts in the last minute (limit {limits.per_minute}, "
        "--pay-attempts-per-minute): try again later"
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
