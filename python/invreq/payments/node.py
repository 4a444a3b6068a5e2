"""The node that pays: the backend ``--pay-with`` names, and what it says of a payment.

``PaymentBackend`` is what the receiver (:mod:`invreq.payments.receive`) and the reconciler
(:mod:`invreq.payments.reconcile`) need of a node: pay an invoice within a time, and read
the node's own record of a payment_hash. ``ClnBackend`` is Core Lightning (``xpay``,
``listpays``); ``NoBackend`` is ``--pay-with none`` (record invoices, never pay).

A backend's failures are its own exceptions, not RPC errors: ``NodePaymentFailed`` (the
payment certainly did not happen) and ``OutcomeUnknown`` (it may have). The receiver turns
them into the RPC answers (``PaymentError``, ``PaymentPending``).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from invreq import clnrpc, onionreply
from invreq.config import ConfigError, pay_with_path
from invreq.errors import StartupError

__all__ = [
    "ClnBackend",
    "NoBackend",
    "NodePaymentFailed",
    "NodeRecord",
    "NodeUnavailable",
    "OutcomeUnknown",
    "Paid",
    "PaymentBackend",
    "open_backend",
    "reply_wait",
]

log = logging.getLogger("invreq.payments")

#: Beyond the timeout (which the node also gets as xpay's retry_for), how long we wait
#: for xpay's own answer, at most: the node finishes its last attempt, then replies.
REPLY_GRACE = 5.0
#: Seconds a question to the node (getinfo, its record of a payment) may take; past it the
#: node is unavailable: at start-up invreq stops, a pending payment is asked about later.
STATUS_TIMEOUT = 30.0


def _certainly_failed(code: int) -> bool:
    """Whether xpay's error ``code`` says the payment certainly did not happen (so its
    claim may be released and the payee told). Only two kinds do: JSON-RPC's own codes
    (-32768..-32000: the command was refused before it ran) and the pay family's 2xx
    failures, which xpay returns once every part has failed. Not 200 (PAY_IN_PROGRESS) nor
    201 (PAY_RHASH_ALREADY_USED: paid before), nor lightningd's own negative codes: -4
    (PLUGIN_TERMINATED, xpay died with its HTLCs out), -3 (PLUGIN_ERROR), -1 (LIGHTNINGD)
    say nothing of the HTLCs already sent, and releasing the claim on them could pay the
    request twice. Those stay pending; the node's record settles them."""
    return -32768 <= code <= -32000 or 202 <= code <= 299


class NodePaymentFailed(Exception):
    """The node tried and the payment certainly did not happen (no route, refused ...).

    The node's own failure; the receiver answers the caller with ``errors.PaymentError``."""


class OutcomeUnknown(Exception):
    """The payment may or may not have happened (no answer in time, connection lost)."""


class NodeUnavailable(Exception):
    """The node could not say (unreachable, no answer in time, an error or an unreadable
    reply): whatever was asked is asked again later."""


@dataclass(frozen=True)
class Paid:
    preimage: str


def proves(preimage: str | None, payment_hash: str) -> bool:
    """Whether ``preimage`` (hex) proves the payment of ``payment_hash``: its sha256 is the
    hash. A node's word that a payment completed counts only with this proof; a preimage
    that does not match (a bug, a lying or confused node) leaves the payment pending, to be
    investigated (resolvepayment), never paid."""
    if preimage is None:
        return False
    try:
        return hashlib.sha256(bytes.fromhex(preimage)).hexdigest() == payment_hash
    except ValueError:
        return False


@dataclass(frozen=True)
class NodeRecord:
    """What the node's own record says of a payment_hash: ``paid`` (with the preimage),
    ``failed``, ``pending``, or ``none`` (it has no record of it)."""

    status: str
    preimage: str | None = None


class PaymentBackend(Protocol):
    name: str
    #: The node's id (getinfo), recorded with each payment it attempts; None: no node.
    node_id: str | None

    async def pay(self, invoice: str, timeout: float, maxfee_msat: int | None = None) -> Paid:
        """Pay ``invoice``, giving up after about ``timeout`` seconds. Raise
        ``NodePaymentFailed`` if it certainly did not happen, ``OutcomeUnknown`` if it may
        have."""

    async def status(self, payment_hash: str) -> NodeRecord:
        """The node's own record of the payment of ``payment_hash``; raises
        ``NodeUnavailable`` if the node cannot say."""

    async def reply_error(self, reply_path: dict[str, Any], text: str) -> None:
        """Send ``text`` as an invoice_error over a payee's ``reply_blindedpath`` (the
        shape lightningd's hook gives); raises if it cannot be sent."""

    async def close(self) -> None: ...


class NoBackend:
    """``--pay-with none``: validate and record invoices, never pay, settle nothing."""

    name = "none"
    node_id: str | None = None

    async def pay(self, invoice: str, timeout: float, maxfee_msat: int | None = None) -> Paid:
        raise AssertionError("NoBackend never pays")

    async def status(self, payment_hash: str) -> NodeRecord:
        raise AssertionError("NoBackend has no record: it never settles a payment")

    async def reply_error(self, reply_path: dict[str, Any], text: str) -> None:
        raise AssertionError("NoBackend never pays, so never fails a payment")

    async def close(self) -> None:
        return None


