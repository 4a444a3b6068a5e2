"""The ``invreq`` command: ``invreq serve`` runs the service, ``invreq decode`` reads a string."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from invreq import __version__, bolt12
from invreq.config import NETWORK_DEFAULT_PORT, Config, ConfigError

__all__ = ["main"]


#: How a field's annotation becomes an argparse value type (bool fields are flags).
_TYPES: dict[str, Callable[[str], Any]] = {"str": str, "int": int, "float": float, "Path": Path}


def _add_serve_options(p: argparse.ArgumentParser) -> None:
    """One option per field of ``Config``: its name, default, help and choices come from
    there (the config files accept the same keys)."""
    for f in dataclasses.fields(Config):
        option = "--" + f.name.replace("_", "-")
        kind = str(f.type).removesuffix(" | None")
        doc, choices = f.metadata["help"], f.metadata["choices"]
        if kind == "bool":
            p.add_argument(option, action="store_true", help=doc)
        elif f.default == NETWORK_DEFAULT_PORT:
            # The network's port (Config.__post_init__): absent unless given; the help
            # names the defaults itself (argparse would show the sentinel).
            p.add_argument(option, type=_TYPES[kind], default=argparse.SUPPRESS, help=doc)
        else:
            p.add_argument(option, type=_TYPES[kind], default=f.default, choices=choices, help=doc)


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
    # An option left out (--http-port: argparse.SUPPRESS) keeps Config's own default.
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if f.name in args}
    return Config(**given)


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
    from invreq.loops import run
    from invreq.server import serve

    try:
        reopen_log = setup_logging(level, config.log_file)
        if config.workers > 1:
            from invreq.workers import run_workers

            return run_workers(config, config.workers, reopen_log)
        run(serve(config, on_sighup=reopen_log), config.event_loop)
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
    from invreq.views import decode_json

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
