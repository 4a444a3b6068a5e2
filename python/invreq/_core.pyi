"""Type stubs of the native extension (rust/invreq-py). Public API: invreq.bolt12."""

from collections.abc import Sequence
from typing import final

__version__: str
__all__ = [
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
    "__version__",
    "blind_hops",
    "build_blinded_path",
    "chain_for_network",
    "chains",
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

def merkle_root(tlv_stream: bytes) -> bytes:
    """Merkle root of the records outside 240..=1000; DecodeError if the stream is malformed."""

def tagged_hash(tag: bytes, msg: bytes) -> bytes:
    """SHA256(SHA256(tag) || SHA256(tag) || msg)."""

def signature_digest(messagename: str, fieldname: str, merkle_root: bytes) -> bytes:
    """H("lightning" || messagename || fieldname, merkle_root): what a BIP-340 signature signs.
    InvalidFieldError unless merkle_root is 32 bytes."""

def encode_string(hrp: str, data: bytes) -> str:
    """bech32 without checksum, lower case."""

def decode_string(s: str) -> tuple[str, bytes]:
    """(lower-case hrp, data); DecodeError on any rule of BOLT 12 "Encoding"."""

def parse_tlv_stream(stream: bytes) -> list[tuple[int, bytes]]:
    """Records of a TLV stream, checked for BOLT 1 framing."""

def encode_tlv_stream(records: Sequence[tuple[int, bytes]]) -> bytes:
    """Encodes records; types must strictly increase."""

def with_signatures(
    unsigned: list[UnsignedInvoiceRequest], signatures: list[bytes]
) -> list[tuple[str, str | None] | None]:
    """Each request with its signature, verified and attached, in one call: its (bolt12,
    bolt12_unsigned) strings, or None where the signature does not verify."""

def verify_signature(digest: bytes, signature: bytes, pubkey: bytes) -> None:
    """Raises SignatureError unless the BIP-340 signature of digest verifies for pubkey
    (33 bytes)."""

def chains() -> list[tuple[str, bytes]]: ...
def chain_for_network(network: str) -> bytes | None:
    """The invreq_chain to write: None for bitcoin (omitted); KeyError for an unknown network."""

def network_for_chain(chain: bytes | None) -> str | None:
    """The network an invreq_chain names (None means bitcoin); None if unknown."""

@final
class UnsignedInvoiceRequest:
    def __new__(
        cls,
        *,
        metadata: bytes,
        description: str,
        amount_msat: int,
        payer_id: bytes,
        absolute_expiry: int | None = None,
        issuer: str | None = None,
        chain: bytes | None = None,
        paths: Sequence[BlindedPath] = ...,
        unknown_records: Sequence[tuple[int, bytes]] = ...,
    ) -> UnsignedInvoiceRequest: ...
    @property
    def tlv_stream(self) -> bytes: ...
    @property
    def merkle_root(self) -> bytes: ...
    @property
    def digest(self) -> bytes: ...
    @property
    def invreq_id(self) -> bytes: ...
    @property
    def bolt12(self) -> str:
        """The lnr1 string without signature: BOLT 12's form of a request answering no offer."""
    def with_signature(self, signature: bytes) -> InvoiceRequest: ...

@final
class InvoiceRequest:
    @property
    def bolt12(self) -> str: ...
    @property
    def bolt12_unsigned(self) -> str | None:
        """The string without its signature (same invreq_id); None when answering an offer."""
    @property
    def tlv_stream(self) -> bytes: ...
    @property
    def invreq_id(self) -> bytes: ...
    @property
    def signature(self) -> bytes | None:
        """None for an unsigned request answering no offer (BOLT 12 writes it so)."""
    @property
    def metadata(self) -> bytes: ...
    @property
    def payer_id(self) -> bytes: ...
    @property
    def chain(self) -> bytes | None: ...
    @property
    def amount_msat(self) -> int | None: ...
    @property
    def description(self) -> str | None: ...
    @property
    def issuer(self) -> str | None: ...
    @property
    def absolute_expiry(self) -> int | None: ...
    @property
    def features(self) -> bytes | None: ...
    @property
    def quantity(self) -> int | None: ...
    @property
    def payer_note(self) -> str | None: ...
    @property
    def paths(self) -> list[BlindedPath] | None:
        """invreq_paths."""
    @property
    def bip353_name(self) -> tuple[str, str] | None: ...
    @property
    def offer_chains(self) -> list[bytes] | None: ...
    @property
    def offer_metadata(self) -> bytes | None: ...
    @property
    def offer_currency(self) -> str | None: ...
    @property
    def offer_amount(self) -> int | None: ...
    @property
    def offer_features(self) -> bytes | None: ...
    @property
    def offer_paths(self) -> list[BlindedPath] | None: ...
    @property
    def offer_quantity_max(self) -> int | None: ...
    @property
    def offer_issuer_id(self) -> bytes | None: ...
    @property
    def unknown_records(self) -> list[tuple[int, bytes]]: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

def decode_invoice_request(s: str, *, verify: bool = True) -> InvoiceRequest:
    """Decode an lnr1 string with every reader rule; verify=False skips curve checks and
    the signature."""

def parse_invoice_request(tlv_stream: bytes, *, verify: bool = True) -> InvoiceRequest: ...
def inspect_invoice_request(s: str) -> tuple[InvoiceRequest, str]:
    """Decode an lnr1 string with every reader rule but the signature's, and say what the
    signature is: "valid", "unsigned" (absent, answering no offer: fine), "missing" (absent,
    answering an offer) or "invalid"."""

@final
class Offer:
    @property
    def bolt12(self) -> str: ...
    @property
    def offer_id(self) -> bytes: ...
    @property
    def offer_chains(self) -> list[bytes] | None: ...
    @property
    def offer_metadata(self) -> bytes | None: ...
    @property
    def offer_currency(self) -> str | None: ...
    @property
    def offer_amount(self) -> int | None: ...
    @property
    def description(self) -> str | None: ...
    @property
    def issuer(self) -> str | None: ...
    @property
    def offer_features(self) -> bytes | None: ...
    @property
    def absolute_expiry(self) -> int | None: ...
    @property
    def offer_quantity_max(self) -> int | None: ...
    @property
    def offer_paths(self) -> list[BlindedPath] | None: ...
    @property
    def offer_issuer_id(self) -> bytes | None: ...
    @property
    def unknown_records(self) -> list[tuple[int, bytes]]: ...

def decode_offer(s: str) -> Offer:
    """Decode an lno1 string with the reader rules of an offer."""

@final
class UnsignedInvoice:
    """An invoice answering an invoice_request, waiting for the signature of ``node_id``.

    For tests and tools playing the payee. Every record of the signed request stream but its
    signature is copied. ``paths`` is the raw ``invoice_paths`` value (one or more encoded
    blinded paths); without it, a placeholder one-hop path whose points are all
    ``path_node_id`` (default ``node_id``) is written. One ``blinded_payinfo`` made of the
    ``fee_*``, ``cltv_expiry_delta`` and ``htlc_*`` values is written per path
    (``htlc_maximum_msat`` defaults to ``amount_msat``). ``unknown_records`` are odd types
    in 160..=239. InvalidFieldError for any value a reader would refuse, including an
    ``amount_msat`` other than the request's ``invreq_amount``.
    """

    def __new__(
        cls,
        invoice_request_stream: bytes,
        *,
        created_at: int,
        payment_hash: bytes,
        amount_msat: int,
        node_id: bytes,
        paths: bytes | None = None,
        path_node_id: bytes | None = None,
        relative_expiry: int | None = None,
        features: bytes | None = None,
        fee_base_msat: int = 0,
        fee_proportional_millionths: int = 0,
        cltv_expiry_delta: int = 0,
        htlc_minimum_msat: int = 0,
        htlc_maximum_msat: int | None = None,
        unknown_records: Sequence[tuple[int, bytes]] = ...,
    ) -> UnsignedInvoice: ...
    @property
    def tlv_stream(self) -> bytes:
        """The unsigned TLV stream."""
    @property
    def merkle_root(self) -> bytes: ...
    @property
    def digest(self) -> bytes:
        """H("lightning" || "invoice" || "signature", merkle_root): what node_id signs."""
    @property
    def invreq_id(self) -> bytes:
        """The invreq_id of the request answered."""
    def with_signature(self, signature: bytes) -> Invoice:
        """The signed invoice; SignatureError unless signature verifies for node_id."""

@final
class BlindedPayInfo:
    @property
    def fee_base_msat(self) -> int: ...
    @property
    def fee_proportional_millionths(self) -> int: ...
    @property
    def cltv_expiry_delta(self) -> int: ...
    @property
    def htlc_minimum_msat(self) -> int: ...
    @property
    def htlc_maximum_msat(self) -> int: ...
    @property
    def features(self) -> bytes: ...

@final
class Invoice:
    """A signed invoice (``lni1``) that passed every reader rule needing only itself.

    Left to the caller: the chain, the expiry (``expires_at``), and finding the request
    answered by ``invreq_id``.
    """

    @property
    def bolt12(self) -> str: ...
    @property
    def tlv_stream(self) -> bytes: ...
    @property
    def invreq_id(self) -> bytes:
        """SHA256 of the records copied from the request: the id of the request answered."""
    @property
    def signature(self) -> bytes: ...
    @property
    def invreq_metadata(self) -> bytes | None: ...
    @property
    def invreq_payer_id(self) -> bytes | None: ...
    @property
    def invreq_chain(self) -> bytes | None: ...
    @property
    def invreq_amount(self) -> int | None: ...
    @property
    def offer_description(self) -> str | None: ...
    @property
    def offer_issuer(self) -> str | None: ...
    @property
    def offer_absolute_expiry(self) -> int | None: ...
    @property
    def amount_msat(self) -> int:
        """invoice_amount (equal to invreq_amount when the request has one)."""
    @property
    def created_at(self) -> int:
        """invoice_created_at, seconds since 1970."""
    @property
    def relative_expiry(self) -> int | None:
        """invoice_relative_expiry as written (absent means 7200 s)."""
    @property
    def expires_at(self) -> int:
        """created_at + (relative_expiry or 7200)."""
    @property
    def payment_hash(self) -> bytes: ...
    @property
    def node_id(self) -> bytes:
        """invoice_node_id, the key that signed the invoice."""
    @property
    def paths(self) -> list[BlindedPath]:
        """invoice_paths."""
    @property
    def blindedpay(self) -> list[BlindedPayInfo]:
        """One entry per path, in the order of paths."""
    @property
    def features(self) -> bytes | None: ...
    @property
    def fallbacks(self) -> bytes | None:
        """invoice_fallbacks as written, not interpreted."""
    @property
    def unknown_records(self) -> list[tuple[int, bytes]]:
        """Unknown odd records (request's and invoice's), byte for byte, by type."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

def decode_invoice(s: str, *, verify: bool = True) -> Invoice:
    """Decode an lni1 string with every reader rule; verify=False skips curve checks and
    the signature."""

def parse_invoice(tlv_stream: bytes, *, verify: bool = True) -> Invoice: ...

ONIONMSG_INVOICE_ERROR: int

def reply_onion(
    own_node_id: bytes,
    reply_path: BlindedPath,
    final_records: Sequence[tuple[int, bytes]],
    *,
    session_key: bytes,
    path_key_secret: bytes,
) -> tuple[bytes, bytes]:
    """(path_key, onion_message_packet) carrying final_records over reply_path, from the
    node own_node_id (BOLT 4), for CLN's injectonionmessage. InvalidFieldError for a bad
    key, a path entered at a short channel id, or payloads too large for an onion."""

def invoice_error(message: str) -> bytes:
    """A BOLT 12 invoice_error TLV stream with only its error field."""

@final
class BlindedHop:
    def __new__(cls, blinded_node_id: bytes, encrypted_recipient_data: bytes) -> BlindedHop: ...
    @property
    def blinded_node_id(self) -> bytes: ...
    @property
    def encrypted_recipient_data(self) -> bytes: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class BlindedPath:
    """A ``blinded_path`` (BOLT 4): entered at ``first_node_id``, or at end
    ``first_scid_dir`` (0 or 1) of channel ``first_scid``. The constructor refuses what a
    reader would (InvalidFieldError, DecodeError)."""

    def __new__(
        cls,
        *,
        first_path_key: bytes,
        hops: Sequence[BlindedHop],
        first_node_id: bytes | None = None,
        first_scid: int | None = None,
        first_scid_dir: int | None = None,
    ) -> BlindedPath: ...
    @property
    def first_node_id(self) -> bytes | None: ...
    @property
    def first_scid(self) -> int | None:
        """block << 40 | transaction << 16 | output."""
    @property
    def first_scid_dir(self) -> int | None: ...
    @property
    def first_path_key(self) -> bytes: ...
    @property
    def hops(self) -> list[BlindedHop]: ...
    def to_bytes(self) -> bytes:
        """The path on the wire."""
    def __eq__(self, other: object, /) -> bool: ...

def encode_blinded_paths(paths: Sequence[BlindedPath]) -> bytes:
    """Paths back to back, as invreq_paths carries them."""

def parse_blinded_paths(data: bytes, *, verify: bool = True) -> list[BlindedPath]:
    """Reads paths back to back; DecodeError on zero hops, truncation, bad points."""

def build_blinded_path(
    destination: bytes,
    path_id: bytes,
    session_secret: bytes,
    *,
    introduction: bytes | None = None,
    pad: bool = True,
) -> BlindedPath:
    """A path to ``destination`` (through ``introduction`` if given) whose final hop carries
    the 32-byte ``path_id``, blinded from ``session_secret`` (deterministic)."""

@final
class HopSecrets:
    @property
    def path_key_secret(self) -> bytes: ...
    @property
    def path_key(self) -> bytes: ...
    @property
    def shared_secret(self) -> bytes: ...
    @property
    def rho(self) -> bytes: ...
    @property
    def blinded_node_id(self) -> bytes: ...
    @property
    def encrypted_recipient_data(self) -> bytes: ...

def blind_hops(session_secret: bytes, hops: Sequence[tuple[bytes, bytes]]) -> list[HopSecrets]:
    """BOLT 4's writer algorithm over (node_id, plaintext) pairs, from e_0 = session_secret."""

@final
class ReceivedHop:
    @property
    def shared_secret(self) -> bytes: ...
    @property
    def blinded_node_secret(self) -> bytes: ...
    @property
    def plaintext(self) -> bytes: ...
    @property
    def next_path_key(self) -> bytes: ...
    @property
    def padding(self) -> bytes | None: ...
    @property
    def short_channel_id(self) -> int | None: ...
    @property
    def next_node_id(self) -> bytes | None: ...
    @property
    def path_id(self) -> bytes | None: ...
    @property
    def next_path_key_override(self) -> bytes | None: ...
    @property
    def payment_relay(self) -> bytes | None: ...
    @property
    def payment_constraints(self) -> bytes | None: ...
    @property
    def allowed_features(self) -> bytes | None: ...
    @property
    def unknown_records(self) -> list[tuple[int, bytes]]: ...

def decrypt_hop(
    node_secret: bytes, path_key: bytes, encrypted_recipient_data: bytes
) -> ReceivedHop:
    """Decrypts a hop's data with the node's secret; DecodeError if it is not for this node
    and path key, or not a valid encrypted_data_tlv."""

def path_id(path_secret: bytes, metadata: bytes) -> bytes:
    """HMAC-SHA256(path_secret, metadata)."""

def path_id_matches(path_secret: bytes, metadata: bytes, candidate: bytes) -> bool:
    """Constant-time check that candidate is path_id(path_secret, metadata)."""
