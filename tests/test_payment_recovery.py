"""Payment state that cannot lie, end to end: real `invreq serve` processes (SIGKILLed,
restarted with other configurations, two instances on one database), real SQLite files and
a real PostgreSQL server, and tests/fake_lightningd.py STANDING IN FOR lightningd (no
Lightning node can run here; it keeps a payment record and answers getinfo, xpay, listpays
as lightningd does, and pays nothing).

What must hold: no sequence of restarts, configurations or instances pays a single-use
request twice or one invoice twice; a payment whose outcome is unknown stays pending until
the node that attempted it says what happened (or an operator resolves it, on evidence)."""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _lightningd import (
    NODE_A,
    NODE_B,
    FakeLightningd,
    error_of,
    invoice_for,
    payment_hash_of,
    wait_until,
)
from _service_fixtures import STORES, Server, store_url
from _storerows import record
from pyln.client import RpcError

FAST = ["--pay-reconcile-interval", "0.2"]


def paying(ln: FakeLightningd | None, *args: str) -> list[str]:
    return ["--pay-with", f"cln:{ln.socket}" if ln else "none", *FAST, *args]


def in_background(s: Server, invoice: str) -> tuple[threading.Thread, list[Any]]:
    """receiveinvoice from another thread; the list gets its result or error object."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(s.rpc.call("receiveinvoice", [invoice]))
        except RpcError as e:
            out.append(e.error)
        except Exception as e:  # the server was killed under it
            out.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def statuses(s: Server) -> list[str]:
    return [p["status"] for p in s.rpc.call("listpayments", [])["payments"]]


def settled(s: Server) -> Callable[[], bool]:
    return lambda: "pending" not in statuses(s)


@pytest.mark.parametrize("kind", STORES)
def test_double_pay_sequence_never_pays_twice(
    request: pytest.FixtureRequest, tmp_path: Path, lightningd: Any, kind: str
) -> None:
    """The issue's sequence: SIGKILL with a payment in flight, restart with --pay-with none,
    then (quickly: no 120 s wait) with the node. The first restart must not settle it."""
    ln = lightningd("--mode", "hang")
    s = Server(tmp_path / "data", db=store_url(request, kind), extra_args=paying(ln)).start()
    r = s.rpc.call("invoicerequest", [1000, "single use"])
    a, b = invoice_for(r["bolt12"], n=1), invoice_for(r["bolt12"], n=2)
    in_background(s, a)
    ln.wait_for_xpays(1)
    s.kill()

    s.extra_args = paying(None)
    s.start()
    try:
        [p] = s.rpc.call("listpayments", [])["payments"]
        assert p["status"] == "pending" and p["node_id"] == NODE_A
        assert error_of(s, "receiveinvoice", [b])["code"] == 2103  # the claim is held
        e = error_of(s, "receiveinvoice", [a])
        assert e["code"] == 2109 and e["data"]["payment_id"] == p["payment_id"]
        wait_until(lambda: f"attempted by node {NODE_A}" in s.output(), what="log line")
        assert "--pay-with none" in s.output()
    finally:
        assert s.stop() == 0, s.output()

    ln.settle(a, "complete")  # the node finished it while invreq was down
    s.extra_args = paying(ln)
    s.start()
    try:
        wait_until(settled(s), what="settled from the node's record")
        [p] = s.rpc.call("listpayments", [])["payments"]
        assert p["status"] == "paid" and p["payment_preimage"]
        assert error_of(s, "receiveinvoice", [b])["code"] == 2102
        assert s.rpc.call("receiveinvoice", [a])["payment_id"] == p["payment_id"]  # replay
        listed = s.rpc.call("listinvoicerequests", [r["invreq_id"]])["invoicerequests"][0]
        assert listed["used"] is True and listed["active"] is False
        assert ln.xpays() == [a]  # paid once, by one xpay
    finally:
        assert s.stop() == 0, s.output()


def test_quick_restart_then_reconciliation_while_running(tmp_path: Path, lightningd: Any) -> None:
    """Restarted at once while the node still has it pending: it stays pending, and is
    settled while the server runs as soon as the node's record says, with no restart."""
    ln = lightningd("--mode", "hang")
    s = Server(tmp_path / "data", extra_args=paying(ln, "--pay-timeout", "1")).start()
    r = s.rpc.call("invoicerequest", [1000, "quick"])
    a, b = invoice_for(r["bolt12"], n=1), invoice_for(r["bolt12"], n=2)
    in_background(s, a)
    ln.wait_for_xpays(1)
    s.kill()
    s.start()
    try:
        assert statuses(s) == ["pending"]
        wait_until(lambda: f"node {NODE_A} reports it pending" in s.output(), what="log line")
        # The node's attempt fails at last: the claim is released, the next invoice pays.
        ln.settle(a, "failed")
        wait_until(settled(s), what="settled while running")
        [p] = s.rpc.call("listpayments", [])["payments"]
        assert p["status"] == "failed" and "reports the payment failed" in p["error"]
        ln.restart("--mode", "succeed")
        assert s.rpc.call("receiveinvoice", [b])["status"] == "paid"
        assert error_of(s, "receiveinvoice", [a])["code"] == 2110  # never attempted again
        assert ln.xpays() == [a, b]
    finally:
        assert s.stop() == 0, s.output()


