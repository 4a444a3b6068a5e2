"""The event loop a process of ``invreq serve`` runs on (``--event-loop``).

uvloop where it is installed (a dependency on Linux and macOS, see pyproject.toml): the
faster of the two for the same handlers (benches/README.md has the measured rows).
asyncio's loop where uvloop is not installed, or when asked for (``--event-loop asyncio``).
Both loops serve every door and every limit: the HTTP guard, the unix door and the SQLite
writer's links use the public transport interface only (uvloop's transports implement it
without subclassing asyncio's classes).

``auto`` (the default) takes ``$INVREQ_EVENT_LOOP`` when it is set, so a test run can put
every server it starts on one loop (the Makefile runs the limit tests on both this way).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["ENV", "EVENT_LOOPS", "available", "resolve", "run"]

#: What ``--event-loop`` accepts.
EVENT_LOOPS = ("auto", "uvloop", "asyncio")
#: The environment variable ``auto`` follows when it is set (``uvloop`` or ``asyncio``).
ENV = "INVREQ_EVENT_LOOP"

T = TypeVar("T")


def available() -> bool:
    """Whether uvloop can be imported here."""
    return importlib.util.find_spec("uvloop") is not None


def resolve(choice: str) -> str:
    """``uvloop`` or ``asyncio`` for a ``--event-loop`` value; ValueError names what is
    wrong (an unknown name, or uvloop asked for where it is not installed)."""
    if choice == "auto":
        from_env = os.environ.get(ENV, "")
        if from_env and from_env not in EVENT_LOOPS:
            raise ValueError(f"${ENV}: {from_env!r} is not one of {', '.join(EVENT_LOOPS)}")
        if from_env in ("uvloop", "asyncio"):
            choice = from_env
        else:
            return "uvloop" if available() else "asyncio"
    if choice not in EVENT_LOOPS:
        raise ValueError(f"{choice!r} is not one of {', '.join(EVENT_LOOPS)}")
    if choice == "uvloop" and not available():
        raise ValueError("uvloop is not installed here (pip install uvloop), or use asyncio")
    return choice


def _factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None  # asyncio's default


def run(main: Coroutine[Any, Any, T], choice: str) -> T:
    """``asyncio.run(main)`` on the loop ``choice`` resolves to."""
    with asyncio.Runner(loop_factory=_factory(resolve(choice))) as runner:
        return runner.run(main)
