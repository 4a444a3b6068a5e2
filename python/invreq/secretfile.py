"""Owner-only secret files in the network directory (the payer key, the rune master secret).

One way to keep a secret on disk: created on first start, written in full and fsync'd
under a temporary name, then linked into place, so a crash never leaves a half-written
secret and two processes starting at once end up with the same one; refused at start when
the group or others can read it, or when it is a symbolic link, with the command that
fixes it. ``owner_only`` does the same for files that are not secrets but hold records
(the database, the log): created 0600, narrowed to owner-only when found wider.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

from invreq.errors import StartupError

__all__ = ["SECRET_BYTES", "load_or_create", "owner_only", "read_given"]

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


def owner_only(path: Path, *, create: bool = True) -> bool:
    """Make ``path`` a regular file only its owner can read (0600): created so when missing
    (and ``create``), its group and other bits cleared when it exists. For files that hold
    records or may quote them (the database and its -wal/-shm, the log), wherever they are:
    SQLite gives its -wal and -shm files the database file's mode. Returns True when an
    existing file's mode was narrowed (the caller says so in the log)."""
    flags = os.O_RDONLY | (os.O_CREAT if create else 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileNotFoundError:
        return False
    except OSError as e:
        raise StartupError(f"{path}: cannot open it ({e.strerror})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            return False  # a device or pipe (--log-file /dev/stderr): not ours to change
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            os.fchmod(fd, stat.S_IMODE(mode) & ~(stat.S_IRWXG | stat.S_IRWXO))
            return True
        return False
    finally:
        os.close(fd)


#: Fewest bytes of a secret the operator gives (``--webhook-secret-file``).
MIN_GIVEN_BYTES = 16


def read_given(path: Path, *, role: str) -> bytes:
    """A secret the operator wrote (e.g. ``openssl rand -hex 32 > FILE``): the file's bytes
    without trailing whitespace, from a regular file only its owner can read, at least
    ``MIN_GIVEN_BYTES`` long. Refusals are ``StartupError`` naming the fix."""
    try:
        data = _read(path, role, exact=False)
    except FileNotFoundError:
        raise StartupError(f"{path}: no such file; it {role}") from None
    secret = data.rstrip()
    if len(secret) < MIN_GIVEN_BYTES:
        raise StartupError(
            f"{path}: {len(secret)} bytes; it {role} and needs at least {MIN_GIVEN_BYTES} "
            "(e.g. `openssl rand -hex 32`)"
        )
    return secret


def _read(path: Path, role: str, *, exact: bool = True) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise StartupError(
                f"{path} is a symbolic link; it {role} and is read only from a regular file: "
                f'run `cp --remove-destination "$(readlink -f {path})" {path}` and start again'
            ) from None
        if isinstance(e, FileNotFoundError):
            raise
        raise StartupError(f"{path}: cannot read it ({e.strerror}); it {role}") from None
    try:
        mode = os.fstat(fd).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise StartupError(
                f"{path} is readable by group or others (mode {stat.S_IMODE(mode):04o}); "
                f"it {role}: run `chmod 600 {path}` and start again"
            )
        data = os.read(fd, 2 * SECRET_BYTES if exact else 4096)
    finally:
        os.close(fd)
    if exact and len(data) != SECRET_BYTES:
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
