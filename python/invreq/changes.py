"""Waking whoever waits for a change: the payee page's live state, ``wait``, the webhook sender.

Every change of state goes through the store, so the store given to the service is wrapped
(:class:`NotifyingStore`): after each write that changes a request or a payment, the
:class:`ChangeFeed` wakes its waiters at once. That covers this process only; a change made
by another worker or instance on the same database is seen by the waiter's own re-read
after at most ``RECHECK`` seconds, since every waiter re-reads the store, never trusting
memory for the state itself.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["RECHECK", "ChangeFeed", "NotifyingStore"]

#: Seconds a waiter sleeps at most before reading the store again (changes made by other
#: processes on the same database).
RECHECK = 2.0

#: Store methods that change a request or a payment.
_WRITES = frozenset(
    {
        "insert",
        "disable",
        "mark_used",
        "disable_noting_payments",
        "payment_claim",
        "payment_approved",
        "payment_finish",
    }
)


class ChangeFeed:
    """A counter of local changes and an event per generation: ``await feed.wait(t)``
    returns when a change happened since the call, or after ``t`` seconds."""

    def __init__(self) -> None:
        self.version = 0
        self._event = asyncio.Event()

    def bump(self) -> None:
        self.version += 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, timeout: float) -> bool:
        """True when woken by a change, False on the timeout."""
        event = self._event
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            return False
        return True


class NotifyingStore:
    """The store, with the feed bumped after each write that changes state (whether it
    succeeded or not: a waiter only re-reads). Everything else passes through."""

    def __init__(self, inner: Any, feed: ChangeFeed) -> None:
        self._inner = inner
        self.feed = feed

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name not in _WRITES:
            return value

        async def write(*args: Any, **kwargs: Any) -> Any:
            try:
                return await value(*args, **kwargs)
            finally:
                self.feed.bump()

        return write

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("_inner", "feed"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._inner, name, value)
