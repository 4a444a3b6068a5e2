"""Signers: a software key (coincurve) or a hardware device through HWI."""

from invreq.signers.base import Signer

__all__ = ["Signer"]
