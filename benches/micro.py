"""Per-call cost of the byte layer through the Python API: native core vs the pure-Python
oracle from tests/oracle, in the same run (issue: native core, deliverable 6).

(a) build + merkle + signature digest + invreq_id + bech32 of a seed-sized request
    (6 records, ~170 bytes), the signature itself excluded (a fixed 64-byte value is
    attached without verification);
(b) decode + validate an lnr string, signature verification excluded.

What one ``invoicerequest`` costs inside the service, without framing or disk (the bounds of
issue 28's targets): building, signing (the software signer) and verifying one request, the
whole ``Service.invoicerequest`` on a SQLite store in memory-backed files (/dev/shm where
there is one), and a batch of 50 through ``Service.invoicerequests`` with the CPU time of
the event loop's thread apart from the process's.

And the JSON-RPC codec, each change alone: a reply encoded by ``rpc.dumps`` (orjson,
invreq.jsoncodec) against the standard library's path it replaced; and a request parsed by
orjson with the checks CLN's rules would need (not adopted: this measures why) against
``rpc.parse`` (the standard library with its hooks).

Usage: python benches/micro.py [--out benches/results/micro.md]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import re
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import oracle
import orjson
from coincurve import PrivateKey
from invreq import bolt12, rpc

KEY = PrivateKey(b"\x42" * 32)
PAYER = KEY.public_key.format()
SIG = bytes(range(64))
SIG_RECORD = b"\xf0\x40" + SIG  # type 240, length 64: appended in order (no experimental types)
FIELDS = dict(
    metadata=bytes(range(16)),
    description="Requesting for invoice",
    amount_msat=10_000_000,
    payer_id=PAYER,
    issuer="clightning store",
)


def native_build() -> str:
    u = bolt12.UnsignedInvoiceRequest(**FIELDS)  # type: ignore[arg-type]
    _ = u.digest, u.invreq_id
    return bolt12.encode_string("lnr", u.tlv_stream + SIG_RECORD)


def oracle_build() -> str:
    o = oracle.UnsignedInvoiceRequest(**FIELDS)  # type: ignore[arg-type]
    return o.bolt12(SIG)  # digest and invreq_id computed by the constructor


def best_us(fn: object, number: int, repeat: int = 7) -> float:
    t = timeit.Timer(fn)  # type: ignore[arg-type]
    return min(t.repeat(repeat=repeat, number=number)) / number * 1e6


REQUEST = (
    b'{"jsonrpc":"2.0","id":1,"method":"invoicerequest",'
    b'"params":{"amount":1000,"description":"bench 12345"}}'
)


#: The end of a member name: a quote, optional whitespace, a colon (every name ends so; a
#: string value holding an escaped quote and a colon can only make the count larger).
_NAME_END = re.compile(rb'"[ \t\r\n]*:')
_SLOW = object()


def orjson_checked(raw: bytes) -> Any:
    """The candidate fast parse: orjson where it reads as the standard library does, i.e. no
    ``\\u`` escape (those strings must be marked), no float (orjson reads an integer beyond
    64 bits as one) and no repeated member name (names in the text = members kept)."""
    if b"\\u" in raw:
        return _SLOW
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _SLOW
    members, todo = 0, [value]
    while todo:
        x = todo.pop()
        if type(x) is dict:
            members += len(x)
            todo.extend(x.values())
        elif type(x) is list:
            todo.extend(x)
        elif type(x) is float:
            return _SLOW
    return value if members == len(_NAME_END.findall(raw)) else _SLOW


def codec_rows() -> list[str]:
    """The codec's two changes, each timed alone against the path it replaced."""
    unsigned = bolt12.UnsignedInvoiceRequest(**FIELDS)  # type: ignore[arg-type]
    signed = unsigned.with_signature(KEY.sign_schnorr(unsigned.digest, bytes(32)))
    result = {
        "invreq_id": unsigned.invreq_id.hex(),
        "active": True,
        "single_use": True,
        "bolt12": signed.bolt12,
        "bolt12_unsigned": signed.bolt12_unsigned,
        "used": False,
        "created_at": 1765000000,
    }
    reply = {"jsonrpc": "2.0", "id": 1, "result": result}
    batch = b"[" + b",".join([REQUEST] * 50) + b"]"
    assert rpc.dumps(reply) == rpc._dumps_stdlib(reply)
    assert orjson_checked(REQUEST) == rpc.parse(REQUEST)
    cases = [
        ("encode an invoicerequest reply (adopted)", rpc._dumps_stdlib, rpc.dumps, reply, 20_000),
        (
            "parse an invoicerequest request (not adopted)",
            rpc.parse,
            orjson_checked,
            REQUEST,
            20_000,
        ),
        ("parse a batch of 50 of them (not adopted)", rpc.parse, orjson_checked, batch, 2_000),
    ]
    lines = [
        "JSON-RPC codec: orjson against the standard library, each change alone.",
        "",
        "| operation | standard library µs/call | orjson µs/call | speed-up |",
        "|---|---:|---:|---:|",
    ]
    for name, old, new, arg, n in cases:
        a, b = best_us(lambda: old(arg), n), best_us(lambda: new(arg), n)  # noqa: B023
        lines.append(f"| {name} | {a:.2f} | {b:.2f} | {a / b:.1f}x |")
    return lines


