"""LNURL-withdraw: a second door onto a request, for wallets that speak BOLT 11 only.

A payee collects an ``lnr1...`` only with software that answers invoice_requests (CLN's
``sendinvoice``, LDK). Most phone wallets speak LNURL-withdraw instead, so with ``--lnurl``
every single-use request made while it is on also carries a link (one random ``k1``, the
request's capability on this door, stored with the request):

- **LUD-01**: the link as bech32 (``lnurl``, upper case as QR codes want), and **LUD-17**:
  the same URL under the ``lnurlw://`` scheme (``lnurlw``), both written by the ``lnurl``
  library from ``--public-url`` + ``/lnurl/withdraw/<k1>``.
- **LUD-03**: a GET of the link answers a ``withdrawRequest`` (callback, ``k1``,
  ``defaultDescription``, ``minWithdrawable`` = ``maxWithdrawable`` = the request's amount in
  msat); the wallet then GETs ``callback?k1=...&pr=<BOLT 11 invoice>``, and the service answers
  ``{"status": "OK"}`` once the invoice is checked (:func:`check_invoice`) and the request is
  claimed, then pays in the background, or ``{"status": "ERROR", "reason": ...}``.

The claim, the payment and its recovery are the BOLT 12 door's own
(:meth:`invreq.payments.Receiver.receive_withdrawal`): one request, one claim, paid once
whichever door collects it. This module only knows the protocol: links, JSON shapes, and what
makes a BOLT 11 invoice acceptable. It is imported only when ``--lnurl`` is on (its
libraries are an optional extra: :mod:`invreq.extras`).

LUD-01 says status codes carry no meaning and wallets read the body: every answer here is
``200`` with JSON (the ``lnurl`` library's wallet side raises on any other status before
reading the reason), with ``Access-Control-Allow-Origin: *`` for browser wallets.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

import bolt11
import lnurl
from lnurl import LnurlErrorResponse, LnurlSuccessResponse, LnurlWithdrawResponse

from invreq.errors import (
    InvalidParams,
    InvoiceAmount,
    InvoiceExpired,
    StartupError,
)
from invreq.oneline import oneline

__all__ = [
    "BOLT11_CURRENCY",
    "CALLBACK_PATH",
    "K1_BYTES",
    "WITHDRAW_PATH",
    "Bolt11Invoice",
    "Links",
    "check_invoice",
    "error_json",
    "invoice_expires_at",
    "new_k1",
    "ok_json",
]

#: BOLT 11's currency prefix (the hrp after ``ln``) of each network invreq serves.
BOLT11_CURRENCY: dict[str, str] = {
    "bitcoin": "bc",
    "testnet": "tb",
    "testnet4": "tb",
    "signet": "tbs",
    "regtest": "bcrt",
}
#: Bytes of CSPRNG in a k1 (hex in the link): unguessable, as a bearer capability must be.
K1_BYTES = 32
#: Where the link and the callback are served, under --public-url.
WITHDRAW_PATH = "/lnurl/withdraw/"
CALLBACK_PATH = "/lnurl/callback"


def new_k1() -> str:
    """A fresh k1 for a request: 32 random bytes, hex (secrets: the OS CSPRNG)."""
    return secrets.token_hex(K1_BYTES)


def is_k1(text: str) -> bool:
    """Shaped like a k1 of ours (anything else is refused before the store is asked)."""
    return len(text) == 2 * K1_BYTES and all(c in "0123456789abcdef" for c in text)


@dataclasses.dataclass(frozen=True)
class Links:
    """The LNURL door of one service: ``--public-url`` is how wallets reach its HTTP door."""

    base: str

    @classmethod
    def open(cls, public_url: str) -> Links:
        """Checked by the ``lnurl`` library's own URL rules (https, or http for an onion
        service or loopback), so a link we print is one its wallets accept."""
        base = public_url.rstrip("/")
        try:
            lnurl.encode(base + CALLBACK_PATH)
        except lnurl.LnurlException:
            raise StartupError(
                f"--public-url: wallets refuse {public_url!r}: give https://HOST[:PORT][/PATH] "
                "(http:// only for an onion service, or loopback for testing)"
            ) from None
        return cls(base)

    @staticmethod
    def new_k1() -> str:
        return new_k1()

    def link(self, k1: str) -> str:
        return f"{self.base}{WITHDRAW_PATH}{k1}"

    @property
    def callback(self) -> str:
        return self.base + CALLBACK_PATH

    def links_json(self, k1: str) -> dict[str, str]:
        """The request's LNURL in both forms: LUD-01 bech32 and LUD-17 ``lnurlw://``."""
        url = self.link(k1)
        lud17 = lnurl.Lnurl("lnurlw" + url[url.index(":") :]).lud17
        assert lud17 is not None  # a lnurlw:// URL always has its LUD-17 form
        return {"lnurl": str(lnurl.encode(url).bech32), "lnurlw": lud17}

    def withdraw_request(self, k1: str, amount_msat: int, description: str) -> dict[str, Any]:
        """LUD-03's answer to a GET of the link: exactly the request's amount, no choice."""
        answer = LnurlWithdrawResponse(
            callback=self.callback,  # type: ignore[arg-type]  # pydantic validates the str
            k1=k1,
            defaultDescription=description,
            minWithdrawable=amount_msat,  # type: ignore[arg-type]
            maxWithdrawable=amount_msat,  # type: ignore[arg-type]
        )
        out: dict[str, Any] = answer.model_dump(mode="json", exclude_none=True)
        return out


