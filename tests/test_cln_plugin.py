"""Invoices arriving over our blinded path, through the real ``invreq-cln-plugin``.

What stands in for lightningd: tests/fake_plugin_host.py speaks lightningd's plugin
protocol to the REAL plugin subprocess (the console script, pyln-client's ``Plugin``) and
serves lightningd's RPC socket, whose ``xpay``/``listpays`` it forwards to
tests/fake_lightningd.py (tests/_lightningd.py starts it; it pays nothing and logs every
xpay). The onion messages
themselves are not routed: the test calls the ``onion_message_recv_secret`` hook with the
payload lightningd would give it (shape measured on lightningd v26.06, see
CLN-NODE-FACTS.md). Everything on invreq's side is real: ``invreq serve`` with
``--pay-with cln:`` pointing at the host's socket, SQLite, the native core. Onions the
plugin injects are opened with the independent oracle tests/oracle/onion.py.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _lightningd import FakeLightningd
from _service_fixtures import Server
from coincurve import PrivateKey
from fake_plugin_host import PluginHost
from invreq import bolt12
from oracle import onion
from pyln.client import RpcError

NODE_SECRET = b"\x42" * 32  # the paying node's key, known to the test
PAYEE = PrivateKey(b"\x77" * 32)  # the payee's node (signs invoices, owns the reply path)
PLUGIN = shutil.which("invreq-cln-plugin", path=str(Path(sys.executable).parent))


class Rig:
    """fake lightningd (xpay) <- plugin host (lightningd's socket + the plugin) <- invreq."""

    def __init__(
        self, tmp: Path, *ln_args: str, timeout: float = 5.0, server_args: tuple[str, ...] = ()
    ) -> None:
        self.tmp = tmp
        (tmp / "ln").mkdir()
        node_id = PrivateKey(NODE_SECRET).public_key.format().hex()
        self.fake = FakeLightningd(tmp / "ln", *ln_args, node_id=node_id)
        self.host = PluginHost(tmp / "lightning", NODE_SECRET, forward=self.fake.socket)
        self.server = Server(
            tmp / "data", extra_args=["--pay-with", f"cln:{self.host.rpc_path}", *server_args]
        ).start()
        assert PLUGIN is not None, "the invreq-cln-plugin console script is not installed"
        self.manifest, self.init = self.host.start(
            [PLUGIN],
            {"invreq-rpc-file": str(self.server.socket_path), "invreq-timeout": str(timeout)},
        )

    @property
    def path_secret(self) -> bytes:
        return (self.tmp / "data" / "regtest" / "path_secret").read_bytes()

    def xpays(self) -> list[str]:
        return self.fake.xpays()

    def close(self) -> None:
        self.host.stop()
        if self.server.proc is not None and self.server.proc.poll() is None:
            assert self.server.stop() == 0, self.server.output()
        self.fake.stop()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Any]:
    made: list[Rig] = []

    def make(*args: str, timeout: float = 5.0, server_args: tuple[str, ...] = ()) -> Rig:
        r = Rig(tmp_path, *args, timeout=timeout, server_args=server_args)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def invoice_for(bolt12_str: str, *, n: int = 0, created_at: int | None = None) -> bolt12.Invoice:
    req = bolt12.decode_invoice_request(bolt12_str)
    preimage = hashlib.sha256(b"preimage %d" % n).digest()  # the stand-in payee knows it
    unsigned = bolt12.UnsignedInvoice(
        req.tlv_stream,
        created_at=int(time.time()) if created_at is None else created_at,
        payment_hash=hashlib.sha256(preimage).digest(),
        amount_msat=req.amount_msat or 0,
        node_id=PAYEE.public_key.format(),
    )
    return unsigned.with_signature(PAYEE.sign_schnorr(unsigned.digest, bytes(32)))


REPLY_PATH_ID = b"\x5a" * 32


