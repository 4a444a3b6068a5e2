"""End to end: every command through the real pyln-client on the real unix socket.

The server is a real `invreq serve` process with a real SQLite file. Every error path also
checks that nothing was stored. Shapes follow the seed doc (lightning-invoicerequest.7)
and REFERENCE §4-§6.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
from _service_fixtures import Server, raw_exchange, request
from invreq import bolt12
from invreq.rpc import MAX_REQUEST_BYTES
from pyln.client import RpcError

DOC_KEYS = ["invreq_id", "active", "single_use", "bolt12", "bolt12_unsigned", "used"]
#: With HTTP on (these servers have it), the payee page's address comes last.
PAGE = "page_url"


def count(s: Server) -> int:
    return len(s.rpc.call("listinvoicerequests")["invoicerequests"])


def rpc_error(s: Server, method: str, params: Any) -> dict[str, Any]:
    before = count(s)
    with pytest.raises(RpcError) as e:
        s.rpc.call(method, params)
    assert count(s) == before, "a refused call must store nothing"
    return e.value.error  # type: ignore[no-any-return]


def test_seed_doc_example_1_by_name_has_the_documented_shape(server: Server) -> None:
    r = server.rpc.call("invoicerequest", {"amount": 1000000, "description": "Simple test"})
    assert list(r) == [*DOC_KEYS, PAGE]
    assert r["active"] is True and r["used"] is False and r["single_use"] is True
    d = bolt12.decode_invoice_request(r["bolt12"])
    assert d.invreq_id.hex() == r["invreq_id"]
    assert d.amount_msat == 1000000 and d.description == "Simple test"
    assert d.issuer is None and d.absolute_expiry is None
    assert d.payer_id.hex() == server.rpc.call("getinfo")["id"]
    assert len(d.metadata) == 16
    # regtest is not bitcoin: invreq_chain must name it.
    assert d.chain == bolt12.CHAINS["regtest"]


def test_seed_doc_example_2_with_sat_amount_and_issuer(server: Server) -> None:
    r = server.rpc.call(
        "invoicerequest",
        {
            "amount": "10000sat",
            "description": "Requesting for invoice",
            "issuer": "clightning store",
        },
    )
    assert list(r) == [*DOC_KEYS, PAGE]
    d = bolt12.decode_invoice_request(r["bolt12"])
    assert d.amount_msat == 10_000_000 and d.issuer == "clightning store"


def test_positional_params_with_null_for_not_given(server: Server) -> None:
    r = server.rpc.call("invoicerequest", ["0.001btc", "payout", None, "lbl", 4_000_000_000, False])
    assert list(r) == [*DOC_KEYS, "label", PAGE]
    assert r["single_use"] is False and r["label"] == "lbl"
    d = bolt12.decode_invoice_request(r["bolt12"])
    assert d.amount_msat == 100_000_000 and d.absolute_expiry == 4_000_000_000


def test_each_call_gets_fresh_metadata_and_id(server: Server) -> None:
    a = server.rpc.call("invoicerequest", [1000, "same"])
    b = server.rpc.call("invoicerequest", [1000, "same"])
    assert a["invreq_id"] != b["invreq_id"]


def test_unicode_description_round_trips(server: Server) -> None:
    r = server.rpc.call("invoicerequest", [1000, 'Geldautomat - 取款 ⚡\n"x"'])
    assert bolt12.decode_invoice_request(r["bolt12"]).description == 'Geldautomat - 取款 ⚡\n"x"'


def test_list_by_id_active_only_label_and_paging(server: Server) -> None:
    ids = [
        server.rpc.call("invoicerequest", [1000 + i, f"d{i}", None, "L" if i % 2 else None])[
            "invreq_id"
        ]
        for i in range(5)
    ]
    server.rpc.call("disableinvoicerequest", [ids[1]])
    listed = server.rpc.call("listinvoicerequests")["invoicerequests"]
    assert [x["invreq_id"] for x in listed] == ids  # creation order
    assert listed[0]["created_index"] < listed[1]["created_index"]
    one = server.rpc.call("listinvoicerequests", [ids[2]])["invoicerequests"]
    assert [x["invreq_id"] for x in one] == [ids[2]]
    upper = server.rpc.call("listinvoicerequests", {"invreq_id": ids[2].upper()})["invoicerequests"]
    assert [x["invreq_id"] for x in upper] == [ids[2]]
    active = server.rpc.call("listinvoicerequests", {"active_only": True})["invoicerequests"]
    assert ids[1] not in [x["invreq_id"] for x in active] and len(active) == 4
    labelled = server.rpc.call("listinvoicerequests", {"label": "L"})["invoicerequests"]
    assert [x["invreq_id"] for x in labelled] == [ids[1], ids[3]]
    start = listed[2]["created_index"]
    page = server.rpc.call("listinvoicerequests", {"index": "created", "start": start, "limit": 2})
    assert [x["invreq_id"] for x in page["invoicerequests"]] == ids[2:4]


def test_list_unknown_id_is_empty_and_malformed_id_is_32602(server: Server) -> None:
    assert server.rpc.call("listinvoicerequests", ["00" * 32])["invoicerequests"] == []
    e = rpc_error(server, "listinvoicerequests", ["abc"])
    assert e["code"] == -32602 and e["message"].startswith(
        "invreq_id: should be a 32 byte hex value"
    )


def test_disable_then_disable_again_then_unknown(server: Server) -> None:
    r = server.rpc.call("invoicerequest", [1000, "x", None, "lab"])
    d = server.rpc.call("disableinvoicerequest", {"invreq_id": r["invreq_id"]})
    assert list(d) == [*DOC_KEYS, "label"] and d["active"] is False and d["label"] == "lab"
    e = rpc_error(server, "disableinvoicerequest", [r["invreq_id"]])
    assert e == {"code": 1001, "message": "invoice_request is not active"}
    e = rpc_error(server, "disableinvoicerequest", ["11" * 32])
    assert e == {"code": -1, "message": "Unknown invoice_request"}
    listed = server.rpc.call("listinvoicerequests", [r["invreq_id"]])["invoicerequests"]
    assert listed[0]["active"] is False  # records are never deleted


def test_decode_gives_cln_fields_and_names_the_reason_on_failure(server: Server) -> None:
    r = server.rpc.call(
        "invoicerequest",
        {
            "amount": "1500msat",
            "description": "x",
            "issuer": "me",
            "absolute_expiry": 2_000_000_000,
        },
    )
    d = server.rpc.call("decode", [r["bolt12"]])
    assert d["type"] == "bolt12 invoice_request" and d["valid"] is True
    assert d["invreq_amount_msat"] == 1500 and d["offer_description"] == "x"
    assert d["offer_issuer"] == "me" and d["offer_absolute_expiry"] == 2_000_000_000
    assert d["invreq_chain"] == bolt12.CHAINS["regtest"].hex()
    assert d["invreq_payer_id"] == server.rpc.call("getinfo")["id"]
    e = rpc_error(server, "decode", ["lnr1qqqqqq"])
    assert e["code"] == -32602 and "string" in e["message"]
    # A bad signature is reported as CLN's decode reports it, not refused.
    bad = server.rpc.call("decode", [r["bolt12"][:-4] + "qqqq"])
    assert bad["warning_invalid_invoice_request_signature"] == "Bad Signature"
    assert "signature" not in bad and list(bad)[-1] == "valid" and bad["valid"] is False


def test_getinfo_help_notifications(server: Server) -> None:
    info = server.rpc.call("getinfo")
    assert info["network"] == "regtest" and len(info["id"]) == 66
    h = server.rpc.call("help")["help"]
    commands = {x["command"].split()[0] for x in h}
    assert {
        "invoicerequest",
        "listinvoicerequests",
        "disableinvoicerequest",
        "decode",
        "getinfo",
        "help",
    } <= commands
    one = server.rpc.call("help", ["invoicerequest"])["help"]
    assert one[0]["command"].startswith(
        "invoicerequest amount description [issuer] [label] [absolute_expiry] [single_use]"
    )
    assert server.rpc.call("notifications", {"enable": True}) == {}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"description": "x"}, "missing required parameter: amount"),
        ({"amount": 1000}, "missing required parameter: description"),
        ({"amount": 1000, "description": "x", "foo": 1}, "unknown parameter: foo"),
        ([1000, "x", None, None, None, True, 7, 8, 9], "too many parameters: got 9, expected 8"),
        ([1000, "x", None, None, None, True, 7], "max_payouts: only for a reusable request"),
        ([1000, "x", None, None, None, False, 0], "max_payouts: should be at least 1"),
        (
            {"amount": 1, "description": "x", "single_use": False, "payout_window": 0},
            "payout_window: should be at least 1",
        ),
        ({"amount": 0, "description": "x"}, "amount:"),
        ({"amount": "1.5sat", "description": "x"}, "amount: should be a millisatoshi amount"),
        ({"amount": "10 sat", "description": "x"}, "amount: should be a millisatoshi amount"),
        ({"amount": "2100000000000000001msat", "description": "x"}, "amount:"),
        ({"amount": 1.5, "description": "x"}, "amount: should be a millisatoshi amount"),
        ({"amount": 1000, "description": 5}, "description: should be a string"),
        (
            {"amount": 1000, "description": "x", "single_use": "true"},
            "single_use: should be 'true' or 'false'",
        ),
        (
            {"amount": 1000, "description": "x", "absolute_expiry": -1},
            "absolute_expiry: should be an unsigned 64 bit integer",
        ),
        (
            {"amount": 1000, "description": "x", "absolute_expiry": 2**64},
            "absolute_expiry: should be an unsigned 64 bit integer",
        ),
        ({"amount": 1000, "description": "x", "label": ["a"]}, "label: should be a string"),
    ],
)
def test_parameter_errors_are_32602_name_the_parameter_and_store_nothing(
    server: Server, params: Any, message: str
) -> None:
    e = rpc_error(server, "invoicerequest", params)
    assert e["code"] == -32602
    assert e["message"].startswith(message), e


def test_unicode_escape_and_duplicate_names_are_refused(server: Server) -> None:
    head = b'{"jsonrpc":"2.0","method":"invoicerequest","id":'
    raw = head + b'1,"params":{"amount":1000,"description":"caf\\u00e9"}}'
    dup = head + b'2,"params":{"amount":1000,"description":"a","label":"x","label":"y"}}'
    ok = head + b'3,"params":{"amount":1000,"description":"back\\\\u005c \\n \\t \\/ \\" ok"}}'
    r1, r2, r3 = raw_exchange(server.socket_path, [raw + dup + ok], 3)
    assert r1["error"]["code"] == -32602 and r1["error"]["message"].startswith(
        "description: should be a string (without \\u)"
    )
    assert r2["error"] == {"code": -32602, "message": "duplicate json names: label"}
    assert "result" in r3
    assert (
        bolt12.decode_invoice_request(r3["result"]["bolt12"]).description
        == 'back\\u005c \n \t / " ok'
    )
    assert count(server) == 1


def test_unknown_method(server: Server) -> None:
    e = rpc_error(server, "frobnicate", {})
    assert e == {"code": -32601, "message": "Unknown command 'frobnicate'"}


def test_pipelined_requests_on_one_connection_echo_their_ids(server: Server) -> None:
    reqs = (
        request("getinfo", id="a")
        + request("invoicerequest", [1000, "p"], id=7)
        + b"  \n"
        + request("listinvoicerequests", {}, id=12345678901234567890)
    )
    # Split at awkward places: inside a string, between objects, inside a number.
    chunks = [reqs[:13], reqs[13:60], reqs[60:61], reqs[61:]]
    replies = raw_exchange(server.socket_path, chunks, 3)
    assert [r["id"] for r in replies] == ["a", 7, 12345678901234567890]
    assert all(r["jsonrpc"] == "2.0" for r in replies)
    assert len(replies[2]["result"]["invoicerequests"]) == 1


def test_lightning_cli_notifications_reply_fits_its_100_byte_buffer(server: Server) -> None:
    raw = b'{"jsonrpc":"2.0","method":"notifications","id":"cli:notifications#0",'
    raw += b'"params":{"enable":true}}'
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(server.socket_path))
        s.sendall(raw)
        reply = s.recv(100)
    assert reply.endswith(b"\n\n") and len(reply) < 100


@pytest.mark.parametrize(
    "payload",
    [
        b'{"jsonrpc":"2.0","id":1,"method":"getinfo","params":{}',  # unterminated, then garbage
        b"\xff\xfe{}",
        b"hello",
        b'{"jsonrpc":"2.0","id":1,"method":"getinfo","params":{"x":"\xff"}}',
    ],
)
def test_malformed_requests_get_32600_and_the_server_keeps_serving(
    server: Server, payload: bytes
) -> None:
    replies = raw_exchange(server.socket_path, [payload + b"]]]"], 1, timeout=5)
    assert replies and replies[0]["error"]["code"] == -32600
    assert server.rpc.call("getinfo")["network"] == "regtest"


def test_missing_jsonrpc_member_is_32600(server: Server) -> None:
    (r,) = raw_exchange(server.socket_path, [b'{"id":1,"method":"getinfo","params":{}}'], 1)
    assert r["error"]["code"] == -32600 and r["id"] == 1


def test_oversized_request_is_refused_and_others_are_unaffected(server: Server) -> None:
    big = request("invoicerequest", [1000, "x" * MAX_REQUEST_BYTES])
    replies = raw_exchange(server.socket_path, [big], 1, timeout=30)
    assert replies[0]["error"]["code"] == -32600
    assert count(server) == 0
    assert server.rpc.call("getinfo")["network"] == "regtest"


def test_records_and_states_survive_a_restart(server: Server) -> None:
    a = server.rpc.call("invoicerequest", [1000, "a", None, "x"])
    b = server.rpc.call("invoicerequest", [2000, "b", None, None, None, False])
    server.rpc.call("disableinvoicerequest", [a["invreq_id"]])
    before = server.rpc.call("listinvoicerequests")
    server.restart()
    assert server.rpc.call("listinvoicerequests") == before
    listed = {x["invreq_id"]: x for x in before["invoicerequests"]}
    assert (
        listed[a["invreq_id"]]["active"] is False and listed[a["invreq_id"]]["single_use"] is True
    )
    assert (
        listed[b["invreq_id"]]["active"] is True and listed[b["invreq_id"]]["single_use"] is False
    )
    # Same key after restart: the payer id did not change.
    assert (
        bolt12.decode_invoice_request(
            server.rpc.call("invoicerequest", [1, "c"])["bolt12"]
        ).payer_id
        == bolt12.decode_invoice_request(a["bolt12"]).payer_id
    )


def test_concurrent_requests_are_all_stored(server: Server) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(16) as pool:
        results = list(
            pool.map(lambda i: server.rpc.call("invoicerequest", [1000 + i, f"c{i}"]), range(200))
        )
    ids = {r["invreq_id"] for r in results}
    assert len(ids) == 200
    listed = server.rpc.call("listinvoicerequests")["invoicerequests"]
    assert {x["invreq_id"] for x in listed} == ids
    assert len({x["created_index"] for x in listed}) == 200
