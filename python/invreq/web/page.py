"""The payee page: ``GET /r/<invreq_id>``, its live state ``GET /r/<invreq_id>/events``
(server-sent events), and the static files both pages use.

**Why the request's id is the address.** The invreq_id is the merkle root of the request's
records, 16 of whose bytes are fresh CSPRNG output (``Service.METADATA_LEN``): nobody can
guess it, and only who holds the ``lnr`` string (or was given the page) can compute it.
The page shows that same string, so it tells its reader nothing they could not already
read from the string, except the state (and the time of payment); it never shows the
label, node ids, other requests, payment hashes or node errors. The page's address is
therefore as sensitive as the ``lnr`` string itself, which is bearer value: pages send
``Referrer-Policy: no-referrer`` so the address does not leave with a followed link.

**State without JavaScript.** The page is rendered with its state on the server; without
JavaScript a ``<noscript>`` refresh reloads it every ``NOSCRIPT_REFRESH`` seconds until a
final state. With JavaScript the state comes from the event stream and the page is never
reloaded.

**Streams are bounded.** Each stream lives at most ``STREAM_LIFETIME`` seconds (the
browser's EventSource reconnects by itself), at most ``MAX_STREAMS`` run per process and
never more than a quarter of the HTTP door's connection cap (a stream is a request in
flight, which the door never evicts: streams leave room for RPC and REST calls; beyond,
``503`` and the page still works by reload), every write is under the HTTP door's
send timeout, and shutdown ends them at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import functools
import html
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import segno
from aiohttp import web

from invreq import bolt12, httpguard
from invreq.changes import RECHECK, ChangeFeed, of_request
from invreq.errors import Bolt12Error
from invreq.store.base import PaymentStore, Record
from invreq.web.headers import secure
from invreq.web.state import PayeeState, payee_state

__all__ = [
    "MAX_STREAMS",
    "PAGES_KEY",
    "Pages",
    "format_msat",
    "load_static",
    "page_path",
    "qr_svg",
    "routes",
]

STATIC_DIR = Path(__file__).parent / "static"
#: The static files and their content types.
STATIC_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
#: Seconds one event stream lives; EventSource reconnects after it.
STREAM_LIFETIME = 300.0
#: Event streams one process serves at once.
MAX_STREAMS = 256
#: Without JavaScript: seconds between reloads while the state may still change.
NOSCRIPT_REFRESH = 10
#: States after which nothing changes for the payee.
FINAL = frozenset({"paid", "disabled", "expired"})

_ID = re.compile(r"[0-9a-f]{64}")


def page_path(invreq_id: str) -> str:
    """The page's path under the public base URL."""
    return f"/r/{invreq_id}"


def load_static() -> dict[str, tuple[bytes, str]]:
    """Every static file, read once at start-up (off the event loop)."""
    return {
        p.name: (p.read_bytes(), STATIC_TYPES[p.suffix])
        for p in sorted(STATIC_DIR.iterdir())
        if p.suffix in STATIC_TYPES
    }


@dataclasses.dataclass
class Pages:
    """What the pages read: the store, the change feed, the clock, the static files."""

    store: PaymentStore
    feed: ChangeFeed
    static: dict[str, tuple[bytes, str]]
    clock: Callable[[], float] = time.time
    #: set at shutdown: event streams end
    stopping: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    streams: int = 0
    #: --lnurl: a request's LNURL-withdraw link (``lnurl``, ``lnurlw``; invreq.lnurl), or
    #: None when it has none
    links: Callable[[Record], dict[str, str] | None] | None = None

    async def state_of(self, record: Record) -> tuple[PayeeState, int | None]:
        payments = await self.store.payments(record.invreq_id)
        expiry = _absolute_expiry(record)
        return payee_state(record, payments, expiry, int(self.clock())), expiry


PAGES_KEY = web.AppKey("pages", Pages)


def _absolute_expiry(record: Record) -> int | None:
    try:
        return bolt12.decode_invoice_request(record.bolt12, verify=False).absolute_expiry
    except Bolt12Error:
        return None


def format_msat(msat: int) -> str:
    """``50 sat``, ``1.234 sat``: sat with msat as decimals only when there are any."""
    sat, rest = divmod(msat, 1000)
    return f"{sat:,} sat" if rest == 0 else f"{sat:,}.{rest:03d} sat"