@pytest.mark.parametrize("kind", STORES)
def test_replayed_invoices_on_a_reusable_request(
    request: pytest.FixtureRequest, tmp_path: Path, lightningd: Any, kind: str
) -> None:
    ln = lightningd("--delay", "0.5")
    s = Server(tmp_path / "data", db=store_url(request, kind), extra_args=paying(ln)).start()
    try:
        r = s.rpc.call("invoicerequest", {"amount": 1000, "description": "m", "single_use": False})
        inv = invoice_for(r["bolt12"])
        first = s.rpc.call("receiveinvoice", [inv])
        assert [s.rpc.call("receiveinvoice", [inv]) for _ in range(2)] == [first, first]
        # Concurrent replays of a fresh invoice: one xpay; the others are told it is
        # being paid (2109) or get the paid payment.
        inv2 = invoice_for(r["bolt12"], n=2)
        runs = [in_background(s, inv2) for _ in range(20)]
        for t, _ in runs:
            t.join(30)
        outs = [out[0] for _, out in runs]
        paid = [o for o in outs if o.get("status") == "paid"]
        assert paid and all(o.get("code") == 2109 for o in outs if o not in paid), outs
        assert len({o["payment_id"] for o in paid}) == 1
        assert ln.xpays() == [inv, inv2]
        assert statuses(s) == ["paid", "paid"]
    finally:
        assert s.stop() == 0, s.output()


def test_hung_node_answers_after_the_timeout_and_keeps_the_claim(
    tmp_path: Path, lightningd: Any
) -> None:
    ln = lightningd("--mode", "hang")
    s = Server(tmp_path / "data", extra_args=paying(ln, "--pay-timeout", "1")).start()
    try:
        r = s.rpc.call("invoicerequest", [1000, "hung"])
        a = invoice_for(r["bolt12"], n=1)
        e = error_of(s, "receiveinvoice", [a])
        assert e["code"] == 2109 and "outcome unknown" in e["message"]
        assert e["data"]["status"] == "pending" and e["data"]["node_id"] == NODE_A
        assert ln.xpays() == [a]
        assert error_of(s, "receiveinvoice", [invoice_for(r["bolt12"], n=2)])["code"] == 2103
        ln.settle(a, "complete")  # the stuck HTLC resolves at last
        wait_until(settled(s), what="settled by reconciliation")
        assert statuses(s) == ["paid"]
    finally:
        assert s.stop() == 0, s.output()


def test_bounded_attempts(tmp_path: Path, lightningd: Any) -> None:
    ln = lightningd("--mode", "fail")
    s = Server(
        tmp_path / "data",
        extra_args=paying(ln, "--pay-attempts-per-request", "2", "--pay-attempts-per-minute", "3"),
    ).start()
    try:
        r = s.rpc.call("invoicerequest", {"amount": 1000, "description": "f", "single_use": False})
        for n in range(2):
            assert error_of(s, "receiveinvoice", [invoice_for(r["bolt12"], n=n)])["code"] == 2108
        e = error_of(s, "receiveinvoice", [invoice_for(r["bolt12"], n=2)])
        assert e["code"] == 2111 and "--pay-attempts-per-request" in e["message"]
        r2 = s.rpc.call("invoicerequest", [1000, "other"])
        assert error_of(s, "receiveinvoice", [invoice_for(r2["bolt12"], n=10)])["code"] == 2108
        r3 = s.rpc.call("invoicerequest", [1000, "third"])
        e = error_of(s, "receiveinvoice", [invoice_for(r3["bolt12"], n=11)])
        assert e["code"] == 2111 and "--pay-attempts-per-minute" in e["message"]
        assert len(ln.xpays()) == 3 and statuses(s) == ["failed"] * 3
    finally:
        assert s.stop() == 0, s.output()


