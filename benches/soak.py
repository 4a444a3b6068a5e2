"""The long benchmarks (`make bench-soak`): memory over a million creations, and the cost of
a lookup by id in a small and in a very large store.

1. RSS of `invreq serve` after a 20,000-request warm-up, then after every segment of load
   until 1,000,000 `invoicerequest`s have been answered (HTTP, 64 connections).
2. `listinvoicerequests` by id (HTTP, 64 connections) against a store holding 10 thousand
   and one holding 10 million records. The big store is filled directly through SQLite with
   rows shaped like real ones (a real signed string per row would take hours); the server
   then reads it like any other.

Usage: python benches/soak.py [--requests N] [--big N] [--out benches/results/soak.md]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e import load, rpc, start_invreq

HTTP_CONNECTIONS = 64


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def memory(work: Path, total: int) -> list[str]:
    proc = start_invreq(work, "soak")
    try:
        body = work / "create.json"
        body.write_text(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "invoicerequest",
                    "params": {"amount": 1000, "description": "soak {n}"},
                }
            )
        )
        target = [proc.targets["http"]]
        rune = proc.rune()
        done = 0
        warm = load(target, body, HTTP_CONNECTIONS, 4.0, rune)
        done += warm["requests"]
        base = rss_mb(proc.p.pid)
        lines = [f"| {done} | {base:.1f} | 0.0 |"]
        print(lines[-1], flush=True)
        while done < total:
            r = load(target, body, HTTP_CONNECTIONS, 20.0, rune)
            done += r["requests"]
            now = rss_mb(proc.p.pid)
            lines.append(f"| {done} | {now:.1f} | {now - base:+.1f} |")
            print(lines[-1], f"({r['rps']:.0f} req/s, errors {r['errors']})", flush=True)
        stored = len(
            rpc(
                proc.sock,
                "listinvoicerequests",
                {"index": "created", "start": done - 5, "limit": 10},
            )["invoicerequests"]
        )
        assert stored > 0
        return lines
    finally:
        proc.stop()


def fill(db: Path, n: int, bolt12: str) -> list[str]:
    """`n` rows shaped like real records, each carrying ``bolt12`` (a real signed string:
    replies derive ``bolt12_unsigned`` from it); returns a sample of their ids."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")  # filling only: the measurement reads
    rng = random.Random(1)
    sample: list[str] = []
    batch = 100_000
    for start in range(0, n, batch):
        rows = []
        for i in range(start, min(n, start + batch)):
            invreq_id = rng.randbytes(32).hex()
            if i % max(1, n // 1000) == 0:
                sample.append(invreq_id)
            rows.append((invreq_id, bolt12, None, 1, 1, 0, 1_700_000_000 + i, "software:x"))
        conn.executemany(
            "INSERT INTO invoice_requests (invreq_id, bolt12, label, active, single_use, used,"
            " created_at, payer_key) VALUES (?,?,?,?,?,?,?,?)",
            rows,
        )
        conn.commit()
    conn.close()
    return sample


def lookup(work: Path, n: int, duration: float) -> str:
    name = f"big{n}"
    proc = start_invreq(work, name)  # creates the schema
    bolt12 = str(rpc(proc.sock, "invoicerequest", [1000, "soak"])["bolt12"])
    proc.stop()
    db = work / name / "regtest" / "invreq.sqlite3"
    t0 = time.monotonic()
    sample = fill(db, n, bolt12)
    print(
        f"filled {n} rows in {time.monotonic() - t0:.0f} s ({db.stat().st_size / 2**20:.0f} MiB)",
        flush=True,
    )
    proc = start_invreq(work, name)
    try:
        body = work / f"list{n}.json"
        body.write_text(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "listinvoicerequests",
                    "params": {"invreq_id": sample[len(sample) // 2]},
                }
            )
        )
        found = rpc(proc.sock, "listinvoicerequests", [sample[0]])["invoicerequests"]
        assert len(found) == 1
        r = load([proc.targets["http"]], body, HTTP_CONNECTIONS, duration, proc.rune())
        line = (
            f"| {n:,} | {r['rps']:.0f} | {r['p50_us'] / 1000:.2f} | "
            f"{r['p99_us'] / 1000:.2f} | {r['errors']} |"
        )
        print(line, flush=True)
        return line
    finally:
        proc.stop()
        db.unlink()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--big", type=int, default=10_000_000)
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--out", type=Path, default=Path("benches/results/soak.md"))
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="invreq-soak-", dir=os.environ.get("INVREQ_BENCH_DIR")))
    mem = memory(work, a.requests) if a.requests else ["| (skipped: --requests 0) | | |"]
    small = lookup(work, a.small, a.duration)
    big = lookup(work, a.big, a.duration)
    text = "\n".join(
        [
            "# Soak benchmark",
            "",
            "Command: `make bench-soak`. HTTP, 64 connections, SQLite with fsync'd group commits.",
            "",
            "## RSS of invreq serve while answering invoicerequests",
            "",
            "| requests answered | RSS MiB | growth since warm-up MiB |",
            "|---:|---:|---:|",
            *mem,
            "",
            "## listinvoicerequests by id, small and large store",
            "",
            "| records stored | req/s | p50 ms | p99 ms | errors |",
            "|---:|---:|---:|---:|---:|",
            small,
            big,
            "",
        ]
    )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
