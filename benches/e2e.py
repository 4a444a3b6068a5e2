"""End-to-end load on loopback: invreq against its ceilings and the pure-Python core.

The ceilings (benches/ceiling.py) are the bare handler (parse, constant reply) and the
stripped handler (the one-process limit of invoicerequest: parse, build, sign, verify,
reply), each on asyncio+json, on uvloop+orjson and on invreq's own stack (its default loop,
its codec). Beside the throughput rows: JSON-RPC
batches of 10 and 50 ``invoicerequest`` (counted in items), open-loop latency at 25%, 50%
and 80% of invreq's own maximum (timed from when each request was due), sequential
pyln-client latency against its floor measured in the same run, the store's group sizes
(from the server's metrics), ``--workers 2`` on SQLite and PostgreSQL, and Core
Lightning's own ``invoicerequest`` as the peer row where a lightningd can be started (see
:func:`start_cln`; skipped with a note otherwise).

Every server is a real process started here (temporary data directory, defaults otherwise:
SQLite, software signer, durable commits); the load comes from benches/loadgen (Rust, closed
or open loop, one connection per thread) so the client is not the bottleneck. One run, one
machine: the targets are ratios between rows of the same run.

Usage: python benches/e2e.py [--quick] [--duration S] [--out-dir benches/results]
       [--no-postgres]
Writes latest.md (the tables), latest.json (raw rows) and latest.png (one panel per
transport: throughput as a ratio of that transport's bare ceiling, and p99 latency).
``--quick`` (``make bench-quick``) runs a reduced set in about 2 minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from invreq import loops  # noqa: E402  (after the path; the default loop names the stack)

LOADGEN = ROOT / "target" / "release" / "invreq-loadgen"
PY = sys.executable
CONCURRENCY = (1, 16, 64, 256)
WARMUP = 1  # seconds of load before each row is measured
METHODS = ("invoicerequest", "listinvoicerequests", "decode")
#: The loop and codec `invreq serve` runs on by default (uvloop where installed, see
#: invreq.loops; its own codec: the standard library's parser with CLN's hooks, orjson for
#: replies): ratios are taken against the bare ceiling of this stack.
INVREQ_STACK = f"{loops.resolve('auto')}+invreq"
#: Row names of the ceilings by (mode, loop+codec) (benches/ceiling.py --mode, --loop,
#: --codec). "ceiling" is the name older runs used; the uvloop stacks are for scale: what
#: a faster loop, and a faster codec, would give the same handlers.
CEILINGS = {
    ("bare", "asyncio+json"): "ceiling",
    ("bare", "uvloop+json"): "ceiling uvloop",
    ("bare", "uvloop+orjson"): "ceiling uvloop+orjson",
    ("stripped", "asyncio+json"): "stripped handler",
    ("stripped", "uvloop+orjson"): "stripped handler uvloop+orjson",
    # invreq's own stack (INVREQ_STACK): what the ratios and targets are taken against.
    ("bare", INVREQ_STACK): f"ceiling {INVREQ_STACK}",
    ("stripped", INVREQ_STACK): f"stripped handler {INVREQ_STACK}",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Row:
    server: str  # invreq | ceiling | pure-python core | invreq postgresql ...
    method: str
    transport: str  # http | unix
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    #: CPU time the server's processes spent per answered request (user + system, µs): a
    #: figure other load on the machine barely moves, unlike req/s.
    cpu_us: float | None = None
    #: Requests per HTTP request or socket write: 1, or a batch's length (then ``rps``,
    #: ``requests`` and ``cpu_us`` count the batch's items, latencies are the whole batch's).
    items: int = 1


def _stat_fields(path: str) -> list[str]:
    """The fields of a /proc ``stat`` file after the command's name (which may hold spaces)."""
    text = Path(path).read_text()
    return text[text.rindex(")") + 2 :].split()


def _cpu_of(fields: list[str]) -> float:
    """User + system CPU seconds of a ``stat`` file's fields."""
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (the workers)."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = _stat_fields(f"/proc/{entry}/stat")
        except OSError:
            continue
        stats[int(entry)] = fields
        children.setdefault(int(fields[1]), []).append(int(entry))
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        if p in stats:
            total += _cpu_of(stats[p])
        todo += children.get(p, [])
    return total


def main_thread_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid``'s main thread alone (its event loop)."""
    return _cpu_of(_stat_fields(f"/proc/{pid}/task/{pid}/stat"))


