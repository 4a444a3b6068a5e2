"""orjson for the JSON-RPC doors, wherever it answers exactly as the standard library does.

:mod:`invreq.rpc` keeps the rules (strict UTF-8 and JSON, ``\\u`` escapes marked, repeated
member names refused, compact UTF-8 replies); this module is its fast path, and says
:data:`SLOW` whenever only the standard library can apply them:

- **Parsing** (:func:`loads`): orjson takes a request with no ``\\u`` escape (those strings
  must be marked, which needs the standard library's hooks), no repeated member name
  (orjson keeps the last silently; CLN's rule refuses), and no float (orjson reads an
  integer beyond 64 bits as a float, where the parameters must see the integer). Anything
  orjson refuses goes to the standard library too, whose error message clients get.
- **Encoding** (:func:`dumps`): orjson's bytes are the standard library's for every string
  (each code point checked, tests/test_jsoncodec.py), integer up to 64 bits, bool, null, list
  and object; they differ for some floats (``1e-05`` against ``0.00001``) and orjson refuses
  integers beyond 64 bits, lone surrogates and non-string keys. The only float a reply can
  carry is an id echoed from a request (results hold integers and strings), so a reply with
  a float id, and whatever orjson refuses, is the standard library's.

Measured alone (benches/micro.py): see benches/results/micro.md.
"""

from __future__ import annotations

import re
from typing import Any, Final

import orjson

__all__ = ["SLOW", "dumps", "loads"]

#: "Only the standard library can answer this one."
SLOW: Final = object()

#: The end of a member name: a quote, optional whitespace, a colon. Every name ends so;
#: a string *value* that holds an escaped quote and a colon matches too, which can only
#: make the count larger than the names (and send the request to the slow path).
_NAME_END = re.compile(rb'"[ \t\r\n]*:')


def loads(raw: bytes) -> Any:
    """The request's value, or :data:`SLOW`."""
    if b"\\u" in raw:
        return SLOW
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return SLOW
    members = 0
    todo = [value]
    while todo:
        x = todo.pop()
        kind = type(x)
        if kind is dict:
            members += len(x)
            todo.extend(x.values())
        elif kind is list:
            todo.extend(x)
        elif kind is float:
            return SLOW
    # Names in the text against members kept: fewer kept means a name was repeated.
    if members != len(_NAME_END.findall(raw)):
        return SLOW
    return value


def dumps(reply: Any) -> Any:
    """Compact UTF-8 JSON of a reply object, or :data:`SLOW`."""
    if type(reply) is dict and type(reply.get("id")) is float:
        return SLOW
    try:
        return orjson.dumps(reply)
    except TypeError:  # orjson.JSONEncodeError: a big integer, a lone surrogate, ...
        return SLOW
