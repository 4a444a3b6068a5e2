"""`--workers N` on SQLite: one writer process owns the file (invreq.store.writer).

Real processes on real SQLite files. The store-level tests run the writer as its own
process (``serve_writer``, as ``invreq.workers`` runs it) on a socketpair and compare every
answer, errors included, with the plain ``SQLiteStore``'s. The service-level tests run
``invreq serve --workers 2`` and kill or stop its processes: the parent is stopped
(SIGSTOP) where a test needs the workers to outlive a dead sibling for a while, since it
would otherwise stop them at once, as it should.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from _service_fixtures import Server
from invreq import bolt12
from invreq.errors import DatabaseError, RpcError
from invreq.store.base import ListQuery, Payment, PaymentLimits, Record, Store
from invreq.store.sqlite import SCHEMA_VERSION, SQLiteStore
from invreq.store.writer import WRITES, WorkerStore
from pyln.client import RpcError as PylnRpcError

#: Bound on a client thread after the service went away: a hang detector, not a timing.
JOIN_TIMEOUT = 30.0
#: Bound on a service stopping: beyond its own bound on HTTP requests in flight (30 s).
STOP_TIMEOUT = 60.0

WRITER = """
import asyncio, socket, sys
from pathlib import Path
from invreq.store.writer import serve_writer

