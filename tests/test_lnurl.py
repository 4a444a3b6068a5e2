"""The LNURL-withdraw door (LUD-01, LUD-03, LUD-17) onto the same requests as the BOLT 12 one.

Real ``invreq serve`` processes (real SQLite files, a real PostgreSQL server), a wallet
stand-in written with the ``lnurl`` library's wallet half and BOLT 11 invoices made with the
``bolt11`` library and a test key (tests/_wallet.py, NOT a real wallet), and
tests/fake_lightningd.py STANDING IN FOR lightningd (it answers xpay for BOLT 11 and BOLT 12
invoices and keeps a payment record; it pays nothing).

What must hold: a wallet collects a single-use request through its link and the node pays
it; each refusal is LUD-03's ``{"status": "ERROR", "reason": ...}``; whichever door collects
a request, the other is refused, and two doors racing pay once, across ``--workers`` and
across instances on one PostgreSQL database.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lnurl
import pytest
from _lightningd import FakeLightningd, error_of, invoice_for, payment_hash_of, wait_until
from _service_fixtures import Server
from _wallet import fetch, make_invoice, raw_callback, raw_get, withdraw
from invreq.errors import InvalidParams, InvoiceAmount, InvoiceExpired
from invreq.lnurl import Links, check_invoice
from pyln.client import RpcError

FAST = ["--pay-reconcile-interval", "0.2"]


def lnurl_server(
    tmp_path: Path, ln: FakeLightningd, *args: str, name: str = "data", db: str | None = None
) -> Server:
    s = Server(tmp_path / name, db=db)
    s.extra_args = [
        "--pay-with",
        f"cln:{ln.socket}",
        "--lnurl",
        "--public-url",
        f"http://127.0.0.1:{s.http_port}",
        *FAST,
        *args,
    ]
    return s


def payments(s: Server) -> list[dict[str, Any]]:
    return list(s.rpc.call("listpayments", [])["payments"])


def settled(s: Server) -> Callable[[], bool]:
    return lambda: bool(payments(s)) and all(p["status"] != "pending" for p in payments(s))


def is_error(body: dict[str, Any], *words: str) -> bool:
    """LUD-03's refusal, exactly: two keys, and a reason naming what is wrong."""
    return (
        set(body) == {"status", "reason"}
        and body["status"] == "ERROR"
        and all(w in body["reason"] for w in words)
    )


# --- the protocol, without a server ----------------------------------------------------


def test_links_decode_back_to_the_withdraw_url() -> None:
    links = Links.open("https://pay.example.com/invreq/")
    k1 = links.new_k1()
    out = links.links_json(k1)
    assert out["lnurl"].startswith("LNURL1") and out["lnurl"] == out["lnurl"].upper()
    assert (
        str(lnurl.decode(out["lnurl"]).url) == f"https://pay.example.com/invreq/lnurl/withdraw/{k1}"
    )
    assert out["lnurlw"] == f"lnurlw://pay.example.com/invreq/lnurl/withdraw/{k1}"
    assert str(lnurl.Lnurl(out["lnurlw"]).url) == links.link(k1)  # LUD-17: https again
    assert len(k1) == 64 and k1 != links.new_k1()


def test_withdraw_request_is_lud03_with_one_amount() -> None:
    links = Links.open("http://abcdefghijklmnop.onion")
    body = links.withdraw_request("ab" * 32, 50_000, "ATM")
    assert body == {
        "tag": "withdrawRequest",
        "callback": "http://abcdefghijklmnop.onion/lnurl/callback",
        "k1": "ab" * 32,
        "defaultDescription": "ATM",
        "minWithdrawable": 50_000,
        "maxWithdrawable": 50_000,
    }
    assert lnurl.LnurlWithdrawResponse(**body).maxWithdrawable == 50_000


