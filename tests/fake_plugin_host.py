"""A stand-in for lightningd towards ONE plugin: NOT a Lightning node.

No lightningd can run on the test machine. This class plays the two sides of lightningd a
plugin sees, with lightningd's framing, against the REAL plugin subprocess:

- the plugin protocol on the plugin's stdin/stdout (JSON-RPC 2.0, each message followed by
  a blank line): ``getmanifest``, then ``init`` with the options and a ``configuration``
  holding ``lightning-dir`` and ``rpc-file`` (as lightningd v26.06 sends them), then hook
  calls (:meth:`PluginHost.hook`), answered by the plugin in any order; the plugin's ``log``
  notifications are kept in :attr:`logs`;
- lightningd's JSON-RPC socket ``LIGHTNING_DIR/lightning-rpc``, which the plugin calls back
  into (and which ``invreq serve --pay-with cln:...`` may use too): ``getinfo`` (the node id
  of ``node_secret``, so tests can decrypt what is addressed to the node), ``connect``
  (succeeds for the ids in :attr:`connectable`, every id while it is None),
  ``injectonionmessage`` (kept in :attr:`injected` for the test to open), and the node's
  view of the network as the test sets it: ``listpeers`` (:attr:`peers`), ``listchannels``
  (:attr:`channels`, filtered by ``source``/``destination`` as lightningd does) and
  ``listnodes`` (:attr:`nodes`, filtered by ``id``). Any other method is forwarded, as it
  is, to ``forward`` (tests/fake_lightningd.py: ``xpay``, ``listpays``), so one socket is
  "the node" for both invreq and the plugin.

What it does not do: route or deliver onion messages, gossip, or pay anything.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import socketserver
import subprocess
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from coincurve import PrivateKey

__all__ = ["PluginHost"]

HOOK_TIMEOUT = 60.0


def _frames(stream: Any) -> Any:
    """JSON messages from a byte stream in lightningd's framing (objects, blank lines)."""
    decoder = json.JSONDecoder()
    buf = ""
    while True:
        chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.recv(65536)
        if not chunk:
            return
        buf += chunk.decode()
        while True:
            stripped = buf.lstrip()
            if not stripped:
                buf = ""
                break
            try:
                obj, end = decoder.raw_decode(stripped)
            except ValueError:
                break
            buf = stripped[end:]
            yield obj


