"""The operator's dashboard: ``GET /dashboard``, a page whose script calls the REST API
(``POST /v1/<method>``) with the operator's rune in the ``Rune`` header.

**Where the rune lives.** The login form keeps it in the tab's ``sessionStorage`` only:
never in a cookie, never sent anywhere but in that header, gone when the tab closes.

**Why this is safe against cross-site requests.** The browser attaches nothing to a
request by itself (no cookie, no HTTP authentication): every call must carry the ``Rune``
header, which only this origin's script can read from its storage. Another site's page
cannot read it, a form it submits cannot set a header, and its script's cross-origin
``fetch`` with a custom header needs a CORS preflight that invreq never grants (it sends no
``Access-Control-Allow-*`` header). So "disable" cannot be triggered from elsewhere.

The page itself holds no data: it is the same for everyone, and everything it shows comes
from calls the rune allows (a restricted rune shows less, and its refusals are shown).
"""

from __future__ import annotations

from aiohttp import web

from invreq.web.headers import secure

__all__ = ["routes"]

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>invreq dashboard</title>
<link rel="stylesheet" href="static/invreq.css">
<link rel="icon" href="static/favicon.svg" type="image/svg+xml">
<script src="static/dashboard.js" defer></script>
</head>
<body>
<main class="wide">
<h1>invreq</h1>
<noscript><p class="error">The dashboard needs JavaScript (it calls the REST API with
your rune).</p></noscript>
<form id="login" hidden>
<label>Rune <input id="rune" type="password" autocomplete="off" required></label>
<button class="button" type="submit">Log in</button>
<p class="help">The rune is kept in this tab only (sessionStorage) and sent in the
<code>Rune</code> header; make one with <code>invreq call createrune</code>.</p>
</form>
<p id="error" class="error" role="alert"></p>
<section id="app" hidden>
<p><button id="logout" class="button" type="button">Log out</button></p>
<h2>Requests</h2>
<form id="filters" class="filters">
<label>State <select id="f-state">
<option value="">all</option><option value="active">active</option>
<option value="used">used</option><option value="disabled">disabled</option>
</select></label>
<label>Label <input id="f-label" type="text"></label>
<label>Created from <input id="f-from" type="date"></label>
<label>Created to <input id="f-to" type="date"></label>
<button class="button" type="submit">Filter</button>
</form>
<table id="requests"><thead><tr><th>#</th><th>created</th><th>label</th><th>state</th>
<th>invreq_id</th></tr></thead><tbody></tbody></table>
<section id="detail" hidden>
<h2>Request <code id="d-id"></code></h2>
<dl id="d-fields"></dl>
<p><a id="d-page" href="#">Payee page</a>
<button id="d-disable" class="button" type="button">Disable</button></p>
<h3>Payouts</h3>
<table id="d-payments"><thead><tr><th>payment</th><th>status</th><th>amount (msat)</th>
<th>created</th><th>settled</th><th>approved / resolved by</th></tr></thead><tbody></tbody></table>
<h3>Events</h3>
<table id="d-events"><thead><tr><th>event</th><th>type</th><th>at</th><th>delivery</th></tr>
</thead><tbody></tbody></table>
</section>
<h2>Payments</h2>
<form id="p-filters" class="filters">
<label>Status <select id="p-status">
<option value="">all</option><option>pending</option><option>paid</option>
<option>failed</option><option>refused</option></select></label>
<button class="button" type="submit">Filter</button>
</form>
<table id="payments"><thead><tr><th>payment</th><th>request</th><th>status</th>
<th>amount (msat)</th><th>created</th><th>approved / resolved by</th></tr></thead>
<tbody></tbody></table>
</section>
</main>
</body>
</html>
"""


def routes() -> list[web.RouteDef]:
    async def dashboard(request: web.Request) -> web.Response:
        resp = web.Response(text=_PAGE, content_type="text/html")
        secure(resp.headers)
        return resp

    return [web.get("/dashboard", dashboard)]
