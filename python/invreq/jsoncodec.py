"""orjson for the replies of the JSON-RPC doors, wherever its bytes are the standard
library's (:func:`invreq.rpc.dumps` falls back to the standard library on :data:`SLOW`).

orjson writes every string (each code point checked, tests/test_jsoncodec.py), integer up
to 64 bits, bool, null, list and object exactly as ``json.dumps(..., ensure_ascii=False,
separators=(",", ":"))``; it writes some floats differently (``0.00001`` against
``1e-05``) and refuses integers beyond 64 bits, lone surrogates and non-string keys. The
only float a reply can carry is an id echoed from a request (results hold integers and
strings), so a reply with a float id, and whatever orjson refuses, is the standard
library's. Measured alone (benches/micro.py): 7-20x faster per reply.

Requests are still parsed by the standard library (:func:`invreq.rpc.parse`): CLN's rules
need its hooks (``\\u`` escapes marked, repeated member names refused, integers beyond 64
bits kept integers, which orjson reads as floats), and orjson with the checks that keep
them measured slower than the standard library on a request (benches/micro.py).
"""

from __future__ import annotations

from typing import Any, Final

import orjson

__all__ = ["SLOW", "dumps"]

#: "Only the standard library can answer this one."
SLOW: Final = object()


def dumps(reply: Any) -> Any:
    """Compact UTF-8 JSON of a reply object, or :data:`SLOW`."""
    if type(reply) is dict and type(reply.get("id")) is float:
        return SLOW
    try:
        return orjson.dumps(reply)
    except TypeError:  # orjson.JSONEncodeError: a big integer, a lone surrogate, ...
        return SLOW
