"""JSON-RPC 2.0 as CLN speaks it: parsing, the envelope and dispatch. No transport here.

One request goes: bytes -> :func:`parse` (strict UTF-8 and JSON, with the two source facts
:mod:`invreq.params` needs) -> :meth:`Dispatcher.answer` (envelope checks, method lookup,
:func:`invreq.params.bind`, the service call) -> an :class:`Answer`: the reply object and,
when the call failed, the typed failure it carries. The doors (:mod:`invreq.unixsock`,
:mod:`invreq.rest`) frame the reply and, over HTTP, choose a status from the failure's class.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import itertools
import json
import json.scanner
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from invreq import jsoncodec, jsonfilter, lograte, paging, params
from invreq.errors import (
    HelpUnknownCommand,
    InternalError,
    InvalidRequest,
    MethodNotFound,
    ReplyBudgetExceeded,
    RpcError,
)
from invreq.oneline import oneline
from invreq.params import DuplicateNames, UEscaped

if TYPE_CHECKING:
    from invreq.auth import RuneAuthority
    from invreq.events import Events
    from invreq.metrics import Metrics
    from invreq.payments import Receiver
    from invreq.service import Service

__all__ = [
    "MAX_NESTING",
    "MAX_REPLY_BYTES",
    "MAX_REQUEST_BYTES",
    "Answer",
    "BatchReply",
    "Dispatcher",
    "RawJSON",
    "build_dispatcher",
    "dumps",
    "error_object",
    "nesting",
    "parse",
    "reply_pieces",
    "result_pieces",
    "streamed",
]

log = logging.getLogger("invreq.rpc")

#: The largest request accepted (one JSON value on the socket, one HTTP body). lightningd
#: has no limit; this one only protects memory, and no real call comes near it: the largest
#: request a BOLT 12 message can carry is 64 KiB, a 60000-character description escaped
#: (\\u0001) as JSON is 360 KB, a batch of 1000 ordinary calls about 200 KB. Measured cost:
#: docs/limits.md (held per connection while it arrives).
MAX_REQUEST_BYTES = 1024 * 1024
#: The deepest a request may nest arrays and objects (the request itself is level 1). No
#: CLN call comes near it (params and filter templates nest a few levels). It is explicit
#: so the answer never depends on the interpreter: CPython 3.11's json parser raises
#: RecursionError near 1000 levels, 3.12 and later parse far deeper, and what reads the
#: value afterwards (parameter checks, the quoted token, filters, the pure-Python scanner
#: at two frames a level) must stay well inside Python's recursion limit on every version.
MAX_NESTING = 100
#: The most requests one batch may hold (the reply must stay proportionate to the request).
MAX_BATCH = 1000
#: The reply budget of one batch: once its replies reach this many bytes of JSON, the
#: elements not yet run are answered ``ReplyBudgetExceeded`` (2003) instead of being run,
#: so a batch reply stays below this plus one element's reply (a list's every record: it
#: is streamed, see :mod:`invreq.paging`). This bounds the work one request may cause;
#: memory is bounded by the process's reply budget (:mod:`invreq.replybudget`), since a
#: batch reply is written element by element as it is made, never held whole.
MAX_REPLY_BYTES = 8 * 1024 * 1024
#: Consecutive batch elements that change something run concurrently, this many at a time,
#: so they share commits; reads run one at a time, so the budget is checked between them.
BATCH_GROUP = 64
#: Methods whose replies are small and whose writes benefit from sharing a commit.
_SHARES_COMMITS = frozenset(
    {"invoicerequest", "disableinvoicerequest", "receiveinvoice", "createrune", "blacklistrune"}
)
#: Longest error message written to the log (hostile input must not make huge lines).
MAX_LOGGED = 300


Handler = Callable[..., Awaitable[Any]]
#: (method, params) -> None, or raises RpcError: who may call what (HTTP's rune check).
Authorize = Callable[[str, Any], Awaitable[None]]

# --- parsing ----------------------------------------------------------------------------


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        dups: list[str] = []
        for k, _ in pairs:
            if k in seen and k not in dups:
                dups.append(k)
            seen.add(k)
        return DuplicateNames(pairs, dups)
    return d


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_ESCAPE = re.compile(r"\\(.)", re.S)


def _scanstring_marking(s: str, end: int, strict: bool = True) -> tuple[str, int]:
    value, new_end = json.decoder.scanstring(s, end, strict)  # type: ignore[attr-defined]
    if any(m.group(1) == "u" for m in _ESCAPE.finditer(s, end, new_end - 1)):
        return UEscaped(value), new_end
    return value, new_end


# The common case (no backslash-u anywhere in the request) uses the C scanner; only a
# request that contains one pays for the pure-Python scanner that marks such strings.
_FAST = json.JSONDecoder(object_pairs_hook=_pairs_hook, parse_constant=_refuse_constant)
_MARKING = json.JSONDecoder(object_pairs_hook=_pairs_hook, parse_constant=_refuse_constant)
_MARKING.parse_string = _scanstring_marking  # type: ignore[attr-defined]
_MARKING.scan_once = json.scanner.py_make_scanner(_MARKING)  # type: ignore[attr-defined]


# A JSON string, or an unterminated one up to the end: every match attempt consumes what it
# tried, so removing the strings from a request is linear in its size, malformed or not.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.S)
_NOT_A_BRACKET = bytes(c for c in range(256) if c not in b"[]{}")
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def nesting(raw: bytes) -> int:
    """How deep a JSON text nests arrays and objects, brackets inside strings aside (UTF-8
    puts no ASCII byte inside a multi-byte character). A malformed text gets some number;
    the parser refuses it anyway."""
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_A_BRACKET)
    return max(itertools.accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


def parse(raw: bytes) -> Any:
    """Strict UTF-8, strict JSON, at most ``MAX_NESTING`` levels deep; raises
    ``InvalidRequest`` saying which."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidRequest(f"malformed request: invalid UTF-8 at byte {e.start}") from None
    # Cheap for ordinary requests: only one with more openers than the limit is scanned.
    if raw.count(b"[") + raw.count(b"{") > MAX_NESTING and nesting(raw) > MAX_NESTING:
        raise InvalidRequest(f"malformed request: nested deeper than {MAX_NESTING} levels")
    decoder = _MARKING if "\\u" in text else _FAST
    try:
        return decoder.decode(text)
    except (ValueError, RecursionError) as e:
        raise InvalidRequest(f"malformed request: {e}") from None


