"""The HTTP door's connection limits, the unix door's counterparts.

aiohttp serves every connection it is given and waits as long as a client wants; this
module bounds that:

- **A connection cap.** At most ``cap`` connections are open. A new connection beyond it
  evicts the oldest connection with no request in flight (silent, half-sent headers, or
  idle keep-alive), so a flood of silent clients cannot lock legitimate ones out; when every
  connection has a request in flight, the new one is answered ``503`` and closed.
- **Idle and header timeouts.** aiohttp's ``keepalive_timeout``, which it applies from the
  connection's start and after each response until the next request's headers are
  complete: a silent or half-sent connection is closed after ``IDLE_TIMEOUT``. The body has
  its own (``invreq.rest.BODY_TIMEOUT``).
- **A send timeout.** A response is sent inside the handler (:func:`send_within`), so a
  client that does not read it is dropped after ``SEND_TIMEOUT`` (give or take the
  watchdog's ``WATCH_INTERVAL``) and the unsent bytes are discarded; at shutdown, responses
  being sent get ``SHUTDOWN_GRACE`` more seconds.

The guard wraps aiohttp's protocol object rather than subclassing it: it sees a connection
open, close and deliver bytes through the public ``asyncio.Protocol`` methods only, and acts
on it through the public transport methods only (``write``, ``close``, ``abort``), so it
works the same on asyncio's loop and on uvloop (:mod:`invreq.loops`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, cast

from aiohttp import web

from invreq import lograte, replybudget
from invreq.errors import RpcError, ServerBusy
from invreq.rpc import dumps as rpc_dumps

__all__ = [
    "GUARD_KEY",
    "IDLE_TIMEOUT",
    "SEND_TIMEOUT",
    "ConnectionGuard",
    "GuardedSite",
    "JsonReply",
    "send_within",
]

log = logging.getLogger("invreq.http")

#: Seconds a connection may stay silent, or take to send a request's headers (aiohttp's
#: keepalive_timeout covers both).
IDLE_TIMEOUT = 30.0
#: Seconds a client may take to read a response before it is dropped.
SEND_TIMEOUT = 30.0
#: Seconds responses being sent still get once shutdown starts.
SHUTDOWN_GRACE = 1.0
#: Seconds between the send watchdog's checks (how late past its deadline a send may be
#: aborted).
WATCH_INTERVAL = 1.0

_REFUSAL = RpcError("too many connections; try again").to_json()


class _Connection(asyncio.Protocol):
    """aiohttp's protocol for one connection, as seen by the guard."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self.guard = guard
        self.inner = inner
        self.transport: asyncio.Transport | None = None
        self.busy = 0  # requests in flight (a middleware counts them)
        self.admitted = False
        self.opened = 0.0  # when it was accepted, on the loop's clock
        self.heard = 0.0  # when its last bytes arrived (0: never)
        self.responses = 0  # responses begun on it (keep-alive: > 0 and idle between)
        self.last_response = 0.0  # when its last response began or its request ended
        self._flushed: list[asyncio.Future[None]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport: asyncio's, or uvloop's, which has the same public methods
        # without subclassing asyncio.Transport (so no isinstance check here).
        self.transport = cast(asyncio.Transport, transport)
        self.opened = asyncio.get_running_loop().time()
        if self.guard.admit(self):
            self.admitted = True
            # Paused as soon as anything waits to be sent, resumed once all of it has left
            # the process: flushed() (the reply budget's measure of "sent") follows that.
            self.transport.set_write_buffer_limits(0)
            self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.admitted:
            self.heard = asyncio.get_running_loop().time()
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.admitted else None

    def pause_writing(self) -> None:
        if self.admitted:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.admitted:
            self.inner.resume_writing()
        self._wake(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.forget(self)
        self._wake(ConnectionResetError("connection lost"))
        if self.admitted:
            self.inner.connection_lost(exc)

    def _wake(self, exc: BaseException | None) -> None:
        waiting, self._flushed = self._flushed, []
        for fut in waiting:
            if not fut.done():
                if exc is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(exc)

    async def flushed(self) -> None:
        """Return once what was written has left the process; raises ``ConnectionError``
        if the connection is lost first (the send watchdog aborts a client that does not
        read)."""
        transport = self.transport
        while transport is not None and transport.get_write_buffer_size():
            if transport.is_closing():
                raise ConnectionResetError("connection closing")
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._flushed.append(fut)
            await fut

    def rank(self, now: float) -> tuple[int, float]:
        """Which connection goes first when one must be evicted (lowest first): one that
        never sent a byte (silent), then one idle between requests (keep-alive), then one
        whose request is arriving slowly; within each, the longest quiet. A connection with
        a request in flight is never evicted."""
        if not self.heard:
            return (0, self.opened - now)
        if self.responses and self.heard <= self.last_response:
            return (1, self.heard - now)
        return (2, self.heard - now)


class ConnectionGuard:
    """The open HTTP connections, oldest first, and the responses being sent."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._open: dict[asyncio.BaseTransport, _Connection] = {}  # insertion order = age
        # Connections sending a response: (deadline on the loop's clock, seconds allowed).
        self._sending: dict[asyncio.Transport, tuple[float, float]] = {}
        self._watchdog: asyncio.Task[None] | None = None
        self._stopping = False
        self.evicted = 0
        self.refused = 0

    def admit(self, conn: _Connection) -> bool:
        assert conn.transport is not None
        if len(self._open) >= self.cap:
            victim = self._victim()
            if victim is None:
                self.refused += 1
                body = json.dumps({"jsonrpc": "2.0", "id": None, "error": _REFUSAL}).encode()
                conn.transport.write(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body
                )
                conn.transport.close()
                return False
            self.evicted += 1
            self.forget(victim)
            assert victim.transport is not None
            victim.transport.abort()
        self._open[conn.transport] = conn
        return True

    def _victim(self) -> _Connection | None:
        """The connection to evict for a new one (see ``_Connection.rank``), or None when
        every connection has a request in flight."""
        now = asyncio.get_running_loop().time()
        idle = (c for c in self._open.values() if not c.busy)
        return min(idle, key=lambda c: c.rank(now), default=None)

    def forget(self, conn: _Connection) -> None:
        if conn.transport is not None:
            self._open.pop(conn.transport, None)

    def connection(self, transport: asyncio.BaseTransport | None) -> _Connection | None:
        return None if transport is None else self._open.get(transport)

    def protocol_factory(self, runner: web.BaseRunner) -> Any:
        def make() -> asyncio.Protocol:
            server = runner.server
            assert server is not None
            return _Connection(self, server())

        return make

    @contextlib.contextmanager
    def sending(self, transport: asyncio.Transport | None) -> Iterator[None]:
        """The block that sends one response on ``transport``: if it is still sending
        ``SEND_TIMEOUT`` seconds later (``SHUTDOWN_GRACE`` once shutdown has begun), the
        watchdog aborts the connection, which ends the block with a connection error.

        No timer per response: nearly every response is written whole at once, so the
        block is two dictionary operations; one watchdog task checks the sends still open
        once a second (a timer per response was ~3% of the service's samples, issue 19)."""
        if transport is None:
            yield
            return
        loop = asyncio.get_running_loop()
        seconds = SHUTDOWN_GRACE if self._stopping else SEND_TIMEOUT
        self._sending[transport] = (loop.time() + seconds, seconds)
        if self._watchdog is None:
            self._watchdog = loop.create_task(self._watch())
        try:
            yield
        finally:
            self._sending.pop(transport, None)

    def progress(self, transport: asyncio.Transport | None) -> None:
        """A piece of a streamed response was sent: its client reads, so the next piece
        gets a full ``SEND_TIMEOUT`` again."""
        if transport is not None and transport in self._sending:
            _, seconds = self._sending[transport]
            self._sending[transport] = (asyncio.get_running_loop().time() + seconds, seconds)

    async def _watch(self) -> None:
        """Abort connections whose response is not sent by its deadline."""
        loop = asyncio.get_running_loop()
        while self._sending:
            await asyncio.sleep(WATCH_INTERVAL)
            now = loop.time()
            for transport, (deadline, seconds) in list(self._sending.items()):
                if now >= deadline:
                    del self._sending[transport]
                    lograte.CLIENT_LINES.log(
                        log,
                        logging.INFO,
                        "http client dropped",
                        "http client dropped: response not read within %g s",
                        seconds,
                    )
                    transport.abort()
        self._watchdog = None

    def stop_sending(self) -> None:
        """Shutdown: responses being sent get ``SHUTDOWN_GRACE`` seconds, new ones too."""
        self._stopping = True
        deadline = asyncio.get_running_loop().time() + SHUTDOWN_GRACE
        for transport, (when, _) in list(self._sending.items()):
            if when > deadline:
                self._sending[transport] = (deadline, SHUTDOWN_GRACE)


#: Where the app keeps its guard (the middleware finds it there).
GUARD_KEY = web.AppKey("http_guard", ConnectionGuard)


@web.middleware
async def send_within(request: web.Request, handler: Any) -> web.StreamResponse:
    """Mark the connection busy while its request runs, and send the response here, within
    ``SEND_TIMEOUT``: a client that does not read is dropped, its response discarded."""
    guard = request.app[GUARD_KEY]
    conn = guard.connection(request.transport)
    if conn is not None:
        conn.busy += 1
    try:
        resp: web.StreamResponse = await handler(request)
        if resp.prepared:
            return resp
        if conn is not None:
            conn.responses += 1
            conn.last_response = asyncio.get_running_loop().time()
        try:
            with guard.sending(request.transport):
                if isinstance(resp, JsonReply):
                    await resp.send(request, guard, conn)
                else:
                    await resp.prepare(request)
                    await resp.write_eof()
        except ConnectionError:
            pass  # aborted by the watchdog, or the client went away: nothing left to send
        except replybudget.HalfSent as e:
            lograte.CLIENT_LINES.log(
                log, logging.INFO, "http client dropped", "http client dropped: %s", e
            )
            if request.transport is not None:
                request.transport.abort()
        # aiohttp finishes the response: already sent, or its connection is gone.
        return resp
    finally:
        if conn is not None:
            conn.busy -= 1
            conn.last_response = asyncio.get_running_loop().time()


class JsonReply(web.StreamResponse):
    """A JSON response sent within the process's reply budget (:mod:`invreq.replybudget`):
    ``whole`` (bytes made at once) or ``pieces`` (a list's chunks, a batch's elements, made
    as they are sent). ``failed`` gives the status and the body of the answer when the
    reply fails before anything was sent (no room in the budget in time: 503); an empty
    ``pieces`` (a batch of notifications) is a 204."""

    def __init__(
        self,
        status: int,
        *,
        whole: bytes | None = None,
        pieces: AsyncIterator[bytes] | None = None,
        failed: Callable[[RpcError], tuple[int, Any]],
    ) -> None:
        super().__init__(status=status)
        self.content_type = "application/json"
        self._whole = whole
        self._pieces = pieces
        self._failed = failed

    async def send(self, request: web.Request, guard: ConnectionGuard, conn: Any) -> None:
        async def write(piece: bytes) -> None:
            if not self.prepared:
                await self.prepare(request)
            await self.write(piece)

        async def flushed() -> None:
            if conn is not None:
                await conn.flushed()
            guard.progress(request.transport)

        try:
            if self._whole is not None:
                self.content_length = len(self._whole)
                await replybudget.send_whole(self._whole, write, flushed)
            else:
                assert self._pieces is not None
                if not await replybudget.send(self._pieces, write, flushed):
                    self.set_status(204)
                    self.content_type = "application/octet-stream"
                    await self.prepare(request)
        except RpcError as e:  # no room in the budget, or the store failed: nothing sent
            status, obj = self._failed(e)
            body = rpc_dumps(obj)
            self.set_status(503 if isinstance(e, ServerBusy) else status)
            self.content_length = len(body)
            await self.prepare(request)
            await self.write(body)
        await self.write_eof()


class GuardedSite(web.BaseSite):
    """A TCP site (a host and port, or a socket bound by the ``--workers`` parent) whose
    connections go through a :class:`ConnectionGuard`."""

    __slots__ = ("_guard", "_host", "_port", "_sock")

    def __init__(
        self,
        runner: web.BaseRunner,
        guard: ConnectionGuard,
        *,
        host: str | None = None,
        port: int | None = None,
        sock: socket.socket | None = None,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._guard = guard
        self._host, self._port, self._sock = host, port, sock

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        if self._sock is not None:
            host, port = self._sock.getsockname()[:2]
        else:
            host, port = self._host, self._port
        return f"{scheme}://{host}:{port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        factory = self._guard.protocol_factory(self._runner)
        if self._sock is not None:
            self._server = await loop.create_server(
                factory, sock=self._sock, ssl=self._ssl_context, backlog=self._backlog
            )
        else:
            assert self._port is not None
            self._server = await loop.create_server(
                factory,
                self._host,
                self._port,
                ssl=self._ssl_context,
                backlog=self._backlog,
                reuse_address=True,
            )
