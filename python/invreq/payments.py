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

Invoices also arrive from the CLN plugin (``receiveinvoice invoice pathsecret``): the
invoice came over the blinded path of a request (:mod:`invreq.blindpaths`), ``pathsecret``
must be that request's path_id (else 2109), and the reply leaves as soon as the claim is
taken, the payment continuing in the background (:meth:`Receiver.receiveinvoice`).
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
from typing import TYPE_CHECKING, Any, Protocol

from invreq import bolt12
from invreq.errors import (
    CODE_INVOICE_AMOUNT,
    CODE_INVOICE_EXPIRED,
    CODE_INVOICE_NOT_ACTIVE,
    CODE_INVOICE_UNKNOWN_REQUEST,
    CODE_INVOICE_WRONG_PATH,
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

if TYPE_CHECKING:
    from invreq.blindpaths import PathMaker

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
        #: The node's id (``getinfo`` at start): where our requests' blinded paths lead.
        self.node_id: bytes = b""

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
            info = await backend._call("getinfo", {})
            backend.node_id = bytes.fromhex(info["id"])
        except (OSError, ValueError, RpcError) as e:
            raise StartupError(f"--pay-with: cannot reach Core Lightning at {path}: {e}") from None
        except (KeyError, TypeError) as e:
            raise StartupError(
                f"--pay-with: Core Lightning at {path} answered getinfo without a node id ({e})"
            ) from None
        if len(backend.node_id) != 33:
            raise StartupError(f"--pay-with: getinfo at {path} gave a node id that is not 33 bytes")
        return backend
    raise StartupError(f"--pay-with: {spec!r} is not 'none' or 'cln:RPC_PATH'")


def _refuse(code: int, message: str) -> RpcError:
    return RpcError(message, code=code)


class Receiver:
    """``receiveinvoice``: check an invoice, claim its request, pay.

    Two ways in share every check and the one claim, so a single-use request is paid once
    whichever way (or both at once) its invoices arrive: by hand (``receiveinvoice
    invoice``: the reply waits for the payment's outcome) and from the CLN plugin
    (``receiveinvoice invoice pathsecret``: the invoice came over our blinded path; the
    reply leaves once the claim is taken, and the payment runs here in the background,
    because the payee's ``sendinvoice`` waits only its timeout, 90 s by default)."""

    def __init__(
        self,
        store: Store,
        backend: PaymentBackend,
        clock: Callable[[], float] = time.time,
        paths: PathMaker | None = None,
    ) -> None:
        self.store = store
        self.backend = backend
        self.clock = clock
        self.paths = paths
        self._background: set[asyncio.Task[None]] = set()

    async def receiveinvoice(self, invoice: str, pathsecret: str | None = None) -> dict[str, Any]:
        claimed = await self._check_and_claim(invoice, pathsecret)
        if pathsecret is not None:
            task = asyncio.create_task(self._pay_in_background(claimed))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return claimed.to_json()
        return (await self._pay(claimed)).to_json()

    async def _check_and_claim(self, invoice: str, pathsecret: str | None) -> Payment:
        try:
            inv = bolt12.decode_invoice(invoice)
        except Bolt12Error as e:
            if pathsecret is not None and not await self._on_our_path(invoice, pathsecret):
                # From the plugin, and not provably ours: 2101 lets it pass the message on
                # to CLN's own offers plugin, which may be waiting for it.
                raise _refuse(
                    CODE_INVOICE_UNKNOWN_REQUEST, f"invoice answers no invoice_request of ours: {e}"
                ) from None
            raise InvalidParams(f"invoice: {e}") from None
        invreq_id = inv.invreq_id.hex()
        record = await self.store.get(invreq_id)
        if record is None:
            raise _refuse(
                CODE_INVOICE_UNKNOWN_REQUEST,
                f"invoice answers no invoice_request of ours (invreq_id {invreq_id})",
            )
        if pathsecret is not None and not self._owns(inv.invreq_metadata, pathsecret):
            # Ours, but it did not come over the path we gave this request: refused, so a
            # path (or a guessed one) cannot collect another request's amount.
            raise _refuse(
                CODE_INVOICE_WRONG_PATH,
                "invoice did not arrive on the blinded path of its invoice_request",
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
        return claimed

    def _owns(self, metadata: bytes | None, pathsecret: str) -> bool:
        return self.paths is not None and self.paths.owns(metadata, bytes.fromhex(pathsecret))

    async def _on_our_path(self, invoice: str, pathsecret: str) -> bool:
        """Whether an invoice that fails the reader rules (a bad signature ...) still came
        over one of our paths: its records, read without checks, name a request of ours
        whose path_id is ``pathsecret``."""
        try:
            loose = bolt12.decode_invoice(invoice, verify=False)
        except Bolt12Error:
            return False
        return (
            self._owns(loose.invreq_metadata, pathsecret)
            and await self.store.get(loose.invreq_id.hex()) is not None
        )

    async def _pay(self, claimed: Payment) -> Payment:
        try:
            paid = await self.backend.pay(claimed.invoice)
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
        return await self.store.payment_finish(
            claimed.payment_id, "paid", int(self.clock()), preimage=paid.preimage
        )

    async def _pay_in_background(self, claimed: Payment) -> None:
        try:
            done = await self._pay(claimed)
        except RpcError as e:
            log.warning("payment %d (invoice from the plugin): %s", claimed.payment_id, e.message)
        except asyncio.CancelledError:
            pass  # shutdown: left pending, settled by reconcile() at the next start
        except Exception:
            log.exception("payment %d (invoice from the plugin) failed", claimed.payment_id)
        else:
            log.info(
                "payment %d paid %d msat for invreq %s (invoice from the plugin)",
                done.payment_id,
                done.amount_msat,
                done.invreq_id,
            )

    async def close(self, grace: float = 10.0) -> None:
        """At shutdown: let payments running in the background finish for ``grace``
        seconds, then cancel them (they stay pending and are settled at the next start)."""
        if not self._background:
            return
        _done, pending = await asyncio.wait(self._background, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def listpayments(
        self, invreq_id: str | None = None, status: str | None = None
    ) -> dict[str, Any]:
        return {"payments": [p.to_json() for p in await self.store.payments(invreq_id, status)]}

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
