"""The device proper: request handlers, what it shows, and its signing policy.

It answers exactly what hwilib's Jade client asks of a simulator (``get_version_info``, then
``get_xpub`` and ``sign_message``), what it asks of an unlocked real unit (``add_entropy``,
``auth_user``), ``ping``, and the ``sign_bolt12`` extension unless it plays stock firmware.
Anything else gets -32601 as stock firmware gives it, so a host learns early that a call is
not there rather than from a hang.

Handlers never let an exception escape as a closed connection: hwilib's TCP reader spins
on a socket closed mid-reply, so every failure becomes an error reply.
"""

from __future__ import annotations

import base64
import sys
import time
import traceback
from collections.abc import Callable
from typing import TextIO

from coincurve import PrivateKey

from invreq import bolt12
from invreq.approval import bitcoin_message_digest
from invreq.errors import DecodeError
from invreq.refdevice.bip32 import ExtendedPrivateKey, InvalidKeyError, format_path
from invreq.refdevice.jade_rpc import (
    BAD_PARAMETERS,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    NO_ID,
    UNKNOWN_METHOD,
    Reply,
    RpcFailure,
    error_reply,
    result_reply,
)
from invreq.refdevice.policy import Policy
from invreq.refdevice.summary import InvoiceRequestSummary, printable

__all__ = ["PROBE_PAIR", "SIGNED_PAIR", "Device", "bitcoin_message_digest"]

#: The only (messagename, fieldname) the device signs: anything else could be a signature
#: over another kind of BOLT 12 message made with the payer key.
SIGNED_PAIR = ("invoice_request", "signature")

#: What a host sends to learn whether sign_bolt12 exists: answered -32602 (bad parameters)
#: rather than -32601 (unknown method), and logged as a probe, not as a refusal.
PROBE_PAIR = ("probe", "probe")


class _ProbeAnswer(RpcFailure):
    pass


# Jade network names -> whether extended keys carry testnet version bytes (tpub).
_TESTNET = {"mainnet": False, "testnet": True, "localtest": True}

# Enough of stock get_version_info for hwilib: a version new enough for native PSBT (it
# checks >= 0.1.32), READY so the simulator path accepts it, every network allowed.
_VERSION_INFO: dict[str, object] = {
    "JADE_VERSION": "1.0.0",
    "JADE_CONFIG": "NORADIO",
    "BOARD_TYPE": "INVREQ_REFDEVICE",
    "JADE_STATE": "READY",
    "JADE_NETWORKS": "ALL",
    "JADE_HAS_PIN": True,
}

# Deep enough for any wallet layout; bounds the work one request can ask for.
_MAX_PATH_LEN = 32

Params = dict[str, object]


def _params(params: object) -> Params:
    if params is None:
        return {}
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise RpcFailure(BAD_PARAMETERS, "params must be a map with text keys")
    return params


def _path(p: Params) -> list[int]:
    path = p.get("path")
    if (
        not isinstance(path, list)
        or len(path) > _MAX_PATH_LEN
        or not all(type(i) is int and 0 <= i <= 0xFFFF_FFFF for i in path)
    ):
        raise RpcFailure(BAD_PARAMETERS, f"path must be a list of at most {_MAX_PATH_LEN} uint32")
    return path


