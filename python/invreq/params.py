"""Parameters: each command's table, and the checks that turn JSON values into typed ones.

This is the only place parameters are validated, so every command refuses bad input the
same way, with CLN's messages (REFERENCE §4, §6): ``missing required parameter: amount``,
``unknown parameter: foo``, ``too many parameters: got 7, expected 6``, ``duplicate json
names: label`` and ``<param>: <reason>: invalid token '<token>'``.

Two facts of the raw JSON source matter and are lost by ``json.loads``: whether a string
was written with a ``\\u`` escape (the doc forbids them) and whether an object repeats a
name. :mod:`invreq.rpc` parses with hooks that keep both: strings written with ``\\u``
arrive as :class:`UEscaped` and objects with a repeated name as :class:`DuplicateNames`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from invreq.errors import InvalidParams

__all__ = [
    "MAX_MSAT",
    "Command",
    "DuplicateNames",
    "Param",
    "UEscaped",
    "bind",
    "parse_msat",
    "token_text",
]

#: 21 million BTC in msat: no amount can be larger (REFERENCE §4).
MAX_MSAT = 21_000_000 * 100_000_000 * 1000
U64_MAX = 2**64 - 1


class UEscaped(str):
    """A JSON string whose source contained a ``\\u`` escape."""

    __slots__ = ()


class DuplicateNames(dict[str, Any]):
    """A JSON object that repeated a name; ``duplicates`` lists the repeated names."""

    __slots__ = ("duplicates",)

    def __init__(self, pairs: list[tuple[str, Any]], duplicates: list[str]) -> None:
        super().__init__(pairs)
        self.duplicates = duplicates


#: Longest token quoted back in an error message.
MAX_TOKEN = 100


def token_text(value: Any) -> str:
    """The value as it appeared in JSON (re-serialised, shortened), for ``invalid token``."""
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (RecursionError, ValueError):
        return "<too deeply nested>"
    return text if len(text) <= MAX_TOKEN else text[:MAX_TOKEN] + "..."


def _bad(name: str, reason: str, value: Any) -> InvalidParams:
    return InvalidParams(f"{name}: {reason}: invalid token '{token_text(value)}'")


# --- value checkers: (name, json value) -> python value --------------------------------

# N | Nmsat | Nsat | N.DDDsat | Nbtc | N.D{1,11}btc ; digits bounded so int() stays cheap.
_AMOUNT = re.compile(
    r"(?P<int>[0-9]{1,22})"
    r"(?:(?P<msat>msat)|(?P<sat>sat)|\.(?P<satfrac>[0-9]{3})sat|(?P<btc>btc)|\.(?P<btcfrac>[0-9]{1,11})btc)?"
)


def parse_msat(text: str) -> int | None:
    """The msat value of an amount string, or None when it is not in the grammar."""
    m = _AMOUNT.fullmatch(text)
    if m is None:
        return None
    n = int(m["int"])
    unit = m.lastgroup or "int"  # the group that matched last names the form
    if unit in ("int", "msat"):
        return n
    if unit == "sat":
        return n * 1000
    if unit == "btc":
        return n * 100_000_000_000
    frac: str = m[unit]
    if unit == "satfrac":
        return n * 1000 + int(frac)
    return n * 100_000_000_000 + int(frac.ljust(11, "0"))  # btcfrac: right-pad to msat


def check_msat(name: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        msat: int | None = int(value)
    elif isinstance(value, str):
        msat = parse_msat(value)
    else:
        msat = None
    if msat is None:
        raise _bad(name, "should be a millisatoshi amount", value)
    if msat <= 0:
        raise _bad(name, "should be a positive millisatoshi amount", value)
    if msat > MAX_MSAT:
        raise _bad(name, "should be at most 21000000btc", value)
    return msat


def check_string(name: str, value: Any) -> str:
    if not isinstance(value, str) or isinstance(value, UEscaped):
        raise _bad(name, "should be a string (without \\u)", value)
    return str(value)


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _bad(name, "should be 'true' or 'false'", value)
    return value


def _check_uint(name: str, value: Any, bits: int) -> int:
    n: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        n = value
    elif isinstance(value, str) and 0 < len(value) <= 20 and value.isascii() and value.isdigit():
        n = int(value)
    if n is None or not 0 <= n < 2**bits:
        raise _bad(name, f"should be an unsigned {bits} bit integer", value)
    return n


def check_u64(name: str, value: Any) -> int:
    return _check_uint(name, value, 64)


def check_u32(name: str, value: Any) -> int:
    return _check_uint(name, value, 32)


_HEX32 = re.compile(r"[0-9a-fA-F]{64}")


def check_sha256(name: str, value: Any) -> str:
    if not isinstance(value, str) or _HEX32.fullmatch(value) is None:
        raise _bad(name, "should be a 32 byte hex value", value)
    return value.lower()


def check_index(name: str, value: Any) -> str:
    if value != "created":
        raise _bad(name, "should be 'created'", value)
    return "created"


def check_any_string(name: str, value: Any) -> str:
    """A string where ``\\u`` escapes are harmless (a bolt12 string, a command name), as
    long as they make valid Unicode (no lone surrogate)."""
    if not isinstance(value, str):
        raise _bad(name, "should be a string", value)
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise _bad(name, "should be valid Unicode", value) from None
    return str(value)


def check_rune(name: str, value: Any) -> str:
    """A rune: a string. Unlike every other parameter the value is never quoted in the
    error (error messages are logged, and a rune is a credential)."""
    if not isinstance(value, str):
        raise InvalidParams(f"{name}: should be a base64 rune string")
    return value


def check_json(name: str, value: Any) -> Any:
    """Any JSON value; the command checks its shape (e.g. rune restrictions)."""
    return value


_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_POINT = re.compile(r"0[23][0-9a-fA-F]{64}")
_REPLY_PATH_KEYS = {"first_node_id", "first_path_key", "hops"}


def check_reply_path(name: str, value: Any) -> dict[str, Any]:
    """A ``reply_blindedpath`` as lightningd's onion-message hook gives it: an object with
    ``first_node_id`` and ``first_path_key`` (33-byte points, hex) and ``hops``, a non-empty
    array of ``{blinded_node_id, encrypted_recipient_data}`` (a point and hex bytes). Only
    the shape is checked here; the point's validity where it is used."""
    if not isinstance(value, dict) or not _REPLY_PATH_KEYS <= value.keys():
        raise _bad(name, "should be an object with first_node_id, first_path_key, hops", value)
    hops = value["hops"]
    if not (
        all(
            isinstance(value[k], str) and _POINT.fullmatch(value[k])
            for k in _REPLY_PATH_KEYS - {"hops"}
        )
        and isinstance(hops, list)
        and 0 < len(hops) <= 64
        and all(
            isinstance(h, dict)
            and isinstance(h.get("blinded_node_id"), str)
            and _POINT.fullmatch(h["blinded_node_id"])
            and isinstance(h.get("encrypted_recipient_data"), str)
            and _HEX.fullmatch(h["encrypted_recipient_data"])
            for h in hops
        )
    ):
        raise _bad(name, "should be a blinded path (33-byte hex points, 1 to 64 hops)", value)
    return {
        "first_node_id": value["first_node_id"].lower(),
        "first_path_key": value["first_path_key"].lower(),
        "hops": [
            {
                "blinded_node_id": h["blinded_node_id"].lower(),
                "encrypted_recipient_data": h["encrypted_recipient_data"].lower(),
            }
            for h in hops
        ],
    }


