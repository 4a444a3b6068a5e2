"""The one transport every Jade-protocol exchange goes through, handshake included.

It stands in for hwilib's ``JadeInterface`` under hwilib's own ``JadeAPI`` (hwilib's files
are untouched): hwilib builds the requests and interprets results, this module moves the
bytes and decides what a reply may be. hwilib's reader is unfit for a device that may be
broken or hostile: it retries an empty ``recv()`` forever when the device closes, bounds
each read (120 s by default) rather than the call, reads any number of log messages, lets
a reply declare any length, checks reply ids with ``assert`` (gone under
``PYTHONOPTIMIZE``), keeps a connection after a wrong reply, and fetches any URL a reply
names (``http_request``). Here:

- every call has one deadline (``--hwi-timeout``, set by the caller per call): every read
  and write of the call, log messages and reconnects included, must finish before it;
- a reply must carry the id of the request (ids are unique per process), be a map with
  exactly one of ``result`` / ``error``, and an error must have an int code;
- a reply to an earlier request (repeated, or late after a timeout) closes the connection
  and raises ``DeviceGone``, so the caller may send the request again on a fresh one;
- anything else (another id, bytes that are not CBOR, a message over
  ``MAX_MESSAGE`` bytes or a call over ``MAX_CALL`` bytes, a message that is not a map)
  closes the connection: the next call starts on a fresh one;
- a reply asking the host to act (``http_request``) is refused and closes the connection;
- data waiting before a request is sent (a late or repeated reply) means the connection
  is out of step: it is replaced before the request goes out.
"""

from __future__ import annotations

import collections.abc
import itertools
import logging
import os
import select
import socket
import threading
import time
from typing import Any, Protocol

import cbor2

from invreq.oneline import oneline

__all__ = [
    "MAX_CALL",
    "MAX_MESSAGE",
    "BoundedJadeInterface",
    "DeviceGone",
    "DeviceMisbehaved",
    "DeviceTimeout",
    "DeviceUnreachable",
    "TransportError",
]

log = logging.getLogger("invreq.hwi")

#: Bytes of one message from the device. Replies to what we ask are far smaller (an xpub,
#: a 65-byte signature, a version map); 64 KiB leaves room for long log lines.
MAX_MESSAGE = 64 * 1024
#: Bytes the device may send during one call, log messages included.
MAX_CALL = 1024 * 1024

# Request ids: a per-process random prefix and a counter, unique over the process's life,
# so a reply to an earlier request can never pass for the current one. Jade caps ids at
# 15 characters.
_ID_PREFIX = os.urandom(3).hex()
_ids = itertools.count(1)


class TransportError(Exception):
    """The connection, not the device's answer, failed; it has been closed."""


class DeviceGone(TransportError):
    """The device closed the connection or could not be reached: a retry may succeed."""


class DeviceUnreachable(DeviceGone):
    """No connection could be opened."""


class DeviceTimeout(TransportError):
    """The call's deadline passed."""


class DeviceMisbehaved(TransportError):
    """The device sent something no honest device sends (see the module docstring)."""


class Link(Protocol):
    def recv(self, n: int, timeout: float) -> bytes: ...
    def send(self, data: bytes, timeout: float) -> None: ...
    def pending(self) -> bool: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