def message(inv: bolt12.Invoice, pathsecret: bytes) -> dict[str, Any]:
    """The hook payload lightningd gives for an invoice arriving over a blinded path."""
    return {
        "onion_message": {
            "pathsecret": pathsecret.hex(),
            "reply_blindedpath": onion.blinded_path(PAYEE.secret, REPLY_PATH_ID, b"\x19" * 32),
            "invoice": inv.tlv_stream.hex(),
            "unknown_fields": [],
        }
    }


def our_path_id(r: Rig, bolt12_str: str) -> bytes:
    metadata = bolt12.decode_invoice_request(bolt12_str).metadata
    return hmac.new(r.path_secret, metadata, hashlib.sha256).digest()


def wait_for(cond: Any, what: str) -> None:
    deadline = time.monotonic() + 30
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def opened_invoice_error(r: Rig, via: tuple[bytes, ...] = ()) -> str:
    """Open the onion the plugin injected, as the nodes on its path would: our node first
    (with the path_key given to injectonionmessage), then the nodes of ``via`` (their
    secrets: the route the plugin found in gossip), then the payee on its reply path."""
    assert len(r.host.injected) == 1, r.host.injected
    inj = r.host.injected[0]
    packet: bytes | None = bytes.fromhex(inj["message"])
    key = bytes.fromhex(inj["path_key"])
    reply = onion.blinded_path(PAYEE.secret, REPLY_PATH_ID, b"\x19" * 32)
    forwarders = [NODE_SECRET, *via]
    following = [PrivateKey(v).public_key.format() for v in via] + [PAYEE.public_key.format()]
    for secret, expected_next in zip(forwarders, following, strict=True):
        # Each forwarding hop: a blinded hop of ours, naming the next node.
        assert packet is not None
        layer = onion.peel(packet, onion.blinded_secret(secret, key))
        assert layer.next_packet is not None
        _, data, key = onion.decrypt_hop(secret, key, layer.payload[4])
        assert data[4] == expected_next  # next_node_id
        packet = layer.next_packet
    assert key.hex() == reply["first_path_key"]  # the last of ours: next_path_key_override
    # The payee, last hop of its own reply path, finds the invoice_error.
    hop = reply["hops"][0]  # type: ignore[index]
    secret, theirs, _ = onion.decrypt_hop(
        PAYEE.secret, key, bytes.fromhex(hop["encrypted_recipient_data"])
    )
    assert theirs[6] == REPLY_PATH_ID
    assert packet is not None
    last = onion.peel(packet, secret)
    assert last.next_packet is None
    error = dict(bolt12.parse_tlv_stream(last.payload[68]))
    return error[5].decode()


def test_manifest_registers_the_hook_before_offers(rig: Any) -> None:
    r = rig()
    hooks = {h["name"]: h for h in r.manifest["hooks"]}
    assert hooks["onion_message_recv_secret"]["before"] == ["offers"]
    # Started with lightningd only: a `plugin start` at run time ran the hook after offers.
    assert r.manifest["dynamic"] is False
    assert {o["name"] for o in r.manifest["options"]} >= {"invreq-rpc-file", "invreq-timeout"}
    assert r.init == {}  # not disabled
    assert "handing invoices on our paths to invreq" in r.host.log_text()


def test_an_invoice_on_our_path_is_paid_through_xpay(rig: Any) -> None:
    r = rig()
    req = r.server.rpc.call("invoicerequest", {"amount": 50_000, "description": "payout"})
    inv = invoice_for(req["bolt12"])
    answer = r.host.hook("onion_message_recv_secret", message(inv, our_path_id(r, req["bolt12"])))
    assert answer == {"result": "stop"}  # claimed: CLN's offers plugin must not see it
    wait_for(lambda: r.xpays() == [inv.bolt12], "the xpay")
    wait_for(
        lambda: (
            [p["status"] for p in r.server.rpc.call("listpayments", [])["payments"]] == ["paid"]
        ),
        "the payment to be recorded",
    )
    listed = r.server.rpc.call("listinvoicerequests", [req["invreq_id"]])["invoicerequests"][0]
    assert listed["used"] is True and listed["active"] is False
    assert r.host.injected == []  # no error sent back
    assert "accepted" in r.host.log_text()


