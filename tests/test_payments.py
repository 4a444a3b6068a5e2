"""Receiving the invoice that answers one of our requests, and paying it, end to end.

The payee side is played here with the core's invoice builder and a test node key. The
Core Lightning backend talks to tests/fake_lightningd.py, a small process that speaks
lightningd's JSON-RPC framing and answers xpay/listpays: it STANDS IN FOR lightningd (no
Lightning node can run here) and pays nothing.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

from _lightningd import PAYEE as NODE
from _lightningd import FakeLightningd, error_of, invoice_for, payment_hash_of
from _service_fixtures import Server
from coincurve import PrivateKey
from invreq import bolt12
from pyln.client import RpcError


def serve(tmp_path: Path, ln: FakeLightningd | None, *args: str) -> Server:
    pay = f"cln:{ln.socket}" if ln else "none"
    return Server(tmp_path / "data", extra_args=["--pay-with", pay, *args]).start()


def test_round_trip_request_invoice_payment(tmp_path: Path, lightningd: Any) -> None:
    ln = lightningd()
    s = serve(tmp_path, ln)
    try:
        r = s.rpc.call("invoicerequest", {"amount": 50_000, "description": "ATM withdrawal"})
        inv = invoice_for(r["bolt12"])
        d = s.rpc.call("decode", [inv])  # decode reads invoices too
        assert d["type"] == "bolt12 invoice" and d["invoice_amount_msat"] == 50_000
        paid = s.rpc.call("receiveinvoice", [inv])
        assert paid["status"] == "paid" and paid["invreq_id"] == r["invreq_id"]
        preimage = bytes.fromhex(paid["payment_preimage"])
        assert hashlib.sha256(preimage).hexdigest() == payment_hash_of(inv)
        listed = s.rpc.call("listinvoicerequests", [r["invreq_id"]])["invoicerequests"][0]
        assert listed["used"] is True and listed["active"] is False  # single-use
        assert ln.xpays() == [inv]
        e = error_of(s, "receiveinvoice", [invoice_for(r["bolt12"], n=1)])
        assert e["code"] == 2102
        pays = s.rpc.call("listpayments", {"invreq_id": r["invreq_id"]})["payments"]
        assert [p["status"] for p in pays] == ["paid"]
    finally:
        assert s.stop() == 0, s.output()


def test_multi_use_request_stays_active_and_pays_again(tmp_path: Path, lightningd: Any) -> None:
    ln = lightningd()
    s = serve(tmp_path, ln)
    try:
        r = s.rpc.call("invoicerequest", {"amount": 1000, "description": "m", "single_use": False})
        for n in range(2):
            assert s.rpc.call("receiveinvoice", [invoice_for(r["bolt12"], n=n)])["status"] == "paid"
        listed = s.rpc.call("listinvoicerequests", [r["invreq_id"]])["invoicerequests"][0]
        assert listed["used"] is True and listed["active"] is True
        assert len(ln.xpays()) == 2
    finally:
        assert s.stop() == 0, s.output()


def test_each_refusal_rule(tmp_path: Path, lightningd: Any) -> None:
    ln = lightningd()
    s = serve(tmp_path, ln)
    try:
        now = int(time.time())
        r = s.rpc.call("invoicerequest", [1000, "rules"])
        # Not ours: a request made by another key (its invreq_id is unknown here).
        foreign = bolt12.UnsignedInvoiceRequest(
            metadata=b"\x01" * 16,
            description="x",
            amount_msat=1000,
            payer_id=PrivateKey(b"\x05" * 32).public_key.format(),
        )
        foreign_signed = foreign.with_signature(
            PrivateKey(b"\x05" * 32).sign_schnorr(foreign.digest, bytes(32))
        )
        assert error_of(s, "receiveinvoice", [invoice_for(foreign_signed.bolt12)])["code"] == 2101
        # Expired invoice: created three hours ago with the default 7200 s expiry.
        e = error_of(s, "receiveinvoice", [invoice_for(r["bolt12"], created_at=now - 3 * 3600)])
        assert e["code"] == 2105 and "invoice expired" in e["message"]
        # Expired request: absolute_expiry has passed (CLN never checks this).
        old = s.rpc.call(
            "invoicerequest", {"amount": 1000, "description": "old", "absolute_expiry": now - 10}
        )
        assert error_of(s, "receiveinvoice", [invoice_for(old["bolt12"])])["code"] == 2106
        # Tampered invoice: the signature no longer verifies.
        good = invoice_for(r["bolt12"])
        tampered = good[:-8] + ("q" if good[-8] != "q" else "p") + good[-7:]
        e = error_of(s, "receiveinvoice", [tampered])
        assert e["code"] == -32602 and e["message"].startswith("invoice: ")
        assert error_of(s, "receiveinvoice", ["lni1qqqq"])["code"] == -32602
        assert error_of(s, "receiveinvoice", [r["bolt12"]])["code"] == -32602  # an lnr
        # Disabled request.
        s.rpc.call("disableinvoicerequest", [r["invreq_id"]])
        assert error_of(s, "receiveinvoice", [good])["code"] == 2102
        assert ln.xpays() == []  # nothing was paid
    finally:
        assert s.stop() == 0, s.output()


def test_amount_must_equal_invreq_amount(tmp_path: Path, lightningd: Any) -> None:
    """CLN pays an invoice for less than the request; BOLT 12 says equal, and so do we.
    The invoice is built and signed by hand: the core's builder refuses such an invoice,
    and its reader refuses it too, so it is an invalid parameter naming the field."""
    ln = lightningd()
    s = serve(tmp_path, ln)
    try:
        r = s.rpc.call("invoicerequest", [5000, "amount"])
        good = bolt12.decode_invoice(invoice_for(r["bolt12"]))
        records = [(t, v) for t, v in bolt12.parse_tlv_stream(good.tlv_stream) if t != 240]
        records = [(t, (4000).to_bytes(2, "big") if t == 170 else v) for t, v in records]
        stream = bolt12.encode_tlv_stream(records)
        digest = bolt12.signature_digest("invoice", "signature", bolt12.merkle_root(stream))
        sig = NODE.sign_schnorr(digest, bytes(32))
        smaller = bolt12.encode_string(
            "lni", bolt12.encode_tlv_stream(sorted([*records, (240, sig)]))
        )
        e = error_of(s, "receiveinvoice", [smaller])
        assert e["code"] == -32602 and "invoice_amount" in e["message"], e
        assert ln.xpays() == []
    finally:
        assert s.stop() == 0, s.output()


def test_no_backend_records_and_refuses_to_pay(tmp_path: Path) -> None:
    s = serve(tmp_path, None)
    try:
        r = s.rpc.call("invoicerequest", [1000, "no backend"])
        e = error_of(s, "receiveinvoice", [invoice_for(r["bolt12"])])
        assert e["code"] == 2107 and "--pay-with none" in e["message"]
        pays = s.rpc.call("listpayments", [])["payments"]
        assert [p["status"] for p in pays] == ["refused"]
        listed = s.rpc.call("listinvoicerequests", [r["invreq_id"]])["invoicerequests"][0]
        assert listed["active"] is True and listed["used"] is False
    finally:
        assert s.stop() == 0, s.output()


def test_failed_payment_releases_the_claim(tmp_path: Path, lightningd: Any) -> None:
    s = serve(tmp_path, lightningd("--mode", "fail"))
    try:
        r = s.rpc.call("invoicerequest", [1000, "fails"])
        e = error_of(s, "receiveinvoice", [invoice_for(r["bolt12"])])
        assert e["code"] == 2108 and "no route" in e["message"]
        listed = s.rpc.call("listinvoicerequests", [r["invreq_id"]])["invoicerequests"][0]
        assert listed["active"] is True and listed["used"] is False
        assert [p["status"] for p in s.rpc.call("listpayments", [])["payments"]] == ["failed"]
    finally:
        assert s.stop() == 0, s.output()


def test_fifty_concurrent_invoices_for_one_single_use_request_pay_once(
    tmp_path: Path, lightningd: Any
) -> None:
    ln = lightningd("--delay", "0.2")
    s = serve(tmp_path, ln)
    try:
        r = s.rpc.call("invoicerequest", [1000, "race"])
        invoices = [invoice_for(r["bolt12"], n=n) for n in range(50)]
        results: list[Any] = [None] * 50

        def pay(i: int) -> None:
            try:
                results[i] = s.rpc.call("receiveinvoice", [invoices[i]])["status"]
            except RpcError as err:
                results[i] = err.error["code"]

        threads = [threading.Thread(target=pay, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results.count("paid") == 1, results
        assert set(results) - {"paid"} <= {2102, 2103}
        assert len(ln.xpays()) == 1
    finally:
        assert s.stop() == 0, s.output()


def test_fifty_concurrent_replays_of_one_invoice_pay_once(tmp_path: Path, lightningd: Any) -> None:
    """The same invoice 50 times at once (single-use and reusable requests alike): one
    xpay, one row; every caller gets the payment or is told it is being paid (2109)."""
    ln = lightningd("--delay", "0.2")
    s = serve(tmp_path, ln)
    try:
        for single_use in (True, False):
            r = s.rpc.call(
                "invoicerequest", {"amount": 1000, "description": "r", "single_use": single_use}
            )
            inv = invoice_for(r["bolt12"], n=int(single_use))
            results: list[Any] = [None] * 50

            def pay(i: int, inv: str = inv, results: list[Any] = results) -> None:
                try:
                    results[i] = s.rpc.call("receiveinvoice", [inv])["status"]
                except RpcError as err:
                    results[i] = err.error["code"]

            threads = [threading.Thread(target=pay, args=(i,)) for i in range(50)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert "paid" in results and set(results) <= {"paid", 2109}, results
            pays = s.rpc.call("listpayments", {"invreq_id": r["invreq_id"]})["payments"]
            assert [p["status"] for p in pays] == ["paid"]
            assert ln.xpays().count(inv) == 1
    finally:
        assert s.stop() == 0, s.output()


def test_restart_during_a_pending_payment_settles_it(tmp_path: Path, lightningd: Any) -> None:
    ln = lightningd("--mode", "hang")
    s = serve(tmp_path, ln)
    r = s.rpc.call("invoicerequest", [1000, "crash"])
    inv = invoice_for(r["bolt12"])
    caller = threading.Thread(target=_call_ignoring_errors, args=(s, inv), daemon=True)
    caller.start()
    ln.wait_for_xpays(1)
    assert ln.xpays() == [inv]
    s.kill()  # the process dies with the payment in flight
    ln.settle(inv, "complete")  # ...which the node completed meanwhile
    s.start()  # at once: no waiting period before a crash-left payment is settled
    try:
        pays = s.rpc.call("listpayments", [])["payments"]
        assert [p["status"] for p in pays] == ["paid"]
        listed = s.rpc.call("listinvoicerequests", [r["invreq_id"]])["invoicerequests"][0]
        assert listed["used"] is True and listed["active"] is False
        assert ln.xpays() == [inv]
    finally:
        assert s.stop() == 0, s.output()


def _call_ignoring_errors(s: Server, inv: str) -> None:
    try:
        s.rpc.call("receiveinvoice", [inv])
    except Exception:
        pass


def test_disabling_during_an_in_flight_payment(tmp_path: Path, lightningd: Any) -> None:
    """CLN aborts the node here; we tell the truth: the reply names the payment in flight,
    and the payment's record says the request was disabled while it was pending."""
    ln = lightningd("--mode", "hang")
    s = serve(tmp_path, ln)
    try:
        r = s.rpc.call("invoicerequest", {"amount": 1000, "description": "d", "single_use": False})
        inv = invoice_for(r["bolt12"])
        out: list[Any] = []
        caller = threading.Thread(target=lambda: out.append(s.rpc.call("receiveinvoice", [inv])))
        caller.start()
        ln.wait_for_xpays(1)
        d = s.rpc.call("disableinvoicerequest", [r["invreq_id"]])
        assert d["active"] is False and d["payments_in_flight"] == [1]
        ln.settle(inv, "complete")
        caller.join(30)
        assert out and out[0]["status"] == "paid"
        assert out[0]["request_disabled_at"] >= out[0]["created_at"]
        listed = s.rpc.call("listinvoicerequests", [r["invreq_id"]])["invoicerequests"][0]
        assert listed["active"] is False and listed["used"] is True  # stays disabled
        # Without a payment in flight the reply is exactly CLN's.
        other = s.rpc.call("invoicerequest", [1000, "idle"])
        d2 = s.rpc.call("disableinvoicerequest", [other["invreq_id"]])
        assert "payments_in_flight" not in d2
    finally:
        assert s.stop() == 0, s.output()


