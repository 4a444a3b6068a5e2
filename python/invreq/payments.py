"""The other half of an invoice_request: receiving the invoice that answers it, and paying.

Whoever reads our ``lnr`` string answers with a BOLT 12 invoice (``lni``). ``receiveinvoice``
accepts it only when every check passes (REFERENCE §8), each refusal with its own code:

- the invoice decodes, its signature verifies against invoice_node_id, its fields are
  complete (the native core: ``bolt12.decode_invoice``);
- the invreq_id recomputed from its records names a request we issued (that also proves
  the invoice copies our request exactly) and the request is active;
- ``invoice_amount == invreq_amount`` (BOLT 12's rule, checked by the core's reader, so a
  different amount is an invalid ``invoice``; CLN pays smaller amounts, we do not);
- neither the invoice (created_at + relative_expiry, default 7200 s) nor the request
  (``absolute_expiry``; CLN never checks it) has expired.

Then the request is **claimed** in the store (one conditional insert: of two invoices for a
single-use request exactly one proceeds), paid through the backend chosen at start-up, and
the outcome is recorded: ``paid`` marks the request used (single-use: inactive), ``failed``
releases the claim. Every attempt is kept and listed by ``listpayments``.

Payment state that cannot lie:

- **One payment per invoice, ever.** The store keeps one row per payment_hash (a unique
  index); a replayed invoice gets its payment's answer, never a second ``xpay``.
- **Unknown stays pending.** ``xpay`` is bounded (``--pay-timeout``, also given to the node
  as ``retry_for``); when it does not answer in time, or the connection is lost, or the
  process dies, the payment stays ``pending`` with its claim held. Only the node that
  attempted it (its ``getinfo`` id is recorded with the payment) settles it, from its own
  record (``listpays`` by payment_hash): at start and every ``--pay-reconcile-interval``
  seconds, for every pending payment except those whose ``xpay`` this process is still
  waiting for. ``complete`` settles it paid at once; ``failed``, or no record at all, only
  once the node's attempt is certainly over (see ``Receiver._settle``). An instance with no
  node, or with another node, leaves it pending and logs why; ``resolvepayment`` settles it
  by hand, with evidence.
- **Bounded attempts** per request and per minute, counted in the database
  (``PaymentLimits``), so a failing node is not asked once per submission.

Invoices also arrive from the CLN plugin (``receiveinvoice invoice pathsecret``): the
invoice came over the blinded path of a request (:mod:`invreq.blindpaths`), ``pathsecret``
must be that request's path_id (else 2114), and the reply leaves as soon as the claim is
taken, the payment continuing in the background (:meth:`Receiver.receiveinvoice`).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from invreq import bolt12, paging, views
from invreq.config import ConfigError, pay_with_path
from invreq.errors import (
    Bolt12Error,
    InvalidParams,
    InvoiceAlreadyAttempted,
    InvoiceExpired,
    InvoiceNotActive,
    InvoiceUnknownRequest,
    InvoiceWrongPath,
    NotActive,
    PaymentError,
    PaymentInFlight,
    PaymentNotPending,
    PaymentPending,
    PaymentRefused,
    RequestExpired,
    RpcError,
    StartupError,
    UnknownInvoiceRequest,
)
from invreq.rpc import CALLER
from invreq.store.base import Claim, Payment, PaymentLimits, PaymentStore, Record

if TYPE_CHECKING:
    from invreq.blindpaths import PathMaker

__all__ = [
    "DEFAULT_RELATIVE_EXPIRY",
    "ClnBackend",
    "NoBackend",
    "NodeRecord",
    "OutcomeUnknown",
    "PaymentBackend",
    "PaymentFailed",
    "Receiver",
    "open_backend",
]

log = logging.getLogger("invreq.payments")

#: BOLT 12: an invoice without invoice_relative_expiry expires 7200 s after creation.
DEFAULT_RELATIVE_EXPIRY = 7200
#: Beyond the timeout (which the node also gets as xpay's retry_for), how long we wait
#: for xpay's own answer, at most: the node finishes its last attempt, then replies.
REPLY_GRACE = 5.0
#: Seconds a question about the node's record may take (TimeoutError is an OSError: the
#: payment stays pending and is asked about again later).
STATUS_TIMEOUT = 30.0
#: CLN's PAY_IN_PROGRESS: an answer that does not tell the outcome.
_IN_PROGRESS_CODES = frozenset({200})


class PaymentFailed(Exception):
    """The backend tried and the payment certainly did not happen (no route, refused ...)."""


class OutcomeUnknown(Exception):
    """The payment may or may not have happened (no answer in time, connection lost)."""


@dataclass(frozen=True)
class Paid:
    preimage: str


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

    async def pay(self, invoice: str, timeout: float) -> Paid:
        """Pay ``invoice``, giving up after about ``timeout`` seconds. Raise
        ``PaymentFailed`` if it certainly did not happen, ``OutcomeUnknown`` if it may
        have."""

    async def status(self, payment_hash: str) -> NodeRecord:
        """The node's own record of the payment of ``payment_hash``."""

    async def close(self) -> None: ...


