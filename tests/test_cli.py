"""The `invreq` command line: config files for `serve`, and `invreq call` end to end."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _service_fixtures import Server
from pyln.client import LightningRpc


def invreq(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invreq.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_config_files_set_options_and_the_command_line_wins(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "signet").mkdir(parents=True)
    (data / "config").write_text("# chosen in the file\nnetwork=signet\nhttp-port=1\n")
    (data / "signet" / "config").write_text("log-level=debug\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "invreq.cli", "serve", "--data-dir", str(data), "--http-port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        sock = data / "signet" / "invreq-rpc"
        deadline = time.monotonic() + 30
        while not sock.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        info = LightningRpc(str(sock)).call("getinfo")
        assert info["network"] == "signet"  # from DATA_DIR/config
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "DEBUG" in err  # from DATA_DIR/signet/config
    assert "http://" not in err  # --http-port 0 on the command line beat http-port=1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bogus=1\n", "config:1: unknown option 'bogus'"),
        ("\n# c\nhttp-port=abc\n", "config:3: argument --http-port: invalid int value: 'abc'"),
        ("network\n", "config:1: option 'network' needs a value"),
        ("data-dir=/x\n", "config:1: unknown option 'data-dir'"),
    ],
)
def test_bad_config_lines_stop_the_start_with_their_line(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "config").write_text(text)
    p = invreq("serve", "--data-dir", str(tmp_path))
    assert p.returncode == 2 and message in p.stderr, p.stderr


def test_conf_option_reads_only_that_file(tmp_path: Path) -> None:
    (tmp_path / "config").write_text("bogus=1\n")  # ignored: --conf replaces it
    conf = tmp_path / "other.conf"
    conf.write_text(f"data-dir={tmp_path}\nhttp-host=0.0.0.0\n")
    p = invreq("serve", "--conf", str(conf))
    assert p.returncode == 2 and "--http-host: 0.0.0.0 is not a loopback address" in p.stderr
    p = invreq("serve", "--conf", str(tmp_path / "missing.conf"))
    assert p.returncode == 2 and "missing.conf" in p.stderr


def test_serve_help_lists_every_option_with_its_default() -> None:
    p = invreq("serve", "--help")
    for option in (
        "--data-dir",
        "--network",
        "--http-host",
        "--http-port",
        "--db",
        "--log-level",
        "--conf",
    ):
        assert option in p.stdout
    assert "(default: 3010)" in p.stdout


def test_invreq_call_through_the_console_entry(server: Server) -> None:
    common = ["--data-dir", str(server.data_dir), "--network", "regtest"]
    p = invreq("call", *common, "invoicerequest", "10sat", "from the cli")
    assert p.returncode == 0, p.stderr
    made = json.loads(p.stdout)
    assert made["bolt12"].startswith("lnr1")
    p = invreq("call", *common, "-k", "listinvoicerequests", f"invreq_id={made['invreq_id']}")
    assert json.loads(p.stdout)["invoicerequests"][0]["invreq_id"] == made["invreq_id"]
    p = invreq("call", *common, "disableinvoicerequest", "00" * 32)
    assert p.returncode == 1 and json.loads(p.stdout)["code"] == -1


def test_serve_help_shows_every_option_of_config_with_its_default() -> None:
    """Options come from Config's fields (one source): each is listed with help and default."""
    import dataclasses
    import itertools

    from invreq.config import Config

    out = invreq("serve", "--help").stdout
    text = " ".join(out[out.index("options:") :].split())
    options = ["--" + f.name.replace("_", "-") + " " for f in dataclasses.fields(Config)]
    starts = [text.index(o) for o in options] + [text.index("--conf ")]
    for start, end in itertools.pairwise(starts):
        assert "(default: " in text[start:end], text[start:end]
    hwi_key_path = text[starts[options.index("--hwi-key-path ")] :]
    assert hwi_key_path.startswith("--hwi-key-path HWI_KEY_PATH payer key path with --signer")
    assert "(default: m/9735h/0h/0h)" in hwi_key_path[:120]