def request_cost_rows() -> list[str]:
    """One request's parts, then the service's own work per request and per batch item."""
    from invreq.service import Service
    from invreq.signers.software import SoftwareSigner
    from invreq.store.url import open_store

    signer = SoftwareSigner(b"\x42" * 32)
    fields = {**FIELDS, "payer_id": signer.payer_id}
    unsigned = bolt12.UnsignedInvoiceRequest(**fields)  # type: ignore[arg-type]
    signature = signer.sign_digest(unsigned.digest)

    def attach() -> None:
        signed = unsigned.with_signature(signature)
        _ = signed.bolt12, signed.bolt12_unsigned

    def build() -> None:
        bolt12.UnsignedInvoiceRequest(**fields)  # type: ignore[arg-type]

    parts = [
        ("build the unsigned request (native core)", best_us(build, 20_000)),
        (
            "sign it (software signer, coincurve)",
            best_us(lambda: signer.sign_digest(unsigned.digest), 5_000),
        ),
        ("verify the signature and attach it (native core)", best_us(attach, 5_000)),
    ]

    async def service_costs() -> tuple[float, float, float, float]:
        shm = Path("/dev/shm")
        with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as d:
            return await costs_in(Path(d))

    async def costs_in(directory: Path) -> tuple[float, float, float, float]:
        store = open_store(None, directory / "micro.sqlite3")
        await store.open()
        try:
            service = Service(network="regtest", store=store, signer=signer)
            n = 3_000
            for i in range(300):
                await service.invoicerequest(1000, f"warm {i}")
            started = time.perf_counter()
            for i in range(n):
                await service.invoicerequest(1000, f"one {i}")
            one = (time.perf_counter() - started) / n * 1e6
            calls = [{"amount": 1000, "description": f"b {i}"} for i in range(50)]
            for _ in range(10):
                await service.invoicerequests(calls)
            batches = 60
            wall, loop_cpu, cpu = time.perf_counter(), time.thread_time(), time.process_time()
            for _ in range(batches):
                await service.invoicerequests(calls)
            items = batches * len(calls)
            return (
                one,
                (time.perf_counter() - wall) / items * 1e6,
                (time.thread_time() - loop_cpu) / items * 1e6,
                (time.process_time() - cpu) / items * 1e6,
            )
        finally:
            await store.close()

    one, item_wall, item_loop, item_cpu = asyncio.run(service_costs())
    lines = [
        "What one invoicerequest costs inside the service (no framing, no disk: SQLite in "
        "memory-backed files), the floor of every end-to-end row. Best of 7 for the parts; "
        "the service rows are means over 3,000 requests and 60 batches.",
        "",
        "| part | µs |",
        "|---|---:|",
        *(f"| {name} | {us:.1f} |" for name, us in parts),
        f"| `Service.invoicerequest`, one after another (all of the above, the record, "
        f"the store's insert and commit, the reply's object) | {one:.1f} |",
        f"| `Service.invoicerequests`, batches of 50: wall time per item | {item_wall:.1f} |",
        f"| the same: CPU of the event loop's thread per item | {item_loop:.1f} |",
        f"| the same: CPU of the process per item (all threads) | {item_cpu:.1f} |",
    ]
    return lines


