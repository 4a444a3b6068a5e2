"""The events outbox and the change indexes, shared by both SQL stores.

**Events** (webhooks, ``listevents``) are rows written in the same transaction as the change
they tell of: a claimed payment, a settled one, a disabled request. So an event exists if
and only if its change committed: a crash can lose neither, and a rolled-back change sends
nothing. A sender (:mod:`invreq.webhooks`) takes a **lease** on the events it delivers
(one conditional statement, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so several processes
or instances on one database deliver each event once between them; only the oldest
undelivered event of a request can be leased, so a request's events arrive in order.

**Indexes** (``wait``): CLN's ``created`` (the request's ``created_index``, the payment's
``payment_id``) and ``updated``: one counter per subsystem in ``invreq_indexes``, bumped
with ``UPDATE ... RETURNING`` in the changing transaction (on PostgreSQL the counter's row
lock orders those transactions, so the index never goes backwards), and stamped on the
changed row's ``updated_index``.

SQL here uses ``{p1}``, ``{p2}`` ... for parameters: each store formats them as its
driver writes them (``?`` or ``$1``).
"""

from __future__ import annotations

from typing import Any

from invreq.store.base import Event

__all__ = [
    "EVENT_COLUMNS",
    "EVENT_TYPES",
    "LEASE_SECONDS",
    "SUBSYSTEMS",
    "backoff",
    "event_from_row",
    "events_migration",
]

#: Event types, in the order a request's events can happen.
EVENT_TYPES = (
    "invoice_received",
    "payment_pending",
    "paid",
    "failed",
    "request_disabled",
    "request_expired",
)
#: wait's subsystems: (table, created column).
SUBSYSTEMS = {
    "invoicerequests": ("invoice_requests", "created_index"),
    "payments": ("payments", "payment_id"),
}
#: What `wait` tells of the object at an index: (table, columns), found by its created
#: column or its updated_index.
DETAILS = {
    "invoicerequests": ("invoice_requests", ("invreq_id", "label", "active", "used")),
    "payments": ("payments", ("payment_id", "invreq_id", "status")),
}
#: Seconds a sender holds a lease on the events it is delivering (more than a delivery's
#: timeout): a sender that dies leaves them to another after this.
LEASE_SECONDS = 60
#: Longest wait between two delivery attempts of an event.
MAX_BACKOFF = 600


def backoff(attempts: int) -> int:
    """Seconds before attempt ``attempts + 1``: 1, 2, 4 ... up to ``MAX_BACKOFF``."""
    return int(min(MAX_BACKOFF, 2 ** min(attempts - 1, 10)))


def events_migration(bigint: str, serial: str) -> tuple[str, ...]:
    """The schema change of issue 26, for both stores (``serial``: the auto-numbered key)."""
    return (
        f"ALTER TABLE invoice_requests ADD COLUMN updated_index {bigint}",
        f"ALTER TABLE invoice_requests ADD COLUMN absolute_expiry {bigint}",
        f"ALTER TABLE invoice_requests ADD COLUMN expired_noted {bigint}",
        f"ALTER TABLE payments ADD COLUMN updated_index {bigint}",
        f"CREATE TABLE invreq_indexes (subsystem TEXT PRIMARY KEY, updated {bigint} NOT NULL)",
        "INSERT INTO invreq_indexes (subsystem, updated)"
        " VALUES ('invoicerequests', 0), ('payments', 0)",
        f"""CREATE TABLE events (
            event_id        {serial} PRIMARY KEY,
            type            TEXT NOT NULL,
            invreq_id       TEXT NOT NULL,
            label           TEXT,
            payment_id      {bigint},
            amount_msat     {bigint},
            created_at      {bigint} NOT NULL,
            detail          TEXT,
            delivered_at    {bigint},
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at {bigint} NOT NULL,
            last_error      TEXT,
            lease_until     {bigint},
            lease_owner     TEXT
        )""",
        "CREATE INDEX events_undelivered ON events(invreq_id, event_id) WHERE delivered_at IS NULL",
        "CREATE INDEX invoice_requests_expiry ON invoice_requests(absolute_expiry)"
        " WHERE absolute_expiry IS NOT NULL AND expired_noted IS NULL",
    )


EVENT_COLUMNS = (
    "event_id, type, invreq_id, label, payment_id, amount_msat, created_at, detail,"
    " delivered_at, attempts, next_attempt_at, last_error"
)


def _int(v: Any) -> int | None:
    return None if v is None else int(v)


def event_from_row(row: Any) -> Event:
    return Event(
        event_id=int(row[0]),
        type=row[1],
        invreq_id=row[2],
        label=row[3],
        payment_id=_int(row[4]),
        amount_msat=_int(row[5]),
        created_at=int(row[6]),
        detail=row[7],
        delivered_at=_int(row[8]),
        attempts=int(row[9]),
        next_attempt_at=int(row[10]),
        last_error=row[11],
    )


