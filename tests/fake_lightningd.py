"""A stand-in for lightningd in the payment tests: NOT a Lightning node.

No Lightning node can run on the test machine, so this small process speaks what invreq's
CLN backend uses of lightningd's JSON-RPC, with lightningd's framing (JSON requests on a
unix socket, each reply followed by a blank line): ``getinfo``, ``xpay invstring`` and
``listpays bolt11``. It pays nothing: ``--mode`` decides what ``xpay`` answers
(``succeed`` with a preimage, ``fail`` with an error, ``hang`` never), after ``--delay``
seconds. Every ``xpay`` is appended to ``--log`` (one JSON line), so tests can count the
payments actually attempted. ``--paid FILE`` lists invoices (one per line) that
``listpays`` reports as complete, to model a payment that succeeded while invreq was down.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import signal
from pathlib import Path
from typing import Any


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--mode", choices=("succeed", "fail", "hang"), default="succeed")
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--log", required=True)
    ap.add_argument("--paid", default=None)
    a = ap.parse_args()
    asyncio.run(serve(a))


async def serve(a: argparse.Namespace) -> None:
    log = Path(a.log)
    outcomes: dict[str, str] = {}

    async def answer(method: str, params: dict[str, Any]) -> Any:
        if method == "getinfo":
            return {"id": "02" + "ab" * 32, "alias": "fake-lightningd", "network": "regtest"}
        if method == "xpay":
            invoice = params["invstring"]
            with log.open("a") as f:
                f.write(json.dumps({"xpay": invoice}) + "\n")
            outcomes[invoice] = "pending"
            if a.mode == "hang":
                await asyncio.Event().wait()
            await asyncio.sleep(a.delay)
            if a.mode == "fail":
                outcomes[invoice] = "failed"
                raise _Error(209, "Failed after 3 attempts: no route")
            outcomes[invoice] = "complete"
            preimage = hashlib.sha256(invoice.encode()).hexdigest()
            return {
                "payment_preimage": preimage,
                "failed_parts": 0,
                "successful_parts": 1,
                "amount_msat": 0,
                "amount_sent_msat": 0,
            }
        if method == "listpays":
            invoice = params.get("bolt11")
            paid = (
                set(Path(a.paid).read_text().split()) if a.paid and Path(a.paid).exists() else set()
            )
            if invoice in paid:
                return {
                    "pays": [
                        {
                            "bolt11": invoice,
                            "status": "complete",
                            "preimage": hashlib.sha256(invoice.encode()).hexdigest(),
                        }
                    ]
                }
            status = outcomes.get(invoice)
            return {"pays": [] if status is None else [{"bolt11": invoice, "status": status}]}
        raise _Error(-32601, f"Unknown command '{method}'")

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
                    try:
                        reply = {
                            "jsonrpc": "2.0",
                            "id": req["id"],
                            "result": await answer(req["method"], req.get("params") or {}),
                        }
                    except _Error as e:
                        reply = {
                            "jsonrpc": "2.0",
                            "id": req["id"],
                            "error": {"code": e.code, "message": e.message},
                        }
                    writer.write(json.dumps(reply).encode() + b"\n\n")
                    await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_unix_server(client, path=a.socket)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print("fake-lightningd ready", flush=True)
    await stop.wait()
    server.close()


class _Error(Exception):
    def __init__(self, code: int, message: str) -> None:
        self.code, self.message = code, message


if __name__ == "__main__":
    main()
