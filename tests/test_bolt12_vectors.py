"""The native core through invreq.bolt12 against the official BOLT 12 vectors and the seed doc.

Vectors: tests/vectors/bolt12/*.json, copied verbatim from the BOLTs repository
(lightning/bolts, commit a3772650d8ebc06acf457fcadf97968ebfc4dfff, bolt12/).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from coincurve import PrivateKey
from invreq import bolt12
from invreq.errors import DecodeError, SignatureError

V = Path(__file__).parent / "vectors" / "bolt12"
SIG = json.loads((V / "signature-test.json").read_text())
FMT = json.loads((V / "format-string-test.json").read_text())

SEED = [
    (
        "lnr1qqgypua5g7rp293k00s66ayvnv26czst2d5k6urvv5s8getnw3gzqp3zderpzxstt8927ynqg044h0egcd8n5h3n9g0u0v4h8ncc3yg02gps7sjqtqssytfzxcs2xkdy0lml0tzy0jzugmyj8kjn8zfzrgq9fsgurc72x82e7pq947t0ks7a4yejz8w79x4zj25s3pu6zrnw2e0v2ugdescpcqsq307z4p2dlxe92fv7xd43qut0pjkg4y094hupqyhsj8dlhvmmfng6sv",
        "93f193cd2432d292f8b64af08942989d71c0a0366fb52d57ddb688c8fb066399",
    ),
    (
        "lnr1qqgx5t5hcw5ru9fgkhgxj4thjq4ugzsk2fjhzat9wd6xjmn8ypnx7u3qd9h8vmmfvdj3yyrrd35kw6r5de5kueeqwd6x7un92qsqvgnwgcg35z6ee2h3yczraddm72xrfua9uve2rlrm9deu7xyfzr6jqwvfdqzcyypz6g3kyz34nfrl7lm6c3rushzxey3a55ecjgs6qp2vz8q78j336k0sgpvamrunx5t6vdaeu7nmmlh5u6f0dnscasy2alyxq79f5wnc043gxrzyqt640dmuj7c94644j5ae6wfse7tsejwqnmc575ly9t38h4hf",
        "a621a0e8e8ea9aa97fd47ab9b140e413be7f4ea45377617e693eb7afe5a3dbf9",
    ),
]


@pytest.mark.parametrize("case", SIG, ids=[c["comment"][:40] for c in SIG])
def test_merkle_root_matches_each_signature_vector(case: dict) -> None:
    if "bolt12" in case:
        _, data = bolt12.decode_string(case["bolt12"])
    else:
        # The n1 cases give their records in the leaf keys: H(`LnLeaf`,<record hex>).
        data = b"".join(
            bytes.fromhex(k.split(",", 1)[1].rstrip(")"))
            for leaf in case["leaves"]
            for k in leaf
            if k.startswith("H(`LnLeaf`")
        )
    assert bolt12.merkle_root(data).hex() == case["merkle"]


def test_spec_invoice_request_vector_decodes_and_re_signs_byte_for_byte() -> None:
    case = next(c for c in SIG if c.get("tlv") == "invoice_request")
    r = bolt12.decode_invoice_request(case["bolt12"])
    digest = bolt12.signature_digest("invoice_request", "signature", bytes.fromhex(case["merkle"]))
    assert digest.hex() == case["H(signature_tag,merkle)"]
    sig = PrivateKey(b"\x42" * 32).sign_schnorr(digest, aux_randomness=bytes(32))
    assert sig.hex() == case["signature"] == r.signature.hex()


@pytest.mark.parametrize("case", FMT, ids=[f"{i}-{c['comment']}" for i, c in enumerate(FMT)])
def test_format_string_vectors(case: dict) -> None:
    if case["valid"]:
        hrp, _ = bolt12.decode_string(case["string"])
        assert hrp == "lno"
    else:
        with pytest.raises(DecodeError):
            bolt12.decode_string(case["string"])


@pytest.mark.parametrize(("s", "invreq_id"), SEED)
def test_seed_doc_examples_decode_verify_and_give_the_documented_id(s: str, invreq_id: str) -> None:
    r = bolt12.decode_invoice_request(s)
    assert r.invreq_id.hex() == invreq_id
    assert r.bolt12 == s


def test_builder_signs_only_with_a_verifying_signature() -> None:
    key = PrivateKey(b"\x11" * 32)
    u = bolt12.UnsignedInvoiceRequest(
        metadata=b"\x01" * 16, description="d", amount_msat=1000, payer_id=key.public_key.format()
    )
    with pytest.raises(SignatureError):
        u.with_signature(PrivateKey(b"\x22" * 32).sign_schnorr(u.digest, aux_randomness=bytes(32)))
    signed = u.with_signature(key.sign_schnorr(u.digest, aux_randomness=bytes(32)))
    assert bolt12.decode_invoice_request(signed.bolt12).invreq_id == u.invreq_id


def test_reader_rule_messages_name_the_problem() -> None:
    with pytest.raises(DecodeError, match="unexpected prefix 'lno'"):
        bolt12.decode_invoice_request(FMT[0]["string"])


# --- one rejection per reader rule (REFERENCE §7), through the public API ------------------

_KEY = PrivateKey(b"\x11" * 32)
_BASE = [(0, b"\x01" * 16), (10, b"d"), (82, b"\x03\xe8"), (88, _KEY.public_key.format())]


def _signed(records: list[tuple[int, bytes]], key: PrivateKey = _KEY) -> str:
    """Sign ``records`` properly, so only the rule under test can fail."""
    unsigned = sorted(records)
    stream = bolt12.encode_tlv_stream(unsigned)
    digest = bolt12.signature_digest("invoice_request", "signature", bolt12.merkle_root(stream))
    sig = key.sign_schnorr(digest, aux_randomness=bytes(32))
    return bolt12.encode_string("lnr", bolt12.encode_tlv_stream(sorted([*unsigned, (240, sig)])))


def _with(t: int, v: bytes) -> list[tuple[int, bytes]]:
    return [*[(k, x) for k, x in _BASE if k != t], (t, v)]


def _without(t: int) -> list[tuple[int, bytes]]:
    return [(k, x) for k, x in _BASE if k != t]


_ZERO_HOP_PATH = _KEY.public_key.format() * 2 + b"\x00"

READER_RULES = [
    ("unknown even type", _with(78, b""), "unknown even type 78"),
    ("type outside the ranges", _with(160, b""), "type 160 is outside the invoice_request ranges"),
    ("metadata missing", _without(0), "invreq_metadata missing"),
    ("payer id missing", _without(88), "invreq_payer_id missing"),
    ("amount missing", _without(82), "invreq_amount missing"),
    ("offer_chains present", _with(2, bytes(32)), "offer_chains not allowed"),
    ("offer_features present", _with(12, b""), "offer_features not allowed"),
    ("offer_quantity_max present", _with(20, b""), "offer_quantity_max not allowed"),
    (
        "unknown even feature",
        _with(84, b"\x01\x00"),
        "unknown even feature bit 8 in invreq_features",
    ),
    ("zero-hop blinded path", _with(90, _ZERO_HOP_PATH), "blinded path with zero hops"),
    ("non-minimal tu64", _with(82, b"\x00\x01"), "tu64 not minimally encoded"),
    ("invalid UTF-8", _with(10, b"\xff"), "invalid utf-8"),
]


@pytest.mark.parametrize(
    ("records", "message"), [r[1:] for r in READER_RULES], ids=[r[0] for r in READER_RULES]
)
def test_each_reader_rule_is_enforced_with_its_message(
    records: list[tuple[int, bytes]], message: str
) -> None:
    with pytest.raises(DecodeError, match=message):
        bolt12.decode_invoice_request(_signed(records))


def test_bad_tlv_framing_is_refused() -> None:
    good = bolt12.decode_string(_signed(_BASE))[1]
    with pytest.raises(DecodeError, match="truncated"):
        bolt12.decode_invoice_request(bolt12.encode_string("lnr", good[:-1]))
    swapped = good[18:] + good[:18]  # metadata record moved after the others
    with pytest.raises(DecodeError, match="strictly increase"):
        bolt12.decode_invoice_request(bolt12.encode_string("lnr", swapped))


def test_signature_by_another_key_does_not_verify() -> None:
    with pytest.raises(SignatureError, match="signature does not verify"):
        bolt12.decode_invoice_request(_signed(_BASE, key=PrivateKey(b"\x22" * 32)))


def test_unknown_odd_types_are_kept_byte_for_byte() -> None:
    r = bolt12.decode_invoice_request(_signed(_with(1_000_000_001, b"\xab\xcd")))
    assert r.unknown_records == [(1_000_000_001, b"\xab\xcd")]
