"""``wait`` (lightningd's, for our subsystems) and ``listevents`` (the outbox).

``wait subsystem indexname nextvalue [timeout]`` returns once the index reaches
``nextvalue``, as lightningd's does: ``created`` counts the objects made (a request's
``created_index``, a payment's ``payment_id``), ``updated`` their changes (a request
disabled or used; a payment claimed again, settled, or its request disabled meanwhile).
The indexes are read from the store, never from memory: a change made by another worker or
instance counts too. This process's own changes wake the waiter at once
(:mod:`invreq.changes`), others' within ``RECHECK`` seconds. After ``timeout`` seconds it
fails with 2200, the index as it is in the error's data.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from invreq import paging, views
from invreq.changes import ANY, CHANGED, RECHECK, ChangeFeed
from invreq.errors import WaitTimeout
from invreq.store.base import Event, EventStore

__all__ = ["DEFAULT_WAIT", "Events"]

#: ``listevents limit`` without ``start``: the newest ones, at most this many.
NEWEST_MAX = 1000
#: Seconds ``wait`` waits when the caller gives no timeout.
DEFAULT_WAIT = 60


@dataclasses.dataclass
class Events:
    store: EventStore
    feed: ChangeFeed
    #: whether this instance delivers events to a webhook (listevents' delivery state)
    webhook: bool = False

    async def wait(
        self, subsystem: str, indexname: str, nextvalue: int, timeout: int = DEFAULT_WAIT
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = (await self.store.indexes())[subsystem][indexname]
            if value >= nextvalue:
                out: dict[str, Any] = {"subsystem": subsystem, indexname: value}
                # As lightningd's: what is at that index, when it is still there.
                details = await self.store.index_details(subsystem, indexname, value)
                if details is not None:
                    out[subsystem] = details
                return out
            left = deadline - loop.time()
            if left <= 0:
                raise WaitTimeout(
                    f"wait: {subsystem} {indexname} is {value}, not {nextvalue}, after {timeout} s",
                    data={"subsystem": subsystem, indexname: value},
                )
            # Only a creation moves invoicerequests' created index: the other indexes wait
            # for the other writes, and are not woken by every creation.
            key = ANY if (subsystem, indexname) == ("invoicerequests", "created") else CHANGED
            await self.feed.wait(min(RECHECK, left), key)

    async def listevents(
        self, invreq_id: str | None = None, start: int | None = None, limit: int | None = None
    ) -> paging.Listing[Event]:
        """Every event from ``start`` on (all of them without paging parameters), read and
        sent a chunk at a time (invreq.paging); ``limit`` without ``start``: the newest
        ``limit``, at most ``NEWEST_MAX`` (read in one piece, newest first from the store)."""
        if start is None and limit is not None:
            newest = await self.store.events(invreq_id=invreq_id, limit=min(limit, NEWEST_MAX))
            start, limit = (newest[0].event_id, len(newest)) if newest else (0, 0)

        async def read(first: int | None, n: int) -> list[Event]:
            return await self.store.events(
                invreq_id=invreq_id, start=first or 0, limit=n, max_bytes=paging.CHUNK_BYTES
            )

        rows = paging.chunks(read, lambda e: e.event_id, start, limit)
        return paging.Listing("events", rows, lambda e: views.event_listed_json(e, self.webhook))
