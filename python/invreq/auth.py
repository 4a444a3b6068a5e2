"""Runes: CLN's authorization tokens, for HTTP and REST (the unix socket is protected by its
file mode instead).

A rune is a master secret's HMAC-like chain over a list of restrictions; anyone can add
restrictions, nobody can remove one. The ``runes`` package on PyPI is byte-compatible with
CLN's, so runes made here look and check like CLN's: ``createrune``, ``showrunes``,
``blacklistrune`` and ``checkrune`` follow CLN's semantics. Fields a restriction can test:

- ``method``: the command; ``id``: the caller's node id when one is given (checkrune);
- ``pnum``: the number of parameters; ``pname<name>``: a named parameter (the name without
  underscores, as CLN: ``pnameinvreqid``); ``parr<N>``: the N-th positional parameter;
- ``time``: the current unix time; ``rate``: at most that many calls per minute per rune.

The master secret is created on first start in the network directory (owner-only). Issued
runes and the blacklist live in the store, so instances sharing a database agree.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import runes

from invreq import secretfile
from invreq.errors import InvalidParams, NotAuthorized, NotPermitted, RpcError
from invreq.store.base import RuneStore

__all__ = ["SECRET_NAME", "RuneAuthority"]

SECRET_NAME = "rune_secret"
#: How long a blacklist read from the store is trusted (another instance may add to it).
BLACKLIST_TTL = 2.0
#: Authenticated runes remembered (a rune's restrictions are still tested on every call).
CHECKED_CACHE = 1024

UNRESTRICTED_WARNING = (
    "WARNING: This rune has no restrictions! Anyone who has access to this rune could "
    "create invoice_requests that pay out. Be careful when giving this to apps that you "
    "don't trust."
)

_ENGLISH = {
    "!": "is missing",
    "=": "equal to",
    "/": "unequal to",
    "^": "starts with",
    "$": "ends with",
    "~": "contains",
    "<": "less than",
    ">": "greater than",
    "{": "sorts before",
    "}": "sorts after",
    "#": "comment:",
}


def load_or_create_secret(directory: Path) -> bytes:
    """The master secret every rune derives from (owner-only, see :mod:`invreq.secretfile`)."""
    return secretfile.load_or_create(directory / SECRET_NAME, role="signs every rune")


def _restriction(item: Any) -> runes.Restriction:
    if isinstance(item, str):
        return runes.Restriction.from_str(item)
    if isinstance(item, list) and item and all(isinstance(a, str) for a in item):
        return runes.Restriction([runes.Alternative.from_str(a) for a in item])
    raise ValueError(f"not a restriction: {item!r}")


def parse_restrictions(value: Any) -> list[runes.Restriction]:
    """CLN's forms: one string, or an array of strings and/or arrays of alternatives."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise InvalidParams("restrictions: should be a string or an array")
    try:
        out = [_restriction(i) for i in items]
    except Exception as e:  # the runes parser raises IndexError etc. on malformed text
        raise InvalidParams(
            f"restrictions: not a valid restriction ({type(e).__name__}: {e})"
        ) from None
    if any(alt.is_unique_id() for r in out for alt in r.alternatives):
        raise InvalidParams("restrictions: the unique id field cannot be restricted")
    return out


def _english(r: runes.Restriction) -> str:
    parts = []
    for a in r.alternatives:
        if a.cond == "#":
            parts.append(f"comment: {a.value}")
        elif a.cond == "!":
            parts.append(f"{a.field} is missing")
        else:
            parts.append(f"{a.field} {_ENGLISH[a.cond]} {a.value}")
    return " OR ".join(parts)


def _unique_id(rune: runes.Rune) -> int | None:
    if not rune.restrictions:
        return None
    first = rune.restrictions[0].alternatives
    if len(first) == 1 and first[0].is_unique_id():
        value = first[0].value.split("-", 1)[0]
        return int(value) if value.isdigit() else None
    return None


