"""Shared pytest configuration.

Fixtures that need real components (a running service, later a PostgreSQL server and the
reference device) live in helper modules registered here as plugins. Every test runs under
blockbuster (aiohttp's own guard): invreq code that blocks a running event loop fails it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from blockbuster import BlockBuster, blockbuster_ctx

pytest_plugins = ["_service_fixtures", "_postgres", "_lightningd", "_browser", "_webhook_receiver"]

VECTORS = Path(__file__).parent / "vectors"


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    return VECTORS


#: Blocking calls invreq makes on a running event loop on purpose: (file, function, why).
INLINE_ON_PURPOSE: tuple[tuple[str, str, str], ...] = (
    (
        "invreq/store/sqlite.py",
        "_point_read",
        # Measured here (2 busy cores, 20 000 indexed lookups of 10 000 rows): 86-90 us
        # inline against 167-274 us through the reader thread; WAL readers never wait.
        "one row by its unique key is cheaper inline than the hop to the reader thread",
    ),
    (
        "invreq/store/sqlite.py",
        "_commit_lone",
        # Measured here (sequential fsync'd inserts): 0.44-0.51 ms inline against 0.70-0.80
        # ms through the writer thread; only a write with no company, only when the file's
        # lock is free (never a wait on another process).
        "a lone write commits on the loop: cheaper than the hop to the writer thread",
    ),
    # Start-up, before any door accepts a connection: nothing can wait on the loop yet.
    # The network directory and the secret files are created or read there, once.
    *(
        ("invreq/server.py", ctx, "start-up: no door is open yet")
        for ctx in ("_store", "_signer", "_approver", "_auth", "_payments", "_commands")
    ),
    (
        "asyncpg/connect_utils.py",
        "_parse_connect_dsn_and_args",
        # Not ours: parsing the connection arguments, asyncpg looks for ~/.pgpass and the
        # client certificates in ~/.postgresql/ (stat, realpath) each time the pool opens a
        # connection (at most pool_size times); local file lookups, microseconds.
        "asyncpg looks for ~/.pgpass and ~/.postgresql/ whenever the pool connects",
    ),
)


@pytest.fixture(autouse=True)
def blockbuster() -> Iterator[BlockBuster]:
    """A blocking call (file, socket, sqlite, sleep, lock ...) made by the ``invreq`` package
    while an event loop runs in this thread raises ``BlockingError``. Test code may block;
    the reference device (``invreq.refdevice``, a stand-in for hardware) is not scanned."""
    with blockbuster_ctx("invreq", excluded_modules=["invreq.refdevice"]) as bb:
        for filename, function, _why in INLINE_ON_PURPOSE:
            for guarded in bb.functions.values():
                guarded.can_block_in(filename, function)
        yield bb


# The hardware path needs hwilib, whose hwi extra installs on Python 3.11 and 3.12 only (hwi
# 3.2.0 declares Requires-Python <3.13). Without it these modules cannot be imported; they
# are left out loudly (header and summary), or fail with INVREQ_REQUIRE_DEVICE=1 (.ci/run).
HWILIB_TESTS = ("test_hwi.py", "test_refdevice.py")
NO_HWILIB = (
    "not run: "
    + ", ".join(HWILIB_TESTS)
    + " (hwilib is not installed; the hwi extra installs on Python 3.11 and 3.12 only)"
)


def _without_hwilib() -> bool:
    return (
        importlib.util.find_spec("hwilib") is None
        and os.environ.get("INVREQ_REQUIRE_DEVICE") != "1"
    )


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    if collection_path.name in HWILIB_TESTS and _without_hwilib():
        return True
    return None


def pytest_report_header() -> str | None:
    return NO_HWILIB if _without_hwilib() else None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _without_hwilib():
        terminalreporter.write_line(NO_HWILIB, yellow=True)
