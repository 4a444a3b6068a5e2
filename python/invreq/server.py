"""Where requests enter: the HTTP JSON-RPC endpoint and the CLN-style unix socket.

``create_app(config)`` builds everything from the configuration (no module-level state):
the store, the signer, the service and the dispatcher are opened by an
aiohttp ``cleanup_ctx`` and closed in reverse order on shutdown. The unix socket server is
one more context in that chain, so both front doors open and close together.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from invreq import httpguard, lograte, rest, rpc
from invreq.auth import RuneAuthority
from invreq.blindpaths import PathMaker, load_or_create_path_secret
from invreq.config import Config
from invreq.errors import InternalError, InvalidRequest, StartupError, listen_error
from invreq.metrics import Metrics, metrics_site
from invreq.payments import ClnBackend, PaymentBackend, Receiver, open_backend
from invreq.service import Service
from invreq.store.base import PaymentLimits

__all__ = ["CONFIG_KEY", "DISPATCHER_KEY", "SERVICE_KEY", "create_app", "serve"]

log = logging.getLogger("invreq.server")

CONFIG_KEY = web.AppKey("config", Config)
SERVICE_KEY = web.AppKey("service", Service)
DISPATCHER_KEY = web.AppKey("dispatcher", rpc.Dispatcher)
METRICS_KEY: web.AppKey[Metrics | None] = web.AppKey("metrics")
AUTH_KEY = web.AppKey("auth", RuneAuthority)


@dataclasses.dataclass
class Listeners:
    """Sockets bound once by the parent of ``--workers`` processes and shared by them."""

    unix: socket.socket | None
    http: socket.socket | None


LISTENERS_KEY: web.AppKey[Listeners | None] = web.AppKey("listeners")

#: Bytes read from a unix-socket connection at once.
READ_CHUNK = 65536
#: Open unix-socket connections served at once; more are answered an error and closed.
MAX_UNIX_CONNECTIONS = 1000
#: Seconds a unix-socket client may stay silent between requests, and inside one.
IDLE_TIMEOUT = 300.0
PARTIAL_TIMEOUT = 30.0
#: Seconds a client may take to read a reply before it is dropped (reply discarded).
SEND_TIMEOUT = 30.0
#: Seconds shutdown waits for HTTP requests in flight (a person confirming on a hardware
#: signer included); aiohttp's default, 60, is beyond what a service manager allows.
HTTP_SHUTDOWN_TIMEOUT = 30.0


async def _open_service(app: web.Application) -> AsyncIterator[None]:
    from invreq.signers.factory import open_approver, open_signer
    from invreq.store.url import open_store

    config = app[CONFIG_KEY]
    _prepare_network_dir(config.network_dir)
    store = open_store(config.db, config.sqlite_path)
    await store.open()
    try:
        signer = await open_signer(config)
        try:
            approver = await open_approver(config)
            try:
                metrics = app[METRICS_KEY]
                if metrics is not None:
                    store.on_commit = metrics.observe_commit
                service = Service(
                    network=config.network,
                    store=store,
                    signer=signer,
                    approver=approver,
                    metrics=metrics,
                )
                auth = RuneAuthority.load_or_create(config.network_dir, store)
                backend = await open_backend(config.pay_with)
                reconciler: asyncio.Task[None] | None = None
                try:
                    service.paths = _path_maker(config, backend)
                    receiver = Receiver(
                        store,
                        backend,
                        timeout=config.pay_timeout,
                        limits=PaymentLimits(
                            per_request=config.pay_attempts_per_request,
                            per_minute=config.pay_attempts_per_minute,
                        ),
                        paths=service.paths,
                    )
                    await receiver.reconcile()  # payments a crash left pending
                    # ... and those still pending later (the node had not finished, or a
                    # crashed worker or another instance left them): no restart needed.
                    reconciler = asyncio.create_task(
                        receiver.run_reconciler(config.pay_reconcile_interval)
                    )
                    app[SERVICE_KEY] = service
                    app[AUTH_KEY] = auth
                    app[DISPATCHER_KEY] = rpc.build_dispatcher(service, metrics, auth, receiver)
                    yield
                    await receiver.close()  # payments from the plugin still running
                finally:
                    if reconciler is not None:
                        reconciler.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await reconciler
                    await backend.close()
            finally:
                if approver is not None:
                    await approver.close()
        finally:
            await signer.close()
    finally:
        await store.close()


def _path_maker(config: Config, backend: PaymentBackend) -> PathMaker | None:
    """With a CLN backend, requests carry a blinded path to its node (see blindpaths)."""
    if not isinstance(backend, ClnBackend) or backend.node_id is None:
        return None
    try:
        node_id = bytes.fromhex(backend.node_id)
    except ValueError:
        node_id = b""
    if len(node_id) != 33:
        raise StartupError(f"--pay-with: getinfo gave {backend.node_id!r}, not a node id")
    introduction = None
    if config.path_introduction is not None:
        introduction = bytes.fromhex(config.path_introduction)
        if introduction == node_id:
            raise StartupError(
                "--path-introduction: that is the paying node itself; give one of its "
                "public peers, or leave the option out"
            )
    return PathMaker(load_or_create_path_secret(config.network_dir), node_id, introduction)


def _prepare_network_dir(path: Path) -> None:
    # The directory holds the signer secret and the socket: owner only.
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)


class _UnixConnections:
    """Tracks open unix-socket connections so shutdown can let in-flight requests finish."""

    def __init__(self, limit: int = MAX_UNIX_CONNECTIONS) -> None:
        self.limit = limit
        self.tasks: set[asyncio.Task[None]] = set()
        self.busy: set[asyncio.Task[None]] = set()


async def _handle_unix(
    app: web.Application,
    conns: _UnixConnections,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    """One client connection: requests back to back, replies in order, each ending "\\n\\n"."""
    task = asyncio.current_task()
    assert task is not None
    conns.tasks.add(task)
    metrics = app[METRICS_KEY]
    if metrics is not None:
        metrics.connections.labels("unix").inc()
    splitter = rpc.RequestSplitter()
    dispatcher = app[DISPATCHER_KEY]
    try:
        if len(conns.tasks) > conns.limit:
            # Refuse rather than collapse: the fd budget is shared with the store and HTTP.
            err = InternalError(f"too many connections (more than {conns.limit}); try again")
            writer.write(rpc.error_reply(None, err))
            await writer.drain()
            return
        while True:
            # A silent client is dropped: idle between requests for IDLE_TIMEOUT, or stalled
            # inside one for PARTIAL_TIMEOUT (it holds buffered bytes meanwhile).
            timeout = PARTIAL_TIMEOUT if splitter.pending else IDLE_TIMEOUT
            try:
                async with asyncio.timeout(timeout):
                    data = await reader.read(READ_CHUNK)
            except TimeoutError:
                break
            if not data:
                break
            try:
                requests = splitter.feed(data)
            except InvalidRequest as e:
                # The stream cannot be resynchronised after garbage or an oversized
                # request: answer once, then close this connection (others are unaffected).
                writer.write(rpc.error_reply(rpc.find_id(splitter.head), e))
                await writer.drain()
                await _discard_input(reader)
                break
            for raw in requests:
                conns.busy.add(task)
                try:
                    writer.write(await dispatcher.handle_stream_request(raw))
                finally:
                    conns.busy.discard(task)
                # The next request is not read before this reply is sent, so a connection
                # holds at most one unsent reply; a client that does not read it within
                # SEND_TIMEOUT is dropped and the reply discarded.
                try:
                    async with asyncio.timeout(SEND_TIMEOUT):
                        await writer.drain()
                except TimeoutError:
                    log.info("unix client dropped: reply not read within %g s", SEND_TIMEOUT)
                    return
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        conns.tasks.discard(task)
        if metrics is not None:
            metrics.connections.labels("unix").dec()
        await _close(writer)


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close a connection without waiting on a client that does not read: unsent bytes
    (a reply it never read, or shutdown cancelling a send) are discarded, not flushed."""
    if writer.transport.get_write_buffer_size():
        writer.transport.abort()
    else:
        writer.close()
    with contextlib.suppress(ConnectionError, TimeoutError):
        async with asyncio.timeout(1.0):
            await writer.wait_closed()


