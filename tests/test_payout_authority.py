"""Payout authority (issue 23): what was approved is exactly what is paid.

Real `invreq serve` processes with real hwilib talking to the lying device
(tests/_lyingdevice.py, the reference device's answers unless told to lie), real SQLite
files and a real PostgreSQL server. Payments go to tests/fake_lightningd.py, which STANDS
IN FOR lightningd (no Lightning node can run here): it answers xpay and pays nothing. The
payee's invoices are built with the core's invoice builder (tests/_lightningd.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from _lightningd import FakeLightningd, error_of, invoice_for, payment_hash_of
from _lyingdevice import LyingDevice
from _service_fixtures import Server
from _storerows import NOW, record
from _storerows import payment as attempt
from invreq import approval
from invreq.errors import PaymentNotPending, PayoutBoundReached
from invreq.refdevice.bip32 import ExtendedPrivateKey, parse_path
from invreq.refdevice.policy import Policy
from invreq.signers.hwi import DEFAULT_KEY_PATH
from invreq.store.base import Record, Store
from invreq.store.postgres import PostgresStore
from invreq.store.sqlite import SQLiteStore
from pyln.client import RpcError

SEED = bytes(range(32))
DEVICE = ["--hwi-device-type", "jade", "--hwi-device-path", "tcp:127.0.0.1:30121"]
BOUND_REACHED, NOT_APPROVED, DECLINED = 2115, 2116, 2117


def approval_key() -> bytes:
    return ExtendedPrivateKey.from_seed(SEED).derive(parse_path(DEFAULT_KEY_PATH)).public_key


@pytest.fixture
def liar() -> Iterator[LyingDevice]:
    dev = LyingDevice(SEED)
    yield dev
    dev.close()


def serve(tmp_path: Path, ln: FakeLightningd, *args: str, db: str | None = None) -> Server:
    return Server(tmp_path / "data", db=db, extra_args=["--pay-with", f"cln:{ln.socket}", *args])


def listed(s: Server, invreq_id: str) -> dict[str, Any]:
    return s.rpc.call("listinvoicerequests", [invreq_id])["invoicerequests"][0]  # type: ignore[no-any-return]


# --- 1. reusable requests carry a bound -------------------------------------------------


@pytest.mark.hwilib
def test_a_bound_of_2_pays_2_of_5_invoices_and_refuses_3_with_a_reason(
    tmp_path: Path, liar: LyingDevice, lightningd: Any
) -> None:
    ln = lightningd()
    s = serve(tmp_path, ln, "--approver", "hwi", *DEVICE).start()
    try:
        r = s.rpc.call(
            "invoicerequest",
            {
                "amount": 100_000_000,
                "description": "payroll",
                "single_use": False,
                "max_payouts": 2,
            },
        )
        rec = listed(s, r["invreq_id"])
        assert rec["max_payouts"] == 2 and rec["approval_required"] is True
        rows = rec["approval"]["message"].split("\n")
        assert rows[5:7] == ["payouts: up to 2", "in all: up to 200000000 msat"]
        outcomes = []
        for n in range(5):
            try:
                outcomes.append(s.rpc.call("receiveinvoice", [invoice_for(r["bolt12"], n=n)]))
            except RpcError as e:
                outcomes.append(e.error)
        assert [o.get("status") for o in outcomes[:2]] == ["paid", "paid"]
        for refused in outcomes[2:]:
            assert refused["code"] == BOUND_REACHED, refused
            assert "2 of 2 payouts taken (up to 2 payouts)" in refused["message"]
        assert len(ln.xpays()) == 2
        pays = s.rpc.call("listpayments", {"invreq_id": r["invreq_id"]})["payments"]
        assert [p["status"] for p in pays] == ["paid", "paid"]  # refusals claim nothing
    finally:
        assert s.stop() == 0, s.output()


def test_a_payout_window_ends_payouts(tmp_path: Path, lightningd: Any) -> None:
    ln = lightningd()
    s = serve(tmp_path, ln).start()
    try:
        r = s.rpc.call(
            "invoicerequest", {"amount": 1000, "description": "w", "single_use": False,
                               "payout_window": 1},
        )  # fmt: skip
        rec = listed(s, r["invreq_id"])
        assert rec["payout_until"] == rec["created_at"] + 1
        # The window is one second from creation: wait until the clock is past it.
        import time

        while int(time.time()) < rec["payout_until"]:
            time.sleep(0.1)
        e = error_of(s, "receiveinvoice", [invoice_for(r["bolt12"])])
        assert e["code"] == BOUND_REACHED and "payout window ended" in e["message"], e
        assert ln.xpays() == []
    finally:
        assert s.stop() == 0, s.output()


@pytest.mark.hwilib
def test_an_unbounded_reusable_request_needs_the_opt_in_under_approver_hwi(
    tmp_path: Path, liar: LyingDevice, lightningd: Any
) -> None:
    ln = lightningd()
    s = serve(tmp_path, ln, "--approver", "hwi", *DEVICE).start()
    try:
        e = error_of(s, "invoicerequest", {"amount": 1000, "description": "u", "single_use": False})
        assert e["code"] == -32602 and e["message"].startswith("max_payouts: ")
        assert "--allow-unlimited-payouts" in e["message"]
        assert not any(m == "sign_message" for m, _ in liar.seen)  # never shown
        assert s.rpc.call("listinvoicerequests")["invoicerequests"] == []
    finally:
        assert s.stop() == 0, s.output()
    s = serve(tmp_path, ln, "--approver", "hwi", "--allow-unlimited-payouts", *DEVICE).start()
    try:
        r = s.rpc.call("invoicerequest", {"amount": 1000, "description": "u", "single_use": False})
        rows = listed(s, r["invreq_id"])["approval"]["message"].split("\n")
        assert rows[5:7] == ["payouts: UNLIMITED", "in all: NO LIMIT"]
        for n in range(3):
            assert s.rpc.call("receiveinvoice", [invoice_for(r["bolt12"], n=n)])["status"] == "paid"
    finally:
        assert s.stop() == 0, s.output()


# --- the bound under concurrency: stores, --workers, two instances ----------------------


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    s: Store
    if request.param == "sqlite":
        s = SQLiteStore(tmp_path / "db.sqlite3")
    else:
        s = PostgresStore(request.getfixturevalue("pg_dsn"))
    await s.open()
    yield s
    await s.close()


def bounded(i: int, max_payouts: int | None, payout_until: int | None = None) -> Record:
    return record(
        i, single_use=False, max_payouts=max_payouts, payout_until=payout_until,
        approval_required=True,
    )  # fmt: skip


#: What a payout approval stores, in the store tests (its content is the approver's business).
EVIDENCE = {"message": "invreq payout v1 ...", "signature": "sig", "pubkey": "02" * 33}


async def test_the_store_keeps_the_bound_and_counts_it_in_the_claim(store: Store) -> None:
    import asyncio

    await store.insert(bounded(1, 3))
    got = await store.get(f"{1:064x}")
    assert got is not None and got.max_payouts == 3 and got.approval_required
    results = await asyncio.gather(
        *(store.payment_claim(attempt(1, h)) for h in range(100, 130)), return_exceptions=True
    )
    assert sum(1 for x in results if not isinstance(x, BaseException)) == 3
    assert all(isinstance(x, PayoutBoundReached) for x in results if isinstance(x, BaseException))
    # A failed payout frees its place; a paid one keeps it.
    first, second = (await store.payments())[:2]
    await store.payment_finish(first.payment_id, "failed", NOW)
    await store.payment_finish(second.payment_id, "paid", NOW)
    assert (await store.payment_claim(attempt(1, 200))).new
    with pytest.raises(PayoutBoundReached):
        await store.payment_claim(attempt(1, 201))
    # The window: no claim at or after payout_until.
    await store.insert(bounded(2, None, payout_until=NOW + 10))
    assert (await store.payment_claim(attempt(2, 300, at=NOW + 9))).new
    with pytest.raises(PayoutBoundReached, match="payout window ended"):
        await store.payment_claim(attempt(2, 301, at=NOW + 10))


async def test_a_payout_approval_is_stored_with_its_pending_payment(store: Store) -> None:
    await store.insert(bounded(1, 2))
    claimed = (await store.payment_claim(attempt(1, 7))).payment
    approved = await store.payment_approved(claimed.payment_id, EVIDENCE)
    assert approved.payout_approval == EVIDENCE
    assert (await store.payment_by_hash(claimed.payment_hash)) == approved
    await store.payment_finish(claimed.payment_id, "paid", NOW)
    with pytest.raises(PaymentNotPending):
        await store.payment_approved(claimed.payment_id, EVIDENCE)


async def test_an_approval_given_late_moves_the_attempt_deadline(store: Store) -> None:
    """Approvals queue on one device, and the queue's wait is not counted: a payout approved
    after its claim's attempt_deadline is paid from then on. Its deadline moves with the
    approval, so another instance's reconciler (or resolvepayment) cannot settle it failed
    (a node record 'failed' between xpay's retries) while xpay may still pay it."""
    await store.insert(bounded(1, 2))
    claimed = (await store.payment_claim(attempt(1, 8))).payment
    assert claimed.attempt_deadline == NOW + 70
    approved = await store.payment_approved(claimed.payment_id, EVIDENCE, NOW + 500)
    assert approved.attempt_deadline == NOW + 500
    assert (await store.payment_by_hash(claimed.payment_hash)) == approved
    # Never earlier than it was, and unchanged when none is given.
    again = await store.payment_approved(claimed.payment_id, EVIDENCE, NOW + 10)
    assert again.attempt_deadline == NOW + 500
    assert (await store.payment_approved(claimed.payment_id, EVIDENCE)).attempt_deadline == (
        NOW + 500
    )


def race(servers: list[Server], bolt12: str, n: int) -> list[Any]:
    """``n`` invoices for one request sent at once, spread over ``servers``."""

    def send(i: int) -> Any:
        try:
            return servers[i % len(servers)].rpc.call("receiveinvoice", [invoice_for(bolt12, n=i)])
        except RpcError as e:
            return e.error

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(send, range(n)))


