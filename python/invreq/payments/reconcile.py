"""Settling pending payments: from the node's own record, and by hand with evidence.

A payment whose outcome the receiver (:mod:`invreq.payments.receive`) could not learn stays
``pending`` with its claim held. Only the node that attempted it (its ``getinfo`` id is
recorded with the payment) settles it, from its own record (``listpays`` by payment_hash):
at start and every ``--pay-reconcile-interval`` seconds, for every pending payment except
those whose ``xpay`` this process is still waiting for. ``complete`` settles it paid at
once; ``failed``, or no record at all, only once the node's attempt is certainly over (see
``Reconciler._settle``). An instance with no node, or with another node, leaves it pending
and logs why; ``resolvepayment`` settles it by hand, with evidence.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Set
from typing import Any

from invreq import bolt12, views
from invreq.context import CALLER
from invreq.errors import (
    Bolt12Error,
    InvalidParams,
    PaymentInFlight,
    PaymentNotPending,
    RpcError,
)
from invreq.oneline import oneline
from invreq.payments.node import NodeUnavailable, PaymentBackend, proves
from invreq.store.base import Payment, PaymentStore

__all__ = ["Reconciler"]

log = logging.getLogger("invreq.payments")


class Reconciler:
    """Settles pending payments: :meth:`reconcile` (and :meth:`run`, periodically) from the
    record of the node that attempted them, :meth:`resolvepayment` by an operator.

    ``in_flight`` is the receiver's live set of payments whose ``xpay`` this process is
    still waiting for: those are neither reconciled behind its back nor resolved by hand."""

    def __init__(
        self,
        store: PaymentStore,
        backend: PaymentBackend,
        clock: Callable[[], float] = time.time,
        *,
        in_flight: Set[int],
    ) -> None:
        self.store = store
        self.backend = backend
        self.clock = clock
        self.in_flight = in_flight
        #: what was last logged about each pending payment we cannot settle (no flood)
        self._told: dict[int, str] = {}

    async def reconcile(self) -> int:
        """Settle pending payments from the record of the node that attempted them; returns
        how many were settled. Payments this process is still paying are left alone."""
        settled = 0
        pending = await self.store.payments(status="pending")
        for p in pending:
            if p.payment_id in self.in_flight:
                continue
            if await self._settle(p):
                settled += 1
        still = {p.payment_id for p in pending}
        for payment_id in [i for i in self._told if i not in still]:
            del self._told[payment_id]
        return settled

    async def run(self, interval: float) -> None:
        """Reconcile every ``interval`` seconds until cancelled (a crash-left payment is
        settled while the server runs, not at some later restart)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reconcile()
            except RpcError as e:
                log.warning("reconciliation skipped: %s (next in %g s)", e.message, interval)
            except Exception:
                log.exception("reconciliation failed (next in %g s)", interval)

    def _tell(self, p: Payment, message: str) -> None:
        # Once per payment and message: the periodic check would repeat it forever.
        if self._told.get(p.payment_id) != message:
            self._told[p.payment_id] = message
            log.warning("payment %d stays pending: %s", p.payment_id, message)

    async def _settle(self, p: Payment) -> bool:
        mine = self.backend.node_id
        if p.node_id is not None and p.node_id != mine:
            here = (
                "this instance has no payment node (--pay-with none)"
                if mine is None
                else f"this instance pays with node {mine}"
            )
            self._tell(
                p,
                f"attempted by node {p.node_id} and {here}; only that node's record, or "
                "resolvepayment, settles it",
            )
            return False
        if mine is None:
            self._tell(
                p,
                "attempted before invreq recorded the node, and this instance has no payment "
                "node (--pay-with none); resolvepayment settles it",
            )
            return False
        try:
            record = await self.backend.status(p.payment_hash)
        except NodeUnavailable as e:
            self._tell(p, f"the record of node {mine} is unavailable ({e}); checked again later")
            return False
        now = int(self.clock())
        attempt_over = p.attempt_deadline is not None and now >= p.attempt_deadline
        if record.status == "paid" and not proves(record.preimage, p.payment_hash):
            self._tell(
                p,
                f"node {mine} reports it paid, but with a preimage whose sha256 is not the "
                "payment_hash: investigate (resolvepayment settles it, with evidence)",
            )
            return False
        if record.status == "paid":
            status, error = "paid", None
        elif p.node_id is None:
            # Written before the attempting node was recorded: only proof of payment from
            # this node may settle it; anything else could be another node's business.
            self._tell(
                p,
                f"attempted before invreq recorded the node, and node {mine} reports it "
                f"{record.status}; resolvepayment settles it",
            )
            return False
        elif record.status == "failed" and attempt_over:
            status, error = "failed", f"node {mine} reports the payment failed"
        elif record.status == "none" and attempt_over and _expired(p, now):
            status, error = (
                "failed",
                f"node {mine} has no record of the payment and the invoice has expired",
            )
        else:
            self._tell(
                p,
                f"node {mine} reports it {record.status}"
                + ("" if attempt_over else " while its attempt may still be running"),
            )
            return False
        try:
            settled = await self.store.payment_finish(
                p.payment_id, status, now, preimage=record.preimage, error=error
            )
        except PaymentNotPending:
            return False  # another worker or instance settled it first
        self._told.pop(p.payment_id, None)
        log.info("payment %d settled from node %s's record: %s", p.payment_id, mine, settled.status)
        return True

    # --- by hand ------------------------------------------------------------------------

    async def resolvepayment(
        self,
        payment_hash: str,
        status: str,
        evidence: str,
        preimage: str | None = None,
    ) -> dict[str, Any]:
        """An operator settles a stuck pending payment, on evidence that is recorded with
        who did it and when. Refused while an attempt may still be running, and, when the
        attempting node is the one we pay with, against its own record."""
        p = await self.store.payment_by_hash(payment_hash)
        if p is None:
            raise InvalidParams(f"payment_hash: no payment has payment_hash {payment_hash}")
        if p.status != "pending":
            raise PaymentNotPending(p, views.payment_json(p))
        if not evidence.strip():
            raise InvalidParams("evidence: should say why (what shows the outcome)")
        if preimage is not None:
            if hashlib.sha256(bytes.fromhex(preimage)).hexdigest() != payment_hash:
                raise InvalidParams("preimage: its sha256 is not the payment_hash")
            if status != "paid":
                raise InvalidParams("preimage: only with status paid")
        now = int(self.clock())
        if p.payment_id in self.in_flight or (
            p.attempt_deadline is not None and now < p.attempt_deadline
        ):
            raise PaymentInFlight(
                f"payment {p.payment_id} is still being attempted (until "
                f"{p.attempt_deadline}); wait for its outcome"
            )
        if status == "failed" and p.node_id is not None and p.node_id == self.backend.node_id:
            try:
                record = await self.backend.status(payment_hash)
            except NodeUnavailable:
                record = None  # the node cannot say: the operator's evidence decides
            if record is not None and record.status in ("paid", "pending"):
                raise PaymentInFlight(
                    f"node {p.node_id} reports payment {p.payment_id} {record.status}: it is "
                    "not failed (reconciliation settles it from that record)"
                )
        try:
            done = await self.store.payment_finish(
                p.payment_id,
                status,
                now,
                preimage=preimage,
                error=None if status == "paid" else "resolved by hand",
                resolved_by=CALLER.get(),
                evidence=evidence,
            )
        except PaymentNotPending as e:
            # Settled since we read it (reconciliation, another instance): the caller sees
            # the payment as it is now.
            raise PaymentNotPending(e.payment, views.payment_json(e.payment)) from None
        log.warning(
            "payment %d resolved by hand as %s by %s: %s",
            done.payment_id,
            status,
            done.resolved_by,
            oneline(evidence),
        )
        return views.payment_json(done)


def _expired(p: Payment, now: int) -> bool:
    """The invoice can no longer be paid by anyone (its payee refuses it after expiry)."""
    if p.door == "lnurl":
        try:
            from invreq import lnurl  # a BOLT 11 invoice: only ever written with --lnurl
        except ImportError:
            # An instance (or a restart) without the lnurl extra cannot read its expiry:
            # never "expired" by guess, and never an error that would stop this pass (and
            # the start-up one) before the other pending payments are settled.
            return False
        expires_at = lnurl.invoice_expires_at(p.invoice)
        return expires_at is not None and expires_at <= now
    try:
        return bolt12.decode_invoice(p.invoice).expires_at <= now
    except Bolt12Error:
        return False
