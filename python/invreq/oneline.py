"""Text from outside, made into one printable line: the one home for that rule.

Whatever a client, a payee, a node or a hardware device says (a parameter name, a label,
``evidence``, a device's error message, its name or version) may carry a line feed that
forges a whole log line, an ESC that drives the operator's terminal, or U+202E that reverses
what the operator reads. Before such text reaches a log line, an RPC error or a stored
record, it goes through :func:`oneline`: printable ASCII stays as is, a backslash is doubled
(so the escaping cannot itself be forged), and every other character becomes ``\\u{hex}``.
The result is unambiguous (the original can be read back from it) and never longer than
``cap`` characters plus a note of how much was cut.
"""

from __future__ import annotations

__all__ = ["CAP", "escape", "oneline"]

#: Characters of escaped text kept by default; the rest is counted, not shown.
CAP = 200


def escape(text: str) -> str:
    """Printable ASCII as is, a backslash doubled, anything else as ``\\u{hex}``."""
    if text.isascii() and text.isprintable() and "\\" not in text:
        return text  # the common case, without building a list
    out = []
    for c in text:
        if c == "\\":
            out.append("\\\\")
        elif " " <= c <= "~":
            out.append(c)
        else:
            out.append(f"\\u{{{ord(c):x}}}")
    return "".join(out)


def oneline(value: object, cap: int = CAP) -> str:
    """``str(value)`` escaped to one printable line of at most ``cap`` characters (plus a
    ``... (N chars)`` note when cut; an escape sequence is never cut in half)."""
    text = value if isinstance(value, str) else str(value)
    escaped = escape(text)
    if len(escaped) <= cap:
        return escaped
    shown: list[str] = []
    used = 0
    for c in text:
        e = escape(c)
        if used + len(e) > cap:
            break
        shown.append(e)
        used += len(e)
    return f"{''.join(shown)}... ({len(text)} chars)"
