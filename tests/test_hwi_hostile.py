"""A device that lies (tests/_lyingdevice.py: the reference device's answers, altered one
way at a time, on the same Jade CBOR-RPC protocol) against `invreq serve` driving real
hwilib's Jade API. Every lie fails the request with 2001 and stores nothing, no lie
outlives the connection it was told on, and the service serves the next honest answer."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from _lyingdevice import LyingDevice
from _service_fixtures import Server
from invreq import approval, bolt12
from invreq.refdevice.bip32 import ExtendedPrivateKey, parse_path
from invreq.signers.hwi import DEFAULT_KEY_PATH
from pyln.client import RpcError

SEED = bytes(range(32))
SIM = "tcp:127.0.0.1:30121"
DEVICE = ["--hwi-device-type", "jade", "--hwi-device-path", SIM]


class UrlWatcher:
    """A loopback listener standing for any URL a device names: counts who connects."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/pin"
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


@pytest.fixture
def watcher() -> Iterator[UrlWatcher]:
    w = UrlWatcher()
    yield w
    w.sock.shutdown(socket.SHUT_RDWR)
    w.sock.close()


@pytest.fixture
def liar(watcher: UrlWatcher) -> Iterator[LyingDevice]:
    dev = LyingDevice(SEED, url=watcher.url)
    yield dev
    dev.close()


def serve(tmp_path: Path, *args: str, device: list[str] = DEVICE) -> Server:
    return Server(tmp_path / "data", extra_args=[*device, *args]).start()


def count(s: Server) -> int:
    return len(s.rpc.call("listinvoicerequests")["invoicerequests"])


def fails(s: Server, params: Any) -> str:
    with pytest.raises(RpcError) as e:
        s.rpc.call("invoicerequest", params)
    assert e.value.error["code"] == 2001, e.value.error
    return str(e.value.error["message"])


def approval_key() -> bytes:
    return ExtendedPrivateKey.from_seed(SEED).derive(parse_path(DEFAULT_KEY_PATH)).public_key


# What each lie must be reported as (a fragment of the 2001 message).
SIGN_MESSAGE_LIES = {
    "wrong_id": "answered sign_message",
    "no_id_error": "could not read our sign_message request",
    "garbage": "not CBOR",
    "not_a_map": "not a map",
    "oversized": "over 65536 bytes",
    "talkative": "did not answer sign_message within 2 s",
    "silent": "did not answer sign_message within 2 s",
    "close": "lost jade",
    "http_request": "HTTP request",
    "non_string": "answered sign_message with a int",
    "empty_error": "(the device gave no message)",
    "foreign_key": "approval signature is not by the key",
    "other_text": "approval signature is not by the key",
    "replay": "approval signature is not by the key",
    "garbage_sig": "approval signature is not by the key",
}


def test_every_lie_in_an_approval_fails_only_its_request(
    tmp_path: Path, liar: LyingDevice, watcher: UrlWatcher
) -> None:
    s = serve(tmp_path, "--approver", "hwi", "--hwi-timeout", "2")
    try:
        stored = 0
        s.rpc.call("invoicerequest", [1000, "first, honest"])  # gives "replay" its material
        stored += 1
        for lie, expected in SIGN_MESSAGE_LIES.items():
            liar.lie("sign_message", lie)
            message = fails(s, [5_000_000_000, f"lie {lie}"])
            assert expected in message, (lie, message)
            assert count(s) == stored, lie
            liar.honest()
            r = s.rpc.call("invoicerequest", [1000 + stored, f"after {lie}"])
            stored += 1
            a = s.rpc.call("listinvoicerequests", [r["invreq_id"]])["invoicerequests"][0][
                "approval"
            ]
            assert a["pubkey"] == approval_key().hex()
            assert (
                approval.verify_approval(a, invreq_id=r["invreq_id"], pubkey=approval_key()) is None
            )
        assert count(s) == stored
        assert watcher.connections == 0, "the device made the host connect to its URL"
    finally:
        assert s.stop() == 0, s.output()


def test_a_repeated_reply_costs_no_request(tmp_path: Path, liar: LyingDevice) -> None:
    s = serve(tmp_path, "--approver", "hwi")
    try:
        liar.lie("sign_message", "duplicate")
        s.rpc.call("invoicerequest", [1000, "answered twice"])
        liar.honest()
        # The repeated reply is waiting on the connection: it is replaced, not read as the
        # answer to this request (which would then carry the previous approval).
        r = s.rpc.call("invoicerequest", [2000, "next"])
        a = s.rpc.call("listinvoicerequests", [r["invreq_id"]])["invoicerequests"][0]["approval"]
        assert approval.invreq_id_of(a["message"]) == r["invreq_id"]
        assert count(s) == 2
    finally:
        assert s.stop() == 0, s.output()


