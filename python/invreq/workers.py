"""``--workers N``: N processes serving the same unix socket and HTTP port.

The parent binds both sockets once, creates the secrets once (so children never race to
create them), forks, forwards SIGINT/SIGTERM/SIGHUP, and stops the others if one fails.
Each worker runs :func:`invreq.server.serve` with its own event loop and signer on the
inherited sockets.

On PostgreSQL each worker has its own pool and commits its own groups. On SQLite one
writer process owns the file (:mod:`invreq.store.writer`): the parent forks it first, with
one socketpair per worker made before any fork, and waits until it has opened and migrated
the file before it forks the workers. A worker sends its writes over its socketpair and
reads the file itself (WAL readers never wait for the writer); the writes of all workers
share the writer's group commits instead of taking turns on the file's lock, and a write is
answered only after its commit. Every process closes the socketpair ends it does not own,
so the death of the writer is the end of every worker's link, and the death of a worker the
end of one link.

Stopping: SIGINT and SIGTERM go to the workers, which finish what is in flight (its writes
answered by the writer) and exit; the writer ignores both and ends once its last worker has
closed its link, after committing what it received. A child that fails (a worker, or the
writer: the workers' writes then fail with 2002) makes the parent stop the workers and exit
non-zero. A worker that dies leaves the writer serving the others; writes it had sent may
still commit, though it never answered them.
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
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn

from invreq import loops
from invreq.config import Config, pay_with_path
from invreq.errors import StartupError, StoppedDuringStartup, listen_error
from invreq.server import Listeners, announce, prepare_network_dir, serve
from invreq.unixsock import bind_owner_only

__all__ = ["run_workers"]

log = logging.getLogger("invreq.workers")

#: Connections the kernel queues per socket before the workers accept them.
BACKLOG = 1024


def _bind(config: Config) -> Listeners:
    """Bind both sockets once, before forking."""
    unix = bind_owner_only(config.socket_path, BACKLOG)  # never open to others
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


def _default_signals() -> None:
    """A forked child starts with the parent's Python handlers (``forward``, which signals
    the parent's children): back to the defaults before anything else."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


_PR_SET_PDEATHSIG = 1


def _end_with_parent(parent: int) -> None:
    """In a worker just forked: SIGTERM when the parent dies, even by SIGKILL (Linux's
    PR_SET_PDEATHSIG), so no worker goes on serving with nobody to stop it and a restart
    finds the socket and port free. The writer needs none: it ends once its workers' links
    close. If the parent died before this was set, stop at once."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


def _name(comm: str) -> None:
    """The process name ``ps`` and ``top`` show (Linux): which child is which."""
    with contextlib.suppress(OSError):
        Path("/proc/self/comm").write_text(comm)


def _run_then_exit(
    main: Callable[[], Coroutine[Any, Any, None]],
    *,
    event_loop: str,
    failed: str,
    clean: tuple[type[BaseException], ...] = (),
) -> NoReturn:
    """A child's end, whatever happens: ``main()`` run to completion (exit 0), stopped by one
    of ``clean`` (exit 0), refused at start-up (its one line on stderr, exit 1) or failed
    (logged as ``failed``, exit 1), on the loop ``event_loop`` (``--event-loop``). It never
    returns into the parent's code."""
    code = 0
    try:
        loops.run(main(), event_loop)
    except clean:
        pass
    except StartupError as e:
        print(f"invreq serve: {e}", file=sys.stderr, flush=True)
        code = 1
    except BaseException:
        log.exception(failed)
        code = 1
    finally:
        os._exit(code)


class _StoppedEarly(BaseException):
    """SIGINT or SIGTERM reached a worker before it served anything."""


def _child(
    config: Config, on_sighup: Callable[[], None] | None, listeners: Listeners, parent: int
) -> None:
    """A worker's whole life; it never returns into the parent's code."""

    _default_signals()
    _name("invreq-worker")

    def stop_before_serving(_signum: int, _frame: Any) -> None:
        raise _StoppedEarly()

    # Until serve() takes SIGINT and SIGTERM over (its first step): stopped before serving
    # anything is a clean exit, not a failure that would make the parent's exit code 1.
    signal.signal(signal.SIGINT, stop_before_serving)
    signal.signal(signal.SIGTERM, stop_before_serving)
    _end_with_parent(parent)
    _run_then_exit(
        lambda: serve(config, on_sighup=on_sighup, listeners=listeners),
        event_loop=config.event_loop,
        failed="worker failed",
        clean=(_StoppedEarly, StoppedDuringStartup),
    )


