"""``--workers N`` on SQLite: one writer process owns the file, the workers only read it.

The parent of the workers forks a writer process first (:mod:`invreq.workers`). It opens
the real :class:`~invreq.store.sqlite.SQLiteStore` (migrations, file modes, WAL, all as one
process does) and serves one socketpair per worker, made by the parent before forking: no
path in the filesystem, so nobody else can connect and no authentication is needed.

A worker's store (:class:`WorkerStore`) sends each write (the methods named in ``WRITES``)
over its socketpair and waits for the answer; many are in flight at once, each with its own
id. The writer calls the same method of its store for every request of every worker as it
arrives, so concurrent writes of all workers fall into the store's own group commit (one
transaction, one fsync). It answers only once the store's future has resolved, which is
after COMMIT (``synchronous=FULL``): an acknowledged write is durable, as with one process.
Errors come back as the same class with the same message and code.

Reads stay in the worker: a read-only ``SQLiteStore`` on the same file, whose WAL readers
never wait for the writer. A worker opens it only after the writer said ready, so it never
sees a half-migrated file.

If the writer's connection is lost, every write waiting for it and every later one fails
with ``DatabaseError`` (2002): whether a write that was in flight committed is unknown, and
it was never acknowledged. If a worker dies, the writer keeps serving the others; the writes
that worker had sent may still commit (they were never acknowledged either).

Frames are a 4-byte big-endian length and a pickle. Pickle is acceptable here because both
ends are this program, forked from one parent, on a socketpair nobody else holds.
"""

from __future__ import annotations

import asyncio
import builtins
import copyreg
import dataclasses
import functools
import io
import logging
import operator
import pickle
import socket
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from invreq.errors import (
    DatabaseError,
    RpcError,
    StartupError,
    StoreClosed,
    StoreError,
    WriterBusy,
)
from invreq.store.base import (
    Claim,
    Event,
    ListQuery,
    Payment,
    PaymentLimits,
    Record,
    StoredRune,
)
from invreq.store.sqlite import SQLiteStore

__all__ = ["WRITES", "WorkerStore", "serve_writer"]

log = logging.getLogger("invreq.store")

#: The store's write methods (store/base.py): the only calls a worker sends to the writer.
WRITES = frozenset(
    {
        "insert",
        "disable",
        "mark_used",
        "disable_noting_payments",
        "payment_claim",
        "payment_finish",
        "payment_approved",
        "rune_insert",
        "rune_used",
        "rune_blacklist_add",
        "events_lease",
        "event_delivered",
        "event_retry",
        "events_release",
        "note_expired",
    }
)


