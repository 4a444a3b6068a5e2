"""invreq: BOLT 12 invoice_requests (``lnr1...``) as a CLN-compatible service.

Public modules: :mod:`invreq.bolt12` (the byte layer), :mod:`invreq.errors`.
The native extension ``invreq._core`` is private.

Importing the package loads nothing else: ``invreq-cln-plugin`` runs inside lightningd,
and whatever is broken in an install (the native core, a dependency) must not stop it from
answering lightningd's ``getmanifest`` (lightningd exits when a plugin it was told to load
dies before that). ``invreq.bolt12``, ``invreq.errors`` and ``invreq.__version__`` are
loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from invreq import bolt12, errors
    from invreq._core import __version__

__all__ = ["__version__", "bolt12", "errors"]


def __getattr__(name: str) -> Any:
    if name in ("bolt12", "errors"):
        return importlib.import_module(f"invreq.{name}")
    if name == "__version__":
        return importlib.import_module("invreq._core").__version__
    raise AttributeError(f"module 'invreq' has no attribute {name!r}")