class Proc:
    """A server process with an HTTP port and a unix socket."""

    def __init__(self, argv: list[str], http_port: int, sock: Path, log: Path) -> None:
        self.http_port = http_port
        self.sock = sock
        self.log = log
        with open(log, "ab") as f:
            self.p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.p.poll() is not None:
                raise RuntimeError(f"{argv} exited:\n{log.read_text()}")
            if sock.exists():
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", http_port), timeout=1),
                ):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{argv} did not start:\n{log.read_text()}")

    @property
    def targets(self) -> dict[str, str]:
        return {"http": f"http://127.0.0.1:{self.http_port}/rpc", "unix": f"unix:{self.sock}"}

    def rune(self) -> str:
        """An unrestricted rune for HTTP (made over the unix socket, which needs none)."""
        return str(rpc(self.sock, "createrune", {})["rune"])

    def stop(self) -> None:
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def start_invreq(
    work: Path,
    name: str,
    *,
    db: str | None = None,
    oracle: bool = False,
    workers: int = 1,
    metrics_port: int | None = None,
) -> Proc:
    data = work / name
    port = free_port()
    entry = [PY, str(ROOT / "benches" / "oracle_core.py")] if oracle else [PY, "-m", "invreq.cli"]
    argv = [
        *entry,
        "serve",
        "--data-dir",
        str(data),
        "--network",
        "regtest",
        "--http-port",
        str(port),
        "--log-level",
        "warn",
    ]
    if db:
        argv += ["--db", db]
    if workers > 1:
        argv += ["--workers", str(workers)]
    if metrics_port is not None:
        argv += ["--metrics-port", str(metrics_port)]
    return Proc(argv, port, data / "regtest" / "lightning-rpc", work / f"{name}.log")


def start_ceiling(work: Path, mode: str = "bare", stack: str = "asyncio+json") -> Proc:
    """benches/ceiling.py: ``bare`` (constant reply) or ``stripped`` (the one-process limit
    of invoicerequest), on ``asyncio+json`` or ``uvloop+orjson``."""
    port = free_port()
    name = f"ceiling-{mode}-{stack.replace('+', '-')}"
    sock = work / f"{name}.sock"
    loop, codec = stack.split("+")
    argv = [
        PY,
        str(ROOT / "benches" / "ceiling.py"),
        "--port",
        str(port),
        "--socket",
        str(sock),
        "--mode",
        mode,
        "--loop",
        loop,
        "--codec",
        codec,
    ]
    return Proc(argv, port, sock, work / f"{name}.log")


def rpc(sock: Path, method: str, params: Any) -> Any:
    from pyln.client import LightningRpc

    return LightningRpc(str(sock)).call(method, params)


