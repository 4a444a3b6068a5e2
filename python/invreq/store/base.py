"""The store interface: what the service needs from a database, and nothing more.

Split by what is stored: ``RequestStore`` (our invoice_requests), ``PaymentStore``
(receiveinvoice's attempts) and ``RuneStore`` (issued runes, the blacklist); each module
depends on the one it uses, and ``Store`` is all three plus the lifecycle.

Every method is async. An implementation keeps its blocking I/O off the event loop (a
worker thread for SQLite, an async driver for PostgreSQL). A write returns only once it is
durable: the record survives a crash of the process or of the machine from that moment on.
Concurrent writers are grouped into one transaction (group commit) so throughput does not
fall to one fsync per request.

State changes are decided by the database, never by process memory: ``disable`` is a
conditional update, so two instances sharing one database cannot both win.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

from invreq.bound import PayoutBound

__all__ = [
    "BLACKLIST_OFFSET",
    "Claim",
    "Event",
    "EventStore",
    "ListQuery",
    "Payment",
    "PaymentLimits",
    "PaymentStore",
    "Record",
    "RequestLookup",
    "RequestStore",
    "RuneStore",
    "Store",
    "StoredRune",
]


@dataclasses.dataclass(frozen=True, slots=True)
class Record:
    """One invoice_request we issued (REFERENCE §5): a plain row, shaped for CLN by
    :func:`invreq.views.record_json`."""

    invreq_id: str  # 64 lower-case hex characters; the primary key
    bolt12: str  # the lnr1... string, signed
    label: str | None
    active: bool
    single_use: bool
    used: bool
    created_at: int  # unix seconds
    payer_key: str  # which signer key made it: "software:<payer_id hex>" or "hwi:<fp>/<path>"
    # Set by the store on insert: 1, 2, 3 ... in creation order (CLN's `created_index`).
    created_index: int = 0
    # Approval evidence from an approving device (JSON object), or None.
    approval: dict[str, Any] | None = None
    # Reusable requests only (invreq.bound): most payouts in all, and the end of the
    # payout window (unix seconds); None: not bounded that way.
    max_payouts: int | None = None
    payout_until: int | None = None
    # Decided at creation (an approver was configured): paid only with a verifying approval.
    approval_required: bool = False
    # The request's absolute_expiry (unix seconds), kept beside the string so expiry can be
    # found by the database (request_expired events); None: none, or made before it was kept.
    absolute_expiry: int | None = None

    @property
    def bound(self) -> PayoutBound:
        return PayoutBound(self.single_use, self.max_payouts, self.payout_until)

    # The LNURL-withdraw door's capability (invreq.lnurl), made with the request when
    # --lnurl is on; None: the request has no such door.
    lnurl_k1: str | None = None
    # Decided at creation (--payout-approver hwi): the key (hex) of the device that approves
    # each of this request's payouts; every payout needs its yes, whatever configuration or
    # instance pays it later. None: made without a payout approver.
    payout_approver_key: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Payment:
    """One attempt to pay an invoice that answers one of our requests (REFERENCE §8).

    ``pending`` means the outcome is not known to us: the claim is held until the node that
    attempted it (``node_id``) says what happened, or an operator resolves it by hand."""

    payment_id: int
    invreq_id: str
    invoice: str  # the lni1... string
    amount_msat: int
    payment_hash: str  # unique: one payment per invoice, ever
    status: str  # pending | paid | failed | refused
    created_at: int
    resolved_at: int | None = None
    preimage: str | None = None
    error: str | None = None
    # The node (getinfo id) that was asked to pay; None for refused (and for rows written
    # before the node was recorded: those only a node reporting them complete may settle).
    node_id: str | None = None
    # When the node's own attempt is over at the latest (xpay's retry_for and our wait):
    # before it, a "failed" or absent record at the node may still turn into a payment.
    attempt_deadline: int | None = None
    # The request was disabled while this payment was pending (disableinvoicerequest).
    request_disabled_at: int | None = None
    # Settled by hand (resolvepayment): who did it, on what evidence.
    resolved_by: str | None = None
    evidence: str | None = None
    # Rows from before one-payment-per-invoice was enforced: the earlier row of this hash.
    duplicate_of: int | None = None
    # --payout-approver hwi: the device's signed approval of this payment (JSON object).
    payout_approval: dict[str, Any] | None = None
    # Which door the invoice came through: "bolt12" (receiveinvoice, the CLN plugin) or
    # "lnurl" (a BOLT 11 invoice from an LNURL-withdraw wallet, invreq.lnurl).
    door: str = "bolt12"


@dataclasses.dataclass(frozen=True, slots=True)
class PaymentLimits:
    """Bounds on attempts, checked in the claim's transaction (so shared by every worker
    and instance on the database): a failing node is not asked once per submission."""

    #: attempts on one request that did not succeed (failed or still pending)
    per_request: int
    #: attempts on all requests in the last 60 s
    per_minute: int


@dataclasses.dataclass(frozen=True, slots=True)
class Claim:
    """What ``payment_claim`` did: ``new`` is False when the invoice (its payment_hash)
    already had a payment, which is returned unchanged instead."""

    payment: Payment
    new: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """One event of the outbox (:mod:`invreq.store.outbox`): what changed, and whether the
    webhook has it yet."""

    event_id: int
    type: str
    invreq_id: str
    label: str | None
    payment_id: int | None
    amount_msat: int | None
    created_at: int
    #: what the operator's systems may want to know (a failure's error), or None
    detail: str | None
    delivered_at: int | None
    attempts: int
    next_attempt_at: int
    last_error: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class StoredRune:
    """One rune we issued, without the rune itself: the string is derived again from the
    master secret, ``unique_id`` and ``restrictions`` when it is needed (``showrunes``), so
    a copy of the database is not a copy of the credentials."""

    unique_id: int
    #: the restrictions after the unique id, '&'-joined in the rune's own encoding ("" for none)
    restrictions: str
    created_at: int  # unix seconds
    #: when a call with it last passed (unix nanoseconds, CLN's ``rate``), None if never
    last_used_ns: int | None = None


#: Blacklist ranges are u64 (CLN's); both databases hold signed 64-bit integers, so a
#: bound is stored as ``value - 2**63``, which keeps the order.
BLACKLIST_OFFSET = 2**63


@dataclasses.dataclass(frozen=True, slots=True)
class ListQuery:
    """Filters of ``listinvoicerequests``; all optional, combined with AND."""

    invreq_id: str | None = None
    active_only: bool = False
    label: str | None = None
    start: int | None = None  # first created_index to return (inclusive)
    limit: int | None = None
    #: stop once the rows read hold this many bytes (the row that crosses it is the last):
    #: a chunk of a streamed list (invreq.paging), whatever the records' size
    max_bytes: int | None = None


class RequestLookup(Protocol):
    async def get(self, invreq_id: str) -> Record | None:
        """The record of ``invreq_id``, or None."""

    async def get_by_k1(self, k1: str) -> Record | None:
        """The record whose LNURL-withdraw ``k1`` this is, or None."""


class RequestStore(RequestLookup, Protocol):
    """The invoice_requests we issued (the service's commands)."""

    #: "sqlite" or "postgresql": what getinfo reports.
    kind: str

    async def insert(self, record: Record) -> int:
        """Make ``record`` durable; return its ``created_index``.

        Raises ``invreq.errors.StoreError`` when the change cannot be made durable; then
        nothing was stored.
        """

    async def count_by_state(self) -> dict[str, int]:
        """Records by state for metrics: ``active`` (unused), ``used``, ``disabled``."""

    async def list(self, query: ListQuery) -> builtins.list[Record]:
        """Records matching ``query`` in creation order."""

    async def disable(self, invreq_id: str) -> Record:
        """Set ``active`` false, durably, and return the new record.

        Raises ``UnknownInvoiceRequest`` or ``NotActive`` (already inactive); the check and
        the change are one atomic statement.
        """

    async def mark_used(self, invreq_id: str) -> Record:
        """An invoice for this request was paid: ``used`` true, and ``active`` false when
        single-use. One conditional statement: raises ``NotActive`` when the request is
        inactive or is single-use and already used, ``UnknownInvoiceRequest`` when absent."""

    async def disable_noting_payments(
        self, invreq_id: str, at: int
    ) -> tuple[Record, builtins.list[Payment]]:
        """``disable``, and in the same transaction stamp ``request_disabled_at`` on the
        request's pending payments; returns the record and those payments."""


class RuneStore(Protocol):
    """Runes (CLN's authorization tokens, :mod:`invreq.auth`): the issued ones (their unique
    id and restrictions, never the string), when each was last used (``rate``) and the
    blacklist live in the store so that instances sharing a database agree on all three."""

    async def rune_insert(self, restrictions: str, created_at: int) -> int:
        """Take the next unique id (0, 1, 2 ...), store the rune's restrictions, return the id."""

    async def runes(
        self,
        limit: int | None = None,
        *,
        start: int | None = None,
        max_bytes: int | None = None,
    ) -> builtins.list[StoredRune]:
        """The runes issued, in unique id order: from ``start`` on, the first ``limit`` of
        them (or all), stopping once they hold ``max_bytes``."""

    async def rune(self, unique_id: int) -> StoredRune | None:
        """One issued rune, read now (another process may have used it meanwhile)."""

    async def rune_used(self, unique_id: int, now_ns: int, previous_ns: int | None) -> bool:
        """Record a call that passed: ``last_used`` becomes ``now_ns`` if it is still
        ``previous_ns`` (one conditional statement). False if another call got there first."""

    async def rune_blacklist_add(self, first: int, last: int) -> None:
        """Blacklist unique ids ``first``..``last`` (any u64)."""

    async def rune_blacklist(self) -> builtins.list[tuple[int, int]]:
        """Blacklisted unique-id ranges (first, last), inclusive, as added."""


class PaymentStore(RequestLookup, Protocol):
    """Payments (:mod:`invreq.payments`): a claim is one conditional insert, so of two
    invoices racing for a single-use request exactly one gets to pay."""

    async def payment_claim(self, payment: Payment, limits: PaymentLimits | None = None) -> Claim:
        """One payment per invoice: if a payment with ``payment.payment_hash`` exists, return
        it (``new`` False) and change nothing, except that a ``refused`` one (no backend at
        the time) becomes this ``pending`` attempt, in the same row.

        Otherwise record ``payment`` as ``pending`` if its request may be paid now: it
        exists, is active, (single-use) has no pending or paid payment, (reusable) its
        bound allows another payout (``max_payouts`` pending or paid payments at most,
        before ``payout_until``: :meth:`invreq.bound.PayoutBound.refusal`), and ``limits``
        allow another attempt. Raises ``UnknownInvoiceRequest``, ``NotActive``,
        ``AlreadyClaimed``, ``PayoutBoundReached`` or ``PaymentLimited``. A ``refused``
        payment is checked the same way (limits aside) and recorded without claiming
        anything.
        The check and the insert are one transaction; a unique index on payment_hash backs
        it."""

    async def payment_finish(
        self,
        payment_id: int,
        status: str,
        resolved_at: int,
        *,
        preimage: str | None = None,
        error: str | None = None,
        resolved_by: str | None = None,
        evidence: str | None = None,
    ) -> Payment:
        """Settle a pending payment. ``paid`` also marks its request used (single-use ones
        become inactive; a request disabled meanwhile stays disabled). Raises
        ``PaymentNotPending`` (with the payment as it is) when it was settled already."""

    async def payment_approved(
        self, payment_id: int, approval: dict[str, Any], attempt_deadline: int | None = None
    ) -> Payment:
        """Store the payout approval of a pending payment (before it is paid), and move its
        ``attempt_deadline`` to ``attempt_deadline`` when that is later: the node is asked
        only now, and a person's decision (queued behind others on one device) may have
        taken longer than the claim allowed. Raises ``PaymentNotPending`` when it is no
        longer pending."""

    async def payment_by_hash(self, payment_hash: str) -> Payment | None:
        """The payment of this invoice (payment_hash), if any."""

    async def payment_count(self, invreq_id: str, status: str) -> int:
        """How many payments of this request have this status (counted in the database)."""

    async def payments(
        self,
        invreq_id: str | None = None,
        status: str | None = None,
        *,
        start: int | None = None,
        limit: int | None = None,
        max_bytes: int | None = None,
    ) -> builtins.list[Payment]:
        """Payments in the order they were made: from payment_id ``start`` on, the first
        ``limit`` of them, or all, stopping once they hold ``max_bytes`` (the read stops in
        the database, not after loading)."""


class EventStore(Protocol):
    """The events outbox and the change indexes (:mod:`invreq.store.outbox`). Events are
    written by the changes themselves (``payment_claim``, ``payment_finish``,
    ``disable_noting_payments``), in their transactions."""

    async def indexes(self) -> dict[str, dict[str, int]]:
        """``{"invoicerequests": {"created": n, "updated": m}, "payments": {...}}``."""

    async def index_details(
        self, subsystem: str, indexname: str, value: int
    ) -> dict[str, Any] | None:
        """What `wait` tells of the object at that index (None: none, or changed since)."""

    async def events(
        self,
        *,
        invreq_id: str | None = None,
        start: int | None = None,
        limit: int | None = None,
        max_bytes: int | None = None,
    ) -> builtins.list[Event]:
        """Events in order: from event_id ``start`` on, the first ``limit`` of them; without
        ``start``, the newest ``limit`` (the most recent). Stops once they hold
        ``max_bytes``."""

    async def events_lease(
        self, now: int, owner: str, limit: int, lease_seconds: int
    ) -> builtins.list[Event]:
        """Lease the events due now (each the oldest undelivered of its request) for
        ``lease_seconds``: no other owner gets them meanwhile."""

    async def event_delivered(self, event_id: int, owner: str, at: int) -> bool:
        """Mark delivered, if ``owner`` still holds its lease."""

    async def event_retry(self, event_id: int, owner: str, next_at: int, error: str) -> bool:
        """Count a failed attempt and release the lease until ``next_at``."""

    async def events_release(self, owner: str) -> int:
        """Give back every lease ``owner`` holds on undelivered events; returns how many."""

    async def note_expired(self, now: int) -> int:
        """Add a request_expired event for every active unused request whose absolute
        expiry has passed and was not told yet; returns how many."""


class Store(RequestStore, RuneStore, PaymentStore, EventStore, Protocol):
    """One database holding all three. Every method raises ``StoreError`` (2002) when the
    database fails or the store is closed (``StoreClosed``, ``DatabaseError``)."""

    #: called with (seconds, writes) after each commit, from any thread (metrics)
    on_commit: Callable[[float, int], None] | None

    async def open(self) -> None:
        """Connect, create or migrate the schema. Called once before any other method."""

    async def close(self) -> None:
        """Finish pending writes, then release everything."""
