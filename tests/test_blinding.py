"""Route blinding through the binding: BOLT 4's vectors byte for byte, build-then-decrypt
round trips (Hypothesis), invoice requests carrying ``invreq_paths``, and ``decode``'s JSON
form of them (CLN schema ``decode.json``: ``first_node_id`` or ``first_scid`` +
``first_scid_dir``, ``first_path_key``, ``path`` of ``blinded_node_id`` +
``encrypted_recipient_data``)."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from coincurve import PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from invreq import bolt12
from invreq.errors import DecodeError, InvalidFieldError
from invreq.views import decode_json

VECTORS = Path(__file__).parent / "vectors" / "bolt04"
PAYER = PrivateKey(b"\x11" * 32)

settings.register_profile("invreq", max_examples=300, deadline=None)
settings.load_profile("invreq")


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


def _node(secret: bytes) -> bytes:
    return PrivateKey(secret).public_key.format()


def _check(hop: dict[str, Any], got: bolt12.HopSecrets) -> None:
    alias = hop["alias"]
    want = {
        "path_key": got.path_key,
        "E": got.path_key,
        "shared_secret": got.shared_secret,
        "ss": got.shared_secret,
        "rho": got.rho,
        "blinded_node_id": got.blinded_node_id,
        "encrypted_data": got.encrypted_recipient_data,
        "encrypted_recipient_data": got.encrypted_recipient_data,
    }
    seen = 0
    for name, value in want.items():
        if name in hop:
            assert value.hex() == hop[name], f"{alias} {name}"
            seen += 1
    assert seen >= 5, f"{alias}: too few values checked"


def test_route_blinding_vector() -> None:
    v = _load("route-blinding-test.json")
    hops = v["generate"]["hops"]
    got: list[bolt12.HopSecrets] = []
    for pair in (hops[0:2], hops[2:4]):
        e0 = bytes.fromhex(pair[0]["session_key"])
        got += bolt12.blind_hops(
            e0, [(bytes.fromhex(h["node_id"]), bytes.fromhex(h["encoded_tlvs"])) for h in pair]
        )
    for hop, g in zip(hops, got, strict=True):
        _check(hop, g)
        assert g.path_key_secret.hex() == hop["path_privkey"]
    route = v["route"]
    assert route["first_path_key"] == got[0].path_key.hex()
    for r, g in zip(route["hops"], got, strict=True):
        assert r["blinded_node_id"] == g.blinded_node_id.hex()
        assert r["encrypted_data"] == g.encrypted_recipient_data.hex()
    # Unblinding, node by node, with the path key each is handed.
    for u, r, g in zip(v["unblind"]["hops"], route["hops"], hops, strict=True):
        out = bolt12.decrypt_hop(
            bytes.fromhex(u["node_privkey"]),
            bytes.fromhex(u["path_key"]),
            bytes.fromhex(r["encrypted_data"]),
        )
        assert out.shared_secret.hex() == g["shared_secret"]
        assert out.blinded_node_secret.hex() == u["blinded_privkey"]
        assert out.plaintext.hex() == u["decrypted_data"]
        assert out.next_path_key.hex() == u.get("next_path_key_override", u["next_path_key"])
    eve = bolt12.decrypt_hop(
        bytes.fromhex(v["unblind"]["hops"][3]["node_privkey"]),
        bytes.fromhex(v["unblind"]["hops"][3]["path_key"]),
        bytes.fromhex(route["hops"][3]["encrypted_data"]),
    )
    assert eve.path_id == bytes.fromhex("deadbeef")
    assert eve.unknown_records == [(65535, b"\x06\xc1")]
    assert eve.payment_constraints is not None


def test_onion_message_vector() -> None:
    v = _load("blinded-onion-message-onion-test.json")
    hops = v["generate"]["hops"]
    ids = [_node(bytes([b]) * 32) for b in (0x41, 0x42, 0x43, 0x44)]
    plain = [bytes.fromhex(h["encrypted_data_tlv"]) for h in hops]
    got = bolt12.blind_hops(bytes.fromhex(hops[0]["path_key_secret"]), [(ids[0], plain[0])])
    got += bolt12.blind_hops(
        bytes.fromhex(hops[1]["path_key_secret"]), list(zip(ids[1:], plain[1:], strict=True))
    )
    for hop, g in zip(hops, got, strict=True):
        _check(hop, g)
        assert g.path_key_secret.hex() == hop["path_key_secret"]
    assert v["route"]["first_node_id"] == ids[0].hex()
    assert v["route"]["first_path_key"] == got[0].path_key.hex()
    for r, g in zip(v["route"]["hops"], got, strict=True):
        assert r["blinded_node_id"] == g.blinded_node_id.hex()
        assert r["encrypted_recipient_data"] == g.encrypted_recipient_data.hex()
    dec = v["decrypt"]["hops"]
    for i, d in enumerate(dec):
        msg = bytes.fromhex(d["onion_message"])
        path_key = msg[2:35]  # after the type, 513
        assert path_key == got[i].path_key
        data = got[i].encrypted_recipient_data
        out = bolt12.decrypt_hop(bytes.fromhex(d["privkey"]), path_key, data)
        if "next_node_id" in d:
            assert out.next_node_id == bytes.fromhex(d["next_node_id"])
            assert out.next_path_key == bytes.fromhex(dec[i + 1]["onion_message"])[2:35]
            assert out.path_id is None
        else:
            assert out.path_id == bytes.fromhex(hops[3]["tlvs"]["path_id"])


secrets32 = st.binary(min_size=32, max_size=32).filter(
    lambda b: 0 < int.from_bytes(b, "big") < 2**256 - 2**129  # within the curve order
)


@given(
    dest=secrets32,
    intro=st.none() | secrets32,
    pid=st.binary(min_size=32, max_size=32),
    session=secrets32,
    pad=st.booleans(),
)
def test_built_paths_decrypt_to_their_path_id(
    dest: bytes, intro: bytes | None, pid: bytes, session: bytes, pad: bool
) -> None:
    dest_id = _node(dest)
    intro_id = None if intro is None else _node(intro)
    if intro_id == dest_id:
        return
    path = bolt12.build_blinded_path(dest_id, pid, session, introduction=intro_id, pad=pad)
    assert path.first_node_id == (intro_id or dest_id)
    assert bolt12.parse_blinded_paths(path.to_bytes()) == [path]
    key = path.first_path_key
    if intro is not None:
        first = bolt12.decrypt_hop(intro, key, path.hops[0].encrypted_recipient_data)
        assert first.next_node_id == dest_id
        assert first.path_id is None
        assert _node(first.blinded_node_secret) == path.hops[0].blinded_node_id
        key = first.next_path_key
    last = bolt12.decrypt_hop(dest, key, path.hops[-1].encrypted_recipient_data)
    assert last.path_id == pid
    assert _node(last.blinded_node_secret) == path.hops[-1].blinded_node_id
    if pad:
        assert {len(h.encrypted_recipient_data) for h in path.hops} == {37 + 16}


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=1, max_size=64))
def test_path_id_is_hmac_sha256(secret: bytes, metadata: bytes) -> None:
    pid = bolt12.path_id(secret, metadata)
    assert pid == hmac.new(secret, metadata, hashlib.sha256).digest()
    assert bolt12.path_id_matches(secret, metadata, pid)
    assert not bolt12.path_id_matches(secret, metadata + b"x", pid)


def _request(
    paths: list[bolt12.BlindedPath], metadata: bytes = b"\x07" * 16
) -> bolt12.InvoiceRequest:
    unsigned = bolt12.UnsignedInvoiceRequest(
        metadata=metadata,
        description="ATM withdrawal",
        amount_msat=1_000_000,
        payer_id=PAYER.public_key.format(),
        paths=paths,
    )
    return unsigned.with_signature(PAYER.sign_schnorr(unsigned.digest, aux_randomness=bytes(32)))


NODE_SECRET = b"\x44" * 32
INTRO_SECRET = b"\x43" * 32


def test_a_request_carries_a_path_that_decrypts_to_its_path_id() -> None:
    secret = b"\x77" * 32
    metadata = b"\x07" * 16
    pid = bolt12.path_id(secret, metadata)
    path = bolt12.new_blinded_path(_node(NODE_SECRET), pid, introduction=_node(INTRO_SECRET))
    signed = _request([path], metadata)
    bare = _request([], metadata)
    assert bare.paths is None
    assert signed.invreq_id != bare.invreq_id  # the path is inside the signed records
    decoded = bolt12.decode_invoice_request(signed.bolt12)
    assert decoded.paths == [path]
    got = decoded.paths[0]
    hops = [h.encrypted_recipient_data for h in got.hops]
    first = bolt12.decrypt_hop(INTRO_SECRET, got.first_path_key, hops[0])
    last = bolt12.decrypt_hop(NODE_SECRET, first.next_path_key, hops[1])
    assert last.path_id is not None
    assert bolt12.path_id_matches(secret, decoded.metadata, last.path_id)
    # Two fresh paths to the same node differ (fresh session secret), yet both decrypt.
    again = bolt12.new_blinded_path(_node(NODE_SECRET), pid)
    assert again.first_path_key != path.first_path_key


def test_decode_shows_invreq_paths_as_cln_does() -> None:
    path = bolt12.build_blinded_path(_node(NODE_SECRET), b"\x01" * 32, b"\x05" * 32)
    scid_path = bolt12.BlindedPath(
        first_scid=(700_000 << 40) | (12 << 16) | 3,
        first_scid_dir=1,
        first_path_key=path.first_path_key,
        hops=path.hops,
    )
    out = decode_json(bolt12.decode_invoice_request(_request([path, scid_path]).bolt12))
    hop = path.hops[0]
    assert out["invreq_paths"] == [
        {
            "first_node_id": _node(NODE_SECRET).hex(),
            "first_path_key": path.first_path_key.hex(),
            "path": [
                {
                    "blinded_node_id": hop.blinded_node_id.hex(),
                    "encrypted_recipient_data": hop.encrypted_recipient_data.hex(),
                }
            ],
        },
        {
            "first_scid": "700000x12x3",
            "first_scid_dir": 1,
            "first_path_key": path.first_path_key.hex(),
            "path": [
                {
                    "blinded_node_id": hop.blinded_node_id.hex(),
                    "encrypted_recipient_data": hop.encrypted_recipient_data.hex(),
                }
            ],
        },
    ]
    keys = list(out)
    assert keys.index("invreq_payer_id") < keys.index("invreq_paths") < keys.index("signature")


def test_bad_arguments_name_what_is_wrong() -> None:
    dest = _node(NODE_SECRET)
    cases: list[tuple[Any, str]] = [
        (lambda: bolt12.build_blinded_path(dest, b"\x01" * 16, b"\x05" * 32), "path_id"),
        (lambda: bolt12.build_blinded_path(dest[:32], b"\x01" * 32, b"\x05" * 32), "destination"),
        (lambda: bolt12.build_blinded_path(dest, b"\x01" * 32, bytes(32)), "session_secret"),
        (lambda: bolt12.new_blinded_path(dest, b"\x01" * 32, introduction=dest), "introduction"),
        (lambda: bolt12.path_id(b"\x01" * 31, b"m"), "path_secret"),
        (lambda: bolt12.decrypt_hop(bytes(32), dest, b""), "node_secret"),
        (lambda: bolt12.BlindedPath(first_path_key=dest, hops=[]), "first_node_id"),
    ]
    for call, field in cases:
        with pytest.raises(InvalidFieldError, match=rf"^{field}"):
            call()
    path = bolt12.build_blinded_path(dest, b"\x01" * 32, b"\x05" * 32)
    with pytest.raises(DecodeError, match="does not decrypt"):
        bolt12.decrypt_hop(INTRO_SECRET, path.first_path_key, path.hops[0].encrypted_recipient_data)
    with pytest.raises(DecodeError, match="zero hops"):
        bolt12.parse_blinded_paths(path.to_bytes()[:66] + b"\x00")
    with pytest.raises(DecodeError, match="truncated"):
        bolt12.parse_blinded_paths(path.to_bytes()[:-1])
    with pytest.raises(DecodeError, match="no blinded paths"):
        bolt12.parse_blinded_paths(b"")
    with pytest.raises(InvalidFieldError, match=r"^paths"):
        bolt12.encode_blinded_paths([])
