"""PostgreSQL: the store on a real server, and two `invreq serve` instances on one database."""

from __future__ import annotations

import asyncio
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest
from _service_fixtures import Server
from invreq.errors import DatabaseError, NotActive, StartupError, StoreClosed
from invreq.store.base import ListQuery, Record
from invreq.store.postgres import PostgresStore
from pyln.client import RpcError


def rec(i: int, *, single_use: bool = True) -> Record:
    return Record(
        invreq_id=f"{i:064x}",
        bolt12=f"lnr1test{i}",
        label=None,
        active=True,
        single_use=single_use,
        used=False,
        created_at=1_700_000_000 + i,
        payer_key="software:x",
    )


async def test_group_commit_and_reopen(pg_dsn: str) -> None:
    s = PostgresStore(pg_dsn)
    await s.open()
    stored = await asyncio.gather(*(s.insert(rec(i)) for i in range(500)))
    assert s.writes == 500 and s.commits < 500, "inserts must share round trips and commits"
    assert len(set(stored)) == 500  # distinct created_index values
    await s.close()
    s2 = PostgresStore(pg_dsn)
    await s2.open()
    assert len(await s2.list(ListQuery())) == 500
    await s2.close()


async def test_two_instances_migrate_at_once_and_newer_schema_is_refused(pg_dsn: str) -> None:
    a, b = PostgresStore(pg_dsn), PostgresStore(pg_dsn)
    await asyncio.gather(a.open(), b.open())  # the advisory lock serialises the migration
    await asyncio.gather(a.close(), b.close())
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("INSERT INTO invreq_schema (version) VALUES (99)")
    await conn.close()
    with pytest.raises(StartupError, match="newer invreq"):
        await PostgresStore(pg_dsn).open()


async def test_unreachable_database_is_a_startup_error() -> None:
    with pytest.raises(StartupError, match="cannot connect"):
        await PostgresStore("postgresql://nobody@127.0.0.1:1/none").open()


@pytest.mark.parametrize("round_", range(10))
async def test_racing_state_changes_resolve_one_way_across_instances(
    pg_dsn: str, round_: int
) -> None:
    """Two stores = two connection pools, as two processes would have."""
    a, b = PostgresStore(pg_dsn), PostgresStore(pg_dsn)
    await a.open()
    await b.open()
    try:
        await a.insert(rec(1))
        await a.insert(rec(2))
        # disable against mark-used on a single-use request: exactly one wins.
        out = await asyncio.gather(
            a.disable(f"{1:064x}"), b.mark_used(f"{1:064x}"), return_exceptions=True
        )
        assert sum(isinstance(o, Record) for o in out) == 1, out
        assert all(isinstance(o, (Record, NotActive)) for o in out)
        final = await b.get(f"{1:064x}")
        assert final is not None and final.active is False
        assert final.used == isinstance(out[1], Record)
        # two mark-used on one single-use request: exactly one payment counts.
        out = await asyncio.gather(
            a.mark_used(f"{2:064x}"), b.mark_used(f"{2:064x}"), return_exceptions=True
        )
        assert sum(isinstance(o, Record) for o in out) == 1, out
    finally:
        await a.close()
        await b.close()


async def test_multi_use_stays_active_after_use(pg_dsn: str) -> None:
    s = PostgresStore(pg_dsn)
    await s.open()
    await s.insert(rec(1, single_use=False))
    for _ in range(2):
        r = await s.mark_used(f"{1:064x}")
        assert r.used and r.active
    await s.close()


def test_two_servers_on_one_database(tmp_path: Path, pg_dsn: str) -> None:
    a = Server(tmp_path / "a", db=pg_dsn).start()
    # The second instance uses the same payer key, as an operator would deploy it.
    (tmp_path / "b" / "regtest").mkdir(parents=True, mode=0o700)
    shutil.copy2(tmp_path / "a" / "regtest" / "payer_secret", tmp_path / "b" / "regtest")
    b = Server(tmp_path / "b", db=pg_dsn).start()
    try:
        assert a.rpc.call("getinfo")["id"] == b.rpc.call("getinfo")["id"]
        x = a.rpc.call("invoicerequest", [1000, "via a"])
        y = b.rpc.call("invoicerequest", [2000, "via b"])
        for s in (a, b):
            listed = [r["invreq_id"] for r in s.rpc.call("listinvoicerequests")["invoicerequests"]]
            assert listed == [x["invreq_id"], y["invreq_id"]]
        a.rpc.call("disableinvoicerequest", [y["invreq_id"]])
        assert (
            b.rpc.call("listinvoicerequests", [y["invreq_id"]])["invoicerequests"][0]["active"]
            is False
        )
        with pytest.raises(RpcError) as e:
            b.rpc.call("disableinvoicerequest", [y["invreq_id"]])
        assert e.value.error["code"] == 1001
        # Both instances race to disable the same requests: exactly one wins each time.
        ids = [a.rpc.call("invoicerequest", [3000 + i, "race"])["invreq_id"] for i in range(20)]

        def disable(s: Server, i: str) -> bool:
            try:
                s.rpc.call("disableinvoicerequest", [i])
                return True
            except RpcError as err:
                assert err.error["code"] == 1001
                return False

        with ThreadPoolExecutor(8) as pool:
            wins = list(pool.map(lambda p: disable(*p), [(s, i) for i in ids for s in (a, b)]))
        assert [wins[2 * k] + wins[2 * k + 1] for k in range(len(ids))] == [1] * len(ids)
        # Concurrent creation through both: everything is listed by both.
        with ThreadPoolExecutor(8) as pool:
            made = list(
                pool.map(
                    lambda i: (a, b)[i % 2].rpc.call("invoicerequest", [i + 1, "c"]), range(100)
                )
            )
        for s in (a, b):
            listed = {r["invreq_id"] for r in s.rpc.call("listinvoicerequests")["invoicerequests"]}
            assert {m["invreq_id"] for m in made} <= listed
    finally:
        assert a.stop() == 0, a.output()
        assert b.stop() == 0, b.output()


async def test_every_call_after_close_is_refused_as_store_closed(pg_dsn: str) -> None:
    s = PostgresStore(pg_dsn)
    await s.open()
    await s.close()
    calls = [
        s.insert(rec(1)),
        s.get(f"{1:064x}"),
        s.list(ListQuery()),
        s.count_by_state(),
        s.disable(f"{1:064x}"),
        s.payments(),
        s.runes(),
        s.rune(0),
        s.rune_used(0, 1, None),
        s.rune_blacklist(),
        s.rune_blacklist_add(1, 2),
    ]
    for call in calls:
        with pytest.raises(StoreClosed, match=r"^store is closed$"):
            await call


async def test_a_database_failure_on_any_call_is_a_store_error(pg_dsn: str) -> None:
    """Tables another client dropped: payments, runes, the blacklist and the record counts
    answer 2002 "database error: ...", as the other calls always did."""
    s = PostgresStore(pg_dsn)
    await s.open()
    try:
        conn = await asyncpg.connect(pg_dsn)
        await conn.execute("DROP TABLE payments, runes, rune_blacklist_u64, invoice_requests")
        await conn.close()
        calls = [
            s.payments(),
            s.runes(),
            s.rune(0),
            s.rune_used(0, 1, None),
            s.rune_blacklist(),
            s.rune_blacklist_add(1, 2),
            s.rune_insert("method=getinfo", 1),
            s.count_by_state(),
            s.get(f"{1:064x}"),
        ]
        for call in calls:
            with pytest.raises(DatabaseError, match=r"^database error: ") as e:
                await call
            assert e.value.code == 2002
    finally:
        await s.close()
