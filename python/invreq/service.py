"""The commands: what each RPC method does, given parameters that are already valid.

Parameters arrive parsed by :mod:`invreq.params` (so every value here is in range); the
answers are the JSON objects of CLN's schemas, key order included. The pipeline of
``invoicerequest`` is: build the unsigned stream (native core) -> approval by a device
(``--approver hwi``) -> signature from the signer -> verified by the core before it is
attached -> durable in the store -> reply. A failure at any step stores nothing.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from invreq import __version__, bolt12, paging
from invreq.approval import approval_text, verify_approval
from invreq.errors import Bolt12Error, InvalidParams, SignatureError, SignerError
from invreq.store.base import ListQuery, Record, RequestStore

if TYPE_CHECKING:
    from invreq.blindpaths import PathMaker
    from invreq.metrics import Metrics
    from invreq.signers.base import Approver, Signer

__all__ = ["Service", "decode_json", "paths_json"]

METADATA_LEN = 16  # bytes of CSPRNG per request (REFERENCE §1), as CLN writes


@dataclasses.dataclass
class Service:
    network: str
    store: RequestStore
    signer: Signer
    clock: Callable[[], float] = time.time
    approver: Approver | None = None
    metrics: Metrics | None = None
    #: With a CLN backend: every request carries a blinded path to the paying node.
    paths: PathMaker | None = None

    async def invoicerequest(
        self,
        amount: int,
        description: str,
        issuer: str | None = None,
        label: str | None = None,
        absolute_expiry: int | None = None,
        single_use: bool = True,
    ) -> dict[str, Any]:
        metadata = secrets.token_bytes(METADATA_LEN)
        unsigned = bolt12.UnsignedInvoiceRequest(
            metadata=metadata,
            # Inside the signed records: invreq_id and the signature cover the path.
            paths=[] if self.paths is None else self.paths.paths(metadata),
            description=description,
            amount_msat=amount,
            payer_id=self.signer.payer_id,
            absolute_expiry=absolute_expiry,
            issuer=issuer,
            chain=bolt12.chain_for_network(self.network),
        )
        invreq_id = unsigned.invreq_id.hex()
        approval = None
        if self.approver is not None:
            approval = await self._approve(
                approval_text(
                    network=self.network,
                    amount_msat=amount,
                    description=description,
                    issuer=issuer,
                    absolute_expiry=absolute_expiry,
                    invreq_id=invreq_id,
                ),
                invreq_id,
            )
        started = time.perf_counter()
        signature = await self.signer.sign_invoice_request(unsigned.tlv_stream, unsigned.digest)
        if self.metrics is not None:
            self.metrics.signer.observe(time.perf_counter() - started)
        try:
            signed = unsigned.with_signature(signature)
        except SignatureError as e:
            # A signer that answers with a wrong signature is broken or hostile: nothing is
            # stored, and the caller learns that the signer, not its input, failed.
            raise SignerError(f"signer returned an invalid signature: {e}") from e
        record = Record(
            invreq_id=invreq_id,
            bolt12=signed.bolt12,
            label=label,
            active=True,
            single_use=single_use,
            used=False,
            created_at=int(self.clock()),
            payer_key=self.signer.key_id,
            approval=approval,
        )
        await self.store.insert(record)
        return record.to_json()

    async def _approve(self, text: str, invreq_id: str) -> dict[str, Any]:
        """The approver's evidence, accepted only if it is a signature over exactly
        ``text`` (which names this request by position) by the key it reports."""
        assert self.approver is not None
        evidence = await self.approver.approve(text)
        try:
            pubkey = bytes.fromhex(evidence["pubkey"])
        except (KeyError, TypeError, ValueError):
            raise SignerError("approver returned no public key with its approval") from None
        problem = None if evidence.get("message") == text else "it is not over the text sent"
        problem = problem or verify_approval(evidence, invreq_id=invreq_id, pubkey=pubkey)
        if problem is not None:
            raise SignerError(f"approval refused: {problem}")
        return evidence

    async def listinvoicerequests(
        self,
        invreq_id: str | None = None,
        active_only: bool = False,
        index: str | None = None,
        start: int | None = None,
        limit: int | None = None,
        label: str | None = None,
    ) -> dict[str, Any]:
        if (start is not None or limit is not None) and index is None:
            # CLN's list commands: `start` and `limit` only make sense along an index.
            raise InvalidParams("index: required when start or limit is given")
        records = await self.store.list(
            ListQuery(
                invreq_id=invreq_id,
                active_only=active_only,
                label=label,
                start=start,
                limit=paging.store_limit(limit),
            )
        )
        # One page at most, even without `limit` (see invreq.paging).
        return {"invoicerequests": paging.page(_listed(r) for r in records)}

    async def disableinvoicerequest(self, invreq_id: str) -> dict[str, Any]:
        """CLN's answer; when payments of this request are still pending (they may yet
        complete: CLN aborts the node in that case, we tell the truth instead), plus
        ``payments_in_flight``, their payment_ids. Only then: otherwise the reply is exactly
        CLN's (its schema allows no other field). Each of them is stamped
        ``request_disabled_at`` in the same transaction."""
        record, pending = await self.store.disable_noting_payments(invreq_id, int(self.clock()))
        out = record.to_json()
        if pending:
            out["payments_in_flight"] = [p.payment_id for p in pending]
        return out

    async def decode(self, string: str) -> dict[str, Any]:
        prefix = string.strip().lower()[:4]
        try:
            if prefix == bolt12.INVOICE_HRP + "1":
                return decode_invoice_json(bolt12.decode_invoice(string))
            if prefix == bolt12.OFFER_HRP + "1":
                return decode_offer_json(bolt12.decode_offer(string))
            return decode_json(*bolt12.inspect_invoice_request(string))
        except Bolt12Error as e:
            raise InvalidParams(f"string: {e}") from e

    async def getinfo(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.signer.payer_id.hex(),
            "network": self.network,
            "version": __version__,
            "signer": self.signer.key_id.split(":", 1)[0],
            "store": self.store.kind,
        }
        if self.paths is not None:
            # Where payees' invoices go: operators check it against the node's own getinfo.
            out["blinded_path"] = {"node_id": self.paths.node_id.hex()}
            if self.paths.introduction is not None:
                out["blinded_path"]["introduction"] = self.paths.introduction.hex()
        return out


def _listed(r: Record) -> dict[str, Any]:
    out = r.to_json()
    out["created_index"] = r.created_index
    out["created_at"] = r.created_at
    if r.approval is not None:
        out["approval"] = r.approval
    return out


def _hex(b: bytes) -> str:
    return b.hex()


def _same(x: Any) -> Any:
    return x


def _unknown(records: list[tuple[int, bytes]]) -> list[dict[str, Any]]:
    """Unknown odd records as CLN's decode lists them."""
    return [{"type": t, "length": len(v), "value": v.hex()} for t, v in records]