def bodies(work: Path, proc: Proc) -> dict[str, Path]:
    """Request bodies: a creation (unique per request), a list by id, a decode."""
    made = rpc(proc.sock, "invoicerequest", [1000, "bench seed"])
    out = {}
    for method, params in {
        "invoicerequest": {"amount": 1000, "description": "bench {n}"},
        "listinvoicerequests": {"invreq_id": made["invreq_id"]},
        "decode": {"string": made["bolt12"]},
    }.items():
        path = work / f"{method}.json"
        path.write_text(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        out[method] = path
    for n in BATCHES:
        path = work / f"batch-{n}.json"
        path.write_text(json.dumps([{**CREATION, "id": i} for i in range(n)]))
        out[f"batch {n}"] = path
    return out


#: Batch lengths of the batch rows (JSON-RPC batches of ``invoicerequest``).
BATCHES = (10, 50)


def load(
    targets: list[str],
    body: Path,
    connections: int,
    duration: float,
    rune: str | None = None,
    rate: float | None = None,
) -> dict[str, Any]:
    """One loadgen run: closed loop, or open loop at ``rate`` requests/s offered."""
    argv = [
        str(LOADGEN),
        "--body",
        str(body),
        "--connections",
        str(connections),
        "--duration",
        str(duration),
        "--warmup",
        str(WARMUP),
    ]
    for t in targets:
        argv += ["--target", t]
    if rune is not None:
        argv += ["--header", f"Rune: {rune}"]
    if rate is not None:
        argv += ["--rate", f"{rate:.1f}"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=duration + 120)
    return dict(json.loads(out.stdout))


def measure(
    rows: list[Row],
    server: str,
    method: str,
    transport: str,
    targets: list[str],
    body: Path,
    connections: int,
    duration: float,
    rune: str | None = None,
    pid: int | None = None,
    items: int = 1,
) -> None:
    cpu_before = cpu_seconds(pid) if pid is not None else 0.0
    r = load(targets, body, connections, duration, rune)
    cpu = None
    if pid is not None and r["requests"]:
        # The load generator's warm-up second is inside the CPU window but not in
        # "requests": count the warm-up's requests at the measured rate.
        served = r["requests"] * items * (duration + WARMUP) / duration
        cpu = round((cpu_seconds(pid) - cpu_before) / served * 1e6, 1)
    row = Row(
        server,
        method,
        transport,
        connections,
        round(r["rps"] * items, 1),
        round(r["p50_us"] / 1000, 2),
        round(r["p99_us"] / 1000, 2),
        r["errors"],
        r["requests"] * items,
        cpu,
        items,
    )
    rows.append(row)
    print(
        f"{server:28} {method:20} {transport:5} c={connections:<4} {row.rps:9.1f} req/s "
        f"p50 {row.p50_ms:7.2f} ms p99 {row.p99_ms:7.2f} ms errors {row.errors} "
        f"cpu {row.cpu_us} µs/req",
        flush=True,
    )


#: The open-loop rows' offered rates, as shares of the server's own maximum (its best
#: closed-loop req/s in the same run, same method and transport).
OPEN_SHARES = (0.25, 0.5, 0.8)
#: Connections the open-loop client sends on: enough that at 80% of the maximum a
#: connection is free when a request is due unless the server has fallen behind.
OPEN_CONNECTIONS = 64


@dataclass
class OpenLoop:
    """Latency at a fixed offered rate, timed from when each request was due (a request
    that waits for the server, or for a free connection, counts the wait)."""

    server: str
    method: str
    transport: str
    share: float  # of max_rps
    max_rps: float
    offered_rps: float
    achieved_rps: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    errors: int
    late: int  # requests sent more than 1 ms after they were due


def measure_open(
    out: list[OpenLoop],
    server: str,
    method: str,
    transport: str,
    targets: list[str],
    body: Path,
    max_rps: float,
    duration: float,
    rune: str | None = None,
    shares: tuple[float, ...] = OPEN_SHARES,
) -> None:
    for share in shares:
        rate = max_rps * share
        r = load(targets, body, OPEN_CONNECTIONS, duration, rune, rate=rate)
        o = OpenLoop(
            server,
            method,
            transport,
            share,
            round(max_rps, 1),
            round(rate, 1),
            round(r["rps"], 1),
            round(r["p50_us"] / 1000, 2),
            round(r["p99_us"] / 1000, 2),
            round(r["p999_us"] / 1000, 2),
            r["errors"],
            r["late"],
        )
        out.append(o)
        print(
            f"open loop {server:16} {method:16} {transport:5} {share:4.0%} of {max_rps:.0f}: "
            f"{o.offered_rps:.0f} offered, {o.achieved_rps:.0f} done, p50 {o.p50_ms:.2f} "
            f"p99 {o.p99_ms:.2f} p99.9 {o.p999_ms:.2f} ms, errors {o.errors}, late {o.late}",
            flush=True,
        )


def max_rps(rows: list[Row], server: str, method: str, transport: str) -> float | None:
    """The best closed-loop req/s of ``server`` in this run (any concurrency)."""
    best = [r.rps for r in rows if (r.server, r.method, r.transport) == (server, method, transport)]
    return max(best) if best else None


@contextlib.contextmanager
def running(proc: Proc) -> Iterator[Proc]:
    try:
        yield proc
    finally:
        proc.stop()


@dataclass(frozen=True)
class Plan:
    """What one run measures: ``make bench`` (full) or ``make bench-quick`` (reduced)."""

    duration: float
    concurrency: tuple[int, ...]
    pair: tuple[int, ...]  # the connections of the multi-process rows
    methods: tuple[str, ...]
    transports: tuple[str, ...]
    sequential: int  # requests per sequential series
    postgres: bool
    #: The batch rows' connections: few, as a payout run's or a refund queue's callers are
    #: (64 connections of 50-request batches queue 3,200 requests: a closed loop's queue,
    #: longer than a row's window).
    batch_connections: tuple[int, ...] = (4, 16)


FULL = Plan(4.0, CONCURRENCY, (16, 64), METHODS, ("http", "unix"), 500, True)
QUICK = Plan(2.0, (1, 64), (64,), ("invoicerequest",), ("http", "unix"), 200, True, (16,))


@dataclass
class Sequential:
    """One request at a time from pyln-client, against the floor measured in the same run."""

    server: str
    requests: int
    invoicerequest_ms: float  # median
    getinfo_ms: float  # median: the same server's framing and dispatch
    commit_ms: float  # median: one fsync'd SQLite WAL commit of a record-sized row
    floor_ms: float  # getinfo + commit
    ratio: float  # invoicerequest / floor


@dataclass
class Groups:
    """Writes per store commit seen by the server's metrics while a row was measured."""

    method: str
    transport: str
    connections: int
    commits: int
    mean: float
    largest_bucket: str  # the smallest histogram bound holding every group


def run(plan: Plan) -> tuple[list[Row], list[Sequential], list[Groups], list[OpenLoop]]:
    rows: list[Row] = []
    seq: list[Sequential] = []
    groups: list[Groups] = []
    opened: list[OpenLoop] = []
    work = Path(tempfile.mkdtemp(prefix="invreq-bench-"))
    d = plan.duration
    try:
        for mode, method, body_text in (
            ("bare", "constant reply", '{"jsonrpc":"2.0","id":1,"method":"x","params":{}}'),
            ("stripped", "invoicerequest", json.dumps(CREATION)),
        ):
            body = work / f"{mode}.json"
            body.write_text(body_text)
            for (kind, stack), name in CEILINGS.items():
                if kind != mode:
                    continue
                with running(start_ceiling(work, mode, stack)) as ceiling:
                    for transport in plan.transports:
                        for c in plan.concurrency:
                            measure(
                                rows,
                                name,
                                method,
                                transport,
                                [ceiling.targets[transport]],
                                body,
                                c,
                                d,
                                pid=ceiling.p.pid,
                            )
        with running(start_invreq(work, "native")) as inv:
            b = bodies(work, inv)
            rune = inv.rune()
            seq.append(sequential("invreq", inv, work, plan.sequential))
            for method in plan.methods:
                for transport in plan.transports:
                    for c in plan.concurrency:
                        measure(
                            rows,
                            "invreq",
                            method,
                            transport,
                            [inv.targets[transport]],
                            b[method],
                            c,
                            d,
                            rune,
                            pid=inv.p.pid,
                        )
            for n in BATCHES:
                for transport in plan.transports:
                    for c in plan.batch_connections:
                        measure(
                            rows,
                            f"invreq batch {n}",
                            "invoicerequest",
                            transport,
                            [inv.targets[transport]],
                            b[f"batch {n}"],
                            c,
                            d,
                            rune,
                            pid=inv.p.pid,
                            items=n,
                        )
            for transport in plan.transports:
                top = max_rps(rows, "invreq", "invoicerequest", transport)
                if top:
                    measure_open(
                        opened,
                        "invreq",
                        "invoicerequest",
                        transport,
                        [inv.targets[transport]],
                        b["invoicerequest"],
                        top,
                        d,
                        rune,
                    )
        top = max_rps(rows, "invreq", "invoicerequest", "http")
        if top:
            open_floors(opened, work, top, d)
        mport = free_port()
        with running(start_invreq(work, "metered", metrics_port=mport)) as met:
            b = bodies(work, met)
            rune = met.rune()
            for transport in plan.transports:
                for c in plan.concurrency:
                    before = group_histogram(mport)
                    measure(
                        rows,
                        "invreq --metrics-port",
                        "invoicerequest",
                        transport,
                        [met.targets[transport]],
                        b["invoicerequest"],
                        c,
                        d,
                        rune,
                        pid=met.p.pid,
                    )
                    groups.append(group_delta("invoicerequest", transport, c, before, mport))
        with running(start_invreq(work, "sqlite-w2", workers=2)) as w2:
            b = bodies(work, w2)
            rune = w2.rune()
            for c in plan.pair:
                measure(
                    rows,
                    "invreq --workers 2",
                    "invoicerequest",
                    "http",
                    [w2.targets["http"]],
                    b["invoicerequest"],
                    c,
                    d,
                    rune,
                    pid=w2.p.pid,
                )
        with running(start_invreq(work, "oracle", oracle=True)) as ora:
            b = bodies(work, ora)
            rune = ora.rune()
            for method in ("invoicerequest", "decode"):
                if method not in plan.methods:
                    continue
                for transport in plan.transports:
                    for c in plan.concurrency:
                        measure(
                            rows,
                            "pure-python core",
                            method,
                            transport,
                            [ora.targets[transport]],
                            b[method],
                            c,
                            d,
                            rune,
                            pid=ora.p.pid,
                        )
        if plan.postgres:
            run_postgres(rows, work, plan)
        run_cln(rows, seq, work, plan)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows, seq, groups, opened


#: The open-loop rows that show what bounds invreq's latency at a fixed rate.
STRIPPED_OPEN = f"stripped handler {INVREQ_STACK} (no store)"
TMPFS_OPEN = "invreq, files in /dev/shm (no disk)"


def open_floors(opened: list[OpenLoop], work: Path, top: float, duration: float) -> None:
    """invreq's offered rates (its shares of ``top``, HTTP) on the stripped handler (the
    framing, build, sign, verify and reply, no store) and on invreq with its files in
    memory (/dev/shm: the store without the disk's fsync): what the latency would be
    without the store, and without the disk."""
    body = work / "stripped-open.json"
    body.write_text(json.dumps(CREATION))
    with running(start_ceiling(work, "stripped", INVREQ_STACK)) as ceiling:
        measure_open(
            opened,
            STRIPPED_OPEN,
            "invoicerequest",
            "http",
            [ceiling.targets["http"]],
            body,
            top,
            duration,
        )
    shm = Path("/dev/shm")
    if not shm.is_dir():
        return
    mem = Path(tempfile.mkdtemp(prefix="invreq-bench-", dir=shm))
    try:
        with running(start_invreq(mem, "tmpfs")) as tm:
            b = bodies(mem, tm)
            measure_open(
                opened,
                TMPFS_OPEN,
                "invoicerequest",
                "http",
                [tm.targets["http"]],
                b["invoicerequest"],
                top,
                duration,
                tm.rune(),
            )
    finally:
        shutil.rmtree(mem, ignore_errors=True)


# --- sequential latency against its floor ---------------------------------------------------

CREATION = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "invoicerequest",
    "params": {"amount": 1000, "description": "bench {n}"},
}


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


