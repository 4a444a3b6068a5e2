"""Parameter grammar and request framing, at the unit level (REFERENCE §4, §6)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from invreq import params, rpc, unixsock
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
    # CLN's six, then invreq's max_payouts and payout_window (issue 23)
    with pytest.raises(InvalidParams, match=r"^too many parameters: got 9, expected 8$"):
        params.bind(cmd, [1, "d", None, None, None, None, None, None, None])
    with pytest.raises(InvalidParams, match=r"^params: should be an object or an array$"):
        params.bind(cmd, "amount=1")
    assert params.bind(cmd, [1, "d", None, "l"]) == {"amount": 1, "description": "d", "label": "l"}


def test_usage_line_matches_the_doc_synopsis() -> None:
    # CLN's synopsis, in CLN's order; invreq's own bound parameters (issue 23) come after,
    # so a positional call written for CLN means the same here.
    assert params.INVOICEREQUEST.usage == (
        "invoicerequest amount description [issuer] [label] [absolute_expiry] [single_use]"
        " [max_payouts] [payout_window]"
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
        s = unixsock.RequestSplitter()
        assert s.feed(stream[:cut]) + s.feed(stream[cut:]) == expected, cut
    s = unixsock.RequestSplitter()
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
    s = unixsock.RequestSplitter()
    out: list[bytes] = []
    prev = 0
    for c in [*cuts, len(stream)]:
        out += s.feed(stream[prev:c])
        prev = c
    assert out == msgs


@pytest.mark.parametrize("stream", [b"x", b"1", b'"s"', b"{]", b'{"a":1}}'])
def test_splitter_refuses_what_cannot_be_a_request(stream: bytes) -> None:
    with pytest.raises(InvalidRequest):
        unixsock.RequestSplitter().feed(stream)


def test_splitter_limit() -> None:
    s = unixsock.RequestSplitter(limit=100)
    s.feed(b'{"a":"' + b"x" * 90)
    with pytest.raises(InvalidRequest, match="larger than 100 bytes"):
        s.feed(b"x" * 20)


# --- nesting: an explicit limit, the same on every Python ----------------------------------


def _depth(value: object) -> int:
    """Levels of arrays and objects, read from the parsed value (an independent count)."""
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


# Strings full of the characters the scan must see past: brackets, quotes, backslashes.
_tricky = st.text(alphabet='[]{}"\\ab\u00e9', max_size=6)
_json_values = st.recursive(
    st.none() | st.integers() | _tricky,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_tricky, inner, max_size=3),
    max_leaves=30,
)


@given(_json_values, st.booleans())
def test_nesting_counts_levels_never_brackets_inside_strings(value: object, ascii_: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_).encode()
    assert rpc.nesting(raw) == _depth(value)


@pytest.mark.parametrize("levels", [1, rpc.MAX_NESTING - 1, rpc.MAX_NESTING])
def test_nesting_up_to_the_limit_is_parsed(levels: int) -> None:
    raw = b'{"a":' * levels + b"1" + b"}" * levels
    assert rpc.parse(raw) is not None


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * (rpc.MAX_NESTING + 1) + b"]" * (rpc.MAX_NESTING + 1),
        b'{"a":' * 8000 + b"1" + b"}" * 8000,
        # The pure-Python scanner (a backslash-u anywhere) is refused the same way.
        b'["\\u0041",' + b"[" * 5000 + b"]" * 5000 + b"]",
        # Cut off: never closes, still refused for its depth.
        b'{"a":"x",' + b"[" * 200,
    ],
    ids=["one-over", "8000-objects", "u-escape", "never-closed"],
)
def test_deeper_than_the_limit_is_refused_before_parsing(raw: bytes) -> None:
    with pytest.raises(InvalidRequest, match=f"nested deeper than {rpc.MAX_NESTING} levels"):
        rpc.parse(raw)


def test_brackets_inside_a_string_are_text_however_many() -> None:
    raw = b'{"a":"' + b"[" * 5000 + b'"}'
    assert rpc.nesting(raw) == 1
    assert rpc.parse(raw) == {"a": "[" * 5000}


@pytest.mark.parametrize(
    "raw",
    # An unterminated string, or one ending in a lone backslash, is text to the end: its
    # brackets are not levels (and the scan stays linear); the parser refuses the request.
    [b'["' + b'\\"[' * 3000, b'["' + b"{" * 3000 + b"\\"],
    ids=["unterminated-string", "lone-backslash-at-the-end"],
)
def test_an_unterminated_string_is_malformed_not_deep(raw: bytes) -> None:
    assert rpc.nesting(raw) == 1
    with pytest.raises(InvalidRequest, match="malformed request") as e:
        rpc.parse(raw)
    assert "nested deeper" not in str(e.value)


# --- the amount grammar, written out (REFERENCE §4), against the parser ------------------
#
#   amount = digits [ "msat" | "sat" | "." 3DIGIT "sat" | "btc" | "." 1*11DIGIT "btc" ]
#   digits = 1*22DIGIT            (value: positive, at most 21,000,000 BTC)


def _grammar_value(text: str) -> int | None:
    """An independent reading of the grammar above (no regex): the msat value or None."""
    from decimal import Decimal

    i = 0
    while i < len(text) and text[i] in "0123456789":
        i += 1
    whole, rest = text[:i], text[i:]
    if not 1 <= len(whole) <= 22:
        return None
    if rest in ("", "msat"):
        return int(whole)
    if rest == "sat":
        return int(whole) * 1000
    if rest == "btc":
        return int(whole) * 100_000_000_000
    for unit, lo, hi, scale in (("sat", 3, 3, 1000), ("btc", 1, 11, 100_000_000_000)):
        if rest.startswith(".") and rest.endswith(unit):
            frac = rest[1 : -len(unit)]
            if lo <= len(frac) <= hi and all(c in "0123456789" for c in frac):
                return int(Decimal(f"{whole}.{frac}") * scale)
    return None


units = st.sampled_from(["", "msat", "sat", "btc"])


@given(st.integers(0, 10**22 - 1), units)
def test_every_whole_amount_of_the_grammar_parses_to_its_value(n: int, unit: str) -> None:
    text = f"{n}{unit}"
    assert params.parse_msat(text) == _grammar_value(text)


@given(
    st.integers(0, 10**8),
    st.text("0123456789", min_size=1, max_size=12),
    st.sampled_from(["sat", "btc"]),
)
def test_every_fraction_of_the_grammar_parses_to_its_value(n: int, frac: str, unit: str) -> None:
    text = f"{n}.{frac}{unit}"
    assert params.parse_msat(text) == _grammar_value(text)


@given(st.text("0123456789.msatbc +-eE_x", max_size=16))
def test_any_string_parses_exactly_when_the_grammar_says(text: str) -> None:
    assert params.parse_msat(text) == _grammar_value(text)


@given(
    st.one_of(
        st.integers(),
        st.text(max_size=30),
        st.floats(),
        st.booleans(),
        st.none(),
        st.lists(st.integers(), max_size=2),
    )
)
def test_check_msat_accepts_exactly_the_positive_grammar_values_in_range(value: object) -> None:
    if isinstance(value, bool) or value is None:
        expected = None
    elif isinstance(value, int):
        expected = value
    elif isinstance(value, str):
        expected = _grammar_value(value)
    else:
        expected = None
    try:
        got: int | None = params.check_msat("amount", value)
    except InvalidParams as e:
        assert str(e).startswith("amount: ")
        got = None
    ok = expected is not None and 0 < expected <= params.MAX_MSAT
    assert got == (expected if ok else None)


# JSON must write other control characters as \u escapes, which the doc forbids.
_WRITABLE = st.text(max_size=20).filter(
    lambda t: all(ord(c) >= 0x20 or c in "\n\t\r\b\f" for c in t)
)


@given(_WRITABLE)
def test_strings_are_accepted_unless_written_with_a_u_escape(text: str) -> None:
    raw = json.dumps({"description": text}, ensure_ascii=False).encode("utf-8", "surrogatepass")
    try:
        parsed = rpc.parse(raw)
    except Exception:
        return  # not valid UTF-8 (a lone surrogate): refused before any parameter check
    assert params.check_string("description", parsed["description"]) == text
    escaped = rpc.parse(json.dumps({"description": text + "\u00e9"}).encode())
    with pytest.raises(InvalidParams, match=r"^description: should be a string \(without \\u\)"):
        params.check_string("description", escaped["description"])


@given(st.one_of(st.booleans(), st.integers(), st.text(max_size=5), st.none()))
def test_booleans_are_json_true_or_false_only(value: object) -> None:
    if isinstance(value, bool):
        assert params.check_bool("single_use", value) is value
    else:
        with pytest.raises(InvalidParams, match=r"^single_use: should be 'true' or 'false'"):
            params.check_bool("single_use", value)
