"""The unix-socket door: CLN's JSON-RPC framing on DIR/NETWORK/lightning-rpc (``--rpc-file``).

CLN clients (lightning-cli, pyln-client) send requests back to back with nothing between
them and split replies on a blank line. :class:`RequestSplitter` finds each request's end
by bracket depth; each is answered by the dispatcher (:mod:`invreq.rpc`) and framed with
``"\\n\\n"``. The socket's file mode (owner only) is its protection: no rune is asked.

:func:`unix_door` serves a path (removing a socket a crashed run left behind) or a socket
already bound by the ``--workers`` parent, and on the way out lets requests in flight
finish before closing the connections.

Its limits (the HTTP door's are in :mod:`invreq.httpguard`): at most ``max_connections``
open connections (the rest answered an error and closed); a client silent for
``IDLE_TIMEOUT``, or stalled inside a request for ``PARTIAL_TIMEOUT``, is dropped; the next
request is read only once the last reply is sent, so a connection holds at most one unsent
reply, and a client that does not read it within ``SEND_TIMEOUT`` is dropped with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invreq import lograte, replybudget, rpc
from invreq.errors import InternalError, InvalidRequest, RequestTooLarge, RpcError
from invreq.rpc import ID_SCAN_BYTES, MAX_REQUEST_BYTES, dumps, error_object, find_id

if TYPE_CHECKING:
    from invreq.metrics import Metrics
    from invreq.rpc import Dispatcher

__all__ = [
    "MAX_UNIX_CONNECTIONS",
    "RequestSplitter",
    "bind_owner_only",
    "frame",
    "remove_stale_socket",
    "unix_door",
]

log = logging.getLogger("invreq.unixsock")

#: Bytes read from a connection at once.
READ_CHUNK = 65536
#: Open connections served at once; more are answered an error and closed.
MAX_UNIX_CONNECTIONS = 1000
#: Seconds a client may stay silent between requests, and inside one.
IDLE_TIMEOUT = 300.0
PARTIAL_TIMEOUT = 30.0
#: Seconds a client may take to read a reply before it is dropped (reply discarded).
SEND_TIMEOUT = 30.0
#: Seconds shutdown lets requests in flight finish.
DRAIN_TIMEOUT = 10.0


def frame(reply: Any) -> bytes:
    """A reply (object or batch list) as CLN clients read it: JSON, then a blank line."""
    return dumps(reply) + b"\n\n"


def _error_frame(err: RpcError, req_id: Any = None) -> bytes:
    return frame(error_object(req_id, err))


# --- framing ----------------------------------------------------------------------------

_OUTSIDE_STRING = re.compile(rb'[\[\]{}"]')
_INSIDE_STRING = re.compile(rb'["\\]')
_WHITESPACE = b" \t\r\n"
_CLOSING = {ord("}"): ord("{"), ord("]"): ord("[")}


class RequestSplitter:
    """Cuts a byte stream into whole JSON requests without waiting for a delimiter or EOF.

    The boundary is found by tracking brackets outside strings. Anything that is not an
    object or array at the top level, a mismatched bracket, or a request over ``limit``
    bytes raises ``InvalidRequest``: the stream cannot be resynchronised after that.
    """

    def __init__(self, limit: int = MAX_REQUEST_BYTES) -> None:
        self.limit = limit
        self._buf = bytearray()
        self._pos = 0  # next byte to scan
        self._start = -1  # start of the current request, -1 between requests
        self._stack: list[int] = []
        self._in_string = False

    @property
    def pending(self) -> bool:
        """Whether part of a request has arrived and the rest has not."""
        return self._start >= 0

    @property
    def head(self) -> bytes:
        """The first bytes of the request being cut (after ``feed`` raised: of the one at
        fault), for :func:`invreq.rpc.find_id`."""
        if self._start < 0:
            return b""
        return bytes(self._buf[self._start : self._start + ID_SCAN_BYTES])

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        out: list[bytes] = []
        pos = self._pos
        n = len(buf)
        while pos < n:
            if self._start < 0:
                c = buf[pos]
                if c in _WHITESPACE:
                    pos += 1
                    continue
                if c not in (0x7B, 0x5B):  # { [
                    raise InvalidRequest(
                        f"malformed request: expected a JSON object, got {bytes([c])!r}"
                    )
                self._start = pos
                self._stack.append(c)
                pos += 1
            elif self._in_string:
                m = _INSIDE_STRING.search(buf, pos)
                if m is None:
                    pos = n
                    break
                if m.group() == b"\\":
                    if m.end() >= n:  # the escaped byte has not arrived yet
                        pos = m.start()
                        break
                    pos = m.end() + 1
                else:
                    self._in_string = False
                    pos = m.end()
            else:
                m = _OUTSIDE_STRING.search(buf, pos)
                if m is None:
                    pos = n
                    break
                c = buf[m.start()]
                pos = m.end()
                if c == 0x22:  # "
                    self._in_string = True
                elif c in _CLOSING:
                    if not self._stack or self._stack.pop() != _CLOSING[c]:
                        raise InvalidRequest("malformed request: mismatched bracket")
                    if not self._stack:
                        if pos - self._start > self.limit:
                            raise RequestTooLarge(self.limit)
                        out.append(bytes(buf[self._start : pos]))
                        self._start = -1
                else:
                    self._stack.append(c)
        # Drop what has been consumed; keep the unfinished request.
        keep_from = self._start if self._start >= 0 else pos
        if keep_from:
            del buf[:keep_from]
            pos -= keep_from
            if self._start >= 0:
                self._start = 0
        self._pos = pos
        if self._start >= 0 and len(buf) > self.limit:
            raise RequestTooLarge(self.limit)
        return out


# --- connections ------------------------------------------------------------------------


class _Connections:
    """Open connections, and those with a request in flight (shutdown lets those finish)."""

    def __init__(self, limit: int = MAX_UNIX_CONNECTIONS) -> None:
        self.limit = limit
        self.tasks: set[asyncio.Task[None]] = set()
        self.busy: set[asyncio.Task[None]] = set()


async def _serve_connection(
    dispatcher: Dispatcher,
    metrics: Metrics | None,
    conns: _Connections,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    """One client connection: requests back to back, replies in order, each ending "\\n\\n"."""
    task = asyncio.current_task()
    assert task is not None
    conns.tasks.add(task)
    if metrics is not None:
        metrics.connections.labels("unix").inc()
    splitter = RequestSplitter()
    # drain() then waits until everything written has left the process (not merely until
    # less than 64 KiB is left): what the reply budget counts as sent is sent.
    writer.transport.set_write_buffer_limits(0)
    try:
        if len(conns.tasks) > conns.limit:
            # Refuse rather than collapse: the fd budget is shared with the store and HTTP.
            err = InternalError(f"too many connections (more than {conns.limit}); try again")
            writer.write(_error_frame(err))
            await writer.drain()
            return
        while True:
            # A silent client is dropped: idle between requests for IDLE_TIMEOUT, or stalled
            # inside one for PARTIAL_TIMEOUT (it holds buffered bytes meanwhile).
            timeout = PARTIAL_TIMEOUT if splitter.pending else IDLE_TIMEOUT
            try:
                async with asyncio.timeout(timeout):
                    data = await reader.read(READ_CHUNK)
            except TimeoutError:
                break
            if not data:
                break
            try:
                requests = splitter.feed(data)
            except InvalidRequest as e:
                # The stream cannot be resynchronised after garbage or an oversized
                # request: answer once, then close this connection (others are unaffected).
                writer.write(_error_frame(e, find_id(splitter.head)))
                await writer.drain()
                await _discard_input(reader)
                break
            for raw in requests:
                conns.busy.add(task)
                try:
                    reply = (await dispatcher.answer_bytes(raw)).reply
                finally:
                    conns.busy.discard(task)
                # The next request is not read before this reply is sent, so a connection
                # holds at most one reply, and of it only the piece being sent, within the
                # process's reply budget; a client that does not read a piece within
                # SEND_TIMEOUT is dropped and the rest of its reply never made.
                if reply is not None and not await _send_reply(writer, reply):
                    return
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        conns.tasks.discard(task)
        if metrics is not None:
            metrics.connections.labels("unix").dec()
        await _close(writer)


async def _send_reply(writer: asyncio.StreamWriter, reply: Any) -> bool:
    """Send one reply within the reply budget; False when the connection must be closed
    (the client did not read in time, or the reply could not go on half sent)."""

    async def write(piece: bytes) -> None:
        writer.write(piece)

    async def flushed() -> None:
        # Nearly every piece is written whole at once (nothing left in the buffer): then
        # there is nothing to wait for, and no timer is armed.
        if writer.transport.get_write_buffer_size():
            async with asyncio.timeout(SEND_TIMEOUT):
                await writer.drain()

    try:
        if rpc.streamed(reply):
            if await replybudget.send(rpc.reply_pieces(reply), write, flushed):
                writer.write(b"\n\n")  # CLN's blank line after the reply
        else:
            await replybudget.send_whole(frame(reply), write, flushed)
    except RpcError as e:  # no room in the budget, or the store failed: nothing was sent
        writer.write(_error_frame(e, reply.get("id") if isinstance(reply, dict) else None))
    except TimeoutError:
        lograte.CLIENT_LINES.log(
            log,
            logging.INFO,
            "unix client dropped",
            "unix client dropped: reply not read within %g s",
            SEND_TIMEOUT,
        )
        return False
    except replybudget.HalfSent as e:
        lograte.CLIENT_LINES.log(
            log, logging.INFO, "unix client dropped", "unix client dropped: %s", e
        )
        return False
    return True


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close a connection without waiting on a client that does not read: unsent bytes
    (a reply it never read, or shutdown cancelling a send) are discarded, not flushed."""
    if writer.transport.get_write_buffer_size():
        writer.transport.abort()
    else:
        writer.close()
    with contextlib.suppress(ConnectionError, TimeoutError):
        async with asyncio.timeout(1.0):
            await writer.wait_closed()