def commit_floor(directory: Path, n: int, row_bytes: int, gap: float = 0.0) -> float:
    """Median seconds of one fsync'd SQLite WAL commit (synchronous=FULL, as the store) of a
    row of ``row_bytes`` bytes, in a fresh file on the same disk as the server's; ``gap``:
    seconds the disk is left idle before each (not counted)."""
    return statistics.median(commit_times(directory, n, row_bytes, gap))


def commit_times(directory: Path, n: int, row_bytes: int, gap: float = 0.0) -> list[float]:
    """Seconds of each of ``n`` commits as in :func:`commit_floor` (its tail bounds a
    latency percentile: every creation waits for one)."""
    path = directory / "floor.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, body TEXT, created_at INTEGER)")
        samples = []
        for i in range(n):
            row = (os.urandom(32).hex(), "x" * row_bytes, i)
            if gap:
                time.sleep(gap)
            t = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t VALUES (?, ?, ?)", row)
            conn.execute("COMMIT")
            samples.append(time.perf_counter() - t)
        return samples
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def sequential(server: str, proc: Proc, work: Path, n: int) -> Sequential:
    """pyln-client on the unix socket, one request at a time (as a CLN plugin or script)."""
    from pyln.client import LightningRpc

    client = LightningRpc(str(proc.sock))
    for i in range(20):  # warm-up: connections, caches, the first pages of the file
        client.call("getinfo", {})
        client.call("invoicerequest", {"amount": 1000, "description": f"warm {i}"})
    timings: dict[str, list[float]] = {"getinfo": [], "invoicerequest": []}
    made: dict[str, Any] = {}
    for i in range(n):
        t = time.perf_counter()
        client.call("getinfo", {})
        timings["getinfo"].append(time.perf_counter() - t)
        t = time.perf_counter()
        made = client.call("invoicerequest", {"amount": 1000, "description": f"seq {i}"})
        timings["invoicerequest"].append(time.perf_counter() - t)
    row_bytes = len(json.dumps(made))
    commit = commit_floor(work, n, row_bytes)
    inv, info = _median_ms(timings["invoicerequest"]), _median_ms(timings["getinfo"])
    floor = round(info + commit * 1000, 3)
    s = Sequential(server, n, inv, info, round(commit * 1000, 3), floor, round(inv / floor, 2))
    print(
        f"sequential {server}: invoicerequest {inv:.3f} ms, getinfo {info:.3f} ms, "
        f"commit {s.commit_ms:.3f} ms: {s.ratio:.2f}x the floor",
        flush=True,
    )
    return s