class NoBackend:
    """``--pay-with none``: validate and record invoices, never pay, settle nothing."""

    name = "none"
    node_id: str | None = None

    async def pay(self, invoice: str, timeout: float) -> Paid:
        raise AssertionError("NoBackend never pays")

    async def status(self, payment_hash: str) -> NodeRecord:
        raise AssertionError("NoBackend has no record: it never settles a payment")

    async def close(self) -> None:
        return None


class _NotSent(Exception):
    """The connection to the node could not be opened: the request never left."""


def reply_wait(timeout: float) -> float:
    """How long we wait for xpay's answer when the node was given ``timeout``."""
    return timeout + min(REPLY_GRACE, timeout)


class ClnBackend:
    """``--pay-with cln:RPC_PATH``: pay through a Core Lightning node's JSON-RPC (``xpay``).

    CLN's framing: JSON requests on its unix socket, each reply ends with a blank line. A
    connection per call, as pyln-client does."""

    name = "cln"

    def __init__(self, rpc_path: Path, node_id: str | None = None) -> None:
        self.rpc_path = rpc_path
        self.node_id = node_id
        self._ids = itertools.count(1)

    async def _call(self, method: str, params: dict[str, Any]) -> Any:
        try:
            reader, writer = await asyncio.open_unix_connection(str(self.rpc_path), limit=1 << 24)
        except OSError as e:
            raise _NotSent(str(e)) from None
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

    async def getinfo(self) -> dict[str, Any]:
        try:
            result: dict[str, Any] = await self._call("getinfo", {})
        except _NotSent as e:
            raise OSError(str(e)) from None
        return result

    async def pay(self, invoice: str, timeout: float) -> Paid:
        # retry_for: the node stops starting new attempts when we stop waiting for it.
        params = {"invstring": invoice, "retry_for": max(1, math.ceil(timeout))}
        try:
            result = await asyncio.wait_for(self._call("xpay", params), reply_wait(timeout))
        except _NotSent as e:
            raise PaymentFailed(f"xpay not sent: cannot reach the node ({e})") from None
        except TimeoutError:
            raise OutcomeUnknown(f"xpay did not answer within {reply_wait(timeout):g} s") from None
        except RpcError as e:
            if e.code in _IN_PROGRESS_CODES:
                raise OutcomeUnknown(f"xpay: {e.message} (code {e.code})") from None
            raise PaymentFailed(f"xpay: {e.message} (code {e.code})") from None
        except (OSError, EOFError, ValueError) as e:
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
            result = await asyncio.wait_for(
                self._call("listpays", {"payment_hash": payment_hash}), STATUS_TIMEOUT
            )
        except _NotSent as e:
            raise OSError(str(e)) from None
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
    except (OSError, EOFError, ValueError, RpcError) as e:
        raise StartupError(f"--pay-with: cannot reach Core Lightning at {path}: {e}") from None
    node_id = info.get("id") if isinstance(info, dict) else None
    if not isinstance(node_id, str) or not node_id:
        raise StartupError(f"--pay-with: the node at {path} gave no id in getinfo")
    backend.node_id = node_id
    log.info("paying with Core Lightning node %s (%s)", node_id, path)
    return backend


def _pending_error(p: Payment, why: str) -> PaymentPending:
    return PaymentPending(
        f"payment {p.payment_id} is pending: {why}; its claim is held until node "
        f"{p.node_id or '(not recorded)'} reports the outcome (listpayments shows it)",
        data=views.payment_json(p),
    )


