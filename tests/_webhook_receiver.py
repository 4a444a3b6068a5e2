"""A webhook receiver on loopback for the tests: records every delivery (headers and body)
and answers with the status the test sets (``fail_with``), optionally slowly, or with a
body that never ends (``endless_body``: a hostile or broken receiver)."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest


class Receiver:
    def __init__(self) -> None:
        self.deliveries: list[dict[str, Any]] = []
        self.fail_with: int | None = None
        self.delay = 0.0
        #: answer 200 with a body that never ends (1 KiB every 10 ms until the client goes)
        self.endless_body = False
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.delay:
                    time.sleep(receiver.delay)
                status = receiver.fail_with or 200
                with receiver.lock:
                    receiver.deliveries.append(
                        {
                            "headers": dict(self.headers),
                            "body": body,
                            "json": json.loads(body),
                            "status": status,
                        }
                    )
                self.send_response(status)
                if receiver.endless_body:
                    # HTTP/1.0 without a length: the body lasts until the connection closes.
                    self.end_headers()
                    try:
                        while True:
                            self.wfile.write(b"x" * 1024)
                            self.wfile.flush()
                            time.sleep(0.01)
                    except OSError:
                        return
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def accepted(self) -> list[dict[str, Any]]:
        """The deliveries answered 2xx, in arrival order (their JSON bodies)."""
        with self.lock:
            return [d["json"] for d in self.deliveries if d["status"] == 200]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook_receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


__all__ = ["Receiver", "webhook_receiver"]