def test_refused_invoices_recorded_per_request_are_bounded(tmp_path: Path) -> None:
    """``--pay-with none``: anyone holding a payee key can mint invoices for a request
    without end; each is answered 2107, and only the first MAX_REFUSALS_RECORDED are
    recorded (before: every one, 38 MiB in 1.6 s)."""
    from invreq.payments.receive import MAX_REFUSALS_RECORDED

    s = serve(tmp_path, None)
    try:
        r = s.rpc.call(
            "invoicerequest", {"amount": 1000, "description": "many", "single_use": False}
        )
        first = invoice_for(r["bolt12"], n=0)
        for n in range(MAX_REFUSALS_RECORDED + 10):
            inv = first if n == 0 else invoice_for(r["bolt12"], n=n)
            e = error_of(s, "receiveinvoice", [inv])
            assert e["code"] == 2107 and "--pay-with none" in e["message"]
        assert "not recorded" in e["message"]
        pays = s.rpc.call("listpayments", [])["payments"]
        assert [p["status"] for p in pays] == ["refused"] * MAX_REFUSALS_RECORDED
        # A recorded one sent again is the same record, answered as before. The very same
        # string: invoice_for stamps created_at with the clock, so building n=0 again in a
        # later second is another invoice of that payment_hash (2110; CI saw it once).
        again = error_of(s, "receiveinvoice", [first])
        assert again["code"] == 2107 and "not recorded" not in again["message"]
        # Another request has its own (an invoice of its own payment_hash: one with a
        # payment_hash already recorded is that payment's, 2110 when it is another invoice).
        other = s.rpc.call("invoicerequest", [1000, "other"])
        fresh = MAX_REFUSALS_RECORDED + 100
        e = error_of(s, "receiveinvoice", [invoice_for(other["bolt12"], n=fresh)])
        assert "recorded as payment" in e["message"]
    finally:
        assert s.stop() == 0, s.output()
