"""The README's walkthrough runs as written, and prints what the README shows.

Every ```console block preceded by ``<!-- walkthrough -->`` is part of it. The blocks'
``$ `` lines run in order in one bash, from the checkout, with ``HOME`` a fresh temporary
directory (so ``~/.invreq`` is new); the other lines are the output each command must
print. Two things differ from a reader's machine and are substituted, nothing else: the
HTTP port (the README's 3014 becomes a free port in the commands, as tests must not take a
fixed one) and
the home directory (shown as ``/home/you``). Outputs are compared line by line after
ids, ``lnr1`` strings, runes and timestamps, which differ on every run, are replaced by
placeholders. The server is the real ``invreq serve`` the README starts (SQLite, software
key); no hardware, no PostgreSQL.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

from _service_fixtures import free_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MARK = "<!-- walkthrough -->"
README_PORT = "3014"
TIMEOUT = 120


def walkthrough(text: str) -> list[tuple[str, list[str]]]:
    """(command, expected output lines) for every command of the marked blocks, in order."""
    steps: list[tuple[str, list[str]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == MARK:
            assert lines[i + 1] == "```console", (
                f"README line {i + 2}: {MARK} before a non-console block"
            )
            i += 2
            while lines[i] != "```":
                if lines[i].startswith("$ "):
                    steps.append((lines[i][2:], []))
                else:
                    assert steps, f"README line {i + 1}: output before any command"
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


def test_the_readme_walkthrough_runs_verbatim_and_prints_what_it_shows(tmp_path: Path) -> None:
    steps = walkthrough(README.read_text())
    assert len(steps) >= 10, "the walkthrough is marked in the README"
    port = str(free_port())
    home = tmp_path / "home"
    home.mkdir()
    script = ["exec 2>&1"]
    for n, (command, _) in enumerate(steps):
        script.append(f"printf '\\n@@step {n}@@\\n'")
        script.append(re.sub(rf"\b{README_PORT}\b", port, command))
    script.append("printf '\\n@@end@@\\n'")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["HOME"] = str(home)
    # The checkout's .venv is what `source .venv/bin/activate` gives the reader.
    proc = subprocess.Popen(
        ["bash", "-c", "\n".join(script)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
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
            f"README step {n}: $ {command}\n--- README\n"
            + "\n".join(want)
            + "\n--- ran\n"
            + "\n".join(actual)
        )
