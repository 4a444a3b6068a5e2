"""Where an ``invoicerequest`` spends its time: py-spy on a loaded ``invreq serve``.

Starts invreq as ``make bench`` does (temporary data directory, SQLite, software signer,
durable commits), loads it with benches/loadgen (HTTP, 64 connections, a rune on every
request), samples every thread of the server with py-spy meanwhile, and sorts the samples
into the parts of the request path. Shares are of all the server's samples (busy threads
only), so they do not depend on how fast this machine is; a native call (the core's
verification, coincurve's signing, a system call) is counted at the Python line that made
it. The server's CPU time per request is measured over the same window.

Usage: python benches/profile.py [--seconds 10] [--connections 64] [--transport http]
       [--out benches/results/profile.md]     (``make bench-profile``)
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import e2e  # the harness's server and load helpers, beside this file

ROOT = e2e.ROOT
PY_SPY = Path(sys.executable).parent / "py-spy"
SERVICE = ROOT / "python" / "invreq" / "service.py"
SQLITE = ROOT / "python" / "invreq" / "store" / "sqlite.py"

#: The parts of the request path, each with the frames that belong to it ("function
#: (file:line)" as py-spy writes them). A sample belongs to the part of its innermost frame
#: that belongs to one: asyncio's own frames (futures, tasks, call_soon) belong to none, so
#: they count for whoever called them (the store's futures for the store, aiohttp's for
#: the framing); the socket write is its own part, whoever made it.
FRAMING = "aiohttp and asyncio framing (request, response, loop, select)"


def _line_of(path: Path, needle: str, after: str = "") -> int:
    lines = path.read_text().splitlines()
    start = next((n for n, line in enumerate(lines) if after in line), 0)
    for n, line in enumerate(lines[start:], start + 1):
        if needle in line:
            return n
    raise SystemExit(f"{path}: no line with {needle!r} (update benches/profile.py)")


def _parts() -> list[tuple[str, tuple[str, ...]]]:
    verify_at = f"invreq/service.py:{_line_of(SERVICE, '.with_signature(')})"
    return [
        ("socket write of the reply (send)", ("_SelectorSocketTransport.write",)),
        ("BIP-340 signing (coincurve)", ("sign_digest",)),
        ("the core's verification of the signature", (verify_at,)),
        ("SQLite on the loop (lone commits, point reads)", ("_commit_lone", "_point_read")),
        ("hand-off to the writer thread", ("ThreadPoolExecutor.submit", "run_in_executor")),
        ("rune check", ("invreq/auth.py", "_authorizer")),
        (
            "JSON-RPC parse, envelope, parameters, filter",
            ("invreq/rpc.py", "invreq/params.py", "invreq/jsonfilter.py", "json/decoder.py"),
        ),
        (
            "building the request and record (core, service, views)",
            ("invreq/service.py", "invreq/views.py", "invreq/bolt12.py"),
        ),
        ("store glue on the loop (futures, groups)", ("invreq/store/",)),
        ("reply encoding (json)", ("json/encoder.py", "json/__init__.py")),
        (
            "HTTP and unix doors (rest, httpguard, unixsock)",
            ("invreq/rest.py", "invreq/httpguard.py", "invreq/unixsock.py"),
        ),
        (FRAMING, ("aiohttp/", "selectors.py", "selector_events.py")),
    ]


def part_of(frames: list[str], parts: list[tuple[str, tuple[str, ...]]], commit_at: str) -> str:
    thread = frames[0]
    if "invreq-sqlite-writer" in thread:
        if commit_at in frames[-1]:
            # py-spy counts a thread inside fsync as busy: this is mostly the disk's time.
            return "SQLite writer thread: COMMIT (mostly waiting for fsync)"
        return "SQLite writer thread: the rest (rows bound and inserted, BEGIN, hand-back)"
    if "MainThread" not in thread:
        return "other threads"
    for frame in reversed(frames[1:]):
        for name, marks in parts:
            if any(m in frame for m in marks):
                return name
    return FRAMING  # the loop itself (asyncio's run_once, handles)


def classify(raw: Path) -> tuple[collections.Counter[str], int]:
    parts = _parts()
    line = _line_of(SQLITE, 'execute("COMMIT")', after="def _commit_group")
    commit_at = f"invreq/store/sqlite.py:{line})"
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        total += int(count)
        counts[part_of(stack.split(";"), parts, commit_at)] += int(count)
    return counts, total


def profile(
    seconds: float, connections: int, transport: str, batch: int = 1
) -> tuple[str, float, float]:
    """Runs the server under load with py-spy attached (single requests, or JSON-RPC batches
    of ``batch``); returns the raw samples' text, requests/s (batch items) and the server's
    CPU µs per request (per item)."""
    with tempfile.TemporaryDirectory(prefix="invreq-profile-") as tmp:
        work = Path(tmp)
        proc = e2e.start_invreq(work, "invreq")
        with e2e.running(proc):
            made = e2e.bodies(work, proc)
            body = made["invoicerequest"] if batch == 1 else made[f"batch {batch}"]
            rune = proc.rune() if transport == "http" else None
            e2e.load([proc.targets[transport]], body, connections, 2.0, rune)  # warm-up
            raw = work / "samples.txt"
            spy = subprocess.Popen(
                [
                    str(PY_SPY),
                    "record",
                    "--pid",
                    str(proc.p.pid),
                    "--threads",
                    "--nonblocking",
                    "--rate",
                    "250",
                    "--duration",
                    str(int(seconds)),
                    "--format",
                    "raw",
                    "--output",
                    str(raw),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            cpu0, wall0 = e2e.cpu_seconds(proc.p.pid), time.monotonic()
            # The load generator warms up for a second of the window, uncounted: the CPU
            # per request divides by req/s over the whole window instead.
            rps = (
                float(
                    e2e.load([proc.targets[transport]], body, connections, seconds - 1, rune)["rps"]
                )
                * batch
            )
            cpu = e2e.cpu_seconds(proc.p.pid) - cpu0
            wall = time.monotonic() - wall0
            spy.wait(timeout=seconds + 60)
            text = raw.read_text()
    return text, rps, cpu / max(rps * wall, 1) * 1e6


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--transport", choices=("http", "unix"), default="http")
    ap.add_argument(
        "--batch", type=int, choices=(1, *e2e.BATCHES), default=1, help="requests per batch"
    )
    ap.add_argument("--raw", type=Path, help="also keep py-spy's raw samples here")
    ap.add_argument("--out", type=Path, default=ROOT / "benches" / "results" / "profile.md")
    a = ap.parse_args()
    if not PY_SPY.exists():
        print("py-spy is missing: make bench-profile installs it (bench extra)", file=sys.stderr)
        return 2
    text, rps, cpu_us = profile(a.seconds, a.connections, a.transport, a.batch)
    if a.raw is not None:
        a.raw.write_text(text)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
        f.write(text)
        f.flush()
        parts, total = classify(Path(f.name))
    lines = [
        "# Where an invoicerequest spends its time",
        "",
        f"Command: `make bench-profile` (`benches/profile.py`): py-spy at 250 Hz on `invreq serve`"
        f" (SQLite, software signer), every thread, {a.seconds:g} s of {a.transport.upper()} "
        f"`invoicerequest` at {a.connections} connections from benches/loadgen"
        + (f", in JSON-RPC batches of {a.batch}" if a.batch > 1 else "")
        + ". "
        f"{rps:.0f} req/s, {cpu_us:.0f} µs of server CPU per request while sampled "
        f"(py-spy slows the server a little). {total} samples; a native call is counted at "
        "the Python line that made it.",
        "",
        "| part of the request path | share of samples |",
        "|---|---:|",
    ]
    for name, n in parts.most_common():
        lines.append(f"| {name} | {100 * n / total:.1f}% |")
    out = "\n".join(lines) + "\n"
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(out)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