def test_an_invoice_answering_the_unsigned_form_is_paid_the_same(rig: Any) -> None:
    """LDK-based payees answer ``bolt12_unsigned``: same records below 160, same path."""
    r = rig()
    req = r.server.rpc.call("invoicerequest", {"amount": 7_000, "description": "for LDK"})
    inv = invoice_for(req["bolt12_unsigned"])
    assert inv.invreq_id.hex() == req["invreq_id"]
    answer = r.host.hook("onion_message_recv_secret", message(inv, our_path_id(r, req["bolt12"])))
    assert answer == {"result": "stop"}
    wait_for(lambda: r.xpays() == [inv.bolt12], "the xpay")


def test_a_foreign_pathsecret_passes_on_and_pays_nothing(rig: Any) -> None:
    r = rig()
    key = PrivateKey(b"\x05" * 32)
    foreign = bolt12.UnsignedInvoiceRequest(
        metadata=b"\x01" * 16,
        description="not ours",
        amount_msat=1000,
        payer_id=key.public_key.format(),
    )
    signed = foreign.with_signature(key.sign_schnorr(foreign.digest, bytes(32)))
    answer = r.host.hook(
        "onion_message_recv_secret", message(invoice_for(signed.bolt12), os.urandom(32))
    )
    assert answer == {"result": "continue"}
    # Messages without an invoice (an invoice_request for CLN's own offers) pass untouched.
    answer = r.host.hook(
        "onion_message_recv_secret",
        {"onion_message": {"pathsecret": "00" * 32, "invoice_request": "00", "unknown_fields": []}},
    )
    assert answer == {"result": "continue"}
    assert r.xpays() == [] and r.host.injected == []
    assert r.server.rpc.call("listpayments", [])["payments"] == []


def test_a_wrong_pathsecret_for_a_real_request_is_refused(rig: Any) -> None:
    r = rig()
    req = r.server.rpc.call("invoicerequest", [1000, "wrong path"])
    other = r.server.rpc.call("invoicerequest", [1000, "another request"])
    inv = invoice_for(req["bolt12"])
    # Another request's (valid) path_id: a path cannot collect another request's amount.
    answer = r.host.hook("onion_message_recv_secret", message(inv, our_path_id(r, other["bolt12"])))
    assert answer == {"result": "stop"}
    wait_for(lambda: r.host.injected, "the invoice_error")
    assert "did not arrive on the blinded path" in opened_invoice_error(r)
    assert r.xpays() == []
    listed = r.server.rpc.call("listinvoicerequests", [req["invreq_id"]])["invoicerequests"][0]
    assert listed["active"] is True and listed["used"] is False
    # The same invoice by hand (no pathsecret) is still good: only the path was wrong.
    assert r.server.rpc.call("receiveinvoice", [inv.bolt12])["status"] == "paid"


def test_a_bad_invoice_gets_an_invoice_error_over_the_reply_path(rig: Any) -> None:
    r = rig()
    req = r.server.rpc.call("invoicerequest", [1000, "expired invoice"])
    inv = invoice_for(req["bolt12"], created_at=int(time.time()) - 3 * 3600)  # 7200 s expiry
    answer = r.host.hook("onion_message_recv_secret", message(inv, our_path_id(r, req["bolt12"])))
    assert answer == {"result": "stop"}
    wait_for(lambda: r.host.injected, "the invoice_error")
    assert opened_invoice_error(r).startswith("invoice expired at ")
    assert r.xpays() == []
    assert "refused by invreq: 2105" in r.host.log_text()


