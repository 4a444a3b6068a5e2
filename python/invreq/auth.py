"""Runes: CLN's authorization tokens, for HTTP and REST (the unix socket is protected by its
file mode instead).

A rune is a master secret's HMAC-like chain over a list of restrictions; anyone can add
restrictions, nobody can remove one. The ``runes`` package on PyPI is byte-compatible with
CLN's, so runes made here look and check like CLN's: ``createrune``, ``showrunes``,
``blacklistrune`` and ``checkrune`` follow CLN's semantics. Fields a restriction can test:

- ``method``: the command; ``id``: the caller's node id when one is given (checkrune);
- ``pnum``: the number of parameters; ``pname<name>``: a named parameter (the name without
  underscores, as CLN: ``pnameinvreqid``); ``parr<N>``: the N-th positional parameter;
- ``time``: the current unix time; ``rate=N``: as CLN (``lightningd/runes.c``), at least
  60/N seconds since the last call with this rune's unique id that passed. Only calls that
  pass are recorded, in the store, so every process and instance on one database counts
  them together; ``rate=4&rate=4`` is ``rate=4``. Unlike CLN, only runes that carry a
  ``rate`` restriction are recorded: other calls cost no database write.

``restrictions: "readonly"`` is CLN's shorthand: ``method^list|method^get|method=summary``
and ``method/listdatastore``.

Only a rune's canonical string authenticates: the URL-safe base64 (with its ``=`` padding)
that ``createrune`` returns, character for character. The master secret is created on first
start in the network directory (owner-only). The store keeps each issued rune's unique id
and restrictions, never the string (``showrunes`` derives it again), when it was last used,
and the blacklist, so instances sharing a database agree on all of them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import runes

from invreq import paging, secretfile
from invreq.errors import InvalidParams, NotAuthorized, NotPermitted, RpcError
from invreq.store.base import RuneStore, StoredRune

__all__ = ["SECRET_NAME", "RuneAuthority"]

SECRET_NAME = "rune_secret"
#: How long a blacklist read from the store is trusted (another instance may add to it).
BLACKLIST_TTL = 2.0
#: Authenticated runes remembered (a rune's restrictions are still tested on every call).
CHECKED_CACHE = 1024
#: How often a rate-limited call re-reads the rune's last use after losing a race to record
#: its own (another call with the same unique id passed meanwhile, maybe in another process).
RATE_ATTEMPTS = 3
_NS_PER_MINUTE = 60 * 10**9
_DECIMAL = re.compile(r"[0-9]+")

#: CLN's ``readonly`` shorthand (``lightningd/runes.c``): any list*, get* or summary
#: method, but not listdatastore.
READONLY = "readonly"


def _readonly() -> list[runes.Restriction]:
    return [
        runes.Restriction(
            [
                runes.Alternative("method", "^", "list"),
                runes.Alternative("method", "^", "get"),
                runes.Alternative("method", "=", "summary"),
            ]
        ),
        runes.Restriction([runes.Alternative("method", "/", "listdatastore")]),
    ]


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
    """CLN's forms: ``"readonly"``, one string, or an array of strings and/or arrays of
    alternatives."""
    if value == READONLY:
        return _readonly()
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


def _encode(restrictions: list[runes.Restriction]) -> str:
    """Restrictions as a rune carries them ('&'-joined, escaped): what the store keeps."""
    return "&".join(r.encode() for r in restrictions)


def _decode_stored(text: str) -> list[runes.Restriction]:
    out = []
    while text:
        r, text = runes.Restriction.decode(text)
        out.append(r)
    return out


def _has_rate(r: runes.Rune) -> bool:
    return any(a.field == "rate" for x in r.restrictions for a in x.alternatives)


def _rate_check(last_used_ns: int | None, now_ns: int) -> Callable[[runes.Alternative], str | None]:
    """CLN's ``rate=N``: passes when at least 60/N seconds (integer nanoseconds) have gone by
    since the last call that passed; a rune never used (or not in the store) passes."""

    def check(alt: runes.Alternative) -> str | None:
        if alt.cond != "=":
            return "rate operator must be ="
        if not _DECIMAL.fullmatch(alt.value):
            return "malformed rate"
        n = int(alt.value)
        if n == 0 or n >= 2**32 - 1:
            return "malformed rate"
        if last_used_ns is None:
            return None
        # A last use in the future (the clock went back) counts as now, as in CLN.
        if now_ns - min(last_used_ns, now_ns) < _NS_PER_MINUTE // n:
            return "too soon"
        return None

    return check


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
        #: rune string -> (decoded, unique id, has a rate restriction)
        self._checked: dict[str, tuple[runes.Rune, int, bool, bool]] = {}

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
            # Only the restrictions are stored; the string is derived from them, now and
            # whenever showrunes needs it.
            uid = await self.store.rune_insert(_encode(extra), int(self.clock()))
            out = {"rune": self._derive(uid, extra), "unique_id": str(uid)}
        if not extra and (rune is None or len(self._decode(out["rune"]).restrictions) <= 1):
            out["warning_unrestricted_rune"] = UNRESTRICTED_WARNING
        return out

    async def showrunes(
        self, rune: str | None = None
    ) -> dict[str, Any] | paging.Listing[StoredRune]:
        blacklist = await self._current_blacklist(force=True)
        if rune is not None:
            decoded = self._decode(rune)
            uid = _unique_id(decoded)
            stored = None if uid is None else await self.store.rune(uid)
            # Stored means exactly this string was issued (CLN), not one restricted from it.
            exact = stored is not None and self._derive_stored(stored) == rune
            return {
                "runes": [
                    self._describe(
                        rune,
                        uid,
                        decoded.restrictions[1:] if uid is not None else decoded.restrictions,
                        blacklist,
                        stored=exact,
                        ours=self.master.is_rune_authorized(decoded),
                        record=stored,
                    )
                ]
            }

        def describe(s: StoredRune) -> dict[str, Any]:
            # Derived from the secret: ours by construction, nothing to decode or check.
            restrictions = _decode_stored(s.restrictions)
            text = self._derive(s.unique_id, restrictions)
            return self._describe(
                text, s.unique_id, restrictions, blacklist, stored=True, ours=True, record=s
            )

        async def read(first: int | None, n: int) -> list[StoredRune]:
            return await self.store.runes(n, start=first, max_bytes=paging.CHUNK_BYTES)

        # Every rune issued (as lightningd), read and sent a chunk at a time.
        rows = paging.chunks(read, lambda s: s.unique_id, None, None)
        return paging.Listing("runes", rows, describe)

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
            self._checked[rune] = cached = (r, uid, _has_rate(r), len(r.restrictions) > 1)
        r, uid, has_rate, restricted = cached
        blacklist = self._blacklist
        if asyncio.get_running_loop().time() - self._blacklist_at > BLACKLIST_TTL:
            blacklist = await self._current_blacklist()
        if blacklist and any(a <= uid <= b for a, b in blacklist):
            raise NotAuthorized("Blacklisted rune")
        if not restricted:
            # Only the unique id, whose test does not depend on the call (its version part
            # is checked here like CLN does): nothing to evaluate per call.
            self._test(r, {})
            return uid
        values: dict[str, Any] = {}
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
        if not has_rate:
            # Nothing depends on when it was last used: no database round trip per call.
            values["time"] = int(self.clock())
            self._test(r, values)
            return uid
        for _ in range(RATE_ATTEMPTS):
            # The last use as the database has it now (another worker or instance may
            # have recorded one); recorded again only if the whole rune passes, and only
            # if nobody recorded one meanwhile (one conditional update).
            stored = await self.store.rune(uid)
            last = None if stored is None else stored.last_used_ns
            now = self.clock()
            now_ns = int(now * 1e9)
            values["time"] = int(now)
            values["rate"] = _rate_check(last, now_ns)
            self._test(r, values)
            if stored is None or await self.store.rune_used(uid, now_ns, last):
                return uid
        raise NotPermitted("too soon")

    @staticmethod
    def _test(r: runes.Rune, values: dict[str, Any]) -> None:
        ok, why = r.are_restrictions_met(values)
        if not ok:
            raise NotPermitted(why)

    async def _current_blacklist(self, force: bool = False) -> list[tuple[int, int]]:
        now = asyncio.get_running_loop().time()
        if force or now - self._blacklist_at > BLACKLIST_TTL:
            self._blacklist = await self.store.rune_blacklist()
            self._blacklist_at = now
        return self._blacklist

    # --- helpers ------------------------------------------------------------------------

    def _decode(self, text: str, error: Callable[[str], RpcError] | None = None) -> runes.Rune:
        """The rune ``text`` is, if it is a canonical rune string: the URL-safe base64 that
        ``to_base64`` makes, with its padding. Python's decoder also takes '+' and '/',
        skips characters outside the alphabet and ignores what follows the padding; a
        variant spelling must not authenticate (CLN's decoder takes only the one form).
        Messages never quote the text: it is a credential."""
        msg = "rune: should be a base64 rune"
        try:
            r = runes.Rune.from_base64(text)
            canonical = r.to_base64() == text
        except Exception:
            raise (error(msg) if error else InvalidParams(msg)) from None
        if not canonical:
            msg = "rune: not in canonical form (the URL-safe base64 createrune returned)"
            raise error(msg) if error else InvalidParams(msg)
        return r

    def _derive(self, unique_id: int, restrictions: list[runes.Restriction]) -> str:
        """The rune string for ``unique_id`` and ``restrictions``, as ``MasterRune(...)
        .to_base64()`` makes it, with hashlib: the library's own SHA-256 is pure Python (ms
        per rune, too slow for showrunes over many). A rune's authcode is SHA-256 over the
        secret and each restriction, each followed by SHA-256's end padding, so it is the
        digest of that stream with the last padding left to hashlib (what the library's
        ``is_rune_authorized`` computes)."""
        encoded = [
            r.encode().encode() for r in [runes.Restriction.unique_id(unique_id), *restrictions]
        ]
        sha = hashlib.sha256(self._secret)
        length = len(self._secret)
        for enc in encoded:
            pad = runes.end_shastream(length)
            sha.update(pad + enc)
            length += len(pad) + len(enc)
        authcode = sha.digest()
        return base64.urlsafe_b64encode(authcode + b"&".join(encoded)).decode()

    def _derive_stored(self, stored: StoredRune) -> str:
        return self._derive(stored.unique_id, _decode_stored(stored.restrictions))

    def _describe(
        self,
        text: str,
        uid: int | None,
        rest: list[runes.Restriction],
        blacklist: list[tuple[int, int]],
        *,
        stored: bool,
        ours: bool,
        record: StoredRune | None = None,
    ) -> dict[str, Any]:
        """CLN's showrunes object for rune ``text``: ``rest`` are its restrictions after
        the unique id ``uid``."""
        out: dict[str, Any] = {"rune": text}
        if not stored:
            out["stored"] = False
        if uid is not None and any(a <= uid <= b for a, b in blacklist):
            out["blacklisted"] = True
        if not ours:
            out["our_rune"] = False
        if record is not None and record.last_used_ns is not None:
            out["last_used"] = record.last_used_ns / 1e9  # CLN: unix seconds, fractional
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