def bound_of_3_holds_in_a_race_of_12(servers: list[Server], ln: FakeLightningd) -> str:
    """A request bounded to 3 payouts, made on the first server, gets 12 invoices at once
    spread over ``servers``: 3 are paid and 9 refused for the bound. Returns its invreq_id."""
    r = servers[0].rpc.call(
        "invoicerequest",
        {"amount": 1000, "description": "race", "single_use": False, "max_payouts": 3},
    )
    results = race(servers, r["bolt12"], 12)
    paid = [x for x in results if x.get("status") == "paid"]
    refused = [x for x in results if x.get("code") == BOUND_REACHED]
    assert len(paid) == 3 and len(refused) == 9, results
    assert len(ln.xpays()) == 3
    return r["invreq_id"]  # type: ignore[no-any-return]


def test_the_bound_holds_across_workers_on_sqlite(tmp_path: Path, lightningd: Any) -> None:
    ln = lightningd()
    s = serve(tmp_path, ln, "--workers", "2").start()
    try:
        bound_of_3_holds_in_a_race_of_12([s], ln)
    finally:
        assert s.stop() == 0, s.output()


def test_the_bound_holds_across_two_instances_on_postgresql(
    tmp_path: Path, lightningd: Any, pg_dsn: str
) -> None:
    ln = lightningd()
    a = serve(tmp_path / "a", ln, db=pg_dsn).start()
    b = serve(tmp_path / "b", ln, db=pg_dsn).start()
    try:
        invreq_id = bound_of_3_holds_in_a_race_of_12([a, b], ln)
        assert len(b.rpc.call("listpayments", {"invreq_id": invreq_id})["payments"]) == 3
    finally:
        assert a.stop() == 0, a.output()
        assert b.stop() == 0, b.output()


