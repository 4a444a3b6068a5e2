"""Issue 25's findings, measured against a real ``invreq serve`` (before/after figures).

    python benches/limits_probe.py SCENARIO [N]

Scenarios: ``memory N`` (N HTTP clients post a batch of ten lists over 1,000 records and
never read: the server's peak growth), ``lists`` (1,200 records, no paging: how many come
back), ``huge`` (150 records of ~900 kB: a one-record REST list, peak growth), ``payments``
(40 invoices of ~0.9 MB under --pay-with none: a one-record REST listpayments, peak growth),
``flood`` (forged-rune requests from one thread for 5 s: log growth per second), ``churn``
(HTTP at an fd limit of 200: silent connections churn while 10 legitimate calls are made;
how many succeed, and whether the log says EMFILE).

Run it with another tree's code first on the path (``PYTHONPATH=../old/python``) for a
"before" figure. Loopback and unix sockets only; every loop is bounded.
"""

from __future__ import annotations

import json
import resource
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _lightningd import invoice_for
from _service_fixtures import Server


def peak(s: Server) -> int:
    assert s.proc is not None
    for line in Path(f"/proc/{s.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError


def read_unix(s: Server, payload: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as c:
        c.settimeout(300)
        c.connect(str(s.socket_path))
        c.sendall(payload)
        buf = bytearray()
        while not buf.endswith(b"\n\n"):
            data = c.recv(1 << 20)
            if not data:
                break
            buf += data
    return bytes(buf)


def make_requests(s: Server, n: int) -> None:
    for first in range(0, n, 200):
        batch = [
            {
                "jsonrpc": "2.0",
                "id": i,
                "method": "invoicerequest",
                "params": {"amount": "1000msat", "description": "d", "label": f"r{i}"},
            }
            for i in range(first, min(n, first + 200))
        ]
        read_unix(s, json.dumps(batch).encode())


def http_count(
    s: Server, path: str, rune: str, body: Any, key: bytes, timeout: float = 600
) -> tuple[int, int, int]:
    """POST and read the response as it comes: (status, bytes, occurrences of ``key``)."""
    data = json.dumps(body).encode()
    with socket.create_connection(("127.0.0.1", s.http_port), timeout=timeout) as c:
        c.sendall(
            b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nRune: %s\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s"
            % (path.encode(), rune.encode(), len(data), data)
        )
        first = c.recv(1 << 20)
        status = int(first.split(b" ")[1])
        total, found, tail = len(first), first.count(key), first[-64:]
        while chunk := c.recv(1 << 20):
            total += len(chunk)
            found += (tail + chunk).count(key) - tail.count(key)
            tail = chunk[-64:]
    return status, total, found


def mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"


def memory(s: Server, n: int) -> None:
    make_requests(s, 1000)
    rune = s.rpc.call("createrune")["rune"]
    body = json.dumps(
        [{"jsonrpc": "2.0", "id": i, "method": "listinvoicerequests"} for i in range(10)]
    ).encode()
    before = peak(s)
    clients = []
    for _ in range(n):
        c = socket.socket()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.connect(("127.0.0.1", s.http_port))
        c.sendall(
            b"POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nRune: %s\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (rune.encode(), len(body), body)
        )
        clients.append(c)
    # Until the peak has not grown for 10 s (every reply made that will be), at most 180 s.
    last, still, waited = peak(s), 0, 0
    while still < 10 and waited < 180:
        time.sleep(1)
        waited += 1
        now = peak(s)
        still = still + 1 if now == last else 0
        last = now
    print(f"memory {n} non-reading clients: peak {mib(before)} -> {mib(peak(s))} ({waited} s)")
    for c in clients:
        c.close()


def lists(s: Server) -> None:
    make_requests(s, 1200)
    got = s.rpc.call("listinvoicerequests")["invoicerequests"]
    print(f"lists: 1200 records, no paging -> {len(got)} returned")


def huge(s: Server) -> None:
    for i in range(150):
        s.rpc.call(
            "invoicerequest",
            {"amount": "1000msat", "description": "d" * 899_000, "label": f"huge{i}"},
        )
    rune = s.rpc.call("createrune")["rune"]
    before = peak(s)
    status, size, n = http_count(s, "/v1/listinvoicerequests", rune, {}, b'"invreq_id"')
    print(
        f"huge: REST listinvoicerequests, no parameters ({status}): {n} of 150 records"
        f" ({mib(size)}); peak {mib(before)} -> {mib(peak(s))}"
    )


def payments(s: Server) -> None:
    for i in range(40):
        r = s.rpc.call(
            "invoicerequest", {"amount": "1000msat", "description": "p" * 560_000, "label": f"p{i}"}
        )
        try:
            s.rpc.call("receiveinvoice", [invoice_for(r["bolt12"], n=i)])
        except Exception:
            pass
    rune = s.rpc.call("createrune")["rune"]
    before = peak(s)
    status, size, n = http_count(s, "/v1/listpayments", rune, {}, b'"payment_id"')
    print(
        f"payments: REST listpayments, no parameters ({status}): {n} of 40 payments"
        f" ({mib(size)}); peak {mib(before)} -> {mib(peak(s))}"
    )


def flood(s: Server) -> None:
    size = len(s.output().encode())
    call = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "getinfo"}).encode()
    sent = 0
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", s.http_port), timeout=30) as c:
        f = c.makefile("rb")
        while time.monotonic() - started < 5:
            c.sendall(
                b"POST /rpc HTTP/1.1\r\nHost: x\r\nRune: forged%d\r\nContent-Length: %d\r\n\r\n%s"
                % (sent, len(call), call)
            )
            f.readline()
            length = 0
            while (line := f.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            f.read(length)
            sent += 1
    elapsed = time.monotonic() - started
    grown = len(s.output().encode()) - size
    rate = grown / elapsed / 1024
    print(f"flood: {sent} forged-rune calls in {elapsed:.1f} s: log +{grown} B, {rate:.1f} KiB/s")


def churn(s: Server) -> None:
    rune = s.rpc.call("createrune")["rune"]
    held: list[socket.socket] = []
    ok = 0
    for i in range(10):
        for _ in range(40):  # a wave of silent connections
            try:
                held.append(socket.create_connection(("127.0.0.1", s.http_port), timeout=5))
            except OSError:
                break
        # a legitimate call whose request arrives in two parts, as a slow client's does
        try:
            body = json.dumps({"jsonrpc": "2.0", "id": i, "method": "getinfo"}).encode()
            with socket.create_connection(("127.0.0.1", s.http_port), timeout=10) as c:
                c.sendall(b"POST /rpc HTTP/1.1\r\nHost: x\r\nRune: %s\r\n" % rune.encode())
                for _ in range(100):  # more than the cap: older silent ones are gone
                    held.append(socket.create_connection(("127.0.0.1", s.http_port), timeout=5))
                c.sendall(b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                reply = c.recv(65536)
                ok += reply.startswith(b"HTTP/1.1 200")
        except OSError:
            pass
    emfile = s.output().count("Too many open files")
    print(f"churn: {ok} of 10 legitimate calls answered; EMFILE lines: {emfile}")
    for c in held:
        c.close()


def main() -> None:
    scenario = sys.argv[1]
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    d = Path(tempfile.mkdtemp(prefix="limits-probe-"))
    args = ["--pay-with", "none"]
    s = Server(d / "data", extra_args=args)
    if scenario == "churn":
        s.preexec_fn = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (200, 200))
    s.start()
    try:
        if scenario == "memory":
            memory(s, int(sys.argv[2]))
        else:
            {"lists": lists, "huge": huge, "payments": payments, "flood": flood, "churn": churn}[
                scenario
            ](s)
    finally:
        s.kill()


if __name__ == "__main__":
    main()
