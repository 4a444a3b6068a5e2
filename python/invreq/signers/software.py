"""The software signer: a 32-byte secret in the network directory, signing with coincurve.

The secret is created on first start and refused later if the group or others can read
it (:mod:`invreq.secretfile`). Signing is BIP-340 with an all-zero auxiliary random, as
CLN does, so a given request always gets the same signature.

coincurve's ``PrivateKey.sign_schnorr`` rebuilds the secp256k1 keypair and verifies the
signature on every call; here the keypair is built once, and the verification is left to
the core (``UnsignedInvoiceRequest.with_signature``) which the service always runs.
"""

from __future__ import annotations

import os
from pathlib import Path

from coincurve import PrivateKey
from coincurve._libsecp256k1 import ffi, lib
from coincurve.context import GLOBAL_CONTEXT

from invreq import secretfile
from invreq.errors import SignerError, StartupError

__all__ = ["SECRET_NAME", "SoftwareSigner"]

SECRET_NAME = "payer_secret"
_ZERO_AUX = bytes(32)


class SoftwareSigner:
    kind = "software"

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
        secret = secretfile.load_or_create(path, role="holds the payer key", generate=_new_secret)
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
        # ~14 µs: cheaper inline than a hop to a thread (measured: a signing thread was slower).
        return self.sign_digest(digest)

    async def close(self) -> None:
        return None


def _new_secret() -> bytes:
    while True:
        secret = os.urandom(32)
        try:
            PrivateKey(secret)
            return secret
        except ValueError:  # astronomically unlikely: zero or >= the group order
            continue