def check_object_or_array(name: str, value: Any) -> Any:
    if not isinstance(value, (dict, list)):
        raise _bad(name, "should be an object or an array", value)
    return value


# --- tables -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Param:
    name: str
    check: Callable[[str, Any], Any]
    required: bool = False
    #: the type CLN's help and schemas show, e.g. "msat", "string", "u64"
    kind: str = "string"
    doc: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Command:
    name: str
    params: tuple[Param, ...]
    description: str
    category: str = "offers"

    @property
    def usage(self) -> str:
        """``invoicerequest amount description [issuer] ...``: what ``help`` shows."""
        return " ".join(
            [self.name] + [p.name if p.required else f"[{p.name}]" for p in self.params]
        )


def bind(command: Command, params: Any) -> dict[str, Any]:
    """Check ``params`` (object, array or absent) against ``command``; return keyword args.

    A JSON ``null`` means "not given", by name and by position. Raises ``InvalidParams``
    naming the first parameter at fault.
    """
    table = command.params
    given: dict[str, Any]
    if params is None:
        given = {}
    elif isinstance(params, dict):
        if isinstance(params, DuplicateNames):
            raise InvalidParams(f"duplicate json names: {', '.join(params.duplicates)}")
        names = {p.name for p in table}
        for key in params:
            if key not in names:
                raise InvalidParams(f"unknown parameter: {key}")
        given = params
    elif isinstance(params, list):
        if len(params) > len(table):
            raise InvalidParams(f"too many parameters: got {len(params)}, expected {len(table)}")
        given = {p.name: v for p, v in zip(table, params, strict=False)}
    else:
        raise InvalidParams("params: should be an object or an array")
    out: dict[str, Any] = {}
    for p in table:
        value = given.get(p.name)
        if value is None:
            if p.required:
                raise InvalidParams(f"missing required parameter: {p.name}")
            continue
        out[p.name] = p.check(p.name, value)
    return out


