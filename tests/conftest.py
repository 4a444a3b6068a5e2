"""Shared pytest configuration.

Fixtures that need real components (a running service, later a PostgreSQL server and the
reference device) live in helper modules registered here as plugins.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["_service_fixtures", "_postgres", "_lightningd"]

VECTORS = Path(__file__).parent / "vectors"


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    return VECTORS
