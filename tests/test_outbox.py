"""The events outbox and the change indexes of both stores (real SQLite files, real
PostgreSQL): events written by the changes themselves, in order per request, leased by one
sender at a time (two stores on one database play two instances), retried, and the
indexes that `wait` reads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _storerows import NOW, record
from _storerows import payment as pay
from invreq.store.base import Record, Store
from invreq.store.postgres import PostgresStore
from invreq.store.sqlite import SQLiteStore


def rec(i: int, *, expiry: int | None = None, label: str | None = None) -> Record:
    return record(i, absolute_expiry=expiry, label=label)


async def _open(kind: str, tmp_path: Path, dsn: str | None) -> Store:
    s: Store = SQLiteStore(tmp_path / "db.sqlite3") if kind == "sqlite" else PostgresStore(dsn)  # type: ignore[arg-type]
    await s.open()
    return s


@pytest.fixture(params=["sqlite", "postgresql"])
async def two(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Store, Store]]:
    """Two stores on one database: two processes (SQLite) or two instances (PostgreSQL)."""
    dsn = request.getfixturevalue("pg_dsn") if request.param == "postgresql" else None
    a = await _open(request.param, tmp_path, dsn)
    b = await _open(request.param, tmp_path, dsn)
    yield a, b
    await a.close()
    await b.close()


async def test_changes_write_their_events_and_bump_the_indexes(two: tuple[Store, Store]) -> None:
    store, _ = two
    assert await store.indexes() == {
        "invoicerequests": {"created": 0, "updated": 0},
        "payments": {"created": 0, "updated": 0},
    }
    await store.insert(rec(1, label="atm-1"))
    await store.insert(rec(2))
    claim = await store.payment_claim(pay(1, 7))
    await store.payment_finish(claim.payment.payment_id, "paid", NOW + 1, preimage="00" * 32)
    await store.disable_noting_payments(f"{2:064x}", NOW + 2)
    events = await store.events()
    assert [(e.type, e.invreq_id[-1], e.payment_id) for e in events] == [
        ("invoice_received", "1", 1),
        ("payment_pending", "1", 1),
        ("paid", "1", 1),
        ("request_disabled", "2", None),
    ]
    assert [e.label for e in events] == ["atm-1", "atm-1", "atm-1", None]
    assert events[0].amount_msat == 1000 and events[2].created_at == NOW + 1
    assert all(e.delivered_at is None and e.attempts == 0 for e in events)
    # created: 2 requests, 1 payment; updated: request 1 used, request 2 disabled; the
    # payment settled.
    assert await store.indexes() == {
        "invoicerequests": {"created": 2, "updated": 2},
        "payments": {"created": 1, "updated": 1},
    }
    assert [e.type for e in await store.events(invreq_id=f"{2:064x}")] == ["request_disabled"]
    assert [e.event_id for e in await store.events(start=3, limit=1)] == [3]
    # Without start: the most recent, in order.
    assert [e.event_id for e in await store.events(limit=2)] == [3, 4]


async def test_a_refused_attempt_and_a_failure(two: tuple[Store, Store]) -> None:
    store, _ = two
    await store.insert(rec(1))
    await store.payment_claim(pay(1, 7, "refused"))
    claim = await store.payment_claim(pay(1, 8))
    await store.payment_finish(claim.payment.payment_id, "failed", NOW + 3, error="no route")
    events = await store.events()
    assert [(e.type, e.detail) for e in events] == [
        ("invoice_received", None),
        ("failed", "refused: no payment backend (--pay-with none)"),
        ("invoice_received", None),
        ("payment_pending", None),
        ("failed", "no route"),
    ]


async def test_expired_requests_are_told_once(two: tuple[Store, Store]) -> None:
    store, other = two
    await store.insert(rec(1, expiry=NOW + 10))
    await store.insert(rec(2, expiry=NOW + 100))
    await store.insert(rec(3))  # no expiry
    await store.insert(rec(4, expiry=NOW + 10))
    await store.disable(f"{4:064x}")  # disabled: not told as expired
    assert await store.note_expired(NOW + 5) == 0
    counts = await asyncio.gather(store.note_expired(NOW + 50), other.note_expired(NOW + 50))
    assert sorted(counts) == [0, 1]
    assert await store.note_expired(NOW + 60) == 0
    assert [(e.type, e.invreq_id[-1]) for e in await store.events()] == [
        ("request_disabled", "4"),
        ("request_expired", "1"),
    ]


async def test_leases_are_exclusive_and_keep_each_requests_order(
    two: tuple[Store, Store],
) -> None:
    a, b = two
    for i in (1, 2):
        await a.insert(rec(i))
        claim = await a.payment_claim(pay(i, 10 + i))
        await a.payment_finish(claim.payment.payment_id, "paid", NOW + 1)
    # Each request has 3 events; only the oldest undelivered of each may be leased.
    got_a, got_b = await asyncio.gather(
        a.events_lease(NOW, "a", 10, 60), b.events_lease(NOW, "b", 10, 60)
    )
    ids_a, ids_b = {e.event_id for e in got_a}, {e.event_id for e in got_b}
    assert not ids_a & ids_b
    assert ids_a | ids_b == {1, 4}  # the first event of each request
    # Leased: nobody else gets them, nor what follows them.
    assert await a.events_lease(NOW, "c", 10, 60) == []
    holder = {e.event_id: "a" for e in got_a} | {e.event_id: "b" for e in got_b}
    assert not await a.event_delivered(1, "not-the-holder", NOW)
    assert await a.event_delivered(1, holder[1], NOW)
    assert await a.event_retry(4, holder[4], NOW + 2, "HTTP 500")
    # Request 1 moves on to its second event; request 4's first is due at NOW + 2.
    assert [e.event_id for e in await b.events_lease(NOW, "b", 10, 60)] == [2]
    assert [e.event_id for e in await b.events_lease(NOW + 2, "b", 10, 60)] == [4]
    e4 = (await a.events(start=4, limit=1))[0]
    assert (e4.attempts, e4.last_error, e4.next_attempt_at) == (1, "HTTP 500", NOW + 2)
    # A lease that ran out (its sender died) is taken by another.
    assert [e.event_id for e in await a.events_lease(NOW + 70, "a", 10, 60)] == [2, 4]


async def test_released_leases_are_taken_at_once(two: tuple[Store, Store]) -> None:
    # A sender that stops gives its leases back: the next one need not wait them out.
    a, b = two
    for i in (1, 2):
        await a.insert(rec(i))
        await a.disable(f"{i:064x}")
    assert {e.event_id for e in await a.events_lease(NOW, "a", 10, 60)} == {1, 2}
    assert await b.events_lease(NOW, "b", 10, 60) == []
    assert await b.events_release("b") == 0  # only the owner's own
    assert await a.events_release("a") == 2
    assert {e.event_id for e in await b.events_lease(NOW, "b", 10, 60)} == {1, 2}
    assert not await a.event_delivered(1, "a", NOW)  # no longer a's to settle
    assert await b.event_delivered(1, "b", NOW)
    assert await b.events_release("b") == 1  # a delivered event keeps its record