async def _discard_input(reader: asyncio.StreamReader) -> None:
    """Read and drop what the client is still sending (briefly, boundedly) before closing:
    closing with unread input makes the kernel reset the connection, and the client could
    lose the error reply it is owed."""
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(1.0):
            for _ in range(64):  # at most 4 MiB
                if not await reader.read(READ_CHUNK):
                    break


async def _unix_server(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG_KEY]
    path = config.socket_path
    shared = app[LISTENERS_KEY]
    conns = _UnixConnections(connection_caps()[0])

    def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> Any:
        return _handle_unix(app, conns, r, w)

    if shared is not None and shared.unix is not None:
        # A worker: the parent bound the socket, and removes it at the end.
        server = await asyncio.start_unix_server(
            handle, sock=shared.unix, limit=rpc.MAX_REQUEST_BYTES
        )
    else:
        _remove_stale_socket(path)
        server = await asyncio.start_unix_server(
            handle, path=str(path), limit=rpc.MAX_REQUEST_BYTES
        )
        os.chmod(path, 0o600)
    log.info("listening on unix socket %s", path)
    try:
        yield
    finally:
        server.close()
        # Let requests already being handled finish and reply; idle connections just close.
        deadline = asyncio.get_running_loop().time() + 10
        while conns.busy and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        for t in list(conns.tasks):
            t.cancel()
        await asyncio.gather(*conns.tasks, return_exceptions=True)
        if shared is None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _remove_stale_socket(path: Path) -> None:
    """Remove a socket left by a crashed run; refuse to start if a live server owns it."""
    if not path.exists():
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink()
        return
    finally:
        probe.close()
    raise SystemExit(
        f"invreq serve: another server is already listening on {path}; stop it, or choose "
        "another --data-dir or --network"
    )