def test_reply_checks_hold_under_python_optimize(
    tmp_path: Path, liar: LyingDevice, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONOPTIMIZE", "1")  # hwilib's own id check is an assert
    s = serve(tmp_path, "--approver", "hwi")
    try:
        s.rpc.call("invoicerequest", [1000, "one"])
        for lie in ("wrong_id", "replay", "duplicate"):
            liar.lie("sign_message", lie)
            if lie == "duplicate":
                s.rpc.call("invoicerequest", [3000, "two"])
            else:
                fails(s, [2000, lie])
        liar.honest()
        r = s.rpc.call("invoicerequest", [4000, "three"])
        for rec in s.rpc.call("listinvoicerequests")["invoicerequests"]:
            a = rec["approval"]
            assert (
                approval.verify_approval(a, invreq_id=rec["invreq_id"], pubkey=approval_key())
                is None
            )
        assert r["invreq_id"] and count(s) == 3
    finally:
        assert s.stop() == 0, s.output()


SIGN_BOLT12_LIES = {
    "wrong_id": "answered sign_bolt12",
    "garbage": "not CBOR",
    "oversized": "over 65536 bytes",
    "talkative": "did not answer sign_bolt12 within 2 s",
    "http_request": "HTTP request",
    "empty_error": "(the device gave no message)",
    "non_string": "without a 64-byte signature",
}


def test_lies_to_the_signer(tmp_path: Path, liar: LyingDevice, watcher: UrlWatcher) -> None:
    s = serve(tmp_path, "--signer", "hwi", "--hwi-timeout", "2")
    try:
        for lie, expected in SIGN_BOLT12_LIES.items():
            liar.lie("sign_bolt12", lie)
            assert expected in fails(s, [1000, f"lie {lie}"]), lie
            liar.honest()
            r = s.rpc.call("invoicerequest", [1000, f"after {lie}"])
            assert bolt12.decode_invoice_request(r["bolt12"]).description == f"after {lie}"
        assert count(s) == len(SIGN_BOLT12_LIES)
        assert watcher.connections == 0
    finally:
        assert s.stop() == 0, s.output()


def test_lies_during_the_reconnect_handshake(tmp_path: Path, liar: LyingDevice) -> None:
    s = serve(tmp_path, "--approver", "hwi", "--hwi-timeout", "2")
    try:
        for lie in ("close", "talkative", "wrong_id", "http_request", "garbage"):
            liar.lie("sign_message", "close")  # forces a reconnect...
            liar.lie("get_version_info", lie)  # ...whose handshake lies
            fails(s, [1000, f"handshake {lie}"])
            liar.honest()
            s.rpc.call("invoicerequest", [1000, f"after {lie}"])
        assert count(s) == 5
    finally:
        assert s.stop() == 0, s.output()


def test_queue_wait_is_not_the_devices_time(tmp_path: Path, liar: LyingDevice) -> None:
    # Each approval takes the device ~1.2 s of a 2 s timeout; five at once wait up to ~5 s
    # in the queue. Every one the device signs is stored and reported as signed.
    liar.delay = 1.2
    s = serve(tmp_path, "--approver", "hwi", "--hwi-timeout", "2")
    try:
        liar.lie("sign_message", "slow")

        def call(i: int) -> str:
            try:
                s.rpc.call("invoicerequest", [1000 + i, f"queued {i}"])
                return "ok"
            except RpcError as e:
                return str(e.error["message"])

        with ThreadPoolExecutor(5) as pool:
            results = list(pool.map(call, range(5)))
        assert results == ["ok"] * 5
        signed = [m for m, how in liar.seen if m == "sign_message"]
        assert len(signed) == count(s) == 5
    finally:
        assert s.stop() == 0, s.output()


def test_sigterm_while_the_device_is_silent(tmp_path: Path, liar: LyingDevice) -> None:
    s = serve(tmp_path, "--approver", "hwi", "--hwi-timeout", "5")
    liar.lie("sign_message", "silent")
    outcome: list[str] = []

    def call() -> None:
        try:
            s.rpc.call("invoicerequest", [1000, "stuck"])
            outcome.append("ok")
        except (RpcError, OSError, ValueError) as e:
            outcome.append(repr(e))

    t = threading.Thread(target=call)
    t.start()
    while ("sign_message", "silent") not in liar.seen:
        t.join(0.05)
    assert s.stop() == 0, s.output()
    t.join(30)
    assert outcome and outcome[0] != "ok"


def start_fails(tmp_path: Path, *args: str, device: list[str] = DEVICE) -> str:
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
            *device,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,  # a guard against a hang only; the start must end on its own
    )
    assert p.returncode == 1, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr  # one line, no traceback
    return lines[0]


