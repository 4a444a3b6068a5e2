"""invreq: BOLT 12 invoice_requests (``lnr1...``) as a CLN-compatible service.

Public modules: :mod:`invreq.bolt12` (the byte layer), :mod:`invreq.errors`.
The native extension ``invreq._core`` is private.
"""

from invreq import bolt12, errors
from invreq._core import __version__

__all__ = ["__version__", "bolt12", "errors"]
