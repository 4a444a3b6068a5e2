"""The payments part of both stores (real SQLite files, real PostgreSQL): one payment per
invoice, the refused row that becomes the attempt, attempt limits, settling once, the
disable that notes payments in flight, and the migration of a database that an older
version filled with duplicate payments of one invoice."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _storerows import NODE, NOW
from _storerows import payment as pay
from _storerows import record as rec
from invreq.errors import AlreadyClaimed, PaymentLimited, PaymentNotPending
from invreq.store.base import ListQuery, PaymentLimits, Store
from invreq.store.postgres import PostgresStore
from invreq.store.sqlite import MIGRATIONS, SQLiteStore


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    s: Store
    if request.param == "sqlite":
        s = SQLiteStore(tmp_path / "db.sqlite3")
    else:
        s = PostgresStore(request.getfixturevalue("pg_dsn"))
    await s.open()
    yield s
    await s.close()


async def test_one_payment_per_invoice_even_when_claims_race(store: Store) -> None:
    await store.insert(rec(1, single_use=False))
    claims = await asyncio.gather(*(store.payment_claim(pay(1, 7)) for _ in range(30)))
    assert sum(c.new for c in claims) == 1
    assert {c.payment.payment_id for c in claims} == {claims[0].payment.payment_id}
    assert len(await store.payments()) == 1
    assert (await store.payment_by_hash(f"{7:064x}")) == claims[0].payment


async def test_a_refused_row_becomes_the_attempt(store: Store) -> None:
    await store.insert(rec(1))
    first = await store.payment_claim(pay(1, 7, "refused"))
    again = await store.payment_claim(pay(1, 7, "refused"))
    assert first.new and not again.new and again.payment.payment_id == first.payment.payment_id
    attempt = await store.payment_claim(pay(1, 7, at=NOW + 5))
    assert attempt.new and attempt.payment.payment_id == first.payment.payment_id
    assert attempt.payment.status == "pending" and attempt.payment.node_id == NODE
    assert [p.status for p in await store.payments()] == ["pending"]
    with pytest.raises(AlreadyClaimed):
        await store.payment_claim(pay(1, 8))  # single-use: the claim is held


async def test_limits_per_request_and_per_minute(store: Store) -> None:
    limits = PaymentLimits(per_request=2, per_minute=3)
    for i in range(1, 4):
        await store.insert(rec(i, single_use=False))
    for h in (10, 11):
        c = await store.payment_claim(pay(1, h), limits)
        await store.payment_finish(c.payment.payment_id, "failed", NOW)
    with pytest.raises(PaymentLimited, match="per-request"):
        await store.payment_claim(pay(1, 12), limits)
    await store.payment_claim(pay(2, 20), limits)
    with pytest.raises(PaymentLimited, match="per-minute"):
        await store.payment_claim(pay(3, 30), limits)
    # A minute later the per-minute bound allows again; an hour later the per-request one.
    assert (await store.payment_claim(pay(3, 30, at=NOW + 61), limits)).new
    assert (await store.payment_claim(pay(1, 12, at=NOW + 3601), limits)).new
    assert len(await store.payments()) == 5  # refusals recorded nothing


async def test_settled_once_and_disable_notes_pending_payments(store: Store) -> None:
    await store.insert(rec(1, single_use=False))
    a = (await store.payment_claim(pay(1, 7))).payment
    b = (await store.payment_claim(pay(1, 8))).payment
    await store.payment_finish(b.payment_id, "failed", NOW)
    record, pending = await store.disable_noting_payments(a.invreq_id, NOW + 1)
    assert record.active is False and [p.payment_id for p in pending] == [a.payment_id]
    assert pending[0].request_disabled_at == NOW + 1
    done = await store.payment_finish(
        a.payment_id, "paid", NOW + 2, preimage="00" * 32, resolved_by="x", evidence="y"
    )
    assert (done.status, done.resolved_by, done.evidence) == ("paid", "x", "y")
    with pytest.raises(PaymentNotPending) as e:
        await store.payment_finish(a.payment_id, "failed", NOW + 3)
    assert e.value.payment.status == "paid"
    assert (await store.get(a.invreq_id)).used is True  # type: ignore[union-attr]


async def test_migration_keeps_duplicates_as_history(tmp_path: Path) -> None:
    """Version 3 (before one-payment-per-invoice) let one invoice be paid three times."""
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    for statements in MIGRATIONS[:3]:
        for statement in statements:
            conn.execute(statement)
    conn.execute("PRAGMA user_version=3")
    conn.execute(
        "INSERT INTO invoice_requests (invreq_id, bolt12, active, single_use, used, created_at,"
        " payer_key) VALUES (?, 'lnr1x', 1, 0, 1, 1, 'software:x')",
        (f"{1:064x}",),
    )
    for _ in range(3):
        conn.execute(
            "INSERT INTO payments (invreq_id, invoice, amount_msat, payment_hash, status,"
            " created_at) VALUES (?, 'lni1x', 1000, ?, 'paid', 1)",
            (f"{1:064x}", f"{7:064x}"),
        )
    conn.close()
    s = SQLiteStore(path)
    await s.open()
    try:
        rows = await s.payments()
        assert [p.duplicate_of for p in rows] == [None, 1, 1]
        assert (await s.payment_by_hash(f"{7:064x}")).payment_id == 1  # type: ignore[union-attr]
        claim = await s.payment_claim(pay(1, 7))
        assert not claim.new and claim.payment.payment_id == 1
    finally:
        await s.close()


async def test_payments_are_read_from_start_up_to_limit_in_the_database(store: Store) -> None:
    """listpayments reads a chunk at a time: the store reads up to limit, never every row."""
    for i in range(1, 6):
        await store.insert(rec(i, single_use=False))
        await store.payment_claim(pay(i, 100 + i))
    every = await store.payments()
    ids = [p.payment_id for p in every]
    assert ids == sorted(ids) and len(ids) == 5
    assert [p.payment_id for p in await store.payments(limit=2)] == ids[:2]
    assert [p.payment_id for p in await store.payments(start=ids[2])] == ids[2:]
    assert [p.payment_id for p in await store.payments(start=ids[1], limit=2)] == ids[1:3]
    assert await store.payments(start=2**64) == []  # past every id, even beyond 63 bits
    assert [p.invreq_id for p in await store.payments(f"{3:064x}", "pending", limit=1)] == [
        f"{3:064x}"
    ]


async def test_reads_stop_at_max_bytes_so_a_chunk_of_huge_rows_is_never_read_whole(
    store: Store,
) -> None:
    """A streamed list (invreq.paging) reads chunks of at most ``max_bytes``: the row that
    crosses it is the last, and there is always at least one row."""
    big = 100_000
    for i in range(1, 6):
        r = dataclasses.replace(rec(i, single_use=False), bolt12="lnr1" + "q" * big)
        await store.insert(r)
        await store.payment_claim(dataclasses.replace(pay(i, 200 + i), invoice="lni1" + "q" * big))
        await store.rune_insert("method=" + "m" * big, NOW)
    ids = [r.created_index for r in await store.list(ListQuery())]
    # Under one row: one row; between one and two rows: two (the second crosses it).
    assert [r.created_index for r in await store.list(ListQuery(max_bytes=10))] == ids[:1]
    chunk = await store.list(ListQuery(max_bytes=2 * big - 1000, limit=100))
    assert [r.created_index for r in chunk] == ids[:2]
    chunk = await store.list(ListQuery(start=ids[3], max_bytes=10))
    assert [r.created_index for r in chunk] == [ids[3]]
    pids = [p.payment_id for p in await store.payments()]
    assert [p.payment_id for p in await store.payments(max_bytes=10)] == pids[:1]
    got = await store.payments(start=pids[1], limit=10, max_bytes=2 * big - 1000)
    assert [p.payment_id for p in got] == pids[1:3]
    assert [r.unique_id for r in await store.runes(max_bytes=10)] == [0]
    assert [r.unique_id for r in await store.runes(10, start=2, max_bytes=big + 10)] == [2, 3]
    assert await store.runes(start=2**64) == []
