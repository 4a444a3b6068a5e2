"""Start-up refusals and clean shutdown of a real `invreq serve` process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from _service_fixtures import Server
from invreq import bolt12

SEED_EXAMPLE = (
    "lnr1qqgypua5g7rp293k00s66ayvnv26czst2d5k6urvv5s8getnw3gzqp3zderpzxstt8927ynqg044h0egcd8n5h3n9g0u0v4h8n"
    "cc3yg02gps7sjqtqssytfzxcs2xkdy0lml0tzy0jzugmyj8kjn8zfzrgq9fsgurc72x82e7pq947t0ks7a4yejz8w79x4zj25s3pu6"
    "zrnw2e0v2ugdescpcqsq307z4p2dlxe92fv7xd43qut0pjkg4y094hupqyhsj8dlhvmmfng6sv"
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_shutdown_finishes_in_flight_requests_and_loses_nothing(tmp_path: Path, sig: int) -> None:
    s = Server(tmp_path / "data").start()
    acknowledged: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        for i in range(1000):
            try:
                r: dict[str, Any] = s.rpc.call("invoicerequest", [1000 + i, "drain"])
            except Exception:  # refused once the server stops accepting
                return
            with lock:
                acknowledged.append(r["invreq_id"])

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    while len(acknowledged) < 50:
        time.sleep(0.01)
    assert s.stop(sig) == 0, s.stderr
    for t in threads:
        t.join()
    assert not s.socket_path.exists(), "the socket is removed on a clean exit"
    s.start()
    try:
        listed = {x["invreq_id"] for x in s.rpc.call("listinvoicerequests")["invoicerequests"]}
        assert set(acknowledged) <= listed, "every acknowledged request survives"
    finally:
        assert s.stop() == 0


def run_serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invreq.cli", "serve", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_non_loopback_http_host_is_refused_at_start(tmp_path: Path) -> None:
    p = run_serve("--data-dir", str(tmp_path), "--http-host", "0.0.0.0")
    assert p.returncode == 2 and "--http-host: 0.0.0.0 is not a loopback address" in p.stderr


def test_world_readable_secret_stops_the_start_with_the_fix(tmp_path: Path) -> None:
    s = Server(tmp_path / "data").start()
    assert s.stop() == 0
    secret = tmp_path / "data" / "regtest" / "payer_secret"
    os.chmod(secret, 0o644)
    p = run_serve("--data-dir", str(tmp_path / "data"), "--network", "regtest", "--http-port", "0")
    assert p.returncode == 1
    assert f"chmod 600 {secret}" in p.stderr


def test_a_second_server_on_the_same_socket_is_refused(tmp_path: Path) -> None:
    s = Server(tmp_path / "data").start()
    try:
        p = run_serve(
            "--data-dir", str(tmp_path / "data"), "--network", "regtest", "--http-port", "0"
        )
        assert p.returncode != 0 and "already listening" in p.stderr
        assert s.rpc.call("getinfo")["network"] == "regtest"
    finally:
        assert s.stop() == 0


def test_stale_socket_from_a_crash_is_replaced(tmp_path: Path) -> None:
    s = Server(tmp_path / "data").start()
    s.kill()  # SIGKILL: the socket file stays behind
    assert s.socket_path.exists()
    s.start()
    try:
        assert s.rpc.call("getinfo")["network"] == "regtest"
    finally:
        assert s.stop() == 0


def test_network_dir_and_socket_are_owner_only(tmp_path: Path) -> None:
    s = Server(tmp_path / "data", network="testnet4").start()
    try:
        assert (s.socket_path.stat().st_mode & 0o777) == 0o600
        assert (s.socket_path.parent.stat().st_mode & 0o777) == 0o700
        r = s.rpc.call("invoicerequest", [1, "t4"])
        assert bolt12.decode_invoice_request(r["bolt12"]).chain == bolt12.CHAINS["testnet4"]
    finally:
        assert s.stop() == 0


def test_bitcoin_requests_carry_no_chain_record(tmp_path: Path) -> None:
    s = Server(tmp_path / "data", network="bitcoin").start()
    try:
        r = s.rpc.call("invoicerequest", [1, "main"])
        assert bolt12.decode_invoice_request(r["bolt12"]).chain is None
    finally:
        assert s.stop() == 0


def test_decode_command_line() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "invreq.cli", "decode", SEED_EXAMPLE], capture_output=True, text=True
    )
    assert p.returncode == 0 and '"offer_description": "Simple test"' in p.stdout
    p = subprocess.run(
        [sys.executable, "-m", "invreq.cli", "decode", SEED_EXAMPLE[:-3]],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 1 and p.stderr.startswith("invreq decode: ")
