"""A stand-in for lightningd in the payment tests: NOT a Lightning node.

No Lightning node can run on the test machine, so this small process speaks what invreq's
CLN backend uses of lightningd's JSON-RPC, with lightningd's framing (JSON requests on a
unix socket, each reply followed by a blank line), and keeps a payment record the way
lightningd does:

- ``getinfo``: the node's ``id`` (``--node-id``; start another process with another id and
  another ``--state`` to play another node).
- ``xpay invstring [retry_for]``: ``--mode`` decides the outcome: ``succeed`` (with the
  preimage), ``fail`` (error 209, as xpay's "Failed after N attempts"), ``hang`` (the
  payment stays pending, like an HTLC stuck at a peer, until ``dev-invreq-settle``),
  ``wrong-preimage`` (it completes, and the node answers a preimage that is not the
  payment_hash's: a bug or a lying node), or ``plugin-dies`` (xpay's plugin dies with the
  payment out: lightningd's error -4, the record pending until ``dev-invreq-settle``);
  after ``--delay`` seconds. The preimage is the
  one the payee would reveal: tests' invoices (tests/_lightningd.py ``invoice_for``) use
  ``sha256(b"preimage %d" % n)``, which the stand-in knows for n < 10,000; the payment of
  any other payment_hash fails (no payee here to settle it). A disconnected caller does
  not stop it (lightningd keeps running a command whose caller went away). Every ``xpay``
  is appended to ``--log`` (one JSON line), so tests count the payments actually
  attempted. It takes BOLT 12
  invoices and, as xpay does, BOLT 11 ones (the LNURL-withdraw door's, read with the
  ``bolt11`` library; the wallet stand-in, tests/_wallet.py, uses the same preimages).
- ``listpays [bolt11] [payment_hash] [status]`` and ``listsendpays`` (same filters), with
  CLN's statuses ``pending``/``complete``/``failed`` and its field names (a BOLT 12
  invoice is reported under ``bolt12``, a BOLT 11 one under ``bolt11``; ``preimage`` in
  listpays, ``payment_preimage`` in listsendpays; only for complete payments).
- ``dev-invreq-settle payment_hash status`` (test control, not a CLN command): the pending
  payment completes or fails now, as a stuck HTLC eventually does.

The record is kept in ``--state`` (JSON), written on every change, so the same node
restarted (same state file) remembers its payments, as lightningd's database does.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from invreq import bolt12

DEFAULT_NODE_ID = "02" + "ab" * 32
#: The preimages the stand-in payee reveals, by payment_hash (see the docstring).
PAYEE_PREIMAGES = {
    hashlib.sha256(pre).hexdigest(): pre.hex()
    for pre in (hashlib.sha256(b"preimage %d" % n).digest() for n in range(10_000))
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument(
        "--mode",
        choices=("succeed", "fail", "hang", "wrong-preimage", "plugin-dies"),
        default="succeed",
    )
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--log", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--node-id", default=DEFAULT_NODE_ID)
    a = ap.parse_args()
    asyncio.run(serve(a))


class Node:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.log = Path(a.log)
        self.state = Path(a.state)
        self.pays: dict[str, dict[str, Any]] = (
            json.loads(self.state.read_text()) if self.state.exists() else {}
        )
        self.settled: dict[str, asyncio.Event] = {}

    def save(self) -> None:
        tmp = self.state.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.pays))
        os.replace(tmp, self.state)

    def finish(self, payment_hash: str, status: str) -> None:
        pay = self.pays[payment_hash]
        if pay["status"] != "pending":
            return
        preimage = PAYEE_PREIMAGES.get(payment_hash)
        if status == "complete" and self.a.mode == "wrong-preimage":
            preimage = hashlib.sha256(b"not the preimage" + bytes.fromhex(payment_hash)).hexdigest()
        elif status == "complete" and preimage is None:
            status = "failed"  # the payee cannot settle an HTLC whose preimage it lacks
        pay["status"] = status
        pay["completed_at"] = int(time.time())
        if status == "complete":
            pay["preimage"] = preimage
        self.save()
        self.settled.setdefault(payment_hash, asyncio.Event()).set()

    async def xpay(self, params: dict[str, Any]) -> Any:
        invoice = params["invstring"]
        with self.log.open("a") as f:
            entry = {"xpay": invoice, "retry_for": params.get("retry_for")}
            if "maxfee" in params:
                entry["maxfee"] = params["maxfee"]
            f.write(json.dumps(entry) + "\n")
        h, destination, amount, kind = _read(invoice)
        old = self.pays.get(h)
        if old is not None and old["status"] != "failed":
            # lightningd refuses to start a second payment of one payment_hash.
            raise _Error(200, "Already have payment in progress or complete")
        self.pays[h] = {
            "payment_hash": h,
            kind: invoice,
            "destination": destination,
            "amount_msat": amount,
            "amount_sent_msat": amount,
            "created_at": int(time.time()),
            "groupid": 1 + (old["groupid"] if old else 0),
            "created_index": len(self.pays) + 1,
            "status": "pending",
        }
        self.save()
        event = self.settled.setdefault(h, asyncio.Event())
        event.clear()
        if self.a.mode == "plugin-dies":
            # xpay's plugin died with its HTLC out: lightningd answers the caller -4
            # (PLUGIN_TERMINATED) while the payment stays pending in its record.
            raise _Error(-4, "Plugin terminated before replying to RPC call.")
        if self.a.mode == "hang":
            await event.wait()
        else:
            await asyncio.sleep(self.a.delay)
            self.finish(h, "failed" if self.a.mode == "fail" else "complete")
        pay = self.pays[h]
        if pay["status"] == "failed":
            raise _Error(209, "Failed after 3 attempts: no route")
        return {
            "payment_preimage": pay["preimage"],
            "failed_parts": 0,
            "successful_parts": 1,
            "amount_msat": pay["amount_msat"],
            "amount_sent_msat": pay["amount_sent_msat"],
        }

    def select(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        out = list(self.pays.values())
        if params.get("bolt11") is not None:
            out = [p for p in out if _invstring(p) == params["bolt11"]]
        if params.get("payment_hash") is not None:
            out = [p for p in out if p["payment_hash"] == params["payment_hash"]]
        if params.get("status") is not None:
            out = [p for p in out if p["status"] == params["status"]]
        return sorted(out, key=lambda p: p["created_index"])

    def listpays(self, params: dict[str, Any]) -> Any:
        pays = []
        for p in self.select(params):
            one = {
                k: p[k]
                for k in ("payment_hash", "status", "destination", "created_at", "bolt11", "bolt12")
                if k in p
            }
            if p["status"] != "pending":
                one["completed_at"] = p["completed_at"]
            one["amount_msat"] = p["amount_msat"]
            one["amount_sent_msat"] = p["amount_sent_msat"]
            if p["status"] == "complete":
                one["preimage"] = p["preimage"]
            one["number_of_parts"] = 1
            pays.append(one)
        return {"pays": pays}

    def listsendpays(self, params: dict[str, Any]) -> Any:
        payments = []
        for p in self.select(params):
            one = {
                "created_index": p["created_index"],
                "id": p["created_index"],
                "groupid": p["groupid"],
                "partid": 0,
                "payment_hash": p["payment_hash"],
                "status": p["status"],
                "amount_msat": p["amount_msat"],
                "destination": p["destination"],
                "created_at": p["created_at"],
                "amount_sent_msat": p["amount_sent_msat"],
            }
            kind = "bolt12" if "bolt12" in p else "bolt11"
            one[kind] = p[kind]
            if p["status"] != "pending":
                one["completed_at"] = p["completed_at"]
            if p["status"] == "complete":
                one["payment_preimage"] = p["preimage"]
            payments.append(one)
        return {"payments": payments}

    async def answer(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getinfo":
            return {
                "id": self.a.node_id,
                "alias": "fake-lightningd",
                "num_peers": 0,
                "network": "regtest",
                "version": "fake-lightningd",
                "blockheight": 0,
            }
        if method == "xpay":
            return await self.xpay(params)
        if method == "listpays":
            return self.listpays(params)
        if method == "listsendpays":
            return self.listsendpays(params)
        if method == "dev-invreq-settle":
            h, status = params["payment_hash"], params["status"]
            if h not in self.pays:
                raise _Error(-32602, "unknown payment_hash")
            self.finish(h, status)
            return self.pays[h]
        raise _Error(-32601, f"Unknown command '{method}'")


async def serve(a: argparse.Namespace) -> None:
    node = Node(a)

    async def one(req: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        try:
            reply = {
                "jsonrpc": "2.0",
                "id": req["id"],
                "result": await node.answer(req["method"], req.get("params") or {}),
            }
        except _Error as e:
            reply = {
                "jsonrpc": "2.0",
                "id": req["id"],
                "error": {"code": e.code, "message": e.message},
            }
        try:
            writer.write(json.dumps(reply).encode() + b"\n\n")
            await writer.drain()
        except ConnectionError:
            pass  # the caller went away; the command ran anyway

    tasks: set[asyncio.Task[None]] = set()

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = json.JSONDecoder()
        buf = ""
        try:
            while data := await reader.read(65536):
                buf += data.decode()
                while buf.strip():
                    try:
                        req, end = decoder.raw_decode(buf.lstrip())
                    except ValueError:
                        break
                    buf = buf.lstrip()[end:]
                    # Each command runs on its own: the caller leaving does not cancel it.
                    t = asyncio.create_task(one(req, writer))
                    tasks.add(t)
                    t.add_done_callback(tasks.discard)
        except ConnectionError:
            pass

    server = await asyncio.start_unix_server(client, path=a.socket)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print("fake-lightningd ready", flush=True)
    await stop.wait()
    server.close()


def _invstring(pay: dict[str, Any]) -> str:
    return str(pay.get("bolt12") or pay["bolt11"])


def _read(invoice: str) -> tuple[str, str, int, str]:
    """(payment_hash, destination, amount_msat, kind) of a BOLT 12 or BOLT 11 invoice."""
    if invoice.lower().startswith(bolt12.INVOICE_HRP + "1"):
        inv = bolt12.decode_invoice(invoice)
        return inv.payment_hash.hex(), inv.node_id.hex(), inv.amount_msat, "bolt12"
    import bolt11

    b11 = bolt11.decode(invoice)
    return b11.payment_hash, str(b11.payee), int(b11.amount_msat or 0), "bolt11"


class _Error(Exception):
    def __init__(self, code: int, message: str) -> None:
        self.code, self.message = code, message


if __name__ == "__main__":
    main()