link = socket.socket(fileno=int(sys.argv[2]))
asyncio.run(serve_writer(Path(sys.argv[1]), [link], lambda: print("ready", flush=True)))
"""


# --- the store through the writer, against the store itself -------------------------------


@dataclasses.dataclass
class WriterProcess:
    proc: subprocess.Popen[bytes]
    store: WorkerStore


@pytest.fixture
async def through_writer(tmp_path: Path) -> AsyncIterator[WriterProcess]:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path / "shared.sqlite3"), str(theirs.fileno())],
        pass_fds=[theirs.fileno()],
        stdout=subprocess.PIPE,
    )
    theirs.close()
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    store = WorkerStore(ours)
    await store.open()
    try:
        yield WriterProcess(proc, store)
    finally:
        await store.close()  # the writer sees its only link close, and ends
        if proc.poll() is None:
            proc.wait(JOIN_TIMEOUT)
        proc.stdout.close()


def rec(i: int, *, single_use: bool = True) -> Record:
    return Record(
        invreq_id=f"{i:064x}",
        bolt12=f"lnr1test{i}",
        label=f"l{i}",
        active=True,
        single_use=single_use,
        used=False,
        created_at=1_700_000_000 + i,
        payer_key="software:02" + "11" * 32,
        approval={"device": "x", "n": i} if i == 2 else None,
    )


def pay(i: int, invreq: int, status: str = "pending") -> Payment:
    return Payment(
        payment_id=0,
        invreq_id=f"{invreq:064x}",
        invoice=f"lni1test{i}",
        amount_msat=1000 + i,
        payment_hash=f"{i:064x}",
        status=status,
        created_at=1_700_000_100 + i,
        node_id="02" + "22" * 32,
        attempt_deadline=1_700_000_200,
    )


async def scenario(store: Store) -> list[Any]:
    """Every write, succeeding and failing each way it can, then every read."""
    limits = PaymentLimits(per_request=1, per_minute=100)
    steps: list[Callable[[], Awaitable[Any]]] = [
        *(lambda i=i: store.insert(rec(i, single_use=i != 3)) for i in range(1, 6)),
        lambda: store.insert(rec(1)),  # the same invreq_id again
        lambda: store.disable(f"{4:064x}"),
        lambda: store.disable(f"{4:064x}"),  # NotActive
        lambda: store.disable("ff" * 32),  # UnknownInvoiceRequest
        lambda: store.mark_used("ff" * 32),
        lambda: store.payment_claim(pay(1, 1)),
        lambda: store.payment_claim(pay(1, 1)),  # the same payment_hash: the first, not new
        lambda: store.payment_claim(pay(2, 1)),  # single-use, pending: AlreadyClaimed
        lambda: store.payment_claim(pay(3, 4)),  # disabled: NotActive
        lambda: store.payment_claim(pay(4, 99)),  # UnknownInvoiceRequest
        lambda: store.payment_claim(pay(5, 3), limits),
        lambda: store.payment_claim(pay(6, 3), limits),  # PaymentLimited
        lambda: store.payment_claim(pay(7, 5, "refused")),
        lambda: store.payment_claim(pay(7, 5)),  # the refused row becomes the attempt
        lambda: store.payment_finish(1, "paid", 1_700_000_300, preimage="33" * 32),
        lambda: store.payment_finish(1, "failed", 1_700_000_301, error="late"),  # NotPending
        lambda: store.payment_finish(999, "failed", 1_700_000_301),  # no such payment
        lambda: store.mark_used(f"{1:064x}"),  # single-use and used: NotActive
        lambda: store.mark_used(f"{3:064x}"),
        lambda: store.disable_noting_payments(f"{5:064x}", 1_700_000_400),
        lambda: store.disable_noting_payments(f"{5:064x}", 1_700_000_401),  # NotActive
        lambda: store.rune_insert("", 1_700_000_000),
        lambda: store.rune_insert("method=getinfo", 1_700_000_001),
        lambda: store.rune_used(1, 10, None),
        lambda: store.rune_used(1, 11, None),  # another call got there first: False
        lambda: store.rune_blacklist_add(0, 2**64 - 1),
        # reads
        lambda: store.list(ListQuery()),
        lambda: store.get(f"{2:064x}"),
        lambda: store.count_by_state(),
        lambda: store.payments(),
        lambda: store.payments(start=2, limit=1),
        lambda: store.runes(limit=1),
        lambda: store.payment_by_hash(f"{7:064x}"),
        lambda: store.runes(),
        lambda: store.rune(1),
        lambda: store.rune_blacklist(),
    ]
    outcomes: list[Any] = []
    for step in steps:
        try:
            outcomes.append(("ok", await step()))
        except RpcError as e:
            outcomes.append((type(e), e.code, e.message, e.data))
    return outcomes


async def test_the_writer_answers_as_the_store_itself_errors_included(
    tmp_path: Path, through_writer: WriterProcess
) -> None:
    alone = SQLiteStore(tmp_path / "alone.sqlite3")
    await alone.open()
    try:
        expected = await scenario(alone)
    finally:
        await alone.close()
    got = await scenario(through_writer.store)
    assert got == expected
    errors = [(o[0].__name__, o[1]) for o in expected if o[0] != "ok"]
    assert errors == [
        ("DatabaseError", 2002),  # UNIQUE constraint failed: invoice_requests.invreq_id
        ("NotActive", 1001),
        ("UnknownInvoiceRequest", -1),
        ("UnknownInvoiceRequest", -1),
        ("AlreadyClaimed", 2103),
        ("NotActive", 1001),
        ("UnknownInvoiceRequest", -1),
        ("PaymentLimited", 2111),
        ("PaymentNotPending", 2113),
        ("StoreError", 2002),
        ("NotActive", 1001),
        ("NotActive", 1001),
    ], errors


async def test_concurrent_writes_through_the_writer_are_grouped_and_durable(
    tmp_path: Path, through_writer: WriterProcess
) -> None:
    store = through_writer.store
    indexes = await asyncio.gather(*(store.insert(rec(i)) for i in range(1, 301)))
    assert sorted(indexes) == list(range(1, 301))
    # Acknowledged means committed: another connection sees them all, without the writer.
    with contextlib.closing(sqlite3.connect(tmp_path / "shared.sqlite3")) as conn, conn:
        (n,) = conn.execute("SELECT count(*) FROM invoice_requests").fetchone()
        commits = conn.execute("PRAGMA user_version").fetchone()
    assert n == 300 and commits == (SCHEMA_VERSION,)


async def test_a_dead_writer_fails_writes_with_2002_and_reads_go_on(
    through_writer: WriterProcess,
) -> None:
    store, proc = through_writer.store, through_writer.proc
    await store.insert(rec(1))
    proc.send_signal(signal.SIGSTOP)  # the next writes wait in its socket
    waiting = [asyncio.ensure_future(store.insert(rec(i))) for i in range(2, 12)]
    await asyncio.sleep(0)  # sent (not a timing: the outcome is the same either way)
    proc.kill()
    proc.wait()
    for fut in waiting:
        with pytest.raises(DatabaseError) as e:
            await fut
        assert e.value.code == 2002
        assert e.value.message == "database error: the SQLite writer process is gone"
    with pytest.raises(DatabaseError, match="writer process is gone"):
        await store.disable(f"{1:064x}")
    assert [r.invreq_id for r in await store.list(ListQuery())] == [f"{1:064x}"]
    assert (await store.get(f"{1:064x}")) is not None


def test_every_write_method_of_the_store_goes_to_the_writer() -> None:
    """WRITES is the list of the store's writes: a new write in store/base.py must be added
    there (and to WorkerStore), or a worker would not have it."""
    reads = {"get", "get_by_k1", "list", "count_by_state", "payment_by_hash", "payments"}
    reads |= {"payment_count"}
    reads |= {"runes", "rune", "rune_blacklist", "indexes", "events", "index_details"}
    lifecycle = {"open", "close"}
    methods = {
        name
        for name, value in vars(SQLiteStore).items()
        if asyncio.iscoroutinefunction(value) and not name.startswith("_")
    }
    assert methods - reads - lifecycle == WRITES
    assert all(asyncio.iscoroutinefunction(getattr(WorkerStore, m)) for m in methods)


# --- the service: invreq serve --workers 2 on SQLite ---------------------------------------


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def tree(s: Server) -> tuple[int, list[int]]:
    """(writer, workers) of a running ``--workers`` server."""
    assert s.proc is not None
    kids = children(s.proc.pid)
    while any(comm(k) not in ("invreq-writer", "invreq-worker") for k in kids):
        time.sleep(0.01)  # a worker just forked names itself first thing
    writers = [k for k in kids if comm(k) == "invreq-writer"]
    workers = [k for k in kids if comm(k) == "invreq-worker"]
    assert len(writers) == 1 and len(kids) == 1 + len(workers), [comm(k) for k in kids]
    return writers[0], workers


def stop(pid: int) -> None:
    """SIGSTOP ``pid`` and wait until it is stopped (signals are delivered asynchronously)."""
    os.kill(pid, signal.SIGSTOP)
    while state(pid) != "T":
        time.sleep(0.01)


def db_ids(s: Server) -> set[str]:
    path = s.data_dir / s.network / "invreq.sqlite3"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return {r[0] for r in conn.execute("SELECT invreq_id FROM invoice_requests")}
    finally:
        conn.close()


def http_call(s: Server, rune: str, method: str, params: Any) -> dict[str, Any]:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(s.url, data=body, headers={"Rune": rune})
    try:
        with urllib.request.urlopen(req, timeout=JOIN_TIMEOUT) as r:
            reply: dict[str, Any] = json.loads(r.read())
    except urllib.error.HTTPError as e:
        reply = json.loads(e.read())
    return reply


@dataclasses.dataclass
class Load:
    """Clients creating requests until told to stop or refused; what they were told."""

    s: Server
    rune: str
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    acked: set[str] = dataclasses.field(default_factory=set)
    #: how each client ended: an error object, or an exception's repr, or "stopped"
    ends: list[Any] = dataclasses.field(default_factory=list)
    stop: threading.Event = dataclasses.field(default_factory=threading.Event)
    threads: list[threading.Thread] = dataclasses.field(default_factory=list)

    def start(self, unix: int = 4, http: int = 4) -> Load:
        for i in range(unix + http):
            t = threading.Thread(target=self._client, args=(i, i < unix), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def _client(self, tag: int, unix: bool) -> None:
        rpc, n = self.s.rpc, 0
        while not self.stop.is_set():
            params = [1000 + n, f"load {tag} {n}"]
            try:
                if unix:
                    r = rpc.call("invoicerequest", params)
                else:
                    reply = http_call(self.s, self.rune, "invoicerequest", params)
                    if "error" in reply:
                        raise PylnRpcError("invoicerequest", params, reply["error"])
                    r = reply["result"]
            except PylnRpcError as e:
                self._end(e.error)
                return
            except Exception as e:  # the service went away under us
                self._end(repr(e))
                return
            with self.lock:
                self.acked.add(r["invreq_id"])
            n += 1
        self._end("stopped")

    def _end(self, how: Any) -> None:
        with self.lock:
            self.ends.append(how)

    def until_acked(self, n: int) -> None:
        while len(self.acked) < n:
            assert all(t.is_alive() for t in self.threads), self.ends
            time.sleep(0.01)

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(JOIN_TIMEOUT)
            assert not t.is_alive(), "a client hung"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path / "data", extra_args=["--workers", "2"]).start()
    assert s.proc is not None
    kids = children(s.proc.pid)
    try:
        yield s
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(s.proc.pid, signal.SIGCONT)  # a test may have stopped it
        s.kill()
        for pid in kids:  # a failed test leaves none behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_two_workers_share_one_writer(service: Server) -> None:
    s = service
    writer, workers = tree(s)
    assert len(workers) == 2
    rune = s.rpc.call("createrune", {})["rune"]
    before = {p: cpu_ticks(p) for p in (writer, *workers)}

    def over_http(i: int) -> str:
        return str(http_call(s, rune, "invoicerequest", [1000 + i, f"w{i}"])["result"]["invreq_id"])

    def over_unix(i: int) -> str:
        return str(s.rpc.call("invoicerequest", [2000 + i, f"u{i}"])["invreq_id"])

    with ThreadPoolExecutor(16) as pool:
        made = list(pool.map(over_http, range(150))) + list(pool.map(over_unix, range(150)))
    listed = [x["invreq_id"] for x in s.rpc.call("listinvoicerequests")["invoicerequests"]]
    assert len(listed) == len(set(listed)) == 300 and set(listed) == set(made)
    for x in s.rpc.call("listinvoicerequests")["invoicerequests"][:3]:
        assert bolt12.decode_invoice_request(x["bolt12"]).invreq_id.hex() == x["invreq_id"]
    assert all(cpu_ticks(p) > before[p] for p in before), "the writer and both workers worked"

    # Errors decided in the writer come back typed, over both doors.
    target = made[0]
    assert s.rpc.call("disableinvoicerequest", [target])["active"] is False
    with pytest.raises(PylnRpcError) as e:
        s.rpc.call("disableinvoicerequest", [target])
    assert e.value.error == {"code": 1001, "message": "invoice_request is not active"}
    reply = http_call(s, rune, "disableinvoicerequest", ["ab" * 32])
    assert reply["error"] == {"code": -1, "message": "Unknown invoice_request"}

    assert s.stop(signal.SIGTERM) == 0, s.output()
    assert not s.socket_path.exists()
    for p in (writer, *workers):
        assert not Path(f"/proc/{p}").exists() or state(p) == "Z"
    assert db_ids(s) == set(made)


def test_a_writer_that_cannot_open_the_file_stops_the_start_with_one_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "data" / "regtest" / "invreq.sqlite3"
    path.parent.mkdir(parents=True, mode=0o700)
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    os.chmod(path, 0o600)
    s = Server(tmp_path / "data", extra_args=["--workers", "2"])
    with pytest.raises(RuntimeError, match="exited with 1") as e:
        s.start()
    lines = [line for line in str(e.value).splitlines() if line.startswith("invreq serve:")]
    assert len(lines) == 1 and "written by a newer invreq" in lines[0], str(e.value)
    assert "listening" not in str(e.value)  # no worker started


def test_sigkill_a_worker_under_load_the_other_goes_on_and_nothing_acknowledged_is_lost(
    service: Server,
) -> None:
    s = service
    assert s.proc is not None
    _, workers = tree(s)
    load = Load(s, s.rpc.call("createrune", {})["rune"]).start()
    load.until_acked(100)
    stop(s.proc.pid)  # so that it does not stop the survivor at once
    try:
        os.kill(workers[0], signal.SIGKILL)
        while state(workers[0]) != "Z":
            time.sleep(0.01)
        # The writer serves the other worker, which now takes every connection (the
        # first clients may have lost theirs with the dead one).
        after = Load(s, load.rune).start()
        after.until_acked(100)
        alone = s.rpc.call("invoicerequest", [5000, "after the kill"])
        assert alone["invreq_id"] in {
            x["invreq_id"] for x in s.rpc.call("listinvoicerequests")["invoicerequests"]
        }
        load.join()  # the clients still running are served by the survivor to the end
        after.join()
    finally:
        os.kill(s.proc.pid, signal.SIGCONT)
    assert s.proc.wait(STOP_TIMEOUT) != 0  # one worker failed: the service says so
    acked = load.acked | after.acked | {alone["invreq_id"]}
    assert acked <= db_ids(s)
    again = Server(s.data_dir).start()  # one process, on the file the writer left
    try:
        listed = {x["invreq_id"] for x in again.rpc.call("listinvoicerequests")["invoicerequests"]}
        assert acked <= listed
    finally:
        assert again.stop() == 0, again.output()


def test_sigkill_the_writer_workers_answer_2002_and_the_service_stops(
    service: Server,
) -> None:
    s = service
    assert s.proc is not None
    writer, workers = tree(s)
    load = Load(s, s.rpc.call("createrune", {})["rune"]).start()
    load.until_acked(100)
    stop(s.proc.pid)  # the workers stay up without their writer
    try:
        os.kill(writer, signal.SIGKILL)
        while state(writer) != "Z":
            time.sleep(0.01)
        for t in load.threads:  # every client is refused (no hang), none disconnected
            t.join(JOIN_TIMEOUT)
            assert not t.is_alive(), "a client hung"
        gone = {"code": 2002, "message": "database error: the SQLite writer process is gone"}
        assert load.ends == [gone] * len(load.threads)
        with pytest.raises(PylnRpcError) as e:
            s.rpc.call("invoicerequest", [1000, "no writer"])
        assert e.value.error == gone
        # Reads are the workers' own.
        listed = {x["invreq_id"] for x in s.rpc.call("listinvoicerequests")["invoicerequests"]}
        assert load.acked <= listed
    finally:
        os.kill(s.proc.pid, signal.SIGCONT)
    assert s.proc.wait(STOP_TIMEOUT) != 0
    assert "Traceback" not in s.output()
    for p in workers:
        assert not Path(f"/proc/{p}").exists() or state(p) == "Z"
    assert load.acked <= db_ids(s)
    again = Server(s.data_dir).start()
    try:
        listed = {x["invreq_id"] for x in again.rpc.call("listinvoicerequests")["invoicerequests"]}
        assert load.acked <= listed
    finally:
        assert again.stop() == 0, again.output()


def test_sigterm_under_load_loses_nothing_acknowledged(service: Server) -> None:
    s = service
    assert s.proc is not None
    tree(s)
    load = Load(s, s.rpc.call("createrune", {})["rune"]).start()
    load.until_acked(200)
    assert s.stop(signal.SIGTERM, timeout=STOP_TIMEOUT) == 0, s.output()
    load.join()
    assert load.acked <= db_ids(s)
    again = Server(s.data_dir, extra_args=["--workers", "2"]).start()
    try:
        listed = {x["invreq_id"] for x in again.rpc.call("listinvoicerequests")["invoicerequests"]}
        assert load.acked <= listed
    finally:
        assert again.stop() == 0, again.output()