def _p(
    name: str, check: Callable[[str, Any], Any], kind: str, doc: str, required: bool = False
) -> Param:
    return Param(name=name, check=check, required=required, kind=kind, doc=doc)


INVOICEREQUEST = Command(
    "invoicerequest",
    (
        _p(
            "amount",
            check_msat,
            "msat",
            "positive amount: 1000, 1000msat, 10sat, 1.234sat, 0.001btc",
            True,
        ),
        _p(
            "description",
            check_string,
            "string",
            "shown to the reader; UTF-8, no \\u escapes",
            True,
        ),
        _p("issuer", check_string, "string", "who is issuing it"),
        _p("label", check_string, "string", "internal name, not encoded"),
        _p("absolute_expiry", check_u64, "u64", "seconds since 1970 UTC"),
        _p("single_use", check_bool, "boolean", "inactive after one payment (default true)"),
        # Beyond CLN (issue 23): a reusable request's bound (invreq.bound).
        _p(
            "max_payouts",
            check_u32,
            "u32",
            "single_use=false only: pay at most this many invoices in all (default: no cap)",
        ),
        _p(
            "payout_window",
            check_u64,
            "u64",
            "single_use=false only: pay invoices only this many seconds after creation",
        ),
    ),
    "Create an invoice_request (lnr1...) that pays its amount to whoever sends an invoice.",
)

LISTINVOICEREQUESTS = Command(
    "listinvoicerequests",
    (
        _p("invreq_id", check_sha256, "hash", "only this invoice_request"),
        _p("active_only", check_bool, "boolean", "only active ones (default false)"),
        _p("index", check_index, "string", "'created': page with start and limit"),
        _p("start", check_u64, "u64", "first created_index to list"),
        _p("limit", check_u32, "u32", "at most this many"),
        _p("label", check_string, "string", "only those with this label"),
    ),
    "List invoice_requests in creation order.",
)

DISABLEINVOICEREQUEST = Command(
    "disableinvoicerequest",
    (_p("invreq_id", check_sha256, "hash", "the invoice_request to disable", True),),
    "Disable an invoice_request so no invoice for it is paid.",
)

DECODE = Command(
    "decode",
    (_p("string", check_any_string, "string", "an lnr1... string", True),),
    "Decode and verify an invoice_request string.",
    category="utility",
)

GETINFO = Command("getinfo", (), "Payer id, network and version of this service.", "utility")

HELP = Command(
    "help",
    (_p("command", check_any_string, "string", "show only this command"),),
    "List the commands and their parameters.",
    "utility",
)

NOTIFICATIONS = Command(
    "notifications",
    (_p("enable", check_bool, "boolean", "accepted and ignored: this service sends none"),),
    "Accepted for lightning-cli; no notifications are sent.",
    "utility",
)

RECEIVEINVOICE = Command(
    "receiveinvoice",
    (
        _p("invoice", check_any_string, "string", "the lni1... invoice that answers us", True),
        _p(
            "pathsecret",
            check_sha256,
            "hash",
            "the path_id it arrived with over our blinded path (the CLN plugin): the reply "
            "leaves once the request is claimed, and the payment runs in the background",
        ),
        _p(
            "reply_path",
            check_reply_path,
            "blindedpath",
            "the payee's reply_blindedpath (the CLN plugin, with pathsecret): if the payment "
            "then certainly fails, the node sends the payee an invoice_error saying why",
        ),
    ),
    "Check an invoice that answers one of our invoice_requests and pay it.",
)


def check_payment_status(name: str, value: Any) -> str:
    if value not in ("pending", "paid", "failed", "refused"):
        raise _bad(name, "should be 'pending', 'paid', 'failed' or 'refused'", value)
    return str(value)


LISTPAYMENTS = Command(
    "listpayments",
    (
        _p("invreq_id", check_sha256, "hash", "only payments for this invoice_request"),
        _p("status", check_payment_status, "string", "pending | paid | failed | refused"),
        _p("index", check_index, "string", "'created': page with start and limit"),
        _p("start", check_u64, "u64", "first payment_id to list"),
        _p("limit", check_u32, "u32", "at most this many"),
    ),
    "List every attempt to pay an invoice, in order.",
)