def test_fifty_invoices_through_the_plugin_and_receiveinvoice_at_once_pay_once(
    rig: Any,
) -> None:
    r = rig("--delay", "0.2")
    req = r.server.rpc.call("invoicerequest", [1000, "race"])
    pid = our_path_id(r, req["bolt12"])
    invoices = [invoice_for(req["bolt12"], n=n) for n in range(50)]
    hook_answers = [
        r.host.send("onion_message_recv_secret", message(inv, pid)) for inv in invoices[:25]
    ]
    by_hand: list[Any] = [None] * 25

    def pay(i: int) -> None:
        try:
            by_hand[i] = r.server.rpc.call("receiveinvoice", [invoices[25 + i].bolt12])["status"]
        except RpcError as err:
            by_hand[i] = err.error["code"]

    threads = [threading.Thread(target=pay, args=(i,)) for i in range(25)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    answers = [f.result(60)["result"] for f in hook_answers]
    assert answers == [{"result": "stop"}] * 25  # every one ours: claimed or refused
    assert set(by_hand) <= {"paid", 2102, 2103}, by_hand
    wait_for(
        lambda: not r.server.rpc.call("listpayments", {"status": "pending"})["payments"],
        "the payment to settle",
    )
    assert len(r.xpays()) == 1
    pays = r.server.rpc.call("listpayments", [])["payments"]
    assert [p["status"] for p in pays] == ["paid"]
    # The 49 refused: each got an invoice_error if it came through the plugin.
    claimed_by_plugin = by_hand.count("paid") == 0
    wait_for(lambda: len(r.host.injected) == 25 - claimed_by_plugin, "the invoice_errors")


def test_invreq_down_the_hook_passes_the_message_on(rig: Any, tmp_path: Path) -> None:
    r = rig(timeout=1.0)
    req = r.server.rpc.call("invoicerequest", [1000, "invreq goes away"])
    msg = message(invoice_for(req["bolt12"]), our_path_id(r, req["bolt12"]))
    assert r.server.stop() == 0
    # The socket is gone: connection refused, answered at once.
    assert r.host.hook("onion_message_recv_secret", msg) == {"result": "continue"}
    # A server that accepts and never answers: the hook still answers, after invreq-timeout.
    hung = socket.socket(socket.AF_UNIX)
    hung.bind(str(r.server.socket_path))
    hung.listen(8)
    try:
        assert r.host.hook("onion_message_recv_secret", msg) == {"result": "continue"}
    finally:
        hung.close()
    assert r.xpays() == [] and r.host.injected == []
    assert r.host.log_text().count("invreq unreachable") == 2


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({}, "invreq-rpc-file"),
        ({"invreq-rpc-file": "/nowhere", "invreq-timeout": "soon"}, "invreq-timeout"),
        ({"invreq-rpc-file": "/nowhere", "invreq-timeout": "0"}, "invreq-timeout"),
    ],
)
def test_the_plugin_disables_itself_when_it_cannot_work(
    tmp_path: Path, options: dict[str, str], named: str
) -> None:
    host = PluginHost(tmp_path / "lightning", NODE_SECRET)
    try:
        assert PLUGIN is not None
        _manifest, init = host.start([PLUGIN], options)
        assert named in init["disable"]  # lightningd unloads it and logs the reason
    finally:
        host.stop()


def test_an_invoice_of_ours_with_a_bad_signature_is_refused_and_garbage_passes_on(
    rig: Any,
) -> None:
    r = rig()
    req = r.server.rpc.call("invoicerequest", [1000, "tampered"])
    pid = our_path_id(r, req["bolt12"])
    good = invoice_for(req["bolt12"])
    # Flip a bit of the signature (the last record, type 240): the records still name our
    # request and came over its path, so it is ours, and refused.
    tampered = bytearray(good.tlv_stream)
    tampered[-1] ^= 1
    msg = message(good, pid)
    msg["onion_message"]["invoice"] = tampered.hex()
    assert r.host.hook("onion_message_recv_secret", msg) == {"result": "stop"}
    wait_for(lambda: r.host.injected, "the invoice_error")
    assert "signature" in opened_invoice_error(r)
    # Bytes that are no invoice at all cannot be shown to be ours: passed on untouched.
    msg["onion_message"]["invoice"] = "00ff"
    assert r.host.hook("onion_message_recv_secret", msg) == {"result": "continue"}
    assert r.xpays() == [] and len(r.host.injected) == 1


# --- refusals over any topology, and the paying node's id ----------------------------------

#: option_onion_messages (BOLT 9 bit 39, optional) as lightningd shows node features.
ONION_FEATURES = (1 << 39).to_bytes(5, "big").hex()
INTRODUCTION = PrivateKey(b"\x31" * 32)  # a public node between us and the payee


