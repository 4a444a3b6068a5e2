"""Ceilings for one process: what a minimal JSON-RPC server reaches on HTTP (aiohttp, as
invreq) and on a unix socket (asyncio streams, CLN framing), in two modes:

- ``bare``: parse each request and answer a constant. Whatever invreq does beyond this is
  its own cost (framing, JSON, the event loop).
- ``stripped``: the one-process limit of ``invoicerequest``: parse, build the request with
  the native core, sign with coincurve's prepared keypair (the software signer's own call),
  verify with the core, reply with the string and id. No store, no rune, no other glue:
  what invreq does beyond this is parameters, records, rune checks, futures and the store.

``--loop uvloop`` and ``--codec orjson`` measure the same servers on the faster loop and
JSON codec, so a ratio is always taken against the ceiling of the same loop and codec;
``--codec invreq`` is invreq's own (``invreq.rpc.parse`` and ``invreq.rpc.dumps``: the
standard library's parser with CLN's hooks, orjson for replies).

Usage: python benches/ceiling.py --port PORT --socket PATH [--mode bare|stripped]
       [--loop asyncio|uvloop] [--codec json|orjson|invreq]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from invreq import bolt12
from invreq.signers.software import SoftwareSigner

try:  # the splitter moved with the doors (issue 16)
    from invreq.unixsock import RequestSplitter
except ImportError:  # pragma: no cover - before the move
    from invreq.rpc import RequestSplitter  # type: ignore[attr-defined,no-redef]

BARE_REPLY = b'{"jsonrpc":"2.0","id":1,"result":{"ok":true}}'


def codec(name: str) -> tuple[Callable[[bytes], Any], Callable[[Any], bytes]]:
    if name == "invreq":  # invreq's own: the standard library's parser with its hooks, orjson out
        from invreq import rpc

        return rpc.parse, rpc.dumps
    if name == "orjson":
        import orjson

        return orjson.loads, orjson.dumps
    return (
        lambda raw: json.loads(raw),
        lambda obj: json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode(),
    )


def answerer(mode: str, loads: Callable[[bytes], Any], dumps: Callable[[Any], bytes]) -> Any:
    """bytes of one request -> bytes of its reply."""
    if mode == "bare":

        def bare(raw: bytes) -> bytes:
            loads(raw)
            return BARE_REPLY

        return bare
    signer = SoftwareSigner(os.urandom(32))
    chain = bolt12.chain_for_network("regtest")

    def stripped(raw: bytes) -> bytes:
        req = loads(raw)
        p = req["params"]
        unsigned = bolt12.UnsignedInvoiceRequest(
            metadata=os.urandom(16),
            paths=[],
            description=p["description"],
            amount_msat=p["amount"],
            payer_id=signer.payer_id,
            absolute_expiry=None,
            issuer=None,
            chain=chain,
        )
        signed = unsigned.with_signature(signer.sign_digest(unsigned.digest))
        result = {
            "invreq_id": unsigned.invreq_id.hex(),
            "active": True,
            "single_use": True,
            "bolt12": signed.bolt12,
            "used": False,
            "created_at": int(time.time()),
        }
        return dumps({"jsonrpc": "2.0", "id": req["id"], "result": result})

    return stripped


async def main(port: int, path: str, answer: Any) -> None:
    async def rpc(request: web.Request) -> web.Response:
        return web.Response(body=answer(await request.read()), content_type="application/json")

    async def unix_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        splitter = RequestSplitter()
        try:
            while data := await reader.read(65536):
                for raw in splitter.feed(data):
                    writer.write(answer(raw) + b"\n\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    app = web.Application()
    app.router.add_post("/rpc", rpc)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    server = await asyncio.start_unix_server(unix_client, path=path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    server.close()
    await runner.cleanup()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--socket", required=True)
    ap.add_argument("--mode", choices=("bare", "stripped"), default="bare")
    ap.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    ap.add_argument("--codec", choices=("json", "orjson", "invreq"), default="json")
    a = ap.parse_args()
    answer = answerer(a.mode, *codec(a.codec))
    if a.loop == "uvloop":
        import uvloop

        uvloop.run(main(a.port, a.socket, answer))
    else:
        asyncio.run(main(a.port, a.socket, answer))
