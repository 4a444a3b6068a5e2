"""Hardware signing through HWI: the device holds the payer key, or approves each request.

No stock device makes a BIP-340 signature over a digest it did not build, so signing on a
device goes through one extension request, ``sign_bolt12``, sent over the Jade protocol's
request/response channel that hwilib's Jade client already uses. It carries the key path,
``messagename`` ``invoice_request``, ``fieldname`` ``signature`` and the whole unsigned TLV
stream: the device recomputes the merkle root itself and shows what it signs. The service
verifies the returned signature against invreq_payer_id before anything is stored.

Approval (``--approver hwi``) needs nothing beyond stock firmware: the device signs a
human-readable text with its standard BIP-137 ``sign_message``, and the answer is stored.

hwilib is blocking: every call runs on one dedicated thread (a device handles one request
at a time anyway), with a bounded queue in front (beyond it: "signer busy") and a timeout
(then the connection is closed, which also unblocks the thread, and the next request
reconnects, so the service recovers when the device returns).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from invreq.errors import SignerError, StartupError

__all__ = [
    "DEFAULT_KEY_PATH",
    "Device",
    "HwiApprover",
    "HwiSigner",
    "approval_text",
    "open_device",
]

log = logging.getLogger("invreq.hwi")

#: A hardened path under the BIP-32 purpose CLN uses for BOLT 12 keys (9735').
DEFAULT_KEY_PATH = "m/9735h/0h/0h"
#: Requests waiting for the device beyond the one it is handling; more get "signer busy".
MAX_WAITING = 8
#: The error code stock Jade firmware answers an unknown method with (JSON-RPC's).
UNKNOWN_METHOD = -32601
USER_DECLINED = -32000

T = TypeVar("T")


def _chain(network: str) -> Any:
    from hwilib.common import Chain

    return {
        "bitcoin": Chain.MAIN,
        "testnet": Chain.TEST,
        "testnet4": Chain.TEST,
        "signet": Chain.SIGNET,
        "regtest": Chain.REGTEST,
    }[network]


def _path_list(path: str) -> list[int]:
    from hwilib.key import parse_path

    return list(parse_path(path))


class Device:
    """One hwilib client on its own thread, with a timeout, a queue bound and reconnects."""

    def __init__(
        self,
        *,
        device_type: str | None,
        device_path: str | None,
        fingerprint: str | None,
        network: str,
        timeout: float,
    ) -> None:
        self.device_type = device_type
        self.device_path = device_path
        self.fingerprint = fingerprint
        self.network = network
        self.timeout = timeout
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="invreq-hwi")
        self._client: Any = None
        self._waiting = 0

    @property
    def name(self) -> str:
        return f"{self.device_type or 'device'} at {self.device_path or self.fingerprint}"

    # --- on the device thread -----------------------------------------------------------

    def _connect(self) -> Any:
        if self._client is not None:
            return self._client
        from hwilib import commands

        try:
            with warnings.catch_warnings():
                # hwilib 3.2.0's Jade client calls semver.parse_version_info (deprecated).
                warnings.simplefilter("ignore", DeprecationWarning)
                if self.device_type and self.device_path:
                    client = commands.get_client(
                        self.device_type, self.device_path, chain=_chain(self.network)
                    )
                else:
                    client = commands.find_device(
                        device_type=self.device_type,
                        fingerprint=self.fingerprint,
                        chain=_chain(self.network),
                    )
        except Exception as e:  # hwilib raises many kinds; all mean "not reachable"
            raise SignerError(f"cannot reach {self.name}: {e}") from None
        if client is None:
            raise SignerError(f"no device found for {self.name}")
        _bound_reads(client, self.timeout)
        self._client = client
        if self.device_type is None:
            self.device_type = getattr(client, "type", None)
        return client

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    # --- from the event loop ------------------------------------------------------------

    async def call(self, what: str, fn: Any, *args: Any) -> Any:
        """Run ``fn(client, *args)`` on the device thread, within the timeout."""
        if self._waiting > MAX_WAITING:
            raise SignerError(f"signer busy: {self.name} already has {self._waiting} requests")
        self._waiting += 1
        loop = asyncio.get_running_loop()
        try:

            def run() -> Any:
                # A connection found dead (the device restarted since) is replaced once;
                # the request is safe to repeat: nothing is stored before it succeeds.
                for attempt in (1, 2):
                    try:
                        return fn(self._connect(), *args)
                    except TimeoutError:
                        # Out of step now: drop it; the next call reconnects, so the service
                        # recovers as soon as the device answers again.
                        self._drop()
                        raise SignerError(
                            f"{self.name} did not answer {what} within {self.timeout:g} s"
                        ) from None
                    except OSError as e:
                        self._drop()
                        if attempt == 2:
                            raise SignerError(f"lost {self.name} during {what}: {e}") from None
                raise AssertionError("unreachable")

            try:
                # The socket timeout ends a silent device; this only guards against a
                # transport without one.
                return await asyncio.wait_for(
                    loop.run_in_executor(self._executor, run), self.timeout * 2 + 5
                )
            except TimeoutError:
                raise SignerError(
                    f"{self.name} did not answer {what} within {self.timeout:g} s"
                ) from None
        finally:
            self._waiting -= 1

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._drop)
        self._executor.shutdown(wait=False, cancel_futures=True)


def _bound_reads(client: Any, timeout: float) -> None:
    """Make every read of a Jade TCP connection end: within ``timeout`` (hwilib's default
    is 120 s) and with an error at end of stream (hwilib's reader retries an empty read
    forever, so a device that disconnects would leave the device thread spinning)."""
    impl = getattr(getattr(getattr(client, "jade", None), "jade", None), "impl", None)
    sock = getattr(impl, "tcp_sock", None)
    if sock is None:
        return  # a USB/serial transport: its own timeouts apply
    sock.settimeout(timeout)

    def read(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionResetError("the device closed the connection")
            buf += chunk
        return buf

    impl.read = read  # type: ignore[union-attr]


def _jade_error(e: Exception) -> tuple[int | None, str]:
    code = getattr(e, "code", None)
    message = getattr(e, "message", None) or str(e)
    return (code if isinstance(code, int) else None), str(message)


def _rpc(client: Any, method: str, params: dict[str, Any]) -> Any:
    """A request on the Jade protocol's own channel (hwilib's JadeClient.jade)."""
    jade = getattr(client, "jade", None)
    if jade is None or not hasattr(jade, "_jadeRpc"):
        raise _Unsupported(f"{type(client).__name__} has no Jade RPC channel")
    # long_timeout=False: the socket timeout set by _bound_reads is the one that applies.
    return jade._jadeRpc(method, params, long_timeout=False)


class _Unsupported(Exception):
    pass


class HwiSigner:
    """``--signer hwi``: the payer key lives on the device, which signs through
    ``sign_bolt12``."""

    def __init__(self, device: Device, key_path: str, payer_id: bytes, fingerprint: str) -> None:
        self.device = device
        self.key_path = key_path
        self.payer_id = payer_id
        self.key_id = f"hwi:{fingerprint}/{key_path}"

    async def sign_invoice_request(self, unsigned_tlv: bytes, digest: bytes) -> bytes:
        params = {
            "path": _path_list(self.key_path),
            "messagename": "invoice_request",
            "fieldname": "signature",
            "tlv_stream": unsigned_tlv,
        }

        def sign(client: Any) -> bytes:
            try:
                reply = _rpc(client, "sign_bolt12", params)
            except _Unsupported as e:
                raise SignerError(str(e)) from None
            except OSError:
                raise  # the connection, not the device's answer: Device.call handles it
            except Exception as e:
                code, message = _jade_error(e)
                if code == USER_DECLINED:
                    raise SignerError(f"declined on the device: {message}") from None
                raise SignerError(f"device error {code}: {message}") from None
            sig = reply.get("signature") if isinstance(reply, dict) else None
            if not isinstance(sig, bytes) or len(sig) != 64:
                raise SignerError("device answered sign_bolt12 without a 64-byte signature")
            return sig

        result: bytes = await self.device.call("sign_bolt12", sign)
        return result

    async def close(self) -> None:
        await self.device.close()


def approval_text(
    *,
    network: str,
    amount_msat: int,
    description: str,
    issuer: str | None,
    absolute_expiry: int | None,
    invreq_id: str,
) -> str:
    """What the approving device shows and signs: one fact per line, nothing hidden."""
    lines = [
        "invreq: approve paying out",
        f"network: {network}",
        f"amount: {amount_msat} msat",
        f"description: {description}",
        f"issuer: {issuer if issuer is not None else '-'}",
        f"expires: {absolute_expiry if absolute_expiry is not None else 'never'}",
        f"invreq_id: {invreq_id}",
    ]
    return "\n".join(lines)


class HwiApprover:
    """``--approver hwi``: a stock device approves each request with a BIP-137 signature."""

    def __init__(self, device: Device, key_path: str, fingerprint: str) -> None:
        self.device = device
        self.key_path = key_path
        self.fingerprint = fingerprint

    async def approve(self, text: str) -> dict[str, Any]:
        def sign(client: Any) -> str:
            try:
                return str(client.sign_message(text, self.key_path))
            except OSError:
                raise  # the connection: Device.call handles it
            except Exception as e:
                code, message = _jade_error(e)
                if (
                    code == USER_DECLINED
                    or "declin" in message.lower()
                    or "cancel" in message.lower()
                ):
                    raise SignerError(f"approval declined on the device: {message}") from None
                raise SignerError(f"approval failed on the device: {message}") from None

        signature: str = await self.device.call("sign_message", sign)
        # The evidence, enough for anyone with the device's key to check it later.
        base64.b64decode(signature, validate=True)
        return {
            "device": self.device.device_type,
            "fingerprint": self.fingerprint,
            "path": self.key_path,
            "message": text,
            "signature": signature,
        }

    async def close(self) -> None:
        await self.device.close()


async def open_device(
    *,
    device_type: str | None,
    device_path: str | None,
    fingerprint: str | None,
    network: str,
    timeout: float,
) -> tuple[Device, str]:
    """Connect and read the master fingerprint; ``StartupError`` if the device is absent."""
    if not (device_type and device_path) and not fingerprint:
        raise StartupError(
            "--signer hwi / --approver hwi need --hwi-device-type and --hwi-device-path, "
            "or --hwi-fingerprint to find the device"
        )
    device = Device(
        device_type=device_type,
        device_path=device_path,
        fingerprint=fingerprint,
        network=network,
        timeout=timeout,
    )
    try:
        fp = await device.call("get_master_fingerprint", lambda c: c.get_master_fingerprint().hex())
    except SignerError as e:
        await device.close()
        raise StartupError(f"hardware signer: {e}") from None
    return device, str(fp)


async def open_hwi_signer(*, key_path: str | None, **device_args: Any) -> HwiSigner:
    """``device_args``: those of :func:`open_device`."""
    device, fp = await open_device(**device_args)
    path = key_path or DEFAULT_KEY_PATH
    try:
        xpub = await device.call("get_pubkey_at_path", lambda c: c.get_pubkey_at_path(path))
        payer_id = bytes(xpub.pubkey)
        # The capability probe: a request the extension refuses on its parameters, which
        # stock firmware refuses as an unknown method. Nothing is signed.
        probe = {
            "path": _path_list(path),
            "messagename": "probe",
            "fieldname": "probe",
            "tlv_stream": b"",
        }

        def try_probe(client: Any) -> int | None:
            try:
                _rpc(client, "sign_bolt12", probe)
            except _Unsupported:
                return UNKNOWN_METHOD
            except Exception as e:
                return _jade_error(e)[0]
            return None

        code = await device.call("the sign_bolt12 probe", try_probe)
    except SignerError as e:
        await device.close()
        raise StartupError(f"hardware signer: {e}") from None
    if code == UNKNOWN_METHOD:
        await device.close()
        raise StartupError(
            f"hardware signer: {device.name} (fingerprint {fp}) does not support the "
            "sign_bolt12 extension (it answered 'unknown method', as stock firmware does), so "
            "it cannot hold the payer key. Use --signer software with --approver hwi to have "
            "this device approve each request instead."
        )
    log.info("hardware signer %s fingerprint %s key %s", device.name, fp, path)
    return HwiSigner(device, path, payer_id, fp)


async def open_hwi_approver(*, key_path: str | None, **device_args: Any) -> HwiApprover:
    """``device_args``: those of :func:`open_device`."""
    device, fp = await open_device(**device_args)
    return HwiApprover(device, key_path or DEFAULT_KEY_PATH, fp)
