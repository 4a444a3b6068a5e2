"""Owner-only secret files in the network directory (the payer key, the rune master secret).

One way to keep a secret on disk: created on first start, written in full and fsync'd
under a temporary name, then linked into place, so a crash never leaves a half-written
secret and two processes starting at once end up with the same one; refused at start when
the group or others can read it, with the command that fixes it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from invreq.errors import StartupError

__all__ = ["SECRET_BYTES", "load_or_create"]

SECRET_BYTES = 32


def load_or_create(
    path: Path, *, role: str, generate: Callable[[], bytes] = lambda: os.urandom(SECRET_BYTES)
) -> bytes:
    """The secret in ``path``, creating it with ``generate()`` if there is none.

    ``role`` says what it is for, in the refusal messages ("holds the payer key")."""
    try:
        return _read(path, role)
    except FileNotFoundError:
        return _create(path, role, generate())


def _read(path: Path, role: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        mode = os.fstat(fd).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise StartupError(
                f"{path} is readable by group or others (mode {stat.S_IMODE(mode):04o}); "
                f"it {role}: run `chmod 600 {path}` and start again"
            )
        data = os.read(fd, 2 * SECRET_BYTES)
    finally:
        os.close(fd)
    if len(data) != SECRET_BYTES:
        raise StartupError(
            f"{path}: expected {SECRET_BYTES} bytes, found {len(data)}; it is not the file "
            f"that {role}"
        )
    return data


def _create(path: Path, role: str, secret: bytes) -> bytes:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, secret)
        os.fsync(fd)
    finally:
        os.close(fd)
    # link() fails if another process created the secret meanwhile: then use theirs.
    try:
        os.link(tmp, path)
    except FileExistsError:
        os.unlink(tmp)
        return _read(path, role)
    os.unlink(tmp)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return secret
