"""Runes and clnrest-compatible REST against a real `invreq serve` (HTTP on loopback), and
HTTPS with the certificate made on first start."""

from __future__ import annotations

import json
import os
import ssl
import stat
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from _service_fixtures import Server
from invreq import bolt12
from invreq.config import Config
from pyln.client import RpcError


def http(
    s: Server,
    path: str,
    body: Any = None,
    rune: str | None = None,
    method: str = "POST",
    scheme: str = "http",
    context: ssl.SSLContext | None = None,
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        f"{scheme}://127.0.0.1:{s.http_port}{path}", data=data, method=method
    )
    req.add_header("Content-Type", "application/json")
    if rune is not None:
        req.add_header("Rune", rune)
    try:
        with urllib.request.urlopen(req, timeout=10, context=context) as r:
            raw = r.read()
            status = r.status
            ctype = r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        raw, status, ctype = e.read(), e.code, e.headers.get("Content-Type", "")
    if "json" in ctype:
        return status, json.loads(raw)
    return status, raw.decode()


@pytest.fixture
def srv(tmp_path: Path) -> Any:
    s = Server(tmp_path / "data").start()
    yield s
    assert s.stop() == 0, s.output()


def make_rune(s: Server, restrictions: Any = None) -> str:
    params = {} if restrictions is None else {"restrictions": restrictions}
    return str(s.rpc.call("createrune", params)["rune"])


def test_rest_call_statuses(srv: Server) -> None:
    rune = make_rune(srv)
    status, r = http(srv, "/v1/invoicerequest", {"amount": "10sat", "description": "rest"}, rune)
    assert status == 201 and list(r) == [
        "invreq_id",
        "active",
        "single_use",
        "bolt12",
        "bolt12_unsigned",
        "used",
        "page_url",  # HTTP is on: the payee page's address
    ]
    assert bolt12.decode_invoice_request(r["bolt12"]).description == "rest"
    assert http(srv, "/v1/getinfo", None, rune)[0] == 201  # no body: no parameters
    status, r = http(srv, "/v1/invoicerequest", {"amount": "10sat", "description": "x"})
    assert status == 403 and r == {"code": 1501, "message": "Not authorized: Missing rune"}
    status, r = http(srv, "/v1/invoicerequest", {"amount": 1, "description": "x"}, "Zm9v")
    assert status == 401 and r["code"] == 1501
    status, r = http(srv, "/v1/invoicerequest", {"amount": 0, "description": "x"}, rune)
    assert status == 500 and r["code"] == -32602 and r["message"].startswith("amount:")
    status, r = http(srv, "/v1/nosuchmethod", {}, rune)
    assert status == 500 and r == {"code": -32601, "message": "Unknown command 'nosuchmethod'"}
    status, r = http(srv, "/v1/invoicerequest", [1000, "positional"], rune)
    assert status == 500 and r["code"] == -32602
    assert http(srv, "/v1/invoicerequest", None, rune, method="GET")[0] == 405
    assert http(srv, "/v1/invoicerequest", None, rune, method="PUT")[0] == 405
    assert len(srv.rpc.call("listinvoicerequests")["invoicerequests"]) == 1


def test_restrictions_method_params_and_rate(srv: Server) -> None:
    only_create = make_rune(srv, ["method=invoicerequest", "pnameamount<100001"])
    status, _ = http(
        srv, "/v1/invoicerequest", {"amount": 100000, "description": "ok"}, only_create
    )
    assert status == 201
    status, r = http(srv, "/v1/invoicerequest", {"amount": 100001, "description": "x"}, only_create)
    assert status == 401 and r["code"] == 1502 and r["message"].startswith("Not permitted: ")
    status, r = http(srv, "/v1/listinvoicerequests", {}, only_create)
    assert status == 401 and "method" in r["message"]
    either = make_rune(srv, [["method=getinfo", "method=listinvoicerequests"]])
    assert http(srv, "/v1/getinfo", {}, either)[0] == 201
    assert http(srv, "/v1/listinvoicerequests", {}, either)[0] == 201
    assert http(srv, "/v1/invoicerequest", {"amount": 1, "description": "x"}, either)[0] == 401
    # CLN's rate=2: 30 s from the last call that passed (tests/test_rune_store.py has the
    # clock-driven cases).
    limited = make_rune(srv, ["rate=2"])
    assert [http(srv, "/v1/getinfo", {}, limited)[0] for _ in range(3)] == [201, 401, 401]


