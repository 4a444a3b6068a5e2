"""The `invreq` command line: config files for `serve`, and `invreq call` end to end."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _service_fixtures import Server
from invreq.bolt12 import NETWORKS
from invreq.config import DEFAULT_HTTP_PORTS, Config
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
        sock = data / "signet" / "lightning-rpc"
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
    assert "(default: by network, bitcoin 3010, testnet 3011" in " ".join(p.stdout.split())


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
    # Each option is looked for after the one before it: a help text may name an option
    # listed later (--payout-approver's names --hwi-approval-path).
    starts: list[int] = []
    for o in [*options, "--conf "]:
        starts.append(text.index(o, starts[-1] + 1 if starts else 0))
    for start, end in itertools.pairwise(starts):
        assert "(default: " in text[start:end], text[start:end]
    hwi_key_path = text[starts[options.index("--hwi-key-path ")] :]
    assert hwi_key_path.startswith("--hwi-key-path HWI_KEY_PATH payer key path with --signer")
    assert "(default: m/9735h/0h/0h)" in hwi_key_path[:120]


# --- first steps: start-up failures are one line naming the option ------------------------


def one_line(p: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed start prints (log lines from before the failure aside)."""
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr
    lines = [x for x in p.stderr.splitlines() if x.startswith("invreq serve:")]
    assert len(lines) == 1, p.stderr
    return lines[0]


def test_http_port_in_use_is_one_line_naming_the_option(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        p = invreq("serve", "--data-dir", str(tmp_path), "--network", "regtest",
                   "--http-port", str(port))  # fmt: skip
    line = one_line(p)
    assert f"--http-port: cannot listen on 127.0.0.1:{port}: already in use" in line
    assert line.endswith("choose another --http-port")
    assert not (tmp_path / "regtest" / "lightning-rpc").exists()  # what it opened, it closed


def test_http_port_in_use_with_workers(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        p = invreq("serve", "--data-dir", str(tmp_path), "--network", "regtest",
                   "--http-port", str(port), "--workers", "2")  # fmt: skip
    assert f"--http-port: cannot listen on 127.0.0.1:{port}" in one_line(p)


def test_metrics_port_in_use_is_one_line_naming_the_option(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        p = invreq("serve", "--data-dir", str(tmp_path), "--network", "regtest",
                   "--http-port", "0", "--metrics-port", str(port))  # fmt: skip
    expected = f"invreq serve: --metrics-port: cannot listen on 127.0.0.1:{port}: already in use"
    assert one_line(p).startswith(expected)


def test_each_network_has_its_own_default_port() -> None:
    ports = {n: Config(network=n).http_port for n in NETWORKS}
    assert ports["bitcoin"] == 3010
    assert len(set(ports.values())) == len(NETWORKS)
    assert ports == DEFAULT_HTTP_PORTS
    assert Config(network="regtest", http_port=0).http_port == 0  # given: kept


def serve_without(module: str, *args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`invreq serve` in a process where ``module`` cannot be imported, as on a Python the
    extra does not install on (``None`` in sys.modules makes every import of it fail)."""
    code = (
        f"import sys; sys.modules[{module!r}] = None; from invreq.cli import main; "
        "sys.exit(main(sys.argv[1:]))"
    )
    argv = ["serve", "--data-dir", str(tmp_path), "--network", "regtest", "--http-port", "0"]
    return subprocess.run(
        [sys.executable, "-c", code, *argv, *args], capture_output=True, text=True, timeout=60
    )


def test_signer_hwi_without_hwilib_says_what_to_install(tmp_path: Path) -> None:
    p = serve_without("hwilib", "--signer", "hwi", "--hwi-fingerprint", "00000000",
                      tmp_path=tmp_path)  # fmt: skip
    line = one_line(p)
    assert line.startswith("invreq serve: --signer hwi needs hwilib, which is not installed: ")
    assert "pip install 'invreq[hwi]' on Python 3.11 or 3.12" in line


def test_approver_hwi_without_hwilib_says_what_to_install(tmp_path: Path) -> None:
    p = serve_without("hwilib", "--approver", "hwi", "--hwi-fingerprint", "00000000",
                      tmp_path=tmp_path)  # fmt: skip
    assert "--approver hwi needs hwilib" in one_line(p)


def test_postgres_without_asyncpg_says_what_to_install(tmp_path: Path) -> None:
    p = serve_without("asyncpg", "--db", "postgresql://invreq@127.0.0.1:1/invreq",
                      tmp_path=tmp_path)  # fmt: skip
    assert "--db postgresql://... needs asyncpg" in one_line(p)
    assert "pip install 'invreq[postgres]'" in one_line(p)
