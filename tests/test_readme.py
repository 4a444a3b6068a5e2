"""The documents' walkthroughs run as written, and print what the documents show.

Every ```console block preceded by ``<!-- walkthrough -->`` is part of its document's
walkthrough, in the README (the first steps) and in every page of ``docs/`` and
``benches/README.md`` (each page that marks blocks is a walkthrough of its own). One
document's ``$ `` lines run in order in one bash, from the checkout, with ``HOME`` a fresh
temporary directory (so ``~/.invreq`` is new); the other lines are the output each command
must print. Three things differ from a reader's machine and are substituted, nothing else:
the HTTP port (the README's 3014 becomes a free port in the commands, as tests must not take
a fixed one), the home directory (shown as ``/home/you``) and the venv (``.venv/`` in a
command is the venv the suite runs in, so each supported Python runs the walkthrough).
Outputs are compared line by line after ids, ``lnr1`` strings, runes and timestamps, which
differ on every run, are replaced by placeholders. The server is the real ``invreq serve``
the walkthrough starts (SQLite, software key); no hardware, no PostgreSQL.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from _service_fixtures import free_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
#: Where walkthrough blocks may live: the README, then the detail pages.
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "benches" / "README.md"]
#: The README's walkthrough had 13 commands when its detail moved to docs/ (issue 27):
#: wherever the blocks live, none may be dropped.
WALKTHROUGH_COMMANDS = 13
MARK = "<!-- walkthrough -->"
README_PORT = "3014"
#: Below pytest's own 120 s, so a walkthrough that hangs shows the output it got to.
TIMEOUT = 100
#: The reader's `.venv` is, here, the venv the suite runs in: make's VENV, such as
#: .venv-3.13 when `make test-pythons` runs the suite on each supported Python, so the
#: walkthrough runs on the interpreter under test (the checkout's .venv when not in a venv).
VENV = Path(sys.prefix) if sys.prefix != sys.base_prefix else ROOT / ".venv"
_VENV_PATH = re.compile(r"(?<![\w./-])\.venv/")


def walkthrough(text: str) -> list[tuple[str, list[str]]]:
    """(command, expected output lines) for every command of the marked blocks, in order."""
    steps: list[tuple[str, list[str]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == MARK:
            assert lines[i + 1] == "```console", f"line {i + 2}: {MARK} before a non-console block"
            i += 2
            while lines[i] != "```":
                if lines[i].startswith("$ "):
                    steps.append((lines[i][2:], []))
                else:
                    assert steps, f"line {i + 1}: output before any command"
                    steps[-1][1].append(lines[i])
                i += 1
        i += 1
    return steps


_PLACEHOLDERS = [
    (re.compile(r"lnr1[0-9a-z]+"), "<lnr>"),
    (re.compile(r"lni1[0-9a-z]+"), "<lni>"),
    (re.compile(r"\b0[23][0-9a-f]{64}\b"), "<node-id>"),
    (re.compile(r"\b[0-9a-f]{64}\b"), "<hex32>"),
    (re.compile(r"[A-Za-z0-9_-]{40,}={0,2}"), "<rune>"),
    (re.compile(r'("created_at": ?|created_at=)[0-9]{10}'), r"\1<time>"),
]


def normalise(line: str, home: str, port: str) -> str:
    line = line.replace(home, "/home/you").replace(f"127.0.0.1:{port}", "127.0.0.1:3014")
    for pattern, placeholder in _PLACEHOLDERS:
        line = pattern.sub(placeholder, line)
    return line.rstrip()


def _marked() -> list[Path]:
    return [doc for doc in DOCUMENTS if walkthrough(doc.read_text())]


def test_the_walkthroughs_are_all_there() -> None:
    """The README keeps its first steps, and no block was lost on the way to docs/."""
    assert len(walkthrough(README.read_text())) >= 10, "the first steps are marked in the README"
    total = sum(len(walkthrough(doc.read_text())) for doc in _marked())
    assert total >= WALKTHROUGH_COMMANDS


def _needs_a_device(doc: Path) -> bool:
    """A walkthrough that starts the service with a device needs hwilib (the hwi extra,
    Python 3.11 and 3.12 only): marked ``hwilib``, it is reported not run without it."""
    return any(_DEVICE_OPTION.search(command) for command, _ in walkthrough(doc.read_text()))


_DEVICE_OPTION = re.compile(r"--[a-z-]*(signer|approver) hwi\b")


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param(doc, marks=[pytest.mark.hwilib] if _needs_a_device(doc) else [])
        for doc in _marked()
    ],
    ids=lambda doc: str(doc.relative_to(ROOT)),
)
def test_the_readme_walkthrough_runs_verbatim_and_prints_what_it_shows(
    doc: Path, tmp_path: Path
) -> None:
    name = doc.relative_to(ROOT)
    steps = walkthrough(doc.read_text())
    port = str(free_port())
    home = tmp_path / "home"
    home.mkdir()
    script = ["exec 2>&1"]
    for n, (command, _) in enumerate(steps):
        script.append(f"printf '\\n@@step {n}@@\\n'")
        command = re.sub(rf"\b{README_PORT}\b", port, command)
        script.append(_VENV_PATH.sub(f"{VENV}/", command))
    script.append("printf '\\n@@end@@\\n'")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["HOME"] = str(home)
    proc = subprocess.Popen(
        ["bash", "-c", "\n".join(script)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        text=True,
    )
    with proc:  # the pipe is closed whatever happens (a leaked one fails a later test)
        try:
            out, _ = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            pytest.fail(f"{name}: the walkthrough did not finish in {TIMEOUT} s:\n{out}")
        finally:
            # Whatever the walkthrough left running (it stops its server itself).
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert "@@end@@" in out, f"the walkthrough stopped early:\n{out}"
    chunks = re.split(r"\n@@step (\d+)@@\n", out.split("\n@@end@@")[0])
    got = {int(chunks[i]): chunks[i + 1] for i in range(1, len(chunks), 2)}
    for n, (command, expected) in enumerate(steps):
        actual = [normalise(x, str(home), port) for x in got[n].splitlines()]
        want = [normalise(x, "/home/you", "3014") for x in expected]
        assert actual == want, (
            f"{name} step {n}: $ {command}\n--- {name}\n"
            + "\n".join(want)
            + "\n--- ran\n"
            + "\n".join(actual)
        )
