"""The ``invreq`` command: ``invreq serve`` runs the service, ``invreq decode`` reads a string."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from invreq import __version__, bolt12
from invreq.config import DEFAULT_DATA_DIR, Config, ConfigError

__all__ = ["main"]


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = Config()
    p = sub.add_parser(
        "serve",
        help="run the service",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Serve invoicerequest, listinvoicerequests, disableinvoicerequest and "
        "decode over CLN-compatible JSON-RPC (unix socket DIR/NETWORK/invreq-rpc and HTTP).",
    )
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="state directory")
    p.add_argument("--network", default=d.network, choices=bolt12.NETWORKS)
    p.add_argument("--http-host", default=d.http_host, help="HTTP address (loopback only)")
    p.add_argument("--http-port", type=int, default=d.http_port, help="HTTP port; 0 turns HTTP off")
    p.add_argument(
        "--db",
        default=None,
        help="sqlite:///PATH or postgresql://...; default: SQLite in DATA_DIR/NETWORK/",
    )
    p.add_argument("--log-level", default=d.log_level, choices=("debug", "info", "warn", "error"))


def _config_from(args: argparse.Namespace) -> Config:
    return Config(
        data_dir=args.data_dir,
        network=args.network,
        http_host=args.http_host,
        http_port=args.http_port,
        db=args.db,
        log_level=args.log_level,
    )


def _serve(args: argparse.Namespace) -> int:
    config = _config_from(args)
    try:
        config.validate()
    except ConfigError as e:
        print(f"invreq serve: {e}", file=sys.stderr)
        return 2
    level = {"warn": "WARNING"}.get(config.log_level, config.log_level.upper())
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
    )
    from invreq.errors import StartupError
    from invreq.server import serve

    try:
        asyncio.run(serve(config))
    except StartupError as e:
        print(f"invreq serve: {e}", file=sys.stderr)
        return 1
    return 0


def _decode(args: argparse.Namespace) -> int:
    from invreq.errors import Bolt12Error
    from invreq.service import decode_json

    try:
        r = bolt12.decode_invoice_request(args.string)
    except Bolt12Error as e:
        print(f"invreq decode: {e}", file=sys.stderr)
        return 1
    print(json.dumps(decode_json(r), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="invreq", description="BOLT 12 invoice_request service")
    parser.add_argument("--version", action="version", version=f"invreq {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    dec = sub.add_parser("decode", help="decode and verify an lnr1... string")
    dec.add_argument("string")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return _decode(args)


if __name__ == "__main__":
    sys.exit(main())
