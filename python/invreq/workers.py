"""``--workers N``: N processes serving the same unix socket and HTTP port.

The parent binds both sockets once, creates the secrets once (so children never race to
create them), forks, forwards SIGINT/SIGTERM/SIGHUP, and stops the others if one fails.
Each child runs :func:`invreq.server.serve` with its own event loop, signer and store
connection(s) on the inherited sockets.

Worth it with PostgreSQL (each process commits its own groups); on one SQLite file the
processes' writers take turns on its lock, which measured no faster than one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from invreq.config import Config, pay_with_path
from invreq.errors import StartupError, listen_error
from invreq.unixsock import remove_stale_socket

__all__ = ["Listeners", "run_workers"]

log = logging.getLogger("invreq.workers")

#: Connections the kernel queues per socket before the workers accept them.
BACKLOG = 1024


@dataclasses.dataclass
class Listeners:
    """Sockets bound once by the parent of ``--workers`` processes and shared by them."""

    unix: socket.socket | None
    http: socket.socket | None


def _bind(config: Config) -> Listeners:
    """Bind both sockets once, before forking."""
    path = config.socket_path
    remove_stale_socket(path)
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(str(path))
    os.chmod(path, 0o600)
    unix.listen(BACKLOG)
    http = None
    if config.http_port:
        family, _, _, _, addr = socket.getaddrinfo(
            config.http_host, config.http_port, type=socket.SOCK_STREAM
        )[0]
        try:
            http = socket.create_server(addr, family=family, backlog=BACKLOG)
        except OSError as e:
            unix.close()
            raise listen_error("--http-port", f"{config.http_host}:{config.http_port}", e) from None
    return Listeners(unix=unix, http=http)


def _prepare_secrets(config: Config) -> None:
    """Create the secrets (and certificate) once, so workers never race to create them."""
    from invreq.auth import load_or_create_secret

    if config.signer == "software":
        from invreq.signers.software import SoftwareSigner

        SoftwareSigner.load_or_create(config.network_dir)
    load_or_create_secret(config.network_dir)
    if pay_with_path(config.pay_with) is not None:
        from invreq.blindpaths import load_or_create_path_secret

        load_or_create_path_secret(config.network_dir)
    if config.http_tls and config.http_port:
        from invreq.tls import server_context

        server_context(config.network_dir, config.http_host)


def _child(config: Config, on_sighup: Callable[[], None] | None, listeners: Listeners) -> None:
    """A worker's whole life; it never returns into the parent's code."""
    from invreq.server import serve

    code = 0
    try:
        asyncio.run(serve(config, on_sighup=on_sighup, listeners=listeners))
    except StartupError as e:
        print(f"invreq serve: {e}", file=sys.stderr, flush=True)
        code = 1
    except BaseException:
        log.exception("worker failed")
        code = 1
    finally:
        os._exit(code)


def run_workers(config: Config, workers: int, on_sighup: Callable[[], None] | None) -> int:
    """Run ``workers`` processes until they end; returns the exit code."""
    from invreq.server import announce, prepare_network_dir

    prepare_network_dir(config.network_dir)
    _prepare_secrets(config)
    listeners = _bind(config)
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            _child(config, on_sighup, listeners)
        children.append(pid)

    def forward(signum: int, _frame: Any) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    announce(config)
    code = 0
    running = set(children)
    while running:
        pid, status = os.wait()
        running.discard(pid)
        exit_code = os.waitstatus_to_exitcode(status)
        if exit_code != 0 and code == 0:
            code = exit_code if exit_code > 0 else 1
            forward(signal.SIGTERM, None)  # one failed: stop the others
    with contextlib.suppress(FileNotFoundError):
        config.socket_path.unlink()
    return code
