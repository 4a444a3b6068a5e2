"""Hardware signing through HWI: the device holds the payer key, or approves each request.

No stock device makes a BIP-340 signature over a digest it did not build, so signing on a
device goes through one extension request, ``sign_bolt12``, sent over the Jade protocol's
request/response channel that hwilib's Jade client already uses. It carries the key path,
``messagename`` ``invoice_request``, ``fieldname`` ``signature`` and the whole unsigned TLV
stream: the device recomputes the merkle root itself and shows what it signs. The service
verifies the returned signature against invreq_payer_id before anything is stored.

Approval (``--approver hwi``) needs nothing beyond stock firmware: the device signs the
approval text (:mod:`invreq.approval`) with its standard BIP-137 ``sign_message``; the
signature is checked against the key at the approval path, read from the device at start,
before the request goes on.

Identity is by key, never by claim (:mod:`invreq.signers.pins`): the master fingerprint is
computed here from the master public key (hwilib's ``get_master_fingerprint`` returns the
parent fingerprint the device writes into an xpub: its word), ``--hwi-fingerprint`` is
checked whenever it is given, and the public key at the configured path is pinned and read
again on every reconnect. Find mode (``--hwi-fingerprint`` alone) looks at USB devices only:
a TCP endpoint is used only when ``--hwi-device-path`` names it.

Everything a device says (error messages, ids, log lines) is outside text: it reaches a
log line or an RPC error only through :func:`invreq.oneline.oneline`.

hwilib is blocking: every call runs on one dedicated daemon thread (a device handles one
request at a time anyway), with a bounded queue in front (beyond it: "signer busy"). Jade
protocol devices (TCP or USB serial) speak through :mod:`invreq.signers.jade_transport`,
which bounds each call, handshake and reconnect included, by ``--hwi-timeout`` counted from
when the device thread takes the call up (time queued behind other calls is not the
device's), so the thread always returns. Other HWI devices go through hwilib's own USB
transports.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import importlib
import logging
import queue
import threading
import time
import warnings
from typing import Any

from invreq import approval
from invreq.config import DEFAULT_HWI_KEY_PATH
from invreq.errors import SignerError, StartupError
from invreq.oneline import oneline
from invreq.signers.jade_transport import (
    BoundedJadeInterface,
    DeviceGone,
    DeviceMisbehaved,
    DeviceTimeout,
    DeviceUnreachable,
    TransportError,
)

__all__ = [
    "DEFAULT_KEY_PATH",
    "Device",
    "HwiApprover",
    "HwiSigner",
    "open_device",
]

log = logging.getLogger("invreq.hwi")

#: A hardened path under the BIP-32 purpose CLN uses for BOLT 12 keys (9735').
DEFAULT_KEY_PATH = DEFAULT_HWI_KEY_PATH  # one home: invreq.config
#: Requests waiting for the device beyond the one it is handling; more get "signer busy".
MAX_WAITING = 8
#: The error code stock Jade firmware answers an unknown method with (JSON-RPC's).
UNKNOWN_METHOD = -32601
USER_DECLINED = -32000
#: hwilib treats only this path as a Jade simulator (no unlock step).
SIMULATOR_PATH = "tcp:127.0.0.1:30121"
#: Queue waits shorter than this are not worth mentioning in an error.
_QUEUE_NOTE = 0.05
#: Polling a locked device ("not unlocked yet"): first pause, and the longest one.
UNLOCK_POLL_FIRST = 0.05
UNLOCK_POLL_MAX = 1.0
#: Our error messages quote device text: longer than oneline's default, still bounded.
_MESSAGE_CAP = 600


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


def _jade_client(path: str, chain: Any, iface: BoundedJadeInterface) -> Any:
    """hwilib's ``JadeClient`` over our transport, with the handshake hwilib's constructor
    does (version check; on a real unit entropy and unlock) bounded like any call."""
    from hwilib.devices.jade import JadeClient
    from hwilib.devices.jadepy.jade import JadeAPI
    from hwilib.hwwclient import HardwareWalletClient

    client = JadeClient.__new__(JadeClient)
    HardwareWalletClient.__init__(client, path, None, False, chain)
    client.jade = JadeAPI(iface)  # type: ignore[no-untyped-call]
    iface.connect()
    info = client.jade.get_version_info()
    if not isinstance(info, dict) or not isinstance(info.get("JADE_VERSION"), str):
        raise DeviceMisbehaved("answered get_version_info without a version")
    state = info.get("JADE_STATE")
    if path == SIMULATOR_PATH:
        if state not in ("READY", "TEMP"):
            raise SignerError(f"the device at {path} has no wallet set (state {state!r})")
    else:
        import os

        client.jade.add_entropy(os.urandom(32))
        # hwilib loops on auth_user for ever; here the call's deadline ends the loop, and a
        # PIN-server round trip (http_request) is refused by the transport. A device that
        # answers "not unlocked yet" is asked again after a pause that doubles up to 1 s,
        # not thousands of times a second.
        pause = UNLOCK_POLL_FIRST
        while client.jade.auth_user(client._network(), http_request_fn=_no_http) is not True:
            left = iface.deadline - time.monotonic()
            if left <= 0:
                raise DeviceTimeout("the device stayed locked")
            time.sleep(min(pause, left))
            pause = min(pause * 2, UNLOCK_POLL_MAX)
    return client


def _no_http(params: Any) -> Any:
    raise DeviceMisbehaved("asked the host to make an HTTP request (refused)")


def describe_device_error(e: Exception) -> tuple[int | None, str]:
    """(code, message) of an error the device answered with; never an empty message."""
    code = getattr(e, "code", None)
    message = getattr(e, "message", getattr(e, "msg", None))  # JadeError / hwilib's HWWError
    if not isinstance(message, str):
        message = "" if hasattr(e, "code") else str(e)
    code = code if isinstance(code, int) else None
    if not message.strip():
        message = "(the device gave no message)"
    return code, message  # escaped once, where it leaves Device.call (Device._run)


def master_fingerprint(client: Any) -> str:
    """The fingerprint of the device's master key, computed here: hash160 of the master
    public key (BIP-32), never the parent fingerprint a device writes into an xpub."""
    from hwilib.common import hash160

    key = bytes(client.get_pubkey_at_path("m").pubkey)
    if len(key) != 33:
        raise DeviceMisbehaved(f"gave a {len(key)}-byte master public key")
    return bytes(hash160(key)[:4]).hex()


def _pubkey_at(client: Any, path: str) -> bytes:
    key = bytes(client.get_pubkey_at_path(path).pubkey)
    if len(key) != 33:
        raise DeviceMisbehaved(f"gave a {len(key)}-byte public key at {path}")
    return key


@dataclasses.dataclass
class _Job:
    what: str
    fn: Any
    args: tuple[Any, ...]
    enqueued: float
    future: concurrent.futures.Future[Any] = dataclasses.field(
        default_factory=concurrent.futures.Future
    )


class Device:
    """One hwilib client on its own thread: bounded calls, a queue bound and reconnects."""

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
        self._client: Any = None
        self._iface: BoundedJadeInterface | None = None
        self._deadline = 0.0  # of the call in progress (monotonic)
        self._waiting = 0
        self._closed = False
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        # A daemon thread: interpreter exit never waits for a device.
        self._thread = threading.Thread(target=self._work, name="invreq-hwi", daemon=True)
        self._thread.start()
        #: Of the last call: seconds queued behind other calls, and spent on the device.
        self.last_queue_wait = 0.0
        self.last_device_time = 0.0
        #: key path -> the public key the device must have there, checked on every
        #: (re)connect once set (at start, after the pin check)
        self.pins: dict[str, bytes] = {}

    @property
    def name(self) -> str:
        return f"{self.device_type or 'device'} at {self.device_path or self.fingerprint}"

    @property
    def _jade(self) -> bool:
        return self.device_type in (None, "jade")

    # --- on the device thread -----------------------------------------------------------

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                self._drop()
                return
            if not job.future.set_running_or_notify_cancel():
                continue  # its caller gave up while it was queued
            started = time.monotonic()
            self.last_queue_wait = started - job.enqueued
            try:
                result = self._run(job)
            except BaseException as e:  # the thread must survive anything a call raises
                job.future.set_exception(e)
            else:
                job.future.set_result(result)
            finally:
                self.last_device_time = time.monotonic() - started
                log.debug(
                    "%s: %.3f s queued, %.3f s on the device",
                    job.what,
                    self.last_queue_wait,
                    self.last_device_time,
                )

    def _run(self, job: _Job) -> Any:
        try:
            return self._attempts(job)
        except SignerError as e:
            # Our messages quote what the device said: one printable line, bounded.
            raise SignerError(oneline(e.message, _MESSAGE_CAP)) from None

    def _attempts(self, job: _Job) -> Any:
        queued = self.last_queue_wait
        note = (
            f" (after {queued:.1f} s queued behind other requests)" if queued > _QUEUE_NOTE else ""
        )
        self._deadline = time.monotonic() + self.timeout
        if self._iface is not None:
            self._iface.begin_call(self._deadline)
        # A connection found dead (the device restarted since) is replaced once; the
        # request is safe to repeat: nothing is stored before it succeeds.
        for attempt in (1, 2):
            if self._closed:
                raise SignerError(f"{self.name} is closed (invreq is stopping)")
            try:
                return job.fn(self._connect(), *job.args)
            except DeviceTimeout:
                self._drop()
                raise SignerError(
                    f"{self.name} did not answer {job.what} within {self.timeout:g} s{note}"
                ) from None
            except DeviceUnreachable as e:
                self._drop()
                if attempt == 2:
                    raise SignerError(f"cannot reach {self.name}: {e}") from None
            except DeviceGone as e:
                self._drop()
                if attempt == 2:
                    raise SignerError(f"lost {self.name} during {job.what}: {e}") from None
            except DeviceMisbehaved as e:
                self._drop()
                raise SignerError(
                    f"{self.name} misbehaved during {job.what}: {e}; connection closed"
                ) from None
            except TransportError as e:
                self._drop()
                raise SignerError(f"{self.name} failed during {job.what}: {e}") from None
            except SignerError:
                raise
            except Exception as e:  # hwilib raises many kinds for an unusable answer
                self._drop()
                code, message = describe_device_error(e)
                raise SignerError(
                    f"{self.name} failed during {job.what}: "
                    + (f"device error {code}: {message}" if code is not None else message)
                ) from None
        raise AssertionError("unreachable")

    def _connect(self) -> Any:
        if self._client is not None:
            return self._client
        chain = _chain(self.network)
        if self._jade:
            if self._iface is None:
                path = self.device_path or self._find_jade(chain)
                if path is None:
                    return self._connect_other(chain)
                self.device_path, self.device_type = path, "jade"
                self._iface = BoundedJadeInterface(path, self.timeout)
                self._iface.begin_call(self._deadline)
            try:
                client = _jade_client(self.device_path or "", chain, self._iface)
                self._check_identity(client)
            except BaseException:
                self._iface.disconnect()
                raise
            self._client = client
            return client
        return self._connect_other(chain)

    def _check_identity(self, client: Any) -> None:
        """On every (re)connect: the device still has the pinned key at each pinned path.
        A device swapped behind our back (another seed on the same port or cable) is
        refused before it is asked anything else."""
        for path, key in self.pins.items():
            got = _pubkey_at(client, path)
            if got != key:
                raise SignerError(
                    f"{self.name} is not the pinned device: its key at {path} is {got.hex()}, "
                    f"pinned {key.hex()}; refused"
                )

    def _find_jade(self, chain: Any) -> str | None:
        """The path of the Jade on a USB serial port whose master fingerprint (computed
        here) is ``--hwi-fingerprint``, each tried through the bounded transport. Never a
        TCP address: a listener on the simulator's port is whoever started it first, and
        is used only when ``--hwi-device-path`` names it."""
        from hwilib.devices.jadepy.jade_serial import JadeSerialImpl
        from serial.tools import list_ports  # type: ignore[import-untyped]

        candidates = [
            p.device
            for p in list_ports.comports()
            if (p.vid, p.pid) in JadeSerialImpl.JADE_DEVICE_IDS
        ]
        for path in candidates:
            iface = BoundedJadeInterface(path, self.timeout)
            iface.begin_call(self._deadline)
            try:
                client = _jade_client(path, chain, iface)
                fp = master_fingerprint(client)
            except DeviceTimeout:
                raise
            except Exception as e:
                log.debug("no Jade at %s: %s", oneline(path), oneline(e))
                continue
            finally:
                iface.disconnect()
            if fp == self.fingerprint:
                return str(path)
        return None

    def _connect_other(self, chain: Any) -> Any:
        """A non-Jade HWI device, through hwilib (its USB transports have their own
        timeouts)."""
        from hwilib import commands

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                if self.device_type and self.device_path:
                    client = commands.get_client(self.device_type, self.device_path, chain=chain)
                else:
                    client = self._find_other(chain)
        except SignerError:
            raise
        except Exception as e:  # hwilib raises many kinds; all mean "not reachable"
            raise SignerError(f"cannot reach {self.name}: {e}") from None
        if client is None:
            raise SignerError(
                f"no device found for {self.name} (--hwi-fingerprint alone looks at USB "
                "devices only; name a TCP device with --hwi-device-path)"
            )
        try:
            self._check_identity(client)
        except BaseException:
            client.close()
            raise
        self._client = client
        return client

    def _find_other(self, chain: Any) -> Any:
        from hwilib import commands
        from hwilib.devices import __all__ as device_modules

        for module in device_modules:
            if module == "jade" or self.device_type not in (None, module):
                continue
            try:
                found = importlib.import_module(f"hwilib.devices.{module}").enumerate(
                    None, False, chain, True
                )
            except Exception as e:  # e.g. no libusb for the USB scans
                log.debug("cannot enumerate %s devices: %s", module, oneline(e))
                continue
            for d in found:
                # hwilib's enumerate reports the device's own claim: only a candidate.
                # open_device computes the fingerprint from the master key and refuses
                # a device whose fingerprint is not the one configured.
                if d.get("fingerprint") == self.fingerprint:
                    self.device_type, self.device_path = d["type"], d["path"]
                    return commands.get_client(d["type"], d["path"], chain=chain)
        return None

    def _drop(self) -> None:
        client, self._client = self._client, None
        if self._iface is not None:
            self._iface.disconnect()
        elif client is not None:
            try:
                client.close()
            except Exception:
                pass

    # --- from the event loop ------------------------------------------------------------

    async def call(self, what: str, fn: Any, *args: Any) -> Any:
        """Run ``fn(client, *args)`` on the device thread. Its time on the device is
        bounded by the transport; time queued behind earlier calls is not counted."""
        if self._closed:
            raise SignerError(f"{self.name} is closed")
        if self._waiting > MAX_WAITING:
            raise SignerError(f"signer busy: {self.name} already has {self._waiting} requests")
        self._waiting += 1
        try:
            job = _Job(what, fn, args, time.monotonic())
            self._jobs.put(job)
            # Cancelling this await cancels a job still queued; one already running ends
            # by its deadline.
            return await asyncio.wrap_future(job.future)
        finally:
            self._waiting -= 1

    async def close(self) -> None:
        """Stop at once: a call in progress is cut off (its socket shut down)."""
        if self._closed:
            return
        self._closed = True
        if self._iface is not None:
            self._iface.abort()
        self._jobs.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 5.0)


def _rpc(client: Any, method: str, params: dict[str, Any]) -> Any:
    """A request on the Jade protocol's own channel (hwilib's JadeClient.jade)."""
    jade = getattr(client, "jade", None)
    if jade is None or not hasattr(jade, "_jadeRpc"):
        raise _Unsupported(f"{type(client).__name__} has no Jade RPC channel")
    return jade._jadeRpc(method, params, http_request_fn=_no_http)


class _Unsupported(Exception):
    pass


def _device_refusal(e: Exception, what: str) -> SignerError:
    code, message = describe_device_error(e)
    lowered = message.lower()
    if code == USER_DECLINED or "declin" in lowered or "cancel" in lowered:
        return SignerError(f"{what} declined on the device: {message}")
    if code is None:
        return SignerError(f"{what} failed on the device: {message}")
    return SignerError(f"{what} failed on the device: device error {code}: {message}")


class HwiSigner:
    """``--signer hwi``: the payer key lives on the device, which signs through
    ``sign_bolt12``."""

    kind = "hwi"

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
            except TransportError:
                raise  # the connection, not the device's answer: Device.call handles it
            except Exception as e:
                raise _device_refusal(e, "sign_bolt12") from None
            sig = reply.get("signature") if isinstance(reply, dict) else None
            if not isinstance(sig, bytes) or len(sig) != 64:
                raise SignerError("device answered sign_bolt12 without a 64-byte signature")
            return sig

        result: bytes = await self.device.call("sign_bolt12", sign)
        return result

    async def close(self) -> None:
        await self.device.close()


class HwiApprover:
    """``--approver hwi``: a stock device approves each request with a BIP-137 signature,
    checked against ``pubkey`` (the key at ``key_path``, read from the device at start)."""

    def __init__(self, device: Device, key_path: str, fingerprint: str, pubkey: bytes) -> None:
        self.device = device
        self.key_path = key_path
        self.fingerprint = fingerprint
        self.pubkey = pubkey

    async def approve(self, text: str) -> dict[str, Any]:
        path = _path_list(self.key_path)

        def sign(client: Any) -> str:
            try:
                # The Jade API itself, not hwilib's wrapper, which turns any answer into
                # a string: an answer that is not text is a faulty device, not a signature.
                answer = client.jade.sign_message(path, text)
            except TransportError:
                raise  # the connection: Device.call handles it
            except Exception as e:
                raise _device_refusal(e, "approval") from None
            if not isinstance(answer, str):
                raise DeviceMisbehaved(
                    f"answered sign_message with a {type(answer).__name__}, not a signature"
                )
            # Checked on the device thread, so a bad one also closes the connection: a
            # device that signs something else (or with another key) is out of step.
            signer = approval.recover_bip137(text, answer)
            if signer != self.pubkey:
                raise DeviceMisbehaved(
                    "its approval signature is not by the key at "
                    f"{self.key_path} ({self.pubkey.hex()}) over the text sent"
                )
            return answer

        signature: str = await self.device.call("sign_message", sign)
        return {
            "device": self.device.device_type,
            "fingerprint": self.fingerprint,
            "path": self.key_path,
            "pubkey": self.pubkey.hex(),
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
    """Connect and compute the master fingerprint from the master public key; when
    ``fingerprint`` is given (find mode or not) the device must have it. ``StartupError``
    (one line) if any of that fails."""
    if not (device_type and device_path) and not fingerprint:
        raise StartupError(
            "--signer hwi / --approver hwi need --hwi-device-type and --hwi-device-path, "
            "or --hwi-fingerprint to find a USB device"
        )
    device = Device(
        device_type=device_type,
        device_path=device_path,
        fingerprint=fingerprint,
        network=network,
        timeout=timeout,
    )
    try:
        fp = await device.call("get_xpub m (the master fingerprint)", master_fingerprint)
    except SignerError as e:
        await device.close()
        raise StartupError(f"hardware signer: {e}") from None
    except BaseException:  # cancelled (SIGTERM during start): cut the device off too
        await asyncio.shield(device.close())
        raise
    if fingerprint is not None and fp != fingerprint.lower():
        await device.close()
        raise StartupError(
            f"hardware signer: {device.name} has master fingerprint {fp} (computed from its "
            f"master public key), not --hwi-fingerprint {oneline(fingerprint)}: another "
            "device or seed"
        )
    return device, str(fp)


async def _read_pubkey(device: Device, path: str) -> bytes:
    result: bytes = await device.call(f"get_pubkey_at_path {path}", _pubkey_at, path)
    return result


async def _pin(
    device: Device, fp: str, path: str, pin: dict[str, Any] | None, role: str
) -> tuple[bytes, str]:
    """Read the key at ``path``, check it against the pin (``pin``: ``network_dir`` and
    ``expected``, from the configuration; None: not pinned, as in unit tests of this module)
    and from now on require it at every reconnect."""
    from invreq.signers.pins import pin_key

    key = await _read_pubkey(device, path)
    how = "not pinned"
    if pin is not None:
        how = pin_key(pin["network_dir"], path, key, pin.get("expected"), role=role)
    device.pins[path] = key
    return key, how


async def open_hwi_signer(
    *, key_path: str | None, pin: dict[str, Any] | None = None, **device_args: Any
) -> HwiSigner:
    """``device_args``: those of :func:`open_device`; ``pin``: see :func:`_pin`."""
    device, fp = await open_device(**device_args)
    path = key_path or DEFAULT_KEY_PATH
    try:
        payer_id, how = await _pin(device, fp, path, pin, "hardware signer")
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
            except TransportError:
                raise
            except Exception as e:
                return describe_device_error(e)[0]
            return None

        code = await device.call("the sign_bolt12 probe", try_probe)
    except SignerError as e:
        await device.close()
        raise StartupError(f"hardware signer: {e}") from None
    except BaseException:
        await asyncio.shield(device.close())
        raise
    if code == UNKNOWN_METHOD:
        await device.close()
        raise StartupError(
            f"hardware signer: {device.name} (fingerprint {fp}) does not support the "
            "sign_bolt12 extension (it answered 'unknown method', as stock firmware does), so "
            "it cannot hold the payer key. Use --signer software with --approver hwi to have "
            "this device approve each request instead."
        )
    log.info(
        "hardware signer %s fingerprint %s key %s %s (%s)",
        oneline(device.name),
        fp,
        path,
        payer_id.hex(),
        how,
    )
    return HwiSigner(device, path, payer_id, fp)


async def open_hwi_approver(
    *, key_path: str | None, pin: dict[str, Any] | None = None, **device_args: Any
) -> HwiApprover:
    """``device_args``: those of :func:`open_device`; ``pin``: see :func:`_pin`. The
    approval key is read now: every approval is checked against it."""
    device, fp = await open_device(**device_args)
    path = key_path or DEFAULT_KEY_PATH
    try:
        pubkey, how = await _pin(device, fp, path, pin, "hardware approver")
    except SignerError as e:
        await device.close()
        raise StartupError(f"hardware approver: {e}") from None
    except BaseException:
        await asyncio.shield(device.close())
        raise
    log.info(
        "hardware approver %s fingerprint %s key %s %s (%s)",
        oneline(device.name),
        fp,
        path,
        pubkey.hex(),
        how,
    )
    return HwiApprover(device, path, fp, pubkey)
