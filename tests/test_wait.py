"""`wait`, lightningd's, for invoicerequests and payments: returns once the index reaches
nextvalue (woken by the change itself, not by polling the caller), times out with 2200 and
the index as it is, and refuses bad parameters by name. Payments go through
tests/fake_lightningd.py, which STANDS IN FOR lightningd (it pays nothing)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from _lightningd import error_of, invoice_for
from _service_fixtures import Server


def waiting(s: Server, *params: Any) -> tuple[threading.Thread, list[Any]]:
    """`wait` in a thread of its own (it blocks); the answer or error lands in the list."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(s.rpc.call("wait", list(params)))
        except Exception as e:
            out.append(e)

    t = threading.Thread(target=run)
    t.start()
    return t, out


def test_wait_returns_when_the_index_reaches_nextvalue(server: Server) -> None:
    assert server.rpc.call("wait", ["invoicerequests", "created", 0]) == {
        "subsystem": "invoicerequests",
        "created": 0,
    }
    t, out = waiting(server, "invoicerequests", "created", 2, 120)
    r = server.rpc.call("invoicerequest", {"amount": 1000, "description": "a"})
    second = server.rpc.call("invoicerequest", {"amount": 1000, "description": "b", "label": "b"})
    t.join(60)
    # As lightningd's: with what is at that index.
    assert out == [
        {
            "subsystem": "invoicerequests",
            "created": 2,
            "invoicerequests": {
                "invreq_id": second["invreq_id"],
                "label": "b",
                "active": True,
                "used": False,
            },
        }
    ]
    t, out = waiting(server, "invoicerequests", "updated", 1, 120)
    server.rpc.call("disableinvoicerequest", [r["invreq_id"]])
    t.join(60)
    assert out == [
        {
            "subsystem": "invoicerequests",
            "updated": 1,
            "invoicerequests": {"invreq_id": r["invreq_id"], "active": False, "used": False},
        }
    ]


def test_wait_for_a_payment_and_its_outcome(tmp_path: Path, lightningd: Any) -> None:
    ln = lightningd()
    s = Server(tmp_path / "data", extra_args=["--pay-with", f"cln:{ln.socket}"]).start()
    try:
        r = s.rpc.call("invoicerequest", {"amount": 1000, "description": "p"})
        created, c_out = waiting(s, "payments", "created", 1, 120)
        updated, u_out = waiting(s, "payments", "updated", 1, 120)
        assert s.rpc.call("receiveinvoice", [invoice_for(r["bolt12"])])["status"] == "paid"
        created.join(60)
        updated.join(60)
        (created,) = c_out
        assert created["created"] == 1 and created["payments"]["payment_id"] == 1
        assert created["payments"]["status"] in ("pending", "paid")  # read when it answered
        assert u_out == [
            {
                "subsystem": "payments",
                "updated": 1,  # settled: paid
                "payments": {"payment_id": 1, "invreq_id": r["invreq_id"], "status": "paid"},
            }
        ]
        # The request became used: its updated index moved too.
        assert s.rpc.call("wait", ["invoicerequests", "updated", 1]) == {
            "subsystem": "invoicerequests",
            "updated": 1,
            "invoicerequests": {"invreq_id": r["invreq_id"], "active": False, "used": True},
        }
    finally:
        assert s.stop() == 0, s.output()


def test_wait_times_out_with_the_index_as_it_is(server: Server) -> None:
    e = error_of(server, "wait", ["payments", "updated", 5, 1])
    assert e["code"] == 2200
    assert e["message"] == "wait: payments updated is 0, not 5, after 1 s"
    assert e["data"] == {"subsystem": "payments", "updated": 0}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (["sendpays", "created", 1], "subsystem: should be 'invoicerequests' or 'payments'"),
        (["payments", "deleted", 1], "indexname: should be 'created' or 'updated'"),
        (["payments", "created", -1], "nextvalue: should be an unsigned 64 bit integer"),
        (["payments", "created", 1, 0], "timeout: should be between 1 and 3600 seconds"),
        (["payments", "created"], "missing required parameter: nextvalue"),
    ],
)
def test_wait_refuses_bad_parameters_by_name(
    server: Server, params: list[Any], message: str
) -> None:
    e = error_of(server, "wait", params)
    assert e["code"] == -32602 and e["message"].startswith(message), e
