"""CLN's JSON shapes, in one place: what the commands answer and ``invreq decode`` prints.

The stores return plain rows (``Record``, ``Payment``), the native core typed values
(``InvoiceRequest``, ``Invoice``, ``BlindedPath`` ...); only this module knows how CLN
writes them: key order, hex for bytes, ``BLOCKxTXxOUT`` for a short channel id, which keys
are left out when empty (REFERENCE §5 and §8, CLN's ``decode.json`` schema).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from invreq import bolt12
from invreq.bolt12 import BlindedPath, BlindedPayInfo
from invreq.store.base import Event, Payment, Record

__all__ = [
    "blindedpay_json",
    "decode_invoice_json",
    "decode_json",
    "decode_offer_json",
    "event_json",
    "event_listed_json",
    "listed_json",
    "paths_json",
    "payment_json",
    "record_json",
    "scid_text",
]

# --- our records --------------------------------------------------------------------------


def record_json(
    r: Record, unsigned: str | None = None, links: dict[str, str] | None = None
) -> dict[str, Any]:
    """The CLN object of invoicerequest and disableinvoicerequest (REFERENCE §5 key order),
    with ``bolt12_unsigned`` beside the signed string (what LDK-based wallets read).
    ``unsigned``: that string when the caller has it (a request just made), which saves
    reading the signed one again. ``links``: the request's other door (``lnurl`` and
    ``lnurlw``, :mod:`invreq.lnurl`), beside its ``bolt12``, when it has one."""
    out: dict[str, Any] = {
        "invreq_id": r.invreq_id,
        "active": r.active,
        "single_use": r.single_use,
        "bolt12": r.bolt12,
        "bolt12_unsigned": unsigned or bolt12.bolt12_unsigned(r.bolt12),
    }
    if links:
        out.update(links)
    out["used"] = r.used
    if r.label is not None:
        out["label"] = r.label
    return out


def listed_json(r: Record, links: dict[str, str] | None = None) -> dict[str, Any]:
    """One entry of listinvoicerequests: the record, then where and when it was made."""
    out = record_json(r, links=links)
    out["created_index"] = r.created_index
    out["created_at"] = r.created_at
    # Beyond CLN (issue 23): a reusable request's bound, and whether it needs an approval.
    if r.max_payouts is not None:
        out["max_payouts"] = r.max_payouts
    if r.payout_until is not None:
        out["payout_until"] = r.payout_until
    if r.approval_required:
        out["approval_required"] = True
    if r.approval is not None:
        out["approval"] = r.approval
    if r.payout_approver_key is not None:
        out["payout_approver_key"] = r.payout_approver_key
    return out


def payment_json(p: Payment) -> dict[str, Any]:
    """One payment attempt (receiveinvoice, listpayments; REFERENCE §8): the fields always
    present, then those that are set."""
    out: dict[str, Any] = {
        "payment_id": p.payment_id,
        "invreq_id": p.invreq_id,
        "status": p.status,
        "amount_msat": p.amount_msat,
        "payment_hash": p.payment_hash,
        "invoice": p.invoice,
        "door": p.door,
        "created_at": p.created_at,
    }
    optional = (
        ("resolved_at", p.resolved_at),
        ("payment_preimage", p.preimage),
        ("error", p.error),
        ("node_id", p.node_id),
        ("attempt_deadline", p.attempt_deadline),
        ("request_disabled_at", p.request_disabled_at),
        ("resolved_by", p.resolved_by),
        ("evidence", p.evidence),
        ("duplicate_of", p.duplicate_of),
        # --payout-approver hwi: who approved this payment, with the signed text
        ("payout_approval", p.payout_approval),
    )
    for key, value in optional:
        if value is not None:
            out[key] = value
    return out


def event_json(e: Event) -> dict[str, Any]:
    """An event as the webhook delivers it (docs/payee-page.md): the fields always present,
    then those that are set."""
    out: dict[str, Any] = {
        "event_id": e.event_id,
        "type": e.type,
        "created_at": e.created_at,
        "invreq_id": e.invreq_id,
    }
    optional = (
        ("label", e.label),
        ("payment_id", e.payment_id),
        ("amount_msat", e.amount_msat),
        ("detail", e.detail),
    )
    for key, value in optional:
        if value is not None:
            out[key] = value
    return out


def event_listed_json(e: Event, webhook: bool) -> dict[str, Any]:
    """One entry of listevents: the event, and where its delivery is (``webhook``: whether
    this instance has a webhook configured)."""
    out = event_json(e)
    if e.delivered_at is not None:
        state = "delivered"
    elif not webhook:
        state = "no_webhook"
    else:
        state = "retrying" if e.attempts else "pending"
    delivery: dict[str, Any] = {"state": state, "attempts": e.attempts}
    if e.delivered_at is not None:
        delivery["delivered_at"] = e.delivered_at
    else:
        delivery["next_attempt_at"] = e.next_attempt_at
    if e.last_error is not None:
        delivery["last_error"] = e.last_error
    out["delivery"] = delivery
    return out


# --- decode -------------------------------------------------------------------------------


def scid_text(scid: int) -> str:
    """A short channel id as CLN writes it: block x transaction x output."""
    return f"{scid >> 40}x{(scid >> 16) & 0xFFFFFF}x{scid & 0xFFFF}"


def paths_json(paths: Sequence[BlindedPath]) -> list[dict[str, Any]]:
    """Blinded paths as CLN's ``decode`` shows them (``offer_paths``, ``invreq_paths``,
    ``invoice_paths``): the first node as ``first_node_id`` or ``first_scid`` and
    ``first_scid_dir``, then ``first_path_key`` and the hops under ``path``."""
    out = []
    for p in paths:
        d: dict[str, Any] = {}
        if p.first_node_id is not None:
            d["first_node_id"] = p.first_node_id.hex()
        else:
            assert p.first_scid is not None  # the core gives one or the other
            d["first_scid"] = scid_text(p.first_scid)
            d["first_scid_dir"] = p.first_scid_dir
        d["first_path_key"] = p.first_path_key.hex()
        d["path"] = [
            {
                "blinded_node_id": h.blinded_node_id.hex(),
                "encrypted_recipient_data": h.encrypted_recipient_data.hex(),
            }
            for h in p.hops
        ]
        out.append(d)
    return out


def blindedpay_json(pay: Sequence[BlindedPayInfo]) -> list[dict[str, Any]]:
    """``invoice_blindedpay`` as CLN's ``decode`` writes it."""
    return [
        {
            "fee_base_msat": p.fee_base_msat,
            "fee_proportional_millionths": p.fee_proportional_millionths,
            "cltv_expiry_delta": p.cltv_expiry_delta,
            "htlc_minimum_msat": p.htlc_minimum_msat,
            "htlc_maximum_msat": p.htlc_maximum_msat,
            "features": p.features.hex(),
        }
        for p in pay
    ]


