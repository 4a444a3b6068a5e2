"""Shared pytest configuration.

Fixtures that need real components (a running service, later a PostgreSQL server and the
reference device) live in helper modules registered here as plugins. Every test runs under
blockbuster (aiohttp's own guard): invreq code that blocks a running event loop fails it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from blockbuster import BlockBuster, blockbuster_ctx
from packaging.requirements import Requirement

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


# The hardware path needs hwilib, from the hwi extra, which pyproject.toml's marker installs
# on Python 3.11 and 3.12 only (hwi 3.2.0 declares Requires-Python <3.13). Without hwilib
# these modules, and the tests marked ``hwilib`` elsewhere (they start `invreq serve` with a
# device), cannot run: they are left out loudly (header and summary, naming them).
# INVREQ_REQUIRE_DEVICE=1 (.ci/run) makes them fail instead wherever the extra installs;
# where it cannot (3.13), they are left out the same way.
HWILIB_TESTS = ("test_hwi.py", "test_hwi_hostile.py", "test_refdevice.py")
PYTHON = "{}.{}".format(*sys.version_info[:2])


def _extra_installs_here(name: str) -> bool:
    with (Path(__file__).parent.parent / "pyproject.toml").open("rb") as f:
        extra = tomllib.load(f)["project"]["optional-dependencies"][name]
    markers = [Requirement(r).marker for r in extra]
    return all(m is None or m.evaluate() for m in markers)


HWI_INSTALLS_HERE = _extra_installs_here("hwi")
# The lnurl extra (bolt11 2.2.0, lnurl 2.0.2) cannot install on 3.13 either: test_lnurl.py,
# which imports lnurl, is left out there, said in the summary; wherever it installs, it runs.
LNURL_TESTS = ("test_lnurl.py",)
WITHOUT_LNURL = not _extra_installs_here("lnurl") and importlib.util.find_spec("lnurl") is None
NO_LNURL = (
    f"not run: {', '.join(LNURL_TESTS)}"
    f" (the lnurl extra installs on Python 3.11 and 3.12 only, not on this {PYTHON})"
)
WITHOUT_HWILIB = importlib.util.find_spec("hwilib") is None and (
    os.environ.get("INVREQ_REQUIRE_DEVICE") != "1" or not HWI_INSTALLS_HERE
)
WHY_NOT_RUN = (
    "hwilib is not installed; the hwi extra installs on Python 3.11 and 3.12 only"
    + ("" if HWI_INSTALLS_HERE else f", not on this {PYTHON}")
)
_left_out: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hwilib: needs hwilib (the hwi extra) and a device")


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    if collection_path.name in HWILIB_TESTS and WITHOUT_HWILIB:
        return True
    if collection_path.name in LNURL_TESTS and WITHOUT_LNURL:
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not WITHOUT_HWILIB:
        return
    left = [item for item in items if item.get_closest_marker("hwilib")]
    if left:
        _left_out.extend(item.nodeid for item in left)
        items[:] = [item for item in items if not item.get_closest_marker("hwilib")]
        config.hook.pytest_deselected(items=left)


def pytest_report_header() -> str | None:
    return f"not run: {', '.join(HWILIB_TESTS)} ({WHY_NOT_RUN})" if WITHOUT_HWILIB else None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if WITHOUT_LNURL:
        terminalreporter.write_line(NO_LNURL, yellow=True)
    if WITHOUT_HWILIB:
        names = ", ".join([*HWILIB_TESTS, *_left_out])
        terminalreporter.write_line(f"not run: {names} ({WHY_NOT_RUN})", yellow=True)