def test_check_invoice_each_rule() -> None:
    now = int(time.time())
    good = make_invoice(50_000)
    ok = check_invoice(good, network="regtest", amount_msat=50_000, now=now)
    assert ok.amount_msat == 50_000 and ok.expires_at > now and len(ok.payment_hash) == 64
    cases: list[tuple[str, type[Exception], str]] = [
        (make_invoice(50_000, currency="tb"), InvalidParams, "another network"),
        (make_invoice(50_000, currency="bc"), InvalidParams, "another network"),
        (make_invoice(49_000), InvoiceAmount, "the request for 50000 msat"),
        (make_invoice(None), InvoiceAmount, "no amount"),
        (make_invoice(50_000, date=now - 700, expiry=600), InvoiceExpired, "expired"),
        (good[:-8] + ("q" if good[-8] != "q" else "p") + good[-7:], InvalidParams, "pr: "),
        ("lnbcrt1garbage", InvalidParams, "not a valid BOLT 11"),
        (invoice_like_bolt12(), InvalidParams, "not a valid BOLT 11"),
    ]
    for pr, cls, words in cases:
        with pytest.raises(cls) as e:
            check_invoice(pr, network="regtest", amount_msat=50_000, now=now)
        assert words in str(e.value), (words, str(e.value))
    # testnet and testnet4 share BOLT 11's prefix; signet has its own.
    for network, currency in (("testnet4", "tb"), ("signet", "tbs"), ("bitcoin", "bc")):
        pr = make_invoice(1000, currency=currency)
        assert check_invoice(pr, network=network, amount_msat=1000, now=now).amount_msat == 1000


def invoice_like_bolt12() -> str:
    return "lni1qqqqq"


# --- end to end ---------------------------------------------------------------------------


def test_a_wallet_collects_a_request_through_its_link(tmp_path: Path, lightningd: Any) -> None:
    ln = lightningd()
    s = lnurl_server(tmp_path, ln).start()
    try:
        r = s.rpc.call("invoicerequest", {"amount": 50_000, "description": "ATM withdrawal"})
        assert list(r)[:6] == [
            "invreq_id",
            "active",
            "single_use",
            "bolt12",
            "bolt12_unsigned",
            "lnurl",
        ]
        page = _page(r["page_url"])  # the payee page shows both doors
        assert f'href="lightning:{r["lnurl"]}"' in page and 'id="qr-lnurl"' in page
        assert f'href="lightning:{r["bolt12"]}"' in page
        res = fetch(r["lnurl"])  # the wallet scans the bech32 form
        assert (res.minWithdrawable, res.maxWithdrawable) == (50_000, 50_000)
        assert res.defaultDescription == "ATM withdrawal" and len(res.k1) == 64
        assert fetch(r["lnurlw"]).k1 == res.k1  # ... or the LUD-17 form
        pr = make_invoice(50_000)
        assert withdraw(res, pr) == "OK"
        wait_until(settled(s), what="paid in the background")
        [p] = payments(s)
        assert p["status"] == "paid" and p["door"] == "lnurl" and p["invoice"] == pr
        assert p["amount_msat"] == 50_000 and p["invreq_id"] == r["invreq_id"]
        listed = s.rpc.call("listinvoicerequests", [r["invreq_id"]])["invoicerequests"][0]
        assert listed["used"] is True and listed["active"] is False
        assert listed["lnurl"] == r["lnurl"] and listed["lnurlw"] == r["lnurlw"]
        assert ln.xpays() == [pr]
        # The k1 is useless now, and the link says so.
        assert is_error(raw_get(str(res.callback).replace("callback", f"withdraw/{res.k1}")))
        assert withdraw(res, make_invoice(50_000, n=1)).startswith("ERROR: invoice_request is not")
        # The payee page offers the link only while the request can be collected.
        assert r["lnurl"] not in _page(r["page_url"])
        # Reusable requests keep the BOLT 12 door only: one withdrawal per link.
        multi = s.rpc.call("invoicerequest", {"amount": 1, "description": "m", "single_use": False})
        assert "lnurl" not in multi and "lnurlw" not in multi
        assert ln.xpays() == [pr]
    finally:
        assert s.stop() == 0, s.output()