#: How much of a request's head :func:`find_id` reads: lightning-cli writes ``id`` before
#: ``params`` (``{ "jsonrpc" : "2.0", "method" : "...", "id" : "cli:...#PID", "params" ...``).
ID_SCAN_BYTES = 4096
_ID_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)
_PRIMITIVE_END = re.compile(r"[,}\]\s]")


def find_id(raw: bytes | bytearray) -> Any:
    """The top-level ``id`` of a request that cannot be parsed whole (too large, cut off,
    malformed further on), from the members before the first that cannot be read; None
    when there is none. A reply to a request that had an id must carry it: lightning-cli
    treats ``"id": null`` as a broken connection, not as an error."""
    text = bytes(raw[:ID_SCAN_BYTES]).decode("utf-8", "replace")
    try:
        return _scan_members_for_id(text)
    except (ValueError, IndexError, RecursionError):
        return None


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _scan_members_for_id(text: str) -> Any:
    pos = _skip_ws(text, 0)
    if text[pos] != "{":
        return None
    pos = _skip_ws(text, pos + 1)
    while text[pos] == '"':
        key, pos = json.decoder.scanstring(text, pos + 1)  # type: ignore[attr-defined]
        pos = _skip_ws(text, pos)
        if text[pos] != ":":
            return None
        pos = _skip_ws(text, pos + 1)
        if key == "id":
            value, _ = _ID_DECODER.raw_decode(text, pos)
            ok = isinstance(value, (str, int, float)) and not isinstance(value, bool)
            return value if ok and (not isinstance(value, float) or math.isfinite(value)) else None
        pos = _skip_ws(text, _skip_value(text, pos))
        if text[pos] != ",":
            return None
        pos = _skip_ws(text, pos + 1)
    return None


