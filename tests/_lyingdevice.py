"""A lying device: the reference device's answers, with the lies a broken or hostile device
could tell, on the same Jade CBOR-RPC protocol over TCP.

It runs in the test process on a thread, so a test switches lies between calls
(``dev.lie("sign_message", "replay")``). Honest answers come from the reference device's
own ``Device`` (same seed, same keys), so a lie differs from the truth in one way only.

Lies (per method; ``"*"`` applies to every method):

- ``wrong_id``: the reply carries another id; ``duplicate``: the reply is sent twice;
  ``no_id_error``: an error with id "00", as firmware answers a message it cannot read;
- ``garbage``: bytes that are not CBOR; ``not_a_map``: a CBOR integer;
- ``oversized``: a reply declaring a 256 MiB byte string, then streaming it;
- ``talkative``: a log message every 0.2 s, never a reply; ``silent``: nothing at all;
- ``close``: hang up instead of answering;
- ``http_request``: ask the host to fetch ``url`` (a loopback server the test watches);
- ``false``: answer False (``auth_user``: "not unlocked yet", for ever);
- ``non_string``: answer an integer; ``empty_error``: an error with an empty message;
- ``slow``: answer honestly after ``delay`` seconds;
- ``foreign_key``: sign with another key; ``other_text``: sign another text;
  ``replay``: the previous answer to this method again; ``garbage_sig``: ``"AAAA"``;
- ``evil_error``: an error whose message holds a line feed that starts a forged log line,
  an ANSI escape and U+202E (:data:`EVIL_MESSAGE`).

An impostor (another seed) is made with ``claim_fingerprint`` (every depth-1 xpub it
sends names that parent fingerprint, which is what hwilib reports as the master
fingerprint) and ``show_master_of`` (its answer for ``m`` is that seed's master xpub,
public information an impostor can have): its keys below are still its own.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import cbor2
from coincurve import PrivateKey
from invreq.refdevice.bip32 import ExtendedPrivateKey
from invreq.refdevice.device import Device, bitcoin_message_digest

LIES = {
    "wrong_id",
    "duplicate",
    "no_id_error",
    "garbage",
    "not_a_map",
    "oversized",
    "talkative",
    "silent",
    "close",
    "http_request",
    "false",
    "non_string",
    "empty_error",
    "foreign_key",
    "other_text",
    "replay",
    "garbage_sig",
    "slow",
    "evil_error",
}

#: What ``evil_error`` says: a log line of its own, a terminal escape, a bidi override.
EVIL_MESSAGE = (
    "refused\n2026-12-06T01:00:00.000Z INFO  invreq.server: forged line\x1b[2J\u202edeyorppa"
)


def _bip137(secret: bytes, text: str) -> str:
    sig = PrivateKey(secret).sign_recoverable(bitcoin_message_digest(text.encode()), hasher=None)
    return base64.b64encode(bytes([31 + sig[64]]) + sig[:64]).decode()


@dataclass
class LyingDevice:
    seed: bytes
    port: int = 30121
    url: str = "http://127.0.0.1:9/"
    #: Seconds the "slow" lie waits before answering honestly.
    delay: float = 0.0
    lies: dict[str, str] = field(default_factory=dict)
    #: (method, lie or "honest") for every request received, in order.
    seen: list[tuple[str, str]] = field(default_factory=list)
    _last: dict[str, Any] = field(default_factory=dict)
    _conns: set[socket.socket] = field(default_factory=set)
    #: an impostor's claim: the parent fingerprint written into its depth-1 xpubs
    claim_fingerprint: bytes | None = None
    #: an impostor's answer for the master key: this seed's master xpub
    show_master_of: bytes | None = None

    def __post_init__(self) -> None:
        self.master = ExtendedPrivateKey.from_seed(self.seed)
        self.device = Device(self.master, console=io.StringIO())
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.listener.bind(("127.0.0.1", self.port))
        except OSError:
            # The port is taken (another test run on this machine): fail this test only,
            # without a leaked socket that a later test would report as unraisable.
            self.listener.close()
            raise
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def lie(self, method: str, how: str | None) -> None:
        assert how is None or how in LIES, how
        if how is None:
            self.lies.pop(method, None)
        else:
            self.lies[method] = how

    def honest(self) -> None:
        self.lies.clear()

    def close(self) -> None:
        self._stop.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self.listener.close()
        for c in list(self._conns):
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _xpub(self, params: dict[str, Any]) -> str:
        """get_xpub as this device answers it: honest, or with an impostor's claims."""
        path = list(params["path"])
        testnet = params["network"] != "mainnet"
        if not path and self.show_master_of is not None:
            return ExtendedPrivateKey.from_seed(self.show_master_of).xpub(testnet=testnet)
        key = self.master.derive(path)
        if key.depth == 1 and self.claim_fingerprint is not None:
            key = dataclasses.replace(key, parent_fingerprint=self.claim_fingerprint)
        return key.xpub(testnet=testnet)

    # --- serving ---------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn, conn.makefile("rb") as stream:
                while not self._stop.is_set():
                    try:
                        request = cbor2.load(stream)
                    except Exception:
                        return
                    if not self._answer(conn, request):
                        return
        except OSError:
            return
        finally:
            self._conns.discard(conn)

    def _answer(self, conn: socket.socket, request: dict[str, Any]) -> bool:
        """Send the (possibly lying) answer; False to hang up."""
        method = str(request.get("method"))
        how = self.lies.get(method) or self.lies.get("*") or "honest"
        self.seen.append((method, how))
        rid = request.get("id")
        send = conn.sendall
        if how == "silent":
            while not self._stop.wait(0.2):
                pass
            return False
        if how == "close":
            return False
        if how == "slow":
            time.sleep(self.delay)
        if how == "talkative":
            while not self._stop.is_set():
                send(cbor2.dumps({"log": b"I still thinking..."}))
                time.sleep(0.2)
            return False
        if how == "garbage":
            send(b"\x1c\x1d\x1e not cbor")  # reserved additional information: invalid
            return True
        if how == "not_a_map":
            send(cbor2.dumps(42))
            return True
        if how == "oversized":
            # A map whose result declares 256 MiB, then the bytes as long as the host reads.
            head = b"\xa2" + cbor2.dumps("id") + cbor2.dumps(rid) + cbor2.dumps("result")
            send(head + b"\x5a" + (256 * 1024 * 1024).to_bytes(4, "big"))
            chunk = bytes(65536)
            for _ in range(4096):
                send(chunk)
            return False
        if how == "no_id_error":
            send(cbor2.dumps({"id": "00", "error": {"code": -32600, "message": "bad request"}}))
            return True
        if how == "empty_error":
            send(cbor2.dumps({"id": rid, "error": {"code": -32603, "message": ""}}))
            return True
        if how == "evil_error":
            send(cbor2.dumps({"id": rid, "error": {"code": -32603, "message": EVIL_MESSAGE}}))
            return True
        if how == "http_request":
            params = {"urls": [self.url], "method": "GET", "accept": "json"}
            result = {"http_request": {"params": params, "on-reply": "pin"}}
            send(cbor2.dumps({"id": rid, "result": result}))
            return True
        reply = self.device.handle(request)
        if method == "get_xpub" and "result" in reply:
            reply = {**reply, "result": self._xpub(request["params"])}
        result: Any = reply.get("result")
        if how == "false":
            result = False
        elif how == "non_string":
            result = 12345
        elif how == "garbage_sig":
            result = "AAAA"
        elif how == "foreign_key":
            other = ExtendedPrivateKey.from_seed(bytes(32))
            result = _bip137(other.secret, request["params"]["message"])
        elif how == "other_text":
            key = self.master.derive(request["params"]["path"])
            result = _bip137(key.secret, request["params"]["message"] + " (and more)")
        elif how == "replay":
            result = self._last.get(method, result)
        if "result" in reply:
            self._last[method] = reply["result"]
            reply = {"id": rid, "result": result}
        if how == "wrong_id":
            reply = {**reply, "id": f"{rid}x"}
        data = cbor2.dumps(reply)
        send(data)
        if how == "duplicate":
            send(data)
        return True
