"""``invreq.client`` (the future ``invreq call``) against a real `invreq serve` process.

A few tests use a one-shot fake server instead, to see the exact bytes the client sends
and how it reacts to a server that hangs up without answering.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _service_fixtures import Server
from invreq import bolt12
from invreq.client import main, parse_param


def call(server: Server, *args: str) -> int:
    return main(["--data-dir", str(server.data_dir), "--network", "regtest", *args])


def result_of(capsys: pytest.CaptureFixture[str]) -> Any:
    out = capsys.readouterr()
    assert out.err == ""
    return json.loads(out.out)


def test_positional_params_number_and_plain_string(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    assert call(server, "invoicerequest", "1000", "test") == 0
    r = result_of(capsys)
    assert r["bolt12"].startswith("lnr1")
    d = bolt12.decode_invoice_request(r["bolt12"])
    assert d.amount_msat == 1000 and d.description == "test"


def test_keyword_params(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    assert call(server, "-k", "invoicerequest", "amount=10sat", "description=hi", "label=x") == 0
    r = result_of(capsys)
    assert r["label"] == "x"
    d = bolt12.decode_invoice_request(r["bolt12"])
    assert d.amount_msat == 10_000 and d.description == "hi"


def test_keyword_json_values_are_sent_as_json(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["amount=5000", "description=no", "single_use=false", "absolute_expiry=4000000000"]
    assert call(server, "-k", "invoicerequest", *args) == 0
    r = result_of(capsys)
    assert r["single_use"] is False
    assert bolt12.decode_invoice_request(r["bolt12"]).absolute_expiry == 4_000_000_000


def test_quoted_json_string_stays_a_string(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    # "1000" in JSON quotes is the string "1000", which is still a valid amount.
    assert call(server, "invoicerequest", '"1000"', '"42"') == 0
    r = result_of(capsys)
    assert bolt12.decode_invoice_request(r["bolt12"]).description == "42"


def test_json_array_param_is_sent_as_an_array(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    # The server's message re-serialises the token it got: an array, not a string.
    assert call(server, "invoicerequest", "1000", '["a", 2]') == 1
    out = capsys.readouterr()
    err = json.loads(out.out)
    assert err["code"] == -32602
    assert err["message"] == (
        "description: should be a string (without \\u): invalid token '[\"a\",2]'"
    )


def test_null_positional_means_not_given(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    assert call(server, "invoicerequest", "1000", "x", "null", "lbl") == 0
    r = result_of(capsys)
    assert r["label"] == "lbl"
    assert bolt12.decode_invoice_request(r["bolt12"]).issuer is None


def test_rpc_error_prints_the_error_object_on_stdout_and_exits_1(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    assert call(server, "disableinvoicerequest", "0" * 64) == 1
    out = capsys.readouterr()
    assert out.err == ""
    err = json.loads(out.out)
    assert err["code"] == -1
    assert err["message"] == "Unknown invoice_request"


def test_unknown_method(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    assert call(server, "frobnicate") == 1
    assert json.loads(capsys.readouterr().out)["code"] == -32601


def test_human_readable_top_level(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    assert call(server, "-H", "-k", "invoicerequest", "amount=1000", "description=h r") == 0
    lines = capsys.readouterr().out.splitlines()
    fields = dict(line.split("=", 1) for line in lines)
    assert list(fields) == [
        "invreq_id",
        "active",
        "single_use",
        "bolt12",
        "bolt12_unsigned",
        "used",
        "page_url",  # the fixture's server has HTTP on: each request's payee page
    ]
    assert fields["bolt12"].startswith("lnr1")
    assert fields["active"] == "true" and fields["used"] == "false"
    assert len(fields["invreq_id"]) == 64


def test_human_readable_flattens_lists(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    assert call(server, "invoicerequest", "1000", "one") == 0
    first = result_of(capsys)
    assert call(server, "invoicerequest", "2000", "two") == 0
    second = result_of(capsys)
    assert call(server, "-H", "listinvoicerequests") == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"invoicerequests[0].invreq_id={first['invreq_id']}" in lines
    assert f"invoicerequests[1].bolt12={second['bolt12']}" in lines
    assert "invoicerequests[1].active=true" in lines


def test_human_readable_empty_list(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    assert call(server, "-H", "listinvoicerequests") == 0
    assert capsys.readouterr().out == "invoicerequests=[]\n"


def test_human_readable_error_is_still_json(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    assert call(server, "-H", "disableinvoicerequest", "0" * 64) == 1
    assert json.loads(capsys.readouterr().out)["code"] == -1


def test_rpc_file_overrides_data_dir_and_network(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--data-dir", str(tmp_path / "elsewhere"), "--rpc-file", str(server.socket_path)]
    assert main([*argv, "getinfo"]) == 0
    assert result_of(capsys)["network"] == "regtest"


def test_missing_socket_exits_2_naming_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "nothing"
    assert main(["--data-dir", str(data_dir), "--network", "regtest", "getinfo"]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert len(out.err.splitlines()) == 1
    assert str(data_dir / "regtest" / "lightning-rpc") in out.err
    assert "running" in out.err


def test_refused_connection_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A socket file nobody listens on: what a crashed server leaves behind.
    path = tmp_path / "stale-rpc"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(path))
    assert main(["--rpc-file", str(path), "getinfo"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "running" in err


def test_bad_keyword_param_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--rpc-file", str(tmp_path / "x"), "-k", "invoicerequest", "1000"])
    assert e.value.code == 2
    assert "key=value" in capsys.readouterr().err


# --- a fake server that records what it receives ----------------------------------------


class FakeServer:
    """Accepts one connection, records the request, answers `reply` (or hangs up)."""

    def __init__(self, path: Path, reply: bytes) -> None:
        self.path = path
        self.reply = reply
        self.received = b""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(1)
        self.sock.settimeout(10)
        self.thread = threading.Thread(target=self._serve)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(10)
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                self.received += data
                try:
                    json.loads(self.received)
                except ValueError:
                    continue
                break
            conn.sendall(self.reply)

    def request(self) -> Any:
        self.thread.join(10)
        return json.loads(self.received)

    def close(self) -> None:
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeServer]:
    # Two replies back to back in one write: the client must stop at the first blank line.
    reply = b'{"jsonrpc":"2.0","id":"x","result":{"ok":true}}\n\n{"junk":1}\n\n'
    f = FakeServer(tmp_path / "fake-rpc", reply)
    try:
        yield f
    finally:
        f.close()


def test_request_shape_positional(fake: FakeServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--rpc-file", str(fake.path), "invoicerequest", "1000", "test", "[1]"]) == 0
    assert fake.request() == {
        "jsonrpc": "2.0",
        "id": f"invreq-call:invoicerequest#{os.getpid()}",
        "method": "invoicerequest",
        "params": [1000, "test", [1]],
    }
    assert result_of(capsys) == {"ok": True}


def test_request_shape_keywords(fake: FakeServer, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--rpc-file", str(fake.path), "-k", "x", "a=1", "b=two", "c={}", "d=k=v", "e="]
    assert main(argv) == 0
    assert fake.request()["params"] == {"a": 1, "b": "two", "c": {}, "d": "k=v", "e": ""}


def test_server_hanging_up_without_a_reply_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = FakeServer(tmp_path / "rude-rpc", b"")
    try:
        assert main(["--rpc-file", str(f.path), "getinfo"]) == 2
    finally:
        f.close()
    err = capsys.readouterr().err
    assert "closed the connection" in err and str(f.path) in err


# --- where options go: anywhere, as lightning-cli's getopt permutes them ---------------


def test_options_after_the_method_as_in_the_seed_doc(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    # `lightning-cli invoicerequest -k "amount"=1000000 ...` is how the seed doc writes it.
    argv = ["invoicerequest", "-k", "amount=1000sat", "--network", "regtest", "description=x"]
    assert main([*argv, "--data-dir", str(server.data_dir)]) == 0
    d = bolt12.decode_invoice_request(result_of(capsys)["bolt12"])
    assert d.amount_msat == 1_000_000 and d.description == "x"


def test_options_between_params(fake: FakeServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["x", "1", "--rpc-file", str(fake.path), "two", "-H"]) == 0
    assert fake.request()["params"] == [1, "two"]
    assert capsys.readouterr().out == "ok=true\n"  # -H after the params still counts


def test_double_dash_ends_options(fake: FakeServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--rpc-file", str(fake.path), "--", "x", "-k", "-H", "--network", "-5"]) == 0
    request = fake.request()
    assert request["method"] == "x"
    assert request["params"] == ["-k", "-H", "--network", -5]
    assert result_of(capsys) == {"ok": True}  # -H after -- was a param, not the option


def test_negative_number_is_a_param_without_double_dash(
    fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["x", "-5", "--rpc-file", str(fake.path)]) == 0
    assert fake.request()["params"] == [-5]


def test_unknown_option_anywhere_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--rpc-file", str(tmp_path / "x"), "invoicerequest", "1000", "-x"])
    assert e.value.code == 2
    assert "-x" in capsys.readouterr().err


def test_no_method_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--rpc-file", str(tmp_path / "x"), "-k"])
    assert e.value.code == 2
    assert "METHOD" in capsys.readouterr().err


# --- defaults from the config files `invreq serve` reads ---------------------------------


def fake_at(path: Path) -> FakeServer:
    path.parent.mkdir(parents=True, exist_ok=True)
    return FakeServer(path, b'{"jsonrpc":"2.0","id":"x","result":{"ok":true}}\n\n')


def test_network_from_data_dir_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config").write_text("# as `invreq serve` reads it\nnetwork=regtest\n")
    f = fake_at(tmp_path / "regtest" / "lightning-rpc")
    try:
        assert main(["--data-dir", str(tmp_path), "getinfo"]) == 0
    finally:
        f.close()
    assert result_of(capsys) == {"ok": True}


def test_rpc_file_from_the_network_config_is_taken_from_the_network_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "config").write_text("network=signet\nhttp-port=0\n")  # serve's keys ignored
    (tmp_path / "signet").mkdir()
    (tmp_path / "signet" / "config").write_text("rpc-file=other-rpc\n")
    f = fake_at(tmp_path / "signet" / "other-rpc")
    try:
        assert main(["--data-dir", str(tmp_path), "getinfo"]) == 0
    finally:
        f.close()
    assert result_of(capsys) == {"ok": True}


def test_command_line_network_wins_over_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "config").write_text("network=regtest\n")
    assert main(["getinfo", "--data-dir", str(tmp_path), "--network", "signet"]) == 2
    assert str(tmp_path / "signet" / "lightning-rpc") in capsys.readouterr().err


def test_conf_file_may_set_the_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "invreq.conf"
    conf.write_text(f"data-dir={tmp_path / 'd'}\nnetwork=testnet\n")
    f = fake_at(tmp_path / "d" / "testnet" / "lightning-rpc")
    try:
        assert main(["--conf", str(conf), "getinfo"]) == 0
    finally:
        f.close()
    assert result_of(capsys) == {"ok": True}


def test_bad_network_in_the_file_names_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "config").write_text("\nnetwork=mainnet\n")
    assert main(["--data-dir", str(tmp_path), "getinfo"]) == 2
    err = capsys.readouterr().err
    assert err == f"invreq call: {tmp_path / 'config'}:2: unknown network 'mainnet'\n"


# --- a closed stdout ----------------------------------------------------------------------


def test_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    # More than a pipe holds (64 KiB), so the client is still writing when the reader
    # leaves, as with `invreq call listinvoicerequests | head -c 10`.
    big = json.dumps({"jsonrpc": "2.0", "id": "x", "result": {"s": "a" * 300_000}})
    f = FakeServer(tmp_path / "big-rpc", big.encode() + b"\n\n")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "invreq.cli", "call", "--rpc-file", str(f.path), "getinfo"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.read(10) == b'{\n  "s": "'
        proc.stdout.close()
        err = proc.stderr.read()
        proc.stderr.close()
        assert proc.wait(timeout=60) == 0
    finally:
        f.close()
    assert err == b""


def test_closed_pipe_in_a_shell_pipeline(server: Server) -> None:
    for _ in range(40):  # listinvoicerequests grows past what a pipe holds
        server.rpc.call("invoicerequest", {"amount": "1sat", "description": "x" * 1000})
    cmd = (
        f"{shlex.quote(sys.executable)} -m invreq.cli call --rpc-file "
        f"{shlex.quote(str(server.socket_path))} listinvoicerequests | head -c 10"
    )
    p = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=60)
    assert p.stdout == '{\n  "invoi'
    assert p.stderr == ""


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1000", 1000),
        ("-5", -5),
        ("1.5", 1.5),
        ("true", True),
        ("false", False),
        ("null", None),
        ('"1000"', "1000"),
        ("[1, 2]", [1, 2]),
        ('{"a": 1}', {"a": 1}),
        ("10sat", "10sat"),
        ("hello world", "hello world"),
        ("0" * 64, "0" * 64),  # leading zeros are not a JSON number
        ("NaN", "NaN"),  # Python's json accepts these; JSON does not
        ("Infinity", "Infinity"),
        ("", ""),
    ],
)
def test_parse_param(text: str, value: Any) -> None:
    assert parse_param(text) == value
