"""Shared pytest configuration.

Fixtures that need real components (a PostgreSQL server, the reference device, a running
service) live in the helper modules beside the tests that use them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

VECTORS = Path(__file__).parent / "vectors"


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    return VECTORS