@pytest.mark.parametrize(
    ("method", "lie", "expected"),
    [
        ("get_version_info", "close", "lost jade"),
        ("get_version_info", "talkative", "within 2 s"),
        ("get_version_info", "silent", "within 2 s"),
        ("get_version_info", "garbage", "not CBOR"),
        ("get_xpub", "oversized", "over 65536 bytes"),
        ("get_xpub", "wrong_id", "answered get_xpub"),
        ("get_xpub", "empty_error", "(the device gave no message)"),
    ],
)
def test_start_up_is_bounded_with_one_line(
    tmp_path: Path, liar: LyingDevice, method: str, lie: str, expected: str
) -> None:
    liar.lie(method, lie)
    line = start_fails(tmp_path, "--approver", "hwi", "--hwi-timeout", "2")
    assert line.startswith("invreq serve: hardware") and expected in line, line


def test_a_real_unit_that_never_unlocks_or_wants_a_pin_server(
    tmp_path: Path, watcher: UrlWatcher
) -> None:
    # Any port but 30121 takes hwilib's real-unit branch: add_entropy, then auth_user.
    dev = LyingDevice(SEED, port=0, url=watcher.url)
    try:
        device = ["--hwi-device-type", "jade", "--hwi-device-path", f"tcp:127.0.0.1:{dev.port}"]
        dev.lie("auth_user", "false")
        line = start_fails(tmp_path, "--approver", "hwi", "--hwi-timeout", "2", device=device)
        assert "within 2 s" in line, line
        dev.lie("auth_user", "http_request")
        line = start_fails(tmp_path, "--approver", "hwi", "--hwi-timeout", "2", device=device)
        assert "HTTP request" in line, line
        assert watcher.connections == 0
        dev.honest()
        s = serve(tmp_path, "--approver", "hwi", device=device)
        try:
            s.rpc.call("invoicerequest", [1000, "unlocked"])
        finally:
            assert s.stop() == 0, s.output()
    finally:
        dev.close()


