"""The event loop `invreq serve` runs on: uvloop (libuv, in C).

Measured on this service (issue 19, benches/results/latest.md): the same aiohttp and
unix-socket doors spend less CPU per request on uvloop than on asyncio's own loop, and the
benchmark's ceilings are measured on the same loop, so the ratios stay honest. Tests that
run a server inside pytest use pytest-asyncio's loop; behaviour does not depend on which.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

__all__ = ["run"]

T = TypeVar("T")

log = logging.getLogger("invreq.eventloop")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a new uvloop loop (as ``asyncio.run`` does)."""
    log.debug("event loop: uvloop")
    return uvloop.run(main)
