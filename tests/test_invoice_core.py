"""BOLT 12 invoices through invreq.bolt12: build, sign, decode, and one refusal per reader rule.

An invoice answers a request built and signed here; its invreq_id must be the request's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import pytest
from coincurve import PrivateKey
from invreq import bolt12
from invreq.errors import DecodeError, InvalidFieldError, SignatureError
from invreq.views import blindedpay_json, paths_json

PAYER = PrivateKey(b"\x11" * 32)
NODE = PrivateKey(b"\x22" * 32)
AMOUNT = 1_000_000
CREATED_AT = 1_800_000_000
PAYMENT_HASH = hashlib.sha256(b"preimage").digest()


def _sign(key: PrivateKey, digest: bytes) -> bytes:
    """BIP-340 with an all-zero auxiliary random, as CLN signs."""
    return key.sign_schnorr(digest, aux_randomness=bytes(32))


def _request(unknown_records: Sequence[tuple[int, bytes]] = ()) -> bolt12.InvoiceRequest:
    unsigned = bolt12.UnsignedInvoiceRequest(
        metadata=b"\x07" * 16,
        description="ATM withdrawal",
        amount_msat=AMOUNT,
        payer_id=PAYER.public_key.format(),
        issuer="bank",
        absolute_expiry=1_900_000_000,
        chain=bolt12.chain_for_network("regtest"),
        unknown_records=unknown_records,
    )
    return unsigned.with_signature(_sign(PAYER, unsigned.digest))


def _unsigned(request: bolt12.InvoiceRequest, **extra: Any) -> bolt12.UnsignedInvoice:
    args: dict[str, Any] = {
        "created_at": CREATED_AT,
        "payment_hash": PAYMENT_HASH,
        "amount_msat": AMOUNT,
        "node_id": NODE.public_key.format(),
    }
    args.update(extra)
    return bolt12.UnsignedInvoice(request.tlv_stream, **args)


def _invoice(request: bolt12.InvoiceRequest, **extra: Any) -> bolt12.Invoice:
    unsigned = _unsigned(request, **extra)
    return unsigned.with_signature(_sign(NODE, unsigned.digest))


def test_an_invoice_for_our_request_decodes_with_its_invreq_id() -> None:
    request = _request()
    unsigned = _unsigned(request, relative_expiry=600, fee_base_msat=1000, cltv_expiry_delta=144)
    assert unsigned.invreq_id == request.invreq_id
    invoice = unsigned.with_signature(_sign(NODE, unsigned.digest))
    s = invoice.bolt12
    assert s.startswith(bolt12.INVOICE_HRP + "1")

    decoded = bolt12.decode_invoice(s)
    assert decoded == invoice
    assert decoded.invreq_id == request.invreq_id
    assert bolt12.decode_invoice_request(request.bolt12).invreq_id == decoded.invreq_id
    assert decoded.tlv_stream == invoice.tlv_stream
    assert bolt12.parse_invoice(decoded.tlv_stream) == invoice

    # Fields copied from the request.
    assert decoded.invreq_amount == AMOUNT
    assert decoded.invreq_payer_id == PAYER.public_key.format()
    assert decoded.invreq_metadata == b"\x07" * 16
    assert decoded.invreq_chain == bolt12.CHAINS["regtest"]
    assert decoded.offer_description == "ATM withdrawal"
    assert decoded.offer_issuer == "bank"
    assert decoded.offer_absolute_expiry == 1_900_000_000
    # The invoice's own.
    assert decoded.amount_msat == AMOUNT
    assert decoded.created_at == CREATED_AT
    assert decoded.relative_expiry == 600
    assert decoded.expires_at == CREATED_AT + 600
    assert decoded.payment_hash == PAYMENT_HASH
    assert decoded.node_id == NODE.public_key.format()
    assert decoded.features is None
    assert decoded.fallbacks is None
    assert decoded.unknown_records == []
    node_hex = NODE.public_key.format().hex()
    assert paths_json(decoded.paths) == [
        {
            "first_node_id": node_hex,
            "first_path_key": node_hex,
            "path": [{"blinded_node_id": node_hex, "encrypted_recipient_data": ""}],
        }
    ]
    assert blindedpay_json(decoded.blindedpay) == [
        {
            "fee_base_msat": 1000,
            "fee_proportional_millionths": 0,
            "cltv_expiry_delta": 144,
            "htlc_minimum_msat": 0,
            "htlc_maximum_msat": AMOUNT,
            "features": "",
        }
    ]
    assert len(decoded.signature) == 64
    assert hash(decoded) == hash(invoice)


def test_expiry_defaults_to_7200_seconds() -> None:
    invoice = _invoice(_request())
    assert invoice.relative_expiry is None
    assert invoice.expires_at == CREATED_AT + 7200


def test_unknown_odd_and_experimental_records_keep_the_invreq_id() -> None:
    request = _request(unknown_records=[(101, b"odd"), (1_000_000_001, b"\x01\x02")])
    invoice = _invoice(
        request, unknown_records=[(201, b"mine")], features=b"\x02\x00\x00", paths=None
    )
    decoded = bolt12.decode_invoice(invoice.bolt12)
    assert decoded.invreq_id == request.invreq_id
    assert decoded.unknown_records == [
        (101, b"odd"),
        (201, b"mine"),
        (1_000_000_001, b"\x01\x02"),
    ]
    assert decoded.features == b"\x02\x00\x00"


def test_given_paths_are_written_as_they_are() -> None:
    other = PrivateKey(b"\x33" * 32).public_key.format()
    one = other + other + b"\x01" + other + b"\x00\x02\xab\xcd"
    invoice = _invoice(_request(), paths=one + one)
    assert len(invoice.paths) == 2
    assert invoice.paths[0].hops[0].encrypted_recipient_data == b"\xab\xcd"
    assert invoice.paths[0].first_node_id == other
    assert len(invoice.blindedpay) == 2


def test_builder_refuses_what_a_reader_would_refuse() -> None:
    request = _request()
    with pytest.raises(InvalidFieldError, match="amount_msat"):
        _unsigned(request, amount_msat=AMOUNT + 1)
    with pytest.raises(InvalidFieldError, match="payment_hash"):
        _unsigned(request, payment_hash=b"\x00" * 31)
    with pytest.raises(InvalidFieldError, match="node_id"):
        _unsigned(request, node_id=b"\x09" * 33)
    with pytest.raises(InvalidFieldError, match="unknown_records"):
        _unsigned(request, unknown_records=[(178, b"")])
    with pytest.raises(InvalidFieldError, match="invoice_request"):
        bolt12.UnsignedInvoice(
            request.tlv_stream[:-70],
            created_at=CREATED_AT,
            payment_hash=PAYMENT_HASH,
            amount_msat=AMOUNT,
            node_id=NODE.public_key.format(),
        )
    # The unsigned form (what LDK reads) is the same request: an invoice for it is one for us.
    plain = bolt12.decode_invoice_request(request.bolt12_unsigned or "")
    assert _unsigned(plain).invreq_id == request.invreq_id
    unsigned = _unsigned(request)
    with pytest.raises(SignatureError, match="signature does not verify"):
        unsigned.with_signature(_sign(PAYER, unsigned.digest))


# --- one refusal per reader rule, through the public API -------------------------------------


def _records() -> list[tuple[int, bytes]]:
    """The records of a good unsigned invoice."""
    return bolt12.parse_tlv_stream(_unsigned(_request()).tlv_stream)


def _with(records: list[tuple[int, bytes]], t: int, v: bytes) -> list[tuple[int, bytes]]:
    return sorted([r for r in records if r[0] != t] + [(t, v)])


def _without(records: list[tuple[int, bytes]], t: int) -> list[tuple[int, bytes]]:
    return [r for r in records if r[0] != t]


def _signed(records: list[tuple[int, bytes]], key: PrivateKey = NODE) -> str:
    """Sign ``records`` properly with ``key``, so only the rule under test can fail."""
    stream = bolt12.encode_tlv_stream(records)
    digest = bolt12.signature_digest("invoice", "signature", bolt12.merkle_root(stream))
    signed = bolt12.encode_tlv_stream(sorted([*records, (240, _sign(key, digest))]))
    return bolt12.encode_string("lni", signed)


def test_the_reference_invoice_is_accepted() -> None:
    assert bolt12.decode_invoice(_signed(_records())).amount_msat == AMOUNT


@pytest.mark.parametrize(
    ("t", "name"),
    [
        (160, "invoice_paths"),
        (162, "invoice_blindedpay"),
        (164, "invoice_created_at"),
        (168, "invoice_payment_hash"),
        (170, "invoice_amount"),
        (176, "invoice_node_id"),
    ],
)
def test_each_required_field_is_required(t: int, name: str) -> None:
    with pytest.raises(DecodeError, match=f"^{name} missing$"):
        bolt12.decode_invoice(_signed(_without(_records(), t)))


def test_reader_rule_messages_name_the_problem() -> None:
    recs = _records()
    path = dict(recs)[160]
    cases = [
        (_with(recs, 160, path + path), "invoice_blindedpay has 1 entries for 2 paths"),
        (_with(recs, 160, b""), "invalid invoice_paths: no blinded paths"),
        (_with(recs, 160, path[:66] + b"\x00"), "blinded path with zero hops"),
        (_with(recs, 168, b"\x00" * 31), "invalid invoice_payment_hash: not 32 bytes"),
        (_with(recs, 176, b"\x02" + b"\xff" * 32), "invoice_node_id: not a point on the curve"),
        (_with(recs, 174, b"\x04\x00\x00"), "unknown even feature bit 18 in invoice_features"),
        (_with(recs, 170, b"\x0f\x42\x41"), "invoice_amount: not equal to invreq_amount"),
        (_with(recs, 178, b""), "unknown even type 178"),
        (_with(recs, 1002, b""), "unknown even type 1002"),
        (_with(recs, 166, b"\x01\x00\x00\x00\x00"), "tu32 longer than 4 bytes"),
    ]
    for records, message in cases:
        with pytest.raises(DecodeError, match=message):
            bolt12.decode_invoice(_signed(records))
    # No range rule for invoices: an odd record anywhere is kept (BOLT 1: it's OK to be odd).
    kept = bolt12.decode_invoice(_signed(_with(recs, 1001, b"\x07")))
    assert kept.unknown_records == [(1001, b"\x07")]


def test_signature_rules() -> None:
    recs = _records()
    # Signed by the payer instead of invoice_node_id.
    with pytest.raises(SignatureError, match="signature does not verify"):
        bolt12.decode_invoice(_signed(recs, key=PAYER))
    # Tampered after signing: the structure still reads without verification.
    invoice = _invoice(_request())
    stream = bytearray(invoice.tlv_stream)
    stream[5] ^= 1  # inside invreq_metadata
    tampered = bolt12.encode_string("lni", bytes(stream))
    with pytest.raises(SignatureError, match="signature does not verify"):
        bolt12.decode_invoice(tampered)
    assert bolt12.decode_invoice(tampered, verify=False).invreq_id != invoice.invreq_id
    with pytest.raises(DecodeError, match=r"^signature missing$"):
        bolt12.parse_invoice(bolt12.encode_tlv_stream(recs))


def test_the_string_must_be_an_invoice() -> None:
    request = _request()
    with pytest.raises(DecodeError, match="unexpected prefix 'lnr', expected 'lni'"):
        bolt12.decode_invoice(request.bolt12)
    invoice = _invoice(request)
    with pytest.raises(DecodeError, match="unexpected prefix 'lni', expected 'lnr'"):
        bolt12.decode_invoice_request(invoice.bolt12)


def test_signature_digest_refuses_a_merkle_root_that_is_not_32_bytes() -> None:
    with pytest.raises(InvalidFieldError, match="merkle_root: must be 32 bytes"):
        bolt12.signature_digest("invoice", "signature", bytes(31))


def test_chain_and_network_come_from_the_core_and_bitcoin_omits_the_chain() -> None:
    regtest = bolt12.CHAINS["regtest"]
    assert bolt12.chain_for_network("bitcoin") is None
    assert bolt12.chain_for_network("regtest") == regtest
    assert bolt12.network_for_chain(None) == "bitcoin"
    assert bolt12.network_for_chain(regtest) == "regtest"
    assert bolt12.network_for_chain(bytes(32)) is None
    with pytest.raises(KeyError):
        bolt12.chain_for_network("mainnet")
