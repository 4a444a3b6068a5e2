"""Parameter grammar and request framing, at the unit level (REFERENCE §4, §6)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from invreq import params, rpc
from invreq.errors import InvalidParams, InvalidRequest


@pytest.mark.parametrize(
    ("text", "msat"),
    [
        ("1000", 1000),
        ("1000msat", 1000),
        ("10sat", 10_000),
        ("1.234sat", 1234),
        ("0.001sat", 1),
        ("1btc", 100_000_000_000),
        ("0.1btc", 10_000_000_000),
        ("0.00000000001btc", 1),
        ("21000000btc", params.MAX_MSAT),
    ],
)
def test_amount_forms(text: str, msat: int) -> None:
    assert params.check_msat("amount", text) == msat


@pytest.mark.parametrize(
    "text",
    [
        "1.5sat",
        "1.2345sat",
        "1.btc",
        "0.000000000001btc",
        "1 sat",
        "1SAT",
        "1Btc",
        "+1",
        "-1",
        "1e3",
        "1sats",
        "sat",
        "",
        "1.0",
        "1msat ",
        "0x10",
        "١٢",
    ],
)
def test_amount_strings_outside_the_grammar(text: str) -> None:
    with pytest.raises(
        InvalidParams, match=r"^amount: should be a millisatoshi amount: invalid token"
    ):
        params.check_msat("amount", text)


@pytest.mark.parametrize(
    "value",
    [0, "0", "0msat", "0.000sat", "21000000.00000000001btc", 2_100_000_000_000_000_001, True],
)
def test_amount_out_of_range_or_not_a_number(value: object) -> None:
    with pytest.raises(InvalidParams, match=r"^amount: "):
        params.check_msat("amount", value)


def test_u64_accepts_digit_strings_and_refuses_the_rest() -> None:
    assert params.check_u64("absolute_expiry", "18446744073709551615") == 2**64 - 1
    for bad in ["18446744073709551616", "-1", "1.0", "", " 1", True, 1.0, None]:
        with pytest.raises(
            InvalidParams, match="absolute_expiry: should be an unsigned 64 bit integer"
        ):
            params.check_u64("absolute_expiry", bad)


def test_u_escape_marks_only_real_escapes() -> None:
    parsed = rpc.parse(rb'{"a":"\u0041","b":"\\u0041","c":"\\\u0041","d":"plain"}')
    assert isinstance(parsed["a"], params.UEscaped)
    assert not isinstance(parsed["b"], params.UEscaped) and parsed["b"] == "\\u0041"
    assert isinstance(parsed["c"], params.UEscaped)
    assert not isinstance(parsed["d"], params.UEscaped)


def test_bind_reports_duplicates_unknown_missing_and_too_many() -> None:
    cmd = params.INVOICEREQUEST
    with pytest.raises(InvalidParams, match=r"^duplicate json names: label$"):
        params.bind(cmd, rpc.parse(b'{"amount":1,"description":"d","label":"a","label":"b"}'))
    with pytest.raises(InvalidParams, match=r"^unknown parameter: x$"):
        params.bind(cmd, {"amount": 1, "description": "d", "x": 1})
    with pytest.raises(InvalidParams, match=r"^missing required parameter: description$"):
        params.bind(cmd, [1])
    with pytest.raises(InvalidParams, match=r"^too many parameters: got 7, expected 6$"):
        params.bind(cmd, [1, "d", None, None, None, None, None])
    with pytest.raises(InvalidParams, match=r"^params: should be an object or an array$"):
        params.bind(cmd, "amount=1")
    assert params.bind(cmd, [1, "d", None, "l"]) == {"amount": 1, "description": "d", "label": "l"}


def test_usage_line_matches_the_doc_synopsis() -> None:
    assert params.INVOICEREQUEST.usage == (
        "invoicerequest amount description [issuer] [label] [absolute_expiry] [single_use]"
    )


# --- framing ----------------------------------------------------------------------------

REQUESTS = [
    b'{"jsonrpc":"2.0","id":1,"method":"a","params":{"s":"}{][\\"\\\\"}}',
    b' \n{"id":"x]","params":[[],{}]}',
    b'[{"id":2}]',
    b'{"e":"\\\\"}',
]


def test_splitter_finds_every_request_at_every_cut() -> None:
    stream = b"".join(REQUESTS)
    expected = [r.strip() for r in REQUESTS]
    for cut in range(len(stream) + 1):
        s = rpc.RequestSplitter()
        assert s.feed(stream[:cut]) + s.feed(stream[cut:]) == expected, cut
    s = rpc.RequestSplitter()
    assert [r for i in range(len(stream)) for r in s.feed(stream[i : i + 1])] == expected


@given(
    st.lists(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(),
            lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        ),
        min_size=1,
        max_size=5,
    ),
    st.data(),
)
def test_splitter_property_any_json_objects_any_chunking(
    values: list[object], data: st.DataObject
) -> None:
    msgs = [json.dumps({"v": v}).encode() for v in values]
    stream = b"".join(msgs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    s = rpc.RequestSplitter()
    out: list[bytes] = []
    prev = 0
    for c in [*cuts, len(stream)]:
        out += s.feed(stream[prev:c])
        prev = c
    assert out == msgs


@pytest.mark.parametrize("stream", [b"x", b"1", b'"s"', b"{]", b'{"a":1}}'])
def test_splitter_refuses_what_cannot_be_a_request(stream: bytes) -> None:
    with pytest.raises(InvalidRequest):
        rpc.RequestSplitter().feed(stream)


def test_splitter_limit() -> None:
    s = rpc.RequestSplitter(limit=100)
    s.feed(b'{"a":"' + b"x" * 90)
    with pytest.raises(InvalidRequest, match="larger than 100 bytes"):
        s.feed(b"x" * 20)
