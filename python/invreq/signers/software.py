"""The software signer: a 32-byte secret in the network directory, signing with coincurve.

The secret is created on first start (owner-only, written with O_EXCL and fsync'd, so a
crash can never leave a half-written key behind a running service) and refused later if
the group or others can read it. Signing is BIP-340 with an all-zero auxiliary random, as
CLN does, so a given request always gets the same signature.

coincurve's ``PrivateKey.sign_schnorr`` rebuilds the secp256k1 keypair and verifies the
signature on every call; here the keypair is built once, and the verification is left to
the core (``UnsignedInvoiceRequest.with_signature``) which the service always runs.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from coincurve import PrivateKey
from coincurve._libsecp256k1 import ffi, lib
from coincurve.context import GLOBAL_CONTEXT

from invreq.errors import SignerError, StartupError

__all__ = ["SECRET_NAME", "SoftwareSigner"]

SECRET_NAME = "payer_secret"
_ZERO_AUX = bytes(32)


class SoftwareSigner:
    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32:
            raise ValueError("the secret must be 32 bytes")
        key = PrivateKey(secret)  # raises on zero or >= the group order
        self.payer_id: bytes = key.public_key.format(compressed=True)
        self.key_id = f"software:{self.payer_id.hex()}"
        self._ctx = GLOBAL_CONTEXT.ctx
        self._keypair = ffi.new("secp256k1_keypair *")
        if not lib.secp256k1_keypair_create(self._ctx, self._keypair, secret):
            raise ValueError("invalid secret")

    @classmethod
    def load_or_create(cls, directory: Path) -> SoftwareSigner:
        path = directory / SECRET_NAME
        try:
            secret = _read_secret(path)
        except FileNotFoundError:
            secret = _create_secret(path)
        try:
            return cls(secret)
        except ValueError as e:
            raise StartupError(f"{path}: not a usable secp256k1 secret ({e})") from None

    def sign_digest(self, digest: bytes) -> bytes:
        if len(digest) != 32:
            raise SignerError("digest must be 32 bytes")
        # A buffer per call: the signing thread and the event loop may both sign.
        sig = ffi.new("unsigned char[64]")
        if not lib.secp256k1_schnorrsig_sign32(self._ctx, sig, digest, self._keypair, _ZERO_AUX):
            raise SignerError("secp256k1 signing failed")
        return bytes(ffi.buffer(sig))

    async def sign_invoice_request(self, unsigned_tlv: bytes, digest: bytes) -> bytes:
        # Used only without the signing pipeline: ~14 µs, cheaper inline than one hop.
        return self.sign_digest(digest)

    async def close(self) -> None:
        return None


def _read_secret(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise StartupError(
                f"{path} is readable by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
                f"it holds the payer key: run `chmod 600 {path}` and start again"
            )
        data = os.read(fd, 64)
    finally:
        os.close(fd)
    if len(data) != 32:
        raise StartupError(
            f"{path}: expected 32 bytes, found {len(data)}; it is not a payer secret"
        )
    return data


def _create_secret(path: Path) -> bytes:
    while True:
        secret = os.urandom(32)
        try:
            PrivateKey(secret)
            break
        except ValueError:  # astronomically unlikely: zero or >= the group order
            continue
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, secret)
        os.fsync(fd)
    finally:
        os.close(fd)
    # link() fails if another process created the key meanwhile: then use theirs.
    try:
        os.link(tmp, path)
    except FileExistsError:
        os.unlink(tmp)
        return _read_secret(path)
    os.unlink(tmp)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return secret
