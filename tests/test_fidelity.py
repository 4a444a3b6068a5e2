"""What CLN's clients see, end to end against a real `invreq serve` process.

lightning-cli itself is not on this machine (not packaged on PyPI or Debian): the raw-socket
tests send the bytes it sends (its request layout, ``{ "jsonrpc" : "2.0", "method" : ...,
"id" : "cli:METHOD#PID", "filter": ..., "params" : ...}``, taken from its source) and check
what it checks (the reply's id, the blank line). pyln-client and HTTP are the real ones.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _service_fixtures import Server, raw_exchange
from invreq.rpc import MAX_REQUEST_BYTES

FILTER = {"invoicerequests": [{"invreq_id": True, "label": True}]}


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path / "data").start()
    try:
        yield s
    finally:
        assert s.stop() == 0, s.output()


def cli_request(method: str, params: Any, *, filter: Any = None, pid: int = 4242) -> bytes:
    """A request laid out byte for byte as lightning-cli writes it."""
    out = f'{{ "jsonrpc" : "2.0", "method" : "{method}", "id" : "cli:{method}#{pid}",'
    if filter is not None:
        out += f'"filter": {json.dumps(filter)},'
    return (out + ' "params" :' + json.dumps(params) + " }").encode()


def rune_for(s: Server) -> str:
    return str(s.rpc.call("createrune")["rune"])


def http(s: Server, body: bytes, rune: str) -> tuple[int, Any]:
    req = urllib.request.Request(s.url, data=body, headers={"Rune": rune}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


# --- filter ---------------------------------------------------------------------------------


def test_filter_on_the_unix_socket_as_lightning_cli_sends_it(srv: Server) -> None:
    a = srv.rpc.call("invoicerequest", {"amount": 1000, "description": "a", "label": "one"})
    b = srv.rpc.call("invoicerequest", {"amount": 2000, "description": "b"})
    (r,) = raw_exchange(srv.socket_path, [cli_request("listinvoicerequests", {}, filter=FILTER)], 1)
    assert r["id"] == "cli:listinvoicerequests#4242"
    assert r["result"] == {
        "invoicerequests": [
            {"invreq_id": a["invreq_id"], "label": "one"},
            {"invreq_id": b["invreq_id"]},
        ]
    }
    # Every method: the filter is applied where replies are made, not per command.
    (r,) = raw_exchange(srv.socket_path, [cli_request("getinfo", {}, filter={"network": True})], 1)
    assert r["result"] == {"network": "regtest"}
    # Errors are not filtered.
    (r,) = raw_exchange(
        srv.socket_path, [cli_request("disableinvoicerequest", ["00" * 32], filter={"x": True})], 1
    )
    assert r["error"] == {"code": -1, "message": "Unknown invoice_request"}


def test_filter_through_pyln_client(srv: Server) -> None:
    made = srv.rpc.call("invoicerequest", {"amount": 1000, "description": "a"})
    got = srv.rpc.call("listinvoicerequests", {}, filter={"invoicerequests": [{"bolt12": True}]})
    assert got == {"invoicerequests": [{"bolt12": made["bolt12"]}]}


def test_filter_misuse_warns_and_a_non_object_filter_is_refused(srv: Server) -> None:
    srv.rpc.call("invoicerequest", {"amount": 1000, "description": "a"})
    wrong = cli_request("listinvoicerequests", {}, filter={"invoicerequests": {"invreq_id": True}})
    (r,) = raw_exchange(srv.socket_path, [wrong], 1)
    assert r["result"] == {
        "invoicerequests": [],
        "warning_parameter_filter": ".invoicerequests is an array",
    }
    # Refused before the method is looked up (as lightningd): the filter error, with the id.
    for method in ("listinvoicerequests", "frobnicate"):
        bad = cli_request(method, {}, filter=["invreq_id"])
        (r,) = raw_exchange(srv.socket_path, [bad], 1)
        assert r["id"] == f"cli:{method}#4242"
        assert r["error"] == {
            "code": -32602,
            "message": "filter: Expected object: invalid token '[\"invreq_id\"]'",
        }
    assert len(srv.rpc.call("listinvoicerequests")["invoicerequests"]) == 1


def test_filter_on_http_rpc_single_and_batch(srv: Server) -> None:
    rune = rune_for(srv)
    made = srv.rpc.call("invoicerequest", {"amount": 1000, "description": "a"})
    one = {
        "jsonrpc": "2.0",
        "id": 5,
        "method": "listinvoicerequests",
        "params": {},
        "filter": FILTER,
    }
    status, r = http(srv, json.dumps(one).encode(), rune)
    assert status == 200 and r["result"] == {"invoicerequests": [{"invreq_id": made["invreq_id"]}]}
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "getinfo", "filter": {"network": True}},
        {"jsonrpc": "2.0", "id": 2, "method": "getinfo", "filter": 7},
        {"jsonrpc": "2.0", "id": 3, "method": "getinfo"},
    ]
    status, rs = http(srv, json.dumps(batch).encode(), rune)
    assert status == 200
    assert rs[0]["result"] == {"network": "regtest"}
    assert rs[1]["error"] == {
        "code": -32602,
        "message": "filter: Expected object: invalid token '7'",
    }
    assert "id" in rs[2]["result"] and "network" in rs[2]["result"]


def test_invreq_call_filter_option(srv: Server) -> None:
    made = srv.rpc.call("invoicerequest", {"amount": 1000, "description": "a"})
    base = [sys.executable, "-m", "invreq.cli", "call", "--rpc-file", str(srv.socket_path)]
    out = subprocess.run(
        [*base, "listinvoicerequests", "-l", '{"invoicerequests":[{"invreq_id":true}]}'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == {"invoicerequests": [{"invreq_id": made["invreq_id"]}]}
    bad = subprocess.run([*base, "--filter", "[1]", "getinfo"], capture_output=True, text=True)
    assert bad.returncode == 1 and json.loads(bad.stdout)["code"] == -32602


# --- oversized and unparseable requests keep their id -----------------------------------------


def test_an_oversized_request_on_the_socket_is_answered_with_its_id(srv: Server) -> None:
    big = cli_request("invoicerequest", {"amount": 1000, "description": "x" * MAX_REQUEST_BYTES})
    replies = raw_exchange(srv.socket_path, [big], 1, timeout=30)
    assert replies[0]["id"] == "cli:invoicerequest#4242"
    assert replies[0]["error"] == {
        "code": -32600,
        "message": f"request larger than {MAX_REQUEST_BYTES} bytes",
    }
    assert srv.rpc.call("listinvoicerequests")["invoicerequests"] == []


def test_a_request_a_real_client_sends_is_far_below_the_limit(srv: Server) -> None:
    # 60000 characters that JSON must escape (6 bytes each): 360 KB, accepted.
    desc = "\x01" * 60000
    raw = cli_request("invoicerequest", {"amount": 0, "description": desc})
    assert 300_000 < len(raw) < MAX_REQUEST_BYTES
    (r,) = raw_exchange(srv.socket_path, [raw], 1, timeout=30)
    assert r["id"] == "cli:invoicerequest#4242" and r["error"]["message"].startswith("amount: ")


def test_an_oversized_http_body_is_answered_413_with_its_id(srv: Server) -> None:
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": "big-1",
            "method": "invoicerequest",
            "params": {"amount": 1000, "description": "x" * MAX_REQUEST_BYTES},
        }
    ).encode()
    status, r = http(srv, body, rune_for(srv))
    assert status == 413 and r["id"] == "big-1" and r["error"]["code"] == -32600


def test_an_unparseable_request_is_answered_with_its_id(srv: Server) -> None:
    raw = b'{"jsonrpc":"2.0","id":7,"method":"getinfo","params":{"x":"\xff"}}'
    (r,) = raw_exchange(srv.socket_path, [raw], 1)
    assert r["id"] == 7 and r["error"]["code"] == -32600
    raw = b'{"jsonrpc":"2.0","id":"a","method":"getinfo","params":[NaN]}'
    (r,) = raw_exchange(srv.socket_path, [raw], 1)
    assert r["id"] == "a" and r["error"]["code"] == -32600


# --- help ---------------------------------------------------------------------------------------


def test_help_as_lightningd_answers_it(srv: Server) -> None:
    (r,) = raw_exchange(srv.socket_path, [cli_request("help", ["invoicerequest"])], 1)
    assert r["result"] == {
        "help": [
            {
                # lightningd's shape; invreq's bound parameters after CLN's (issue 23)
                "command": "invoicerequest amount description [issuer] [label] "
                "[absolute_expiry] [single_use] [max_payouts] [payout_window]"
            }
        ],
        "format-hint": "simple",
    }
    every = srv.rpc.call("help")
    assert every["format-hint"] == "simple"
    assert all(list(e) == ["command"] for e in every["help"])
    (r,) = raw_exchange(srv.socket_path, [cli_request("help", ["frobnicate"])], 1)
    assert r["error"] == {"code": -32601, "message": "Unknown command frobnicate"}
    (r,) = raw_exchange(srv.socket_path, [cli_request("frobnicate", [])], 1)
    assert r["error"] == {"code": -32601, "message": "Unknown command 'frobnicate'"}


# --- the socket: lightning-cli's default name, and rpc-file ------------------------------------


def test_the_default_socket_is_where_lightning_cli_looks(srv: Server) -> None:
    # lightning-cli --lightning-dir=DATA_DIR --network=NETWORK opens DATA_DIR/NETWORK/lightning-rpc.
    path = srv.data_dir / "regtest" / "lightning-rpc"
    (r,) = raw_exchange(path, [cli_request("getinfo", [])], 1)
    assert r["result"]["network"] == "regtest"


class ServerAt(Server):
    """A server whose socket is expected at ``path`` (``--rpc-file``, or a config file)."""

    def __init__(self, data_dir: Path, path: Path, extra_args: list[str]) -> None:
        super().__init__(data_dir, extra_args=extra_args)
        self._path = path

    @property
    def socket_path(self) -> Path:
        return self._path


def test_rpc_file_relative_absolute_and_in_the_config_file(tmp_path: Path) -> None:
    data = tmp_path / "d"
    old = data / "regtest" / "invreq-rpc"
    s = ServerAt(data, old, ["--rpc-file", "invreq-rpc"]).start()
    assert not (data / "regtest" / "lightning-rpc").exists()
    assert s.rpc.call("getinfo")["network"] == "regtest"
    assert s.stop() == 0, s.output()
    absolute = tmp_path / "sock"
    s = ServerAt(data, absolute, ["--rpc-file", str(absolute)]).start()
    assert s.rpc.call("getinfo")["network"] == "regtest"
    assert s.stop() == 0, s.output()
    # The upgrade path: an old install keeps its socket name with one config line, and
    # `invreq call` (reading the same files) follows it.
    (data / "regtest" / "config").write_text("rpc-file=invreq-rpc\n")
    s = ServerAt(data, old, []).start()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "invreq.cli",
            "call",
            "--data-dir",
            str(data),
            "--network",
            "regtest",
            "getinfo",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["network"] == "regtest"
    assert s.stop() == 0, s.output()
