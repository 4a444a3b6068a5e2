"""CLN-style config files: ``key=value`` or bare ``key`` lines, comments and ``include``.

Operators who run lightningd already write its config format, so invreq reads the same
one. Reading (:func:`read_settings`) and checking against the known options
(:func:`apply_settings`) are separate steps so every setting keeps the file and line it
came from, and each error can point at the line to fix: ``invreq.conf:7: unknown option
'http-prot'``.

The format, line by line (after stripping leading and trailing whitespace):

- an empty line is ignored;
- a line whose first character is ``#`` is a comment (a ``#`` later in a line is part of
  the value, as in CLN);
- ``include PATH`` reads another file in place; a relative PATH is taken from the
  directory of the file that includes it; a file that includes itself, directly or
  through others, is an error; includes nest at most 8 deep, at most 64 files are read
  in all, 1 MiB together, and each must be a regular file (not a device or a FIFO);
- ``key=value`` sets an option (spaces around the first ``=`` are ignored);
- a bare ``key`` is a flag (its value is ``None``).
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from pathlib import Path

__all__ = ["ConfFileError", "Setting", "apply_settings", "read_settings"]

#: ``include`` then whitespace then the path; a bare ``include`` is caught separately.
_INCLUDE = re.compile(r"include(?:\s+(?P<path>.*))?")

KINDS = ("value", "flag")


class ConfFileError(ValueError):
    """A config file line that cannot be used; the message is ``path:lineno: problem``."""

    def __init__(self, path: Path, lineno: int, problem: str) -> None:
        super().__init__(f"{path}:{lineno}: {problem}")
        self.path = path
        self.lineno = lineno
        self.problem = problem


@dataclasses.dataclass(frozen=True)
class Setting:
    """One ``key[=value]`` line, with where it was written (for error messages)."""

    key: str
    value: str | None
    path: Path
    lineno: int


#: Bounds on what reading a config may cost (issue 25: exponential includes, /dev/zero and
#: a FIFO were each read without end): how deep includes nest, how many files are read in
#: all (an include read twice counts twice), and their bytes together.
MAX_INCLUDE_DEPTH = 8
MAX_FILES_READ = 64
MAX_TOTAL_BYTES = 1024 * 1024


class _Budget:
    """What is left to read of one config (files and bytes)."""

    def __init__(self) -> None:
        self.files = MAX_FILES_READ
        self.bytes = MAX_TOTAL_BYTES


def read_settings(path: Path) -> list[Setting]:
    """Every setting of ``path`` and the files it includes, in the order they appear.

    A missing top file raises ``FileNotFoundError`` (the caller decides whether a config
    file is optional); a missing or unreadable include file is a ``ConfFileError`` naming
    the include line, since that line is what the operator must fix. Only regular files
    are read, within ``MAX_INCLUDE_DEPTH``, ``MAX_FILES_READ`` and ``MAX_TOTAL_BYTES``.
    """
    budget = _Budget()
    text = _read_text(path, budget, path, 0)
    out: list[Setting] = []
    _parse(path, text, (_identity(path),), out, budget)
    return out


def apply_settings(settings: list[Setting], known: dict[str, str]) -> dict[str, str | None]:
    """Check ``settings`` against ``known`` options; return option key -> value.

    ``known`` maps each long option name (without ``--``) to its kind: ``"value"`` (must be
    given a non-empty value) or ``"flag"`` (must be given none; its value is ``None``). A
    later setting of the same key overrides an earlier one, so an included file can be
    overridden by lines after the include, as on a command line.
    """
    for name, k in known.items():
        if k not in KINDS:
            raise ValueError(f"option {name!r}: kind must be one of {KINDS}, not {k!r}")
    out: dict[str, str | None] = {}
    for s in settings:
        kind = known.get(s.key)
        if kind is None:
            raise ConfFileError(s.path, s.lineno, f"unknown option {s.key!r}")
        if kind == "value" and not s.value:
            raise ConfFileError(s.path, s.lineno, f"option {s.key!r} needs a value")
        if kind == "flag" and s.value is not None:
            raise ConfFileError(
                s.path, s.lineno, f"option {s.key!r} is a flag and takes no value (write {s.key})"
            )
        out[s.key] = s.value
    return out


# --- reading ----------------------------------------------------------------------------


def _identity(path: Path) -> Path:
    """The file's canonical path, so ``./a.conf`` and ``a.conf`` are seen as one file."""
    return path.resolve()


def _read_text(path: Path, budget: _Budget, where: Path, lineno: int) -> str:
    """The file as text; invalid UTF-8 is reported at its line, not as a traceback. A file
    that is not a regular file (a device, a FIFO: opened without blocking, never read), or
    beyond what is left of the budget, is a ``ConfFileError`` at ``where:lineno`` (the
    include line, or the top file's line 0)."""
    budget.files -= 1
    if budget.files < 0:
        raise ConfFileError(where, lineno, f"more than {MAX_FILES_READ} config files read")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfFileError(where, lineno, f"{path} is not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(budget.bytes + 1)
    finally:
        os.close(fd)
    budget.bytes -= len(data)
    if budget.bytes < 0:
        raise ConfFileError(where, lineno, f"config files larger than {MAX_TOTAL_BYTES} bytes")
    try:
        # utf-8-sig: an editor's byte-order mark must not become part of the first key.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        lineno = data.count(b"\n", 0, e.start) + 1
        raise ConfFileError(path, lineno, "not valid UTF-8") from e


def _parse(
    path: Path, text: str, stack: tuple[Path, ...], out: list[Setting], budget: _Budget
) -> None:
    """Append the settings of one file to ``out``; ``stack`` holds the files including it."""
    # Split on "\n" only (strip removes a "\r"): str.splitlines also breaks on form feeds
    # and Unicode separators, which would make line numbers disagree with editors.
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _INCLUDE.fullmatch(line)
        if m is not None:
            _include(path, lineno, m["path"], stack, out, budget)
            continue
        key, eq, value = line.partition("=")
        key = key.strip()
        if not key:
            raise ConfFileError(path, lineno, "missing option name before '='")
        if key == "include":
            raise ConfFileError(path, lineno, "write 'include PATH', without '='")
        out.append(Setting(key, value.strip() if eq else None, path, lineno))


def _include(
    path: Path,
    lineno: int,
    target: str | None,
    stack: tuple[Path, ...],
    out: list[Setting],
    budget: _Budget,
) -> None:
    if not target:
        raise ConfFileError(path, lineno, "include needs a file name")
    if len(stack) > MAX_INCLUDE_DEPTH:
        raise ConfFileError(path, lineno, f"includes nested deeper than {MAX_INCLUDE_DEPTH}")
    included = path.parent / target
    ident = _identity(included)
    if ident in stack:
        chain = " -> ".join(str(p) for p in (*stack, ident))
        raise ConfFileError(path, lineno, f"include cycle: {chain}")
    try:
        text = _read_text(included, budget, path, lineno)
    except OSError as e:
        raise ConfFileError(
            path, lineno, f"cannot read included file {included}: {e.strerror or e}"
        ) from e
    _parse(included, text, (*stack, ident), out, budget)
