"""A/B of source trees: the same rows for each, interleaved round by round.

This machine's speed drifts by tens of percent within minutes (the same code's closed-loop
req/s measured 3,300-6,400 in one quiet hour), so one run of each side proves nothing: the
sides take turns, several rounds, and each row also gives the server's CPU per request and
the CPU of its event loop's thread (the main thread), which drift much less.

Each side is a ``NAME=PYTHONPATH`` pair: the ``python/`` directory of a checkout (a git
worktree of the commit to compare, with its built ``_core``), e.g.

    python benches/ab.py --rounds 3 before=/work/wt-old/python after=python

Rows per server: single ``invoicerequest`` at 64 connections (HTTP and unix), batches of 50
from 16 connections (HTTP and unix; counted in items), open-loop HTTP latency at each
``--rates`` (requests/s offered), and pyln-client's sequential median against its floor.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import e2e

CLOSED = (
    ("http", "invoicerequest", 64, 1),
    ("unix", "invoicerequest", 64, 1),
    ("http", "batch 50", 16, 50),
    ("unix", "batch 50", 16, 50),
)


def side(
    name: str,
    work: Path,
    rates: list[float],
    duration: float,
    sequential: int,
    closed: bool,
    prefill: float,
) -> str:
    proc = e2e.start_invreq(work, name)
    try:
        bodies = e2e.bodies(work, proc)
        rune = proc.rune()
        out = []
        if prefill:  # a store with many records, as after make bench's closed-loop rows
            r = e2e.load([proc.targets["http"]], bodies["batch 50"], 16, prefill, rune)
            out.append(f"prefilled {r['requests'] * 50 * (prefill + e2e.WARMUP) / prefill:.0f}")
        elif not closed:  # the open rows still meet a store with records in it
            e2e.load([proc.targets["http"]], bodies["invoicerequest"], 64, 3.0, rune)
        for transport, body, connections, items in CLOSED if closed else ():
            cpu, loop = e2e.cpu_seconds(proc.p.pid), e2e.main_thread_cpu_seconds(proc.p.pid)
            r = e2e.load([proc.targets[transport]], bodies[body], connections, duration, rune)
            # The warm-up second is inside the CPU window: count its requests at the rate.
            served = r["requests"] * items * (duration + e2e.WARMUP) / duration
            out.append(
                f"{transport} {body} c={connections}: {r['rps'] * items:.0f}/s "
                f"cpu {(e2e.cpu_seconds(proc.p.pid) - cpu) / served * 1e6:.0f} µs "
                f"loop {(e2e.main_thread_cpu_seconds(proc.p.pid) - loop) / served * 1e6:.0f} µs"
            )
        for rate in rates:
            o = e2e.load([proc.targets["http"]], bodies["invoicerequest"], 64, duration, rune, rate)
            out.append(
                f"open {rate:.0f}/s: p50 {o['p50_us'] / 1000:.2f} p99 {o['p99_us'] / 1000:.2f} "
                f"p99.9 {o['p999_us'] / 1000:.2f} ms"
            )
        if sequential:
            s = e2e.sequential(name, proc, work, sequential)
            out.append(f"sequential {s.invoicerequest_ms:.3f} / {s.floor_ms:.3f} ms = {s.ratio}x")
        return " | ".join(out)
    finally:
        proc.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sides", nargs="+", help="NAME=PYTHONPATH")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--rates", default="1350,2700", help="open-loop rates, comma-separated")
    ap.add_argument("--sequential", type=int, default=300, help="requests (0: no row)")
    ap.add_argument(
        "--prefill",
        type=float,
        default=0.0,
        help="seconds of batches of 50 (16 HTTP connections) first, unmeasured",
    )
    ap.add_argument(
        "--no-closed",
        dest="closed",
        action="store_false",
        help="no closed-loop rows (3 s of closed-loop load first, unmeasured)",
    )
    a = ap.parse_args()
    sides = [s.split("=", 1) for s in a.sides]
    rates = [float(r) for r in a.rates.split(",") if r]
    work = Path(tempfile.mkdtemp(prefix="invreq-ab-"))
    for n in range(a.rounds):
        for name, path in sides:
            os.environ["PYTHONPATH"] = str(Path(path).resolve())
            line = side(
                f"{name}-{n}", work, rates, a.duration, a.sequential, a.closed, a.prefill
            )
            print(f"[{name} round {n}] {line}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
