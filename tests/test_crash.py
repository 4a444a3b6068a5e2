"""Crash consistency of the SQLite store, and a store that cannot write, on a real server.

docs/operating.md promises that an `invoicerequest` is committed (fsync'd) before its reply leaves,
and that a refused call stores nothing. So after a SIGKILL at any moment, every request
whose reply came back must be there after a restart, in at least the state that was
acknowledged; requests in flight may or may not be there; the file must be intact. And when
writes cannot be made durable (a full disk, a database locked by someone else), callers
get code 2002, nothing is acknowledged, and reads keep working.

The kill moments are random; the seed of a failing round is in the assertion message.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import resource
import sqlite3
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from _service_fixtures import Server
from invreq import bolt12
from invreq.store import sqlite as sqlite_store
from pyln.client import LightningRpc, RpcError

ROUNDS = 4
PYLN_CLIENTS = 6
#: Requests per HTTP batch: one batch is inserted as one multi-row statement, one commit.
BATCH = 25
KILL_AFTER = (0.2, 1.0)
DISABLE_SHARE = 0.4
JOIN_TIMEOUT = 15.0


def db_path(s: Server) -> Path:
    return s.data_dir / s.network / "invreq.sqlite3"


def integrity(path: Path) -> list[tuple[Any, ...]]:
    """PRAGMA integrity_check through a separate read-only connection (WAL included)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()


def http_rune(s: Server) -> str | None:
    """An unrestricted rune for POST /rpc, if this server wants one."""
    try:
        return str(s.rpc.call("createrune")["rune"])
    except RpcError as e:
        if isinstance(e.error, dict) and e.error.get("code") == -32601:
            return None
        raise


@dataclasses.dataclass
class Ledger:
    """What the clients were told, shared by their threads."""

    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    #: invreq_id -> bolt12 of every creation whose reply came back
    created: dict[str, str] = dataclasses.field(default_factory=dict)
    #: ids a disable was sent for (acknowledged or not)
    disable_sent: set[str] = dataclasses.field(default_factory=set)
    #: ids whose disable reply came back
    disabled: set[str] = dataclasses.field(default_factory=set)
    #: creations sent, acknowledged or not: an upper bound on what may be stored
    attempts: int = 0
    #: failures while the server was meant to be up (a crash explains the others)
    unexpected: list[str] = dataclasses.field(default_factory=list)

    def created_one(self, r: dict[str, Any]) -> None:
        assert r["active"] is True, r
        with self.lock:
            self.created[r["invreq_id"]] = r["bolt12"]


def pyln_client(s: Server, ledger: Ledger, killing: threading.Event, seed: int, tag: str) -> None:
    """Create, sometimes disable, until the server goes away under us."""
    rpc = LightningRpc(str(s.socket_path))
    rng = random.Random(seed)
    n = 0
    while True:
        try:
            with ledger.lock:
                ledger.attempts += 1
            r: dict[str, Any] = rpc.call(
                "invoicerequest",
                {"amount": rng.randint(1, 10**9), "description": f"crash {tag} {n}", "label": tag},
            )
            ledger.created_one(r)
            n += 1
            if rng.random() < DISABLE_SHARE:
                with ledger.lock:
                    ledger.disable_sent.add(r["invreq_id"])
                d: dict[str, Any] = rpc.call("disableinvoicerequest", [r["invreq_id"]])
                assert d["active"] is False and d["invreq_id"] == r["invreq_id"], d
                with ledger.lock:
                    ledger.disabled.add(r["invreq_id"])
        except Exception as e:  # the kill: connection refused, reset, lost ...
            if not killing.is_set():
                with ledger.lock:
                    ledger.unexpected.append(f"{tag}: {e!r}")
            return


def http_batch_client(
    s: Server, rune: str | None, ledger: Ledger, killing: threading.Event, tag: str
) -> None:
    """Batches over HTTP: bigger commit groups, so a kill can land in a multi-row insert."""
    headers = {"Content-Type": "application/json"}
    if rune is not None:
        headers["Rune"] = rune
    n = 0
    while True:
        batch = [
            {
                "jsonrpc": "2.0",
                "id": i,
                "method": "invoicerequest",
                "params": {"amount": 1000 + i, "description": f"crash {tag} {n}.{i}"},
            }
            for i in range(BATCH)
        ]
        with ledger.lock:
            ledger.attempts += BATCH
        req = urllib.request.Request(s.url, data=json.dumps(batch).encode(), headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=JOIN_TIMEOUT) as resp:
                replies = json.loads(resp.read())
            for r in replies:
                ledger.created_one(r["result"])
        except Exception as e:
            if not killing.is_set():
                with ledger.lock:
                    ledger.unexpected.append(f"{tag}: {e!r}")
            return
        n += 1


