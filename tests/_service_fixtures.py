"""A real `invreq serve` process for end-to-end tests.

The server runs as a subprocess exactly as a user starts it (console entry point, real
unix socket, real HTTP port, real SQLite file or PostgreSQL database), so tests see what
pyln-client, lightning-cli and curl see, including start-up and shutdown behaviour.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from pyln.client import LightningRpc

START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One `invreq serve` process bound to a data directory that outlives restarts."""

    def __init__(
        self,
        data_dir: Path,
        *,
        network: str = "regtest",
        db: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.data_dir = data_dir
        self.network = network
        self.db = db
        self.extra_args = list(extra_args)
        self.http_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        #: run in the child before exec (e.g. to lower its resource limits)
        self.preexec_fn: Callable[[], None] | None = None

    @property
    def socket_path(self) -> Path:
        return self.data_dir / self.network / "lightning-rpc"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/rpc"

    @property
    def rpc(self) -> LightningRpc:
        return LightningRpc(str(self.socket_path))

    def args(self) -> list[str]:
        a = [
            sys.executable,
            "-m",
            "invreq.cli",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--network",
            self.network,
            "--http-port",
            str(self.http_port),
        ]
        if self.db:
            a += ["--db", self.db]
        return a + self.extra_args

    def start(self) -> Server:
        # Output goes to a file, not a pipe: a pipe nobody reads could fill and block the
        # server, and the file shows what happened when a test fails.
        self.log_path = self.data_dir.parent / f"serve-{self.network}.log"
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.args(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=self.preexec_fn,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                raise RuntimeError(f"invreq serve exited with {code}:\n{self.output()}")
            if self._answers():
                return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"invreq serve did not start in time:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _answers(self) -> bool:
        # The unix door opens before the HTTP site; the line that says the service is up
        # comes once both are (a test connecting over HTTP must not race the site's start).
        if not self.socket_path.exists() or f"invreq {self.network}: " not in self.output():
            return False
        try:
            self.rpc.call("getinfo")
        except (OSError, ValueError):
            return False
        return True

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Signal the server and wait; returns its exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self.stderr = self.output()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> Server:
        assert self.stop() == 0, self.stderr
        return self.start()


def raw_exchange(
    path: Path, chunks: Sequence[bytes], replies: int, timeout: float = 10.0
) -> list[Any]:
    """Send `chunks` on one connection and read `replies` replies split on blank lines."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        for c in chunks:
            s.sendall(c)
        buf = b""
        out: list[Any] = []
        while len(out) < replies:
            while b"\n\n" not in buf:
                data = s.recv(65536)
                if not data:
                    return out
                buf += data
            one, buf = buf.split(b"\n\n", 1)
            out.append(json.loads(one))
        return out


def request(method: str, params: Any = None, id: Any = 1) -> bytes:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        msg["params"] = params
    return json.dumps(msg).encode()


STORES = ["sqlite", "postgresql"]


def store_url(request: pytest.FixtureRequest, kind: str) -> str | None:
    """None for the embedded SQLite default, else a fresh PostgreSQL database."""
    if kind == "sqlite":
        return None
    dsn: str = request.getfixturevalue("pg_dsn")
    return dsn


@pytest.fixture(params=STORES)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """A running server on each store: every test that uses it runs on SQLite and PostgreSQL."""
    s = Server(tmp_path / "data", db=store_url(request, request.param)).start()
    try:
        yield s
    finally:
        if s.proc is not None and s.proc.poll() is None:
            code = s.stop()
        else:
            code = s.proc.returncode if s.proc else 0
        assert code == 0, f"server exited with {code}: {s.output()}"


__all__ = ["STORES", "Server", "free_port", "raw_exchange", "request", "server", "store_url"]
