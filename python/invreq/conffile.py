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
  through others, is an error;
- ``key=value`` sets an option (spaces around the first ``=`` are ignored);
- a bare ``key`` is a flag (its value is ``None``).
"""

from __future__ import annotations

import dataclasses
import re
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


def read_settings(path: Path) -> list[Setting]:
    """Every setting of ``path`` and the files it includes, in the order they appear.

    A missing top file raises ``FileNotFoundError`` (the caller decides whether a config
    file is optional); a missing or unreadable include file is a ``ConfFileError`` naming
    the include line, since that line is what the operator must fix.
    """
    text = _read_text(path)
    out: list[Setting] = []
    _parse(path, text, (_identity(path),), out)
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


def _read_text(path: Path) -> str:
    """The file as text; invalid UTF-8 is reported at its line, not as a traceback."""
    data = path.read_bytes()
    try:
        # utf-8-sig: an editor's byte-order mark must not become part of the first key.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        lineno = data.count(b"\n", 0, e.start) + 1
        raise ConfFileError(path, lineno, "not valid UTF-8") from e


def _parse(path: Path, text: str, stack: tuple[Path, ...], out: list[Setting]) -> None:
    """Append the settings of one file to ``out``; ``stack`` holds the files including it."""
    # Split on "\n" only (strip removes a "\r"): str.splitlines also breaks on form feeds
    # and Unicode separators, which would make line numbers disagree with editors.
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _INCLUDE.fullmatch(line)
        if m is not None:
            _include(path, lineno, m["path"], stack, out)
            continue
        key, eq, value = line.partition("=")
        key = key.strip()
        if not key:
            raise ConfFileError(path, lineno, "missing option name before '='")
        if key == "include":
            raise ConfFileError(path, lineno, "write 'include PATH', without '='")
        out.append(Setting(key, value.strip() if eq else None, path, lineno))


def _include(
    path: Path, lineno: int, target: str | None, stack: tuple[Path, ...], out: list[Setting]
) -> None:
    if not target:
        raise ConfFileError(path, lineno, "include needs a file name")
    included = path.parent / target
    ident = _identity(included)
    if ident in stack:
        chain = " -> ".join(str(p) for p in (*stack, ident))
        raise ConfFileError(path, lineno, f"include cycle: {chain}")
    try:
        text = _read_text(included)
    except OSError as e:
        raise ConfFileError(
            path, lineno, f"cannot read included file {included}: {e.strerror or e}"
        ) from e
    _parse(included, text, (*stack, ident), out)