def list_all(s: Server) -> list[dict[str, Any]]:
    """Every record, page by page along created_index (a list without paging parameters
    returns them all; paging parameters must reach the same records)."""
    out: list[dict[str, Any]] = []
    start = 0
    while True:
        page = s.rpc.call("listinvoicerequests", {"index": "created", "start": start})
        records: list[dict[str, Any]] = page["invoicerequests"]
        if not records:
            return out
        out += records
        start = records[-1]["created_index"] + 1


def check_after_restart(s: Server, ledger: Ledger, context: str) -> int:
    """Everything acknowledged is there in its acknowledged state; everything there is a
    valid, verifying request of ours; nothing appeared that was never asked for."""
    listed = {x["invreq_id"]: x for x in list_all(s)}
    missing = ledger.created.keys() - listed.keys()
    assert not missing, f"{context}: {len(missing)} acknowledged requests lost: {sorted(missing)}"
    assert len(listed) <= ledger.attempts, f"{context}: more records than creations sent"
    for invreq_id, bolt12_string in ledger.created.items():
        assert listed[invreq_id]["bolt12"] == bolt12_string, f"{context}: {invreq_id} changed"
    for invreq_id in ledger.disabled:
        assert listed[invreq_id]["active"] is False, f"{context}: acknowledged disable undone"
    for invreq_id, rec in listed.items():
        if invreq_id not in ledger.disable_sent:
            assert rec["active"] is True, f"{context}: {invreq_id} inactive, never disabled"
    payer_id = s.rpc.call("getinfo")["id"]
    for invreq_id, rec in listed.items():
        decoded = bolt12.decode_invoice_request(rec["bolt12"])  # verifies the signature
        assert decoded.invreq_id.hex() == invreq_id, context
        assert decoded.payer_id.hex() == payer_id, context
        assert decoded.description is not None and decoded.description.startswith("crash ")
    indexes = [rec["created_index"] for rec in listed.values()]
    assert len(set(indexes)) == len(indexes) and indexes == sorted(indexes), context
    return len(listed)


def test_every_acknowledged_request_survives_sigkill_in_its_acknowledged_state(
    tmp_path: Path,
) -> None:
    """Rounds of: clients creating and disabling concurrently, SIGKILL at a random moment,
    restart on the same files, check everything acknowledged so far."""
    base_seed = int.from_bytes(os.urandom(4), "big")
    s = Server(tmp_path / "data")
    ledger = Ledger()
    acknowledged_per_round: list[int] = []
    try:
        for rnd in range(ROUNDS):
            seed = base_seed + rnd
            context = f"round {rnd}, seed {seed}"
            rng = random.Random(seed)
            s.start()
            rune = http_rune(s)
            killing = threading.Event()
            before = len(ledger.created)
            threads = [
                threading.Thread(
                    target=pyln_client,
                    args=(s, ledger, killing, rng.randrange(2**32), f"r{rnd}c{i}"),
                )
                for i in range(PYLN_CLIENTS)
            ]
            threads.append(
                threading.Thread(
                    target=http_batch_client, args=(s, rune, ledger, killing, f"r{rnd}h")
                )
            )
            for t in threads:
                t.start()
            time.sleep(rng.uniform(*KILL_AFTER))
            killing.set()
            s.kill()
            for t in threads:
                t.join(JOIN_TIMEOUT)
            assert not any(t.is_alive() for t in threads), f"{context}: a client hangs"
            assert not ledger.unexpected, f"{context}: failed before the kill: {ledger.unexpected}"
            acknowledged_per_round.append(len(ledger.created) - before)
            s.start()
            check_after_restart(s, ledger, context)
            assert integrity(db_path(s)) == [("ok",)], context
            s.kill()
        s.start()
        stored = check_after_restart(s, ledger, f"final, seed {base_seed}")
        assert s.stop() == 0, s.stderr
    finally:
        s.kill()
    assert integrity(db_path(s)) == [("ok",)]
    conn = sqlite3.connect(f"file:{db_path(s)}?mode=ro", uri=True)
    try:
        assert conn.execute("SELECT count(*) FROM invoice_requests").fetchone()[0] == stored
    finally:
        conn.close()
    # Not vacuous: the kills interrupted real traffic.
    assert sum(acknowledged_per_round) >= 20 * ROUNDS, acknowledged_per_round


# --- writes that cannot be made durable --------------------------------------------------


