"""The other half of an invoice_request: receiving the invoice that answers it, and paying.

Whoever reads our ``lnr`` string answers with a BOLT 12 invoice (``lni``). ``receiveinvoice``
accepts it only when every check passes (REFERENCE §8), each refusal with its own code:

- the invoice decodes, its signature verifies against invoice_node_id, its fields are
  complete (the native core: ``bolt12.decode_invoice``);
- the invreq_id recomputed from its records names a request we issued (that also proves
  the invoice copies our request exactly) and the request is active;
- ``invoice_amount == invreq_amount`` (BOLT 12's rule; CLN pays smaller amounts, we do not);
- neither the invoice (created_at + relative_expiry, default 7200 s) nor the request
  (``absolute_expiry``; CLN never checks it) has expired.

Then the request is **claimed** in the store (one conditional insert: of two invoices for a
single-use request exactly one proceeds), paid through the backend chosen at start-up, and
the outcome is recorded: ``paid`` marks the request used (single-use: inactive), ``failed``
releases the claim. Every attempt is kept and listed by ``listpayments``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from invreq import bolt12, paging
from invreq.errors import (
    CODE_INVOICE_AMOUNT,
    CODE_INVOICE_EXPIRED,
    CODE_INVOICE_NOT_ACTIVE,
    CODE_INVOICE_UNKNOWN_REQUEST,
    CODE_PAYMENT_FAILED,
    CODE_PAYMENT_REFUSED,
    CODE_REQUEST_EXPIRED,
    Bolt12Error,
    InvalidParams,
    NotActive,
    RpcError,
    StartupError,
    StoreError,
    UnknownInvoiceRequest,
)
from invreq.store.base import Payment, Store

__all__ = [
    "DEFAULT_RELATIVE_EXPIRY",
    "ClnBackend",
    "NoBackend",
    "PaymentBackend",
    "PaymentFailed",
    "Receiver",
    "open_backend",
]

log = logging.getLogger("invreq.payments")

#: BOLT 12: an invoice without invoice_relative_expiry expires 7200 s after creation.
DEFAULT_RELATIVE_EXPIRY = 7200
#: Seconds after which a pending payment found at start is settled from the backend.
RECONCILE_AFTER = 120


class PaymentFailed(Exception):
    """The backend tried and the payment did not happen (no route, refused ...)."""


@dataclass(frozen=True)
class Paid:
    preimage: str


class PaymentBackend(Protocol):
    name: str

    async def pay(self, invoice: str) -> Paid:
        """Pay ``invoice``; raise ``PaymentFailed`` if it certainly did not happen."""

    async def status(self, invoice: str) -> tuple[str, str | None]:
        """After a restart: (``paid``, preimage), (``failed``, None) or (``pending``, None)
        (the backend does not know yet)."""

    async def close(self) -> None: ...


class NoBackend:
    """``--pay-with none``: validate and record invoices, never pay."""

    name = "none"

    async def pay(self, invoice: str) -> Paid:
        raise AssertionError("NoBackend never pays")

    async def status(self, invoice: str) -> tuple[str, str | None]:
        return "failed", None  # nothing was ever sent

    async def close(self) -> None:
        return None


class ClnBackend:
    """``--pay-with cln:RPC_PATH``: pay through a Core Lightning node's JSON-RPC (``xpay``).

    CLN's framing: JSON requests on its unix socket, each reply ends with a blank line. A
    connection per call, as pyln-client does."""

    name = "cln"

    def __init__(self, rpc_path: Path) -> None:
        self.rpc_path = rpc_path
        self._ids = itertools.count(1)

    async def _call(self, method: str, params: dict[str, Any]) -> Any:
        reader, writer = await asyncio.open_unix_connection(str(self.rpc_path), limit=1 << 24)
        try:
            req = {
                "jsonrpc": "2.0",
                "id": f"invreq:{method}#{next(self._ids)}",
                "method": method,
                "params": params,
            }
            writer.write(json.dumps(req).encode())
            await writer.drain()
            raw = await reader.readuntil(b"\n\n")
        finally:
            writer.close()
        reply = json.loads(raw)
        if "error" in reply:
            raise RpcError(str(reply["error"].get("message")), code=reply["error"].get("code"))
        return reply["result"]

    async def pay(self, invoice: str) -> Paid:
        try:
            result = await self._call("xpay", {"invstring": invoice})
        except RpcError as e:
            raise PaymentFailed(f"xpay: {e.message} (code {e.code})") from None
        preimage = result.get("payment_preimage")
        if not isinstance(preimage, str):
            raise PaymentFailed("xpay answered without a payment_preimage")
        return Paid(preimage)

    async def status(self, invoice: str) -> tuple[str, str | None]:
        result = await self._call("listpays", {"bolt11": invoice})
        pays = result.get("pays", [])
        for p in pays:
            if p.get("status") == "complete":
                return "paid", p.get("preimage")
        if any(p.get("status") == "pending" for p in pays):
            return "pending", None
        return "failed", None

    async def close(self) -> None:
        return None


async def open_backend(spec: str) -> PaymentBackend:
    if spec == "none":
        return NoBackend()
    if spec.startswith("cln:"):
        path = Path(spec.removeprefix("cln:")).expanduser()
        backend = ClnBackend(path)
        try:
            await backend._call("getinfo", {})
        except (OSError, ValueError, RpcError) as e:
            raise StartupError(f"--pay-with: cannot reach Core Lightning at {path}: {e}") from None
        return backend
    raise StartupError(f"--pay-with: {spec!r} is not 'none' or 'cln:RPC_PATH'")


def _refuse(code: int, message: str) -> RpcError:
    return RpcError(message, code=code)


class Receiver:
    def __init__(
        self,
        store: Store,
        backend: PaymentBackend,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.backend = backend
        self.clock = clock

    async def receiveinvoice(self, invoice: str) -> dict[str, Any]:
        try:
            inv = bolt12.decode_invoice(invoice)
        except Bolt12Error as e:
            raise InvalidParams(f"invoice: {e}") from None
        invreq_id = inv.invreq_id.hex()
        record = await self.store.get(invreq_id)
        if record is None:
            raise _refuse(
                CODE_INVOICE_UNKNOWN_REQUEST,
                f"invoice answers no invoice_request of ours (invreq_id {invreq_id})",
            )
        if not record.active:
            raise _refuse(CODE_INVOICE_NOT_ACTIVE, "invoice_request is not active")
        if inv.amount_msat != inv.invreq_amount:
            raise _refuse(
                CODE_INVOICE_AMOUNT,
                f"invoice_amount {inv.amount_msat} msat is not invreq_amount "
                f"{inv.invreq_amount} msat",
            )
        now = int(self.clock())
        if inv.expires_at <= now:
            raise _refuse(CODE_INVOICE_EXPIRED, f"invoice expired at {inv.expires_at} (now {now})")
        if inv.offer_absolute_expiry is not None and inv.offer_absolute_expiry <= now:
            raise _refuse(
                CODE_REQUEST_EXPIRED,
                f"invoice_request expired at {inv.offer_absolute_expiry} (now {now})",
            )
        # Without a backend the attempt is recorded as refused at once, and claims nothing.
        refused = isinstance(self.backend, NoBackend)
        attempt = Payment(
            payment_id=0,
            invreq_id=invreq_id,
            invoice=invoice,
            amount_msat=inv.amount_msat,
            payment_hash=inv.payment_hash.hex(),
            status="refused" if refused else "pending",
            created_at=now,
            resolved_at=now if refused else None,
            error="no payment backend (--pay-with none)" if refused else None,
        )
        try:
            claimed = await self.store.payment_claim(attempt)
        except UnknownInvoiceRequest:
            raise _refuse(
                CODE_INVOICE_UNKNOWN_REQUEST, "invoice answers no invoice_request of ours"
            ) from None
        except NotActive:
            raise _refuse(CODE_INVOICE_NOT_ACTIVE, "invoice_request is not active") from None
        if claimed.status == "refused":
            raise RpcError(
                f"invoice is valid but not paid: invreq serve runs with --pay-with none "
                f"(recorded as payment {claimed.payment_id})",
                code=CODE_PAYMENT_REFUSED,
            )
        try:
            paid = await self.backend.pay(invoice)
        except PaymentFailed as e:
            await self.store.payment_finish(
                claimed.payment_id, "failed", int(self.clock()), error=str(e)
            )
            raise RpcError(f"payment failed: {e}", code=CODE_PAYMENT_FAILED) from None
        except BaseException:
            # Unknown outcome (connection lost, cancelled): the claim stays pending and is
            # settled by reconcile() at the next start, from the backend's own record.
            log.exception("payment %d: outcome unknown, left pending", claimed.payment_id)
            raise
        done = await self.store.payment_finish(
            claimed.payment_id, "paid", int(self.clock()), preimage=paid.preimage
        )
        return done.to_json()

    async def listpayments(
        self,
        invreq_id: str | None = None,
        status: str | None = None,
        index: str | None = None,
        start: int | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]:
        if (start is not None or limit is not None) and index is None:
            raise InvalidParams("index: required when start or limit is given")
        found = await self.store.payments(invreq_id, status)
        if start is not None:
            found = [p for p in found if p.payment_id >= start]
        # One page at most, even without `limit` (see invreq.paging).
        found = found[: paging.store_limit(limit)]
        return {"payments": paging.page(p.to_json() for p in found)}

    async def reconcile(self) -> None:
        """At start: settle payments left pending by a crash, from the backend's record.

        Only those older than ``RECONCILE_AFTER``: a younger one may be in flight in another
        instance sharing the database, and its outcome is that instance's to record."""
        now = int(self.clock())
        for p in await self.store.payments(status="pending"):
            if p.created_at > now - RECONCILE_AFTER:
                continue
            try:
                outcome, preimage = await self.backend.status(p.invoice)
            except Exception as e:
                log.warning(
                    "payment %d still pending: backend status unavailable: %s", p.payment_id, e
                )
                continue
            if outcome == "pending":
                log.warning("payment %d still pending at the backend", p.payment_id)
                continue
            try:
                await self.store.payment_finish(
                    p.payment_id,
                    outcome,
                    int(self.clock()),
                    preimage=preimage,
                    error=None
                    if outcome == "paid"
                    else "settled at restart: the backend has no completed payment",
                )
            except StoreError:
                continue  # another worker or instance settled it first
            log.info("payment %d settled at restart: %s", p.payment_id, outcome)