def _utc(unix: int) -> str:
    return datetime.datetime.fromtimestamp(unix, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _iso(unix: int) -> str:
    return datetime.datetime.fromtimestamp(unix, datetime.UTC).isoformat()


def _time(unix: int, element_id: str) -> str:
    """A time in UTC for the server-rendered page; the script shows it in the viewer's."""
    return f'<time id="{element_id}" datetime="{_iso(unix)}" data-unix="{unix}">{_utc(unix)}</time>'


#: QR codes kept rendered, by string (a request's code never changes; the page without
#: JavaScript reloads itself): at most this many, ~8 KiB each.
QR_CACHE = 256


@functools.lru_cache(maxsize=QR_CACHE)
def qr_svg(text: str) -> str:
    """The QR code of ``text`` as inline SVG. Pure Python and slow (tens of ms, most of it
    choosing the mask that reads best): the pages call it off the event loop and keep the
    result (:data:`QR_CACHE`)."""
    # Upper case: BOLT 12 strings are case-insensitive bech32, and upper case fits QR's
    # alphanumeric mode (a smaller code than byte mode for the same string).
    qr = segno.make(text.upper(), error="m")
    svg: str = qr.svg_inline(
        scale=4, border=4, dark="#000", light="#fff", title="QR code", omitsize=True
    )
    return svg


_HEAD = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<link rel="stylesheet" href="{static}/invreq.css">
<link rel="icon" href="{static}/favicon.svg" type="image/svg+xml">
{noscript}<script src="{static}/{script}" defer></script>
</head>
"""


def _page(
    state: PayeeState,
    record: Record,
    expiry: int | None,
    qr: str,
    lnurl: tuple[str, str] | None = None,
) -> str:
    """``lnurl``: the request's LNURL and its QR code, shown as a second way to collect."""
    inv = bolt12.decode_invoice_request(record.bolt12, verify=False)
    amount = inv.amount_msat or 0
    esc = html.escape
    noscript = (
        ""
        if state.state in FINAL
        else f'<noscript><meta http-equiv="refresh" content="{NOSCRIPT_REFRESH}"></noscript>\n'
    )
    rows = [
        f"<dt>Amount</dt><dd>{format_msat(amount)} <small>({amount:,} msat)</small></dd>",
    ]
    if inv.issuer:
        rows.append(f'<dt>From</dt><dd id="issuer">{esc(inv.issuer)}</dd>')
    if expiry is not None:
        rows.append(f"<dt>Expires</dt><dd>{_time(expiry, 'expiry')}</dd>")
    string = esc(record.bolt12)
    return (
        _HEAD.format(
            title=esc(f"{format_msat(amount)}: {inv.description or 'payment'}"),
            static="../static",
            script="payee.js",
            noscript=noscript,
        )
        + f"""<body>
<main class="payee">
<h1 id="amount">{format_msat(amount)}</h1>
<p id="description" class="description">{esc(inv.description or "")}</p>
{_state_html(state)}
<figure class="qr" id="qr">{qr}</figure>
<p class="actions"><a id="open" class="button" href="lightning:{string}">Open in wallet</a>
<button id="copy" class="button" type="button" hidden>Copy</button></p>
<p><textarea id="bolt12" readonly rows="4" aria-label="The request">{string}</textarea></p>
<dl>{"".join(rows)}</dl>
<p class="help">Scan the code, or open or paste it in a wallet that reads BOLT 12
invoice requests (<code>lnr1...</code>): it sends an invoice for this amount, and this
service pays it.</p>
{_lnurl_html(lnurl)}</main>
<div id="stream" data-events="{record.invreq_id}/events" hidden></div>
</body>
</html>
"""
    )


def _lnurl_html(lnurl: tuple[str, str] | None) -> str:
    """The LNURL-withdraw door (docs/lnurl.md), for wallets that read no BOLT 12: the same
    request, collected once whichever code is scanned."""
    if lnurl is None:
        return ""
    link = html.escape(lnurl[0])
    return f"""<section id="lnurl-door" class="lnurl">
<h2>Or with an LNURL wallet</h2>
<figure class="qr" id="qr-lnurl">{lnurl[1]}</figure>
<p class="actions"><a id="open-lnurl" class="button" href="lightning:{link}">Open in wallet</a></p>
<p><textarea id="lnurl" readonly rows="3" aria-label="The LNURL">{link}</textarea></p>
<p class="help">Phoenix and most phone wallets: scan this code instead; the wallet makes
the invoice (LNURL-withdraw) and this service pays it.</p>
</section>
"""


def _state_html(state: PayeeState) -> str:
    paid = (
        f'<span id="paid-at">{_time(state.paid_at, "paid-time")}</span>'
        if state.paid_at is not None
        else '<span id="paid-at"></span>'
    )
    reason = html.escape(state.reason or "")
    return (
        f'<section id="state" class="state state-{state.state}" data-state="{state.state}"'
        f' aria-live="polite"><strong id="state-words">{html.escape(state.words)}</strong> '
        f'{paid} <span id="state-reason">{reason}</span></section>'
    )


def _not_found() -> web.Response:
    body = (
        _HEAD.format(title="Not found", static="../static", script="payee.js", noscript="")
        + '<body><main class="payee"><h1>Not found</h1><p>No such request here.</p></main>'
        "</body></html>\n"
    )
    resp = web.Response(status=404, text=body, content_type="text/html")
    secure(resp.headers)
    return resp


def routes() -> list[web.RouteDef]:
    async def page(request: web.Request) -> web.Response:
        pages = request.app[PAGES_KEY]
        invreq_id = request.match_info["invreq_id"]
        record = await pages.store.get(invreq_id) if _ID.fullmatch(invreq_id) else None
        if record is None:
            return _not_found()
        state, expiry = await pages.state_of(record)
        qr = await asyncio.to_thread(qr_svg, record.bolt12)
        links = pages.links(record) if pages.links is not None and record.active else None
        lnurl = None
        if links is not None:
            lnurl = (links["lnurl"], await asyncio.to_thread(qr_svg, links["lnurl"]))
        resp = web.Response(text=_page(state, record, expiry, qr, lnurl), content_type="text/html")
        secure(resp.headers)
        return resp

    async def events(request: web.Request) -> web.StreamResponse:
        pages = request.app[PAGES_KEY]
        invreq_id = request.match_info["invreq_id"]
        record = await pages.store.get(invreq_id) if _ID.fullmatch(invreq_id) else None
        if record is None:
            return _not_found()
        if pages.streams >= min(MAX_STREAMS, request.app[httpguard.GUARD_KEY].cap // 4):
            resp = web.Response(status=503, text="too many event streams; reload the page")
            secure(resp.headers)
            return resp
        pages.streams += 1
        try:
            return await _stream(request, pages, invreq_id)
        finally:
            pages.streams -= 1

    async def static(request: web.Request) -> web.Response:
        found = request.app[PAGES_KEY].static.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        body, content_type = found
        resp = web.Response(body=body, content_type=content_type)
        secure(resp.headers)
        return resp

    return [
        web.get("/r/{invreq_id}", page),
        web.get("/r/{invreq_id}/events", events),
        web.get("/static/{name}", static),
    ]


async def _stream(request: web.Request, pages: Pages, invreq_id: str) -> web.StreamResponse:
    """Send the state now and at each change, until a final state, the stream's lifetime,
    the client leaving, or shutdown."""
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    secure(resp.headers)
    guard = request.app[httpguard.GUARD_KEY]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STREAM_LIFETIME
    with contextlib.suppress(ConnectionError):
        with guard.sending(request.transport):
            await resp.prepare(request)
            await resp.write(b"retry: 3000\n\n")
        last: dict[str, Any] | None = None
        while not pages.stopping.is_set() and loop.time() < deadline:
            record = await pages.store.get(invreq_id)
            if record is None:
                break
            state, _ = await pages.state_of(record)
            now = state.to_json()
            if now != last:
                last = now
                with guard.sending(request.transport):
                    await resp.write(b"event: state\ndata: " + json.dumps(now).encode() + b"\n\n")
            if state.state in FINAL:
                with guard.sending(request.transport):
                    await resp.write(b"event: end\ndata: {}\n\n")
                break
            await _changed_or_stopping(pages, invreq_id, RECHECK)
    return resp


async def _changed_or_stopping(pages: Pages, invreq_id: str, timeout: float) -> None:
    """Until a change of this request (or its payments) here, ``timeout``, or shutdown."""
    if pages.stopping.is_set():
        return
    stop = asyncio.ensure_future(pages.stopping.wait())
    change = asyncio.ensure_future(pages.feed.wait(timeout, of_request(invreq_id)))
    try:
        await asyncio.wait((stop, change), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        change.cancel()