def rpc_error(s: Server, method: str, params: Any) -> dict[str, Any]:
    with pytest.raises(RpcError) as e:
        s.rpc.call(method, params)
    assert isinstance(e.value.error, dict), e.value.error
    return e.value.error  # type: ignore[no-any-return]


def assert_reads_work(s: Server, first: dict[str, Any], count: int) -> None:
    listed = s.rpc.call("listinvoicerequests")["invoicerequests"]
    assert len(listed) == count
    one = s.rpc.call("listinvoicerequests", [first["invreq_id"]])["invoicerequests"]
    assert one[0]["active"] is True
    assert s.rpc.call("decode", [first["bolt12"]])["valid"] is True
    assert s.rpc.call("getinfo")["network"] == "regtest"


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not hasattr(resource, "prlimit"),
    reason="needs prlimit(2) on another process (Linux)",
)
def test_a_full_disk_refuses_writes_with_2002_stores_nothing_and_reads_keep_working(
    tmp_path: Path,
) -> None:
    """RLIMIT_FSIZE of 0 on the running server makes every file write fail (EFBIG), as a
    full disk would; CPython ignores SIGXFSZ, so the process lives to answer. (chmod cannot
    do this: the server already holds the file open.)"""
    s = Server(tmp_path / "data").start()
    try:
        first = s.rpc.call("invoicerequest", [1000, "before the disk filled"])
        assert s.proc is not None
        soft, hard = resource.prlimit(s.proc.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(s.proc.pid, resource.RLIMIT_FSIZE, (0, hard))
        try:
            e = rpc_error(s, "invoicerequest", [2000, "while the disk is full"])
            assert e["code"] == 2002, e
            e = rpc_error(s, "disableinvoicerequest", [first["invreq_id"]])
            assert e["code"] == 2002, e
            assert_reads_work(s, first, 1)
        finally:
            resource.prlimit(s.proc.pid, resource.RLIMIT_FSIZE, (soft, hard))
        assert_reads_work(s, first, 1)
        # The store recovers by itself once space is back.
        second = s.rpc.call("invoicerequest", [3000, "after space is back"])
        assert s.rpc.call("disableinvoicerequest", [first["invreq_id"]])["active"] is False
        ids = [x["invreq_id"] for x in s.rpc.call("listinvoicerequests")["invoicerequests"]]
        assert ids == [first["invreq_id"], second["invreq_id"]]
        assert s.stop() == 0, s.stderr
    finally:
        s.kill()
    assert integrity(db_path(s)) == [("ok",)]


BUSY_SECONDS = sqlite_store.BUSY_TIMEOUT_MS / 1000


@pytest.mark.skipif(BUSY_SECONDS > 15, reason="the store's busy timeout is too long for a test")
def test_a_database_locked_by_another_process_refuses_writes_with_2002_while_reads_keep_working(
    tmp_path: Path,
) -> None:
    """Another process holds the write lock for longer than the store's busy timeout: the
    write waits that long, then fails with 2002 and stores nothing; reads (WAL) are never
    held up. This costs the busy timeout (10 s) in wall time, on purpose."""
    s = Server(tmp_path / "data").start()
    try:
        first = s.rpc.call("invoicerequest", [1000, "before the lock"])
        assert_reads_work(s, first, 1)
        outcome: dict[str, Any] = {}

        def write() -> None:
            try:
                outcome["result"] = s.rpc.call("invoicerequest", [2000, "while locked"])
            except RpcError as e:
                outcome["error"] = e.error
            except Exception as e:  # reported below, not lost in the thread
                outcome["exception"] = repr(e)

        locker = sqlite3.connect(db_path(s), isolation_level=None)
        try:
            locker.execute("BEGIN EXCLUSIVE")
            writer = threading.Thread(target=write)
            writer.start()
            time.sleep(0.3)  # the write is now waiting for the lock
            started = time.monotonic()
            assert_reads_work(s, first, 1)
            assert time.monotonic() - started < 2.0, "reads must not wait for the writer"
            writer.join(BUSY_SECONDS + 10)
            assert not writer.is_alive(), "the write must give up after the busy timeout"
        finally:
            with contextlib.suppress(sqlite3.Error):
                locker.execute("ROLLBACK")
            locker.close()
        assert "error" in outcome, outcome
        assert outcome["error"]["code"] == 2002, outcome
        assert_reads_work(s, first, 1)
        after = s.rpc.call("invoicerequest", [3000, "after the lock"])
        ids = [x["invreq_id"] for x in s.rpc.call("listinvoicerequests")["invoicerequests"]]
        assert ids == [first["invreq_id"], after["invreq_id"]]
        assert s.stop() == 0, s.stderr
    finally:
        s.kill()
    assert integrity(db_path(s)) == [("ok",)]