@pytest.mark.parametrize("kind", STORES)
def test_another_nodes_instance_on_the_same_database(
    request: pytest.FixtureRequest, tmp_path: Path, lightningd: Any, kind: str
) -> None:
    db = store_url(request, kind) or f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    ln_a = lightningd("--mode", "hang")
    ln_b = lightningd(node_id=NODE_B)
    x = Server(tmp_path / "x", db=db, extra_args=paying(ln_a)).start()
    y = Server(tmp_path / "y", db=db, extra_args=paying(ln_b)).start()
    try:
        r = x.rpc.call("invoicerequest", [1000, "shared"])
        a, b = invoice_for(r["bolt12"], n=1), invoice_for(r["bolt12"], n=2)
        in_background(x, a)
        ln_a.wait_for_xpays(1)
        x.kill()  # the instance with node A dies; node A still has it pending
        wait_until(
            lambda: (
                f"attempted by node {NODE_A} and this instance pays with node {NODE_B}"
                in y.output()
            ),
            what="log line",
        )
        assert error_of(y, "receiveinvoice", [a])["code"] == 2109
        assert error_of(y, "receiveinvoice", [b])["code"] == 2103
        [p] = y.rpc.call("listpayments", [])["payments"]
        assert p["status"] == "pending" and p["node_id"] == NODE_A
        assert ln_b.xpays() == []
        ln_a.settle(a, "complete")
        x.start()  # node A's instance is back: it settles from node A's record
        wait_until(settled(y), what="settled by node A's instance")
        assert statuses(y) == ["paid"] and ln_a.xpays() == [a] and ln_b.xpays() == []
    finally:
        for s in (x, y):
            if s.proc is not None and s.proc.poll() is None:
                assert s.stop() == 0, s.output()


