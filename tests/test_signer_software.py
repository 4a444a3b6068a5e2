"""The software signer: key file handling and BIP-340 signatures CLN would make."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from invreq import bolt12
from invreq.errors import StartupError
from invreq.signers.software import SECRET_NAME, SoftwareSigner


def test_secret_is_created_owner_only_and_reused(tmp_path: Path) -> None:
    a = SoftwareSigner.load_or_create(tmp_path)
    mode = stat.S_IMODE(os.stat(tmp_path / SECRET_NAME).st_mode)
    assert mode == 0o600
    assert (tmp_path / SECRET_NAME).stat().st_size == 32
    b = SoftwareSigner.load_or_create(tmp_path)
    assert a.payer_id == b.payer_id and len(a.payer_id) == 33
    assert list(tmp_path.iterdir()) == [tmp_path / SECRET_NAME]  # no temporary left


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_secret_readable_by_others_is_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    SoftwareSigner.load_or_create(tmp_path)
    os.chmod(tmp_path / SECRET_NAME, mode)
    with pytest.raises(StartupError, match=r"chmod 600 .*payer_secret"):
        SoftwareSigner.load_or_create(tmp_path)


def test_truncated_secret_is_refused(tmp_path: Path) -> None:
    p = tmp_path / SECRET_NAME
    p.write_bytes(b"\x01" * 31)
    os.chmod(p, 0o600)
    with pytest.raises(StartupError, match="expected 32 bytes"):
        SoftwareSigner.load_or_create(tmp_path)


async def test_reproduces_the_bolt12_vector_signature(vectors_dir: Path) -> None:
    """signature-test.json's invoice_request is signed by Bob (privkey 0x4242...) with an
    all-zero auxiliary random: the signer must give the same 64 bytes."""
    vec = json.loads((vectors_dir / "bolt12" / "signature-test.json").read_text())[-1]
    signed = bolt12.decode_invoice_request(vec["bolt12"])
    signer = SoftwareSigner(b"\x42" * 32)
    assert signer.payer_id == signed.payer_id
    records = bolt12.parse_tlv_stream(signed.tlv_stream)
    unsigned_stream = bolt12.encode_tlv_stream([(t, v) for t, v in records if not 240 <= t <= 1000])
    digest = bolt12.signature_digest(
        "invoice_request", "signature", bolt12.merkle_root(unsigned_stream)
    )
    sig = await signer.sign_invoice_request(unsigned_stream, digest)
    assert sig == signed.signature
