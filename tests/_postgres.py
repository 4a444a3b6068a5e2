"""A real PostgreSQL server for the tests: initdb + pg_ctl in a temporary directory, on
loopback, one per test session; each test gets its own fresh database.

Debian's binaries live in /usr/lib/postgresql/<version>/bin. PostgreSQL refuses to run as
root, so under root the cluster belongs to the `postgres` user and commands run through
`runuser`. Without PostgreSQL the tests that need it are skipped, unless
INVREQ_REQUIRE_POSTGRES=1 (set by .ci/run), which turns the skip into a failure.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from _service_fixtures import free_port


def _bin_dir() -> Path | None:
    """The newest Debian PostgreSQL, else a directory on PATH that has all the tools."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl is None:
        return None
    d = Path(pg_ctl).parent
    return d if all((d / t).exists() for t in ("initdb", "psql")) else None


class PostgresServer:
    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="invreq-pg-"))
        self.data = self.root / "data"
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "invreq", "-E", "UTF8")
        opts = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c max_connections=200"
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"), "-w", "start"
        )

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://invreq@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        name = "t_" + uuid.uuid4().hex[:16]
        cmd = [str(self.bin / "psql"), self.dsn(), "-q", "-c", f"CREATE DATABASE {name}"]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
        return self.dsn(name)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    bin_dir = _bin_dir()
    if bin_dir is None:
        if os.environ.get("INVREQ_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL is required (INVREQ_REQUIRE_POSTGRES=1) but not installed")
        pytest.skip("PostgreSQL not installed (set INVREQ_REQUIRE_POSTGRES=1 to fail instead)")
    server = PostgresServer(bin_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_dsn(postgres: PostgresServer) -> str:
    return postgres.new_database()


__all__ = ["PostgresServer", "pg_dsn", "postgres"]