def _scid(scid: int) -> str:
    """A short channel id as CLN writes it: block x transaction x output."""
    return f"{scid >> 40}x{(scid >> 16) & 0xFFFFFF}x{scid & 0xFFFF}"


def paths_json(paths: list[bolt12.BlindedPath]) -> list[dict[str, Any]]:
    """Blinded paths as CLN's ``decode`` shows them (``offer_paths``, ``invreq_paths``,
    ``invoice_paths``): the first node as ``first_node_id`` or ``first_scid`` and
    ``first_scid_dir``, then ``first_path_key`` and the hops under ``path``."""
    out: list[dict[str, Any]] = []
    for p in paths:
        d: dict[str, Any] = {}
        if p.first_node_id is not None:
            d["first_node_id"] = p.first_node_id.hex()
        else:
            assert p.first_scid is not None  # the core gives one or the other
            d["first_scid"] = _scid(p.first_scid)
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


# decode's fields in CLN's order: (JSON name, InvoiceRequest attribute, conversion).
# offer_amount is special (its name depends on offer_currency) and handled inline.
_OFFER_FIELDS: tuple[tuple[str, str, Callable[[Any], Any]], ...] = (
    ("offer_chains", "offer_chains", lambda cs: [c.hex() for c in cs]),
    ("offer_metadata", "offer_metadata", _hex),
)
_OFFER_REST: tuple[tuple[str, str, Callable[[Any], Any]], ...] = (
    ("offer_description", "description", _same),
    ("offer_issuer", "issuer", _same),
    ("offer_features", "offer_features", _hex),
    ("offer_absolute_expiry", "absolute_expiry", _same),
    ("offer_quantity_max", "offer_quantity_max", _same),
    ("offer_paths", "offer_paths", paths_json),
    ("offer_issuer_id", "offer_issuer_id", _hex),
)
_FIELDS: tuple[tuple[str, str, Callable[[Any], Any]], ...] = (
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


_INVOICE_FIELDS: tuple[tuple[str, str, Callable[[Any], Any]], ...] = (
    ("offer_description", "offer_description", _same),
    ("offer_issuer", "offer_issuer", _same),
    ("offer_absolute_expiry", "offer_absolute_expiry", _same),
    ("invreq_metadata", "invreq_metadata", _hex),
    ("invreq_payer_id", "invreq_payer_id", _hex),
    ("invreq_chain", "invreq_chain", _hex),
    ("invreq_amount_msat", "invreq_amount", _same),
    ("invoice_paths", "paths", paths_json),
    ("invoice_blindedpay", "blindedpay", _same),
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
