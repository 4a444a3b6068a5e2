"""TCP transport: a stream of CBOR maps each way, as a Jade simulator offers it.

Each connection is read by its own thread, but requests are handled one at a time under a
lock, as a single device would: a client that connects while another is mid-request waits
for it instead of being refused, and a client that hung up (or never closes) cannot stop
the next one from being served.
"""

from __future__ import annotations

import socket
import threading

import cbor2

from invreq.refdevice.device import Device
from invreq.refdevice.jade_rpc import INVALID_REQUEST, NO_ID, error_reply

__all__ = ["DEFAULT_PORT", "DeviceServer"]

#: The Jade simulator port: hwilib treats only ``tcp:127.0.0.1:30121`` as a simulator.
DEFAULT_PORT = 30121


class DeviceServer:
    def __init__(self, device: Device, port: int = DEFAULT_PORT) -> None:
        self.device = device
        self._device_lock = threading.Lock()  # one request at a time, across connections
        self._connections_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # Tests start and stop the device on one fixed port back to back: without this
            # the previous run's TIME_WAIT connections would block the bind.
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # Loopback only: the device holds keys and authenticates nobody.
            self._listener.bind(("127.0.0.1", port))
            self._listener.listen(8)
        except OSError:
            self._listener.close()
            raise

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def serve_forever(self) -> None:
        """Accept until the listener is closed or the calling thread is interrupted."""
        while True:
            conn, _ = self._listener.accept()
            with self._connections_lock:
                self._connections.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def close(self) -> None:
        self._listener.close()
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wakes its thread's read with EOF
            except OSError:
                pass

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn, conn.makefile("rb") as stream:
                decoder = cbor2.CBORDecoder(stream)
                while True:
                    try:
                        request = decoder.decode()
                    except cbor2.CBORDecodeEOF:
                        return
                    except OSError:
                        raise
                    except Exception as e:  # CBORDecodeError, or nesting too deep to decode
                        # The stream is no longer framed: say why once, then hang up.
                        reply = error_reply(NO_ID, INVALID_REQUEST, f"not CBOR: {e}")
                        conn.sendall(cbor2.dumps(reply))
                        return
                    with self._device_lock:
                        reply = self.device.handle(request)
                    conn.sendall(cbor2.dumps(reply))
        except OSError:
            return  # the client went away mid-reply: its problem, not the device's
        finally:
            with self._connections_lock:
                self._connections.discard(conn)