async def _metrics_server(app: web.Application) -> AsyncIterator[None]:
    config, metrics = app[CONFIG_KEY], app[METRICS_KEY]
    assert metrics is not None
    service = app[SERVICE_KEY]
    async for _ in metrics_site(
        metrics, "127.0.0.1", config.metrics_port, service.store.count_by_state
    ):
        yield


async def _count_http(request: web.Request, handler: Any) -> web.StreamResponse:
    metrics = request.app[METRICS_KEY]
    assert metrics is not None
    gauge = metrics.connections.labels("http")
    gauge.inc()
    try:
        return await handler(request)  # type: ignore[no-any-return]
    finally:
        gauge.dec()


def create_app(
    config: Config, *, unix_socket: bool = True, listeners: Listeners | None = None
) -> web.Application:
    config.validate()
    metrics = Metrics() if config.metrics_port else None
    middlewares = [httpguard.send_within]
    if metrics is not None:
        middlewares.append(web.middleware(_count_http))
    app = web.Application(client_max_size=rpc.MAX_REQUEST_BYTES, middlewares=middlewares)
    app[httpguard.GUARD_KEY] = httpguard.ConnectionGuard(connection_caps()[1])
    app[CONFIG_KEY] = config
    app[LISTENERS_KEY] = listeners
    app[METRICS_KEY] = metrics
    app[rest.BODY_READERS] = set()
    app.cleanup_ctx.append(_open_service)
    if unix_socket:
        app.cleanup_ctx.append(_unix_server)
    if metrics is not None:
        app.cleanup_ctx.append(_metrics_server)
    app.router.add_routes(rest.routes(AUTH_KEY, DISPATCHER_KEY))
    return app


#: File descriptors kept for everything but client connections (store, log, signer,
#: listeners, the metrics port, worker threads' files).
RESERVED_FDS = 64
#: Per door, the least connections served however low the fd limit.
MIN_CONNECTIONS = 8


def connection_caps() -> tuple[int, int]:
    """(unix, HTTP) connection caps: each door gets half of the file descriptors left
    after ``RESERVED_FDS``, up to ``MAX_UNIX_CONNECTIONS``, so both caps are reached before
    the process runs out of descriptors (and no accepted client waits on one)."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_UNIX_CONNECTIONS, MAX_UNIX_CONNECTIONS
    per_door = max(MIN_CONNECTIONS, min(MAX_UNIX_CONNECTIONS, (soft - RESERVED_FDS) // 2))
    return per_door, per_door


def _raise_fd_limit() -> None:
    """Use the hard limit on open files: every connection is one, and the default soft
    limit (often 1024) is smaller than the connections a busy service holds."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))


