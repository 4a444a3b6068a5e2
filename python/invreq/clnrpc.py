"""One client for Core Lightning's JSON-RPC framing on a unix socket, sync and async.

CLN's framing: a request is one JSON object written to the socket, the reply one JSON
object followed by a blank line (``"\\n\\n"``); a connection per call, as pyln-client
does. Three callers speak it: ``invreq call`` (:mod:`invreq.client`, to invreq's own
socket, which answers in the same framing), the plugin inside lightningd
(:mod:`invreq.cln_plugin`, to invreq) and the paying node's backend
(:mod:`invreq.payments.node`, to lightningd).

Each way a call can end has its own exception, because callers act on the difference (the
payment backend: a request that never left certainly paid nothing; one that left and got
no answer may have):

- :class:`NotSent` (an ``OSError``): the connection could not be opened (no socket,
  refused, or its listen backlog full until the deadline: a busy server is waited for);
  nothing was sent;
- ``TimeoutError``: no complete reply before the deadline (the request may have been acted
  on);
- :class:`ConnectionLost` (a ``ConnectionError``): the connection failed or was closed
  after the request left, before a complete reply;
- :class:`BadReply` (a ``ValueError``): what came back is not a JSON-RPC reply;
- :class:`ClnRpcError`: the server answered with an error object (``code``, ``message``,
  ``data``). This is the client's own type: an error a server answered, never the
  ``invreq.errors.RpcError`` our server raises for its own callers.

Standard library only, and nothing of invreq: the plugin imports it inside lightningd's
plugin process, where it must stay cheap and dependency-free.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import time
from typing import Any

__all__ = [
    "MAX_REPLY_BYTES",
    "BadReply",
    "ClnRpcError",
    "ConnectionLost",
    "NotSent",
    "acall",
    "call",
]

#: The largest reply read. Far above anything invreq answers (a batch reply stays near
#: invreq.rpc.MAX_REPLY_BYTES, 8 MiB) or what the payment backend asks lightningd for.
MAX_REPLY_BYTES = 64 * 1024 * 1024
_END = b"\n\n"
#: Seconds between attempts to connect while the server's listen backlog is full.
_BUSY_RETRY = 0.01
_ids = itertools.count(1)


class NotSent(OSError):
    """The connection could not be opened: the request never left."""


class ConnectionLost(ConnectionError):
    """The connection failed or was closed after the request left, before a full reply."""


class BadReply(ValueError):
    """The reply is not a JSON-RPC reply (not JSON, too large, neither result nor error)."""


class ClnRpcError(Exception):
    """The server answered ``method`` with a JSON-RPC error object.

    ``code`` (-1 when the object has no integer code), ``message`` and ``data`` are its
    members; ``error`` is the object as it was sent (``invreq call`` prints it)."""

    def __init__(self, method: str, error: Any) -> None:
        obj = error if isinstance(error, dict) else {"message": error}
        code = obj.get("code")
        self.method = method
        self.error = error
        self.code: int = code if isinstance(code, int) and not isinstance(code, bool) else -1
        self.message = str(obj.get("message", ""))
        self.data: Any = obj.get("data")
        super().__init__(f"{self.message} (code {self.code})")


def _request(method: str, params: Any, request_id: str | None, filter_: Any) -> bytes:
    req: dict[str, Any] = {
        "jsonrpc": "2.0",
        "id": request_id if request_id is not None else f"invreq:{method}#{next(_ids)}",
        "method": method,
        "params": params,
    }
    if filter_ is not None:
        req["filter"] = filter_
    # UTF-8 as it is, not \u escapes: lightningd (and invreq, params.UEscaped) treat a
    # string written with \u differently from the same text written plainly.
    return json.dumps(req, ensure_ascii=False).encode()


def _result(path: str, method: str, raw: bytes) -> Any:
    try:
        reply = json.loads(raw)
    except ValueError as e:
        raise BadReply(f"{path}: the reply is not JSON: {e}") from None
    if not isinstance(reply, dict) or ("result" not in reply and "error" not in reply):
        raise BadReply(f"{path}: the reply has neither result nor error")
    if "error" in reply:
        raise ClnRpcError(method, reply["error"])
    return reply["result"]


def _too_large(path: str) -> BadReply:
    return BadReply(f"{path}: the reply is larger than {MAX_REPLY_BYTES} bytes")


def _closed(path: str) -> ConnectionLost:
    return ConnectionLost(f"{path}: the server closed the connection before answering")


def _busy(path: str, timeout: float) -> NotSent:
    return NotSent(f"cannot connect to {path}: its backlog stayed full for {timeout:g} s")


def _timed_out(path: str, timeout: float) -> TimeoutError:
    return TimeoutError(f"{path}: no answer within {timeout:g} s")


def call(
    path: str | os.PathLike[str],
    method: str,
    params: Any = None,
    *,
    timeout: float | None = None,
    request_id: str | None = None,
    filter: Any = None,
) -> Any:
    """Call ``method`` on the unix socket at ``path`` and return its result, or raise (see
    the module docstring). ``timeout``: seconds for the whole call, connecting included;
    None waits as long as the server takes (a hardware signer may wait for a person)."""
    path = os.fspath(path)
    deadline = None if timeout is None else time.monotonic() + timeout
    payload = _request(method, {} if params is None else params, request_id, filter)

    def remaining() -> float | None:
        if deadline is None or timeout is None:
            return None
        left = deadline - time.monotonic()
        if left <= 0:
            raise _timed_out(path, timeout)
        return left

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            while True:
                s.settimeout(remaining())
                try:
                    s.connect(path)
                    break
                except BlockingIOError:
                    # The server's backlog is full (EAGAIN on a unix socket with a
                    # deadline): it is busy, not gone; try again until the deadline.
                    time.sleep(_BUSY_RETRY)
        except TimeoutError:
            raise _busy(path, timeout or 0) from None
        except OSError as e:
            raise NotSent(f"cannot connect to {path}: {e.strerror or e}") from e
        buf = bytearray()
        try:
            s.settimeout(remaining())
            s.sendall(payload)
            while (end := buf.find(_END, max(0, len(buf) - 65536 - 1))) < 0:
                s.settimeout(remaining())
                chunk = s.recv(65536)
                if not chunk:
                    raise _closed(path)
                buf += chunk
                if len(buf) > MAX_REPLY_BYTES + len(_END):
                    raise _too_large(path)
        except TimeoutError:
            raise _timed_out(path, timeout or 0) from None
        except ConnectionLost:
            raise
        except OSError as e:
            raise ConnectionLost(f"{path}: the connection failed: {e.strerror or e}") from e
    return _result(path, method, bytes(buf[:end]))


async def acall(
    path: str | os.PathLike[str],
    method: str,
    params: Any = None,
    *,
    timeout: float | None = None,
    request_id: str | None = None,
) -> Any:
    """:func:`call` for the event loop: the same framing, deadline and exceptions."""
    path = os.fspath(path)
    payload = _request(method, {} if params is None else params, request_id, None)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    connected = False
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            # Connected here rather than by asyncio: on a unix socket a full backlog is
            # EAGAIN, which asyncio would take for a connection in progress.
            while True:
                try:
                    sock.connect(path)
                    break
                except BlockingIOError:
                    await asyncio.sleep(_BUSY_RETRY)  # busy, not gone (as in call)
                except OSError as e:
                    raise NotSent(f"cannot connect to {path}: {e.strerror or e}") from e
            connected = True
            reader, writer = await asyncio.open_unix_connection(sock=sock, limit=MAX_REPLY_BYTES)
            try:
                writer.write(payload)
                await writer.drain()
                raw = await reader.readuntil(_END)
            except asyncio.IncompleteReadError:
                raise _closed(path) from None
            except asyncio.LimitOverrunError:
                raise _too_large(path) from None
            except OSError as e:
                raise ConnectionLost(f"{path}: the connection failed: {e.strerror or e}") from e
            finally:
                writer.close()
    except TimeoutError:
        if not connected:
            raise _busy(path, timeout or 0) from None
        raise _timed_out(path, timeout or 0) from None
    finally:
        if writer is None:
            sock.close()  # else the transport owns it, and writer.close() closed it
    return _result(path, method, raw[: -len(_END)])
