"""BOLT 12 byte layer: the public face of the native core ``invreq._core``.

Everything here runs in Rust (``rust/invreq-core``); this module only names it, documents it
and adds the network table. Errors are the classes of :mod:`invreq.errors`:
``DecodeError`` (a string or stream breaks a rule), ``SignatureError`` (a signature does not
verify), ``InvalidFieldError`` (a builder value cannot be encoded).

Typical use::

    unsigned = UnsignedInvoiceRequest(metadata=os.urandom(16), description="ATM withdrawal",
                                      amount_msat=1_000_000, payer_id=key33)
    signed = unsigned.with_signature(sign(unsigned.digest))   # verified before it returns
    signed.bolt12      # 'lnr1...', signed: what CLN's readers need
    signed.bolt12_unsigned   # the same request without signature: what LDK's readers need
    decode_invoice_request(signed.bolt12).invreq_id == signed.invreq_id

An invoice answering it (``lni1...``) leads back to it::

    invoice = decode_invoice(s)               # every reader rule, signature by node_id
    invoice.invreq_id == signed.invreq_id      # the request it answers
    invoice.expires_at                         # created_at + (relative_expiry or 7200)

``UnsignedInvoice(signed.tlv_stream, ...)`` builds one, for tests and tools playing the payee.
"""

from __future__ import annotations

from invreq._core import (
    Invoice,
    InvoiceRequest,
    Offer,
    UnsignedInvoice,
    UnsignedInvoiceRequest,
    chains,
    decode_invoice,
    decode_invoice_request,
    decode_offer,
    decode_string,
    encode_string,
    encode_tlv_stream,
    inspect_invoice_request,
    merkle_root,
    parse_invoice,
    parse_invoice_request,
    parse_tlv_stream,
    signature_digest,
    tagged_hash,
    verify_signature,
)

__all__ = [
    "CHAINS",
    "INVOICE_HRP",
    "INVOICE_REQUEST_HRP",
    "NETWORKS",
    "OFFER_HRP",
    "Invoice",
    "InvoiceRequest",
    "Offer",
    "UnsignedInvoice",
    "UnsignedInvoiceRequest",
    "bolt12_unsigned",
    "chain_for_network",
    "decode_invoice",
    "decode_invoice_request",
    "decode_offer",
    "decode_string",
    "encode_string",
    "encode_tlv_stream",
    "inspect_invoice_request",
    "merkle_root",
    "network_for_chain",
    "parse_invoice",
    "parse_invoice_request",
    "parse_tlv_stream",
    "signature_digest",
    "tagged_hash",
    "verify_signature",
]

INVOICE_REQUEST_HRP = "lnr"
INVOICE_HRP = "lni"
OFFER_HRP = "lno"

#: Network name -> 32-byte chain hash as it appears on the wire (REFERENCE §1).
CHAINS: dict[str, bytes] = dict(chains())
#: The networks invreq serves, in CLN's order.
NETWORKS: tuple[str, ...] = tuple(CHAINS)


def chain_for_network(network: str) -> bytes | None:
    """The ``invreq_chain`` to write for ``network``: ``None`` for bitcoin (BOLT 12 says to
    omit it), the chain hash otherwise. Raises ``KeyError`` for an unknown network."""
    chain = CHAINS[network]
    return None if network == "bitcoin" else chain


def network_for_chain(chain: bytes | None) -> str | None:
    """The network of an ``invreq_chain`` value (``None`` means bitcoin); ``None`` if unknown."""
    if chain is None:
        return "bitcoin"
    for name, value in CHAINS.items():
        if value == chain:
            return name
    return None


def bolt12_unsigned(signed: str) -> str | None:
    """The form of one of our ``lnr1...`` strings without its signature (same ``invreq_id``):
    BOLT 12's form of a request answering no offer, what LDK-based wallets read; CLN's readers
    need the signed one. ``None`` for a request answering an offer, which must stay signed.
    The string was checked when it was made, so only its structure is read again."""
    return decode_invoice_request(signed, verify=False).bolt12_unsigned