# --- 2. the pay path checks the approval --------------------------------------------------


@pytest.mark.hwilib
def test_a_request_made_under_approver_none_is_refused_after_a_restart_with_approver_hwi(
    tmp_path: Path, liar: LyingDevice, lightningd: Any
) -> None:
    ln = lightningd()
    s = serve(tmp_path, ln).start()
    try:
        r = s.rpc.call("invoicerequest", [1000, "made without an approver"])
        assert "approval_required" not in listed(s, r["invreq_id"])
    finally:
        assert s.stop() == 0, s.output()
    s = serve(tmp_path, ln, "--approver", "hwi", *DEVICE).start()
    try:
        e = error_of(s, "receiveinvoice", [invoice_for(r["bolt12"])])
        assert e["code"] == NOT_APPROVED and "has no approval" in e["message"], e
        assert ln.xpays() == []
        assert s.rpc.call("listpayments")["payments"] == []
    finally:
        assert s.stop() == 0, s.output()


@pytest.mark.hwilib
def test_a_request_made_under_approver_hwi_is_not_paid_without_the_approval_key(
    tmp_path: Path, liar: LyingDevice, lightningd: Any
) -> None:
    ln = lightningd()
    s = serve(tmp_path, ln, "--approver", "hwi", *DEVICE).start()
    try:
        r = s.rpc.call("invoicerequest", [1000, "approved"])
    finally:
        assert s.stop() == 0, s.output()
    s = serve(tmp_path, ln).start()  # restarted without the approver
    try:
        e = error_of(s, "receiveinvoice", [invoice_for(r["bolt12"])])
        assert e["code"] == NOT_APPROVED and "without --approver hwi" in e["message"], e
        assert ln.xpays() == []
    finally:
        assert s.stop() == 0, s.output()