def ok_json() -> dict[str, Any]:
    out: dict[str, Any] = LnurlSuccessResponse().model_dump(mode="json")
    return out


def error_json(reason: str) -> dict[str, Any]:
    """LUD-03's refusal. ``reason`` is shown to the wallet's user: one printable line."""
    out: dict[str, Any] = LnurlErrorResponse(reason=oneline(reason)).model_dump(mode="json")
    return out


@dataclasses.dataclass(frozen=True)
class Bolt11Invoice:
    """What the claim needs of a checked BOLT 11 invoice."""

    invoice: str
    payment_hash: str
    amount_msat: int
    expires_at: int
    #: the payee's node (its ``n`` field, or the key the signature recovers to)
    payee: bytes
    #: where a payment enters the payee's route hints (each hint's first node), as a payout
    #: approval shows them
    entries: list[str]


def check_invoice(pr: str, *, network: str, amount_msat: int, now: int) -> Bolt11Invoice:
    """The wallet's invoice, checked completely before anything is claimed: it decodes and
    its signature verifies (against its ``n`` field, else the key it recovers to, as BOLT 11
    says); it is for this service's network; its amount is exactly the request's (BOLT 12's
    rule for the other door, and LUD-03's ``minWithdrawable == maxWithdrawable``); it has not
    expired. Each refusal names what is wrong. Whether its payment_hash was seen before is
    the store's to say, in the claim (one payment per payment_hash, whichever door)."""
    try:
        inv = bolt11.decode(pr.strip())
    except Exception as e:
        # Untrusted text in a third-party decoder: whatever it raises (its own refusals,
        # bitstring's and coincurve's errors on malformed data) means "not an invoice".
        why = str(e) or type(e).__name__
        raise InvalidParams(f"pr: not a valid BOLT 11 invoice ({oneline(why, 200)})") from None
    want = BOLT11_CURRENCY[network]
    if inv.currency != want:
        raise InvalidParams(
            f"pr: invoice is for another network (ln{oneline(inv.currency, 16)}); this service "
            f"pays {network} invoices (ln{want})"
        )
    if inv.amount_msat is None:
        raise InvoiceAmount(
            f"pr: invoice has no amount; it must be exactly {amount_msat} msat (the request's)"
        )
    if int(inv.amount_msat) != amount_msat:
        got = int(inv.amount_msat)
        raise InvoiceAmount(f"pr: invoice is for {got} msat, the request for {amount_msat} msat")
    expires_at = int(inv.expiry_time)
    if expires_at <= now:
        raise InvoiceExpired(expires_at, now)
    return Bolt11Invoice(
        invoice=pr.strip(),
        payment_hash=str(inv.payment_hash),
        amount_msat=amount_msat,
        expires_at=expires_at,
        payee=bytes.fromhex(str(inv.payee)),
        entries=[hint.routes[0].public_key for hint in inv.route_hints or [] if hint.routes],
    )


def invoice_expires_at(invoice: str) -> int | None:
    """When a stored BOLT 11 invoice expires (reconciliation: after it, nobody can pay it);
    None if it no longer decodes."""
    try:
        return int(bolt11.decode(invoice).expiry_time)
    except Exception:  # a stored row that no longer decodes: never "expired" by guess
        return None