def _page(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as reply:
        return str(reply.read().decode())


def test_refusals_each_in_lud03_shape(tmp_path: Path, lightningd: Any) -> None:
    ln = lightningd()
    s = lnurl_server(tmp_path, ln).start()
    try:
        now = int(time.time())
        r = s.rpc.call("invoicerequest", [50_000, "refusals"])
        res = fetch(r["lnurl"])
        cb = str(res.callback)

        def callback(pr: str, k1: str = res.k1) -> dict[str, Any]:
            return raw_callback(cb, k1=k1, pr=pr)

        assert is_error(callback(make_invoice(49_999)), "invoice is for 49999 msat")
        assert is_error(callback(make_invoice(None)), "no amount")
        assert is_error(callback(make_invoice(50_000, currency="bc")), "another network")
        assert is_error(callback(make_invoice(50_000, currency="tb")), "another network")
        old = make_invoice(50_000, date=now - 3600, expiry=600)
        assert is_error(callback(old), "invoice expired at")
        assert is_error(callback("lnbcrt1nonsense"), "pr: not a valid BOLT 11 invoice")
        assert is_error(callback(make_invoice(50_000), k1="00" * 32), "k1: unknown")
        assert is_error(callback(make_invoice(50_000), k1="not-a-k1"), "k1: unknown")
        assert is_error(raw_callback(cb, k1=res.k1), "pr: missing")
        assert is_error(raw_callback(cb, pr=make_invoice(50_000)), "k1: missing")
        assert is_error(raw_get(cb.replace("callback", "withdraw/00")), "k1: unknown")
        assert ln.xpays() == [] and payments(s) == []  # nothing was claimed

        # A payment hash seen before (through either door) is refused: here one the BOLT 12
        # door paid, in a BOLT 11 invoice for another request.
        other = s.rpc.call("invoicerequest", [50_000, "other"])
        b12 = invoice_for(other["bolt12"], n=5)
        assert s.rpc.call("receiveinvoice", [b12])["status"] == "paid"
        same_hash = make_invoice(50_000, n=98, payment_hash=payment_hash_of(b12))
        assert is_error(callback(same_hash), "was received before")
        # The first good invoice is claimed; a second callback on the same link is refused
        # (while its payment runs: already claimed; once paid: not active).
        reused = make_invoice(50_000, n=99)
        assert callback(reused) == {"status": "OK"}
        assert is_error(callback(make_invoice(50_000, n=100)), "invoice_request is ")
        wait_until(settled(s), what="paid")
        assert is_error(callback(make_invoice(50_000, n=101)), "not active")
        # ... and so is a replay of the paid one (one payment per payment_hash).
        assert is_error(callback(reused), "was received before")
        # The BOLT 12 door is refused for a request the LNURL door collected.
        e = error_of(s, "receiveinvoice", [invoice_for(r["bolt12"], n=7)])
        assert e["code"] == 2102, e
        assert ln.xpays() == [b12, reused]
    finally:
        assert s.stop() == 0, s.output()


def test_refusals_name_no_operator_details() -> None:
    """Review (web): a wallet, holding only a k1, was told the approval key and the
    service's --approver configuration, the device's own error text with the payment's
    number, and how many attempts the whole service made in the last minute. Those
    refusals reach it as fixed sentences."""
    from invreq import lnurldoor
    from invreq.errors import PaymentLimited, PaymentNotApproved, PayoutDeclined

    key = "02" + "ab" * 32
    leaks = [
        PaymentNotApproved(f"invoice_request x: does not verify against the approval key {key}"),
        PayoutDeclined("payment 4711 was not approved on the device: Ledger 0x6985 user; not paid"),
        PaymentLimited("37 payment attempts in the last minute (--pay-attempts-per-minute)"),
    ]
    for e in leaks:
        reason = lnurldoor._reason(e)
        for secret in (key, "4711", "Ledger", "37 payment", "--pay-attempts"):
            assert secret not in reason, (e, reason)
    # The invoice's own refusals still say what is wrong with it.
    assert "49999" in lnurldoor._reason(InvoiceAmount("pr: invoice is for 49999 msat"))


def test_a_request_collected_by_bolt12_refuses_its_link(tmp_path: Path, lightningd: Any) -> None:
    ln = lightningd("--mode", "hang")
    s = lnurl_server(tmp_path, ln).start()
    try:
        r = s.rpc.call("invoicerequest", [2000, "bolt12 first"])
        res = fetch(r["lnurl"])
        inv = invoice_for(r["bolt12"])
        caller = threading.Thread(target=lambda: _ignore(s, inv), daemon=True)
        caller.start()
        ln.wait_for_xpays(1)  # the BOLT 12 payment is in flight: the request is claimed
        assert withdraw(res, make_invoice(2000)) == (
            "ERROR: invoice_request is single-use and already has a pending payment"
        )
        ln.settle(inv, "complete")
        wait_until(settled(s), what="paid")
        assert is_error(raw_callback(str(res.callback), k1=res.k1, pr=make_invoice(2000, n=1)))
        assert [p["door"] for p in payments(s)] == ["bolt12"]
        assert ln.xpays() == [inv]
    finally:
        assert s.stop() == 0, s.output()


def _ignore(s: Server, inv: str) -> None:
    try:
        s.rpc.call("receiveinvoice", [inv])
    except RpcError:
        pass


def test_a_failed_withdrawal_releases_the_request(tmp_path: Path, lightningd: Any) -> None:
    """As for BOLT 12: a failed payment releases the claim; the request is collectable
    again (through either door), and the failure stays listed."""
    ln = lightningd("--mode", "fail")
    s = lnurl_server(tmp_path, ln).start()
    try:
        r = s.rpc.call("invoicerequest", [3000, "fails"])
        res = fetch(r["lnurl"])
        first = make_invoice(3000)
        assert withdraw(res, first) == "OK"  # LUD-03: OK once claimed; paying follows
        wait_until(settled(s), what="failed")
        [p] = payments(s)
        assert p["status"] == "failed" and p["door"] == "lnurl"
        ln.restart("--mode", "succeed")
        second = make_invoice(3000, n=1)
        assert withdraw(res, second) == "OK"
        wait_until(lambda: [q["status"] for q in payments(s)] == ["failed", "paid"], what="paid")
        assert ln.xpays() == [first, second]
    finally:
        assert s.stop() == 0, s.output()


def test_a_crash_during_a_withdrawal_is_settled_from_the_node(
    tmp_path: Path, lightningd: Any
) -> None:
    """Pending and recovery exactly as for BOLT 12: killed with the payment in flight, the
    claim is held; the node completes it; the restarted service settles it paid."""
    ln = lightningd("--mode", "hang")
    s = lnurl_server(tmp_path, ln).start()
    r = s.rpc.call("invoicerequest", [4000, "crash"])
    res = fetch(r["lnurl"])
    pr = make_invoice(4000)
    assert withdraw(res, pr) == "OK"
    ln.wait_for_xpays(1)
    s.kill()
    ln.settle(pr, "complete")
    s.start()
    try:
        wait_until(settled(s), what="settled from the node's record")
        [p] = payments(s)
        assert p["status"] == "paid" and p["door"] == "lnurl" and p["payment_preimage"]
        assert error_of(s, "receiveinvoice", [invoice_for(r["bolt12"])])["code"] == 2102
        assert ln.xpays() == [pr]
    finally:
        assert s.stop() == 0, s.output()


def test_options_refused_in_one_line(tmp_path: Path) -> None:
    for args, words in [
        (["--lnurl", "--pay-with", "cln:/nowhere"], "--lnurl: give --public-url"),
        (["--lnurl", "--public-url", "http://127.0.0.1:1"], "--lnurl: a withdrawal link"),
        (
            ["--lnurl", "--pay-with", "cln:/nowhere", "--public-url", "http://pay.example.com"],
            "--public-url: 'http://pay.example.com' is not a base URL LNURL wallets accept",
        ),
    ]:
        s = Server(tmp_path / "cfg", extra_args=args)
        with pytest.raises(RuntimeError) as e:
            s.start()
        assert words in str(e.value), str(e.value)


# --- the two doors racing ------------------------------------------------------------------


def race_both_doors(servers: list[Server], ln: FakeLightningd, requests: int = 6) -> None:
    """For each of ``requests`` single-use requests, at once: two BOLT 12 invoices and two
    LNURL callbacks per server (each with its own invoice and payment_hash). Exactly one
    of them wins each request, and the node is asked to pay each request once."""
    made = [
        servers[0].rpc.call("invoicerequest", [10_000 + i, f"race {i}"]) for i in range(requests)
    ]
    jobs: list[tuple[int, Callable[[], str]]] = []
    for i, r in enumerate(made):
        k1 = fetch(r["lnurl"]).k1
        n = 0
        for s in servers:
            for _ in range(2):
                n += 1
                b12 = invoice_for(r["bolt12"], n=100 * i + n)
                b11 = make_invoice(10_000 + i, n=100 * i + n)
                jobs.append((i, lambda s=s, b12=b12: _bolt12_door(s, b12)))
                callback = f"http://127.0.0.1:{s.http_port}/lnurl/callback"
                jobs.append((i, lambda cb=callback, k1=k1, b11=b11: _lnurl_door(cb, k1, b11)))
    start = threading.Barrier(len(jobs))
    outcomes: list[list[str]] = [[] for _ in made]

    def run(i: int, job: Callable[[], str]) -> None:
        start.wait()
        outcomes[i].append(job())

    threads = [threading.Thread(target=run, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for i, got in enumerate(outcomes):
        assert len(got) == 4 * len(servers), got
        assert sum(o in ("paid", "OK") for o in got) == 1, (i, got)
    wait_until(settled(servers[0]), what="every payment settled")
    pays = payments(servers[0])
    assert sorted(p["invreq_id"] for p in pays if p["status"] == "paid") == sorted(
        r["invreq_id"] for r in made
    )
    assert all(p["status"] == "paid" for p in pays), pays  # no attempt other than the winners
    assert len(ln.xpays()) == requests  # one xpay per request, whichever door won
    assert {p["door"] for p in pays} <= {"bolt12", "lnurl"}
    for s in servers:
        for r in made:
            listed = s.rpc.call("listinvoicerequests", [r["invreq_id"]])["invoicerequests"][0]
            assert listed["used"] is True and listed["active"] is False


def _bolt12_door(s: Server, invoice: str) -> str:
    try:
        return str(s.rpc.call("receiveinvoice", [invoice])["status"])
    except RpcError as e:
        return f"refused {e.error['code']}"


def _lnurl_door(callback: str, k1: str, pr: str) -> str:
    body = raw_callback(callback, k1=k1, pr=pr)
    return "OK" if body == {"status": "OK"} else f"ERROR {body['reason']}"


def test_doors_race_on_sqlite_with_two_workers(tmp_path: Path, lightningd: Any) -> None:
    ln = lightningd("--delay", "0.3")
    s = lnurl_server(tmp_path, ln, "--workers", "2").start()
    try:
        race_both_doors([s], ln)
    finally:
        assert s.stop() == 0, s.output()


def test_doors_race_on_two_instances_on_postgresql(
    tmp_path: Path, lightningd: Any, pg_dsn: str
) -> None:
    ln = lightningd("--delay", "0.3")
    x = lnurl_server(tmp_path, ln, name="x", db=pg_dsn).start()
    y = lnurl_server(tmp_path, ln, name="y", db=pg_dsn).start()
    try:
        race_both_doors([x, y], ln)
    finally:
        for s in (x, y):
            assert s.stop() == 0, s.output()


# --- approvals (issue 23) apply at this door too ---------------------------------------------

DEVICE = ["--hwi-device-type", "jade", "--hwi-device-path", "tcp:127.0.0.1:30121"]


@pytest.fixture
def liar() -> Iterator[Any]:
    """The lying device (tests/_lyingdevice.py): the reference device's honest answers
    unless told to lie, over real hwilib."""
    from _lyingdevice import LyingDevice

    dev = LyingDevice(bytes(range(32)))
    yield dev
    dev.close()


@pytest.mark.hwilib
def test_approvals_hold_at_the_lnurl_door(tmp_path: Path, liar: Any, lightningd: Any) -> None:
    """The same claim: a request made without an approval is not paid by a service that
    requires one, and --payout-approver hwi shows each withdrawal on the device first (a
    decline is the wallet's ERROR, nothing sent to the node)."""
    from invreq.refdevice.policy import Policy

    ln = lightningd()
    s = lnurl_server(tmp_path, ln).start()
    try:
        unapproved = s.rpc.call("invoicerequest", [1000, "made without an approver"])
    finally:
        assert s.stop() == 0, s.output()
    s.extra_args += ["--approver", "hwi", "--payout-approver", "hwi", "--hwi-timeout", "5"]
    s.extra_args += DEVICE
    s.start()
    try:
        res = fetch(unapproved["lnurl"])
        refused = withdraw(res, make_invoice(1000))
        assert refused.startswith("ERROR: this request was not approved"), refused
        assert "--approver" not in refused  # the operator's configuration is not the wallet's
        r = s.rpc.call("invoicerequest", [2000, "approved on the device"])
        res = fetch(r["lnurl"])
        pr = make_invoice(2000, n=1)
        assert withdraw(res, pr) == "OK"
        wait_until(settled(s), what="paid")
        [p] = payments(s)
        assert p["status"] == "paid" and p["door"] == "lnurl"
        rows = p["payout_approval"]["message"].split("\n")
        assert "pay: 2000 msat" in rows and rows[-1] == p["payment_hash"]
        declined = s.rpc.call("invoicerequest", [3000, "declined on the device"])
        liar.device.policy = Policy("deny")
        reply = withdraw(fetch(declined["lnurl"]), make_invoice(3000, n=2))
        assert reply.startswith("ERROR: ") and "declined" in reply, reply
        assert ln.xpays() == [pr]
        assert [q["status"] for q in payments(s)] == ["paid", "failed"]
        # The wallet (anyone holding the link) is not told the device's own text: its
        # name and address, the device's error. The operator has it in the payment.
        from invreq.errors import PayoutDeclined

        assert reply == f"ERROR: {PayoutDeclined.public}", reply
        error = payments(s)[1]["error"]
        assert "declined on the device:" in error and error not in reply, error
    finally:
        assert s.stop() == 0, s.output()


def test_a_batch_of_requests_carries_links_too(tmp_path: Path, lightningd: Any) -> None:
    """invoicerequest calls in one JSON-RPC batch take the batched path: each single-use
    request still gets its own link, and each link withdraws its own request."""
    import json

    from _service_fixtures import raw_exchange

    ln = lightningd()
    s = lnurl_server(tmp_path, ln).start()
    try:
        batch = [
            {"jsonrpc": "2.0", "id": i, "method": "invoicerequest", "params": [1000 + i, f"b{i}"]}
            for i in range(3)
        ]
        [replies] = raw_exchange(s.socket_path, [json.dumps(batch).encode()], 1)
        made = [r["result"] for r in sorted(replies, key=lambda r: r["id"])]
        assert len({m["lnurl"] for m in made}) == 3
        for i, m in enumerate(made):
            assert fetch(m["lnurlw"]).maxWithdrawable == 1000 + i
        assert withdraw(fetch(made[1]["lnurl"]), make_invoice(1001)) == "OK"
        wait_until(settled(s), what="paid")
        assert [p["invreq_id"] for p in payments(s)] == [made[1]["invreq_id"]]
    finally:
        assert s.stop() == 0, s.output()