def _peer(key: PrivateKey, features: str = ONION_FEATURES) -> dict[str, Any]:
    return {"id": key.public_key.format().hex(), "connected": True, "features": features}


def _channel(src: PrivateKey, dst: PrivateKey, active: bool = True) -> dict[str, Any]:
    return {
        "source": src.public_key.format().hex(),
        "destination": dst.public_key.format().hex(),
        "active": active,
    }


def _node(key: PrivateKey, features: str = ONION_FEATURES) -> dict[str, Any]:
    return {"nodeid": key.public_key.format().hex(), "features": features}


def test_a_refusal_reaches_a_payee_that_is_not_a_peer_through_gossip(rig: Any) -> None:
    """The payee entered through an introduction node (--path-introduction): its reply path
    starts at itself, which is not our peer and has no address (connect fails, as measured
    on CLN v26.06). The plugin finds the route us -> C -> payee in the node's gossip, over
    onion-message nodes and active channel directions only, and sends the error along it."""
    r = rig()
    no_onion = PrivateKey(b"\x32" * 32)  # a peer without option_onion_messages
    down = PrivateKey(b"\x33" * 32)  # a peer whose channel to the payee is disabled
    r.host.connectable = set()
    r.host.peers = [_peer(INTRODUCTION), _peer(no_onion, features="00"), _peer(down)]
    r.host.channels = [
        _channel(no_onion, PAYEE),
        _channel(down, PAYEE, active=False),
        _channel(INTRODUCTION, PAYEE),
        _channel(PAYEE, INTRODUCTION),
    ]
    r.host.nodes = [_node(INTRODUCTION), _node(PAYEE), _node(no_onion, features="00"), _node(down)]
    req = r.server.rpc.call("invoicerequest", [1000, "behind an introduction"])
    inv = invoice_for(req["bolt12"], created_at=int(time.time()) - 3 * 3600)
    answer = r.host.hook("onion_message_recv_secret", message(inv, our_path_id(r, req["bolt12"])))
    assert answer == {"result": "stop"}
    wait_for(lambda: r.host.injected, "the invoice_error")
    assert opened_invoice_error(r, via=(INTRODUCTION.secret,)).startswith("invoice expired at ")
    assert "connect" not in r.host.rpc_calls  # a route was found: no connection attempted


def test_no_way_to_the_payee_is_one_log_line(rig: Any) -> None:
    r = rig()
    r.host.connectable = set()  # not a peer, not in gossip, no address
    req = r.server.rpc.call("invoicerequest", [1000, "unreachable payee"])
    inv = invoice_for(req["bolt12"], created_at=int(time.time()) - 3 * 3600)
    answer = r.host.hook("onion_message_recv_secret", message(inv, our_path_id(r, req["bolt12"])))
    assert answer == {"result": "stop"}  # still ours, still refused
    wait_for(lambda: "could not send invoice_error" in r.host.log_text(), "the log line")
    lines = [m for _, m in r.host.logs if "invoice_error" in m]
    assert len(lines) == 1 and "no route of onion-message nodes" in lines[0], lines
    assert r.host.injected == []


def test_the_invoice_error_never_names_the_paying_node(rig: Any) -> None:
    """A node behind --path-introduction is hidden from payees; an error naming it (here:
    a replay of an invoice still being paid, whose message names the attempting node)
    must not reveal it."""
    r = rig("--delay", "3")
    req = r.server.rpc.call("invoicerequest", [1000, "hidden node"])
    inv = invoice_for(req["bolt12"])
    msg = message(inv, our_path_id(r, req["bolt12"]))
    assert r.host.hook("onion_message_recv_secret", msg) == {"result": "stop"}
    wait_for(lambda: r.xpays(), "the xpay")
    assert r.host.hook("onion_message_recv_secret", msg) == {"result": "stop"}  # the replay
    wait_for(lambda: r.host.injected, "the invoice_error")
    text = opened_invoice_error(r)
    assert "pending" in text and "the paying node" in text, text
    assert r.host.node_id.hex() not in text


