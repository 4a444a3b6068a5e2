"""End-to-end load on loopback: invreq against the frontend ceiling and the pure-Python core.

Every server is a real process started here (temporary data directory, defaults otherwise:
SQLite, software signer, durable commits); the load comes from benches/loadgen (Rust,
closed loop, one connection per thread) so the client is not the bottleneck. One run, one
machine: the targets are ratios between rows of the same run.

Usage: python benches/e2e.py [--duration S] [--out-dir benches/results] [--no-postgres]
Writes latest.md (the table), latest.json (raw rows) and latest.png (chart).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

LOADGEN = ROOT / "target" / "release" / "invreq-loadgen"
PY = sys.executable
CONCURRENCY = (1, 16, 64, 256)


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
    work: Path, name: str, *, db: str | None = None, oracle: bool = False, workers: int = 1
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
    return Proc(argv, port, data / "regtest" / "lightning-rpc", work / f"{name}.log")


def start_ceiling(work: Path) -> Proc:
    port = free_port()
    sock = work / "ceiling.sock"
    argv = [PY, str(ROOT / "benches" / "ceiling.py"), "--port", str(port), "--socket", str(sock)]
    return Proc(argv, port, sock, work / "ceiling.log")


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
    return out


def load(
    targets: list[str], body: Path, connections: int, duration: float, rune: str | None = None
) -> dict[str, Any]:
    argv = [
        str(LOADGEN),
        "--body",
        str(body),
        "--connections",
        str(connections),
        "--duration",
        str(duration),
        "--warmup",
        "1",
    ]
    for t in targets:
        argv += ["--target", t]
    if rune is not None:
        argv += ["--header", f"Rune: {rune}"]
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
) -> None:
    r = load(targets, body, connections, duration, rune)
    row = Row(
        server,
        method,
        transport,
        connections,
        round(r["rps"], 1),
        round(r["p50_us"] / 1000, 2),
        round(r["p99_us"] / 1000, 2),
        r["errors"],
        r["requests"],
    )
    rows.append(row)
    print(
        f"{server:28} {method:20} {transport:5} c={connections:<4} {row.rps:9.1f} req/s "
        f"p50 {row.p50_ms:7.2f} ms p99 {row.p99_ms:7.2f} ms errors {row.errors}",
        flush=True,
    )


@contextlib.contextmanager
def running(proc: Proc) -> Iterator[Proc]:
    try:
        yield proc
    finally:
        proc.stop()


def run(duration: float, with_postgres: bool) -> list[Row]:
    rows: list[Row] = []
    work = Path(tempfile.mkdtemp(prefix="invreq-bench-"))
    try:
        with running(start_ceiling(work)) as ceiling:
            body = work / "ceiling.json"
            body.write_text('{"jsonrpc":"2.0","id":1,"method":"invoicerequest","params":{}}')
            for transport in ("http", "unix"):
                for c in CONCURRENCY:
                    measure(
                        rows,
                        "ceiling",
                        "constant reply",
                        transport,
                        [ceiling.targets[transport]],
                        body,
                        c,
                        duration,
                    )
        with running(start_invreq(work, "native")) as inv:
            b = bodies(work, inv)
            rune = inv.rune()
            for method in ("invoicerequest", "listinvoicerequests", "decode"):
                for transport in ("http", "unix"):
                    for c in CONCURRENCY:
                        measure(
                            rows,
                            "invreq",
                            method,
                            transport,
                            [inv.targets[transport]],
                            b[method],
                            c,
                            duration,
                            rune,
                        )
        with running(start_invreq(work, "oracle", oracle=True)) as ora:
            b = bodies(work, ora)
            rune = ora.rune()
            for method in ("invoicerequest", "decode"):
                for transport in ("http", "unix"):
                    for c in CONCURRENCY:
                        measure(
                            rows,
                            "pure-python core",
                            method,
                            transport,
                            [ora.targets[transport]],
                            b[method],
                            c,
                            duration,
                            rune,
                        )
        if with_postgres:
            run_postgres(rows, work, duration)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def run_postgres(rows: list[Row], work: Path, duration: float) -> None:
    from _postgres import PostgresServer, _bin_dir

    bin_dir = _bin_dir()
    if bin_dir is None:
        print("PostgreSQL not installed: no PostgreSQL rows", file=sys.stderr)
        return
    pg = PostgresServer(bin_dir)
    pg.start()
    try:
        dsn = pg.new_database()
        with running(start_invreq(work, "pg1", db=dsn)) as one:
            b = bodies(work, one)
            rune = one.rune()
            # A second instance shares the database and both secrets (as deployed).
            (work / "pg2" / "regtest").mkdir(parents=True, mode=0o700)
            for secret in ("payer_secret", "rune_secret"):
                shutil.copy2(work / "pg1" / "regtest" / secret, work / "pg2" / "regtest")
            for c in (16, 64):
                measure(
                    rows,
                    "invreq postgresql x1",
                    "invoicerequest",
                    "http",
                    [one.targets["http"]],
                    b["invoicerequest"],
                    c,
                    duration,
                    rune,
                )
            with running(start_invreq(work, "pg2", db=dsn)) as two:
                for c in (16, 64):
                    measure(
                        rows,
                        "invreq postgresql x2",
                        "invoicerequest",
                        "http",
                        [one.targets["http"], two.targets["http"]],
                        b["invoicerequest"],
                        c,
                        duration,
                        rune,
                    )
        with running(start_invreq(work, "pgw", db=dsn, workers=2)) as pooled:
            rune = pooled.rune()
            for c in (16, 64):
                measure(
                    rows,
                    "invreq postgresql --workers 2",
                    "invoicerequest",
                    "http",
                    [pooled.targets["http"]],
                    b["invoicerequest"],
                    c,
                    duration,
                    rune,
                )
    finally:
        pg.stop()


def pick(rows: list[Row], server: str, method: str, transport: str, c: int) -> Row | None:
    for r in rows:
        if (r.server, r.method, r.transport, r.connections) == (server, method, transport, c):
            return r
    return None


def report(rows: list[Row], out_dir: Path, command: str, duration: float) -> str:
    lines = [
        "# End-to-end benchmark",
        "",
        f"Command: `{command}`. {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {duration:g} s per row after 1 s warm-up; loopback; "
        "SQLite with fsync'd group commits unless the server says otherwise.",
        "",
        "| server | method | transport | connections | req/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.server} | {r.method} | {r.transport} | {r.connections} | "
            f"{r.rps:.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} |"
        )
    inv = pick(rows, "invreq", "invoicerequest", "http", 64)
    ceil = pick(rows, "ceiling", "constant reply", "http", 64)
    ora = pick(rows, "pure-python core", "invoicerequest", "http", 64)
    lines += [
        "",
        "## Targets (64 connections, HTTP)",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    if inv and ceil:
        ratio = inv.rps / ceil.rps
        lines.append(
            f"| invoicerequest ≥ 0.6 x ceiling | {ratio:.2f} x ({inv.rps:.0f} / "
            f"{ceil.rps:.0f} req/s) | {'yes' if ratio >= 0.6 else 'no'} |"
        )
    if inv and ora:
        ratio = inv.rps / ora.rps
        lines.append(
            f"| invoicerequest ≥ 4 x pure-Python core | {ratio:.2f} x | "
            f"{'yes' if ratio >= 4 else 'no'} |"
        )
    if inv:
        lines.append(
            f"| p99 ≤ 10 ms | {inv.p99_ms:.2f} ms | {'yes' if inv.p99_ms <= 10 else 'no'} |"
        )
    text = "\n".join(lines) + "\n"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latest.md").write_text(text)
    (out_dir / "latest.json").write_text(json.dumps([asdict(r) for r in rows], indent=1))
    chart(rows, out_dir / "latest.png")
    return text


def chart(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    series = sorted(
        {(r.server, r.method, r.transport) for r in rows if r.connections in CONCURRENCY}
    )
    for server, method, transport in series:
        pts = sorted(
            (r.connections, r.rps, r.p99_ms)
            for r in rows
            if (r.server, r.method, r.transport) == (server, method, transport)
        )
        if len(pts) < 2:
            continue
        label = f"{server} {method} ({transport})"
        style = "--" if transport == "unix" else "-"
        ax1.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o", label=label)
        ax2.plot([p[0] for p in pts], [p[2] for p in pts], style, marker="o", label=label)
    for ax, title, unit in ((ax1, "throughput", "requests/s"), (ax2, "p99 latency", "ms")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(CONCURRENCY), [str(c) for c in CONCURRENCY])
        ax.set_xlabel("concurrent connections")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    ax2.set_yscale("log")
    ax1.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("--out-dir", type=Path, default=ROOT / "benches" / "results")
    ap.add_argument("--no-postgres", action="store_true")
    a = ap.parse_args()
    if not LOADGEN.exists():
        print(
            "build the load generator first: cargo build --release -p invreq-loadgen",
            file=sys.stderr,
        )
        return 2
    rows = run(a.duration, not a.no_postgres)
    print(report(rows, a.out_dir, "make bench", a.duration))
    return 0


if __name__ == "__main__":
    sys.exit(main())
