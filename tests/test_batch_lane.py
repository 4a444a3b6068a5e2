"""JSON-RPC batches of ``invoicerequest`` run as one (the batch lane, invreq.rpc._Lane and
Service.invoicerequests): built, signed, verified in one crossing into the core, stored in one
commit. What a caller sees must be exactly what the same calls one by one would give: each
element its own reply, in order, its own error when it alone is wrong, nothing stored for a
failed element, a rune checked per element, notifications unanswered, filters applied.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
from _service_fixtures import Server
from invreq import bolt12
from invreq.errors import SignerError
from invreq.service import Service
from invreq.signers.software import SoftwareSigner
from invreq.store.url import open_store


def unix_batch(server: Server, batch: list[dict[str, Any]]) -> Any:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(60)
        s.connect(str(server.socket_path))
        s.sendall(json.dumps(batch).encode())
        reply = b""
        while not reply.endswith(b"\n\n"):
            data = s.recv(65536)
            assert data, reply
            reply += data
    return json.loads(reply)


def http_batch(server: Server, rune: str, batch: list[dict[str, Any]]) -> Any:
    # http.client: the reply of a batch may come in chunks (it is written as it is made).
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=60)
    try:
        conn.request(
            "POST", "/rpc", json.dumps(batch), {"Content-Type": "application/json", "Rune": rune}
        )
        resp = conn.getresponse()
        assert resp.status == 200, resp.status
        return json.loads(resp.read())
    finally:
        conn.close()


def creation(i: Any, amount: Any = 1000, **more: Any) -> dict[str, Any]:
    params = {"amount": amount, "description": f"lane {i}", **more}
    return {"jsonrpc": "2.0", "id": i, "method": "invoicerequest", "params": params}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    s = Server(tmp_path_factory.mktemp("lane") / "data").start()
    yield s
    assert s.stop() == 0


def stored(server: Server) -> dict[str, Any]:
    listed = server.rpc.call("listinvoicerequests")["invoicerequests"]
    return {r["invreq_id"]: r for r in listed}


def test_a_batch_of_creations_answers_each_in_order_as_one_by_one_would(server: Server) -> None:
    before = stored(server)
    replies = unix_batch(server, [creation(i, label=f"l{i}") for i in range(50)])
    assert [r["id"] for r in replies] == list(range(50))
    single = server.rpc.call(
        "invoicerequest", {"amount": 1000, "description": "alone", "label": "alone"}
    )
    after = stored(server)
    ids = set()
    for i, r in enumerate(replies):
        result = r["result"]
        assert list(result) == list(single), "the same shape, key order included"
        decoded = bolt12.decode_invoice_request(result["bolt12"])  # the signature verifies
        assert decoded.description == f"lane {i}" and decoded.amount_msat == 1000
        assert decoded.invreq_id.hex() == result["invreq_id"]
        assert after[result["invreq_id"]]["label"] == f"l{i}"
        assert result["bolt12_unsigned"] != result["bolt12"]
        ids.add(result["invreq_id"])
    assert len(ids) == 50 and len(after) == len(before) + 51


def test_a_wrong_element_fails_alone_and_stores_nothing(server: Server) -> None:
    before = stored(server)
    batch = [
        creation(0),
        creation(1, amount=-5),  # refused by the parameters
        creation(2, absolute_expiry="soon"),  # refused by the parameters
        {"jsonrpc": "2.0", "method": "invoicerequest", "params": {"amount": 7, "description": "n"}},
        {**creation(4), "filter": {"invreq_id": True}},
        creation(5, amount="lots"),
        creation(6),
        creation(7, max_payouts=2),  # refused by the service: a single-use request
        creation(8, single_use=False, max_payouts=2),
    ]
    replies = unix_batch(server, batch)
    assert [r["id"] for r in replies] == [0, 1, 2, 4, 5, 6, 7, 8]  # the notification: none
    assert "result" in replies[0] and "result" in replies[5]
    assert replies[1]["error"]["code"] == -32602 and "amount" in replies[1]["error"]["message"]
    assert "error" in replies[2]
    assert list(replies[3]["result"]) == ["invreq_id"]  # the filter applied
    assert replies[4]["error"]["code"] == -32602
    assert "max_payouts" in replies[6]["error"]["message"]
    assert replies[7]["result"]["single_use"] is False
    after = stored(server)
    # 0, the notification, 4, 6 and 8: one commit, nothing of the refused ones.
    assert len(after) == len(before) + 5
    descriptions = {
        bolt12.decode_invoice_request(r["bolt12"]).description
        for k, r in after.items()
        if k not in before
    }
    assert descriptions == {"lane 0", "n", "lane 4", "lane 6", "lane 8"}


def test_over_http_the_rune_is_checked_for_each_element(server: Server) -> None:
    rune = server.rpc.call("createrune", {"restrictions": [["method=invoicerequest"]]})["rune"]
    batch = [creation(0), {"jsonrpc": "2.0", "id": 1, "method": "getinfo"}, creation(2)]
    # getinfo splits the batch into groups; a run of creations shares a lane.
    batch += [creation(i) for i in range(3, 8)]
    replies = http_batch(server, rune, batch)
    assert [r["id"] for r in replies] == list(range(8))
    assert "error" in replies[1] and "method" in replies[1]["error"]["message"]
    assert all("result" in r for i, r in enumerate(replies) if i != 1)


class _OneBadSignature(SoftwareSigner):
    """The software signer, except that its second signature is corrupted (a broken or
    hostile signer): only that request may fail."""

    calls = 0

    async def sign_invoice_request(self, tlv_stream: bytes, digest: bytes) -> bytes:
        self.calls += 1
        signature = await super().sign_invoice_request(tlv_stream, digest)
        return signature if self.calls != 2 else bytes(64)


async def test_a_signature_that_does_not_verify_fails_that_request_alone(tmp_path: Path) -> None:
    store = open_store(None, tmp_path / "invreq.sqlite3")
    await store.open()
    try:
        service = Service(network="regtest", store=store, signer=_OneBadSignature(os.urandom(32)))
        calls = [{"amount": 1000 + i, "description": f"d{i}"} for i in range(3)]
        out = await service.invoicerequests(calls)
        assert isinstance(out[1], SignerError)
        assert "invalid signature" in out[1].message
        assert [o["bolt12"] is not None for o in (out[0], out[2])] == [True, True]
        assert {r.invreq_id for r in await _all(store)} == {
            out[0]["invreq_id"],
            out[2]["invreq_id"],
        }
    finally:
        await store.close()


async def test_a_batch_is_verified_in_a_thread_while_the_loop_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The verifications of a batch (native, without the GIL) run beside the event loop, so
    # the loop serves other connections meanwhile; a lone request is checked inline.
    import threading

    from invreq import service as service_module

    seen: list[tuple[str, int]] = []
    real = bolt12.with_signatures
    ticks = 0

    def slow_with_signatures(unsigned: Any, signatures: Any) -> Any:
        seen.append((threading.current_thread().name, len(unsigned)))
        if len(unsigned) > 1:
            threading.Event().wait(0.3)  # a slow verification: the loop must not wait on it
        return real(unsigned, signatures)

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    monkeypatch.setattr(service_module.bolt12, "with_signatures", slow_with_signatures)
    store = open_store(None, tmp_path / "invreq.sqlite3")
    await store.open()
    tick = asyncio.get_running_loop().create_task(ticker())
    try:
        service = Service(network="regtest", store=store, signer=SoftwareSigner(os.urandom(32)))
        out = await service.invoicerequests([{"amount": 1000, "description": "d"}] * 4)
        lone = await service.invoicerequests([{"amount": 1000, "description": "one"}])
    finally:
        tick.cancel()
        await store.close()
    assert all(isinstance(o, dict) for o in [*out, *lone]), [*out, *lone]
    assert [n for _, n in seen] == [4, 1]
    assert seen[0][0].startswith("invreq-verify")  # the batch: in the verifying thread
    assert seen[1][0] == threading.current_thread().name  # the lone one: inline, on the loop
    assert ticks >= 10, ticks  # the loop went on during the batch's 0.3 s verification


async def _all(store: Any) -> list[Any]:
    from invreq.store.base import ListQuery

    return list(await store.list(ListQuery()))


def test_the_lane_is_not_used_for_a_lone_call() -> None:
    # Outside a batch's group the handler runs the call alone (no lane in the context).
    from invreq import rpc

    async def one(**kw: Any) -> str:
        return "one"

    async def many(calls: list[dict[str, Any]]) -> list[Any]:
        return ["many"] * len(calls)

    assert asyncio.run(rpc.laned(one, many)()) == "one"