#: Insert one event; the label comes from the request row (parameters: type, payment_id,
#: amount_msat, created_at, detail, invreq_id).
EVENT_INSERT = (
    "INSERT INTO events (type, invreq_id, label, payment_id, amount_msat, created_at, detail,"
    " next_attempt_at) SELECT CAST({p1} AS TEXT), invreq_id, label, CAST({p2} AS BIGINT),"
    " CAST({p3} AS BIGINT), CAST({p4} AS BIGINT), CAST({p5} AS TEXT), CAST({p4} AS BIGINT)"
    " FROM invoice_requests WHERE invreq_id = {p6}"
)
#: Bump a subsystem's updated counter (parameter: subsystem); returns the new value.
BUMP = "UPDATE invreq_indexes SET updated = updated + 1 WHERE subsystem = {p1} RETURNING updated"
#: The events a sender may deliver now (parameter: now, limit): undelivered, due, not
#: leased by another, and the oldest undelivered of their request.
DUE = (
    "SELECT e.event_id FROM events e WHERE e.delivered_at IS NULL"
    " AND e.next_attempt_at <= {p1} AND (e.lease_until IS NULL OR e.lease_until <= {p1})"
    " AND NOT EXISTS (SELECT 1 FROM events o WHERE o.invreq_id = e.invreq_id"
    " AND o.delivered_at IS NULL AND o.event_id < e.event_id)"
    " ORDER BY e.event_id LIMIT {p2}"
)
#: Take the lease (parameters: lease_until, owner, then the ids as {ids}).
LEASE = (
    "UPDATE events SET lease_until = {p1}, lease_owner = {p2} WHERE event_id IN ({ids})"
    f" RETURNING {EVENT_COLUMNS}"
)
#: Delivered (parameters: at, event_id, owner): only by the lease's holder.
DELIVERED = (
    "UPDATE events SET delivered_at = {p1}, attempts = attempts + 1, lease_until = NULL,"
    " last_error = NULL WHERE event_id = {p2} AND lease_owner = {p3} AND delivered_at IS NULL"
)
#: Not delivered (parameters: next_attempt_at, error, event_id, owner).
RETRY = (
    "UPDATE events SET attempts = attempts + 1, next_attempt_at = {p1}, last_error = {p2},"
    " lease_until = NULL WHERE event_id = {p3} AND lease_owner = {p4} AND delivered_at IS NULL"
)
#: Give back the leases an owner holds (parameter: owner): a sender that stops, or that
#: cannot reach the rest of its batch before the leases end, so that the events are not
#: held up to LEASE_SECONDS from whoever delivers next (a restart, another instance).
RELEASE = (
    "UPDATE events SET lease_until = NULL, lease_owner = NULL"
    " WHERE lease_owner = {p1} AND delivered_at IS NULL"
)
#: Requests whose absolute expiry has passed while active and unused, not yet told
#: (parameter: now); marks them told and returns what the event needs.
EXPIRED = (
    "UPDATE invoice_requests SET expired_noted = {p1} WHERE absolute_expiry IS NOT NULL"
    " AND absolute_expiry <= {p1} AND expired_noted IS NULL AND {active} AND NOT {used}"
    " RETURNING invreq_id, bolt12"
)


def details_sql(subsystem: str, indexname: str, param: str) -> str:
    """The object of ``subsystem`` whose ``indexname`` index is ``param``."""
    table, columns = DETAILS[subsystem]
    column = SUBSYSTEMS[subsystem][1] if indexname == "created" else "updated_index"
    return f"SELECT {', '.join(columns)} FROM {table} WHERE {column} = {param}"


def details_json(subsystem: str, row: Any) -> dict[str, Any]:
    """The object as `wait` shows it (booleans as JSON booleans; no null label)."""
    _, columns = DETAILS[subsystem]
    out: dict[str, Any] = {}
    for name, value in zip(columns, row, strict=True):
        if value is None:
            continue
        out[name] = bool(value) if name in ("active", "used") else value
    return out


def request_amount(bolt12_string: str) -> int | None:
    """The amount of a stored request (for its events), read from its own string."""
    from invreq import bolt12
    from invreq.errors import Bolt12Error

    try:
        return bolt12.decode_invoice_request(bolt12_string, verify=False).amount_msat
    except Bolt12Error:
        return None


def claim_events(status: str) -> tuple[tuple[str, str | None], ...]:
    """The events of a new payment attempt: (type, detail)."""
    if status == "pending":
        return (("invoice_received", None), ("payment_pending", None))
    return (("invoice_received", None), ("failed", "refused: no payment backend (--pay-with none)"))
