"""``invreq.clnrpc``: CLN's JSON-RPC framing on a unix socket, sync and async.

CLN's framing (lightningd's jsonrpc.c, and pyln-client): the request is one JSON object
written to the socket; the reply is one JSON object followed by a blank line. Each way a
call ends has its own exception, so a caller can tell "never sent" from "sent, no answer".

The peer here is a stand-in for lightningd: a one-connection unix socket server in a
thread that records the bytes it received and answers with the bytes each test gives it
(or hangs up, or never answers). The same client against the real `invreq serve` is
covered by test_client.py (``invreq call``) and test_cln_plugin.py (the plugin).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from invreq import clnrpc


class FakeNode:
    """Stand-in for lightningd's socket: answers one connection with ``reply`` (bytes, sent
    in ``chunks`` pieces), or hangs up (``reply=b""``), or holds it open (``reply=None``)
    until the test ends."""

    def __init__(self, path: Path, reply: bytes | None, chunks: int = 1) -> None:
        self.path = path
        self.reply = reply
        self.chunks = chunks
        self.received = b""
        self.done = threading.Event()
        self.release = threading.Event()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(1)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            # A request ends where its JSON object ends (CLN reads objects, not lines).
            decoder = json.JSONDecoder()
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                self.received += data
                try:
                    decoder.decode(self.received.decode())
                    break
                except ValueError:
                    continue
            if self.reply is None:
                self.release.wait(30)
            elif self.reply:
                step = max(1, len(self.reply) // self.chunks)
                for i in range(0, len(self.reply), step):
                    conn.sendall(self.reply[i : i + step])
        self.done.set()

    def request(self) -> Any:
        self.done.wait(30)
        return json.loads(self.received)

    def close(self) -> None:
        self.release.set()
        self.sock.close()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Callable[..., FakeNode]]:
    made: list[FakeNode] = []

    def make(reply: bytes | None, chunks: int = 1) -> FakeNode:
        n = FakeNode(tmp_path / f"rpc{len(made)}", reply, chunks)
        made.append(n)
        return n

    yield make
    for n in made:
        n.close()


def reply(obj: Any) -> bytes:
    return json.dumps(obj).encode() + b"\n\n"


def test_the_request_is_one_json_object_and_the_result_comes_back(
    node: Callable[..., FakeNode],
) -> None:
    n = node(reply({"jsonrpc": "2.0", "id": "x", "result": {"id": "02ab"}}))
    assert clnrpc.call(n.path, "getinfo", {}, request_id="x") == {"id": "02ab"}
    assert n.request() == {"jsonrpc": "2.0", "id": "x", "method": "getinfo", "params": {}}


def test_text_is_sent_as_utf8_not_as_u_escapes(node: Callable[..., FakeNode]) -> None:
    # invreq (params.UEscaped) and lightningd treat a \u-escaped string differently.
    n = node(reply({"jsonrpc": "2.0", "id": 1, "result": {}}))
    clnrpc.call(n.path, "invoicerequest", ["1000", "café ⚡"], filter={"bolt12": True})
    n.done.wait(30)
    assert "café ⚡".encode() in n.received and b"\\u" not in n.received
    assert n.request()["filter"] == {"bolt12": True}


def test_a_reply_in_many_pieces_is_read_to_its_blank_line(node: Callable[..., FakeNode]) -> None:
    big = {"jsonrpc": "2.0", "id": 1, "result": {"pays": ["ab" * 50] * 2000}}
    n = node(reply(big), chunks=997)  # the blank line straddles reads, too
    assert clnrpc.call(n.path, "listpays", {}) == big["result"]


def test_an_error_reply_is_a_cln_rpc_error_with_code_message_and_data(
    node: Callable[..., FakeNode],
) -> None:
    error = {"code": 210, "message": "Destination unknown", "data": {"x": 1}}
    n = node(reply({"jsonrpc": "2.0", "id": 1, "error": error}))
    with pytest.raises(clnrpc.ClnRpcError) as e:
        clnrpc.call(n.path, "xpay", {"invstring": "lni1"})
    assert (e.value.code, e.value.message, e.value.data) == (210, "Destination unknown", {"x": 1})
    assert e.value.error == error and e.value.method == "xpay"
    assert str(e.value) == "Destination unknown (code 210)"


def test_an_error_without_an_integer_code_gets_minus_one(node: Callable[..., FakeNode]) -> None:
    n = node(reply({"jsonrpc": "2.0", "id": 1, "error": {"code": "x", "message": "m"}}))
    with pytest.raises(clnrpc.ClnRpcError) as e:
        clnrpc.call(n.path, "getinfo")
    assert e.value.code == -1 and e.value.data is None


def test_no_socket_is_not_sent(tmp_path: Path) -> None:
    with pytest.raises(clnrpc.NotSent) as e:
        clnrpc.call(tmp_path / "missing", "getinfo")
    assert isinstance(e.value, OSError)
    assert str(e.value).startswith(f"cannot connect to {tmp_path / 'missing'}: ")


def test_a_hang_up_before_the_reply_is_connection_lost(node: Callable[..., FakeNode]) -> None:
    n = node(b"")
    with pytest.raises(clnrpc.ConnectionLost, match="closed the connection before answering"):
        clnrpc.call(n.path, "getinfo")
    n2 = node(b'{"jsonrpc": "2.0", "id": 1, "res')  # half a reply, then the hang-up
    with pytest.raises(clnrpc.ConnectionLost):
        clnrpc.call(n2.path, "getinfo")


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"not json\n\n", "the reply is not JSON"),
        (reply([1, 2]), "neither result nor error"),
        (reply({"jsonrpc": "2.0", "id": 1}), "neither result nor error"),
    ],
)
def test_what_is_not_a_json_rpc_reply_is_a_bad_reply(
    node: Callable[..., FakeNode], raw: bytes, why: str
) -> None:
    n = node(raw)
    with pytest.raises(clnrpc.BadReply, match=why):
        clnrpc.call(n.path, "getinfo")


def test_no_answer_before_the_deadline_is_a_timeout(node: Callable[..., FakeNode]) -> None:
    n = node(None)
    with pytest.raises(TimeoutError, match=r"no answer within 0\.2 s"):
        clnrpc.call(n.path, "xpay", {}, timeout=0.2)


# --- the async client: the same framing and exceptions ---------------------------------


async def test_async_result_error_and_request(node: Callable[..., FakeNode]) -> None:
    n = node(reply({"jsonrpc": "2.0", "id": "y", "result": {"pays": []}}), chunks=7)
    result = await clnrpc.acall(n.path, "listpays", {"payment_hash": "00"}, request_id="y")
    assert result == {"pays": []}
    assert await asyncio.to_thread(n.request) == {
        "jsonrpc": "2.0",
        "id": "y",
        "method": "listpays",
        "params": {"payment_hash": "00"},
    }
    n2 = node(reply({"jsonrpc": "2.0", "id": 1, "error": {"code": 200, "message": "busy"}}))
    with pytest.raises(clnrpc.ClnRpcError) as e:
        await clnrpc.acall(n2.path, "xpay", {})
    assert (e.value.code, e.value.message) == (200, "busy")


async def test_async_not_sent_lost_bad_and_timeout(
    node: Callable[..., FakeNode], tmp_path: Path
) -> None:
    with pytest.raises(clnrpc.NotSent):
        await clnrpc.acall(tmp_path / "missing", "getinfo")
    with pytest.raises(clnrpc.ConnectionLost, match="closed the connection before answering"):
        await clnrpc.acall(node(b"").path, "getinfo")
    with pytest.raises(clnrpc.BadReply, match="not JSON"):
        await clnrpc.acall(node(b"{nope\n\n").path, "getinfo")
    with pytest.raises(TimeoutError, match=r"no answer within 0\.2 s"):
        await clnrpc.acall(node(None).path, "xpay", {}, timeout=0.2)


# --- a busy server: its listen backlog full ---------------------------------------------


class BusyServer:
    """A unix socket whose listen backlog is full (a backlog of 0 holds one connection,
    here a filler nobody has accepted yet), as a server that is too busy to accept. With a
    deadline a connect then fails with EAGAIN at once; the server is busy, not gone.
    ``serve_after`` starts accepting later (the filler first, then the call, answered)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(0)
        self.filler = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.filler.connect(str(path))
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.setblocking(False)
        with probe, pytest.raises(BlockingIOError):
            probe.connect(str(path))  # the backlog is full: what the client meets first

    def serve_after(self, seconds: float) -> threading.Thread:
        def serve() -> None:
            threading.Event().wait(seconds)  # ordering only: let the client meet EAGAIN
            first, _ = self.sock.accept()
            first.close()  # the filler
            conn, _ = self.sock.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(reply({"jsonrpc": "2.0", "id": 1, "result": {"busy": False}}))

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        return t

    def close(self) -> None:
        self.filler.close()
        self.sock.close()


@pytest.fixture
def busy(tmp_path: Path) -> Iterator[BusyServer]:
    b = BusyServer(tmp_path / "busy")
    yield b
    b.close()


def test_a_full_backlog_is_waited_for_until_the_server_accepts(busy: BusyServer) -> None:
    busy.serve_after(0.3)
    assert clnrpc.call(busy.path, "getinfo", timeout=30) == {"busy": False}


def test_a_backlog_full_until_the_deadline_is_not_sent(busy: BusyServer) -> None:
    # Nothing left: the caller may treat it as certainly not done (xpay: failed, not pending).
    with pytest.raises(clnrpc.NotSent, match="backlog stayed full"):
        clnrpc.call(busy.path, "xpay", {}, timeout=0.2)


async def test_async_waits_for_a_full_backlog_too(busy: BusyServer) -> None:
    with pytest.raises(clnrpc.NotSent, match="backlog stayed full"):
        await clnrpc.acall(busy.path, "xpay", {}, timeout=0.2)
    busy.serve_after(0.3)
    assert await clnrpc.acall(busy.path, "getinfo", timeout=30) == {"busy": False}
