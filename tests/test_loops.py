"""The event loop ``invreq serve`` runs on (invreq.loops, ``--event-loop``).

uvloop is the default where it is installed (a dependency on Linux and macOS); asyncio's
own loop on request or where it is not. Whether every limit holds on both is for the limit
tests themselves: the Makefile runs tests/test_limits.py, test_hostile.py and
test_sqlite_writer.py a second time with INVREQ_EVENT_LOOP=asyncio.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from pathlib import Path

import pytest
from _service_fixtures import Server
from invreq import loops
from invreq.config import Config, ConfigError


def test_uvloop_is_installed_where_it_is_a_dependency() -> None:
    # pyproject.toml: uvloop on Linux and macOS; without it `auto` would quietly be asyncio.
    if sys.platform in ("linux", "darwin"):
        assert loops.available()


def test_auto_is_uvloop_where_installed_unless_the_environment_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(loops.ENV, raising=False)
    assert loops.resolve("auto") == ("uvloop" if loops.available() else "asyncio")
    monkeypatch.setenv(loops.ENV, "asyncio")
    assert loops.resolve("auto") == "asyncio"
    # An explicit option wins over the environment.
    monkeypatch.setenv(loops.ENV, "uvloop")
    assert loops.resolve("asyncio") == "asyncio"


def test_a_bad_choice_is_a_config_error_naming_where_it_came_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(loops.ENV, "trio")
    with pytest.raises(ConfigError, match=r"--event-loop: \$INVREQ_EVENT_LOOP: 'trio' is not one"):
        Config(network="regtest", http_port=0).validate()
    monkeypatch.delenv(loops.ENV)
    with pytest.raises(ConfigError, match=r"--event-loop: 'gevent' is not one of auto, uvloop"):
        Config(network="regtest", http_port=0, event_loop="gevent").validate()


def test_a_bad_choice_on_the_command_line_is_refused_by_the_parser(tmp_path: Path) -> None:
    p = subprocess.run(
        [
            *(sys.executable, "-m", "invreq.cli", "serve", "--data-dir", str(tmp_path)),
            *("--network", "regtest", "--event-loop", "gevent"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2
    assert "--event-loop: invalid choice: 'gevent'" in p.stderr


@pytest.mark.parametrize("choice", ["asyncio", "uvloop"])
def test_serve_runs_on_the_loop_asked_for_and_answers_both_doors(
    tmp_path: Path, choice: str
) -> None:
    args = ["--event-loop", choice, "--log-level", "debug"]
    server = Server(tmp_path / "data", extra_args=args).start()
    try:
        assert f"event loop: {choice}" in server.output()
        rune = server.rpc.call("createrune")["rune"]
        made = server.rpc.call("invoicerequest", {"amount": 1000, "description": "unix"})
        body = {"jsonrpc": "2.0", "id": 1, "method": "listinvoicerequests", "params": {}}
        # http.client: a list reply may come in chunks (it is written as it is read).
        conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
        try:
            conn.request(
                "POST", "/rpc", json.dumps(body), {"Content-Type": "application/json", "Rune": rune}
            )
            resp = conn.getresponse()
            assert resp.status == 200, resp.status
            listed = json.loads(resp.read())["result"]["invoicerequests"]
        finally:
            conn.close()
        assert [r["invreq_id"] for r in listed] == [made["invreq_id"]]
        assert server.stop() == 0
    finally:
        server.kill()
