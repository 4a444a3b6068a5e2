"""BOLT 12 byte layer: the public face of the native core ``invreq._core``.

Everything here runs in Rust (``rust/invreq-core``); this module only names it, documents it
and adds the network table. Errors are the classes of :mod:`invreq.errors`:
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

A refusal goes back to the payee as an ``invoice_error`` in an onion message over the reply
path it gave (BOLT 4; what CLN's ``injectonionmessage`` takes)::

    path_key, packet = reply_onion(own_node_id, first_node_id, first_path_key,
                                   [(blinded_node_id, encrypted_recipient_data), ...],
                                   [(ONIONMSG_INVOICE_ERROR, invoice_error("why"))],
                                   session_key=os.urandom(32), path_key_secret=os.urandom(32))
"""

from __future__ import annotations

from invreq._core import (
    ONIONMSG_INVOICE_ERROR,
    Invoice,
    InvoiceRequest,
    UnsignedInvoice,
    UnsignedInvoiceRequest,
    chains,
    decode_invoice,
    decode_invoice_request,
    decode_string,
    encode_string,
    encode_tlv_stream,
    invoice_error,
    merkle_root,
    parse_invoice,
    parse_invoice_request,
    parse_tlv_stream,
    reply_onion,
    signature_digest,
    tagged_hash,
    verify_signature,
)

__all__ = [
    "CHAINS",
    "INVOICE_HRP",
    "INVOICE_REQUEST_HRP",
    "NETWORKS",
    "ONIONMSG_INVOICE_ERROR",
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
    "invoice_error",
    "merkle_root",
    "network_for_chain",
    "parse_invoice",
    "parse_invoice_request",
    "parse_tlv_stream",
    "reply_onion",
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


# TEMPORARY, until the blinding branch (route blinding in the core) lands: the same names,
# so the service and the plugin are written against the final API.
def path_id(path_secret: bytes, metadata: bytes) -> bytes:  # pragma: no cover
    import hashlib
    import hmac

    return hmac.new(path_secret, metadata, hashlib.sha256).digest()


def path_id_matches(path_secret: bytes, metadata: bytes, candidate: bytes) -> bool:
    import hmac

    return hmac.compare_digest(path_id(path_secret, metadata), candidate)


def new_blinded_path(
    destination: bytes, path_id: bytes, *, introduction: bytes | None = None
) -> list[object]:
    return []
