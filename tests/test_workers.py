"""`invreq serve --workers N`: several processes serve the same unix socket and HTTP port."""

from __future__ import annotations

import json
import signal
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from _service_fixtures import Server
from invreq import bolt12
from invreq.config import Config, ConfigError


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_two_workers_on_postgresql_share_the_sockets(tmp_path: Path, pg_dsn: str) -> None:
    s = Server(tmp_path / "data", db=pg_dsn, extra_args=["--workers", "2"]).start()
    assert s.proc is not None
    workers = children(s.proc.pid)
    try:
        assert len(workers) == 2
        rune = s.rpc.call("createrune", {})["rune"]
        before = {w: cpu_ticks(w) for w in workers}

        def over_http(i: int) -> str:
            body = json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": i,
                    "method": "invoicerequest",
                    "params": [1000 + i, f"w{i}"],
                }
            ).encode()
            req = urllib.request.Request(s.url, data=body, headers={"Rune": rune})
            with urllib.request.urlopen(req, timeout=20) as r:
                return str(json.loads(r.read())["result"]["invreq_id"])

        def over_unix(i: int) -> str:
            return str(s.rpc.call("invoicerequest", [2000 + i, f"u{i}"])["invreq_id"])

        with ThreadPoolExecutor(16) as pool:
            made = list(pool.map(over_http, range(150))) + list(pool.map(over_unix, range(150)))
        listed = s.rpc.call("listinvoicerequests")["invoicerequests"]
        assert {x["invreq_id"] for x in listed} == set(made)
        for x in listed[:5]:
            assert bolt12.decode_invoice_request(x["bolt12"]).invreq_id.hex() == x["invreq_id"]
        assert all(cpu_ticks(w) > before[w] for w in workers), "both workers served requests"
        assert len({s.rpc.call("getinfo")["id"] for _ in range(10)}) == 1  # one payer key
    finally:
        assert s.stop(signal.SIGTERM) == 0, s.output()
    assert not s.socket_path.exists()
    for w in workers:
        assert not Path(f"/proc/{w}").exists() or "zombie" in Path(f"/proc/{w}/status").read_text()


def test_a_worker_that_cannot_start_stops_them_all(tmp_path: Path) -> None:
    s = Server(
        tmp_path / "data", db="postgresql://nobody@127.0.0.1:1/none", extra_args=["--workers", "2"]
    )
    with pytest.raises(RuntimeError, match="cannot connect to PostgreSQL"):
        s.start()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"workers": 0}, "--workers"),
        ({"workers": 2, "signer": "hwi"}, "one process"),
        ({"workers": 2, "metrics_port": 9100}, "--metrics-port"),
    ],
)
def test_workers_options_that_cannot_work_are_refused(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Config(**changes).validate()  # type: ignore[arg-type]