def _skip_value(text: str, pos: int) -> int:
    """The end of the JSON value at ``pos`` without building it (it may be huge)."""
    if text[pos] == '"':
        return int(json.decoder.scanstring(text, pos + 1)[1])  # type: ignore[attr-defined]
    if text[pos] not in "[{":
        m = _PRIMITIVE_END.search(text, pos)
        if m is None:
            raise ValueError("cut off")
        return m.start()
    depth = 0
    while True:
        c = text[pos]
        if c == '"':
            pos = int(json.decoder.scanstring(text, pos + 1)[1])  # type: ignore[attr-defined]
            continue
        if c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
            if depth == 0:
                return pos + 1
        pos += 1


# --- replies ----------------------------------------------------------------------------


class RawJSON(bytes):
    """A value already encoded as JSON; written as is."""


class BatchReply:
    """A batch's reply, made element by element as it is written (:func:`reply_pieces`):
    the elements run in order while the reply is sent, so no whole-batch reply is ever held
    and a client that does not read stops its batch from running further."""

    def __init__(self, pieces: AsyncIterator[bytes]) -> None:
        self.pieces = pieces


#: Pieces smaller than this are joined to the next one (fewer writes, fewer budget turns).
_SMALL_PIECE = 4096


async def result_pieces(result: Any) -> AsyncIterator[bytes]:
    """A command's result as JSON, in pieces: one, or a list's chunk by chunk."""
    if isinstance(result, paging.Listing):
        async for piece in _coalesced(result.encoded(dumps)):
            yield piece
    else:
        yield dumps(result)


async def reply_pieces(reply: Any) -> AsyncIterator[bytes]:
    """A reply (object, or a :class:`BatchReply`) as JSON, in pieces made only as they are
    asked for: a list's records or a batch's elements are read and run while the reply is
    sent, within the process's reply budget (:func:`invreq.replybudget.send`)."""
    if isinstance(reply, BatchReply):
        source = reply.pieces
    elif isinstance(reply, dict) and isinstance(reply.get("result"), paging.Listing):
        source = _listing_reply(reply)
    else:
        yield dumps(reply)
        return
    async for piece in _coalesced(source):
        yield piece


async def _listing_reply(reply: dict[str, Any]) -> AsyncIterator[bytes]:
    # "result" is the envelope's last member: its head is everything before its value.
    head = dumps({**reply, "result": None})[: -len(b"null}")]
    async for piece in reply["result"].encoded(dumps):
        box = [head + piece]
        del piece
        head = b""
        yield box.pop()
    yield b"}"


