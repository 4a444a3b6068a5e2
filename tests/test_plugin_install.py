"""The CLN plugin's documented install, run exactly as documented, in a clean virtualenv.

docs/payments-and-plugin.md gives one command (the ``sh`` block after
``<!-- plugin-install -->``) that installs invreq with the plugin and everything it needs.
This test makes a fresh venv, runs that line with the venv's Python first on ``PATH`` from
the checkout (pip builds the wheel from it; the dependencies come from the package registry,
pinned by constraints.txt), then ``pip check``, then starts the installed
``invreq-cln-plugin`` from outside the checkout and does lightningd's handshake with it:
``getmanifest`` and ``init``. What stands in for lightningd is tests/fake_plugin_host.py,
which speaks lightningd's plugin protocol (it is not a Lightning node).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_plugin_host import PluginHost

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "payments-and-plugin.md"
MARK = "<!-- plugin-install -->"


def documented_command() -> str:
    lines = [line.strip() for line in DOC.read_text().splitlines()]
    at = lines.index(MARK)
    assert lines[at + 1] == "```sh", f"{DOC.name}: {MARK} must be followed by a sh block"
    end = lines.index("```", at + 2)
    block = [line for line in lines[at + 2 : end] if line]
    assert len(block) == 1, f"{DOC.name}: the plugin install is one command, found {block}"
    return block[0]


# pip builds the native core (cargo, release mode): minutes on a fresh clone.
@pytest.mark.timeout(1800)
def test_the_documented_install_gives_a_plugin_that_answers_lightningd(tmp_path: Path) -> None:
    command = documented_command()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PIP_USER")
    }
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv))
    installed = subprocess.run(
        ["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500
    )
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    python = str(venv / "bin" / "python")
    check = subprocess.run(
        [python, "-m", "pip", "check"], env=env, capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0, check.stdout + check.stderr
    # Nothing from the checkout or the test venv: the plugin runs on what was installed.
    code = "import importlib.util as u, invreq; print(u.find_spec('pyln') is None, invreq.__file__)"
    probe = subprocess.run(
        [python, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert probe.returncode == 0, probe.stderr
    no_pyln, where = probe.stdout.split()
    assert no_pyln == "True"  # the plugin needs no pyln-client
    assert Path(where).is_relative_to(venv), where

    host = PluginHost(tmp_path / "lightning", b"\x42" * 32)
    try:
        manifest, init = host.start(
            [str(venv / "bin" / "invreq-cln-plugin")],
            {"invreq-rpc-file": str(tmp_path / "no-invreq-yet"), "invreq-timeout": "1"},
            env=env,
            cwd=tmp_path,
        )
        assert {o["name"] for o in manifest["options"]} == {"invreq-rpc-file", "invreq-timeout"}
        assert manifest["hooks"] == [{"name": "onion_message_recv_secret", "before": ["offers"]}]
        assert init == {}
        assert host.proc is not None and host.proc.poll() is None
        # invreq is not running: one line, not a warning (the usual first start).
        assert [lvl for lvl, _ in host.logs] == ["info"], host.logs
        assert "does not answer yet" in host.logs[0][1]
        assert "cannot work" not in host.log_text()
    finally:
        host.stop()