@pytest.mark.hwilib
def test_a_bound_or_approval_changed_in_the_database_is_refused(
    tmp_path: Path, liar: LyingDevice, lightningd: Any
) -> None:
    ln = lightningd()
    s = serve(tmp_path, ln, "--approver", "hwi", *DEVICE).start()
    try:
        r = s.rpc.call(
            "invoicerequest",
            {"amount": 1000, "description": "b", "single_use": False, "max_payouts": 1},
        )
        other = s.rpc.call("invoicerequest", [2000, "another"])
    finally:
        assert s.stop() == 0, s.output()
    db = sqlite3.connect(tmp_path / "data" / "regtest" / "invreq.sqlite3")
    with db:
        # Someone with write access to the database raises the bound ...
        db.execute(
            "UPDATE invoice_requests SET max_payouts = 100 WHERE invreq_id = ?", (r["invreq_id"],)
        )
        # ... and gives a request another request's approval.
        (theirs,) = db.execute(
            "SELECT approval FROM invoice_requests WHERE invreq_id = ?", (r["invreq_id"],)
        ).fetchone()
        db.execute(
            "UPDATE invoice_requests SET approval = ? WHERE invreq_id = ?",
            (theirs, other["invreq_id"]),
        )
    db.close()
    s = serve(tmp_path, ln, "--approver", "hwi", *DEVICE).start()
    try:
        e = error_of(s, "receiveinvoice", [invoice_for(r["bolt12"])])
        assert e["code"] == NOT_APPROVED and "is not the one approved" in e["message"], e
        e = error_of(s, "receiveinvoice", [invoice_for(other["bolt12"])])
        assert e["code"] == NOT_APPROVED and "does not verify" in e["message"], e
        assert ln.xpays() == []
    finally:
        assert s.stop() == 0, s.output()


# --- 3. --payout-approver hwi --------------------------------------------------------------


