"""List replies: every matching record, read from the store and written in bounded chunks.

CLN's list commands return every matching record unless ``limit`` is given, and so do
these: ``listinvoicerequests``, ``listpayments`` and ``showrunes`` without paging parameters
return all of them, never a silently cut page. ``index``/``start``/``limit`` keep working
(``start`` = the last ``created_index`` + 1, or for ``listpayments`` the last ``payment_id``
+ 1).

What keeps memory bounded is that no list is ever held whole: a list command answers a
:class:`Listing`, whose records the store reads in chunks of at most ``CHUNK_ROWS`` rows
holding at most ``CHUNK_BYTES`` bytes (the row that crosses it is the last; keyset paging,
each chunk its own short query, so no read transaction stays open while a slow client
reads). The doors encode and send one chunk at a time within the process's reply budget
(:mod:`invreq.replybudget`), so memory depends on the chunk, not on the number or the size
of the records (a record of ~1 MB is one chunk by itself).

Why: a record can be ~1 MB (a long description), and holding a page of them per reply was
measured at 43 -> 262 MiB for a one-record REST list (issue 25); cutting a list at 1,000
records made clients see a wrong answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar

__all__ = ["CHUNK_BYTES", "CHUNK_ROWS", "Listing", "chunks"]

#: Most rows read from the store at once.
CHUNK_ROWS = 100
#: Most bytes of stored text read from the store at once (the row that crosses it is the
#: last of its chunk).
CHUNK_BYTES = 64 * 1024

T = TypeVar("T")

#: read(start, n): at most n rows from position ``start`` on (None: the first), in order,
#: holding at most CHUNK_BYTES.
Read = Callable[[int | None, int], Awaitable[list[T]]]


async def chunks(
    read: Read[T], position: Callable[[T], int], start: int | None, limit: int | None
) -> AsyncIterator[list[T]]:
    """Rows from ``start`` on (at most ``limit`` of them), one bounded read at a time; the
    next read starts after the last row's ``position``."""
    remaining = limit
    while remaining is None or remaining > 0:
        n = CHUNK_ROWS if remaining is None else min(CHUNK_ROWS, remaining)
        rows = await read(start, n)
        if not rows:
            return
        if remaining is not None:
            remaining -= len(rows)
        start = position(rows[-1]) + 1
        # Handed on without a reference left in this frame: a reply waiting for room in the
        # budget must not hold its last chunk meanwhile (see invreq.replybudget).
        box = [rows]
        del rows
        yield box.pop()


class Listing(Generic[T]):
    """A list command's result, ``{key: [record, ...]}``, whose records are read and
    converted (``convert``: store row -> CLN's JSON object) chunk by chunk as it is sent.

    Nothing is read before the reply is sent: a store that fails on the first chunk fails
    the call with its error (nothing was sent yet); a failure later ends the reply's
    connection (a reply cannot be taken back half sent)."""

    def __init__(
        self,
        key: str,
        rows: AsyncIterator[list[T]],
        convert: Callable[[T], dict[str, Any]],
    ) -> None:
        self.key = key
        self._rows = rows
        self._convert: Callable[[Any], dict[str, Any] | None] = convert
        #: Members written after the records, known only once every record was seen
        #: (a ``filter``'s ``warning_parameter_filter``).
        self._tail: Callable[[], dict[str, Any]] = dict

    def mapped(self, fn: Callable[[dict[str, Any]], dict[str, Any] | None]) -> Listing[T]:
        """The same listing with ``fn`` applied to each converted record (None drops it):
        a ``filter`` applied record by record."""
        convert = self._convert

        def both(row: Any) -> dict[str, Any] | None:
            record = convert(row)
            return None if record is None else fn(record)

        self._convert = both
        return self

    def followed_by(self, tail: Callable[[], dict[str, Any]]) -> Listing[T]:
        """The same listing with ``tail()``'s members after the records (asked for once the
        last record was converted)."""
        self._tail = tail
        return self

    async def collect(self) -> dict[str, Any]:
        """The whole result as one object (for callers that need one, and tests)."""
        out: list[dict[str, Any]] = []
        async for rows in self._rows:
            out += [r for r in map(self._convert, rows) if r is not None]
        return {self.key: out, **self._tail()}

    async def encoded(self, dumps: Callable[[Any], bytes]) -> AsyncIterator[bytes]:
        """The result as JSON (``dumps``: the doors' encoder, :func:`invreq.rpc.dumps`), one
        piece per chunk: ``{"key":[`` ... ``]}``. No chunk is referenced from here while a
        piece waits to be taken (see :func:`chunks`)."""
        head = b"{" + dumps(self.key) + b":["
        sep = b""
        async for rows in self._rows:
            body = b",".join([dumps(r) for r in map(self._convert, rows) if r is not None])
            del rows
            if not body:
                continue
            box = [head + sep + body]
            del body
            head, sep = b"", b","
            yield box.pop()
        tail = b"".join([b"," + dumps(k) + b":" + dumps(v) for k, v in self._tail().items()])
        yield head + b"]" + tail + b"}"
