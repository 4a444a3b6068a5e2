"""Hostile input against a real `invreq serve`: the corpus in hostile/cases.json, slow clients,
many connections.

Every case of the corpus is sent as raw bytes over its transport (the unix socket as CLN
clients use it, or an HTTP POST to /rpc), and three things are checked, most severe first:
the server still answers `getinfo`, nothing was stored (a refused call stores nothing,
docs/commands.md), and the reply carries the documented error code (docs/commands.md, errors
table) and, where the contract names it, the start of the message (the parameter name for
-32602, `Unknown command '` for -32601). Incidental wording, such as the exact -32600 texts,
is not asserted.

The corpus format, one JSON object per case:

- ``name``: unique; ``transport``: ``unix`` or ``http``; ``why``: optional note.
- the bytes: ``payload_text`` (sent as UTF-8), ``payload_hex``, or ``payload_parts`` (a list of
  ``[text, count]`` pairs, each text repeated count times, for the big payloads).
- ``expect``: ``code`` (an int, or a list of acceptable ints) with an optional
  ``message_startswith``; or for a batch ``batch_codes`` (one code per reply, in order) or
  ``batch_all`` and ``batch_len``; ``http_status`` (default 200, HTTP only).
- ``xfail``: a known product bug; the case is expected to fail (strictly) for that reason.

A module-scoped server per store (SQLite and PostgreSQL) keeps the run short: starting a
server per case would cost more than all the cases together. HTTP calls carry an unrestricted
rune made on the unix socket (`createrune`), so the payload reaches the dispatcher instead of
stopping at the missing-rune 403; a server without runes gets no header.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _service_fixtures import STORES, Server, raw_exchange, request
from invreq import params
from invreq.rpc import MAX_NESTING
from pyln.client import RpcError

CASES_PATH = Path(__file__).parent / "hostile" / "cases.json"
CASES: list[dict[str, Any]] = json.loads(CASES_PATH.read_text())
#: How long one case may take to be answered; all answers take milliseconds.
REPLY_TIMEOUT = 5.0
#: "Served immediately" for a call made while other clients misbehave.
PROMPT = 2.0


# --- helpers ------------------------------------------------------------------------------


def payload(case: dict[str, Any]) -> bytes:
    if "payload_text" in case:
        return str(case["payload_text"]).encode()
    if "payload_hex" in case:
        return bytes.fromhex(case["payload_hex"])
    return "".join(text * count for text, count in case["payload_parts"]).encode()


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_json(raw: bytes) -> Any:
    """JSON as RFC 8259 has it: strict UTF-8, no NaN or Infinity (json.loads takes both)."""
    return json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)


@dataclasses.dataclass
class Target:
    """The server under attack and the rune its HTTP door wants (None: it wants none)."""

    s: Server
    rune: str | None


def post(t: Target, body: bytes, timeout: float = REPLY_TIMEOUT) -> tuple[int, str, bytes]:
    """POST to /rpc: (status, content type, body), whatever the status."""
    headers = {"Content-Type": "application/json"}
    if t.rune is not None:
        headers["Rune"] = t.rune
    req = urllib.request.Request(t.s.url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers.get_content_type(), resp.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers.get_content_type(), e.read()


def count(s: Server) -> int:
    return len(s.rpc.call("listinvoicerequests")["invoicerequests"])


def assert_alive(s: Server) -> None:
    assert s.proc is not None and s.proc.poll() is None, f"the server died:\n{s.output()[-3000:]}"
    assert s.rpc.call("getinfo")["network"] == "regtest"


def unix_connect(s: Server) -> socket.socket:
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # Connect blocking: a non-blocking unix connect fails with EAGAIN (instead of waiting)
    # while the listen backlog is full, which a burst of connections can reach.
    c.connect(str(s.socket_path))
    c.settimeout(REPLY_TIMEOUT)
    return c


def read_replies(c: socket.socket, n: int) -> list[Any]:
    """Read n replies (each ends with a blank line) from a unix-socket connection."""
    buf = b""
    out: list[Any] = []
    while len(out) < n:
        while b"\n\n" not in buf:
            data = c.recv(65536)
            assert data, f"connection closed after {len(out)} of {n} replies"
            buf += data
        one, buf = buf.split(b"\n\n", 1)
        out.append(strict_json(one))
    return out


def ir(amount: Any, description: Any = "x", id: int = 1) -> bytes:
    return request("invoicerequest", {"amount": amount, "description": description}, id=id)


def make_rune(s: Server) -> str | None:
    try:
        return str(s.rpc.call("createrune")["rune"])
    except RpcError as e:
        if isinstance(e.error, dict) and e.error.get("code") == -32601:
            return None  # a server without HTTP authentication
        raise


@pytest.fixture(scope="module", params=STORES)
def hostile(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    """One server per store for the whole module (cases must leave it as they found it)."""
    db = None if request.param == "sqlite" else request.getfixturevalue("postgres").new_database()
    s = Server(tmp_path_factory.mktemp(f"hostile-{request.param}") / "data", db=db).start()
    try:
        yield Target(s, make_rune(s))
    finally:
        code = s.stop() if s.proc is not None and s.proc.poll() is None else -1
        assert code == 0, f"server exited with {code}: {s.output()[-3000:]}"


# --- the corpus itself ---------------------------------------------------------------------

COMMANDS_UNDER_TEST = (
    params.INVOICEREQUEST,
    params.LISTINVOICEREQUESTS,
    params.DISABLEINVOICEREQUEST,
    params.DECODE,
)


def test_every_corpus_case_is_well_formed_and_uniquely_named() -> None:
    """A malformed case would be replayed as something else than its name says."""
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names)), "duplicate case names"
    for c in CASES:
        assert c["transport"] in ("unix", "http"), c["name"]
        forms = [k for k in ("payload_text", "payload_hex", "payload_parts") if k in c]
        assert len(forms) == 1, f"{c['name']}: exactly one payload form, got {forms}"
        e = c["expect"]
        single = "code" in e
        batch = "batch_codes" in e or ("batch_all" in e and "batch_len" in e)
        assert single != batch, f"{c['name']}: expect a code or a batch, not both or neither"
        assert set(e) <= {
            "code",
            "message_startswith",
            "http_status",
            "batch_codes",
            "batch_all",
            "batch_len",
        }, c["name"]
        assert c["transport"] == "http" or "http_status" not in e, c["name"]
        assert set(c) <= {
            "name",
            "transport",
            "payload_text",
            "payload_hex",
            "payload_parts",
            "expect",
            "why",
            "xfail",
        }, c["name"]


def test_the_corpus_has_a_wrong_type_case_for_every_parameter_of_the_four_commands() -> None:
    """Derived from the parameter tables, so a parameter added later needs its case here."""
    names = {c["name"] for c in CASES}
    for command in COMMANDS_UNDER_TEST:
        for p in command.params:
            prefix = f"{command.name}-{p.name}-as-"
            by_name = [n for n in names if n.startswith(prefix) and not n.endswith("by-position")]
            by_position = [n for n in names if n.startswith(prefix) and n.endswith("by-position")]
            assert len(by_name) >= 4, f"{prefix}*: only {by_name}"
            assert by_position, f"{prefix}*-by-position is missing"


def test_the_corpus_covers_both_transports_and_the_documented_codes() -> None:
    transports = {c["transport"] for c in CASES}
    codes: set[int] = set()
    for c in CASES:
        e = c["expect"]
        code = e.get("code", e.get("batch_all"))
        codes.update(code if isinstance(code, list) else [code] if code is not None else [])
        codes.update(e.get("batch_codes", []))
    assert transports == {"unix", "http"}
    assert {-32600, -32601, -32602, -1} <= codes


# --- replaying the corpus ------------------------------------------------------------------


def _exchange(t: Target, case: dict[str, Any]) -> tuple[int | None, Any, str]:
    """Send one case; (HTTP status or None, parsed reply or None, what happened in words)."""
    data = payload(case)
    if case["transport"] == "unix":
        try:
            replies = raw_exchange(t.s.socket_path, [data], 1, timeout=REPLY_TIMEOUT)
        except TimeoutError:
            return None, None, f"no reply within {REPLY_TIMEOUT} s on the unix socket"
        except ConnectionError as e:
            return None, None, f"connection error on the unix socket: {e!r}"
        if not replies:
            return None, None, "the unix socket was closed without a reply"
        return None, replies[0], "one reply on the unix socket"
    status, ctype, body = post(t, data)
    if not body:
        return status, None, f"HTTP {status} with an empty body"
    try:
        return status, strict_json(body), f"HTTP {status} {ctype}"
    except ValueError:
        return status, None, f"HTTP {status} {ctype}, not JSON: {body[:200]!r}"


def _check_error(reply: Any, code: int | list[int], prefix: str | None, what: str) -> None:
    assert isinstance(reply, dict), f"expected one error object, got {what}: {reply!r}"[:2000]
    assert reply.get("jsonrpc") == "2.0" and "result" not in reply, repr(reply)[:2000]
    err = reply.get("error")
    assert isinstance(err, dict) and isinstance(err.get("message"), str), repr(reply)[:2000]
    codes = code if isinstance(code, list) else [code]
    assert err.get("code") in codes, f"code {err.get('code')} not in {codes}: {err}"[:2000]
    if prefix is not None:
        assert err["message"].startswith(prefix), f"{err['message']!r} lacks {prefix!r}"[:2000]


def _check_expectation(case: dict[str, Any], status: int | None, reply: Any, what: str) -> None:
    e = case["expect"]
    if case["transport"] == "http":
        assert status == e.get("http_status", 200), what
    if "code" in e:
        _check_error(reply, e["code"], e.get("message_startswith"), what)
        return
    assert isinstance(reply, list), f"expected a batch reply, got {what}: {reply!r}"[:2000]
    codes = e.get("batch_codes") or [e["batch_all"]] * e["batch_len"]
    assert len(reply) == len(codes), f"{len(reply)} replies for {len(codes)} expected"
    for one, code in zip(reply, codes, strict=True):
        _check_error(one, code, None, what)


def _case_param(case: dict[str, Any]) -> Any:
    marks = []
    if "xfail" in case:
        marks.append(pytest.mark.xfail(strict=True, reason=case["xfail"]))
    return pytest.param(case, id=case["name"], marks=marks)


@pytest.mark.parametrize("case", [_case_param(c) for c in CASES])
def test_a_hostile_request_is_refused_with_its_documented_code_and_stores_nothing(
    hostile: Target, case: dict[str, Any]
) -> None:
    """Each corpus case: the server survives, stores nothing and answers as documented."""
    s = hostile.s
    before = count(s)
    status, reply, what = _exchange(hostile, case)
    if s.proc is not None and s.proc.poll() is not None:
        s.start()  # let the following cases run against a live server
        pytest.fail(f"the server died on this case ({what})")
    assert_alive(s)
    assert count(s) == before, f"a refused request stored something ({what}: {reply!r})"[:2000]
    _check_expectation(case, status, reply, what)


# --- sweeps the corpus cannot express -------------------------------------------------------


def _nested_amount(depth: int) -> bytes:
    head = (
        b'{"jsonrpc":"2.0","id":%d,"method":"invoicerequest","params":{"description":"x",' % depth
    )
    return head + b'"amount":' + b"[" * depth + b"]" * depth + b"}}"


def test_nesting_is_refused_by_its_own_limit_whatever_the_python(hostile: Target) -> None:
    """Depths 90..1000 in one sweep: up to ``MAX_NESTING`` levels the amount is parsed and
    refused (-32602), deeper the request is refused before parsing (-32600 naming the
    limit). Without the explicit limit the answer moved with the interpreter: CPython 3.11's
    parser gives up near 1000 levels (RecursionError), 3.12 and 3.13 parse far deeper."""
    depths = [*range(90, 111), *range(900, 1001)]
    before = count(hostile.s)
    with unix_connect(hostile.s) as c:
        c.sendall(b"".join(_nested_amount(d) for d in depths))
        unix = read_replies(c, len(depths))
    over_http = [strict_json(post(hostile, _nested_amount(d))[2]) for d in depths]
    assert_alive(hostile.s)
    assert count(hostile.s) == before
    too_deep = f"malformed request: nested deeper than {MAX_NESTING} levels"
    wrong = [
        (transport, r["id"], r["error"])
        for transport, replies in (("unix", unix), ("http", over_http))
        for r in replies
        # The request object and params are two levels; the amount holds the rest.
        if (r["error"]["code"], r["error"]["message"] == too_deep)
        != ((-32602, False) if r["id"] + 2 <= MAX_NESTING else (-32600, True))
    ]
    assert not wrong, wrong


@pytest.mark.parametrize("transport", ["unix", "http"])
def test_an_id_too_large_for_a_double_still_gets_a_reply_that_is_json(
    hostile: Target, transport: str
) -> None:
    raw = b'{"jsonrpc":"2.0","id":1e400,"method":"getinfo"}'
    if transport == "unix":
        with unix_connect(hostile.s) as c:
            c.sendall(raw)
            buf = b""
            while not buf.endswith(b"\n\n"):
                data = c.recv(65536)
                assert data, "closed without a reply"
                buf += data
    else:
        buf = post(hostile, raw)[2]
    assert_alive(hostile.s)
    strict_json(buf.strip())  # raises ValueError on the Infinity token


# --- slow and idle clients ------------------------------------------------------------------


def timed_getinfo(t: Target) -> float:
    """Seconds for one getinfo on each door."""
    started = time.monotonic()
    assert t.s.rpc.call("getinfo")["network"] == "regtest"
    status, _, body = post(t, request("getinfo"))
    assert status == 200 and "result" in strict_json(body)
    return time.monotonic() - started


def test_a_client_that_connects_and_sends_nothing_does_not_delay_others(
    hostile: Target,
) -> None:
    """An idle connection on either door must not hold up anyone else, and stays usable."""
    s = hostile.s
    with (
        unix_connect(s) as idle_unix,
        socket.create_connection(("127.0.0.1", s.http_port), timeout=REPLY_TIMEOUT) as idle_tcp,
    ):
        time.sleep(0.2)  # both accepted and waiting on their first byte
        assert timed_getinfo(hostile) < PROMPT
        assert timed_getinfo(hostile) < PROMPT
        idle_unix.sendall(request("getinfo", id="late"))
        (late,) = read_replies(idle_unix, 1)
        assert late["id"] == "late" and "result" in late
        assert idle_tcp.fileno() >= 0


def test_a_client_that_stalls_halfway_through_a_request_does_not_delay_others(
    hostile: Target,
) -> None:
    """Half a JSON request on the socket, half an HTTP header, half an HTTP body: each sits in
    its own connection's buffer while everyone else is served; the socket one completes later."""
    s = hostile.s
    full = ir(0, id=41)
    half_header = b"POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: applic"
    half_body = b'POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 200\r\n\r\n{"jsonrpc"'
    with (
        unix_connect(s) as stalled,
        socket.create_connection(("127.0.0.1", s.http_port), timeout=REPLY_TIMEOUT) as header,
        socket.create_connection(("127.0.0.1", s.http_port), timeout=REPLY_TIMEOUT) as body,
    ):
        stalled.sendall(full[: len(full) // 2])
        header.sendall(half_header)
        body.sendall(half_body)
        time.sleep(0.2)
        assert timed_getinfo(hostile) < PROMPT
        created = s.rpc.call("invoicerequest", [1000, "while others stall"])
        stalled.sendall(full[len(full) // 2 :])
        (reply,) = read_replies(stalled, 1)
        assert reply["id"] == 41 and reply["error"]["code"] == -32602
    listed = s.rpc.call("listinvoicerequests", [created["invreq_id"]])["invoicerequests"]
    assert [x["invreq_id"] for x in listed] == [created["invreq_id"]]
    s.rpc.call("disableinvoicerequest", [created["invreq_id"]])


IDLE_CONNECTIONS = 300


def test_300_idle_unix_connections_at_once_do_not_stop_a_normal_call(
    hostile: Target,
) -> None:
    """Every one of them is accepted and kept (each answers afterwards), and a new caller is
    served promptly while they are all open."""
    s = hostile.s
    conns: list[socket.socket] = []
    try:
        for _ in range(IDLE_CONNECTIONS):
            conns.append(unix_connect(s))
        time.sleep(0.2)
        assert timed_getinfo(hostile) < PROMPT
        for i, c in enumerate(conns):
            c.sendall(request("getinfo", id=i))
        for i, c in enumerate(conns):
            (reply,) = read_replies(c, 1)
            assert reply["id"] == i and "result" in reply
    finally:
        for c in conns:
            with contextlib.suppress(OSError):
                c.close()
    assert_alive(s)


#: A stalled upload is not a request in flight: shutdown should not wait on it for long.
SHUTDOWN_BOUND = 5.0


def test_a_client_stalled_in_an_http_body_does_not_hold_up_sigterm(tmp_path: Path) -> None:
    """Its own server: this one is stopped while the stalled client is still connected."""
    s = Server(tmp_path / "data").start()
    half_body = b"POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 200\r\n\r\n{"
    try:
        with socket.create_connection(("127.0.0.1", s.http_port), timeout=REPLY_TIMEOUT) as c:
            c.sendall(half_body)
            time.sleep(0.2)
            started = time.monotonic()
            with contextlib.suppress(subprocess.TimeoutExpired):
                s.stop(timeout=SHUTDOWN_BOUND)
            elapsed = time.monotonic() - started
    finally:
        s.kill()
    assert s.proc is not None
    assert elapsed < SHUTDOWN_BOUND and s.proc.returncode == 0, (elapsed, s.proc.returncode)
