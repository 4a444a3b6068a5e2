"""Receiving an invoice that answers one of our requests, claiming it, and paying it once.

``receiveinvoice`` accepts an invoice only when every check passes (REFERENCE §8), each
refusal with its own code (the list: :mod:`invreq.payments`). Then the request is
**claimed** in the store (one conditional insert: of two invoices for a single-use request
exactly one proceeds), paid through the backend (:mod:`invreq.payments.node`), and the
outcome is recorded: ``paid`` marks the request used (single-use: inactive), ``failed``
releases the claim, an unknown outcome leaves it ``pending`` for the reconciler
(:mod:`invreq.payments.reconcile`). Every attempt is kept and listed by ``listpayments``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from invreq import bolt12, paging, views
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
    PaymentNotPending,
    PaymentPending,
    PaymentRefused,
    PayoutDeclined,
    RequestExpired,
    RpcError,
    UnknownInvoiceRequest,
)
from invreq.oneline import oneline
from invreq.payments.authority import PayoutAuthority, fee_limit_msat
from invreq.payments.node import (
    NoBackend,
    NodePaymentFailed,
    OutcomeUnknown,
    PaymentBackend,
    proves,
    reply_wait,
)
from invreq.payments.reconcile import Reconciler
from invreq.store.base import Claim, Payment, PaymentLimits, PaymentStore, Record

if TYPE_CHECKING:
    from invreq.blindpaths import PathMaker

__all__ = ["Receiver"]

log = logging.getLogger("invreq.payments")


def _pending_error(p: Payment, why: str) -> PaymentPending:
    return PaymentPending(
        f"payment {p.payment_id} is pending: {why}; its claim is held until node "
        f"{p.node_id or '(not recorded)'} reports the outcome (listpayments shows it)",
        data=views.payment_json(p),
    )


#: Refused invoices (``--pay-with none``) recorded per request; later ones are answered
#: 2107 all the same, and not recorded.
MAX_REFUSALS_RECORDED = 16


class Receiver:
    """Receives invoices and pays them exactly once. Two ways in share every check and the
    one claim, so a single-use request is paid once whichever way (or both at once) its
    invoices arrive: by hand (``receiveinvoice invoice``: the reply waits for the payment's
    outcome) and from the CLN plugin (``receiveinvoice invoice pathsecret``: the invoice came
    over our blinded path; the reply leaves once the claim is taken and the payment runs here
    in the background, because the payee's ``sendinvoice`` waits only its timeout, 90 s by
    default). Every guarantee is in the store, so separate processes and instances keep
    them too. Its ``reconciler`` settles the payments it leaves pending."""

    def __init__(
        self,
        store: PaymentStore,
        backend: PaymentBackend,
        clock: Callable[[], float] = time.time,
        *,
        timeout: float,
        limits: PaymentLimits,
        paths: PathMaker | None = None,
        authority: PayoutAuthority | None = None,
        approval_wait: float = 0.0,
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
        #: settles what stays pending: from the node's record, or by hand (resolvepayment)
        self.reconciler = Reconciler(store, backend, clock, in_flight=self._in_flight)
        #: the blinded paths of our requests (CLN backend): recognises a ``pathsecret``
        self.paths = paths
        #: payments of invoices from the plugin, running after their reply left
        self._background: set[asyncio.Task[None]] = set()
        #: whether money may leave for a request, and the per-payment approval
        #: (invreq.payments.authority); the default checks approvals only of requests
        #: that were made needing one (and so refuses them: it has no approval key)
        self.authority = authority or PayoutAuthority(network="")
        #: seconds a payout approval may take before xpay starts (--hwi-timeout)
        self.approval_wait = approval_wait

    async def receiveinvoice(
        self,
        invoice: str,
        pathsecret: str | None = None,
        reply_path: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if reply_path is not None and pathsecret is None:
            raise InvalidParams("reply_path: only with pathsecret (an invoice from the plugin)")
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
        # A replay gets its payment's answer, whatever the request's state is now. A refused
        # row (--pay-with none) becomes the attempt only for the same invoice: the claim
        # keeps the row's invoice, and the node must pay the invoice checked (and shown for
        # approval) here, not another one with its payment_hash.
        earlier = await self.store.payment_by_hash(payment_hash)
        if earlier is not None and (earlier.status != "refused" or earlier.invoice != invoice):
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
        # Without a backend the attempt is recorded as refused at once, and claims nothing;
        # at most MAX_REFUSALS_RECORDED of them per request (anyone holding a payee key can
        # mint invoices without end: 38 MiB of them were stored in 1.6 s, issue 25).
        refused = isinstance(self.backend, NoBackend)
        if refused and earlier is None:
            recorded = await self.store.payment_count(invreq_id, "refused")
            if recorded >= MAX_REFUSALS_RECORDED:
                raise PaymentRefused(
                    "invoice is valid but not paid: invreq serve runs with --pay-with none "
                    f"(not recorded: this request has {recorded} refused invoices recorded "
                    "already)"
                )
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
            attempt_deadline=None
            if refused
            else now + math.ceil(self.approval_wait + reply_wait(self.timeout)),
        )
        claim = await self._claim(record, attempt, None if refused else self.limits)
        claimed = claim.payment
        if not claim.new and not (refused and claimed.status == "refused"):
            return self._answer_earlier(claimed, invoice)
        if claimed.status == "refused":
            raise PaymentRefused(
                f"invoice is valid but not paid: invreq serve runs with --pay-with none "
                f"(recorded as payment {claimed.payment_id})"
            )
        entries = (inv.node_id, [_introduction(p) for p in inv.paths])
        if pathsecret is not None:
            # From the plugin the hook is answered now; the payout approval (a person, up
            # to --hwi-timeout) and the payment run here, and a decline reaches the payee
            # as an invoice_error over its reply path, like a failed payment.
            self._pay_later(claimed, reply_path, approve=(record, *entries))
            return views.payment_json(claimed)
        claimed = await self._approve_payout(record, claimed, *entries)
        return await self._pay(claimed)

    async def _claim(self, record: Record, attempt: Payment, limits: PaymentLimits | None) -> Claim:
        """The one claim, whichever door the invoice came through (BOLT 12 here and from
        the plugin, BOLT 11 from an LNURL wallet): who may let money leave (a request made
        needing an approval has a verifying one), then the store's conditional insert
        decides (single use, active, the payout bound, limits); its refusals are the
        doors'."""
        self.authority.check(record)
        try:
            return await self.store.payment_claim(attempt, limits)
        except UnknownInvoiceRequest:
            raise InvoiceUnknownRequest("invoice answers no invoice_request of ours") from None
        except NotActive:
            raise InvoiceNotActive() from None

    def _pay_later(
        self,
        claimed: Payment,
        reply_path: dict[str, Any] | None = None,
        approve: tuple[Record, bytes, list[str]] | None = None,
    ) -> None:
        """Pay ``claimed`` in the background: its door has answered already (the plugin's
        payee is told a certain failure over ``reply_path``; a wallet asks its own node).
        ``approve``: the payout approval to ask for first (the request, the payee's node,
        where the payment enters its route)."""
        task = asyncio.create_task(self._pay_in_background(claimed, reply_path, approve))
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
            attempt_deadline=now + math.ceil(self.approval_wait + reply_wait(self.timeout)),
            door="lnurl",
        )
        claim = await self._claim(record, attempt, self.limits)
        if not claim.new:  # the same payment_hash won a race with this one
            raise InvoiceAlreadyAttempted(
                f"pr: payment_hash {inv.payment_hash} was received before (payment "
                f"{claim.payment.payment_id}): one payment per payment_hash; make a new invoice"
            )
        # Before the answer, as for the plugin's invoices: a decline reaches the wallet.
        claimed = await self._approve_payout(record, claim.payment, inv.payee, inv.entries)
        self._pay_later(claimed)
        return claimed

    async def _approve_payout(
        self, record: Record, claimed: Payment, payee_node_id: bytes, introductions: list[str]
    ) -> Payment:
        """``--payout-approver hwi``: the device's signed yes, stored with the payment,
        before the node is asked; a decline or timeout settles it failed, unpaid. Shown:
        the payee's node and where the payment enters its route (the introduction nodes of
        a BOLT 12 invoice's blinded paths, the first hops of a BOLT 11 one's route hints)."""
        if self.authority.payout_approver is None:
            return claimed
        self._in_flight.add(claimed.payment_id)  # not reconciled while a person decides
        try:
            try:
                evidence = await self.authority.approve_payout(
                    record,
                    claimed,
                    payee_node_id=payee_node_id,
                    introductions=introductions,
                    fee_limit=fee_limit_msat(claimed.amount_msat),
                )
            except PayoutDeclined as e:
                await self._finish(claimed, "failed", error=e.message)
                log.info("payment %d declined: %s", claimed.payment_id, oneline(e.message))
                raise
            except BaseException:
                # Cancelled while the device was asked: nothing was sent to the node.
                await asyncio.shield(
                    self._finish(claimed, "failed", error="stopped before the payout approval")
                )
                raise
            assert evidence is not None
            # The node is asked only now: its attempt may run until reply_wait from here,
            # whatever the claim allowed (approvals queue on one device, and their wait
            # there is not counted). Another instance's reconciler or resolvepayment must
            # not settle it failed while it may still be paid.
            deadline = int(self.clock()) + math.ceil(reply_wait(self.timeout))
            return await self.store.payment_approved(claimed.payment_id, evidence, deadline)
        finally:
            self._in_flight.discard(claimed.payment_id)

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

    async def _pay_in_background(
        self,
        claimed: Payment,
        reply_path: dict[str, Any] | None = None,
        approve: tuple[Record, bytes, list[str]] | None = None,
    ) -> None:
        try:
            if approve is not None:
                claimed = await self._approve_payout(approve[0], claimed, approve[1], approve[2])
            done = await self._pay(claimed)
        except (PaymentError, PayoutDeclined) as e:
            # Certainly not paid: the payee's sendinvoice is still waiting (its timeout, 90 s
            # by default) and is told why now. A pending outcome (below) tells it nothing:
            # the payment may still arrive.
            log.warning("payment %d (%s door): %s", claimed.payment_id, claimed.door, e.message)
            if reply_path is not None:
                why = e.public if isinstance(e, PayoutDeclined) else e.message
                await self._tell_payee(claimed, reply_path, why)
        except RpcError as e:
            msg = oneline(e.message)
            log.warning("payment %d (%s door): %s", claimed.payment_id, claimed.door, msg)
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

    async def _tell_payee(self, p: Payment, reply_path: dict[str, Any], why: str) -> None:
        """Send the payee an invoice_error over its reply path (through the paying node)."""
        try:
            await self.backend.reply_error(reply_path, why)
        except Exception as e:
            log.warning("payment %d: could not tell the payee it failed: %s", p.payment_id, e)
        else:
            log.info("payment %d: the payee was told it failed", p.payment_id)

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
            maxfee = None
            if claimed.payout_approval is not None:
                maxfee = fee_limit_msat(claimed.amount_msat)  # the limit the person saw
            paid = await self.backend.pay(claimed.invoice, self.timeout, maxfee)
        except NodePaymentFailed as e:
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
        if not proves(paid.preimage, claimed.payment_hash):
            why = (
                f"the node answered preimage {oneline(paid.preimage, 80)}, whose sha256 is not "
                "the payment_hash: investigate (resolvepayment settles it, with evidence)"
            )
            log.warning("payment %d stays pending: %s", claimed.payment_id, why)
            raise _pending_error(claimed, why)
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
    ) -> paging.Listing[Payment]:
        if (start is not None or limit is not None) and index is None:
            raise InvalidParams("index: required when start or limit is given")

        async def read(first: int | None, n: int) -> list[Payment]:
            return await self.store.payments(
                invreq_id, status, start=first, limit=n, max_bytes=paging.CHUNK_BYTES
            )

        # Every matching payment (as lightningd), read and sent a chunk at a time.
        rows = paging.chunks(read, lambda p: p.payment_id, start, limit)
        return paging.Listing("payments", rows, views.payment_json)


def _introduction(path: bolt12.BlindedPath) -> str:
    """Where a payment enters one of the payee's blinded paths, as the device shows it."""
    if path.first_node_id is not None:
        return path.first_node_id.hex()
    assert path.first_scid is not None
    return f"scid {views.scid_text(path.first_scid)}/{path.first_scid_dir}"
