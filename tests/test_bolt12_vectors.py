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
