"""Who a write wakes (invreq.changes): a creation wakes only those waiting for creations.

Before, every write woke every waiter of the process: each payee page's event stream and
each ``wait`` re-read the store on every ``invoicerequest``, so the streams a page allows
(256) made every creation cost 256 store reads. The store here is a stand-in that returns
what the real ones return (a created_index, a Payment, a Claim, a (Record, payments) pair).
"""

from __future__ import annotations

import asyncio
from typing import Any

from _storerows import NOW, record
from _storerows import payment as attempt
from invreq.changes import ANY, CHANGED, ChangeFeed, NotifyingStore, of_request
from invreq.store.base import Claim


class Inner:
    async def insert(self, rec: Any) -> int:
        return 7

    async def payment_finish(self, payment_id: int, *rest: Any) -> Any:
        return attempt(1, payment_id, "paid")

    async def payment_claim(self, payment: Any, limits: Any = None) -> Claim:
        return Claim(payment, True)

    async def disable_noting_payments(self, invreq_id: str, at: int) -> Any:
        return (record(2, active=False), [])

    async def disable(self, invreq_id: str) -> Any:
        raise LookupError(invreq_id)

    async def get(self, invreq_id: str) -> None:
        return None


async def woken(feed: ChangeFeed, keys: list[str], write: Any) -> set[str]:
    """Which of ``keys`` the write ``write`` (a coroutine function) woke."""
    waiters = {k: asyncio.ensure_future(feed.wait(5, k)) for k in keys}
    await asyncio.sleep(0)  # every waiter is waiting
    try:
        await write()
    except LookupError:
        pass
    await asyncio.sleep(0)
    out = {k for k, t in waiters.items() if t.done() and t.result()}
    for t in waiters.values():
        t.cancel()
    await asyncio.gather(*waiters.values(), return_exceptions=True)
    return out


async def test_each_write_wakes_its_keys_only() -> None:
    feed = ChangeFeed()
    store = NotifyingStore(Inner(), feed)
    one, two = f"{1:064x}", f"{2:064x}"
    keys = [ANY, CHANGED, of_request(one), of_request(two)]
    # A creation: those waiting for anything, and its own request's key.
    assert await woken(feed, keys, lambda: store.insert(record(1))) == {ANY, of_request(one)}
    # A payment's change: its request, and CHANGED (webhooks, wait payments).
    assert await woken(feed, keys, lambda: store.payment_finish(5, "paid", NOW)) == {
        ANY, CHANGED, of_request(one)
    }  # fmt: skip
    assert await woken(feed, keys, lambda: store.payment_claim(attempt(2, 9))) == {
        ANY, CHANGED, of_request(two)
    }  # fmt: skip
    assert await woken(feed, keys, lambda: store.disable_noting_payments(two, NOW)) == {
        ANY, CHANGED, of_request(two)
    }  # fmt: skip
    # A failed write changed nothing; waiters on CHANGED re-read anyway (cheap, rare).
    assert await woken(feed, keys, lambda: store.disable(one)) == {ANY, CHANGED}
    # Reads wake nobody.
    assert await woken(feed, keys, lambda: store.get(one)) == set()


async def test_a_thousand_creations_wake_no_page_of_another_request() -> None:
    feed = ChangeFeed()
    store = NotifyingStore(Inner(), feed)
    wakes = 0

    async def page(invreq_id: str) -> None:
        nonlocal wakes
        while True:
            if await feed.wait(5, of_request(invreq_id)):
                wakes += 1

    pages = [asyncio.ensure_future(page(f"{5000 + i:064x}")) for i in range(256)]
    await asyncio.sleep(0)
    for i in range(1000):
        await store.insert(record(i))
    await asyncio.sleep(0)
    assert wakes == 0
    await store.payment_finish(1, "paid", NOW)  # a payment of request 1: not theirs either
    await store.payment_claim(attempt(5000, 1))  # request 5000's: its page only
    await asyncio.sleep(0)
    assert wakes == 1
    for t in pages:
        t.cancel()
    await asyncio.gather(*pages, return_exceptions=True)
    # The keys of waiters that left are dropped: a request's key does not outlive its page.
    assert feed.keys_waited == 0


async def test_a_timed_out_waiter_leaves_no_key_behind() -> None:
    feed = ChangeFeed()
    assert await feed.wait(0.01, of_request("ab")) is False
    assert feed.keys_waited == 0
    # Two waiters of one key share it; it goes with the last.
    a = asyncio.ensure_future(feed.wait(5, "k"))
    b = asyncio.ensure_future(feed.wait(0.01, "k"))
    await asyncio.sleep(0.05)
    assert b.result() is False and feed.keys_waited == 1
    feed.bump("k")
    assert await a is True and feed.keys_waited == 0
