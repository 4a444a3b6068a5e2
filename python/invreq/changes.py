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

__all__ = ["ANY", "CHANGED", "RECHECK", "ChangeFeed", "NotifyingStore", "of_request"]

#: Seconds a waiter sleeps at most before reading the store again (changes made by other
#: processes on the same database).
RECHECK = 2.0

#: What a waiter waits for. Every write wakes ``ANY``; every write but a creation wakes
#: ``CHANGED`` (a payment, a disabled or used request: what webhooks and ``wait payments``
#: are about); a write about one request also wakes that request's key (:func:`of_request`,
#: its payee page). So a creation, the frequent write, wakes only those who asked for
#: creations: before, every one woke every payee page stream and every ``wait`` of the
#: process, and each re-read the store (256 streams could take most of the loop).
ANY = "any"
CHANGED = "changed"

#: Store methods that change a request or a payment. ``insert`` is the creation.
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


def of_request(invreq_id: str) -> str:
    """The key of the changes of one request and of its payments."""
    return "request:" + invreq_id


class ChangeFeed:
    """Local changes by key: ``await feed.wait(t, key)`` returns when a change of ``key``
    happened since the call, or after ``t`` seconds. Waiters of a key share one event,
    dropped when its last waiter leaves (keys are request ids: none may linger)."""

    def __init__(self) -> None:
        self.version = 0
        #: key -> [the event its waiters wait on, how many wait]
        self._waiting: dict[str, list[Any]] = {}

    def bump(self, *keys: str) -> None:
        """A change of each of ``keys`` (and so of ``ANY``)."""
        self.version += 1
        for key in (ANY, *keys):
            entry = self._waiting.pop(key, None)
            if entry is not None:
                entry[0].set()

    async def wait(self, timeout: float, key: str = ANY) -> bool:
        """True when woken by a change of ``key``, False on the timeout."""
        entry = self._waiting.get(key)
        if entry is None:
            entry = self._waiting[key] = [asyncio.Event(), 0]
        entry[1] += 1
        try:
            async with asyncio.timeout(timeout):
                await entry[0].wait()
        except TimeoutError:
            return False
        finally:
            entry[1] -= 1
            if entry[1] == 0 and self._waiting.get(key) is entry:
                del self._waiting[key]
        return True

    @property
    def keys_waited(self) -> int:
        return len(self._waiting)


def _request_of(result: Any) -> str | None:
    """The request a write's result is about: a Record or Payment, a Claim (its payment),
    or disable_noting_payments' (Record, payments)."""
    if isinstance(result, tuple) and result:
        result = result[0]
    result = getattr(result, "payment", result)
    invreq_id = getattr(result, "invreq_id", None)
    return invreq_id if isinstance(invreq_id, str) else None


class NotifyingStore:
    """The store, with the feed bumped after each write that changes state. A failed write
    changed nothing, but it still wakes ``CHANGED`` (a waiter only re-reads). Everything
    else passes through."""

    def __init__(self, inner: Any, feed: ChangeFeed) -> None:
        self._inner = inner
        self.feed = feed

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name not in _WRITES:
            return value
        created = name == "insert"

        async def write(*args: Any, **kwargs: Any) -> Any:
            try:
                result = await value(*args, **kwargs)
            except BaseException:
                self.feed.bump(CHANGED)
                raise
            # A creation's record is its argument (insert returns the created_index).
            about = (kwargs.get("record", args[0] if args else None)) if created else result
            invreq_id = _request_of(about)
            keys = () if invreq_id is None else (of_request(invreq_id),)
            if created:
                self.feed.bump(*keys)
            else:
                self.feed.bump(CHANGED, *keys)
            return result

        return write

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("_inner", "feed"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._inner, name, value)
