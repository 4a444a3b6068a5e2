"""A wallet stand-in for trying the LNURL-withdraw door by hand (docs/lnurl.md): NOT a wallet.

It reads the link with the ``lnurl`` library's wallet code, has a real Core Lightning node
(the wallet's) make the BOLT 11 invoice for the amount offered, calls back, and waits for
the node to be paid.

    python contrib/lnurl_wallet.py LNURL1... lightning-cli --network=regtest --lightning-dir=DIR
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import lnurl


def main() -> None:
    link, cli = sys.argv[1], sys.argv[2:]
    res = asyncio.run(lnurl.handle(link))
    assert isinstance(res, lnurl.LnurlWithdrawResponse), res
    print("withdrawRequest:", res.model_dump_json(exclude_none=True))
    label = f"lnurl-{int(time.time())}"
    made = subprocess.check_output([*cli, "invoice", str(int(res.maxWithdrawable)), label, "x"])
    bolt11 = json.loads(made)["bolt11"]
    print("invoice:", bolt11)
    print("callback answer:", asyncio.run(lnurl.execute_withdraw(res, bolt11)).model_dump_json())
    paid = json.loads(subprocess.check_output([*cli, "waitinvoice", label]))
    print("waitinvoice:", paid["status"], paid.get("amount_received_msat"))


if __name__ == "__main__":
    main()