def _hex(b: bytes) -> str:
    return b.hex()


def _same(x: Any) -> Any:
    return x


Field = tuple[str, str, Callable[[Any], Any]]

# decode's fields in CLN's order: (JSON name, attribute, conversion).
# offer_amount is special (its name depends on offer_currency) and handled inline.
_OFFER_FIELDS: tuple[Field, ...] = (
    ("offer_chains", "offer_chains", lambda cs: [c.hex() for c in cs]),
    ("offer_metadata", "offer_metadata", _hex),
)
_OFFER_REST: tuple[Field, ...] = (
    ("offer_description", "description", _same),
    ("offer_issuer", "issuer", _same),
    ("offer_features", "offer_features", _hex),
    ("offer_absolute_expiry", "absolute_expiry", _same),
    ("offer_quantity_max", "offer_quantity_max", _same),
    ("offer_paths", "offer_paths", paths_json),
    ("offer_issuer_id", "offer_issuer_id", _hex),
)
_FIELDS: tuple[Field, ...] = (
    *_OFFER_REST,
    ("invreq_metadata", "metadata", _hex),
    ("invreq_payer_id", "payer_id", _hex),
    ("invreq_chain", "chain", _hex),
    ("invreq_amount_msat", "amount_msat", _same),
    ("invreq_features", "features", _hex),
    ("invreq_quantity", "quantity", _same),
    ("invreq_payer_note", "payer_note", _same),
    ("invreq_paths", "paths", paths_json),
    ("invreq_bip_353_name", "bip353_name", lambda n: {"name": n[0], "domain": n[1]}),
)

