"""HTTP with runes: ``POST /rpc`` (JSON-RPC) and clnrest-compatible REST.

clnrest's contract, which CLN users' scripts already follow:

- ``POST /v1/<method>`` with the named parameters as a JSON object body (or no body) and
  the rune in a ``Rune`` header: ``201`` and the bare result; ``403`` without a rune;
  ``401`` when the rune is refused; ``500`` with the error object when the call fails;
  ``405`` for any other verb.
- ``GET /v1/list-methods``: the commands and their parameters, as text.
- ``GET /swagger.json``: an OpenAPI 3 document made from the same parameter tables the
  RPC checks with (``invreq.params``), so it cannot drift from what the server accepts.

``POST /rpc`` needs a rune too (403 without, 401 when a single request is refused; in a
batch each refused element carries its own error). The unix socket needs none: its file
mode is its protection.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from invreq import __version__, httpguard, paging, params, rpc
from invreq.auth import RuneAuthority
from invreq.context import CALLER
from invreq.errors import (
    BodyTimeout,
    InvalidParams,
    MissingRune,
    RequestTooLarge,
    RpcError,
    RuneError,
    ServerBusy,
)

__all__ = ["BODY_READERS", "http_status", "openapi", "routes"]

RUNE_HEADER = "Rune"

#: The HTTP status of a failure, by class (clnrest's: 403 no rune, 401 rune refused).
_STATUS: dict[type[RpcError], int] = {
    MissingRune: 403,
    RuneError: 401,
    BodyTimeout: 408,
    RequestTooLarge: 413,
    ServerBusy: 503,
}


def http_status(err: RpcError, default: int) -> int:
    """The status for ``err``: that of its nearest listed class, else ``default`` (200 for
    ``/rpc``, where JSON-RPC carries the error; 500 for REST)."""
    for cls in type(err).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return default


def _rest_failure(e: RpcError) -> tuple[int, Any]:
    return http_status(e, 500), e.to_json()


def _json(status: int, obj: Any) -> web.StreamResponse:
    """A small JSON answer made here (a refusal), within the reply budget."""
    return httpguard.JsonReply(status, whole=rpc.dumps(obj), failed=_rest_failure)


def _reply(status: int, reply: Any) -> web.StreamResponse:
    """A JSON-RPC reply (``/rpc``): made whole, or streamed (a batch, a list)."""

    def failed(e: RpcError) -> tuple[int, Any]:
        req_id = reply.get("id") if isinstance(reply, dict) else None
        return http_status(e, 200), rpc.error_object(req_id, e)

    if rpc.streamed(reply):
        return httpguard.JsonReply(status, pieces=rpc.reply_pieces(reply), failed=failed)
    return httpguard.JsonReply(status, whole=rpc.dumps(reply), failed=failed)


def _result(status: int, result: Any) -> web.StreamResponse:
    """A bare result (REST): made whole, or a list streamed."""
    if isinstance(result, paging.Listing):
        pieces = rpc.result_pieces(result)
        return httpguard.JsonReply(status, pieces=pieces, failed=_rest_failure)
    return _json(status, result)


def _authorizer(auth: RuneAuthority, rune: str) -> rpc.Authorize:
    async def authorize(method: str, call_params: Any) -> None:
        uid = await auth.check(rune, method=method, params=call_params)
        CALLER.set(f"rune #{uid}")  # who did it, for records such as resolvepayment

    return authorize


#: Seconds a client may take to send its body.
BODY_TIMEOUT = 30.0
#: Handlers still receiving their body: shutdown cancels them (a stalled upload is not a
#: request in flight), so SIGTERM never waits on a slow or hostile client.
BODY_READERS = web.AppKey("body_readers", set)


async def _read(request: web.Request) -> bytes:
    """The body; raises ``BodyTimeout`` or ``RequestTooLarge``."""
    if request.content.is_eof():
        # The whole body came with the headers (the usual case): reading it cannot wait, so
        # it needs no timer and no place among the readers cancelled at shutdown (a timer
        # per request was ~3% of the service's samples under load; issue 19).
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise RequestTooLarge(rpc.MAX_REQUEST_BYTES) from None
    readers = request.app[BODY_READERS]
    task = asyncio.current_task()
    assert task is not None
    readers.add(task)
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            # Read by hand rather than request.read(), which drops what it read when the
            # body is too large: the head may hold the request's id, owed in the reply.
            body = bytearray()
            async for chunk in request.content.iter_any():
                body += chunk
                if len(body) > rpc.MAX_REQUEST_BYTES:
                    raise RequestTooLarge(rpc.MAX_REQUEST_BYTES, bytes(body[: rpc.ID_SCAN_BYTES]))
            return bytes(body)
    except TimeoutError:
        raise BodyTimeout(BODY_TIMEOUT) from None
    finally:
        readers.discard(task)


def routes(auth_key: Any, dispatcher_key: Any) -> list[web.RouteDef]:
    """The HTTP routes; the app keys name where the authority and dispatcher live."""

    async def rpc_http(request: web.Request) -> web.StreamResponse:
        try:
            body = await _read(request)
            rune = request.headers.get(RUNE_HEADER)
            if not rune:
                raise MissingRune()
        except RpcError as e:
            head = e.head if isinstance(e, RequestTooLarge) else b""
            return _json(http_status(e, 200), rpc.error_object(rpc.find_id(head), e))
        authorize = _authorizer(request.app[auth_key], rune)
        answer = await request.app[dispatcher_key].answer_bytes(body, authorize)
        if answer.reply is None:  # notifications only: JSON-RPC says no content
            return web.Response(status=204)
        status = 200 if answer.error is None else http_status(answer.error, 200)
        return _reply(status, answer.reply)

    async def rest_call(request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        if not request.headers.get(RUNE_HEADER):
            return _json(http_status(MissingRune(), 500), MissingRune().to_json())
        rune = request.headers[RUNE_HEADER]
        try:
            body = await _read(request)
        except RpcError as e:
            return _json(http_status(e, 500), rpc.error_object(None, e))
        try:
            call_params = rpc.parse(body) if body.strip() else {}
            if not isinstance(call_params, dict):
                raise InvalidParams("params: should be a JSON object of named parameters")
            uid = await request.app[auth_key].check(rune, method=method, params=call_params)
            CALLER.set(f"rune #{uid}")
        except RpcError as e:
            return _json(http_status(e, 500), e.to_json())
        msg = {"jsonrpc": "2.0", "id": "rest", "method": method, "params": call_params}
        answer = await request.app[dispatcher_key].answer(msg)
        if answer.error is not None:
            # The call was authorized: whatever the command answers (checkrune's refusal
            # included) is its result, 500 as clnrest.
            return _json(500, answer.error.to_json())
        return _result(201, answer.reply["result"])

    async def list_methods(request: web.Request) -> web.Response:
        entries = rpc.help_entries(request.app[dispatcher_key], None)
        text = "\n\n".join(
            f"Command: {e['command']}\nCategory: {e['category']}\n{e['verbose']}" for e in entries
        )
        return web.Response(text=text + "\n", content_type="text/plain")

    async def swagger(request: web.Request) -> web.StreamResponse:
        names = set(request.app[dispatcher_key].methods)
        return _json(200, openapi([c for c in params.COMMANDS if c.name in names]))

    return [
        web.post("/rpc", rpc_http),
        web.get("/v1/list-methods", list_methods),
        web.get("/swagger.json", swagger),
        web.post("/v1/{method}", rest_call),
    ]


_SCHEMAS: dict[str, dict[str, Any]] = {
    "msat": {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string"}]},
    "string": {"type": "string"},
    "u64": {
        "oneOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": "^[0-9]+$"}]
    },
    "u32": {"type": "integer", "minimum": 0, "maximum": 4294967295},
    "boolean": {"type": "boolean"},
    "hash": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
    "array": {"oneOf": [{"type": "string"}, {"type": "array"}]},
    "object": {"oneOf": [{"type": "object"}, {"type": "array"}]},
    "blindedpath": {"type": "object"},
}

_ERROR = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
}


def openapi(commands: list[params.Command]) -> dict[str, Any]:
    """OpenAPI 3.0 for ``POST /v1/<method>``, from the parameter tables."""
    paths: dict[str, Any] = {}
    for c in commands:
        body = {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                p.name: {**_SCHEMAS.get(p.kind, {}), "description": p.doc} for p in c.params
            },
        }
        required = [p.name for p in c.params if p.required]
        if required:
            body["required"] = required
        paths[f"/v1/{c.name}"] = {
            "post": {
                "operationId": c.name,
                "summary": c.description,
                "tags": [c.category],
                "parameters": [
                    {
                        "name": RUNE_HEADER,
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "requestBody": {
                    "required": bool(required),
                    "content": {"application/json": {"schema": body}},
                },
                "responses": {
                    "201": {
                        "description": "the result",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "401": {
                        "description": "rune refused",
                        "content": {"application/json": {"schema": _ERROR}},
                    },
                    "403": {
                        "description": "no rune",
                        "content": {"application/json": {"schema": _ERROR}},
                    },
                    "500": {
                        "description": "RPC error",
                        "content": {"application/json": {"schema": _ERROR}},
                    },
                },
            }
        }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "invreq",
            "version": __version__,
            "description": "BOLT 12 invoice_requests, clnrest-compatible REST",
        },
        "paths": paths,
    }
