"""Both Lightning worlds: the two strings of a request, `decode` as CLN answers, and an invoice
made by LDK (the `lightning` crate) for our request's unsigned form, received end to end.

LDK plays the payee through rust/invreq-core/examples/ldk_payee.rs, built and run with cargo
here (LDK is a dev-dependency of the core; nothing shipped links it). It reads the request
with LDK's own `Refund` parser and answers as an LDK node does, with a one-hop blinded
payment path made by LDK's public constructors. No Lightning node runs, so nothing is paid:
the service runs with `--pay-with none` and answers a valid invoice with 2107.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from _service_fixtures import Server
from invreq import bolt12
from invreq.errors import InvalidFieldError
from pyln.client import RpcError

ROOT = Path(__file__).resolve().parent.parent
PAYEE = ["cargo", "run", "-q", "--locked", "-p", "invreq-core", "--example", "ldk_payee", "--"]


def ldk_payee(lnr: str, payment_hash: bytes) -> subprocess.CompletedProcess[str]:
    """Runs LDK as the payee of `lnr`; the first run builds LDK (minutes, once)."""
    return subprocess.run(
        [*PAYEE, lnr, payment_hash.hex()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "CARGO_TERM_COLOR": "never"},
    )


@pytest.fixture
def none_server(tmp_path: Path) -> Any:
    s = Server(tmp_path / "data", extra_args=["--pay-with", "none"]).start()
    try:
        yield s
    finally:
        assert s.stop() == 0, s.output()


def test_a_request_has_two_strings_with_one_id(none_server: Server) -> None:
    r = none_server.rpc.call("invoicerequest", {"amount": 21_000, "description": "Café ⚡"})
    signed = bolt12.decode_invoice_request(r["bolt12"])
    unsigned = bolt12.decode_invoice_request(r["bolt12_unsigned"])
    assert signed.signature is not None and unsigned.signature is None
    assert signed.invreq_id.hex() == unsigned.invreq_id.hex() == r["invreq_id"]
    assert r["bolt12_unsigned"] == signed.bolt12_unsigned != r["bolt12"]
    listed = none_server.rpc.call("listinvoicerequests", [r["invreq_id"]])["invoicerequests"]
    assert listed[0]["bolt12_unsigned"] == r["bolt12_unsigned"]
    # decode, as CLN's: the unsigned form of a request answering no offer is valid.
    d = none_server.rpc.call("decode", [r["bolt12_unsigned"]])
    assert d["valid"] is True and "signature" not in d and list(d)[-1] == "valid"
    assert d["offer_description"] == "Café ⚡" and d["invreq_amount_msat"] == 21_000


# The first call builds LDK and the example (about two minutes of CPU, once): more than the
# suite's 120 s per test on a loaded machine. A ceiling against hangs, not a speed check.
@pytest.mark.timeout(1800)
def test_ldk_answers_the_unsigned_form_and_receiveinvoice_accepts_it(none_server: Server) -> None:
    r = none_server.rpc.call("invoicerequest", {"amount": 50_000, "description": "refund"})
    # LDK's Refund parser has no slot for a signature: the signed form is refused...
    refused = ldk_payee(r["bolt12"], bytes(32))
    assert refused.returncode == 1 and "LDK refuses the request" in refused.stderr, refused
    # ...and the unsigned form answered.
    payment_hash = hashlib.sha256(b"ldk preimage").digest()
    answered = ldk_payee(r["bolt12_unsigned"], payment_hash)
    assert answered.returncode == 0, answered.stderr
    invoice = answered.stdout.strip()
    d = none_server.rpc.call("decode", [invoice])
    assert d["type"] == "bolt12 invoice" and d["invreq_id"] == r["invreq_id"]
    assert d["invoice_payment_hash"] == payment_hash.hex() and d["invoice_amount_msat"] == 50_000
    with pytest.raises(RpcError) as e:
        none_server.rpc.call("receiveinvoice", [invoice])
    assert e.value.error["code"] == 2107, e.value.error  # valid, recorded, not paid
    pays = none_server.rpc.call("listpayments", {"invreq_id": r["invreq_id"]})["payments"]
    assert [(p["status"], p["payment_hash"]) for p in pays] == [("refused", payment_hash.hex())]


def _with_records(lnr: str, extra: list[tuple[int, bytes]]) -> str:
    """`lnr` (unsigned) with more records: a request as another wallet might write it."""
    records = bolt12.parse_tlv_stream(bolt12.decode_string(lnr)[1]) + extra
    return bolt12.encode_string("lnr", bolt12.encode_tlv_stream(sorted(records)))


def test_decode_reports_signatures_and_lists_unknown_records(none_server: Server) -> None:
    r = none_server.rpc.call("invoicerequest", {"amount": 1_000, "description": "x"})
    odd = _with_records(r["bolt12_unsigned"], [(101, b"hi"), (1_000_000_001, b"\x01")])
    d = none_server.rpc.call("decode", [odd])
    assert d["valid"] is True
    assert d["unknown_invoice_request_tlvs"] == [
        {"type": 101, "length": 2, "value": "6869"},
        {"type": 1_000_000_001, "length": 1, "value": "01"},
    ]
    assert list(d)[-2:] == ["unknown_invoice_request_tlvs", "valid"]
    # A request answering an offer must be signed: without one it is reported, not refused.
    issuer = bolt12.decode_invoice_request(r["bolt12"]).payer_id
    offer_like = _with_records(r["bolt12_unsigned"], [(22, issuer)])
    d = none_server.rpc.call("decode", [offer_like])
    assert d["valid"] is False
    assert d["warning_missing_invoice_request_signature"] == "Missing Signature"
    assert d["offer_issuer_id"] == issuer.hex()
    # Even records nobody knows are still refused, with the rule named.
    with pytest.raises(RpcError) as e:
        none_server.rpc.call("decode", [_with_records(r["bolt12_unsigned"], [(100, b"")])])
    assert e.value.error["code"] == -32602 and "unknown even type 100" in e.value.error["message"]


def test_decode_reads_offers(none_server: Server) -> None:
    # The offer of BOLT 12's string tests: amount, description, issuer and issuer id.
    offer = (
        "lno1pqps7sjqpgtyzm3qv4uxzmtsd3jjqer9wd3hy6tsw35k7msjzfpy7nz5yqcnygrfdej82um5wf5k2uckyy"
        "pwa3eyt44h6txtxquqh7lz5djge4afgfjn7k4rgrkuag0jsd5xvxg"
    )
    d = none_server.rpc.call("decode", [offer])
    assert d["type"] == "bolt12 offer" and d["valid"] is True and list(d)[-1] == "valid"
    raw = bolt12.decode_string(offer)[1]
    assert d["offer_id"] == hashlib.sha256(raw).hexdigest()
    assert d["offer_amount_msat"] == 1_000_000
    assert d["offer_description"] == "An example description"
    assert d["offer_issuer"] == "BOLT 12 industries"
    assert d["offer_issuer_id"] == (
        "02eec7245d6b7d2ccb30380bfbe2a3648cd7a942653f5aa340edcea1f283686619"
    )


def test_amounts_above_the_bitcoin_supply_are_refused(none_server: Server) -> None:
    with pytest.raises(RpcError) as e:
        none_server.rpc.call(
            "invoicerequest", {"amount": 2_100_000_000_000_000_001, "description": "x"}
        )
    assert e.value.error["code"] == -32602 and "21000000btc" in e.value.error["message"]
    # The core holds the same line for callers of invreq.bolt12 (the rule named).
    with pytest.raises(InvalidFieldError, match="above 21,000,000 BTC"):
        bolt12.UnsignedInvoiceRequest(
            metadata=b"m",
            description="x",
            amount_msat=2_100_000_000_000_000_001,
            payer_id=bytes.fromhex(none_server.rpc.call("getinfo")["id"]),
        )
