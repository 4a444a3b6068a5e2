"""The store interface: what the service needs from a database, and nothing more.

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

from invreq.bolt12 import bolt12_unsigned

__all__ = ["ListQuery", "Record", "Store"]


@dataclasses.dataclass(frozen=True, slots=True)
class Record:
    """One invoice_request we issued (REFERENCE §5)."""

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

    def to_json(self) -> dict[str, Any]:
        """The CLN object for the three commands: key order as REFERENCE §5 lists it."""
        out: dict[str, Any] = {
            "invreq_id": self.invreq_id,
            "active": self.active,
            "single_use": self.single_use,
            "bolt12": self.bolt12,
            "bolt12_unsigned": bolt12_unsigned(self.bolt12),
            "used": self.used,
        }
        if self.label is not None:
            out["label"] = self.label
        return out


@dataclasses.dataclass(frozen=True, slots=True)
class Payment:
    """One attempt to pay an invoice that answers one of our requests (REFERENCE §8)."""

    payment_id: int
    invreq_id: str
    invoice: str  # the lni1... string
    amount_msat: int
    payment_hash: str
    status: str  # pending | paid | failed | refused
    created_at: int
    resolved_at: int | None = None
    preimage: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "payment_id": self.payment_id,
            "invreq_id": self.invreq_id,
            "status": self.status,
            "amount_msat": self.amount_msat,
            "payment_hash": self.payment_hash,
            "invoice": self.invoice,
            "created_at": self.created_at,
        }
        if self.resolved_at is not None:
            out["resolved_at"] = self.resolved_at
        if self.preimage is not None:
            out["payment_preimage"] = self.preimage
        if self.error is not None:
            out["error"] = self.error
        return out


PAYMENT_STATES = ("pending", "paid", "failed", "refused")


@dataclasses.dataclass(frozen=True, slots=True)
class ListQuery:
    """Filters of ``listinvoicerequests``; all optional, combined with AND."""

    invreq_id: str | None = None
    active_only: bool = False
    label: str | None = None
    start: int | None = None  # first created_index to return (inclusive)
    limit: int | None = None


class Store(Protocol):
    #: "sqlite" or "postgresql": what getinfo reports.
    kind: str
    #: called with (seconds, writes) after each commit, from any thread (metrics)
    on_commit: Callable[[float, int], None] | None

    async def open(self) -> None:
        """Connect, create or migrate the schema. Called once before any other method."""

    async def close(self) -> None:
        """Finish pending writes, then release everything."""

    async def insert(self, record: Record) -> int:
        """Make ``record`` durable; return its ``created_index``.

        Raises ``invreq.errors.StoreError`` when the change cannot be made durable; then
        nothing was stored.
        """

    async def get(self, invreq_id: str) -> Record | None: ...

    async def count_by_state(self) -> dict[str, int]:
        """Records by state for metrics: ``active`` (unused), ``used``, ``disabled``."""

    async def list(self, query: ListQuery) -> list[Record]:
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

    # Runes (CLN's authorization tokens, invreq.runes): the issued ones and the blacklist
    # live in the store so that instances sharing a database agree on both.

    async def rune_insert(self, make: Callable[[int], str], created_at: int) -> tuple[int, str]:
        """Take the next unique id (0, 1, 2 ...) and store the rune ``make(id)``."""

    async def runes(self) -> builtins.list[tuple[int, str]]:
        """(unique_id, rune) of every rune issued, in order."""

    async def rune_blacklist_add(self, first: int, last: int) -> None: ...

    async def rune_blacklist(self) -> builtins.list[tuple[int, int]]:
        """Blacklisted unique-id ranges (first, last), inclusive, as added."""

    # Payments (invreq.payments): a claim is one conditional insert, so of two invoices
    # racing for a single-use request exactly one gets to pay.

    async def payment_claim(self, payment: Payment) -> Payment:
        """Record ``payment`` as ``pending`` if its request may be paid now: it exists, is
        active, and (single-use) has no pending or paid payment. Raises
        ``UnknownInvoiceRequest``, ``NotActive`` or ``AlreadyClaimed``. Returns it with its
        ``payment_id``. A ``refused`` payment (no backend) is recorded without a claim."""

    async def payment_finish(
        self,
        payment_id: int,
        status: str,
        resolved_at: int,
        *,
        preimage: str | None = None,
        error: str | None = None,
    ) -> Payment:
        """Settle a pending payment. ``paid`` also marks its request used (single-use ones
        become inactive; a request disabled meanwhile stays disabled)."""

    async def payments(
        self, invreq_id: str | None = None, status: str | None = None
    ) -> builtins.list[Payment]:
        """Payments in the order they were made."""