@pytest.mark.hwilib
def test_payout_approver_approve_decline_and_timeout(
    tmp_path: Path, liar: LyingDevice, lightningd: Any
) -> None:
    ln = lightningd()
    s = serve(
        tmp_path, ln, "--approver", "hwi", "--payout-approver", "hwi", "--hwi-timeout", "3",
        *DEVICE,
    ).start()  # fmt: skip
    try:
        r = s.rpc.call(
            "invoicerequest",
            {"amount": 1_000_000, "description": "atm", "label": "till\t7\n",
             "single_use": False, "max_payouts": 3},
        )  # fmt: skip
        # Approved: shown, signed, verified, stored with the payment; xpay gets the fee limit.
        inv = invoice_for(r["bolt12"], n=0)
        paid = s.rpc.call("receiveinvoice", [inv])
        assert paid["status"] == "paid"
        a = paid["payout_approval"]
        rows = a["message"].split("\n")
        assert rows[0] == "invreq payout v1" and rows[2] == "pay: 1000000 msat"
        assert "fee limit: 10000 msat" in rows
        assert rows[rows.index("request:") + 1] == r["invreq_id"]
        assert "> till\\u{9}7\\u{a}" in rows  # the label, quoted and escaped
        assert rows[-1] == payment_hash_of(inv)
        assert approval.recover_bip137(a["message"], a["signature"]) == approval_key()
        assert a["pubkey"] == approval_key().hex()
        assert ln.xpay_params()[-1]["maxfee"] == 10_000
        listed_pay = s.rpc.call("listpayments", {"invreq_id": r["invreq_id"]})["payments"]
        assert listed_pay[0]["payout_approval"] == a
        # Declined on the device: failed, never sent to the node.
        liar.device.policy = Policy("deny")
        inv = invoice_for(r["bolt12"], n=1)
        e = error_of(s, "receiveinvoice", [inv])
        assert e["code"] == DECLINED and "declined" in e["message"], e
        # Not answered in time: the same.
        liar.device.policy = Policy("auto")
        liar.lie("sign_message", "silent")
        e = error_of(s, "receiveinvoice", [invoice_for(r["bolt12"], n=2)])
        assert e["code"] == DECLINED and "within 3 s" in e["message"], e
        liar.honest()
        assert len(ln.xpays()) == 1
        pays = s.rpc.call("listpayments", {"invreq_id": r["invreq_id"]})["payments"]
        assert [p["status"] for p in pays] == ["paid", "failed", "failed"]
        assert "declined" in pays[1]["error"] and "payout_approval" not in pays[1]
        # A declined invoice is not tried again; a new one can be approved.
        assert error_of(s, "receiveinvoice", [inv])["code"] == 2110
        assert s.rpc.call("receiveinvoice", [invoice_for(r["bolt12"], n=3)])["status"] == "paid"
    finally:
        assert s.stop() == 0, s.output()


@pytest.mark.hwilib
def test_payout_approver_alone_opens_the_device_for_payouts(
    tmp_path: Path, liar: LyingDevice, lightningd: Any
) -> None:
    ln = lightningd()
    s = serve(tmp_path, ln, "--payout-approver", "hwi", *DEVICE).start()
    try:
        r = s.rpc.call("invoicerequest", [2000, "no request approver"])
        assert "approval" not in listed(s, r["invreq_id"])
        paid = s.rpc.call("receiveinvoice", [invoice_for(r["bolt12"])])
        assert paid["status"] == "paid"
        a = paid["payout_approval"]
        assert approval.recover_bip137(a["message"], a["signature"]) == approval_key()
        assert (tmp_path / "data" / "regtest" / "hwi-keys").exists()  # pinned like any device
    finally:
        assert s.stop() == 0, s.output()


