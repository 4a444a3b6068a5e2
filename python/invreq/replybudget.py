"""One memory budget for every reply in flight in the process, on both doors.

A reply is written in pieces (:func:`invreq.rpc.reply_pieces`: a list's chunks, a batch's
elements), and a piece holds its share of ``BUDGET_BYTES`` from before it is made until
the connection has handed it to the kernel (its transport's buffer is empty again). A piece
that does not fit waits for room, at most ``WAIT`` seconds: a reply that has sent nothing
yet is then answered :class:`~invreq.errors.ServerBusy` (2004; HTTP 503), one that is half
sent loses its connection. So however many clients ask and however few of them read, the
replies held by the process stay within the budget, instead of growing it per connection
(issue 25: 60 clients that never read took RSS 45 -> 1,007 MiB).

- A piece of a streamed reply takes ``PIECE_BYTES`` before it is made (the store chunk it
  is made from, :data:`invreq.paging.CHUNK_BYTES`, expands to about that much JSON); one
  that comes out larger (a single ~1 MB record) takes the rest before it is written.
- A reply that is made whole (every non-list command) takes exactly its size.
- The last ``SMALL_LANE`` bytes of the budget are for pieces of at most ``SMALL_PIECE``
  bytes: replies of ordinary calls are still sent while large replies wait for room.

Worst case held by replies in flight: ``BUDGET_BYTES`` (docs/limits.md), per process (each
``--workers`` worker has its own).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from invreq.errors import InternalError, RpcError, ServerBusy

__all__ = [
    "BUDGET",
    "BUDGET_BYTES",
    "PIECE_BYTES",
    "WAIT",
    "HalfSent",
    "ReplyBudget",
    "send",
]

log = logging.getLogger("invreq.replies")

#: Bytes of replies the process holds at most, all connections and doors together.
BUDGET_BYTES = 32 * 1024 * 1024
#: Taken by a piece of a streamed reply before it is made.
PIECE_BYTES = 256 * 1024
#: Pieces up to this size may use the last SMALL_LANE bytes of the budget.
SMALL_PIECE = 64 * 1024
SMALL_LANE = 4 * 1024 * 1024
#: Seconds a piece may wait for room in the budget.
WAIT = 30.0


class HalfSent(Exception):
    """A reply could not go on (no room in the budget in time, or its rows could not be
    read): part of it was sent, so its connection must be closed."""


class ReplyBudget:
    """Bytes held by replies in flight; who waits for room, in order."""

    def __init__(
        self,
        total: int = BUDGET_BYTES,
        small_piece: int = SMALL_PIECE,
        small_lane: int = SMALL_LANE,
    ) -> None:
        self.total = total
        self.small_piece = small_piece
        self.small_lane = small_lane
        self.used = 0
        self.peak = 0  # the most ever held (tests, metrics)
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    def _fits(self, n: int) -> bool:
        limit = self.total if n <= self.small_piece else self.total - self.small_lane
        # A piece larger than the budget itself (never made by invreq's own commands) is
        # sent alone rather than never.
        return self.used + n <= limit or self.used == 0

    def _grant(self, n: int) -> None:
        self.used += n
        self.peak = max(self.peak, self.used)

    async def take(self, n: int, wait: float = WAIT) -> None:
        """Hold ``n`` bytes, waiting at most ``wait`` seconds for room; raises
        ``ServerBusy``. Whoever waits first and fits goes first."""
        if not self._waiters and self._fits(n):
            self._grant(n)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (n, fut)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(wait):
                await fut
        except TimeoutError:
            raise ServerBusy(self.total) from None
        except BaseException:
            if fut.done() and not fut.cancelled():
                self.give(n)  # granted as it was cancelled: hand it on
            raise
        finally:
            if not fut.done():
                fut.cancel()
            try:
                self._waiters.remove(entry)
            except ValueError:
                pass

    def give(self, n: int) -> None:
        """Return ``n`` bytes; wake the waiters that now fit, in order."""
        self.used -= n
        for entry in list(self._waiters):
            size, fut = entry
            if fut.done():
                continue
            if self._fits(size):
                self._grant(size)
                fut.set_result(None)
                self._waiters.remove(entry)


#: The process's budget (one event loop per process; each --workers worker has its own).
BUDGET = ReplyBudget()


async def send(
    pieces: AsyncIterator[bytes],
    write: Callable[[bytes], Awaitable[None]],
    flushed: Callable[[], Awaitable[None]],
    *,
    budget: ReplyBudget | None = None,
    wait: float = WAIT,
) -> int:
    """Write ``pieces`` one at a time within the budget; returns how many were written.

    ``write(piece)`` hands a piece to the connection, ``flushed()`` returns once it is out
    of the process (the connection's buffer is empty; it raises, or times out, for a client
    that does not read). Raises ``ServerBusy`` when the first piece finds no room in time,
    or the ``RpcError`` of a reply that fails before its first piece (a list whose first
    chunk cannot be read): nothing was written, the caller answers the error. Raises
    ``HalfSent`` when a later piece finds no room or the reply fails after its first."""
    budget = budget or BUDGET
    written = 0
    it = aiter(pieces)
    while True:
        held = PIECE_BYTES
        try:
            await budget.take(held, wait)
        except ServerBusy:
            await _close(it)
            if written:
                raise HalfSent("no room in the reply budget") from None
            raise
        try:
            try:
                piece = await anext(it, None)
            except RpcError as e:
                if not written:
                    raise
                raise HalfSent(f"the reply failed while being made: {e.message}") from e
            except Exception as e:
                # A bug must not look like success, nor take the connection's task down.
                log.exception("internal error while making a reply")
                if not written:
                    raise InternalError("internal error (see the server log)") from e
                raise HalfSent("the reply failed while being made") from e
            if piece is None:
                return written
            if len(piece) > held:
                try:
                    await budget.take(len(piece) - held, wait)
                except ServerBusy:
                    await _close(it)
                    raise HalfSent("no room in the reply budget") from None
                held = len(piece)
            await write(piece)
            written += 1
            del piece
            await flushed()
        finally:
            budget.give(held)


async def send_whole(
    data: bytes,
    write: Callable[[bytes], Awaitable[None]],
    flushed: Callable[[], Awaitable[None]],
    *,
    budget: ReplyBudget | None = None,
    wait: float = WAIT,
) -> None:
    """Write a reply made whole (its exact size taken from the budget); raises
    ``ServerBusy`` when there is no room in time (nothing written)."""
    budget = budget or BUDGET
    await budget.take(len(data), wait)
    try:
        await write(data)
        await flushed()
    finally:
        budget.give(len(data))


async def _close(it: AsyncIterator[bytes]) -> None:
    aclose = getattr(it, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            pass
