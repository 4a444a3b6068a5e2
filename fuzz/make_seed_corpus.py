"""Rebuild fuzz/corpus/ (the committed seed corpus) from the spec vectors in tests/vectors.

Run from the repository root with the extension built: `.venv/bin/python fuzz/make_seed_corpus.py`.
Crashes found later are added next to these seeds by hand (`fuzz/corpus/<target>/crash-*`)
so every one stays a test case forever.
"""

import hashlib
import json
from pathlib import Path

from invreq import bolt12

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors"
CORPUS = ROOT / "fuzz" / "corpus"


def strings() -> list[str]:
    out: list[str] = []
    out += [v["string"] for v in json.loads((VECTORS / "bolt12/format-string-test.json").read_text())]
    out += [v["bolt12"] for v in json.loads((VECTORS / "bolt12/offers-test.json").read_text())]
    out += [v["bolt12"] for v in json.loads((VECTORS / "bolt12/signature-test.json").read_text()) if "bolt12" in v]
    return out


def put(target: str, data: bytes) -> None:
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def blinded_path_seeds() -> list[bytes]:
    """Paths from BOLT 4's vectors and our own builder, an sciddir entry, and hop plaintexts."""
    out: list[bytes] = []
    for name in ("route-blinding-test.json", "blinded-onion-message-onion-test.json"):
        v = json.loads((VECTORS / "bolt04" / name).read_text())
        hops = [
            bolt12.BlindedHop(
                bytes.fromhex(h["blinded_node_id"]),
                bytes.fromhex(h.get("encrypted_data") or h["encrypted_recipient_data"]),
            )
            for h in v["route"]["hops"]
        ]
        key = bytes.fromhex(v["route"]["first_path_key"])
        first = bytes.fromhex(v["route"]["first_node_id"])
        path = bolt12.BlindedPath(first_node_id=first, first_path_key=key, hops=hops)
        scid = bolt12.BlindedPath(first_scid=1729, first_scid_dir=0, first_path_key=key, hops=hops)
        out += [path.to_bytes(), bolt12.encode_blinded_paths([path, scid])]
        for h in v["generate"]["hops"]:
            out.append(bytes.fromhex(h.get("encoded_tlvs") or h["encrypted_data_tlv"]))
    dest, intro = bytes.fromhex(v["route"]["hops"][0]["blinded_node_id"]), first
    for introduction in (None, intro):
        for pad in (True, False):
            p = bolt12.build_blinded_path(dest, b"\x01" * 32, b"\x05" * 32, introduction=introduction, pad=pad)
            out.append(p.to_bytes())
    return out


def main() -> None:
    for data in blinded_path_seeds():
        put("blinded_path", data)
    for s in strings():
        put("decode_string", s.encode())
        put("invoice_request", s.encode())
        try:
            _, data = bolt12.decode_string(s)
        except ValueError:
            continue
        put("invoice_request", data)
        put("tlv_stream", data)


if __name__ == "__main__":
    main()