async def serve(
    config: Config,
    *,
    on_sighup: Callable[[], None] | None = None,
    listeners: Listeners | None = None,
) -> None:
    """Run until SIGINT or SIGTERM, then shut down cleanly."""
    import signal

    from invreq.logsetup import quiet_client_errors

    quiet_client_errors()  # aiohttp's parser errors quote header lines: one line instead
    _raise_fd_limit()  # before the caps are derived from it
    lograte.install_loop_handler(asyncio.get_running_loop())
    lograte.quiet_aiohttp_errors()  # and those lines at a bounded rate
    ssl_context = None
    if config.http_port and config.http_tls:
        from invreq.tls import server_context

        # Before anything opens: a problem with the key pair is a one-line refusal.
        _prepare_network_dir(config.network_dir)
        ssl_context = server_context(config.network_dir, config.http_host)
    app = create_app(config, listeners=listeners)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=HTTP_SHUTDOWN_TIMEOUT,
        # From the connection's start and after each response, until the next request's
        # headers are complete: silent and half-sent clients are dropped.
        keepalive_timeout=httpguard.IDLE_TIMEOUT,
    )
    try:
        await runner.setup()  # runs the cleanup contexts' start: store, signer, socket
    except BaseException:
        await runner.cleanup()  # closes what was opened before the failure
        raise
    sites: list[web.BaseSite] = []
    scheme = "https" if config.http_tls else "http"
    if config.http_port:
        guard = app[httpguard.GUARD_KEY]
        site: web.BaseSite
        if listeners is not None and listeners.http is not None:
            site = httpguard.GuardedSite(
                runner, guard, sock=listeners.http, ssl_context=ssl_context
            )
        else:
            site = httpguard.GuardedSite(
                runner, guard, host=config.http_host, port=config.http_port, ssl_context=ssl_context
            )
        try:
            await site.start()
        except OSError as e:
            await runner.cleanup()
            raise listen_error("--http-port", f"{config.http_host}:{config.http_port}", e) from None
        sites.append(site)
        log.info("listening on %s://%s:%d/rpc", scheme, config.http_host, config.http_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if on_sighup is not None:
        loop.add_signal_handler(signal.SIGHUP, on_sighup)
    if listeners is None:  # with workers, the parent says it once
        _announce(config)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        # Clients still sending a body have no request in flight: drop them now.
        readers: set[asyncio.Task[Any]] = app[rest.BODY_READERS]
        for task in list(readers):
            task.cancel()
        # Clients not reading their response are dropped, not waited for.
        app[httpguard.GUARD_KEY].stop_sending()
        # AppRunner.cleanup stops the sites (no new connections), waits for in-flight HTTP
        # handlers, then unwinds the cleanup contexts: socket, signer, store (pending
        # writes are committed before the store closes).
        await runner.cleanup()


def _announce(config: Config) -> None:
    scheme = "https" if config.http_tls else "http"
    print(
        f"invreq {config.network}: unix socket {config.socket_path}"
        + (f", {scheme}://{config.http_host}:{config.http_port}/rpc" if config.http_port else ""),
        flush=True,
    )


def _bind(config: Config) -> Listeners:
    """The parent's part of ``--workers``: bind both sockets once, before forking."""
    path = config.socket_path
    _remove_stale_socket(path)
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(str(path))
    os.chmod(path, 0o600)
    unix.listen(1024)
    http = None
    if config.http_port:
        family, _, _, _, addr = socket.getaddrinfo(
            config.http_host, config.http_port, type=socket.SOCK_STREAM
        )[0]
        try:
            http = socket.create_server(addr, family=family, backlog=1024)
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
    if config.pay_with.startswith("cln:"):
        load_or_create_path_secret(config.network_dir)
    if config.http_tls and config.http_port:
        from invreq.tls import server_context

        server_context(config.network_dir, config.http_host)


def run_workers(config: Config, workers: int, on_sighup: Callable[[], None] | None) -> int:
    """``--workers N``: N processes serve the same unix socket and HTTP port, each with its
    own event loop, signer and store connection(s). The parent binds the sockets, forks,
    forwards SIGINT/SIGTERM/SIGHUP, and stops the others if one fails. Returns the exit code.

    Worth it with PostgreSQL (each process commits its own groups); on one SQLite file the
    processes' writers take turns on its lock, which measured no faster than one process.
    """
    import signal

    from invreq.errors import StartupError

    _prepare_network_dir(config.network_dir)
    _prepare_secrets(config)
    listeners = _bind(config)
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # the worker
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
        children.append(pid)

    def forward(signum: int, _frame: Any) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    _announce(config)
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
