"""The benchmark harness runs: the load generator in both of its modes against a real
ceiling server (benches/ceiling.py), and the report's target lines from its rows.

A smoke test only: no figure is checked (speed is measured by ``make bench``, never in the
tests), only that each mode answers with the fields the report reads, every request is
answered, and the open loop sends what was due.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benches"))
import e2e  # noqa: E402  (benches/ is not a package)


@pytest.fixture(scope="module")
def loadgen() -> Path:
    # Built here as `make bench` builds it (a no-op when it is up to date).
    subprocess.run(
        ["cargo", "build", "--release", "--locked", "-q", "-p", "invreq-loadgen"],
        cwd=ROOT,
        check=True,
    )
    assert e2e.LOADGEN.exists()
    return e2e.LOADGEN


@pytest.fixture(scope="module")
def ceiling(loadgen: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[e2e.Proc]:
    work = tmp_path_factory.mktemp("bench")
    with e2e.running(e2e.start_ceiling(work, "bare", "asyncio+json")) as proc:
        yield proc


@pytest.fixture
def body(tmp_path: Path) -> Path:
    path = tmp_path / "body.json"
    path.write_text('{"jsonrpc":"2.0","id":1,"method":"x","params":{"n":"{n}"}}')
    return path


@pytest.mark.parametrize("transport", ["http", "unix"])
def test_the_closed_loop_answers_every_request_with_the_fields_the_report_reads(
    ceiling: e2e.Proc, body: Path, transport: str
) -> None:
    r = e2e.load([ceiling.targets[transport]], body, connections=2, duration=0.5)
    assert r["requests"] > 0 and r["errors"] == 0
    for key in ("rps", "p50_us", "p90_us", "p99_us", "p999_us", "max_us"):
        assert r[key] >= 0
    assert "offered_rps" not in r


@pytest.mark.parametrize("transport", ["http", "unix"])
def test_the_open_loop_sends_every_request_due_in_the_window(
    ceiling: e2e.Proc, body: Path, transport: str
) -> None:
    # 200 req/s for 1 s: 200 requests are due in the measured window, and every one is
    # sent and counted, late or not (what the server could not keep up with is latency,
    # never a lower offered rate).
    r = e2e.load([ceiling.targets[transport]], body, connections=4, duration=1.0, rate=200.0)
    assert r["offered_rps"] == 200.0
    assert r["requests"] + r["errors"] == 200
    assert r["errors"] == 0
    assert r["p50_us"] <= r["p99_us"] <= r["p999_us"] <= r["max_us"]


def test_open_loop_rows_and_targets_are_reported(ceiling: e2e.Proc, body: Path) -> None:
    bare = e2e.CEILINGS[("bare", e2e.INVREQ_STACK)]  # the ratios' reference: invreq's stack
    rows = [
        e2e.Row(bare, "constant reply", "http", 64, 1000.0, 1.0, 2.0, 0, 1000),
        e2e.Row("invreq", "invoicerequest", "http", 64, 500.0, 1.0, 2.0, 0, 500),
        e2e.Row("invreq batch 50", "invoicerequest", "http", 4, 900.0, 1.0, 2.0, 0, 900, None, 50),
    ]
    opened: list[e2e.OpenLoop] = []
    e2e.measure_open(
        opened,
        "bare",
        "constant reply",
        "http",
        [ceiling.targets["http"]],
        body,
        100.0,
        0.5,
        shares=(0.5,),
    )
    assert [o.offered_rps for o in opened] == [50.0]
    row = vars(opened[0])
    # The target reads invreq's own row, not the rows that show its floors at the same rates.
    opened = [
        e2e.OpenLoop(**{**row, "server": e2e.STRIPPED_OPEN, "method": "invoicerequest"}),
        e2e.OpenLoop(**{**row, "server": "invreq", "method": "invoicerequest", "p99_ms": 4.5}),
    ]
    text = "\n".join(e2e.targets(rows, [], opened, 64))
    assert "0.50 x (500 / 1000 req/s)" in text
    assert "0.90 x (900 at 4 connections / 1000)" in text
    assert text.count("open loop at 50% of invreq's maximum") == 1
    assert "| open loop at 50% of invreq's maximum: p99 ≤ 5 ms | 4.50 ms at 50 req/s" in text


def test_without_lightningd_the_cln_peer_row_is_skipped_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LIGHTNINGD", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no lightningd on it
    assert e2e.start_cln(tmp_path) is None
    assert e2e.CLN_SKIPPED[-1] == "no lightningd (set LIGHTNINGD, or put it on PATH)"
