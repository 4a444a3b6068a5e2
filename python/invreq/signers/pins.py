"""Device identity by key: which public key a hardware device must have at a key path.

A device is who its key says, not what it claims: its master fingerprint is computed by
the host from the master public key, and its identity is the public key at the configured
path (the payer key with ``--signer hwi``, the approval key with ``--approver hwi``). That
key is pinned either by ``--hwi-pubkey`` or, at the first start with a device, in
``DATA_DIR/NETWORK/hwi-keys`` (one ``PATH PUBKEY`` line per key path, owner-only, written
whole under a temporary name). Every later start, and every reconnect, reads the key again
and refuses a device whose key differs, with one line. A device replaced on purpose is
accepted only after the operator removes its line from the file (approvals signed by the
old key then no longer verify, so the requests they approved are not paid).
"""

from __future__ import annotations

import os
from pathlib import Path

from invreq.errors import StartupError
from invreq.oneline import oneline

__all__ = ["PIN_FILE", "pin_key", "pinned_keys"]

PIN_FILE = "hwi-keys"


def pinned_keys(path: Path) -> dict[str, str]:
    """The file's ``{key path: public key hex}``; {} when there is none."""
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise StartupError(f"{path}: cannot read the pinned device keys ({oneline(e)})") from None
    pins: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise StartupError(f"{path}:{n}: expected 'KEY_PATH PUBKEY_HEX'")
        pins[parts[0]] = parts[1].lower()
    return pins


def _write(path: Path, pins: dict[str, str]) -> None:
    body = "# invreq: the public key each hardware device key path must have\n" + "".join(
        f"{k} {v}\n" for k, v in sorted(pins.items())
    )
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, body.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def pin_key(
    network_dir: Path, key_path: str, pubkey: bytes, expected: str | None, *, role: str
) -> str:
    """Check ``pubkey`` (read from the device at ``key_path``) against ``--hwi-pubkey``
    (``expected``) and the pin file, recording it there at first use. Returns how it was
    checked (for the start-up log line); raises ``StartupError`` (one line) on a mismatch."""
    got = pubkey.hex()
    if expected is not None and got != expected.lower():
        raise StartupError(
            f"{role}: the device's key at {key_path} is {got}, not --hwi-pubkey {expected}: "
            "another device or seed; nothing was approved or signed"
        )
    path = network_dir / PIN_FILE
    pins = pinned_keys(path)
    pinned = pins.get(key_path)
    if pinned is not None and pinned != got:
        raise StartupError(
            f"{role}: the device's key at {key_path} is {got}, but {path} pins {pinned} "
            "(the device first used here): another device or seed. If you replaced the "
            "device on purpose, delete that line (requests approved by the old key are then "
            "not paid)"
        )
    if pinned is None:
        network_dir.mkdir(parents=True, exist_ok=True)
        pins[key_path] = got
        _write(path, pins)
        return f"pinned now in {path}"
    return f"matches the pin in {path}"
