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


def main() -> None:
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