@pytest.mark.hwilib
def test_a_request_made_under_payout_approver_hwi_is_paid_only_with_that_device(
    tmp_path: Path, liar: LyingDevice, lightningd: Any
) -> None:
    # The setting is stored with the request: a restart without --payout-approver does not
    # pay it (before: it paid with nobody asked); with the device back, it is asked again.
    ln = lightningd()
    s = serve(tmp_path, ln, "--payout-approver", "hwi", *DEVICE).start()
    try:
        r = s.rpc.call("invoicerequest", {"amount": 3000, "description": "atm", "single_use": False,
                                          "max_payouts": 2})  # fmt: skip
        assert listed(s, r["invreq_id"])["payout_approver_key"] == approval_key().hex()
    finally:
        assert s.stop() == 0, s.output()
    s = serve(tmp_path, ln).start()
    try:
        e = error_of(s, "receiveinvoice", [invoice_for(r["bolt12"], n=1)])
        assert e["code"] == NOT_APPROVED and "without --payout-approver hwi" in e["message"], e
        assert approval_key().hex() in e["message"]
        assert ln.xpays() == [] and s.rpc.call("listpayments")["payments"] == []
    finally:
        assert s.stop() == 0, s.output()
    s = serve(tmp_path, ln, "--payout-approver", "hwi", *DEVICE).start()
    try:
        paid = s.rpc.call("receiveinvoice", [invoice_for(r["bolt12"], n=2)])
        assert paid["status"] == "paid" and paid["payout_approval"]["pubkey"] == (
            approval_key().hex()
        )
        assert len(ln.xpays()) == 1
    finally:
        assert s.stop() == 0, s.output()


@pytest.mark.hwilib
def test_another_instance_without_payout_approver_refuses_a_request_made_with_one(
    tmp_path: Path, liar: LyingDevice, lightningd: Any, pg_dsn: str
) -> None:
    # Two instances on one PostgreSQL database, only one with --payout-approver hwi.
    ln = lightningd()
    plain = serve(tmp_path / "plain", ln, db=pg_dsn).start()
    guarded = serve(tmp_path / "guarded", ln, "--payout-approver", "hwi", *DEVICE, db=pg_dsn)
    guarded.start()
    try:
        r = guarded.rpc.call("invoicerequest", [2000, "approve each payout"])
        e = error_of(plain, "receiveinvoice", [invoice_for(r["bolt12"])])
        assert e["code"] == NOT_APPROVED and "without --payout-approver hwi" in e["message"], e
        # A request the plain one made is paid by either; the guarded one still asks.
        other = plain.rpc.call("invoicerequest", [1000, "no payout approver"])
        assert "payout_approver_key" not in listed(plain, other["invreq_id"])
        paid = guarded.rpc.call("receiveinvoice", [invoice_for(other["bolt12"], n=1)])
        assert paid["status"] == "paid" and "payout_approval" in paid
        again = invoice_for(r["bolt12"], n=2)  # a payment_hash of its own
        assert guarded.rpc.call("receiveinvoice", [again])["status"] == "paid"
        assert len(ln.xpays()) == 2
    finally:
        assert plain.stop() == 0, plain.output()
        assert guarded.stop() == 0, guarded.output()


class _StubApprover:
    """Stands in for a payout approver: a key, and the evidence it answers with."""

    def __init__(self, pubkey: bytes, evidence: dict[str, Any] | None = None) -> None:
        self.pubkey = pubkey
        self.evidence = evidence

    async def approve(self, text: str) -> dict[str, Any]:
        assert self.evidence is not None
        return self.evidence