def _by_fields(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    get = operator.attrgetter(*(f.name for f in dataclasses.fields(cls)))
    return lambda obj: (cls, get(obj))


class _Pickler(pickle.Pickler):
    """Pickles the store's row classes as their constructor and fields: the default for a
    frozen dataclass with slots runs Python code per field both ways (measured: 22 us for a
    request with a record, round trip, against 10 us so)."""

    dispatch_table = copyreg.dispatch_table | {
        cls: _by_fields(cls) for cls in (Record, Payment, Claim, PaymentLimits, StoredRune, Event)
    }


_HEADER = struct.Struct("!I")
#: A frame carries one record or payment; anything larger is a bug, and ends the link.
MAX_FRAME = 1 << 24
_READY = "ready"


class _Link(asyncio.Protocol):
    """One end of a worker's socketpair: length-prefixed pickled frames both ways.

    Frames sent during one turn of the event loop leave in one ``write`` at its end: a group
    of answers (or a burst of requests) costs one system call, not one each."""

    def __init__(
        self, on_frame: Callable[[Any], None], on_lost: Callable[[BaseException | None], None]
    ) -> None:
        self._on_frame = on_frame
        self._on_lost = on_lost
        self._in = bytearray()
        # Frames to send, back to back; one pickler for them all (its memo cleared per
        # frame: each frame is read by a fresh unpickler).
        self._out = io.BytesIO()
        self._pickler = _Pickler(self._out, protocol=pickle.HIGHEST_PROTOCOL)
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's or uvloop's stream transport (uvloop's does not subclass asyncio's).
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buf = self._in
        buf += data
        pos, end = 0, len(buf)
        try:
            while end - pos >= _HEADER.size:
                (size,) = _HEADER.unpack_from(buf, pos)
                if size > MAX_FRAME:
                    raise ValueError(f"frame of {size} bytes")
                stop = pos + _HEADER.size + size
                if stop > end:
                    break
                frame = pickle.loads(buf[pos + _HEADER.size : stop])
                pos = stop
                self._on_frame(frame)
        except Exception:
            log.exception("writer link: bad frame; closing the link")
            self.close(abort=True)
            return
        del buf[:pos]

    def send(self, frame: Any) -> bool:
        """Queue ``frame``; False when the link is closed (nothing is sent)."""
        if self._transport is None or self._transport.is_closing():
            return False
        out = self._out
        start = out.tell()
        out.write(b"\0" * _HEADER.size)
        self._pickler.clear_memo()
        self._pickler.dump(frame)
        with out.getbuffer() as written:
            _HEADER.pack_into(written, start, out.tell() - start - _HEADER.size)
        if start == 0:
            self._loop.call_soon(self._flush)
        return True

    def _flush(self) -> None:
        out = self._out
        if not out.tell():
            return
        data = out.getvalue()
        out.seek(0)
        out.truncate()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def close(self, *, abort: bool = False) -> None:
        if self._transport is not None and not self._transport.is_closing():
            if abort:
                self._transport.abort()
            else:
                self._flush()
                self._transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._on_lost(exc)


async def _link(
    sock: socket.socket,
    on_frame: Callable[[Any], None],
    on_lost: Callable[[BaseException | None], None],
) -> _Link:
    loop = asyncio.get_running_loop()
    _, link = await loop.connect_accepted_socket(lambda: _Link(on_frame, on_lost), sock)
    return link


# --- errors across the link ---------------------------------------------------------------


def _error_state(e: BaseException) -> tuple[type[RpcError], tuple[Any, ...], dict[str, Any]]:
    """An error as its class, args and attributes: the store's error classes take other
    constructor arguments than their message, so they are rebuilt, not re-constructed."""
    if not isinstance(e, RpcError):
        e = DatabaseError(e)
    return type(e), e.args, dict(e.__dict__)


def _rebuild_error(state: tuple[type[RpcError], tuple[Any, ...], dict[str, Any]]) -> RpcError:
    cls, args, attributes = state
    if not (isinstance(cls, type) and issubclass(cls, RpcError)):
        return StoreError(f"the writer answered {cls!r}, not an error")
    e = cls.__new__(cls)
    Exception.__init__(e, *args)
    e.__dict__.update(attributes)
    return e


def _writer_gone() -> DatabaseError:
    return DatabaseError(ConnectionError("the SQLite writer process is gone"))


# --- the writer process ------------------------------------------------------------------


async def serve_writer(
    path: Path, socks: builtins.list[socket.socket], ready: Callable[[], None]
) -> None:
    """The writer process's life: open the store (raising ``StartupError`` as one process
    would), say ready on every link and through ``ready``, then commit what the workers
    send until every link is closed; then commit what is left and close the store."""
    store = SQLiteStore(path)
    await store.open()
    writer = _Writer(store)
    try:
        for sock in socks:
            await writer.attach(sock, path)
        ready()
        await writer.until_all_gone()
    finally:
        writer.close_links()
        await store.close()  # commits what is pending
        # What --metrics-port's group size histogram shows with one process (which
        # --workers does not combine with).
        log.info(
            "SQLite writer: %d writes in %d commits (%.1f per commit)",
            store.writes,
            store.commits,
            store.writes / max(store.commits, 1),
        )


class _Writer:
    """The writer's side of every worker's link, over one store."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        #: writes other than inserts, received and not yet in the store's queue or answered
        self.pending: set[asyncio.Task[None]] = set()
        self.links: set[_Served] = set()
        self.all_gone = asyncio.Event()

    async def attach(self, sock: socket.socket, path: Path) -> None:
        served = _Served(self)
        served.link = await _link(sock, served.on_frame, served.on_lost)
        self.links.add(served)
        served.link.send((_READY, str(path)))

    async def until_all_gone(self) -> None:
        if self.links:
            await self.all_gone.wait()
        while self.pending:  # writes received before their worker left: committed all the same
            await asyncio.wait(self.pending)

    def lost(self, served: _Served) -> None:
        self.links.discard(served)
        if not self.links:
            self.all_gone.set()

    def close_links(self) -> None:
        for served in self.links:
            if served.link is not None:
                served.link.close()

    def start(self, served: _Served, rid: int, method: str, args: Any, kwargs: Any) -> None:
        if method == "insert":
            # The busy one (every invoicerequest): answered from the store's future itself,
            # without a task per write. It is in the store's queue at once, so closing the
            # store commits it: no need to wait for it in ``pending``.
            try:
                fut = self.store.insert_soon(*args)
            except Exception as e:
                served.answer((rid, False, _error_state(e)))
                return
            fut.add_done_callback(functools.partial(self._answer_insert, served, rid))
            return
        task = asyncio.create_task(self._run(served, rid, method, args, kwargs))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    @staticmethod
    def _answer_insert(served: _Served, rid: int, fut: asyncio.Future[int]) -> None:
        e = StoreClosed() if fut.cancelled() else fut.exception()
        served.answer((rid, True, fut.result()) if e is None else (rid, False, _error_state(e)))

    async def _run(self, served: _Served, rid: int, method: str, args: Any, kwargs: Any) -> None:
        try:
            if method not in WRITES:
                raise StoreError(f"the writer does not serve {method!r}")
            result = await getattr(self.store, method)(*args, **kwargs)
        except Exception as e:
            reply: tuple[Any, ...] = (rid, False, _error_state(e))
        else:
            reply = (rid, True, result)
        served.answer(reply)


class _Served:
    """One worker's link, as the writer sees it."""

    def __init__(self, writer: _Writer) -> None:
        self.writer = writer
        self.link: _Link | None = None

    def on_frame(self, frame: Any) -> None:
        rid, method, args, kwargs = frame
        self.writer.start(self, rid, method, args, kwargs)

    def on_lost(self, _exc: BaseException | None) -> None:
        self.writer.lost(self)

    def answer(self, reply: tuple[Any, ...]) -> None:
        # A worker that died meanwhile gets nothing; its write is committed all the same.
        if self.link is not None:
            self.link.send(reply)


# --- a worker's store ----------------------------------------------------------------------


#: Writes one worker may have waiting for the writer's answer (its callers' requests, and
#: those whose callers went away: they are still answered). Beyond it a write is refused
#: at once with 2002 instead of queueing while the writer stalls.
MAX_WAITING_WRITES = 4096


class WorkerStore:
    """A ``--workers`` worker's store on SQLite: writes go to the writer process over
    ``sock``; reads run here, on a read-only ``SQLiteStore`` of the file the writer owns."""

    kind = "sqlite"

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        #: commits happen in the writer process: nothing to observe here
        self.on_commit: Callable[[float, int], None] | None = None
        self._reads: SQLiteStore | None = None
        self._link: _Link | None = None
        self._ready: asyncio.Future[str] | None = None
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._next_id = 0
        self._gone = False
        self._closed = False

    # --- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        self._ready = asyncio.get_running_loop().create_future()
        self._link = await _link(self._sock, self._received, self._lost)
        try:
            path = await self._ready
        except ConnectionError:
            raise StartupError("the SQLite writer process ended before it was ready") from None
        self._reads = SQLiteStore(Path(path), read_only=True)
        await self._reads.open()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Writes still in flight are answered first (or fail, if the writer is gone).
        waiting = [f for f in self._waiting.values() if not f.done()]
        if waiting:
            await asyncio.wait(waiting)
        if self._link is not None:
            self._link.close()
        if self._reads is not None:
            await self._reads.close()

    def _received(self, frame: Any) -> None:
        if self._ready is not None and not self._ready.done():
            kind, path = frame
            assert kind == _READY, frame
            self._ready.set_result(path)
            return
        rid, ok, value = frame
        fut = self._waiting.pop(rid, None)
        if fut is None or fut.done():
            return  # its caller was cancelled; the write went ahead all the same
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(_rebuild_error(value))

    def _lost(self, _exc: BaseException | None) -> None:
        self._gone = True
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(ConnectionError())
        if not self._closed:
            log.error("the SQLite writer process is gone: writes fail with 2002")
        waiting, self._waiting = self._waiting, {}
        for fut in waiting.values():
            if not fut.done():
                fut.set_exception(_writer_gone())

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if self._closed:
            raise StoreClosed()
        if self._gone or self._link is None:
            raise _writer_gone()
        if len(self._waiting) >= MAX_WAITING_WRITES:
            # The writer stalls (or is far behind): writes waiting for it, abandoned ones
            # included, would pile up here without end. Refused, nothing sent.
            raise WriterBusy(MAX_WAITING_WRITES)
        rid = self._next_id
        self._next_id += 1
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        if not self._link.send((rid, method, args, kwargs)):
            del self._waiting[rid]
            raise _writer_gone()
        return await fut

    def _reader(self) -> SQLiteStore:
        if self._reads is None:
            raise StoreClosed()
        return self._reads

    # --- writes: through the writer -------------------------------------------------------

    async def insert(self, record: Record) -> int:
        result: int = await self._call("insert", record)
        return result

    async def disable(self, invreq_id: str) -> Record:
        result: Record = await self._call("disable", invreq_id)
        return result

    async def mark_used(self, invreq_id: str) -> Record:
        result: Record = await self._call("mark_used", invreq_id)
        return result

    async def disable_noting_payments(
        self, invreq_id: str, at: int
    ) -> tuple[Record, builtins.list[Payment]]:
        result: tuple[Record, builtins.list[Payment]] = await self._call(
            "disable_noting_payments", invreq_id, at
        )
        return result

    async def payment_claim(self, payment: Payment, limits: PaymentLimits | None = None) -> Claim:
        result: Claim = await self._call("payment_claim", payment, limits)
        return result

    async def payment_finish(
        self,
        payment_id: int,
        status: str,
        resolved_at: int,
        *,
        preimage: str | None = None,
        error: str | None = None,
        resolved_by: str | None = None,
        evidence: str | None = None,
    ) -> Payment:
        result: Payment = await self._call(
            "payment_finish",
            payment_id,
            status,
            resolved_at,
            preimage=preimage,
            error=error,
            resolved_by=resolved_by,
            evidence=evidence,
        )
        return result

    async def payment_approved(
        self, payment_id: int, approval: dict[str, Any], attempt_deadline: int | None = None
    ) -> Payment:
        result: Payment = await self._call(
            "payment_approved", payment_id, approval, attempt_deadline
        )
        return result

    async def rune_insert(self, restrictions: str, created_at: int) -> int:
        result: int = await self._call("rune_insert", restrictions, created_at)
        return result

    async def rune_used(self, unique_id: int, now_ns: int, previous_ns: int | None) -> bool:
        result: bool = await self._call("rune_used", unique_id, now_ns, previous_ns)
        return result

    async def rune_blacklist_add(self, first: int, last: int) -> None:
        await self._call("rune_blacklist_add", first, last)

    async def events_lease(
        self, now: int, owner: str, limit: int, lease_seconds: int
    ) -> builtins.list[Event]:
        result: builtins.list[Event] = await self._call(
            "events_lease", now, owner, limit, lease_seconds
        )
        return result

    async def event_delivered(self, event_id: int, owner: str, at: int) -> bool:
        result: bool = await self._call("event_delivered", event_id, owner, at)
        return result

    async def event_retry(self, event_id: int, owner: str, next_at: int, error: str) -> bool:
        result: bool = await self._call("event_retry", event_id, owner, next_at, error)
        return result

    async def events_release(self, owner: str) -> int:
        result: int = await self._call("events_release", owner)
        return result

    async def note_expired(self, now: int) -> int:
        result: int = await self._call("note_expired", now)
        return result

    # --- reads: here ----------------------------------------------------------------------

    async def indexes(self) -> dict[str, dict[str, int]]:
        return await self._reader().indexes()

    async def index_details(
        self, subsystem: str, indexname: str, value: int
    ) -> dict[str, Any] | None:
        return await self._reader().index_details(subsystem, indexname, value)

    async def events(
        self,
        *,
        invreq_id: str | None = None,
        start: int | None = None,
        limit: int | None = None,
        max_bytes: int | None = None,
    ) -> builtins.list[Event]:
        return await self._reader().events(
            invreq_id=invreq_id, start=start, limit=limit, max_bytes=max_bytes
        )

    async def get(self, invreq_id: str) -> Record | None:
        return await self._reader().get(invreq_id)

    async def get_by_k1(self, k1: str) -> Record | None:
        return await self._reader().get_by_k1(k1)

    async def list(self, query: ListQuery) -> builtins.list[Record]:
        return await self._reader().list(query)

    async def count_by_state(self) -> dict[str, int]:
        return await self._reader().count_by_state()

    async def payment_by_hash(self, payment_hash: str) -> Payment | None:
        return await self._reader().payment_by_hash(payment_hash)

    async def payment_count(self, invreq_id: str, status: str) -> int:
        return await self._reader().payment_count(invreq_id, status)

    async def payments(
        self,
        invreq_id: str | None = None,
        status: str | None = None,
        *,
        start: int | None = None,
        limit: int | None = None,
        max_bytes: int | None = None,
    ) -> builtins.list[Payment]:
        return await self._reader().payments(
            invreq_id, status, start=start, limit=limit, max_bytes=max_bytes
        )

    async def runes(
        self,
        limit: int | None = None,
        *,
        start: int | None = None,
        max_bytes: int | None = None,
    ) -> builtins.list[StoredRune]:
        return await self._reader().runes(limit, start=start, max_bytes=max_bytes)

    async def rune(self, unique_id: int) -> StoredRune | None:
        return await self._reader().rune(unique_id)

    async def rune_blacklist(self) -> builtins.list[tuple[int, int]]:
        return await self._reader().rune_blacklist()
