"""Type stubs of the native extension (rust/invreq-py). Public API: invreq.bolt12."""

from collections.abc import Sequence
from typing import Any, final

__version__: str
__all__ = [
    "InvoiceRequest",
    "UnsignedInvoiceRequest",
    "__version__",
    "chains",
    "decode_invoice_request",
    "decode_string",
    "encode_string",
    "encode_tlv_stream",
    "merkle_root",
    "parse_invoice_request",
    "parse_tlv_stream",
    "signature_digest",
    "tagged_hash",
    "verify_signature",
]

def merkle_root(tlv_stream: bytes) -> bytes:
    """Merkle root of the records outside 240..=1000; DecodeError if the stream is malformed."""

def tagged_hash(tag: bytes, msg: bytes) -> bytes:
    """SHA256(SHA256(tag) || SHA256(tag) || msg)."""

def signature_digest(messagename: str, fieldname: str, merkle_root: bytes) -> bytes:
    """H("lightning" || messagename || fieldname, merkle_root): what a BIP-340 signature signs."""

def encode_string(hrp: str, data: bytes) -> str:
    """bech32 without checksum, lower case."""

def decode_string(s: str) -> tuple[str, bytes]:
    """(lower-case hrp, data); DecodeError on any rule of BOLT 12 "Encoding"."""

def parse_tlv_stream(stream: bytes) -> list[tuple[int, bytes]]:
    """Records of a TLV stream, checked for BOLT 1 framing."""

def encode_tlv_stream(records: Sequence[tuple[int, bytes]]) -> bytes:
    """Encodes records; types must strictly increase."""

def verify_signature(digest: bytes, signature: bytes, pubkey: bytes) -> None:
    """Raises SignatureError unless the BIP-340 signature of digest verifies for pubkey
    (33 bytes)."""

def chains() -> list[tuple[str, bytes]]: ...

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
    def with_signature(self, signature: bytes) -> InvoiceRequest: ...

@final
class InvoiceRequest:
    @property
    def bolt12(self) -> str: ...
    @property
    def tlv_stream(self) -> bytes: ...
    @property
    def invreq_id(self) -> bytes: ...
    @property
    def signature(self) -> bytes: ...
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
    def paths(self) -> list[dict[str, Any]] | None: ...
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
    def offer_paths(self) -> list[dict[str, Any]] | None: ...
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