@pytest.mark.parametrize("kind", STORES)
def test_resolvepayment_by_hand_with_evidence(
    request: pytest.FixtureRequest, tmp_path: Path, lightningd: Any, kind: str
) -> None:
    ln = lightningd("--mode", "hang")
    db = store_url(request, kind)
    s = Server(tmp_path / "data", db=db, extra_args=paying(ln, "--pay-timeout", "30")).start()
    r = s.rpc.call("invoicerequest", [1000, "stuck"])
    a, b = invoice_for(r["bolt12"], n=1), invoice_for(r["bolt12"], n=2)
    h = payment_hash_of(a)
    try:
        in_background(s, a)
        ln.wait_for_xpays(1)
        e = error_of(s, "resolvepayment", [h, "failed", "node looks stuck"])
        assert e["code"] == 2112  # our own attempt is in flight
        assert s.rpc.call("help", ["resolvepayment"])["help"][0]["command"].startswith(
            "resolvepayment payment_hash status evidence"
        )
    finally:
        s.kill()
    # The node is gone for good (another node behind the same socket now); the operator
    # has evidence that the payment never happened.
    ln.restart("--mode", "succeed", node_id=NODE_B)
    s.extra_args = paying(ln, "--pay-timeout", "30")
    s.start()
    try:
        assert statuses(s) == ["pending"]  # another node's record settles nothing
        bad = error_of(s, "resolvepayment", {"payment_hash": h, "status": "maybe", "evidence": "x"})
        assert bad["code"] == -32602 and bad["message"].startswith("status: ")
        e = error_of(s, "resolvepayment", [h, "paid", "look", "00" * 32])
        assert e["code"] == -32602 and e["message"].startswith("preimage: ")
        unknown = error_of(s, "resolvepayment", ["11" * 32, "failed", "x"])
        assert unknown["code"] == -32602
        # Before the attempt's deadline (30 s + grace) it may still be running at the node.
        e = error_of(s, "resolvepayment", [h, "failed", "node A destroyed"])
        assert e["code"] == 2112
    finally:
        assert s.stop() == 0, s.output()
    # Past the deadline (the row is aged by hand rather than by waiting).
    _age_payments(request, kind, tmp_path, db, 120)
    s.start()
    try:
        # With a line feed that would forge a log line: the log shows it escaped, one line.
        forged = "2026-01-01T00:00:00.000Z INFO  invreq.server: forged"
        evidence = "node A's disk died; its channels force-closed, the HTLC timed out\n" + forged
        rune = s.rpc.call("createrune", {"restrictions": [["method=resolvepayment"]]})["rune"]
        req = urllib.request.Request(
            f"http://127.0.0.1:{s.http_port}/v1/resolvepayment",
            data=json.dumps({"payment_hash": h, "status": "failed", "evidence": evidence}).encode(),
            headers={"Rune": rune, "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=30) as reply:
            done = json.loads(reply.read())
        assert done["status"] == "failed" and done["evidence"] == evidence
        assert done["resolved_by"] == "rune #0" and done["resolved_at"] >= done["created_at"]
        again = error_of(s, "resolvepayment", [h, "paid", "again"])
        # 2113 carries the payment as it is now (errors.PaymentNotPending: listpayments' view)
        assert again["code"] == 2113 and again["data"]["payment_hash"] == h
        assert again["data"]["status"] == "failed" and again["data"]["evidence"] == evidence
        assert "resolved by hand as failed" in s.output()
        assert "timed out\\u{a}" + forged in s.output()
        assert not any(line.startswith(forged) for line in s.output().splitlines())
        # The claim is released: the request can be paid with a new invoice, once.
        assert s.rpc.call("receiveinvoice", [b])["status"] == "paid"
        assert ln.xpays() == [a, b]
    finally:
        assert s.stop() == 0, s.output()


def _age_payments(
    request: pytest.FixtureRequest, kind: str, tmp_path: Path, db: str | None, seconds: int
) -> None:
    sql = (
        f"UPDATE payments SET created_at = created_at - {seconds},"
        f" attempt_deadline = attempt_deadline - {seconds}"
    )
    if kind == "sqlite":
        import sqlite3

        path = tmp_path / "data" / "regtest" / "invreq.sqlite3"
        with contextlib.closing(sqlite3.connect(path)) as conn, conn:
            conn.execute(sql)
        return
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(db)
        await conn.execute(sql)
        await conn.close()

    asyncio.run(run())


def test_a_preimage_that_does_not_match_the_hash_leaves_the_payment_pending(
    tmp_path: Path, lightningd: Any
) -> None:
    """The node (the stand-in, --mode wrong-preimage) says the payment completed but answers
    a preimage whose sha256 is not the invoice's payment_hash: no proof of payment. It is not
    recorded paid, neither from xpay's answer nor from the node's record when reconciliation
    asks again; it stays pending with its claim, for the operator to investigate."""
    ln = lightningd("--mode", "wrong-preimage")
    s = Server(tmp_path / "data", extra_args=paying(ln)).start()
    try:
        r = s.rpc.call("invoicerequest", [1000, "lying node"])
        inv = invoice_for(r["bolt12"])
        e = error_of(s, "receiveinvoice", [inv])
        assert e["code"] == 2109 and "sha256 is not the payment_hash" in e["message"], e
        assert e["data"]["status"] == "pending"
        # The node's own record (listpays: complete, same wrong preimage) settles nothing.
        wait_until(lambda: "reports it paid, but with a preimage" in s.output(), what="log")
        [p] = s.rpc.call("listpayments", [])["payments"]
        assert p["status"] == "pending" and "payment_preimage" not in p
        assert error_of(s, "receiveinvoice", [invoice_for(r["bolt12"], n=1)])["code"] == 2103
        assert ln.xpays() == [inv]  # and never paid a second time
    finally:
        assert s.stop() == 0, s.output()


def test_an_xpay_that_dies_with_the_payment_out_keeps_the_claim(
    tmp_path: Path, lightningd: Any
) -> None:
    """xpay's plugin dies while its HTLC is out: lightningd answers -4 (PLUGIN_TERMINATED),
    which says nothing of the payment. It must stay pending with its claim held (no second
    invoice of the single-use request is paid) until the node's record settles it."""
    ln = lightningd("--mode", "plugin-dies")
    s = Server(tmp_path / "data", extra_args=paying(ln)).start()
    try:
        r = s.rpc.call("invoicerequest", [1000, "xpay dies"])
        a = invoice_for(r["bolt12"], n=1)
        e = error_of(s, "receiveinvoice", [a])
        assert e["code"] == 2109 and e["data"]["status"] == "pending", e
        assert error_of(s, "receiveinvoice", [invoice_for(r["bolt12"], n=2)])["code"] == 2103
        assert ln.xpays() == [a] and statuses(s) == ["pending"]
        ln.settle(a, "complete")  # the HTLC that was out completes
        wait_until(settled(s), what="settled by reconciliation")
        assert statuses(s) == ["paid"]
    finally:
        assert s.stop() == 0, s.output()


async def test_a_pending_lnurl_payment_does_not_stop_reconciliation_without_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Restarted (or a second instance) without the lnurl extra: a pending LNURL payment
    whose node has no record cannot be judged expired here. It stays pending, and the
    payments after it are still settled (an ImportError used to end the pass, at start-up
    too). In-process: a real SQLite file; the node is a stand-in (NOT lightningd) that
    answers only its record of each payment_hash."""
    import hashlib
    import sys

    from invreq.payments.node import NodeRecord
    from invreq.payments.reconcile import Reconciler
    from invreq.store.base import Payment
    from invreq.store.sqlite import SQLiteStore

    node = "02" + "ab" * 32
    preimage = "11" * 32
    paid_hash = hashlib.sha256(bytes.fromhex(preimage)).hexdigest()

    class Node:  # stand-in for lightningd's listpays
        node_id = node

        async def status(self, payment_hash: str) -> NodeRecord:
            if payment_hash == paid_hash:
                return NodeRecord("paid", preimage)
            return NodeRecord("none")

    store = SQLiteStore(tmp_path / "db.sqlite3")
    await store.open()
    try:
        for i in (1, 2):
            await store.insert(record(i, created_at=1000))
        for i, h, door in ((1, "aa" * 32, "lnurl"), (2, paid_hash, "bolt12")):
            await store.payment_claim(
                Payment(
                    payment_id=0,
                    invreq_id=f"{i:064x}",
                    invoice=f"ln-test-{i}",
                    amount_msat=1000,
                    payment_hash=h,
                    status="pending",
                    created_at=1000,
                    node_id=node,
                    attempt_deadline=1010,
                    door=door,
                )
            )
        import invreq

        monkeypatch.setitem(sys.modules, "invreq.lnurl", None)  # the extra is absent
        monkeypatch.delattr(invreq, "lnurl", raising=False)
        r = Reconciler(store, Node(), lambda: 5000.0, in_flight=set())  # type: ignore[arg-type]
        assert await r.reconcile() == 1
        assert [(p.door, p.status) for p in await store.payments()] == [
            ("lnurl", "pending"),
            ("bolt12", "paid"),
        ]
    finally:
        await store.close()


def test_a_refused_invoice_is_not_paid_in_place_of_another_with_its_payment_hash(
    tmp_path: Path, lightningd: Any
) -> None:
    """Recorded as refused under --pay-with none, then restarted with a node: an invoice
    with the same payment_hash but another content (another payee node) must not take over
    the refused row, or the node would pay the OLD invoice while the checks and the payout
    approval were about the new one. One payment per payment_hash: 2110. The refused invoice
    itself is still paid when it comes again."""
    from coincurve import PrivateKey

    s = Server(tmp_path / "data", extra_args=paying(None)).start()
    try:
        r = s.rpc.call("invoicerequest", [1000, "refused first"])
        x = invoice_for(r["bolt12"], n=1)
        assert error_of(s, "receiveinvoice", [x])["code"] == 2107
    finally:
        assert s.stop() == 0, s.output()
    ln = lightningd()
    s.extra_args = paying(ln)
    s.start()
    try:
        y = invoice_for(r["bolt12"], n=1, node=PrivateKey(b"\x55" * 32))
        assert payment_hash_of(y) == payment_hash_of(x) and y != x
        e = error_of(s, "receiveinvoice", [y])
        assert e["code"] == 2110 and "one payment per payment_hash" in e["message"], e
        assert ln.xpays() == [] and statuses(s) == ["refused"]
        assert s.rpc.call("receiveinvoice", [x])["status"] == "paid"
        assert ln.xpays() == [x]
    finally:
        assert s.stop() == 0, s.output()
