"""Delivering the outbox's events to ``--webhook-url``, signed, retried, in order.

Every event (:mod:`invreq.store.outbox`) is POSTed as JSON (:func:`invreq.views.event_json`)
with two headers (docs/payee-page.md shows how to check them)::

    Invreq-Event-Id: 42
    Invreq-Signature: t=1767225600,v1=<hex HMAC-SHA256(secret, "1767225600." + body)>

A ``2xx`` answer delivers it; anything else (or no answer within ``TIMEOUT``) is retried
after 1, 2, 4 ... up to 600 seconds, for ever: an event is never dropped. The receiver must
therefore accept an event twice (a crash between its ``2xx`` and our record of it) and
de-duplicate by ``event_id``; it never gets a request's later event before an earlier one.

The sender leases what it delivers (``events_lease``): every worker and instance on one
database runs one, and each event is delivered by one of them at a time. The same loop
notes expired requests (``note_expired``), webhook or not, so ``listevents`` has them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import socket
import time
from collections.abc import Callable

import aiohttp

from invreq import views
from invreq.changes import CHANGED, RECHECK, ChangeFeed
from invreq.errors import RpcError
from invreq.oneline import oneline
from invreq.store import outbox
from invreq.store.base import Event, EventStore

__all__ = ["SIGNATURE_HEADER", "Sender", "sign"]

log = logging.getLogger("invreq.webhooks")

SIGNATURE_HEADER = "Invreq-Signature"
EVENT_ID_HEADER = "Invreq-Event-Id"
#: Seconds one delivery may take.
TIMEOUT = 10.0
#: Bytes of a receiver's answer read at most: its status is what counts. A longer (or
#: endless) body is not read at all: the connection is closed instead of drained, so a
#: broken or hostile receiver can neither hold a delivery until ``TIMEOUT`` nor fill memory.
ANSWER_BYTES = 64 * 1024
#: Events leased at once.
BATCH = 20
#: Seconds between looks for expired requests.
EXPIRY_EVERY = 5.0


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``Invreq-Signature`` header's value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


class Sender:
    def __init__(
        self,
        store: EventStore,
        feed: ChangeFeed,
        url: str | None,
        secret: bytes | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.feed = feed
        self.url = url
        self.secret = secret
        self.clock = clock
        #: who holds the leases this sender takes
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"
        self._session: aiohttp.ClientSession | None = None

    async def run(self) -> None:
        """Until cancelled: note expired requests, deliver what is due, wait for more."""
        next_expiry = 0.0
        if self.url is not None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=TIMEOUT),
                headers={"User-Agent": "invreq-webhook"},
            )
        try:
            while True:
                busy = False
                try:
                    now = self.clock()
                    if now >= next_expiry:
                        next_expiry = now + EXPIRY_EVERY
                        await self.store.note_expired(int(now))
                    if self.url is not None:
                        busy = await self._deliver_due()
                except RpcError as e:
                    log.warning("webhook: the store failed (%s); trying again", e.message)
                except Exception:
                    log.exception("webhook sender failed; trying again")
                if busy:
                    continue
                if self.url is None:
                    # Nothing to deliver: only the expiry sweep is due, so this task sleeps
                    # until then instead of waking (and re-arming a timer) on every write.
                    await asyncio.sleep(min(EXPIRY_EVERY, max(0.0, next_expiry - self.clock())))
                else:
                    # Events come of payments and disabled requests, never of a creation.
                    await self.feed.wait(RECHECK, CHANGED)
        finally:
            if self._session is not None:
                await self._session.close()

    async def _deliver_due(self) -> bool:
        """Deliver the events due now; True when there were some (look again at once)."""
        now = int(self.clock())
        events = await self.store.events_lease(now, self.owner, BATCH, outbox.LEASE_SECONDS)
        # The batch's leases end LEASE_SECONDS from now and a delivery may take TIMEOUT (20
        # of them up to 200 s): one not begun by then could be leased and sent by another
        # sender meanwhile, so the rest are given back and leased again.
        last_start = now + outbox.LEASE_SECONDS - TIMEOUT
        for e in events:
            if self.clock() >= last_start:
                await self.store.events_release(self.owner)
                break
            await self._deliver(e)
        return bool(events)

    async def release(self) -> None:
        """At a stop: give back the leases still held (a batch cut short), so a restart or
        another instance delivers those events at once instead of LEASE_SECONDS later. An
        event whose delivery was cut short may so be delivered twice (at least once, as
        ever: the receiver dedupes by its id)."""
        try:
            released = await self.store.events_release(self.owner)
        except Exception as e:  # the store is going away too: the leases then just end
            log.warning("webhook: leases not given back at stop (%s)", e)
            return
        if released:
            log.info("webhook: %d leased events given back at stop", released)

    async def _deliver(self, e: Event) -> None:
        assert self._session is not None and self.url is not None and self.secret is not None
        body = json.dumps(views.event_json(e), separators=(",", ":")).encode()
        timestamp = int(self.clock())
        headers = {
            "Content-Type": "application/json",
            EVENT_ID_HEADER: str(e.event_id),
            SIGNATURE_HEADER: sign(self.secret, timestamp, body),
        }
        error: str | None
        try:
            async with self._session.post(
                self.url, data=body, headers=headers, allow_redirects=False
            ) as resp:
                if resp.content_length is not None and resp.content_length <= ANSWER_BYTES:
                    await resp.read()  # small and of known length: drained, kept alive
                error = None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as ex:
            error = oneline(f"{type(ex).__name__}: {ex}") or type(ex).__name__
        now = int(self.clock())
        if error is None:
            await self.store.event_delivered(e.event_id, self.owner, now)
            return
        wait = outbox.backoff(e.attempts + 1)
        log.info("webhook: event %d not delivered (%s); again in %d s", e.event_id, error, wait)
        await self.store.event_retry(e.event_id, self.owner, now + wait, error)