def disk_rows(n: int = 2000) -> list[str]:
    """The commit every creation waits for, on this disk: back to back (the floor
    ``make bench`` gives the sequential row) and after the disk was left idle a while, as
    between the requests of one client or of a fixed offered rate. The tail as well as the
    median: every request waits for one commit, so the commit's own p99 bounds the p99 of
    an open-loop row."""
    from e2e import commit_times

    def cell(samples: list[float], q: float) -> str:
        ordered = sorted(samples)
        return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3:.3f}"

    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent.parent) as d:
        cases = [(gap, commit_times(Path(d), n, 700, gap)) for gap in (0, 0.0005, 0.003)]
    return [
        f"One fsync'd SQLite WAL commit of a 700-byte row (`synchronous=FULL`, as the store), "
        f"{n} of them, on the disk of this checkout, against the time the disk was idle "
        "before each.",
        "",
        "| idle before each commit | median ms | p99 ms | p99.9 ms | max ms |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {'none (back to back)' if not g else f'{g * 1e3:g} ms'} "
            f"| {cell(t, 0.5)} | {cell(t, 0.99)} | {cell(t, 0.999)} | {max(t) * 1e3:.3f} |"
            for g, t in cases
        ),
    ]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("benches/results/micro.md"))
    args = ap.parse_args()

    s = native_build()
    assert s == oracle_build(), "native and oracle disagree"
    unsigned = bolt12.UnsignedInvoiceRequest(**FIELDS)  # type: ignore[arg-type]
    signed = unsigned.with_signature(KEY.sign_schnorr(unsigned.digest, bytes(32)))
    good = signed.bolt12
    assert len(unsigned.tlv_stream) + 66 >= 160
    records = len(bolt12.parse_tlv_stream(signed.tlv_stream))

    a_native = best_us(native_build, 20_000)
    a_oracle = best_us(oracle_build, 500)
    b_native = best_us(lambda: bolt12.decode_invoice_request(good, verify=False), 20_000)
    b_oracle = best_us(lambda: oracle.decode_invoice_request_fields(good), 500)
    full = best_us(lambda: bolt12.decode_invoice_request(good), 2_000)

    rows = [
        ("(a) build + merkle + digest + invreq_id + bech32", a_native, a_oracle, "≤ 5 µs, ≥ 20x"),
        ("(b) decode + validate, no signature check", b_native, b_oracle, "≤ 5 µs"),
    ]
    lines = [
        f"Request: {records} records, {len(signed.tlv_stream)} bytes signed. "
        f"Python {platform.python_version()}, {platform.machine()}. Best of 7 runs.",
        "",
        "| operation | native µs/call | pure-Python oracle µs/call | native speed-up | target |",
        "|---|---:|---:|---:|---|",
    ]
    for name, n, o, target in rows:
        lines.append(f"| {name} | {n:.2f} | {o:.1f} | {o / n:.0f}x | {target} |")
    lines.append(f"| decode with BIP-340 verification (for scale) | {full:.2f} | | | |")
    lines += ["", *codec_rows(), "", *request_cost_rows(), "", *disk_rows()]
    table = "\n".join(lines)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        "# Byte layer micro-benchmark\n\nCommand: `make bench-micro` "
        "(`.venv/bin/python benches/micro.py`)\n\n" + table + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
