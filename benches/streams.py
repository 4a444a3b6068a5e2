"""Creations with payee pages watching: ``invoicerequest`` throughput with N event streams open.

    python benches/streams.py [--streams 0,256] [--duration 4]

A payee page keeps an event stream (``GET /r/<id>/events``) open while its request is
pending; a process serves up to 256 (a quarter of the HTTP connection cap, so 250 by
default). The streams here all watch one pending request, and a closed loop of 64 HTTP
connections creates requests meanwhile: a stream must not cost the creations anything (it
re-reads the store only when its own request changes). Run it with another tree's code first
on the path (``PYTHONPATH=../old/python``) for a "before" figure. Loopback only.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import e2e

#: Opens N streams on one path, prints how many the server accepted, then holds them.
HOLDER = r"""
import asyncio, sys
async def main(port, path, n):
    conns = []
    for _ in range(n):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode())
        await w.drain()
        conns.append((r, w))
    ok = 0
    for r, _ in conns:
        ok += b" 200 " in (await r.readline())
    print(ok, flush=True)
    await asyncio.sleep(3600)
asyncio.run(main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", default="0,256", help="stream counts, comma-separated")
    ap.add_argument("--duration", type=float, default=4.0)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="invreq-streams-"))
    proc = e2e.start_invreq(work, "streams")
    try:
        bodies = e2e.bodies(work, proc)
        rune = proc.rune()
        watched = e2e.rpc(proc.sock, "invoicerequest", [1000, "watched by its page"])
        path = f"/r/{watched['invreq_id']}/events"
        print("| streams asked | streams open | invoicerequest req/s | p99 ms | CPU µs/req |")
        print("|---:|---:|---:|---:|---:|")
        for n in (int(x) for x in a.streams.split(",")):
            holder = None
            opened = 0
            if n:
                argv = [sys.executable, "-c", HOLDER, str(proc.http_port), path, str(n)]
                holder = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
                assert holder.stdout is not None
                opened = int(holder.stdout.readline())
            try:
                cpu = e2e.cpu_seconds(proc.p.pid)
                r = e2e.load([proc.targets["http"]], bodies["invoicerequest"], 64, a.duration, rune)
                # The warm-up second is inside the CPU window: count its requests at the rate.
                served = r["requests"] * (a.duration + e2e.WARMUP) / a.duration
                used = (e2e.cpu_seconds(proc.p.pid) - cpu) / served * 1e6
                print(
                    f"| {n} | {opened} | {r['rps']:.0f} | {r['p99_us'] / 1000:.2f} | {used:.0f} |",
                    flush=True,
                )
            finally:
                if holder is not None:
                    holder.kill()
                    holder.wait()
                    time.sleep(1)  # the server notices the streams leave
    finally:
        proc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
