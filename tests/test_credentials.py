"""Credential hygiene against a real `invreq serve`: runes never reach the log, files that
hold records are owner-only wherever they are, secret files and the TLS pair refuse to start
with one line, and only canonical rune strings authenticate."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from _service_fixtures import Server, free_port, store_url
from pyln.client import RpcError
from test_rest import http, make_rune


def leaks(text: str, rune: str) -> list[str]:
    """Every 12-character window of the rune found in ``text`` (a prefix of 12 or more
    characters included)."""
    return [rune[i : i + 12] for i in range(len(rune) - 11) if rune[i : i + 12] in text]


def exchange(port: int, raw: bytes) -> bytes:
    """Send raw bytes on a new TCP connection; everything the server answers before it
    closes (it closes after a 400)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(raw)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


HEAD = b"POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
BODY = b"Content-Length: 2\r\n\r\n{}"


def malformed(rune: bytes) -> dict[str, bytes]:
    """The header lines aiohttp used to quote in an ERROR traceback."""
    return {
        "control character": HEAD + b"Rune: " + rune + b"\x01\r\n" + BODY,
        "DEL": HEAD + b"Rune: " + rune + b"\x7f\r\n" + BODY,
        "bare CR (a rune file with Windows line endings)": HEAD
        + b"Rune: "
        + rune
        + b"\rX\r\n"
        + BODY,
        "space before the colon": HEAD + b"Rune : " + rune + b"\r\n" + BODY,
    }


def test_malformed_requests_never_log_the_rune(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "invreq.log"
    s = Server(tmp_path / "data", extra_args=["--log-file", str(log_file)]).start()
    try:
        rune = make_rune(s, ["method=getinfo"])
        # A rune over aiohttp's 8190-byte header line limit (a long comment restriction).
        long_rune = make_rune(s, ["note#" + "x" * 9000])
        assert len(long_rune) > 8190
        cases = malformed(rune.encode())
        cases["header line over 8190 bytes"] = (
            HEAD + b"Rune: " + long_rune.encode() + b"\r\n" + BODY
        )
        for name, raw in cases.items():
            answer = exchange(s.http_port, raw)
            assert answer.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request"), (name, answer[:200])
        assert http(s, "/v1/getinfo", {}, rune)[0] == 201  # still serving
    finally:
        assert s.stop() == 0, s.output()
    logged = log_file.read_text()
    for text in (logged, s.output()):
        assert "Traceback" not in text
        assert leaks(text, rune) == [] and leaks(text, long_rune) == []
    bad = [line for line in logged.splitlines() if "malformed HTTP request" in line]
    assert len(bad) == len(cases), logged  # one line each
    assert all(" INFO " in line and "Error handling request from 127.0.0.1" in line for line in bad)


def test_rune_parameters_are_never_quoted_in_errors_or_the_log(tmp_path: Path) -> None:
    log_file = tmp_path / "invreq.log"
    s = Server(tmp_path / "data", extra_args=["--log-file", str(log_file)]).start()
    try:
        rune = make_rune(s, ["method=getinfo"])
        wrong = [
            ("checkrune", {"rune": [rune], "method": "getinfo"}),
            ("checkrune", {"rune": rune + "!!"}),
            ("checkrune", {"rune": rune[:-3]}),
            ("showrunes", {"rune": {"r": rune}}),
            ("createrune", {"rune": rune.replace("-", "+").replace("_", "/") + "."}),
        ]
        for method, params in wrong:
            with pytest.raises(RpcError) as e:
                s.rpc.call(method, params)
            assert leaks(e.value.error["message"], rune) == [], e.value.error
    finally:
        assert s.stop() == 0, s.output()
    logged = log_file.read_text()
    assert logged.count("request failed: method=") == len(wrong)
    assert leaks(logged, rune) == [] and leaks(s.output(), rune) == []


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_no_rune_in_clear_in_the_database_and_showrunes_derives_it(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str
) -> None:
    db = store_url(request, kind)
    s = Server(tmp_path / "data", db=db).start()
    try:
        made = [make_rune(s, r) for r in (None, ["method=getinfo"], "readonly", [["a=1", "b=c&d"]])]
        shown = s.rpc.call("showrunes")["runes"]
        assert [r["rune"] for r in shown] == made
        assert all("stored" not in r for r in shown)
        # The strings are derived again; nothing in the database holds them.
        if kind == "sqlite":
            files = sorted((tmp_path / "data" / "regtest").glob("*.sqlite3*"))
            assert files
            content = b"".join(f.read_bytes() for f in files).decode("latin-1")
        else:
            content = _pg_dump(db)
        for rune in made:
            assert leaks(content, rune) == []
        narrowed = s.rpc.call("createrune", {"rune": made[1], "restrictions": ["pnum=0"]})["rune"]
        assert s.rpc.call("showrunes", {"rune": narrowed})["runes"][0]["stored"] is False
        assert "stored" not in s.rpc.call("showrunes", {"rune": made[1]})["runes"][0]
    finally:
        assert s.stop() == 0, s.output()


def _pg_dump(dsn: str | None) -> str:
    import asyncio

    import asyncpg

    async def dump() -> str:
        conn = await asyncpg.connect(dsn)
        try:
            tables = [
                r[0]
                for r in await conn.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                )
            ]
            out = []
            for t in tables:
                out += [str(tuple(r)) for r in await conn.fetch(f'SELECT * FROM "{t}"')]
            return "\n".join(out)
        finally:
            await conn.close()

    return asyncio.run(dump())


