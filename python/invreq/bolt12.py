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
    signed.bolt12      # 'lnr1...', signed: what CLN's readers need
    signed.bolt12_unsigned   # the same request without signature: what LDK's readers need
    decode_invoice_request(signed.bolt12).invreq_id == signed.invreq_id

An invoice answering it (``lni1...``) leads back to it::

    invoice = decode_invoice(s)               # every reader rule, signature by node_id
    invoice.invreq_id == signed.invreq_id      # the request it answers
    invoice.expires_at                         # created_at + (relative_expiry or 7200)

``UnsignedInvoice(signed.tlv_stream, ...)`` builds one, for tests and tools playing the payee.

Blinded paths (BOLT 4 route blinding, onion-message paths) let a payee send its invoice to a
node we control, which knows the request by the path's ``path_id``::

    pid = path_id(path_secret, metadata)              # HMAC-SHA256, 32 bytes
    path = new_blinded_path(node_id, pid, introduction=public_peer)   # or without
    unsigned = UnsignedInvoiceRequest(metadata=metadata, ..., paths=[path])
    # the node, receiving an invoice over the path, hands us the final hop's path_id:
    path_id_matches(path_secret, invoice.invreq_metadata, pathsecret)   # constant time
    # reading a hop as its node does (tests, and anyone holding the node's secret):
    hop = decrypt_hop(node_secret, path.first_path_key, path.hops[0].encrypted_recipient_data)
    hop.next_node_id, hop.path_id, hop.next_path_key

A refusal goes back to the payee as an ``invoice_error`` in an onion message over the reply
path it gave (BOLT 4; what CLN's ``injectonionmessage`` takes)::

    path_key, packet = reply_onion(own_node_id, reply_path,      # a BlindedPath
                                   [(ONIONMSG_INVOICE_ERROR, invoice_error("why"))],
                                   session_key=os.urandom(32), path_key_secret=os.urandom(32))
"""

from __future__ import annotations

import os

from invreq._core import (
    ONIONMSG_INVOICE_ERROR,
    BlindedHop,
    BlindedPath,
    BlindedPayInfo,
    HopSecrets,
    Invoice,
    InvoiceRequest,
    Offer,
    ReceivedHop,
    UnsignedInvoice,
    UnsignedInvoiceRequest,
    blind_hops,
    build_blinded_path,
    chain_for_network,
    chains,
    decode_invoice,
    decode_invoice_request,
    decode_offer,
    decode_string,
    decrypt_hop,
    encode_blinded_paths,
    encode_string,
    encode_tlv_stream,
    inspect_invoice_request,
    invoice_error,
    merkle_root,
    network_for_chain,
    parse_blinded_paths,
    parse_invoice,
    parse_invoice_request,
    parse_tlv_stream,
    path_id,
    path_id_matches,
    reply_onion,
    signature_digest,
    tagged_hash,
    verify_signature,
    with_signatures,
)
from invreq.errors import InvalidFieldError

__all__ = [
    "CHAINS",
    "INVOICE_HRP",
    "INVOICE_REQUEST_HRP",
    "NETWORKS",
    "OFFER_HRP",
    "ONIONMSG_INVOICE_ERROR",
    "BlindedHop",
    "BlindedPath",
    "BlindedPayInfo",
    "HopSecrets",
    "Invoice",
    "InvoiceRequest",
    "Offer",
    "ReceivedHop",
    "UnsignedInvoice",
    "UnsignedInvoiceRequest",
    "blind_hops",
    "bolt12_unsigned",
    "build_blinded_path",
    "chain_for_network",
    "decode_invoice",
    "decode_invoice_request",
    "decode_offer",
    "decode_string",
    "decrypt_hop",
    "encode_blinded_paths",
    "encode_string",
    "encode_tlv_stream",
    "inspect_invoice_request",
    "invoice_error",
    "merkle_root",
    "network_for_chain",
    "new_blinded_path",
    "parse_blinded_paths",
    "parse_invoice",
    "parse_invoice_request",
    "parse_tlv_stream",
    "path_id",
    "path_id_matches",
    "reply_onion",
    "signature_digest",
    "tagged_hash",
    "verify_signature",
    "with_signatures",
]

INVOICE_REQUEST_HRP = "lnr"
INVOICE_HRP = "lni"
OFFER_HRP = "lno"

#: Network name -> 32-byte chain hash as it appears on the wire (REFERENCE §1).
CHAINS: dict[str, bytes] = dict(chains())
#: The networks invreq serves, in CLN's order.
NETWORKS: tuple[str, ...] = tuple(CHAINS)


def new_blinded_path(
    destination: bytes,
    path_id: bytes,
    *,
    introduction: bytes | None = None,
    pad: bool = True,
) -> BlindedPath:
    """A fresh blinded path to the node ``destination`` whose final hop carries ``path_id``
    (32 bytes), entered through ``introduction`` (a public node that forwards to
    ``destination``) when given. Every hop is padded to one length unless ``pad`` is false.
    The session secret is 32 bytes from the OS CSPRNG, drawn again in the (about 2^-128)
    case that they are not a valid secret key; ``build_blinded_path`` takes one explicitly.
    InvalidFieldError names a bad argument."""
    for _ in range(8):
        secret = os.urandom(32)
        try:
            return build_blinded_path(
                destination, path_id, secret, introduction=introduction, pad=pad
            )
        except InvalidFieldError as e:
            if not str(e).startswith("session_secret:"):
                raise
    raise InvalidFieldError("session_secret: no valid secret in 8 draws from the OS")


def bolt12_unsigned(signed: str) -> str | None:
    """The form of one of our ``lnr1...`` strings without its signature (same ``invreq_id``):
    BOLT 12's form of a request answering no offer, what LDK-based wallets read; CLN's readers
    need the signed one. ``None`` for a request answering an offer, which must stay signed.
    The string was checked when it was made, so only its structure is read again."""
    return decode_invoice_request(signed, verify=False).bolt12_unsigned
