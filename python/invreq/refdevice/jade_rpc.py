"""The Jade RPC envelope: error codes and the reply maps the device sends.

Codes are the ones stock Jade firmware uses (and hwilib's ``JadeError`` names), so a host
maps them exactly as it would for a real device: -32000 user cancelled, -32601 unknown
method, -32602 bad parameters, -32603 internal error.
"""

from __future__ import annotations

__all__ = [
    "BAD_PARAMETERS",
    "INTERNAL_ERROR",
    "INVALID_REQUEST",
    "NO_ID",
    "UNKNOWN_METHOD",
    "USER_CANCELLED",
    "Reply",
    "RpcFailure",
    "error_reply",
    "result_reply",
]

INVALID_REQUEST = -32600
UNKNOWN_METHOD = -32601
BAD_PARAMETERS = -32602
INTERNAL_ERROR = -32603
USER_CANCELLED = -32000

#: The id firmware puts on an error about a message it could not read an id from; hwilib's
#: reply check accepts it in place of the request's id.
NO_ID = "00"

Reply = dict[str, object]


class RpcFailure(Exception):
    """A request the device answers with an error object instead of a result."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def result_reply(request_id: str, result: object) -> Reply:
    return {"id": request_id, "result": result}


def error_reply(request_id: str, code: int, message: str) -> Reply:
    return {"id": request_id, "error": {"code": code, "message": message}}
