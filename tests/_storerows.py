"""Rows for the store tests (test_outbox, test_payment_store, test_payout_authority,
test_payment_recovery, test_writer_backlog): request ``i`` and its payment of invoice ``h``,
every field filled with a value both stores accept."""

from __future__ import annotations

from typing import Any

from invreq.store.base import Payment, Record

NOW = 1_800_000_000
NODE = "02" + "ab" * 32


def record(i: int, **fields: Any) -> Record:
    """Request ``i``: active, single-use, unused, made at NOW, unless ``fields`` say otherwise."""
    given: dict[str, Any] = {
        "invreq_id": f"{i:064x}",
        "bolt12": f"lnr1test{i}",
        "label": None,
        "active": True,
        "single_use": True,
        "used": False,
        "created_at": NOW,
        "payer_key": "software:x",
        **fields,
    }
    return Record(**given)


def payment(i: int, h: int, status: str = "pending", at: int = NOW) -> Payment:
    """The claim of invoice ``h`` for request ``i`` at ``at``: a refused one names no node and
    has no attempt deadline."""
    return Payment(
        payment_id=0,
        invreq_id=f"{i:064x}",
        invoice=f"lni1test{h}",
        amount_msat=1000,
        payment_hash=f"{h:064x}",
        status=status,
        created_at=at,
        node_id=None if status == "refused" else NODE,
        attempt_deadline=None if status == "refused" else at + 70,
    )
