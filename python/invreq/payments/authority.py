"""Payout authority: whether money may leave for a request, and the person's yes per payment.

Every door that pays for one of our requests (``receiveinvoice`` by hand or from the CLN
plugin today; a BOLT 11 door tomorrow) goes through the same three steps, in this order:

1. :meth:`PayoutAuthority.check` before the claim: a request that needs an approval is
   paid only while its stored approval verifies against the pinned approval key and
   states the bound stored with it. A request needs one when it was made under an
   approver (decided at creation, stored as ``approval_required``) **or** when this
   service runs with one, so neither a restart with another configuration nor another
   instance on the same database pays a request nobody approved. Likewise a request made
   under ``--payout-approver hwi`` (its key stored as ``payout_approver_key``) is paid only
   by a service whose payout approver has that key.
2. ``store.payment_claim``: the bound (``max_payouts``, ``payout_window``) is counted in
   the claim's own transaction (:mod:`invreq.bound`).
3. :meth:`PayoutAuthority.approve_payout` after the claim, before the node is asked to
   pay (``--payout-approver hwi``): the device shows the payment and signs it; the
   signature is verified (against the request's stored payout approver key, when it has
   one) and stored with the payment. A decline or a timeout settles the
   payment ``failed`` without the node ever being asked: no money half-sent.

Refusals are ``InvoiceRefused`` errors, so the plugin answers the payee with an
``invoice_error`` carrying the reason.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from invreq import approval
from invreq.errors import PaymentNotApproved, PayoutDeclined, SignerError
from invreq.oneline import oneline
from invreq.store.base import Payment, Record

if TYPE_CHECKING:
    from invreq.signers.base import Approver

__all__ = ["PayoutAuthority", "fee_limit_msat"]

log = logging.getLogger("invreq.payments")


def fee_limit_msat(amount_msat: int) -> int:
    """The most fee a payout may cost: xpay's own default (5000 msat or 1%, whichever is
    greater), given to xpay as ``maxfee`` so the limit shown on the device is the one
    applied."""
    return max(5000, -(-amount_msat // 100))


class PayoutAuthority:
    def __init__(
        self,
        *,
        network: str,
        approval_key: bytes | None = None,
        payout_approver: Approver | None = None,
    ) -> None:
        self.network = network
        #: the pinned approval key (--approver hwi), or None when this service has none
        self.approval_key = approval_key
        #: --payout-approver hwi
        self.payout_approver = payout_approver

    def check(self, record: Record) -> None:
        """Raise ``PaymentNotApproved`` unless ``record`` may be paid (step 1 above)."""
        what = f"invoice_request {record.invreq_id}"
        self._check_payout_approver(record, what)
        key = self.approval_key
        if not record.approval_required and key is None:
            return
        if key is None:
            raise PaymentNotApproved(
                f"{what} was made under --approver hwi and is paid only once its approval "
                "verifies against the approval key; this service runs without --approver "
                "hwi, so it is not paid"
            )
        if record.approval is None:
            raise PaymentNotApproved(
                f"{what} has no approval (it was made without an approver) and this service "
                "runs with --approver hwi: it is not paid; disable it and make a new one"
            )
        problem = approval.verify_approval(record.approval, invreq_id=record.invreq_id, pubkey=key)
        if problem is not None:
            raise PaymentNotApproved(
                f"{what}: its stored approval does not verify against the approval key "
                f"{key.hex()} ({problem}): not paid"
            )
        message = record.approval["message"]
        stated = approval.bound_rows_of(message)
        if stated is None:
            # A version 1 text stated no bound: it approved one payout at most.
            if not record.single_use:
                raise PaymentNotApproved(
                    f"{what} is reusable but its approval (version 1 text) did not say so: "
                    "not paid; disable it and make a new one with max_payouts"
                )
            return
        amount = _amount_of(message)
        if amount is None or stated != record.bound.rows(amount):
            raise PaymentNotApproved(
                f"{what}: the bound stored with it ({record.bound.describe()}) is not the one "
                f"approved on the device ({' / '.join(stated)}): not paid"
            )

    def _check_payout_approver(self, record: Record, what: str) -> None:
        """A request made under ``--payout-approver hwi`` is paid only after the yes of the
        device whose key was stored with it: not by a service restarted without a payout
        approver, nor by another instance on the database with none, or with another
        device."""
        required = record.payout_approver_key
        if required is None:
            return
        approver = self.payout_approver
        if approver is None:
            raise PaymentNotApproved(
                f"{what} was made under --payout-approver hwi: each of its payouts needs the "
                f"yes of the device with the key {required}, and this service runs without "
                "--payout-approver hwi, so it is not paid"
            )
        if approver.pubkey.hex() != required:
            raise PaymentNotApproved(
                f"{what} was made under --payout-approver hwi with the key {required}; this "
                f"service's payout approver has the key {approver.pubkey.hex()}: not paid"
            )

    async def approve_payout(
        self,
        record: Record,
        payment: Payment,
        *,
        payee_node_id: bytes,
        introductions: list[str],
        fee_limit: int,
    ) -> dict[str, Any] | None:
        """Step 3: the device's signed yes to this payment, or ``PayoutDeclined``; None
        when no payout approver is configured."""
        approver = self.payout_approver
        if approver is None:
            return None
        text = approval.payout_text(
            network=self.network,
            amount_msat=payment.amount_msat,
            fee_limit_msat=fee_limit,
            payee_node_id=payee_node_id.hex(),
            introductions=introductions,
            invreq_id=record.invreq_id,
            label=record.label,
            payment_hash=payment.payment_hash,
        )
        try:
            evidence = await approver.approve(text)
        except SignerError as e:
            raise PayoutDeclined(
                f"payment {payment.payment_id} was not approved on the device: "
                f"{oneline(e.message)}; not paid"
            ) from None
        # The approver checked the signature against its key on the device thread; checked
        # again here against what was sent, as the creation approvals are.
        pubkey = bytes.fromhex(evidence["pubkey"])
        required = record.payout_approver_key
        if (
            (required is not None and pubkey.hex() != required)
            or evidence.get("message") != text
            or approval.payment_hash_of(text) != payment.payment_hash
            or approval.recover_bip137(text, evidence.get("signature")) != pubkey
        ):
            raise PayoutDeclined(
                f"payment {payment.payment_id}: the device's approval is not a signature "
                "over the payment shown; not paid"
            )
        return evidence


def _amount_of(message: str) -> int | None:
    """The amount (msat) a version 2 approval text states on its amount row."""
    row = message.split("\n")[2]
    if not row.startswith("amount: ") or not row.endswith(" msat"):
        return None
    digits = row.removeprefix("amount: ").removesuffix(" msat")
    return int(digits) if digits.isdecimal() else None