class NodeError(Exception):
    """lightningd answering a call with an error."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class PluginHost:
    def __init__(self, directory: Path, node_secret: bytes, forward: Path | None = None) -> None:
        self.lightning_dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.node_secret = node_secret
        self.node_id = PrivateKey(node_secret).public_key.format()
        self.forward = forward
        self.rpc_path = directory / "lightning-rpc"
        self.injected: list[dict[str, Any]] = []
        self.peers: list[dict[str, Any]] = []
        self.channels: list[dict[str, Any]] = []
        self.nodes: list[dict[str, Any]] = []
        self.connectable: set[str] | None = None
        self.rpc_calls: list[str] = []
        self.logs: list[tuple[str, str]] = []
        self._ids = itertools.count(1)
        self._pending: dict[Any, Future[Any]] = {}
        self._lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        self._server = self._serve_rpc()

    # -- lightningd's RPC socket --------------------------------------------------------

    def _answer(self, method: str, params: Any) -> Any:
        self.rpc_calls.append(method)
        if method == "getinfo":
            return {"id": self.node_id.hex(), "alias": "fake-plugin-host", "network": "regtest"}
        if method == "connect":
            node = params["id"] if isinstance(params, dict) else params[0]
            if self.connectable is not None and node not in self.connectable:
                raise NodeError(400, f"Unable to connect, no address known for peer {node}")
            return {"id": node}
        if method == "listpeers":
            return {"peers": self.peers}
        if method == "listchannels":
            return {
                "channels": [
                    c
                    for c in self.channels
                    if params.get("source", c["source"]) == c["source"]
                    and params.get("destination", c["destination"]) == c["destination"]
                ]
            }
        if method == "listnodes":
            wanted = params.get("id")
            return {"nodes": [n for n in self.nodes if wanted in (None, n["nodeid"])]}
        if method == "injectonionmessage":
            with self._lock:
                self.injected.append(dict(params))
            return {}
        raise LookupError(method)

    def _forward(self, raw: dict[str, Any]) -> dict[str, Any]:
        assert self.forward is not None
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.forward))
            s.sendall(json.dumps(raw).encode())
            for reply in _frames(s):
                return reply  # type: ignore[no-any-return]
        raise ConnectionError("forward: no reply")

    def _serve_rpc(self) -> socketserver.ThreadingUnixStreamServer:
        host = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                for req in _frames(self.request):
                    try:
                        reply = {
                            "jsonrpc": "2.0",
                            "id": req["id"],
                            "result": host._answer(req["method"], req.get("params") or {}),
                        }
                    except NodeError as e:
                        error = {"code": e.code, "message": e.message}
                        reply = {"jsonrpc": "2.0", "id": req["id"], "error": error}
                    except LookupError:
                        if host.forward is None:
                            reply = {
                                "jsonrpc": "2.0",
                                "id": req["id"],
                                "error": {"code": -32601, "message": "Unknown command"},
                            }
                        else:
                            reply = host._forward(req)
                    self.request.sendall(json.dumps(reply).encode() + b"\n\n")

        class Server(socketserver.ThreadingUnixStreamServer):
            request_queue_size = 128  # lightningd's listen() backlog is not 5 either

        server = Server(str(self.rpc_path), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    # -- the plugin protocol --------------------------------------------------------------

    def start(
        self,
        argv: Sequence[str],
        options: dict[str, Any],
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> tuple[Any, Any]:
        """Start the plugin as lightningd does; returns (manifest, init result)."""
        env = dict(env or os.environ, LIGHTNINGD_PLUGIN="1", LIGHTNINGD_VERSION="v26.06")
        self.proc = subprocess.Popen(
            list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=cwd
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        manifest = self.call("getmanifest", {"allow-deprecated-apis": False})
        init = self.call(
            "init",
            {
                "options": options,
                "configuration": {
                    "lightning-dir": str(self.lightning_dir),
                    "rpc-file": "lightning-rpc",
                    "startup": True,
                    "network": "regtest",
                    "feature_set": {"init": "", "node": "", "channel": "", "invoice": ""},
                },
            },
        )
        return manifest, init

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for msg in _frames(self.proc.stdout):
            if "id" in msg and ("result" in msg or "error" in msg):
                fut = self._pending.pop(msg["id"], None)
                if fut is not None:
                    fut.set_result(msg)
            elif msg.get("method") == "log":
                p = msg.get("params", {})
                p = p.get("log", p)
                with self._lock:
                    self.logs.append((p.get("level", ""), p.get("message", "")))
        for fut in list(self._pending.values()):
            if not fut.done():
                fut.set_exception(EOFError("the plugin exited"))

    def send(self, method: str, params: Any) -> Future[Any]:
        """Send a request to the plugin; the future resolves to its whole reply."""
        assert self.proc is not None and self.proc.stdin is not None
        rid = f"cln:{method}#{next(self._ids)}"
        fut: Future[Any] = Future()
        self._pending[rid] = fut
        data = json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        with self._lock:
            self.proc.stdin.write(data.encode() + b"\n\n")
            self.proc.stdin.flush()
        return fut

    def call(self, method: str, params: Any) -> Any:
        reply = self.send(method, params).result(HOOK_TIMEOUT)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def hook(self, name: str, payload: dict[str, Any]) -> Any:
        """Call hook ``name`` as lightningd does (params ``{name's payload key: ...}``)."""
        return self.call(name, payload)

    def log_text(self) -> str:
        with self._lock:
            return "\n".join(f"{lvl} {msg}" for lvl, msg in self.logs)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # lightningd closing the pipe: the plugin exits
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout is not None:
            self._reader.join(10)
            self.proc.stdout.close()
        self._server.shutdown()
        self._server.server_close()
        self.rpc_path.unlink(missing_ok=True)