class Receiver:
    """Receives invoices and pays them exactly once. Two ways in share every check and the
    one claim, so a single-use request is paid once whichever way (or both at once) its
    invoices arrive: by hand (``receiveinvoice invoice``: the reply waits for the payment's
    outcome) and from the CLN plugin (``receiveinvoice invoice pathsecret``: the invoice came
    over our blinded path; the reply leaves once the claim is taken and the payment runs here
    in the background, because the payee's ``sendinvoice`` waits only its timeout, 90 s by
    default). Every guarantee is in the store, so separate processes and instances keep
    them too."""

    def __init__(
        self,
        store: PaymentStore,
        backend: PaymentBackend,
        clock: Callable[[], float] = time.time,
        *,
        timeout: float,
        limits: PaymentLimits,
        paths: PathMaker | None = None,
    ) -> None:
        # timeout and limits: --pay-timeout and --pay-attempts-* (defaults in Config)
        self.store = store
        self.backend = backend
        self.clock = clock
        self.timeout = timeout
        self.limits = limits
        #: payments whose xpay this process is still waiting for: not reconciled behind
        #: its back, and not resolved by hand
        self._in_flight: set[int] = set()
        #: what was last logged about each pending payment we cannot settle (no flood)
        self._told: dict[int, str] = {}
        #: the blinded paths of our requests (CLN backend): recognises a ``pathsecret``
        self.paths = paths
        #: payments of invoices from the plugin, running after their reply left
        self._background: set[asyncio.Task[None]] = set()

    async def receiveinvoice(self, invoice: str, pathsecret: str | None = None) -> dict[str, Any]:
        try:
            inv = bolt12.decode_invoice(invoice)
        except Bolt12Error as e:
            if pathsecret is not None and not await self._on_our_path(invoice, pathsecret):
                # From the plugin, and not provably ours: 2101 lets it pass the message on
                # to CLN's own offers plugin, which may be waiting for it.
                raise InvoiceUnknownRequest(
                    f"invoice answers no invoice_request of ours: {e}"
                ) from None
            raise InvalidParams(f"invoice: {e}") from None
        invreq_id = inv.invreq_id.hex()
        payment_hash = inv.payment_hash.hex()
        if pathsecret is not None:
            if await self.store.get(invreq_id) is None:
                raise InvoiceUnknownRequest(
                    f"invoice answers no invoice_request of ours (invreq_id {invreq_id})"
                )
            if not self._owns(inv.invreq_metadata, pathsecret):
                # Ours, but it did not come over the path we gave this request: refused, so
                # a path (or a guessed one) cannot collect another request's amount.
                raise InvoiceWrongPath()
        # A replay gets its payment's answer, whatever the request's state is now.
        earlier = await self.store.payment_by_hash(payment_hash)
        if earlier is not None and earlier.status != "refused":
            return self._answer_earlier(earlier, invoice)
        record = await self.store.get(invreq_id)
        if record is None:
            raise InvoiceUnknownRequest(
                f"invoice answers no invoice_request of ours (invreq_id {invreq_id})"
            )
        if not record.active:
            raise InvoiceNotActive()
        now = int(self.clock())
        if inv.expires_at <= now:
            raise InvoiceExpired(inv.expires_at, now)
        if inv.offer_absolute_expiry is not None and inv.offer_absolute_expiry <= now:
            raise RequestExpired(inv.offer_absolute_expiry, now)
        # Without a backend the attempt is recorded as refused at once, and claims nothing.
        refused = isinstance(self.backend, NoBackend)
        attempt = Payment(
            payment_id=0,
            invreq_id=invreq_id,
            invoice=invoice,
            amount_msat=inv.amount_msat,
            payment_hash=payment_hash,
            status="refused" if refused else "pending",
            created_at=now,
            resolved_at=now if refused else None,
            error="no payment backend (--pay-with none)" if refused else None,
            node_id=None if refused else self.backend.node_id,
            attempt_deadline=None if refused else now + math.ceil(reply_wait(self.timeout)),
        )
        claim = await self._claim(attempt, None if refused else self.limits)
        claimed = claim.payment
        if not claim.new and not (refused and claimed.status == "refused"):
            return self._answer_earlier(claimed, invoice)
        if claimed.status == "refused":
            raise PaymentRefused(
                f"invoice is valid but not paid: invreq serve runs with --pay-with none "
                f"(recorded as payment {claimed.payment_id})"
            )
        if pathsecret is not None:
            self._pay_later(claimed)
            return views.payment_json(claimed)
        return await self._pay(claimed)

    async def _claim(self, attempt: Payment, limits: PaymentLimits | None) -> Claim:
        """The one claim, whichever door the invoice came through: the store's conditional
        insert decides (single use, active, limits), and its refusals are the doors'."""
        try:
            return await self.store.payment_claim(attempt, limits)
        except UnknownInvoiceRequest:
            raise InvoiceUnknownRequest("invoice answers no invoice_request of ours") from None
        except NotActive:
            raise InvoiceNotActive() from None

    def _pay_later(self, claimed: Payment) -> None:
        """Pay ``claimed`` in the background: its door has answered already."""
        task = asyncio.create_task(self._pay_in_background(claimed))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def receive_withdrawal(self, record: Record, pr: str) -> Payment:
        """The LNURL-withdraw door (:mod:`invreq.lnurl`): a wallet's BOLT 11 invoice ``pr``
        for ``record``, the request its k1 named. Checked completely (BOLT 11 rules, the
        request's network and exact amount, expiry, a payment_hash never seen before on
        either door), then the request is claimed by the same claim as a BOLT 12 invoice's
        (so a request collected through one door is refused at the other, and two racing
        doors pay once), and paid in the background: LUD-03 answers the wallet once the
        claim is taken. Returns the claimed payment; refusals raise as ``receiveinvoice``'s
        do."""
        from invreq import lnurl  # only with --lnurl (an optional extra)

        if isinstance(self.backend, NoBackend):
            raise PaymentRefused("this service does not pay (--pay-with none)")
        req = bolt12.decode_invoice_request(record.bolt12)
        if req.amount_msat is None:
            raise InvoiceUnknownRequest("invoice_request has no amount to withdraw")
        network = bolt12.network_for_chain(req.chain)
        assert network is not None  # a request of ours names a chain we know
        now = int(self.clock())
        inv = lnurl.check_invoice(pr, network=network, amount_msat=req.amount_msat, now=now)
        earlier = await self.store.payment_by_hash(inv.payment_hash)
        if earlier is not None:
            raise InvoiceAlreadyAttempted(
                f"pr: payment_hash {inv.payment_hash} was received before (payment "
                f"{earlier.payment_id}): one payment per payment_hash; make a new invoice"
            )
        if not record.active:
            raise InvoiceNotActive()
        if req.absolute_expiry is not None and req.absolute_expiry <= now:
            raise RequestExpired(req.absolute_expiry, now)
        attempt = Payment(
            payment_id=0,
            invreq_id=record.invreq_id,
            invoice=inv.invoice,
            amount_msat=inv.amount_msat,
            payment_hash=inv.payment_hash,
            status="pending",
            created_at=now,
            node_id=self.backend.node_id,
            attempt_deadline=now + math.ceil(reply_wait(self.timeout)),
            door="lnurl",
        )
        claim = await self._claim(attempt, self.limits)
        if not claim.new:  # the same payment_hash won a race with this one
            raise InvoiceAlreadyAttempted(
                f"pr: payment_hash {inv.payment_hash} was received before (payment "
                f"{claim.payment.payment_id}): one payment per payment_hash; make a new invoice"
            )
        self._pay_later(claim.payment)
        return claim.payment

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

    async def _pay_in_background(self, claimed: Payment) -> None:
        try:
            done = await self._pay(claimed)
        except RpcError as e:
            log.warning("payment %d (%s door): %s", claimed.payment_id, claimed.door, e.message)
        except asyncio.CancelledError:
            pass  # shutdown: left pending, settled by reconciliation
        except Exception:
            log.exception("payment %d (%s door) failed", claimed.payment_id, claimed.door)
        else:
            log.info(
                "payment %d paid %d msat for invreq %s (%s door)",
                done["payment_id"],
                done["amount_msat"],
                done["invreq_id"],
                claimed.door,
            )

    async def close(self, grace: float = 10.0) -> None:
        """At shutdown: let payments running in the background finish for ``grace``
        seconds, then cancel them (they stay pending and reconciliation settles them)."""
        if not self._background:
            return
        _done, pending = await asyncio.wait(self._background, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _pay(self, claimed: Payment) -> dict[str, Any]:
        self._in_flight.add(claimed.payment_id)
        try:
            paid = await self.backend.pay(claimed.invoice, self.timeout)
        except PaymentFailed as e:
            settled = await self._finish(claimed, "failed", error=str(e))
            if settled.status == "paid":
                return views.payment_json(settled)
            raise PaymentError(str(e)) from None
        except OutcomeUnknown as e:
            log.warning("payment %d: outcome unknown (%s), left pending", claimed.payment_id, e)
            raise _pending_error(claimed, f"outcome unknown ({e})") from None
        except BaseException:
            # Cancelled (shutdown) or a bug: the outcome is unknown, the claim stays
            # pending and reconciliation settles it from the node's record.
            log.warning("payment %d: outcome unknown, left pending", claimed.payment_id)
            raise
        finally:
            self._in_flight.discard(claimed.payment_id)
        done = await self._finish(claimed, "paid", preimage=paid.preimage)
        return views.payment_json(done)

    async def _finish(
        self, p: Payment, status: str, *, preimage: str | None = None, error: str | None = None
    ) -> Payment:
        """Settle ``p``; if something else settled it first (reconciliation in another
        instance, by the node's same record), that settlement stands and is returned."""
        try:
            return await self.store.payment_finish(
                p.payment_id, status, int(self.clock()), preimage=preimage, error=error
            )
        except PaymentNotPending as e:
            settled: Payment = e.payment
            return settled

    def _answer_earlier(self, p: Payment, invoice: str) -> dict[str, Any]:
        """The answer to an invoice whose payment_hash already has a payment."""
        if p.invoice != invoice:
            raise InvoiceAlreadyAttempted(
                f"another invoice with payment_hash {p.payment_hash} was received before "
                f"(payment {p.payment_id}): one payment per payment_hash"
            )
        if p.status == "paid":
            return views.payment_json(p)
        if p.status == "pending":
            raise _pending_error(p, "this invoice is already being paid")
        if p.status == "refused":
            raise PaymentRefused(
                f"invoice is valid but not paid: invreq serve runs with --pay-with none "
                f"(recorded as payment {p.payment_id})"
            )
        raise InvoiceAlreadyAttempted(
            f"invoice was already attempted: payment {p.payment_id} {p.status}"
            f"{f' ({p.error})' if p.error else ''}; one payment per invoice: ask the payee "
            "for a new invoice",
            data=views.payment_json(p),
        )

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
        # One page at most, even without `limit` (see invreq.paging), read as such.
        found = await self.store.payments(
            invreq_id, status, start=start, limit=paging.store_limit(limit)
        )
        return {"payments": paging.page(views.payment_json(p) for p in found)}

    # --- settling pending payments ------------------------------------------------------

    async def reconcile(self) -> int:
        """Settle pending payments from the record of the node that attempted them; returns
        how many were settled. Payments this process is still paying are left alone."""
        settled = 0
        pending = await self.store.payments(status="pending")
        for p in pending:
            if p.payment_id in self._in_flight:
                continue
            if await self._settle(p):
                settled += 1
        still = {p.payment_id for p in pending}
        for payment_id in [i for i in self._told if i not in still]:
            del self._told[payment_id]
        return settled

    async def run_reconciler(self, interval: float) -> None:
        """Reconcile every ``interval`` seconds until cancelled (a crash-left payment is
        settled while the server runs, not at some later restart)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reconcile()
            except RpcError as e:
                log.warning("reconciliation skipped: %s (next in %g s)", e.message, interval)
            except Exception:
                log.exception("reconciliation failed (next in %g s)", interval)

    def _tell(self, p: Payment, message: str) -> None:
        # Once per payment and message: the periodic check would repeat it forever.
        if self._told.get(p.payment_id) != message:
            self._told[p.payment_id] = message
            log.warning("payment %d stays pending: %s", p.payment_id, message)

    async def _settle(self, p: Payment) -> bool:
        mine = self.backend.node_id
        if p.node_id is not None and p.node_id != mine:
            here = (
                "this instance has no payment node (--pay-with none)"
                if mine is None
                else f"this instance pays with node {mine}"
            )
            self._tell(
                p,
                f"attempted by node {p.node_id} and {here}; only that node's record, or "
                "resolvepayment, settles it",
            )
            return False
        if mine is None:
            self._tell(
                p,
                "attempted before invreq recorded the node, and this instance has no payment "
                "node (--pay-with none); resolvepayment settles it",
            )
            return False
        try:
            record = await self.backend.status(p.payment_hash)
        except (OSError, EOFError, ValueError, RpcError) as e:
            self._tell(p, f"the record of node {mine} is unavailable ({e}); checked again later")
            return False
        now = int(self.clock())
        attempt_over = p.attempt_deadline is not None and now >= p.attempt_deadline
        if record.status == "paid":
            status, error = "paid", None
        elif p.node_id is None:
            # Written before the attempting node was recorded: only proof of payment from
            # this node may settle it; anything else could be another node's business.
            self._tell(
                p,
                f"attempted before invreq recorded the node, and node {mine} reports it "
                f"{record.status}; resolvepayment settles it",
            )
            return False
        elif record.status == "failed" and attempt_over:
            status, error = "failed", f"node {mine} reports the payment failed"
        elif record.status == "none" and attempt_over and _expired(p, now):
            status, error = (
                "failed",
                f"node {mine} has no record of the payment and the invoice has expired",
            )
        else:
            self._tell(
                p,
                f"node {mine} reports it {record.status}"
                + ("" if attempt_over else " while its attempt may still be running"),
            )
            return False
        try:
            settled = await self.store.payment_finish(
                p.payment_id, status, now, preimage=record.preimage, error=error
            )
        except PaymentNotPending:
            return False  # another worker or instance settled it first
        self._told.pop(p.payment_id, None)
        log.info("payment %d settled from node %s's record: %s", p.payment_id, mine, settled.status)
        return True

    # --- by hand ------------------------------------------------------------------------

    async def resolvepayment(
        self,
        payment_hash: str,
        status: str,
        evidence: str,
        preimage: str | None = None,
    ) -> dict[str, Any]:
        """An operator settles a stuck pending payment, on evidence that is recorded with
        who did it and when. Refused while an attempt may still be running, and, when the
        attempting node is the one we pay with, against its own record."""
        p = await self.store.payment_by_hash(payment_hash)
        if p is None:
            raise InvalidParams(f"payment_hash: no payment has payment_hash {payment_hash}")
        if p.status != "pending":
            raise PaymentNotPending(p)
        if not evidence.strip():
            raise InvalidParams("evidence: should say why (what shows the outcome)")
        if preimage is not None:
            if hashlib.sha256(bytes.fromhex(preimage)).hexdigest() != payment_hash:
                raise InvalidParams("preimage: its sha256 is not the payment_hash")
            if status != "paid":
                raise InvalidParams("preimage: only with status paid")
        now = int(self.clock())
        if p.payment_id in self._in_flight or (
            p.attempt_deadline is not None and now < p.attempt_deadline
        ):
            raise PaymentInFlight(
                f"payment {p.payment_id} is still being attempted (until "
                f"{p.attempt_deadline}); wait for its outcome"
            )
        if status == "failed" and p.node_id is not None and p.node_id == self.backend.node_id:
            try:
                record = await self.backend.status(payment_hash)
            except (OSError, EOFError, ValueError, RpcError):
                record = None  # the node cannot say: the operator's evidence decides
            if record is not None and record.status in ("paid", "pending"):
                raise PaymentInFlight(
                    f"node {p.node_id} reports payment {p.payment_id} {record.status}: it is "
                    "not failed (reconciliation settles it from that record)"
                )
        done = await self.store.payment_finish(
            p.payment_id,
            status,
            now,
            preimage=preimage,
            error=None if status == "paid" else "resolved by hand",
            resolved_by=CALLER.get(),
            evidence=evidence,
        )
        log.warning(
            "payment %d resolved by hand as %s by %s: %s",
            done.payment_id,
            status,
            done.resolved_by,
            evidence[:200],
        )
        return views.payment_json(done)


def _expired(p: Payment, now: int) -> bool:
    """The invoice can no longer be paid by anyone (its payee refuses it after expiry)."""
    if p.door == "lnurl":
        from invreq import lnurl  # a BOLT 11 invoice: only ever written with --lnurl

        expires_at = lnurl.invoice_expires_at(p.invoice)
        return expires_at is not None and expires_at <= now
    try:
        return bolt12.decode_invoice(p.invoice).expires_at <= now
    except Bolt12Error:
        return False
