"""Opens the signer the configuration asks for; never falls back silently."""

from __future__ import annotations

from invreq.config import Config
from invreq.signers.base import Signer

__all__ = ["open_signer"]


async def open_signer(config: Config) -> Signer:
    from invreq.signers.software import SoftwareSigner

    return SoftwareSigner.load_or_create(config.network_dir)