# --- group sizes from the server's metrics ----------------------------------------------------


def group_histogram(port: int) -> dict[str, float]:
    """The cumulative buckets, sum and count of ``invreq_store_group_size``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("invreq_store_group_size"):
            continue
        name, _, value = line.rpartition(" ")
        if name.startswith("invreq_store_group_size_bucket"):
            out["le=" + name.split('le="')[1].rstrip('"}')] = float(value)
        elif name.startswith("invreq_store_group_size_sum"):
            out["sum"] = float(value)
        elif name.startswith("invreq_store_group_size_count"):
            out["count"] = float(value)
    return out


def group_delta(method: str, transport: str, c: int, before: dict[str, float], port: int) -> Groups:
    after = group_histogram(port)
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    commits = int(delta.get("count", 0))
    mean = delta.get("sum", 0.0) / commits if commits else 0.0
    largest = next(
        (k[3:] for k, v in delta.items() if k.startswith("le=") and commits and v >= commits),
        "-",
    )
    g = Groups(method, transport, c, commits, round(mean, 2), largest)
    print(f"groups {transport} c={c}: {commits} commits, mean {g.mean} writes", flush=True)
    return g


#: Why the CLN peer row is missing from this run, if it is (the report says so).
CLN_SKIPPED: list[str] = []
#: The peer's server name in the rows.
CLN_PEER = "lightningd (CLN peer)"


def start_cln(work: Path) -> Proc | None:
    """A regtest lightningd of its own (temporary directory), or None with the reason in
    ``CLN_SKIPPED``. lightningd is ``$LIGHTNINGD`` or the one on PATH; it needs a Bitcoin
    backend, and the harness starts no bitcoind: ``$INVREQ_BENCH_CLN_BACKEND`` names a
    backend plugin that replaces bcli (e.g. a regtest chain simulator), and
    ``$INVREQ_BENCH_CLN_ARGS`` adds lightningd options, ``{work}`` standing for a directory
    of this run (e.g. ``--fake-chain-dir={work}/chain``). Plugins run with this venv's
    ``python3`` first on PATH (it has pyln-client)."""
    import shlex

    lightningd = os.environ.get("LIGHTNINGD") or shutil.which("lightningd")
    backend = os.environ.get("INVREQ_BENCH_CLN_BACKEND")
    if lightningd is None:
        CLN_SKIPPED.append("no lightningd (set LIGHTNINGD, or put it on PATH)")
        return None
    if backend is None:
        CLN_SKIPPED.append(
            f"{lightningd} found, but no Bitcoin backend for it: set INVREQ_BENCH_CLN_BACKEND"
        )
        return None
    home = work / "cln"
    home.mkdir()
    extra = [
        a.replace("{work}", str(work))
        for a in shlex.split(os.environ.get("INVREQ_BENCH_CLN_ARGS", ""))
    ]
    argv = [
        lightningd,
        "--network=regtest",
        f"--lightning-dir={home}",
        "--developer",
        "--disable-plugin=bcli",
        f"--plugin={backend}",
        "--log-level=unusual",
        f"--log-file={home}/log",
        *extra,
    ]
    env = {**os.environ, "PATH": f"{Path(PY).parent}:{os.environ.get('PATH', '')}"}
    sock = home / "regtest" / "lightning-rpc"
    log = work / "cln.log"
    with open(log, "ab") as f:
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if p.poll() is not None:
            CLN_SKIPPED.append(f"lightningd exited with {p.returncode}: {log.read_text()[-300:]}")
            return None
        if sock.exists():
            with contextlib.suppress(Exception):
                rpc(sock, "getinfo", {})
                proc = Proc.__new__(Proc)
                proc.http_port, proc.sock, proc.log, proc.p = 0, sock, log, p
                return proc
        time.sleep(0.2)
    p.kill()
    p.wait()
    CLN_SKIPPED.append("lightningd did not answer getinfo within 60 s")
    return None


def run_cln(rows: list[Row], seq: list[Sequential], work: Path, plan: Plan) -> None:
    """Core Lightning's own ``invoicerequest`` on its unix socket: the same pyln-client
    sequence as invreq's sequential row, and the same load generator."""
    cln = start_cln(work)
    if cln is None:
        print(f"CLN peer row skipped: {CLN_SKIPPED[-1]}", file=sys.stderr)
        return
    with running(cln):
        seq.append(sequential(CLN_PEER, cln, work, plan.sequential))
        body = work / "cln-invoicerequest.json"
        body.write_text(json.dumps(CREATION))
        for c in plan.concurrency:
            measure(
                rows,
                CLN_PEER,
                "invoicerequest",
                "unix",
                [f"unix:{cln.sock}"],
                body,
                c,
                plan.duration,
                pid=cln.p.pid,
            )


