"""The LNURL-withdraw door on HTTP (``--lnurl``): the two GETs of LUD-03.

- ``GET /lnurl/withdraw/<k1>``: the request's ``withdrawRequest`` (:meth:`Links.withdraw_request`).
- ``GET /lnurl/callback?k1=...&pr=...``: the wallet's BOLT 11 invoice, claimed and paid by
  :meth:`invreq.payments.Receiver.receive_withdrawal`; ``{"status": "OK"}`` once the claim is
  taken, else ``{"status": "ERROR", "reason": ...}``.

No rune: ``k1`` is the capability, as the ``lnr`` string is on the other door. The answers say
nothing of the node (no id, no route, no node error text): a refusal's reason is about the
invoice or the request, and a store or node failure is "try again later" in the reason and
the whole story in the log. The door is bounded like every other: the claim counts its
attempts against ``--pay-attempts-per-request`` and ``--pay-attempts-per-minute`` in the
database, and its connections are the HTTP door's (``invreq.httpguard``).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from invreq import bolt12, rpc
from invreq.errors import (
    InvalidParams,
    InvoiceNotActive,
    InvoiceRefused,
    NotActive,
    PaymentLimited,
    PaymentNotApproved,
    PayoutDeclined,
    RequestExpired,
    RpcError,
)
from invreq.lnurl import CALLBACK_PATH, WITHDRAW_PATH, Links, error_json, is_k1, ok_json
from invreq.oneline import oneline

__all__ = ["routes"]

log = logging.getLogger("invreq.lnurl")

#: What a wallet is told when the failure is ours, not its invoice's.
TRY_LATER = "the service could not take this withdrawal now; try again later"
UNKNOWN_LINK = "k1: unknown withdrawal link"


def _answer(obj: dict[str, Any]) -> web.Response:
    # LUD-01: status codes mean nothing, the body says; browser wallets need CORS.
    return web.Response(
        status=200,
        body=rpc.dumps(obj),
        content_type="application/json",
        headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "no-store"},
    )


#: Refusals whose own text is the operator's business, not the wallet's: the approval key
#: and its configuration, the device's error text and the payment's number, the service's
#: attempt count in the last minute (review-web). The wallet reads these sentences; the
#: operator knows the configuration. (A declined payout has its own: ``PayoutDeclined.public``.)
_PAYEE_SAFE: dict[type[RpcError], str] = {
    PaymentNotApproved: "this request was not approved for payment; ask its issuer for a new one",
    PaymentLimited: "too many withdrawal attempts; try again later",
}


def _reason(e: RpcError) -> str:
    """What the wallet's user reads: the refusal of the invoice or the request as is (our
    own texts, outside text already on one line) unless it names the operator's own
    details (:data:`_PAYEE_SAFE`), anything else generic. A payout declined on the device
    is told without the device's own text (logged when it was declined)."""
    if isinstance(e, PayoutDeclined):
        return e.public
    for cls, sentence in _PAYEE_SAFE.items():
        if isinstance(e, cls):
            return sentence
    if isinstance(e, InvoiceRefused | InvalidParams | NotActive):
        return e.message
    log.warning("lnurl callback: %s (code %d)", oneline(e.message), e.code)
    return TRY_LATER


def routes(store_key: Any, receiver_key: Any, links: Links) -> list[web.RouteDef]:
    """The door's routes; the app keys name where the store and the receiver live."""

    async def withdraw_request(request: web.Request) -> web.Response:
        k1 = request.match_info["k1"]
        try:
            record = await request.app[store_key].get_by_k1(k1) if is_k1(k1) else None
            if record is None:
                return _answer(error_json(UNKNOWN_LINK))
            if not record.active:
                raise InvoiceNotActive()
            req = bolt12.decode_invoice_request(record.bolt12)
            now = int(request.app[receiver_key].clock())
            if req.absolute_expiry is not None and req.absolute_expiry <= now:
                raise RequestExpired(req.absolute_expiry, now)
            assert req.amount_msat is not None  # every request of ours has one
            return _answer(links.withdraw_request(k1, req.amount_msat, req.description or ""))
        except RpcError as e:
            return _answer(error_json(_reason(e)))

    async def callback(request: web.Request) -> web.Response:
        k1 = request.query.get("k1", "")
        pr = request.query.get("pr", "")
        if not k1:
            return _answer(error_json("k1: missing"))
        if not pr:
            return _answer(error_json("pr: missing (the BOLT 11 invoice to pay)"))
        try:
            record = await request.app[store_key].get_by_k1(k1) if is_k1(k1) else None
            if record is None:
                return _answer(error_json(UNKNOWN_LINK))
            claimed = await request.app[receiver_key].receive_withdrawal(record, pr)
        except RpcError as e:
            return _answer(error_json(_reason(e)))
        log.info(
            "lnurl withdrawal: payment %d of %d msat for invreq %s claimed, paying",
            claimed.payment_id,
            claimed.amount_msat,
            claimed.invreq_id,
        )
        return _answer(ok_json())

    return [
        web.get(WITHDRAW_PATH + "{k1}", withdraw_request),
        web.get(CALLBACK_PATH, callback),
    ]
