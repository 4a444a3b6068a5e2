"""Shared pytest configuration.

Fixtures that need real components (a running service, later a PostgreSQL server and the
reference device) live in helper modules registered here as plugins.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

pytest_plugins = ["_service_fixtures", "_postgres", "_lightningd"]

VECTORS = Path(__file__).parent / "vectors"


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    return VECTORS


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
