"""Hardware signing end to end: `invreq serve` drives unmodified hwilib, which talks to the
reference device over the Jade protocol (tests/_refdevice.py). Both modes, and the faults."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from _refdevice import RefDevice
from _service_fixtures import Server
from coincurve import PublicKey
from invreq import bolt12
from invreq.refdevice.bip32 import ExtendedPrivateKey, parse_path
from invreq.signers.hwi import DEFAULT_KEY_PATH
from invreq.signers.software import SoftwareSigner
from pyln.client import RpcError

SEED = bytes(range(32))
DEVICE = ["--hwi-device-type", "jade", "--hwi-device-path", "tcp:127.0.0.1:30121"]


def derived(path: str) -> ExtendedPrivateKey:
    key = ExtendedPrivateKey.from_seed(SEED)
    for index in parse_path(path):
        key = key.child(index)
    return key


@pytest.fixture
def device(tmp_path: Path) -> Iterator[Callable[..., RefDevice]]:
    seed = tmp_path / "seed"
    seed.write_text(SEED.hex())
    started: list[RefDevice] = []

    def start(*args: str) -> RefDevice:
        for d in started:
            if d.proc is not None and d.proc.poll() is None:
                d.stop()
        dev = RefDevice(seed, tmp_path / "console.log", list(args))
        started.append(dev)
        return dev.start()

    yield start
    for d in started:
        if d.proc is not None and d.proc.poll() is None:
            assert d.stop() == 0, d.console()


def serve(tmp_path: Path, *args: str) -> Server:
    return Server(tmp_path / "data", extra_args=[*DEVICE, *args]).start()


def count(s: Server) -> int:
    return len(s.rpc.call("listinvoicerequests")["invoicerequests"])


def test_device_holds_the_payer_key_and_signs(
    tmp_path: Path, device: Callable[..., RefDevice]
) -> None:
    device()
    s = serve(tmp_path, "--signer", "hwi")
    try:
        key = derived(DEFAULT_KEY_PATH)
        info = s.rpc.call("getinfo")
        assert info["id"] == key.public_key.hex() and info["signer"] == "hwi"
        r = s.rpc.call("invoicerequest", {"amount": "21sat", "description": "hw payout"})
        d = bolt12.decode_invoice_request(r["bolt12"])  # verifies the device's signature
        assert d.payer_id == key.public_key and d.amount_msat == 21_000
        # Same key, same stream: the device's signature equals the software signer's.
        records = [(t, v) for t, v in bolt12.parse_tlv_stream(d.tlv_stream) if t != 240]
        unsigned = bolt12.encode_tlv_stream(records)
        digest = bolt12.signature_digest(
            "invoice_request", "signature", bolt12.merkle_root(unsigned)
        )
        assert SoftwareSigner(key.secret).sign_digest(digest) == d.signature
    finally:
        assert s.stop() == 0, s.output()


def test_denial_stores_nothing(tmp_path: Path, device: Callable[..., RefDevice]) -> None:
    device("--approve", "max-msat=5000")
    s = serve(tmp_path, "--signer", "hwi")
    try:
        s.rpc.call("invoicerequest", [5000, "small"])
        with pytest.raises(RpcError) as e:
            s.rpc.call("invoicerequest", [5001, "too big"])
        assert (
            e.value.error["code"] == 2001 and "declined on the device" in e.value.error["message"]
        )
        assert count(s) == 1
    finally:
        assert s.stop() == 0, s.output()


def test_stock_firmware_stops_the_start_with_a_clear_message(
    tmp_path: Path, device: Callable[..., RefDevice]
) -> None:
    device("--stock")
    line = start_fails(tmp_path, "--signer", "hwi", *DEVICE)
    assert "does not support the sign_bolt12 extension" in line
    assert "--approver hwi" in line  # what to use instead
    assert not (tmp_path / "data" / "regtest" / "payer_secret").exists(), (
        "no silent software fallback"
    )


def test_missing_device_stops_the_start(tmp_path: Path) -> None:
    assert "hardware signer: cannot reach jade" in start_fails(tmp_path, "--signer", "hwi", *DEVICE)


def test_silent_device_times_out_then_the_service_recovers(
    tmp_path: Path, device: Callable[..., RefDevice]
) -> None:
    device()
    s = serve(tmp_path, "--signer", "hwi", "--hwi-timeout", "1.5")
    try:
        device("--delay", "4")  # the same key, now too slow to answer
        t0 = time.monotonic()
        with pytest.raises(RpcError) as e:
            s.rpc.call("invoicerequest", [1000, "slow"])
        assert e.value.error["code"] == 2001 and "did not answer" in e.value.error["message"]
        assert time.monotonic() - t0 < 10
        assert count(s) == 0
        device()  # the device is back
        r = s.rpc.call("invoicerequest", [1000, "after recovery"])
        assert bolt12.decode_invoice_request(r["bolt12"]).description == "after recovery"
    finally:
        assert s.stop() == 0, s.output()


def test_a_busy_device_refuses_quickly_beyond_its_queue(
    tmp_path: Path, device: Callable[..., RefDevice]
) -> None:
    device("--delay", "0.3")
    s = serve(tmp_path, "--signer", "hwi", "--hwi-timeout", "20")
    try:

        def call(i: int) -> str:
            try:
                s.rpc.call("invoicerequest", [1000 + i, "queue"])
                return "ok"
            except RpcError as err:
                return str(err.error["message"])

        with ThreadPoolExecutor(14) as pool:
            results = list(pool.map(call, range(14)))
        busy = [r for r in results if r.startswith("signer busy")]
        assert busy and results.count("ok") >= 9, results
        assert count(s) == results.count("ok")
    finally:
        assert s.stop() == 0, s.output()


def verify_bip137(message: str, signature_b64: str, pubkey: bytes) -> bool:
    """An independent BIP-137 check (not invreq.approval's): CompactSize length prefix."""
    sig = base64.b64decode(signature_b64)
    data = message.encode()
    n = len(data)
    size = bytes([n]) if n < 0xFD else b"\xfd" + n.to_bytes(2, "little")
    assert n <= 0xFFFF
    prefix = b"\x18Bitcoin Signed Message:\n" + size + data
    digest = hashlib.sha256(hashlib.sha256(prefix).digest()).digest()
    recid = (sig[0] - 27) & 3
    recovered = PublicKey.from_signature_and_message(sig[1:] + bytes([recid]), digest, hasher=None)
    return recovered.format(compressed=True) == pubkey


def test_stock_device_approves_each_request(
    tmp_path: Path, device: Callable[..., RefDevice]
) -> None:
    device("--stock")  # approval needs nothing beyond stock firmware
    s = serve(tmp_path, "--approver", "hwi")
    try:
        r = s.rpc.call(
            "invoicerequest", {"amount": 5000, "description": "approved", "issuer": "atm"}
        )
        listed: dict[str, Any] = s.rpc.call("listinvoicerequests", [r["invreq_id"]])[
            "invoicerequests"
        ][0]
        a = listed["approval"]
        assert a["fingerprint"] and a["path"] == DEFAULT_KEY_PATH
        lines = a["message"].split("\n")
        assert lines[-1] == r["invreq_id"]
        assert lines[2:5] == ["amount: 5000 msat", "= 5 sat", "= 0.00000005 BTC"]
        assert lines[5] == "payouts: single use"
        assert lines[-4:-2] == ["issuer: 3 chars", "> atm"]
        key = derived(a["path"]).public_key
        assert a["pubkey"] == key.hex()
        assert verify_bip137(a["message"], a["signature"], key)
        # The software key signed the request itself.
        assert s.rpc.call("getinfo")["signer"] == "software"
    finally:
        assert s.stop() == 0, s.output()


def test_declined_approval_stores_nothing(tmp_path: Path, device: Callable[..., RefDevice]) -> None:
    device("--approve", "deny")
    s = serve(tmp_path, "--approver", "hwi")
    try:
        with pytest.raises(RpcError) as e:
            s.rpc.call("invoicerequest", [1000, "no"])
        assert e.value.error["code"] == 2001 and "declined" in e.value.error["message"]
        assert count(s) == 0
    finally:
        assert s.stop() == 0, s.output()


def test_a_long_spoofing_description_is_approved_as_escaped_text(
    tmp_path: Path, device: Callable[..., RefDevice]
) -> None:
    device("--stock")
    s = serve(tmp_path, "--approver", "hwi")
    try:
        spoof = "x\namount: 1 msat\r\u202e\u200b" + "y" * 300  # an approval text over 253 bytes
        r = s.rpc.call("invoicerequest", {"amount": 5_000_000_000, "description": spoof})
        a = s.rpc.call("listinvoicerequests", [r["invreq_id"]])["invoicerequests"][0]["approval"]
        assert len(a["message"].encode()) > 256
        lines = a["message"].split("\n")
        assert lines[2] == "amount: 5000000000 msat" and lines[-1] == r["invreq_id"]
        assert lines[9].startswith("description: 319 chars, first ")
        quoted = [row for row in lines if row.startswith("> ")]
        assert all(len(row) <= 24 for row in quoted)
        assert "x\\u{a}amount: 1 msat\\u{d}\\u{202e}\\u{200b}y" in "".join(
            row[2:] for row in quoted
        )
        assert verify_bip137(a["message"], a["signature"], derived(a["path"]).public_key)
    finally:
        assert s.stop() == 0, s.output()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_restart_during_reconnect_recovers_and_nothing_spins(
    tmp_path: Path, device: Callable[..., RefDevice]
) -> None:
    # The sequence that once wedged the signer for good: a slow device times call 1 out;
    # call 2 reconnects and waits in the handshake; the device restarts honest meanwhile.
    device()
    s = serve(tmp_path, "--signer", "hwi", "--hwi-timeout", "2")
    try:
        device("--delay", "8")  # the same key, now too slow
        with pytest.raises(RpcError) as e:
            s.rpc.call("invoicerequest", [1000, "call 1"])
        assert e.value.error["code"] == 2001 and "did not answer" in e.value.error["message"]
        with ThreadPoolExecutor(1) as pool:
            second = pool.submit(s.rpc.call, "invoicerequest", [1000, "call 2"])
            device()  # restarted honest while call 2 is reconnecting
            try:
                second.result(60)
            except RpcError as err:
                assert err.error["code"] == 2001
        r = s.rpc.call("invoicerequest", [1000, "call 3"])
        assert bolt12.decode_invoice_request(r["bolt12"]).description == "call 3"
        assert s.proc is not None
        before = cpu_seconds(s.proc.pid)
        time.sleep(2)
        # Idle, the service uses next to no CPU: no thread is left spinning on a dead socket.
        assert cpu_seconds(s.proc.pid) - before < 0.5
    finally:
        assert s.stop() == 0, s.output()


def test_find_mode_never_uses_the_simulator_address_it_was_not_given(
    tmp_path: Path, device: Callable[..., RefDevice]
) -> None:
    # A listener on 127.0.0.1:30121 is whoever started first: --hwi-fingerprint alone
    # looks at USB devices only, so it is not used even with the right fingerprint.
    dev = device()
    line = start_fails(tmp_path, "--signer", "hwi", "--hwi-fingerprint", dev.fingerprint)
    assert "no device found" in line and "--hwi-device-path" in line, line
    assert len(dev.console().splitlines()) == 1, dev.console()  # its start line only


def test_a_given_fingerprint_is_checked_with_a_path_and_the_probe_is_logged_as_probe(
    tmp_path: Path, device: Callable[..., RefDevice]
) -> None:
    dev = device()
    line = start_fails(tmp_path, *DEVICE, "--signer", "hwi", "--hwi-fingerprint", "00000000")
    assert f"has master fingerprint {dev.fingerprint}" in line, line
    assert "not --hwi-fingerprint 00000000" in line, line
    s = serve(tmp_path, "--signer", "hwi", "--hwi-fingerprint", dev.fingerprint)
    try:
        assert s.rpc.call("getinfo")["id"] == derived(DEFAULT_KEY_PATH).public_key.hex()
        s.rpc.call("invoicerequest", [1000, "checked by fingerprint"])
    finally:
        assert s.stop() == 0, s.output()
    console = dev.console()
    assert "sign_bolt12: probe" in console
    assert "refused" not in console, console


def start_fails(tmp_path: Path, *args: str) -> str:
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "invreq.cli",
            "serve",
            "--data-dir",
            str(tmp_path / "data"),
            "--network",
            "regtest",
            "--http-port",
            "0",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    return p.stderr.strip()


def test_an_unknown_fingerprint_is_one_line(
    tmp_path: Path, device: Callable[..., RefDevice]
) -> None:
    device()
    line = start_fails(tmp_path, "--approver", "hwi", "--hwi-fingerprint", "00000000")
    assert "no device found" in line