#: Longest evidence text resolvepayment records.
MAX_EVIDENCE = 2000


def check_resolution(name: str, value: Any) -> str:
    if value not in ("paid", "failed"):
        raise _bad(name, "should be 'paid' or 'failed'", value)
    return str(value)


def check_evidence(name: str, value: Any) -> str:
    text = check_any_string(name, value)
    if not text.strip():
        raise _bad(name, "should say what shows the outcome", value)
    if len(text) > MAX_EVIDENCE:
        raise _bad(name, f"should be at most {MAX_EVIDENCE} characters", value)
    return text


RESOLVEPAYMENT = Command(
    "resolvepayment",
    (
        _p("payment_hash", check_sha256, "hash", "the pending payment (its invoice's hash)", True),
        _p("status", check_resolution, "string", "paid | failed: the outcome", True),
        _p("evidence", check_evidence, "string", "what shows the outcome (recorded)", True),
        _p("preimage", check_sha256, "hash", "with paid: the payment_preimage, checked"),
    ),
    "Settle a stuck pending payment by hand, on evidence (recorded with who and when).",
)

CREATERUNE = Command(
    "createrune",
    (
        _p("rune", check_rune, "string", "add restrictions to this rune instead"),
        _p("restrictions", check_json, "array", 'e.g. ["method=invoicerequest", "rate=60"]'),
    ),
    "Create a rune (or restrict one) for HTTP and REST callers.",
    "security",
)

SHOWRUNES = Command(
    "showrunes",
    (_p("rune", check_rune, "string", "show only this rune"),),
    "List the runes issued, with their restrictions in English.",
    "security",
)

BLACKLISTRUNE = Command(
    "blacklistrune",
    (
        _p("start", check_u64, "u64", "first unique_id to blacklist"),
        _p("end", check_u64, "u64", "last unique_id to blacklist (default: start)"),
    ),
    "Blacklist runes by unique_id; without parameters, show the blacklist.",
    "security",
)

CHECKRUNE = Command(
    "checkrune",
    (
        _p("rune", check_rune, "string", "the rune to check", True),
        _p("nodeid", check_any_string, "string", "the caller's node id, for id= restrictions"),
        _p("method", check_any_string, "string", "the method it would call"),
        _p("params", check_object_or_array, "object", "the parameters it would pass"),
    ),
    "Check whether a rune allows a call.",
    "security",
)


def check_subsystem(name: str, value: Any) -> str:
    if value not in ("invoicerequests", "payments"):
        raise _bad(name, "should be 'invoicerequests' or 'payments'", value)
    return str(value)


def check_indexname(name: str, value: Any) -> str:
    if value not in ("created", "updated"):
        raise _bad(name, "should be 'created' or 'updated'", value)
    return str(value)


#: Longest `wait` in seconds (a client waiting longer calls again).
MAX_WAIT = 3600


def check_wait_timeout(name: str, value: Any) -> int:
    n = check_u32(name, value)
    if not 1 <= n <= MAX_WAIT:
        raise _bad(name, f"should be between 1 and {MAX_WAIT} seconds", value)
    return n


WAIT = Command(
    "wait",
    (
        _p("subsystem", check_subsystem, "string", "invoicerequests | payments", True),
        _p("indexname", check_indexname, "string", "created | updated", True),
        _p("nextvalue", check_u64, "u64", "return once the index reaches this", True),
        _p("timeout", check_wait_timeout, "u32", f"seconds (default 60, at most {MAX_WAIT})"),
    ),
    "Wait until an index of invoicerequests or payments reaches nextvalue (lightningd's wait).",
)

LISTEVENTS = Command(
    "listevents",
    (
        _p("invreq_id", check_sha256, "hash", "only the events of this invoice_request"),
        _p("start", check_u64, "u64", "first event_id to list (default: the most recent)"),
        _p("limit", check_u32, "u32", "at most this many"),
    ),
    "List events (webhook deliveries) in order, with their delivery state.",
)

COMMANDS: Sequence[Command] = (
    INVOICEREQUEST,
    LISTINVOICEREQUESTS,
    DISABLEINVOICEREQUEST,
    DECODE,
    GETINFO,
    HELP,
    NOTIFICATIONS,
    RECEIVEINVOICE,
    LISTPAYMENTS,
    RESOLVEPAYMENT,
    CREATERUNE,
    SHOWRUNES,
    BLACKLISTRUNE,
    CHECKRUNE,
    WAIT,
    LISTEVENTS,
)
