"""``invreq call``: a ``lightning-cli``-style client for the unix socket.

Operators know ``lightning-cli``, so the client behaves like it: ``invreq call METHOD
[PARAM ...]`` sends the params as an array, ``-k`` sends ``key=value`` params as an
object, and each param is sent as JSON when it parses as JSON (``1000``, ``true``,
``null``, ``[1,2]``, ``{"a":1}``, ``"quoted"``) and as a plain string otherwise. So ``1000``
is a number and ``10sat`` a string; quote a number to force a string: ``'"1000"'``.

Output and exit codes:

- a result is printed as JSON (indent 2) on stdout; exit 0;
- an error reply prints the error object as JSON on stdout, as ``lightning-cli`` does;
  exit 1;
- no answer (socket missing, connection refused, the server closing the connection or
  answering something that is not a JSON-RPC reply): one line on stderr; exit 2;
- bad usage (``argparse``): ``SystemExit(2)``, like every other ``invreq`` command.

``-H`` prints the result as ``key=value`` lines instead, one per scalar: nested objects
and lists are flattened into the key with ``.name`` and ``[index]``, e.g.
``invoicerequests[0].bolt12=lnr1...``; strings are printed as they are (no quotes, so a
multi-line string such as ``help``'s ``verbose`` stays readable), ``true``/``false``/
``null`` in JSON spelling, and an empty list or object as ``[]`` or ``{}``. Errors are
printed as JSON even with ``-H``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any, TextIO

from invreq import bolt12
from invreq.config import DEFAULT_DATA_DIR, Config

__all__ = ["main", "parse_param"]

PROG = "invreq call"


class _NoReply(Exception):
    """The server could not be reached or did not answer with a JSON-RPC reply."""


def _refuse_constant(name: str) -> Any:
    # json.loads accepts NaN and Infinity, which are not JSON: lightning-cli sends them
    # as strings, and so must we.
    raise ValueError(name)


def parse_param(text: str) -> Any:
    """The value ``text`` means on the command line: JSON if it is JSON, else the string."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except ValueError:
        return text


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Call a method of a running `invreq serve` over its unix socket, "
        "like lightning-cli. Params that parse as JSON are sent as JSON, others as strings.",
    )
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="state directory")
    p.add_argument("--network", default=Config().network, choices=bolt12.NETWORKS)
    p.add_argument(
        "--rpc-file",
        type=Path,
        default=None,
        help="the socket to use instead of DATA_DIR/NETWORK/invreq-rpc",
    )
    p.add_argument(
        "-k", "--keywords", action="store_true", help="params are key=value (sent as an object)"
    )
    p.add_argument(
        "-H", "--human-readable", action="store_true", help="print the result as key=value lines"
    )
    p.add_argument("method")
    # REMAINDER: once the method is read, everything is a param, even "-5" or "-x".
    p.add_argument("params", nargs=argparse.REMAINDER)
    return p


def _params(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Any:
    raw: list[str] = args.params
    if not args.keywords:
        return [parse_param(a) for a in raw]
    out: dict[str, Any] = {}
    for a in raw:
        key, eq, value = a.partition("=")
        if not eq or not key:
            parser.error(f"with -k every param is key=value, not {a!r}")
        if key in out:
            parser.error(f"param {key!r} given twice")
        out[key] = parse_param(value)
    return out


def _call(path: Path, request: dict[str, Any]) -> dict[str, Any]:
    """Send one request on a fresh connection; the reply ends with a blank line."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(str(path))
        except OSError as e:
            raise _NoReply(
                f"cannot connect to {path}: {e.strerror or e}; is `invreq serve` running?"
            ) from e
        # No timeout: a hardware signer may wait for a person to confirm on the device.
        s.sendall(json.dumps(request, ensure_ascii=False).encode())
        buf = b""
        while b"\n\n" not in buf:
            data = s.recv(65536)
            if not data:
                raise _NoReply(f"{path}: the server closed the connection before answering")
            buf += data
    raw = buf.split(b"\n\n", 1)[0]
    try:
        reply = json.loads(raw)
    except ValueError as e:
        raise _NoReply(f"{path}: the reply is not JSON: {e}") from e
    if not isinstance(reply, dict) or ("result" not in reply and "error" not in reply):
        raise _NoReply(f"{path}: the reply has neither result nor error")
    return reply


def _human(value: Any, key: str, out: TextIO) -> None:
    """``key=value`` lines for ``value``; see the module docstring for the rules."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _human(v, f"{key}.{k}" if key else str(k), out)
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            _human(v, f"{key}[{i}]", out)
    else:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        print(f"{key}={text}" if key else text, file=out)


def main(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    params = _params(parser, args)
    path: Path = (
        args.rpc_file.expanduser()
        if args.rpc_file is not None
        else Config(data_dir=args.data_dir, network=args.network).socket_path
    )
    request = {
        "jsonrpc": "2.0",
        "id": f"invreq-call:{args.method}#{os.getpid()}",
        "method": args.method,
        "params": params,
    }
    try:
        reply = _call(path, request)
    except _NoReply as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    if "error" in reply:
        print(json.dumps(reply["error"], indent=2, ensure_ascii=False))
        return 1
    if args.human_readable:
        _human(reply["result"], "", sys.stdout)
    else:
        print(json.dumps(reply["result"], indent=2, ensure_ascii=False))
    return 0
