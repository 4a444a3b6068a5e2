"""The pure-Python-core variant of the service, for the end-to-end benchmark only.

`python benches/oracle_core.py serve ...` runs `invreq serve` with the native core swapped
for the pure-Python oracle of tests/oracle: building, merkle hashing, bech32 and decoding
run in Python; BIP-340 signing and verification stay in C (coincurve) in both variants, so
the comparison isolates the byte layer. The product never imports this.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import oracle
from coincurve import PublicKeyXOnly
from invreq import bolt12
from invreq.errors import DecodeError, SignatureError


def _verify(digest: bytes, signature: bytes, payer_id: bytes) -> None:
    if not PublicKeyXOnly(payer_id[1:]).verify(signature, digest):
        raise SignatureError("signature does not verify")


class OracleInvoiceRequest:
    """The attributes the service reads from a decoded request."""

    def __init__(self, stream: bytes, fields: dict[int, bytes]) -> None:
        self.tlv_stream = stream
        self.bolt12 = oracle.encode_string("lnr", stream)
        self.invreq_id = oracle.invreq_id(stream)
        self.signature = fields[240]
        self.metadata = fields[0]
        self.payer_id = fields[88]
        self.chain = fields.get(80)
        self.amount_msat = int.from_bytes(fields[82], "big")
        self.description = fields[10].decode() if 10 in fields else None
        self.issuer = fields[18].decode() if 18 in fields else None
        self.absolute_expiry = int.from_bytes(fields[14], "big") if 14 in fields else None
        self.features = fields.get(84)
        self.quantity = int.from_bytes(fields[86], "big") if 86 in fields else None
        self.payer_note = fields[89].decode() if 89 in fields else None
        self.paths = None
        self.bip353_name = None
        self.offer_chains = None
        self.offer_metadata = fields.get(4)
        self.offer_currency = fields[6].decode() if 6 in fields else None
        self.offer_amount = int.from_bytes(fields[8], "big") if 8 in fields else None
        self.offer_features = None
        self.offer_quantity_max = None
        self.offer_paths = None
        self.offer_issuer_id = fields.get(22)
        self.unknown_records = [(t, v) for t, v in fields.items() if t >= 1_000_000_000]
        # Without the signature, as the core gives it; none for a request answering an
        # offer (one with offer_paths, 16, or offer_issuer_id, 22), which must stay signed.
        records = oracle.parse_tlv_stream(stream)
        self.bolt12_unsigned = (
            None
            if any(t in (16, 22) for t, _ in records)
            else oracle.encode_string(
                "lnr",
                oracle.encode_tlv_stream([(t, v) for t, v in records if not 240 <= t <= 1000]),
            )
        )


class OracleUnsigned(oracle.UnsignedInvoiceRequest):
    def __init__(self, *, paths: list[Any] | None = None, **fields: Any) -> None:
        # The benchmark serves without a CLN backend: requests carry no blinded path.
        if paths:
            raise NotImplementedError("the oracle core builds requests without paths")
        super().__init__(**fields)

    def with_signature(self, signature: bytes) -> OracleInvoiceRequest:
        payer_id = dict(self.records)[88]
        _verify(self.digest, signature, payer_id)
        stream = self.signed_stream(signature)
        return OracleInvoiceRequest(stream, dict(oracle.parse_tlv_stream(stream)))


def decode_invoice_request(s: str, *, verify: bool = True) -> OracleInvoiceRequest:
    try:
        fields = oracle.decode_invoice_request_fields(s)
        _, stream = oracle.decode_string(s)
        unsigned = oracle.encode_tlv_stream(
            [(t, v) for t, v in oracle.parse_tlv_stream(stream) if not 240 <= t <= 1000]
        )
        if verify:
            root = oracle.merkle_root(unsigned)
            _verify(
                oracle.signature_digest("invoice_request", "signature", root),
                fields[240],
                fields[88],
            )
    except oracle.OracleError as e:
        raise DecodeError(str(e)) from None
    return OracleInvoiceRequest(stream, fields)


def install() -> None:
    patched: Any = bolt12
    patched.UnsignedInvoiceRequest = OracleUnsigned
    patched.decode_invoice_request = decode_invoice_request


if __name__ == "__main__":
    install()
    from invreq.cli import main

    sys.exit(main(sys.argv[1:]))