async def _coalesced(pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    # Each piece is handed on without a reference left in a suspended frame: a reply
    # waiting for room in the budget holds nothing it has made (invreq.replybudget).
    held = b""
    async for piece in pieces:
        held += piece
        del piece
        if len(held) >= _SMALL_PIECE:
            box = [held]
            held = b""
            yield box.pop()
    if held:
        yield held


def streamed(reply: Any) -> bool:
    """Whether a reply is made while it is sent (a batch, a list) rather than whole."""
    return isinstance(reply, BatchReply) or (
        isinstance(reply, dict) and isinstance(reply.get("result"), paging.Listing)
    )


async def materialize(reply: Any) -> Any:
    """A reply as one object (a list's records all read), for callers that need one."""
    if isinstance(reply, BatchReply):
        return json.loads(b"".join([p async for p in reply_pieces(reply)]))
    if isinstance(reply, dict) and isinstance(reply.get("result"), paging.Listing):
        return {**reply, "result": await reply["result"].collect()}
    return reply


def dumps(obj: Any) -> bytes:
    """Compact JSON as UTF-8: what every door writes (orjson where its bytes are the
    standard library's, see :mod:`invreq.jsoncodec`)."""
    if isinstance(obj, RawJSON):
        return bytes(obj)
    fast = jsoncodec.dumps(obj)
    return fast if fast is not jsoncodec.SLOW else _dumps_stdlib(obj)


def _dumps_stdlib(obj: Any) -> bytes:
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:
        # A lone surrogate (from a \ud800 escape) echoed back, e.g. in an id or an error
        # message: not encodable as UTF-8, so escape everything instead.
        return json.dumps(obj, separators=(",", ":")).encode()


def error_object(req_id: Any, err: RpcError) -> dict[str, Any]:
    """The JSON-RPC reply object carrying ``err``."""
    return {"jsonrpc": "2.0", "id": req_id, "error": err.to_json()}


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    """What the dispatcher answers: the reply to send (None: nothing is owed) and, when the
    call failed, the typed failure it carries, so a door can choose its status by class."""

    reply: Any
    error: RpcError | None


def _failure(req_id: Any, err: RpcError) -> Answer:
    return Answer(error_object(req_id, err), err)


# --- dispatch ---------------------------------------------------------------------------

_ABSENT = object()


class Dispatcher:
    """Maps method names to (parameter table, coroutine) and answers requests."""

    def __init__(
        self, methods: dict[str, tuple[params.Command, Handler]], metrics: Metrics | None = None
    ) -> None:
        self.methods = methods
        self.metrics = metrics

    async def handle_value(
        self, msg: Any, authorize: Authorize | None = None
    ) -> dict[str, Any] | None:
        """Answer one parsed request object; None for a notification (no ``id``)."""
        reply: dict[str, Any] | None = await materialize((await self.answer(msg, authorize)).reply)
        return reply

    async def answer(self, msg: Any, authorize: Authorize | None = None) -> Answer:
        """Answer one parsed request object, keeping the failure the reply carries.

        ``authorize(method, params)`` (HTTP: the rune check) runs before anything else
        about the call and refuses it by raising an ``RpcError``."""
        if not isinstance(msg, dict):
            return _failure(None, InvalidRequest("request must be a JSON object"))
        req_id = msg.get("id", _ABSENT)
        valid_id = isinstance(req_id, (str, int)) and not isinstance(req_id, bool)
        # A float id must survive being echoed: 1e400 is infinity, which JSON cannot write.
        valid_id = valid_id or (isinstance(req_id, float) and math.isfinite(req_id))
        if req_id is not _ABSENT and req_id is not None and not valid_id:
            return _failure(None, InvalidRequest("id: should be a string or a number"))
        reply_id = None if req_id is _ABSENT else req_id
        if isinstance(msg, DuplicateNames):
            # CLN takes the first of a repeated member, Python's json the last: refusing
            # both keeps a proxy that checks "method" from being bypassed.
            dup = InvalidRequest(f"duplicate json names: {', '.join(msg.duplicates)}")
            return _failure(reply_id, dup)
        method = msg.get("method")
        started = time.perf_counter()
        try:
            if msg.get("jsonrpc") != "2.0":
                raise InvalidRequest('jsonrpc: should be "2.0"')
            if not isinstance(method, str):
                raise InvalidRequest("method: should be a string")
            if authorize is not None:
                await authorize(method, msg.get("params"))
            # As lightningd: the filter is checked before the method is looked up.
            template = msg.get("filter", _ABSENT)
            keep = None if template is _ABSENT else jsonfilter.parse(template)
            entry = self.methods.get(method)
            if entry is None:
                raise MethodNotFound(method)
            command, handler = entry
            kwargs = params.bind(command, msg.get("params"))
            result = await handler(**kwargs)
            if keep is not None:
                result = _filtered(keep, result)
        except RpcError as e:
            self._failed(method, e, started)
            # JSON-RPC: an invalid request is answered even without an id (id null); only a
            # valid notification goes unanswered.
            if req_id is _ABSENT and not isinstance(e, InvalidRequest):
                return Answer(None, e)
            return _failure(reply_id, e)
        except RecursionError:
            # A value nested just below the parser's limit can still exhaust the stack
            # while being checked or quoted: the request is at fault, not the server.
            bad = InvalidRequest("malformed request: nested too deeply")
            self._failed(method, bad, started)
            return _failure(reply_id, bad)
        except Exception:
            # A bug must not take the connection down, and must not look like success.
            log.exception("internal error in %s", oneline(method))
            err = InternalError("internal error (see the server log)")
            self._failed(method, err, started)
            return Answer(None, err) if req_id is _ABSENT else _failure(reply_id, err)
        if self.metrics is not None:
            self.metrics.requests.labels(method, "ok").inc()
            self.metrics.latency.labels(method).observe(time.perf_counter() - started)
        if req_id is _ABSENT:
            return Answer(None, None)
        return Answer({"jsonrpc": "2.0", "id": req_id, "result": result}, None)

    def _failed(self, method: Any, err: RpcError, started: float) -> None:
        # One line per failed request: which method, which code, what was wrong. The
        # message names a parameter and its token; secrets never pass through here.
        # At a bounded rate per kind of failure (a flood of forged runes is one kind), and
        # the message escaped to one printable line: it can quote a client's parameter name.
        name = method if isinstance(method, str) and method in self.methods else "-"
        lograte.CLIENT_LINES.log(
            log,
            logging.INFO,
            type(err).__name__,
            "request failed: method=%s code=%d %s",
            name,
            err.code,
            oneline(err.message, MAX_LOGGED),
        )
        if self.metrics is not None:
            self.metrics.requests.labels(name, str(err.code)).inc()
            self.metrics.latency.labels(name).observe(time.perf_counter() - started)

    async def answer_bytes(self, raw: bytes, authorize: Authorize | None = None) -> Answer:
        """One request or a batch, as bytes. The reply is an object, a list of them
        (batch) or None when nothing is owed; ``error`` is set for a single request that
        failed (a batch's elements carry their own errors)."""
        try:
            value = parse(raw)
        except InvalidRequest as e:
            return _failure(find_id(raw), e)
        if isinstance(value, list):
            if not value:
                return _failure(None, InvalidRequest("empty batch"))
            if len(value) > MAX_BATCH:
                return _failure(None, InvalidRequest(f"batch larger than {MAX_BATCH} requests"))
            return Answer(BatchReply(self._batch(value, authorize)), None)
        return await self.answer(value, authorize)

    async def _batch(self, msgs: list[Any], authorize: Authorize | None) -> AsyncIterator[bytes]:
        """A batch's replies, encoded one by one, in order, within ``MAX_REPLY_BYTES``; run
        as the reply is written (nothing at all for a batch of notifications).

        The event loop gets a turn between steps, so a long batch never stalls the other
        clients; once the replies reach the budget, the rest are answered 2003 unrun."""
        used = 0
        done = 0
        opening = b"["
        while done < len(msgs) and used < MAX_REPLY_BYTES:
            group = _next_group(msgs, done)
            # gather keeps the order; a group is one read, or up to BATCH_GROUP writes.
            answers = await _answer_group(self, group, authorize)
            done += len(group)
            for a in answers:
                if a.reply is None:
                    continue
                async for piece in reply_pieces(a.reply):
                    used += len(piece)
                    box = [opening + piece]
                    del piece
                    opening = b""
                    yield box.pop()
                opening = b","
            del answers
            await asyncio.sleep(0)
        if done < len(msgs):
            err = ReplyBudgetExceeded(MAX_REPLY_BYTES, done, len(msgs))
            lograte.CLIENT_LINES.log(
                log,
                logging.INFO,
                "batch stopped",
                "batch stopped at the reply budget: %d of %d requests run",
                done,
                len(msgs),
            )
            for m in msgs[done:]:
                req_id = m.get("id", _ABSENT) if isinstance(m, dict) else None
                if req_id is not _ABSENT:  # a notification is owed nothing
                    yield opening + dumps(error_object(_echoable(req_id), err))
                    opening = b","
        if opening != b"[":
            yield b"]"


def _filtered(keep: jsonfilter.Filter, result: Any) -> Any:
    """``result`` under a ``filter``; a list's records are filtered one by one as they are
    sent (the filter of a list is the filter of each of its records)."""
    if not isinstance(result, paging.Listing):
        return jsonfilter.apply(keep, result)
    key = result.key
    probe = jsonfilter.apply(keep, {key: []})
    if not isinstance(probe.get(key), list) or len(probe) != 1:
        return probe  # the filter leaves the list out (or warns): nothing to read

    def one(record: dict[str, Any]) -> dict[str, Any] | None:
        kept = jsonfilter.apply(keep, {key: [record]}).get(key) or [None]
        return kept[0]  # type: ignore[no-any-return]

    def warning() -> dict[str, Any]:
        # A template that disagrees with the records' shape is seen only on a record (the
        # probe's list is empty); the filter keeps what its walks saw, and lightningd puts
        # the warning after the result's members, as here.
        misuse = jsonfilter.misuse(keep)
        return {} if misuse is None else {"warning_parameter_filter": misuse}

    return result.mapped(one).followed_by(warning)


# --- the batch lane -------------------------------------------------------------------

#: A method's many-at-once form: the bound parameters of several calls -> each call's
#: result, or the exception that call alone failed with, in order.
Many = Callable[[list[dict[str, Any]]], Awaitable[list[Any]]]


class _Lane:
    """The calls of one group of a batch that have a many-at-once form, run together.

    Every element of the group is answered by :meth:`Dispatcher.answer` as a single request
    would be (envelope, rune, parameters, filter, metrics, its own error), except that its
    handler, instead of running the call alone, leaves the bound parameters here and waits.
    Once every element has either done so or finished without reaching its handler (an
    error, another method), the waiting calls run as one call of their many-at-once form:
    for ``invoicerequest``, one crossing into the core for every signature and one commit.
    """

    def __init__(self, size: int) -> None:
        self.open = size  # elements neither waiting here nor finished
        self.waiting: dict[Many, list[tuple[dict[str, Any], asyncio.Future[Any]]]] = {}
        self.entered: set[asyncio.Task[Any] | None] = set()
        self.runs: set[asyncio.Task[None]] = set()

    async def element(self, answering: Awaitable[Answer]) -> Answer:
        try:
            return await answering
        finally:
            if asyncio.current_task() not in self.entered:
                self._arrived()

    async def call(self, many: Many, kwargs: dict[str, Any]) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(many, []).append((kwargs, fut))
        self.entered.add(asyncio.current_task())
        self._arrived()
        return await fut

    def _arrived(self) -> None:
        self.open -= 1
        if self.open:
            return
        for many, calls in self.waiting.items():
            task = asyncio.get_running_loop().create_task(self._run(many, calls))
            self.runs.add(task)
            task.add_done_callback(self.runs.discard)
        self.waiting = {}

    @staticmethod
    async def _run(many: Many, calls: list[tuple[dict[str, Any], asyncio.Future[Any]]]) -> None:
        try:
            outcomes = await many([kwargs for kwargs, _ in calls])
        except Exception as e:  # a bug in the many-at-once form: every call gets it
            outcomes = [e] * len(calls)
        for (_, fut), outcome in zip(calls, outcomes, strict=True):
            if fut.done():
                continue
            if isinstance(outcome, BaseException):
                fut.set_exception(outcome)
            else:
                fut.set_result(outcome)


#: The lane of the batch group being answered (None outside a batch: calls run alone).
_LANE: contextvars.ContextVar[_Lane | None] = contextvars.ContextVar("invreq_lane", default=None)


def laned(one: Handler, many: Many) -> Handler:
    """A handler that runs alone, or, inside a batch's group, in that group's lane."""

    async def handler(**kwargs: Any) -> Any:
        lane = _LANE.get()
        if lane is None:
            return await one(**kwargs)
        return await lane.call(many, kwargs)

    return handler


async def _answer_group(
    dispatcher: Dispatcher, group: list[Any], authorize: Authorize | None
) -> list[Answer]:
    """A batch's group, in order: a lone element as a single request, several through a
    lane (every element's task copies the context that holds it)."""
    if len(group) == 1:
        return [await dispatcher.answer(group[0], authorize)]
    lane = _Lane(len(group))
    token = _LANE.set(lane)
    try:
        return await asyncio.gather(*(lane.element(dispatcher.answer(m, authorize)) for m in group))
    finally:
        _LANE.reset(token)


def _next_group(msgs: list[Any], first: int) -> list[Any]:
    """The batch elements to run together from ``first``: a run of writes, or one read."""
    end = first
    while end < len(msgs) and end - first < BATCH_GROUP and _shares_commits(msgs[end]):
        end += 1
    return msgs[first : max(end, first + 1)]


def _shares_commits(msg: Any) -> bool:
    return isinstance(msg, dict) and msg.get("method") in _SHARES_COMMITS


def _echoable(req_id: Any) -> Any:
    """The id as a reply may carry it (None when it is not a valid JSON-RPC id)."""
    valid = isinstance(req_id, (str, int)) and not isinstance(req_id, bool)
    valid = valid or (isinstance(req_id, float) and math.isfinite(req_id))
    return req_id if valid else None


def build_dispatcher(
    service: Service,
    metrics: Metrics | None = None,
    auth: RuneAuthority | None = None,
    receiver: Receiver | None = None,
    events: Events | None = None,
) -> Dispatcher:
    methods: dict[str, tuple[params.Command, Handler]] = {
        params.INVOICEREQUEST.name: (
            params.INVOICEREQUEST,
            laned(service.invoicerequest, service.invoicerequests),
        ),
        params.LISTINVOICEREQUESTS.name: (params.LISTINVOICEREQUESTS, service.listinvoicerequests),
        params.DISABLEINVOICEREQUEST.name: (
            params.DISABLEINVOICEREQUEST,
            service.disableinvoicerequest,
        ),
        params.DECODE.name: (params.DECODE, service.decode),
        params.GETINFO.name: (params.GETINFO, service.getinfo),
        params.NOTIFICATIONS.name: (params.NOTIFICATIONS, _notifications),
    }
    if receiver is not None:
        methods[params.RECEIVEINVOICE.name] = (params.RECEIVEINVOICE, receiver.receiveinvoice)
        methods[params.LISTPAYMENTS.name] = (params.LISTPAYMENTS, receiver.listpayments)
        methods[params.RESOLVEPAYMENT.name] = (
            params.RESOLVEPAYMENT,
            receiver.reconciler.resolvepayment,
        )
    if events is not None:
        methods[params.WAIT.name] = (params.WAIT, events.wait)
        methods[params.LISTEVENTS.name] = (params.LISTEVENTS, events.listevents)
    if auth is not None:
        methods[params.CREATERUNE.name] = (params.CREATERUNE, auth.createrune)
        methods[params.SHOWRUNES.name] = (params.SHOWRUNES, auth.showrunes)
        methods[params.BLACKLISTRUNE.name] = (params.BLACKLISTRUNE, auth.blacklistrune)
        methods[params.CHECKRUNE.name] = (params.CHECKRUNE, auth.checkrune)
    dispatcher = Dispatcher(methods, metrics)

    async def help_(command: str | None = None) -> dict[str, Any]:
        # lightningd's answer: usage lines, and the hint that makes lightning-cli print
        # them one per line instead of as JSON.
        if command is not None and command not in dispatcher.methods:
            raise HelpUnknownCommand(command)
        entries = help_entries(dispatcher, command)
        return {"help": [{"command": e["command"]} for e in entries], "format-hint": "simple"}

    methods[params.HELP.name] = (params.HELP, help_)
    return dispatcher


async def _notifications(enable: bool | None = None) -> dict[str, Any]:
    # lightning-cli asks before every call and reads the answer into a 100-byte buffer.
    return {}


def help_entries(dispatcher: Dispatcher, only: str | None) -> list[dict[str, Any]]:
    commands = [c for c, _ in dispatcher.methods.values()]
    if only is not None:
        commands = [c for c in commands if c.name == only]
        if not commands:
            raise MethodNotFound(only)
    return [
        {
            "command": c.usage,
            "category": c.category,
            "description": c.description,
            "verbose": "\n".join(
                [c.description]
                + [
                    f"  {p.name} ({p.kind}{'' if p.required else ', optional'}): {p.doc}"
                    for p in c.params
                ]
            ),
        }
        for c in commands
    ]
