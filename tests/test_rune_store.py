"""Runes on both stores: CLN's ``rate=N`` recorded in the database (shared by every process
and instance on it), u64 blacklist ranges, and the migration that stops storing rune
strings. The clock is injected: ``rate`` is about time, and tests never wait for it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import runes
from _service_fixtures import STORES, Server, store_url
from invreq import paging
from invreq.auth import RuneAuthority
from invreq.errors import RuneError
from invreq.store import postgres as pg
from invreq.store import sqlite as sq
from invreq.store.base import Store
from invreq.store.postgres import PostgresStore
from invreq.store.sqlite import SQLiteStore
from test_rest import http

T0 = 1_800_000_000.0
U64_MAX = 2**64 - 1


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=STORES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    url = store_url(request, request.param)
    return str(tmp_path / "db.sqlite3") if url is None else url


def open_store(url: str) -> Store:
    return PostgresStore(url) if url.startswith("postgres") else SQLiteStore(Path(url))


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    s = open_store(db_url)
    await s.open()
    yield s
    await s.close()


SECRET = bytes(range(32))


async def refused(auth: RuneAuthority, rune: str, method: str = "getinfo") -> str:
    with pytest.raises(RuneError) as e:
        await auth.check(rune, method=method, params={})
    assert e.value.code == 1502
    return e.value.message


async def test_rate_is_clns_minimum_interval_since_the_last_call_that_passed(
    store: Store,
) -> None:
    clock = Clock()
    auth = RuneAuthority(SECRET, store, clock=clock)
    rune = (await auth.createrune(restrictions=["rate=4"]))["rune"]  # one call per 15 s
    await auth.check(rune, method="getinfo", params={})
    clock.now = T0 + 14
    assert await refused(auth, rune) == "Not permitted: too soon"
    clock.now = T0 + 15  # the refused call at +14 was not recorded
    await auth.check(rune, method="getinfo", params={})
    clock.now = T0 + 29
    await refused(auth, rune)
    shown = (await auth.showrunes(rune))["runes"][0]
    assert shown["last_used"] == T0 + 15


async def test_a_call_refused_by_another_restriction_is_not_recorded(store: Store) -> None:
    clock = Clock()
    auth = RuneAuthority(SECRET, store, clock=clock)
    rune = (await auth.createrune(restrictions=["rate=1", "method=getinfo"]))["rune"]
    await refused(auth, rune, method="listinvoicerequests")
    clock.now = T0 + 1
    await auth.check(rune, method="getinfo", params={})
    clock.now = T0 + 2
    await refused(auth, rune)


async def test_rate_twice_is_rate_once_as_in_cln(store: Store) -> None:
    clock = Clock()
    auth = RuneAuthority(SECRET, store, clock=clock)
    rune = (await auth.createrune(restrictions=["rate=4", "rate=4"]))["rune"]
    await auth.check(rune, method="getinfo", params={})
    clock.now = T0 + 14
    await refused(auth, rune)
    clock.now = T0 + 15
    await auth.check(rune, method="getinfo", params={})


@pytest.mark.parametrize(
    ("restriction", "why"),
    [
        ("rate>4", "rate operator must be ="),
        ("rate=0", "malformed rate"),
        ("rate=x", "malformed rate"),
        ("rate=4294967295", "malformed rate"),
    ],
)
async def test_malformed_rates_refuse_every_call(store: Store, restriction: str, why: str) -> None:
    auth = RuneAuthority(SECRET, store, clock=Clock())
    rune = (await auth.createrune(restrictions=[restriction]))["rune"]
    assert await refused(auth, rune) == f"Not permitted: {why}"


async def test_rate_is_shared_by_instances_on_one_database(db_url: str) -> None:
    a, b = open_store(db_url), open_store(db_url)
    await a.open()
    await b.open()
    try:
        clock = Clock()
        one, two = RuneAuthority(SECRET, a, clock=clock), RuneAuthority(SECRET, b, clock=clock)
        rune = (await one.createrune(restrictions=["rate=1"]))["rune"]
        await one.check(rune, method="getinfo", params={})
        clock.now = T0 + 59
        await refused(two, rune)
        clock.now = T0 + 60
        # Twenty calls at the same instant through both: the database lets one pass.
        results = await asyncio.gather(
            *((one, two)[i % 2].check(rune, method="getinfo", params={}) for i in range(20)),
            return_exceptions=True,
        )
        passed = [r for r in results if not isinstance(r, BaseException)]
        assert passed == [0], results  # check returns the rune's unique id
        assert all(isinstance(r, RuneError) for r in results if r not in passed)
    finally:
        await a.close()
        await b.close()


async def test_blacklist_takes_the_whole_u64_range(db_url: str) -> None:
    s = open_store(db_url)
    await s.open()
    auth = RuneAuthority(SECRET, s, clock=Clock())
    try:
        r = await auth.blacklistrune(2**63, U64_MAX)
        assert r == {"blacklist": [{"start": 2**63, "end": U64_MAX}]}
        r = await auth.blacklistrune(0, 2**63 - 1)
        assert r == {"blacklist": [{"start": 0, "end": U64_MAX}]}
        assert await auth.blacklistrune(U64_MAX) == r
        rune = (await auth.createrune())["rune"]
        with pytest.raises(RuneError, match="Blacklisted"):
            await auth.check(rune, method="getinfo", params={})
    finally:
        await s.close()
    s = open_store(db_url)
    await s.open()
    try:
        assert sorted(await s.rune_blacklist()) == [
            (0, 2**63 - 1),
            (2**63, U64_MAX),
            (U64_MAX, U64_MAX),
        ]
    finally:
        await s.close()


# --- the migration from stored rune strings ------------------------------------------------


def old_rune(uid: int, restrictions: list[str]) -> str:
    made = runes.MasterRune(
        SECRET,
        unique_id=uid,
        restrictions=[runes.Restriction.from_str(r) for r in restrictions],
    )
    return str(made.to_base64())


OLD_RUNES = [
    old_rune(0, []),
    old_rune(1, ["method=getinfo"]),
    old_rune(2, ["method^list|method^get|method=summary", "method/listdatastore"]),
    old_rune(3, ["pnamelabel=a\\&b|pnum<2", "rate=60"]),
]


async def _old_sqlite(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        for statements in sq.MIGRATIONS[: sq.RUNE_STRINGS_DROPPED - 1]:
            for statement in statements:
                conn.execute(statement)
        conn.executemany(
            "INSERT INTO runes (unique_id, rune, created_at) VALUES (?, ?, ?)",
            [(i, r, 1_700_000_000 + i) for i, r in enumerate(OLD_RUNES)],
        )
        conn.execute("INSERT INTO rune_blacklist (first, last) VALUES (1, 1)")
        conn.execute(f"PRAGMA user_version={sq.RUNE_STRINGS_DROPPED - 1}")
    os.chmod(path, 0o600)


async def _old_postgres(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE invreq_schema (version INTEGER NOT NULL)")
        for number, statements in enumerate(pg.MIGRATIONS[: pg.RUNE_STRINGS_DROPPED - 1], 1):
            for statement in statements:
                await conn.execute(statement)
            await conn.execute("INSERT INTO invreq_schema (version) VALUES ($1)", number)
        await conn.executemany(
            "INSERT INTO runes (unique_id, rune, created_at) VALUES ($1, $2, $3)",
            [(i, r, 1_700_000_000 + i) for i, r in enumerate(OLD_RUNES)],
        )
        await conn.execute("INSERT INTO rune_blacklist (first, last) VALUES (1, 1)")
    finally:
        await conn.close()


async def _everything(url: str) -> str:
    """All the database holds, as text: files for SQLite, every table for PostgreSQL."""
    if not url.startswith("postgres"):
        path = Path(url)
        files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
        return b"".join(p.read_bytes() for p in files).decode("latin-1")
    conn = await asyncpg.connect(url)
    try:
        out: list[Any] = []
        for (t,) in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'"):
            out += [str(tuple(r)) for r in await conn.fetch(f'SELECT * FROM "{t}"')]
        return "\n".join(out)
    finally:
        await conn.close()


async def test_existing_rune_strings_are_converted_and_derived_again(db_url: str) -> None:
    if db_url.startswith("postgres"):
        await _old_postgres(db_url)
    else:
        await _old_sqlite(Path(db_url))
    s = open_store(db_url)
    await s.open()
    try:
        assert [r.restrictions for r in await s.runes()] == [
            "",
            "method=getinfo",
            "method^list|method^get|method=summary&method/listdatastore",
            "pnamelabel=a\\&b|pnum<2&rate=60",
        ]
        auth = RuneAuthority(SECRET, s, clock=Clock())
        listing = await auth.showrunes()
        assert isinstance(listing, paging.Listing)  # every rune, read chunk by chunk
        shown = (await listing.collect())["runes"]
        assert [r["rune"] for r in shown] == OLD_RUNES
        assert shown[1].get("blacklisted") is True
        assert "stored" not in (await auth.showrunes(OLD_RUNES[3]))["runes"][0]
        await auth.check(OLD_RUNES[2], method="listinvoicerequests", params={})
        assert (await auth.createrune())["unique_id"] == "4"
    finally:
        await s.close()
    content = await _everything(db_url)
    for rune in OLD_RUNES:
        assert all(rune[i : i + 12] not in content for i in range(len(rune) - 11)), rune


# --- rate across processes: two --workers, two instances on one PostgreSQL database ---------


def _getinfo_statuses(servers: list[Server], rune: str, calls: int) -> list[int]:
    """``calls`` HTTP getinfo calls at once, spread over ``servers``: their statuses."""

    def one(i: int) -> int:
        return http(servers[i % len(servers)], "/v1/getinfo", {}, rune)[0]

    with ThreadPoolExecutor(calls) as pool:
        return list(pool.map(one, range(calls)))


@pytest.mark.parametrize("kind", STORES)
def test_rate_is_shared_by_two_workers(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str
) -> None:
    s = Server(
        tmp_path / "data", db=store_url(request, kind), extra_args=["--workers", "2"]
    ).start()
    try:
        rune = s.rpc.call("createrune", {"restrictions": ["rate=1"]})["rune"]
        statuses = _getinfo_statuses([s], rune, 24)
        assert sorted(statuses) == [201] + [401] * 23
        # Still one minute to wait, whichever worker answers.
        assert _getinfo_statuses([s], rune, 8) == [401] * 8
    finally:
        assert s.stop() == 0, s.output()


def test_rate_is_shared_by_two_instances_on_one_postgresql_database(
    tmp_path: Path, pg_dsn: str
) -> None:
    a = Server(tmp_path / "a", db=pg_dsn).start()
    # The second instance takes the first one's rune secret, as docs/operating.md says to.
    (tmp_path / "b" / "regtest").mkdir(parents=True, mode=0o700)
    shutil.copy2(tmp_path / "a" / "regtest" / "rune_secret", tmp_path / "b" / "regtest")
    b = Server(tmp_path / "b", db=pg_dsn).start()
    try:
        rune = a.rpc.call("createrune", {"restrictions": ["rate=1"]})["rune"]
        assert http(a, "/v1/getinfo", {}, rune)[0] == 201
        status, r = http(b, "/v1/getinfo", {}, rune)
        assert status == 401 and r == {"code": 1502, "message": "Not permitted: too soon"}
        other = b.rpc.call("createrune", {"restrictions": ["rate=1"]})["rune"]
        assert sorted(_getinfo_statuses([a, b], other, 16)) == [201] + [401] * 15
    finally:
        assert a.stop() == 0, a.output()
        assert b.stop() == 0, b.output()


async def test_runes_are_read_up_to_limit_in_the_database(store: Store) -> None:
    """showrunes reads runes a chunk at a time: the store reads up to limit, not every rune."""
    ids = [await store.rune_insert(f"method=m{i}", 1_700_000_000) for i in range(4)]
    assert [r.unique_id for r in await store.runes()] == ids
    assert [r.unique_id for r in await store.runes(limit=2)] == ids[:2]
    assert [r.restrictions for r in await store.runes(limit=1)] == ["method=m0"]
