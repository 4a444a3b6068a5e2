"""The SQLite store on real files: durability, group commit, atomic state changes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from invreq.errors import (
    DatabaseError,
    NotActive,
    StartupError,
    StoreClosed,
    StoreError,
    UnknownInvoiceRequest,
)
from invreq.store.base import ListQuery, Record
from invreq.store.sqlite import SQLiteStore


def rec(i: int, *, label: str | None = None, single_use: bool = True) -> Record:
    return Record(
        invreq_id=f"{i:064x}",
        bolt12=f"lnr1test{i}",
        label=label,
        active=True,
        single_use=single_use,
        used=False,
        created_at=1_700_000_000 + i,
        payer_key="software:02" + "11" * 32,
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "db.sqlite3")
    await s.open()
    yield s
    await s.close()


async def test_concurrent_inserts_share_commits_and_all_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    s = SQLiteStore(path)
    await s.open()
    stored = await asyncio.gather(*(s.insert(rec(i)) for i in range(300)))
    assert sorted(stored) == list(range(1, 301))
    assert s.writes == 300
    assert s.commits < 300, "concurrent writes must be grouped into fewer commits"
    await s.close()
    s2 = SQLiteStore(path)
    await s2.open()
    listed = await s2.list(ListQuery())
    assert [r.invreq_id for r in listed] == [f"{i:064x}" for i in range(300)]
    await s2.close()


async def test_a_failing_write_does_not_undo_its_group(store: SQLiteStore) -> None:
    await store.insert(rec(1))
    results = await asyncio.gather(
        store.insert(rec(2)), store.insert(rec(1)), store.insert(rec(3)), return_exceptions=True
    )
    assert isinstance(results[1], StoreError)  # duplicate primary key
    assert [r.invreq_id[-1] for r in await store.list(ListQuery())] == ["1", "2", "3"]


async def test_disable_is_conditional(store: SQLiteStore) -> None:
    await store.insert(rec(1, label="x"))
    d = await store.disable(f"{1:064x}")
    assert d.active is False and d.label == "x"
    with pytest.raises(NotActive):
        await store.disable(f"{1:064x}")
    with pytest.raises(UnknownInvoiceRequest):
        await store.disable(f"{9:064x}")
    # Many racing disables of one record: exactly one wins.
    await store.insert(rec(2))
    out = await asyncio.gather(
        *(store.disable(f"{2:064x}") for _ in range(20)), return_exceptions=True
    )
    assert sum(isinstance(o, Record) for o in out) == 1
    assert all(isinstance(o, (Record, NotActive)) for o in out)


async def test_mark_used_deactivates_single_use_only(store: SQLiteStore) -> None:
    await store.insert(rec(1))
    await store.insert(rec(2, single_use=False))
    a = await store.mark_used(f"{1:064x}")
    b = await store.mark_used(f"{2:064x}")
    assert (a.used, a.active) == (True, False)
    assert (b.used, b.active) == (True, True)
    with pytest.raises(NotActive):  # a single-use request is paid once
        await store.mark_used(f"{1:064x}")
    assert (await store.mark_used(f"{2:064x}")).active  # multi-use: again and again
    with pytest.raises(UnknownInvoiceRequest):
        await store.mark_used(f"{3:064x}")


async def test_disable_against_mark_used_resolves_one_way(store: SQLiteStore) -> None:
    await store.insert(rec(1))
    out = await asyncio.gather(
        store.disable(f"{1:064x}"), store.mark_used(f"{1:064x}"), return_exceptions=True
    )
    assert sum(isinstance(o, Record) for o in out) == 1


async def test_list_filters_and_pages(store: SQLiteStore) -> None:
    for i in range(1, 8):
        await store.insert(rec(i, label="odd" if i % 2 else None))
    await store.disable(f"{3:064x}")
    ids = lambda rs: [int(r.invreq_id, 16) for r in rs]  # noqa: E731
    assert ids(await store.list(ListQuery(label="odd"))) == [1, 3, 5, 7]
    assert ids(await store.list(ListQuery(label="odd", active_only=True))) == [1, 5, 7]
    assert ids(await store.list(ListQuery(start=3, limit=2))) == [3, 4]
    assert ids(await store.list(ListQuery(start=2**64 - 1))) == []
    assert ids(await store.list(ListQuery(invreq_id=f"{4:064x}"))) == [4]
    assert await store.get(f"{99:064x}") is None


async def test_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as c, c:
        c.execute("PRAGMA user_version=99")
    with pytest.raises(StartupError, match="newer invreq"):
        await SQLiteStore(path).open()


async def test_unwritable_location_is_a_startup_error(tmp_path: Path) -> None:
    with pytest.raises(StartupError):
        await SQLiteStore(tmp_path / "missing-dir" / "db.sqlite3").open()


async def test_writes_after_close_are_refused(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "db.sqlite3")
    await s.open()
    await s.close()
    with pytest.raises(StoreError, match="closed"):
        await s.insert(rec(1))


async def test_durability_settings(store: SQLiteStore) -> None:
    with contextlib.closing(sqlite3.connect(store.path)) as c, c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_every_call_after_close_is_refused_as_store_closed(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "db.sqlite3")
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


async def test_a_database_failure_on_any_read_is_a_store_error(store: SQLiteStore) -> None:
    """Tables another process dropped: every read answers 2002 "database error: ...", not a
    bare driver exception (which the dispatcher would answer as -1 internal error)."""
    with contextlib.closing(sqlite3.connect(store.path)) as c, c:
        for table in ("payments", "runes", "rune_blacklist_u64", "invoice_requests"):
            c.execute(f"DROP TABLE {table}")
    reads = (store.payments(), store.runes(), store.rune(0), store.rune_blacklist())
    for call in (*reads, store.count_by_state()):
        with pytest.raises(DatabaseError, match=r"^database error: no such table") as e:
            await call
        assert e.value.code == 2002


async def test_commits_never_checkpoint_and_the_wal_stays_bounded(tmp_path: Path) -> None:
    # SQLite checkpoints in the committing connection by default, and a lone write commits on
    # the event loop: every few hundred requests the loop stood still for a checkpoint. Here
    # commits never checkpoint; the checkpoint thread and the flusher do, so the database
    # file gets the pages and the WAL starts over instead of growing with every write.
    import threading

    s = SQLiteStore(tmp_path / "db.sqlite3")
    await s.open()
    wal = tmp_path / "db.sqlite3-wal"
    try:
        assert s._write_conn is not None
        assert s._write_conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        big = "lnr1" + "q" * 3000  # about a page per record
        n = 0
        for _ in range(60):  # 6,000 records in groups, steadily, over a second or more
            await asyncio.gather(
                *(s.insert(dataclasses.replace(rec(n + i), bolt12=big)) for i in range(100))
            )
            n += 100
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.6)  # two checkpoint periods: the last one completes
        # Without checkpoints the WAL would hold every page of the 6,000 (24 MiB and more).
        assert wal.stat().st_size < 12 * 2**20, wal.stat().st_size
        assert (tmp_path / "db.sqlite3").stat().st_size > 6_000 * 3_000
        assert len(await s.list(ListQuery(limit=10_000))) == 6_000
    finally:
        await s.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("invreq-sqlite-ckpt")]
