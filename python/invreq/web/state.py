"""What a payee may know of their request: one state, in words, with a payee-safe reason.

The one home for turning a request and its payments into what the page shows. Nothing
here carries a node id, a payment hash, an error text from the node or the operator's
label: a refusal's reason is one of the fixed sentences below, never the stored ``error``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from invreq.store.base import Payment, Record

__all__ = ["STATES", "PayeeState", "payee_state"]

#: Every state and its words.
STATES: dict[str, str] = {
    "waiting": "Waiting for your invoice",
    "paying": "Invoice received: paying",
    "paid": "Paid",
    "refused": "Not paid",
    "expired": "Expired",
    "disabled": "Disabled",
}

#: Payee-safe reasons, by payment status (the stored error may name nodes and routes).
_REASONS = {
    "refused": "This service is not paying invoices at the moment.",
    "failed": "The payment did not go through. Your wallet may send a new invoice.",
}


@dataclasses.dataclass(frozen=True, slots=True)
class PayeeState:
    state: str
    #: unix seconds of the payment, for ``paid``
    paid_at: int | None = None
    #: why, for ``refused`` (one of the fixed sentences), or a note
    reason: str | None = None

    @property
    def words(self) -> str:
        return STATES[self.state]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state, "words": self.words}
        if self.paid_at is not None:
            out["paid_at"] = self.paid_at
        if self.reason is not None:
            out["reason"] = self.reason
        return out


def payee_state(
    record: Record, payments: Sequence[Payment], absolute_expiry: int | None, now: int
) -> PayeeState:
    """The state of ``record`` given its payments (any order) at ``now``."""
    ordered = sorted(payments, key=lambda p: p.payment_id)
    paid = [p for p in ordered if p.status == "paid"]
    last = ordered[-1] if ordered else None
    if any(p.status == "pending" for p in ordered):
        return PayeeState("paying")
    if paid and (record.single_use or not record.active or last is paid[-1]):
        note = None if record.single_use or not record.active else "It may be paid again."
        return PayeeState("paid", paid_at=paid[-1].resolved_at, reason=note)
    if not record.active:
        return PayeeState("disabled", reason="The issuer disabled this request.")
    if absolute_expiry is not None and absolute_expiry <= now:
        return PayeeState("expired")
    if last is not None and last.status in _REASONS:
        return PayeeState("refused", reason=_REASONS[last.status])
    return PayeeState("waiting")
