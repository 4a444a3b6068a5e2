"""Logs that no client can flood or forge (issue 25), against a real `invreq serve`.

Refusals (401, 403, malformed requests, failed calls) are logged at most
``lograte.BURST`` lines per ``lograte.WINDOW`` seconds per kind, the next line of a kind
saying how many were left out; before, any string in the ``Rune`` header wrote one line
per request (~430 KiB/s from one client thread). Text from outside is one escaped line.
"""

from __future__ import annotations

import io
import json
import logging
import re
import socket
from pathlib import Path

from _service_fixtures import Server
from invreq import lograte
from invreq.logsetup import OneLineFormatter

#: Every line the service writes starts so (CLN's format, logsetup.FORMAT), or is the
#: start-up announcement, or a traceback line indented under its line.
LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [A-Z]+ |invreq |  \| )")
#: docs/limits.md: a flood of refusals of one kind adds at most this to the log per WINDOW
#: (BURST lines of at most ~400 bytes: the fixed text and a 300-character message).
FLOOD_BYTES_PER_WINDOW = lograte.BURST * 400


def keepalive_posts(server: Server, requests: list[bytes]) -> list[int]:
    """Send ``requests`` (whole HTTP requests) on one keep-alive connection; the statuses."""
    statuses = []
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=30) as c:
        f = c.makefile("rb")
        for r in requests:
            c.sendall(r)
            status = int(f.readline().split()[1])
            length = 0
            while (line := f.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            f.read(length)
            statuses.append(status)
    return statuses


def post(path: str, rune: str | None, body: object) -> bytes:
    data = json.dumps(body).encode()
    head = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" % path.encode()
    if rune is not None:
        head += b"Rune: %s\r\n" % rune.encode()
    return head + b"Content-Length: %d\r\n\r\n" % len(data) + data


def test_a_flood_of_refusals_grows_the_log_by_a_few_lines_per_kind(tmp_path: Path) -> None:
    server = Server(tmp_path / "data").start()
    try:
        rune = server.rpc.call("createrune")["rune"]
        size_before = len(server.output().encode())
        call = {"jsonrpc": "2.0", "id": 1, "method": "getinfo"}
        n = 1500
        # Forged runes (401), no rune (403), a valid rune with bad parameters (a failed
        # call), malformed JSON: four kinds, n requests each.
        forged = [post("/rpc", f"forged-{i}", call) for i in range(n)]
        assert set(keepalive_posts(server, forged)) == {401}
        assert set(keepalive_posts(server, [post("/rpc", None, call)] * n)) == {403}
        bad = {"jsonrpc": "2.0", "id": 1, "method": "invoicerequest", "params": {"amount": -1}}
        assert set(keepalive_posts(server, [post("/rpc", rune, bad)] * n)) == {200}
        junk = b"POST /rpc HTTP/1.1\r\nHost: x\r\nRune: %s\r\nContent-Length: 3\r\n\r\n{{{"
        assert set(keepalive_posts(server, [junk % rune.encode()] * n)) == {200}
        grown = len(server.output().encode()) - size_before
        # Four kinds (and 401's kind is one, however many different runes): within one
        # window each wrote at most BURST lines.
        assert grown <= 4 * FLOOD_BYTES_PER_WINDOW, server.output()[-3000:]
        failed = [ln for ln in server.output().splitlines() if "request failed" in ln]
        assert 4 <= len(failed) <= 4 * lograte.BURST
        assert server.stop() == 0
    finally:
        server.kill()


def test_the_next_line_of_a_kind_says_how_many_were_left_out() -> None:
    clock = [0.0]
    lines = lograte.PerKind(burst=2, clock=lambda: clock[0])
    out = io.StringIO()
    logger = logging.getLogger("test_logs.perkind")
    logger.propagate = False
    handler = logging.StreamHandler(out)
    logger.addHandler(handler)
    try:
        for _ in range(5):
            lines.log(logger, logging.WARNING, "NotAuthorized", "refused")
        lines.log(logger, logging.WARNING, "other kind", "other")
        clock[0] = lograte.WINDOW
        lines.log(logger, logging.WARNING, "NotAuthorized", "refused")
    finally:
        logger.removeHandler(handler)
    assert out.getvalue().splitlines() == [
        "refused",
        "refused",
        "other",
        "refused (3 similar lines left out)",
    ]


def test_a_line_feed_in_a_parameter_name_is_one_escaped_line(tmp_path: Path) -> None:
    server = Server(tmp_path / "data").start()
    try:
        forged = "2026-01-01T00:00:00.000Z INFO  invreq.server: forged"
        with socket.socket(socket.AF_UNIX) as c:
            c.settimeout(30)
            c.connect(str(server.socket_path))
            params = {"amount": 1000, "description": "x", "a\n" + forged: 1}
            c.sendall(
                json.dumps(
                    {"jsonrpc": "2.0", "id": 1, "method": "invoicerequest", "params": params}
                ).encode()
            )
            reply = json.loads(c.recv(65536))
        assert reply["error"]["code"] == -32602
        out = server.output()
        assert not any(line.startswith(forged) for line in out.splitlines())
        assert "a\\u{a}" + forged in out
        assert all(LINE.match(line) for line in out.splitlines()), out
        assert server.stop() == 0
    finally:
        server.kill()


def test_no_log_line_ever_carries_a_raw_control_character() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(OneLineFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("test_logs.formatter")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("a\nINFO forged %s", "\x1b[31m\r\u202e\u2028\x85")
        try:
            raise ValueError("bad\nINFO forged by an exception message")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert lines[0] == "WARNING a\\u{a}INFO forged \\u{1b}[31m\\u{d}\\u{202e}\\u{2028}\\u{85}"
    assert lines[1] == "ERROR failed"
    assert all(line.startswith("  | ") for line in lines[2:])
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e]", out.getvalue())
