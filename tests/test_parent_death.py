"""``--workers``: when the parent dies, even by SIGKILL, its children end and a restart works.

Before issue 25, killing the parent with SIGKILL left the workers (and the SQLite writer)
serving with no parent to stop them, holding the socket and the port: a restart was
refused. Workers now ask the kernel for SIGTERM when their parent dies (PR_SET_PDEATHSIG);
the writer ends once their links close. A real `invreq serve --workers 2` on SQLite.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from _service_fixtures import Server


def children_of(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigkill_of_the_parent_ends_every_child_and_a_restart_serves(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", extra_args=["--workers", "2"]).start()
    try:
        assert server.proc is not None
        rune = server.rpc.call("createrune")["rune"]
        made = server.rpc.call("invoicerequest", [1000, "before the kill"])
        children = children_of(server.proc.pid)
        assert len(children) == 3  # the writer and two workers
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        deadline = time.monotonic() + 60  # a liveness bound, not a speed claim
        while any(alive(c) for c in children):
            assert time.monotonic() < deadline, [c for c in children if alive(c)]
            time.sleep(0.2)
        server.start()  # the socket and the port are free again
        listed = server.rpc.call("listinvoicerequests", [made["invreq_id"]])["invoicerequests"]
        assert [r["invreq_id"] for r in listed] == [made["invreq_id"]]
        assert server.rpc.call("checkrune", {"rune": rune})["valid"] is True
        assert server.stop() == 0, server.output()[-3000:]
    finally:
        server.kill()
