"""Print pyproject.toml's requirements for the groups named on the command line, one a line.

``run`` is ``[project] dependencies``; any other name is that optional-dependency extra. The
Makefile installs each group when a target first needs it (``make run``: run and the
runtime extras; ``make test``: test; ``make lint``: dev; ``make bench``: bench), from this
one list, so pyproject.toml stays the only place requirements are written.

    python contrib/requirements.py run hwi,postgres > requirements.txt
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def requirements(groups: list[str]) -> list[str]:
    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    project = project["project"]
    out: list[str] = []
    extras = project["optional-dependencies"]
    for group in groups:
        out += project["dependencies"] if group == "run" else extras[group]
    return out


if __name__ == "__main__":
    names = [g for arg in sys.argv[1:] for g in arg.split(",") if g]
    print("\n".join(requirements(names)))