def test_readonly_is_clns_shorthand(tmp_path: Path) -> None:
    s = Server(tmp_path / "data").start()
    try:
        made = s.rpc.call("createrune", {"restrictions": "readonly"})
        assert "warning_unrestricted_rune" not in made
        shown = s.rpc.call("showrunes", {"rune": made["rune"]})["runes"][0]
        assert shown["restrictions_as_english"] == (
            "method starts with list OR method starts with get OR method equal to summary"
            " AND method unequal to listdatastore"
        )
        rune = made["rune"]
        assert http(s, "/v1/getinfo", {}, rune)[0] == 201
        assert http(s, "/v1/listinvoicerequests", {}, rune)[0] == 201
        status, r = http(s, "/v1/invoicerequest", {"amount": 1, "description": "x"}, rune)
        assert status == 401 and r["code"] == 1502
    finally:
        assert s.stop() == 0, s.output()


def _variants(rune: str) -> dict[str, str]:
    """Spellings Python's lenient base64 decoder reads as the same bytes."""
    out = {
        "trailing !!": rune + "!!",
        "an inserted .": rune[:10] + "." + rune[10:],
        "no padding": rune.rstrip("="),
        "whitespace": rune[:10] + " " + rune[10:],
    }
    if "-" in rune or "_" in rune:
        out["the +/ alphabet"] = rune.replace("-", "+").replace("_", "/")
    return out


def test_only_canonical_rune_strings_authenticate(tmp_path: Path) -> None:
    s = Server(tmp_path / "data").start()
    try:
        # A rune whose base64 holds '-' or '_', so that the '+/' spelling differs.
        rune = make_rune(s, ["method=getinfo"])
        for i in range(200):
            if "-" in rune or "_" in rune:
                break
            rune = make_rune(s, ["method=getinfo", f"pnum<{i + 1}"])
        assert "-" in rune or "_" in rune
        assert base64.urlsafe_b64encode(base64.urlsafe_b64decode(rune)).decode() == rune
        assert http(s, "/v1/getinfo", {}, rune)[0] == 201
        variants = _variants(rune)
        assert len(variants) == 5
        for name, text in variants.items():
            status, r = http(s, "/v1/getinfo", {}, text)
            assert status == 401 and r["code"] == 1501, (name, r)
            assert text not in r["message"]
            with pytest.raises(RpcError) as e:
                s.rpc.call("checkrune", {"rune": text, "method": "getinfo"})
            assert e.value.error["code"] in (1501, -32602), name
            with pytest.raises(RpcError):
                s.rpc.call("showrunes", {"rune": text})
    finally:
        assert s.stop() == 0, s.output()
    assert leaks(s.output(), rune) == []


# --- file modes ---------------------------------------------------------------------------