def test_sigterm_during_a_start_up_the_device_stalls(tmp_path: Path, liar: LyingDevice) -> None:
    liar.lie("get_version_info", "silent")
    p = subprocess.Popen(
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
            "--approver",
            "hwi",
            "--hwi-timeout",
            "300",
            *DEVICE,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while ("get_version_info", "silent") not in liar.seen:
            assert p.poll() is None
            threading.Event().wait(0.05)
        p.terminate()
        assert p.wait(60) != 0  # ended by the signal, long before the 300 s timeout
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


# --- identity by key, not by claim (issue 23) ----------------------------------------------

OTHER_SEED = bytes(range(1, 33))
EXPECTED_FP = ExtendedPrivateKey.from_seed(SEED).fingerprint


def impostor(**claims: Any) -> LyingDevice:
    return LyingDevice(OTHER_SEED, **claims)


def test_an_impostor_claiming_the_expected_fingerprint_is_refused_at_start(
    tmp_path: Path,
) -> None:
    # Another seed whose xpubs carry the expected parent fingerprint: hwilib's own
    # get_master_fingerprint reports the expected one. invreq computes it from the master
    # public key instead, with or without a device path.
    dev = impostor(claim_fingerprint=EXPECTED_FP)
    try:
        line = start_fails(tmp_path, "--approver", "hwi", "--hwi-fingerprint", EXPECTED_FP.hex())
        assert f"not --hwi-fingerprint {EXPECTED_FP.hex()}" in line, line
        assert not any(m == "sign_message" for m, _ in dev.seen)
        assert not (tmp_path / "data" / "regtest" / "hwi-keys").exists()
    finally:
        dev.close()


def test_an_impostor_showing_the_real_master_xpub_is_refused_by_the_pinned_key(
    tmp_path: Path,
) -> None:
    # The master xpub is public: an impostor can show it and pass the fingerprint check.
    # The key at the approval path is its own, and the pin (from the first start, or
    # --hwi-pubkey) refuses it.
    honest = LyingDevice(SEED)
    s = serve(tmp_path, "--approver", "hwi")
    try:
        s.rpc.call("invoicerequest", [1000, "approved by the real device"])
    finally:
        assert s.stop() == 0, s.output()
        honest.close()
    pins = (tmp_path / "data" / "regtest" / "hwi-keys").read_text()
    assert f"{DEFAULT_KEY_PATH} {approval_key().hex()}" in pins
    dev = impostor(claim_fingerprint=EXPECTED_FP, show_master_of=SEED)
    try:
        line = start_fails(tmp_path, "--approver", "hwi", "--hwi-fingerprint", EXPECTED_FP.hex())
        assert f"pins {approval_key().hex()}" in line and "another device or seed" in line, line
        # --hwi-pubkey names the key without a pin file (another data directory).
        line = start_fails(
            tmp_path / "elsewhere", "--approver", "hwi", "--hwi-pubkey", approval_key().hex()
        )
        assert f"not --hwi-pubkey {approval_key().hex()}" in line, line
        assert not any(m == "sign_message" for m, _ in dev.seen)
    finally:
        dev.close()


def test_a_device_swapped_while_serving_is_refused_at_the_reconnect(tmp_path: Path) -> None:
    honest = LyingDevice(SEED)
    s = serve(tmp_path, "--approver", "hwi")
    try:
        s.rpc.call("invoicerequest", [1000, "real"])
        honest.close()
        dev = impostor(claim_fingerprint=EXPECTED_FP, show_master_of=SEED)
        try:
            message = fails(s, [2000, "swapped"])
            assert "not the pinned device" in message and approval_key().hex() in message
            assert not any(m == "sign_message" for m, _ in dev.seen)
            assert count(s) == 1
        finally:
            dev.close()
        honest = LyingDevice(SEED)
        s.rpc.call("invoicerequest", [3000, "real again"])
        assert count(s) == 2
    finally:
        assert s.stop() == 0, s.output()
        honest.close()


def test_find_mode_never_connects_to_an_unconfigured_tcp_listener(tmp_path: Path) -> None:
    dev = LyingDevice(SEED)  # on the simulator's address, with the right fingerprint
    try:
        line = start_fails(
            tmp_path, "--approver", "hwi", "--hwi-fingerprint", EXPECTED_FP.hex(), device=[]
        )
        assert "no device found" in line, line
        assert dev.seen == []
    finally:
        dev.close()


@pytest.mark.parametrize(
    ("option", "path", "expected"),
    [
        ("--hwi-approval-path", "m", "is the master key itself"),
        ("--hwi-key-path", "m", "is the master key itself"),
        ("--hwi-approval-path", "m/9735h/0/0h", "non-hardened step '0'"),
        ("--hwi-key-path", "m/84h/0h/0h/0/5", "non-hardened step '0'"),
        ("--hwi-approval-path", "m/2147483648h", "not an index below 2^31"),
    ],
)
def test_key_paths_that_expose_the_master_key_or_leak_are_refused(
    tmp_path: Path, liar: LyingDevice, option: str, path: str, expected: str
) -> None:
    role = "--signer" if option == "--hwi-key-path" else "--approver"
    p = subprocess.run(
        [sys.executable, "-m", "invreq.cli", "serve", "--data-dir", str(tmp_path / "d"),
         "--network", "regtest", "--http-port", "0", *DEVICE, role, "hwi", option, path],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert p.returncode != 0 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert option in p.stderr and expected in p.stderr, p.stderr
    assert liar.seen == []


# --- device text is data (issue 23) --------------------------------------------------------


def test_a_device_error_with_a_newline_esc_and_rlo_is_one_escaped_log_line(
    tmp_path: Path, liar: LyingDevice
) -> None:
    s = serve(tmp_path, "--approver", "hwi")
    try:
        liar.lie("sign_message", "evil_error")
        message = fails(s, [1000, "evil"])
        assert all(" " <= c <= "~" for c in message), message
        assert "refused\\u{a}2026-12-06T01:00:00.000Z" in message
        assert "\\u{1b}[2J\\u{202e}deyorppa" in message
        assert count(s) == 0
    finally:
        assert s.stop() == 0, s.output()
    log = s.output()
    assert "\x1b" not in log and "\u202e" not in log
    lines = [line for line in log.splitlines() if "forged line" in line]
    assert len(lines) == 1, log  # the forged line never starts a line of its own
    assert not lines[0].startswith("2026-12-06T01:00:00.000Z INFO  invreq.server: forged")
    assert "\\u{a}2026-12-06T01:00:00.000Z" in lines[0]


def test_a_locked_device_is_polled_with_a_pause(tmp_path: Path) -> None:
    # A real unit (any port but 30121) that answers auth_user "not unlocked yet" for ever:
    # polled with a pause that doubles to 1 s, not thousands of times a second.
    dev = LyingDevice(SEED, port=0)
    try:
        dev.lie("auth_user", "false")
        device = ["--hwi-device-type", "jade", "--hwi-device-path", f"tcp:127.0.0.1:{dev.port}"]
        line = start_fails(tmp_path, "--approver", "hwi", "--hwi-timeout", "4", device=device)
        assert "within 4 s" in line or "stayed locked" in line, line
        polls = sum(1 for m, _ in dev.seen if m == "auth_user")
        # 0.05 + 0.1 + 0.2 + 0.4 + 0.8 + 1 + 1 ... s: under 10 asks in 4 s (was ~20,000)
        assert 2 <= polls <= 10, polls
    finally:
        dev.close()