class TcpLink:
    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.sock = socket.create_connection((host, port), timeout=max(timeout, 0.001))

    def recv(self, n: int, timeout: float) -> bytes:
        self.sock.settimeout(timeout)
        return self.sock.recv(n)

    def send(self, data: bytes, timeout: float) -> None:
        self.sock.settimeout(timeout)
        self.sock.sendall(data)

    def pending(self) -> bool:
        ready, _, _ = select.select([self.sock], [], [], 0)
        return bool(ready)

    def close(self) -> None:
        self.sock.close()

    def abort(self) -> None:
        # From another thread: wakes a blocked recv with end of stream at once.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class SerialLink:
    """A Jade on USB serial (pyserial, which hwilib depends on)."""

    def __init__(self, port: str, timeout: float) -> None:
        import serial  # type: ignore[import-untyped]

        self.ser = serial.Serial(port, 115200, timeout=timeout, write_timeout=timeout)
        self.ser.setRTS(False)
        self.ser.setDTR(False)

    def recv(self, n: int, timeout: float) -> bytes:
        self.ser.timeout = timeout
        data = bytes(self.ser.read(n))
        if not data:
            raise TimeoutError
        return data

    def send(self, data: bytes, timeout: float) -> None:
        self.ser.write_timeout = timeout
        self.ser.write(data)

    def pending(self) -> bool:
        return bool(self.ser.in_waiting)

    def close(self) -> None:
        self.ser.close()

    def abort(self) -> None:
        try:
            self.ser.cancel_read()
        except Exception:
            pass


def open_link(path: str, timeout: float) -> Link:
    if path.startswith("tcp:"):
        host, _, port = path.removeprefix("tcp:").rpartition(":")
        return TcpLink(host, int(port), timeout)
    return SerialLink(path, timeout)


class _Reader:
    """The file-like object cbor2 decodes one message from, within the caps and deadline."""

    def __init__(self, iface: BoundedJadeInterface) -> None:
        self.iface = iface
        self.count = 0
        self.error: TransportError | None = None

    def read(self, n: int) -> bytes:
        try:
            return self.iface._read(n, self)
        except TransportError as e:
            self.error = e  # cbor2 may wrap what read raises: keep the real cause
            raise