def run_postgres(rows: list[Row], work: Path, plan: Plan) -> None:
    from _postgres import PostgresServer, _bin_dir

    bin_dir = _bin_dir()
    if bin_dir is None:
        print("PostgreSQL not installed: no PostgreSQL rows", file=sys.stderr)
        return
    pg = PostgresServer(bin_dir)
    pg.start()
    d = plan.duration
    try:
        dsn = pg.new_database()
        with running(start_invreq(work, "pg1", db=dsn)) as one:
            b = bodies(work, one)
            rune = one.rune()
            # A second instance shares the database and both secrets (as deployed).
            (work / "pg2" / "regtest").mkdir(parents=True, mode=0o700)
            for secret in ("payer_secret", "rune_secret"):
                shutil.copy2(work / "pg1" / "regtest" / secret, work / "pg2" / "regtest")
            for c in plan.pair:
                measure(
                    rows,
                    "invreq postgresql x1",
                    "invoicerequest",
                    "http",
                    [one.targets["http"]],
                    b["invoicerequest"],
                    c,
                    d,
                    rune,
                    pid=one.p.pid,
                )
            with running(start_invreq(work, "pg2", db=dsn)) as two:
                for c in plan.pair:
                    measure(
                        rows,
                        "invreq postgresql x2",
                        "invoicerequest",
                        "http",
                        [one.targets["http"], two.targets["http"]],
                        b["invoicerequest"],
                        c,
                        d,
                        rune,
                    )
        with running(start_invreq(work, "pgw", db=dsn, workers=2)) as pooled:
            rune = pooled.rune()
            for c in plan.pair:
                measure(
                    rows,
                    "invreq postgresql --workers 2",
                    "invoicerequest",
                    "http",
                    [pooled.targets["http"]],
                    b["invoicerequest"],
                    c,
                    d,
                    rune,
                    pid=pooled.p.pid,
                )
    finally:
        pg.stop()


# --- the report ------------------------------------------------------------------------------


def pick(rows: list[Row], server: str, method: str, transport: str, c: int) -> Row | None:
    for r in rows:
        if (r.server, r.method, r.transport, r.connections) == (server, method, transport, c):
            return r
    return None


def ceiling_of(rows: list[Row], transport: str, c: int, stack: str = INVREQ_STACK) -> Row | None:
    """The bare ceiling of ``stack`` (invreq's own loop and codec unless told)."""
    return pick(rows, CEILINGS[("bare", stack)], "constant reply", transport, c)


def _target(lines: list[str], what: str, measured: str, met: bool | None) -> None:
    lines.append(f"| {what} | {measured} | {'-' if met is None else 'yes' if met else 'no'} |")