def _param_text(value: Any) -> Any:
    """Parameter values as a rune sees them: numbers stay numbers (for < and >), others
    are their JSON text, strings without quotes (as CLN compares them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return value
    import json

    return json.dumps(value, separators=(",", ":"))


class RuneAuthority:
    def __init__(
        self, secret: bytes, store: RuneStore, clock: Callable[[], float] = time.time
    ) -> None:
        self.master = runes.MasterRune(secret)
        self._secret = secret
        self.store = store
        self.clock = clock
        self._blacklist: list[tuple[int, int]] = []
        self._blacklist_at = -BLACKLIST_TTL
        self._calls: dict[int, deque[float]] = {}
        self._checked: dict[str, tuple[runes.Rune, int]] = {}

    @classmethod
    def load_or_create(cls, directory: Path, store: RuneStore) -> RuneAuthority:
        return cls(load_or_create_secret(directory), store)

    # --- the four commands --------------------------------------------------------------

    async def createrune(self, rune: str | None = None, restrictions: Any = None) -> dict[str, Any]:
        extra = parse_restrictions(restrictions) if restrictions is not None else []
        if rune is not None:
            base = self._decode(rune)
            if not self.master.is_rune_authorized(base):
                raise NotAuthorized("Not derived from master")
            uid = _unique_id(base)
            for r in extra:
                base.add_restriction(r)
            out: dict[str, Any] = {"rune": base.to_base64(), "unique_id": str(uid)}
        else:

            def make(unique_id: int) -> str:
                made = runes.MasterRune(self._secret, unique_id=unique_id, restrictions=extra)
                return str(made.to_base64())

            uid, text = await self.store.rune_insert(make, int(self.clock()))
            out = {"rune": text, "unique_id": str(uid)}
        if not extra and (rune is None or len(self._decode(out["rune"]).restrictions) <= 1):
            out["warning_unrestricted_rune"] = UNRESTRICTED_WARNING
        return out

    async def showrunes(self, rune: str | None = None) -> dict[str, Any]:
        blacklist = await self._current_blacklist(force=True)
        if rune is not None:
            stored = {t for _, t in await self.store.runes()}
            return {"runes": [self._describe(rune, blacklist, stored=rune in stored)]}
        return {
            "runes": [
                self._describe(text, blacklist, stored=True) for _, text in await self.store.runes()
            ]
        }

    async def blacklistrune(
        self, start: int | None = None, end: int | None = None
    ) -> dict[str, Any]:
        if start is None and end is not None:
            raise InvalidParams("start: required when end is given")
        if start is not None:
            last = start if end is None else end
            if last < start:
                raise InvalidParams(f"end: should be at least start ({start})")
            await self.store.rune_blacklist_add(start, last)
        merged = _merge(await self._current_blacklist(force=True))
        return {"blacklist": [{"start": a, "end": b} for a, b in merged]}

    async def checkrune(
        self,
        rune: str,
        nodeid: str | None = None,
        method: str | None = None,
        params: Any = None,
    ) -> dict[str, Any]:
        await self.check(rune, method=method, params=params, nodeid=nodeid)
        return {"valid": True}

    # --- checking -----------------------------------------------------------------------

    async def check(
        self, rune: str, *, method: str | None, params: Any, nodeid: str | None = None
    ) -> int:
        """Raise ``NotAuthorized`` or ``NotPermitted`` (both ``RuneError``) unless ``rune``
        allows calling ``method`` with ``params``; returns the rune's unique id."""
        cached = self._checked.get(rune)
        if cached is None:
            # Decoding and authenticating a rune costs tens of µs; a client sends the same
            # one with every request, so remember the result (only for runes that pass).
            r = self._decode(rune, error=NotAuthorized)
            if not self.master.is_rune_authorized(r):
                raise NotAuthorized("Not derived from master")
            uid = _unique_id(r)
            if uid is None:
                raise NotAuthorized("Rune has no unique id")
            if len(self._checked) >= CHECKED_CACHE:
                self._checked.clear()
            self._checked[rune] = cached = (r, uid)
        r, uid = cached
        if any(a <= uid <= b for a, b in await self._current_blacklist()):
            raise NotAuthorized("Blacklisted rune")
        values: dict[str, Any] = {"time": int(self.clock()), "rate": self._rate_check(uid)}
        if method is not None:
            values["method"] = method
        if nodeid is not None:
            values["id"] = nodeid
        if isinstance(params, dict):
            values["pnum"] = len(params)
            for k, v in params.items():
                values["pname" + str(k).replace("_", "")] = _param_text(v)
        elif isinstance(params, list):
            values["pnum"] = len(params)
            for i, v in enumerate(params):
                values[f"parr{i}"] = _param_text(v)
        else:
            values["pnum"] = 0
        ok, why = r.are_restrictions_met(values)
        if not ok:
            raise NotPermitted(why)
        return uid

    def _rate_check(self, uid: int) -> Callable[[runes.Alternative], str | None]:
        def check(alt: runes.Alternative) -> str | None:
            if alt.cond != "=" or not alt.value.isdigit():
                return "rate: should be rate=N (calls per minute)"
            limit = int(alt.value)
            now = self.clock()
            calls = self._calls.setdefault(uid, deque())
            while calls and calls[0] <= now - 60:
                calls.popleft()
            if len(calls) >= limit:
                return f"rate: more than {limit} calls in a minute"
            calls.append(now)
            return None

        return check

    async def _current_blacklist(self, force: bool = False) -> list[tuple[int, int]]:
        now = asyncio.get_running_loop().time()
        if force or now - self._blacklist_at > BLACKLIST_TTL:
            self._blacklist = await self.store.rune_blacklist()
            self._blacklist_at = now
        return self._blacklist

    # --- helpers ------------------------------------------------------------------------

    def _decode(self, text: str, error: Callable[[str], RpcError] | None = None) -> runes.Rune:
        try:
            return runes.Rune.from_base64(text)
        except Exception as e:
            msg = f"rune: should be a base64 rune ({e})"
            raise (error(msg) if error else InvalidParams(msg)) from None

    def _describe(
        self, text: str, blacklist: list[tuple[int, int]], *, stored: bool
    ) -> dict[str, Any]:
        r = self._decode(text)
        uid = _unique_id(r)
        rest = r.restrictions[1:] if uid is not None else r.restrictions
        out: dict[str, Any] = {"rune": text}
        if not stored:
            out["stored"] = False
        if uid is not None and any(a <= uid <= b for a, b in blacklist):
            out["blacklisted"] = True
        if not self.master.is_rune_authorized(r):
            out["our_rune"] = False
        out["unique_id"] = str(uid) if uid is not None else None
        out["restrictions"] = [
            {
                "alternatives": [
                    {
                        "fieldname": a.field,
                        "value": a.value,
                        "condition": a.cond,
                        "english": _english(runes.Restriction([a])),
                    }
                    for a in x.alternatives
                ],
                "english": _english(x),
            }
            for x in rest
        ]
        out["restrictions_as_english"] = " AND ".join(_english(x) for x in rest)
        return out


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
