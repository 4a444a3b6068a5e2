"""Logging in CLN's line format, to stderr or a file that SIGHUP reopens (for rotation).

A line: ``2026-11-25T10:45:08.123Z INFO  invreq.server: listening on ...`` (UTC). invreq
logs one line per failed request (method, code, message) and never logs secrets: the
payer secret never leaves its file and request bodies are not logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["setup_logging"]

FORMAT = "%(asctime)s.%(msecs)03dZ %(levelname)-5s %(name)s: %(message)s"
DATEFMT = "%Y-%m-%dT%H:%M:%S"


def setup_logging(level: str, log_file: Path | None) -> Callable[[], None]:
    """Configure the root logger; return the function that reopens the log file."""
    formatter = logging.Formatter(FORMAT, DATEFMT)
    formatter.converter = time.gmtime
    handler: logging.Handler
    if log_file is not None:
        log_file = log_file.expanduser()
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
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