def targets(rows: list[Row], seq: list[Sequential], opened: list[OpenLoop], c: int) -> list[str]:
    lines = [
        f"## Targets (issue 28; {c} connections, HTTP, invreq's loop and codec: {INVREQ_STACK})",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    inv = pick(rows, "invreq", "invoicerequest", "http", c)
    ceil = ceiling_of(rows, "http", c)
    limit = pick(rows, CEILINGS[("stripped", INVREQ_STACK)], "invoicerequest", "http", c)
    ora = pick(rows, "pure-python core", "invoicerequest", "http", c)
    w2 = pick(rows, "invreq --workers 2", "invoicerequest", "http", c)
    # Batches at their best connections (few callers with big batches).
    b50 = max(
        (r for r in rows if (r.server, r.transport) == (f"invreq batch {BATCHES[-1]}", "http")),
        key=lambda r: r.rps,
        default=None,
    )
    inv, ceil, limit, ora, w2, b50 = (
        r if r is not None and r.rps else None for r in (inv, ceil, limit, ora, w2, b50)
    )
    if inv and ceil:
        r = inv.rps / ceil.rps
        _target(
            lines,
            "invoicerequest ≥ 0.40 x bare handler",
            f"{r:.2f} x ({inv.rps:.0f} / {ceil.rps:.0f} req/s)",
            r >= 0.40,
        )
    if b50 and ceil:
        r = b50.rps / ceil.rps
        _target(
            lines,
            f"batches of {BATCHES[-1]} ≥ 0.8 x bare handler (items/s)",
            f"{r:.2f} x ({b50.rps:.0f} at {b50.connections} connections / {ceil.rps:.0f})",
            r >= 0.8,
        )
    for o in opened:
        if (o.server, o.method, o.transport, o.share) == ("invreq", "invoicerequest", "http", 0.5):
            _target(
                lines,
                "open loop at 50% of invreq's maximum: p99 ≤ 5 ms",
                f"{o.p99_ms:.2f} ms at {o.offered_rps:.0f} req/s offered",
                o.p99_ms <= 5 and not o.errors,
            )
    for o in opened:
        if o.server in (STRIPPED_OPEN, TMPFS_OPEN) and (o.transport, o.share) == ("http", 0.5):
            _target(lines, f"(p99 at the same rate: {o.server})", f"{o.p99_ms:.2f} ms", None)
    for s in seq:
        if s.server != "invreq":
            continue
        _target(
            lines,
            "sequential invoicerequest median ≤ 1.3 x (getinfo + one commit)",
            f"{s.ratio:.2f} x ({s.invoicerequest_ms:.3f} / {s.floor_ms:.3f} ms)",
            s.ratio <= 1.3,
        )
    if limit and ceil:
        r = limit.rps / ceil.rps
        _target(lines, "(the one-process limit: stripped handler / bare)", f"{r:.2f} x", None)
    if inv and limit:
        _target(lines, "(invoicerequest / stripped handler)", f"{inv.rps / limit.rps:.2f} x", None)
    if inv:
        _target(lines, "(closed-loop p99; issue 19 asked ≤ 10 ms)", f"{inv.p99_ms:.2f} ms", None)
    if inv and ora:
        _target(lines, "(invoicerequest / pure-Python core)", f"{inv.rps / ora.rps:.2f} x", None)
    if inv and w2:
        _target(lines, "(SQLite --workers 2 / --workers 1)", f"{w2.rps / inv.rps:.2f} x", None)
    return lines


def report(
    rows: list[Row],
    seq: list[Sequential],
    groups: list[Groups],
    opened: list[OpenLoop],
    out_dir: Path,
    command: str,
    plan: Plan,
) -> str:
    lines = [
        "# End-to-end benchmark",
        "",
        f"Command: `{command}`. {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {plan.duration:g} s per row after 1 s warm-up; "
        "loopback; SQLite with fsync'd group commits unless the server says otherwise. "
        "*server CPU µs/req* is the CPU time of the server's processes per request (the "
        "figure load from elsewhere on the machine barely moves). "
        f"invreq runs on {INVREQ_STACK}; *ratio* is req/s over the bare ceiling of that "
        "loop and codec, same transport and connections.",
        "",
        "| server | method | transport | connections | req/s | ratio | p50 ms | p99 ms | errors "
        "| server CPU µs/req |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ceil = ceiling_of(rows, r.transport, r.connections)
        ratio = f"{r.rps / ceil.rps:.2f}" if ceil and ceil.rps else "-"
        lines.append(
            f"| {r.server} | {r.method} | {r.transport} | {r.connections} | "
            f"{r.rps:.0f} | {ratio} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} | "
            f"{'-' if r.cpu_us is None else f'{r.cpu_us:.0f}'} |"
        )
    lines += [
        "",
        "## Sequential latency (pyln-client, one request at a time, unix socket)",
        "",
        "The floor is the same server's `getinfo` (framing and dispatch) plus one fsync'd "
        "SQLite WAL commit of a record-sized row on the same disk, both measured in this run.",
        "",
        "| server | requests | invoicerequest ms | getinfo ms | commit ms | floor ms | "
        "invoicerequest / floor |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in seq:
        # The floor is invreq's (its store's commit): for the CLN peer, only its medians.
        floor = (
            f"{s.commit_ms:.3f} | {s.floor_ms:.3f} | {s.ratio:.2f}"
            if s.server == "invreq"
            else "- | - | -"
        )
        lines.append(
            f"| {s.server} | {s.requests} | {s.invoicerequest_ms:.3f} | {s.getinfo_ms:.3f} | "
            f"{floor} |"
        )
    lines += [
        "",
        "## Open-loop latency (fixed offered rate)",
        "",
        f"Requests due at a fixed rate (a share of the server's best closed-loop req/s above, "
        f"same method and transport), sent on {OPEN_CONNECTIONS} connections and timed from "
        "when each was due, so time spent waiting for the server or a free connection counts "
        "(no coordinated omission). *late*: requests sent more than 1 ms after they were due. "
        f"The last rows drive invreq's HTTP rates at *{STRIPPED_OPEN}* and *{TMPFS_OPEN}*: "
        "the latency without the store, and with the store but without the disk.",
        "",
        "| server | method | transport | share of max | max req/s | offered req/s | "
        "done req/s | p50 ms | p99 ms | p99.9 ms | errors | late |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for o in opened:
        lines.append(
            f"| {o.server} | {o.method} | {o.transport} | {o.share:.0%} | {o.max_rps:.0f} | "
            f"{o.offered_rps:.0f} | {o.achieved_rps:.0f} | {o.p50_ms:.2f} | {o.p99_ms:.2f} | "
            f"{o.p999_ms:.2f} | {o.errors} | {o.late} |"
        )
    lines += [
        "",
        "## Store groups (writes per SQLite commit, from `invreq_store_group_size`)",
        "",
        "Seen by `invreq --metrics-port` while its rows above were measured.",
        "",
        "| method | transport | connections | commits | mean writes per commit | all groups ≤ |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for g in groups:
        lines.append(
            f"| {g.method} | {g.transport} | {g.connections} | {g.commits} | {g.mean:.2f} | "
            f"{g.largest_bucket} |"
        )
    lines.append("")
    for why in CLN_SKIPPED:
        lines += [f"CLN peer row (`{CLN_PEER}`) skipped: {why}.", ""]
    for c in sorted({64} & set(plan.concurrency)) or [max(plan.concurrency)]:
        lines += targets(rows, seq, opened, c)
    text = "\n".join(lines) + "\n"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latest.md").write_text(text)
    raw = {
        "rows": [asdict(r) for r in rows],
        "sequential": [asdict(s) for s in seq],
        "groups": [asdict(g) for g in groups],
        "open_loop": [asdict(o) for o in opened],
        "invreq_stack": INVREQ_STACK,
    }
    (out_dir / "latest.json").write_text(json.dumps(raw, indent=1))
    chart(rows, out_dir / "latest.png")
    return text


#: One colour per server (never reused), one line style per method.
COLOURS = (
    "#000000",  # ceiling
    "#7f7f7f",
    "#1f77b4",
    "#17becf",
    "#d62728",  # invreq
    "#ff7f0e",
    "#9467bd",
    "#2ca02c",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#393b79",
)
STYLES = {
    "constant reply": (":", "s"),
    "invoicerequest": ("-", "o"),
    "listinvoicerequests": ("--", "^"),
    "decode": ("-.", "D"),
}


def chart(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    servers = list(dict.fromkeys(r.server for r in rows))
    colour = {s: COLOURS[i % len(COLOURS)] for i, s in enumerate(servers)}
    transports = list(dict.fromkeys(r.transport for r in rows))
    conc = sorted({r.connections for r in rows})
    fig, axes = plt.subplots(
        2, len(transports), figsize=(7 * len(transports) + 3, 9), squeeze=False, sharex=True
    )
    drawn_servers: list[str] = []
    drawn_methods: list[str] = []
    for col, transport in enumerate(transports):
        top, bottom = axes[0][col], axes[1][col]
        for server in servers:
            for method in STYLES:
                pts = []
                for r in rows:
                    if (r.server, r.method, r.transport) != (server, method, transport):
                        continue
                    ceil = ceiling_of(rows, transport, r.connections)
                    if ceil and ceil.rps:
                        pts.append((r.connections, r.rps / ceil.rps, r.p99_ms))
                if len(pts) < 2:
                    continue
                pts.sort()
                line, marker = STYLES[method]
                kw = {"color": colour[server], "linestyle": line, "marker": marker}
                top.plot([p[0] for p in pts], [p[1] for p in pts], **kw)
                bottom.plot([p[0] for p in pts], [p[2] for p in pts], **kw)
                drawn_servers += [server] if server not in drawn_servers else []
                drawn_methods += [method] if method not in drawn_methods else []
        top.set_title(f"{transport}: throughput / bare ceiling ({INVREQ_STACK})")
        top.set_ylabel("ratio of the ceiling")
        top.axhline(1.0, color="#000000", linewidth=0.5)
        bottom.set_title(f"{transport}: p99 latency")
        bottom.set_ylabel("ms")
        bottom.set_yscale("log")
        for ax in (top, bottom):
            ax.set_xscale("log", base=2)
            ax.set_xticks(conc, [str(c) for c in conc])
            ax.grid(True, alpha=0.3)
        bottom.set_xlabel("concurrent connections")
    handles = [Line2D([], [], color=colour[s], linewidth=3) for s in drawn_servers]
    handles += [
        Line2D([], [], color="#555555", linestyle=STYLES[m][0], marker=STYLES[m][1])
        for m in drawn_methods
    ]
    labels = [f"server: {s}" for s in drawn_servers] + [f"method: {m}" for m in drawn_methods]
    fig.legend(handles, labels, loc="center right", fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1 - 3 / (7 * len(transports) + 3), 1))
    fig.savefig(path, dpi=90)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, help="seconds per row (full: 4, quick: 2)")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "benches" / "results")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="a reduced set (1 and 64 connections, invoicerequest, 2 s rows): about 2 minutes",
    )
    a = ap.parse_args()
    if not LOADGEN.exists():
        print(
            "build the load generator first: cargo build --release -p invreq-loadgen",
            file=sys.stderr,
        )
        return 2
    plan = QUICK if a.quick else FULL
    if a.duration is not None:
        plan = dataclasses.replace(plan, duration=a.duration)
    if a.no_postgres:
        plan = dataclasses.replace(plan, postgres=False)
    rows, seq, groups, opened = run(plan)
    command = "make bench-quick" if a.quick else "make bench"
    print(report(rows, seq, groups, opened, a.out_dir, command, plan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
