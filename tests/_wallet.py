"""A stand-in for a phone wallet on the LNURL-withdraw door: NOT a real wallet.

The protocol side is the ``lnurl`` library's own wallet half (``lnurl.handle`` reads the link
and its ``withdrawRequest``, ``lnurl.execute_withdraw`` calls back), as LNbits and the
library's users run it; the BOLT 11 invoice is made with the ``bolt11`` library and a test
node key, as a wallet's node would make it. ``raw_callback`` sends the callback by hand, to
see the exact JSON the service answers (the library turns an ERROR into an exception).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import urllib.parse
import urllib.request
from typing import Any

import bolt11
import lnurl
from bolt11 import Bolt11, MilliSatoshi, TagChar, Tags

#: The wallet's node key (a test key, nobody's funds).
WALLET_KEY = "66" * 32
#: The wallet's preimages come after the BOLT 12 payee's (see ``make_invoice``).
WALLET_N_OFFSET = 5_000


def make_invoice(
    amount_msat: int | None,
    *,
    n: int = 0,
    currency: str = "bcrt",
    date: int | None = None,
    expiry: int = 600,
    key: str = WALLET_KEY,
    description: str = "withdrawal",
    payment_hash: str | None = None,
) -> str:
    """A signed BOLT 11 invoice from the wallet's node (``n`` < 5,000 varies its
    payment_hash, unless ``payment_hash`` is given). Its preimage is one the lightningd
    stand-in reveals (tests/fake_lightningd.py knows ``sha256(b"preimage %d" % m)`` for
    m < 10,000): m = n + 5,000, so no invoice of the BOLT 12 payee (tests/_lightningd.py,
    m = n) has the same payment_hash by accident."""
    assert 0 <= n < WALLET_N_OFFSET
    tags = Tags()
    preimage = hashlib.sha256(b"preimage %d" % (n + WALLET_N_OFFSET)).digest()
    tags.add(TagChar.payment_hash, payment_hash or hashlib.sha256(preimage).hexdigest())
    tags.add(TagChar.payment_secret, hashlib.sha256(b"secret %d" % n).hexdigest())
    tags.add(TagChar.description, description)
    tags.add(TagChar.expire_time, expiry)
    tags.add(TagChar.min_final_cltv_expiry, 18)
    inv = Bolt11(
        currency=currency,
        date=int(time.time()) if date is None else date,
        tags=tags,
        amount_msat=None if amount_msat is None else MilliSatoshi(amount_msat),
    )
    return str(bolt11.encode(inv, key))


def fetch(link: str) -> lnurl.LnurlWithdrawResponse:
    """Scan: read the link (bech32 or lnurlw://) and GET its withdrawRequest."""
    res = asyncio.run(lnurl.handle(link))
    assert isinstance(res, lnurl.LnurlWithdrawResponse), res
    return res


def withdraw(res: lnurl.LnurlWithdrawResponse, pr: str) -> str:
    """Call back with ``pr``: "OK", or the service's reason for refusing."""
    try:
        asyncio.run(lnurl.execute_withdraw(res, pr))
    except lnurl.LnurlResponseException as e:
        return f"ERROR: {e}"
    return "OK"


def raw_callback(callback: str, **params: str) -> dict[str, Any]:
    """The callback's JSON exactly as the service sent it."""
    url = callback + "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=30) as r:
        assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == "*"
        body: dict[str, Any] = json.loads(r.read())
    return body


def raw_get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as r:
        assert r.status == 200
        body: dict[str, Any] = json.loads(r.read())
    return body


__all__ = ["WALLET_KEY", "fetch", "make_invoice", "raw_callback", "raw_get", "withdraw"]