# What decode says of a signature that is not right, in CLN's words: (field, text). An
# unsigned request answering no offer is valid (BOLT 12 writes it so) and gets no warning.
_SIGNATURE_WARNINGS: dict[str, tuple[str, str]] = {
    "missing": ("warning_missing_invoice_request_signature", "Missing Signature"),
    "invalid": ("warning_invalid_invoice_request_signature", "Bad Signature"),
}


def _unknown(records: list[tuple[int, bytes]]) -> list[dict[str, Any]]:
    """Unknown odd records as CLN's decode lists them."""
    return [{"type": t, "length": len(v), "value": v.hex()} for t, v in records]


def _offer_fields(out: dict[str, Any], r: bolt12.InvoiceRequest | bolt12.Offer) -> None:
    """The offer fields before the description, in CLN's order."""
    for key, attr, conv in _OFFER_FIELDS:
        if (value := getattr(r, attr)) is not None:
            out[key] = conv(value)
    if r.offer_currency is not None:
        out["offer_currency"] = r.offer_currency
        if r.offer_amount is not None:
            out["offer_amount"] = r.offer_amount
    elif r.offer_amount is not None:
        out["offer_amount_msat"] = r.offer_amount


def decode_json(r: bolt12.InvoiceRequest, signature: str = "valid") -> dict[str, Any]:
    """CLN's ``decode`` object for an invoice_request (schema ``decode.json``); ``signature``
    is what :func:`bolt12.inspect_invoice_request` found of it. ``valid`` comes last, as
    CLN writes it."""
    out: dict[str, Any] = {"type": "bolt12 invoice_request"}
    _offer_fields(out, r)
    for key, attr, conv in _FIELDS:
        if (value := getattr(r, attr)) is not None:
            out[key] = conv(value)
    warning = _SIGNATURE_WARNINGS.get(signature)
    if warning is not None:
        out[warning[0]] = warning[1]
    elif r.signature is not None:
        out["signature"] = r.signature.hex()
    if unknown := r.unknown_records:
        out["unknown_invoice_request_tlvs"] = _unknown(unknown)
    out["valid"] = warning is None
    return out


def decode_offer_json(o: bolt12.Offer) -> dict[str, Any]:
    """CLN's ``decode`` object for a valid offer (``lno1...``)."""
    out: dict[str, Any] = {"type": "bolt12 offer", "offer_id": o.offer_id.hex()}
    _offer_fields(out, o)
    for key, attr, conv in _OFFER_REST:
        if (value := getattr(o, attr)) is not None:
            out[key] = conv(value)
    if unknown := o.unknown_records:
        out["unknown_offer_tlvs"] = _unknown(unknown)
    out["valid"] = True
    return out


_INVOICE_FIELDS: tuple[Field, ...] = (
    ("offer_description", "offer_description", _same),
    ("offer_issuer", "offer_issuer", _same),
    ("offer_absolute_expiry", "offer_absolute_expiry", _same),
    ("invreq_metadata", "invreq_metadata", _hex),
    ("invreq_payer_id", "invreq_payer_id", _hex),
    ("invreq_chain", "invreq_chain", _hex),
    ("invreq_amount_msat", "invreq_amount", _same),
    ("invoice_paths", "paths", paths_json),
    ("invoice_blindedpay", "blindedpay", blindedpay_json),
    ("invoice_created_at", "created_at", _same),
    ("invoice_relative_expiry", "relative_expiry", _same),
    ("invoice_payment_hash", "payment_hash", _hex),
    ("invoice_amount_msat", "amount_msat", _same),
    ("invoice_fallbacks", "fallbacks", _hex),
    ("invoice_features", "features", _hex),
    ("invoice_node_id", "node_id", _hex),
    ("signature", "signature", _hex),
)


def decode_invoice_json(r: bolt12.Invoice) -> dict[str, Any]:
    """CLN's ``decode`` object for a valid BOLT 12 invoice (the fields invreq reads)."""
    out: dict[str, Any] = {"type": "bolt12 invoice"}
    for key, attr, conv in _INVOICE_FIELDS:
        if (value := getattr(r, attr)) is not None:
            out[key] = conv(value)
    out["invreq_id"] = r.invreq_id.hex()
    if unknown := r.unknown_records:
        out["unknown_invoice_tlvs"] = _unknown(unknown)
    out["valid"] = True
    return out
