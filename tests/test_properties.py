"""Hypothesis properties: the native core against itself (round trips) and against the
independent pure-Python oracle in ``tests/oracle``."""

from __future__ import annotations

import oracle
from coincurve import PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from invreq import bolt12

PAYER = PrivateKey(b"\x42" * 32).public_key.format()

settings.register_profile("invreq", max_examples=300, deadline=None)
settings.load_profile("invreq")

bigsize_types = st.one_of(
    st.integers(0, 0xFC),
    st.integers(0xFD, 0xFFFF),
    st.integers(0x10000, 2**32 - 1),
    st.integers(2**32, 2**64 - 1),
)
records = st.dictionaries(bigsize_types, st.binary(max_size=300), min_size=1, max_size=12).map(
    lambda d: sorted(d.items())
)


@given(st.binary(max_size=600))
def test_string_round_trip_and_oracle_agreement(data: bytes) -> None:
    s = bolt12.encode_string("lnr", data)
    assert s == oracle.encode_string("lnr", data)
    assert bolt12.decode_string(s) == ("lnr", data)
    assert bolt12.decode_string(s.upper()) == ("lnr", data)
    assert oracle.decode_string(s) == ("lnr", data)


@given(st.binary(min_size=1, max_size=200), st.data())
def test_plus_continuations_decode_to_the_same_bytes(data: bytes, draw: st.DataObject) -> None:
    s = bolt12.encode_string("lnr", data)
    body = s[4:]
    cut = draw.draw(st.integers(1, max(1, len(body) - 1)))
    if cut >= len(body):
        return
    ws = draw.draw(st.sampled_from(["", " ", "\n", "\r\n  ", "\t"]))
    joined = s[:4] + body[:cut] + "+" + ws + body[cut:]
    assert bolt12.decode_string(joined) == ("lnr", data)


@given(records)
def test_tlv_round_trip_and_oracle_agreement(recs: list[tuple[int, bytes]]) -> None:
    stream = bolt12.encode_tlv_stream(recs)
    assert stream == oracle.encode_tlv_stream(recs)
    assert bolt12.parse_tlv_stream(stream) == recs


@given(records)
def test_merkle_root_equals_the_oracle(recs: list[tuple[int, bytes]]) -> None:
    if all(240 <= t <= 1000 for t, _ in recs):
        return  # nothing outside the signature range: no tree
    stream = bolt12.encode_tlv_stream(recs)
    assert bolt12.merkle_root(stream) == oracle.merkle_root(stream)


fields = st.fixed_dictionaries(
    {
        "metadata": st.binary(min_size=1, max_size=64),
        "description": st.text(max_size=80),
        # Up to 21,000,000 BTC: the core refuses more (tested in test_ldk.py).
        "amount_msat": st.integers(1, 21_000_000 * 100_000_000 * 1000),
        "absolute_expiry": st.none() | st.integers(0, 2**64 - 1),
        "issuer": st.none() | st.text(max_size=40),
        "chain": st.none() | st.sampled_from(list(bolt12.CHAINS.values())),
        "unknown_records": st.lists(
            st.integers(1_000_000_000, 2_999_999_999).filter(lambda t: t % 2 == 1),
            max_size=3,
            unique=True,
        ).map(lambda ts: [(t, b"\x01" * (t % 7)) for t in sorted(ts)]),
    }
)


@given(fields, st.binary(min_size=64, max_size=64))
def test_builder_and_decoder_equal_the_oracle(f: dict[str, object], sig: bytes) -> None:
    native = bolt12.UnsignedInvoiceRequest(payer_id=PAYER, **f)  # type: ignore[arg-type]
    ref = oracle.UnsignedInvoiceRequest(payer_id=PAYER, **f)  # type: ignore[arg-type]
    assert native.tlv_stream == ref.tlv_stream
    assert native.merkle_root == ref.merkle_root
    assert native.digest == ref.digest
    assert native.invreq_id == ref.invreq_id
    decoded = bolt12.decode_invoice_request(ref.bolt12(sig), verify=False)
    assert decoded.tlv_stream == ref.signed_stream(sig)
    assert decoded.amount_msat == f["amount_msat"] and decoded.description == f["description"]
    assert decoded.issuer == f["issuer"] and decoded.absolute_expiry == f["absolute_expiry"]
    assert decoded.chain == f["chain"] and decoded.metadata == f["metadata"]
    assert decoded.unknown_records == f["unknown_records"]
    assert oracle.decode_invoice_request_fields(ref.bolt12(sig))[82] == oracle.tu64(
        f["amount_msat"]
    )  # type: ignore[arg-type]


def test_oracle_matches_the_signature_vectors(vectors_dir: object) -> None:
    import json
    from pathlib import Path

    for vec in json.loads((Path(str(vectors_dir)) / "bolt12" / "signature-test.json").read_text()):
        if "bolt12" not in vec or not vec["bolt12"].startswith("lnr"):
            continue
        _, data = oracle.decode_string(vec["bolt12"])
        assert oracle.merkle_root(data).hex() == vec["merkle"]
