"""The ``invreq`` command: ``invreq serve`` runs the service, ``invreq decode`` reads a string."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from invreq import __version__, bolt12
from invreq.config import (
    DEFAULT_DATA_DIR,
    DEFAULT_HTTP_PORTS,
    NETWORK_DEFAULT_PORT,
    Config,
    ConfigError,
)

__all__ = ["main"]


def _add_serve_options(p: argparse.ArgumentParser) -> None:
    d = Config()
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="state directory")
    p.add_argument("--network", default=d.network, choices=bolt12.NETWORKS)
    p.add_argument(
        "--rpc-file",
        default=d.rpc_file,
        help="the JSON-RPC unix socket, as lightningd's rpc-file: a relative path is taken "
        "from DATA_DIR/NETWORK/ (default: %(default)s, where lightning-cli --lightning-dir="
        "DATA_DIR --network=NETWORK looks; older invreq used invreq-rpc)",
    )
    p.add_argument("--http-host", default=d.http_host, help="HTTP address (loopback only)")
    ports = ", ".join(f"{n} {port}" for n, port in DEFAULT_HTTP_PORTS.items())
    p.add_argument(
        "--http-port",
        type=int,
        default=argparse.SUPPRESS,  # the network's: DEFAULT_HTTP_PORTS
        help=f"HTTP port; 0 turns HTTP off (default: by network, {ports})",
    )
    p.add_argument(
        "--http-tls",
        action="store_true",
        help="serve HTTPS with DATA_DIR/NETWORK/tls.crt (created on first start); required "
        "for a non-loopback --http-host",
    )
    p.add_argument(
        "--db",
        default=None,
        help="sqlite:///PATH or postgresql://...; default: SQLite in DATA_DIR/NETWORK/",
    )
    p.add_argument("--log-level", default=d.log_level, choices=("debug", "info", "warn", "error"))
    p.add_argument(
        "--log-file", type=Path, default=None, help="log here instead of stderr; SIGHUP reopens it"
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=d.metrics_port,
        help="serve Prometheus metrics on 127.0.0.1:PORT/metrics; 0: off",
    )
    p.add_argument(
        "--signer",
        default=d.signer,
        choices=("software", "hwi"),
        help="where the payer key is: DATA_DIR/NETWORK/payer_secret, or a hardware device",
    )
    p.add_argument(
        "--approver",
        default=d.approver,
        choices=("none", "hwi"),
        help="hwi: a hardware device approves (signs a text for) every request",
    )
    p.add_argument("--hwi-device-type", default=None, help="hwilib device type, e.g. jade")
    p.add_argument("--hwi-device-path", default=None, help="e.g. tcp:127.0.0.1:30121")
    p.add_argument("--hwi-fingerprint", default=None, help="find the device by fingerprint")
    p.add_argument(
        "--hwi-key-path", default=None, help="payer key path with --signer hwi (m/9735h/0h/0h)"
    )
    p.add_argument(
        "--hwi-approval-path",
        default=None,
        help="key path of the approval signatures with --approver hwi (m/9735h/0h/0h)",
    )
    p.add_argument(
        "--hwi-timeout", type=float, default=d.hwi_timeout, help="seconds to wait for the device"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=d.workers,
        help="processes serving the same sockets (pays with PostgreSQL; not with SQLite)",
    )
    p.add_argument(
        "--pay-with",
        default=d.pay_with,
        help="how receiveinvoice pays: none (validate and record only) or cln:RPC_PATH "
        "(a Core Lightning node's lightning-rpc, through xpay); with cln, every request "
        "carries a blinded path to that node, for payees to send their invoice over",
    )
    p.add_argument(
        "--path-introduction",
        default=None,
        metavar="NODE_ID",
        help="a public peer of the paying node that the blinded path enters through (two "
        "hops), for a node that is not announced",
    )
    p.add_argument(
        "--pay-timeout",
        type=float,
        default=d.pay_timeout,
        help="seconds xpay may take (given to the node as retry_for); after it the payment "
        "is pending (outcome unknown) and reconciliation settles it from the node's record",
    )
    p.add_argument(
        "--pay-reconcile-interval",
        type=float,
        default=d.pay_reconcile_interval,
        help="seconds between checks of pending payments against the node's listpays",
    )
    p.add_argument(
        "--pay-attempts-per-request",
        type=int,
        default=d.pay_attempts_per_request,
        help="payment attempts on one invoice_request that may fail (or stay pending) "
        "within an hour before it is not attempted again (error 2111)",
    )
    p.add_argument(
        "--pay-attempts-per-minute",
        type=int,
        default=d.pay_attempts_per_minute,
        help="payment attempts on all invoice_requests per minute (error 2111 beyond)",
    )


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve",
        help="run the service",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Serve invoicerequest, listinvoicerequests, disableinvoicerequest and "
        "decode over CLN-compatible JSON-RPC (unix socket DIR/NETWORK/lightning-rpc and HTTP). "
        "Options are also read from DATA_DIR/config and DATA_DIR/NETWORK/config (key=value "
        "lines, # comments, include FILE), or from --conf FILE; the command line wins.",
    )
    _add_serve_options(p)
    p.add_argument(
        "--conf",
        type=Path,
        default=None,
        help="read options from this file instead of DATA_DIR/config and DATA_DIR/NETWORK/config",
    )


def _given(argv: list[str], option: str) -> bool:
    return any(a == option or a.startswith(option + "=") for a in argv)


def _config_file_args(argv: list[str], cmdline: argparse.Namespace) -> list[str]:
    """Options from the config files, as command-line tokens to put before ``argv``.

    Raises ``ConfFileError`` (``path:line: problem``) for an unknown option, a missing value
    or a value the option refuses, so a bad file stops the start at the line to fix.
    """
    from invreq.conffile import ConfFileError, Setting, apply_settings, read_settings

    probe = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    _add_serve_options(probe)
    known = {
        a.option_strings[0][2:]: "flag" if a.nargs == 0 else "value"
        for a in probe._actions
        if a.option_strings
    }
    settings: list[Setting] = []
    if cmdline.conf is not None:
        settings = read_settings(cmdline.conf)  # named explicitly: it must exist
    else:
        known.pop("data-dir")  # a file inside the data directory cannot move it
        top = cmdline.data_dir.expanduser() / "config"
        if top.exists():
            settings += read_settings(top)
        network = cmdline.network
        if not _given(argv, "--network"):
            network = next((x.value for x in reversed(settings) if x.key == "network"), network)
        per_network = cmdline.data_dir.expanduser() / str(network) / "config"
        if per_network.exists():
            settings += read_settings(per_network)
    apply_settings(settings, known)  # unknown options and missing values, with their line
    tokens: list[str] = []
    for x in settings:
        token = f"--{x.key}" if x.value is None else f"--{x.key}={x.value}"
        try:
            probe.parse_args([token])
        except argparse.ArgumentError as e:
            raise ConfFileError(x.path, x.lineno, str(e)) from None
        tokens.append(token)
    return tokens


def _config_from(args: argparse.Namespace) -> Config:
    return Config(
        data_dir=args.data_dir,
        network=args.network,
        http_host=args.http_host,
        http_port=getattr(args, "http_port", NETWORK_DEFAULT_PORT),
        http_tls=args.http_tls,
        db=args.db,
        signer=args.signer,
        approver=args.approver,
        hwi_device_type=args.hwi_device_type,
        hwi_device_path=args.hwi_device_path,
        hwi_fingerprint=args.hwi_fingerprint,
        hwi_key_path=args.hwi_key_path,
        hwi_approval_path=args.hwi_approval_path,
        hwi_timeout=args.hwi_timeout,
        pay_with=args.pay_with,
        path_introduction=args.path_introduction,
        pay_timeout=args.pay_timeout,
        pay_reconcile_interval=args.pay_reconcile_interval,
        pay_attempts_per_request=args.pay_attempts_per_request,
        pay_attempts_per_minute=args.pay_attempts_per_minute,
        workers=args.workers,
        log_level=args.log_level,
        log_file=args.log_file,
        metrics_port=args.metrics_port,
        rpc_file=args.rpc_file,
    )


def _serve(args: argparse.Namespace) -> int:
    config = _config_from(args)
    try:
        config.validate()
    except ConfigError as e:
        print(f"invreq serve: {e}", file=sys.stderr)
        return 2
    level = {"warn": "WARNING"}.get(config.log_level, config.log_level.upper())
    from invreq.errors import StartupError
    from invreq.logsetup import setup_logging
    from invreq.server import serve

    try:
        reopen_log = setup_logging(level, config.log_file)
        if config.workers > 1:
            from invreq.server import run_workers

            return run_workers(config, config.workers, reopen_log)
        asyncio.run(serve(config, on_sighup=reopen_log))
    except StartupError as e:
        print(f"invreq serve: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # e.g. the data directory cannot be written: the message names it
        print(f"invreq serve: {e}; check --data-dir", file=sys.stderr)
        return 1
    except Exception as e:
        # One line, never a traceback; the traceback goes to the log at debug level.
        logging.getLogger("invreq").debug("stopped by", exc_info=True)
        print(
            f"invreq serve: stopped: {type(e).__name__}: {e} (--log-level debug logs where)",
            file=sys.stderr,
        )
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
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["call"]:
        # `invreq call` takes lightning-cli's free-form params; it has its own parser.
        from invreq import client

        return client.main(args_in[1:])
    parser = argparse.ArgumentParser(prog="invreq", description="BOLT 12 invoice_request service")
    parser.add_argument("--version", action="version", version=f"invreq {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    sub.add_parser(
        "call",
        help="call a method on a running server, like lightning-cli",
        add_help=False,
        description="invreq call [OPTION ...] METHOD [PARAM ...]; `invreq call --help` for more",
    )
    dec = sub.add_parser("decode", help="decode and verify an lnr1... string")
    dec.add_argument("string")
    args = parser.parse_args(args_in)
    if args.command == "serve":
        from invreq.conffile import ConfFileError

        serve_argv = args_in[args_in.index("serve") + 1 :]
        try:
            file_args = _config_file_args(serve_argv, args)
        except (ConfFileError, FileNotFoundError) as e:
            print(f"invreq serve: {e}", file=sys.stderr)
            return 2
        if file_args:
            args = parser.parse_args(["serve", *file_args, *serve_argv])
        return _serve(args)
    return _decode(args)


if __name__ == "__main__":
    sys.exit(main())
