"""Log lines that clients can cause, at a bounded rate.

A client sending malformed HTTP, or a flood of connections that exhausts the file
descriptors, must not turn into a flood of log lines (111,926 tracebacks, 50.8 MB in 40 s
were measured before this).

- :class:`RateLimit` is a logging filter for aiohttp's server logger (its malformed-request
  lines, which :mod:`invreq.logsetup` already makes one line each).
- :class:`PerKind` is the same rule for invreq's own lines about clients: refusals (401,
  403, malformed requests, failed calls; one kind per error class) and dropped clients.
  Without it a client sending any string as a rune wrote one line per request (~430 KiB/s
  from one thread, issue 25); now each kind writes at most ``BURST`` lines per ``WINDOW``.
- :func:`install_loop_handler` takes asyncio's "socket.accept() out of system resource"
  (EMFILE, ENFILE, ENOBUFS, ENOMEM while accepting): asyncio already pauses that listener
  for a second, but calls the handler once per connection waiting in the backlog, with a
  traceback each time. Here it is one warning line per window, with a count.

``BURST`` lines per ``WINDOW`` seconds per kind (one for accept errors), and the next line
that passes says how many were left out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

__all__ = [
    "BURST",
    "CLIENT_LINES",
    "WINDOW",
    "PerKind",
    "RateLimit",
    "install_loop_handler",
    "quiet_aiohttp_errors",
]

#: Lines of one kind allowed per window; the rest are counted, not written.
BURST = 10
WINDOW = 60.0

log = logging.getLogger("invreq.server")

_ACCEPT_ERROR = "socket.accept() out of system resource"


class _Bucket:
    """BURST lines per WINDOW seconds; counts what it refuses."""

    def __init__(self, burst: int = BURST, clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = burst
        self.clock = clock
        self.window_start = -WINDOW
        self.passed = 0
        self.dropped = 0

    def take(self) -> int | None:
        """None: drop this line; else the number dropped since the last line that passed."""
        now = self.clock()
        if now - self.window_start >= WINDOW:
            self.window_start, self.passed = now, 0
        if self.passed >= self.burst:
            self.dropped += 1
            return None
        self.passed += 1
        dropped, self.dropped = self.dropped, 0
        return dropped


class RateLimit(logging.Filter):
    """At most ``BURST`` records per ``WINDOW`` through the logger it is installed on."""

    def __init__(self) -> None:
        super().__init__()
        self._bucket = _Bucket()

    def filter(self, record: logging.LogRecord) -> bool:
        dropped = self._bucket.take()
        if dropped is None:
            return False
        if dropped:
            record.msg = f"{record.getMessage()} ({dropped} similar lines left out)"
            record.args = None
        return True


class PerKind:
    """``BURST`` lines per ``WINDOW`` for each kind of line; the next line of a kind that
    passes ends with how many of that kind were left out. Kinds are named by the code (an
    error class, "client dropped"), never by a client; past ``MAX_KINDS`` they share one."""

    MAX_KINDS = 256

    def __init__(self, burst: int = BURST, clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, kind: str) -> int | None:
        """None: leave this line out; else how many of its kind were left out before it."""
        bucket = self._buckets.get(kind)
        if bucket is None:
            if len(self._buckets) >= self.MAX_KINDS:
                kind = "other"
            bucket = self._buckets.setdefault(kind, _Bucket(self.burst, self.clock))
        return bucket.take()

    def log(self, logger: logging.Logger, level: int, kind: str, msg: str, *args: Any) -> None:
        """``logger.log(level, msg, *args)`` unless this kind is over its rate."""
        dropped = self.take(kind)
        if dropped is None:
            return
        if dropped:
            msg += f" ({dropped} similar lines left out)"
        logger.log(level, msg, *args)


#: invreq's lines about clients (refusals, failed calls, dropped connections), per kind.
CLIENT_LINES = PerKind()


def quiet_aiohttp_errors() -> None:
    """Rate-limit aiohttp's server logger (malformed requests, lost connections), once."""
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, RateLimit) for f in server.filters):
        server.addFilter(RateLimit())


def install_loop_handler(loop: asyncio.AbstractEventLoop) -> None:
    """Make accept errors one line per window; everything else as asyncio would."""
    bucket = _Bucket(burst=1)

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != _ACCEPT_ERROR:
            loop.default_exception_handler(context)
            return
        dropped = bucket.take()
        if dropped is None:
            return
        more = f" ({dropped} more since the last line)" if dropped else ""
        log.warning(
            "cannot accept connections: %s; pausing accepts for 1 s%s",
            context.get("exception"),
            more,
        )

    loop.set_exception_handler(handle)