def reply_wait(timeout: float) -> float:
    """How long we wait for xpay's answer when the node was given ``timeout``."""
    return timeout + min(REPLY_GRACE, timeout)


class ClnBackend:
    """``--pay-with cln:RPC_PATH``: pay through a Core Lightning node's JSON-RPC (``xpay``).

    Each call is one :mod:`invreq.clnrpc` call (CLN's framing, a connection per call) with
    its own deadline."""

    name = "cln"

    def __init__(self, rpc_path: Path, node_id: str | None = None) -> None:
        self.rpc_path = rpc_path
        self.node_id = node_id
        self._ids = itertools.count(1)

    async def _call(self, method: str, params: dict[str, Any], timeout: float) -> Any:
        return await clnrpc.acall(
            self.rpc_path,
            method,
            params,
            timeout=timeout,
            request_id=f"invreq:{method}#{next(self._ids)}",
        )

    async def getinfo(self) -> dict[str, Any]:
        """The node's getinfo; raises :class:`NodeUnavailable` if it cannot say."""
        try:
            result: dict[str, Any] = await self._call("getinfo", {}, STATUS_TIMEOUT)
        except (OSError, ValueError, clnrpc.ClnRpcError) as e:
            raise NodeUnavailable(str(e)) from None
        return result

    async def pay(self, invoice: str, timeout: float, maxfee_msat: int | None = None) -> Paid:
        # retry_for: the node stops starting new attempts when we stop waiting for it.
        params: dict[str, Any] = {"invstring": invoice, "retry_for": max(1, math.ceil(timeout))}
        if maxfee_msat is not None:
            # The fee limit a person approved (--payout-approver hwi) is the one applied.
            params["maxfee"] = maxfee_msat
        try:
            result = await self._call("xpay", params, reply_wait(timeout))
        except clnrpc.NotSent as e:
            raise NodePaymentFailed(f"xpay not sent: cannot reach the node ({e})") from None
        except TimeoutError:
            raise OutcomeUnknown(f"xpay did not answer within {reply_wait(timeout):g} s") from None
        except clnrpc.ClnRpcError as e:
            if not _certainly_failed(e.code):
                raise OutcomeUnknown(f"xpay: {e.message} (code {e.code})") from None
            raise NodePaymentFailed(f"xpay: {e.message} (code {e.code})") from None
        except (OSError, ValueError) as e:
            # ConnectionLost, BadReply: the request left; what the node did is unknown.
            raise OutcomeUnknown(f"connection to the node lost during xpay: {e}") from None
        preimage = result.get("payment_preimage") if isinstance(result, dict) else None
        if not isinstance(preimage, str):
            # xpay succeeded by its own account but gave no proof: not "failed".
            raise OutcomeUnknown("xpay answered without a payment_preimage")
        return Paid(preimage)

    async def status(self, payment_hash: str) -> NodeRecord:
        """From ``listpays payment_hash``: one entry per attempt (CLN groups the parts of
        each); any ``complete`` one means paid, any ``pending`` one pending, all ``failed``
        failed, none: the node never started a payment of this hash."""
        try:
            result = await self._call("listpays", {"payment_hash": payment_hash}, STATUS_TIMEOUT)
        except (OSError, ValueError, clnrpc.ClnRpcError) as e:
            raise NodeUnavailable(str(e)) from None
        pays = [p for p in result.get("pays", []) if p.get("payment_hash") in (None, payment_hash)]
        for p in pays:
            if p.get("status") == "complete":
                preimage = p.get("preimage")
                return NodeRecord("paid", preimage if isinstance(preimage, str) else None)
        if any(p.get("status") == "pending" for p in pays):
            return NodeRecord("pending")
        if pays:
            return NodeRecord("failed")
        return NodeRecord("none")

    async def reply_error(self, reply_path: dict[str, Any], text: str) -> None:
        """The invoice_error goes through :mod:`invreq.onionreply` (route search in the
        node's gossip, then injectonionmessage), which asks the node with blocking calls: it
        runs in a thread, with :mod:`invreq.clnrpc`'s sync client, each call bounded."""
        if self.node_id is None:
            raise OSError("the node's id is not known (getinfo)")

        def call(method: str, params: dict[str, Any]) -> Any:
            return clnrpc.call(
                self.rpc_path,
                method,
                params,
                timeout=STATUS_TIMEOUT,
                request_id=f"invreq:{method}#{next(self._ids)}",
            )

        await asyncio.to_thread(onionreply.send_invoice_error, call, self.node_id, reply_path, text)

    async def close(self) -> None:
        return None


async def open_backend(spec: str) -> PaymentBackend:
    """The backend ``--pay-with`` names (its grammar: :func:`invreq.config.pay_with_path`)."""
    try:
        path = pay_with_path(spec)
    except ConfigError as e:
        raise StartupError(str(e)) from None
    if path is None:
        return NoBackend()
    backend = ClnBackend(path)
    try:
        info = await backend.getinfo()
    except NodeUnavailable as e:
        raise StartupError(f"--pay-with: cannot reach Core Lightning at {path}: {e}") from None
    node_id = info.get("id") if isinstance(info, dict) else None
    if not isinstance(node_id, str) or not node_id:
        raise StartupError(f"--pay-with: the node at {path} gave no id in getinfo")
    backend.node_id = node_id
    log.info("paying with Core Lightning node %s (%s)", node_id, path)
    return backend