class Device:
    def __init__(
        self,
        master: ExtendedPrivateKey,
        *,
        policy: Policy | None = None,
        stock: bool = False,
        delay: float = 0.0,
        console: TextIO | None = None,
        answers: TextIO | None = None,
    ) -> None:
        self._master = master
        self.policy = policy or Policy("auto")
        self.stock = stock
        self.delay = delay
        # Resolved late so a test replacing sys.stderr/sys.stdin still sees the console.
        self._console = console
        self._answers = answers
        self._handlers: dict[str, Callable[[Params], object]] = {
            "get_version_info": lambda p: dict(_VERSION_INFO),
            "ping": lambda p: 0,  # 0: idle, as firmware answers between requests
            "add_entropy": self._add_entropy,
            "auth_user": self._auth_user,
            "get_xpub": self._get_xpub,
            "sign_message": self._sign_message,
        }
        if not stock:
            self._handlers["sign_bolt12"] = self._sign_bolt12

    @property
    def fingerprint(self) -> bytes:
        return self._master.fingerprint

    @property
    def console(self) -> TextIO:
        return self._console or sys.stderr

    @property
    def answers(self) -> TextIO:
        return self._answers or sys.stdin

    def say(self, line: str) -> None:
        self.console.write(f"refdevice: {line}\n")
        self.console.flush()

    def handle(self, request: object) -> Reply:
        """One decoded CBOR message in, one reply map out; never raises."""
        if not isinstance(request, dict):
            return error_reply(NO_ID, INVALID_REQUEST, "a request is a CBOR map")
        request_id = request.get("id")
        if not isinstance(request_id, str) or not request_id:
            return error_reply(NO_ID, INVALID_REQUEST, "request has no text id")
        method = request.get("method")
        if not isinstance(method, str) or not method:
            return error_reply(request_id, INVALID_REQUEST, "request has no text method")
        handler = self._handlers.get(method)
        if handler is None:
            return error_reply(request_id, UNKNOWN_METHOD, f"Unknown method: {method}")
        try:
            return result_reply(request_id, handler(_params(request.get("params"))))
        except _ProbeAnswer as e:
            self.say(f"{method}: probe (a host checking that the call exists): nothing signed")
            return error_reply(request_id, e.code, e.message)
        except RpcFailure as e:
            self.say(f"{method}: refused: {e.message}")
            return error_reply(request_id, e.code, e.message)
        except Exception as e:  # a bug here must still answer, not hang the host
            traceback.print_exc(file=self.console)
            return error_reply(request_id, INTERNAL_ERROR, f"internal error: {e}")

    def _key(self, path: list[int]) -> ExtendedPrivateKey:
        try:
            return self._master.derive(path)
        except InvalidKeyError as e:
            raise RpcFailure(BAD_PARAMETERS, str(e)) from None

    def _slow(self) -> None:
        if self.delay > 0:
            time.sleep(self.delay)

    def _add_entropy(self, p: Params) -> bool:
        if not isinstance(p.get("entropy"), bytes):
            raise RpcFailure(BAD_PARAMETERS, "entropy must be bytes")
        return True  # the device signs deterministically: nothing to mix it into

    def _auth_user(self, p: Params) -> bool:
        if p.get("network") not in _TESTNET:
            raise RpcFailure(BAD_PARAMETERS, f"unknown network {p.get('network')!r}")
        return True  # always unlocked: no PIN, so no pinserver round trip

    def _get_xpub(self, p: Params) -> str:
        network = p.get("network")
        if not isinstance(network, str) or network not in _TESTNET:
            raise RpcFailure(BAD_PARAMETERS, f"unknown network {network!r}")
        return self._key(_path(p)).xpub(testnet=_TESTNET[network])

    def _sign_message(self, p: Params) -> str:
        self._slow()
        path = _path(p)
        message = p.get("message")
        if not isinstance(message, str):
            raise RpcFailure(BAD_PARAMETERS, "message must be text")
        if "ae_host_commitment" in p:
            raise RpcFailure(BAD_PARAMETERS, "anti-exfil signatures are not supported")
        key = self._key(path)
        self.say(f"sign_message with {format_path(path)}:")
        for line in message.split("\n"):
            self.console.write(f"  | {printable(line)}\n")
        self.policy.approve(
            amount_msat=None, has_amount=False, console=self.console, answers=self.answers
        )
        digest = bitcoin_message_digest(message.encode("utf-8"))
        sig = PrivateKey(key.secret).sign_recoverable(digest, hasher=None)  # r || s || recid
        # BIP-137 header for a compressed-key P2PKH signer: 27 + 4 + recid, then r || s.
        return base64.b64encode(bytes([31 + sig[64]]) + sig[:64]).decode("ascii")

    def _sign_bolt12(self, p: Params) -> dict[str, bytes]:
        self._slow()
        path = _path(p)
        pair = (p.get("messagename"), p.get("fieldname"))
        if pair == PROBE_PAIR:
            raise _ProbeAnswer(BAD_PARAMETERS, "probe: sign_bolt12 is supported; nothing signed")
        if pair != SIGNED_PAIR:
            raise RpcFailure(
                BAD_PARAMETERS,
                f"only invoice_request/signature is signed, not {pair[0]!r}/{pair[1]!r}",
            )
        stream = p.get("tlv_stream")
        if not isinstance(stream, bytes):
            raise RpcFailure(BAD_PARAMETERS, "tlv_stream must be bytes")
        try:
            records = bolt12.parse_tlv_stream(stream)
        except DecodeError as e:
            raise RpcFailure(BAD_PARAMETERS, f"tlv_stream: {e}") from None
        signature_types = [t for t, _ in records if 240 <= t <= 1000]
        if signature_types:
            raise RpcFailure(
                BAD_PARAMETERS,
                f"tlv_stream has signature record {signature_types[0]}: send it unsigned",
            )
        try:
            summary = InvoiceRequestSummary.from_records(records)
        except ValueError as e:
            raise RpcFailure(BAD_PARAMETERS, f"tlv_stream: {e}") from None
        key = self._key(path)
        pubkey = key.public_key
        # The signature is checked against invreq_payer_id; signing with another key would
        # give the host a request nobody accepts, or one it means to pass off as another's.
        if summary.payer_id != pubkey:
            raise RpcFailure(
                BAD_PARAMETERS, f"invreq_payer_id is not the key at {format_path(path)}"
            )
        digest = bolt12.signature_digest(*SIGNED_PAIR, bolt12.merkle_root(stream))
        self.say(f"sign_bolt12 invoice_request with {format_path(path)}:")
        for line in summary.lines():
            self.console.write(line + "\n")
        self.console.write(f"  digest:          {digest.hex()}\n")
        self.policy.approve(
            amount_msat=summary.amount_msat,
            has_amount=True,
            console=self.console,
            answers=self.answers,
        )
        # BIP-340 with an all-zero auxiliary random, as CLN signs: deterministic output.
        signature = PrivateKey(key.secret).sign_schnorr(digest, bytes(32))
        self.say("sign_bolt12: signed")
        return {"signature": signature, "pubkey": pubkey}
