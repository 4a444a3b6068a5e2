"""orjson on the doors (invreq.jsoncodec): every reply is byte for byte what the standard
library wrote (``rpc._dumps_stdlib``, the path it replaced and still falls back to)."""

from __future__ import annotations

import sys
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from invreq import jsoncodec, rpc

# --- encoding --------------------------------------------------------------------------


def test_every_code_point_is_written_as_the_standard_library_writes_it() -> None:
    # Surrogates are not UTF-8: orjson refuses them, and the standard library's path
    # (escape everything) answers, as before.
    for c in range(sys.maxunicode + 1):
        if 0xD800 <= c < 0xE000:
            continue
        s = chr(c)
        assert orjson.dumps(s) == rpc._dumps_stdlib(s), hex(c)


def test_a_lone_surrogate_takes_the_standard_librarys_path() -> None:
    reply = {"jsonrpc": "2.0", "id": "\ud800", "result": {}}
    assert jsoncodec.dumps(reply) is jsoncodec.SLOW
    assert rpc.dumps(reply) == b'{"jsonrpc":"2.0","id":"\\ud800","result":{}}'


@pytest.mark.parametrize("req_id", [1e-05, 1e16, 0.1, 2.5e-300])
def test_a_float_id_is_echoed_as_the_standard_library_writes_it(req_id: float) -> None:
    reply = {"jsonrpc": "2.0", "id": req_id, "result": {}}
    assert rpc.dumps(reply) == rpc._dumps_stdlib(reply)
    assert rpc.dumps(reply).startswith(b'{"jsonrpc":"2.0","id":%s,' % repr(req_id).encode())


def test_integers_beyond_64_bits_are_written_whole() -> None:
    for n in (2**64 - 1, 2**64, -(2**63) - 1, 10**40):
        reply = {"jsonrpc": "2.0", "id": n, "result": {"n": n}}
        assert rpc.dumps(reply) == rpc._dumps_stdlib(reply)


json_leaves = st.none() | st.booleans() | st.integers() | st.text()
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(req_id=st.none() | st.integers() | st.text(), result=json_values)
def test_replies_are_the_standard_librarys_bytes(req_id: Any, result: Any) -> None:
    reply = {"jsonrpc": "2.0", "id": req_id, "result": result}
    assert rpc.dumps(reply) == rpc._dumps_stdlib(reply)