def _writer_child(
    path: Path,
    socks: list[socket.socket],
    ready_fd: int,
    on_sighup: Callable[[], None] | None,
    event_loop: str,
) -> None:
    """The SQLite writer's whole life (see invreq.store.writer); it never returns.

    SIGINT and SIGTERM are ignored: the writer ends when its last worker has closed its link
    (workers stop first, their last writes acknowledged), so a Ctrl-C that reaches the whole
    process group cannot close the file under them."""
    from invreq.store.writer import serve_writer

    _default_signals()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _name("invreq-writer")

    def ready() -> None:
        os.write(ready_fd, b"R")
        os.close(ready_fd)

    async def main() -> None:
        if on_sighup is not None:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, on_sighup)
        await serve_writer(path, socks, ready)

    _run_then_exit(main, event_loop=event_loop, failed="the SQLite writer failed")


def _start_writer(
    path: Path,
    workers: int,
    listeners: Listeners,
    on_sighup: Callable[[], None] | None,
    event_loop: str,
) -> tuple[int, list[socket.socket], bool]:
    """Fork the writer and wait until it has opened (and migrated) the file.

    Returns its pid, the workers' ends of their socketpairs, and whether it is ready (if
    not, it has printed why and exited)."""
    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(workers)]
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        for sock in (listeners.unix, listeners.http, *(worker for _, worker in pairs)):
            if sock is not None:
                sock.close()
        _writer_child(path, [writer for writer, _ in pairs], ready_w, on_sighup, event_loop)
    os.close(ready_w)
    for writer, _ in pairs:
        writer.close()  # the writer's ends live in the writer only: its death is their EOF
    try:
        ready = os.read(ready_r, 1) == b"R"  # EOF: it exited without opening the file
    finally:
        os.close(ready_r)
    return pid, [worker for _, worker in pairs], ready


def run_workers(config: Config, workers: int, on_sighup: Callable[[], None] | None) -> int:
    """Run ``workers`` processes (and, on SQLite, their writer) until they end; returns the
    exit code."""
    from invreq.store.url import sqlite_path

    prepare_network_dir(config.network_dir)
    _prepare_secrets(config)
    listeners = _bind(config)
    children: list[int] = []  # the workers
    writer: list[int] = []  # the SQLite writer, if any: it stops after its workers
    stopping = False

    def forward(signum: int, _frame: Any) -> None:
        nonlocal stopping
        if signum != signal.SIGHUP:
            stopping = True
        for child in children + (writer if signum == signal.SIGHUP else []):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    # Before the first fork: a signal while the writer migrates is not lost. Children put
    # the defaults back first thing.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)

    writer_pid: int | None = None
    links: list[socket.socket | None] = [None] * workers
    path = sqlite_path(config.db, config.sqlite_path)
    if path is not None:
        writer_pid, ends, ready = _start_writer(
            path, workers, listeners, on_sighup, config.event_loop
        )
        writer.append(writer_pid)
        links = list(ends)
        if not ready:
            for sock in ends:
                sock.close()
            os.waitpid(writer_pid, 0)
            _close(config, listeners)
            return 1
    parent = os.getpid()
    for i in range(workers):
        if stopping:
            break
        pid = os.fork()
        if pid == 0:
            for j, other in enumerate(links):
                if other is not None and j != i:
                    other.close()  # only the writer may hold a worker's link open besides it
            _child(config, on_sighup, dataclasses.replace(listeners, writer=links[i]), parent)
        children.append(pid)
    for link in links:
        if link is not None:
            link.close()
    # The listening sockets live in the workers only: when the last of them stops serving,
    # clients are refused at once instead of waiting in a backlog nobody accepts from.
    _close_listeners(listeners)
    if not stopping:
        announce(config)
    code = 0
    running = set(children)
    if writer_pid is not None:
        running.add(writer_pid)
    while running:
        pid, status = os.wait()
        running.discard(pid)
        exit_code = os.waitstatus_to_exitcode(status)
        if exit_code != 0 and code == 0:
            code = exit_code if exit_code > 0 else 1
            forward(signal.SIGTERM, None)  # one failed: stop the others
    _close(config, listeners)
    return code


def _close_listeners(listeners: Listeners) -> None:
    for sock in (listeners.unix, listeners.http):
        if sock is not None:
            sock.close()


def _close(config: Config, listeners: Listeners) -> None:
    _close_listeners(listeners)
    with contextlib.suppress(FileNotFoundError):
        config.socket_path.unlink()
