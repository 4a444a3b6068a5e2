"""BOLT 12 byte layer: the public face of the native core ``invreq._core``.

Everything here runs in Rust (``rust/invreq-core``), the network table and its BOLT 12 rule
(a request for bitcoin omits ``invreq_chain``) included; this module only names and
documents it. Errors are the classes of :mod:`invreq.errors`:
``DecodeError`` (a string or stream breaks a rule), ``SignatureError`` (a signature does not
verify), ``InvalidFieldError`` (a builder value cannot be encoded).

Typical use::

    unsigned = UnsignedInvoiceRequest(metadata=os.urandom(16), description="ATM withdrawal",
                                      amount_msat=1_000_000, payer_id=key33)
    signed = unsigned.with_signature(sign(unsigned.digest))   # verified before it returns
    signed.bolt12      # 'lnr1...'
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
    UnsignedInvoice,
    UnsignedInvoiceRequest,
    chain_for_network,
    chains,
    decode_invoice,
    decode_invoice_request,
    decode_string,
    encode_string,
    encode_tlv_stream,
    merkle_root,
    network_for_chain,
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
    "Invoice",
    "InvoiceRequest",
    "UnsignedInvoice",
    "UnsignedInvoiceRequest",
    "chain_for_network",
    "decode_invoice",
    "decode_invoice_request",
    "decode_string",
    "encode_string",
    "encode_tlv_stream",
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

#: Network name -> 32-byte chain hash as it appears on the wire (REFERENCE §1).
CHAINS: dict[str, bytes] = dict(chains())
#: The networks invreq serves, in CLN's order.
NETWORKS: tuple[str, ...] = tuple(CHAINS)

