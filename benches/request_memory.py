"""What the request-size limit costs in memory: RSS of a real `invreq serve` while N unix
connections each hold a request just under ``MAX_REQUEST_BYTES`` (the most a connection can
make the server buffer), then after one request of the maximum size is parsed and refused.

Usage: python benches/request_memory.py   (from the checkout, with .venv active; about 10 s)
"""

from __future__ import annotations

import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _service_fixtures import Server
from invreq.rpc import MAX_REQUEST_BYTES

HEAD = b'{"jsonrpc":"2.0","id":1,"method":"invoicerequest","params":{"amount":0,"description":"'


def rss_mib(pid: int) -> tuple[int, int]:
    """(current, peak) resident set size in MiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) // 1024, int(fields["VmHWM"].split()[0]) // 1024


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        s = Server(Path(tmp) / "data").start()
        assert s.proc is not None
        pid = s.proc.pid
        print(f"limit {MAX_REQUEST_BYTES} bytes; idle RSS, peak MiB: {rss_mib(pid)}")
        held = MAX_REQUEST_BYTES - 10
        for n in (10, 100):
            conns = []
            for _ in range(n):
                c = socket.socket(socket.AF_UNIX)
                c.connect(str(s.socket_path))
                c.sendall(HEAD + b"x" * (held - len(HEAD)))
                conns.append(c)
            time.sleep(2)
            print(f"{n} connections holding {held} bytes each: RSS, peak MiB: {rss_mib(pid)}")
            for c in conns:
                c.close()
            time.sleep(1)
        whole = HEAD + b"x" * (MAX_REQUEST_BYTES - len(HEAD) - 3) + b'"}}'
        with socket.socket(socket.AF_UNIX) as c:
            c.connect(str(s.socket_path))
            c.sendall(whole)
            c.recv(4096)
        time.sleep(0.5)
        print(
            f"after one {len(whole)}-byte request parsed and refused: RSS, peak MiB: {rss_mib(pid)}"
        )
        s.stop()


if __name__ == "__main__":
    main()
