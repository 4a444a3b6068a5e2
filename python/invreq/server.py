"""The application: ``create_app(config)`` assembles it, ``serve(config)`` runs it.

No module-level state: every resource is opened by its own aiohttp ``cleanup_ctx``, in
order (store, signer, approver, runes, payments, commands, the unix door, metrics), and closed in
reverse order on shutdown, or when a later one fails to open. The doors are their own
modules: :mod:`invreq.unixsock` (CLN's socket) and :mod:`invreq.rest` (HTTP), both over the
dispatcher of :mod:`invreq.rpc`; ``--workers`` is :mod:`invreq.workers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

from aiohttp import web

from invreq import httpguard, lograte, rest, rpc
from invreq.auth import RuneAuthority
from invreq.blindpaths import PathMaker, load_or_create_path_secret
from invreq.changes import ChangeFeed, NotifyingStore
from invreq.config import Config
from invreq.errors import StartupError, StoppedDuringStartup, listen_error
from invreq.events import Events
from invreq.metrics import Metrics, metrics_site
from invreq.payments import ClnBackend, PaymentBackend, Receiver, open_backend
from invreq.payments.authority import PayoutAuthority
from invreq.service import Service
from invreq.signers.base import Approver, Signer
from invreq.store.base import PaymentLimits, Store
from invreq.unixsock import MAX_UNIX_CONNECTIONS, unix_door
from invreq.web import dashboard, page

__all__ = [
    "CONFIG_KEY",
    "DISPATCHER_KEY",
    "SERVICE_KEY",
    "Listeners",
    "announce",
    "create_app",
    "prepare_network_dir",
    "serve",
]

log = logging.getLogger("invreq.server")


@dataclasses.dataclass
class Listeners:
    """Sockets bound once by the parent of ``--workers`` processes (:mod:`invreq.workers`)
    and shared by them: :func:`serve` listens on these instead of binding its own."""

    unix: socket.socket | None
    http: socket.socket | None
    #: a worker's end of its link to the SQLite writer process (None: its own store)
    writer: socket.socket | None = None


CONFIG_KEY = web.AppKey("config", Config)
LISTENERS_KEY: web.AppKey[Listeners | None] = web.AppKey("listeners")
METRICS_KEY: web.AppKey[Metrics | None] = web.AppKey("metrics")
STORE_KEY: web.AppKey[Store] = web.AppKey("store")
SIGNER_KEY: web.AppKey[Signer] = web.AppKey("signer")
APPROVER_KEY: web.AppKey[Approver | None] = web.AppKey("approver")
PAYOUT_APPROVER_KEY: web.AppKey[Approver | None] = web.AppKey("payout_approver")
RECEIVER_KEY = web.AppKey("receiver", Receiver)
PATHS_KEY: web.AppKey[PathMaker | None] = web.AppKey("paths")
SERVICE_KEY = web.AppKey("service", Service)
AUTH_KEY = web.AppKey("auth", RuneAuthority)
DISPATCHER_KEY = web.AppKey("dispatcher", rpc.Dispatcher)
#: The LNURL-withdraw door's links (invreq.lnurl), with --lnurl.
LNURL_KEY: web.AppKey[Any] = web.AppKey("lnurl")
FEED_KEY = web.AppKey("feed", ChangeFeed)

#: Seconds shutdown waits for HTTP requests in flight (a person confirming on a hardware
#: signer included); aiohttp's default, 60, is beyond what a service manager allows.
HTTP_SHUTDOWN_TIMEOUT = 30.0


def prepare_network_dir(path: Path) -> None:
    # The directory holds the signer secret and the socket: owner only.
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)


# --- one cleanup context per resource ---------------------------------------------------


async def _store(app: web.Application) -> AsyncIterator[None]:
    from invreq.store.url import open_store

    config = app[CONFIG_KEY]
    prepare_network_dir(config.network_dir)
    listeners = app[LISTENERS_KEY]
    store: Store
    if listeners is not None and listeners.writer is not None:
        from invreq.store.writer import WorkerStore

        store = WorkerStore(listeners.writer)  # --workers on SQLite: the writer owns the file
    else:
        store = open_store(config.db, config.sqlite_path)
    await store.open()
    metrics = app[METRICS_KEY]
    if metrics is not None:
        store.on_commit = metrics.observe_commit
    # Changes wake the payee pages' streams and `wait` at once (invreq.changes).
    feed = ChangeFeed()
    app[FEED_KEY] = feed
    app[STORE_KEY] = cast(Store, NotifyingStore(store, feed))
    try:
        yield
    finally:
        await store.close()  # pending writes are committed first


async def _signer(app: web.Application) -> AsyncIterator[None]:
    from invreq.signers.factory import open_signer

    signer = await open_signer(app[CONFIG_KEY])
    app[SIGNER_KEY] = signer
    try:
        yield
    finally:
        await signer.close()


async def _approver(app: web.Application) -> AsyncIterator[None]:
    from invreq.signers.factory import open_approver, open_payout_approver

    approver = await open_approver(app[CONFIG_KEY])
    app[APPROVER_KEY] = approver
    payout: Approver | None = None
    try:
        payout = await open_payout_approver(app[CONFIG_KEY], approver)
        app[PAYOUT_APPROVER_KEY] = payout
        yield
    finally:
        if payout is not None and payout is not approver:
            await payout.close()
        if approver is not None:
            await approver.close()


def _authority(app: web.Application) -> PayoutAuthority:
    """Who may let money leave (invreq.payments.authority): the approval key pinned at
    start (--approver hwi), and the per-payment approver (--payout-approver hwi)."""
    approver = app[APPROVER_KEY]
    return PayoutAuthority(
        network=app[CONFIG_KEY].network,
        approval_key=None if approver is None else approver.pubkey,
        payout_approver=app[PAYOUT_APPROVER_KEY],
    )


async def _payments(app: web.Application) -> AsyncIterator[None]:
    """The payment backend, the blinded paths to its node, and the receiver over them."""
    config = app[CONFIG_KEY]
    backend = await open_backend(config.pay_with)
    reconciler: asyncio.Task[None] | None = None
    try:
        paths = _path_maker(config, backend)
        receiver = Receiver(
            app[STORE_KEY],
            backend,
            timeout=config.pay_timeout,
            limits=PaymentLimits(
                per_request=config.pay_attempts_per_request,
                per_minute=config.pay_attempts_per_minute,
            ),
            paths=paths,
            authority=_authority(app),
            approval_wait=config.hwi_timeout if config.payout_approver == "hwi" else 0.0,
        )
        await receiver.reconciler.reconcile()  # payments a crash left pending
        # ... and those still pending later (the node had not finished, or a crashed
        # worker or another instance left them): no restart needed.
        reconciler = asyncio.create_task(receiver.reconciler.run(config.pay_reconcile_interval))
        app[PATHS_KEY] = paths
        app[RECEIVER_KEY] = receiver
        yield
        await receiver.close()  # payments from the plugin still running
    finally:
        if reconciler is not None:
            reconciler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reconciler
        await backend.close()


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


async def _auth(app: web.Application) -> AsyncIterator[None]:
    """The rune authority: its master secret is made on first start (nothing to close)."""
    app[AUTH_KEY] = RuneAuthority.load_or_create(app[CONFIG_KEY].network_dir, app[STORE_KEY])
    yield


async def _commands(app: web.Application) -> AsyncIterator[None]:
    """The service and the dispatcher over every command (nothing to close)."""
    config, metrics = app[CONFIG_KEY], app[METRICS_KEY]
    service = Service(
        network=config.network,
        store=app[STORE_KEY],
        signer=app[SIGNER_KEY],
        approver=app[APPROVER_KEY],
        payout_approver=app[PAYOUT_APPROVER_KEY],
        metrics=metrics,
        allow_unlimited_payouts=config.allow_unlimited_payouts,
    )
    service.paths = app[PATHS_KEY]
    service.lnurl = app[LNURL_KEY]
    base = config.page_base
    if base is not None:
        service.page_url = lambda invreq_id: base + page.page_path(invreq_id)
    app[SERVICE_KEY] = service
    events = Events(app[STORE_KEY], app[FEED_KEY], webhook=config.webhook_url is not None)
    app[DISPATCHER_KEY] = rpc.build_dispatcher(
        service, metrics, app[AUTH_KEY], app[RECEIVER_KEY], events
    )
    yield


async def _pages(app: web.Application) -> AsyncIterator[None]:
    """The payee pages: their static files, read once here (off the event loop)."""
    static = await asyncio.to_thread(page.load_static)
    app[page.PAGES_KEY] = page.Pages(app[STORE_KEY], app[FEED_KEY], static)
    links = app[LNURL_KEY]
    if links is not None:  # --lnurl: the page shows the link too
        app[page.PAGES_KEY].links = lambda r: (
            None if r.lnurl_k1 is None else links.links_json(r.lnurl_k1)
        )
    yield


async def _webhooks(app: web.Application) -> AsyncIterator[None]:
    """The events' sender (invreq.webhooks): delivers to --webhook-url, and notes expired
    requests either way; stopped before the store closes."""
    from invreq import secretfile
    from invreq.webhooks import Sender

    config = app[CONFIG_KEY]
    secret = None
    if config.webhook_secret_file is not None:
        secret = await asyncio.to_thread(
            secretfile.read_given,
            config.webhook_secret_file.expanduser(),
            role="signs the webhook's deliveries (--webhook-secret-file)",
        )
    sender = Sender(app[STORE_KEY], app[FEED_KEY], config.webhook_url, secret)
    task = asyncio.create_task(sender.run(), name="invreq-webhooks")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if config.webhook_url is not None:
            await sender.release()


async def _stop_streams(app: web.Application) -> None:
    # on_shutdown runs before aiohttp waits for handlers: event streams end now.
    if page.PAGES_KEY in app:
        app[page.PAGES_KEY].stopping.set()


async def _unix(app: web.Application) -> AsyncIterator[None]:
    listeners = app[LISTENERS_KEY]
    async with unix_door(
        app[DISPATCHER_KEY],
        app[CONFIG_KEY].socket_path,
        sock=listeners.unix if listeners is not None else None,
        metrics=app[METRICS_KEY],
        max_connections=connection_caps()[0],
        backlog=ACCEPT_BURST,
    ):
        yield


async def _metrics(app: web.Application) -> AsyncIterator[None]:
    config, metrics = app[CONFIG_KEY], app[METRICS_KEY]
    assert metrics is not None
    async for _ in metrics_site(
        metrics, "127.0.0.1", config.metrics_port, app[STORE_KEY].count_by_state
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
    app.cleanup_ctx.extend(
        [_store, _signer, _approver, _auth, _payments, _commands, _pages, _webhooks]
    )
    app.on_shutdown.append(_stop_streams)
    if unix_socket:
        app.cleanup_ctx.append(_unix)
    if metrics is not None:
        app.cleanup_ctx.append(_metrics)
    app.router.add_routes(rest.routes(AUTH_KEY, DISPATCHER_KEY))
    app[LNURL_KEY] = None
    if config.lnurl:
        app[LNURL_KEY] = _lnurl_links(config)
        from invreq import lnurldoor

        app.router.add_routes(lnurldoor.routes(STORE_KEY, RECEIVER_KEY, app[LNURL_KEY]))
    app.router.add_routes(page.routes())
    app.router.add_routes(dashboard.routes())
    return app


def _lnurl_links(config: Config) -> Any:
    """``--lnurl``: its libraries are an optional extra, named in one line when missing."""
    from invreq.extras import require

    for module in ("lnurl", "bolt11"):
        require(module, "--lnurl")
    from invreq.lnurl import Links

    assert config.public_url is not None  # Config.validate
    return Links.open(config.public_url)


#: File descriptors kept for everything but client connections (store, log, signer,
#: listeners, the metrics port, worker threads' files).
RESERVED_FDS = 64
#: Per door, the least connections served however low the fd limit.
MIN_CONNECTIONS = 8
#: Connections a listening socket queues in the kernel, and so the most asyncio accepts at
#: once (one readiness event) before the guard can close any: each door keeps this many
#: descriptors free above its cap, so an accept burst at the cap never meets EMFILE.
ACCEPT_BURST = 32


def connection_caps() -> tuple[int, int]:
    """(unix, HTTP) connection caps: each door gets half of the file descriptors left
    after ``RESERVED_FDS`` and an ``ACCEPT_BURST`` of headroom per door, up to
    ``MAX_UNIX_CONNECTIONS``, so both caps are reached before the process runs out of
    descriptors (and no accepted client waits on one, even during an accept burst)."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_UNIX_CONNECTIONS, MAX_UNIX_CONNECTIONS
    left = soft - RESERVED_FDS - 2 * ACCEPT_BURST
    per_door = max(MIN_CONNECTIONS, min(MAX_UNIX_CONNECTIONS, left // 2))
    return per_door, per_door


# --- running ----------------------------------------------------------------------------


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
        prepare_network_dir(config.network_dir)
        ssl_context = server_context(config.network_dir, config.http_host)
    app = create_app(config, listeners=listeners)
    # Before anything opens: a SIGTERM while the store, signer or device opens (a
    # ``--workers`` worker told to stop as it starts, a device that stalls) stops the
    # start-up at once (_start), closing what had opened, rather than killing the process.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=HTTP_SHUTDOWN_TIMEOUT,
        # From the connection's start and after each response, until the next request's
        # headers are complete: silent and half-sent clients are dropped.
        keepalive_timeout=httpguard.IDLE_TIMEOUT,
    )
    await _start(runner, stop)
    sites: list[web.BaseSite] = []
    scheme = "https" if config.http_tls else "http"
    if config.http_port:
        guard = app[httpguard.GUARD_KEY]
        site: web.BaseSite
        if listeners is not None and listeners.http is not None:
            site = httpguard.GuardedSite(
                runner, guard, sock=listeners.http, ssl_context=ssl_context, backlog=ACCEPT_BURST
            )
        else:
            site = httpguard.GuardedSite(
                runner,
                guard,
                host=config.http_host,
                port=config.http_port,
                ssl_context=ssl_context,
                backlog=ACCEPT_BURST,
            )
        try:
            await site.start()
        except OSError as e:
            await runner.cleanup()
            raise listen_error("--http-port", f"{config.http_host}:{config.http_port}", e) from None
        sites.append(site)
        log.info("listening on %s://%s:%d/rpc", scheme, config.http_host, config.http_port)
        # Where payees' pages are (each request's JSON has its page_url).
        log.info("payee pages at %s%s", config.page_base, page.page_path("<invreq_id>"))
        log.info("operator dashboard at %s/dashboard (log in with a rune)", config.page_base)
    if on_sighup is not None:
        loop.add_signal_handler(signal.SIGHUP, on_sighup)
    log.debug("event loop: %s", type(loop).__module__.partition(".")[0])  # asyncio or uvloop
    if listeners is None:  # with workers, the parent says it once
        announce(config)
    _tune_gc()
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


async def _start(runner: web.AppRunner, stop: asyncio.Event) -> None:
    """``runner.setup()`` (the cleanup contexts' start: store, signer, device, socket),
    given up when ``stop`` is set first: the start-up is cancelled (a device call waiting
    is abandoned; its thread ends by its own deadline, and does not hold the exit), what
    had opened is closed, and ``StoppedDuringStartup`` is raised."""
    setup = asyncio.ensure_future(runner.setup())
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((setup, stopped), return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        setup.cancel()  # serve() itself cancelled: the start-up goes with it
        raise
    finally:
        stopped.cancel()
    if not setup.done():
        setup.cancel()
        with contextlib.suppress(BaseException):
            await setup
        await runner.cleanup()
        raise StoppedDuringStartup("stopped by a signal during start-up")
    try:
        setup.result()
    except BaseException:
        await runner.cleanup()  # closes what was opened before the failure
        raise


def _tune_gc() -> None:
    """Once started, move what start-up allocated (modules, the app, connections: alive
    until exit) out of the cyclic collector's view, so its older-generation passes stop
    walking it. The thresholds stay CPython's: a young-generation threshold of 50,000
    (against 700) measured no clear CPU gain here but let RSS climb ~2 MiB per million
    requests in the soak (flat at 700), cyclic garbage waiting longer for collection."""
    gc.collect()
    gc.freeze()


def announce(config: Config) -> None:
    """The one line that says the service is up and where (tests and operators wait on it)."""
    scheme = "https" if config.http_tls else "http"
    print(
        f"invreq {config.network}: unix socket {config.socket_path}"
        + (f", {scheme}://{config.http_host}:{config.http_port}/rpc" if config.http_port else ""),
        flush=True,
    )
