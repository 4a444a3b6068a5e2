"""Logging in CLN's line format, to stderr or a file that SIGHUP reopens (for rotation).

A line: ``2026-11-25T10:45:08.123Z INFO  invreq.server: listening on ...`` (UTC). invreq
logs one line per failed request (method, code, message) and never logs secrets: the
payer secret never leaves its file, request bodies are not logged, and a malformed HTTP
request is one line naming the error, never aiohttp's traceback (whose message quotes the
offending header line: a ``Rune`` header's rune). The log file is created owner-only. No
line ever carries a raw control character (:class:`OneLineFormatter`), whatever it quotes.
"""

from __future__ import annotations

import io
import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp.http_exceptions import HttpProcessingError

from invreq import secretfile

__all__ = ["OneLineFormatter", "quiet_client_errors", "setup_logging"]

FORMAT = "%(asctime)s.%(msecs)03dZ %(levelname)-5s %(name)s: %(message)s"
DATEFMT = "%Y-%m-%dT%H:%M:%S"


class _OwnerOnlyFileHandler(logging.FileHandler):
    """A FileHandler whose file, when it creates one (at start, or at the first line after
    a rotation), is 0600: lines can name requests, labels and peers."""

    def _open(self) -> io.TextIOWrapper:
        path = Path(self.baseFilename)
        secretfile.owner_only(path)  # creates it 0600, or narrows an existing one
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        # Always appending: the handler is made with the default mode, "a".
        return open(fd, "a", encoding=self.encoding, errors=self.errors)


class _OneLineClientErrors(logging.Filter):
    """aiohttp logs a request it cannot parse as an ERROR with a traceback whose message
    quotes the offending bytes: a header line (``Rune: <rune>`` followed by a control
    character, ``Rune : <rune>``, a line over the 8190-byte limit) is a credential in the
    log. Such a record becomes one INFO line naming the error class and its HTTP status
    only. Installed on aiohttp's server logger, the only one that logs parser errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            return True
        what = record.getMessage()  # "Error handling request from <peer>": no request bytes
        record.msg = f"{what}: malformed HTTP request ({type(exc).__name__}, {exc.code});"
        record.msg += " its bytes are not logged"
        record.args = None
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        if record.levelno > logging.INFO:
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


#: Characters no log line may carry raw: C0 and C1 controls (a line feed forges a line, an
#: ESC drives the operator's terminal), DEL, the Unicode line and paragraph separators, and
#: the bidirectional controls that reorder what the operator reads.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escaped(m: re.Match[str]) -> str:
    return f"\\u{{{ord(m.group()):x}}}"


class OneLineFormatter(logging.Formatter):
    """The backstop under :func:`invreq.oneline.oneline`: whatever a line quotes, it is one
    line of printable text. Control characters in the message become ``\\u{hex}`` (the
    notation of ``oneline``); a traceback's own lines (a bug's, never a client's) follow
    indented by ``"  | "``, so text inside an exception message cannot pass for a line."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return _UNPRINTABLE.sub(_escaped, super().formatMessage(record))

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        first, nl, rest = text.partition("\n")
        if not nl:
            return first
        lines = [_UNPRINTABLE.sub(_escaped, line) for line in rest.split("\n")]
        return first + "".join("\n  | " + line for line in lines)


def quiet_client_errors() -> None:
    """Install ``_OneLineClientErrors`` on aiohttp's server logger (once)."""
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _OneLineClientErrors) for f in server.filters):
        server.addFilter(_OneLineClientErrors())


def setup_logging(level: str, log_file: Path | None) -> Callable[[], None]:
    """Configure the root logger; return the function that reopens the log file."""
    formatter = OneLineFormatter(FORMAT, DATEFMT)
    formatter.converter = time.gmtime
    handler: logging.Handler
    if log_file is not None:
        log_file = log_file.expanduser()
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = _OwnerOnlyFileHandler(log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet_client_errors()
    if level != "DEBUG":
        # hwilib logs every device message at INFO, approval texts included.
        logging.getLogger("hwilib").setLevel(logging.WARNING)

    def reopen() -> None:
        if isinstance(handler, logging.FileHandler):
            # Closed, a FileHandler opens its file again at the next line: after a
            # rotation that is the new file at the same path.
            handler.close()
            logging.getLogger("invreq").info("log file reopened")

    return reopen