async def _discard_input(reader: asyncio.StreamReader) -> None:
    """Read and drop what the client is still sending (briefly, boundedly) before closing:
    closing with unread input makes the kernel reset the connection, and the client could
    lose the error reply it is owed."""
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(1.0):
            for _ in range(64):  # at most 4 MiB
                if not await reader.read(READ_CHUNK):
                    break


# --- the door ---------------------------------------------------------------------------


def remove_stale_socket(path: Path) -> None:
    """Remove a socket left by a crashed run; refuse to start if a live server owns it."""
    if not path.exists():
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink()
        return
    finally:
        probe.close()
    raise SystemExit(
        f"invreq serve: another server is already listening on {path}; stop it, or choose "
        "another --data-dir or --network"
    )


def bind_owner_only(path: Path, backlog: int = 100) -> socket.socket:
    """A listening socket at ``path`` that nobody else can ever connect to, not even for a
    moment: it is bound inside a private directory (0700, made next to ``path``), made
    0600 there, then renamed into place and only then listens. Binding in place and
    narrowing the mode afterwards left a window in which another local user could connect
    (issue 25: an unrestricted rune minted in 4 of 6 start-ups under a permissive umask)."""
    remove_stale_socket(path)
    private = Path(tempfile.mkdtemp(prefix=".invreq-bind-", dir=path.parent))  # 0700
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        inside = private / "s"
        sock.bind(str(inside))
        os.chmod(inside, 0o600)
        os.replace(inside, path)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    finally:
        with contextlib.suppress(OSError):
            (private / "s").unlink()
        with contextlib.suppress(OSError):
            private.rmdir()
    return sock


