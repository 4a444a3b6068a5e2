"""Opens the signer and the approver the configuration asks for; never falls back silently."""

from __future__ import annotations

from typing import Any

from invreq.config import Config
from invreq.extras import require
from invreq.signers.base import Approver, Signer

__all__ = ["open_approver", "open_payout_approver", "open_signer"]


def _device_args(config: Config) -> dict[str, Any]:
    return {
        "device_type": config.hwi_device_type,
        "device_path": config.hwi_device_path,
        "fingerprint": config.hwi_fingerprint,
        "network": config.network,
        "timeout": config.hwi_timeout,
        # The key at the configured path is the device's identity (invreq.signers.pins).
        "pin": {"network_dir": config.network_dir, "expected": config.hwi_pubkey},
    }


async def open_signer(config: Config) -> Signer:
    if config.signer == "hwi":
        require("hwilib", "--signer hwi")
        from invreq.signers.hwi import open_hwi_signer

        return await open_hwi_signer(key_path=config.hwi_key_path, **_device_args(config))
    from invreq.signers.software import SoftwareSigner

    return SoftwareSigner.load_or_create(config.network_dir)


async def open_payout_approver(config: Config, approver: Approver | None) -> Approver | None:
    """``--payout-approver hwi``: the request approver's device and key when there is one
    (one device, one connection), else the device opened for payouts alone."""
    if config.payout_approver == "none":
        return None
    if approver is not None:
        return approver
    require("hwilib", "--payout-approver hwi")
    from invreq.signers.hwi import open_hwi_approver

    return await open_hwi_approver(key_path=config.hwi_approval_path, **_device_args(config))


async def open_approver(config: Config) -> Approver | None:
    if config.approver == "none":
        return None
    require("hwilib", "--approver hwi")
    from invreq.signers.hwi import open_hwi_approver

    return await open_hwi_approver(key_path=config.hwi_approval_path, **_device_args(config))
