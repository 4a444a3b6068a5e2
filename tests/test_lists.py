"""Lists never hide records, and their memory depends on the chunk, not on the records.

lightningd's list commands return every matching record unless paging parameters are
given (issue 25: a list silently stopped at 1,000). Here a list is read from the store in
bounded chunks and written as it goes (invreq.paging): against a real `invreq serve` on
SQLite and PostgreSQL, through the unix socket, JSON-RPC over HTTP and REST. Memory is the
server's own peak (VmHWM); the bounds are docs/limits.md's.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _lightningd import invoice_for
from _service_fixtures import Server, request, server
from invreq import paging
from test_limits import peak_bytes, read_reply

__all__ = ["server"]

#: docs/limits.md: what a list adds to the server's peak memory, whatever its records'
#: number or size (one chunk of the largest records, encoded, with its copies in flight).
LIST_PEAK_BYTES = 48 * 1024 * 1024


def unix_call(s: Server, method: str, params: Any = None) -> Any:
    """One call on the unix socket, the reply read whole (the records may be many)."""
    with socket.socket(socket.AF_UNIX) as c:
        c.settimeout(120)
        c.connect(str(s.socket_path))
        c.sendall(request(method, params))
        reply = json.loads(read_reply(c))
    assert "result" in reply, reply
    return reply["result"]


def http_post(s: Server, path: str, rune: str, body: Any) -> tuple[int, Any]:
    data = json.dumps(body).encode()
    with socket.create_connection(("127.0.0.1", s.http_port), timeout=120) as c:
        c.sendall(
            b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nRune: %s\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s"
            % (path.encode(), rune.encode(), len(data), data)
        )
        buf = bytearray()
        while chunk := c.recv(1 << 20):
            buf += chunk
    head, _, payload = bytes(buf).partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    if b"transfer-encoding: chunked" in head.lower():
        payload = dechunk(payload)
    return status, json.loads(payload)


def dechunk(data: bytes) -> bytes:
    out = bytearray()
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += data[:size]
        data = data[size + 2 :]


def make_requests(s: Server, n: int, *, label: str = "r") -> None:
    """``n`` ordinary requests, made in batches of 200 (their writes share commits)."""
    for first in range(0, n, 200):
        batch = [
            {
                "jsonrpc": "2.0",
                "id": i,
                "method": "invoicerequest",
                "params": {"amount": "1000msat", "description": "d", "label": f"{label}{i}"},
            }
            for i in range(first, min(n, first + 200))
        ]
        with socket.socket(socket.AF_UNIX) as c:
            c.settimeout(120)
            c.connect(str(s.socket_path))
            c.sendall(json.dumps(batch).encode())
            replies = json.loads(read_reply(c))
        assert all("result" in r for r in replies), replies[:2]


def test_a_list_without_paging_returns_every_one_of_1200_records_on_every_door(
    server: Server,
) -> None:
    make_requests(server, 1200)
    rune = server.rpc.call("createrune")["rune"]
    everything = list(range(1, 1201))

    def indexes(result: Any) -> list[int]:
        return [r["created_index"] for r in result["invoicerequests"]]

    # The unix socket, as pyln-client reads it: every record, none hidden.
    assert indexes(server.rpc.call("listinvoicerequests")) == everything
    status, reply = http_post(
        server, "/rpc", rune, {"jsonrpc": "2.0", "id": 7, "method": "listinvoicerequests"}
    )
    assert status == 200 and reply["id"] == 7 and indexes(reply["result"]) == everything
    status, result = http_post(server, "/v1/listinvoicerequests", rune, {})
    assert status == 201 and indexes(result) == everything
    # Paging parameters keep working, across chunk boundaries.
    paged = {"index": "created", "start": 1001}
    assert indexes(server.rpc.call("listinvoicerequests", paged)) == everything[1000:]
    paged = {"index": "created", "start": 2, "limit": 1100}
    assert indexes(server.rpc.call("listinvoicerequests", paged)) == everything[1:1101]
    # A filter applies to every record; a label picks one out of all of them.
    filtered = server.rpc.call("listinvoicerequests", {"label": "r1150"})["invoicerequests"]
    assert [r["created_index"] for r in filtered] == [1151]
    with socket.socket(socket.AF_UNIX) as c:
        c.settimeout(120)
        c.connect(str(server.socket_path))
        c.sendall(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "listinvoicerequests",
                    "filter": {"invoicerequests": [{"created_index": True}]},
                }
            ).encode()
        )
        only = json.loads(read_reply(c))["result"]["invoicerequests"]
    assert only == [{"created_index": i} for i in everything]
    # Inside a batch, a list is whole too, and the elements after it are answered.
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "listinvoicerequests"},
        {"jsonrpc": "2.0", "id": 2, "method": "getinfo"},
    ]
    with socket.socket(socket.AF_UNIX) as c:
        c.settimeout(120)
        c.connect(str(server.socket_path))
        c.sendall(json.dumps(batch).encode())
        replies = json.loads(read_reply(c))
    assert indexes(replies[0]["result"]) == everything and replies[1]["result"]["id"]


def test_showrunes_without_paging_returns_every_one_of_1200_runes(server: Server) -> None:
    for first in range(0, 1200, 200):
        batch = [
            {"jsonrpc": "2.0", "id": i, "method": "createrune"} for i in range(first, first + 200)
        ]
        with socket.socket(socket.AF_UNIX) as c:
            c.settimeout(120)
            c.connect(str(server.socket_path))
            c.sendall(json.dumps(batch).encode())
            assert all("result" in r for r in json.loads(read_reply(c)))
    shown = unix_call(server, "showrunes")["runes"]
    assert [int(r["unique_id"]) for r in shown] == list(range(1200))


@pytest.fixture
def huge_server(tmp_path: Path) -> Iterator[Server]:
    """150 requests of a ~900 kB description each (accepted: within the request limit)."""
    s = Server(tmp_path / "data").start()
    try:
        for i in range(150):
            s.rpc.call(
                "invoicerequest",
                {"amount": "1000msat", "description": "d" * 900_000, "label": f"huge{i}"},
            )
        yield s
    finally:
        if s.proc is not None and s.proc.poll() is None:
            assert s.stop() == 0, s.output()[-3000:]


@pytest.mark.timeout(900)  # 150 records of 900 kB to make and ~100 MB to read: a slow machine
def test_lists_of_150_records_of_900_kB_stay_within_the_list_bound(huge_server: Server) -> None:
    s = huge_server
    rune = s.rpc.call("createrune")["rune"]
    before = peak_bytes(s)
    # One record, by REST (the case: 43 -> 262 MiB when a page of rows was loaded).
    status, one = http_post(
        s, "/v1/listinvoicerequests", rune, {"index": "created", "start": 70, "limit": 1}
    )
    assert status == 201 and [r["created_index"] for r in one["invoicerequests"]] == [70]
    status, one = http_post(s, "/v1/listinvoicerequests", rune, {"label": "huge149"})
    assert status == 201 and [r["label"] for r in one["invoicerequests"]] == ["huge149"]
    grown = peak_bytes(s) - before
    assert grown <= LIST_PEAK_BYTES, f"a one-record list: peak grew by {grown} bytes"
    # Many records (~90 MB of JSON), read by a client as it comes: still one chunk's worth.
    with socket.socket(socket.AF_UNIX) as c:
        c.settimeout(300)
        c.connect(str(s.socket_path))
        c.sendall(request("listinvoicerequests", {"index": "created", "start": 90, "limit": 30}))
        tail = b""
        total = 0
        while not tail.endswith(b"\n\n"):
            data = c.recv(1 << 20)
            assert data, "connection closed before the reply ended"
            total += len(data)
            tail = (tail + data)[-4:]
    assert total > 30 * 900_000 * 2
    grown = peak_bytes(s) - before
    assert grown <= LIST_PEAK_BYTES, f"30 records: peak grew by {grown} bytes"


@pytest.mark.timeout(600)
def test_listpayments_with_invoices_of_0_9_MB_stays_within_the_list_bound(
    tmp_path: Path,
) -> None:
    """``--pay-with none`` records each valid invoice as refused, invoice and all."""
    s = Server(tmp_path / "data", extra_args=["--pay-with", "none"]).start()
    try:
        for i in range(40):
            r = s.rpc.call(
                "invoicerequest",
                {"amount": "1000msat", "description": "p" * 560_000, "label": f"p{i}"},
            )
            invoice = invoice_for(r["bolt12"], n=i)
            assert len(invoice) > 880_000
            with pytest.raises(Exception, match=r"2107|--pay-with none"):
                s.rpc.call("receiveinvoice", [invoice])
        rune = s.rpc.call("createrune")["rune"]
        before = peak_bytes(s)
        status, one = http_post(
            s, "/v1/listpayments", rune, {"index": "created", "start": 20, "limit": 1}
        )
        assert status == 201 and [p["payment_id"] for p in one["payments"]] == [20]
        every = unix_call(s, "listpayments")["payments"]
        assert [p["payment_id"] for p in every] == list(range(1, 41))
        grown = peak_bytes(s) - before
        assert grown <= LIST_PEAK_BYTES, f"peak grew by {grown} bytes"
    finally:
        assert s.stop() == 0, s.output()[-3000:]


def test_the_chunk_bounds_are_what_the_docs_state() -> None:
    # docs/limits.md quotes these; a change must change the docs too.
    assert paging.CHUNK_ROWS == 100
    assert paging.CHUNK_BYTES == 64 * 1024
