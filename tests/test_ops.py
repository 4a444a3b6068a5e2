"""Operating invreq: Prometheus metrics (scraped and parsed), logs in CLN's line format, log
rotation on SIGHUP, and no secrets in the logs."""

from __future__ import annotations

import re
import signal
import time
import urllib.request
from pathlib import Path

import pytest
from _service_fixtures import Server, free_port
from prometheus_client.parser import text_string_to_metric_families
from pyln.client import RpcError

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO |WARNING|ERROR) [\w.]+: ")


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_metrics_are_served_and_count_what_happened(tmp_path: Path) -> None:
    port = free_port()
    s = Server(tmp_path / "data", extra_args=["--metrics-port", str(port)]).start()
    try:
        a = s.rpc.call("invoicerequest", [1000, "m1"])
        s.rpc.call("invoicerequest", [2000, "m2"])
        s.rpc.call("disableinvoicerequest", [a["invreq_id"]])
        with pytest.raises(RpcError):
            s.rpc.call("invoicerequest", {"amount": "nope", "description": "x"})
        m = scrape(port)
        ok = ("invreq_requests_total", (("code", "ok"), ("method", "invoicerequest")))
        bad = ("invreq_requests_total", (("code", "-32602"), ("method", "invoicerequest")))
        assert m[ok] == 2 and m[bad] == 1
        assert m[("invreq_request_seconds_count", (("method", "invoicerequest"),))] == 3
        assert m[("invreq_signer_seconds_count", ())] == 2
        assert m[("invreq_store_group_size_count", ())] >= 2  # two inserts and a disable
        assert m[("invreq_store_commit_seconds_count", ())] >= 2
        assert m[("invreq_records", (("state", "active"),))] == 1
        assert m[("invreq_records", (("state", "disabled"),))] == 1
        assert m[("invreq_open_connections", (("transport", "unix"),))] >= 0
    finally:
        assert s.stop() == 0, s.output()


def test_metrics_are_off_by_default(tmp_path: Path) -> None:
    s = Server(tmp_path / "data").start()
    try:
        assert "metrics on" not in s.output()
    finally:
        assert s.stop() == 0


def test_log_file_lines_rotation_on_sighup_and_no_secrets(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "invreq.log"
    s = Server(tmp_path / "data", extra_args=["--log-file", str(log)]).start()
    try:
        with pytest.raises(RpcError):
            s.rpc.call("invoicerequest", {"amount": 0, "description": "first"})
        time.sleep(0.2)
        first = log.read_text()
        assert "request failed: method=invoicerequest code=-32602 amount:" in first
        for line in first.splitlines():
            assert LINE.match(line), line
        log.rename(log.with_suffix(".log.1"))
        assert s.proc is not None
        s.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        with pytest.raises(RpcError):
            s.rpc.call("frobnicate", {})
        time.sleep(0.2)
        second = log.read_text()
        assert "request failed: method=- code=-32601 Unknown command 'frobnicate'" in second
        assert "frobnicate" not in log.with_suffix(".log.1").read_text()
        secret = (tmp_path / "data" / "regtest" / "payer_secret").read_bytes().hex()
        assert secret not in first + second
    finally:
        assert s.stop() == 0, s.output()