class BoundedJadeInterface:
    """What hwilib's ``JadeAPI`` calls on its ``jade`` attribute, with the rules above."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        #: Monotonic time by which the current call must be done (set per call).
        self.deadline = time.monotonic() + timeout
        self._link: Link | None = None
        self._call_bytes = 0
        self._lock = threading.Lock()
        #: Ids sent on the current connection, so a late reply is told from a wrong one.
        self._earlier_ids: set[object] = set()

    # --- connection --------------------------------------------------------------------

    def connect(self) -> None:
        remaining = self._remaining()
        try:
            link = open_link(self.path, remaining)
        except TimeoutError:
            raise DeviceTimeout(f"connecting to {self.path} took too long") from None
        except OSError as e:
            raise DeviceUnreachable(str(e.strerror or e)) from None
        except Exception as e:  # pyserial's SerialException and the like
            raise DeviceUnreachable(str(e)) from None
        with self._lock:
            self._link = link
        self._earlier_ids = set()

    def disconnect(self, drain: bool = False) -> None:
        with self._lock:
            link, self._link = self._link, None
        if link is not None:
            try:
                link.close()
            except Exception:
                pass

    @property
    def connected(self) -> bool:
        return self._link is not None

    def abort(self) -> None:
        """From any thread: make a blocked read return now (the call then fails)."""
        with self._lock:
            link = self._link
        if link is not None:
            link.abort()

    def begin_call(self, deadline: float) -> None:
        """Start one device call, which must be done by ``deadline`` (monotonic)."""
        self.deadline = deadline
        self._call_bytes = 0

    # --- what JadeAPI uses ---------------------------------------------------------------

    @staticmethod
    def build_request(input_id: str, method: str, params: Any = None) -> dict[str, Any]:
        # The id hwilib picked (6 random digits) is replaced by one unique in this process.
        request: dict[str, Any] = {"method": method, "id": f"{_ID_PREFIX}{next(_ids)}"}
        if params is not None:
            request["params"] = params
        return request

    def make_rpc_call(self, request: dict[str, Any], long_timeout: bool = False) -> Any:
        """Send ``request`` and return its reply map. ``long_timeout`` (hwilib's "wait for
        ever") is ignored: the call's deadline always applies."""
        link = self._link
        if link is None:
            raise DeviceGone("not connected")
        method = request.get("method")
        try:
            if link.pending():
                # A late or repeated reply, or the device hung up: either way not a
                # connection to send on. DeviceGone: the caller reconnects and retries.
                raise DeviceGone("the connection is out of step (unread data or closed)")
            data = cbor2.dumps(request)
            if len(self._earlier_ids) > 64:
                self._earlier_ids.clear()  # a long-lived connection: forget the oldest
            self._earlier_ids.add(request["id"])
            try:
                link.send(data, self._remaining())
            except TimeoutError:
                raise DeviceTimeout(f"sending {method}") from None
            except OSError as e:
                raise DeviceGone(f"lost the connection sending {method}: {e}") from None
            return self._read_reply(request)
        except TransportError:
            self.disconnect()
            raise

    # --- reading --------------------------------------------------------------------------

    def _remaining(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise DeviceTimeout("the deadline passed")
        return remaining

    def _read(self, n: int, reader: _Reader) -> bytes:
        if reader.count + n > MAX_MESSAGE:
            raise DeviceMisbehaved(f"sent a message over {MAX_MESSAGE} bytes")
        if self._call_bytes + n > MAX_CALL:
            raise DeviceMisbehaved(f"sent over {MAX_CALL} bytes in one call")
        link = self._link
        if link is None:
            raise DeviceGone("the connection was closed")
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = link.recv(n - len(buf), self._remaining())
            except TimeoutError:
                raise DeviceTimeout("no answer") from None
            except OSError as e:
                raise DeviceGone(f"lost the connection: {e}") from None
            if not chunk:
                raise DeviceGone("the device closed the connection")
            buf += chunk
        reader.count += n
        self._call_bytes += n
        return bytes(buf)

    def _read_message(self) -> Any:
        reader = _Reader(self)
        try:
            return cbor2.load(reader)  # type: ignore[arg-type]  # read() is all it uses
        except TransportError:
            raise
        except Exception as e:
            if reader.error is not None:
                raise reader.error from None
            raise DeviceMisbehaved(f"sent bytes that are not CBOR ({type(e).__name__})") from None

    def _read_reply(self, request: dict[str, Any]) -> dict[str, Any]:
        want = request["id"]
        method = request.get("method")
        while True:
            message = self._read_message()
            if not isinstance(message, dict):
                raise DeviceMisbehaved(f"sent a {type(message).__name__}, not a map")
            if "id" not in message:
                if "log" in message:  # the firmware's own log line: note it, keep reading
                    log.debug("device log: %s", oneline(message["log"]))
                    continue
                raise DeviceMisbehaved("sent a map with neither id nor log")
            got = message["id"]
            if got == "00" and isinstance(message.get("error"), dict):
                # Firmware answers a request it could not read with id "00".
                raise DeviceMisbehaved(
                    f"could not read our {method} request: {_error_text(message['error'])}"
                )
            if got != want and got in self._earlier_ids:
                # A reply to an earlier request, repeated or late: this connection is out
                # of step, but the request may be sent again on a fresh one.
                raise DeviceGone(f"a late or repeated reply (id {got}) came before {method}'s")
            if got != want:
                raise DeviceMisbehaved(f"answered {method} (id {want}) with id {got!r}")
            if ("result" in message) == ("error" in message):
                raise DeviceMisbehaved(f"answered {method} with neither or both result and error")
            if "error" in message:
                error = message["error"]
                if not isinstance(error, dict) or not isinstance(error.get("code"), int):
                    raise DeviceMisbehaved(f"answered {method} with a malformed error")
                return message
            result = message["result"]
            if isinstance(result, collections.abc.Mapping) and "http_request" in result:
                raise DeviceMisbehaved(
                    f"asked the host to make an HTTP request (http_request) while answering "
                    f"{method}; invreq never acts for a device (unlock it on the device itself)"
                )
            return message


def _error_text(error: dict[str, Any]) -> str:
    code = error.get("code")
    message = error.get("message")
    text = message if isinstance(message, str) and message else "no message"
    return f"code {code}: {text}"  # escaped where it leaves the device thread
