"""``invreq call``: a ``lightning-cli``-style client for the unix socket.

Operators know ``lightning-cli``, so the client behaves like it: ``invreq call METHOD
[PARAM ...]`` sends the params as an array, ``-k`` sends ``key=value`` params as an
object; options may come anywhere on the line (``invreq call invoicerequest -k
amount=1000sat description=x``) and ``--`` ends them; the socket is found from
``--rpc-file``, or the data directory, network and ``rpc-file`` given on the command line or
in the config files ``invreq serve`` reads; a closed stdout (``| head``) ends it quietly.
Each param is sent as JSON when it parses as JSON (``1000``, ``true``, ``null``, ``[1,2]``,
``{"a":1}``, ``"quoted"``) and as a plain string otherwise. So ``1000``
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
import sys
from pathlib import Path
from typing import Any, TextIO

from invreq import bolt12, clnrpc
from invreq.conffile import ConfFileError, Setting, read_settings
from invreq.config import DEFAULT_DATA_DIR, Config

__all__ = ["main", "parse_param"]

PROG = "invreq call"


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
        usage="%(prog)s [OPTION ...] METHOD [PARAM ...]  (options may come anywhere; -- ends them)",
        description="Call a method of a running `invreq serve` over its unix socket, "
        "like lightning-cli. Params that parse as JSON are sent as JSON, others as strings. "
        "Defaults come from DATA_DIR/config and DATA_DIR/NETWORK/config (network, rpc-file), "
        "as for `invreq serve`; the command line wins.",
    )
    p.add_argument(
        "--data-dir", type=Path, default=None, help=f"state directory (default: {DEFAULT_DATA_DIR})"
    )
    p.add_argument(
        "--network",
        default=None,
        choices=bolt12.NETWORKS,
        help=f"(default: {Config().network}, or the config files')",
    )
    p.add_argument(
        "--rpc-file",
        type=Path,
        default=None,
        help="the socket to use instead of DATA_DIR/NETWORK/lightning-rpc",
    )
    p.add_argument(
        "--conf",
        type=Path,
        default=None,
        help="read defaults from this file instead of DATA_DIR/config and DATA_DIR/NETWORK/config",
    )
    p.add_argument(
        "-k", "--keywords", action="store_true", help="params are key=value (sent as an object)"
    )
    p.add_argument(
        "-H", "--human-readable", action="store_true", help="print the result as key=value lines"
    )
    p.add_argument(
        "-l",
        "--filter",
        default=None,
        metavar="JSON",
        help="keep only these fields of the result, as lightning-cli -l: a JSON template, "
        """e.g. '{"invoicerequests":[{"invreq_id":true}]}'""",
    )
    p.add_argument("method", nargs="?")
    p.add_argument("params", nargs="*")
    return p


def _parse_args(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Options anywhere on the line, as lightning-cli's getopt permutes them; after ``--``
    every word is the method or a param, even ``-x``. (A negative number such as ``-5`` is
    a param anywhere, as argparse reads it.)"""
    if "--" in argv:
        cut = argv.index("--")
        before, after = argv[:cut], argv[cut + 1 :]
    else:
        before, after = argv, []
    args = parser.parse_intermixed_args(before)
    words = ([args.method] if args.method is not None else []) + args.params + after
    if not words:
        parser.error("the following arguments are required: METHOD")
    args.method, args.params = words[0], words[1:]
    return args


def _settings(args: argparse.Namespace) -> dict[str, Setting]:
    """``network`` and ``rpc-file`` from the config files (the last line wins), read as
    ``invreq serve`` reads them: DATA_DIR/config (which may choose the network), then
    DATA_DIR/NETWORK/config; or only ``--conf FILE``, which may also set ``data-dir``.
    Other options are the server's."""
    data_dir: Path = args.data_dir or DEFAULT_DATA_DIR
    found: dict[str, Setting] = {}

    def read(path: Path, keys: tuple[str, ...] = ("network", "rpc-file")) -> None:
        for x in read_settings(path):
            if x.key in keys:
                if not x.value:
                    raise ConfFileError(x.path, x.lineno, f"{x.key} needs a value")
                if x.key == "network" and x.value not in bolt12.NETWORKS:
                    raise ConfFileError(x.path, x.lineno, f"unknown network {x.value!r}")
                found[x.key] = x

    if args.conf is not None:
        read(args.conf, ("network", "rpc-file", "data-dir"))  # named explicitly: must exist
        return found
    top = data_dir.expanduser() / "config"
    if top.exists():
        read(top)
    network = args.network or (found["network"].value if "network" in found else None)
    per_network = data_dir.expanduser() / (network or Config().network) / "config"
    if per_network.exists():
        read(per_network)
    return found


def _socket_path(args: argparse.Namespace) -> Path:
    if args.rpc_file is not None:
        return Path(args.rpc_file).expanduser()
    settings = _settings(args)
    file_network = settings["network"].value if "network" in settings else None
    file_data_dir = settings["data-dir"].value if "data-dir" in settings else None
    config = Config(
        data_dir=args.data_dir or Path(file_data_dir or DEFAULT_DATA_DIR),
        network=args.network or file_network or Config().network,
    )
    rpc_file = settings["rpc-file"].value if "rpc-file" in settings else None
    if rpc_file:
        # As in CLN, a relative rpc-file is taken from the network directory.
        return config.network_dir / Path(rpc_file).expanduser()
    return config.socket_path


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
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (`invreq call ... | head`): stop quietly, as lightning-cli
        # does, and keep Python from complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(argv: list[str]) -> int:
    parser = _parser()
    args = _parse_args(parser, argv)
    params = _params(parser, args)
    try:
        path = _socket_path(args)
    except (ConfFileError, FileNotFoundError) as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    filter_ = None
    if args.filter is not None:
        # Sent as it is, as lightning-cli does: the server says what is wrong with it.
        try:
            filter_ = json.loads(args.filter)
        except ValueError as e:
            parser.error(f"-l/--filter: not JSON: {e}")
    try:
        # No timeout: a hardware signer may wait for a person to confirm on the device.
        result = clnrpc.call(
            path,
            args.method,
            params,
            request_id=f"invreq-call:{args.method}#{os.getpid()}",
            filter=filter_,
        )
    except clnrpc.ClnRpcError as e:
        # As lightning-cli: the error object as it came, on stdout.
        print(json.dumps(e.error, indent=2, ensure_ascii=False), flush=True)
        return 1
    except clnrpc.NotSent as e:
        print(f"{PROG}: {e}; is `invreq serve` running?", file=sys.stderr)
        return 2
    except (OSError, clnrpc.BadReply) as e:
        # a reset or broken pipe here is the server's side, not stdout
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    if args.human_readable:
        _human(result, "", sys.stdout)
    else:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    sys.stdout.flush()  # a closed pipe shows here, inside main, not at interpreter exit
    return 0
