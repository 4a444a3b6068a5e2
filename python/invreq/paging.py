"""How much one list reply may hold: the page rule shared by the list commands.

CLN's list commands return everything unless ``limit`` is given. Here a list reply is one
page: records in order until ``limit`` (if given), ``PAGE_RECORDS`` records, or
``PAGE_BYTES`` bytes of JSON, whichever comes first, and always at least one record when
any match. The reply keeps CLN's shape (an object with one array); a client that may have
more records to read asks again from the next one (``index=created``, ``start`` = the last
``created_index`` + 1, or for ``listpayments`` the last ``payment_id`` + 1) until a page
comes back empty.

Why: a record can be ~100 kB (a long payer note or label) and a batch can repeat a list a
thousand times; without a page a 58 kB request produced a 965 MB reply.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

__all__ = ["PAGE_BYTES", "PAGE_RECORDS", "page", "store_limit"]

#: Most records in one list reply.
PAGE_RECORDS = 1000
#: Most bytes of JSON in one list reply (the record that crosses it is the last one).
PAGE_BYTES = 1024 * 1024


def store_limit(limit: int | None) -> int:
    """How many records to ask the store for: never more than a page."""
    return PAGE_RECORDS if limit is None else min(limit, PAGE_RECORDS)


def page(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records that fit in one page, in the order given."""
    out: list[dict[str, Any]] = []
    size = 0
    for r in records:
        if len(out) >= PAGE_RECORDS or size >= PAGE_BYTES:
            break
        out.append(r)
        size += len(json.dumps(r, ensure_ascii=False, separators=(",", ":"))) + 1
    return out