@contextlib.asynccontextmanager
async def unix_door(
    dispatcher: Dispatcher,
    path: Path,
    *,
    sock: socket.socket | None = None,
    metrics: Metrics | None = None,
    max_connections: int = MAX_UNIX_CONNECTIONS,
    backlog: int = 100,
) -> AsyncIterator[None]:
    """Serve ``path`` (owner-only) until the block ends. With ``sock`` (a ``--workers``
    child), serve that socket, bound by the parent, which also removes the file. Beyond
    ``max_connections`` open connections, a new one is answered an error and closed;
    ``backlog`` connections wait in the kernel, and are accepted at once at most."""
    conns = _Connections(max_connections)

    def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> Any:
        return _serve_connection(dispatcher, metrics, conns, r, w)

    if sock is not None:
        server = await asyncio.start_unix_server(
            handle, sock=sock, limit=MAX_REQUEST_BYTES, backlog=backlog
        )
    else:
        own = bind_owner_only(path, backlog)
        try:
            server = await asyncio.start_unix_server(
                handle, sock=own, limit=MAX_REQUEST_BYTES, backlog=backlog
            )
        except BaseException:
            own.close()
            raise
    log.info("listening on unix socket %s", path)
    try:
        yield
    finally:
        server.close()
        # Let requests already being handled finish and reply; idle connections just close.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_TIMEOUT
        while conns.busy and loop.time() < deadline:
            await asyncio.sleep(0.01)
        for t in list(conns.tasks):
            t.cancel()
        await asyncio.gather(*conns.tasks, return_exceptions=True)
        if sock is None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
