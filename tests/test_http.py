"""The HTTP front door, in process, through aiohttp's test client and a real SQLite file."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from _service_fixtures import STORES, store_url
from aiohttp.test_utils import TestClient, TestServer
from invreq import bolt12
from invreq.config import Config, ConfigError
from invreq.rpc import MAX_REQUEST_BYTES
from invreq.server import DISPATCHER_KEY, create_app


@pytest.fixture(params=STORES)
async def client(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[TestClient[Any, Any]]:
    db = store_url(request, request.param)
    app = create_app(Config(data_dir=tmp_path, network="signet", db=db), unix_socket=False)
    async with TestClient(TestServer(app)) as c:
        # HTTP needs a rune; the unix socket (here: the dispatcher itself) makes one.
        made = await app[DISPATCHER_KEY].handle_value(
            {"jsonrpc": "2.0", "id": 0, "method": "createrune", "params": {}}
        )
        assert made is not None
        RUNES[id(c)] = made["result"]["rune"]
        yield c
        RUNES.pop(id(c))


RUNES: dict[int, str] = {}


async def call(client: TestClient[Any, Any], body: Any) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Rune": RUNES[id(client)]}
    resp = await client.post("/rpc", data=raw, headers=headers)
    text = await resp.read()
    return resp.status, (json.loads(text) if text else None)


def req(method: str, params: Any = None, id: Any = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id, "method": method, "params": params or {}}


async def test_one_request_by_name_and_by_position(client: TestClient[Any, Any]) -> None:
    status, r = await call(client, req("invoicerequest", {"amount": "10sat", "description": "h"}))
    assert status == 200 and r["id"] == 1 and r["jsonrpc"] == "2.0"
    res = r["result"]
    assert list(res) == [
        *["invreq_id", "active", "single_use", "bolt12", "bolt12_unsigned", "used"],
        "page_url",
    ]
    d = bolt12.decode_invoice_request(res["bolt12"])
    assert d.amount_msat == 10_000 and d.chain == bolt12.CHAINS["signet"]
    status, r = await call(client, req("listinvoicerequests", [res["invreq_id"]], id="x"))
    assert r["id"] == "x" and r["result"]["invoicerequests"][0]["bolt12"] == res["bolt12"]


async def test_batch_keeps_order_and_skips_notifications(client: TestClient[Any, Any]) -> None:
    batch = [
        req("invoicerequest", [1000, "a"], id=1),
        {"jsonrpc": "2.0", "method": "getinfo"},  # a notification: no reply owed
        req("invoicerequest", [2000, "b"], id=2),
        req("nope", {}, id=3),
        req("invoicerequest", {"amount": 0, "description": "c"}, id=4),
    ]
    status, replies = await call(client, batch)
    assert status == 200
    assert [r["id"] for r in replies] == [1, 2, 3, 4]
    assert "result" in replies[0] and "result" in replies[1]
    assert replies[2]["error"]["code"] == -32601
    assert replies[3]["error"]["code"] == -32602
    _, listed = await call(client, req("listinvoicerequests"))
    assert len(listed["result"]["invoicerequests"]) == 2


async def test_only_notifications_give_no_content(client: TestClient[Any, Any]) -> None:
    status, body = await call(client, {"jsonrpc": "2.0", "method": "getinfo"})
    assert status == 204 and body is None


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"\xff",
        b"[]",
        b"42",
        b'{"id":1,"method":"getinfo"}',
        b'{"jsonrpc":"2.0","id":{},"method":"getinfo"}',
    ],
)
async def test_malformed_bodies_are_32600(client: TestClient[Any, Any], body: bytes) -> None:
    status, r = await call(client, body)
    assert status == 200 and r["error"]["code"] == -32600


async def test_oversized_body_is_refused_with_a_json_error(client: TestClient[Any, Any]) -> None:
    body = json.dumps(req("invoicerequest", [1000, "x" * MAX_REQUEST_BYTES])).encode()
    # A stream: aiohttp's client warns (an error here) when given over 1 MiB of raw bytes.
    resp = await client.post("/rpc", data=io.BytesIO(body), headers={"Rune": RUNES[id(client)]})
    status, r = resp.status, json.loads(await resp.read())
    assert status == 413 and r["error"]["code"] == -32600
    assert r["id"] == 1  # found in the head of the body: a client matches the reply
    _, listed = await call(client, req("listinvoicerequests"))
    assert listed["result"]["invoicerequests"] == []


async def test_rpc_without_a_rune_is_403_and_with_a_bad_one_401(
    client: TestClient[Any, Any],
) -> None:
    body = json.dumps(req("getinfo")).encode()
    resp = await client.post("/rpc", data=body)
    assert resp.status == 403
    assert (await resp.json())["error"] == {"code": 1501, "message": "Not authorized: Missing rune"}
    resp = await client.post("/rpc", data=body, headers={"Rune": "AAAA" + RUNES[id(client)][4:]})
    assert resp.status == 401 and (await resp.json())["error"]["code"] == 1501


async def test_get_is_not_allowed(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/rpc")
    assert resp.status == 405


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com"])
def test_non_loopback_http_is_refused(tmp_path: Path, host: str) -> None:
    with pytest.raises(ConfigError, match="--http-host"):
        Config(data_dir=tmp_path, http_host=host).validate()
    Config(data_dir=tmp_path, http_host=host, http_port=0).validate()  # HTTP off: fine