def mode(p: Path) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_database_and_log_are_owner_only_wherever_they_are(tmp_path: Path) -> None:
    elsewhere = tmp_path / "shared"
    elsewhere.mkdir(mode=0o755)
    db = elsewhere / "invreq.sqlite3"
    log_file = elsewhere / "logs" / "invreq.log"
    s = Server(
        tmp_path / "data", db=f"sqlite:///{db}", extra_args=["--log-file", str(log_file)]
    ).start()
    try:
        s.rpc.call("invoicerequest", [1000, "x"])
        make_rune(s)
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm"), log_file]
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
        # After a rotation (rename, SIGHUP), the new log file is owner-only too.
        log_file.rename(log_file.with_suffix(".1"))
        assert s.proc is not None
        s.proc.send_signal(signal.SIGHUP)
        s.rpc.call("invoicerequest", [1001, "y"])
        with pytest.raises(RpcError):
            s.rpc.call("invoicerequest", [0, "bad"])  # a failed request is logged
        assert mode(log_file) == 0o600
        # docs/operating.md's backup recipe keeps the mode.
        backup = elsewhere / "backup.sqlite3"
        recipe = f'(umask 077 && sqlite3 {db} ".backup {backup}")'
        subprocess.run(["sh", "-c", recipe], check=True)
        assert mode(backup) == 0o600
        with contextlib.closing(sqlite3.connect(backup)) as conn, conn:
            assert conn.execute("SELECT count(*) FROM invoice_requests").fetchone() == (2,)
    finally:
        assert s.stop() == 0, s.output()


def test_files_found_wider_are_narrowed(tmp_path: Path) -> None:
    db = tmp_path / "invreq.sqlite3"
    log_file = tmp_path / "invreq.log"
    s = Server(tmp_path / "data", db=f"sqlite:///{db}").start()
    assert s.stop() == 0
    for f in (db, log_file):
        f.touch()
        os.chmod(f, 0o644)
    s = Server(
        tmp_path / "data", db=f"sqlite:///{db}", extra_args=["--log-file", str(log_file)]
    ).start()
    try:
        assert mode(db) == 0o600 and mode(log_file) == 0o600
    finally:
        assert s.stop() == 0, s.output()
    assert "now owner-only (0600)" in log_file.read_text()


# --- secret files and the TLS pair: one line each ----------------------------------------


def start_fails(tmp_path: Path, *extra: str) -> str:
    """Run `invreq serve` expecting it to refuse to start: its output (stdout and stderr)."""
    data = tmp_path / "data"
    args = [
        sys.executable,
        "-m",
        "invreq.cli",
        "serve",
        "--data-dir",
        str(data),
        "--network",
        "regtest",
        "--http-port",
        str(free_port()),
        *extra,
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done
    out = done.stdout + done.stderr
    assert "Traceback" not in out, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    return lines[0]


def first_start(tmp_path: Path, *extra: str) -> Path:
    s = Server(tmp_path / "data", extra_args=list(extra)).start()
    assert s.stop() == 0, s.output()
    return tmp_path / "data" / "regtest"


def test_a_tls_key_others_can_read_is_refused_with_the_fix(tmp_path: Path) -> None:
    net = first_start(tmp_path, "--http-tls")
    os.chmod(net / "tls.key", 0o644)
    line = start_fails(tmp_path, "--http-tls")
    assert f"run `chmod 600 {net / 'tls.key'}`" in line
    os.chmod(net / "tls.key", 0o600)
    first_start(tmp_path, "--http-tls")  # fixed as told: it starts


def test_a_tls_key_without_its_certificate_is_one_line(tmp_path: Path) -> None:
    net = first_start(tmp_path, "--http-tls")
    (net / "tls.crt").unlink()
    line = start_fails(tmp_path, "--http-tls")
    assert "tls.crt does not" in line and "delete" in line


def test_a_tls_pair_that_is_not_one_is_one_line(tmp_path: Path) -> None:
    net = first_start(tmp_path, "--http-tls")
    (net / "tls.crt").write_text("not a certificate\n")
    assert "not a usable certificate" in start_fails(tmp_path, "--http-tls")


@pytest.mark.parametrize("name", ["rune_secret", "payer_secret"])
def test_a_symlinked_secret_is_one_line(tmp_path: Path, name: str) -> None:
    net = first_start(tmp_path)
    real = tmp_path / f"{name}.real"
    (net / name).rename(real)
    (net / name).symlink_to(real)
    line = start_fails(tmp_path)
    assert "is a symbolic link" in line and "cp --remove-destination" in line
