"""``invreq-refdevice``: run the reference signing device until SIGTERM or SIGINT.

It prints one line on stdout once it accepts connections, so a test (or a script) starts it
and waits for that line instead of polling the port::

    refdevice listening on 127.0.0.1:30121 fingerprint=0123abcd

Everything the device shows its user (what it signs, refusals, the approval prompt) goes to
stderr; approvals under ``--approve prompt`` are read from stdin.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from invreq.refdevice.bip32 import ExtendedPrivateKey
from invreq.refdevice.device import Device
from invreq.refdevice.listener import DEFAULT_PORT, DeviceServer
from invreq.refdevice.policy import Policy

__all__ = ["load_or_create_seed", "main"]


class _Stop(Exception):
    """Raised by the signal handler so blocking accept/read/sleep calls unwind at once."""


class SeedError(Exception):
    pass


def load_or_create_seed(path: Path) -> bytes:
    """The hex seed in ``path``; a new random 32-byte one (owner-only) if there is none."""
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        seed = os.urandom(32)
        try:
            # O_EXCL: two devices started at once must not each write their own seed.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_or_create_seed(path)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(seed.hex() + "\n")
        return seed
    except (OSError, UnicodeDecodeError) as e:
        raise SeedError(f"{path}: cannot read the seed: {e}") from None
    try:
        seed = bytes.fromhex(text.strip())
    except ValueError:
        raise SeedError(f"{path}: the seed must be hex") from None
    if not 16 <= len(seed) <= 64:
        raise SeedError(f"{path}: a seed has 16 to 64 bytes, this one {len(seed)}")
    return seed


def _policy(text: str) -> Policy:
    try:
        return Policy.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="invreq-refdevice",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Reference signing device: speaks the Jade CBOR-RPC protocol on "
        "127.0.0.1 so unmodified hwilib connects to it as to a Jade simulator, and answers "
        "the sign_bolt12 extension (BIP-340 over an invoice_request it checks and shows).",
    )
    p.add_argument(
        "--seed-file",
        type=Path,
        required=True,
        help="hex BIP-32 seed (16-64 bytes); created with 32 random bytes, mode 0600, if absent",
    )
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="TCP port on 127.0.0.1 (hwilib treats only 30121 as a simulator; 0: any free port)",
    )
    p.add_argument(
        "--approve",
        type=_policy,
        default=Policy("auto"),
        metavar="auto|deny|max-msat=N|prompt",
        help="what the user answers: sign, refuse (-32000 'user declined'), refuse BOLT 12 "
        "amounts above N msat or without an amount (messages carry none: signed), "
        "or ask y/n on stdin",
    )
    p.add_argument(
        "--stock",
        action="store_true",
        help="behave as stock firmware: sign_bolt12 is an unknown method (-32601)",
    )
    p.add_argument(
        "--delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long before answering sign_bolt12 and sign_message",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        master = ExtendedPrivateKey.from_seed(load_or_create_seed(args.seed_file))
    except (SeedError, ValueError) as e:
        print(f"invreq-refdevice: {e}", file=sys.stderr)
        return 2
    device = Device(master, policy=args.approve, stock=args.stock, delay=args.delay)
    try:
        server = DeviceServer(device, args.port)
    except OSError as e:
        print(f"invreq-refdevice: cannot listen on 127.0.0.1:{args.port}: {e}", file=sys.stderr)
        return 1

    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Stop

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        fingerprint = device.fingerprint.hex()
        print(
            f"refdevice listening on 127.0.0.1:{server.port} fingerprint={fingerprint}", flush=True
        )
        mode = "stock firmware" if args.stock else "with sign_bolt12"
        device.say(f"{mode}, policy {args.approve}, delay {args.delay}s")
        server.serve_forever()
    except _Stop:
        pass
    finally:
        server.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