# --- a plugin that cannot work still lets lightningd run ----------------------------------

BLOCKER = """\
import sys

class _Broken:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            raise ImportError("induced for the test: " + name + " is broken")
        return None

sys.meta_path.insert(0, _Broken())
"""


@pytest.mark.parametrize("module", ["invreq._core", "invreq.onionreply"])
def test_an_import_failure_leaves_the_host_running_with_one_log_line(
    tmp_path: Path, module: str
) -> None:
    """A broken install (here: the import of the native core, or of the plugin's working
    part, fails, induced by a sitecustomize on PYTHONPATH): the plugin still answers
    getmanifest with its options (so lightningd accepts invreq-rpc-file= in its config and
    starts), says what is wrong in one log line, and passes every message on."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(BLOCKER.format(module=module))
    host = PluginHost(tmp_path / "lightning", NODE_SECRET)
    try:
        assert PLUGIN is not None
        env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"))
        manifest, init = host.start(
            [PLUGIN], {"invreq-rpc-file": str(tmp_path / "invreq-rpc")}, env=env
        )
        assert {o["name"] for o in manifest["options"]} == {"invreq-rpc-file", "invreq-timeout"}
        assert [h["name"] for h in manifest["hooks"]] == ["onion_message_recv_secret"]
        assert init == {}  # not disabled: it stays, answering continue
        payload = message(invoice_for(_any_request()), os.urandom(32))
        assert host.hook("onion_message_recv_secret", payload) == {"result": "continue"}
        assert host.proc is not None and host.proc.poll() is None
        assert len(host.logs) == 1, host.logs
        level, line = host.logs[0]
        assert level == "broken" and module in line and "passed on" in line, line
        assert host.rpc_calls == []
    finally:
        host.stop()


def _any_request() -> str:
    key = PrivateKey(b"\x06" * 32)
    unsigned = bolt12.UnsignedInvoiceRequest(
        metadata=b"\x02" * 16,
        description="any",
        amount_msat=1000,
        payer_id=key.public_key.format(),
    )
    return unsigned.with_signature(key.sign_schnorr(unsigned.digest, bytes(32))).bolt12


# --- a failed payment answers the payee at once ---------------------------------------------


def test_a_failed_payment_sends_the_payee_an_invoice_error(rig: Any) -> None:
    """The invoice is accepted (the hook answers stop), then xpay certainly fails (the
    stand-in node, --mode fail, as xpay's "Failed after N attempts"): invreq sends the payee
    the reason over its reply path through the node, so sendinvoice fails now instead of
    waiting out its timeout. The claim is released, as for any failed payment."""
    r = rig("--mode", "fail")
    req = r.server.rpc.call("invoicerequest", [1000, "no route"])
    inv = invoice_for(req["bolt12"])
    answer = r.host.hook("onion_message_recv_secret", message(inv, our_path_id(r, req["bolt12"])))
    assert answer == {"result": "stop"}
    wait_for(lambda: r.host.injected, "the invoice_error")
    text = opened_invoice_error(r)
    assert text.startswith("payment failed: xpay: ") and "no route" in text, text
    assert r.host.node_id.hex() not in text
    [p] = r.server.rpc.call("listpayments", [])["payments"]
    assert p["status"] == "failed"
    wait_for(lambda: "the payee was told it failed" in r.server.output(), "invreq's log line")


def test_a_pending_payment_tells_the_payee_nothing(rig: Any) -> None:
    r = rig("--mode", "hang")
    req = r.server.rpc.call("invoicerequest", [1000, "held HTLC"])
    inv = invoice_for(req["bolt12"])
    answer = r.host.hook("onion_message_recv_secret", message(inv, our_path_id(r, req["bolt12"])))
    assert answer == {"result": "stop"}
    wait_for(lambda: r.xpays(), "the xpay")
    r.fake.settle(inv.bolt12, "complete")  # the held HTLC resolves: paid
    wait_for(
        lambda: (
            [p["status"] for p in r.server.rpc.call("listpayments", [])["payments"]] == ["paid"]
        ),
        "the payment",
    )
    assert r.host.injected == []


@pytest.mark.parametrize(
    ("reply_path", "with_secret", "named"),
    [
        ({"first_node_id": "02" + "00" * 32}, True, "reply_path: should be an object with"),
        ({"first_node_id": "x", "first_path_key": "y", "hops": []}, True, "reply_path: should be"),
        (None, False, "reply_path: only with pathsecret"),
    ],
)
def test_a_bad_reply_path_is_a_clear_error_and_claims_nothing(
    rig: Any, reply_path: Any, with_secret: bool, named: str
) -> None:
    r = rig()
    req = r.server.rpc.call("invoicerequest", [1000, "bad reply path"])
    inv = invoice_for(req["bolt12"])
    good = onion.blinded_path(PAYEE.secret, REPLY_PATH_ID, b"\x19" * 32)
    params: dict[str, Any] = {"invoice": inv.bolt12, "reply_path": reply_path or good}
    if with_secret:
        params["pathsecret"] = our_path_id(r, req["bolt12"]).hex()
    with pytest.raises(RpcError) as e:
        r.server.rpc.call("receiveinvoice", params)
    assert e.value.error["code"] == -32602 and e.value.error["message"].startswith(named)
    assert r.server.rpc.call("listpayments", [])["payments"] == [] and r.xpays() == []


def test_a_payout_beyond_the_bound_gets_an_invoice_error_naming_it(rig: Any) -> None:
    # Issue 23: the bound is checked in the claim every door uses; from the plugin the
    # payee learns why in its invoice_error.
    r = rig()
    req = r.server.rpc.call(
        "invoicerequest",
        {"amount": 1000, "description": "bounded", "single_use": False, "max_payouts": 1},
    )
    assert r.server.rpc.call("receiveinvoice", [invoice_for(req["bolt12"]).bolt12])["status"] == (
        "paid"
    )
    inv = invoice_for(req["bolt12"], n=1)
    answer = r.host.hook("onion_message_recv_secret", message(inv, our_path_id(r, req["bolt12"])))
    assert answer == {"result": "stop"}
    wait_for(lambda: r.host.injected, "the invoice_error")
    assert "bound is reached: 1 of 1 payouts taken" in opened_invoice_error(r)
    assert len(r.xpays()) == 1
    assert "refused by invreq: 2115" in r.host.log_text()


@pytest.mark.hwilib
def test_a_payout_declined_on_the_device_gets_an_invoice_error_and_no_xpay(rig: Any) -> None:
    # Issue 23: --payout-approver hwi from the plugin. The hook is answered at once (the
    # person may take up to --hwi-timeout); the decline reaches the payee as its
    # invoice_error over the reply path, and the node is never asked to pay.
    from _lyingdevice import LyingDevice
    from invreq.refdevice.policy import Policy

    dev = LyingDevice(bytes(range(32)))
    try:
        device = ("--hwi-device-type", "jade", "--hwi-device-path", "tcp:127.0.0.1:30121")
        r = rig(server_args=("--payout-approver", "hwi", *device))
        req = r.server.rpc.call("invoicerequest", [1000, "declined payout"])
        dev.device.policy = Policy("deny")
        inv = invoice_for(req["bolt12"])
        answer = r.host.hook(
            "onion_message_recv_secret", message(inv, our_path_id(r, req["bolt12"]))
        )
        assert answer == {"result": "stop"}
        wait_for(lambda: r.host.injected, "the invoice_error")
        text = opened_invoice_error(r)
        assert "not approved on the device" in text and "declined" in text, text
        assert r.xpays() == []
        (p,) = r.server.rpc.call("listpayments")["payments"]
        assert p["status"] == "failed" and "payout_approval" not in p
        # The payee is not told the device's own text (its name, address, error): the
        # operator has it in the payment's error.
        from invreq.errors import PayoutDeclined

        assert text == PayoutDeclined.public, text
        assert "declined on the device:" in p["error"] and p["error"] != text
    finally:
        dev.close()