async def test_a_payout_approver_with_another_key_does_not_pay(store: Store) -> None:
    from invreq.errors import PaymentNotApproved, PayoutDeclined
    from invreq.payments.authority import PayoutAuthority

    made_with = bytes.fromhex("02" + "11" * 32)
    other = bytes.fromhex("03" + "22" * 32)
    await store.insert(record(1, payout_approver_key=made_with.hex()))
    got = await store.get(f"{1:064x}")
    assert got is not None and got.payout_approver_key == made_with.hex()  # kept by the store
    with pytest.raises(PaymentNotApproved, match="without --payout-approver hwi"):
        PayoutAuthority(network="regtest").check(got)
    stranger = PayoutAuthority(network="regtest", payout_approver=_StubApprover(other))  # type: ignore[arg-type]
    with pytest.raises(PaymentNotApproved, match=f"has the key {other.hex()}"):
        stranger.check(got)
    # The right key passes the check; a device that then answers with another key's
    # evidence is declined (the evidence is checked against the stored key too).
    liar_evidence = {"pubkey": other.hex(), "message": "x", "signature": "y"}
    same = PayoutAuthority(
        network="regtest", payout_approver=_StubApprover(made_with, liar_evidence)  # type: ignore[arg-type]
    )
    same.check(got)
    claimed = (await store.payment_claim(attempt(1, 9))).payment
    with pytest.raises(PayoutDeclined, match="not a signature over the payment shown"):
        await same.approve_payout(
            got, claimed, payee_node_id=other, introductions=[], fee_limit=5000
        )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"payout_approver": "hwi", "signer": "hwi"}, "--payout-approver hwi: the device holds"),
        ({"payout_approver": "hwi", "pay_with": "none"}, "nothing is paid with --pay-with none"),
        ({"payout_approver": "hwi", "workers": 2}, "--workers"),
        ({"payout_approver": "yes"}, "--payout-approver: 'yes'"),
        ({"hwi_pubkey": "02ab"}, "--hwi-pubkey: '02ab' is not a compressed public key"),
        ({"hwi_fingerprint": "xyz"}, "--hwi-fingerprint: 'xyz' is not 8 hex digits"),
    ],
)
def test_options_that_cannot_work_are_refused(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    from invreq.config import Config, ConfigError

    base: dict[str, Any] = {"data_dir": tmp_path, "network": "regtest", "pay_with": "cln:/x"}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        Config(**{**base, **changes}).validate()


async def test_the_migration_marks_requests_stored_with_an_approval_as_needing_one(
    tmp_path: Path,
) -> None:
    # A database from before the bound: a request with an approval needs one from now on,
    # one without does not (it was made without an approver).
    from invreq.store.rows import bound_migration
    from invreq.store.sqlite import MIGRATIONS

    before = MIGRATIONS.index(bound_migration("INTEGER", "INTEGER", "0"))
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.create_function("invreq_rune_restrictions", 1, lambda r: r)
    for statements in MIGRATIONS[:before]:
        for statement in statements:
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version={before}")
    for i, evidence in ((1, '{"message": "invreq approval v1"}'), (2, None)):
        conn.execute(
            "INSERT INTO invoice_requests (invreq_id, bolt12, label, active, single_use, used,"
            " created_at, payer_key, approval) VALUES (?, 'lnr1x', NULL, 1, 1, 0, 0, 's', ?)",
            (f"{i:064x}", evidence),
        )
    conn.commit()
    conn.close()
    store = SQLiteStore(path)
    await store.open()
    try:
        approved, plain = await store.get(f"{1:064x}"), await store.get(f"{2:064x}")
        assert approved is not None and approved.approval_required
        assert plain is not None and not plain.approval_required
        assert plain.max_payouts is None and plain.payout_until is None
    finally:
        await store.close()


@pytest.mark.hwilib
def test_another_instance_with_approver_hwi_refuses_a_request_made_without_one(
    tmp_path: Path, liar: LyingDevice, lightningd: Any, pg_dsn: str
) -> None:
    # Two instances on one PostgreSQL database: one without an approver makes a request,
    # the one with --approver hwi refuses to pay it; the one without pays only requests
    # that need no approval.
    ln = lightningd()
    plain = serve(tmp_path / "plain", ln, db=pg_dsn).start()
    guarded = serve(tmp_path / "guarded", ln, "--approver", "hwi", *DEVICE, db=pg_dsn).start()
    try:
        unapproved = plain.rpc.call("invoicerequest", [1000, "no approver here"])
        e = error_of(guarded, "receiveinvoice", [invoice_for(unapproved["bolt12"])])
        assert e["code"] == NOT_APPROVED and "has no approval" in e["message"], e
        approved = guarded.rpc.call("invoicerequest", [2000, "approved there"])
        e = error_of(plain, "receiveinvoice", [invoice_for(approved["bolt12"])])
        assert e["code"] == NOT_APPROVED and "without --approver hwi" in e["message"], e
        assert guarded.rpc.call("receiveinvoice", [invoice_for(approved["bolt12"])])["status"] == (
            "paid"
        )
        assert len(ln.xpays()) == 1
    finally:
        assert plain.stop() == 0, plain.output()
        assert guarded.stop() == 0, guarded.output()
