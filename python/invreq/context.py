"""Facts about the call being answered, set by the doors and read by the commands.

A small module of its own so the commands below the dispatcher (resolvepayment records
who settled a payment) can read them without importing the dispatcher or the doors.
"""

from __future__ import annotations

import contextvars

__all__ = ["CALLER"]

#: Who is calling, for records that say who did something (resolvepayment): the unix
#: socket's owner, or the rune a HTTP caller presented (set by the HTTP door).
CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("invreq_caller", default="unix socket")
