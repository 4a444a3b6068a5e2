"""The frontend ceiling: a minimal JSON-RPC server that parses each request and answers a
constant, on HTTP (aiohttp, as invreq) and on a unix socket (asyncio streams, CLN framing).
Whatever invreq does beyond this is its own cost.

Usage: python benches/ceiling.py --port PORT --socket PATH
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

from aiohttp import web
from invreq.unixsock import RequestSplitter

REPLY = b'{"jsonrpc":"2.0","id":1,"result":{"ok":true}}'


async def rpc(request: web.Request) -> web.Response:
    json.loads(await request.read())
    return web.Response(body=REPLY, content_type="application/json")


async def unix_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    splitter = RequestSplitter()
    try:
        while data := await reader.read(65536):
            for raw in splitter.feed(data):
                json.loads(raw)
                writer.write(REPLY + b"\n\n")
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main(port: int, path: str) -> None:
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
    a = ap.parse_args()
    asyncio.run(main(a.port, a.socket))