def test_restricting_an_existing_rune_keeps_its_id_and_blacklisting_stops_it(srv: Server) -> None:
    made = srv.rpc.call("createrune", {})
    assert "warning_unrestricted_rune" in made
    narrowed = srv.rpc.call("createrune", {"rune": made["rune"], "restrictions": "method=getinfo"})
    assert (
        narrowed["unique_id"] == made["unique_id"] and "warning_unrestricted_rune" not in narrowed
    )
    assert http(srv, "/v1/getinfo", {}, narrowed["rune"])[0] == 201
    assert http(srv, "/v1/listinvoicerequests", {}, narrowed["rune"])[0] == 401
    other = srv.rpc.call("createrune", {"restrictions": ["method=getinfo"]})
    assert int(other["unique_id"]) == int(made["unique_id"]) + 1
    bl = srv.rpc.call("blacklistrune", {"start": int(made["unique_id"])})
    assert bl == {"blacklist": [{"start": int(made["unique_id"]), "end": int(made["unique_id"])}]}
    status, r = http(srv, "/v1/getinfo", {}, made["rune"])
    assert status == 401 and r == {"code": 1501, "message": "Not authorized: Blacklisted rune"}
    assert http(srv, "/v1/getinfo", {}, other["rune"])[0] == 201


def test_showrunes_and_checkrune(srv: Server) -> None:
    rune = make_rune(srv, ["method=invoicerequest", ["pnamelabel^atm", "pnum<2"]])
    shown = srv.rpc.call("showrunes", {})["runes"]
    assert len(shown) == 1 and shown[0]["rune"] == rune and shown[0]["unique_id"] == "0"
    assert shown[0]["restrictions_as_english"] == (
        "method equal to invoicerequest AND pnamelabel starts with atm OR pnum less than 2"
    )
    ok = srv.rpc.call(
        "checkrune",
        {
            "rune": rune,
            "method": "invoicerequest",
            "params": {"amount": 1, "description": "d", "label": "atm-1"},
        },
    )
    assert ok == {"valid": True}
    with pytest.raises(RpcError) as e:
        srv.rpc.call(
            "checkrune",
            {
                "rune": rune,
                "method": "invoicerequest",
                "params": {"amount": 1, "description": "d", "label": "x"},
            },
        )
    assert e.value.error["code"] == 1502
    foreign = srv.rpc.call("showrunes", {"rune": rune})["runes"][0]
    assert "stored" not in foreign


def test_list_methods_and_swagger(srv: Server) -> None:
    status, text = http(srv, "/v1/list-methods", method="GET")
    assert status == 200 and "Command: invoicerequest amount description [issuer]" in text
    status, spec = http(srv, "/swagger.json", method="GET")
    assert status == 200 and spec["openapi"].startswith("3.")
    op = spec["paths"]["/v1/invoicerequest"]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["amount", "description"]
    assert set(schema["properties"]) == {
        "amount",
        "description",
        "issuer",
        "label",
        "absolute_expiry",
        "single_use",
        "max_payouts",
        "payout_window",
    }


def test_rune_secret_is_owner_only(srv: Server) -> None:
    mode = stat.S_IMODE(os.stat(srv.data_dir / "regtest" / "rune_secret").st_mode)
    assert mode == 0o600


def test_https_with_the_certificate_made_on_first_start(tmp_path: Path) -> None:
    s = Server(tmp_path / "data", extra_args=["--http-tls"]).start()
    try:
        cert = tmp_path / "data" / "regtest" / "tls.crt"
        assert stat.S_IMODE(os.stat(cert.with_name("tls.key")).st_mode) == 0o600
        ctx = ssl.create_default_context(cafile=str(cert))
        rune = make_rune(s)
        status, r = http(s, "/v1/getinfo", {}, rune, scheme="https", context=ctx)
        assert status == 201 and r["network"] == "regtest"
        with pytest.raises(urllib.error.URLError):
            http(s, "/v1/getinfo", {}, rune, scheme="https", context=ssl.create_default_context())
    finally:
        assert s.stop() == 0, s.output()


def test_non_loopback_needs_tls() -> None:
    Config(http_host="0.0.0.0", http_tls=True).validate()
    with pytest.raises(ValueError, match="add --http-tls"):
        Config(http_host="0.0.0.0").validate()
